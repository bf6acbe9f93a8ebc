//! [`HostClock`]: the one time line every process on the host reads.

use cellgate::Clock;

/// `CLOCK_MONOTONIC` in nanoseconds: the time since an unspecified start (boot, on Linux),
/// the same for every process on the host, never stepped back by the wall clock. Every process
/// sharing a table must take its `now_ns` from it (or from [`host_now_ns`]): a table shared by
/// processes needs one time line.
///
/// Each reading is one `clock_gettime` call, which the kernel serves from the vDSO without a
/// system call on Linux (about 20 ns, the cost of `std::time::Instant::now`). A reading past
/// `u64::MAX` ns (584 years of uptime) saturates. Outside Unix (where no table can be
/// shared) it is core's `MonotonicClock`, whose time line is this process's only.
///
/// ```
/// use cellgate::Clock;
/// use cellgate_host::HostClock;
/// let earlier = HostClock.now_ns();
/// assert!(HostClock.now_ns() >= earlier);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostClock;

impl Clock for HostClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        host_now_ns()
    }
}

/// The current [`HostClock`] reading, as a plain function (what
/// [`ClaimRecovery::clock`](cellgate::ClaimRecovery::clock) takes).
#[cfg(unix)]
#[inline]
pub fn host_now_ns() -> u64 {
    use rustix::time::{clock_gettime, ClockId};
    let time = clock_gettime(ClockId::Monotonic);
    // CLOCK_MONOTONIC never reads negative; a negative field (impossible) reads as 0.
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The current [`HostClock`] reading: core's `MonotonicClock` outside Unix.
#[cfg(not(unix))]
#[inline]
pub fn host_now_ns() -> u64 {
    cellgate::MonotonicClock.now_ns()
}
