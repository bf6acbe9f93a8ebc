//! C ABI call sequences: the `extern "C"` functions of the `cellgate-ffi` crate, called from
//! Rust as C would call them, with NULLs and bad values in every argument.
//!
//! An input is up to 64 calls over small tables of handles (clocks, cells, keyed limiters,
//! policies, keyed policies, reservations, `cg_limiter`s and their reservations) that the calls create and free; every handle still
//! open at the end is freed. Each call may pass NULL for its object or for any output or input
//! pointer, unknown constants (refill, header style), invalid quotas, rate strings of any bytes
//! with an exact length, `CG_NUL_TERMINATED` or a NULL pointer, buffers of any length, policy
//! entries with bad names and dimensions, wrong cost counts, reservations settled twice or by
//! the wrong policy. Freed handles are not passed again (that is undefined behaviour by the
//! C contract, out of scope).
//!
//! Checked on every call:
//!
//! - no call panics across the boundary: `CG_STATUS_PANIC` is never returned;
//! - a NULL object or output pointer is `CG_STATUS_NULL_ARGUMENT`;
//! - a call that fails writes none of its outputs (they are pre-filled with a sentinel and
//!   compared), except the documented `*len` of `CG_STATUS_BUFFER_TOO_SMALL`;
//! - nothing is written past a buffer's length (guard bytes after it are compared);
//! - results agree with the core called directly: limiter decisions with a `Gcra` or
//!   `TokenBucket` mirror driven at the same times (the same manual clock time for
//!   `CG_NOW`), keyed decisions with a `KeyedLimiter` mirror while both placed every key,
//!   parsed quotas and parse error offsets with `Quota::parse`, rendered header lines and 429
//!   bodies with `render_headers` and `render_429_body`; `cg_limiter` decisions (apply,
//!   reserve, settle, a foreign reservation included), statuses, stats, headers in every style
//!   and 429 bodies with a core `Limiter` of the same configuration and seed;
//! - policy decisions are consistent: `count` is the entry count, `binding` an entry, entries
//!   past `count` zero; an admitted check admitted every entry; a reservation handle exactly
//!   when admitted.
#![no_main]

use core::ffi::c_char;
use core::ptr;

use arbitrary::Arbitrary;
use cellgate::{
    render_429_body, render_dimension_headers, render_headers, Clock, Decision, DimensionStyle,
    Gcra, HeaderStyle, KeyedLimiter, Limiter, LimiterDecision, LimiterOptions, LimiterQuota,
    LimiterReservation, ManualClock, OnFull, Op, PolicyHeader, Quota, Refill, Seed, TokenBucket,
};
use cellgate_ffi::*;
use cellgate_fuzz::QuotaSpec;
use libfuzzer_sys::fuzz_target;

/// Handles per kind.
const SLOTS: usize = 4;
/// Guard bytes after every output buffer.
const GUARD: usize = 16;
const GUARD_BYTE: u8 = 0xA5;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// A slot index, or NULL.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Handle {
    Null,
    Slot(u8),
}

/// A quota as C would fill it: valid, or any three numbers.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum QuotaIn {
    Valid(QuotaSpec),
    Raw(u64, u64, u64),
}

impl QuotaIn {
    fn c(self) -> cg_quota {
        match self {
            Self::Valid(spec) => match spec.quota() {
                Some(quota) => cg_quota {
                    rate_cost: quota.rate_cost(),
                    period_ns: quota.period_ns(),
                    burst_cost: quota.burst_cost(),
                },
                None => cg_quota {
                    rate_cost: 1,
                    period_ns: 1,
                    burst_cost: 1,
                },
            },
            Self::Raw(rate_cost, period_ns, burst_cost) => cg_quota {
                rate_cost,
                period_ns,
                burst_cost,
            },
        }
    }
}

fn core_quota(quota: cg_quota) -> Option<Quota> {
    Quota::with_parts(quota.rate_cost, quota.period_ns, quota.burst_cost).ok()
}

/// A time argument: `CG_NOW`, or a time.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Time {
    Now,
    At(u64),
    Small(u16),
}

impl Time {
    fn ns(self) -> u64 {
        match self {
            Self::Now => CG_NOW,
            Self::At(ns) => ns,
            Self::Small(ns) => u64::from(ns) * 1_000,
        }
    }
}

/// How bytes are passed: with their length, NUL-terminated, or as NULL with a length.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pass {
    Exact,
    NulTerminated,
    Null(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum LimitOp {
    Check,
    Peek,
    Force,
    Refund,
}

impl LimitOp {
    /// Whether the decision output may be NULL (force and refund: documented).
    fn out_optional(self) -> bool {
        matches!(self, Self::Force | Self::Refund)
    }
}

#[derive(Arbitrary, Debug)]
struct EntryIn {
    name: Vec<u8>,
    pass: Pass,
    quota: QuotaIn,
    dimension: u8,
}

#[derive(Arbitrary, Debug)]
struct HeaderIn {
    name: Vec<u8>,
    pass: Pass,
    quota: QuotaIn,
    allowed: bool,
    limit: u64,
    remaining: u64,
    retry_after_ns: u64,
    reset_after_ns: u64,
}

/// A table size: small, or sizes no machine can allocate (so that no input allocates more
/// than a few KiB, whatever the system's overcommit policy).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum MaxKeys {
    Small(u8),
    Max,
    /// `2^(59 + n % 5)` keys: their bytes overflow `isize::MAX`.
    Huge(u8),
    /// Just under `isize::MAX` bytes of slots: representable, beyond any address space.
    Boundary,
}

impl MaxKeys {
    fn get(self) -> usize {
        match self {
            Self::Small(n) => usize::from(n),
            Self::Max => usize::MAX,
            Self::Huge(n) => 1usize << (59 + u32::from(n % 5)),
            Self::Boundary => isize::MAX.unsigned_abs() / 32 / 4 * 3,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Call {
    ClockNew {
        slot: u8,
        start: u64,
        null_out: bool,
    },
    ClockFree {
        slot: u8,
    },
    ClockAdvance {
        clock: Handle,
        delta: u64,
    },
    ClockSet {
        clock: Handle,
        now: u64,
    },
    ClockNow {
        clock: Handle,
        null_out: bool,
    },
    MonotonicNow {
        null_out: bool,
    },
    QuotaNew {
        rate: u64,
        period: u64,
        burst: u64,
        null_out: bool,
    },
    QuotaParse {
        text: Vec<u8>,
        pass: Pass,
        null_out: bool,
        null_offset: bool,
    },
    QuotaParseList {
        text: Vec<u8>,
        pass: Pass,
        capacity: u8,
        null_count: bool,
    },
    LimiterNew {
        slot: u8,
        quota: QuotaIn,
        bucket: Option<(u32, u64, Time)>,
        clock: Handle,
        null_out: bool,
    },
    LimiterDecide {
        limiter: Handle,
        op: LimitOp,
        now: Time,
        cost: u64,
        null_out: bool,
    },
    LimiterReset {
        limiter: Handle,
    },
    LimiterQuota {
        limiter: Handle,
        null_out: bool,
    },
    LimiterFree {
        slot: u8,
    },
    KeyedNew {
        slot: u8,
        quota: QuotaIn,
        refill: u32,
        max_keys: MaxKeys,
        clock: Handle,
        null_out: bool,
    },
    KeyedDecide {
        keyed: Handle,
        key: Vec<u8>,
        pass: Pass,
        op: LimitOp,
        now: Time,
        cost: u64,
        null_out: bool,
    },
    KeyedReset {
        keyed: Handle,
        key: Vec<u8>,
        pass: Pass,
        now: Time,
    },
    KeyedStats {
        keyed: Handle,
        null_out: bool,
    },
    KeyedFree {
        slot: u8,
    },
    PolicyNew {
        slot: u8,
        keyed: Option<MaxKeys>,
        entries: Vec<EntryIn>,
        count_delta: i8,
        null_entries: bool,
        clock: Handle,
        null_out: bool,
    },
    PolicyDecide {
        slot: Handle,
        keyed: bool,
        key: Vec<u8>,
        op: LimitOp,
        now: Time,
        costs: Vec<u64>,
        null_costs: bool,
        null_out: bool,
    },
    PolicyReserve {
        slot: Handle,
        keyed: bool,
        key: Vec<u8>,
        reservation: u8,
        now: Time,
        costs: Vec<u64>,
        null_out: bool,
    },
    PolicySettle {
        slot: Handle,
        keyed: bool,
        reservation: Handle,
        now: Time,
        costs: Vec<u64>,
        null_out: bool,
    },
    PolicyReset {
        slot: Handle,
        keyed: bool,
        key: Vec<u8>,
    },
    PolicyRender {
        slot: Handle,
        keyed: bool,
        style: u32,
        now_unix_s: u64,
        buf_len: u16,
        count_delta: i8,
    },
    PolicyFree {
        slot: u8,
    },
    ReservationFree {
        slot: u8,
    },
    RenderHeaders {
        style: u32,
        now_unix_s: u64,
        headers: Vec<HeaderIn>,
        null_policies: bool,
        buf_len: u16,
        null_buf: bool,
        null_len: bool,
        /// `Some(capacity)`: `cg_render_header_fields` with room for `capacity % 6` fields,
        /// instead of `cg_render_headers`.
        fields: Option<u8>,
    },
    Render429 {
        retry_after_ns: u64,
        buf_len: u8,
        null_len: bool,
    },
    ClientKeyParse {
        text: Vec<u8>,
        pass: Pass,
        prefix: u32,
        capacity: u8,
    },
    ClientKeyFromIp {
        address: Vec<u8>,
        prefix: u32,
        capacity: u8,
    },
    StatusMessage {
        status: i32,
    },
    ProductNew {
        slot: u8,
        quotas: Vec<ProductQuotaIn>,
        options: Option<ProductOptionsIn>,
        null_out: bool,
    },
    ProductApply {
        slot: Handle,
        key: Vec<u8>,
        now: Time,
        costs: Option<Vec<Option<u64>>>,
        op: u8,
        null_out: bool,
    },
    ProductReserve {
        slot: Handle,
        reservation: u8,
        key: Vec<u8>,
        now: Time,
        costs: Option<Vec<Option<u64>>>,
        null_out: bool,
    },
    ProductSettle {
        slot: Handle,
        reservation: u8,
        now: Time,
        costs: Option<Vec<Option<u64>>>,
        null_out: bool,
    },
    ProductRender {
        slot: Handle,
        style: u8,
        now_unix_s: u64,
        buf_len: u16,
    },
    ProductStats {
        slot: Handle,
        capacity: u8,
    },
    ProductFree {
        slot: u8,
    },
}

/// One quota of a `cg_limiter`, as C would fill it (`None`: a NULL name, the default one).
#[derive(Arbitrary, Debug)]
struct ProductQuotaIn {
    quota: QuotaIn,
    name: Option<Vec<u8>>,
    dimension: u8,
}

/// `cg_limiter_options` as C would fill them; unknown constants included.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct ProductOptionsIn {
    refill: u8,
    on_full: u8,
    max_keys: MaxKeys,
    clock: Handle,
    /// Picks `block_ns` (see `block_ns_of`).
    block: u8,
}

/// The `block_ns` a fuzzed byte picks: none, tiny, a second, a minute, or the largest.
fn block_ns_of(byte: u8) -> u64 {
    [0, 0, 0, 1, 1_000_000_000, 60_000_000_000, u64::MAX][usize::from(byte % 7)]
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Bytes passed as C would: (pointer, length), with the NUL-terminated copy kept alive.
struct Text {
    bytes: Vec<u8>,
    pass: Pass,
}

impl Text {
    fn new(bytes: &[u8], pass: Pass) -> Self {
        let mut bytes = bytes.to_vec();
        if let Pass::NulTerminated = pass {
            bytes.push(0);
        }
        Self { bytes, pass }
    }

    fn ptr(&self) -> *const c_char {
        match self.pass {
            Pass::Null(_) => ptr::null(),
            _ => self.bytes.as_ptr().cast(),
        }
    }

    fn len(&self) -> usize {
        match self.pass {
            Pass::Exact => self.bytes.len(),
            Pass::NulTerminated => CG_NUL_TERMINATED,
            Pass::Null(len) => usize::from(len),
        }
    }

    /// The bytes the callee sees: up to the first NUL when NUL-terminated; `None` for NULL.
    fn seen(&self) -> Option<&[u8]> {
        match self.pass {
            Pass::Exact => Some(&self.bytes),
            Pass::NulTerminated => {
                let end = self
                    .bytes
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(self.bytes.len());
                Some(&self.bytes[..end])
            }
            Pass::Null(0) => Some(&[]),
            Pass::Null(_) => None,
        }
    }
}

/// An output buffer of `len` bytes followed by guard bytes.
struct Buffer {
    bytes: Vec<u8>,
    len: usize,
}

impl Buffer {
    fn new(len: usize) -> Self {
        Self {
            bytes: vec![GUARD_BYTE; len + GUARD],
            len,
        }
    }

    fn ptr(&mut self) -> *mut u8 {
        self.bytes.as_mut_ptr()
    }

    fn assert_guard(&self, call: &str) {
        assert!(
            self.bytes[self.len..].iter().all(|&b| b == GUARD_BYTE),
            "{call} wrote past the buffer's length"
        );
    }
}

fn sentinel_decision() -> cg_decision {
    cg_decision {
        allowed: true,
        limit: 0xDEAD,
        remaining: 0xBEEF,
        retry_after_ns: 0xFEED,
        reset_after_ns: 0xFACE,
    }
}

fn sentinel_policy_decision() -> cg_policy_decision {
    cg_policy_decision {
        allowed: true,
        binding: 0xDEAD,
        decision: sentinel_decision(),
        count: 0xBEEF,
        decisions: [sentinel_decision(); CG_MAX_POLICY_QUOTAS],
    }
}

fn c_decision(decision: Decision) -> cg_decision {
    cg_decision {
        allowed: decision.allowed,
        limit: decision.limit,
        remaining: decision.remaining,
        retry_after_ns: decision.retry_after_ns,
        reset_after_ns: decision.reset_after_ns,
    }
}

/// Asserts the universal rules: no panic; NULL object or output is NULL_ARGUMENT.
fn check_status(call: &str, status: cg_status, null_pointer: bool) {
    assert_ne!(status, cg_status::Panic, "{call} panicked");
    if null_pointer {
        assert_eq!(
            status,
            cg_status::NullArgument,
            "{call} with a NULL pointer"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Handles and their mirrors
// ---------------------------------------------------------------------------------------------

enum CellMirror {
    Gcra(Gcra),
    Bucket(TokenBucket),
}

impl CellMirror {
    fn apply(&self, op: LimitOp, now: u64, cost: u64) -> Decision {
        macro_rules! apply {
            ($cell:expr) => {
                match op {
                    LimitOp::Check => $cell.check_at(now, cost),
                    LimitOp::Peek => $cell.peek_at(now, cost),
                    LimitOp::Force => $cell.force_at(now, cost),
                    LimitOp::Refund => $cell.refund_at(now, cost),
                }
            };
        }
        match self {
            Self::Gcra(cell) => apply!(cell),
            Self::Bucket(cell) => apply!(cell),
        }
    }

    fn reset(&self) {
        match self {
            Self::Gcra(cell) => cell.reset(),
            Self::Bucket(cell) => cell.reset(),
        }
    }
}

struct LimiterHandle {
    ptr: *mut cg_cell,
    quota: cg_quota,
    mirror: CellMirror,
    /// The mirror of the clock it was built with; `None`: the monotonic clock.
    clock: Option<ManualClock>,
    /// False once an operation ran at the monotonic clock's time (not mirrored).
    in_step: bool,
}

struct KeyedHandle {
    ptr: *mut cg_keyed_limiter,
    mirror: KeyedLimiter<Box<[cellgate::SlotGroup]>>,
    clock: Option<ManualClock>,
    /// False once the mirror and the library may hold different keys: their seeds differ, so
    /// `TableFull` and which idle key is reclaimed can differ. That shows in decisions only
    /// when a refusal differs, or when time steps back (a reclaimed key is a fresh bucket, a
    /// kept one remembers its time; the `keyed` target checks those semantics): decisions are
    /// then no longer compared.
    in_step: bool,
    /// The latest time an operation ran at.
    latest_ns: u64,
}

struct PolicyHandle {
    policy: *mut cg_policy,
    keyed: *mut cg_keyed_policy,
    entries: usize,
    dimensions: usize,
    /// Each entry's dimension.
    entry_dimensions: Vec<usize>,
}

#[derive(Default)]
struct Handles {
    clocks: [Option<(*mut cg_clock, ManualClock)>; SLOTS],
    limiters: [Option<LimiterHandle>; SLOTS],
    keyed: [Option<KeyedHandle>; SLOTS],
    policies: [Option<PolicyHandle>; SLOTS],
    reservations: [Option<*mut cg_reservation>; SLOTS],
    products: [Option<ProductHandle>; SLOTS],
    /// A `cg_limiter_reservation` and its mirror (`None` when its limiter was out of step).
    product_reservations:
        [Option<(*mut cg_limiter_reservation, Option<LimiterReservation>)>; SLOTS],
}

/// A `cg_limiter` and core's `Limiter` built from the same configuration and seed, driven at
/// the same times: they decide the same, byte for byte.
struct ProductHandle {
    ptr: *mut cg_limiter,
    mirror: Limiter,
    clock: Option<ManualClock>,
    /// False once an operation ran at the monotonic clock's time (not mirrored).
    in_step: bool,
    /// The latest decision, the library's and the mirror's (for rendering).
    last: Option<(cg_limiter_decision, LimiterDecision)>,
}

fn slot(index: u8) -> usize {
    usize::from(index) % SLOTS
}

impl Handles {
    fn clock(&self, handle: Handle) -> (*const cg_clock, Option<ManualClock>) {
        match handle {
            Handle::Null => (ptr::null(), None),
            Handle::Slot(index) => match &self.clocks[slot(index)] {
                Some((ptr, mirror)) => (ptr.cast_const(), Some(mirror.clone())),
                None => (ptr::null(), None),
            },
        }
    }

    /// Resolves `CG_NOW` as the library does: the manual clock's time, or `None` for the
    /// monotonic clock (not mirrored).
    fn time(clock: &Option<ManualClock>, now: u64) -> Option<u64> {
        if now != CG_NOW {
            return Some(now);
        }
        clock.as_ref().map(Clock::now_ns)
    }

    fn free_all(&mut self) {
        for (reservation, _) in self
            .product_reservations
            .iter_mut()
            .filter_map(Option::take)
        {
            // SAFETY: a live reservation, freed once.
            unsafe { cg_limiter_reservation_free(reservation) };
        }
        for product in self.products.iter_mut().filter_map(Option::take) {
            // SAFETY: a live handle, freed once.
            unsafe { cg_limiter_free(product.ptr) };
        }
        for reservation in self.reservations.iter_mut().filter_map(Option::take) {
            // SAFETY: a live reservation, freed once.
            unsafe { cg_reservation_free(reservation) };
        }
        for policy in self.policies.iter_mut().filter_map(Option::take) {
            // SAFETY: live handles (or NULL), freed once.
            unsafe {
                cg_policy_free(policy.policy);
                cg_keyed_policy_free(policy.keyed);
            }
        }
        for keyed in self.keyed.iter_mut().filter_map(Option::take) {
            // SAFETY: a live handle, freed once.
            unsafe { cg_keyed_limiter_free(keyed.ptr) };
        }
        for limiter in self.limiters.iter_mut().filter_map(Option::take) {
            // SAFETY: a live handle, freed once.
            unsafe { cg_cell_free(limiter.ptr) };
        }
        for (clock, _) in self.clocks.iter_mut().filter_map(Option::take) {
            // SAFETY: a live handle, freed once (objects built with it keep the time alive).
            unsafe { cg_clock_free(clock) };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The calls
// ---------------------------------------------------------------------------------------------

fn limit_call(
    call: &str,
    status: cg_status,
    out: &cg_decision,
    null_out: bool,
    expected: Option<Decision>,
) {
    check_status(call, status, null_out);
    if status != cg_status::Ok {
        assert_eq!(
            *out,
            sentinel_decision(),
            "{call} failed ({status:?}) but wrote its output"
        );
        return;
    }
    if let Some(expected) = expected {
        assert_eq!(
            *out,
            c_decision(expected),
            "{call}: the library and the core disagree"
        );
    }
}

/// Checks a policy decision's shape; with `costs` (one per dimension), also that an admitted
/// decision has every entry that was asked for something admitted (an entry asked for nothing
/// cannot refuse, though its own decision may show debt).
fn check_policy_decision(
    call: &str,
    out: &cg_policy_decision,
    handle: &PolicyHandle,
    costs: Option<&[u64]>,
) {
    let entries = handle.entries;
    assert_eq!(out.count, entries, "{call}: count");
    assert!(
        out.binding < entries,
        "{call}: binding {} of {entries}",
        out.binding
    );
    assert!(out.decisions[entries..]
        .iter()
        .all(|d| *d == cg_decision::default()));
    if let (true, Some(costs)) = (out.allowed, costs) {
        for (decision, &dimension) in out.decisions.iter().zip(&handle.entry_dimensions) {
            if costs[dimension] > 0 {
                assert!(decision.allowed, "{call}: admitted, an entry refused");
            }
        }
    }
}

fn run(call: &Call, handles: &mut Handles) {
    match call {
        Call::ClockNew {
            slot: index,
            start,
            null_out,
        } => {
            let index = slot(*index);
            if handles.clocks[index].is_some() {
                return;
            }
            let mut out: *mut cg_clock = ptr::null_mut();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            // SAFETY: `out_ptr` is NULL or a writable pointer.
            let status = unsafe { cg_clock_new(*start, out_ptr) };
            check_status("cg_clock_new", status, *null_out);
            if status == cg_status::Ok {
                assert!(!out.is_null());
                handles.clocks[index] = Some((out, ManualClock::new(*start)));
            }
        }
        Call::ClockFree { slot: index } => {
            if let Some((clock, _)) = handles.clocks[slot(*index)].take() {
                // SAFETY: a live clock, freed once.
                unsafe { cg_clock_free(clock) };
            }
        }
        Call::ClockAdvance { clock, delta } => {
            let (ptr, mirror) = handles.clock(*clock);
            // SAFETY: NULL or a live clock.
            let status = unsafe { cg_clock_advance(ptr, *delta) };
            check_status("cg_clock_advance", status, ptr.is_null());
            if let Some(mirror) = mirror {
                mirror.advance_ns(*delta);
            }
        }
        Call::ClockSet { clock, now } => {
            let (ptr, mirror) = handles.clock(*clock);
            // SAFETY: NULL or a live clock.
            let status = unsafe { cg_clock_set(ptr, *now) };
            check_status("cg_clock_set", status, ptr.is_null());
            if let Some(mirror) = mirror {
                mirror.set_ns(*now);
            }
        }
        Call::ClockNow { clock, null_out } => {
            let (ptr, mirror) = handles.clock(*clock);
            let mut out = 0xDEAD_u64;
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut u64
            };
            // SAFETY: NULL or a live clock; NULL or a writable u64.
            let status = unsafe { cg_clock_now(ptr, out_ptr) };
            check_status("cg_clock_now", status, ptr.is_null() || *null_out);
            match mirror {
                Some(mirror) if status == cg_status::Ok => assert_eq!(out, mirror.now_ns()),
                _ => assert_eq!(out, 0xDEAD),
            }
        }
        Call::MonotonicNow { null_out } => {
            let mut first = 0u64;
            let mut second = 0u64;
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut first as *mut u64
            };
            // SAFETY: NULL or a writable u64.
            let status = unsafe { cg_monotonic_now(out_ptr) };
            check_status("cg_monotonic_now", status, *null_out);
            if status == cg_status::Ok {
                // SAFETY: a writable u64.
                assert_eq!(unsafe { cg_monotonic_now(&mut second) }, cg_status::Ok);
                assert!(second >= first, "the monotonic clock went backwards");
            }
        }
        Call::QuotaNew {
            rate,
            period,
            burst,
            null_out,
        } => {
            let sentinel = cg_quota {
                rate_cost: 7,
                period_ns: 7,
                burst_cost: 7,
            };
            let mut out = sentinel;
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut cg_quota
            };
            // SAFETY: NULL or a writable quota.
            let status = unsafe { cg_quota_new(*rate, *period, *burst, out_ptr) };
            check_status("cg_quota_new", status, *null_out);
            let core = Quota::with_parts(*rate, *period, *burst);
            if !*null_out {
                assert_eq!(
                    status == cg_status::Ok,
                    core.is_ok(),
                    "cg_quota_new vs Quota::with_parts"
                );
            }
            if status == cg_status::Ok {
                assert_eq!(
                    (out.rate_cost, out.period_ns, out.burst_cost),
                    (*rate, *period, *burst)
                );
            } else {
                assert_eq!(out, sentinel);
            }
        }
        Call::QuotaParse {
            text,
            pass,
            null_out,
            null_offset,
        } => {
            let text = Text::new(text, *pass);
            let sentinel = cg_quota {
                rate_cost: 7,
                period_ns: 7,
                burst_cost: 7,
            };
            let mut out = sentinel;
            let mut offset = 0xDEAD_usize;
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut cg_quota
            };
            let offset_ptr = if *null_offset {
                ptr::null_mut()
            } else {
                &mut offset as *mut usize
            };
            // SAFETY: the text is readable as its length says (or NULL); outputs NULL or writable.
            let status = unsafe { cg_quota_parse(text.ptr(), text.len(), out_ptr, offset_ptr) };
            check_status("cg_quota_parse", status, *null_out);
            if *null_out {
                return;
            }
            let Some(seen) = text.seen() else {
                assert_eq!(status, cg_status::NullArgument);
                return;
            };
            match std::str::from_utf8(seen) {
                Err(_) => assert_eq!(status, cg_status::InvalidUtf8),
                Ok(seen) => match Quota::parse(seen) {
                    Ok(quota) => {
                        assert_eq!(status, cg_status::Ok, "{seen:?}");
                        assert_eq!(
                            (out.rate_cost, out.period_ns, out.burst_cost),
                            (quota.rate_cost(), quota.period_ns(), quota.burst_cost())
                        );
                    }
                    Err(error) => {
                        assert_ne!(status, cg_status::Ok, "{seen:?}");
                        assert_eq!(out, sentinel);
                        if status == cg_status::ParseError && !*null_offset {
                            assert_eq!(offset, error.offset(), "{seen:?}");
                        }
                    }
                },
            }
        }
        Call::QuotaParseList {
            text,
            pass,
            capacity,
            null_count,
        } => {
            let text = Text::new(text, *pass);
            let capacity = usize::from(*capacity % 12);
            let sentinel = cg_quota {
                rate_cost: 7,
                period_ns: 7,
                burst_cost: 7,
            };
            let mut out = vec![sentinel; capacity + 1];
            let mut count = 0xDEAD_usize;
            let mut offset = 0xDEAD_usize;
            let count_ptr = if *null_count {
                ptr::null_mut()
            } else {
                &mut count as *mut usize
            };
            // SAFETY: `out` holds `capacity` (+1 guard) quotas; the others are NULL or writable.
            let status = unsafe {
                cg_quota_parse_list(
                    text.ptr(),
                    text.len(),
                    out.as_mut_ptr(),
                    capacity,
                    count_ptr,
                    &mut offset,
                )
            };
            check_status("cg_quota_parse_list", status, *null_count);
            assert_eq!(
                out[capacity], sentinel,
                "cg_quota_parse_list wrote past its capacity"
            );
            if status == cg_status::Ok {
                assert!(count <= capacity);
                let seen = std::str::from_utf8(text.seen().expect("readable")).expect("UTF-8");
                let parsed: Vec<Quota> = cellgate::parse_quotas(seen)
                    .map(|q| q.expect("parses"))
                    .collect();
                assert_eq!(parsed.len(), count);
                for (c, quota) in out.iter().zip(&parsed) {
                    assert_eq!(
                        (c.rate_cost, c.period_ns, c.burst_cost),
                        (quota.rate_cost(), quota.period_ns(), quota.burst_cost())
                    );
                }
            }
        }
        Call::LimiterNew {
            slot: index,
            quota,
            bucket,
            clock,
            null_out,
        } => {
            let index = slot(*index);
            if handles.limiters[index].is_some() {
                return;
            }
            let quota = quota.c();
            let (clock_ptr, mirror_clock) = handles.clock(*clock);
            let mut out: *mut cg_cell = ptr::null_mut();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let (status, mirror) = match bucket {
                None => {
                    // SAFETY: NULL or a live clock; NULL or a writable pointer.
                    let status = unsafe { cg_cell_new_gcra(quota, clock_ptr, out_ptr) };
                    (
                        status,
                        core_quota(quota).map(|q| CellMirror::Gcra(Gcra::new(q))),
                    )
                }
                Some((refill, initial, now)) => {
                    let now_ns = now.ns();
                    // SAFETY: NULL or a live clock; NULL or a writable pointer.
                    let status = unsafe {
                        cg_cell_new_token_bucket(
                            quota, *refill, *initial, now_ns, clock_ptr, out_ptr,
                        )
                    };
                    let build_at = Handles::time(&mirror_clock, now_ns);
                    let refill = match refill {
                        0 => Some(Refill::Greedy),
                        1 => Some(Refill::Interval),
                        _ => None,
                    };
                    let mirror = match (core_quota(quota), refill, build_at) {
                        (Some(q), Some(refill), Some(at)) => {
                            let builder = TokenBucket::builder(q).refill(refill);
                            let builder = if *initial == CG_FULL {
                                builder
                            } else {
                                builder.initial_tokens(*initial)
                            };
                            builder.build_at(at).ok().map(CellMirror::Bucket)
                        }
                        _ => None,
                    };
                    if refill.is_none() && !*null_out {
                        assert_ne!(status, cg_status::Ok, "an unknown refill was accepted");
                    }
                    if build_at.is_none() {
                        // Built at the monotonic clock's time: not mirrored.
                        if status == cg_status::Ok {
                            // SAFETY: a live limiter, freed once.
                            unsafe { cg_cell_free(out) };
                        }
                        return;
                    }
                    (status, mirror)
                }
            };
            check_status("cg_cell_new", status, *null_out);
            if status == cg_status::Ok {
                assert!(!out.is_null());
                let mirror = mirror.expect("the library built a limiter the core refuses");
                handles.limiters[index] = Some(LimiterHandle {
                    ptr: out,
                    quota,
                    mirror,
                    clock: mirror_clock,
                    in_step: true,
                });
            } else {
                assert!(out.is_null());
                if !*null_out && bucket.is_none() {
                    assert!(
                        core_quota(quota).is_none(),
                        "the library refused a valid quota: {status:?}"
                    );
                }
            }
        }
        Call::LimiterDecide {
            limiter,
            op,
            now,
            cost,
            null_out,
        } => {
            let handle = match limiter {
                Handle::Null => None,
                Handle::Slot(index) => handles.limiters[slot(*index)].as_mut(),
            };
            let ptr = handle.as_ref().map_or(ptr::null(), |h| h.ptr.cast_const());
            let burst = handle.as_ref().map(|h| h.quota.burst_cost);
            let mut out = sentinel_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut cg_decision
            };
            let now_ns = now.ns();
            let function = match op {
                LimitOp::Check => cg_cell_check,
                LimitOp::Peek => cg_cell_peek,
                LimitOp::Force => cg_cell_force,
                LimitOp::Refund => cg_cell_refund,
            };
            // SAFETY: NULL or a live limiter; NULL or a writable decision.
            let status = unsafe { function(ptr, now_ns, *cost, out_ptr) };
            let expected = handle.and_then(|h| {
                if status != cg_status::Ok {
                    return None;
                }
                let Some(at) = Handles::time(&h.clock, now_ns) else {
                    h.in_step = false;
                    return None;
                };
                let decision = h.mirror.apply(*op, at, *cost);
                h.in_step.then_some(decision)
            });
            // `out` is optional for force and refund (documented).
            let null_rejected = ptr.is_null() || (*null_out && !op.out_optional());
            if *null_out {
                check_status("cg_cell_*", status, null_rejected);
                assert_eq!(out, sentinel_decision());
                return;
            }
            limit_call("cg_cell_*", status, &out, null_rejected, expected);
            if let (Some(burst), cg_status::Ok) = (burst, status) {
                assert_eq!(out.limit, burst);
            }
        }
        Call::LimiterReset { limiter } => {
            let handle = match limiter {
                Handle::Null => None,
                Handle::Slot(index) => handles.limiters[slot(*index)].as_ref(),
            };
            let ptr = handle.map_or(ptr::null(), |h| h.ptr.cast_const());
            // SAFETY: NULL or a live limiter.
            let status = unsafe { cg_cell_reset(ptr) };
            check_status("cg_cell_reset", status, ptr.is_null());
            if let Some(h) = handle {
                h.mirror.reset();
            }
        }
        Call::LimiterQuota { limiter, null_out } => {
            let handle = match limiter {
                Handle::Null => None,
                Handle::Slot(index) => handles.limiters[slot(*index)].as_ref(),
            };
            let ptr = handle.map_or(ptr::null(), |h| h.ptr.cast_const());
            let sentinel = cg_quota {
                rate_cost: 7,
                period_ns: 7,
                burst_cost: 7,
            };
            let mut out = sentinel;
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut cg_quota
            };
            // SAFETY: NULL or a live limiter; NULL or a writable quota.
            let status = unsafe { cg_cell_quota(ptr, out_ptr) };
            check_status("cg_cell_quota", status, ptr.is_null() || *null_out);
            match handle {
                Some(h) if status == cg_status::Ok => assert_eq!(out, h.quota),
                _ => assert_eq!(out, sentinel),
            }
        }
        Call::LimiterFree { slot: index } => {
            if let Some(handle) = handles.limiters[slot(*index)].take() {
                // SAFETY: a live limiter, freed once.
                unsafe { cg_cell_free(handle.ptr) };
            }
        }
        Call::KeyedNew {
            slot: index,
            quota,
            refill,
            max_keys,
            clock,
            null_out,
        } => {
            let index = slot(*index);
            if handles.keyed[index].is_some() {
                return;
            }
            let quota = quota.c();
            let max_keys = max_keys.get();
            let (clock_ptr, mirror_clock) = handles.clock(*clock);
            let mut out: *mut cg_keyed_limiter = ptr::null_mut();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            // SAFETY: NULL or a live clock; NULL or a writable pointer.
            let status =
                unsafe { cg_keyed_limiter_new(quota, *refill, max_keys, clock_ptr, out_ptr) };
            check_status("cg_keyed_limiter_new", status, *null_out);
            if status != cg_status::Ok {
                assert!(out.is_null());
                return;
            }
            let refill = match refill {
                0 => Refill::Greedy,
                1 => Refill::Interval,
                _ => panic!("an unknown refill was accepted"),
            };
            assert!(max_keys <= 255, "a table of {max_keys} keys was allocated");
            let quota_core = core_quota(quota).expect("the library accepted an invalid quota");
            let mirror = KeyedLimiter::with_options(
                quota_core,
                refill,
                max_keys,
                Seed::new(1, 2),
                cellgate::NoClock,
            );
            handles.keyed[index] = Some(KeyedHandle {
                ptr: out,
                mirror,
                clock: mirror_clock,
                in_step: true,
                latest_ns: 0,
            });
        }
        Call::KeyedDecide {
            keyed,
            key,
            pass,
            op,
            now,
            cost,
            null_out,
        } => {
            let handle = match keyed {
                Handle::Null => None,
                Handle::Slot(index) => handles.keyed[slot(*index)].as_mut(),
            };
            let ptr = handle.as_ref().map_or(ptr::null(), |h| h.ptr.cast_const());
            let key = Text::new(key, *pass);
            let mut out = sentinel_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut cg_decision
            };
            let now_ns = now.ns();
            let function = match op {
                LimitOp::Check => cg_keyed_limiter_check,
                LimitOp::Peek => cg_keyed_limiter_peek,
                LimitOp::Force => cg_keyed_limiter_force,
                LimitOp::Refund => cg_keyed_limiter_refund,
            };
            // SAFETY: NULL or a live table; the key readable as its length says (or NULL);
            // NULL or a writable decision.
            let status =
                unsafe { function(ptr, key.ptr().cast(), key.len(), now_ns, *cost, out_ptr) };
            // A NUL-terminated length (`CG_NUL_TERMINATED`) is no length for byte keys.
            let null_key = key.seen().is_none() || matches!(key.pass, Pass::NulTerminated);
            // A NULL output is NULL_ARGUMENT unless the key was refused first.
            let null_rejected = ptr.is_null() || (!null_key && *null_out && !op.out_optional());
            check_status("cg_keyed_limiter_*", status, null_rejected);
            if null_key {
                assert_ne!(status, cg_status::Ok, "accepted a key it cannot read");
            }
            if status != cg_status::Ok || *null_out {
                assert_eq!(out, sentinel_decision(), "{status:?} but wrote its output");
            }
            let Some(handle) = handle else { return };
            if null_key || !matches!(status, cg_status::Ok | cg_status::TableFull) {
                assert_ne!(status, cg_status::Ok, "accepted a key it cannot read");
                return;
            }
            let Some(at) = Handles::time(&handle.clock, now_ns) else {
                // At the monotonic clock's time: not mirrored.
                handle.in_step = false;
                return;
            };
            if at < handle.latest_ns {
                handle.in_step = false;
            }
            handle.latest_ns = handle.latest_ns.max(at);
            let seen = key.seen().expect("readable");
            let mirrored = match op {
                LimitOp::Check => handle.mirror.check_at(seen, at, *cost),
                LimitOp::Peek => Ok(handle.mirror.peek_at(seen, at, *cost)),
                LimitOp::Force => handle.mirror.force_at(seen, at, *cost),
                LimitOp::Refund => Ok(handle.mirror.refund_at(seen, at, *cost)),
            };
            match (status, mirrored) {
                (cg_status::Ok, Ok(decision)) if handle.in_step && !*null_out => {
                    assert_eq!(
                        out,
                        c_decision(decision),
                        "keyed: the library and the core disagree"
                    );
                }
                (cg_status::TableFull, _) | (_, Err(_)) => handle.in_step = false,
                _ => {}
            }
        }
        Call::KeyedReset {
            keyed,
            key,
            pass,
            now,
        } => {
            let handle = match keyed {
                Handle::Null => None,
                Handle::Slot(index) => handles.keyed[slot(*index)].as_mut(),
            };
            let ptr = handle.as_ref().map_or(ptr::null(), |h| h.ptr.cast_const());
            let key = Text::new(key, *pass);
            // SAFETY: NULL or a live table; the key readable as its length says (or NULL).
            let status =
                unsafe { cg_keyed_limiter_reset(ptr, key.ptr().cast(), key.len(), now.ns()) };
            check_status("cg_keyed_limiter_reset", status, ptr.is_null());
            let seen = match key.pass {
                Pass::NulTerminated => None,
                _ => key.seen(),
            };
            if let (Some(h), cg_status::Ok, Some(seen)) = (handle, status, seen) {
                match Handles::time(&h.clock, now.ns()) {
                    Some(at) => {
                        h.in_step &= at >= h.latest_ns;
                        h.latest_ns = h.latest_ns.max(at);
                        h.mirror.reset_at(seen, at);
                    }
                    // At the monotonic clock's time: not mirrored.
                    None => h.in_step = false,
                }
            }
        }
        Call::KeyedStats { keyed, null_out } => {
            let handle = match keyed {
                Handle::Null => None,
                Handle::Slot(index) => handles.keyed[slot(*index)].as_ref(),
            };
            let ptr = handle.map_or(ptr::null(), |h| h.ptr.cast_const());
            let mut out = cg_keyed_stats {
                live_keys: 7,
                reclaimed: 7,
                rejected_full: 7,
                slot_count: 7,
                admitted_untracked: 7,
            };
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            // SAFETY: NULL or a live table; NULL or writable stats.
            let status = unsafe { cg_keyed_limiter_stats(ptr, out_ptr) };
            check_status("cg_keyed_limiter_stats", status, ptr.is_null() || *null_out);
            if let (Some(h), cg_status::Ok) = (handle, status) {
                assert_eq!(out.slot_count, h.mirror.slot_count() as u64);
                assert!(out.live_keys <= out.slot_count);
                assert_eq!(
                    out.admitted_untracked, 0,
                    "a keyed limiter never admits untracked"
                );
            }
        }
        Call::KeyedFree { slot: index } => {
            if let Some(handle) = handles.keyed[slot(*index)].take() {
                // SAFETY: a live table, freed once.
                unsafe { cg_keyed_limiter_free(handle.ptr) };
            }
        }
        Call::PolicyNew {
            slot: index,
            keyed,
            entries,
            count_delta,
            null_entries,
            clock,
            null_out,
        } => {
            let index = slot(*index);
            if handles.policies[index].is_some() {
                return;
            }
            let names: Vec<Text> = entries
                .iter()
                .take(10)
                .map(|e| Text::new(&e.name, e.pass))
                .collect();
            let c_entries: Vec<cg_policy_entry> = entries
                .iter()
                .zip(&names)
                .map(|(entry, name)| cg_policy_entry {
                    name: name.ptr(),
                    name_len: name.len(),
                    quota: entry.quota.c(),
                    dimension: usize::from(entry.dimension % 10),
                })
                .collect();
            // A count that may not match the entries given, but never reads past them.
            let count = c_entries
                .len()
                .saturating_add_signed(isize::from(*count_delta % 3))
                .min(c_entries.len());
            let entries_ptr = if *null_entries {
                ptr::null()
            } else {
                c_entries.as_ptr()
            };
            let (clock_ptr, _) = handles.clock(*clock);
            let mut handle = PolicyHandle {
                policy: ptr::null_mut(),
                keyed: ptr::null_mut(),
                entries: count,
                dimensions: 0,
                entry_dimensions: c_entries[..count].iter().map(|e| e.dimension).collect(),
            };
            let status = match keyed {
                None => {
                    let out_ptr = if *null_out {
                        ptr::null_mut()
                    } else {
                        &mut handle.policy as *mut _
                    };
                    // SAFETY: NULL or `count` readable entries with readable names; NULL or a
                    // live clock; NULL or a writable pointer.
                    unsafe { cg_policy_new(entries_ptr, count, clock_ptr, out_ptr) }
                }
                Some(max_keys) => {
                    let out_ptr = if *null_out {
                        ptr::null_mut()
                    } else {
                        &mut handle.keyed as *mut _
                    };
                    // SAFETY: as above.
                    unsafe {
                        cg_keyed_policy_new(entries_ptr, count, max_keys.get(), clock_ptr, out_ptr)
                    }
                }
            };
            check_status("cg_policy_new", status, *null_out);
            if status != cg_status::Ok {
                assert!(handle.policy.is_null() && handle.keyed.is_null());
                return;
            }
            assert!(
                (1..=CG_MAX_POLICY_QUOTAS).contains(&count),
                "a policy of {count} entries"
            );
            let mut dimensions = 0usize;
            // SAFETY: live policies (one of them NULL); writable output.
            let status = unsafe {
                if handle.keyed.is_null() {
                    cg_policy_dimensions(handle.policy, &mut dimensions)
                } else {
                    cg_keyed_policy_dimensions(handle.keyed, &mut dimensions)
                }
            };
            assert_eq!(status, cg_status::Ok);
            let used: std::collections::BTreeSet<usize> =
                c_entries[..count].iter().map(|e| e.dimension).collect();
            assert_eq!(used.len(), dimensions);
            assert_eq!(
                used.iter().copied().max().map(|d| d + 1),
                Some(dimensions),
                "dimensions skip a number"
            );
            handle.dimensions = dimensions;
            handles.policies[index] = Some(handle);
        }
        Call::PolicyDecide {
            slot: which,
            keyed,
            key,
            op,
            now,
            costs,
            null_costs,
            null_out,
        } => {
            let handle = match which {
                Handle::Null => None,
                Handle::Slot(index) => handles.policies[slot(*index)].as_ref(),
            };
            let costs: Vec<u64> = costs.iter().take(10).copied().collect();
            let costs_ptr = if *null_costs {
                ptr::null()
            } else {
                costs.as_ptr()
            };
            let mut out = sentinel_policy_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let keyed = handle.map_or(*keyed, |h| !h.keyed.is_null());
            let status = if keyed {
                let ptr = handle.map_or(ptr::null(), |h| h.keyed.cast_const());
                let function = match op {
                    LimitOp::Check => cg_keyed_policy_check,
                    LimitOp::Peek => cg_keyed_policy_peek,
                    LimitOp::Force => cg_keyed_policy_force,
                    LimitOp::Refund => cg_keyed_policy_refund,
                };
                // SAFETY: NULL or a live keyed policy; readable key and costs (or NULL);
                // NULL or a writable decision.
                unsafe {
                    function(
                        ptr,
                        key.as_ptr(),
                        key.len(),
                        now.ns(),
                        costs_ptr,
                        costs.len(),
                        out_ptr,
                    )
                }
            } else {
                let ptr = handle.map_or(ptr::null(), |h| h.policy.cast_const());
                let function = match op {
                    LimitOp::Check => cg_policy_check,
                    LimitOp::Peek => cg_policy_peek,
                    LimitOp::Force => cg_policy_force,
                    LimitOp::Refund => cg_policy_refund,
                };
                // SAFETY: NULL or a live policy; readable costs (or NULL); NULL or writable.
                unsafe { function(ptr, now.ns(), costs_ptr, costs.len(), out_ptr) }
            };
            check_status(
                "cg_policy_*",
                status,
                handle.is_none() || (*null_out && !op.out_optional()),
            );
            match handle {
                Some(h) if status == cg_status::Ok && !*null_out => {
                    assert_eq!(
                        costs.len(),
                        h.dimensions,
                        "accepted the wrong number of costs"
                    );
                    check_policy_decision("cg_policy_*", &out, h, Some(&costs));
                }
                Some(h) if status == cg_status::Ok => {
                    assert_eq!(costs.len(), h.dimensions);
                    assert_eq!(out, sentinel_policy_decision(), "wrote through NULL");
                }
                _ => {
                    assert!(
                        keyed || status != cg_status::TableFull,
                        "TABLE_FULL from a policy"
                    );
                    assert_eq!(
                        out,
                        sentinel_policy_decision(),
                        "failed ({status:?}) but wrote its output"
                    );
                }
            }
        }
        Call::PolicyReserve {
            slot: which,
            keyed,
            key,
            reservation,
            now,
            costs,
            null_out,
        } => {
            let index = slot(*reservation);
            if handles.reservations[index].is_some() {
                return;
            }
            let handle = match which {
                Handle::Null => None,
                Handle::Slot(i) => handles.policies[slot(*i)].as_ref(),
            };
            let costs: Vec<u64> = costs.iter().take(10).copied().collect();
            let mut out = sentinel_policy_decision();
            let mut made: *mut cg_reservation = ptr::dangling_mut::<cg_reservation>();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let keyed = handle.map_or(*keyed, |h| !h.keyed.is_null());
            let status = if keyed {
                let ptr = handle.map_or(ptr::null(), |h| h.keyed.cast_const());
                // SAFETY: NULL or a live keyed policy; readable key and costs; outputs writable
                // (or NULL).
                unsafe {
                    cg_keyed_policy_reserve(
                        ptr,
                        key.as_ptr(),
                        key.len(),
                        now.ns(),
                        costs.as_ptr(),
                        costs.len(),
                        out_ptr,
                        &mut made,
                    )
                }
            } else {
                let ptr = handle.map_or(ptr::null(), |h| h.policy.cast_const());
                // SAFETY: as above.
                unsafe {
                    cg_policy_reserve(
                        ptr,
                        now.ns(),
                        costs.as_ptr(),
                        costs.len(),
                        out_ptr,
                        &mut made,
                    )
                }
            };
            check_status("cg_policy_reserve", status, handle.is_none() || *null_out);
            if status != cg_status::Ok {
                assert_eq!(
                    made,
                    ptr::dangling_mut::<cg_reservation>(),
                    "failed but wrote a reservation"
                );
                return;
            }
            let h = handle.expect("a policy");
            check_policy_decision("cg_policy_reserve", &out, h, Some(&costs));
            assert_eq!(
                out.allowed,
                !made.is_null(),
                "a reservation exactly when admitted"
            );
            if !made.is_null() {
                handles.reservations[index] = Some(made);
            }
        }
        Call::PolicySettle {
            slot: which,
            keyed,
            reservation,
            now,
            costs,
            null_out,
        } => {
            let handle = match which {
                Handle::Null => None,
                Handle::Slot(i) => handles.policies[slot(*i)].as_ref(),
            };
            let made = match reservation {
                Handle::Null => ptr::null(),
                Handle::Slot(i) => {
                    handles.reservations[slot(*i)].map_or(ptr::null(), |r| r.cast_const())
                }
            };
            let costs: Vec<u64> = costs.iter().take(10).copied().collect();
            let mut out = sentinel_policy_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let keyed = handle.map_or(*keyed, |h| !h.keyed.is_null());
            let status = if keyed {
                let ptr = handle.map_or(ptr::null(), |h| h.keyed.cast_const());
                // SAFETY: NULL or live handles; readable costs; NULL or a writable decision.
                unsafe {
                    cg_keyed_policy_settle(
                        ptr,
                        now.ns(),
                        made,
                        costs.as_ptr(),
                        costs.len(),
                        out_ptr,
                    )
                }
            } else {
                let ptr = handle.map_or(ptr::null(), |h| h.policy.cast_const());
                // SAFETY: as above.
                unsafe {
                    cg_policy_settle(ptr, now.ns(), made, costs.as_ptr(), costs.len(), out_ptr)
                }
            };
            check_status(
                "cg_policy_settle",
                status,
                handle.is_none() || made.is_null() || *null_out,
            );
            if status == cg_status::Ok {
                check_policy_decision("cg_policy_settle", &out, handle.expect("a policy"), None);
            } else {
                assert_eq!(
                    out,
                    sentinel_policy_decision(),
                    "failed ({status:?}) but wrote its output"
                );
            }
        }
        Call::PolicyReset {
            slot: which,
            keyed,
            key,
        } => {
            let handle = match which {
                Handle::Null => None,
                Handle::Slot(i) => handles.policies[slot(*i)].as_ref(),
            };
            let keyed = handle.map_or(*keyed, |h| !h.keyed.is_null());
            // SAFETY: NULL or a live policy; a readable key.
            let status = unsafe {
                if keyed {
                    cg_keyed_policy_reset(
                        handle.map_or(ptr::null(), |h| h.keyed),
                        key.as_ptr(),
                        key.len(),
                        CG_NOW,
                    )
                } else {
                    cg_policy_reset(handle.map_or(ptr::null(), |h| h.policy))
                }
            };
            check_status("cg_policy_reset", status, handle.is_none());
        }
        Call::PolicyRender {
            slot: which,
            keyed,
            style,
            now_unix_s,
            buf_len,
            count_delta,
        } => {
            let handle = match which {
                Handle::Null => None,
                Handle::Slot(i) => handles.policies[slot(*i)].as_ref(),
            };
            let keyed = handle.map_or(*keyed, |h| !h.keyed.is_null());
            // A made-up decision whose count may not be the policy's entry count.
            let decision = cg_policy_decision {
                count: handle
                    .map_or(1, |h| h.entries)
                    .saturating_add_signed(isize::from(*count_delta % 2))
                    .min(CG_MAX_POLICY_QUOTAS),
                ..cg_policy_decision::default()
            };
            let mut buffer = Buffer::new(usize::from(*buf_len) % 2048);
            let mut len = 0xDEAD_usize;
            let buf_ptr = buffer.ptr().cast::<c_char>();
            // SAFETY: NULL or a live policy; a readable decision; `buf_len` writable bytes; a
            // writable length.
            let status = unsafe {
                if keyed {
                    cg_keyed_policy_render_headers(
                        handle.map_or(ptr::null(), |h| h.keyed),
                        &decision,
                        *style,
                        *now_unix_s,
                        buf_ptr,
                        buffer.len,
                        &mut len,
                    )
                } else {
                    cg_policy_render_headers(
                        handle.map_or(ptr::null(), |h| h.policy),
                        &decision,
                        *style,
                        *now_unix_s,
                        buf_ptr,
                        buffer.len,
                        &mut len,
                    )
                }
            };
            check_status("cg_policy_render_headers", status, handle.is_none());
            buffer.assert_guard("cg_policy_render_headers");
            if status == cg_status::Ok || status == cg_status::BufferTooSmall {
                assert_ne!(len, 0xDEAD);
                assert_eq!(status == cg_status::Ok, len <= buffer.len);
            }
        }
        Call::PolicyFree { slot: index } => {
            if let Some(handle) = handles.policies[slot(*index)].take() {
                // SAFETY: live handles (one of them NULL), freed once.
                unsafe {
                    cg_policy_free(handle.policy);
                    cg_keyed_policy_free(handle.keyed);
                }
            }
        }
        Call::ReservationFree { slot: index } => {
            if let Some(reservation) = handles.reservations[slot(*index)].take() {
                // SAFETY: a live reservation, freed once.
                unsafe { cg_reservation_free(reservation) };
            }
        }
        Call::RenderHeaders {
            style,
            now_unix_s,
            headers,
            null_policies,
            buf_len,
            null_buf,
            null_len,
            fields,
        } => {
            let names: Vec<Text> = headers
                .iter()
                .take(10)
                .map(|h| Text::new(&h.name, h.pass))
                .collect();
            let c_headers: Vec<cg_policy_header> = headers
                .iter()
                .zip(&names)
                .map(|(h, name)| cg_policy_header {
                    name: name.ptr(),
                    name_len: name.len(),
                    quota: h.quota.c(),
                    decision: cg_decision {
                        allowed: h.allowed,
                        limit: h.limit,
                        remaining: h.remaining,
                        retry_after_ns: h.retry_after_ns,
                        reset_after_ns: h.reset_after_ns,
                    },
                })
                .collect();
            let policies_ptr = if *null_policies {
                ptr::null()
            } else {
                c_headers.as_ptr()
            };
            let mut buffer = Buffer::new(usize::from(*buf_len) % 4096);
            let buf_ptr = if *null_buf {
                ptr::null_mut()
            } else {
                buffer.ptr().cast::<c_char>()
            };
            let mut len = 0xDEAD_usize;
            let len_ptr = if *null_len {
                ptr::null_mut()
            } else {
                &mut len as *mut usize
            };
            let capacity = fields.map_or(0, |capacity| usize::from(capacity) % 6);
            let no_field = cg_header_field {
                name: ptr::null(),
                value: ptr::null(),
            };
            // One more than the capacity: a guard entry that must stay untouched.
            let mut c_fields = vec![no_field; capacity + 1];
            let mut field_count = 0xDEAD_usize;
            let status = match fields {
                // SAFETY: NULL or readable policies with readable names; NULL or `buffer.len`
                // writable bytes; NULL or a writable length.
                None => unsafe {
                    cg_render_headers(
                        *style,
                        *now_unix_s,
                        policies_ptr,
                        c_headers.len(),
                        buf_ptr,
                        buffer.len,
                        len_ptr,
                    )
                },
                // SAFETY: as above, and `capacity` writable fields and a writable count.
                Some(_) => unsafe {
                    cg_render_header_fields(
                        *style,
                        *now_unix_s,
                        policies_ptr,
                        c_headers.len(),
                        buf_ptr,
                        buffer.len,
                        len_ptr,
                        c_fields.as_mut_ptr(),
                        capacity,
                        &mut field_count,
                    )
                },
            };
            assert!(
                c_fields[capacity].name.is_null() && c_fields[capacity].value.is_null(),
                "wrote past the fields' capacity"
            );
            check_status("cg_render_headers", status, false);
            buffer.assert_guard("cg_render_headers");
            if *null_len
                || (*null_policies && !c_headers.is_empty())
                || (*null_buf && buffer.len > 0)
            {
                assert!(matches!(
                    status,
                    cg_status::NullArgument | cg_status::EmptyPolicy | cg_status::InvalidArgument
                ));
                return;
            }
            // The same rendering through the core.
            // The policy styles, or the per-dimension ones (3: Anthropic's, 4: OpenAI's), then
            // draft-6 and draft-7 (5, 6).
            let style = match style {
                0 => Ok(HeaderStyle::Ietf),
                1 => Ok(HeaderStyle::Legacy),
                2 => Ok(HeaderStyle::LegacyEpoch {
                    now_unix_s: *now_unix_s,
                }),
                3 => Err(DimensionStyle::anthropic(*now_unix_s)),
                4 => Err(DimensionStyle::openai()),
                5 => Ok(HeaderStyle::Draft6),
                6 => Ok(HeaderStyle::Draft7),
                _ => {
                    assert_ne!(status, cg_status::Ok, "an unknown style was accepted");
                    return;
                }
            };
            let mut core_names = Vec::new();
            for name in &names {
                match name.seen().map(std::str::from_utf8) {
                    Some(Ok(text)) => core_names.push(text),
                    _ => {
                        assert_ne!(status, cg_status::Ok, "an unreadable name was accepted");
                        return;
                    }
                }
            }
            let mut policies = Vec::new();
            for (h, name) in c_headers.iter().zip(&core_names) {
                let Some(quota) = core_quota(h.quota) else {
                    assert_ne!(status, cg_status::Ok, "an invalid quota was accepted");
                    return;
                };
                policies.push(PolicyHeader {
                    name,
                    quota,
                    decision: Decision {
                        allowed: h.decision.allowed,
                        limit: h.decision.limit,
                        remaining: h.decision.remaining,
                        retry_after_ns: h.decision.retry_after_ns,
                        reset_after_ns: h.decision.reset_after_ns,
                    },
                });
            }
            let mut scratch = vec![0u8; 1 << 16];
            let rendered: Result<Vec<(&str, &str)>, _> = match style {
                Ok(style) => render_headers(style, &policies, &mut scratch)
                    .map(|rendered| rendered.iter().collect()),
                Err(style) => render_dimension_headers(style, &policies, &mut scratch)
                    .map(|rendered| rendered.iter().collect()),
            };
            match rendered {
                Ok(pairs) if fields.is_some() => {
                    let needed: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
                    let fits = needed <= buffer.len && pairs.len() <= capacity;
                    assert_eq!(status == cg_status::Ok, fits, "{status:?}, {needed} bytes");
                    if !fits {
                        assert_eq!(status, cg_status::BufferTooSmall);
                        assert!(len == 0xDEAD || len == needed, "reported {len} of {needed}");
                        return;
                    }
                    assert_eq!((len, field_count), (needed, pairs.len()));
                    let range = buffer.bytes.as_ptr_range();
                    for (field, (name, value)) in c_fields.iter().zip(&pairs) {
                        for (pointer, expected) in [(field.name, name), (field.value, value)] {
                            // Read through the buffer, not the pointer: a field must point
                            // into it, at a NUL-terminated string within its length.
                            let pointer = pointer.cast::<u8>();
                            assert!(range.contains(&pointer), "a field outside buf");
                            let offset = pointer as usize - range.start as usize;
                            let rest = &buffer.bytes[offset..buffer.len];
                            let end = rest.iter().position(|&b| b == 0).expect("NUL-terminated");
                            assert_eq!(&rest[..end], expected.as_bytes());
                        }
                    }
                }
                Ok(pairs) => {
                    let lines: String =
                        pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
                    assert_eq!(len, lines.len(), "the line length");
                    if lines.len() <= buffer.len {
                        assert_eq!(status, cg_status::Ok);
                        assert_eq!(&buffer.bytes[..lines.len()], lines.as_bytes());
                    } else {
                        assert_eq!(status, cg_status::BufferTooSmall);
                    }
                }
                Err(_) => assert!(
                    !matches!(status, cg_status::Ok | cg_status::BufferTooSmall),
                    "the core refused what the library rendered"
                ),
            }
        }
        Call::Render429 {
            retry_after_ns,
            buf_len,
            null_len,
        } => {
            let mut buffer = Buffer::new(usize::from(*buf_len) % 64);
            let mut len = 0xDEAD_usize;
            let len_ptr = if *null_len {
                ptr::null_mut()
            } else {
                &mut len as *mut usize
            };
            // SAFETY: `buffer.len` writable bytes; NULL or a writable length.
            let status = unsafe {
                cg_render_429_body(*retry_after_ns, buffer.ptr().cast(), buffer.len, len_ptr)
            };
            check_status("cg_render_429_body", status, false);
            buffer.assert_guard("cg_render_429_body");
            if *null_len {
                return;
            }
            let mut body = [0u8; CG_MAX_429_BODY_BYTES];
            let expected = render_429_body(*retry_after_ns, &mut body).expect("fits");
            assert_eq!(len, expected);
            if expected <= buffer.len {
                assert_eq!(status, cg_status::Ok);
                assert_eq!(&buffer.bytes[..expected], &body[..expected]);
            } else {
                assert_eq!(status, cg_status::BufferTooSmall);
            }
        }
        Call::ClientKeyParse {
            text,
            pass,
            prefix,
            capacity,
        } => {
            let text = Text::new(text, *pass);
            let mut buffer = Buffer::new(usize::from(*capacity) % 32);
            let mut len = 0xDEAD_usize;
            // SAFETY: readable text (or NULL); `buffer.len` writable bytes; a writable length.
            let status = unsafe {
                cg_client_key_parse(
                    text.ptr(),
                    text.len(),
                    *prefix,
                    buffer.ptr(),
                    buffer.len,
                    &mut len,
                )
            };
            check_status("cg_client_key_parse", status, false);
            buffer.assert_guard("cg_client_key_parse");
            if status == cg_status::Ok {
                assert!(len <= buffer.len && len <= CG_CLIENT_KEY_MAX_LEN);
            }
        }
        Call::ClientKeyFromIp {
            address,
            prefix,
            capacity,
        } => {
            let mut buffer = Buffer::new(usize::from(*capacity) % 32);
            let mut len = 0xDEAD_usize;
            // SAFETY: readable address bytes; `buffer.len` writable bytes; a writable length.
            let status = unsafe {
                cg_client_key_from_ip(
                    address.as_ptr(),
                    address.len(),
                    *prefix,
                    buffer.ptr(),
                    buffer.len,
                    &mut len,
                )
            };
            check_status("cg_client_key_from_ip", status, false);
            buffer.assert_guard("cg_client_key_from_ip");
            if status == cg_status::Ok {
                assert!(
                    matches!(address.len(), 4 | 16),
                    "an address of {} bytes",
                    address.len()
                );
                assert!(len <= buffer.len && len <= CG_CLIENT_KEY_MAX_LEN);
            }
        }
        Call::ProductNew { .. }
        | Call::ProductApply { .. }
        | Call::ProductReserve { .. }
        | Call::ProductSettle { .. }
        | Call::ProductRender { .. }
        | Call::ProductStats { .. }
        | Call::ProductFree { .. } => run_product(call, handles),
        Call::StatusMessage { status } => {
            let message = cg_status_message(*status);
            assert!(!message.is_null());
            // SAFETY: a static NUL-terminated string, by the function's contract.
            let text = unsafe { std::ffi::CStr::from_ptr(message) };
            assert!(!text.to_bytes().is_empty());
            // SAFETY: as above.
            let version = unsafe { std::ffi::CStr::from_ptr(cg_version()) };
            let parts: Vec<&str> = version.to_str().expect("ASCII").split('.').collect();
            assert_eq!(parts.len(), 3, "MAJOR.MINOR.PATCH");
            assert!(parts.iter().all(|part| part.parse::<u32>().is_ok()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cg_limiter, against core's Limiter
// ---------------------------------------------------------------------------------------------

/// The seed both the library and the mirror hash keys with, so that they place keys alike.
const PRODUCT_SEED: (u64, u64) = (0x5EED, 0xC0DE);

fn sentinel_limiter_decision() -> cg_limiter_decision {
    cg_limiter_decision {
        allowed: true,
        reason: cg_reason::Untracked,
        binding: 0xDEAD,
        decision: sentinel_decision(),
        count: 0xBEEF,
        decisions: [sentinel_decision(); CG_MAX_POLICY_QUOTAS],
    }
}

/// Costs as C passes them (`None`: NULL and 0) and as core takes them (one per dimension).
fn product_costs(
    costs: &Option<Vec<Option<u64>>>,
    dimensions: usize,
) -> (Vec<u64>, Vec<Option<u64>>) {
    match costs {
        None => (Vec::new(), vec![None; dimensions]),
        Some(costs) if costs.is_empty() => (Vec::new(), vec![None; dimensions]),
        Some(costs) => (
            costs
                .iter()
                .map(|cost| cost.unwrap_or(CG_COST_DEFAULT))
                .collect(),
            costs
                .iter()
                .map(|cost| cost.filter(|&cost| cost != CG_COST_DEFAULT))
                .collect(),
        ),
    }
}

/// Checks a limiter decision's shape: `count` the quota count, `binding` one of them, entries
/// past `count` zero, the binding decision the binding quota's.
fn check_limiter_decision(call: &str, out: &cg_limiter_decision, quotas: usize) {
    assert_eq!(out.count, quotas, "{call}: count");
    assert!(
        out.binding < quotas,
        "{call}: binding {} of {quotas}",
        out.binding
    );
    assert!(out.decisions[quotas..]
        .iter()
        .all(|d| *d == cg_decision::default()));
    assert_eq!(
        out.decision.remaining, out.decisions[out.binding].remaining,
        "{call}"
    );
    assert_eq!(out.decision.allowed, out.allowed, "{call}");
}

fn run_product(call: &Call, handles: &mut Handles) {
    let product = |handles: &Handles, which: &Handle| match which {
        Handle::Null => None,
        Handle::Slot(index) => handles.products[slot(*index)].as_ref().map(|h| h.ptr),
    };
    match call {
        Call::ProductNew {
            slot: index,
            quotas,
            options,
            null_out,
        } => {
            let index = slot(*index);
            if handles.products[index].is_some() {
                return;
            }
            let c_quotas: Vec<cg_limiter_quota> = quotas
                .iter()
                .take(CG_MAX_POLICY_QUOTAS + 1)
                .map(|quota| cg_limiter_quota {
                    quota: quota.quota.c(),
                    name: quota
                        .name
                        .as_ref()
                        .map_or(ptr::null(), |name| name.as_ptr().cast()),
                    name_len: quota.name.as_ref().map_or(0, Vec::len),
                    dimension: usize::from(quota.dimension % 10),
                })
                .collect();
            let (clock_ptr, clock) = match options {
                Some(options) => handles.clock(options.clock),
                None => (ptr::null(), None),
            };
            let c_options = options.map(|options| cg_limiter_options {
                refill: u32::from(options.refill % 3),
                on_full: u32::from(options.on_full % 3),
                max_keys: options.max_keys.get(),
                clock: clock_ptr,
                seeded: true,
                seed_k0: PRODUCT_SEED.0,
                seed_k1: PRODUCT_SEED.1,
                block_ns: block_ns_of(options.block),
            });
            let mut out: *mut cg_limiter = ptr::null_mut();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let options_ptr = c_options
                .as_ref()
                .map_or(ptr::null(), |options| options as *const cg_limiter_options);
            // SAFETY: readable quotas with readable names; NULL or readable options with NULL
            // or a live clock; NULL or a writable pointer.
            let status =
                unsafe { cg_limiter_new(c_quotas.as_ptr(), c_quotas.len(), options_ptr, out_ptr) };
            check_status("cg_limiter_new", status, *null_out);
            if status != cg_status::Ok {
                assert!(out.is_null(), "cg_limiter_new failed but wrote its output");
                return;
            }
            // Without options the seed is random: the mirror cannot place keys alike.
            let Some(c_options) = c_options else {
                // SAFETY: a live handle, freed once.
                unsafe { cg_limiter_free(out) };
                return;
            };
            let names: Vec<Option<&str>> = quotas
                .iter()
                .map(|quota| {
                    quota
                        .name
                        .as_ref()
                        .map(|name| std::str::from_utf8(name).expect("the library took it"))
                })
                .collect();
            let core_quotas: Vec<LimiterQuota<'_>> = c_quotas
                .iter()
                .zip(&names)
                .map(|(quota, name)| LimiterQuota {
                    quota: core_quota(quota.quota).expect("the library took it"),
                    name: *name,
                    dimension: quota.dimension,
                })
                .collect();
            let mut core_options =
                LimiterOptions::with_seed(Seed::new(PRODUCT_SEED.0, PRODUCT_SEED.1));
            core_options.refill = if c_options.refill == CG_REFILL_INTERVAL {
                Refill::Interval
            } else {
                Refill::Greedy
            };
            core_options.on_full = if c_options.on_full == CG_ON_FULL_ALLOW_UNTRACKED {
                OnFull::AllowUntracked
            } else {
                OnFull::Deny
            };
            core_options.max_keys = c_options.max_keys;
            let mirror = Limiter::new(&core_quotas, core_options)
                .expect("the library built a limiter the core refuses")
                .with_block_ns(c_options.block_ns);
            handles.products[index] = Some(ProductHandle {
                ptr: out,
                mirror,
                clock,
                in_step: true,
                last: None,
            });
        }
        Call::ProductApply {
            slot: which,
            key,
            now,
            costs,
            op,
            null_out,
        } => {
            let ptr = product(handles, which);
            let dimensions = ptr
                .and_then(|_| match which {
                    Handle::Slot(i) => handles.products[slot(*i)].as_ref(),
                    Handle::Null => None,
                })
                .map_or(1, |h| h.mirror.dimensions());
            let (c_costs, core_costs) = product_costs(costs, dimensions);
            let mut out = sentinel_limiter_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let op = u32::from(*op % 6);
            // SAFETY: NULL or a live limiter; a readable key and costs; NULL or a writable
            // decision.
            let status = unsafe {
                cg_limiter_apply(
                    ptr.unwrap_or(ptr::null_mut()),
                    key.as_ptr(),
                    key.len(),
                    now.ns(),
                    c_costs.as_ptr(),
                    c_costs.len(),
                    op,
                    out_ptr,
                )
            };
            check_status("cg_limiter_apply", status, ptr.is_none() || *null_out);
            if status != cg_status::Ok {
                assert_eq!(
                    out,
                    sentinel_limiter_decision(),
                    "cg_limiter_apply wrote on {status:?}"
                );
            }
            let Handle::Slot(index) = which else { return };
            let Some(handle) = handles.products[slot(*index)].as_mut() else {
                return;
            };
            if *null_out {
                return;
            }
            let core_op = match op {
                CG_OP_CHECK => Op::Check,
                CG_OP_PEEK => Op::Peek,
                CG_OP_FORCE => Op::Force,
                CG_OP_REFUND => Op::Refund,
                CG_OP_RESET => Op::Reset,
                _ => {
                    assert_eq!(status, cg_status::InvalidArgument, "an unknown op");
                    return;
                }
            };
            let Some(now_ns) = Handles::time(&handle.clock, now.ns()) else {
                handle.in_step = false;
                return;
            };
            if !handle.in_step {
                return;
            }
            match handle.mirror.apply_at(key, now_ns, &core_costs, core_op) {
                Ok(decision) => {
                    assert_eq!(
                        status,
                        cg_status::Ok,
                        "the core decided, the library refused"
                    );
                    assert_eq!(out, cg_limiter_decision::from(&decision), "library vs core");
                    check_limiter_decision("cg_limiter_apply", &out, handle.mirror.quotas().len());
                    handle.last = Some((out, decision));
                }
                Err(error) => assert_eq!(status, cg_status::from(error), "{error}"),
            }
        }
        Call::ProductReserve {
            slot: which,
            reservation,
            key,
            now,
            costs,
            null_out,
        } => {
            let index = slot(*reservation);
            if handles.product_reservations[index].is_some() {
                return;
            }
            let ptr = product(handles, which);
            let dimensions = match which {
                Handle::Slot(i) => handles.products[slot(*i)].as_ref(),
                Handle::Null => None,
            }
            .map_or(1, |h| h.mirror.dimensions());
            let (c_costs, core_costs) = product_costs(costs, dimensions);
            let mut out = sentinel_limiter_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            let mut held: *mut cg_limiter_reservation = ptr::null_mut();
            // SAFETY: NULL or a live limiter; a readable key and costs; NULL or a writable
            // decision; a writable reservation pointer.
            let status = unsafe {
                cg_limiter_reserve(
                    ptr.unwrap_or(ptr::null_mut()),
                    key.as_ptr(),
                    key.len(),
                    now.ns(),
                    c_costs.as_ptr(),
                    c_costs.len(),
                    out_ptr,
                    &mut held,
                )
            };
            check_status("cg_limiter_reserve", status, ptr.is_none() || *null_out);
            if status != cg_status::Ok {
                assert!(
                    held.is_null(),
                    "cg_limiter_reserve failed but gave a reservation"
                );
                assert_eq!(out, sentinel_limiter_decision());
                return;
            }
            assert_eq!(
                out.allowed,
                !held.is_null(),
                "a reservation exactly when admitted"
            );
            let Handle::Slot(i) = which else { return };
            let Some(handle) = handles.products[slot(*i)].as_mut() else {
                return;
            };
            let mirror = match Handles::time(&handle.clock, now.ns()) {
                Some(now_ns) if handle.in_step => {
                    let reserved = handle
                        .mirror
                        .reserve_at(key, now_ns, &core_costs)
                        .expect("the library reserved");
                    assert_eq!(
                        out,
                        cg_limiter_decision::from(&reserved.decision),
                        "reserve"
                    );
                    handle.last = Some((out, reserved.decision));
                    reserved.reservation
                }
                _ => {
                    handle.in_step = false;
                    None
                }
            };
            if !held.is_null() {
                handles.product_reservations[index] = Some((held, mirror));
            }
        }
        Call::ProductSettle {
            slot: which,
            reservation,
            now,
            costs,
            null_out,
        } => {
            let Some((held, mirror)) = handles.product_reservations[slot(*reservation)].take()
            else {
                return;
            };
            let ptr = product(handles, which);
            let dimensions = match which {
                Handle::Slot(i) => handles.products[slot(*i)].as_ref(),
                Handle::Null => None,
            }
            .map_or(1, |h| h.mirror.dimensions());
            let (c_costs, core_costs) = product_costs(costs, dimensions);
            let mut out = sentinel_limiter_decision();
            let out_ptr = if *null_out {
                ptr::null_mut()
            } else {
                &mut out as *mut _
            };
            // SAFETY: NULL or a live limiter; a live reservation, consumed here whatever the
            // status; readable costs; NULL or a writable decision.
            let status = unsafe {
                cg_limiter_settle(
                    ptr.unwrap_or(ptr::null_mut()),
                    now.ns(),
                    held,
                    c_costs.as_ptr(),
                    c_costs.len(),
                    out_ptr,
                )
            };
            check_status("cg_limiter_settle", status, ptr.is_none() || *null_out);
            if status != cg_status::Ok {
                assert_eq!(
                    out,
                    sentinel_limiter_decision(),
                    "cg_limiter_settle wrote on {status:?}"
                );
            }
            let Handle::Slot(i) = which else { return };
            let Some(handle) = handles.products[slot(*i)].as_mut() else {
                return;
            };
            if *null_out || !handle.in_step {
                return;
            }
            // A settle the mirror cannot follow (its reservation or its time unknown) leaves
            // the two apart from here on.
            let (Some(mirror), Some(now_ns)) = (mirror, Handles::time(&handle.clock, now.ns()))
            else {
                handle.in_step = false;
                return;
            };
            match handle.mirror.settle_at(now_ns, mirror, &core_costs) {
                Ok(decision) => {
                    assert_eq!(
                        status,
                        cg_status::Ok,
                        "the core settled, the library refused"
                    );
                    assert_eq!(out, cg_limiter_decision::from(&decision), "settle");
                    handle.last = Some((out, decision));
                }
                Err(error) => assert_eq!(status, cg_status::from(error), "{error}"),
            }
        }
        Call::ProductRender {
            slot: which,
            style,
            now_unix_s,
            buf_len,
        } => {
            let Handle::Slot(i) = which else { return };
            let Some(handle) = handles.products[slot(*i)].as_ref() else {
                return;
            };
            let Some((decision, mirror_decision)) = handle.last.as_ref() else {
                return;
            };
            let style = u32::from(*style % 8);
            let mut buffer = Buffer::new(usize::from(*buf_len) % 2048);
            let mut len = 0xDEAD_usize;
            // SAFETY: a live limiter; a readable decision; `buffer.len` writable bytes.
            let status = unsafe {
                cg_limiter_render_headers(
                    handle.ptr,
                    decision,
                    style,
                    *now_unix_s,
                    buffer.ptr().cast(),
                    buffer.len,
                    &mut len,
                )
            };
            check_status("cg_limiter_render_headers", status, false);
            buffer.assert_guard("cg_limiter_render_headers");
            let mut scratch = vec![0u8; 1 << 16];
            let rendered: Result<Vec<(&str, &str)>, _> = match style {
                0 => handle
                    .mirror
                    .render_headers(mirror_decision, HeaderStyle::Ietf, &mut scratch)
                    .map(|r| r.iter().collect()),
                1 => handle
                    .mirror
                    .render_headers(mirror_decision, HeaderStyle::Legacy, &mut scratch)
                    .map(|r| r.iter().collect()),
                2 => handle
                    .mirror
                    .render_headers(
                        mirror_decision,
                        HeaderStyle::LegacyEpoch {
                            now_unix_s: *now_unix_s,
                        },
                        &mut scratch,
                    )
                    .map(|r| r.iter().collect()),
                3 => handle
                    .mirror
                    .render_dimension_headers(
                        mirror_decision,
                        DimensionStyle::anthropic(*now_unix_s),
                        &mut scratch,
                    )
                    .map(|r| r.iter().collect()),
                4 => handle
                    .mirror
                    .render_dimension_headers(
                        mirror_decision,
                        DimensionStyle::openai(),
                        &mut scratch,
                    )
                    .map(|r| r.iter().collect()),
                5 => handle
                    .mirror
                    .render_headers(mirror_decision, HeaderStyle::Draft6, &mut scratch)
                    .map(|r| r.iter().collect()),
                6 => handle
                    .mirror
                    .render_headers(mirror_decision, HeaderStyle::Draft7, &mut scratch)
                    .map(|r| r.iter().collect()),
                _ => {
                    assert_eq!(status, cg_status::InvalidArgument, "an unknown style");
                    return;
                }
            };
            match rendered {
                Ok(pairs) => {
                    let lines: String =
                        pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
                    assert_eq!(len, lines.len(), "the line length");
                    if lines.len() <= buffer.len {
                        assert_eq!(status, cg_status::Ok);
                        assert_eq!(&buffer.bytes[..lines.len()], lines.as_bytes());
                    } else {
                        assert_eq!(status, cg_status::BufferTooSmall);
                    }
                }
                Err(error) => assert_eq!(status, cg_status::from(error), "{error}"),
            }
            let mut body = Buffer::new(usize::from(*buf_len) % 64);
            let mut body_len = 0xDEAD_usize;
            // SAFETY: as above.
            let status = unsafe {
                cg_limiter_render_429_body(
                    handle.ptr,
                    decision,
                    body.ptr().cast(),
                    body.len,
                    &mut body_len,
                )
            };
            check_status("cg_limiter_render_429_body", status, false);
            body.assert_guard("cg_limiter_render_429_body");
            let mut expected = [0u8; CG_MAX_429_BODY_BYTES];
            let expected_len = handle
                .mirror
                .render_429_body(mirror_decision, &mut expected)
                .expect("fits");
            assert_eq!(body_len, expected_len);
            if status == cg_status::Ok {
                assert_eq!(&body.bytes[..body_len], &expected[..expected_len]);
            } else {
                assert_eq!(status, cg_status::BufferTooSmall);
            }
        }
        Call::ProductStats {
            slot: which,
            capacity,
        } => {
            let ptr = product(handles, which);
            let mut stats = [cg_keyed_stats::default(); CG_MAX_POLICY_QUOTAS];
            let capacity = usize::from(*capacity) % (CG_MAX_POLICY_QUOTAS + 1);
            let mut count = 0xDEAD_usize;
            // SAFETY: NULL or a live limiter; `capacity` writable entries; a writable count.
            let status = unsafe {
                cg_limiter_stats(
                    ptr.unwrap_or(ptr::null_mut()),
                    stats.as_mut_ptr(),
                    capacity,
                    &mut count,
                )
            };
            check_status("cg_limiter_stats", status, ptr.is_none());
            let Handle::Slot(i) = which else { return };
            let Some(handle) = handles.products[slot(*i)].as_ref() else {
                return;
            };
            let quotas = handle.mirror.quotas().len();
            assert_eq!(count, quotas);
            assert_eq!(status == cg_status::Ok, capacity >= quotas, "{status:?}");
            if status == cg_status::Ok && handle.in_step {
                for (c, core) in stats.iter().zip(handle.mirror.stats()) {
                    assert_eq!(
                        (c.live_keys, c.rejected_full, c.admitted_untracked),
                        (core.live_keys, core.rejected_full, core.admitted_untracked)
                    );
                    assert!(c.live_keys <= c.slot_count);
                }
            }
        }
        Call::ProductFree { slot: index } => {
            if let Some(handle) = handles.products[slot(*index)].take() {
                // SAFETY: a live handle, freed once.
                unsafe { cg_limiter_free(handle.ptr) };
            }
        }
        _ => unreachable!("not a cg_limiter call"),
    }
}

fuzz_target!(|calls: Vec<Call>| {
    let mut handles = Handles::default();
    for call in calls.iter().take(64) {
        run(call, &mut handles);
    }
    handles.free_all();
});
