//! Policies: several quotas decided all-or-nothing, over named dimensions with their own costs,
//! with `reserve` of an estimate and `settle` of the actual.
//!
//! A policy is a list of up to [`MAX_POLICY_QUOTAS`] entries, each a named [`Quota`] on one
//! *dimension*. A call gives one cost per dimension: `requests` and `tokens` are two dimensions;
//! `10/second` and `1000/day` on `requests` are two entries on one dimension.
//!
//! # All or nothing, without locks
//!
//! A check charges the entries one at a time, each with its own compare-exchange. If one
//! refuses, the entries already charged are taken back with [`Rule::undo_check`], which never
//! returns more than the charge still holds (exact unless another thread's operation moved that
//! bucket's time forward in between; then it may keep a few ticks too many, never too few). So
//! the policy never admits more than any of its quotas allows; the price of not locking is that
//! a concurrent check may be refused while a charge that is about to be taken back is in place.

use crate::cell::AtomicCell;
use crate::clock::{Clock, NoClock};
use crate::decision::Decision;
use crate::keyed::{KeyHash, TableFull};
use crate::quota::Quota;
use crate::rule::{CellState, Op, Outcome, Refill, Rule};
use core::fmt;

/// The most entries (quotas) one policy may hold.
pub const MAX_POLICY_QUOTAS: usize = 8;

/// Why a policy could not be built or an operation's arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyError {
    /// A policy needs at least one entry.
    Empty,
    /// More than [`MAX_POLICY_QUOTAS`] entries.
    TooManyQuotas,
    /// A keyed policy had no room for a new key in one of its tables (see [`TableFull`]).
    TableFull,
    /// A keyed policy's tables could not be allocated (see
    /// [`TableError::OutOfMemory`](crate::TableError::OutOfMemory)).
    OutOfMemory,
    /// A reservation was settled on a policy of the other kind (keyed or not).
    WrongReservation,
    /// [`KeyedPolicy::from_tables`] was given a table that does not fit the entry of the
    /// same index (another quota, interval refill, another seed) or a count of tables that
    /// differs from the entries'.
    TableMismatch {
        /// The index of the first entry (or table) at fault.
        index: usize,
    },
    /// The costs slice must have one cost per dimension.
    CostCount {
        /// Dimensions the policy has.
        expected: usize,
        /// Costs given.
        given: usize,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a policy needs at least one quota"),
            Self::TooManyQuotas => write!(f, "a policy holds at most {MAX_POLICY_QUOTAS} quotas"),
            Self::TableFull => f.write_str("the keyed policy's table has no room for a new key"),
            Self::OutOfMemory => f.write_str("the keyed policy's tables could not be allocated"),
            Self::WrongReservation => {
                f.write_str("the reservation was made by a policy of the other kind")
            }
            Self::TableMismatch { index } => write!(
                f,
                "table {index} does not fit policy entry {index} (quota, refill, seed or count)"
            ),
            Self::CostCount { expected, given } => write!(
                f,
                "costs must give one cost per dimension: expected {expected}, given {given}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// One entry of a policy: a named quota on a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyEntry<N> {
    /// The entry's name, as rate-limit headers show it (`"burst"`, `"daily"`, `"input_tokens"`).
    pub name: N,
    /// The quota.
    pub quota: Quota,
    /// The index of the cost this entry is charged, in the costs given to each call.
    pub dimension: usize,
}

/// The decision of a policy: every entry's decision, and which entry binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a PolicyDecision says whether the request was admitted"]
pub struct PolicyDecision {
    /// Whether every entry admitted its cost (and all were charged); if not, none was.
    pub allowed: bool,
    /// The binding entry: when denied, the refusing entry with the longest wait; when
    /// allowed, the entry with the least remaining (ties: the longest `reset_after_ns`).
    pub binding: usize,
    decisions: [Decision; MAX_POLICY_QUOTAS],
    len: usize,
}

impl PolicyDecision {
    /// The binding entry's decision, with `allowed` of the whole policy (and so a
    /// `retry_after_ns` of 0 when allowed, even if the binding entry, asked for nothing, is in
    /// debt).
    pub fn decision(&self) -> Decision {
        let mut decision = self
            .decisions()
            .get(self.binding)
            .copied()
            .unwrap_or(EMPTY_DECISION);
        decision.allowed = self.allowed;
        if self.allowed {
            decision.retry_after_ns = 0;
        }
        decision
    }

    /// Every entry's decision, in entry order. For a denied policy, the entries that were not
    /// charged (or were taken back) show what a peek at their cost shows.
    pub fn decisions(&self) -> &[Decision] {
        self.decisions.get(..self.len).unwrap_or(&[])
    }

    /// Every entry's decision as the fixed array and its length, for core's `Limiter`.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn into_parts(self) -> ([Decision; MAX_POLICY_QUOTAS], usize) {
        (self.decisions, self.len)
    }

    fn new(allowed: bool, decisions: [Decision; MAX_POLICY_QUOTAS], len: usize) -> Self {
        let mut result = Self {
            allowed,
            binding: 0,
            decisions,
            len,
        };
        result.finish(allowed);
        result
    }

    /// A decision of `len` entries to fill in place: not allowed, every entry empty. The
    /// operations write each entry's decision into it and then call
    /// [`finish`](Self::finish), so that the 344 bytes are not copied from a local array
    /// (each copy a `memmove` call: two thirds of a one-quota policy check, BENCHMARKS.md
    /// round 10).
    #[inline(always)]
    fn filling(len: usize) -> Self {
        Self {
            allowed: false,
            binding: 0,
            decisions: [EMPTY_DECISION; MAX_POLICY_QUOTAS],
            len,
        }
    }

    /// Sets whether the policy admitted, and the binding entry from the entries' decisions.
    #[inline(always)]
    fn finish(&mut self, allowed: bool) {
        self.allowed = allowed;
        self.binding = self.find_binding();
    }

    fn find_binding(&self) -> usize {
        binding_index(self.allowed, self.decisions())
    }
}

/// The binding entry among `decisions` (the rule of [`PolicyDecision::binding`]): when not
/// `allowed`, the refusing entry with the longest wait; when allowed, the least remaining,
/// then the longest `reset_after_ns`. Ties go to the first. Core's `Limiter` uses it too.
pub(crate) fn binding_index(allowed: bool, decisions: &[Decision]) -> usize {
    let mut binding = 0;
    let mut best: Option<&Decision> = None;
    for (index, decision) in decisions.iter().enumerate() {
        let better = match best {
            None => true,
            Some(best) if !allowed => {
                (!decision.allowed && best.allowed)
                    || (decision.allowed == best.allowed
                        && decision.retry_after_ns > best.retry_after_ns)
            }
            Some(best) => {
                decision.remaining < best.remaining
                    || (decision.remaining == best.remaining
                        && decision.reset_after_ns > best.reset_after_ns)
            }
        };
        if better {
            binding = index;
            best = Some(decision);
        }
    }
    binding
}

/// A decision that says "denied, nothing known": the filler of fixed decision arrays.
pub(crate) const EMPTY_DECISION: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    retry_after_ns: 0,
    reset_after_ns: 0,
};

/// What a reservation charged, to be settled with the actual costs.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a reservation is settled (or released) with the actual costs"]
pub struct Reservation {
    costs: [u64; MAX_POLICY_QUOTAS],
    dimensions: usize,
    key: Option<KeyHash>,
}

impl Reservation {
    /// The estimated cost reserved on each dimension.
    pub fn costs(&self) -> &[u64] {
        self.costs.get(..self.dimensions).unwrap_or(&[])
    }
}

/// The answer to a `reserve`: the decision, and the reservation when it was admitted.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an admitted reservation must be settled"]
pub struct Reserved {
    /// The decision of the check that reserved the estimate.
    pub decision: PolicyDecision,
    /// The reservation to settle, when admitted; `None` when refused (nothing was charged).
    pub reservation: Option<Reservation>,
}

/// The buckets of a policy, wherever they live: cells, one key's slots in tables, or the
/// states of a record read from a remote store.
pub(crate) trait Buckets {
    /// Runs `op` on bucket `index`; the outcome's `next` is the committed state, if any.
    fn run(&self, index: usize, now_ns: u64, cost: u64, op: Op) -> Result<Outcome, TableFull>;
    /// A `check` of `cost` on bucket `index` that a policy may have to take back: either
    /// committed (with the state it was decided from), or, for a key a table does not hold
    /// yet, decided on a full bucket and deferred until every entry has admitted (so that a
    /// refusal never inserts a key).
    fn charge(&self, index: usize, now_ns: u64, cost: u64) -> Result<Charge, TableFull>;
    /// Takes back a check of `cost` committed on bucket `index` at `charged_at_ns`: restores
    /// `before` exactly if the bucket still holds `written` (nothing else touched it), else
    /// gives back what [`Rule::undo_check`] says is certainly the charge's.
    fn undo(&self, index: usize, undo: Undo);
}

/// A check that [`Buckets::charge`] made.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Charge {
    /// Committed: `outcome.next` is the state written, `before` the state decided from.
    Committed {
        /// The decision and the state written.
        outcome: Outcome,
        /// The state the decision was made from.
        before: CellState,
    },
    /// The key is not stored and the check would store it: decided on a full bucket and not
    /// written yet (commit it with `run(.., Op::Check)` once every entry admitted).
    // Only keyed tables (and remote records), which need `alloc`, defer.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    Deferred(Outcome),
    /// Decided and nothing written (a denial).
    Unwritten(Outcome),
}

/// How to take back one committed check (see [`Buckets::undo`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Undo {
    /// The state to restore when nothing else touched the bucket; `None` when unknown.
    pub(crate) before: Option<CellState>,
    /// The state the charge wrote.
    pub(crate) written: CellState,
    /// The cost charged.
    pub(crate) cost: u64,
}

/// The state to write to take `undo` back from a bucket now in `state`.
pub(crate) fn undo_outcome(rule: &Rule, state: CellState, undo: Undo) -> Outcome {
    let next = match undo.before {
        Some(before) if state == undo.written => before,
        _ => rule.undo_check(state, undo.written.last_ns, undo.cost),
    };
    Outcome {
        decision: EMPTY_DECISION,
        next: Some(next),
    }
}

/// Checks every entry all-or-nothing: charges them in order, takes the charges back if one
/// refuses (or, for a keyed policy, if a table has no room for the key). Uncontended, a
/// refusal leaves every bucket exactly as it was: the charges are restored to the states they
/// were decided from, and a key a table did not hold is only inserted once every entry has
/// admitted.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) fn check_all(
    buckets: &impl Buckets,
    len: usize,
    now_ns: u64,
    cost: impl Fn(usize) -> u64,
) -> Result<PolicyDecision, TableFull> {
    let mut result = PolicyDecision::filling(len);
    let allowed = check_into(buckets, &mut result.decisions, len, now_ns, cost)?;
    result.finish(allowed);
    Ok(result)
}

/// [`check_all`] into `decisions` (the first `len` written), returning whether the policy
/// admitted: the decisions of the caller's own result (a [`PolicyDecision`], a
/// `LimiterDecision`), so that they are written where they are returned, not copied there
/// (each copy of the 344 bytes a `memmove` call: BENCHMARKS.md, round 10).
pub(crate) fn check_into(
    buckets: &impl Buckets,
    decisions: &mut [Decision; MAX_POLICY_QUOTAS],
    len: usize,
    now_ns: u64,
    cost: impl Fn(usize) -> u64,
) -> Result<bool, TableFull> {
    let mut undos: [Option<Undo>; MAX_POLICY_QUOTAS] = [None; MAX_POLICY_QUOTAS];
    let mut deferred = [false; MAX_POLICY_QUOTAS];
    let mut refused: Option<Result<usize, TableFull>> = None;
    for (index, ((decision, undo), deferred)) in decisions
        .iter_mut()
        .zip(undos.iter_mut())
        .zip(deferred.iter_mut())
        .enumerate()
        .take(len)
    {
        let cost = cost(index);
        // A cost of 0 asks nothing of the entry: it is shown (a peek) but cannot refuse.
        if cost == 0 {
            match buckets.run(index, now_ns, cost, Op::Peek) {
                Ok(outcome) => *decision = outcome.decision,
                Err(TableFull) => {
                    refused = Some(Err(TableFull));
                    break;
                }
            }
            continue;
        }
        match buckets.charge(index, now_ns, cost) {
            Ok(Charge::Committed { outcome, before }) => {
                *decision = outcome.decision;
                *undo = outcome.next.map(|written| Undo {
                    before: Some(before),
                    written,
                    cost,
                });
            }
            Ok(Charge::Deferred(outcome)) => {
                *decision = outcome.decision;
                *deferred = true;
            }
            Ok(Charge::Unwritten(outcome)) => {
                *decision = outcome.decision;
                if !outcome.decision.allowed {
                    refused = Some(Ok(index));
                    break;
                }
            }
            Err(TableFull) => {
                refused = Some(Err(TableFull));
                break;
            }
        }
    }
    if refused.is_none() {
        // Every entry admitted: store the keys the tables did not hold.
        for (index, ((decision, undo), deferred)) in decisions
            .iter_mut()
            .zip(undos.iter_mut())
            .zip(deferred.iter())
            .enumerate()
            .take(len)
        {
            if !*deferred {
                continue;
            }
            let cost = cost(index);
            match buckets.run(index, now_ns, cost, Op::Check) {
                Ok(outcome) => {
                    *decision = outcome.decision;
                    // Inserted as a full bucket at `now_ns` (or found, inserted meanwhile):
                    // the state before is not known exactly, so an undo gives back the charge.
                    *undo = outcome.next.map(|written| Undo {
                        before: None,
                        written,
                        cost,
                    });
                    if !outcome.decision.allowed {
                        refused = Some(Ok(index));
                        break;
                    }
                }
                Err(TableFull) => {
                    refused = Some(Err(TableFull));
                    break;
                }
            }
        }
    }
    let Some(refused) = refused else {
        return Ok(true);
    };
    for (index, undo) in undos.iter().enumerate().take(len) {
        if let Some(undo) = undo {
            buckets.undo(index, *undo);
        }
    }
    let refusing = refused?;
    // Every other entry shows what it would say now (for headers and the binding entry).
    for (index, decision) in decisions.iter_mut().enumerate().take(len) {
        if index != refusing {
            if let Ok(outcome) = buckets.run(index, now_ns, cost(index), Op::Peek) {
                *decision = outcome.decision;
            }
        }
    }
    Ok(false)
}

/// After a policy's refused check (each entry's `decisions`), on a limiter that blocks: runs
/// `block(index)` on each entry whose own decision for its `cost(index)` blocks
/// ([`refusal_blocks`](crate::rule::refusal_blocks)), and says whether any wrote a block
/// (then the caller shows the entries again, with a peek).
#[cfg(feature = "alloc")]
pub(crate) fn block_refusals(
    decisions: &[Decision],
    cost: impl Fn(usize) -> u64,
    mut block: impl FnMut(usize) -> bool,
) -> bool {
    let mut blocked = false;
    for (index, entry) in decisions.iter().enumerate() {
        if crate::rule::refusal_blocks(entry, cost(index)) {
            blocked |= block(index);
        }
    }
    blocked
}

/// Runs `op` on every entry with its cost, unconditionally (force, refund).
pub(crate) fn run_all(
    buckets: &impl Buckets,
    len: usize,
    now_ns: u64,
    op: Op,
    cost: impl Fn(usize) -> u64,
) -> Result<PolicyDecision, TableFull> {
    let mut result = PolicyDecision::filling(len);
    let mut allowed = true;
    for (index, decision) in result.decisions.iter_mut().enumerate().take(len) {
        let cost = cost(index);
        let outcome = buckets.run(index, now_ns, cost, op)?;
        // As in `check_all`: an entry asked for nothing cannot refuse.
        if cost != 0 {
            allowed &= outcome.decision.allowed;
        }
        *decision = outcome.decision;
    }
    result.finish(allowed);
    Ok(result)
}

/// The entries of a policy, their rules and its dimension count, validated.
#[derive(Clone, Debug)]
struct Entries<N> {
    entries: [Option<PolicyEntry<N>>; MAX_POLICY_QUOTAS],
    rules: [Option<Rule>; MAX_POLICY_QUOTAS],
    len: usize,
    dimensions: usize,
}

impl<N> Entries<N> {
    fn new(entries: impl IntoIterator<Item = PolicyEntry<N>>) -> Result<Self, PolicyError> {
        let mut slots: [Option<PolicyEntry<N>>; MAX_POLICY_QUOTAS] = Default::default();
        let mut rules = [None; MAX_POLICY_QUOTAS];
        let mut len = 0;
        let mut dimensions = 0;
        for entry in entries {
            let (Some(slot), Some(rule)) = (slots.get_mut(len), rules.get_mut(len)) else {
                return Err(PolicyError::TooManyQuotas);
            };
            dimensions = dimensions.max(entry.dimension.saturating_add(1));
            *rule = Some(Rule::new(entry.quota, Refill::Greedy));
            *slot = Some(entry);
            len = len.saturating_add(1);
        }
        if len == 0 {
            return Err(PolicyError::Empty);
        }
        Ok(Self {
            entries: slots,
            rules,
            len,
            dimensions,
        })
    }

    fn check_costs(&self, costs: &[u64]) -> Result<(), PolicyError> {
        if costs.len() == self.dimensions {
            Ok(())
        } else {
            Err(PolicyError::CostCount {
                expected: self.dimensions,
                given: costs.len(),
            })
        }
    }

    /// Entry `index`'s cost among `costs` (one per dimension).
    fn cost(&self, costs: &[u64], index: usize) -> u64 {
        self.entry(index)
            .and_then(|entry| costs.get(entry.dimension))
            .copied()
            .unwrap_or(0)
    }

    fn entry(&self, index: usize) -> Option<&PolicyEntry<N>> {
        self.entries.get(index).and_then(Option::as_ref)
    }

    fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index).and_then(Option::as_ref)
    }

    fn iter(&self) -> impl Iterator<Item = &PolicyEntry<N>> {
        self.entries.iter().take(self.len).flatten()
    }

    fn reservation(&self, costs: &[u64], key: Option<KeyHash>) -> Reservation {
        let mut reserved = [0; MAX_POLICY_QUOTAS];
        for (slot, cost) in reserved.iter_mut().zip(costs) {
            *slot = *cost;
        }
        Reservation {
            costs: reserved,
            dimensions: self.dimensions,
            key,
        }
    }
}

/// `max(a − b, 0)` per dimension: the part of `a` above `b`.
fn excess(a: &[u64], b: &[u64], dimension: usize) -> u64 {
    let a = a.get(dimension).copied().unwrap_or(0);
    let b = b.get(dimension).copied().unwrap_or(0);
    a.saturating_sub(b)
}

/// Settles a reservation with the actual costs on `buckets`: refunds what was not used, then
/// charges what exceeds the estimate (regardless, possibly into debt).
fn settle_with<N>(
    entries: &Entries<N>,
    buckets: &impl Buckets,
    now_ns: u64,
    reservation: &Reservation,
    actual: &[u64],
) -> Result<PolicyDecision, PolicyError> {
    entries.check_costs(actual)?;
    let reserved = reservation.costs();
    let dimension = |index| entries.entry(index).map_or(0, |entry| entry.dimension);
    // Refunds first, so that a dimension that used less frees its room before any charge.
    run_all(buckets, entries.len, now_ns, Op::Refund, |index| {
        excess(reserved, actual, dimension(index))
    })
    .and_then(|_| {
        run_all(buckets, entries.len, now_ns, Op::Force, |index| {
            excess(actual, reserved, dimension(index))
        })
    })
    .map_err(|TableFull| PolicyError::TableFull)
}

/// A policy for one client: several named quotas on several dimensions, decided all-or-nothing
/// without locks.
///
/// A policy is a list of up to [`MAX_POLICY_QUOTAS`] entries, each a named [`Quota`] on one
/// *dimension*; a call gives one cost per dimension (`requests` and `tokens` are two
/// dimensions; `10/second` and `1000/day` on `requests` are two entries on one dimension).
///
/// A check charges the entries one at a time, each with its own compare-exchange. If one
/// refuses, the entries already charged are taken back with [`Rule::undo_check`], which never
/// returns more than the charge still holds (exact unless another thread moved that bucket's
/// time forward in between; then it may keep a little too much, never too little). So a
/// policy never admits more than any of its quotas allows; the price of not locking is that a
/// concurrent check may be refused while a charge that is about to be taken back is in place.
///
/// ```
/// use cellgate::{Policy, PolicyEntry, Quota};
/// let policy = Policy::new([
///     PolicyEntry { name: "burst", quota: Quota::per_second(2).unwrap(), dimension: 0 },
///     PolicyEntry { name: "daily", quota: Quota::per_day(3).unwrap(), dimension: 0 },
/// ])
/// .unwrap();
/// assert!(policy.check_at(0, &[2]).unwrap().allowed);
/// let second = policy.check_at(1_000_000_000, &[2]).unwrap();
/// assert!(!second.allowed); // "daily" has 1 left, so neither quota is charged
/// assert_eq!(policy.entries().nth(second.binding).unwrap().name, "daily");
/// assert!(policy.check_at(1_000_000_000, &[1]).unwrap().allowed);
/// ```
#[derive(Debug)]
pub struct Policy<N = &'static str, C = NoClock> {
    entries: Entries<N>,
    cells: [AtomicCell; MAX_POLICY_QUOTAS],
    clock: C,
}

/// A policy's cells seen as [`Buckets`], whatever its clock.
struct CellBuckets<'a, N> {
    entries: &'a Entries<N>,
    cells: &'a [AtomicCell; MAX_POLICY_QUOTAS],
}

impl<N> Buckets for CellBuckets<'_, N> {
    fn run(&self, index: usize, now_ns: u64, cost: u64, op: Op) -> Result<Outcome, TableFull> {
        cell_run(self.entries, self.cells, index, now_ns, cost, op)
    }

    fn charge(&self, index: usize, now_ns: u64, cost: u64) -> Result<Charge, TableFull> {
        let (Some(rule), Some(cell)) = (self.entries.rule(index), self.cells.get(index)) else {
            return Ok(Charge::Unwritten(Outcome {
                decision: EMPTY_DECISION,
                next: None,
            }));
        };
        let seen = core::cell::Cell::new(CellState::FULL);
        let outcome = cell.update(|state| {
            seen.set(state);
            rule.decide(state, now_ns, cost, Op::Check)
        });
        Ok(match outcome.next {
            Some(_) => Charge::Committed {
                outcome,
                before: seen.get(),
            },
            None => Charge::Unwritten(outcome),
        })
    }

    fn undo(&self, index: usize, undo: Undo) {
        if let (Some(rule), Some(cell)) = (self.entries.rule(index), self.cells.get(index)) {
            let _ = cell.update(|state| undo_outcome(rule, state, undo));
        }
    }
}

fn cell_run<N>(
    entries: &Entries<N>,
    cells: &[AtomicCell],
    index: usize,
    now_ns: u64,
    cost: u64,
    op: Op,
) -> Result<Outcome, TableFull> {
    match (entries.rule(index), cells.get(index)) {
        (Some(rule), Some(cell)) => Ok(cell.update(|state| rule.decide(state, now_ns, cost, op))),
        _ => Ok(Outcome {
            decision: EMPTY_DECISION,
            next: None,
        }),
    }
}

impl<N> Policy<N, NoClock> {
    /// A policy over `entries`, driven by explicit `now_ns` arguments.
    ///
    /// # Errors
    /// [`PolicyError::Empty`] or [`PolicyError::TooManyQuotas`].
    pub fn new(entries: impl IntoIterator<Item = PolicyEntry<N>>) -> Result<Self, PolicyError> {
        Self::with_clock(entries, NoClock)
    }
}

impl<N, C> Policy<N, C> {
    /// A policy over `entries` that reads `clock` in the operations without `_at`.
    ///
    /// # Errors
    /// [`PolicyError::Empty`] or [`PolicyError::TooManyQuotas`].
    pub fn with_clock(
        entries: impl IntoIterator<Item = PolicyEntry<N>>,
        clock: C,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            entries: Entries::new(entries)?,
            cells: core::array::from_fn(|_| AtomicCell::new(CellState::FULL)),
            clock,
        })
    }

    /// The entries, in order (indices match [`PolicyDecision::decisions`]).
    pub fn entries(&self) -> impl Iterator<Item = &PolicyEntry<N>> {
        self.entries.iter()
    }

    /// How many costs each call takes: one per dimension.
    pub fn dimensions(&self) -> usize {
        self.entries.dimensions
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    fn buckets(&self) -> CellBuckets<'_, N> {
        CellBuckets {
            entries: &self.entries,
            cells: &self.cells,
        }
    }

    /// Admits `costs` (one per dimension) only if every entry admits its cost, charging all
    /// or none. An entry whose dimension costs 0 is shown but cannot refuse (so a request
    /// that uses no output tokens is not held back by output-token debt).
    ///
    /// # Errors
    /// [`PolicyError::CostCount`] when `costs` does not have one cost per dimension.
    pub fn check_at(&self, now_ns: u64, costs: &[u64]) -> Result<PolicyDecision, PolicyError> {
        self.entries.check_costs(costs)?;
        let len = self.entries.len;
        let mut decision = PolicyDecision::filling(len);
        match check_into(
            &self.buckets(),
            &mut decision.decisions,
            len,
            now_ns,
            |index| self.entries.cost(costs, index),
        ) {
            Ok(allowed) => {
                decision.finish(allowed);
                Ok(decision)
            }
            Err(TableFull) => Ok(unreachable_table_full()),
        }
    }

    /// The decision [`check_at`](Self::check_at) would make, without consuming.
    ///
    /// # Errors
    /// [`PolicyError::CostCount`].
    pub fn peek_at(&self, now_ns: u64, costs: &[u64]) -> Result<PolicyDecision, PolicyError> {
        self.run_at(now_ns, costs, Op::Peek)
    }

    /// Charges `costs` on every entry regardless (debt); see [`Gcra::force_at`](crate::Gcra::force_at).
    ///
    /// # Errors
    /// [`PolicyError::CostCount`].
    pub fn force_at(&self, now_ns: u64, costs: &[u64]) -> Result<PolicyDecision, PolicyError> {
        self.run_at(now_ns, costs, Op::Force)
    }

    /// Gives `costs` back on every entry, never above full.
    ///
    /// # Errors
    /// [`PolicyError::CostCount`].
    pub fn refund_at(&self, now_ns: u64, costs: &[u64]) -> Result<PolicyDecision, PolicyError> {
        self.run_at(now_ns, costs, Op::Refund)
    }

    /// Makes every entry's bucket full.
    pub fn reset(&self) {
        for index in 0..self.entries.len {
            let _ = self.buckets().run(index, 0, 0, Op::Reset);
        }
    }

    /// Reserves an estimate: like [`check_at`](Self::check_at), and on admission returns the
    /// [`Reservation`] to [`settle_at`](Self::settle_at) once the actual costs are known.
    ///
    /// # Errors
    /// [`PolicyError::CostCount`]. A refusal is not an error: it is a [`Reserved`] without a
    /// reservation (and nothing is charged).
    pub fn reserve_at(&self, now_ns: u64, estimate: &[u64]) -> Result<Reserved, PolicyError> {
        let decision = self.check_at(now_ns, estimate)?;
        Ok(Reserved {
            decision,
            reservation: decision
                .allowed
                .then(|| self.entries.reservation(estimate, None)),
        })
    }

    /// Settles `reservation` with the `actual` costs: refunds what was not used and charges
    /// what exceeds the estimate (regardless, possibly into debt). Returns every entry's state
    /// after; `allowed` is false if some entry is now in debt.
    ///
    /// # Errors
    /// [`PolicyError::CostCount`] when `actual` does not have one cost per dimension;
    /// [`PolicyError::WrongReservation`] for a reservation made by a keyed policy.
    pub fn settle_at(
        &self,
        now_ns: u64,
        reservation: Reservation,
        actual: &[u64],
    ) -> Result<PolicyDecision, PolicyError> {
        if reservation.key.is_some() {
            return Err(PolicyError::WrongReservation);
        }
        settle_with(&self.entries, &self.buckets(), now_ns, &reservation, actual)
    }

    fn run_at(&self, now_ns: u64, costs: &[u64], op: Op) -> Result<PolicyDecision, PolicyError> {
        self.entries.check_costs(costs)?;
        let decision = run_all(&self.buckets(), self.entries.len, now_ns, op, |index| {
            self.entries.cost(costs, index)
        });
        Ok(decision.unwrap_or_else(|TableFull| unreachable_table_full()))
    }
}

impl<N, C: Clock> Policy<N, C> {
    /// [`check_at`](Self::check_at) at the clock's time.
    ///
    /// # Errors
    /// As `check_at`.
    pub fn check(&self, costs: &[u64]) -> Result<PolicyDecision, PolicyError> {
        self.check_at(self.clock.now_ns(), costs)
    }

    /// [`reserve_at`](Self::reserve_at) at the clock's time.
    ///
    /// # Errors
    /// As `reserve_at`.
    pub fn reserve(&self, estimate: &[u64]) -> Result<Reserved, PolicyError> {
        self.reserve_at(self.clock.now_ns(), estimate)
    }

    /// [`settle_at`](Self::settle_at) at the clock's time.
    ///
    /// # Errors
    /// As `settle_at`.
    pub fn settle(
        &self,
        reservation: Reservation,
        actual: &[u64],
    ) -> Result<PolicyDecision, PolicyError> {
        self.settle_at(self.clock.now_ns(), reservation, actual)
    }
}

/// Cells never report a full table; a decision that says "denied, nothing known" stands in.
fn unreachable_table_full() -> PolicyDecision {
    PolicyDecision::new(false, [EMPTY_DECISION; MAX_POLICY_QUOTAS], 0)
}

#[cfg(feature = "alloc")]
mod keyed_policy {
    use super::{
        check_into, run_all, settle_with, Buckets, Charge, Decision, Entries, PolicyDecision,
        PolicyEntry, PolicyError, Reservation, Reserved, Undo, MAX_POLICY_QUOTAS,
    };
    use crate::clock::{Clock, NoClock};
    use crate::keyed::{KeyHash, KeyedLimiter, KeyedStats, Seed, SlotGroup, TableFull};
    use crate::rule::{Op, Outcome, Refill};
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::fmt;

    /// A [`Policy`](super::Policy) per key: one table per entry, all hashed with one seed, so
    /// a key is hashed once per call. Memory is allocated at construction only.
    ///
    /// ```
    /// use cellgate::{KeyedPolicy, PolicyEntry, Quota, Seed};
    /// let policy = KeyedPolicy::new(
    ///     [
    ///         PolicyEntry { name: "requests", quota: Quota::per_minute(60).unwrap(), dimension: 0 },
    ///         PolicyEntry { name: "tokens", quota: Quota::per_minute(10_000).unwrap(), dimension: 1 },
    ///     ],
    ///     1_000,
    ///     Seed::new(1, 2),
    /// )
    /// .unwrap();
    /// // Reserve 1 request and an estimate of 4_000 tokens; the answer used 6_500.
    /// let reserved = policy.reserve_at(b"user:42", 0, &[1, 4_000]).unwrap();
    /// let reservation = reserved.reservation.expect("admitted");
    /// let after = policy.settle_at(0, reservation, &[1, 6_500]).unwrap();
    /// assert_eq!(after.decisions()[1].remaining, 3_500);
    /// ```
    ///
    /// `S` is each table's slot storage: `Box<[SlotGroup]>` (allocated by [`KeyedPolicy::new`]) or
    /// any `AsRef<[SlotGroup]>` the caller provides, such as slots in a mapping shared by processes
    /// ([`KeyedPolicy::from_tables`]).
    pub struct KeyedPolicy<N = &'static str, C = NoClock, S = Box<[SlotGroup]>> {
        entries: Entries<N>,
        tables: Box<[KeyedLimiter<S, NoClock>]>,
        clock: C,
    }

    impl<N: fmt::Debug, C: fmt::Debug, S: AsRef<[SlotGroup]>> fmt::Debug for KeyedPolicy<N, C, S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("KeyedPolicy")
                .field("entries", &self.entries)
                .field("tables", &self.tables)
                .field("clock", &self.clock)
                .finish()
        }
    }

    struct KeyBuckets<'a, S> {
        tables: &'a [KeyedLimiter<S, NoClock>],
        key: KeyHash,
    }

    impl<S: AsRef<[SlotGroup]>> Buckets for KeyBuckets<'_, S> {
        fn run(&self, index: usize, now_ns: u64, cost: u64, op: Op) -> Result<Outcome, TableFull> {
            match self.tables.get(index) {
                Some(table) => table.apply_outcome(self.key, now_ns, cost, op),
                None => Err(TableFull),
            }
        }

        fn charge(&self, index: usize, now_ns: u64, cost: u64) -> Result<Charge, TableFull> {
            match self.tables.get(index) {
                Some(table) => Ok(table.charge_outcome(self.key, now_ns, cost)),
                None => Err(TableFull),
            }
        }

        fn undo(&self, index: usize, undo: Undo) {
            if let Some(table) = self.tables.get(index) {
                let rule = table.rule();
                // An absent key was reclaimed as a full bucket: nothing of the charge is left.
                let _ =
                    table.update_present(self.key, |state| super::undo_outcome(rule, state, undo));
            }
        }
    }

    impl<N> KeyedPolicy<N, NoClock> {
        /// A keyed policy over `entries` with room for `max_keys` keys in each entry's table,
        /// driven by explicit `now_ns` arguments.
        ///
        /// # Errors
        /// [`PolicyError::Empty`], [`PolicyError::TooManyQuotas`], or
        /// [`PolicyError::OutOfMemory`] when the tables cannot be allocated.
        pub fn new(
            entries: impl IntoIterator<Item = PolicyEntry<N>>,
            max_keys: usize,
            seed: Seed,
        ) -> Result<Self, PolicyError> {
            Self::with_clock(entries, max_keys, seed, NoClock)
        }
    }

    impl<N, C> KeyedPolicy<N, C> {
        /// As [`KeyedPolicy::new`], reading `clock` in the operations without `_at`.
        ///
        /// # Errors
        /// [`PolicyError::Empty`], [`PolicyError::TooManyQuotas`], or
        /// [`PolicyError::OutOfMemory`] when the tables cannot be allocated.
        pub fn with_clock(
            entries: impl IntoIterator<Item = PolicyEntry<N>>,
            max_keys: usize,
            seed: Seed,
            clock: C,
        ) -> Result<Self, PolicyError> {
            let entries = Entries::new(entries)?;
            let tables: Vec<KeyedLimiter<Box<[SlotGroup]>, NoClock>> = entries
                .iter()
                .map(|entry| {
                    KeyedLimiter::try_with_options(
                        entry.quota,
                        Refill::Greedy,
                        max_keys,
                        seed,
                        NoClock,
                    )
                    .map_err(|_| PolicyError::OutOfMemory)
                })
                .collect::<Result<_, _>>()?;
            Ok(Self {
                entries,
                tables: tables.into_boxed_slice(),
                clock,
            })
        }
    }

    impl<N, C, S: AsRef<[SlotGroup]>> KeyedPolicy<N, C, S> {
        /// A keyed policy over tables the caller built, one per entry in entry order (for
        /// slots that live elsewhere than this process's heap: a shared mapping, a static
        /// buffer), reading `clock` in the operations without `_at`.
        ///
        /// Each table must have its entry's quota and greedy refill, and every table the same
        /// seed (a key is hashed once per call, with the first table's seed). The tables keep
        /// their own options, such as [`KeyedLimiter::with_claim_recovery`]. Only the boxed
        /// slice of tables is allocated here.
        ///
        /// # Errors
        /// [`PolicyError::Empty`], [`PolicyError::TooManyQuotas`], or
        /// [`PolicyError::TableMismatch`] naming the first table that does not fit (or the
        /// first index without a table, or the first table beyond the entries).
        pub fn from_tables(
            entries: impl IntoIterator<Item = PolicyEntry<N>>,
            tables: impl IntoIterator<Item = KeyedLimiter<S, NoClock>>,
            clock: C,
        ) -> Result<Self, PolicyError> {
            let entries = Entries::new(entries)?;
            let tables: Vec<KeyedLimiter<S, NoClock>> = tables.into_iter().collect();
            let seed = tables.first().map(|table| table.header().seed);
            for (index, entry) in entries.iter().enumerate() {
                let fits = tables.get(index).is_some_and(|table| {
                    table.quota() == entry.quota
                        && table.rule().refill() == Refill::Greedy
                        && Some(table.header().seed) == seed
                });
                if !fits {
                    return Err(PolicyError::TableMismatch { index });
                }
            }
            if tables.len() != entries.len {
                return Err(PolicyError::TableMismatch { index: entries.len });
            }
            Ok(Self {
                entries,
                tables: tables.into_boxed_slice(),
                clock,
            })
        }

        /// The entries, in order (indices match [`PolicyDecision::decisions`]).
        pub fn entries(&self) -> impl Iterator<Item = &PolicyEntry<N>> {
            self.entries.iter()
        }

        /// How many costs each call takes: one per dimension.
        pub fn dimensions(&self) -> usize {
            self.entries.dimensions
        }

        /// The clock.
        pub fn clock(&self) -> &C {
            &self.clock
        }

        /// The counters of each entry's table, in entry order (see [`KeyedStats`]). A key
        /// holds a slot in every table it was charged in, so the tables differ only when some
        /// were full or reclaimed at different times.
        pub fn stats(&self) -> impl Iterator<Item = KeyedStats> + '_ {
            self.tables.iter().map(KeyedLimiter::stats)
        }

        /// Each entry's table, in entry order (for the full-table answer of
        /// [`Limiter`](crate::Limiter)).
        pub(crate) fn tables(&self) -> &[KeyedLimiter<S, NoClock>] {
            &self.tables
        }

        /// `key` hashed under the tables' one seed.
        pub(crate) fn hash_key(&self, key: &[u8]) -> KeyHash {
            self.buckets(key).key
        }

        fn buckets(&self, key: &[u8]) -> KeyBuckets<'_, S> {
            let key = self
                .tables
                .first()
                .map_or(KeyHash::EMPTY, |table| table.hash_key(key));
            KeyBuckets {
                tables: &self.tables,
                key,
            }
        }

        /// Admits `costs` (one per dimension) for `key` only if every entry admits its cost,
        /// charging all or none.
        ///
        /// # Errors
        /// [`PolicyError::CostCount`]; [`PolicyError::TableFull`] when the key is new and
        /// some table has no room for it (then nothing is charged).
        pub fn check_at(
            &self,
            key: impl AsRef<[u8]>,
            now_ns: u64,
            costs: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            let mut decision = PolicyDecision::filling(self.entries.len);
            let allowed = self.check_into(key.as_ref(), now_ns, costs, &mut decision.decisions)?;
            decision.finish(allowed);
            Ok(decision)
        }

        /// [`check_at`](Self::check_at) into `decisions` (the first [`len`](Self::len)
        /// written), returning whether the policy admitted: for core's `Limiter`, which
        /// fills its own decision.
        ///
        /// # Errors
        /// As [`check_at`](Self::check_at).
        #[inline(always)]
        pub(crate) fn check_into(
            &self,
            key: &[u8],
            now_ns: u64,
            costs: &[u64],
            decisions: &mut [Decision; MAX_POLICY_QUOTAS],
        ) -> Result<bool, PolicyError> {
            self.entries.check_costs(costs)?;
            check_into(
                &self.buckets(key),
                decisions,
                self.entries.len,
                now_ns,
                |index| self.entries.cost(costs, index),
            )
            .map_err(|TableFull| PolicyError::TableFull)
        }

        /// How many entries the policy has.
        pub(crate) fn len(&self) -> usize {
            self.entries.len
        }

        /// The decision [`check_at`](Self::check_at) would make, without consuming.
        ///
        /// # Errors
        /// [`PolicyError::CostCount`].
        pub fn peek_at(
            &self,
            key: impl AsRef<[u8]>,
            now_ns: u64,
            costs: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            self.run_at(key.as_ref(), now_ns, costs, Op::Peek)
        }

        /// Charges `costs` for `key` on every entry regardless (debt).
        ///
        /// # Errors
        /// [`PolicyError::CostCount`]; [`PolicyError::TableFull`] (entries before the full
        /// table were charged).
        pub fn force_at(
            &self,
            key: impl AsRef<[u8]>,
            now_ns: u64,
            costs: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            self.run_at(key.as_ref(), now_ns, costs, Op::Force)
        }

        /// Gives `costs` back to `key` on every entry, never above full.
        ///
        /// # Errors
        /// [`PolicyError::CostCount`].
        pub fn refund_at(
            &self,
            key: impl AsRef<[u8]>,
            now_ns: u64,
            costs: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            self.run_at(key.as_ref(), now_ns, costs, Op::Refund)
        }

        /// Makes every entry's bucket for `key` full.
        pub fn reset_at(&self, key: impl AsRef<[u8]>, now_ns: u64) {
            let buckets = self.buckets(key.as_ref());
            for index in 0..self.entries.len {
                let _ = buckets.run(index, now_ns, 0, Op::Reset);
            }
        }

        /// Reserves an estimate for `key`: like [`check_at`](Self::check_at), and on
        /// admission returns the [`Reservation`] to [`settle_at`](Self::settle_at).
        ///
        /// # Errors
        /// [`PolicyError::CostCount`] or [`PolicyError::TableFull`]. A refusal is a
        /// [`Reserved`] without a reservation (and nothing is charged).
        pub fn reserve_at(
            &self,
            key: impl AsRef<[u8]>,
            now_ns: u64,
            estimate: &[u64],
        ) -> Result<Reserved, PolicyError> {
            let buckets = self.buckets(key.as_ref());
            let decision = self.check_at(key, now_ns, estimate)?;
            Ok(Reserved {
                decision,
                reservation: decision
                    .allowed
                    .then(|| self.entries.reservation(estimate, Some(buckets.key))),
            })
        }

        /// Settles `reservation` (for the key it was made for) with the `actual` costs:
        /// refunds what was not used and charges what exceeds the estimate, possibly into
        /// debt. `allowed` in the result is false if some entry is now in debt.
        ///
        /// # Errors
        /// [`PolicyError::CostCount`]; [`PolicyError::WrongReservation`] for a reservation
        /// not made by a keyed policy; [`PolicyError::TableFull`] if the key had lost its slots
        /// and a table has no room for the extra charge.
        pub fn settle_at(
            &self,
            now_ns: u64,
            reservation: Reservation,
            actual: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            let Some(key) = reservation.key else {
                return Err(PolicyError::WrongReservation);
            };
            let buckets = KeyBuckets {
                tables: &self.tables,
                key,
            };
            settle_with(&self.entries, &buckets, now_ns, &reservation, actual)
        }

        fn run_at(
            &self,
            key: &[u8],
            now_ns: u64,
            costs: &[u64],
            op: Op,
        ) -> Result<PolicyDecision, PolicyError> {
            self.entries.check_costs(costs)?;
            run_all(&self.buckets(key), self.entries.len, now_ns, op, |index| {
                self.entries.cost(costs, index)
            })
            .map_err(|TableFull| PolicyError::TableFull)
        }
    }

    impl<N, C: Clock, S: AsRef<[SlotGroup]>> KeyedPolicy<N, C, S> {
        /// [`check_at`](Self::check_at) at the clock's time.
        ///
        /// # Errors
        /// As `check_at`.
        pub fn check(
            &self,
            key: impl AsRef<[u8]>,
            costs: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            self.check_at(key, self.clock.now_ns(), costs)
        }

        /// [`reserve_at`](Self::reserve_at) at the clock's time.
        ///
        /// # Errors
        /// As `reserve_at`.
        pub fn reserve(
            &self,
            key: impl AsRef<[u8]>,
            estimate: &[u64],
        ) -> Result<Reserved, PolicyError> {
            self.reserve_at(key, self.clock.now_ns(), estimate)
        }

        /// [`settle_at`](Self::settle_at) at the clock's time.
        ///
        /// # Errors
        /// As `settle_at`.
        pub fn settle(
            &self,
            reservation: Reservation,
            actual: &[u64],
        ) -> Result<PolicyDecision, PolicyError> {
            self.settle_at(self.clock.now_ns(), reservation, actual)
        }
    }
}

#[cfg(feature = "alloc")]
pub use keyed_policy::KeyedPolicy;
