//! [`KeyedLimiter`]: one bucket per key in a fixed table, with no allocation after construction.
//!
//! # Layout
//!
//! The table is an array of 192-byte [`SlotGroup`]s, each eight slots (`max_keys × 4/3`
//! slots, rounded up to whole groups; a hash is mapped onto them by a multiply-shift, not a
//! mask): the eight 64-bit key fingerprints packed in the group's first cache line, then the
//! eight buckets' 128-bit states ([`CellState`]) in the next two. A lookup reads fingerprints a
//! line at a time, then the one state of the slot it found: about two lines for a present key,
//! and 24 bytes per slot (32 per configured key). There are no pointers in it, so the same
//! bytes can live in a caller's buffer or a shared mapping (that needs truly lock-free 64- and
//! 128-bit atomics, not portable-atomic's lock-based fallback).
//!
//! A key is hashed with SipHash-1-3 under a 128-bit per-instance seed to a 128-bit value: the
//! low half picks the first home slot, the high half is the fingerprint stored in the slot,
//! and the two halves together pick a second home. The key lives in one of the
//! [`PROBE_WINDOW`] slots from its first home (windows slide across group boundaries) or, if
//! those all hold live keys when it arrives, from its second (two choices: with one window,
//! refusals began near half of `max_keys`; with two, near 70 to 80 %, see `BENCHMARKS.md`).
//! Most keys live in their first window, so a lookup reads the second only when the first
//! does not hold the key. Without the seed an attacker cannot aim keys at one window.
//!
//! # Distinct keys never share state, with probability bounded by fingerprints
//!
//! Two keys share a slot only if they have the same 64-bit fingerprint and one lives in the
//! other's windows. A lookup compares at most `2 × PROBE_WINDOW` fingerprints, each equal to
//! the new key's with probability `2^-64` (SipHash is a pseudo-random function of the seeded
//! key, and a key's place in a window says nothing of its fingerprint), so the chance that a
//! new key is mistaken for a live one is at most `32 / 2^64`, about 2 × 10⁻¹⁸, per lookup,
//! whatever the size of the table.
//!
//! # Concurrency protocol
//!
//! The check of a present key is lock-free: read the fingerprint, read the state, confirm the
//! fingerprint, and compare-exchange the state (the same loop as a single cell).
//!
//! A slot changes owner only through its *state* word: the inserter compare-exchanges the
//! state it observed (an empty slot's, or an idle key's full bucket) to a busy word, writes the new
//! fingerprint, and publishes a full bucket whose `last_ns` is greater than the old owner's.
//! Because `last_ns` only grows within a slot, a checker still holding an old owner's state can
//! never see its compare-exchange succeed on the new owner's (no ABA).
//!
//! A claim is a *busy* state word: `last_ns == u64::MAX` (no real state has it, see
//! `MAX_NOW_NS`), the other half a stamp of when the claim was made. In one process a claim
//! always ends within a few instructions. A table shared by processes can see its claimant
//! killed in between, which would leave the slot busy for ever (its keys' checks would spin);
//! there [`KeyedLimiter::with_claim_recovery`] lets any caller that meets a claim older than a
//! timeout take the slot over and empty it. That over-admits nothing: a slot is claimed only
//! from a full bucket (an empty slot's, an idle key's; an inserter whose fingerprint read is
//! older than its state read may see another key's fresh state, and claims it only if that is
//! full too), and the claimant charges its new key only after publishing, so every key the
//! dead claim touched is a full bucket, which is what an absent key is. The empty slot's
//! state is a full bucket at the recovery time, later than any state a checker of the old
//! owner can hold (no ABA).
//!
//! # Where the code is
//!
//! This file holds the API and the hot path (hash, lookup, the compare-exchange loop of a
//! present key); `slot.rs` the table's bytes ([`SlotGroup`], [`Seed`], [`TableHeader`], the busy
//! words); `insert.rs` the insert protocol, reclaiming and claim recovery; `full.rs` the
//! answer for a new key that finds no room ([`OnFull`]).
//!
//! Two threads inserting the same new key settle it through the fingerprints: each writes its
//! fingerprint, then meets the other at the first home slot's fingerprint word with an
//! acquire-release read-modify-write that changes nothing (`fetch_or(0)`), so the later of the
//! two sees the earlier's fingerprint, then looks for other copies: a published copy wins;
//! between two unpublished copies the one nearer the home slot wins, and the other withdraws.
//! Every write of a fingerprint word is a read-modify-write (a `swap`), so that no plain store
//! ends the release sequence the meeting relies on. Inserting may therefore wait for a
//! concurrent insert of the same key; checking an existing key never waits.
//!
//! # Time, and where a key differs from a lone cell
//!
//! Each key decides exactly as a lone [`Gcra`](crate::Gcra) or [`TokenBucket`](crate::TokenBucket)
//! with the same rule would, with three differences, all found by the `keyed` fuzz target,
//! which models them:
//!
//! - Times are clamped to `u64::MAX − 1` (the greatest value is the slot's busy marker), so at
//!   `now_ns == u64::MAX` a key decides as at `u64::MAX − 1`; this shows only with an interval
//!   refill whose period divides `u64::MAX`.
//! - A key without a slot (never seen, or idle and reclaimed) has no time of its own: it is a
//!   full bucket at whatever `now_ns` the call brings, where a lone cell would still treat a
//!   reading earlier than its latest as no time passing. A key is reclaimed only once its
//!   bucket is full again, so this can only admit a request carrying a reading older than the
//!   reclaim, from a clock that is not monotonic across threads; with one monotonic clock it
//!   never shows.
//! - [`reset_at`](KeyedLimiter::reset_at) makes the key full at `max(now_ns, its latest time)`
//!   (its slot becomes reclaimable), where a cell's `reset()`, which takes no time, keeps its
//!   latest time.

use crate::clock::{Clock, NoClock};
use crate::decision::Decision;
use crate::quota::Quota;
use crate::rule::{CellState, Op, Outcome, Refill, Rule};
use crate::sync::{spin, AtomicU64, Ordering};
use core::fmt;
use siphasher::sip128::{Hasher128, SipHasher13};

mod full;
mod insert;
mod slot;
pub use full::{KeyedDecision, OnFull, Reason};
use slot::{busy_word, is_busy, SlotRef, EMPTY, MAX_NOW_NS};
pub use slot::{
    group_count_for, slot_count_for, ClaimRecovery, Seed, SlotGroup, TableHeader, GROUP_SLOTS,
    TABLE_LAYOUT_VERSION,
};

/// How many slots from each of its two homes a key may live in: 16, whose fingerprints are
/// two or three cache lines (8 to a line, see [`SlotGroup`]). (4 under loom, to keep its
/// models small.)
pub const PROBE_WINDOW: usize = if cfg!(loom) { 4 } else { 16 };

/// A key's hash under a table's seed: where it lives and how it is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash {
    home: u64,
    fingerprint: u64,
}

impl KeyHash {
    /// A hash no table produces (fingerprint 0 marks empty slots): found nowhere.
    #[cfg(feature = "alloc")]
    pub(crate) const EMPTY: Self = Self {
        home: 0,
        fingerprint: 0,
    };
}

/// A new key could not be placed: every slot in both its windows holds a live key.
///
/// No live key is ever evicted to make room, so flooding new keys cannot reset an exhausted
/// one. Callers usually answer 429 (treat the unknown client as limited) or 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableFull;

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the keyed limiter's table has no room for a new key")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TableFull {}

/// Why a table could not be built over the given slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableError {
    /// Fewer than [`PROBE_WINDOW`] slots.
    BadSlotCount,
    /// The slots could not be allocated: their size in bytes overflows, or the allocator
    /// refused it ([`KeyedLimiter::try_with_options`]).
    OutOfMemory,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSlotCount => {
                f.write_str("a keyed table needs at least PROBE_WINDOW (16) slots")
            }
            Self::OutOfMemory => f.write_str("the keyed table's slots could not be allocated"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TableError {}

/// Counters of a keyed limiter (a relaxed snapshot; exact once threads are quiet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyedStats {
    /// Keys holding a slot now.
    pub live_keys: u64,
    /// Slots taken over from idle keys (whose bucket was full again).
    pub reclaimed: u64,
    /// New keys refused because both their windows held only live keys (whatever the
    /// [`OnFull`] policy then answered).
    pub rejected_full: u64,
    /// New keys admitted without a slot under [`OnFull::AllowUntracked`].
    pub admitted_untracked: u64,
}

#[derive(Debug, Default)]
struct Counters {
    /// Keys placed in an empty slot: the live keys, as a reclaim replaces one key by another.
    /// One counter bumped per insert (this or `reclaimed`), not two.
    filled: AtomicU64,
    /// Keys placed in an idle key's slot.
    reclaimed: AtomicU64,
    rejected_full: AtomicU64,
    admitted_untracked: AtomicU64,
    recovered_claims: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        // Relaxed: a statistic; it orders nothing.
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Operation numbers for [`KeyedLimiter::apply_op`]'s const parameter (an enum cannot be one
/// on stable Rust).
const OP_CHECK: u8 = 0;
const OP_PEEK: u8 = 1;
const OP_FORCE: u8 = 2;
const OP_REFUND: u8 = 3;
const OP_RESET: u8 = 4;

/// The operation numbered `op` (one of the `OP_` constants).
const fn op_of(op: u8) -> Op {
    match op {
        OP_CHECK => Op::Check,
        OP_PEEK => Op::Peek,
        OP_FORCE => Op::Force,
        OP_REFUND => Op::Refund,
        _ => Op::Reset,
    }
}

/// How [`KeyedLimiter::update_in_slot`] decides from a slot's state: one operation of the
/// rule ([`RuleOp`]), or any closure (a policy's charge, a block).
pub(crate) trait Decide {
    /// The outcome of deciding on `state`.
    fn decide(&self, state: CellState) -> Outcome;
}

impl<F: Fn(CellState) -> Outcome> Decide for F {
    #[inline(always)]
    fn decide(&self, state: CellState) -> Outcome {
        self(state)
    }
}

/// One operation of the table's rule at one time and cost, decided inline at every call.
///
/// A struct rather than a closure: LLVM kept a closure's body (called from the found path and
/// again after a racing insert) out of line, so every check returned its `Outcome` through
/// memory, and the copy of the decision's padding bytes stalled store-to-load forwarding
/// twice per check (BENCHMARKS.md, round 10).
#[derive(Clone, Copy)]
struct RuleOp<'a> {
    rule: &'a Rule,
    now_ns: u64,
    cost: u64,
    op: Op,
}

impl Decide for RuleOp<'_> {
    #[inline(always)]
    fn decide(&self, state: CellState) -> Outcome {
        self.rule.decide(state, self.now_ns, self.cost, self.op)
    }
}

/// Where a key was found, or why not.
enum Lookup {
    Found(usize),
    Absent,
}

/// A table of buckets, one per key, all with the same quota.
///
/// `S` is the slot storage: `Box<[SlotGroup]>` (with `alloc`, see [`KeyedLimiter::new`]) or a
/// caller's `&[SlotGroup]` ([`KeyedLimiter::with_slots`]). Operations return `Err(TableFull)` only
/// when a *new* key cannot be placed; a key's decisions are exactly those of a [`Gcra`]
/// (or [`TokenBucket`]) of its own.
///
/// A key that is absent is a full bucket: `peek`, `refund` and `reset` on it insert nothing,
/// and neither does a `check` that is denied or of cost 0. Idle keys (whose bucket has
/// refilled) are reclaimed lazily when a new key needs their slot, which changes no decision:
/// the key comes back as the full bucket it was.
///
/// [`Gcra`]: crate::Gcra
/// [`TokenBucket`]: crate::TokenBucket
///
/// ```
/// # #[cfg(feature = "std")] {
/// use cellgate::{KeyedLimiter, Quota};
/// let limiter = KeyedLimiter::new(Quota::per_second(2).unwrap(), 1_000);
/// assert!(limiter.check_at(b"alice", 0, 2).unwrap().allowed);
/// assert!(!limiter.check_at(b"alice", 0, 1).unwrap().allowed);
/// assert!(limiter.check_at(b"bob", 0, 1).unwrap().allowed);
/// # }
/// ```
pub struct KeyedLimiter<S, C = NoClock> {
    slots: S,
    rule: Rule,
    seed: Seed,
    counters: Counters,
    clock: C,
    recovery: Option<ClaimRecovery>,
}

impl<S: AsRef<[SlotGroup]>, C> fmt::Debug for KeyedLimiter<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("quota", &self.rule.quota())
            .field("refill", &self.rule.refill())
            .field("slots", &self.slots.as_ref().len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "alloc")]
impl KeyedLimiter<alloc::boxed::Box<[SlotGroup]>, NoClock> {
    /// A GCRA table for `max_keys` keys (`max_keys × 4/3` slots), a random seed, and explicit
    /// times. Refusals ([`TableFull`], both windows of a new key full of live keys) begin at
    /// about 70 % of `max_keys` live keys; with `max_keys` live at once, 0.09 % of them were
    /// refused (measured, see `BENCHMARKS.md`): size `max_keys` above the live keys you expect
    /// (idle keys are reclaimed and do not count).
    #[cfg(feature = "std")]
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        Self::with_options(quota, Refill::Greedy, max_keys, Seed::random(), NoClock)
    }
}

#[cfg(feature = "alloc")]
impl<C> KeyedLimiter<alloc::boxed::Box<[SlotGroup]>, C> {
    /// A table sized for `max_keys` with every option given: refill mode, seed and clock.
    /// All memory is allocated here; no operation allocates.
    pub fn with_options(
        quota: Quota,
        refill: Refill,
        max_keys: usize,
        seed: Seed,
        clock: C,
    ) -> Self {
        let slots: alloc::boxed::Box<[SlotGroup]> = (0..group_count_for(max_keys))
            .map(|_| SlotGroup::new())
            .collect();
        Self::build(slots, quota, refill, seed, clock)
    }

    /// As [`with_options`](Self::with_options), but a size the allocator refuses is an error
    /// instead of its abort: for sizes that come from configuration or from another runtime.
    ///
    /// The size is first asked of the allocator fallibly, then the table is allocated and
    /// written as `with_options` does. The groups are cache-line aligned, which the system
    /// allocator serves with an aligned allocation and explicit zeroing, so the whole table
    /// (`group_count_for(max_keys) × 192` bytes) is resident from here on. For a table
    /// committed only as keys touch it, and returned to the system when dropped, build it
    /// over `cellgate_host::TableSlots::heap` (an anonymous mapping; what every binding
    /// does). Memory that another thread takes between the two steps, or that Linux's
    /// overcommit promised but cannot back, can still end in the allocator's abort or the OOM
    /// killer.
    ///
    /// # Errors
    /// [`TableError::OutOfMemory`] when `group_count_for(max_keys) × 192` bytes overflow or
    /// the allocator refuses them.
    pub fn try_with_options(
        quota: Quota,
        refill: Refill,
        max_keys: usize,
        seed: Seed,
        clock: C,
    ) -> Result<Self, TableError> {
        let mut probe: alloc::vec::Vec<SlotGroup> = alloc::vec::Vec::new();
        probe
            .try_reserve_exact(group_count_for(max_keys))
            .map_err(|_| TableError::OutOfMemory)?;
        drop(probe);
        Ok(Self::with_options(quota, refill, max_keys, seed, clock))
    }
}

impl<'a, C> KeyedLimiter<&'a [SlotGroup], C> {
    /// A table over caller-provided slots (for `no_std` without `alloc`). The slots must be
    /// fresh (`SlotGroup::new()`), at least [`PROBE_WINDOW`] slots ([`GROUP_SLOTS`] per group).
    ///
    /// # Errors
    /// [`TableError::BadSlotCount`].
    pub fn with_slots(
        slots: &'a [SlotGroup],
        quota: Quota,
        refill: Refill,
        seed: Seed,
        clock: C,
    ) -> Result<Self, TableError> {
        if slots.len().saturating_mul(GROUP_SLOTS) < PROBE_WINDOW {
            return Err(TableError::BadSlotCount);
        }
        Ok(Self::build(slots, quota, refill, seed, clock))
    }
}

impl<S: AsRef<[SlotGroup]>, C> KeyedLimiter<S, C> {
    /// A table over any slot storage the caller owns or shares (a mapping shared by
    /// processes, a static buffer): [`with_slots`](KeyedLimiter::with_slots) for storage
    /// that is not a borrowed slice. The groups must be fresh (`SlotGroup::new()`, which is all
    /// zero bytes) or hold a table built with the same quota, refill, seed and
    /// [`TABLE_LAYOUT_VERSION`]; at least [`PROBE_WINDOW`] of them.
    ///
    /// # Errors
    /// [`TableError::BadSlotCount`].
    pub fn with_storage(
        slots: S,
        quota: Quota,
        refill: Refill,
        seed: Seed,
        clock: C,
    ) -> Result<Self, TableError> {
        if slots.as_ref().len().saturating_mul(GROUP_SLOTS) < PROBE_WINDOW {
            return Err(TableError::BadSlotCount);
        }
        Ok(Self::build(slots, quota, refill, seed, clock))
    }

    fn build(slots: S, quota: Quota, refill: Refill, seed: Seed, clock: C) -> Self {
        Self {
            slots,
            rule: Rule::new(quota, refill),
            seed,
            counters: Counters::default(),
            clock,
            recovery: None,
        }
    }

    /// Turns on the recovery of claims left by a dead process (see [`ClaimRecovery`]), for a
    /// table whose slots are shared by processes. Every insert then reads `recovery.clock`
    /// once; checks of present keys are unchanged.
    #[must_use]
    pub fn with_claim_recovery(mut self, recovery: ClaimRecovery) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// How many claims left by a dead process this limiter has recovered (see
    /// [`with_claim_recovery`](Self::with_claim_recovery)); counted in this limiter only.
    pub fn recovered_claims(&self) -> u64 {
        // Relaxed: a statistic.
        self.counters.recovered_claims.load(Ordering::Relaxed)
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.rule.quota()
    }

    /// The number of slots (the most keys the table can ever hold): [`GROUP_SLOTS`] per group.
    #[inline(always)]
    pub fn slot_count(&self) -> usize {
        // A slice of groups has fewer than isize::MAX / 192 of them, so this never saturates.
        self.slots.as_ref().len().saturating_mul(GROUP_SLOTS)
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Counters: live keys, reclaimed slots, keys rejected because both their windows were
    /// full.
    pub fn stats(&self) -> KeyedStats {
        // Relaxed: statistics.
        KeyedStats {
            live_keys: self.counters.filled.load(Ordering::Relaxed),
            reclaimed: self.counters.reclaimed.load(Ordering::Relaxed),
            rejected_full: self.counters.rejected_full.load(Ordering::Relaxed),
            admitted_untracked: self.counters.admitted_untracked.load(Ordering::Relaxed),
        }
    }

    /// The table's description, for sharing it (see [`TableHeader`]).
    pub fn header(&self) -> TableHeader {
        let quota = self.rule.quota();
        TableHeader {
            magic: *b"cellgate",
            layout_version: TABLE_LAYOUT_VERSION,
            group_bytes: u32::try_from(core::mem::size_of::<SlotGroup>()).unwrap_or(u32::MAX),
            slot_count: u64::try_from(self.slot_count()).unwrap_or(u64::MAX),
            probe_window: u64::try_from(PROBE_WINDOW).unwrap_or(u64::MAX),
            seed: [self.seed.k0, self.seed.k1],
            rate_cost: quota.rate_cost(),
            period_ns: quota.period_ns(),
            burst_cost: quota.burst_cost(),
            refill: match self.rule.refill() {
                Refill::Greedy => 0,
                Refill::Interval => 1,
            },
        }
    }

    /// The hash of `key`'s bytes under this table's seed (what every runtime computes for
    /// the same bytes).
    pub fn hash_key(&self, key: &[u8]) -> KeyHash {
        let hash = SipHasher13::new_with_keys(self.seed.k0, self.seed.k1).hash(key);
        KeyHash {
            home: hash.h1,
            fingerprint: hash.h2.max(1),
        }
    }

    /// The hash of any `Hash` key under this table's seed, for the `_hashed` operations. It
    /// follows `Hash`, so it differs from [`hash_key`](Self::hash_key) of the same bytes and
    /// may differ between platforms (`usize` lengths): use bytes for keys shared across
    /// runtimes.
    pub fn hash<K: core::hash::Hash + ?Sized>(&self, key: &K) -> KeyHash {
        let mut hasher = SipHasher13::new_with_keys(self.seed.k0, self.seed.k1);
        key.hash(&mut hasher);
        Self::key_hash(hasher)
    }

    fn key_hash(hasher: SipHasher13) -> KeyHash {
        let hash = hasher.finish128();
        KeyHash {
            home: hash.h1,
            // 0 marks an empty slot; folding it onto 1 costs one value of 2^64.
            fingerprint: hash.h2.max(1),
        }
    }

    /// [`check_at`](Self::check_at) for a key already hashed with [`hash_key`](Self::hash_key).
    ///
    /// # Errors
    /// [`TableFull`] when the key is new and cannot be placed.
    pub fn check_hashed_at(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
    ) -> Result<Decision, TableFull> {
        self.apply(key, now_ns, cost, Op::Check)
    }

    /// Tests and consumes `cost` for `key` at `now_ns`, atomically; see
    /// [`Gcra::check_at`](crate::Gcra::check_at).
    ///
    /// # Errors
    /// [`TableFull`] when the key is new, the cost would be admitted, and no slot is free.
    pub fn check_at(
        &self,
        key: impl AsRef<[u8]>,
        now_ns: u64,
        cost: u64,
    ) -> Result<Decision, TableFull> {
        self.apply(self.hash_key(key.as_ref()), now_ns, cost, Op::Check)
    }

    /// The decision [`check_at`](Self::check_at) would make, without consuming or inserting.
    pub fn peek_at(&self, key: impl AsRef<[u8]>, now_ns: u64, cost: u64) -> Decision {
        // A peek never inserts, so it cannot fail.
        let hash = self.hash_key(key.as_ref());
        self.apply(hash, now_ns, cost, Op::Peek)
            .unwrap_or_else(|TableFull| self.fresh_decision(now_ns, cost, Op::Peek))
    }

    /// Consumes `cost` for `key` whether or not it fits (debt); see
    /// [`Gcra::force_at`](crate::Gcra::force_at).
    ///
    /// # Errors
    /// [`TableFull`] when the key is new and cannot be placed.
    pub fn force_at(
        &self,
        key: impl AsRef<[u8]>,
        now_ns: u64,
        cost: u64,
    ) -> Result<Decision, TableFull> {
        self.apply(self.hash_key(key.as_ref()), now_ns, cost, Op::Force)
    }

    /// Gives `cost` back to `key`, never above a full bucket. An absent key is already full.
    pub fn refund_at(&self, key: impl AsRef<[u8]>, now_ns: u64, cost: u64) -> Decision {
        let hash = self.hash_key(key.as_ref());
        self.apply(hash, now_ns, cost, Op::Refund)
            .unwrap_or_else(|TableFull| self.fresh_decision(now_ns, cost, Op::Refund))
    }

    /// Makes `key`'s bucket full (its slot becomes reclaimable).
    pub fn reset_at(&self, key: impl AsRef<[u8]>, now_ns: u64) {
        let hash = self.hash_key(key.as_ref());
        let _ = self.apply(hash, now_ns, 0, Op::Reset);
    }

    /// The decision for a key that has no slot: a full bucket.
    fn fresh_decision(&self, now_ns: u64, cost: u64, op: Op) -> Decision {
        self.rule
            .decide(CellState::FULL, now_ns.min(MAX_NOW_NS), cost, op)
            .decision
    }

    /// Slot `index` (less than [`slot_count`](Self::slot_count)): lane `index % GROUP_SLOTS` of
    /// group `index / GROUP_SLOTS`.
    #[inline(always)]
    fn slot(&self, index: usize) -> Option<SlotRef<'_>> {
        let group = self.slots.as_ref().get(index / GROUP_SLOTS)?;
        let lane = index % GROUP_SLOTS;
        Some(SlotRef {
            fingerprint: group.fingerprints.get(lane)?,
            state: group.states.get(lane)?,
        })
    }

    /// The key's two homes, the starts of its windows: the first from the hash's `home`, the
    /// second from `home ^ fingerprint` (independent of the first home, and, because it mixes
    /// in the first home, it says nothing of the fingerprint of a key living near it).
    #[inline(always)]
    fn homes(&self, key: KeyHash) -> (usize, usize) {
        (
            self.home_index(key.home),
            self.home_index(key.home ^ key.fingerprint),
        )
    }

    /// `key`'s scan order, the `2 × PROBE_WINDOW` positions it may occupy, as every scan visits
    /// them (its first window, then its second): each slot index with whether it already came up at an
    /// earlier position (a second-window slot that also lies in the first window; a window
    /// never repeats a slot, since the table has at least [`PROBE_WINDOW`] slots).
    #[inline(always)]
    fn scan_order(&self, key: KeyHash) -> impl Iterator<Item = (usize, bool)> + '_ {
        let count = self.slot_count();
        let (first, second) = self.homes(key);
        let window =
            move |start: usize| (0..PROBE_WINDOW).map(move |distance| self.offset(start, distance));
        // Whether `index` lies in the first window: its distance from the first home, going
        // forward round the table, is below PROBE_WINDOW.
        let in_first = move |index: usize| {
            let distance = if index >= first {
                index.wrapping_sub(first)
            } else {
                index.wrapping_add(count).wrapping_sub(first)
            };
            distance < PROBE_WINDOW
        };
        window(first)
            .map(|index| (index, false))
            .chain(window(second).map(move |index| (index, in_first(index))))
    }

    /// The slot index of `key`'s bytes at `position` of its scan order: for loom models, which
    /// need keys aimed at chosen slots. Not part of the API (compiled only under `--cfg loom`).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_index_at(&self, key: &[u8], position: usize) -> usize {
        self.scan_order(self.hash_key(key))
            .nth(position)
            .map_or(0, |(index, _)| index)
    }

    /// Leaves a claim stamped `stamp_ns` in slot `index`, with `key`'s fingerprint if given
    /// (else the slot's own), as a process killed mid-insert leaves it: for loom models of
    /// claim recovery. Not part of the API (compiled only under `--cfg loom`).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_leave_claim(&self, index: usize, stamp_ns: u64, key: Option<&[u8]>) {
        if let Some(slot) = self.slot(index) {
            if let Some(key) = key {
                slot.fingerprint
                    .swap(self.hash_key(key).fingerprint, Ordering::Release);
            }
            slot.state.store(busy_word(stamp_ns), Ordering::Release);
        }
    }

    /// The slot a 64-bit hash designates as a window's start.
    #[inline(always)]
    fn home_index(&self, hash: u64) -> usize {
        let count = self.slot_count();
        // Lemire's multiply-shift maps the 64-bit hash onto 0..count without a division; the
        // result is below `count`, so it fits a usize.
        let count_wide = u128::try_from(count).unwrap_or(u128::MAX);
        let home = u128::from(hash).wrapping_mul(count_wide) >> 64;
        usize::try_from(home).unwrap_or(0)
    }

    /// The slot `distance` (less than [`PROBE_WINDOW`]) after slot `start`, round the table.
    #[inline(always)]
    fn offset(&self, start: usize, distance: usize) -> usize {
        let count = self.slot_count();
        let index = start.wrapping_add(distance);
        // count >= PROBE_WINDOW > distance, so one subtraction wraps it.
        if index >= count {
            index.wrapping_sub(count)
        } else {
            index
        }
    }

    /// The slot of `key`'s fingerprint in the window starting at `start`, if any: the window's
    /// fingerprints read a group's line at a time, from `start`'s lane, round the table.
    #[inline(always)]
    fn find_in_window(&self, key: KeyHash, start: usize) -> Option<usize> {
        self.scan_window(key, start, |_| true)
    }

    /// The first slot in the window starting at `start` that holds `key`'s fingerprint and
    /// whose index `accept` takes, if any (see [`find_in_window`](Self::find_in_window)).
    #[inline(always)]
    pub(super) fn scan_window(
        &self,
        key: KeyHash,
        start: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let groups = self.slots.as_ref();
        let mut group_index = start / GROUP_SLOTS;
        let lane = start % GROUP_SLOTS;
        // The start's group lane by lane, stopping at the first match: most present keys lie
        // there, within a lane or two of their home.
        let group = groups.get(group_index)?;
        for (at, fingerprint) in group.fingerprints.get(lane..)?.iter().enumerate() {
            // Acquire: pairs with the Release swap of the fingerprint in `insert`, so the
            // state load after it sees at least the claim's busy word.
            if fingerprint.load(Ordering::Acquire) == key.fingerprint {
                let index = group_index
                    .wrapping_mul(GROUP_SLOTS)
                    .wrapping_add(lane)
                    .wrapping_add(at);
                if accept(index) {
                    return Some(index);
                }
            }
        }
        // The window's other groups as bit masks of their matching lanes, one test a group:
        // an absent key reads every lane, and a loop per lane mispredicts its exit (a new
        // key 98 -> 84 ns at 1,000 keys; BENCHMARKS.md round 10).
        let mut left = PROBE_WINDOW.saturating_sub(GROUP_SLOTS.wrapping_sub(lane));
        while left > 0 {
            group_index = group_index.wrapping_add(1);
            if group_index == groups.len() {
                group_index = 0;
            }
            let group = groups.get(group_index)?;
            let end = left.min(GROUP_SLOTS);
            let mut matches = group.lanes_holding(key.fingerprint, end);
            while matches != 0 {
                let at = usize::try_from(matches.trailing_zeros()).unwrap_or(GROUP_SLOTS);
                let index = group_index.wrapping_mul(GROUP_SLOTS).wrapping_add(at);
                if accept(index) {
                    return Some(index);
                }
                // The lowest set bit cleared: the next match in lane order.
                matches &= matches.wrapping_sub(1);
            }
            left = left.saturating_sub(end);
        }
        None
    }

    /// Where `key` lives: its first window, then its second.
    #[inline(always)]
    fn find(&self, key: KeyHash) -> Lookup {
        let (first, second) = self.homes(key);
        if let Some(index) = self.find_in_window(key, first) {
            return Lookup::Found(index);
        }
        match self.find_in_window(key, second) {
            Some(index) => Lookup::Found(index),
            None => Lookup::Absent,
        }
    }

    fn apply(&self, key: KeyHash, now_ns: u64, cost: u64, op: Op) -> Result<Decision, TableFull> {
        self.apply_outcome(key, now_ns, cost, op)
            .map(|outcome| outcome.decision)
    }

    /// Decides `op` for `key`, inserting it if the decision needs a slot; the outcome's `next`
    /// is the state committed, if any.
    ///
    /// Inlined so that a constant `op` picks one copy of [`apply_op`](Self::apply_op)
    /// specialised for it: a program that uses several operations (a C library exports them
    /// all) would otherwise share one copy deciding `op` at run time on every check.
    #[inline(always)]
    pub(crate) fn apply_outcome(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
        op: Op,
    ) -> Result<Outcome, TableFull> {
        match op {
            Op::Check => self.apply_op::<OP_CHECK>(key, now_ns, cost),
            Op::Peek => self.apply_op::<OP_PEEK>(key, now_ns, cost),
            Op::Force => self.apply_op::<OP_FORCE>(key, now_ns, cost),
            Op::Refund => self.apply_op::<OP_REFUND>(key, now_ns, cost),
            Op::Reset => self.apply_op::<OP_RESET>(key, now_ns, cost),
        }
    }

    /// [`apply_outcome`](Self::apply_outcome) for the operation numbered `OP` (see [`op_of`]).
    #[inline(always)]
    fn apply_op<const OP: u8>(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
    ) -> Result<Outcome, TableFull> {
        let op = op_of(OP);
        let now_ns = now_ns.min(MAX_NOW_NS);
        let decide = RuleOp {
            rule: &self.rule,
            now_ns,
            cost,
            op,
        };
        let mut lookup = self.find(key);
        loop {
            match lookup {
                Lookup::Found(index) => {
                    if let Some(outcome) = self.update_in_slot(index, key, decide) {
                        return Ok(outcome);
                    }
                    // The slot changed owner or is changing: look again.
                    spin();
                    lookup = self.find(key);
                }
                Lookup::Absent => {
                    // An absent key is a full bucket; it needs a slot only to hold less.
                    let fresh = decide.decide(CellState::FULL);
                    match fresh.next {
                        // Placed with the decided state as its first, in one publication.
                        Some(next) if next.missing != 0 => match self.insert(key, next)? {
                            insert::Placed::Mine => return Ok(fresh),
                            insert::Placed::Existing(index) => lookup = Lookup::Found(index),
                        },
                        _ => {
                            return Ok(Outcome {
                                decision: fresh.decision,
                                next: None,
                            })
                        }
                    }
                }
            }
        }
    }

    /// A `check` of `cost` for `key` that a policy may take back (see
    /// [`Buckets::charge`](crate::policy::Buckets::charge)): committed with the state it was
    /// decided from when the key is held; for a key not held, decided on a full bucket and
    /// deferred (not inserted), so that a refused policy check never inserts a key.
    #[cfg(feature = "alloc")]
    pub(crate) fn charge_outcome(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
    ) -> crate::policy::Charge {
        use crate::policy::Charge;
        let now_ns = now_ns.min(MAX_NOW_NS);
        let seen = core::cell::Cell::new(CellState::FULL);
        let decide = |state| {
            seen.set(state);
            self.rule.decide(state, now_ns, cost, Op::Check)
        };
        loop {
            match self.find(key) {
                Lookup::Found(index) => {
                    if let Some(outcome) = self.update_in_slot(index, key, decide) {
                        return match outcome.next {
                            Some(_) => Charge::Committed {
                                outcome,
                                before: seen.get(),
                            },
                            None => Charge::Unwritten(outcome),
                        };
                    }
                    // The slot changed owner or is changing: look again.
                    spin();
                }
                Lookup::Absent => {
                    let fresh = self.rule.decide(CellState::FULL, now_ns, cost, Op::Check);
                    return match fresh.next {
                        Some(next) if next.missing != 0 => Charge::Deferred(fresh),
                        _ => Charge::Unwritten(Outcome {
                            decision: fresh.decision,
                            next: None,
                        }),
                    };
                }
            }
        }
    }

    /// Runs the compare-exchange loop on slot `index` with `decide`; `None` if the slot is not
    /// (or no longer) the key's or is changing owner. The outcome's `next` is the state
    /// committed, if any.
    ///
    /// Inlined: out of line, `decide`'s operation was a run-time value, and every check ran
    /// the decision of every operation's branch (about 160 instructions instead of 70).
    #[inline(always)]
    fn update_in_slot(&self, index: usize, key: KeyHash, decide: impl Decide) -> Option<Outcome> {
        let slot = self.slot(index)?;
        // Acquire: pairs with the Release publication in `insert`/`withdraw`, making the
        // fingerprint written before it visible to the check below.
        let mut current = slot.state.load(Ordering::Acquire);
        loop {
            if is_busy(current) {
                self.recover_if_stale(slot, current);
                return None;
            }
            // Acquire: as in `find`. The state we hold must be this key's: a publication of
            // another owner's state is ordered after its fingerprint.
            if slot.fingerprint.load(Ordering::Acquire) != key.fingerprint {
                return None;
            }
            let outcome = decide.decide(CellState::unpack(current));
            let Some(next) = outcome.next else {
                return Some(outcome);
            };
            let next = next.pack();
            if next == current {
                return Some(outcome);
            }
            // AcqRel/Acquire: the failure value is re-checked like the first load; success
            // needs no ordering for itself (the word is self-contained) but keeps the slot's
            // history in one release sequence for the next owner's checks.
            match slot.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(outcome),
                Err(actual) => current = actual,
            }
        }
    }

    /// Applies `decide` to `key`'s slot if the key is present; `None` if it is absent.
    #[cfg(feature = "alloc")]
    pub(crate) fn update_present(
        &self,
        key: KeyHash,
        decide: impl Fn(CellState) -> Outcome,
    ) -> Option<Outcome> {
        loop {
            let Lookup::Found(index) = self.find(key) else {
                return None;
            };
            if let Some(outcome) = self.update_in_slot(index, key, &decide) {
                return Some(outcome);
            }
            spin();
        }
    }

    /// Blocks `key` for `block_ns` from `now_ns` ([`Rule::block`]): for a key just denied.
    /// Nothing happens to an absent key (a full bucket was not denied) or to one already in
    /// debt. Returns whether this call wrote the block.
    #[cfg(feature = "alloc")]
    pub(crate) fn block_hashed_at(&self, key: KeyHash, now_ns: u64, block_ns: u64) -> bool {
        let now_ns = now_ns.min(MAX_NOW_NS);
        let outcome = self.update_present(key, |state| Outcome {
            // Unused: the caller shows the blocked bucket with a peek.
            decision: crate::policy::EMPTY_DECISION,
            next: self.rule.block(state, now_ns, block_ns),
        });
        outcome.is_some_and(|outcome| outcome.next.is_some())
    }

    /// The rule every key follows.
    #[cfg(feature = "alloc")]
    pub(crate) fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The table's seed.
    #[cfg(feature = "alloc")]
    pub(crate) fn seed(&self) -> Seed {
        self.seed
    }
}

impl<S: AsRef<[SlotGroup]>, C: Clock> KeyedLimiter<S, C> {
    /// [`check_at`](Self::check_at) at the clock's current time.
    ///
    /// # Errors
    /// [`TableFull`] as for `check_at`.
    pub fn check(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<Decision, TableFull> {
        self.check_at(key, self.clock.now_ns(), cost)
    }

    /// [`peek_at`](Self::peek_at) at the clock's current time.
    pub fn peek(&self, key: impl AsRef<[u8]>, cost: u64) -> Decision {
        self.peek_at(key, self.clock.now_ns(), cost)
    }

    /// [`force_at`](Self::force_at) at the clock's current time.
    ///
    /// # Errors
    /// [`TableFull`] as for `force_at`.
    pub fn force(&self, key: impl AsRef<[u8]>, cost: u64) -> Result<Decision, TableFull> {
        self.force_at(key, self.clock.now_ns(), cost)
    }

    /// [`refund_at`](Self::refund_at) at the clock's current time.
    pub fn refund(&self, key: impl AsRef<[u8]>, cost: u64) -> Decision {
        self.refund_at(key, self.clock.now_ns(), cost)
    }

    /// [`reset_at`](Self::reset_at) at the clock's current time.
    pub fn reset(&self, key: impl AsRef<[u8]>) {
        self.reset_at(key, self.clock.now_ns());
    }
}
