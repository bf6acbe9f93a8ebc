//! `KeyedLimiter::check_at` in a program that uses no other keyed operation
//! (`rust_check_only`), with an 8-byte array key and the constant cost 1: the compiler then
//! inlines the whole keyed path (the hash, the probe, the decision) into the one check, with
//! the key length and the cost known, which it does not do once peek, force or refund are
//! used too (as in `bench_keyed.rs`, and in the C library, which exports them all). The
//! difference is the core's code generation, not the C ABI's; `BENCHMARKS.md` reports both.
//!
//! `cellgate-bench-keyed-check-only KEYS ITERATIONS ROUNDS` (built with `--features bench`).

#[path = "common.rs"]
mod common;

fn main() {
    let args = common::Args::parse();
    if !args.runs("rust_check_only") {
        return;
    }
    let (keys, iterations, rounds) = (args.keys, args.iterations, args.rounds);
    let table = common::table(keys);
    let order = common::keys_in_order(keys, |key| table.check_at(key, 0, 1).is_ok());
    common::run(
        "rust_check_only",
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
