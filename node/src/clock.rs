//! Clocks: the process's monotonic clock, or a [`NativeManualClock`] that tests move by hand.

use cellgate::{Clock, ManualClock};
use napi::bindgen_prelude::BigInt;
use napi::Result;
use napi_derive::napi;

use crate::boundary::range_error;

/// The clock a native limiter reads once per operation.
#[derive(Clone, Debug)]
pub(crate) enum NodeClock {
    /// `CLOCK_MONOTONIC` (what `std::time::Instant` reads), in nanoseconds since the
    /// addon's first reading: see [`monotonic`].
    Monotonic,
    /// Shared with a `ManualClock` object in JavaScript.
    Manual(ManualClock),
}

impl NodeClock {
    /// The monotonic clock, or `manual`'s time when given.
    pub(crate) fn new(manual: Option<&NativeManualClock>) -> Self {
        match manual {
            Some(manual) => Self::Manual(manual.clock.clone()),
            None => Self::Monotonic,
        }
    }
}

impl Clock for NodeClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        match self {
            Self::Monotonic => monotonic::now_ns(),
            Self::Manual(clock) => clock.now_ns(),
        }
    }
}

/// A `u64` from a `BigInt` that JavaScript validated (0 ..= 2^64 - 1).
pub(crate) fn u64_from_bigint(value: &BigInt, what: &str) -> Result<u64> {
    match value.get_u64() {
        (false, value, true) => Ok(value),
        _ => Err(range_error(format!(
            "{what} must be between 0 and 2^64 - 1"
        ))),
    }
}

/// The native half of `ManualClock`: a time that moves only when told to. Limiters built
/// with it share its time (the clock is an `Arc` inside).
#[napi]
pub struct NativeManualClock {
    clock: ManualClock,
}

#[napi]
impl NativeManualClock {
    /// A clock reading `start_ns`.
    ///
    /// # Errors
    /// `start_ns` out of `u64` range.
    #[napi(constructor)]
    pub fn new(start_ns: BigInt) -> Result<Self> {
        Ok(Self {
            clock: ManualClock::new(u64_from_bigint(&start_ns, "startNs")?),
        })
    }

    /// Moves time forward by `delta_ns`, saturating at 2^64 - 1.
    ///
    /// # Errors
    /// `delta_ns` out of `u64` range.
    #[napi]
    pub fn advance_ns(&self, delta_ns: BigInt) -> Result<()> {
        self.clock.advance_ns(u64_from_bigint(&delta_ns, "ns")?);
        Ok(())
    }

    /// Sets the time (it may move backwards: limiters treat that as no time passing).
    ///
    /// # Errors
    /// `now_ns` out of `u64` range.
    #[napi]
    pub fn set_ns(&self, now_ns: BigInt) -> Result<()> {
        self.clock.set_ns(u64_from_bigint(&now_ns, "ns")?);
        Ok(())
    }

    /// The time in nanoseconds.
    #[napi]
    pub fn now_ns(&self) -> BigInt {
        BigInt::from(self.clock.now_ns())
    }
}

/// Nanoseconds on the process's monotonic clock (what limiters without a `ManualClock` read).
#[napi(js_name = "monotonicNowNs")]
pub fn monotonic_now_ns() -> BigInt {
    BigInt::from(monotonic::now_ns())
}

/// The monotonic clock of limiters without a `ManualClock`: nanoseconds since the addon's
/// first reading, never stepping backwards, one time line for every limiter in the process
/// (as core's `MonotonicClock`, which it replaces here because it is cheaper).
///
/// On 64-bit Linux it calls `clock_gettime(CLOCK_MONOTONIC)` itself, the clock
/// `std::time::Instant` reads there: core's `MonotonicClock` goes through
/// `Instant::elapsed` (checked `timespec` arithmetic) and a `u128` nanosecond count, about 80
/// more instructions per check (callgrind). Elsewhere it is `Instant`.
mod monotonic {
    use std::sync::OnceLock;

    /// The first reading, subtracted from every reading.
    static ORIGIN: OnceLock<u64> = OnceLock::new();

    /// Nanoseconds since the first reading (0 at it), saturating.
    #[inline]
    pub(crate) fn now_ns() -> u64 {
        let now = raw_ns();
        now.saturating_sub(*ORIGIN.get_or_init(|| now))
    }

    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    mod sys {
        use std::ffi::{c_int, c_long};

        /// `struct timespec` on 64-bit Linux (glibc and musl): two 64-bit fields.
        #[repr(C)]
        pub(super) struct Timespec {
            pub(super) tv_sec: i64,
            pub(super) tv_nsec: c_long,
        }

        /// `CLOCK_MONOTONIC` in `<linux/time.h>`.
        pub(super) const CLOCK_MONOTONIC: c_int = 1;

        extern "C" {
            /// POSIX `clock_gettime` from the C library the addon is linked with (glibc and
            /// musl answer `CLOCK_MONOTONIC` from the vDSO, without a system call).
            pub(super) fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
        }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds (0 if it could not be read, which POSIX rules out
    /// for this clock; the origin's saturating subtraction keeps time from going backwards
    /// either way).
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[inline]
    fn raw_ns() -> u64 {
        let mut time = sys::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid, writable `struct timespec`; `CLOCK_MONOTONIC` is
        // supported by every Linux kernel.
        if unsafe { sys::clock_gettime(sys::CLOCK_MONOTONIC, &mut time) } != 0 {
            return 0;
        }
        // Seconds since boot times 10^9 fit a u64 for 584 years; the conversions fail only
        // for negative values, which this clock never returns.
        let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
    }

    /// Nanoseconds on `Instant`, from a fixed base (other platforms).
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    fn raw_ns() -> u64 {
        use std::time::Instant;
        static BASE: OnceLock<Instant> = OnceLock::new();
        let base = BASE.get_or_init(Instant::now);
        u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
