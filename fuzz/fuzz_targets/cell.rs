//! Cell operation sequences against the reference model.
//!
//! One quota (rate, period and burst shaped to be representable), one refill kind and initial
//! fill, and up to 256 steps, each a time move (forward, backward, by periods, to the previous
//! decision's retry or reset time, anywhere on the time line), an operation (check, peek,
//! force, refund, reset) and a cost (zero, small, around the burst, huge, any). At every step:
//!
//! - the cell's decision equals the model's exactly (`allowed`, `limit`, `remaining`,
//!   `retry_after_ns`, `reset_after_ns`), for every cell that shares the model: a `Gcra` and a
//!   greedy `TokenBucket` (or one interval bucket), a clocked cell reading a `ManualClock`, and
//!   `Rule::decide` applied to the cell's own state;
//! - its waits are exact: the request fits at `now + retry_after_ns` and not a nanosecond
//!   earlier, the bucket is full at `now + reset_after_ns` and not earlier, both on the cell's
//!   state (through `Rule::decide`) and on the model;
//! - admitted checks never exceed the quota: between two admissions at effective times
//!   `t0 <= t1`, at most `burst + refill(t0, t1)` was admitted (windows restart after a refund
//!   or reset, which legitimately give back).
#![no_main]

use arbitrary::Arbitrary;
use cellgate::{Decision, Gcra, ManualClock, Op, Quota, Refill, Rule, TokenBucket, NEVER};
use cellgate_fuzz::{assert_exact_waits, CostSpec, Dt, Model, OpSpec, QuotaSpec};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Kind {
    /// `Gcra` and a full greedy `TokenBucket`, against one greedy model.
    Greedy,
    /// A greedy `TokenBucket` built with `tokens × burst / 255` tokens at `at`.
    GreedyFilled { fill: u8, at: u64 },
    /// An interval `TokenBucket` built with `tokens × burst / 255` tokens at `at`.
    Interval { fill: u8, at: u64 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    quota: QuotaSpec,
    kind: Kind,
    start: u64,
    steps: Vec<(Dt, OpSpec, CostSpec)>,
}

/// The cells under test, driven through one interface.
enum Cell {
    Gcra(Gcra),
    Bucket(TokenBucket),
    Clocked(Gcra<ManualClock>),
    ClockedBucket(TokenBucket<ManualClock>),
}

impl Cell {
    fn apply(&self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        macro_rules! at {
            ($cell:expr) => {
                match op {
                    Op::Check => Some($cell.check_at(now, cost)),
                    Op::Peek => Some($cell.peek_at(now, cost)),
                    Op::Force => Some($cell.force_at(now, cost)),
                    Op::Refund => Some($cell.refund_at(now, cost)),
                    Op::Reset => {
                        $cell.reset();
                        None
                    }
                }
            };
        }
        macro_rules! clocked {
            ($cell:expr) => {{
                $cell.clock().set_ns(now);
                match op {
                    Op::Check => Some($cell.check(cost)),
                    Op::Peek => Some($cell.peek(cost)),
                    Op::Force => Some($cell.force(cost)),
                    Op::Refund => Some($cell.refund(cost)),
                    Op::Reset => {
                        $cell.reset();
                        None
                    }
                }
            }};
        }
        match self {
            Self::Gcra(cell) => at!(cell),
            Self::Bucket(cell) => at!(cell),
            Self::Clocked(cell) => clocked!(cell),
            Self::ClockedBucket(cell) => clocked!(cell),
        }
    }

    fn state(&self) -> cellgate::CellState {
        match self {
            Self::Gcra(cell) => cell.state(),
            Self::Bucket(cell) => cell.state(),
            Self::Clocked(cell) => cell.state(),
            Self::ClockedBucket(cell) => cell.state(),
        }
    }
}

fn fill(quota: Quota, fill: u8) -> u64 {
    u64::try_from(u128::from(quota.burst_cost()) * u128::from(fill) / 255).unwrap_or(0)
}

fn build(quota: Quota, kind: &Kind) -> (Vec<Cell>, Model, Refill) {
    match *kind {
        Kind::Greedy => {
            let clocked_bucket = TokenBucket::builder(quota)
                .build_with_clock(ManualClock::new(0))
                .expect("a full bucket");
            (
                vec![
                    Cell::Gcra(Gcra::new(quota)),
                    Cell::Bucket(TokenBucket::new(quota)),
                    Cell::Clocked(Gcra::with_clock(quota, ManualClock::new(0))),
                    Cell::ClockedBucket(clocked_bucket),
                ],
                Model::greedy(quota, quota.burst_cost(), 0),
                Refill::Greedy,
            )
        }
        Kind::GreedyFilled { fill: share, at } | Kind::Interval { fill: share, at } => {
            let refill = match kind {
                Kind::Interval { .. } => Refill::Interval,
                _ => Refill::Greedy,
            };
            let tokens = fill(quota, share);
            let builder = TokenBucket::builder(quota)
                .refill(refill)
                .initial_tokens(tokens);
            let bucket = builder.build_at(at).expect("tokens within the burst");
            let clocked = builder
                .build_with_clock(ManualClock::new(at))
                .expect("tokens within the burst");
            let model = match refill {
                Refill::Greedy => Model::greedy(quota, tokens, at),
                Refill::Interval => Model::interval(quota, tokens, at),
            };
            (
                vec![Cell::Bucket(bucket), Cell::ClockedBucket(clocked)],
                model,
                refill,
            )
        }
    }
}

fuzz_target!(|input: Input| {
    let Some(quota) = input.quota.quota() else {
        return;
    };
    let (cells, mut model, refill) = build(quota, &input.kind);
    let rule = Rule::new(quota, refill);
    let burst = quota.burst_cost();
    let mut now = input.start;
    let mut last: Option<(u64, Decision)> = None;
    // Admitted checks since the last refund or reset: (effective time, cost).
    let mut admitted: Vec<(u64, u64)> = Vec::new();
    let mut effective = 0u64;
    for &(dt, op, cost) in input.steps.iter().take(256) {
        now = dt.apply(now, quota, last);
        let cost = cost.resolve(burst);
        let mut op = op.op();
        if op == Op::Force && model.force_overflows(now, cost, quota) {
            // Debt beyond the state's range saturates (documented); keep the model exact.
            op = Op::Peek;
        }
        let state_before = cells[0].state();
        let expected = model.apply(op, now, cost);
        for (index, cell) in cells.iter().enumerate() {
            let got = cell.apply(op, now, cost);
            assert_eq!(got, expected, "cell #{index}: {op:?} cost {cost} at {now}");
        }
        let state = cells[0].state();
        for cell in &cells[1..] {
            assert_eq!(cell.state(), state, "cells of one model diverged");
        }
        // The pure decision function agrees with what the cell did.
        // `reset()` takes no time: it decides at 0, which is never later than the state's own.
        let (rule_now, rule_cost) = if op == Op::Reset { (0, 0) } else { (now, cost) };
        let outcome = rule.decide(state_before, rule_now, rule_cost, op);
        assert_eq!(Some(outcome.decision).filter(|_| op != Op::Reset), expected);
        if let Some(next) = outcome.next {
            assert_eq!(next, state, "Rule::decide's next state is the cell's");
        }
        if let Some(decision) = expected {
            let on_rule = |at, cost| rule.decide(state, at, cost, Op::Peek).decision;
            assert_exact_waits(on_rule, burst, op, now, cost, decision);
            assert_exact_waits(
                |at, cost| model.peek(at, cost),
                burst,
                op,
                now,
                cost,
                decision,
            );
            if decision.allowed && op == Op::Check && cost > burst {
                panic!("admitted a cost above the burst");
            }
            if cost > burst && matches!(op, Op::Check | Op::Peek) {
                assert_eq!(decision.retry_after_ns, NEVER);
            }
            last = Some((now, decision));
        }
        match op {
            Op::Check if expected.is_some_and(|d| d.allowed) && cost > 0 => {
                effective = effective.max(now);
                admitted.push((effective, cost));
            }
            Op::Force | Op::Refund => effective = effective.max(now),
            _ => {}
        }
        if matches!(op, Op::Refund | Op::Reset) {
            admitted.clear();
        }
    }
    // The quota bound over every window of admissions.
    for a in 0..admitted.len() {
        let mut total = 0u128;
        for &(t1, cost) in &admitted[a..] {
            total += u128::from(cost);
            let t0 = admitted[a].0;
            assert!(t0 <= t1, "effective time went backwards");
            let bound = model.admission_bound(t0, t1);
            assert!(
                total <= bound,
                "admitted {total} in [{t0}, {t1}], bound {bound}"
            );
        }
    }
});
