//! `KeyedLimiter::check_at(key, now_ns, 1)` called as a Rust program writes it, with the key
//! an 8-byte array and the cost the constant 1 (`rust_const_args`), in a program that uses
//! the other keyed operations too (as `bench_keyed.rs` does). The compiler may fold the
//! constant key length and cost into the check, which no call through the C library can
//! get: the library is compiled before its caller. `BENCHMARKS.md` ("C ABI") reports it
//! beside the like-for-like baseline of `bench_keyed.rs`.
//!
//! `cellgate-bench-keyed-const-args KEYS ITERATIONS ROUNDS` (built with `--features bench`).

#[path = "common.rs"]
mod common;

fn main() {
    let args = common::Args::parse();
    if !args.runs("rust_const_args") {
        return;
    }
    let (keys, iterations, rounds) = (args.keys, args.iterations, args.rounds);
    let table = common::table(keys);
    let order = common::keys_in_order(keys, |key| table.check_at(key, 0, 1).is_ok());
    common::use_other_operations(&table);
    common::run(
        "rust_const_args",
        &order,
        iterations,
        rounds,
        |key, now_ns| {
            table
                .check_at(key, now_ns, 1)
                .is_ok_and(|decision| decision.allowed)
        },
    );
}
