//! Time for the Python limiters: the host's clock (`cellgate_host::HostClock`,
//! `CLOCK_MONOTONIC`, one time line for every process on the host, as a shared table needs),
//! or a [`ManualClock`] for tests.

use crate::boundary::invalid_type;
use crate::boundary::{seconds_arg, type_name, u64_arg};
use cellgate::Clock;
use pyo3::prelude::*;

/// Where a limiter reads the time.
#[derive(Clone, Debug)]
pub enum TimeSource {
    /// The host's clock: `cellgate_host::host_now_ns()`, one `clock_gettime(CLOCK_MONOTONIC)`
    /// (core's `MonotonicClock` outside Unix).
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
            Self::Monotonic => cellgate_host::host_now_ns(),
            Self::Manual(clock) => clock.now_ns(),
        }
    }
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
