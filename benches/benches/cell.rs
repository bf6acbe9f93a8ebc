//! One uncontended limiter, one thread: the cost of a single check, cellgate against governor
//! in the same run, so that the ratios between them hold even on a noisy machine.
//!
//! Each benchmark reports `Throughput::Elements(1)`: one check per iteration. Before measuring,
//! every limiter is driven through a few thousand checks to assert that the benchmark really
//! stays on the path its name says (always admitted, or always denied).
//!
//! # Groups
//!
//! - `cell/check_at`: the admitted path with *injected* time. Time advances by the emission
//!   interval ([`STEP_NS`], 1 ms for 1000/second) at every iteration, so the bucket stays in a
//!   steady state and every check is admitted and written back with a compare-exchange.
//!   - `cellgate_gcra`, `cellgate_token_bucket_greedy`, `cellgate_token_bucket_interval`:
//!     `check_at(now, 1)` with `now` a plain counter.
//!   - `governor_direct_step_clock`: governor's direct limiter over [`StepClock`], a
//!     non-atomic bench clock; governor's nearest equivalent of `check_at`, and the like-for-like
//!     peer of `cellgate_gcra`.
//!   - `governor_direct_state_info`: the same with governor's `StateInformationMiddleware`,
//!     reading `remaining_burst_capacity()`, the closest governor gets to cellgate's `Decision`
//!     (which always carries `remaining` and `reset_after_ns`).
//!   - `governor_direct`: governor over its `FakeRelativeClock`, advanced each iteration (an
//!     atomic read-modify-write on the clock), and `cellgate_gcra_manual_clock`, its
//!     like-for-like peer: `ManualClock::advance_ns` then `check(1)`.
//! - `cell/check_at_denied`: the denied path with time fixed: the bucket is exhausted once,
//!   then every check is denied (a load, the decision with its retry time, no write).
//! - `cell/check_clock`: the admitted path reading a real clock: cellgate with
//!   `MonotonicClock` (`std::time::Instant`) and with its opt-in `QuantaClock` (feature
//!   `quanta`, TSC-based), governor with its default clock (`QuantaClock`, TSC-based) and with
//!   its `MonotonicClock` (`std::time::Instant`). The quota, 10^9 per
//!   second, is large enough that real time always refills more than one check consumes.
//! - `cell/clock_read`: the clocks alone, so the clock's share of `cell/check_clock` is visible.

use std::hint::black_box;
use std::time::Duration;

use cellgate::{Decision, Gcra, ManualClock, MonotonicClock, Quota, Refill, TokenBucket};
use cellgate_benches::{assert_path, governor_quota, StepClock};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use governor::clock::{Clock as _, FakeRelativeClock, QuantaClock as GovernorQuantaClock};
use governor::middleware::StateInformationMiddleware;
use governor::RateLimiter;

/// The rate of the injected-time benchmarks: cost units per second.
const RATE_PER_SECOND: u32 = 1_000;
/// The emission interval of [`RATE_PER_SECOND`]: the time step per iteration.
const STEP_NS: u64 = 1_000_000_000 / RATE_PER_SECOND as u64;
/// The rate of the real-clock benchmarks: one per nanosecond, never exhausted by one thread.
const REAL_CLOCK_RATE_PER_SECOND: u32 = 1_000_000_000;

fn cellgate_quota(rate: u32) -> Quota {
    Quota::per_second(u64::from(rate)).expect("a valid quota")
}

fn allowed(decision: Decision) -> bool {
    decision.allowed
}

fn check_at(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell/check_at");
    group.throughput(Throughput::Elements(1));
    let quota = cellgate_quota(RATE_PER_SECOND);

    let gcra = Gcra::new(quota);
    let mut now = 0;
    assert_path("cellgate_gcra", true, || {
        now += STEP_NS;
        allowed(gcra.check_at(now, 1))
    });
    group.bench_function("cellgate_gcra", |b| {
        b.iter(|| {
            now += STEP_NS;
            gcra.check_at(black_box(now), black_box(1))
        })
    });

    for (name, refill) in [
        ("cellgate_token_bucket_greedy", Refill::Greedy),
        ("cellgate_token_bucket_interval", Refill::Interval),
    ] {
        let bucket = TokenBucket::builder(quota)
            .refill(refill)
            .build_at(0)
            .expect("a full bucket");
        let mut now = 0;
        assert_path(name, true, || {
            now += STEP_NS;
            allowed(bucket.check_at(now, 1))
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                now += STEP_NS;
                bucket.check_at(black_box(now), black_box(1))
            })
        });
    }

    let governor =
        RateLimiter::direct_with_clock(governor_quota(RATE_PER_SECOND), StepClock::default());
    let step = || governor.clock().advance_ns(black_box(STEP_NS));
    assert_path("governor_direct_step_clock", true, || {
        step();
        governor.check().is_ok()
    });
    group.bench_function("governor_direct_step_clock", |b| {
        b.iter(|| {
            step();
            governor.check()
        })
    });

    let governor =
        RateLimiter::direct_with_clock(governor_quota(RATE_PER_SECOND), StepClock::default())
            .with_middleware::<StateInformationMiddleware>();
    let step = || governor.clock().advance_ns(black_box(STEP_NS));
    assert_path("governor_direct_state_info", true, || {
        step();
        governor.check().is_ok()
    });
    group.bench_function("governor_direct_state_info", |b| {
        b.iter(|| {
            step();
            governor
                .check()
                .map(|snapshot| snapshot.remaining_burst_capacity())
        })
    });

    let gcra = Gcra::with_clock(quota, ManualClock::new(0));
    assert_path("cellgate_gcra_manual_clock", true, || {
        gcra.clock().advance_ns(STEP_NS);
        allowed(gcra.check(1))
    });
    group.bench_function("cellgate_gcra_manual_clock", |b| {
        b.iter(|| {
            gcra.clock().advance_ns(black_box(STEP_NS));
            gcra.check(black_box(1))
        })
    });

    let clock = FakeRelativeClock::default();
    let governor = RateLimiter::direct_with_clock(governor_quota(RATE_PER_SECOND), clock.clone());
    let step_duration = Duration::from_nanos(STEP_NS);
    assert_path("governor_direct", true, || {
        clock.advance(step_duration);
        governor.check().is_ok()
    });
    group.bench_function("governor_direct", |b| {
        b.iter(|| {
            clock.advance(black_box(step_duration));
            governor.check()
        })
    });

    group.finish();
}

fn check_at_denied(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell/check_at_denied");
    group.throughput(Throughput::Elements(1));
    let quota = cellgate_quota(RATE_PER_SECOND);
    let burst = quota.burst_cost();
    let now = STEP_NS / 2;

    let gcra = Gcra::new(quota);
    assert!(gcra.check_at(now, burst).allowed);
    assert_path("cellgate_gcra", false, || allowed(gcra.check_at(now, 1)));
    group.bench_function("cellgate_gcra", |b| {
        b.iter(|| gcra.check_at(black_box(now), black_box(1)))
    });

    for (name, refill) in [
        ("cellgate_token_bucket_greedy", Refill::Greedy),
        ("cellgate_token_bucket_interval", Refill::Interval),
    ] {
        let bucket = TokenBucket::builder(quota)
            .refill(refill)
            .initial_tokens(0)
            .build_at(0)
            .expect("an empty bucket");
        assert_path(name, false, || allowed(bucket.check_at(now, 1)));
        group.bench_function(name, |b| {
            b.iter(|| bucket.check_at(black_box(now), black_box(1)))
        });
    }

    let clock = FakeRelativeClock::default();
    clock.advance(Duration::from_nanos(now));
    let governor = RateLimiter::direct_with_clock(governor_quota(RATE_PER_SECOND), clock);
    while governor.check().is_ok() {}
    assert_path("governor_direct", false, || governor.check().is_ok());
    group.bench_function("governor_direct", |b| b.iter(|| governor.check()));

    group.finish();
}

fn check_clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell/check_clock");
    group.throughput(Throughput::Elements(1));

    let gcra = Gcra::with_clock(cellgate_quota(REAL_CLOCK_RATE_PER_SECOND), MonotonicClock);
    assert_path("cellgate_gcra_monotonic", true, || allowed(gcra.check(1)));
    group.bench_function("cellgate_gcra_monotonic", |b| {
        b.iter(|| gcra.check(black_box(1)))
    });

    let gcra = Gcra::with_clock(
        cellgate_quota(REAL_CLOCK_RATE_PER_SECOND),
        cellgate::QuantaClock::new(),
    );
    assert_path("cellgate_gcra_quanta", true, || allowed(gcra.check(1)));
    group.bench_function("cellgate_gcra_quanta", |b| {
        b.iter(|| gcra.check(black_box(1)))
    });

    let governor = RateLimiter::direct(governor_quota(REAL_CLOCK_RATE_PER_SECOND));
    assert_path("governor_direct_quanta", true, || governor.check().is_ok());
    group.bench_function("governor_direct_quanta", |b| b.iter(|| governor.check()));

    let governor = RateLimiter::direct_with_clock(
        governor_quota(REAL_CLOCK_RATE_PER_SECOND),
        governor::clock::MonotonicClock,
    );
    assert_path("governor_direct_instant", true, || governor.check().is_ok());
    group.bench_function("governor_direct_instant", |b| b.iter(|| governor.check()));

    group.finish();
}

fn clock_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell/clock_read");
    group.throughput(Throughput::Elements(1));

    group.bench_function("cellgate_monotonic", |b| {
        b.iter(|| cellgate::Clock::now_ns(black_box(&MonotonicClock)))
    });

    let counter = cellgate::QuantaClock::new();
    group.bench_function("cellgate_quanta", |b| {
        b.iter(|| cellgate::Clock::now_ns(black_box(&counter)))
    });

    let quanta = GovernorQuantaClock::default();
    group.bench_function("governor_quanta", |b| b.iter(|| black_box(&quanta).now()));

    let instant = governor::clock::MonotonicClock;
    group.bench_function("governor_instant", |b| b.iter(|| black_box(&instant).now()));

    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = check_at, check_at_denied, check_clock, clock_read
}
criterion_main!(benches);
