//! Policies: several named quotas over dimensions, decided all-or-nothing, with reserve and
//! settle; one per client ([`cg_policy`]) or one per key ([`cg_keyed_policy`]).

use crate::boundary::{buffer, free_handle, guard, into_handle, object, output, slice, write};
use crate::clock::{cg_clock, TimeSource};
use crate::decision::cg_decision;
use crate::headers::render_lines;
use crate::keyed::{check_table_size, max_keys as checked_max_keys};
use crate::quota::{cg_quota, text};
use crate::status::cg_status;
use cellgate::{
    check_names, KeyedPolicy, NoClock, Policy, PolicyDecision, PolicyEntry, PolicyHeader,
    Reservation, Reserved, Seed, MAX_POLICY_QUOTAS,
};
use cellgate_host::{in_process_policy, TableSlots};
use core::ffi::c_char;
use core::ptr::NonNull;
use std::sync::{Mutex, PoisonError};

/// The most entries one policy holds (and so the most dimensions).
pub const CG_MAX_POLICY_QUOTAS: usize = 8;
const _: () = assert!(CG_MAX_POLICY_QUOTAS == MAX_POLICY_QUOTAS);

/// One entry of a policy: a named quota charged the cost of one dimension.
///
/// Dimensions are the costs a call gives, numbered from 0: `requests` and `tokens` are two;
/// `10/second` and `1000/day` both on `requests` are two entries on dimension 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_policy_entry {
    /// The entry's name, as rate-limit headers show it; printable ASCII. Copied.
    pub name: *const c_char,
    /// The name's length in bytes, or `CG_NUL_TERMINATED`.
    pub name_len: usize,
    /// The entry's quota.
    pub quota: cg_quota,
    /// Which of the costs given to each call this entry is charged.
    pub dimension: usize,
}

/// A policy's decision: whether every entry admitted (all charged, or none), each entry's
/// decision, and the binding one.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct cg_policy_decision {
    /// Whether every entry admitted its cost (all were charged); if not, none was.
    pub allowed: bool,
    /// The binding entry's index: when denied, the refusing entry with the longest wait;
    /// when allowed, the entry with the least remaining (ties: the longest reset).
    pub binding: usize,
    /// The binding entry's decision with the policy's `allowed` (use it for a 429's
    /// `Retry-After`).
    pub decision: cg_decision,
    /// How many entries `decisions` holds (the policy's entry count).
    pub count: usize,
    /// Every entry's decision, in entry order; entries past `count` are zero.
    pub decisions: [cg_decision; CG_MAX_POLICY_QUOTAS],
}

impl From<PolicyDecision> for cg_policy_decision {
    fn from(decision: PolicyDecision) -> Self {
        let mut decisions = [cg_decision::default(); CG_MAX_POLICY_QUOTAS];
        for (dst, src) in decisions.iter_mut().zip(decision.decisions()) {
            *dst = (*src).into();
        }
        Self {
            allowed: decision.allowed,
            binding: decision.binding,
            decision: decision.decision().into(),
            count: decision.decisions().len(),
            decisions,
        }
    }
}

/// What a policy charged for a reservation, to settle once the actual costs are known. Made
/// by `cg_policy_reserve` / `cg_keyed_policy_reserve`; free it with `cg_reservation_free`
/// after settling. Freeing one unsettled leaves its estimate charged.
#[allow(non_camel_case_types)]
pub struct cg_reservation {
    /// The address of the policy that made it, to refuse settling it on another.
    owner: usize,
    /// `None` once settled. A mutex, so that racing settles of one reservation cannot both
    /// apply it (reservations are per request, never on a hot path).
    reservation: Mutex<Option<Reservation>>,
}

/// A policy for one client: up to `CG_MAX_POLICY_QUOTAS` named quotas over dimensions,
/// decided all-or-nothing without locks. Safe to share between threads.
#[allow(non_camel_case_types)]
pub struct cg_policy {
    policy: Policy<Box<str>, NoClock>,
    time: TimeSource,
}

/// A policy per key: one table per entry (each sized for `max_keys`), the key hashed once per
/// call. Safe to share between threads.
#[allow(non_camel_case_types)]
pub struct cg_keyed_policy {
    policy: KeyedPolicy<Box<str>, NoClock, TableSlots>,
    time: TimeSource,
}

/// Validates and copies C policy entries: the names by core's `check_names` (each non-empty,
/// printable ASCII, unique), then each quota and the dimensions.
///
/// # Safety
/// `entries` is NULL or `count` readable entries with readable names.
unsafe fn entries(
    entries: *const cg_policy_entry,
    count: usize,
) -> Result<Vec<PolicyEntry<Box<str>>>, cg_status> {
    if count == 0 {
        return Err(cg_status::EmptyPolicy);
    }
    if count > CG_MAX_POLICY_QUOTAS {
        return Err(cg_status::TooManyQuotas);
    }
    // SAFETY: NULL or `count` readable entries, by the caller's contract.
    let entries = unsafe { slice(entries, count) }?;
    let mut names = Vec::with_capacity(entries.len());
    for entry in entries {
        // SAFETY: the name is readable as its length says, by the caller's contract (NULL
        // with length 0 is the empty name).
        names.push(match unsafe { text(entry.name, entry.name_len) } {
            Ok(name) => name,
            Err(cg_status::InvalidUtf8) => return Err(cg_status::InvalidName),
            Err(status) => return Err(status),
        });
    }
    check_names(&names)?;
    let mut used = [false; CG_MAX_POLICY_QUOTAS];
    let mut copied = Vec::with_capacity(entries.len());
    for (entry, name) in entries.iter().zip(names) {
        let quota = entry.quota.to_core()?;
        *used
            .get_mut(entry.dimension)
            .ok_or(cg_status::InvalidDimension)? = true;
        copied.push(PolicyEntry {
            name: Box::from(name),
            quota,
            dimension: entry.dimension,
        });
    }
    // Dimensions 0..n-1, each used: a skipped one would be a cost that charges nothing.
    let dimensions = used
        .iter()
        .rposition(|&used| used)
        .map_or(0, |last| last + 1);
    if used.iter().take(dimensions).any(|&used| !used) {
        return Err(cg_status::InvalidDimension);
    }
    Ok(copied)
}

/// Creates a policy over `count` entries (names are copied); `clock` as for
/// `cg_cell_new_gcra`. Each call then gives one cost per dimension. `*out` receives it.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`, `entries` with a non-zero count, a name with a non-zero
/// length or `CG_NUL_TERMINATED`), `CG_STATUS_EMPTY_POLICY`, `CG_STATUS_TOO_MANY_QUOTAS`,
/// `CG_STATUS_EMPTY_NAME`, `CG_STATUS_INVALID_NAME`, `CG_STATUS_DUPLICATE_NAME` (two entries
/// of the same name), `CG_STATUS_INVALID_DIMENSION`, a quota's status. Names are checked as in
/// every runtime (core's `check_names`), before the quotas and dimensions.
///
/// # Safety
/// `entries` is NULL or points to `count` readable entries whose names are readable as their
/// lengths say; `clock` is NULL or a live clock; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_new(
    entries: *const cg_policy_entry,
    count: usize,
    clock: *const cg_clock,
    out: *mut *mut cg_policy,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: forwarded from the caller's contract.
        let entries = unsafe { self::entries(entries, count) }?;
        let policy = cg_policy {
            policy: Policy::new(entries)?,
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(policy)) };
        Ok(())
    })
}

/// Creates a keyed policy over `count` entries, with room for `max_keys` live keys in each
/// entry's table (see `cg_keyed_limiter_new`); otherwise as `cg_policy_new`.
///
/// # Errors
/// As `cg_policy_new`, and `CG_STATUS_INVALID_MAX_KEYS` (`max_keys` 0 or above
/// `CG_MAX_MAX_KEYS`), `CG_STATUS_INVALID_ARGUMENT` (a table size that overflows),
/// `CG_STATUS_OUT_OF_MEMORY`.
///
/// # Safety
/// As `cg_policy_new`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_new(
    entries: *const cg_policy_entry,
    count: usize,
    max_keys: usize,
    clock: *const cg_clock,
    out: *mut *mut cg_keyed_policy,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: forwarded from the caller's contract.
        let entries = unsafe { self::entries(entries, count) }?;
        let max_keys = checked_max_keys(max_keys)?;
        check_table_size(max_keys, entries.len())?;
        let policy = cg_keyed_policy {
            policy: in_process_policy(entries, max_keys, Seed::random(), NoClock)?,
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(policy)) };
        Ok(())
    })
}

/// Frees a policy. NULL does nothing.
///
/// # Safety
/// `policy` is NULL or a policy not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_free(policy: *mut cg_policy) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(policy) }
}

/// Frees a keyed policy and its tables. NULL does nothing.
///
/// # Safety
/// `policy` is NULL or a keyed policy not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_free(policy: *mut cg_keyed_policy) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(policy) }
}

/// Frees a reservation (settled or not: an unsettled one leaves its estimate charged). NULL
/// does nothing.
///
/// # Safety
/// `reservation` is NULL or a reservation not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_reservation_free(reservation: *mut cg_reservation) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(reservation) }
}

/// A policy operation other than reserve and settle.
#[derive(Clone, Copy)]
enum PolicyOp {
    Check,
    Peek,
    Force,
    Refund,
}

/// The decision output of a policy operation: required for check and peek.
fn decision_output(
    out: *mut cg_policy_decision,
    op: PolicyOp,
) -> Result<Option<NonNull<cg_policy_decision>>, cg_status> {
    match (NonNull::new(out), op) {
        (Some(out), _) => Ok(Some(out)),
        (None, PolicyOp::Check | PolicyOp::Peek) => Err(cg_status::NullArgument),
        (None, PolicyOp::Force | PolicyOp::Refund) => Ok(None),
    }
}

/// Writes an optional decision output.
fn put(out: Option<NonNull<cg_policy_decision>>, decision: PolicyDecision) {
    if let Some(out) = out {
        // SAFETY: non-NULL and writable by the caller's contract (checked by
        // `decision_output`).
        unsafe { write(out, decision.into()) };
    }
}

/// # Safety
/// `policy` NULL or live; `costs` NULL or `cost_count` readable; `out` NULL or writable.
unsafe fn policy_operate(
    policy: *const cg_policy,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
    op: PolicyOp,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let costs = unsafe { slice(costs, cost_count) }?;
        let out = decision_output(out, op)?;
        let now_ns = policy.time.resolve(now_ns);
        let inner = &policy.policy;
        let decision = match op {
            PolicyOp::Check => inner.check_at(now_ns, costs),
            PolicyOp::Peek => inner.peek_at(now_ns, costs),
            PolicyOp::Force => inner.force_at(now_ns, costs),
            PolicyOp::Refund => inner.refund_at(now_ns, costs),
        }?;
        put(out, decision);
        Ok(())
    })
}

/// # Safety
/// `policy` NULL or live; `key` NULL or `key_len` readable; `costs` NULL or `cost_count`
/// readable; `out` NULL or writable.
#[allow(clippy::too_many_arguments)]
unsafe fn keyed_policy_operate(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
    op: PolicyOp,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let costs = unsafe { slice(costs, cost_count) }?;
        let out = decision_output(out, op)?;
        let now_ns = policy.time.resolve(now_ns);
        let inner = &policy.policy;
        let decision = match op {
            PolicyOp::Check => inner.check_at(key, now_ns, costs),
            PolicyOp::Peek => inner.peek_at(key, now_ns, costs),
            PolicyOp::Force => inner.force_at(key, now_ns, costs),
            PolicyOp::Refund => inner.refund_at(key, now_ns, costs),
        }?;
        put(out, decision);
        Ok(())
    })
}

/// Admits `costs` (`cost_count` of them, one per dimension) at `now_ns` (or `CG_NOW`) only if
/// every entry admits its cost, charging all or none. An entry whose dimension costs 0 is shown
/// but cannot refuse. The decision goes to `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`policy`, `out`, `costs` with a non-zero count),
/// `CG_STATUS_COST_COUNT` (not one cost per dimension).
///
/// # Safety
/// `policy` is NULL or a live policy; `costs` is NULL or points to `cost_count` readable
/// `uint64_t`; `out` is NULL or valid for writing a `cg_policy_decision`.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_check(
    policy: *const cg_policy,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { policy_operate(policy, now_ns, costs, cost_count, out, PolicyOp::Check) }
}

/// The decision `cg_policy_check` would make, without consuming.
///
/// # Errors
/// As `cg_policy_check`.
///
/// # Safety
/// As `cg_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_peek(
    policy: *const cg_policy,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { policy_operate(policy, now_ns, costs, cost_count, out, PolicyOp::Peek) }
}

/// Charges `costs` on every entry regardless (debt); `allowed` is false if some entry is in
/// debt afterwards. `out` may be NULL.
///
/// # Errors
/// As `cg_policy_check` (but `out` may be NULL).
///
/// # Safety
/// As `cg_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_force(
    policy: *const cg_policy,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { policy_operate(policy, now_ns, costs, cost_count, out, PolicyOp::Force) }
}

/// Gives `costs` back on every entry, never above full. `out` may be NULL.
///
/// # Errors
/// As `cg_policy_force`.
///
/// # Safety
/// As `cg_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_refund(
    policy: *const cg_policy,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe { policy_operate(policy, now_ns, costs, cost_count, out, PolicyOp::Refund) }
}

/// Makes every entry's bucket full (each keeps the latest time it has seen).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `policy` is NULL.
///
/// # Safety
/// `policy` is NULL or a live policy.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_reset(policy: *const cg_policy) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        unsafe { object(policy) }?.policy.reset();
        Ok(())
    })
}

/// Hands a reserve's outcome to C: the decision, and a reservation handle when admitted.
fn put_reserved(
    owner: usize,
    reserved: Reserved,
    out: NonNull<cg_policy_decision>,
    reservation_out: NonNull<*mut cg_reservation>,
) {
    let handle = match reserved.reservation {
        Some(reservation) => into_handle(cg_reservation {
            owner,
            reservation: Mutex::new(Some(reservation)),
        }),
        None => core::ptr::null_mut(),
    };
    // SAFETY: both outputs are non-NULL and writable by the caller's contract.
    unsafe {
        write(out, reserved.decision.into());
        write(reservation_out, handle);
    }
}

/// Reserves an estimate: a `cg_policy_check` of `estimate` (one cost per dimension). When
/// admitted, `*reservation` receives a reservation to settle with `cg_policy_settle` once the
/// actual costs are known (then free it); when refused, `*reservation` is NULL and nothing was
/// charged. The decision goes to `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`policy`, `out`, `reservation`, `estimate` with a non-zero
/// count), `CG_STATUS_COST_COUNT`.
///
/// # Safety
/// `policy` is NULL or a live policy; `estimate` is NULL or points to `cost_count` readable
/// `uint64_t`; `out` and `reservation` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_reserve(
    policy: *const cg_policy,
    now_ns: u64,
    estimate: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
    reservation: *mut *mut cg_reservation,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let handle = unsafe { object(policy) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let estimate = unsafe { slice(estimate, cost_count) }?;
        let out = output(out)?;
        let reservation = output(reservation)?;
        let now_ns = handle.time.resolve(now_ns);
        let reserved = handle.policy.reserve_at(now_ns, estimate)?;
        put_reserved(policy as usize, reserved, out, reservation);
        Ok(())
    })
}

/// Takes a pending reservation out of its handle, after checking it belongs to `owner` and
/// that `actual` has one cost per dimension (so a refused settle leaves it pending).
fn take_reservation(
    reservation: &cg_reservation,
    owner: usize,
    dimensions: usize,
    actual: &[u64],
) -> Result<Reservation, cg_status> {
    if reservation.owner != owner {
        return Err(cg_status::WrongReservation);
    }
    if actual.len() != dimensions {
        return Err(cg_status::CostCount);
    }
    reservation
        .reservation
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or(cg_status::AlreadySettled)
}

/// Settles `reservation` with the `actual` costs (one per dimension): refunds what the
/// estimate exceeded and charges what exceeds the estimate (regardless, possibly into debt).
/// `*out` receives every entry's state after (`allowed` is false if some entry is in debt).
/// The reservation is settled (a second settle fails); free it with `cg_reservation_free`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`policy`, `reservation`, `out`, `actual` with a non-zero count),
/// `CG_STATUS_WRONG_RESERVATION` (made by another policy), `CG_STATUS_COST_COUNT`,
/// `CG_STATUS_ALREADY_SETTLED`. On any of these the reservation is left as it was.
///
/// # Safety
/// `policy` is NULL or a live policy; `reservation` is NULL or a live reservation; `actual` is
/// NULL or points to `cost_count` readable `uint64_t`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_settle(
    policy: *const cg_policy,
    now_ns: u64,
    reservation: *const cg_reservation,
    actual: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let handle = unsafe { object(policy) }?;
        // SAFETY: NULL or a live reservation, by the caller's contract.
        let pending = unsafe { object(reservation) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let actual = unsafe { slice(actual, cost_count) }?;
        let out = output(out)?;
        let dimensions = handle.policy.dimensions();
        let taken = take_reservation(pending, policy as usize, dimensions, actual)?;
        let now_ns = handle.time.resolve(now_ns);
        let decision = handle.policy.settle_at(now_ns, taken, actual)?;
        put(Some(out), decision);
        Ok(())
    })
}

/// As `cg_policy_check`, for the key (`key_len` bytes at `key`; NULL with length 0 is the
/// empty key).
///
/// # Errors
/// As `cg_policy_check`, and `CG_STATUS_TABLE_FULL` when the key is new and some entry's table
/// has no room for it (nothing is charged).
///
/// # Safety
/// `policy` is NULL or a live keyed policy; `key` is NULL or points to `key_len` readable
/// bytes; `costs` and `out` as for `cg_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_check(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        keyed_policy_operate(
            policy,
            key,
            key_len,
            now_ns,
            costs,
            cost_count,
            out,
            PolicyOp::Check,
        )
    }
}

/// As `cg_policy_peek`, for the key (nothing is inserted).
///
/// # Errors
/// As `cg_policy_check`.
///
/// # Safety
/// As `cg_keyed_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_peek(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        keyed_policy_operate(
            policy,
            key,
            key_len,
            now_ns,
            costs,
            cost_count,
            out,
            PolicyOp::Peek,
        )
    }
}

/// As `cg_policy_force`, for the key.
///
/// # Errors
/// As `cg_policy_force`, and `CG_STATUS_TABLE_FULL` (the entries before the full table were
/// charged).
///
/// # Safety
/// As `cg_keyed_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_force(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        keyed_policy_operate(
            policy,
            key,
            key_len,
            now_ns,
            costs,
            cost_count,
            out,
            PolicyOp::Force,
        )
    }
}

/// As `cg_policy_refund`, for the key.
///
/// # Errors
/// As `cg_policy_force`.
///
/// # Safety
/// As `cg_keyed_policy_check`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_refund(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        keyed_policy_operate(
            policy,
            key,
            key_len,
            now_ns,
            costs,
            cost_count,
            out,
            PolicyOp::Refund,
        )
    }
}

/// Makes every entry's bucket for the key full, at `now_ns` (or `CG_NOW`).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`policy`, or `key` NULL with a non-zero length).
///
/// # Safety
/// `policy` is NULL or a live keyed policy; `key` is NULL or points to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_reset(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        policy.policy.reset_at(key, policy.time.resolve(now_ns));
        Ok(())
    })
}

/// As `cg_policy_reserve`, for the key; the reservation remembers the key.
///
/// # Errors
/// As `cg_policy_reserve`, and `CG_STATUS_TABLE_FULL`.
///
/// # Safety
/// As `cg_policy_reserve`, and `key` is NULL or points to `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_reserve(
    policy: *const cg_keyed_policy,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    estimate: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
    reservation: *mut *mut cg_reservation,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let handle = unsafe { object(policy) }?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let estimate = unsafe { slice(estimate, cost_count) }?;
        let out = output(out)?;
        let reservation = output(reservation)?;
        let now_ns = handle.time.resolve(now_ns);
        let reserved = handle.policy.reserve_at(key, now_ns, estimate)?;
        put_reserved(policy as usize, reserved, out, reservation);
        Ok(())
    })
}

/// As `cg_policy_settle`, for a reservation made by this keyed policy (for the key it was
/// made for).
///
/// # Errors
/// As `cg_policy_settle`, and `CG_STATUS_TABLE_FULL` if the key lost its slots meanwhile and a
/// table has no room for the extra charge (the reservation is then settled as far as it went).
///
/// # Safety
/// As `cg_policy_settle`.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_settle(
    policy: *const cg_keyed_policy,
    now_ns: u64,
    reservation: *const cg_reservation,
    actual: *const u64,
    cost_count: usize,
    out: *mut cg_policy_decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let handle = unsafe { object(policy) }?;
        // SAFETY: NULL or a live reservation, by the caller's contract.
        let pending = unsafe { object(reservation) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let actual = unsafe { slice(actual, cost_count) }?;
        let out = output(out)?;
        let dimensions = handle.policy.dimensions();
        let taken = take_reservation(pending, policy as usize, dimensions, actual)?;
        let now_ns = handle.time.resolve(now_ns);
        let decision = handle.policy.settle_at(now_ns, taken, actual)?;
        put(Some(out), decision);
        Ok(())
    })
}

/// Renders a policy decision's headers from the entries' names and quotas.
///
/// # Safety
/// `decision` NULL or readable; `buf` NULL or `buf_len` writable; `len` NULL or writable.
#[allow(clippy::too_many_arguments)]
unsafe fn render_policy<'e>(
    entries: impl Iterator<Item = &'e PolicyEntry<Box<str>>>,
    decision: *const cg_policy_decision,
    style: u32,
    now_unix_s: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> Result<(), cg_status> {
    // SAFETY: NULL or a readable decision, by the caller's contract.
    let decision = unsafe { object(decision) }?;
    let len = output(len)?;
    let style = crate::headers::style(style, now_unix_s)?;
    // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
    let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
    let entries: Vec<&PolicyEntry<Box<str>>> = entries.collect();
    if entries.len() != decision.count {
        return Err(cg_status::InvalidArgument);
    }
    let headers: Vec<PolicyHeader<'_>> = entries
        .iter()
        .zip(decision.decisions.iter())
        .map(|(entry, decision)| PolicyHeader {
            name: &entry.name,
            quota: entry.quota,
            decision: (*decision).into(),
        })
        .collect();
    render_lines(style, &headers, out, len)
}

/// Renders the rate-limit headers of a decision this policy made (every entry, by its name and
/// quota) into `buf`, as `cg_render_headers` does.
///
/// # Errors
/// As `cg_render_headers`, and `CG_STATUS_INVALID_ARGUMENT` when `decision->count` is not the
/// policy's entry count.
///
/// # Safety
/// `policy` is NULL or a live policy; `decision` is NULL or readable; `buf` is NULL or valid
/// for writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_render_headers(
    policy: *const cg_policy,
    decision: *const cg_policy_decision,
    style: u32,
    now_unix_s: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        let entries = policy.policy.entries();
        // SAFETY: forwarded from the caller's contract.
        unsafe { render_policy(entries, decision, style, now_unix_s, buf, buf_len, len) }
    })
}

/// As `cg_policy_render_headers`, for a decision of this keyed policy.
///
/// # Errors
/// As `cg_policy_render_headers`.
///
/// # Safety
/// As `cg_policy_render_headers`, with a live keyed policy.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_render_headers(
    policy: *const cg_keyed_policy,
    decision: *const cg_policy_decision,
    style: u32,
    now_unix_s: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        let entries = policy.policy.entries();
        // SAFETY: forwarded from the caller's contract.
        unsafe { render_policy(entries, decision, style, now_unix_s, buf, buf_len, len) }
    })
}

/// How many costs each call of this policy takes (one per dimension), into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `policy` or `out` is NULL.
///
/// # Safety
/// `policy` is NULL or a live policy; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_policy_dimensions(
    policy: *const cg_policy,
    out: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        let out = output(out)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, policy.policy.dimensions()) };
        Ok(())
    })
}

/// As `cg_policy_dimensions`, for a keyed policy.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `policy` or `out` is NULL.
///
/// # Safety
/// `policy` is NULL or a live keyed policy; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_keyed_policy_dimensions(
    policy: *const cg_keyed_policy,
    out: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live policy, by the caller's contract.
        let policy = unsafe { object(policy) }?;
        let out = output(out)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, policy.policy.dimensions()) };
        Ok(())
    })
}
