//! Clocks: the host's monotonic clock (`cellgate_host::host_now_ns`, `CLOCK_MONOTONIC`: one
//! time line for every process on the host, as a shared table needs), or a [`NativeManualClock`] that tests move by hand.

use cellgate::{Clock, ManualClock};
use cellgate_host::host_now_ns;
use napi::bindgen_prelude::BigInt;
use napi::Result;
use napi_derive::napi;

use crate::boundary::range_error;

/// The clock a native limiter reads once per operation.
#[derive(Clone, Debug)]
pub(crate) enum NodeClock {
    /// `CLOCK_MONOTONIC` in nanoseconds: [`cellgate_host::host_now_ns`], the clock of every
    /// runtime's shared tables (one clock, not a copy per binding).
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
            Self::Monotonic => host_now_ns(),
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

/// Nanoseconds on the host's monotonic clock (what limiters without a `ManualClock` read).
#[napi(js_name = "monotonicNowNs")]
pub fn monotonic_now_ns() -> BigInt {
    BigInt::from(host_now_ns())
}
