//! Contention: 1, 2, … threads checking one shared limiter at once, on one hot key and on many
//! keys; cellgate against governor and a mutex-protected baseline in the same run.
//!
//! # How a figure is taken
//!
//! Every benchmark runs `T` threads (`T` in [`thread_counts`]: 1, 2, the machine's parallelism
//! `N` and `2N`, deduplicated; or the list in the `BENCH_THREADS` environment variable, e.g.
//! `BENCH_THREADS=1,2,4,8,16`). For a sample of `iters` iterations each thread makes `iters`
//! checks; the threads start together at a barrier, and the sample's time runs from the
//! barrier to the last thread's end (`iter_custom`; the threads are spawned before the barrier,
//! outside the timed region). Each benchmark reports `Throughput::Elements(T)`: criterion's
//! time is that of one *round* of `T` simultaneous checks, and its throughput the aggregate
//! checks per second of all threads. Divide the time by `T` for the aggregate cost per check.
//!
//! Every check is admitted (asserted before measuring, and counted while measuring: a
//! benchmark whose threads saw a denial panics), so every check writes: the contended path.
//!
//! # Groups
//!
//! - `contention/hot_key/NAME/T`: all threads on one bucket.
//!   - Real clock, a quota of 10^9 per second (never exhausted by these threads):
//!     - `cellgate_gcra`: `Gcra<MonotonicClock>::check(1)` (one clock read, one load, one
//!       compare-exchange; retried on conflict).
//!     - `governor_direct`: governor's `RateLimiter::direct` (its default, TSC-based
//!       `QuantaClock`; an `AtomicU64` compare-exchange loop).
//!     - `mutex_rule`: the baseline: `Mutex<CellState>`, locked around the same decision
//!       function (`Rule::decide`) and the same clock read: a lock instead of a
//!       compare-exchange.
//!     - `cellgate_keyed`, `governor_keyed`, `mutex_hashmap`: one key in a keyed limiter:
//!       cellgate's table (`KeyedLimiter::check`, `MonotonicClock`), governor's default keyed
//!       limiter (a `DashMap`, `QuantaClock`), and `Mutex<HashMap<[u8; 8], Gcra>>`.
//!   - Fixed time, no clock: the contended update alone. The quota is 1 per second with the
//!     largest burst each library takes (cellgate: `MAX_CAPACITY_TICKS / 10^9`, about 9.2 × 10^9;
//!     governor: `u32::MAX`), and time stands still, so every check is admitted from the burst:
//!     - `cellgate_gcra_fixed_time`: `Gcra::check_at(0, 1)`.
//!     - `governor_direct_fixed_time`: governor over its `FakeRelativeClock`, never advanced.
//!     - `mutex_rule_fixed_time`: `Mutex<CellState>` with `Rule::decide` at time 0.
//! - `contention/many_keys/NAME/T`: 1,000 keys, present before measuring; each thread walks
//!   all of them in its own pseudo-random order (so threads rarely meet on a key), with the
//!   real clock and the quota of 10^9 per second per key: `cellgate_keyed`,
//!   `governor_keyed`, `mutex_hashmap` as above.
//!
//! The machine the figures in `BENCHMARKS.md` come from has 2 vCPUs: `T = 4` there is
//! oversubscribed, which is where a lock's holder gets preempted and a lock-free loop does not
//! care.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use cellgate::{
    CellState, Clock, Gcra, KeyedLimiter, MonotonicClock, Op, Quota, Refill, Rule, Seed,
    MAX_CAPACITY_TICKS, NS_PER_SECOND,
};
use cellgate_benches::{governor_quota, shuffled_keys, PRECHECKS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::clock::FakeRelativeClock;
use governor::RateLimiter;

/// The real-clock rate: one per nanosecond, more than any number of threads here consumes.
const REAL_CLOCK_RATE_PER_SECOND: u32 = 1_000_000_000;
/// Keys of the `many_keys` group.
const MANY_KEYS: usize = 1_000;
/// The table's secret; fixed, so every run places the keys alike.
const SEED: Seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);

/// The thread counts to measure: `BENCH_THREADS` (comma-separated), or 1, 2, N and 2N where N
/// is the available parallelism.
fn thread_counts() -> Vec<usize> {
    if let Ok(list) = std::env::var("BENCH_THREADS") {
        let counts: Vec<usize> = list
            .split(',')
            .map(|count| {
                count
                    .trim()
                    .parse()
                    .expect("BENCH_THREADS: comma-separated counts")
            })
            .collect();
        assert!(
            counts.iter().all(|&count| count > 0),
            "BENCH_THREADS: counts above 0"
        );
        return counts;
    }
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2, parallelism, 2 * parallelism];
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Runs `check` `iters` times on each of `threads` threads started together, and returns the
/// time from the start to the last thread's end. `check(thread, i)` returns whether the check
/// was admitted; any denial panics after the sample (the benchmark left its path).
fn run_threads(
    threads: usize,
    iters: u64,
    check: &(impl Fn(usize, u64) -> bool + Sync),
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let denied = AtomicU64::new(0);
    let elapsed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let barrier = &barrier;
                let denied = &denied;
                scope.spawn(move || {
                    barrier.wait();
                    let mut local_denied = 0u64;
                    for i in 0..iters {
                        if !check(thread, i) {
                            local_denied += 1;
                        }
                    }
                    // Relaxed: a count read after the threads are joined.
                    denied.fetch_add(local_denied, Ordering::Relaxed);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for worker in workers {
            worker.join().expect("a benchmark thread panicked");
        }
        start.elapsed()
    });
    assert_eq!(
        denied.load(Ordering::Relaxed),
        0,
        "a measured check was denied"
    );
    elapsed
}

/// Registers `NAME/T` for every thread count: a fresh limiter from `setup` for each count,
/// whose path is asserted on all threads before measuring.
fn bench_threads<L: Sync>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    setup: impl Fn() -> L,
    check: impl Fn(&L, usize, u64) -> bool + Sync,
) {
    for threads in thread_counts() {
        let limiter = setup();
        let check = |thread, i| check(&limiter, thread, i);
        // The path: every check admitted (run_threads panics on a denial).
        run_threads(threads, u64::from(PRECHECKS), &check);
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(BenchmarkId::new(name, threads), |b| {
            b.iter_custom(|iters| run_threads(threads, iters, &check))
        });
    }
}

fn real_clock_quota() -> Quota {
    Quota::per_second(u64::from(REAL_CLOCK_RATE_PER_SECOND)).expect("a valid quota")
}

/// A decision under a lock: the baseline every lock-free limiter has to beat.
struct MutexRule {
    state: Mutex<CellState>,
    rule: Rule,
}

impl MutexRule {
    fn new(quota: Quota) -> Self {
        Self {
            state: Mutex::new(CellState::FULL),
            rule: Rule::new(quota, Refill::Greedy),
        }
    }

    fn check_at(&self, now_ns: u64, cost: u64) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        let outcome = self.rule.decide(*state, now_ns, cost, Op::Check);
        if let Some(next) = outcome.next {
            *state = next;
        }
        outcome.decision.allowed
    }
}

/// `Mutex<HashMap<key, Gcra>>`: the naive keyed baseline (std's SipHash-1-3 `RandomState`).
struct MutexHashMap {
    map: Mutex<HashMap<[u8; 8], Gcra>>,
    quota: Quota,
}

impl MutexHashMap {
    fn new(quota: Quota) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            quota,
        }
    }

    fn check_at(&self, key: &[u8; 8], now_ns: u64, cost: u64) -> bool {
        let mut map = self.map.lock().expect("not poisoned");
        let cell = map.entry(*key).or_insert_with(|| Gcra::new(self.quota));
        cell.check_at(now_ns, cost).allowed
    }
}

fn hot_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention/hot_key");
    let quota = real_clock_quota();
    let peer_quota = governor_quota(REAL_CLOCK_RATE_PER_SECOND);
    let hot = [0x5au8; 8];

    bench_threads(
        &mut group,
        "cellgate_gcra",
        || Gcra::with_clock(quota, MonotonicClock),
        |gcra, _, _| gcra.check(1).allowed,
    );
    bench_threads(
        &mut group,
        "governor_direct",
        || RateLimiter::direct(peer_quota),
        |governor, _, _| governor.check().is_ok(),
    );
    bench_threads(
        &mut group,
        "mutex_rule",
        || MutexRule::new(quota),
        |mutex, _, _| mutex.check_at(MonotonicClock.now_ns(), 1),
    );
    bench_threads(
        &mut group,
        "cellgate_keyed",
        || KeyedLimiter::with_options(quota, Refill::Greedy, 16, SEED, MonotonicClock),
        |keyed, _, _| keyed.check(hot, 1).expect("room for one key").allowed,
    );
    bench_threads(
        &mut group,
        "governor_keyed",
        || RateLimiter::keyed(peer_quota),
        |governor, _, _| governor.check_key(&hot).is_ok(),
    );
    bench_threads(
        &mut group,
        "mutex_hashmap",
        || MutexHashMap::new(quota),
        |map, _, _| map.check_at(&hot, MonotonicClock.now_ns(), 1),
    );

    // Fixed time: the largest bursts, time standing still.
    let burst = MAX_CAPACITY_TICKS / NS_PER_SECOND;
    let fixed = Quota::per_second(1)
        .and_then(|quota| quota.with_burst(burst))
        .expect("the largest burst fits");
    bench_threads(
        &mut group,
        "cellgate_gcra_fixed_time",
        || Gcra::new(fixed),
        |gcra, _, _| gcra.check_at(0, 1).allowed,
    );
    bench_threads(
        &mut group,
        "governor_direct_fixed_time",
        || {
            RateLimiter::direct_with_clock(
                governor::Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::MAX),
                FakeRelativeClock::default(),
            )
        },
        |governor, _, _| governor.check().is_ok(),
    );
    bench_threads(
        &mut group,
        "mutex_rule_fixed_time",
        || MutexRule::new(fixed),
        |mutex, _, _| mutex.check_at(0, 1),
    );

    group.finish();
}

fn many_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention/many_keys");
    let quota = real_clock_quota();
    let max_threads = thread_counts().into_iter().max().unwrap_or(1);
    // The same keys in one order per thread; check `i` of a thread takes key `i % MANY_KEYS`
    // of its order.
    let orders: Vec<Vec<[u8; 8]>> = (0..max_threads)
        .map(|thread| shuffled_keys(MANY_KEYS, 1_000 + thread as u64))
        .collect();
    let key = |thread: usize, i: u64| &orders[thread][(i % MANY_KEYS as u64) as usize];

    bench_threads(
        &mut group,
        "cellgate_keyed",
        || {
            // Room for every key: no window fills, every key is present before measuring.
            let keyed = KeyedLimiter::with_options(
                quota,
                Refill::Greedy,
                2 * MANY_KEYS,
                SEED,
                MonotonicClock,
            );
            for key in &orders[0] {
                assert!(keyed.check(key, 1).expect("room for every key").allowed);
            }
            keyed
        },
        |keyed, thread, i| {
            keyed
                .check(key(thread, i), 1)
                .expect("a present key")
                .allowed
        },
    );
    bench_threads(
        &mut group,
        "governor_keyed",
        || {
            let governor = RateLimiter::keyed(governor_quota(REAL_CLOCK_RATE_PER_SECOND));
            for key in &orders[0] {
                assert!(governor.check_key(key).is_ok());
            }
            governor
        },
        |governor, thread, i| governor.check_key(key(thread, i)).is_ok(),
    );
    bench_threads(
        &mut group,
        "mutex_hashmap",
        || {
            let map = MutexHashMap::new(quota);
            for key in &orders[0] {
                assert!(map.check_at(key, MonotonicClock.now_ns(), 1));
            }
            map
        },
        |map, thread, i| map.check_at(key(thread, i), MonotonicClock.now_ns(), 1),
    );

    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = hot_key, many_keys
}
criterion_main!(benches);
