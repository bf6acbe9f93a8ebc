//! The one entry point of a keyed limiter, [`KeyedLimiter::apply_at`], and the answer when a
//! new key finds no room: a full table is a decision under an [`OnFull`] policy, never an
//! error that a request handler could turn into a 500.

use super::{is_busy, Counters, KeyHash, KeyedLimiter, SlotGroup, TableFull, MAX_NOW_NS};
use crate::decision::Decision;
use crate::rule::{CellState, Op};
use crate::sync::Ordering;

/// What a keyed limiter answers for a new key that the table has no room for (every slot in
/// both of its windows holds a live key). No live key is ever evicted, whichever is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnFull {
    /// Deny the request (the default): a key flood cannot buy anyone a fresh bucket. The
    /// decision's `retry_after_ns` is the time until the first slot of the key's windows can
    /// be reclaimed, so `Retry-After` tells the client when a retry can be placed.
    #[default]
    Deny,
    /// Admit the request as a fresh key would be admitted, without storing it (fail open):
    /// such a key is not limited while the table stays full. Counted in
    /// [`KeyedStats::admitted_untracked`](super::KeyedStats::admitted_untracked).
    AllowUntracked,
}

/// Why a keyed decision came out as it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The key's own bucket decided (or, for a key the table does not hold, a full bucket).
    #[default]
    Limit,
    /// Denied because the table had no room for this new key ([`OnFull::Deny`]).
    TableFull,
    /// Admitted without being stored because the table had no room ([`OnFull::AllowUntracked`]).
    Untracked,
    /// The remote store could not be asked in time and the outage policy admitted
    /// ([`OutagePolicy::FailOpen`](crate::OutagePolicy::FailOpen)).
    FailedOpen,
    /// The remote store could not be asked in time and the outage policy denied
    /// ([`OutagePolicy::FailClosed`](crate::OutagePolicy::FailClosed)): answer 503.
    FailedClosed,
    /// The remote store could not be asked in time and this host's own limiter decided
    /// ([`OutagePolicy::Fallback`](crate::OutagePolicy::Fallback)).
    Fallback,
}

impl Reason {
    /// The reason as every runtime names it: `"limit"`, `"table_full"`, `"untracked"`,
    /// `"failed_open"`, `"failed_closed"`, `"fallback"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::TableFull => "table_full",
            Self::Untracked => "untracked",
            Self::FailedOpen => "failed_open",
            Self::FailedClosed => "failed_closed",
            Self::Fallback => "fallback",
        }
    }
}

/// A keyed limiter's decision and why it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a KeyedDecision says whether the request was admitted"]
pub struct KeyedDecision {
    /// The decision, the same shape on every path.
    pub decision: Decision,
    /// Which path made it.
    pub reason: Reason,
}

impl<S: AsRef<[SlotGroup]>, C> KeyedLimiter<S, C> {
    /// Applies `op` with `cost` to `key` at `now_ns`: the one entry point of which
    /// [`check_at`](Self::check_at), [`peek_at`](Self::peek_at), [`force_at`](Self::force_at),
    /// [`refund_at`](Self::refund_at) and [`reset_at`](Self::reset_at) are the sugar. A new key
    /// that the table cannot place is answered under `on_full` instead of an error; only a
    /// `check` or `force` that would store state can meet a full table.
    pub fn apply_at(
        &self,
        key: impl AsRef<[u8]>,
        now_ns: u64,
        cost: u64,
        op: Op,
        on_full: OnFull,
    ) -> KeyedDecision {
        self.apply_hashed_at(self.hash_key(key.as_ref()), now_ns, cost, op, on_full)
    }

    /// [`apply_at`](Self::apply_at) for a key already hashed with [`hash_key`](Self::hash_key).
    pub fn apply_hashed_at(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
        op: Op,
        on_full: OnFull,
    ) -> KeyedDecision {
        match self.apply(key, now_ns, cost, op) {
            Ok(decision) => KeyedDecision {
                decision,
                reason: Reason::Limit,
            },
            Err(TableFull) => self.table_full_decision(key, now_ns, cost, op, on_full),
        }
    }

    /// The answer for `key`, new, when the table had no room for it (see [`OnFull`]).
    pub(crate) fn table_full_decision(
        &self,
        key: KeyHash,
        now_ns: u64,
        cost: u64,
        op: Op,
        on_full: OnFull,
    ) -> KeyedDecision {
        let now_ns = now_ns.min(MAX_NOW_NS);
        match on_full {
            OnFull::AllowUntracked => KeyedDecision {
                decision: self.untracked_decision(now_ns, cost, op, true),
                reason: Reason::Untracked,
            },
            OnFull::Deny => {
                let retry_after_ns = self.until_reclaimable_ns(key, now_ns);
                KeyedDecision {
                    decision: Decision {
                        allowed: false,
                        limit: self.rule.quota().burst_cost(),
                        remaining: 0,
                        retry_after_ns,
                        reset_after_ns: retry_after_ns,
                    },
                    reason: Reason::TableFull,
                }
            }
        }
    }

    /// The time from `now_ns` until the first slot of `key`'s windows holds an idle key (one
    /// whose bucket is full again), so that a retry then can be placed; at least 1 ns (a slot
    /// written at `now_ns` is reclaimable only later). A slot changing owner counts as 1 ns:
    /// it settles within a few instructions, and may then be free.
    pub(crate) fn until_reclaimable_ns(&self, key: KeyHash, now_ns: u64) -> u64 {
        self.scan_order(key)
            .filter_map(|(index, _)| self.slot(index))
            .map(|slot| {
                // Acquire: pairs with the Release publications of the slot's state, as in
                // `update_in_slot`; only an estimate is taken from it.
                let state = slot.state.load(Ordering::Acquire);
                if is_busy(state) {
                    return 1;
                }
                let state = CellState::unpack(state);
                let at_ns = now_ns.max(state.last_ns);
                let refill_ns = self
                    .rule
                    .decide(state, at_ns, 0, Op::Peek)
                    .decision
                    .reset_after_ns;
                // Idle needs a full bucket and a last write before the retry's time.
                let full_in_ns = at_ns.saturating_sub(now_ns).saturating_add(refill_ns);
                let after_last_ns = state.last_ns.saturating_add(1).saturating_sub(now_ns);
                full_in_ns.max(after_last_ns).max(1)
            })
            .min()
            .unwrap_or(1)
    }

    /// Whether the table holds a slot for `key` now (a relaxed answer: it may change at once).
    #[cfg(feature = "alloc")]
    pub(crate) fn holds(&self, key: KeyHash) -> bool {
        matches!(self.find(key), super::Lookup::Found(_))
    }

    /// The decision for a key the table does not hold, as a fresh (full) bucket decides `op`
    /// with `cost`, storing nothing; counted as an untracked admission when `count`.
    pub(crate) fn untracked_decision(
        &self,
        now_ns: u64,
        cost: u64,
        op: Op,
        count: bool,
    ) -> Decision {
        if count {
            Counters::bump(&self.counters.admitted_untracked);
        }
        self.rule
            .decide(CellState::FULL, now_ns.min(MAX_NOW_NS), cost, op)
            .decision
    }
}
