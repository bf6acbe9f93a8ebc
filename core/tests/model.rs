//! Model-based tests: `Gcra` and `TokenBucket` against reference models written in plain exact
//! arithmetic, independent of the crate's tick encoding.
//!
//! # The specification the models encode
//!
//! A quota is `rate` cost units per `period` nanoseconds, at most `burst` at once.
//!
//! * Greedy refill (GCRA): the bucket holds `tokens`, an exact fraction (kept as
//!   `tokens × period`, so that refill over `elapsed` ns is the integer `elapsed × rate`), capped
//!   at `burst`; negative tokens are debt.
//! * Interval refill: `tokens` is an integer, and `rate` tokens come back at each multiple of
//!   `period` on the clock's time line, capped at `burst`.
//! * Time: each bucket remembers `last`, the latest `now` of an operation that *changed* it
//!   (an admitted check with a cost, `force`, `refund`). An operation at `now < last` happens
//!   at `last`: no time passes. Denials, peeks and zero-cost checks write nothing, so they do
//!   not move `last` either (see `denied_checks_do_not_move_time`: the effective time is the
//!   running maximum of the *writing* operations' `now`s, not of all `now`s).
//! * `check` admits iff the whole cost fits; cost 0 is a peek; a cost above the burst is denied
//!   with `retry_after_ns == NEVER`. `retry_after_ns` is the exact wait, rounded up to the ns.
//! * `force` consumes regardless; `refund` gives back, never above full. Both report
//!   `allowed == false` when they leave the bucket in debt, with `retry_after_ns` the exact wait
//!   until one cost unit fits again. `reset` makes the bucket full and (like every other
//!   operation) does not move time backwards.
//!
//! Waits are reported relative to `now`; a wait whose end is past `u64::MAX` ns is `NEVER`, and
//! a wait of exactly `u64::MAX` (which would read as `NEVER`) is reported as `u64::MAX - 1`.
//!
//! Failing cases are persisted next to this file, in `model.proptest-regressions` (commit it).

#![cfg(not(loom))]

use cellgate::{
    CellState, Decision, Gcra, Op, Quota, Refill, Rule, TokenBucket, MAX_CAPACITY_TICKS, NEVER,
    NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// `cases` cases unless `PROPTEST_CASES` says otherwise; 4 under miri, which also cannot write
/// the regression file (isolation).
fn config(cases: u32) -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES (and the other PROPTEST_* variables).
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if cfg!(miri) {
        config.cases = config.cases.min(4);
        config.max_shrink_iters = 16;
        config.failure_persistence = None;
    } else {
        config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        )));
    }
    config
}

// ---------------------------------------------------------------------------------------------
// The reference models (the specification)
// ---------------------------------------------------------------------------------------------

#[path = "support/reference.rs"]
mod reference;

use reference::{to_i128, GreedyModel, IntervalModel};

/// What every model answers.
trait Spec: Clone {
    fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision>;
    /// Whole tokens available at `now` (negative in debt), without changing anything.
    fn whole_tokens(&self, now: u64) -> i128;
    /// How far from full the bucket would be after `force(cost)` at `now`, in the crate's state
    /// units (ticks / cost units). Only used to keep schedules inside the representable range.
    fn missing_units_after_force(&self, now: u64, cost: u64, units_per_cost: u64) -> u128;
}

impl Spec for GreedyModel {
    fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        GreedyModel::apply(self, op, now, cost)
    }

    fn whole_tokens(&self, now: u64) -> i128 {
        let (tokens, _) = self.refilled(now);
        tokens.div_euclid(to_i128(self.period))
    }

    fn missing_units_after_force(&self, now: u64, cost: u64, units_per_cost: u64) -> u128 {
        let (tokens, _) = self.refilled(now);
        let after = tokens - to_i128(u128::from(cost) * self.period);
        let missing = u128::try_from(self.full() - after).unwrap();
        // missing / period tokens, each `units_per_cost` ticks: exact, as period / ticks is
        // gcd(rate, period).
        missing / (self.period / u128::from(units_per_cost))
    }
}

impl Spec for IntervalModel {
    fn apply(&mut self, op: Op, now: u64, cost: u64) -> Option<Decision> {
        IntervalModel::apply(self, op, now, cost)
    }

    fn whole_tokens(&self, now: u64) -> i128 {
        self.refilled(now).0
    }

    fn missing_units_after_force(&self, now: u64, cost: u64, _units_per_cost: u64) -> u128 {
        let (tokens, _) = self.refilled(now);
        u128::try_from(self.burst - (tokens - i128::from(cost))).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The cells under test, behind one interface
// ---------------------------------------------------------------------------------------------

trait Limiter {
    fn apply(&self, op: Op, now: u64, cost: u64) -> Option<Decision>;
    fn snapshot(&self) -> CellState;
}

macro_rules! limiter {
    ($cell:ty) => {
        impl Limiter for $cell {
            fn apply(&self, op: Op, now: u64, cost: u64) -> Option<Decision> {
                match op {
                    Op::Check => Some(self.check_at(now, cost)),
                    Op::Peek => Some(self.peek_at(now, cost)),
                    Op::Force => Some(self.force_at(now, cost)),
                    Op::Refund => Some(self.refund_at(now, cost)),
                    Op::Reset => {
                        self.reset();
                        None
                    }
                }
            }

            fn snapshot(&self) -> CellState {
                self.state()
            }
        }
    };
}

limiter!(Gcra);
limiter!(TokenBucket);

fn interval_bucket(quota: Quota, init: Option<(u64, u64)>) -> TokenBucket {
    let builder = TokenBucket::builder(quota).refill(Refill::Interval);
    match init {
        Some((tokens, at)) => builder.initial_tokens(tokens).build_at(at).unwrap(),
        None => builder.build_at(0).unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[derive(Clone, Copy, Debug)]
enum BurstSpec {
    Small(u64),
    Rate,
    RateTimes(u64),
    Max,
    /// `max_burst × n / 2^16`.
    FractionOfMax(u16),
    Exact(u64),
}

fn quota_strategy() -> impl Strategy<Value = Quota> {
    // Named rates whose emission interval is not a whole number of ns (gcd = 1), and others.
    let named = prop_oneof![
        Just((3, NS_PER_SECOND)),
        Just((7, 13)),
        Just((1, NS_PER_DAY)),
        Just((100, NS_PER_MINUTE)),
        Just((1_000_000_000, NS_PER_SECOND)),
        Just((999_999_937, NS_PER_SECOND)),
        Just((u64::MAX, 1)),
    ];
    let rate = prop_oneof![
        4 => 1..=10u64,
        1 => Just(3u64),
        1 => Just(7u64),
        2 => 1..=1_000_000_000u64,
        1 => Just(1_000_000_000u64),
        1 => Just(999_999_937u64), // prime
        1 => Just(u64::MAX),
        1 => 1..=u64::MAX,
    ];
    let period = prop_oneof![
        4 => 1..=64u64,
        1 => Just(13u64),
        2 => Just(NS_PER_SECOND),
        1 => Just(NS_PER_MINUTE),
        1 => Just(NS_PER_HOUR),
        1 => Just(NS_PER_DAY),
        1 => Just(7 * NS_PER_DAY),
        1 => Just(1_000_000_007u64), // prime
        2 => 1..=30 * NS_PER_DAY,
        1 => 1..=(1u64 << 58),
    ];
    let burst = prop_oneof![
        4 => (1..=10u64).prop_map(BurstSpec::Small),
        2 => Just(BurstSpec::Rate),
        1 => (2..=4u64).prop_map(BurstSpec::RateTimes),
        2 => Just(BurstSpec::Max),
        1 => any::<u16>().prop_map(BurstSpec::FractionOfMax),
        1 => (1..=1_000_000u64).prop_map(BurstSpec::Exact),
    ];
    let rate_period = prop_oneof![1 => named, 3 => (rate, period)];
    (rate_period, burst).prop_filter_map("quota out of range", |((rate, period), burst)| {
        let emission = period / gcd(rate, period);
        let max_burst = MAX_CAPACITY_TICKS / emission;
        if max_burst == 0 {
            return None;
        }
        let burst = match burst {
            BurstSpec::Small(n) | BurstSpec::Exact(n) => n,
            BurstSpec::Rate => rate,
            BurstSpec::RateTimes(k) => rate.saturating_mul(k),
            BurstSpec::Max => max_burst,
            BurstSpec::FractionOfMax(n) => {
                u64::try_from((u128::from(max_burst) * u128::from(n)) >> 16).unwrap()
            }
        }
        .clamp(1, max_burst);
        Quota::with_parts(rate, period, burst).ok()
    })
}

/// How time moves before an operation.
#[derive(Clone, Copy, Debug)]
enum Dt {
    Same,
    Forward(u8),
    Back(u8),
    /// `period × num / den ± jitter` forward.
    Periods(u16, u8, i8),
    /// `period × num / den` backward.
    BackPeriods(u16, u8),
    /// `k` emission intervals (`period / rate`, rounded up) forward, `± jitter`.
    Emissions(u8, i8),
    /// To the previous decision's `now + retry_after_ns` (minus one if `true`), when finite.
    Retry(bool),
    /// To the previous decision's `now + reset_after_ns` (minus one if `true`), when finite.
    ResetAfter(bool),
    /// Anywhere, including near the end of the `u64` time line.
    Jump(u64),
}

fn dt_strategy() -> impl Strategy<Value = Dt> {
    prop_oneof![
        3 => Just(Dt::Same),
        3 => any::<u8>().prop_map(Dt::Forward),
        2 => any::<u8>().prop_map(Dt::Back),
        5 => (0..=64u16, 1..=16u8, -1..=1i8).prop_map(|(n, d, j)| Dt::Periods(n, d, j)),
        2 => (0..=64u16, 1..=16u8).prop_map(|(n, d)| Dt::BackPeriods(n, d)),
        4 => (0..=8u8, -1..=1i8).prop_map(|(k, j)| Dt::Emissions(k, j)),
        4 => any::<bool>().prop_map(Dt::Retry),
        1 => any::<bool>().prop_map(Dt::ResetAfter),
        1 => prop_oneof![any::<u64>(), (u64::MAX - 1_000_000..=u64::MAX)].prop_map(Dt::Jump),
    ]
}

#[derive(Clone, Copy, Debug)]
enum CostSpec {
    Zero,
    Small(u8),
    Burst,
    BurstMinus(u8),
    BurstPlus(u8),
    /// `burst × n / 64`.
    Fraction(u8),
    Huge,
}

fn cost_strategy() -> impl Strategy<Value = CostSpec> {
    prop_oneof![
        1 => Just(CostSpec::Zero),
        6 => (1..=8u8).prop_map(CostSpec::Small),
        2 => Just(CostSpec::Burst),
        1 => (1..=3u8).prop_map(CostSpec::BurstMinus),
        1 => (1..=3u8).prop_map(CostSpec::BurstPlus),
        3 => (0..=64u8).prop_map(CostSpec::Fraction),
        1 => Just(CostSpec::Huge),
    ]
}

fn resolve_cost(cost: CostSpec, burst: u64) -> u64 {
    match cost {
        CostSpec::Zero => 0,
        CostSpec::Small(n) => u64::from(n),
        CostSpec::Burst => burst,
        CostSpec::BurstMinus(n) => burst.saturating_sub(u64::from(n)),
        CostSpec::BurstPlus(n) => burst.saturating_add(u64::from(n)),
        CostSpec::Fraction(n) => u64::try_from(u128::from(burst) * u128::from(n) / 64).unwrap(),
        CostSpec::Huge => u64::MAX,
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => Just(Op::Check),
        2 => Just(Op::Peek),
        2 => Just(Op::Force),
        2 => Just(Op::Refund),
        1 => Just(Op::Reset),
    ]
}

type Step = (Dt, Op, CostSpec);

/// Schedule lengths (shorter under miri).
const STEPS: usize = if cfg!(miri) { 8 } else { 64 };

fn schedule(ops: impl Strategy<Value = Op>, len: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((dt_strategy(), ops, cost_strategy()), 1..=len)
}

fn start_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        2 => 0..=1_000_000u64,
        1 => any::<u64>(),
        1 => u64::MAX - 1_000_000..=u64::MAX,
    ]
}

/// Moves the clock. `last` is the previous decision (its `now` and fields) if any.
fn step_time(now: u64, dt: Dt, quota: Quota, last: Option<(u64, Decision)>) -> u64 {
    let period = i128::from(quota.period_ns());
    let emission = i128::from(quota.period_ns().div_ceil(quota.rate_cost()));
    let now_i = i128::from(now);
    let next = match dt {
        Dt::Same => now_i,
        Dt::Forward(n) => now_i + i128::from(n),
        Dt::Back(n) => now_i - i128::from(n),
        Dt::Periods(num, den, jitter) => {
            now_i + period * i128::from(num) / i128::from(den) + i128::from(jitter)
        }
        Dt::BackPeriods(num, den) => now_i - period * i128::from(num) / i128::from(den),
        Dt::Emissions(k, jitter) => now_i + emission * i128::from(k) + i128::from(jitter),
        Dt::Retry(minus_one) | Dt::ResetAfter(minus_one) => match last {
            Some((at, decision)) => {
                let wait = if matches!(dt, Dt::Retry(_)) {
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
        Dt::Jump(to) => i128::from(to),
    };
    u64::try_from(next.clamp(0, i128::from(u64::MAX))).unwrap()
}

/// Initial fill for a built bucket: `None` (full, `(0, 0)`), or `(tokens, build time)`.
fn init_strategy() -> impl Strategy<Value = Option<(u8, u64)>> {
    prop::option::of((any::<u8>(), start_strategy()))
}

fn resolve_init(init: Option<(u8, u64)>, burst: u64) -> Option<(u64, u64)> {
    init.map(|(fill, at)| {
        let tokens = u64::try_from(u128::from(burst) * u128::from(fill) / 255).unwrap();
        (tokens, at)
    })
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Keeps `force` within the state's representable debt (`missing < u64::MAX` units: the crate
/// documents that debt saturates at `u64::MAX`): a force that would reach it becomes a peek.
fn tame(op: Op, now: u64, cost: u64, model: &impl Spec, units_per_cost: u64) -> Op {
    if op == Op::Force
        && model.missing_units_after_force(now, cost, units_per_cost) >= u128::from(u64::MAX)
    {
        Op::Peek
    } else {
        op
    }
}

/// Checks, with `peek` (a peek at a given time and cost on the state the operation left), that
/// the waits in `decision` (made at `now` for `op`/`cost`) are exact: the request succeeds at
/// `now + retry_after_ns` and not one nanosecond earlier, and the bucket is full at
/// `now + reset_after_ns` and not one nanosecond earlier. (Waits of `NEVER - 1` are clamped.)
fn check_waits(
    peek: impl Fn(u64, u64) -> Decision,
    burst: u64,
    op: Op,
    now: u64,
    cost: u64,
    decision: Decision,
) -> Result<(), TestCaseError> {
    let retry = decision.retry_after_ns;
    // The request a retry refers to: the same one for a check/peek, one unit after a force.
    let retried = match op {
        Op::Check | Op::Peek if !decision.allowed => Some(cost),
        Op::Force | Op::Refund if !decision.allowed => Some(1),
        _ => None,
    };
    if let Some(request) = retried {
        if retry != NEVER && retry != NEVER - 1 {
            let at = now + retry;
            prop_assert!(
                peek(at, request).allowed,
                "retry_after_ns {} too short: {:?} denied at now + retry",
                retry,
                request
            );
            if retry > 0 {
                prop_assert!(
                    !peek(at - 1, request).allowed,
                    "retry_after_ns {} too long: admitted one ns earlier",
                    retry
                );
            }
        }
    }
    let reset = decision.reset_after_ns;
    if reset != NEVER && reset != NEVER - 1 {
        let at = now + reset;
        prop_assert_eq!(
            peek(at, 0).remaining,
            burst,
            "not full at now + reset_after_ns"
        );
        prop_assert_eq!(peek(at, 0).reset_after_ns, 0);
        if reset > 0 {
            prop_assert!(
                peek(at - 1, 0).reset_after_ns > 0,
                "reset_after_ns {} too long",
                reset
            );
        }
    }
    Ok(())
}

/// Runs `steps` on every cell and model (all starting from their own initial states), and
/// requires identical decisions from all, exact waits, and that the cells agree with the
/// models' arithmetic.
fn run_lockstep<M: Spec + std::fmt::Debug>(
    quota: Quota,
    refill: Refill,
    start: u64,
    steps: &[Step],
    cells: &[&dyn Limiter],
    model: &mut M,
) -> Result<(), TestCaseError> {
    let rule = Rule::new(quota, refill);
    let units_per_cost = match refill {
        Refill::Greedy => quota.emission_ticks(),
        Refill::Interval => 1,
    };
    let mut now = start;
    let mut last: Option<(u64, Decision)> = None;
    for (index, &(dt, op, cost)) in steps.iter().enumerate() {
        now = step_time(now, dt, quota, last);
        let cost = resolve_cost(cost, quota.burst_cost());
        let op = tame(op, now, cost, model, units_per_cost);
        let expected = model.apply(op, now, cost);
        for (which, cell) in cells.iter().enumerate() {
            let got = cell.apply(op, now, cost);
            prop_assert_eq!(
                got,
                expected,
                "step {} ({:?} cost {} at {}), cell #{}; model after: {:?}",
                index,
                op,
                cost,
                now,
                which,
                model
            );
        }
        if let Some(decision) = expected {
            // The waits describe the state the operation left; exact on the cell's pure
            // decision function and on the model alike.
            let state = cells[0].snapshot();
            let burst = quota.burst_cost();
            let on_rule = |at, cost| rule.decide(state, at, cost, Op::Peek).decision;
            check_waits(on_rule, burst, op, now, cost, decision)?;
            let on_model = |at, cost| model.clone().apply(Op::Peek, at, cost).unwrap();
            check_waits(on_model, burst, op, now, cost, decision)?;
            last = Some((now, decision));
        }
    }
    Ok(())
}

/// Admitted checks: `(effective time, cost)`.
type Admissions = Vec<(u64, u64)>;

fn run_checks(
    limiter: &dyn Limiter,
    quota: Quota,
    start: u64,
    steps: &[(Dt, CostSpec)],
) -> Admissions {
    let mut admitted = Vec::new();
    let mut now = start;
    let mut last = None;
    // Time of the latest write (only admitted non-zero checks write here): the state's time.
    let mut written = 0u64;
    for &(dt, cost) in steps {
        now = step_time(now, dt, quota, last);
        let cost = resolve_cost(cost, quota.burst_cost());
        let decision = limiter.apply(Op::Check, now, cost).unwrap();
        if decision.allowed && cost > 0 {
            written = written.max(now);
            admitted.push((written, cost));
        }
        last = Some((now, decision));
    }
    admitted
}

/// Every window `[a, b]` of admissions (consecutive in effective time) admitted at most
/// `bound(t_a, t_b)`.
fn check_windows(
    admitted: &Admissions,
    bound: impl Fn(u64, u64) -> u128,
) -> Result<(), TestCaseError> {
    for a in 0..admitted.len() {
        let mut total = 0u128;
        for b in a..admitted.len() {
            total += u128::from(admitted[b].1);
            let (t0, t1) = (admitted[a].0, admitted[b].0);
            prop_assert!(t0 <= t1, "effective time went backwards");
            let limit = bound(t0, t1);
            prop_assert!(
                total <= limit,
                "admitted {} in [{}, {}] (admissions {}..={}), bound {}",
                total,
                t0,
                t1,
                a,
                b,
                limit
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// (a) Over every window `[t0, t1]` of effective time, admitted cost is at most
    /// `burst + floor(rate × (t1 − t0) / period)` for the greedy cells, and at most
    /// `burst + rate × (boundaries in (t0, t1])` for the interval bucket. The effective time of
    /// an admission is the running max of the `now`s of the admissions so far (the operations
    /// that wrote). Not of *all* `now`s: a peek or a denial at a later time writes nothing, so
    /// admissions with earlier `now`s after it still see their own time; measured against the
    /// running max of all `now`s the bound fails (`bound_is_in_written_time_not_all_nows`).
    #[test]
    fn admitted_cost_within_bound(
        quota in quota_strategy(),
        start in start_strategy(),
        steps in prop::collection::vec((dt_strategy(), cost_strategy()), 1..=STEPS + STEPS / 4),
    ) {
        let rate = u128::from(quota.rate_cost());
        let period = u128::from(quota.period_ns());
        let burst = u128::from(quota.burst_cost());
        let greedy = |t0: u64, t1: u64| burst + rate * u128::from(t1 - t0) / period;
        let interval = |t0: u64, t1: u64| {
            burst + rate * u128::from(t1 / quota.period_ns() - t0 / quota.period_ns())
        };
        let cells: [(&dyn Limiter, bool); 3] = [
            (&Gcra::new(quota), true),
            (&TokenBucket::new(quota), true),
            (&interval_bucket(quota, None), false),
        ];
        for (cell, is_greedy) in cells {
            let admitted = run_checks(cell, quota, start, &steps);
            if is_greedy {
                check_windows(&admitted, greedy)?;
            } else {
                check_windows(&admitted, interval)?;
            }
        }
    }

    /// (b) + (c) `Gcra`, a greedy `TokenBucket`, and a greedy `TokenBucket` built with an
    /// initial fill all make exactly the reference model's decisions (every field) for
    /// check/peek/force/refund/reset schedules with backward time steps; every wait is exact.
    #[test]
    fn greedy_cells_match_model(
        quota in quota_strategy(),
        start in start_strategy(),
        init in init_strategy(),
        steps in schedule(op_strategy(), STEPS),
    ) {
        let mut model = GreedyModel::new(quota, quota.burst_cost(), 0);
        let gcra = Gcra::new(quota);
        let bucket = TokenBucket::new(quota);
        run_lockstep(quota, Refill::Greedy, start, &steps, &[&gcra, &bucket], &mut model)?;

        let init = resolve_init(init, quota.burst_cost());
        let (tokens, at) = init.unwrap_or((quota.burst_cost(), 0));
        let mut model = GreedyModel::new(quota, tokens, at);
        let builder = TokenBucket::builder(quota).refill(Refill::Greedy);
        let built = match init {
            Some((tokens, at)) => builder.initial_tokens(tokens).build_at(at).unwrap(),
            None => builder.build_at(start).unwrap(),
        };
        run_lockstep(quota, Refill::Greedy, start, &steps, &[&built], &mut model)?;
    }

    /// (b) without `reset`: the same as `greedy_cells_match_model` on schedules that never
    /// reset, so that a divergence in `reset` cannot hide one elsewhere.
    #[test]
    fn greedy_cells_match_model_without_reset(
        quota in quota_strategy(),
        start in start_strategy(),
        steps in schedule(
            prop_oneof![
                10 => Just(Op::Check), 2 => Just(Op::Peek), 2 => Just(Op::Force),
                2 => Just(Op::Refund),
            ],
            STEPS,
        ),
    ) {
        let mut model = GreedyModel::new(quota, quota.burst_cost(), 0);
        let gcra = Gcra::new(quota);
        let bucket = TokenBucket::new(quota);
        run_lockstep(quota, Refill::Greedy, start, &steps, &[&gcra, &bucket], &mut model)?;
    }

    /// (c) An interval `TokenBucket` (full, or built with an initial fill at some time) makes
    /// exactly the plain interval model's decisions.
    #[test]
    fn interval_bucket_matches_model(
        quota in quota_strategy(),
        start in start_strategy(),
        init in init_strategy(),
        steps in schedule(op_strategy(), STEPS),
    ) {
        let init = resolve_init(init, quota.burst_cost());
        let (tokens, at) = init.unwrap_or((quota.burst_cost(), 0));
        let mut model = IntervalModel::new(quota, tokens, at);
        let bucket = interval_bucket(quota, init);
        run_lockstep(quota, Refill::Interval, start, &steps, &[&bucket], &mut model)?;
    }

    /// (d) Denied checks (and peeks, and zero-cost checks) change nothing: inserting them
    /// anywhere, at any time (later ones included, followed by earlier ones), leaves every
    /// decision of the original operations unchanged.
    #[test]
    fn denials_change_nothing(
        quota in quota_strategy(),
        start in start_strategy(),
        interval in any::<bool>(),
        steps in schedule(
            prop_oneof![
                10 => Just(Op::Check), 1 => Just(Op::Peek), 1 => Just(Op::Force),
                1 => Just(Op::Refund), 1 => Just(Op::Reset),
            ],
            STEPS * 3 / 4,
        ),
        inserts in prop::collection::vec(
            (any::<prop::sample::Index>(), dt_strategy(), 0..4u8, any::<u8>(), cost_strategy()),
            0..=STEPS / 2,
        ),
    ) {
        let refill = if interval { Refill::Interval } else { Refill::Greedy };
        let make = || -> Box<dyn Limiter> {
            if interval {
                Box::new(interval_bucket(quota, None))
            } else {
                Box::new(Gcra::new(quota))
            }
        };
        let units_per_cost = if interval { 1 } else { quota.emission_ticks() };
        let mut inserts_at: Vec<Vec<(Dt, u8, u8, CostSpec)>> = vec![Vec::new(); steps.len()];
        for (index, dt, kind, extra, cost) in inserts {
            inserts_at[index.index(steps.len())].push((dt, kind, extra, cost));
        }
        let plain = make();
        let probed = make();
        let mut greedy = GreedyModel::new(quota, quota.burst_cost(), 0);
        let mut stepped = IntervalModel::new(quota, quota.burst_cost(), 0);
        let burst = quota.burst_cost();
        let mut now = start;
        let mut last = None;
        for (index, &(dt, op, cost)) in steps.iter().enumerate() {
            now = step_time(now, dt, quota, last);
            let cost = resolve_cost(cost, burst);
            let op = if interval {
                tame(op, now, cost, &stepped, units_per_cost)
            } else {
                tame(op, now, cost, &greedy, units_per_cost)
            };
            let expected = plain.apply(op, now, cost);
            // Operations that must change nothing, just before this one on `probed` only.
            for &(idt, kind, extra, icost) in &inserts_at[index] {
                let at = step_time(now, idt, quota, last);
                let (cost, must_deny) = match kind {
                    // The smallest cost that cannot fit (per the model), plus some.
                    0 | 1 => {
                        let tokens = if interval {
                            stepped.whole_tokens(at)
                        } else {
                            greedy.whole_tokens(at)
                        };
                        let short = (tokens.max(0) + 1 + i128::from(extra % 4)) as u64;
                        (short, true)
                    }
                    2 => (burst.saturating_add(1 + u64::from(extra)), true),
                    _ => (resolve_cost(icost, burst), false),
                };
                let (iop, cost) = match kind {
                    0 | 2 => (Op::Check, cost),
                    1 => (Op::Peek, cost),
                    _ if extra % 2 == 0 => (Op::Peek, cost),
                    _ => (Op::Check, 0),
                };
                let decision = probed.apply(iop, at, cost).unwrap();
                if must_deny {
                    prop_assert!(!decision.allowed, "inserted {:?} of {} at {} admitted", iop, cost, at);
                }
            }
            let got = probed.apply(op, now, cost);
            if interval {
                stepped.apply(op, now, cost);
            } else {
                greedy.apply(op, now, cost);
            }
            prop_assert_eq!(got, expected, "step {} ({:?} cost {} at {}), {:?}", index, op, cost, now, refill);
            if let Some(decision) = expected {
                last = Some((now, decision));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic tests
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator for sampling (splitmix64).
struct Sampler(u64);

impl Sampler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Sorted, distinct sample points in `1..=max`, with the powers of ten among them.
fn samples(sampler: &mut Sampler, max: u64, count: usize) -> Vec<u64> {
    let mut points: Vec<u64> = (0..count).map(|_| 1 + sampler.below(max)).collect();
    let mut power = 1u64;
    while power <= max {
        points.push(power);
        points.push(power.saturating_sub(1).max(1));
        points.push((power + 1).min(max));
        power = match power.checked_mul(10) {
            Some(next) => next,
            None => break,
        };
    }
    points.push(max);
    points.sort_unstable();
    points.dedup();
    points
}

/// No drift over (the equivalent of) billions of operations: with 3/second and a burst large
/// enough to take everything refilled since the previous sample at once, after `t` ns exactly
/// `burst + floor(3t / 10^9)` units have been admitted (the exact count is admitted, one more
/// is denied with the exact wait), for `t` up to 10^9 seconds, whole seconds `k` included
/// (`burst + 3k`).
#[test]
fn no_drift_over_a_billion_seconds() {
    let burst = 3_000_000_000u64;
    let quota = Quota::per_second(3).unwrap().with_burst(burst).unwrap();
    let limiter = Gcra::new(quota);
    let mut sampler = Sampler(7);
    let max_seconds = 1_000_000_000u64;
    let count = if cfg!(miri) { 20 } else { 3_000 };
    let seconds = samples(&mut sampler, max_seconds, count);

    assert!(limiter.check_at(0, burst).allowed);
    let mut admitted = burst;
    for k in seconds {
        // Whole seconds, and an arbitrary nanosecond inside the same second.
        for t in [
            k * NS_PER_SECOND,
            k * NS_PER_SECOND + sampler.below(NS_PER_SECOND),
        ] {
            let refilled = u64::try_from(3 * u128::from(t) / u128::from(NS_PER_SECOND)).unwrap();
            let expected_total = burst + refilled;
            let delta = expected_total - admitted;
            let decision = limiter.check_at(t, delta);
            assert!(decision.allowed, "t = {t}: {delta} should fit");
            assert_eq!(decision.remaining, 0);
            admitted += delta;
            if t % NS_PER_SECOND == 0 {
                assert_eq!(admitted, burst + 3 * (t / NS_PER_SECOND));
            }
            let denied = limiter.check_at(t, 1);
            assert!(
                !denied.allowed,
                "t = {t}: one more than {admitted} admitted"
            );
            // The next unit is due at ceil((refilled + 1) × 10^9 / 3).
            let next =
                u64::try_from((u128::from(refilled + 1) * 1_000_000_000).div_ceil(3)).unwrap();
            assert_eq!(denied.retry_after_ns, next - t, "t = {t}");
        }
    }
}

/// The `n`-th unit after the initial burst is admitted at exactly `ceil(n × period / rate)`
/// (never a nanosecond earlier), for `n` sampled up to `max_n` or the last unit due within the
/// `u64` time line, after which the wait is `NEVER`.
fn nth_unit_times(rate: u64, period: u64, burst: u64, max_n: u64, count: usize) {
    let quota = Quota::with_parts(rate, period, burst).unwrap();
    let limiter = Gcra::new(quota);
    let due = |n: u64| -> u128 { (u128::from(n) * u128::from(period)).div_ceil(u128::from(rate)) };
    assert!(limiter.check_at(0, burst).allowed);
    let mut sampler = Sampler(rate ^ period);
    let mut taken = 0u64;
    // The last unit due within the u64 time line.
    let last_unit = u64::try_from(u128::from(u64::MAX) * u128::from(rate) / u128::from(period))
        .unwrap_or(u64::MAX);
    for n in samples(&mut sampler, max_n, count) {
        let n = n.min(last_unit);
        let at = u64::try_from(due(n)).unwrap();
        // Large gaps are taken in pieces of half the burst, each on time (a piece of a whole
        // burst would find the bucket full, capped, and lose the fraction of a unit beyond).
        let half = burst / 2;
        while n - taken > half {
            let piece = taken + half;
            let at = u64::try_from(due(piece)).unwrap();
            assert!(
                limiter.check_at(at, half).allowed,
                "unit {piece} denied at {at}"
            );
            taken = piece;
        }
        let chunk = n - taken;
        if at > 0 {
            let early = limiter.check_at(at - 1, chunk);
            assert!(!early.allowed, "unit {n} admitted at {}", at - 1);
            assert_eq!(early.retry_after_ns, 1, "unit {n}");
        }
        let decision = limiter.check_at(at, chunk);
        assert!(decision.allowed, "unit {n} denied at {at}");
        taken = n;
        if n == last_unit {
            // The next unit would be due past the end of time: never.
            let decision = limiter.peek_at(at, 1);
            assert!(!decision.allowed);
            assert_eq!(decision.retry_after_ns, NEVER, "after unit {n}");
            break;
        }
    }
}

#[test]
fn nth_unit_admitted_exactly_on_time_3_per_second() {
    // 3/second reaches the end of u64 nanoseconds after about 5.5 × 10^10 units.
    let count = if cfg!(miri) { 20 } else { 4_000 };
    nth_unit_times(3, NS_PER_SECOND, 3_000_000_000, 60_000_000_000, count);
}

#[test]
fn nth_unit_admitted_exactly_on_time_7_per_13_ns() {
    let count = if cfg!(miri) { 20 } else { 4_000 };
    nth_unit_times(7, 13, 7_000_000_000, 1_000_000_000_000, count);
}

/// The effective time is the running max of the `now`s of operations that *wrote*, not of all
/// `now`s: a denied check at a later time does not move time forward for a later operation
/// with an earlier `now` (that is what makes denials change nothing, property (d)). With
/// 10/second and burst 20: empty at 0; a denied check at 1.5 s (15 available, 20 asked);
/// then at 1.2 s only 12 are available, so 13 is denied. Had the denial moved time to 1.5 s,
/// 13 would have been admitted.
#[test]
fn denied_checks_do_not_move_time() {
    let quota = Quota::per_second(10).unwrap().with_burst(20).unwrap();
    for cell in [&Gcra::new(quota) as &dyn Limiter, &TokenBucket::new(quota)] {
        assert!(cell.apply(Op::Check, 0, 20).unwrap().allowed);
        let denied = cell.apply(Op::Check, 1_500_000_000, 20).unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 15);
        let at_1_2 = cell.apply(Op::Check, 1_200_000_000, 13).unwrap();
        assert!(!at_1_2.allowed);
        assert_eq!(at_1_2.remaining, 12);
        assert_eq!(at_1_2.retry_after_ns, 100_000_000);
        assert!(cell.apply(Op::Check, 1_200_000_000, 12).unwrap().allowed);
        // Now time is 1.2 s: an earlier `now` is treated as 1.2 s.
        let early = cell.apply(Op::Peek, 1_000_000_000, 1).unwrap();
        assert!(!early.allowed);
        assert_eq!(early.retry_after_ns, 300_000_000);
    }
}

/// The bound of property (a) holds in the state's effective time (running max of the `now`s
/// of operations that wrote), not in the running max of all `now`s: a peek (or a denial) at a
/// later time writes nothing. 2 per 32 ns, burst 1: a peek at 448, then admissions at 387 and
/// at 404 (17 ns later, 1.0625 units refilled). In written time that is 2 units over
/// `[387, 404]`, within `1 + floor(2 × 17 / 32) = 2`; in all-`now`s time both are at 448,
/// a zero-length window with 2 > burst. This is the intended design (denials are read-only),
/// and it is what makes property (d) hold.
#[test]
fn bound_is_in_written_time_not_all_nows() {
    let quota = Quota::with_parts(2, 32, 1).unwrap();
    for cell in [&Gcra::new(quota) as &dyn Limiter, &TokenBucket::new(quota)] {
        assert!(cell.apply(Op::Check, 448, 0).unwrap().allowed);
        assert!(cell.apply(Op::Check, 387, 1).unwrap().allowed);
        assert!(cell.apply(Op::Check, 404, 1).unwrap().allowed);
        assert!(!cell.apply(Op::Check, 404, 1).unwrap().allowed);
    }
}

/// `reset` makes the bucket full but must not move time backwards: an operation whose `now` is
/// earlier than one already seen is treated as happening at the latest time, before and after
/// a reset alike (the pure `Rule::decide(.., Op::Reset)` keeps `last_ns`). Here: 1/second,
/// burst 1; the full bucket is taken at 100 s, reset, taken again by an operation reading 50 s
/// (a stale clock reading), after which a reading of 100 s must find the bucket empty (no time
/// passed since 100 s). If reset forgets the time, the 50 s operation moves the state's time
/// back to 50 s and the 100 s reading is refilled for the 50 s in between.
#[test]
fn reset_does_not_move_time_backwards() {
    let quota = Quota::per_second(1).unwrap();
    let s = NS_PER_SECOND;
    // The pure decision function keeps the time through a reset.
    let rule = Rule::new(quota, Refill::Greedy);
    let taken = rule
        .decide(CellState::FULL, 100 * s, 1, Op::Check)
        .next
        .unwrap();
    let reset = rule.decide(taken, 0, 0, Op::Reset).next.unwrap();
    assert_eq!(reset.last_ns, 100 * s);

    for cell in [
        &Gcra::new(quota) as &dyn Limiter,
        &TokenBucket::new(quota),
        &interval_bucket(quota, None),
    ] {
        assert!(cell.apply(Op::Check, 100 * s, 1).unwrap().allowed);
        cell.apply(Op::Reset, 0, 0);
        assert!(cell.apply(Op::Check, 50 * s, 1).unwrap().allowed);
        let after = cell.apply(Op::Check, 100 * s, 1).unwrap();
        assert!(
            !after.allowed,
            "admitted 2 units in 0 ns of effective time after a reset (burst 1): state {:?}",
            cell.snapshot()
        );
    }
}

/// `retry_after_ns` of a denied check stays exact in deep (representable) debt. With the
/// largest capacity (`MAX_CAPACITY_TICKS`, here 1 per ns so one tick per unit), one full
/// bucket of debt on top of an empty bucket is representable (`missing == u64::MAX - 1`, the
/// quota documentation's promise). A check for the whole burst must then wait for the debt and
/// the burst to refill: `2 × burst` ns. `missing + cost` overflows `u64` in the decision
/// function, and the saturated sum makes the reported wait `burst + 1` ns: retrying then fails.
#[test]
fn check_retry_after_exact_in_deep_debt() {
    let burst = MAX_CAPACITY_TICKS;
    let quota = Quota::with_parts(1, 1, burst).unwrap();
    assert_eq!(quota.capacity_ticks(), burst);
    for cell in [
        &Gcra::new(quota) as &dyn Limiter,
        &TokenBucket::new(quota),
        &interval_bucket(quota, None),
    ] {
        assert!(cell.apply(Op::Force, 0, burst).unwrap().allowed); // empty
        assert!(!cell.apply(Op::Force, 0, burst).unwrap().allowed); // one bucket of debt
        assert_eq!(cell.snapshot().missing, u64::MAX - 1);
        let denied = cell.apply(Op::Check, 0, burst).unwrap();
        assert!(!denied.allowed);
        let wait = 2 * burst; // == u64::MAX - 1
        assert!(!cell.apply(Op::Peek, wait - 1, burst).unwrap().allowed);
        assert!(cell.apply(Op::Peek, wait, burst).unwrap().allowed);
        assert_eq!(denied.retry_after_ns, wait, "state {:?}", cell.snapshot());
    }
}

/// The same for `force`'s `retry_after_ns` (the wait until one unit fits again) when the debt
/// leaves `missing` within one unit of `u64::MAX`: 1 per 2 ns (2 ticks per unit, 1 tick per ns),
/// burst `2^62 − 1` (capacity `2^63 − 2` ticks); forcing `2^63 − 1` units from full leaves
/// `missing = u64::MAX − 1` ticks, `−2^62` tokens. One unit fits after `2^62 + 1` units are
/// refilled: `2^63 + 2` ns. `missing + one unit` saturates and the wait comes out 1 ns short.
#[test]
fn force_retry_after_exact_near_the_top_of_the_state() {
    let burst = MAX_CAPACITY_TICKS / 2;
    let quota = Quota::with_parts(1, 2, burst).unwrap();
    assert_eq!(burst, (1 << 62) - 1);
    let limiter = Gcra::new(quota);
    let forced = limiter.force_at(0, (1 << 63) - 1);
    assert!(!forced.allowed);
    assert_eq!(limiter.state().missing, u64::MAX - 1);
    let wait = (1u64 << 63) + 2;
    assert!(!limiter.peek_at(wait - 1, 1).allowed);
    assert!(limiter.peek_at(wait, 1).allowed);
    assert_eq!(forced.retry_after_ns, wait);
}

/// Cost 0 is a pure peek; a cost above the burst is denied with `NEVER`, full bucket or not.
#[test]
fn zero_cost_and_over_burst() {
    let quota = Quota::new(7, 13).unwrap();
    let limiter = Gcra::new(quota);
    let peek = limiter.check_at(5, 0);
    assert!(peek.allowed);
    assert_eq!(limiter.state(), CellState::FULL);
    let never = limiter.check_at(5, 8);
    assert!(!never.allowed);
    assert_eq!(never.retry_after_ns, NEVER);
    assert!(never.is_never());
    assert_eq!(never.remaining, 7);
    assert!(limiter.check_at(5, 7).allowed);
    assert_eq!(limiter.check_at(5, 8).retry_after_ns, NEVER);
    // 1 unit every 13/7 ns: the first is back at 5 + ceil(13/7) = 7.
    let denied = limiter.check_at(5, 1);
    assert_eq!(denied.retry_after_ns, 2);
    assert!(!limiter.check_at(6, 1).allowed);
    assert!(limiter.check_at(7, 1).allowed);
}
