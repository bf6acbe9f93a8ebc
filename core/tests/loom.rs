//! loom models of the cells' compare-exchange loop: threads sharing one `Gcra` (or
//! `TokenBucket`) must make decisions that some one-at-a-time order of the same operations
//! would make (linearizability), and never admit more than the quota allows.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p cellgate --test loom --release`.
#![cfg(loom)]

use cellgate::{CellState, Decision, Gcra, Op, Quota, Refill, Rule, TokenBucket};
use loom::sync::Arc;
use loom::thread;

/// One thread's operations, in program order: `(op, now_ns, cost)`.
type Program = &'static [(Op, u64, u64)];

/// Explores every interleaving (no preemption bound: about 20 s in release for this file).
/// `LOOM_MAX_PREEMPTIONS=3` bounds it, as with any loom model.
fn model(test: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(test);
}

/// Every interleaving of `programs` (program order kept), run one operation at a time through
/// the pure decision function: the decisions each thread would see, and the final state.
fn sequential_outcomes(
    rule: &Rule,
    programs: &[Program],
) -> Vec<(Vec<Vec<Option<Decision>>>, CellState)> {
    fn go(
        rule: &Rule,
        programs: &[Program],
        next: &mut Vec<usize>,
        state: CellState,
        seen: &mut Vec<Vec<Option<Decision>>>,
        out: &mut Vec<(Vec<Vec<Option<Decision>>>, CellState)>,
    ) {
        let mut done = true;
        for thread in 0..programs.len() {
            let Some(&(op, now, cost)) = programs[thread].get(next[thread]) else {
                continue;
            };
            done = false;
            let outcome = rule.decide(state, now, cost, op);
            next[thread] += 1;
            // `reset` returns nothing.
            seen[thread].push((op != Op::Reset).then_some(outcome.decision));
            go(
                rule,
                programs,
                next,
                outcome.next.unwrap_or(state),
                seen,
                out,
            );
            seen[thread].pop();
            next[thread] -= 1;
        }
        if done {
            out.push((seen.clone(), state));
        }
    }
    let mut out = Vec::new();
    go(
        rule,
        programs,
        &mut vec![0; programs.len()],
        CellState::FULL,
        &mut vec![Vec::new(); programs.len()],
        &mut out,
    );
    out
}

trait Shared: Send + Sync + 'static {
    fn run(&self, op: Op, now: u64, cost: u64) -> Option<Decision>;
    fn snapshot(&self) -> CellState;
}

macro_rules! shared {
    ($cell:ty) => {
        impl Shared for $cell {
            fn run(&self, op: Op, now: u64, cost: u64) -> Option<Decision> {
                Some(match op {
                    Op::Check => self.check_at(now, cost),
                    Op::Peek => self.peek_at(now, cost),
                    Op::Force => self.force_at(now, cost),
                    Op::Refund => self.refund_at(now, cost),
                    Op::Reset => {
                        self.reset();
                        return None;
                    }
                })
            }

            fn snapshot(&self) -> CellState {
                self.state()
            }
        }
    };
}

shared!(Gcra);
shared!(TokenBucket);

/// Runs `programs` on one shared cell (built by `make`, once per execution), one loom thread
/// each (the last on the main thread), and requires that the decisions and the final state are
/// those of some sequential order; then checks `extra` on the per-thread decisions.
fn linearizable<C: Shared>(
    quota: Quota,
    refill: Refill,
    make: fn(Quota) -> C,
    programs: &'static [Program],
    extra: fn(&[Vec<Option<Decision>>]),
) {
    let rule = Rule::new(quota, refill);
    let allowed = std::sync::Arc::new(sequential_outcomes(&rule, programs));
    model(move || {
        let cell = Arc::new(make(quota));
        let handles: Vec<_> = programs[..programs.len() - 1]
            .iter()
            .map(|&program| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || {
                    program
                        .iter()
                        .map(|&(op, now, cost)| cell.run(op, now, cost))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let last = programs[programs.len() - 1];
        let mine: Vec<Option<Decision>> = last
            .iter()
            .map(|&(op, now, cost)| cell.run(op, now, cost))
            .collect();
        let mut seen: Vec<Vec<Option<Decision>>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        seen.push(mine);
        let state = cell.snapshot();
        assert!(
            allowed
                .iter()
                .any(|(decisions, end)| *decisions == seen && *end == state),
            "no sequential order explains {seen:?} ending in {state:?}"
        );
        extra(&seen);
    });
}

/// Total admitted cost of the `Check`s.
fn admitted(programs: &[Program], seen: &[Vec<Option<Decision>>]) -> u64 {
    programs
        .iter()
        .zip(seen)
        .flat_map(|(program, decisions)| program.iter().zip(decisions))
        .filter(|((op, _, _), decision)| *op == Op::Check && decision.is_some_and(|d| d.allowed))
        .map(|((_, _, cost), _)| cost)
        .sum()
}

// 1 per 10 ns, burst 3: at most 3 + floor(t / 10) admitted by effective time t.
fn quota() -> Quota {
    Quota::with_parts(1, 10, 3).unwrap()
}

const TWO_AT_ONCE: &[Program] = &[
    &[(Op::Check, 0, 2), (Op::Check, 0, 1)],
    &[(Op::Check, 0, 2)],
];

/// Two threads at the same time, costs 2 + 1 and 2 against a burst of 3: exactly 3 admitted.
#[test]
fn two_threads_same_time() {
    linearizable(quota(), Refill::Greedy, Gcra::new, TWO_AT_ONCE, |seen| {
        let total = admitted(TWO_AT_ONCE, seen);
        assert_eq!(total, 3, "{seen:?}");
    });
}

const TWO_CLOCKS: &[Program] = &[
    &[(Op::Check, 5, 3), (Op::Check, 14, 1)],
    &[(Op::Check, 12, 2), (Op::Check, 3, 1)],
];

/// Two threads with their own clocks, one stepping backwards: never more than
/// `3 + floor(14 / 10) = 4` admitted (effective times stay within [0, 14]).
#[test]
fn two_threads_own_clocks() {
    linearizable(quota(), Refill::Greedy, Gcra::new, TWO_CLOCKS, |seen| {
        let total = admitted(TWO_CLOCKS, seen);
        assert!(total <= 4, "admitted {total}: {seen:?}");
    });
}

const THREE_THREADS: &[Program] = &[
    &[(Op::Check, 0, 2)],
    &[(Op::Check, 4, 3)],
    &[(Op::Check, 9, 1), (Op::Check, 2, 1)],
];

/// Three threads, costs 1..=3 summing to 7 against a bound of `3 + floor(9 / 10) = 3`.
#[test]
fn three_threads_weighted() {
    linearizable(quota(), Refill::Greedy, Gcra::new, THREE_THREADS, |seen| {
        let total = admitted(THREE_THREADS, seen);
        assert!(total <= 3, "admitted {total}: {seen:?}");
        assert!(total >= 2, "a cost of 1..=3 always fits first: {seen:?}");
    });
}

/// The same on an interval token bucket (3 per 10 ns at each multiple of 10 ns).
#[test]
fn three_threads_interval_bucket() {
    fn make(quota: Quota) -> TokenBucket {
        TokenBucket::builder(quota)
            .refill(Refill::Interval)
            .build_at(0)
            .unwrap()
    }
    linearizable(quota(), Refill::Interval, make, THREE_THREADS, |seen| {
        let total = admitted(THREE_THREADS, seen);
        assert!(total <= 3, "admitted {total}: {seen:?}");
    });
}

const MIXED: &[Program] = &[
    &[(Op::Check, 0, 3), (Op::Refund, 1, 2)],
    &[(Op::Force, 2, 2), (Op::Check, 2, 1)],
    &[(Op::Check, 3, 2)],
];

/// Checks racing a refund and a force: linearizable, and admitted checks never exceed the
/// burst plus what was refunded (3 + 2; no time for refill: all within 3 ns).
#[test]
fn checks_with_refund_and_force() {
    linearizable(quota(), Refill::Greedy, Gcra::new, MIXED, |seen| {
        let total = admitted(MIXED, seen);
        assert!(total <= 5, "admitted {total}: {seen:?}");
    });
}

const WITH_RESET: &[Program] = &[
    &[(Op::Check, 20, 3), (Op::Check, 20, 1)],
    &[(Op::Reset, 0, 0), (Op::Check, 10, 2)],
];

/// A reset racing checks (one reading an older clock): linearizable, time never moves back.
#[test]
fn checks_with_reset() {
    linearizable(quota(), Refill::Greedy, Gcra::new, WITH_RESET, |_| {});
}
