//! [`cg_cell`]: one bucket (GCRA or token bucket), the C face of core's `Gcra` and `TokenBucket`.

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

/// One bucket (a cell): GCRA, or a token bucket with greedy or interval refill. Lock-free
/// and safe to share between threads; free it with `cg_cell_free`.
#[allow(non_camel_case_types)]
pub struct cg_cell {
    bucket: Bucket,
    time: TimeSource,
}

enum Bucket {
    Gcra(Gcra),
    TokenBucket(TokenBucket),
}

/// Each operation on either cell type, with the operation fixed at compile time (see
/// `keyed::operate` for why).
impl Bucket {
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

/// Creates a GCRA cell for `quota`, starting full; `*out` receives it.
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
pub unsafe extern "C" fn cg_cell_new_gcra(
    quota: cg_quota,
    clock: *const cg_clock,
    out: *mut *mut cg_cell,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let quota = quota.to_core()?;
        let cell = cg_cell {
            bucket: Bucket::Gcra(Gcra::new(quota)),
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(cell)) };
        Ok(())
    })
}

/// Creates a token bucket for `quota` with `refill` (`CG_REFILL_GREEDY` or
/// `CG_REFILL_INTERVAL`) holding `initial_tokens` (`CG_FULL` for a full bucket) as of `now_ns`
/// (or `CG_NOW`: the clock's time); `*out` receives it. `clock` as for `cg_cell_new_gcra`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`), `CG_STATUS_INVALID_ARGUMENT` (unknown `refill`), the
/// quota's status, `CG_STATUS_INITIAL_FILL_ABOVE_BURST`.
///
/// # Safety
/// As `cg_cell_new_gcra`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_new_token_bucket(
    quota: cg_quota,
    refill: u32,
    initial_tokens: u64,
    now_ns: u64,
    clock: *const cg_clock,
    out: *mut *mut cg_cell,
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
        let cell = cg_cell {
            bucket: Bucket::TokenBucket(bucket),
            time,
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(cell)) };
        Ok(())
    })
}

/// Frees a cell. NULL does nothing.
///
/// # Safety
/// `cell` is NULL or a cell not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_free(cell: *mut cg_cell) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(cell) }
}

/// Runs one operation and writes its decision to `out` (required when `out_required`).
///
/// # Safety
/// `cell` NULL or live; `out` NULL or writable.
#[inline(always)]
unsafe fn operate(
    cell: *const cg_cell,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
    out_required: bool,
    decide: impl FnOnce(&Bucket, u64, u64) -> Decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live cell, by the caller's contract.
        let cell = unsafe { object(cell) }?;
        let out = match NonNull::new(out) {
            Some(out) => Some(out),
            None if out_required => return Err(cg_status::NullArgument),
            None => None,
        };
        let decision = decide(&cell.bucket, cell.time.resolve(now_ns), cost);
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
/// `CG_STATUS_NULL_ARGUMENT` when `cell` or `out` is NULL (nothing is consumed).
///
/// # Safety
/// `cell` is NULL or a live cell; `out` is NULL or valid for writing a `cg_decision`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_check(
    cell: *const cg_cell,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(cell, now_ns, cost, out, true, Bucket::check) }
}

/// The decision `cg_cell_check` would make, without consuming.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `cell` or `out` is NULL.
///
/// # Safety
/// As `cg_cell_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_peek(
    cell: *const cg_cell,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(cell, now_ns, cost, out, true, Bucket::peek) }
}

/// Consumes `cost` whether or not it fits, going into debt if needed (later requests wait
/// until it is repaid). `allowed` says whether it fitted. `out` may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `cell` is NULL.
///
/// # Safety
/// As `cg_cell_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_force(
    cell: *const cg_cell,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(cell, now_ns, cost, out, false, Bucket::force) }
}

/// Gives `cost` back (a request admitted but not performed), never above a full bucket.
/// `out` may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `cell` is NULL.
///
/// # Safety
/// As `cg_cell_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_refund(
    cell: *const cg_cell,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { operate(cell, now_ns, cost, out, false, Bucket::refund) }
}

/// Makes the bucket full, forgetting all consumption and debt (it keeps the latest time seen).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `cell` is NULL.
///
/// # Safety
/// `cell` is NULL or a live cell.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_reset(cell: *const cg_cell) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live cell, by the caller's contract.
        match &unsafe { object(cell) }?.bucket {
            Bucket::Gcra(cell) => cell.reset(),
            Bucket::TokenBucket(cell) => cell.reset(),
        }
        Ok(())
    })
}

/// The cell's quota, into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `cell` or `out` is NULL.
///
/// # Safety
/// `cell` is NULL or a live cell; `out` is NULL or valid for writing a `cg_quota`.
#[no_mangle]
pub unsafe extern "C" fn cg_cell_quota(cell: *const cg_cell, out: *mut cg_quota) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live cell, by the caller's contract.
        let cell = unsafe { object(cell) }?;
        let out = output(out)?;
        let quota = match &cell.bucket {
            Bucket::Gcra(cell) => cell.quota(),
            Bucket::TokenBucket(cell) => cell.quota(),
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_quota::from_core(quota)) };
        Ok(())
    })
}
