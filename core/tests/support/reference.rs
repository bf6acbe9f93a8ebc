//! The reference models of one bucket: the specification, in plain exact arithmetic,
//! independent of the crate's tick encoding. Shared by the proptests (`core/tests/model.rs`)
//! and the fuzz targets (`fuzz/src/lib.rs`), which include this file with `#[path]`.
//!
//! * Greedy refill (GCRA): the bucket holds `tokens`, an exact fraction kept as
//!   `tokens × period`, so that refill over `elapsed` ns is the integer `elapsed × rate`, capped
//!   at `burst`; negative tokens are debt (from `force`).
//! * Interval refill: integer tokens, `rate` more at each multiple of `period` on the time
//!   line, capped at `burst`.
//! * Time: each bucket remembers `last`, the latest `now` of an operation that *changed* it.
//!   An operation at `now < last` happens at `last` (no time passes); denials, peeks and
//!   zero-cost checks write nothing and do not move `last`.
//! * `check` admits iff the whole cost fits; cost 0 is a peek; a cost above the burst is denied
//!   with `retry_after_ns == NEVER`. `force` consumes regardless; `refund` gives back, never
//!   above full; both report `allowed == false` when they leave debt, with `retry_after_ns` the
//!   wait until one cost unit fits again. `reset` makes the bucket full without moving time.
//! * Waits are exact, rounded up to the nanosecond, relative to `now`; a wait ending past
//!   `u64::MAX` is `NEVER`, one of exactly `u64::MAX` reads `u64::MAX - 1`.

use cellgate::{Decision, Op, Quota, NEVER};

const NEVER_U128: u128 = NEVER as u128;

/// A wait ending at absolute time `until`, as seen from `now`.
fn wait_from(until: u128, now: u64) -> u64 {
    if until > NEVER_U128 {
        NEVER
    } else {
        let wait = until - u128::from(now);
        u64::try_from(wait.min(NEVER_U128 - 1)).unwrap_or(NEVER - 1)
    }
}

/// `value` as an `i128`; model values stay far inside it.
pub fn to_i128(value: u128) -> i128 {
    i128::try_from(value).expect("model value within i128")
}

/// `value` as a `u128`, for model values that cannot be negative.
pub fn to_u128(value: i128) -> u128 {
    u128::try_from(value).expect("model value not negative")
}

/// Greedy refill: a classic token bucket with exact fractional tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreedyModel {
    /// Cost units per period.
    pub rate: u128,
    /// The period, in ns.
    pub period: u128,
    /// The capacity, in cost units.
    pub burst: u128,
    /// `tokens × period`; negative is debt.
    pub scaled: i128,
    /// The latest `now` of an operation that changed the bucket.
    pub last: u64,
}

impl GreedyModel {
    /// A bucket for `quota` holding `tokens` at time `at`.
    pub fn new(quota: Quota, tokens: u64, at: u64) -> Self {
        let period = u128::from(quota.period_ns());
        Self {
            rate: u128::from(quota.rate_cost()),
            period,
            burst: u128::from(quota.burst_cost()),
            scaled: to_i128(u128::from(tokens) * period),
            last: at,
        }
    }

    /// A full bucket, scaled.
    pub fn full(&self) -> i128 {
        to_i128(self.burst * self.period)
    }

    /// Scaled tokens at `max(now, last)`, and that time.
    pub fn refilled(&self, now: u64) -> (i128, u64) {
        let at = now.max(self.last);
        let gained = u128::from(at - self.last) * self.rate; // < 2^128: exact
        let deficit = to_u128(self.full() - self.scaled);
        let tokens = if gained >= deficit {
            self.full()
        } else {
            self.scaled + to_i128(gained)
        };
        (tokens, at)
    }

    /// The wait from `now` until `target` scaled tokens are there, from `tokens` at `at`.
    fn wait_until(&self, target: i128, tokens: i128, at: u64, now: u64) -> u64 {
        if tokens >= target {
            return 0;
        }
        let short = to_u128(target - tokens);
        wait_from(u128::from(at) + short.div_ceil(self.rate), now)
    }

    fn describe(&self, allowed: bool, tokens: i128, at: u64, now: u64) -> Decision {
        let remaining = if tokens <= 0 {
            0
        } else {
            u64::try_from(tokens / to_i128(self.period)).expect("remaining within the burst")
        };
        Decision {
            allowed,
            limit: u64::try_from(self.burst).expect("burst is a u64"),
            remaining,
            retry_after_ns: 0,
            reset_after_ns: self.wait_until(self.full(), tokens, at, now),
        }
    }

    /// Applies `op` at `now` with `cost`: the decision (`None` for `Reset`).
    pub fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        apply(self, op, now, cost)
    }
}

impl Bucket for GreedyModel {
    fn refilled(&self, now: u64) -> (i128, u64) {
        GreedyModel::refilled(self, now)
    }

    fn unit(&self) -> i128 {
        to_i128(self.period)
    }

    fn full(&self) -> i128 {
        GreedyModel::full(self)
    }

    fn set(&mut self, tokens: i128) {
        self.scaled = tokens;
    }

    fn set_last(&mut self, at: u64) {
        self.last = at;
    }

    fn wait_until(&self, target: i128, tokens: i128, at: u64, now: u64) -> u64 {
        GreedyModel::wait_until(self, target, tokens, at, now)
    }

    fn describe(&self, allowed: bool, tokens: i128, at: u64, now: u64) -> Decision {
        GreedyModel::describe(self, allowed, tokens, at, now)
    }
}

/// Interval refill: integer tokens, `rate` more at every multiple of `period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntervalModel {
    /// Cost units added at each period boundary.
    pub rate: u128,
    /// The period, in ns.
    pub period: u64,
    /// The capacity, in cost units.
    pub burst: i128,
    /// Tokens at `last`; negative is debt.
    pub tokens: i128,
    /// The latest `now` of an operation that changed the bucket.
    pub last: u64,
}

impl IntervalModel {
    /// A bucket for `quota` holding `tokens` at time `at`.
    pub fn new(quota: Quota, tokens: u64, at: u64) -> Self {
        Self {
            rate: u128::from(quota.rate_cost()),
            period: quota.period_ns(),
            burst: i128::from(quota.burst_cost()),
            tokens: i128::from(tokens),
            last: at,
        }
    }

    /// Tokens at `max(now, last)`, and that time.
    pub fn refilled(&self, now: u64) -> (i128, u64) {
        let at = now.max(self.last);
        let boundaries = u128::from(at / self.period - self.last / self.period);
        let gained = boundaries * self.rate;
        let tokens = if gained >= to_u128(self.burst - self.tokens) {
            self.burst
        } else {
            self.tokens + to_i128(gained)
        };
        (tokens, at)
    }

    fn wait_until(&self, target: i128, tokens: i128, at: u64, now: u64) -> u64 {
        if tokens >= target {
            return 0;
        }
        let boundaries = to_u128(target - tokens).div_ceil(self.rate);
        let until = (u128::from(at / self.period) + boundaries) * u128::from(self.period);
        wait_from(until, now)
    }

    fn describe(&self, allowed: bool, tokens: i128, at: u64, now: u64) -> Decision {
        Decision {
            allowed,
            limit: u64::try_from(self.burst).expect("burst is a u64"),
            remaining: u64::try_from(tokens.max(0)).expect("remaining within the burst"),
            retry_after_ns: 0,
            reset_after_ns: self.wait_until(self.burst, tokens, at, now),
        }
    }

    /// Applies `op` at `now` with `cost`: the decision (`None` for `Reset`).
    pub fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        apply(self, op, now, cost)
    }
}

impl Bucket for IntervalModel {
    fn refilled(&self, now: u64) -> (i128, u64) {
        IntervalModel::refilled(self, now)
    }

    fn unit(&self) -> i128 {
        1
    }

    fn full(&self) -> i128 {
        self.burst
    }

    fn set(&mut self, tokens: i128) {
        self.tokens = tokens;
    }

    fn set_last(&mut self, at: u64) {
        self.last = at;
    }

    fn wait_until(&self, target: i128, tokens: i128, at: u64, now: u64) -> u64 {
        IntervalModel::wait_until(self, target, tokens, at, now)
    }

    fn describe(&self, allowed: bool, tokens: i128, at: u64, now: u64) -> Decision {
        IntervalModel::describe(self, allowed, tokens, at, now)
    }
}

/// What the operations need of a model: tokens in its own units (`unit()` per cost unit),
/// refilled to a time, and the decision fields for a token count.
trait Bucket {
    /// Tokens at `max(now, last)`, and that time.
    fn refilled(&self, now: u64) -> (i128, u64);
    /// One cost unit, in the model's token units.
    fn unit(&self) -> i128;
    /// A full bucket, in the model's token units.
    fn full(&self) -> i128;
    /// Sets the tokens held at `last`.
    fn set(&mut self, tokens: i128);
    /// Sets the time of the latest write.
    fn set_last(&mut self, at: u64);
    /// The wait from `now` until `target` tokens are there, from `tokens` at `at`.
    fn wait_until(&self, target: i128, tokens: i128, at: u64, now: u64) -> u64;
    /// The decision fields for `tokens` at `at`, seen from `now`.
    fn describe(&self, allowed: bool, tokens: i128, at: u64, now: u64) -> Decision;
}

/// The operations, the same for both refills: the specification of `check`, `peek`,
/// `force`, `refund` and `reset`.
fn apply(model: &mut impl Bucket, op: Op, now: u64, cost: u64) -> Option<Decision> {
    let (tokens, at) = model.refilled(now);
    let one = model.unit();
    let price = to_i128(u128::from(cost)) * one;
    match op {
        Op::Check | Op::Peek => {
            if price > model.full() {
                let mut decision = model.describe(false, tokens, at, now);
                decision.retry_after_ns = NEVER;
                Some(decision)
            } else if tokens >= price {
                let consumes = op == Op::Check && cost > 0;
                if consumes {
                    model.set(tokens - price);
                    model.set_last(at);
                }
                let shown = if consumes { tokens - price } else { tokens };
                Some(model.describe(true, shown, at, now))
            } else {
                let mut decision = model.describe(false, tokens, at, now);
                decision.retry_after_ns = model.wait_until(price, tokens, at, now);
                Some(decision)
            }
        }
        Op::Force | Op::Refund => {
            let after = if op == Op::Force {
                tokens - price
            } else {
                (tokens + price).min(model.full())
            };
            model.set(after);
            model.set_last(at);
            let mut decision = model.describe(after >= 0, after, at, now);
            if after < 0 {
                decision.retry_after_ns = model.wait_until(one, after, at, now);
            }
            Some(decision)
        }
        Op::Reset => {
            // Full; time keeps its running maximum.
            model.set(model.full());
            None
        }
    }
}
