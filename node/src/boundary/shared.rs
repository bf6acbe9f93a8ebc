//! The `Float64Array` that a JavaScript limiter shares with its native half.
//!
//! An operation writes its decision here and returns only a status, so that JavaScript builds
//! the decision object itself (a literal costs a few nanoseconds; an object built through
//! Node-API, hundreds). Policies also read their costs from here, instead of converting a
//! JavaScript array on every call.
//!
//! Layout, in `f64` slots (`node/lib/boundary.js` holds the same numbers and checks them
//! against [`layout`] when it loads):
//!
//! | slots | what |
//! |---|---|
//! | `BINDING` | the binding entry's index (policies); after [`MISSING_COST`], the dimension without a cost |
//! | `COUNT` | how many entries follow |
//! | `STATUS` | the status of the last operation ([`ALLOWED`], [`DENIED`], [`MISSING_COST`]) |
//! | `REASON` | why: 0 the buckets decided, 1 a full table denied, 2 a full table admitted untracked, 3-5 a store's outage policy (failed open, failed closed, the local fallback) |
//! | `OP` | input: the operation of the fast function (the index into [`OPS`]) |
//! | `SUMMARY ..` | the limiter's decision (core's `LimiterDecision::decision`: the binding quota's numbers, the limiter's `allowed`, no wait when allowed), as an entry |
//! | `ENTRIES + 5 i ..` | entry `i` (quota `i`): allowed (0 or 1), limit, remaining, retry-after ns, reset-after ns |
//! | `COSTS + d` | input: the cost of dimension `d`, or [`COST_NOT_GIVEN`] |
//! | `HEADER_SHAPE` | output of the header function (and of a rendering fast call): the shape of its rendering, or -1 |
//! | `RENDER_STYLE` | input, read and reset to [`NO_RENDER`] by every fast call: the style index in which to render the decision's headers in the same call, or [`NO_RENDER`] |
//! | `RENDER_NOW_S` | input: the wall clock (Unix seconds) of that rendering |
//!
//! A call's costs are completed by core's rule ([`cellgate::resolve_costs`],
//! [`cellgate::resolve_settle_costs`]), not here nor in JavaScript: JavaScript writes
//! [`COST_NOT_GIVEN`] for a dimension its caller named no cost for, and the operation answers
//! [`MISSING_COST`] (charging nothing) when the rule needs one.
//!
//! Nanosecond values are exact below 2^53 (104 days); [`cellgate::NEVER`] is written as
//! `Infinity`.

use cellgate::{Decision, KeyedDecision, LimiterDecision, Op, Reason, NEVER};
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use std::ptr::NonNull;

use crate::boundary::range_error;

/// Returned when the operation was denied (for `refund`/`force`: the bucket is in debt).
pub const DENIED: u32 = 0;
/// Returned when the operation was allowed.
pub const ALLOWED: u32 = 1;
/// Returned when a limiter of several dimensions was given no cost for one (written into
/// `BINDING`); nothing was charged.
pub const MISSING_COST: u32 = 3;

/// What `RENDER_STYLE` holds when a fast call renders no headers (its value between calls).
pub const NO_RENDER: f64 = -1.0;

/// What JavaScript writes into a cost slot for a dimension its caller named no cost for (no
/// cost is negative, so it cannot be mistaken for one).
pub const COST_NOT_GIVEN: f64 = -1.0;

/// The binding entry's index.
pub(crate) const BINDING: usize = 0;
/// The number of entries written.
pub(crate) const COUNT: usize = 1;
/// The status of a `reserve`.
pub(crate) const STATUS: usize = 2;
/// Why the decision was made (core's `Reason`, as its index in [`REASONS`]).
pub(crate) const REASON: usize = 3;
/// The operation the fast function runs (its index in [`OPS`]).
pub(crate) const OP: usize = 4;
/// The limiter's decision, as an entry.
pub(crate) const SUMMARY: usize = 5;
/// The first entry's first slot.
pub(crate) const ENTRIES: usize = SUMMARY + ENTRY_SLOTS;
/// Slots per entry.
pub(crate) const ENTRY_SLOTS: usize = 5;
/// The first cost slot (after room for `MAX_POLICY_QUOTAS` entries).
pub(crate) const COSTS: usize = ENTRIES + ENTRY_SLOTS * cellgate::MAX_POLICY_QUOTAS;
/// Output of the header function: the shape index of its last rendering, or -1 for a shape
/// beyond those kept (see `crate::headers::HeaderShapes`).
pub(crate) const HEADER_SHAPE: usize = COSTS + cellgate::MAX_POLICY_QUOTAS;
/// Input of a fast call: the style index (of `StyleName::ALL`) in which the call also
/// renders the decision's headers, returning their values (the middleware's check), or
/// [`NO_RENDER`]. Each fast call reads it and resets it to [`NO_RENDER`] ([`Shared::take_render`]).
pub(crate) const RENDER_STYLE: usize = HEADER_SHAPE + 1;
/// Input of a rendering fast call: the wall clock, in Unix seconds, of the styles that show it.
pub(crate) const RENDER_NOW_S: usize = RENDER_STYLE + 1;
/// The slots the array must have at least.
pub(crate) const LEN: usize = RENDER_NOW_S + 1;

/// Core's operations, in the order of the numbers JavaScript writes into `OP`.
pub(crate) const OPS: [Op; 5] = [Op::Check, Op::Peek, Op::Force, Op::Refund, Op::Reset];
/// Core's reasons, in the order of the numbers written into `REASON`.
pub(crate) const REASONS: [Reason; 6] = [
    Reason::Limit,
    Reason::TableFull,
    Reason::Untracked,
    Reason::FailedOpen,
    Reason::FailedClosed,
    Reason::Fallback,
];

/// The layout, for the JavaScript layer to check its constants against: `[BINDING, COUNT,
/// STATUS, REASON, OP, SUMMARY, ENTRIES, ENTRY_SLOTS, COSTS, HEADER_SHAPE, RENDER_STYLE,
/// RENDER_NOW_S, LEN, DENIED, ALLOWED, MISSING_COST, COST_NOT_GIVEN, NO_RENDER]`.
#[napi_derive::napi(js_name = "sharedLayout")]
pub fn layout() -> Vec<f64> {
    [
        BINDING,
        COUNT,
        STATUS,
        REASON,
        OP,
        SUMMARY,
        ENTRIES,
        ENTRY_SLOTS,
        COSTS,
        HEADER_SHAPE,
        RENDER_STYLE,
        RENDER_NOW_S,
        LEN,
    ]
    .iter()
    .map(|&slot| slot as f64)
    .chain([DENIED, ALLOWED, MISSING_COST].map(f64::from))
    .chain([COST_NOT_GIVEN, NO_RENDER])
    .collect()
}

/// Core's operations and reasons by name, in slot order: `{ ops, reasons }` (JavaScript
/// checks its own lists against these when it loads).
#[napi_derive::napi(object)]
pub struct Names {
    /// `["check", "peek", "force", "refund", "reset"]`.
    pub ops: Vec<String>,
    /// `["limit", "table_full", "untracked", "failed_open", "failed_closed", "fallback"]`
    /// (core's `Reason::as_str`).
    pub reasons: Vec<String>,
}

/// The names of [`OPS`] and [`REASONS`].
#[napi_derive::napi(js_name = "sharedNames")]
pub fn names() -> Names {
    Names {
        ops: ["check", "peek", "force", "refund", "reset"]
            .map(String::from)
            .to_vec(),
        reasons: REASONS.map(|reason| reason.as_str().to_owned()).to_vec(),
    }
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
    } else if (0.0..18_446_744_073_709_551_616.0).contains(&value) {
        // In range (so finite, and not NaN: every comparison with NaN is false), the
        // truncating cast is exact for an integer and changes any other value, so the round
        // trip tests `fract() == 0` without `trunc`, which x86-64 without SSE4.1 calls in
        // libm (4 % of a header rendering, measured).
        let integer = value as u64;
        (integer as f64 == value).then_some(integer)
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
        let shared = Self {
            _array: array,
            data,
            len,
        };
        shared.set(RENDER_STYLE, NO_RENDER);
        Ok(shared)
    }

    /// The rendering a fast call was asked for, `(style index, now in Unix seconds)`, or
    /// `None` ([`NO_RENDER`]); resets `RENDER_STYLE` to [`NO_RENDER`], so that a request is
    /// answered by one call only. The values are not checked here: the fast call resolves
    /// the style before it decides (`crate::headers::named_style`: an index that is no
    /// style is its `RangeError`, and nothing is charged).
    #[inline]
    pub(crate) fn take_render(&self) -> Option<(f64, f64)> {
        let style = self.get(RENDER_STYLE);
        if style == NO_RENDER {
            return None;
        }
        self.set(RENDER_STYLE, NO_RENDER);
        Some((style, self.get(RENDER_NOW_S)))
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
        self.write_at(ENTRIES + ENTRY_SLOTS * index, decision);
    }

    /// Writes a decision's five numbers from slot `base`.
    #[inline]
    fn write_at(&self, base: usize, decision: &Decision) {
        self.set(base, if decision.allowed { 1.0 } else { 0.0 });
        self.set(base + 1, u64_to_f64(decision.limit));
        self.set(base + 2, u64_to_f64(decision.remaining));
        self.set(base + 3, ns_to_f64(decision.retry_after_ns));
        self.set(base + 4, ns_to_f64(decision.reset_after_ns));
    }

    /// Writes a limiter's decision: every quota's entry, the count, the binding quota, the
    /// reason and the status.
    #[inline]
    pub(crate) fn write_decision(&self, decision: &LimiterDecision) {
        self.write_at(SUMMARY, &decision.decision());
        let entries = decision.decisions();
        for (index, entry) in entries.iter().enumerate() {
            self.write_entry(index, entry);
        }
        self.set(COUNT, entries.len() as f64);
        self.set(BINDING, decision.binding as f64);
        self.set(REASON, reason_index(decision.reason) as f64);
        self.set(STATUS, f64::from(status(decision.allowed)));
    }

    /// Writes the decision of a limiter with one quota (core's [`cellgate::Limiter::apply_one_at`]):
    /// the summary (the decision, no wait when allowed: [`LimiterDecision::decision`]'s rule),
    /// entry 0, the reason and the status. `COUNT` (1) and `BINDING` (0) are the same for every
    /// decision of such a limiter and are written once ([`Self::write_single_shape`]).
    #[inline]
    pub(crate) fn write_single(&self, keyed: &KeyedDecision) {
        let decision = keyed.decision;
        self.write_entry(0, &decision);
        let mut summary = decision;
        if summary.allowed {
            summary.retry_after_ns = 0;
        }
        self.write_at(SUMMARY, &summary);
        self.set(REASON, reason_index(keyed.reason) as f64);
        self.set(STATUS, f64::from(status(decision.allowed)));
    }

    /// Writes what every decision of a one-quota limiter shares: `COUNT` 1, `BINDING` 0.
    pub(crate) fn write_single_shape(&self) {
        self.set(COUNT, 1.0);
        self.set(BINDING, 0.0);
    }

    /// The operation JavaScript wrote into `OP`, if it is one.
    #[inline]
    pub(crate) fn op(&self) -> Option<Op> {
        let value = self.get(OP);
        // In range: the conversion truncates exactly; comparing back refuses a fraction.
        let index = value as usize;
        if index as f64 == value {
            OPS.get(index).copied()
        } else {
            None
        }
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

/// The number of `reason` in [`REASONS`].
#[inline]
fn reason_index(reason: Reason) -> usize {
    REASONS.iter().position(|&each| each == reason).unwrap_or(0)
}

/// The status for a decision.
#[inline]
pub(crate) fn status(allowed: bool) -> u32 {
    if allowed {
        ALLOWED
    } else {
        DENIED
    }
}
