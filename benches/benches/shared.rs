//! Host-wide tables against in-process ones, one thread, in the same run: the cost of a check
//! through a shared mapping (`cellgate-host`) and of the host-wide clock.
//!
//! Each benchmark reports `Throughput::Elements(1)`.
//!
//! - `shared/existing/NAME/N`: the admitted check of a key already present among `N` keys
//!   (1,000 and 100,000; 10,000 in test mode), injected time advanced by the emission interval
//!   every iteration (as `keyed/existing/cellgate`), keys in a pseudo-random order.
//!   - `in_process`: `KeyedLimiter::check_at` over a table in this process's heap.
//!   - `shared`: the same call on `SharedTable::limiter()`, the same quota and `max_keys`, its
//!     slots in a file mapping under `/dev/shm` (the temporary directory where there is none),
//!     with claim recovery on.
//!   - `in_process_table_slots`: `cellgate_host::in_process_limiter`, an in-process table of
//!     the shared one's type (`KeyedLimiter<TableSlots, _>`, slots in this process's heap):
//!     what a binding holding one type for both would check in process.
//! - `shared/clocked/NAME/1000`: the same with each limiter's own clock, `check(key, 1)`:
//!   `in_process_monotonic` over core's `MonotonicClock` (`Instant`), `shared_host` over
//!   `HostClock` (`clock_gettime(CLOCK_MONOTONIC)`).
//! - `shared/limiter/NAME/N`: core's `Limiter::apply_at(key, now, [None], Op::Check)` (what
//!   every binding calls) over one quota, `N` keys, injected time: `in_process`
//!   (`Limiter::new`) and `shared` (`SharedTable::open_limiter`).
//! - Before measuring `shared/existing` and `shared/limiter`, each size also prints the ratio
//!   shared / in-process from [`ALTERNATING_ROUNDS`] rounds that alternate the two (a batch of
//!   one, then of the other): on a noisy machine the quartiles of the per-round ratio are
//!   steadier than two criterion figures measured seconds apart.
//! - `shared/clock/NAME`: one reading: `monotonic` (`MonotonicClock::now_ns`, an `Instant`
//!   since a process-wide epoch) and `host` (`HostClock::now_ns`).

use std::hint::black_box;
use std::path::PathBuf;

use cellgate::{Clock, KeyedLimiter, MonotonicClock, NoClock, Quota, Refill, Seed};
use cellgate_benches::{assert_path, key, measuring, shuffle, Cycle};
use cellgate_host::{HostClock, OpenOptions, SharedTable, TableConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Cost units per second, per key, of the injected-time benchmarks.
const RATE_PER_SECOND: u64 = 1_000;
/// The emission interval: the time step per iteration.
const STEP_NS: u64 = 1_000_000_000 / RATE_PER_SECOND;
/// The in-process table's secret (the shared one draws its own at creation).
const SEED: Seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

/// Rounds of [`alternating_ratio`].
const ALTERNATING_ROUNDS: usize = 41;
/// Calls per batch of [`alternating_ratio`].
const ALTERNATING_BATCH: u32 = 100_000;

/// Times batches of `in_process` and `shared` alternately and prints the quartiles of the
/// per-round ratio shared / in-process (only when measuring, not in test mode).
fn alternating_ratio(name: &str, mut in_process: impl FnMut(), mut shared: impl FnMut()) {
    if !measuring() {
        return;
    }
    let batch = |f: &mut dyn FnMut()| {
        let started = std::time::Instant::now();
        for _ in 0..ALTERNATING_BATCH {
            f();
        }
        started.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..ALTERNATING_ROUNDS)
        .map(|round| {
            // Alternate which goes first, so that neither always follows the other.
            if round % 2 == 0 {
                let a = batch(&mut in_process);
                batch(&mut shared) / a
            } else {
                let b = batch(&mut shared);
                b / batch(&mut in_process)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: usize| ratios[(ratios.len() - 1) * q / 4];
    println!(
        "{name}: shared / in-process over {ALTERNATING_ROUNDS} alternating rounds: \
         median {:.3}, quartiles {:.3} .. {:.3}",
        at(2),
        at(1),
        at(3)
    );
}

fn sizes() -> [usize; 2] {
    if measuring() {
        [1_000, 100_000]
    } else {
        [1_000, 10_000]
    }
}

/// A fresh path for a bench table, removed first.
fn table_path(name: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("cellgate-bench-{}-{name}", std::process::id()));
    SharedTable::remove(&path).expect("remove an old bench table");
    path
}

/// Inserts keys with `insert` until `count` are present (a key `insert` reports refused by
/// some limiter is skipped); returns them in a pseudo-random order.
fn fill(count: usize, mut insert: impl FnMut(&[u8; 8]) -> bool) -> Vec<[u8; 8]> {
    let mut present = Vec::with_capacity(count);
    let mut index = 0;
    while present.len() < count {
        let candidate = key(index);
        index += 1;
        if insert(&candidate) {
            present.push(candidate);
        }
        assert!(
            index < 2 * count as u64 + 1_000,
            "the tables hold fewer than {count} keys"
        );
    }
    shuffle(&mut present, 42);
    present
}

fn existing(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/existing");
    group.throughput(Throughput::Elements(1));
    let quota = Quota::per_second(RATE_PER_SECOND).expect("a valid quota");
    for count in sizes() {
        let local = KeyedLimiter::with_options(quota, Refill::Greedy, count, SEED, NoClock);
        let path = table_path(&format!("existing-{count}"));
        let config = TableConfig::limiter(quota, Refill::Greedy, count).expect("a valid config");
        let shared = SharedTable::open(&path, &config, &OpenOptions::new())
            .expect("open the bench table")
            .limiter()
            .expect("a single-quota table");
        let either = cellgate_host::in_process_limiter(quota, Refill::Greedy, count, SEED, NoClock)
            .expect("allocate the table");
        // Every key goes to every table (`&`, not `&&`), so each holds the keys it accepts.
        let keys = fill(count, |key| {
            local.check_at(key, 0, 1).is_ok()
                & shared.check_at(key, 0, 1).is_ok()
                & either.check_at(key, 0, 1).is_ok()
        });
        let live_keys = shared.stats().live_keys;

        {
            let (mut a, mut b) = (Cycle::new(&keys), Cycle::new(&keys));
            let (mut now_a, mut now_b) = (0, 0);
            alternating_ratio(
                &format!("shared/existing/{count}"),
                || {
                    now_a += STEP_NS;
                    let _ = black_box(local.check_at(black_box(a.next_item()), now_a, 1));
                },
                || {
                    now_b += STEP_NS;
                    let _ = black_box(shared.check_at(black_box(b.next_item()), now_b, 1));
                },
            );
        }
        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("in_process", true, || {
            now += STEP_NS;
            local.check_at(next.next_item(), now, 1).unwrap().allowed
        });
        group.bench_function(BenchmarkId::new("in_process", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                local.check_at(black_box(next.next_item()), black_box(now), black_box(1))
            })
        });

        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("in_process_table_slots", true, || {
            now += STEP_NS;
            either.check_at(next.next_item(), now, 1).unwrap().allowed
        });
        group.bench_function(BenchmarkId::new("in_process_table_slots", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                either.check_at(black_box(next.next_item()), black_box(now), black_box(1))
            })
        });
        drop(either);

        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("shared", true, || {
            now += STEP_NS;
            shared.check_at(next.next_item(), now, 1).unwrap().allowed
        });
        group.bench_function(BenchmarkId::new("shared", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                shared.check_at(black_box(next.next_item()), black_box(now), black_box(1))
            })
        });
        // Every measured check found its key: nothing inserted, nothing recovered.
        assert_eq!(shared.stats().live_keys, live_keys);
        assert_eq!(shared.recovered_claims(), 0);
        drop(shared);
        SharedTable::remove(&path).expect("remove the bench table");
    }
    group.finish();
}

fn limiter(c: &mut Criterion) {
    use cellgate::{Limiter, LimiterOptions, LimiterQuota, Op};
    let mut group = c.benchmark_group("shared/limiter");
    group.throughput(Throughput::Elements(1));
    let quota = Quota::per_second(RATE_PER_SECOND).expect("a valid quota");
    let quotas = [LimiterQuota::new(quota)];
    for count in sizes() {
        let options = LimiterOptions {
            max_keys: count,
            ..LimiterOptions::with_seed(SEED)
        };
        let local = Limiter::new(&quotas, options).expect("a valid limiter");
        let path = table_path(&format!("limiter-{count}"));
        let shared = SharedTable::open_limiter(&path, &quotas, options, &OpenOptions::new())
            .expect("open the bench table");
        let local_check = |key: &[u8], now_ns| {
            local
                .apply_at(key, now_ns, &[None], Op::Check)
                .expect("costs")
                .allowed
        };
        let shared_check = |key: &[u8], now_ns| {
            shared
                .apply_at(key, now_ns, &[None], Op::Check)
                .expect("costs")
                .allowed
        };
        // Every key goes to both (`&`, not `&&`); a full table is an answer, not an error,
        // so a key either table has no room for shows as denied and is skipped.
        let keys = fill(count, |key| local_check(key, 0) & shared_check(key, 0));
        {
            let (mut a, mut b) = (Cycle::new(&keys), Cycle::new(&keys));
            let (mut now_a, mut now_b) = (0, 0);
            alternating_ratio(
                &format!("shared/limiter/{count}"),
                || {
                    now_a += STEP_NS;
                    let _ = black_box(local_check(black_box(a.next_item()), now_a));
                },
                || {
                    now_b += STEP_NS;
                    let _ = black_box(shared_check(black_box(b.next_item()), now_b));
                },
            );
        }
        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("in_process", true, || {
            now += STEP_NS;
            local_check(next.next_item(), now)
        });
        group.bench_function(BenchmarkId::new("in_process", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                local.apply_at(
                    black_box(next.next_item()),
                    black_box(now),
                    &[None],
                    Op::Check,
                )
            })
        });
        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("shared", true, || {
            now += STEP_NS;
            shared_check(next.next_item(), now)
        });
        group.bench_function(BenchmarkId::new("shared", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                shared.apply_at(
                    black_box(next.next_item()),
                    black_box(now),
                    &[None],
                    Op::Check,
                )
            })
        });
        drop(shared);
        SharedTable::remove(&path).expect("remove the bench table");
    }
    group.finish();
}

fn clocked(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/clocked");
    group.throughput(Throughput::Elements(1));
    // One per nanosecond, a burst of 1,000 s: never exhausted by one thread.
    let quota = Quota::per_second(1_000_000_000)
        .and_then(|quota| quota.with_burst(1_000_000_000_000))
        .expect("a valid quota");
    let count = 1_000;
    let local = KeyedLimiter::with_options(quota, Refill::Greedy, count, SEED, MonotonicClock);
    let path = table_path("clocked");
    let config = TableConfig::limiter(quota, Refill::Greedy, count).expect("a valid config");
    let shared = SharedTable::open(&path, &config, &OpenOptions::new())
        .expect("open the bench table")
        .limiter()
        .expect("a single-quota table");
    let now_ns = HostClock.now_ns();
    let keys = fill(count, |key| {
        local.check_at(key, now_ns, 1).is_ok() & shared.check_at(key, now_ns, 1).is_ok()
    });
    let mut next = Cycle::new(&keys);
    assert_path("in_process_monotonic", true, || {
        local.check(next.next_item(), 1).unwrap().allowed
    });
    group.bench_function(BenchmarkId::new("in_process_monotonic", count), |b| {
        b.iter(|| local.check(black_box(next.next_item()), black_box(1)))
    });
    let mut next = Cycle::new(&keys);
    assert_path("shared_host", true, || {
        shared.check(next.next_item(), 1).unwrap().allowed
    });
    group.bench_function(BenchmarkId::new("shared_host", count), |b| {
        b.iter(|| shared.check(black_box(next.next_item()), black_box(1)))
    });
    group.finish();
    drop(shared);
    SharedTable::remove(&path).expect("remove the bench table");
}

fn clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("shared/clock");
    group.throughput(Throughput::Elements(1));
    group.bench_function("monotonic", |b| {
        b.iter(|| black_box(MonotonicClock.now_ns()))
    });
    group.bench_function("host", |b| b.iter(|| black_box(HostClock.now_ns())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = existing, limiter, clocked, clock
}
criterion_main!(benches);
