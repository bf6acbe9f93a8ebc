//! The Rust side of `make bench-c`: the loop of `bench_keyed.c` on the Rust call,
//! `KeyedLimiter::check_at` (`rust`), and on the exported `cg_keyed_limiter_check` called from
//! Rust (`rust_via_c_abi`: the C ABI's wrapper without a C caller).
//!
//! This program also uses the keyed limiter's other operations (peek, force, refund, reset),
//! as the C library does and as most services do: that decides how the compiler specializes
//! the check (see `bench_keyed_check_only.rs` for a program that uses nothing but `check_at`).
//!
//! The baseline gets the key length and the cost at run time, as the C library does (it is
//! compiled before its caller, so it cannot know them): the compiler cannot fold the loop's
//! constant key length (8) and cost (1) into the Rust call, which it does otherwise (about 20
//! instructions per check; `bench_keyed_const_args.rs` measures that call).
//!
//! `cellgate-bench-keyed [rust|rust_via_c_abi] KEYS ITERATIONS ROUNDS` (built with
//! `--features bench`).

#[path = "common.rs"]
mod common;

use cellgate::NS_PER_SECOND;
use cellgate_ffi::{
    cg_decision, cg_keyed_limiter, cg_keyed_limiter_check, cg_keyed_limiter_free,
    cg_keyed_limiter_new, cg_quota, cg_status, CG_REFILL_GREEDY,
};
use std::hint::black_box;

fn main() {
    let args = common::Args::parse();
    let (keys, iterations, rounds) = (args.keys, args.iterations, args.rounds);
    if args.runs("rust") {
        rust(keys, iterations, rounds);
    }
    if args.runs("rust_via_c_abi") {
        rust_via_c_abi(keys, iterations, rounds);
    }
}

fn rust(keys: usize, iterations: u64, rounds: u32) {
    let table = common::table(keys);
    // The key length and the cost, unknown to the compiler as they are to the C library;
    // made opaque once, so that the loop pays nothing for it (the C loop passes constants).
    let (key_len, cost) = black_box((8usize, 1u64));
    let order = common::keys_in_order(keys, |key| table.check_at(&key[..key_len], 0, cost).is_ok());
    common::use_other_operations(&table);
    common::run("rust", &order, iterations, rounds, |key, now_ns| {
        table
            .check_at(&key[..key_len], now_ns, cost)
            .is_ok_and(|decision| decision.allowed)
    });
}

fn rust_via_c_abi(keys: usize, iterations: u64, rounds: u32) {
    let mut limiter: *mut cg_keyed_limiter = std::ptr::null_mut();
    let c_quota = cg_quota {
        rate_cost: 1000,
        period_ns: NS_PER_SECOND,
        burst_cost: 1000,
    };
    // SAFETY: `limiter` is a valid place for the handle; no clock.
    let status = unsafe {
        cg_keyed_limiter_new(
            c_quota,
            CG_REFILL_GREEDY,
            keys,
            std::ptr::null(),
            &mut limiter,
        )
    };
    assert_eq!(status, cg_status::Ok);
    let mut decision = cg_decision::default();
    let order = common::keys_in_order(keys, |key| {
        // SAFETY: a live limiter, 8 readable key bytes, a writable decision.
        let status = unsafe {
            cg_keyed_limiter_check(limiter, key.as_ptr(), key.len(), 0, 1, &mut decision)
        };
        status == cg_status::Ok
    });
    common::run(
        "rust_via_c_abi",
        &order,
        iterations,
        rounds,
        |key, now_ns| {
            // SAFETY: as above.
            let status = unsafe {
                cg_keyed_limiter_check(limiter, key.as_ptr(), key.len(), now_ns, 1, &mut decision)
            };
            status == cg_status::Ok && decision.allowed
        },
    );
    // SAFETY: the limiter is live and no longer used.
    unsafe { cg_keyed_limiter_free(limiter) };
}
