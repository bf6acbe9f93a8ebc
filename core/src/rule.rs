//! The decision function: a pure function of (state, now, cost, operation, quota).
//!
//! Keeping it pure and the state plain data is what lets the same decisions be made over an
//! atomic in one process, a table in shared memory, or a record in a remote store.
//!
//! # The state
//!
//! A bucket's state is `(last_ns, missing)`: the latest time seen, and how far the bucket was
//! from full at that time. For the greedy refill (GCRA) `missing` is in ticks of
//! `1 / ticks_per_ns` ns, so that one cost unit is exactly `emission_ticks` ticks and time refills
//! exactly `ticks_per_ns` ticks per nanosecond; GCRA's theoretical arrival time is
//! `last_ns + missing / ticks_per_ns`. For the interval refill `missing` is in cost units, and
//! `rate_cost` of them come back at every multiple of `period_ns`.
//!
//! A `now` earlier than `last_ns` (a clock stepping backwards, or two threads racing with
//! readings taken in a different order) is treated as `last_ns`: no time passes, nothing is
//! refilled, nothing already refilled is taken back.

use crate::decision::{Decision, NEVER};
use crate::divide::Divisor;
use crate::quota::Quota;
use core::num::{NonZeroU128, NonZeroU64};

/// `numerator / divisor`, rounded up, in 128 bits.
#[inline(always)]
fn div_ceil_wide(numerator: u128, divisor: NonZeroU64) -> u128 {
    let divisor = NonZeroU128::from(divisor);
    let quotient = numerator / divisor;
    if numerator % divisor == 0 {
        quotient
    } else {
        quotient.saturating_add(1)
    }
}

/// `missing + added − capacity` without overflow (0 if not above the capacity).
#[inline(always)]
fn excess_over(missing: u64, added: u64, capacity: u64) -> u128 {
    (u128::from(missing).saturating_add(u128::from(added))).saturating_sub(u128::from(capacity))
}

/// Whether a check's `decision` for `cost` blocks its bucket, on a limiter that blocks
/// ([`Rule::block`]): refused, for a cost within the burst (waiting can admit it; a cost above
/// the burst never fits, and blocks nothing).
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) const fn refusal_blocks(decision: &Decision, cost: u64) -> bool {
    !decision.allowed && cost <= decision.limit
}

/// How a bucket refills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Refill {
    /// Continuously: one cost unit every `period / rate`, exactly. Decides identically to GCRA.
    #[default]
    Greedy,
    /// In steps: `rate_cost` units at once at every multiple of `period_ns` on the clock's
    /// time line (boundaries at `k × period_ns`), never above the burst.
    Interval,
}

/// A bucket's state: plain data, 16 bytes, `(0, 0)` is a full bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CellState {
    /// The latest `now` an operation wrote, in nanoseconds.
    pub last_ns: u64,
    /// How far the bucket was from full at `last_ns`: ticks for [`Refill::Greedy`], cost units
    /// for [`Refill::Interval`]. Above the capacity means debt (from `force`).
    pub missing: u64,
}

impl CellState {
    /// A full bucket.
    pub const FULL: Self = Self {
        last_ns: 0,
        missing: 0,
    };

    /// Packs the state into one 128-bit word (`last_ns` in the high half).
    #[inline(always)]
    pub fn pack(self) -> u128 {
        (u128::from(self.last_ns) << 64) | u128::from(self.missing)
    }

    /// The inverse of [`CellState::pack`].
    #[allow(clippy::as_conversions)] // truncation to each half is the point
    #[inline(always)]
    pub const fn unpack(word: u128) -> Self {
        Self {
            last_ns: (word >> 64) as u64,
            missing: word as u64,
        }
    }
}

/// One operation on a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Admit `cost` if it fits, consuming it; a denial changes nothing. Cost 0 is a peek.
    Check,
    /// Whether `Check` would admit `cost`, and its wait if not, without consuming:
    /// `remaining` and `reset_after_ns` describe the bucket as it is.
    Peek,
    /// Consume `cost` whether or not it fits (the bucket may go into debt).
    Force,
    /// Give `cost` back, never above a full bucket.
    Refund,
    /// Make the bucket full.
    Reset,
}

/// What an operation decided, and the state to write (`None`: write nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The decision returned to the caller.
    pub decision: Decision,
    /// The new state, when the operation changes it.
    pub next: Option<CellState>,
}

/// A quota and a refill mode: everything a decision needs besides the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    quota: Quota,
    refill: Refill,
    /// Units of `missing` per cost unit (ticks per cost unit for greedy, 1 for interval).
    units_per_cost: Divisor,
    /// What a wait in units of `missing` is divided by: ticks per nanosecond (greedy, the
    /// result in nanoseconds) or `rate_cost` (interval, the result in periods).
    wait_units: Divisor,
    /// The period in nanoseconds (interval refill's boundaries).
    period_ns: Divisor,
}

impl Rule {
    /// A rule for `quota` refilling as `refill` says.
    ///
    /// Precomputes the reciprocals of the divisors its decisions need (see `divide.rs`), so
    /// that no decision executes a division instruction.
    pub const fn new(quota: Quota, refill: Refill) -> Self {
        let (units_per_cost, wait_units) = match refill {
            Refill::Greedy => (quota.emission_ticks_nz(), quota.ticks_per_ns_nz()),
            Refill::Interval => (NonZeroU64::MIN, quota.rate_cost_nz()),
        };
        Self {
            quota,
            refill,
            units_per_cost: Divisor::new(units_per_cost),
            wait_units: Divisor::new(wait_units),
            period_ns: Divisor::new(quota.period_ns_nz()),
        }
    }

    /// The quota.
    pub const fn quota(&self) -> Quota {
        self.quota
    }

    /// The refill mode.
    pub const fn refill(&self) -> Refill {
        self.refill
    }

    /// The bucket's size in units of `missing`.
    #[inline(always)]
    pub const fn capacity(&self) -> u64 {
        match self.refill {
            Refill::Greedy => self.quota.capacity_ticks(),
            Refill::Interval => self.quota.burst_cost(),
        }
    }

    /// Units of `missing` per cost unit.
    #[inline(always)]
    const fn units_per_cost(&self) -> NonZeroU64 {
        self.units_per_cost.get()
    }

    /// The state of a bucket holding `tokens` (at most the burst) at `now_ns`.
    pub fn state_with_tokens(&self, tokens: u64, now_ns: u64) -> CellState {
        let tokens = tokens.min(self.quota.burst_cost());
        let empty_cost = self.quota.burst_cost().saturating_sub(tokens);
        CellState {
            last_ns: now_ns,
            missing: empty_cost.saturating_mul(self.units_per_cost().get()),
        }
    }

    /// `missing` brought forward to `max(now_ns, last_ns)`, and that time.
    #[inline(always)]
    fn refilled(&self, state: CellState, now_ns: u64) -> (u64, u64) {
        let at_ns = now_ns.max(state.last_ns);
        let refilled = self.refill_between(state.last_ns, at_ns);
        // A saturated refill only ever exceeds `missing`, which empties the debt: exact.
        (state.missing.saturating_sub(refilled), at_ns)
    }

    /// Units of `missing` that time refills from `from_ns` to `to_ns` (0 if `to_ns <= from_ns`),
    /// saturating.
    #[inline(always)]
    fn refill_between(&self, from_ns: u64, to_ns: u64) -> u64 {
        match self.refill {
            Refill::Greedy => {
                let elapsed_ns = to_ns.saturating_sub(from_ns);
                elapsed_ns.saturating_mul(self.quota.ticks_per_ns())
            }
            Refill::Interval => {
                let boundaries = self
                    .period_ns
                    .div_floor(to_ns)
                    .saturating_sub(self.period_ns.div_floor(from_ns));
                boundaries.saturating_mul(self.quota.rate_cost())
            }
        }
    }

    /// Takes back a `check` of `cost` that was committed at `charged_at_ns` (the `last_ns` it
    /// wrote), from the bucket's current `state`, for an all-or-nothing policy whose other
    /// quotas refused.
    ///
    /// Never gives back more than the charge still holds: if time refilled `R` units since the
    /// charge, the bucket without the charge might have been full for part of that time and
    /// wasted some of `R`, so only `cost − R` is certainly the charge's. Exact when no time
    /// passed in the bucket (`R = 0`), which is the usual case: the undo follows the charge
    /// within the same call.
    pub fn undo_check(&self, state: CellState, charged_at_ns: u64, cost: u64) -> CellState {
        let cost_units = cost.saturating_mul(self.units_per_cost().get());
        let refilled = self.refill_between(charged_at_ns, state.last_ns);
        CellState {
            last_ns: state.last_ns,
            missing: state
                .missing
                .saturating_sub(cost_units.saturating_sub(refilled)),
        }
    }

    /// The state that blocks a bucket in `state` for `block_ns` from `now_ns`, after a denial:
    /// the bucket empty and then `block_ns` of debt, so that every cost is denied until at
    /// least `now_ns + block_ns` and the bucket refills from empty after that (the first cost
    /// unit fits one emission interval after the block, for greedy refill; at the first
    /// boundary after it, for interval refill).
    ///
    /// `None` when the bucket is already in debt at `now_ns` (blocked, or forced below
    /// empty): a block is never extended by the requests it denies, and debt is never taken
    /// back. Saturates: a block past `u64` units is a bucket that never refills in practice.
    pub fn block(&self, state: CellState, now_ns: u64, block_ns: u64) -> Option<CellState> {
        let (missing, at_ns) = self.refilled(state, now_ns);
        let capacity = self.capacity();
        if missing > capacity {
            return None;
        }
        let debt = self.block_debt(block_ns);
        Some(CellState {
            last_ns: at_ns,
            missing: capacity.saturating_add(debt),
        })
    }

    /// The debt (units of `missing` beyond the capacity) that [`block`](Self::block) leaves
    /// for `block_ns`, saturating. (The remote script adds this number, computed here.)
    pub(crate) fn block_debt(&self, block_ns: u64) -> u64 {
        match self.refill {
            // Refilled at `ticks_per_ns` per nanosecond: the debt is gone `block_ns` after
            // the block's time.
            Refill::Greedy => block_ns.saturating_mul(self.quota.ticks_per_ns()),
            // Refilled `rate_cost` at each boundary: the k-th boundary after the block's time
            // `t` is past `t + (k - 1) × period`, so after `ceil(block / period) + 1`
            // boundaries at least `block_ns` has passed.
            Refill::Interval => self
                .period_ns
                .div_ceil(block_ns)
                .saturating_add(1)
                .saturating_mul(self.quota.rate_cost()),
        }
    }

    /// Whether a bucket in `state` is full at `now_ns`.
    pub(crate) fn is_full_at(&self, state: CellState, now_ns: u64) -> bool {
        self.refilled(state, now_ns).0 == 0
    }

    /// Nanoseconds from `now_ns` until `missing` has dropped by `excess`, given that it was
    /// last brought forward to `at_ns >= now_ns`. Rounded up; [`NEVER`] if past `u64`.
    #[inline(always)]
    fn wait_ns(&self, excess: u128, at_ns: u64, now_ns: u64) -> u64 {
        if excess == 0 {
            return 0;
        }
        // No division instruction unless deep debt pushed `excess` past u64. (Computed here,
        // not in a closure: the C library, which inlines every operation into one function,
        // kept such a closure out of line and called it twice per decision.)
        let units = match u64::try_from(excess) {
            Ok(excess) => Some(self.wait_units.div_ceil(excess)),
            Err(_) => u64::try_from(div_ceil_wide(excess, self.wait_units.get())).ok(),
        };
        let until_ns = match self.refill {
            Refill::Greedy => units.and_then(|after_ns| at_ns.checked_add(after_ns)),
            Refill::Interval => match units {
                Some(boundaries) => self
                    .period_ns
                    .div_floor(at_ns)
                    .checked_add(boundaries)
                    .and_then(|index| index.checked_mul(self.period_ns.get().get())),
                None => None,
            },
        };
        match until_ns {
            Some(until_ns) => until_ns.saturating_sub(now_ns).min(NEVER.saturating_sub(1)),
            None => NEVER,
        }
    }

    /// The decision fields that describe a bucket `missing` from full at `at_ns`.
    #[inline(always)]
    fn describe(&self, allowed: bool, missing: u64, at_ns: u64, now_ns: u64) -> Decision {
        Decision {
            allowed,
            limit: self.quota.burst_cost(),
            remaining: self
                .units_per_cost
                .div_floor(self.capacity().saturating_sub(missing)),
            retry_after_ns: 0,
            reset_after_ns: self.wait_ns(u128::from(missing), at_ns, now_ns),
        }
    }

    /// The decision after a write that may leave debt (`force`, `refund`): `allowed` while
    /// not in debt; in debt, `retry_after_ns` is the wait until one cost unit fits again.
    #[inline(always)]
    fn describe_after_write(&self, missing: u64, at_ns: u64, now_ns: u64) -> Decision {
        let capacity = self.capacity();
        let mut decision = self.describe(missing <= capacity, missing, at_ns, now_ns);
        if missing > capacity {
            let one_unit = self.units_per_cost().get();
            decision.retry_after_ns =
                self.wait_ns(excess_over(missing, one_unit, capacity), at_ns, now_ns);
        }
        decision
    }

    /// Decides `op` with `cost` on a bucket in `state` at `now_ns`.
    #[inline(always)]
    pub fn decide(&self, state: CellState, now_ns: u64, cost: u64, op: Op) -> Outcome {
        let (missing, at_ns) = self.refilled(state, now_ns);
        let capacity = self.capacity();
        let burst = self.quota.burst_cost();
        match op {
            Op::Check | Op::Peek => {
                if cost > burst {
                    let mut decision = self.describe(false, missing, at_ns, now_ns);
                    decision.retry_after_ns = NEVER;
                    return Outcome {
                        decision,
                        next: None,
                    };
                }
                // cost <= burst, so cost × units_per_cost <= capacity: no overflow, and
                // missing + cost_units only saturates when already deep in debt (denied).
                let cost_units = cost.saturating_mul(self.units_per_cost().get());
                let after = missing.saturating_add(cost_units);
                if after <= capacity {
                    let next = (op == Op::Check && cost != 0).then_some(CellState {
                        last_ns: at_ns,
                        missing: after,
                    });
                    let shown = if next.is_some() { after } else { missing };
                    Outcome {
                        decision: self.describe(true, shown, at_ns, now_ns),
                        next,
                    }
                } else {
                    let mut decision = self.describe(false, missing, at_ns, now_ns);
                    // Not in debt (the common denial): `missing` and `cost_units` are both at
                    // most the capacity (<= 2^63), so `after` did not saturate and the excess
                    // is a u64. In debt, the wide form, exact even when `after` saturated.
                    let excess = if missing <= capacity {
                        u128::from(after.saturating_sub(capacity))
                    } else {
                        excess_over(missing, cost_units, capacity)
                    };
                    decision.retry_after_ns = self.wait_ns(excess, at_ns, now_ns);
                    Outcome {
                        decision,
                        next: None,
                    }
                }
            }
            Op::Force => {
                let cost_units = cost.saturating_mul(self.units_per_cost().get());
                let after = missing.saturating_add(cost_units);
                let mut decision = self.describe_after_write(after, at_ns, now_ns);
                decision.allowed &= cost <= burst;
                Outcome {
                    decision,
                    next: Some(CellState {
                        last_ns: at_ns,
                        missing: after,
                    }),
                }
            }
            Op::Refund => {
                let cost_units = cost.saturating_mul(self.units_per_cost().get());
                let after = missing.saturating_sub(cost_units);
                Outcome {
                    decision: self.describe_after_write(after, at_ns, now_ns),
                    next: Some(CellState {
                        last_ns: at_ns,
                        missing: after,
                    }),
                }
            }
            Op::Reset => Outcome {
                decision: self.describe(true, 0, at_ns, now_ns),
                next: Some(CellState {
                    last_ns: at_ns,
                    missing: 0,
                }),
            },
        }
    }
}
