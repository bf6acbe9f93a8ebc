//! [`cg_limiter`]: one bucket (GCRA or token bucket).

use crate::boundary::{free_handle, guard, into_handle, object, output, write};
use crate::clock::{cg_clock, TimeSource};
use crate::decision::{cg_decision, CG_FULL};
use crate::quota::cg_quota;
use crate::status::cg_status;
use cellgate::{Decision, Gcra, Refill, TokenBucket};
use core::ptr::NonNull;

/// Greedy (continuous) refill: one cost unit every `period / rate`, exactly; decides as GCRA.
pub const CG_REFILL_GREEDY: u32 = 0;
/// Interval refill: `rate_cost` units at once at every multiple of `period_ns` on the clock's
/// time line, never above the burst.
pub const CG_REFILL_INTERVAL: u32 = 1;

/// The refill mode for a `CG_REFILL_*` constant.
pub(crate) fn refill(refill: u32) -> Result<Refill, cg_status> {
    match refill {
        CG_REFILL_GREEDY => Ok(Refill::Greedy),
        CG_REFILL_INTERVAL => Ok(Refill::Interval),
        _ => Err(cg_status::InvalidArgument),
    }
}

/// A limiter for one bucket: GCRA, or a token bucket with greedy or interval refill. Lock-free
/// and safe to share between threads; free it with `cg_limiter_free`.
#[allow(non_camel_case_types)]
pub struct cg_limiter {
    cell: Cell,
    time: TimeSource,
}

enum Cell {
    Gcra(Gcra),
    TokenBucket(TokenBucket),
}

/// Each operation on either cell type, with the operation fixed at compile time (see
/// `keyed::operate` for why).
impl Cell {
    fn check(&self, now_ns: u64, cost: u64) -> Decision {
        match self {
            Self::Gcra(cell) => cell.check_at(now_ns, cost),
            Self::TokenBucket(cell) => cell.check_at(now_ns, cost),
        }
    }

    fn peek(&self, now_ns: u64, cost: u64) -> Decision {
        match self {
            Self::Gcra(cell) => cell.peek_at(now_ns, cost),
            Self::TokenBucket(cell) => cell.peek_at(now_ns, cost),
        }
    }

    fn force(&self, now_ns: u64, cost: u64) -> Decision {
        match self {
            Self::Gcra(cell) => cell.force_at(now_ns, cost),
            Self::TokenBucket(cell) => cell.force_at(now_ns, cost),
        }
    }

    fn refund(&self, now_ns: u64, cost: u64) -> Decision {
        match self {
            Self::Gcra(cell) => cell.refund_at(now_ns, cost),
            Self::TokenBucket(cell) => cell.refund_at(now_ns, cost),
        }
    }
}

/// Creates a GCRA limiter for `quota`, starting full; `*out` receives it.
///
/// `clock` is the clock read when an operation is given `CG_NOW`: NULL for the built-in
/// monotonic clock, or a manual clock (shared, not copied; see `cg_clock`).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`), or the quota's status (`CG_STATUS_ZERO_RATE`, ...).
///
/// # Safety
/// `clock` is NULL or a live clock; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_new_gcra(
    quota: cg_quota,
    clock: *const cg_clock,
    out: *mut *mut cg_limiter,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let quota = quota.to_core()?;
        let limiter = cg_limiter {
            cell: Cell::Gcra(Gcra::new(quota)),
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(limiter)) };
        Ok(())
    })
}

/// Creates a token bucket for `quota` with `refill` (`CG_REFILL_GREEDY` or
/// `CG_REFILL_INTERVAL`) holding `initial_tokens` (`CG_FULL` for a full bucket) as of `now_ns`
/// (or `CG_NOW`: the clock's time); `*out` receives it. `clock` as for `cg_limiter_new_gcra`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`), `CG_STATUS_INVALID_ARGUMENT` (unknown `refill`), the
/// quota's status, `CG_STATUS_INITIAL_FILL_ABOVE_BURST`.
///
/// # Safety
/// As `cg_limiter_new_gcra`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_new_token_bucket(
    quota: cg_quota,
    refill: u32,
    initial_tokens: u64,
    now_ns: u64,
    clock: *const cg_clock,
    out: *mut *mut cg_limiter,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let quota = quota.to_core()?;
        let refill = self::refill(refill)?;
        // SAFETY: NULL or a live clock, by the caller's contract.
        let time = unsafe { TimeSource::from_ptr(clock) };
        let mut builder = TokenBucket::builder(quota).refill(refill);
        if initial_tokens != CG_FULL {
            builder = builder.initial_tokens(initial_tokens);
        }
        let bucket = builder.build_at(time.resolve(now_ns))?;
        let limiter = cg_limiter {
            cell: Cell::TokenBucket(bucket),
            time,
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(limiter)) };
        Ok(())
    })
}

/// Frees a limiter. NULL does nothing.
///
/// # Safety
/// `limiter` is NULL or a limiter not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_free(limiter: *mut cg_limiter) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(limiter) }
}

/// Runs one operation and writes its decision to `out` (required when `out_required`).
///
/// # Safety
/// `limiter` NULL or live; `out` NULL or writable.
#[inline(always)]
unsafe fn operate(
    limiter: *const cg_limiter,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
    out_required: bool,
    decide: impl FnOnce(&Cell, u64, u64) -> Decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = match NonNull::new(out) {
            Some(out) => Some(out),
            None if out_required => return Err(cg_status::NullArgument),
            None => None,
        };
        let decision = decide(&limiter.cell, limiter.time.resolve(now_ns), cost);
        if let Some(out) = out {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { write(out, decision.into()) };
        }
        Ok(())
    })
}

/// Tests and consumes `cost` at `now_ns` (or `CG_NOW`), atomically: admitted only if the whole
/// cost fits; a denial changes nothing. Cost 0 is a pure peek; a cost above the burst is denied
/// with `retry_after_ns == CG_NEVER`. The decision goes to `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` or `out` is NULL (nothing is consumed).
///
/// # Safety
/// `limiter` is NULL or a live limiter; `out` is NULL or valid for writing a `cg_decision`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_check(
    limiter: *const cg_limiter,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(limiter, now_ns, cost, out, true, Cell::check) }
}

/// The decision `cg_limiter_check` would make, without consuming.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` or `out` is NULL.
///
/// # Safety
/// As `cg_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_peek(
    limiter: *const cg_limiter,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(limiter, now_ns, cost, out, true, Cell::peek) }
}

/// Consumes `cost` whether or not it fits, going into debt if needed (later requests wait
/// until it is repaid). `allowed` says whether it fitted. `out` may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` is NULL.
///
/// # Safety
/// As `cg_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_force(
    limiter: *const cg_limiter,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(limiter, now_ns, cost, out, false, Cell::force) }
}

/// Gives `cost` back (a request admitted but not performed), never above a full bucket.
/// `out` may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` is NULL.
///
/// # Safety
/// As `cg_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_refund(
    limiter: *const cg_limiter,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(limiter, now_ns, cost, out, false, Cell::refund) }
}

/// Makes the bucket full, forgetting all consumption and debt (it keeps the latest time seen).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` is NULL.
///
/// # Safety
/// `limiter` is NULL or a live limiter.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_reset(limiter: *const cg_limiter) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        match &unsafe { object(limiter) }?.cell {
            Cell::Gcra(cell) => cell.reset(),
            Cell::TokenBucket(cell) => cell.reset(),
        }
        Ok(())
    })
}

/// The limiter's quota, into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` or `out` is NULL.
///
/// # Safety
/// `limiter` is NULL or a live limiter; `out` is NULL or valid for writing a `cg_quota`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_quota(
    limiter: *const cg_limiter,
    out: *mut cg_quota,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = output(out)?;
        let quota = match &limiter.cell {
            Cell::Gcra(cell) => cell.quota(),
            Cell::TokenBucket(cell) => cell.quota(),
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_quota::from_core(quota)) };
        Ok(())
    })
}
