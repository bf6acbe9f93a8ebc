//! Time for the Python limiters: the process's monotonic clock, or a [`ManualClock`] for tests.

use crate::boundary::invalid_type;
use crate::boundary::{seconds_arg, type_name, u64_arg};
use cellgate::{Clock, MonotonicClock};
use pyo3::prelude::*;

/// Where a limiter reads the time.
#[derive(Clone, Debug)]
pub enum TimeSource {
    /// The monotonic clock: `CLOCK_MONOTONIC` on Linux, `cellgate::MonotonicClock` elsewhere.
    Monotonic,
    /// A manual clock shared with Python code that moves it.
    Manual(cellgate::ManualClock),
}

impl TimeSource {
    /// The time source for a `clock=` argument: `None` is the monotonic clock.
    pub fn from_arg(clock: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        match clock {
            None => Ok(Self::Monotonic),
            Some(clock) if clock.is_none() => Ok(Self::Monotonic),
            Some(clock) => match clock.cast::<ManualClock>() {
                Ok(manual) => Ok(Self::Manual(manual.get().inner.clone())),
                Err(_) => Err(invalid_type(
                    clock.py(),
                    "clock",
                    &format!(
                        "must be a cellgate.ManualClock or None, not {}",
                        type_name(clock).unwrap_or_default()
                    ),
                )),
            },
        }
    }
}

impl TimeSource {
    /// The Python `ManualClock` sharing this source's time, or `None` for the monotonic clock.
    pub fn manual(&self) -> Option<ManualClock> {
        match self {
            Self::Monotonic => None,
            Self::Manual(clock) => Some(ManualClock {
                inner: clock.clone(),
            }),
        }
    }
}

impl Clock for TimeSource {
    #[inline]
    fn now_ns(&self) -> u64 {
        match self {
            Self::Monotonic => monotonic_ns(),
            Self::Manual(clock) => clock.now_ns(),
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (since boot), read directly: `MonotonicClock` goes through
/// `Instant`, a `OnceLock` origin and a `Duration` in 128 bits, about 50 instructions more per
/// check (measured with callgrind) for the same reading. Never steps backwards.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[inline]
fn monotonic_ns() -> u64 {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    /// `CLOCK_MONOTONIC` on Linux.
    const CLOCK_MONOTONIC: i32 = 1;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable `struct timespec`; CLOCK_MONOTONIC always exists
    // on Linux, so the call cannot fail (and on failure `time` stays zero: no time passing).
    let status = unsafe { clock_gettime(CLOCK_MONOTONIC, &mut time) };
    if status != 0 {
        return MonotonicClock.now_ns();
    }
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The process's monotonic clock, elsewhere.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
#[inline]
fn monotonic_ns() -> u64 {
    MonotonicClock.now_ns()
}

/// A clock that moves only when told to, for tests; limiters built with it share its time.
/// `Limiter.wait` / `acquire` on such a limiter without a timeout last until someone advances
/// the clock (forever if nobody does); a timeout also ends them in real time.
///
/// `ManualClock(start_ns=0)`; `advance(seconds)`, `advance_ns(n)`, `set_ns(n)` (may move
/// backwards: limiters treat that as no time passing), `now_ns()`.
#[pyclass(frozen, module = "cellgate", name = "ManualClock")]
pub struct ManualClock {
    inner: cellgate::ManualClock,
}

#[pymethods]
impl ManualClock {
    /// A clock reading `start_ns` nanoseconds until moved.
    #[new]
    #[pyo3(signature = (start_ns=None), text_signature = "(start_ns=0)")]
    fn new(start_ns: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let start_ns = match start_ns {
            None => 0,
            Some(value) => u64_arg(value, "start_ns")?,
        };
        Ok(Self {
            inner: cellgate::ManualClock::new(start_ns),
        })
    }

    /// Moves time forward by `seconds` (int or float, rounded to the nanosecond), saturating
    /// at the largest time.
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let delta_ns = seconds_arg(seconds, "seconds")?;
        self.inner.advance_ns(delta_ns);
        Ok(())
    }

    /// Moves time forward by `ns` nanoseconds, saturating at the largest time.
    fn advance_ns(&self, ns: &Bound<'_, PyAny>) -> PyResult<()> {
        let delta_ns = u64_arg(ns, "ns")?;
        self.inner.advance_ns(delta_ns);
        Ok(())
    }

    /// Sets the time to `ns`; it may move backwards (limiters treat that as no time passing).
    fn set_ns(&self, ns: &Bound<'_, PyAny>) -> PyResult<()> {
        let now_ns = u64_arg(ns, "ns")?;
        self.inner.set_ns(now_ns);
        Ok(())
    }

    /// The current time in nanoseconds.
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(start_ns={})", self.inner.now_ns())
    }
}
