//! Shared pieces of the cellgate fuzz targets: structured inputs (quotas, costs, time steps)
//! and the exact reference models of a bucket that the `cell` and `keyed` targets compare the
//! crate against.
//!
//! The models are the ones `core/tests/model.rs` tests the crate against, included from
//! `core/tests/support/reference.rs` (this is another workspace), in plain exact arithmetic
//! independent of the crate's tick encoding:
//!
//! * Greedy refill (GCRA): the bucket holds `tokens`, an exact fraction kept as
//!   `tokens × period` so that refill over `elapsed` ns is the integer `elapsed × rate`, capped
//!   at `burst`; negative tokens are debt (from `force`).
//! * Interval refill: integer tokens, `rate` more at each multiple of `period` on the time
//!   line, capped at `burst`.
//! * Time: each bucket remembers `last`, the latest `now` of an operation that *changed* it.
//!   An operation at `now < last` happens at `last` (no time passes); denials, peeks and
//!   zero-cost checks write nothing and do not move `last`.
//! * `check` admits iff the whole cost fits; a cost above the burst is denied with
//!   `retry_after_ns == NEVER`; waits are exact, rounded up to the nanosecond; a wait ending
//!   past `u64::MAX` is `NEVER`, one of exactly `u64::MAX` reads `u64::MAX - 1`.

use arbitrary::Arbitrary;
use cellgate::{Decision, Op, Quota, MAX_CAPACITY_TICKS, NEVER, NS_PER_DAY, NS_PER_SECOND};

pub mod headers_text;

// ---------------------------------------------------------------------------------------------
// Structured inputs
// ---------------------------------------------------------------------------------------------

/// A rate (cost units per period): named awkward values, or anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum RateSpec {
    /// 1 to 16.
    Small(u8),
    /// 3 (an emission interval that is not a whole number of ns per second).
    Three,
    /// 10^9 (one per ns per second).
    Giga,
    /// A prime near 10^9.
    Prime,
    /// `u64::MAX`.
    Max,
    /// Any value (0 is made 1).
    Any(u64),
}

/// A period in nanoseconds: named units, small values, or anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum PeriodSpec {
    /// 1 to 64 ns.
    Small(u8),
    /// One second.
    Second,
    /// One day.
    Day,
    /// `n` seconds (1 to 65536).
    Seconds(u16),
    /// A prime number of ns near one second.
    Prime,
    /// Any value below 2^58 (0 is made 1).
    Any(u64),
}

/// A burst relative to the largest the quota can represent.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum BurstSpec {
    /// 1 to 16.
    Small(u8),
    /// The rate.
    Rate,
    /// The largest burst that fits (`MAX_CAPACITY_TICKS / emission`).
    Max,
    /// `max × n / 2^16`.
    FractionOfMax(u16),
    /// Any value (clamped).
    Any(u64),
}

/// The parts of a quota, shaped so that most inputs make a valid one.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct QuotaSpec {
    /// The rate.
    pub rate: RateSpec,
    /// The period.
    pub period: PeriodSpec,
    /// The burst.
    pub burst: BurstSpec,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl QuotaSpec {
    /// The quota, or `None` when no burst is representable for this rate and period.
    pub fn quota(self) -> Option<Quota> {
        let rate = match self.rate {
            RateSpec::Small(n) => u64::from(n % 16) + 1,
            RateSpec::Three => 3,
            RateSpec::Giga => 1_000_000_000,
            RateSpec::Prime => 999_999_937,
            RateSpec::Max => u64::MAX,
            RateSpec::Any(n) => n.max(1),
        };
        let period = match self.period {
            PeriodSpec::Small(n) => u64::from(n % 64) + 1,
            PeriodSpec::Second => NS_PER_SECOND,
            PeriodSpec::Day => NS_PER_DAY,
            PeriodSpec::Seconds(n) => (u64::from(n) + 1) * NS_PER_SECOND,
            PeriodSpec::Prime => 1_000_000_007,
            PeriodSpec::Any(n) => (n % (1 << 58)).max(1),
        };
        let emission = period / gcd(rate, period);
        let max_burst = MAX_CAPACITY_TICKS / emission;
        if max_burst == 0 {
            return None;
        }
        let burst = match self.burst {
            BurstSpec::Small(n) => u64::from(n % 16) + 1,
            BurstSpec::Rate => rate,
            BurstSpec::Max => max_burst,
            BurstSpec::FractionOfMax(n) => {
                u64::try_from((u128::from(max_burst) * u128::from(n)) >> 16).unwrap_or(max_burst)
            }
            BurstSpec::Any(n) => n,
        }
        .clamp(1, max_burst);
        let quota = Quota::with_parts(rate, period, burst);
        assert!(
            quota.is_ok(),
            "a representable quota was refused: {quota:?}"
        );
        quota.ok()
    }
}

/// An operation on a bucket.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpSpec {
    /// [`Op::Check`].
    Check,
    /// [`Op::Peek`].
    Peek,
    /// [`Op::Force`].
    Force,
    /// [`Op::Refund`].
    Refund,
    /// [`Op::Reset`].
    Reset,
}

impl OpSpec {
    /// The crate's operation.
    pub fn op(self) -> Op {
        match self {
            Self::Check => Op::Check,
            Self::Peek => Op::Peek,
            Self::Force => Op::Force,
            Self::Refund => Op::Refund,
            Self::Reset => Op::Reset,
        }
    }
}

/// A cost, relative to the burst.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum CostSpec {
    /// 0.
    Zero,
    /// 1 to 256.
    Small(u8),
    /// The burst.
    Burst,
    /// The burst less 1 to 256.
    BurstMinus(u8),
    /// The burst plus 1 to 256.
    BurstPlus(u8),
    /// `burst × n / 256`.
    Fraction(u8),
    /// `u64::MAX`.
    Huge,
    /// Anything.
    Any(u64),
}

impl CostSpec {
    /// The cost for a bucket of `burst`.
    pub fn resolve(self, burst: u64) -> u64 {
        match self {
            Self::Zero => 0,
            Self::Small(n) => u64::from(n) + 1,
            Self::Burst => burst,
            Self::BurstMinus(n) => burst.saturating_sub(u64::from(n) + 1),
            Self::BurstPlus(n) => burst.saturating_add(u64::from(n) + 1),
            Self::Fraction(n) => {
                u64::try_from(u128::from(burst) * u128::from(n) / 256).unwrap_or(burst)
            }
            Self::Huge => u64::MAX,
            Self::Any(n) => n,
        }
    }
}

/// How time moves before an operation: forward, backward, by periods, to the previous
/// decision's retry or reset time, or anywhere.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Dt {
    /// No time passes.
    Same,
    /// 0 to 65535 ns forward.
    Forward(u16),
    /// 0 to 65535 ns backward.
    Back(u16),
    /// `period × num / (den + 1) + jitter` forward.
    Periods(u8, u8, i8),
    /// `period × num / (den + 1)` backward.
    BackPeriods(u8, u8),
    /// To the previous decision's `now + retry_after_ns` (less one if `true`), when finite.
    Retry(bool),
    /// To the previous decision's `now + reset_after_ns` (less one if `true`), when finite.
    ResetAfter(bool),
    /// Anywhere on the time line, the end included.
    Jump(u64),
}

impl Dt {
    /// The time after this step from `now`, for `quota`; `last` is the previous decision and
    /// the time it was made at.
    pub fn apply(self, now: u64, quota: Quota, last: Option<(u64, Decision)>) -> u64 {
        let period = i128::from(quota.period_ns());
        let now_i = i128::from(now);
        let next = match self {
            Self::Same => now_i,
            Self::Forward(n) => now_i + i128::from(n),
            Self::Back(n) => now_i - i128::from(n),
            Self::Periods(num, den, jitter) => {
                now_i + period * i128::from(num) / (i128::from(den) + 1) + i128::from(jitter)
            }
            Self::BackPeriods(num, den) => now_i - period * i128::from(num) / (i128::from(den) + 1),
            Self::Retry(minus_one) | Self::ResetAfter(minus_one) => match last {
                Some((at, decision)) => {
                    let wait = if matches!(self, Self::Retry(_)) {
                        decision.retry_after_ns
                    } else {
                        decision.reset_after_ns
                    };
                    if wait == NEVER {
                        now_i
                    } else {
                        i128::from(at) + i128::from(wait) - i128::from(minus_one)
                    }
                }
                None => now_i,
            },
            Self::Jump(to) => i128::from(to),
        };
        u64::try_from(next.clamp(0, i128::from(u64::MAX))).unwrap_or(u64::MAX)
    }
}

// ---------------------------------------------------------------------------------------------
// The reference models
// ---------------------------------------------------------------------------------------------

#[path = "../../core/tests/support/reference.rs"]
mod reference;

use reference::{to_i128, to_u128};
pub use reference::{GreedyModel, IntervalModel};

/// A reference bucket: greedy (exact fractional tokens) or interval (integer tokens refilled at
/// period boundaries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Model {
    /// Greedy refill, as `Gcra` and greedy `TokenBucket`s.
    Greedy(GreedyModel),
    /// Interval refill.
    Interval(IntervalModel),
}

impl Model {
    /// A greedy bucket holding `tokens` at time `at`.
    pub fn greedy(quota: Quota, tokens: u64, at: u64) -> Self {
        Self::Greedy(GreedyModel::new(quota, tokens, at))
    }

    /// An interval bucket holding `tokens` at time `at`.
    pub fn interval(quota: Quota, tokens: u64, at: u64) -> Self {
        Self::Interval(IntervalModel::new(quota, tokens, at))
    }

    /// Applies `op` at `now` with `cost`: the decision (`None` for `Reset`).
    pub fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        match self {
            Self::Greedy(model) => model.apply(op, now, cost),
            Self::Interval(model) => model.apply(op, now, cost),
        }
    }

    /// Makes the bucket full *at* `now`: its time becomes the later of `now` and its own, as a
    /// keyed table's `reset_at(key, now)` does (a lone cell's `reset()` takes no time at all).
    pub fn reset_at(&mut self, now: u64) {
        match self {
            Self::Greedy(model) => {
                model.scaled = model.full();
                model.last = model.last.max(now);
            }
            Self::Interval(model) => {
                model.tokens = model.burst;
                model.last = model.last.max(now);
            }
        }
    }

    /// The decision of a peek at `now` for `cost`, changing nothing.
    pub fn peek(&self, now: u64, cost: u64) -> Decision {
        let decision = self.clone().apply(Op::Peek, now, cost);
        decision.expect("a peek decides")
    }

    /// Whether the bucket is full at `now` (every unit there, nothing left to refill).
    pub fn is_full_at(&self, now: u64) -> bool {
        let decision = self.peek(now, 0);
        decision.remaining == decision.limit && decision.reset_after_ns == 0
    }

    /// Whether a `force` of `cost` at `now` would leave more debt than the crate's state can
    /// represent (`missing` is a `u64` of ticks, or of cost units for interval refill; the
    /// crate documents that debt saturates there). Such forces are made peeks by the targets.
    pub fn force_overflows(&self, now: u64, cost: u64, quota: Quota) -> bool {
        let missing = match self {
            Self::Greedy(model) => {
                let (tokens, _) = model.refilled(now);
                let after = tokens - to_i128(u128::from(cost) * model.period);
                let missing = to_u128(model.full() - after);
                // missing / period tokens of `emission_ticks` ticks each: exact, as
                // period / emission_ticks is gcd(rate, period).
                missing / (model.period / u128::from(quota.emission_ticks()))
            }
            Self::Interval(model) => {
                let (tokens, _) = model.refilled(now);
                to_u128(model.burst - (tokens - i128::from(cost)))
            }
        };
        missing >= u128::from(u64::MAX)
    }

    /// The most cost admitted between effective times `t0 <= t1` by checks alone: the burst
    /// plus what refills in between.
    pub fn admission_bound(&self, t0: u64, t1: u64) -> u128 {
        match self {
            Self::Greedy(model) => model.burst + u128::from(t1 - t0) * model.rate / model.period,
            Self::Interval(model) => {
                let boundaries = u128::from(t1 / model.period - t0 / model.period);
                to_u128(model.burst) + boundaries * model.rate
            }
        }
    }
}

/// Asserts that the waits of `decision` (made at `now` for `op` and `cost`) are exact, using
/// `peek` (a peek at a time and cost on the state the operation left): the request succeeds at
/// `now + retry_after_ns` and not a nanosecond earlier; the bucket is full at
/// `now + reset_after_ns` and not a nanosecond earlier. Waits of `NEVER - 1` (clamped) and
/// `NEVER` are not probed.
pub fn assert_exact_waits(
    peek: impl Fn(u64, u64) -> Decision,
    burst: u64,
    op: Op,
    now: u64,
    cost: u64,
    decision: Decision,
) {
    let retry = decision.retry_after_ns;
    let retried = match op {
        Op::Check | Op::Peek if !decision.allowed => Some(cost),
        Op::Force | Op::Refund if !decision.allowed => Some(1),
        _ => None,
    };
    if let Some(request) = retried {
        if retry != NEVER && retry != NEVER - 1 {
            let at = now + retry;
            assert!(
                peek(at, request).allowed,
                "retry_after_ns {retry} too short: cost {request} denied at now + retry"
            );
            if retry > 0 {
                assert!(
                    !peek(at - 1, request).allowed,
                    "retry_after_ns {retry} too long: admitted one ns earlier"
                );
            }
        }
    }
    let reset = decision.reset_after_ns;
    if reset != NEVER && reset != NEVER - 1 {
        let at = now + reset;
        let full = peek(at, 0);
        assert_eq!(full.remaining, burst, "not full at now + reset_after_ns");
        assert_eq!(
            full.reset_after_ns, 0,
            "a reset wait remains at now + reset_after_ns"
        );
        if reset > 0 {
            assert!(
                peek(at - 1, 0).reset_after_ns > 0,
                "reset_after_ns {reset} too long: full one ns earlier"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_per_second_is_exact() {
        let quota = Quota::per_second(3).unwrap();
        let mut model = Model::greedy(quota, 3, 0);
        assert!(model.apply(Op::Check, 0, 3).unwrap().allowed);
        let denied = model.apply(Op::Check, 0, 1).unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_ns, NS_PER_SECOND / 3 + 1);
    }

    #[test]
    fn interval_refills_at_boundaries() {
        let quota = Quota::per_second(2).unwrap();
        let mut model = Model::interval(quota, 0, 0);
        let denied = model.apply(Op::Check, 10, 1).unwrap();
        assert_eq!(denied.retry_after_ns, NS_PER_SECOND - 10);
        assert!(model.apply(Op::Check, NS_PER_SECOND, 2).unwrap().allowed);
    }

    #[test]
    fn most_quota_specs_are_valid() {
        let spec = QuotaSpec {
            rate: RateSpec::Any(u64::MAX),
            period: PeriodSpec::Any(u64::MAX),
            burst: BurstSpec::Max,
        };
        assert!(spec.quota().is_some());
    }
}
