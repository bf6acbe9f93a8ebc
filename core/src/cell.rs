//! The lock-free cells: [`Gcra`] and [`TokenBucket`], one bucket each, over one atomic word.

use crate::clock::{Clock, NoClock};
use crate::decision::Decision;
use crate::quota::{Quota, QuotaError};
use crate::rule::{CellState, Op, Outcome, Refill, Rule};
use crate::sync::{AtomicU128, Ordering};

/// One bucket's state in a single 128-bit atomic word, updated by a compare-exchange loop.
#[derive(Debug)]
pub(crate) struct AtomicCell {
    word: AtomicU128,
}

impl AtomicCell {
    pub(crate) fn new(state: CellState) -> Self {
        Self {
            word: AtomicU128::new(state.pack()),
        }
    }

    /// A snapshot of the state.
    pub(crate) fn load(&self) -> CellState {
        // Relaxed: the word is self-contained; no other memory is published through it.
        CellState::unpack(self.word.load(Ordering::Relaxed))
    }

    /// Decides `op` and commits its state change atomically.
    #[inline(always)]
    pub(crate) fn apply(&self, rule: &Rule, now_ns: u64, cost: u64, op: Op) -> Decision {
        // `update`'s loop written out with `decide` called directly: through a closure, LLVM
        // kept the decision out of line, deciding every operation's branch at run time (about
        // 150 instructions per check instead of the one operation's path).
        // Relaxed: see `update`.
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let outcome = rule.decide(CellState::unpack(current), now_ns, cost, op);
            let Some(next) = outcome.next else {
                return outcome.decision;
            };
            let next = next.pack();
            if next == current {
                return outcome.decision;
            }
            // Relaxed: see `update`.
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return outcome.decision,
                Err(actual) => current = actual,
            }
        }
    }

    /// Runs `decide` on the current state and commits the state it returns, atomically; the
    /// returned outcome's `next` is the state committed (`None`: nothing was written).
    ///
    /// Uncontended this is one load and one compare-exchange. A decision that writes nothing
    /// (a denial, a peek) returns after the load. Under contention a failed compare-exchange
    /// hands back the current word and the decision is made again from it, so every committed
    /// decision was made from the state it replaced: the decisions form one sequence, as if
    /// taken one at a time.
    #[inline(always)]
    pub(crate) fn update(&self, decide: impl Fn(CellState) -> Outcome) -> Outcome {
        // Relaxed: see `load`. Atomicity of the compare-exchange alone serializes decisions.
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let outcome = decide(CellState::unpack(current));
            let Some(next) = outcome.next else {
                return outcome;
            };
            let next = next.pack();
            if next == current {
                return outcome;
            }
            // Relaxed on success and failure: the only thing synchronized is this word, and
            // the compare-exchange reads the latest value in its modification order.
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }
}

/// Generates the operations every cell type shares; each type supplies `rule` and `clock`.
macro_rules! cell_operations {
    ($cell:ident) => {
        impl<C> $cell<C> {
            /// The quota this cell enforces.
            pub fn quota(&self) -> Quota {
                self.rule.quota()
            }

            /// The clock this cell reads.
            pub fn clock(&self) -> &C {
                &self.clock
            }

            /// A snapshot of the state (plain data; see [`CellState`]).
            pub fn state(&self) -> CellState {
                self.cell.load()
            }

            /// Tests and consumes `cost` at `now_ns`, atomically: admitted only if the whole
            /// cost fits, and a denial changes nothing. Cost 0 is a pure peek. A cost above the
            /// burst is denied with `retry_after_ns == NEVER`.
            #[inline]
            pub fn check_at(&self, now_ns: u64, cost: u64) -> Decision {
                self.cell.apply(&self.rule, now_ns, cost, Op::Check)
            }

            /// The decision [`check_at`](Self::check_at) would make, without consuming.
            #[inline]
            pub fn peek_at(&self, now_ns: u64, cost: u64) -> Decision {
                self.cell.apply(&self.rule, now_ns, cost, Op::Peek)
            }

            /// Consumes `cost` at `now_ns` whether or not it fits, going into debt if needed:
            /// later requests wait until the debt is repaid. `allowed` says whether it fitted;
            /// when it did not, `retry_after_ns` is the wait until one cost unit fits again.
            /// Debt saturates at `u64::MAX` units of the state (see [`CellState`]).
            #[inline]
            pub fn force_at(&self, now_ns: u64, cost: u64) -> Decision {
                self.cell.apply(&self.rule, now_ns, cost, Op::Force)
            }

            /// Gives `cost` back at `now_ns` (a request that was admitted but not performed),
            /// never above a full bucket.
            #[inline]
            pub fn refund_at(&self, now_ns: u64, cost: u64) -> Decision {
                self.cell.apply(&self.rule, now_ns, cost, Op::Refund)
            }

            /// Makes the bucket full, forgetting all consumption and debt. The latest time seen
            /// is kept, so a later reading from behind it still counts as no time passing.
            pub fn reset(&self) {
                // `now_ns` 0 is never later than the state's own time: the reset happens "at"
                // the latest time seen.
                let _ = self.cell.apply(&self.rule, 0, 0, Op::Reset);
            }
        }

        impl<C: Clock> $cell<C> {
            /// [`check_at`](Self::check_at) at the clock's current time.
            #[inline]
            pub fn check(&self, cost: u64) -> Decision {
                self.check_at(self.clock.now_ns(), cost)
            }

            /// [`peek_at`](Self::peek_at) at the clock's current time.
            #[inline]
            pub fn peek(&self, cost: u64) -> Decision {
                self.peek_at(self.clock.now_ns(), cost)
            }

            /// [`force_at`](Self::force_at) at the clock's current time.
            #[inline]
            pub fn force(&self, cost: u64) -> Decision {
                self.force_at(self.clock.now_ns(), cost)
            }

            /// [`refund_at`](Self::refund_at) at the clock's current time.
            #[inline]
            pub fn refund(&self, cost: u64) -> Decision {
                self.refund_at(self.clock.now_ns(), cost)
            }
        }
    };
}

/// A GCRA (generic cell rate algorithm, virtual scheduling) limiter for one bucket.
///
/// Exact: `rate_cost` per `period_ns` is honoured to the nanosecond with integer arithmetic,
/// with no drift. Lock-free: one atomic load and one compare-exchange per admitted check, and
/// a denial writes nothing. Safe to share between threads (`&self` everywhere).
///
/// Built without a clock (`Gcra::new`), only the `_at` operations exist; built with one
/// (`Gcra::with_clock`), `check`/`peek`/`force`/`refund` read it.
///
/// ```
/// use cellgate::{Gcra, Quota, NS_PER_SECOND};
/// let limiter = Gcra::new(Quota::per_second(10).unwrap());
/// assert!(limiter.check_at(0, 10).allowed);
/// let denied = limiter.check_at(0, 1);
/// assert_eq!(denied.retry_after_ns, NS_PER_SECOND / 10);
/// assert!(!limiter.check_at(NS_PER_SECOND / 10 - 1, 1).allowed);
/// assert!(limiter.check_at(NS_PER_SECOND / 10, 1).allowed);
/// ```
#[derive(Debug)]
pub struct Gcra<C = NoClock> {
    cell: AtomicCell,
    rule: Rule,
    clock: C,
}

impl Gcra<NoClock> {
    /// A full bucket for `quota`, driven by explicit `now_ns` arguments.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, NoClock)
    }
}

impl<C> Gcra<C> {
    /// A full bucket for `quota` that reads `clock` in `check`, `peek`, `force`, `refund`.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            cell: AtomicCell::new(CellState::FULL),
            rule: Rule::new(quota, Refill::Greedy),
            clock,
        }
    }
}

cell_operations!(Gcra);

/// A token bucket for one key: greedy (continuous) refill, which decides exactly as [`Gcra`]
/// does, or interval refill (`rate_cost` tokens at every multiple of the period), with a
/// configurable initial fill.
///
/// ```
/// use cellgate::{Quota, Refill, TokenBucket, NS_PER_MINUTE};
/// // 100 tokens every minute, starting empty at t = 0.
/// let bucket = TokenBucket::builder(Quota::per_minute(100).unwrap())
///     .refill(Refill::Interval)
///     .initial_tokens(0)
///     .build_at(0)
///     .unwrap();
/// let denied = bucket.check_at(1, 1);
/// assert_eq!(denied.retry_after_ns, NS_PER_MINUTE - 1);
/// assert!(bucket.check_at(NS_PER_MINUTE, 100).allowed);
/// ```
#[derive(Debug)]
pub struct TokenBucket<C = NoClock> {
    cell: AtomicCell,
    rule: Rule,
    clock: C,
}

impl TokenBucket<NoClock> {
    /// A full, greedy token bucket for `quota`.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, NoClock)
    }

    /// Configures refill and initial fill.
    pub fn builder(quota: Quota) -> TokenBucketBuilder {
        TokenBucketBuilder {
            quota,
            refill: Refill::Greedy,
            initial_tokens: None,
        }
    }
}

impl<C> TokenBucket<C> {
    /// A full, greedy token bucket for `quota` reading `clock`.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            cell: AtomicCell::new(CellState::FULL),
            rule: Rule::new(quota, Refill::Greedy),
            clock,
        }
    }

    /// How this bucket refills.
    pub fn refill(&self) -> Refill {
        self.rule.refill()
    }
}

cell_operations!(TokenBucket);

/// Builds a [`TokenBucket`] with a refill mode and an initial fill.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct TokenBucketBuilder {
    quota: Quota,
    refill: Refill,
    initial_tokens: Option<u64>,
}

impl TokenBucketBuilder {
    /// How the bucket refills (default [`Refill::Greedy`]).
    pub fn refill(mut self, refill: Refill) -> Self {
        self.refill = refill;
        self
    }

    /// Tokens in the bucket when it is built (default: the burst, a full bucket).
    pub fn initial_tokens(mut self, tokens: u64) -> Self {
        self.initial_tokens = Some(tokens);
        self
    }

    /// Builds the bucket as of `now_ns`, for use with the `_at` operations.
    ///
    /// # Errors
    /// [`QuotaError::InitialFillAboveBurst`] when the initial fill exceeds the burst.
    pub fn build_at(self, now_ns: u64) -> Result<TokenBucket<NoClock>, QuotaError> {
        self.build(now_ns, NoClock)
    }

    /// Builds the bucket as of `clock`'s current time, reading `clock` from then on.
    ///
    /// # Errors
    /// [`QuotaError::InitialFillAboveBurst`] when the initial fill exceeds the burst.
    pub fn build_with_clock<C: Clock>(self, clock: C) -> Result<TokenBucket<C>, QuotaError> {
        let now_ns = clock.now_ns();
        self.build(now_ns, clock)
    }

    fn build<C>(self, now_ns: u64, clock: C) -> Result<TokenBucket<C>, QuotaError> {
        let rule = Rule::new(self.quota, self.refill);
        let state = match self.initial_tokens {
            None => CellState::FULL,
            Some(tokens) if tokens > self.quota.burst_cost() => {
                return Err(QuotaError::InitialFillAboveBurst)
            }
            Some(tokens) => rule.state_with_tokens(tokens, now_ns),
        };
        Ok(TokenBucket {
            cell: AtomicCell::new(state),
            rule,
            clock,
        })
    }
}
