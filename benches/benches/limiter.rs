//! core's `Limiter` (the product every binding wraps) against the `KeyedLimiter` it is made of,
//! in the same run: what the product's one verb costs over the table's own check.
//!
//! - `limiter/check/keyed_limiter/N`: `KeyedLimiter::check_at(key, now, 1)` among `N` keys.
//! - `limiter/check/limiter_apply/N`: `Limiter::apply_at(key, now, &[None], Op::Check)` over the
//!   same quota, keys and seed (one quota on one dimension: the single-table engine).
//! - `limiter/check/limiter_two_quotas/N`: `Limiter::apply_at` over `"1000/s; 100000/min"`.
//!
//! Time advances by the emission interval every iteration, so every check is admitted.

use std::hint::black_box;

use cellgate::{
    KeyedLimiter, Limiter, LimiterOptions, LimiterQuota, NoClock, Op, Quota, Refill, Seed,
};
use cellgate_benches::{measuring, shuffled_keys, Cycle};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SEED: Seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
const STEP_NS: u64 = 1_000_000;

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter/check");
    group.throughput(Throughput::Elements(1));
    let count = if measuring() { 1_000 } else { 100 };
    let quota: Quota = "1000/second".parse().expect("a rate");
    let keys = shuffled_keys(count, 7);

    let table = KeyedLimiter::with_options(quota, Refill::Greedy, count * 2, SEED, NoClock);
    let mut next = Cycle::new(&keys);
    let mut now = 0u64;
    group.bench_function(BenchmarkId::new("keyed_limiter", count), |b| {
        b.iter(|| {
            now += STEP_NS;
            table.check_at(black_box(next.next_item()), black_box(now), black_box(1))
        })
    });

    let options = LimiterOptions {
        max_keys: count * 2,
        ..LimiterOptions::with_seed(SEED)
    };
    let limiter = Limiter::new(&[LimiterQuota::new(quota)], options).expect("a limiter");
    let mut next = Cycle::new(&keys);
    let mut now = 0u64;
    group.bench_function(BenchmarkId::new("limiter_apply", count), |b| {
        b.iter(|| {
            now += STEP_NS;
            limiter
                .apply_at(
                    black_box(next.next_item()),
                    black_box(now),
                    &[None],
                    Op::Check,
                )
                .map(|decision| decision.allowed)
        })
    });

    let minute: Quota = "100000/minute".parse().expect("a rate");
    let two = Limiter::new(
        &[LimiterQuota::new(quota), LimiterQuota::new(minute)],
        options,
    )
    .expect("a limiter");
    let mut next = Cycle::new(&keys);
    let mut now = 0u64;
    group.bench_function(BenchmarkId::new("limiter_two_quotas", count), |b| {
        b.iter(|| {
            now += STEP_NS;
            two.apply_at(
                black_box(next.next_item()),
                black_box(now),
                &[None],
                Op::Check,
            )
            .map(|decision| decision.allowed)
        })
    });
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
