//! The `Float64Array` that a JavaScript limiter shares with its native half.
//!
//! An operation writes its decision here and returns only a status, so that JavaScript builds
//! the decision object itself (a literal costs a few nanoseconds; an object built through
//! Node-API, hundreds). Policies also read their costs from here, instead of converting a
//! JavaScript array on every call.
//!
//! Layout, in `f64` slots (`node/lib/native.js` holds the same numbers and checks them
//! against [`layout`] when it loads):
//!
//! | slots | what |
//! |---|---|
//! | `BINDING` | the binding entry's index (policies); after [`MISSING_COST`], the dimension without a cost |
//! | `COUNT` | how many entries follow |
//! | `STATUS` | the status of a policy's `reserve` (which returns an object, not the status) |
//! | `ENTRIES + 5 i ..` | entry `i`: allowed (0 or 1), limit, remaining, retry-after ns, reset-after ns |
//! | `COSTS + d` | input: the cost of dimension `d`, or [`COST_NOT_GIVEN`] |
//!
//! A call's costs are completed by core's rule ([`cellgate::resolve_costs`],
//! [`cellgate::resolve_settle_costs`]), not here nor in JavaScript: JavaScript writes
//! [`COST_NOT_GIVEN`] for a dimension its caller named no cost for, and the operation answers
//! [`MISSING_COST`] (charging nothing) when the rule needs one.
//!
//! Nanosecond values are exact below 2^53 (104 days); [`cellgate::NEVER`] is written as
//! `Infinity`.

use cellgate::{Decision, NEVER};
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use std::ptr::NonNull;

use crate::error::range_error;

/// Returned when the operation was denied (for `refund`/`force`: the bucket is in debt).
pub const DENIED: u32 = 0;
/// Returned when the operation was allowed.
pub const ALLOWED: u32 = 1;
/// Returned when a new key could not be placed in the table (nothing was written).
pub const TABLE_FULL: u32 = 2;
/// Returned when a policy of several dimensions was given no cost for one (written into
/// `BINDING`); nothing was charged.
pub const MISSING_COST: u32 = 3;

/// What JavaScript writes into a cost slot for a dimension its caller named no cost for (no
/// cost is negative, so it cannot be mistaken for one).
pub const COST_NOT_GIVEN: f64 = -1.0;

/// The binding entry's index.
pub(crate) const BINDING: usize = 0;
/// The number of entries written.
pub(crate) const COUNT: usize = 1;
/// The status of a `reserve`.
pub(crate) const STATUS: usize = 2;
/// The first entry's first slot.
pub(crate) const ENTRIES: usize = 3;
/// Slots per entry.
pub(crate) const ENTRY_SLOTS: usize = 5;
/// The first cost slot (after room for `MAX_POLICY_QUOTAS` entries).
pub(crate) const COSTS: usize = ENTRIES + ENTRY_SLOTS * cellgate::MAX_POLICY_QUOTAS;
/// The slots the array must have at least.
pub(crate) const LEN: usize = COSTS + cellgate::MAX_POLICY_QUOTAS;

/// The layout, for the JavaScript layer to check its constants against: `[BINDING, COUNT,
/// STATUS, ENTRIES, ENTRY_SLOTS, COSTS, LEN, DENIED, ALLOWED, TABLE_FULL, MISSING_COST,
/// COST_NOT_GIVEN]`.
#[napi_derive::napi(js_name = "sharedLayout")]
pub fn layout() -> Vec<f64> {
    [BINDING, COUNT, STATUS, ENTRIES, ENTRY_SLOTS, COSTS, LEN]
        .iter()
        .map(|&slot| slot as f64)
        .chain([DENIED, ALLOWED, TABLE_FULL, MISSING_COST].map(f64::from))
        .chain([COST_NOT_GIVEN])
        .collect()
}

/// A cost slot that holds neither a cost nor [`COST_NOT_GIVEN`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct InvalidCost {
    /// The dimension of the slot.
    pub(crate) dimension: usize,
}

/// `value as f64` (rounded to nearest; exact below 2^53), through `i64` where it fits: x86-64
/// converts a signed integer in one instruction, an unsigned one in about seven.
#[inline]
pub(crate) fn u64_to_f64(value: u64) -> f64 {
    match i64::try_from(value) {
        Ok(signed) => signed as f64,
        Err(_) => value as f64,
    }
}

/// A nanosecond count as the `f64` JavaScript reads: exact below 2^53, `NEVER` as `Infinity`.
#[inline]
pub(crate) fn ns_to_f64(ns: u64) -> f64 {
    if ns == NEVER {
        f64::INFINITY
    } else {
        u64_to_f64(ns)
    }
}

/// The inverse of [`ns_to_f64`] for values JavaScript hands back (header rendering).
pub(crate) fn f64_to_ns(value: f64) -> Option<u64> {
    if value == f64::INFINITY {
        Some(NEVER)
    } else if value.is_finite()
        && value >= 0.0
        && value.fract() == 0.0
        && value < 18_446_744_073_709_551_616.0
    {
        Some(value as u64)
    } else {
        None
    }
}

/// The shared array, held (a strong reference) for as long as the native object lives.
pub(crate) struct Shared {
    /// Keeps the array alive; all access goes through `data`.
    _array: Float64Array,
    data: NonNull<f64>,
    len: usize,
}

impl Shared {
    /// Takes `array`, which must have at least [`LEN`] slots.
    pub(crate) fn new(mut array: Float64Array) -> Result<Self> {
        if array.len() < LEN {
            return Err(range_error(format!(
                "shared: a Float64Array of at least {LEN} elements is required"
            )));
        }
        // SAFETY: we only take the pointer here; `set` and `get` document each access.
        let slice = unsafe { array.as_mut() };
        let len = slice.len();
        let data = NonNull::new(slice.as_mut_ptr())
            .ok_or_else(|| range_error("shared: the Float64Array has no memory"))?;
        Ok(Self {
            _array: array,
            data,
            len,
        })
    }

    /// Writes `value` into `slot` (ignored past the end, which the layout never reaches).
    #[inline]
    pub(crate) fn set(&self, slot: usize, value: f64) {
        if slot < self.len {
            // SAFETY: `slot` is within the array, whose memory stays valid and in place while
            // we hold our reference to it (an ArrayBuffer's backing store does not move, and
            // this one is never detached or resized: only the package's own code sees it).
            // JavaScript runs on this thread and is paused while a native method runs, so
            // nothing else accesses the memory during the write.
            unsafe { self.data.as_ptr().add(slot).write(value) };
        }
    }

    /// Reads `slot` (0 past the end).
    #[inline]
    pub(crate) fn get(&self, slot: usize) -> f64 {
        if slot < self.len {
            // SAFETY: as in `set`: in bounds, valid, and not written concurrently.
            unsafe { self.data.as_ptr().add(slot).read() }
        } else {
            0.0
        }
    }

    /// Writes one entry's decision.
    #[inline]
    pub(crate) fn write_entry(&self, index: usize, decision: &Decision) {
        let base = ENTRIES + ENTRY_SLOTS * index;
        self.set(base, if decision.allowed { 1.0 } else { 0.0 });
        self.set(base + 1, u64_to_f64(decision.limit));
        self.set(base + 2, u64_to_f64(decision.remaining));
        self.set(base + 3, ns_to_f64(decision.retry_after_ns));
        self.set(base + 4, ns_to_f64(decision.reset_after_ns));
    }

    /// The hot path of a single limiter: remaining and the two waits of entry 0 (JavaScript
    /// knows the limit, and `allowed` is the returned status).
    #[inline]
    pub(crate) fn write_single(&self, decision: &Decision) {
        self.set(ENTRIES + 2, u64_to_f64(decision.remaining));
        self.set(ENTRIES + 3, ns_to_f64(decision.retry_after_ns));
        self.set(ENTRIES + 4, ns_to_f64(decision.reset_after_ns));
    }

    /// Reads the cost JavaScript gave for `dimension`: `None` for [`COST_NOT_GIVEN`].
    #[inline]
    pub(crate) fn given_cost(
        &self,
        dimension: usize,
    ) -> core::result::Result<Option<u64>, InvalidCost> {
        let value = self.get(COSTS + dimension);
        if value == COST_NOT_GIVEN {
            return Ok(None);
        }
        cost_from_f64(value)
            .map(Some)
            .ok_or(InvalidCost { dimension })
    }
}

impl InvalidCost {
    /// As the `RangeError`-coded error of a `#[napi]` method.
    pub(crate) fn to_napi(self) -> napi::Error {
        range_error(format!(
            "cost of dimension {} must be a non-negative safe integer",
            self.dimension
        ))
    }
}

/// The largest integer an `f64` holds exactly, 2^53 - 1 (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A cost from JavaScript: a non-negative integer no larger than 2^53 - 1, or `None`.
#[inline]
pub(crate) fn cost_from_f64(value: f64) -> Option<u64> {
    // NaN fails both comparisons.
    if !(0.0..=MAX_SAFE_INTEGER).contains(&value) {
        return None;
    }
    // In range, the conversion truncates exactly; comparing back finds fractions (cheaper
    // than `f64::fract`, which is a libm call here). Through `i64`, which x86-64 converts
    // in one instruction each way (the range fits it).
    let integer = value as i64;
    if integer as f64 == value {
        u64::try_from(integer).ok()
    } else {
        None
    }
}

/// The status for a decision.
#[inline]
pub(crate) fn status(decision: &Decision) -> u32 {
    if decision.allowed {
        ALLOWED
    } else {
        DENIED
    }
}
