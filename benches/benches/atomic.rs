//! The raw atomics under a cell check, one thread, uncontended: how much of `cell/check_at` is
//! the 128-bit compare-exchange on this CPU.
//!
//! Each benchmark reports `Throughput::Elements(1)`: one operation (or one load and one
//! compare-exchange) per iteration, on a word no other thread touches. Every compare-exchange
//! succeeds (the value it expects is the value the word holds) and writes a new value, as a
//! cell's admitted check does.
//!
//! # Groups
//!
//! - `atomic/load_cas`: the shape of a cell check: a relaxed load, then a
//!   `compare_exchange_weak` from the loaded value to the next (relaxed, as in `AtomicCell`).
//!   - `u128_portable`: `portable_atomic::AtomicU128`, the word of every cellgate cell. On
//!     x86_64 without `cmpxchg16b` enabled at compile time, portable-atomic detects it at run
//!     time and calls the `lock cmpxchg16b` (and, with AVX, `vmovdqa` load) routines through a
//!     function pointer; with `-C target-feature=+cmpxchg16b` (or `target-cpu=native`) they
//!     are inlined.
//!   - `u64_portable`: `portable_atomic::AtomicU64` (a plain `lock cmpxchg`, inlined).
//!   - `u64_std`: `std::sync::atomic::AtomicU64`, the reference.
//! - `atomic/load`: the load alone (for `AtomicU128` a 16-byte `vmovdqa` with AVX, otherwise a
//!   `lock cmpxchg16b` that writes the value back: a 128-bit load is a read-modify-write
//!   without AVX).
//! - `atomic/cas`: the compare-exchange alone, the expected value tracked in a local.

use std::hint::black_box;
use std::sync::atomic::AtomicU64 as StdAtomicU64;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portable_atomic::{AtomicU128, AtomicU64, Ordering};

/// A value with both 64-bit halves in use, like a packed cell state (`last_ns`, `missing`).
const START_U128: u128 = (1 << 64) | 1;

fn load_cas(c: &mut Criterion) {
    let mut group = c.benchmark_group("atomic/load_cas");
    group.throughput(Throughput::Elements(1));

    let word = AtomicU128::new(START_U128);
    group.bench_function("u128_portable", |b| {
        b.iter(|| {
            let word = black_box(&word);
            let current = word.load(Ordering::Relaxed);
            word.compare_exchange_weak(
                current,
                current.wrapping_add(START_U128),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
        })
    });
    assert_ne!(word.load(Ordering::Relaxed), START_U128);

    let word = AtomicU64::new(1);
    group.bench_function("u64_portable", |b| {
        b.iter(|| {
            let word = black_box(&word);
            let current = word.load(Ordering::Relaxed);
            word.compare_exchange_weak(
                current,
                current.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
        })
    });

    let word = StdAtomicU64::new(1);
    group.bench_function("u64_std", |b| {
        b.iter(|| {
            let word = black_box(&word);
            let current = word.load(Ordering::Relaxed);
            word.compare_exchange_weak(
                current,
                current.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
        })
    });

    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("atomic/load");
    group.throughput(Throughput::Elements(1));

    let word = AtomicU128::new(START_U128);
    group.bench_function("u128_portable", |b| {
        b.iter(|| black_box(&word).load(Ordering::Relaxed))
    });

    let word = AtomicU64::new(1);
    group.bench_function("u64_portable", |b| {
        b.iter(|| black_box(&word).load(Ordering::Relaxed))
    });

    group.finish();
}

fn cas(c: &mut Criterion) {
    let mut group = c.benchmark_group("atomic/cas");
    group.throughput(Throughput::Elements(1));

    let word = AtomicU128::new(START_U128);
    let mut current = START_U128;
    group.bench_function("u128_portable", |b| {
        b.iter(|| {
            let next = current.wrapping_add(START_U128);
            let result = black_box(&word).compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            // A weak compare-exchange may fail spuriously (never on x86_64): follow the word.
            current = match result {
                Ok(_) => next,
                Err(actual) => actual,
            };
            result
        })
    });

    let word = AtomicU64::new(1);
    let mut current: u64 = 1;
    group.bench_function("u64_portable", |b| {
        b.iter(|| {
            let next = current.wrapping_add(1);
            let result = black_box(&word).compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            current = match result {
                Ok(_) => next,
                Err(actual) => actual,
            };
            result
        })
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = load_cas, load, cas
}
criterion_main!(benches);
