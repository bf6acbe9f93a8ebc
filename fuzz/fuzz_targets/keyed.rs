//! Keyed operation sequences against a map of one reference bucket per key.
//!
//! A small table (16 to 62 slots) with one quota, refill kind and seed; up to 48 distinct keys
//! of 0 to 24 bytes, so that windows fill, idle keys are reclaimed and new keys are refused;
//! up to 256 steps, each a time move, an operation (check, peek, force, refund, reset; with an
//! explicit time, through the key's precomputed hash, or through the table's clock) on one key,
//! and a cost. Checked at every step:
//!
//! - a decision equals that of the key's own reference bucket (every key is an independent
//!   bucket; an absent or reclaimed key is a full one);
//! - `TableFull` comes only for a key that may be absent (never placed, or full and so
//!   reclaimable), and changes nothing: every other key, live or not, still decides exactly as
//!   its model (checked with a peek of each);
//! - the statistics: `rejected_full` counts the refusals seen; `live_keys` never exceeds the
//!   slot count; at the end every key agrees with its model.
//!
//! # Time, and what a table forgets
//!
//! The current time moves forward, but one operation may be dated up to a period *behind* it
//! (`Step::late`: a late clock reading by another thread). Late readings make visible what the
//! table does not store: an absent key (never placed, or reclaimed once its bucket was full)
//! has no time of its own, while a lone cell remembers the latest time it was written even when
//! full. So each key's model is a small set of candidate histories: its own bucket, plus, as
//! soon as that bucket is full at the current time (so the table may have dropped the key), a
//! fresh bucket. Every answer of the table must equal some candidate's; the candidates that
//! answered otherwise are dropped. With time moving forward only, there is one candidate and
//! the comparison is exact.
//!
//! `reset_at(key, now)` makes the key's bucket full *at* `now` (its time becomes the later of
//! `now` and its own), where a lone cell's `reset()` takes no time; the models follow the table.
//!
//! The table clamps times to `u64::MAX - 1` (its `BUSY` marker owns `last_ns == u64::MAX`), so
//! an operation at `u64::MAX` decides as at `u64::MAX - 1`; the models are driven at the same
//! clamped time. (Found by this target: a bucket with interval refill and a 1 ns period is full
//! again at `u64::MAX` for a lone cell but not in the table. Not documented in the core yet.)
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use cellgate::{Decision, KeyedLimiter, ManualClock, Op, Quota, Refill, Seed, TableFull};
use cellgate_fuzz::{CostSpec, Dt, Model, OpSpec, QuotaSpec};
use libfuzzer_sys::fuzz_target;

/// How many distinct keys an input can name.
const KEYS: u8 = 48;

/// The latest time a keyed table decides at (times beyond are clamped to it).
const TABLE_MAX_NOW_NS: u64 = u64::MAX - 1;

#[derive(Arbitrary, Debug)]
enum Via {
    /// `check_at`, `peek_at`, … with the step's time.
    At,
    /// `check_hashed_at` (checks only; other operations go through `At`).
    Hashed,
    /// `check`, `peek`, … reading the table's `ManualClock`, set to the step's time.
    Clock,
}

#[derive(Arbitrary, Debug)]
struct Step {
    dt: Dt,
    /// Dates this one operation `late` ns before the current time (a late reading), when
    /// `Some`; the current time does not move back.
    late: Option<u32>,
    key: u8,
    op: OpSpec,
    cost: CostSpec,
    via: Via,
}

#[derive(Arbitrary, Debug)]
struct Input {
    quota: QuotaSpec,
    interval: bool,
    /// `max_keys` for `with_options`: 0 to 47, so 16 to 62 slots.
    max_keys: u8,
    seed: (u64, u64),
    /// Key `i` is `i` repeated `1 + (i × stretch) % 24` times, or empty for `i == 0`.
    stretch: u8,
    start: u64,
    steps: Vec<Step>,
}

fn key_bytes(index: u8, stretch: u8) -> Vec<u8> {
    if index == 0 {
        return Vec::new();
    }
    let len = 1 + (usize::from(index) * usize::from(stretch)) % 24;
    vec![index; len]
}

/// The candidate histories of a key at `now`: its own, plus a fresh bucket when one of them is
/// full at `now`, as the table may then have dropped (reclaimed) the key.
fn widened(candidates: &[Model], fresh: Model, now: u64) -> Vec<Model> {
    let mut widened = candidates.to_vec();
    if candidates.iter().any(|model| model.is_full_at(now)) && !candidates.contains(&fresh) {
        widened.push(fresh);
    }
    widened
}

fuzz_target!(|input: Input| {
    let Some(quota) = input.quota.quota() else {
        return;
    };
    let refill = if input.interval {
        Refill::Interval
    } else {
        Refill::Greedy
    };
    let clock = ManualClock::new(0);
    let table = KeyedLimiter::with_options(
        quota,
        refill,
        usize::from(input.max_keys % 48),
        Seed::new(input.seed.0, input.seed.1),
        clock.clone(),
    );
    let fresh = |quota: Quota| match refill {
        Refill::Greedy => Model::greedy(quota, quota.burst_cost(), 0),
        Refill::Interval => Model::interval(quota, quota.burst_cost(), 0),
    };
    let burst = quota.burst_cost();
    // Candidate histories per key (see the module documentation).
    let mut models: HashMap<u8, Vec<Model>> = HashMap::new();
    let mut now = input.start;
    let mut last: Option<(u64, Decision)> = None;
    let mut refused = 0u64;
    for step in input.steps.iter().take(256) {
        let next = step.dt.apply(now, quota, last);
        now = now.max(next);
        let at = step.late.map_or(now, |late| {
            now.saturating_sub(u64::from(late) % quota.period_ns().saturating_add(1))
        });
        let model_at = at.min(TABLE_MAX_NOW_NS);
        let model_now = now.min(TABLE_MAX_NOW_NS);
        let index = step.key % KEYS;
        let key = key_bytes(index, input.stretch);
        let cost = step.cost.resolve(burst);
        let candidates = models.entry(index).or_insert_with(|| vec![fresh(quota)]);
        *candidates = widened(candidates, fresh(quota), model_now);
        let mut op = step.op.op();
        if op == Op::Force
            && candidates
                .iter()
                .any(|model| model.force_overflows(model_at, cost, quota))
        {
            op = Op::Peek;
        }
        clock.set_ns(at);
        let got: Result<Option<Decision>, TableFull> = match (op, &step.via) {
            (Op::Check, Via::At) => table.check_at(&key, at, cost).map(Some),
            (Op::Check, Via::Hashed) => table
                .check_hashed_at(table.hash_key(&key), at, cost)
                .map(Some),
            (Op::Check, Via::Clock) => table.check(&key, cost).map(Some),
            (Op::Peek, Via::Clock) => Ok(Some(table.peek(&key, cost))),
            (Op::Peek, _) => Ok(Some(table.peek_at(&key, at, cost))),
            (Op::Force, Via::Clock) => table.force(&key, cost).map(Some),
            (Op::Force, _) => table.force_at(&key, at, cost).map(Some),
            (Op::Refund, Via::Clock) => Ok(Some(table.refund(&key, cost))),
            (Op::Refund, _) => Ok(Some(table.refund_at(&key, at, cost))),
            (Op::Reset, Via::Clock) => {
                table.reset(&key);
                Ok(None)
            }
            (Op::Reset, _) => {
                table.reset_at(&key, at);
                Ok(None)
            }
        };
        match got {
            Ok(decision) => {
                let before = candidates.clone();
                let mut next: Vec<Model> = Vec::new();
                for mut model in before.iter().cloned() {
                    let expected = if op == Op::Reset {
                        model.reset_at(model_at);
                        None
                    } else {
                        model.apply(op, model_at, cost)
                    };
                    if expected == decision && !next.contains(&model) {
                        next.push(model);
                    }
                }
                if next.is_empty() {
                    let mut first = before[0].clone();
                    let expected = first.apply(op, model_at, cost);
                    panic!(
                        "key {index}: {op:?} cost {cost} at {at}: table {decision:?}, model \
                         {expected:?} ({} candidate histories)",
                        before.len()
                    );
                }
                *candidates = next;
                if let Some(decision) = decision {
                    last = Some((model_at, decision));
                }
            }
            Err(TableFull) => {
                refused += 1;
                assert!(
                    matches!(op, Op::Check | Op::Force),
                    "only a check or force may insert"
                );
                assert!(
                    candidates.contains(&fresh(quota)),
                    "refused key {index}, which must be in the table (its bucket is not full)"
                );
                *candidates = vec![fresh(quota)];
                // Nothing changed: every key still decides as its model.
                for (&other, candidates) in &models {
                    let other_key = key_bytes(other, input.stretch);
                    let got = table.peek_at(&other_key, at, 1);
                    let candidates = widened(candidates, fresh(quota), model_now);
                    assert!(
                        candidates
                            .iter()
                            .any(|model| model.peek(model_at, 1) == got),
                        "key {other} changed when key {index} was refused: {got:?}"
                    );
                }
            }
        }
        let stats = table.stats();
        assert_eq!(stats.rejected_full, refused);
        assert!(stats.live_keys <= table.slot_count() as u64);
    }
    let model_now = now.min(TABLE_MAX_NOW_NS);
    for (&index, candidates) in &models {
        let key = key_bytes(index, input.stretch);
        let got = table.peek_at(&key, now, 1);
        let candidates = widened(candidates, fresh(quota), model_now);
        assert!(
            candidates
                .iter()
                .any(|model| model.peek(model_now, 1) == got),
            "key {index} at the end: {got:?}, model {:?}",
            candidates[0].peek(model_now, 1)
        );
    }
});
