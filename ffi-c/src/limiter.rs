//! [`cg_limiter`]: the product, core's `Limiter` in C. A keyed limiter over 1 to
//! `CG_MAX_POLICY_QUOTAS` named quotas on dimensions, with one verb (`cg_limiter_apply`), the
//! full-table answer under an on-full policy, reservations, and the headers and 429 body of
//! its decisions: the same configuration and the same bytes as in Python and Node.
//!
//! Everything here converts: the rules (names, dimensions, `max_keys`, costs, the full table,
//! the headers) are core's.

use crate::boundary::{buffer, free_handle, guard, into_handle, object, output, slice, write};
use crate::cell::refill;
use crate::clock::{cg_clock, TimeSource};
use crate::decision::cg_decision;
use crate::headers::{render_lines, style};
use crate::keyed::{cg_keyed_stats, check_table_size, CG_DEFAULT_MAX_KEYS};
use crate::policy::CG_MAX_POLICY_QUOTAS;
use crate::quota::{cg_quota, text};
use crate::status::cg_status;
use cellgate::{
    check_max_keys, combined_retry_after_ns, render_429_body, slot_count_for, Decision,
    KeyedDecision, Limiter, LimiterDecision, LimiterOptions, LimiterQuota, LimiterReservation,
    OnFull, Op, PolicyHeader, Reason, Seed, MAX_429_BODY_BYTES,
};
use cellgate_host::{in_process, TableSlots};
use core::ffi::{c_char, c_int};
use core::ptr::{addr_of, NonNull};

/// Deny a new key that a full table has no room for (the default): the decision is a denial
/// with reason `CG_REASON_TABLE_FULL` and a `Retry-After` for when a slot can be reclaimed.
pub const CG_ON_FULL_DENY: u32 = 0;
/// Admit a new key that a full table has no room for as a fresh key would be admitted,
/// without storing it (fail open): reason `CG_REASON_UNTRACKED`, counted in the stats'
/// `admitted_untracked`.
pub const CG_ON_FULL_ALLOW_UNTRACKED: u32 = 1;

/// `cg_limiter_apply`'s op: admit the costs if every quota has room, consuming them; a denial
/// changes nothing.
pub const CG_OP_CHECK: u32 = 0;
/// Whether `CG_OP_CHECK` would admit, without consuming or inserting.
pub const CG_OP_PEEK: u32 = 1;
/// Consume the costs whether or not they fit (debt); `allowed` says whether they fitted.
pub const CG_OP_FORCE: u32 = 2;
/// Give the costs back, never above a full bucket.
pub const CG_OP_REFUND: u32 = 3;
/// Make the key's buckets full (the costs are resolved, then unused).
pub const CG_OP_RESET: u32 = 4;

/// A cost that is not named: on a limiter of one dimension the default cost (1), on a settle
/// the estimate, on a limiter of several dimensions `CG_STATUS_MISSING_COST`. (`UINT64_MAX`,
/// so that cost itself cannot be passed; any cost above the burst is denied alike.)
pub const CG_COST_DEFAULT: u64 = u64::MAX;

/// The op for a `CG_OP_*` constant.
fn op(op: u32) -> Result<Op, cg_status> {
    match op {
        CG_OP_CHECK => Ok(Op::Check),
        CG_OP_PEEK => Ok(Op::Peek),
        CG_OP_FORCE => Ok(Op::Force),
        CG_OP_REFUND => Ok(Op::Refund),
        CG_OP_RESET => Ok(Op::Reset),
        _ => Err(cg_status::InvalidArgument),
    }
}

/// Why a limiter decided as it did. The numbers are stable; `cg_reason_name` gives the name
/// every runtime uses.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum cg_reason {
    /// The key's own buckets decided (`"limit"`).
    #[default]
    Limit = 0,
    /// Denied: a table had no room for this new key, under `CG_ON_FULL_DENY`
    /// (`"table_full"`). Answer it as any denial: 429 with the rendered headers.
    TableFull = 1,
    /// Admitted without being stored: a table had no room, under
    /// `CG_ON_FULL_ALLOW_UNTRACKED` (`"untracked"`).
    Untracked = 2,
    /// Admitted by a `cg_remote`'s outage policy `CG_OUTAGE_FAIL_OPEN`: Redis could not be
    /// asked, nothing was counted (`"failed_open"`).
    FailedOpen = 3,
    /// Denied by a `cg_remote`'s outage policy `CG_OUTAGE_FAIL_CLOSED`: Redis could not be
    /// asked (`"failed_closed"`; answer 503 with the `Retry-After`).
    FailedClosed = 4,
    /// Decided by a `cg_remote`'s own in-process limiter, its outage policy
    /// `CG_OUTAGE_FALLBACK`, while Redis could not be asked (`"fallback"`).
    Fallback = 5,
}

impl cg_reason {
    /// Every reason, in number order.
    const ALL: [Self; 6] = [
        Self::Limit,
        Self::TableFull,
        Self::Untracked,
        Self::FailedOpen,
        Self::FailedClosed,
        Self::Fallback,
    ];

    pub(crate) fn from_core(reason: Reason) -> Self {
        match reason {
            Reason::TableFull => Self::TableFull,
            Reason::Untracked => Self::Untracked,
            Reason::FailedOpen => Self::FailedOpen,
            Reason::FailedClosed => Self::FailedClosed,
            Reason::Fallback => Self::Fallback,
            // Reason is non_exhaustive: a new path is still the limit's until C names it.
            _ => Self::Limit,
        }
    }

    #[cfg(test)]
    fn to_core(self) -> Reason {
        match self {
            Self::Limit => Reason::Limit,
            Self::TableFull => Reason::TableFull,
            Self::Untracked => Reason::Untracked,
            Self::FailedOpen => Reason::FailedOpen,
            Self::FailedClosed => Reason::FailedClosed,
            Self::Fallback => Reason::Fallback,
        }
    }
}

/// The name of a reason, as every runtime spells it (core's `Reason::as_str`): `"limit"`,
/// `"table_full"`, `"untracked"`, `"failed_open"`, `"failed_closed"`, `"fallback"`; static, NUL-terminated, never NULL. An unknown number gives
/// `"unknown"`.
#[no_mangle]
pub extern "C" fn cg_reason_name(reason: c_int) -> *const c_char {
    const NAMES: [&[u8]; 6] = [
        b"limit\0",
        b"table_full\0",
        b"untracked\0",
        b"failed_open\0",
        b"failed_closed\0",
        b"fallback\0",
    ];
    let name: &'static [u8] = usize::try_from(reason)
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or(b"unknown\0");
    name.as_ptr().cast()
}

/// One quota of a limiter: what it allows, how headers name it, which cost it is charged.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_limiter_quota {
    /// The quota.
    pub quota: cg_quota,
    /// The name headers show (printable ASCII, unique; copied), `name_len` bytes or
    /// `CG_NUL_TERMINATED`. NULL: the default name, the same in every runtime (`"100-in-1min"`,
    /// `"10-in-1s"`, `"500-in-7d"`).
    pub name: *const c_char,
    /// The name's length in bytes, or `CG_NUL_TERMINATED`; unused when `name` is NULL.
    pub name_len: usize,
    /// The dimension this quota is charged in: the index of its cost in each call's costs.
    /// Dimensions are numbered from 0 without gaps; most limiters have one, 0.
    pub dimension: usize,
}

/// A limiter's options beside its quotas. `cg_limiter_options_init` fills the defaults;
/// passing NULL to `cg_limiter_new` means them.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_limiter_options {
    /// `CG_REFILL_GREEDY` (the default) or `CG_REFILL_INTERVAL` (a single quota only).
    pub refill: u32,
    /// `CG_ON_FULL_DENY` (the default) or `CG_ON_FULL_ALLOW_UNTRACKED`.
    pub on_full: u32,
    /// Keys each quota's table has room for at once: 1 to `CG_MAX_MAX_KEYS`
    /// (`CG_DEFAULT_MAX_KEYS`, 100,000, by default; about 43 bytes per key and quota).
    pub max_keys: usize,
    /// The clock read when an operation is given `CG_NOW`: NULL (the default) for the built-in
    /// monotonic clock, or a manual clock (shared; see `cg_clock`).
    pub clock: *const cg_clock,
    /// Whether `seed_k0` and `seed_k1` are the key hash's secret; false (the default) draws a
    /// random one. Fixed seeds are for tests: keep a real one secret.
    pub seeded: bool,
    /// The first half of the hash seed, when `seeded`.
    pub seed_k0: u64,
    /// The second half of the hash seed, when `seeded`.
    pub seed_k1: u64,
    /// Nanoseconds a denial blocks its key for (0, the default: never): every request of the
    /// key is denied meanwhile, the denials it answers do not extend it, and the bucket then
    /// refills from empty (core's `Limiter::with_block_ns`; over Redis, `cg_remote_new`, the
    /// script writes the same block).
    pub block_ns: u64,
}

impl Default for cg_limiter_options {
    fn default() -> Self {
        Self {
            refill: crate::cell::CG_REFILL_GREEDY,
            on_full: CG_ON_FULL_DENY,
            max_keys: CG_DEFAULT_MAX_KEYS,
            clock: core::ptr::null(),
            seeded: false,
            seed_k0: 0,
            seed_k1: 0,
            block_ns: 0,
        }
    }
}

/// A limiter's decision: whether the request was admitted, why, every quota's decision and
/// the binding one. Filled on allow and deny alike; render its headers with
/// `cg_limiter_render_headers`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct cg_limiter_decision {
    /// Whether the request was admitted (every quota admitted its cost, and all were charged;
    /// if not, none was).
    pub allowed: bool,
    /// Which path decided: the buckets, or a full table under the limiter's on-full policy.
    pub reason: cg_reason,
    /// The binding quota's index: when denied, the refusing quota with the longest wait; when
    /// allowed, the quota with the least remaining.
    pub binding: usize,
    /// The binding quota's decision with the limiter's `allowed` (`retry_after_ns` 0 when
    /// allowed).
    pub decision: cg_decision,
    /// How many quotas `decisions` holds (the limiter's quota count).
    pub count: usize,
    /// Every quota's decision, in quota order; entries past `count` are zero.
    pub decisions: [cg_decision; CG_MAX_POLICY_QUOTAS],
}

impl cg_limiter_decision {
    /// The decision of a one-quota limiter's fast path (`Limiter::apply_one_at`): what
    /// `From<&LimiterDecision>` gives for the same `LimiterDecision`.
    #[inline(always)]
    fn from_one(answer: KeyedDecision) -> Self {
        let mut decisions = [cg_decision::default(); CG_MAX_POLICY_QUOTAS];
        let first: cg_decision = answer.decision.into();
        decisions[0] = first;
        let mut decision = first;
        if decision.allowed {
            decision.retry_after_ns = 0;
        }
        Self {
            allowed: first.allowed,
            reason: cg_reason::from_core(answer.reason),
            binding: 0,
            decision,
            count: 1,
            decisions,
        }
    }
}

impl From<&LimiterDecision> for cg_limiter_decision {
    fn from(decision: &LimiterDecision) -> Self {
        let mut decisions = [cg_decision::default(); CG_MAX_POLICY_QUOTAS];
        for (dst, src) in decisions.iter_mut().zip(decision.decisions()) {
            *dst = (*src).into();
        }
        Self {
            allowed: decision.allowed,
            reason: cg_reason::from_core(decision.reason),
            binding: decision.binding,
            decision: decision.decision().into(),
            count: decision.decisions().len(),
            decisions,
        }
    }
}

/// A keyed rate limiter over named quotas and dimensions: core's `Limiter`, the recommended
/// entry point. Tables are allocated by `cg_limiter_new` and never after; lock-free, and safe
/// to share between threads. Free it with `cg_limiter_free`.
#[allow(non_camel_case_types)]
pub struct cg_limiter {
    pub(crate) limiter: Limiter<TableSlots>,
    pub(crate) time: TimeSource,
}

/// An admitted estimate, to settle once with the actual costs (`cg_limiter_settle`, which
/// frees it) on the limiter that made it.
#[allow(non_camel_case_types)]
pub struct cg_limiter_reservation {
    reservation: LimiterReservation,
}

/// Writes the default options into `*options`: greedy refill, `CG_ON_FULL_DENY`,
/// `CG_DEFAULT_MAX_KEYS`, the monotonic clock, a random seed.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or valid for writing a `cg_limiter_options`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_options_init(options: *mut cg_limiter_options) -> cg_status {
    guard(|| {
        let out = output(options)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_limiter_options::default()) };
        Ok(())
    })
}

/// The core's options for C options.
pub(crate) fn core_options(options: &cg_limiter_options) -> Result<LimiterOptions, cg_status> {
    let seed = if options.seeded {
        Seed::new(options.seed_k0, options.seed_k1)
    } else {
        Seed::random()
    };
    let mut core = LimiterOptions::with_seed(seed);
    core.refill = refill(options.refill)?;
    core.on_full = match options.on_full {
        CG_ON_FULL_DENY => OnFull::Deny,
        CG_ON_FULL_ALLOW_UNTRACKED => OnFull::AllowUntracked,
        _ => return Err(cg_status::InvalidArgument),
    };
    // Core checks the bounds (CG_STATUS_INVALID_MAX_KEYS); a size_t above u64 is above them.
    core.max_keys = options.max_keys;
    Ok(core)
}

/// Core's quotas for C quotas (names borrowed from the caller), at most
/// `CG_MAX_POLICY_QUOTAS`.
///
/// # Safety
/// Every quota's name is NULL or readable as its length says.
pub(crate) unsafe fn limiter_quotas(
    quotas: &[cg_limiter_quota],
) -> Result<Vec<LimiterQuota<'_>>, cg_status> {
    if quotas.len() > CG_MAX_POLICY_QUOTAS {
        return Err(cg_status::TooManyQuotas);
    }
    let mut entries = Vec::with_capacity(quotas.len());
    for quota in quotas {
        let name = if quota.name.is_null() {
            None
        } else {
            // SAFETY: the name is readable as its length says, by the caller's contract.
            Some(match unsafe { text(quota.name, quota.name_len) } {
                Ok(name) => name,
                Err(cg_status::InvalidUtf8) => return Err(cg_status::InvalidName),
                Err(status) => return Err(status),
            })
        };
        entries.push(LimiterQuota {
            quota: quota.quota.to_core()?,
            name,
            dimension: quota.dimension,
        });
    }
    Ok(entries)
}

/// Creates a limiter over `count` quotas (names copied) with `options` (NULL: the defaults);
/// `*out` receives it. Every configuration rule is core's, the same as in Python and Node.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`, `quotas` with a non-zero count),
/// `CG_STATUS_NO_QUOTAS` (`count` 0), `CG_STATUS_TOO_MANY_QUOTAS` (above `CG_MAX_POLICY_QUOTAS`), a quota's status
/// (`CG_STATUS_ZERO_RATE`, ...), `CG_STATUS_EMPTY_NAME`, `CG_STATUS_INVALID_NAME`,
/// `CG_STATUS_DUPLICATE_NAME` (given or default: `"10/s"` twice repeats `"10-in-1s"`),
/// `CG_STATUS_DIMENSION_GAP`, `CG_STATUS_REFILL_NEEDS_ONE_QUOTA`,
/// `CG_STATUS_INVALID_MAX_KEYS`, `CG_STATUS_INVALID_ARGUMENT` (an unknown `refill` or
/// `on_full`, or tables whose size overflows), `CG_STATUS_OUT_OF_MEMORY`.
///
/// # Safety
/// `quotas` is NULL or points to `count` readable quotas whose names are NULL or readable as
/// their lengths say; `options` is NULL or readable, its `clock` NULL or a live clock; `out` is
/// NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_new(
    quotas: *const cg_limiter_quota,
    count: usize,
    options: *const cg_limiter_options,
    out: *mut *mut cg_limiter,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: NULL or `count` readable quotas, by the caller's contract.
        let quotas = unsafe { slice(quotas, count) }?;
        // SAFETY: NULL or a readable options struct, by the caller's contract.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        // SAFETY: the names are readable as their lengths say, by the caller's contract.
        let entries = unsafe { limiter_quotas(quotas) }?;
        let core_options = core_options(&options)?;
        if let Ok(max_keys) = check_max_keys(u64::try_from(options.max_keys).unwrap_or(u64::MAX)) {
            check_table_size(max_keys, entries.len())?;
        }
        let limiter = cg_limiter {
            limiter: in_process(&entries, core_options)?.with_block_ns(options.block_ns),
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(options.clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(limiter)) };
        Ok(())
    })
}

/// Frees a limiter and its tables. NULL does nothing. Reservations it made and has not
/// settled must be freed too (`cg_limiter_reservation_free`).
///
/// # Safety
/// `limiter` is NULL or a limiter not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_free(limiter: *mut cg_limiter) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(limiter) }
}

/// The costs a C caller named, one `Option` per dimension in `out`: no costs at all
/// (`cost_count` 0) names none on any dimension; `CG_COST_DEFAULT` names none on its own.
///
/// # Safety
/// `costs` is NULL or points to `cost_count` readable costs.
unsafe fn named_costs(
    costs: *const u64,
    cost_count: usize,
    dimensions: usize,
    out: &mut [Option<u64>; CG_MAX_POLICY_QUOTAS],
) -> Result<&[Option<u64>], cg_status> {
    // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
    let costs = unsafe { slice(costs, cost_count) }?;
    let count = if costs.is_empty() {
        dimensions
    } else {
        costs.len()
    };
    let named = out.get_mut(..count).ok_or(cg_status::CostCount)?;
    for (slot, cost) in named.iter_mut().zip(costs) {
        *slot = (*cost != CG_COST_DEFAULT).then_some(*cost);
    }
    Ok(named)
}

/// A non-NULL decision output.
fn decision_output(
    out: *mut cg_limiter_decision,
) -> Result<NonNull<cg_limiter_decision>, cg_status> {
    output(out)
}

/// The one verb: applies `op` (`CG_OP_CHECK`, `CG_OP_PEEK`, `CG_OP_FORCE`, `CG_OP_REFUND`,
/// `CG_OP_RESET`) to the key (`key_len` bytes at `key`; NULL with length 0 is the empty key)
/// at `now_ns` (or `CG_NOW`) with `costs`, one per dimension (`cost_count` of them; NULL and
/// 0 names none, and `CG_COST_DEFAULT` leaves one dimension unnamed: the default cost, 1, on a
/// limiter of one dimension). The decision goes to `*out`.
///
/// A full table is a decision, never a status: under `CG_ON_FULL_DENY` a denial with reason
/// `CG_REASON_TABLE_FULL` and a `retry_after_ns`; answer it as any other denial (429 with the
/// rendered headers and `cg_limiter_render_429_body`). `cg_limiter_check`, `_peek`, `_force`,
/// `_refund` and `_reset` in the header are this function with their op, nothing else.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, `out`, `key` or `costs` NULL with a non-zero length),
/// `CG_STATUS_INVALID_ARGUMENT` (an unknown `op`), `CG_STATUS_COST_COUNT` (costs given, but
/// not one per dimension), `CG_STATUS_MISSING_COST` (several dimensions and one not named).
/// Nothing is charged then. `CG_OP_RESET` uses no cost and ignores `costs`.
///
/// # Safety
/// `limiter` is NULL or a live limiter; `key` is NULL or points to `key_len` readable bytes;
/// `costs` is NULL or points to `cost_count` readable costs; `out` is NULL or valid for writing
/// a `cg_limiter_decision`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cg_limiter_apply(
    limiter: *const cg_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    op: u32,
    out: *mut cg_limiter_decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = decision_output(out)?;
        let op = self::op(op)?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        // The fast path of a limiter of one quota (core's `apply_one_at`): its decision written
        // straight into `*out`, without a `LimiterDecision` assembled and converted (about 90
        // ns per check, see BENCHMARKS.md "C ABI"). The same decision as the general path.
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let given = unsafe { slice(costs, cost_count) }?;
        let one_cost = match given {
            _ if op == Op::Reset => Some(None),
            [] => Some(None),
            [cost] => Some((*cost != CG_COST_DEFAULT).then_some(*cost)),
            _ => None,
        };
        if let Some(cost) = one_cost {
            let now_ns = limiter.time.resolve(now_ns);
            if let Some(answer) = limiter.limiter.apply_one_at(key, now_ns, cost, op) {
                // SAFETY: non-NULL and writable by the caller's contract.
                unsafe { write(out, cg_limiter_decision::from_one(answer)) };
                return Ok(());
            }
        }
        let mut named = [None; CG_MAX_POLICY_QUOTAS];
        let costs: &[Option<u64>] = if op == Op::Reset {
            // A reset uses no cost (core ignores them): only the pointer is checked.
            // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
            let _ = unsafe { slice(costs, cost_count) }?;
            &[]
        } else {
            // SAFETY: forwarded from the caller's contract.
            unsafe { named_costs(costs, cost_count, limiter.limiter.dimensions(), &mut named) }?
        };
        let now_ns = limiter.time.resolve(now_ns);
        let decision = limiter.limiter.apply_at(key, now_ns, costs, op)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, (&decision).into()) };
        Ok(())
    })
}

/// Checks the `estimate` (costs as for `cg_limiter_apply`) for the key and, when admitted,
/// writes a reservation to `*reservation`, to settle once the actual costs are known; when
/// denied, `*reservation` is NULL and nothing was charged. The decision goes to `*out`. A new
/// key admitted by `CG_ON_FULL_ALLOW_UNTRACKED` gets a reservation whose settle charges
/// nothing.
///
/// # Errors
/// As `cg_limiter_apply`, and `CG_STATUS_NULL_ARGUMENT` for `reservation`.
///
/// # Safety
/// As `cg_limiter_apply`; `reservation` is NULL or valid for writing a pointer.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cg_limiter_reserve(
    limiter: *const cg_limiter,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    estimate: *const u64,
    estimate_count: usize,
    out: *mut cg_limiter_decision,
    reservation: *mut *mut cg_limiter_reservation,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = decision_output(out)?;
        let reservation_out = output(reservation)?;
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        let mut named = [None; CG_MAX_POLICY_QUOTAS];
        let dimensions = limiter.limiter.dimensions();
        // SAFETY: forwarded from the caller's contract.
        let estimate = unsafe { named_costs(estimate, estimate_count, dimensions, &mut named) }?;
        let now_ns = limiter.time.resolve(now_ns);
        let reserved = limiter.limiter.reserve_at(key, now_ns, estimate)?;
        let handle = reserved
            .reservation
            .map_or(core::ptr::null_mut(), |reservation| {
                into_handle(cg_limiter_reservation { reservation })
            });
        // SAFETY: both non-NULL and writable by the caller's contract.
        unsafe {
            write(out, (&reserved.decision).into());
            write(reservation_out, handle);
        }
        Ok(())
    })
}

/// Settles `reservation` with the `actual` costs (as for `cg_limiter_apply`; a dimension not
/// named keeps its estimate): refunds what was not used and charges what exceeds the
/// estimate, into debt if need be. The decision shows every quota after (`allowed` false when
/// one is in debt) and goes to `*out`.
///
/// The reservation is consumed and freed by this call, whatever it returns: never use it
/// again (a second settle is a use after free). If the call fails, its estimate stays charged.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, `reservation`, `out`, `actual` NULL with a non-zero
/// count), `CG_STATUS_FOREIGN_RESERVATION` (another limiter made it; nothing is charged),
/// `CG_STATUS_COST_COUNT`.
///
/// # Safety
/// `limiter` is NULL or a live limiter; `reservation` is NULL or a reservation not yet settled
/// or freed, that no other thread uses; `actual` is NULL or points to `actual_count` readable
/// costs; `out` is NULL or valid for writing a `cg_limiter_decision`.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_settle(
    limiter: *const cg_limiter,
    now_ns: u64,
    reservation: *mut cg_limiter_reservation,
    actual: *const u64,
    actual_count: usize,
    out: *mut cg_limiter_decision,
) -> cg_status {
    guard(|| {
        // Taken back first, so that it is freed on every path.
        let reservation = NonNull::new(reservation).ok_or(cg_status::NullArgument)?;
        // SAFETY: a reservation from `into_handle`, not yet freed, that nothing else uses (the
        // caller's contract); this call owns it from here on.
        let reservation = unsafe { Box::from_raw(reservation.as_ptr()) }.reservation;
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = decision_output(out)?;
        let mut named = [None; CG_MAX_POLICY_QUOTAS];
        let dimensions = limiter.limiter.dimensions();
        // SAFETY: forwarded from the caller's contract.
        let actual = unsafe { named_costs(actual, actual_count, dimensions, &mut named) }?;
        let now_ns = limiter.time.resolve(now_ns);
        let decision = limiter.limiter.settle_at(now_ns, reservation, actual)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, (&decision).into()) };
        Ok(())
    })
}

/// Frees a reservation without settling it: its estimate stays charged. NULL does nothing.
///
/// # Safety
/// `reservation` is NULL or a reservation not yet settled or freed, that no other thread uses.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_reservation_free(reservation: *mut cg_limiter_reservation) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(reservation) }
}

/// Runs `f` over the header descriptions of a C decision made by `limiter`: one per quota,
/// under the limiter's names (as core's `Limiter::render_headers` builds them).
///
/// # Safety
/// `decision` is NULL or points to a readable `cg_limiter_decision`.
pub(crate) unsafe fn with_policy_headers<R, S: AsRef<[cellgate::SlotGroup]>>(
    limiter: &Limiter<S>,
    decision: *const cg_limiter_decision,
    f: impl FnOnce(&[PolicyHeader<'_>]) -> Result<R, cg_status>,
) -> Result<R, cg_status> {
    if decision.is_null() {
        return Err(cg_status::NullArgument);
    }
    // SAFETY: non-NULL and readable by the caller's contract. Only `count` and `decisions`
    // are read, each through a raw field pointer, so a `reason` holding a number C wrote that
    // is no `cg_reason` is never read as one.
    let (count, decisions) = unsafe {
        (
            addr_of!((*decision).count).read(),
            addr_of!((*decision).decisions).read(),
        )
    };
    let quotas = limiter.quotas();
    if count != quotas.len() {
        return Err(cg_status::InvalidArgument);
    }
    let policies: Vec<PolicyHeader<'_>> = limiter
        .names()
        .zip(quotas)
        .zip(decisions)
        .map(|((name, quota), decision)| PolicyHeader {
            name,
            quota: *quota,
            decision: Decision::from(decision),
        })
        .collect();
    f(&policies)
}

/// Renders the rate-limit headers of `decision` (made by `limiter`) in `style`
/// (`CG_HEADER_STYLE_*`; `now_unix_s` for `CG_HEADER_STYLE_LEGACY_EPOCH` and `CG_HEADER_STYLE_ANTHROPIC` only) into `buf` as
/// HTTP header lines, `Name: value\r\n` each (no NUL), one item per quota under the
/// limiter's names, `Retry-After` on a denial (a full table's included). `*len` receives the
/// length written. The bytes are core's, the same in every runtime.
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` with the length needed in `*len`, nothing written (1024 bytes
/// suffice for short names); `CG_STATUS_NULL_ARGUMENT` (`limiter`, `decision`, `len`, `buf`
/// with a non-zero length); `CG_STATUS_INVALID_ARGUMENT` (an unknown style, or a decision
/// whose `count` is not the limiter's quota count).
///
/// # Safety
/// `limiter` is NULL or a live limiter; `decision` is NULL or readable; `buf` is NULL or valid
/// for writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cg_limiter_render_headers(
    limiter: *const cg_limiter,
    decision: *const cg_limiter_decision,
    style: u32,
    now_unix_s: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let len = output(len)?;
        let style = self::style(style, now_unix_s)?;
        // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
        let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
        // SAFETY: NULL or a readable decision, by the caller's contract.
        unsafe {
            with_policy_headers(&limiter.limiter, decision, |policies| {
                render_lines(style, policies, out, len)
            })
        }
    })
}

/// The wait `Retry-After` describes for `decision` (made by `limiter`), into `*out`: 0 when it
/// was admitted, else the longest wait among the denying quotas, `CG_NEVER` if one can never
/// admit.
///
/// # Errors
/// As `cg_limiter_render_headers` (`out` for `len`).
///
/// # Safety
/// `limiter` is NULL or a live limiter; `decision` is NULL or readable; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_retry_after_ns(
    limiter: *const cg_limiter,
    decision: *const cg_limiter_decision,
    out: *mut u64,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let out = output(out)?;
        // SAFETY: NULL or a readable decision, by the caller's contract.
        let wait_ns = unsafe {
            with_policy_headers(&limiter.limiter, decision, |policies| {
                Ok(combined_retry_after_ns(policies).unwrap_or(0))
            })
        }?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, wait_ns) };
        Ok(())
    })
}

/// Writes the JSON body of the 429 answer to `decision` (made by `limiter`) into `buf`:
/// `{"error":"rate_limited","retry_after":N}` with N the `Retry-After` seconds (`null` for
/// never), the same bytes in every runtime. `*len` receives its length (at most
/// `CG_MAX_429_BODY_BYTES`; no NUL).
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` with the length needed in `*len` (nothing written); otherwise
/// as `cg_limiter_render_headers`.
///
/// # Safety
/// `limiter` is NULL or a live limiter; `decision` is NULL or readable; `buf` is NULL or valid
/// for writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_render_429_body(
    limiter: *const cg_limiter,
    decision: *const cg_limiter_decision,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let len = output(len)?;
        // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
        let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
        // SAFETY: NULL or a readable decision, by the caller's contract.
        let wait_ns = unsafe {
            with_policy_headers(&limiter.limiter, decision, |policies| {
                Ok(combined_retry_after_ns(policies).unwrap_or(0))
            })
        }?;
        // Rendered into a scratch, copied only if it fits: a buffer too small gets nothing.
        let mut scratch = [0u8; MAX_429_BODY_BYTES];
        let body_len = render_429_body(wait_ns, &mut scratch)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(len, body_len) };
        match (out.get_mut(..body_len), scratch.get(..body_len)) {
            (Some(dst), Some(body)) => dst.copy_from_slice(body),
            _ => return Err(cg_status::BufferTooSmall),
        }
        Ok(())
    })
}

/// The counters of each quota's table, in quota order, into `out[0..*count]` (`*count` is the
/// quota count; `CG_MAX_POLICY_QUOTAS` entries always suffice). `rejected_full` counts the
/// new keys a full table had no room for, `admitted_untracked` those admitted anyway.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`limiter`, `count`, `out` with a non-zero capacity),
/// `CG_STATUS_BUFFER_TOO_SMALL` when `capacity` is below the quota count (reported in
/// `*count`; nothing written to `out`).
///
/// # Safety
/// `limiter` is NULL or a live limiter; `out` is NULL or valid for writing `capacity` entries;
/// `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_stats(
    limiter: *const cg_limiter,
    out: *mut cg_keyed_stats,
    capacity: usize,
    count: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live limiter, by the caller's contract.
        let limiter = unsafe { object(limiter) }?;
        let count = output(count)?;
        if out.is_null() && capacity > 0 {
            return Err(cg_status::NullArgument);
        }
        let stats = limiter.limiter.stats();
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(count, stats.len()) };
        if stats.len() > capacity {
            return Err(cg_status::BufferTooSmall);
        }
        let slot_count = slot_count_for(limiter.limiter.max_keys());
        for (index, stats) in stats.into_iter().enumerate() {
            // SAFETY: `out` is non-NULL (capacity > 0 here) and writable for `capacity`
            // entries; `index < stats.len() <= capacity`.
            unsafe {
                out.add(index)
                    .write(cg_keyed_stats::from_core(stats, slot_count))
            };
        }
        Ok(())
    })
}

/// The stable numbers of `cg_reason`, which `cg_reason_name` indexes.
const _: () = {
    assert!(cg_reason::ALL.len() == 6);
    assert!(cg_reason::Limit as usize == 0);
    assert!(cg_reason::TableFull as usize == 1);
    assert!(cg_reason::Untracked as usize == 2);
    assert!(cg_reason::FailedOpen as usize == 3);
    assert!(cg_reason::FailedClosed as usize == 4);
    assert!(cg_reason::Fallback as usize == 5);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    #[test]
    fn reason_names_are_cores() {
        for (number, reason) in cg_reason::ALL.iter().enumerate() {
            // SAFETY: a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(cg_reason_name(number as c_int)) };
            assert_eq!(name.to_str().unwrap(), reason.to_core().as_str());
            assert_eq!(cg_reason::from_core(reason.to_core()), *reason);
        }
        for unknown in [-1, 6, c_int::MAX] {
            // SAFETY: as above.
            let name = unsafe { CStr::from_ptr(cg_reason_name(unknown)) };
            assert_eq!(name.to_str().unwrap(), "unknown");
        }
    }

    /// The one-quota fast path of `cg_limiter_apply` gives the general path's decision, for
    /// every op, cost and outcome (a full table under both on-full policies included).
    #[test]
    fn the_one_quota_fast_path_decides_as_apply_at() {
        use cellgate::Quota;
        for on_full in [OnFull::Deny, OnFull::AllowUntracked] {
            let quotas = [LimiterQuota::new(Quota::per_second(3).unwrap())];
            let options = LimiterOptions {
                max_keys: 4,
                on_full,
                ..LimiterOptions::with_seed(Seed::new(5, 6))
            };
            let fast = in_process(&quotas, options).unwrap();
            let general = in_process(&quotas, options).unwrap();
            let ops = [Op::Check, Op::Peek, Op::Force, Op::Refund, Op::Reset];
            let mut seen = [false; 3];
            for step in 0..3_000u64 {
                let key = (step % 97).to_le_bytes();
                let now_ns = step * 1_000_000;
                let op = ops[(step % 7 % 5) as usize];
                let cost = [None, Some(1), Some(2), Some(0), Some(9)][(step % 5) as usize];
                let one = fast.apply_one_at(&key, now_ns, cost, op).unwrap();
                let all = general.apply_at(&key, now_ns, &[cost], op).unwrap();
                assert_eq!(
                    cg_limiter_decision::from_one(one),
                    (&all).into(),
                    "step {step}"
                );
                seen[cg_reason::from_core(one.reason) as usize] = true;
            }
            assert!(seen[0] && (seen[1] || seen[2]), "{seen:?}");
        }
    }

    #[test]
    fn default_options_are_cores() {
        let options = cg_limiter_options::default();
        let core = core_options(&options).unwrap();
        let defaults = LimiterOptions::with_seed(Seed::new(0, 0));
        assert_eq!(core.refill, defaults.refill);
        assert_eq!(core.on_full, defaults.on_full);
        assert_eq!(core.max_keys, defaults.max_keys);
        assert_eq!(cellgate::Refill::Greedy, core.refill);
    }
}
