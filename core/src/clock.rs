//! Time sources. Time is `u64` nanoseconds from an arbitrary origin, never wall-clock time.
//!
//! A limiter reads its clock once per operation; every operation also has an `_at` form that
//! takes `now_ns` directly, so a caller can own time entirely.

/// A source of monotonic time in nanoseconds.
///
/// Readings from one clock must be comparable (the same origin). A reading smaller than one
/// seen before is tolerated by every limiter as "no time passed", but a clock should not do it.
///
/// Implementing a custom clock, for example over a hardware timer on an embedded target:
///
/// ```
/// use cellgate::{Clock, Gcra, Quota};
/// use core::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts 1 kHz timer interrupts.
/// struct TickClock<'a>(&'a AtomicU64);
///
/// impl Clock for TickClock<'_> {
///     fn now_ns(&self) -> u64 {
///         self.0.load(Ordering::Relaxed).saturating_mul(1_000_000)
///     }
/// }
///
/// static TICKS: AtomicU64 = AtomicU64::new(0);
/// let limiter = Gcra::with_clock(Quota::per_second(2).unwrap(), TickClock(&TICKS));
/// assert!(limiter.check(2).allowed);
/// assert!(!limiter.check(1).allowed);
/// TICKS.store(500, Ordering::Relaxed); // half a second later
/// assert!(limiter.check(1).allowed);
/// ```
pub trait Clock {
    /// The current time in nanoseconds since this clock's origin.
    fn now_ns(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

/// The clock parameter of a limiter built without a clock: only the `_at` operations, which
/// take `now_ns` explicitly, are available. Deliberately does not implement [`Clock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NoClock;

#[cfg(feature = "alloc")]
mod manual {
    use super::Clock;
    use alloc::sync::Arc;
    use core::time::Duration;
    use portable_atomic::{AtomicU64, Ordering};

    /// A clock that moves only when told to, for tests. Clones share one time.
    ///
    /// ```
    /// use cellgate::{Clock, ManualClock};
    /// let clock = ManualClock::new(5);
    /// let view = clock.clone();
    /// clock.advance_ns(10);
    /// assert_eq!(view.now_ns(), 15);
    /// ```
    #[derive(Clone, Debug, Default)]
    pub struct ManualClock {
        now_ns: Arc<AtomicU64>,
    }

    impl ManualClock {
        /// A clock that reads `start_ns` until moved.
        pub fn new(start_ns: u64) -> Self {
            Self {
                now_ns: Arc::new(AtomicU64::new(start_ns)),
            }
        }

        /// Moves time forward by `delta_ns`, saturating at `u64::MAX`.
        pub fn advance_ns(&self, delta_ns: u64) {
            // Relaxed: the time is a lone value; it publishes no other memory.
            let _ = self
                .now_ns
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                    Some(now.saturating_add(delta_ns))
                });
        }

        /// Moves time forward by `delta`, saturating at `u64::MAX` nanoseconds.
        pub fn advance(&self, delta: Duration) {
            self.advance_ns(u64::try_from(delta.as_nanos()).unwrap_or(u64::MAX));
        }

        /// Sets the time; it may move backwards (limiters treat that as no time passing).
        pub fn set_ns(&self, now_ns: u64) {
            // Relaxed: see `advance_ns`.
            self.now_ns.store(now_ns, Ordering::Relaxed);
        }
    }

    impl Clock for ManualClock {
        fn now_ns(&self) -> u64 {
            // Relaxed: see `advance_ns`.
            self.now_ns.load(Ordering::Relaxed)
        }
    }
}

#[cfg(feature = "alloc")]
pub use manual::ManualClock;

#[cfg(feature = "std")]
mod monotonic {
    use super::Clock;
    use std::sync::OnceLock;
    use std::time::Instant;

    static ORIGIN: OnceLock<Instant> = OnceLock::new();

    /// The process's monotonic clock (`std::time::Instant`), in nanoseconds since the first
    /// reading of any `MonotonicClock` in this process. Never steps backwards.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MonotonicClock;

    impl Clock for MonotonicClock {
        fn now_ns(&self) -> u64 {
            let origin = ORIGIN.get_or_init(Instant::now);
            u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }
}

#[cfg(feature = "std")]
pub use monotonic::MonotonicClock;

#[cfg(feature = "quanta")]
mod counter {
    use super::Clock;

    /// A monotonic clock over the CPU's time-stamp counter, through the `quanta` crate (the
    /// clock governor uses by default): a reading is a counter read and a multiply, about a
    /// third of [`MonotonicClock`](super::MonotonicClock)'s system call through the vDSO
    /// (measured in `BENCHMARKS.md`). Nanoseconds since this clock was made; clones share the
    /// origin. Opt-in (feature `quanta`), because its nanoseconds are the counter's, scaled by
    /// a calibration against the system's monotonic clock made once per process: they may
    /// drift from it by the calibration's error (parts per million), and they mean nothing to
    /// another process (a table shared by processes uses the host clock, never this). Where
    /// the CPU has no usable counter, `quanta` reads the monotonic clock instead.
    #[derive(Clone, Debug)]
    pub struct QuantaClock {
        clock: quanta::Clock,
        origin_raw: u64,
    }

    impl QuantaClock {
        /// A clock reading 0 now. The first one in a process calibrates the counter (a few
        /// milliseconds); later ones reuse that calibration.
        pub fn new() -> Self {
            let clock = quanta::Clock::new();
            let origin_raw = clock.raw();
            Self { clock, origin_raw }
        }
    }

    impl Default for QuantaClock {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Clock for QuantaClock {
        #[inline]
        fn now_ns(&self) -> u64 {
            // 0 for a reading at or before the origin (another core's counter a little
            // behind): a limiter takes an earlier time as "no time passed".
            self.clock.delta_as_nanos(self.origin_raw, self.clock.raw())
        }
    }
}

#[cfg(feature = "quanta")]
pub use counter::QuantaClock;

#[cfg(all(test, feature = "quanta"))]
mod quanta_tests {
    use super::{Clock, MonotonicClock, QuantaClock};
    use crate::{Gcra, Quota};

    #[test]
    fn the_counter_clock_keeps_pace_with_the_monotonic_one() {
        let counter = QuantaClock::new();
        let monotonic = MonotonicClock;
        // Each counter reading bracketed by two monotonic ones, so that a preemption between
        // readings widens the bracket instead of failing the comparison.
        let (before_start, counter_start, after_start) =
            (monotonic.now_ns(), counter.now_ns(), monotonic.now_ns());
        let mut last = counter_start;
        for _ in 0..10_000 {
            let now = counter.now_ns();
            assert!(now >= last, "{now} after {last}");
            last = now;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (before_end, counter_end, after_end) =
            (monotonic.now_ns(), counter.now_ns(), monotonic.now_ns());
        let counter_ns = counter_end - counter_start;
        let shortest_ns = before_end - after_start;
        let longest_ns = after_end - before_start;
        // The calibration's error is parts per million; 1 % is the slack.
        assert!(
            counter_ns * 100 >= shortest_ns * 99 && counter_ns * 99 <= longest_ns * 100,
            "{counter_ns} ns, against {shortest_ns} to {longest_ns} ns"
        );
        // A clone shares the origin.
        assert!(counter.clone().now_ns() >= counter_ns);
    }

    #[test]
    fn a_cell_on_the_counter_clock_decides() {
        let limiter = Gcra::with_clock(Quota::per_hour(2).unwrap(), QuantaClock::new());
        assert!(limiter.check(2).allowed);
        let denied = limiter.check(1);
        assert!(!denied.allowed);
        assert!(denied.retry_after_ns > 1_700_000_000_000, "{denied:?}");
    }
}
