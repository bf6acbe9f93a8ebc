//! Placing a new key: the insert protocol of the parent module's "Concurrency protocol" (claim
//! a full slot, publish, settle concurrent inserts of the same key at the first home slot's
//! fingerprint word), the reclaiming of idle keys, and the recovery of claims left by a dead
//! process. The check of a present key never enters this module.

use super::{
    busy_word, is_busy, Counters, KeyHash, KeyedLimiter, SlotGroup, SlotRef, TableFull, EMPTY,
    MAX_NOW_NS,
};
use crate::rule::CellState;
use crate::sync::{spin, Ordering};

/// What [`KeyedLimiter::insert`] did.
pub(super) enum Placed {
    /// This call placed the key and published the state it was given.
    Mine,
    /// The key is at this index, placed by another thread: the operation is still to be
    /// applied there.
    Existing(usize),
}

impl<S: AsRef<[SlotGroup]>, C> KeyedLimiter<S, C> {
    /// Whether a slot's key can be forgotten at `now_ns`: its bucket is full, and it was last
    /// written before `now_ns` (so the new owner's first state, at `now_ns`, differs from every
    /// state the old owner had: no ABA).
    fn is_idle(&self, state: u128, now_ns: u64) -> bool {
        let state = CellState::unpack(state);
        state.last_ns < now_ns && self.rule.is_full_at(state, now_ns)
    }

    /// Places `key` in its first window, or in its second if the first holds only live keys:
    /// in the first empty slot or slot of an idle key in scan order, publishing `first` as its
    /// state ([`Placed::Mine`]): the state an operation decided for the key's full bucket at
    /// `first.last_ns`, the operation's time. A copy of the key placed by another thread
    /// (possibly still unpublished, busy) is returned instead, untouched
    /// ([`Placed::Existing`]). The scan stops at the first candidate: a copy of the key
    /// farther on (a lookup that missed it, or a racing insert) is found by `settle`, and this
    /// copy withdrawn.
    pub(super) fn insert(&self, key: KeyHash, first: CellState) -> Result<Placed, TableFull> {
        let now_ns = first.last_ns;
        loop {
            let mut candidate = None;
            let mut recovered = false;
            for (index, _) in self.scan_order(key) {
                let Some(slot) = self.slot(index) else {
                    continue;
                };
                // Acquire: pairs with the Release fingerprint swaps of other inserters.
                let owner = slot.fingerprint.load(Ordering::Acquire);
                if owner == key.fingerprint {
                    return Ok(Placed::Existing(index));
                }
                // Acquire: pairs with publications, as in `update_in_slot`.
                let state = slot.state.load(Ordering::Acquire);
                if is_busy(state) {
                    if self.recover_if_stale(slot, state) {
                        // Emptied: scan again, and this slot is a candidate.
                        recovered = true;
                        break;
                    }
                    continue;
                }
                // An empty slot's state is always a full bucket; one that is not was read
                // after another inserter took the slot (the fingerprint read is older) and is
                // that key's charged bucket: never claim it, even to put it back, so that a
                // claim always holds a full bucket, which is what lets a claim left by a dead
                // process be emptied without over-admitting (see `recover_if_stale`).
                let free = owner == EMPTY && self.rule.is_full_at(CellState::unpack(state), now_ns);
                if free || self.is_idle(state, now_ns) {
                    candidate = Some((index, owner, state));
                    break;
                }
            }
            if recovered {
                continue;
            }
            let Some((index, owner, state)) = candidate else {
                Counters::bump(&self.counters.rejected_full);
                return Err(TableFull);
            };
            let (Some(slot), Some(home)) = (self.slot(index), self.slot(self.homes(key).0)) else {
                continue;
            };
            // Acquire on success: the claim must see everything the previous owner's
            // publication released. Relaxed on failure: we only retry.
            let claim = busy_word(self.recovery.map_or(0, |recovery| (recovery.clock)()));
            if slot
                .state
                .compare_exchange(state, claim, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // Acquire: as in the scan above.
            if slot.fingerprint.load(Ordering::Acquire) != owner {
                // Owner changed between our reads; put the state back untouched.
                // Release: pairs with the Acquire loads of checkers.
                slot.state.store(state, Ordering::Release);
                continue;
            }
            // Release: pairs with the Acquire loads in `settle` of a later inserter, through
            // the meeting below. A swap, not a store: see `meet`.
            slot.fingerprint.swap(key.fingerprint, Ordering::Release);
            Self::meet(home);
            if let Some(winner) = self.settle(key, index) {
                self.withdraw(slot, owner, state);
                return Ok(Placed::Existing(winner));
            }
            // The key's first state, at `now_ns`: later than anything an idle previous owner
            // wrote, so no checker holding one of its states can commit over it (no ABA).
            // Release: publishes the fingerprint to checkers that Acquire-load this state.
            slot.state.store(first.pack(), Ordering::Release);
            Counters::bump(if owner == EMPTY {
                &self.counters.filled
            } else {
                &self.counters.reclaimed
            });
            return Ok(Placed::Mine);
        }
    }

    /// Where concurrent inserters of one key meet, after each has written its fingerprint: an
    /// acquire-release read-modify-write of the first home slot's fingerprint word that
    /// changes nothing. The read-modify-writes of one word are totally ordered, and the later
    /// of two reads the value of a read-modify-write no earlier than the earlier one's (every
    /// write of a fingerprint word is one: `swap`s, never plain stores, which would end the
    /// earlier one's release sequence), so it acquires the earlier inserter's fingerprint.
    #[inline]
    fn meet(home: SlotRef<'_>) {
        // AcqRel: see above; pairs with the same call of the other inserter.
        home.fingerprint.fetch_or(0, Ordering::AcqRel);
    }

    /// After writing `key`'s fingerprint in slot `mine`, decides whether this copy stands:
    /// `Some(index)` of another copy if one is published, or is unpublished and nearer the
    /// start of the scan order (ranks are the first position at which a slot appears; the two
    /// windows may overlap). Waits for unpublished copies farther in the order to settle (they
    /// withdraw or publish). `None`: this copy stands.
    fn settle(&self, key: KeyHash, mine: usize) -> Option<usize> {
        // First, the common case: no other slot of either window holds the fingerprint (one
        // Acquire load each, as below, read a group's line at a time), so this copy stands.
        // Otherwise the ranked scan below reads them all again.
        let others = |index: usize| index != mine;
        let (first, second) = self.homes(key);
        if self.scan_window(key, first, others).is_none()
            && self.scan_window(key, second, others).is_none()
        {
            return None;
        }
        let mut nearer = true;
        for (index, seen_earlier) in self.scan_order(key) {
            if seen_earlier {
                // Ranked at its first position, as every inserter of the key ranks it.
                continue;
            }
            if index == mine {
                nearer = false;
                continue;
            }
            let Some(slot) = self.slot(index) else {
                continue;
            };
            loop {
                // Acquire: of two inserters, the later (by their meeting) sees the
                // earlier's fingerprint here.
                if slot.fingerprint.load(Ordering::Acquire) != key.fingerprint {
                    break;
                }
                // Acquire: as in `update_in_slot`.
                let state = slot.state.load(Ordering::Acquire);
                if !is_busy(state) || nearer {
                    return Some(index);
                }
                // A farther unpublished copy: it will see ours and withdraw, or publish (or,
                // its claimant dead, be emptied by a recovery, ours or another caller's).
                self.recover_if_stale(slot, state);
                spin();
            }
        }
        None
    }

    /// Empties `slot` if `word`, the busy state just read from it, is a claim at least the
    /// [`ClaimRecovery`] timeout old (its claimant is taken for dead); returns whether this
    /// call emptied it. Without recovery, or for a younger claim, does nothing: the caller
    /// waits and looks again.
    ///
    /// The recovery claims the slot itself (a compare-exchange from `word`, which fails if
    /// the claim ended or another caller recovers it first), clears the fingerprint, and
    /// publishes a full bucket at the recovery time: every key the dead claim touched was a
    /// full bucket (see the module's "Concurrency protocol"), and so is an absent key.
    #[cold]
    pub(super) fn recover_if_stale(&self, slot: SlotRef<'_>, word: u128) -> bool {
        let Some(recovery) = self.recovery else {
            return false;
        };
        let stamp_ns = CellState::unpack(word).missing;
        let now_ns = (recovery.clock)();
        if now_ns.saturating_sub(stamp_ns) < recovery.timeout_ns {
            return false;
        }
        // Acquire on success: as an insert's claim, this sees what the slot's last
        // publication released. Relaxed on failure: the slot moved on; the caller looks again.
        if slot
            .state
            .compare_exchange(
                word,
                busy_word(now_ns),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        // Relaxed: the Release store of the state below publishes it. A swap: see `meet`.
        slot.fingerprint.swap(EMPTY, Ordering::Relaxed);
        // Later than any state a checker may hold: those were written at times before the
        // dead claim's stamp, and `now_ns` is at least `timeout_ns` after it.
        let fresh = CellState {
            last_ns: now_ns.min(MAX_NOW_NS),
            missing: 0,
        };
        // Release: pairs with the Acquire state loads of checkers and inserters, which then
        // see the emptied fingerprint.
        slot.state.store(fresh.pack(), Ordering::Release);
        Counters::bump(&self.counters.recovered_claims);
        true
    }

    /// Gives a claimed slot back to its previous owner and state.
    fn withdraw(&self, slot: SlotRef<'_>, owner: u64, state: u128) {
        // Relaxed: the Release store of the state below publishes it. A swap: see `meet`.
        slot.fingerprint.swap(owner, Ordering::Relaxed);
        // Release: checkers that see this state see the restored fingerprint.
        slot.state.store(state, Ordering::Release);
    }
}
