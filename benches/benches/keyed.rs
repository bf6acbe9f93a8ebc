//! Keyed limiters, one thread: the check of a key among many, cellgate's fixed table against
//! governor's keyed limiters (a `DashMap` of states) in the same run, so that the ratios between
//! them hold even on a noisy machine.
//!
//! Each benchmark reports `Throughput::Elements(1)`: one check per iteration. Keys are 8 bytes
//! (`cellgate_benches::key`: distinct, random-looking, like client identifiers), checked in a
//! pseudo-random order from a precomputed `Vec` that the loop walks round and round, so each
//! iteration touches a different key and, in the large tables, a different cache line. Before
//! measuring, each limiter is driven through a few thousand checks to assert that the benchmark
//! stays on the path its name says, and cellgate's table is checked to have inserted and
//! reclaimed nothing in them.
//!
//! # Groups
//!
//! - `keyed/existing/NAME/N`: the admitted check of a key already present, among `N` keys
//!   (1,000: the table fits in L2; 1,000,000: it does not fit in any cache). All `N` keys are
//!   inserted before measuring, at one instant, so none is idle and all stay present (a check
//!   of a present key never inserts or evicts). cellgate's table is built for `max_keys = N`
//!   (`N × 4/3` slots); its windows can fill before `N` keys are in, so keys that the table
//!   refuses are skipped and replaced by further keys until exactly `N` are present, and the
//!   same `N` keys are used for every peer.
//!   - `cellgate`: `KeyedLimiter::check_at(key, now, 1)`, time injected and advanced by the
//!     emission interval ([`STEP_NS`]) every iteration, so every check is admitted and written.
//!   - `cellgate_prehashed`: the same with the key hashed beforehand (`hash_key`, outside the
//!     loop) and `check_hashed_at`: the table without SipHash.
//!   - `cellgate_hugepages`: `cellgate` over a table in transparent huge pages
//!     (`KeyedLimiter::with_slots` over [`HugePages`]; the setup prints how much the kernel
//!     granted): the same check with a few dozen TLB entries covering the table instead of ten
//!     thousand 4 KiB pages.
//!   - `cellgate_monotonic`: `check(key, 1)` over `MonotonicClock` (`std::time::Instant`).
//!   - `governor_dashmap_step_clock`: `RateLimiter::dashmap_with_clock` over [`StepClock`], a
//!     non-atomic bench clock advanced by [`STEP_NS`]: governor's way of injecting time, the
//!     like-for-like peer of `cellgate`.
//!   - `governor_keyed`: governor's default keyed limiter, `RateLimiter::keyed(quota)` (a
//!     `DashMap` with std's `RandomState`, and the TSC-based `QuantaClock`), `check_key(&key)`.
//!   - `mutex_hashmap_gcra`: the naive baseline, `Mutex<HashMap<[u8; 8], Gcra>>` (std's
//!     SipHash-1-3 `RandomState`), lock, look up, `Gcra::check_at`.
//! - `keyed/new_key/NAME/N`: a key never seen before at every iteration (a flood), time
//!   advancing by the emission interval, so every key before it is idle (its bucket full again).
//!   - `cellgate`: a table for `max_keys = N`, already full of idle keys: each new key reclaims
//!     the first idle slot of its window (insertion, in a table that never grows). Asserted
//!     admitted, never `TableFull`.
//!   - `governor_dashmap_step_clock`: governor's `DashMap` grows by one entry per new key; to
//!     keep memory bounded it is emptied with `retain_recent` every `N` new keys, outside the
//!     timed region (`iter_custom`), so the figure is the insertion alone into a map of up to
//!     `N` keys.
//! - `keyed/memory/NAME/N`: the floor under `keyed/existing` for any table laid out as
//!   cellgate's (eight fingerprints in one cache line, their states in the next two): reach one
//!   of `N × 4/3` slots at random (indices precomputed), with no hash and no probing.
//!   - `slot_load_cas`: load the fingerprint and the 128-bit state (two lines), compare-exchange
//!     the state (the memory accesses of a cellgate check of a key found at its home slot).
//!   - `slot_load`: the two loads only. Without a locked instruction in the loop the misses of
//!     successive iterations can overlap; the difference to `slot_load_cas` shows how much.
//!   - `..._hugepages`: the same slots in transparent huge pages.
//! - `keyed/hash`: the hash of an 8-byte key alone: cellgate's `hash_key` (SipHash-1-3 with
//!   a 128-bit result: home slot and fingerprint), and std's `RandomState::hash_one` (the
//!   SipHash-1-3 with a 64-bit result that governor's `DashMap` and the mutex baseline use).
//!
//! Under criterion's test mode (`cargo bench -- --test`, `cargo test --benches`) the large size
//! is 10,000 instead of 1,000,000, to keep the setup quick in debug builds.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cellgate::{
    Gcra, KeyedLimiter, MonotonicClock, NoClock, Quota, Refill, Seed, SlotGroup, GROUP_SLOTS,
};
use cellgate_benches::{
    assert_path, governor_quota, key, measuring, shuffle, shuffled_keys, Cycle, HugePages,
    StepClock,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::RateLimiter;
use portable_atomic::{AtomicU128, AtomicU64, Ordering};

/// The rate of the injected-time benchmarks: cost units per second, per key.
const RATE_PER_SECOND: u32 = 1_000;
/// The emission interval of [`RATE_PER_SECOND`]: the time step per iteration.
const STEP_NS: u64 = 1_000_000_000 / RATE_PER_SECOND as u64;
/// The rate of the real-clock benchmarks: one per nanosecond, never exhausted by one thread.
const REAL_CLOCK_RATE_PER_SECOND: u32 = 1_000_000_000;
/// The burst of cellgate's real-clock table: 1,000 s of the rate. The keys are inserted with
/// half of it, so none becomes idle (reclaimable) while the others are inserted, however long
/// that takes.
const REAL_CLOCK_BURST: u64 = 1_000 * REAL_CLOCK_RATE_PER_SECOND as u64;
/// The table's secret; fixed, so every run places the keys alike.
const SEED: Seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
/// The seed of the key order.
const ORDER_SEED: u64 = 42;

/// The table sizes: 1,000 and 1,000,000 keys (10,000 in test mode, see the module docs).
fn sizes() -> [usize; 2] {
    if measuring() {
        [1_000, 1_000_000]
    } else {
        [1_000, 10_000]
    }
}

fn cellgate_quota() -> Quota {
    Quota::per_second(u64::from(RATE_PER_SECOND)).expect("a valid quota")
}

/// Inserts keys ([`key`] of 0, 1, 2, ...) into `limiter` with `insert` until `count` are
/// present, skipping those the table refuses; returns the present keys in a pseudo-random
/// order.
fn fill<S: AsRef<[cellgate::SlotGroup]>, C>(
    limiter: &KeyedLimiter<S, C>,
    count: usize,
    mut insert: impl FnMut(&[u8; 8]) -> Result<cellgate::Decision, cellgate::TableFull>,
) -> Vec<[u8; 8]> {
    let mut present = Vec::with_capacity(count);
    let mut index = 0u64;
    while present.len() < count {
        let key = key(index);
        index += 1;
        // Err(TableFull): the key's window is full of live keys; skip it.
        if let Ok(decision) = insert(&key) {
            assert!(decision.allowed, "a new key is a full bucket");
            present.push(key);
        }
        assert!(
            index < 2 * count as u64 + 1_000,
            "the table holds fewer than {count} keys"
        );
    }
    let stats = limiter.stats();
    assert_eq!(stats.live_keys, count as u64);
    assert_eq!(stats.reclaimed, 0);
    shuffle(&mut present, ORDER_SEED);
    present
}

/// Asserts that the checks so far found every key: nothing inserted, nothing reclaimed.
fn assert_untouched<S: AsRef<[cellgate::SlotGroup]>, C>(
    limiter: &KeyedLimiter<S, C>,
    count: usize,
) {
    let stats = limiter.stats();
    assert_eq!(
        (stats.live_keys, stats.reclaimed),
        (count as u64, 0),
        "the measured checks inserted keys"
    );
}

fn existing(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed/existing");
    group.throughput(Throughput::Elements(1));

    for count in sizes() {
        // cellgate, injected time; also the prehashed variant over the same table.
        let limiter =
            KeyedLimiter::with_options(cellgate_quota(), Refill::Greedy, count, SEED, NoClock);
        let keys = fill(&limiter, count, |key| limiter.check_at(key, 0, 1));
        let mut next = Cycle::new(&keys);
        let mut now = 0;
        assert_path("cellgate", true, || {
            now += STEP_NS;
            limiter.check_at(next.next_item(), now, 1).unwrap().allowed
        });
        assert_untouched(&limiter, count);
        group.bench_function(BenchmarkId::new("cellgate", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                limiter.check_at(black_box(next.next_item()), black_box(now), black_box(1))
            })
        });
        assert_untouched(&limiter, count);

        let hashes: Vec<_> = keys.iter().map(|key| limiter.hash_key(key)).collect();
        let mut next_hash = Cycle::new(&hashes);
        assert_path("cellgate_prehashed", true, || {
            now += STEP_NS;
            limiter
                .check_hashed_at(*next_hash.next_item(), now, 1)
                .unwrap()
                .allowed
        });
        group.bench_function(BenchmarkId::new("cellgate_prehashed", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                limiter.check_hashed_at(
                    black_box(*next_hash.next_item()),
                    black_box(now),
                    black_box(1),
                )
            })
        });
        assert_untouched(&limiter, count);
        let slot_count = limiter.slot_count();
        drop(hashes);
        drop(limiter);

        // cellgate, injected time, the table in huge pages.
        let slots = HugePages::new(slot_count / GROUP_SLOTS, SlotGroup::new);
        let limiter = KeyedLimiter::with_slots(
            slots.as_slice(),
            cellgate_quota(),
            Refill::Greedy,
            SEED,
            NoClock,
        )
        .expect("enough slots");
        let huge_keys = fill(&limiter, count, |key| limiter.check_at(key, 0, 1));
        report_huge_pages(&slots);
        let mut next_huge = Cycle::new(&huge_keys);
        assert_path("cellgate_hugepages", true, || {
            now += STEP_NS;
            limiter
                .check_at(next_huge.next_item(), now, 1)
                .unwrap()
                .allowed
        });
        group.bench_function(BenchmarkId::new("cellgate_hugepages", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                limiter.check_at(
                    black_box(next_huge.next_item()),
                    black_box(now),
                    black_box(1),
                )
            })
        });
        assert_untouched(&limiter, count);
        drop(slots);
        drop(huge_keys);

        // cellgate, real clock.
        let quota = Quota::per_second(u64::from(REAL_CLOCK_RATE_PER_SECOND))
            .and_then(|quota| quota.with_burst(REAL_CLOCK_BURST))
            .expect("a valid quota");
        let limiter =
            KeyedLimiter::with_options(quota, Refill::Greedy, count, SEED, MonotonicClock);
        let monotonic_keys = fill(&limiter, count, |key| {
            limiter.check(key, REAL_CLOCK_BURST / 2)
        });
        let mut next_monotonic = Cycle::new(&monotonic_keys);
        assert_path("cellgate_monotonic", true, || {
            limiter
                .check(next_monotonic.next_item(), 1)
                .unwrap()
                .allowed
        });
        group.bench_function(BenchmarkId::new("cellgate_monotonic", count), |b| {
            b.iter(|| limiter.check(black_box(next_monotonic.next_item()), black_box(1)))
        });
        assert_untouched(&limiter, count);
        drop(limiter);
        drop(monotonic_keys);

        // governor over a step clock (injected time).
        let governor =
            RateLimiter::dashmap_with_clock(governor_quota(RATE_PER_SECOND), StepClock::default());
        for key in &keys {
            assert!(governor.check_key(key).is_ok());
        }
        assert_eq!(governor.len(), count);
        let step = || governor.clock().advance_ns(black_box(STEP_NS));
        assert_path("governor_dashmap_step_clock", true, || {
            step();
            governor.check_key(next.next_item()).is_ok()
        });
        group.bench_function(
            BenchmarkId::new("governor_dashmap_step_clock", count),
            |b| {
                b.iter(|| {
                    step();
                    governor.check_key(black_box(next.next_item()))
                })
            },
        );
        assert_eq!(governor.len(), count);
        drop(governor);

        // governor's default keyed limiter: DashMap, QuantaClock.
        let governor = RateLimiter::keyed(governor_quota(REAL_CLOCK_RATE_PER_SECOND));
        for key in &keys {
            assert!(governor.check_key(key).is_ok());
        }
        assert_path("governor_keyed", true, || {
            governor.check_key(next.next_item()).is_ok()
        });
        group.bench_function(BenchmarkId::new("governor_keyed", count), |b| {
            b.iter(|| governor.check_key(black_box(next.next_item())))
        });
        assert_eq!(governor.len(), count);
        drop(governor);

        // The naive baseline: one lock around a HashMap of cells.
        let map: Mutex<HashMap<[u8; 8], Gcra>> = Mutex::new(
            keys.iter()
                .map(|key| (*key, Gcra::new(cellgate_quota())))
                .collect(),
        );
        let check = |key: &[u8; 8], now: u64| {
            map.lock()
                .unwrap()
                .get(key)
                .map(|gcra| gcra.check_at(now, 1))
        };
        assert_path("mutex_hashmap_gcra", true, || {
            now += STEP_NS;
            check(next.next_item(), now).is_some_and(|decision| decision.allowed)
        });
        group.bench_function(BenchmarkId::new("mutex_hashmap_gcra", count), |b| {
            b.iter(|| {
                now += STEP_NS;
                check(black_box(next.next_item()), black_box(now))
            })
        });
        drop(map);
    }

    group.finish();
}

/// Prints how much of a huge-page table the kernel backed with huge pages (measured mode).
fn report_huge_pages<T>(pages: &HugePages<T>) {
    if measuring() {
        eprintln!(
            "huge pages: {} KiB of a {} KiB table (mapping rounded up to 2 MiB pages)",
            pages.huge_bytes().unwrap_or(0) / 1024,
            std::mem::size_of_val(pages.as_slice()) / 1024,
        );
    }
}

/// A stand-in for cellgate's `SlotGroup` (whose fields are private), with the same layout: the
/// fingerprints of 8 slots in one cache line, then their 128-bit states in two more. 192 bytes.
#[repr(C, align(64))]
struct FloorGroup {
    fingerprints: [AtomicU64; GROUP_SLOTS],
    states: [AtomicU128; GROUP_SLOTS],
}

impl FloorGroup {
    fn new() -> Self {
        Self {
            fingerprints: std::array::from_fn(|_| AtomicU64::new(1)),
            states: std::array::from_fn(|_| AtomicU128::new(0)),
        }
    }
}

/// The fingerprint and the state of slot `index` of `groups`, as cellgate's table finds them.
fn floor_slot(groups: &[FloorGroup], index: usize) -> (&AtomicU64, &AtomicU128) {
    let group = &groups[index / GROUP_SLOTS];
    let lane = index % GROUP_SLOTS;
    (&group.fingerprints[lane], &group.states[lane])
}

/// What any table laid out as cellgate's pays to reach one slot at random, without hashing or
/// probing (a fingerprint line, then a state line): the memory floor under `keyed/existing`.
fn memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed/memory");
    group.throughput(Throughput::Elements(1));

    for count in sizes() {
        // As many slots as cellgate's table for `count` keys; `count` random ones are visited.
        let slot_count = count + count / 3;
        let mut indices: Vec<u32> = (0..slot_count as u32).collect();
        shuffle(&mut indices, ORDER_SEED);
        indices.truncate(count);
        let mut next = Cycle::new(&indices);

        let group_count = slot_count.div_ceil(GROUP_SLOTS);
        let plain: Vec<FloorGroup> = std::iter::repeat_with(FloorGroup::new)
            .take(group_count)
            .collect();
        let huge = HugePages::new(group_count, FloorGroup::new);
        report_huge_pages(&huge);
        for (name, slots) in [
            ("slot_load_cas", &plain[..]),
            ("slot_load_cas_hugepages", huge.as_slice()),
        ] {
            group.bench_function(BenchmarkId::new(name, count), |b| {
                b.iter(|| {
                    let (fingerprint, state) = floor_slot(slots, *next.next_item() as usize);
                    // The orderings of cellgate's `update_in_slot`.
                    let fingerprint_word = fingerprint.load(Ordering::Acquire);
                    let state_word = state.load(Ordering::Acquire);
                    state.compare_exchange_weak(
                        state_word,
                        state_word.wrapping_add(u128::from(fingerprint_word)),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                })
            });
        }
        for (name, slots) in [
            ("slot_load", &plain[..]),
            ("slot_load_hugepages", huge.as_slice()),
        ] {
            group.bench_function(BenchmarkId::new(name, count), |b| {
                b.iter(|| {
                    let (fingerprint, state) = floor_slot(slots, *next.next_item() as usize);
                    (
                        fingerprint.load(Ordering::Acquire),
                        state.load(Ordering::Acquire),
                    )
                })
            });
        }
    }

    group.finish();
}

/// The hash alone, over the same 8-byte keys.
fn hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed/hash");
    group.throughput(Throughput::Elements(1));
    let keys = shuffled_keys(1_000, ORDER_SEED);
    let mut next = Cycle::new(&keys);

    let limiter = KeyedLimiter::with_options(cellgate_quota(), Refill::Greedy, 16, SEED, NoClock);
    group.bench_function("cellgate_hash_key", |b| {
        b.iter(|| limiter.hash_key(black_box(next.next_item())))
    });

    let state = RandomState::new();
    group.bench_function("std_random_state", |b| {
        b.iter(|| state.hash_one(black_box(next.next_item())))
    });

    group.finish();
}

fn new_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed/new_key");
    group.throughput(Throughput::Elements(1));

    for count in sizes() {
        let limiter =
            KeyedLimiter::with_options(cellgate_quota(), Refill::Greedy, count, SEED, NoClock);
        // Fill every slot (with idle keys) first, so the measured keys always reclaim.
        let mut index = 0u64;
        let mut now = 0;
        let mut flood = || {
            index += 1;
            now += STEP_NS;
            limiter.check_at(key(index), now, 1)
        };
        for _ in 0..2 * limiter.slot_count() {
            assert!(flood().is_ok_and(|decision| decision.allowed));
        }
        assert_path("cellgate", true, || {
            flood().is_ok_and(|decision| decision.allowed)
        });
        let before = limiter.stats();
        // A filtered run (`cargo bench --bench keyed -- existing`) skips this closure: only a
        // run that measured it can be expected to have reclaimed.
        let mut measured = false;
        group.bench_function(BenchmarkId::new("cellgate", count), |b| {
            measured = true;
            b.iter(|| {
                index += 1;
                now += STEP_NS;
                limiter.check_at(black_box(key(index)), black_box(now), black_box(1))
            })
        });
        let after = limiter.stats();
        assert_eq!(after.rejected_full, before.rejected_full, "TableFull");
        assert!(
            after.reclaimed > before.reclaimed || !measuring() || !measured,
            "nothing reclaimed"
        );
        drop(limiter);

        let governor =
            RateLimiter::dashmap_with_clock(governor_quota(RATE_PER_SECOND), StepClock::default());
        let mut index = 0u64;
        let mut flood = || {
            index += 1;
            governor.clock().advance_ns(STEP_NS);
            governor.check_key(black_box(&key(index)))
        };
        assert_path("governor_dashmap_step_clock", true, || flood().is_ok());
        governor.retain_recent();
        group.bench_function(
            BenchmarkId::new("governor_dashmap_step_clock", count),
            |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let batch = left.min(count as u64);
                        let start = Instant::now();
                        for _ in 0..batch {
                            let _ = black_box(flood());
                        }
                        timed += start.elapsed();
                        left -= batch;
                        if governor.len() >= count {
                            governor.retain_recent();
                        }
                    }
                    timed
                })
            },
        );
        assert!(governor.len() <= 2 * count);
    }

    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = existing, new_key, memory, hash
}
criterion_main!(benches);
