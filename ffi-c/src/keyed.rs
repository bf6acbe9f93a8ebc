//! [`cg_keyed_limiter`]: one bucket per key in a fixed table.

use crate::boundary::{free_handle, guard, into_handle, object, output, slice, write};
use crate::cell::refill;
use crate::clock::{cg_clock, TimeSource};
use crate::decision::cg_decision;
use crate::quota::cg_quota;
use crate::status::cg_status;
use cellgate::{
    check_max_keys, group_count_for, Decision, KeyedLimiter, KeyedStats, NoClock, Seed, SlotGroup,
    TableFull,
};
use cellgate_host::{in_process_limiter, TableSlots};
use core::ptr::NonNull;

/// Counters of a keyed limiter (a relaxed snapshot; exact once threads are quiet).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct cg_keyed_stats {
    /// Keys holding a slot now.
    pub live_keys: u64,
    /// Slots taken over from idle keys (whose bucket was full again).
    pub reclaimed: u64,
    /// New keys that found no room (both their windows held only live keys): refused with
    /// `CG_STATUS_TABLE_FULL` by a keyed limiter, answered under its `on_full` by a
    /// `cg_limiter`.
    pub rejected_full: u64,
    /// Slots in the table (the most keys it can ever hold).
    pub slot_count: u64,
    /// New keys admitted without a slot (`CG_ON_FULL_ALLOW_UNTRACKED`; always 0 for a keyed
    /// limiter).
    pub admitted_untracked: u64,
}

impl cg_keyed_stats {
    /// The counters of a table of `slot_count` slots.
    pub(crate) fn from_core(stats: KeyedStats, slot_count: usize) -> Self {
        Self {
            live_keys: stats.live_keys,
            reclaimed: stats.reclaimed,
            rejected_full: stats.rejected_full,
            slot_count: u64::try_from(slot_count).unwrap_or(u64::MAX),
            admitted_untracked: stats.admitted_untracked,
        }
    }
}

/// A limiter with one bucket per key (bytes of any length, including empty and with NUL
/// bytes), in a table of fixed capacity allocated at creation: no operation allocates. Keys
/// are hashed with SipHash-1-3 under a random per-table secret, so hash flooding does not
/// degrade it. Lock-free for existing keys; safe to share between threads.
///
/// A key the table does not hold is a full bucket. Idle keys (full again) are reclaimed when a
/// new key needs their slot, which changes no decision. When a new key finds only live keys
/// in both its windows, the operation fails with `CG_STATUS_TABLE_FULL`; no live key is
/// evicted.
#[allow(non_camel_case_types)]
pub struct cg_keyed_limiter {
    table: Table,
    time: TimeSource,
}

/// The largest `max_keys` of a keyed limiter or policy, as in every runtime (2^27: about
/// 4.3 GB per quota); more is `CG_STATUS_INVALID_MAX_KEYS`.
pub const CG_MAX_MAX_KEYS: usize = 134_217_728;
/// The `max_keys` the other runtimes use when none is given (about 4.3 MB per quota).
pub const CG_DEFAULT_MAX_KEYS: usize = 100_000;

const _: () = assert!(CG_MAX_MAX_KEYS as u64 == cellgate::MAX_MAX_KEYS);
const _: () = assert!(CG_DEFAULT_MAX_KEYS == cellgate::DEFAULT_MAX_KEYS);

/// `max_keys` from C, by core's rule (`check_max_keys`): 1 to `CG_MAX_MAX_KEYS`, else
/// `CG_STATUS_INVALID_MAX_KEYS`.
pub(crate) fn max_keys(max_keys: usize) -> Result<usize, cg_status> {
    Ok(check_max_keys(u64::try_from(max_keys).unwrap_or(u64::MAX))?)
}

/// Checks that `tables` tables of `max_keys` keys (as core's `group_count_for` sizes them) are
/// a representable size: `CG_STATUS_INVALID_ARGUMENT` if not. Whether the system can give
/// them is `TableSlots::heap`'s to say (through `in_process_limiter`, `in_process_policy`), as
/// `CG_STATUS_OUT_OF_MEMORY`.
pub(crate) fn check_table_size(max_keys: usize, tables: usize) -> Result<(), cg_status> {
    group_count_for(max_keys)
        .checked_mul(core::mem::size_of::<SlotGroup>())
        .and_then(|bytes| bytes.checked_mul(tables))
        .filter(|&bytes| bytes <= isize::MAX.unsigned_abs())
        .map(|_| ())
        .ok_or(cg_status::InvalidArgument)
}

/// Creates a keyed limiter: every key gets `quota`, refilled per `refill`
/// (`CG_REFILL_GREEDY`, which is GCRA, or `CG_REFILL_INTERVAL`), in a table sized for
/// `max_keys` keys live at once (1 to `CG_MAX_MAX_KEYS`; `max_keys × 4/3` slots, rounded up to whole
/// 192-byte groups of 8 slots: about 32 bytes per key, at least 16 slots). Refusals
/// with `CG_STATUS_TABLE_FULL` begin near 70 % of `max_keys` live keys, and with `max_keys`
/// live about 0.1 % of new keys get it: size it above the live keys you expect (idle keys are reclaimed and do not count). `clock` as for
/// `cg_cell_new_gcra`. `*out` receives the limiter.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`), `CG_STATUS_INVALID_ARGUMENT` (unknown `refill`, or a
/// table size that overflows), `CG_STATUS_INVALID_MAX_KEYS` (`max_keys` 0 or above
/// `CG_MAX_MAX_KEYS`), `CG_STATUS_OUT_OF_MEMORY`, the quota's status.
///
/// # Safety
/// `clock` is NULL or a live clock; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_new(
    quota: cg_quota,
    refill: u32,
    max_keys: usize,
    clock: *const cg_clock,
    out: *mut *mut cg_keyed_limiter,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let quota = quota.to_core()?;
        let refill = self::refill(refill)?;
        let max_keys = self::max_keys(max_keys)?;
        check_table_size(max_keys, 1)?;
        let table = in_process_limiter(quota, refill, max_keys, Seed::random(), NoClock)
            .map_err(|_| cg_status::OutOfMemory)?;
        let limiter = cg_keyed_limiter {
            table,
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(limiter)) };
        Ok(())
    })
}

/// Frees a keyed limiter and its table. NULL does nothing.
///
/// # Safety
/// `limiter` is NULL or a keyed limiter not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_free(limiter: *mut cg_keyed_limiter) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(limiter) }
}

/// The table type behind a keyed limiter: its slots in an anonymous mapping
/// (`TableSlots::heap`), committed only as keys touch them.
type Table = KeyedLimiter<TableSlots, NoClock>;

/// The shared body of the keyed operations. `decide` is a generic closure, so each exported
/// function calls its core operation directly, as a Rust caller's code does (an operation
/// passed as a runtime value here cost about 20 ns per check, measured with `make bench-c`).
///
/// # Safety
/// `limiter` NULL or live; `key` NULL or `key_len` readable bytes; `out` NULL or writable.
#[inline(always)]
unsafe fn operate(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    out: *mut cg_decision,
    out_required: bool,
    decide: impl FnOnce(&Table, &[u8], u64) -> Result<Decision, TableFull>,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        let out = match NonNull::new(out) {
            Some(out) => Some(out),
            None if out_required => return Err(cg_status::NullArgument),
            None => None,
        };
        let now_ns = limiter.time.resolve(now_ns);
        let decision =
            decide(&limiter.table, key, now_ns).map_err(|TableFull| cg_status::TableFull)?;
        if let Some(out) = out {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { write(out, decision.into()) };
        }
        Ok(())
    })
}

/// Tests and consumes `cost` for the key (`key_len` bytes at `key`; NULL with length 0 is the
/// empty key) at `now_ns` (or `CG_NOW`), atomically; see `cg_cell_check`. The decision
/// goes to `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, `out`, or `key` NULL with a non-zero length);
/// `CG_STATUS_TABLE_FULL` when the key is new, the cost would be admitted, and both its windows
/// hold only live keys (answer 429 or 503; nothing was consumed).
///
/// # Safety
/// `limiter` is NULL or a live keyed limiter; `key` is NULL or points to `key_len` readable
/// bytes; `out` is NULL or valid for writing a `cg_decision`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_check(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        operate(
            limiter,
            key,
            key_len,
            now_ns,
            out,
            true,
            |table, key, now_ns| table.check_at(key, now_ns, cost),
        )
    }
}

/// The decision `cg_keyed_limiter_check` would make, without consuming or inserting.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, `out`, or `key` NULL with a non-zero length).
///
/// # Safety
/// As `cg_keyed_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_peek(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        operate(
            limiter,
            key,
            key_len,
            now_ns,
            out,
            true,
            |table, key, now_ns| Ok(table.peek_at(key, now_ns, cost)),
        )
    }
}

/// Consumes `cost` for the key whether or not it fits (debt); see `cg_cell_force`. `out`
/// may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, or `key` NULL with a non-zero length);
/// `CG_STATUS_TABLE_FULL` when the key is new and cannot be placed.
///
/// # Safety
/// As `cg_keyed_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_force(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        operate(
            limiter,
            key,
            key_len,
            now_ns,
            out,
            false,
            |table, key, now_ns| table.force_at(key, now_ns, cost),
        )
    }
}

/// Gives `cost` back to the key, never above a full bucket (an absent key is already full).
/// `out` may be NULL.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, or `key` NULL with a non-zero length).
///
/// # Safety
/// As `cg_keyed_limiter_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_refund(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    cost: u64,
    out: *mut cg_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        operate(
            limiter,
            key,
            key_len,
            now_ns,
            out,
            false,
            |table, key, now_ns| Ok(table.refund_at(key, now_ns, cost)),
        )
    }
}

/// Makes the key's bucket full at `now_ns` (or `CG_NOW`); its slot becomes reclaimable.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, or `key` NULL with a non-zero length).
///
/// # Safety
/// `limiter` is NULL or a live keyed limiter; `key` is NULL or points to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_reset(
    limiter: *const cg_keyed_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        limiter.table.reset_at(key, limiter.time.resolve(now_ns));
        Ok(())
    })
}

/// The quota every key gets, into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` or `out` is NULL.
///
/// # Safety
/// `limiter` is NULL or a live keyed limiter; `out` is NULL or valid for writing a `cg_quota`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_quota(
    limiter: *const cg_keyed_limiter,
    out: *mut cg_quota,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = output(out)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_quota::from_core(limiter.table.quota())) };
        Ok(())
    })
}

/// The table's counters, into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `limiter` or `out` is NULL.
///
/// # Safety
/// `limiter` is NULL or a live keyed limiter; `out` is NULL or valid for writing a
/// `cg_keyed_stats`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_limiter_stats(
    limiter: *const cg_keyed_limiter,
    out: *mut cg_keyed_stats,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = output(out)?;
        let stats = cg_keyed_stats::from_core(limiter.table.stats(), limiter.table.slot_count());
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, stats) };
        Ok(())
    })
}
