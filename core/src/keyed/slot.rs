//! The table's bytes: the 192-byte [`SlotGroup`] (eight slots: their fingerprints in one
//! cache line, their states in the next two), the hash [`Seed`], the [`TableHeader`] another
//! process needs to use the same slots, and the claim (*busy*) words of the insert protocol
//! (see the parent module's "Concurrency protocol"). Plain, pointer-free data, so a table can
//! live in a caller's buffer or a shared mapping.

use super::PROBE_WINDOW;
use crate::rule::CellState;
use crate::sync::{AtomicU128, AtomicU64, Ordering};
use core::fmt;

/// The fingerprint of an empty slot.
pub(super) const EMPTY: u64 = 0;

/// The `last_ns` of a slot's state while its owner changes (a *busy* word, see [`busy_word`]);
/// never a real state's (see `MAX_NOW_NS`).
const BUSY_LAST_NS: u64 = u64::MAX;

/// Times are clamped to this, so that no real state has `last_ns == u64::MAX` like a busy word.
pub(super) const MAX_NOW_NS: u64 = u64::MAX - 1;

/// The state word of a slot claimed at `stamp_ns` (by the [`ClaimRecovery`] clock; 0 without
/// recovery): `last_ns` is [`BUSY_LAST_NS`], the stamp is in the other half.
pub(super) fn busy_word(stamp_ns: u64) -> u128 {
    CellState {
        last_ns: BUSY_LAST_NS,
        missing: stamp_ns,
    }
    .pack()
}

/// Whether a state word is a claim (see [`busy_word`]).
#[inline(always)]
pub(super) const fn is_busy(word: u128) -> bool {
    CellState::unpack(word).last_ns == BUSY_LAST_NS
}

/// How a table shared by processes recovers a slot whose claimant died mid-insert (see the
/// module's "Concurrency protocol"): a claim is stamped with `clock`, and a caller that meets a
/// claim at least `timeout_ns` old by `clock` empties the slot.
///
/// Every process sharing the table must use the same system-wide clock (`CLOCK_MONOTONIC`)
/// for it and for the `now_ns` of its calls. The recovery assumes that no live process stays
/// inside an insert (about twenty instructions) for `timeout_ns`: one stopped there longer (a
/// debugger, `SIGSTOP`) can, when it resumes, lose one key's state. In-process tables do not
/// need it (a claim there always ends) and have none by default.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRecovery {
    /// How old a claim must be, by `clock`, before it is taken for a dead claimant's.
    pub timeout_ns: u64,
    /// The clock stamping claims, in nanoseconds.
    pub clock: fn() -> u64,
}

/// How many slots a [`SlotGroup`] holds: 8 (4 under loom, to keep its models small).
pub const GROUP_SLOTS: usize = if cfg!(loom) { 4 } else { 8 };

/// Eight table slots, 192 bytes on a cache-line boundary: the slots' 64-bit key fingerprints
/// packed in the first line, their buckets' 128-bit states in the two lines after it. A lookup
/// scans fingerprints a line at a time and then reads the one state of the slot it found
/// (24 bytes per slot, 32 per configured key at `max_keys × 4/3` slots). All-zero bytes are an
/// empty group ([`SlotGroup::new`]), so zeroed memory (a fresh mapping) needs no writes.
#[repr(C, align(64))]
pub struct SlotGroup {
    pub(super) fingerprints: [AtomicU64; GROUP_SLOTS],
    pub(super) states: [AtomicU128; GROUP_SLOTS],
}

impl SlotGroup {
    /// An empty group: every fingerprint zero (empty), every state a full bucket (all zero bytes).
    pub fn new() -> Self {
        Self {
            fingerprints: core::array::from_fn(|_| AtomicU64::new(EMPTY)),
            states: core::array::from_fn(|_| AtomicU128::new(CellState::FULL.pack())),
        }
    }

    /// The lanes below `end` whose fingerprint is `fingerprint`, as a bit mask (bit `lane`
    /// set), read lane by lane without a branch.
    #[inline(always)]
    pub(super) fn lanes_holding(&self, fingerprint: u64, end: usize) -> u32 {
        let mut mask = 0u32;
        for (lane, slot) in self.fingerprints.iter().enumerate().take(end) {
            // Acquire: pairs with the Release swap of the fingerprint in `insert`, so the
            // state load after a match sees at least the claim's busy word.
            let holds = u32::from(slot.load(Ordering::Acquire) == fingerprint);
            mask |= holds.wrapping_shl(u32::try_from(lane).unwrap_or(u32::MAX));
        }
        mask
    }
}

impl Default for SlotGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SlotGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a diagnostic snapshot.
        let mut list = f.debug_list();
        for (fingerprint, state) in self.fingerprints.iter().zip(&self.states) {
            list.entry(&(
                fingerprint.load(Ordering::Relaxed),
                state.load(Ordering::Relaxed),
            ));
        }
        list.finish()
    }
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<SlotGroup>() == 192);
#[cfg(not(loom))]
const _: () = assert!(core::mem::align_of::<SlotGroup>() == 64);

/// One slot of a group: its fingerprint word and its state word.
#[derive(Clone, Copy)]
pub(super) struct SlotRef<'a> {
    pub(super) fingerprint: &'a AtomicU64,
    pub(super) state: &'a AtomicU128,
}

/// The 128-bit secret that keys the hash. Random per instance unless a caller supplies one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed {
    pub(super) k0: u64,
    pub(super) k1: u64,
}

impl Seed {
    /// A seed from two 64-bit halves; `no_std` callers take them from their entropy source.
    pub const fn new(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    /// A seed from the operating system's randomness (through std's `RandomState`).
    #[cfg(feature = "std")]
    pub fn random() -> Self {
        use core::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        Self {
            k0: state.hash_one(0x5eed_u64),
            k1: state.hash_one(0xcafe_u64),
        }
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// The version of the table layout described by [`TableHeader`]: bumped on any change to the
/// slot layout, the hash, the probing, or the claim protocol. Version 2: two windows per key
/// (version 1 had one). Version 3: a claim is any state with `last_ns == u64::MAX`, stamped
/// with its time in the other half (version 2 had one busy value, `u128::MAX`), so that a claim
/// left by a dead process can be recovered ([`ClaimRecovery`]). Version 4: slots in
/// [`SlotGroup`]s of eight (fingerprints in one line, states apart; version 3 had 32-byte slots
/// with a per-slot insert counter), concurrent inserts of one key meeting at the first home
/// slot's fingerprint word, and no overflow flag.
pub const TABLE_LAYOUT_VERSION: u32 = 4;

/// Everything another process (in any runtime) needs to use the same slots: plain data,
/// `#[repr(C)]`, no pointers. `cellgate-host` records these fields (with its own mapping version
/// and a checksum) in the header of a shared table file, before the slots.
///
/// Sharing a table between processes requires the 64- and 128-bit atomics to be truly
/// lock-free (x86_64 with `cmpxchg16b`, aarch64), not portable-atomic's lock-based fallback,
/// whose locks live in each process; and one time line for all of them (a system-wide
/// monotonic clock passed as `now_ns`). The header carries the secret seed: keep it private.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableHeader {
    /// `b"cellgate"`.
    pub magic: [u8; 8],
    /// [`TABLE_LAYOUT_VERSION`].
    pub layout_version: u32,
    /// `size_of::<SlotGroup>()`: 192, for [`GROUP_SLOTS`] slots.
    pub group_bytes: u32,
    /// The number of slots that follow (a multiple of [`GROUP_SLOTS`]).
    pub slot_count: u64,
    /// [`PROBE_WINDOW`]: the slots in each of a key's two windows.
    pub probe_window: u64,
    /// The SipHash-1-3 key, `[k0, k1]`.
    pub seed: [u64; 2],
    /// The quota's rate, in cost units per period.
    pub rate_cost: u64,
    /// The quota's period, in nanoseconds.
    pub period_ns: u64,
    /// The quota's burst, in cost units.
    pub burst_cost: u64,
    /// 0 for greedy refill (GCRA), 1 for interval refill.
    pub refill: u64,
}

/// The number of slots a table sized for `max_keys` keys has: `max_keys × 4/3`, rounded up to
/// whole [`SlotGroup`]s, at least [`PROBE_WINDOW`] (saturating, and then rounded down to whole
/// groups). Each slot is 24 bytes.
pub const fn slot_count_for(max_keys: usize) -> usize {
    let count = max_keys.saturating_add(max_keys / 3);
    let count = if count < PROBE_WINDOW {
        PROBE_WINDOW
    } else {
        count
    };
    match count.checked_next_multiple_of(GROUP_SLOTS) {
        Some(rounded) => rounded,
        None => (count / GROUP_SLOTS).saturating_mul(GROUP_SLOTS),
    }
}

/// The number of [`SlotGroup`]s a table sized for `max_keys` keys has:
/// [`slot_count_for`]`(max_keys) / GROUP_SLOTS`.
pub const fn group_count_for(max_keys: usize) -> usize {
    slot_count_for(max_keys) / GROUP_SLOTS
}
