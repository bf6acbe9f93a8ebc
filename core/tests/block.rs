//! `Limiter::with_block_ns`: a denial blocks the key. Exact against the reference models of
//! `support/reference.rs` with one rule added, written in the models' own units:
//!
//! * a `check` denied with a finite wait, of a bucket not in debt at that time, leaves the
//!   bucket `block_ns` below empty (greedy: `-block_ns × rate` scaled tokens, which time refills
//!   in exactly `block_ns`; interval: `-(⌈block_ns / period⌉ + 1) × rate` tokens, which the
//!   boundaries refill no earlier than `block_ns` later), moving `last` to that time;
//! * the decision returned is then a `peek` of the same cost.

#![cfg(not(loom))]

#[path = "support/reference.rs"]
#[allow(dead_code)]
mod reference;

use cellgate::{Decision, Limiter, LimiterOptions, LimiterQuota, Op, Quota, Refill, Seed, NEVER};
use proptest::prelude::*;
use reference::{to_i128, GreedyModel, IntervalModel};

const KEY: &[u8] = b"client";

fn limiter(quotas: &[Quota], refill: Refill, block_ns: u64) -> Limiter {
    const NAMES: [&str; 2] = ["first", "second"];
    let quotas: Vec<LimiterQuota<'_>> = quotas
        .iter()
        .zip(NAMES)
        .map(|(quota, name)| LimiterQuota {
            name: Some(name),
            ..LimiterQuota::new(*quota)
        })
        .collect();
    let options = LimiterOptions {
        refill,
        max_keys: 16,
        ..LimiterOptions::with_seed(Seed::new(5, 6))
    };
    Limiter::new(&quotas, options)
        .unwrap()
        .with_block_ns(block_ns)
}

/// One bucket of the specification, either refill.
#[derive(Clone, Debug)]
enum Model {
    Greedy(GreedyModel),
    Interval(IntervalModel),
}

impl Model {
    fn new(quota: Quota, refill: Refill) -> Self {
        let burst = quota.burst_cost();
        match refill {
            Refill::Greedy => Self::Greedy(GreedyModel::new(quota, burst, 0)),
            Refill::Interval => Self::Interval(IntervalModel::new(quota, burst, 0)),
        }
    }

    fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        match self {
            Self::Greedy(model) => model.apply(op, now, cost),
            Self::Interval(model) => model.apply(op, now, cost),
        }
    }

    /// The block rule of the module documentation; whether it wrote.
    fn block(&mut self, now: u64, block_ns: u64) -> bool {
        match self {
            Self::Greedy(model) => {
                let (tokens, at) = model.refilled(now);
                if tokens < 0 {
                    return false;
                }
                model.scaled = -to_i128(u128::from(block_ns) * model.rate);
                model.last = at;
            }
            Self::Interval(model) => {
                let (tokens, at) = model.refilled(now);
                if tokens < 0 {
                    return false;
                }
                let boundaries = u128::from(block_ns.div_ceil(model.period)) + 1;
                model.tokens = -to_i128(boundaries * model.rate);
                model.last = at;
            }
        }
        true
    }
}

/// The models' answer to a `check` of `cost` at `now` under `block_ns`: each quota's decision
/// and whether the request was admitted (all or nothing).
fn model_check(models: &mut [Model], now: u64, cost: u64, block_ns: u64) -> (bool, Vec<Decision>) {
    let peeks: Vec<Decision> = models
        .iter_mut()
        .map(|model| model.apply(Op::Peek, now, cost).unwrap())
        .collect();
    if peeks.iter().all(|decision| decision.allowed) {
        let charged = models
            .iter_mut()
            .map(|model| model.apply(Op::Check, now, cost).unwrap())
            .collect();
        return (true, charged);
    }
    let mut blocked = false;
    for (model, peek) in models.iter_mut().zip(&peeks) {
        if block_ns != 0 && !peek.allowed && peek.retry_after_ns != NEVER {
            blocked |= model.block(now, block_ns);
        }
    }
    if !blocked {
        return (false, peeks);
    }
    let after = models
        .iter_mut()
        .map(|model| model.apply(Op::Peek, now, cost).unwrap())
        .collect();
    (false, after)
}

#[derive(Clone, Debug)]
struct Step {
    advance_ns: u64,
    backwards: bool,
    cost: u64,
    op: Op,
}

fn step(period_ns: u64) -> impl Strategy<Value = Step> {
    (
        prop_oneof![Just(0u64), 0..period_ns / 2, 0..period_ns * 3],
        proptest::bool::weighted(0.1),
        0u64..6,
        prop_oneof![
            8 => Just(Op::Check),
            1 => Just(Op::Peek),
            1 => Just(Op::Force),
        ],
    )
        .prop_map(|(advance_ns, backwards, cost, op)| Step {
            advance_ns,
            backwards,
            // A write that leaves a key full is not stored by the keyed table (an absent key
            // is a full bucket), so it does not move the key's time as the model's does:
            // forces here cost at least 1. (Refunds are left to tests/keyed.rs for the same
            // reason.)
            cost: if op == Op::Force { cost.max(1) } else { cost },
            op,
        })
}

fn quota_strategy() -> impl Strategy<Value = Quota> {
    (
        1u64..6,
        prop_oneof![Just(1_000u64), Just(7_000), Just(60_000)],
        1u64..6,
    )
        .prop_map(|(rate, period_ns, burst)| {
            Quota::new(rate, period_ns)
                .unwrap()
                .with_burst(burst)
                .unwrap()
        })
}

fn run(quotas: &[Quota], refill: Refill, block_ns: u64, steps: &[Step]) {
    let limiter = limiter(quotas, refill, block_ns);
    let mut models: Vec<Model> = quotas
        .iter()
        .map(|quota| Model::new(*quota, refill))
        .collect();
    let mut now = 1_000_000u64;
    for (index, step) in steps.iter().enumerate() {
        now = if step.backwards {
            now.saturating_sub(step.advance_ns)
        } else {
            now + step.advance_ns
        };
        let decision = limiter
            .apply_at(KEY, now, &[Some(step.cost)], step.op)
            .unwrap();
        let (allowed, expected) = if step.op == Op::Check {
            model_check(&mut models, now, step.cost, block_ns)
        } else {
            // One quota here: the plain operation of the specification.
            let expected: Vec<Decision> = models
                .iter_mut()
                .map(|model| model.apply(step.op, now, step.cost).unwrap())
                .collect();
            (expected.iter().all(|decision| decision.allowed), expected)
        };
        assert_eq!(decision.allowed, allowed, "step {index} {step:?} at {now}");
        assert_eq!(
            decision.decisions(),
            &expected[..],
            "step {index} {step:?} at {now}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256)
    ))]

    /// One quota, either refill, every operation: the limiter with a block decides as the
    /// models with the block rule, decision for decision.
    #[test]
    fn one_quota_blocks_as_the_model(
        quota in quota_strategy(),
        interval in any::<bool>(),
        block_ns in prop_oneof![Just(0u64), 1u64..200_000],
        steps in proptest::collection::vec(step(60_000), 1..60),
    ) {
        let refill = if interval { Refill::Interval } else { Refill::Greedy };
        run(&[quota], refill, block_ns, &steps);
    }

    /// Two quotas on one dimension (checks only: the policy's force and refund are specified
    /// in tests/policy.rs): each quota that denied is blocked, and only those.
    #[test]
    fn each_denying_quota_is_blocked(
        first in quota_strategy(),
        second in quota_strategy(),
        block_ns in 1u64..200_000,
        steps in proptest::collection::vec(step(60_000), 1..60),
    ) {
        // (A policy's zero cost cannot refuse, unlike one bucket's in debt: costs from 1.)
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|step| Step { op: Op::Check, cost: step.cost.max(1), ..step })
            .collect();
        run(&[first, second], Refill::Greedy, block_ns, &steps);
    }
}

#[test]
fn five_failed_logins_block_for_fifteen_minutes() {
    const MINUTE_NS: u64 = 60_000_000_000;
    let quota: Quota = "5/minute".parse().unwrap();
    let limiter = limiter(&[quota], Refill::Greedy, 15 * MINUTE_NS);
    let check = |now: u64| {
        limiter
            .apply_at(KEY, now, &[None], Op::Check)
            .unwrap()
            .decision()
    };
    for _ in 0..5 {
        assert!(check(0).allowed);
    }
    let denied = check(0);
    assert!(!denied.allowed);
    // Blocked for 15 minutes, then one emission interval (12 s) for the first request.
    let release_ns = 15 * MINUTE_NS + MINUTE_NS / 5;
    assert_eq!(denied.retry_after_ns, release_ns);
    // The requests the block denies do not extend it.
    for minute in 1..15 {
        let during = check(minute * MINUTE_NS);
        assert!(!during.allowed);
        assert_eq!(during.retry_after_ns, release_ns - minute * MINUTE_NS);
    }
    assert!(check(release_ns).allowed);
    // Then the bucket refills from empty: the next one waits its interval, and being denied
    // again blocks again.
    let again = check(release_ns);
    assert!(!again.allowed);
    assert_eq!(again.retry_after_ns, release_ns);
    // As does a denial after the block's debt is gone but before a request fits (the last
    // interval of the wait a blocked denial reports): retrying before `retry_after` is a
    // denial, and every denial of a key not in debt blocks it.
    let retried_early = check(release_ns + 15 * MINUTE_NS + MINUTE_NS / 60);
    assert!(!retried_early.allowed);
    assert_eq!(retried_early.retry_after_ns, release_ns);
}

#[test]
fn no_block_without_the_option_or_for_a_cost_that_never_fits() {
    let quota: Quota = "2/second".parse().unwrap();
    let plain = limiter(&[quota], Refill::Greedy, 0);
    let blocking = limiter(&[quota], Refill::Greedy, 60_000_000_000);
    for limiter in [&plain, &blocking] {
        let never = limiter.apply_at(KEY, 0, &[Some(3)], Op::Check).unwrap();
        assert_eq!(never.decision().retry_after_ns, NEVER);
        assert!(
            limiter
                .apply_at(KEY, 0, &[Some(2)], Op::Check)
                .unwrap()
                .allowed
        );
    }
    assert_eq!(
        plain
            .apply_at(KEY, 0, &[Some(1)], Op::Check)
            .unwrap()
            .decision()
            .retry_after_ns,
        500_000_000
    );
    assert_eq!(
        blocking
            .apply_at(KEY, 0, &[Some(1)], Op::Check)
            .unwrap()
            .decision()
            .retry_after_ns,
        60_500_000_000
    );
    assert_eq!(blocking.block_ns(), 60_000_000_000);
}

#[test]
fn a_denied_reservation_blocks_too() {
    let quota: Quota = "1/second".parse().unwrap();
    let limiter = limiter(&[quota], Refill::Greedy, 10_000_000_000);
    assert!(limiter
        .reserve_at(KEY, 0, &[None])
        .unwrap()
        .reservation
        .is_some());
    let denied = limiter.reserve_at(KEY, 0, &[None]).unwrap();
    assert!(denied.reservation.is_none());
    assert_eq!(denied.decision.decision().retry_after_ns, 11_000_000_000);
}
