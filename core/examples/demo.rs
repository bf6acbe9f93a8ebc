//! A guided tour of cellgate's decisions, over simulated time.
//!
//! Time comes from a [`ManualClock`], which moves only when told to, so the program never
//! sleeps and its output is the same on every run. Each row is one request to a limiter and
//! shows the whole [`Decision`] it got back.
//!
//! Run it with `cargo run -p cellgate --example demo` (or `make demo`).

use cellgate::{
    Clock, Decision, Gcra, ManualClock, Quota, Refill, TokenBucket, NEVER, NS_PER_SECOND,
};
use std::error::Error;

/// Nanoseconds in one millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// What the program shows, printed before the tables.
const INTRODUCTION: &[&str] = &[
    "cellgate demo: rate limiters deciding over simulated time (a ManualClock; nothing sleeps).",
    "",
    "Each row is one request. Columns:",
    "  t            clock time when the request is made",
    "  cost         units the request asks for (a weighted request costs more than 1)",
    "  result       allowed, or denied (a denial consumes nothing)",
    "  remaining    units that could still be admitted right after this decision, of the burst",
    "  retry after  for a denial: the exact wait after which this same request succeeds",
    "               (one nanosecond earlier it would not); never if it exceeds the burst",
    "  reset after  time until the bucket is completely full again",
];

fn main() -> Result<(), Box<dyn Error>> {
    for line in INTRODUCTION {
        println!("{line}");
    }

    gcra_tour()?;
    interval_bucket_tour()?;
    Ok(())
}

/// GCRA: 5 per second (one unit every 200 ms, refilled continuously), at most 3 at once.
fn gcra_tour() -> Result<(), Box<dyn Error>> {
    let quota = Quota::per_second(5)?.with_burst(3)?;
    let clock = ManualClock::new(0);
    let limiter = Gcra::with_clock(quota, clock.clone());

    section(&format!(
        "1. GCRA, quota {quota}: one unit refills every {}, continuously; at most {} at once",
        ms(NS_PER_SECOND / quota.rate_cost()),
        quota.burst_cost()
    ));
    let mut table = Table::new();

    for nth in ["1st", "2nd", "3rd"] {
        table.row(
            &clock,
            &format!("burst: {nth} request at once"),
            1,
            limiter.check(1),
        );
    }
    let denied = limiter.check(1);
    table.row(&clock, "4th request: the burst is used up", 1, denied);

    // Waiting one nanosecond less than `retry_after` is not enough...
    clock.advance_ns(denied.retry_after_ns.saturating_sub(1));
    table.row(&clock, "retry 1 ns before retry_after", 1, limiter.check(1));
    // ...and waiting exactly `retry_after` is.
    clock.advance_ns(1);
    table.row(&clock, "retry exactly at retry_after", 1, limiter.check(1));

    let weighted = limiter.check(3);
    table.row(&clock, "weighted request (cost 3)", 3, weighted);
    clock.advance_ns(weighted.retry_after_ns);
    table.row(
        &clock,
        "same request after its retry_after",
        3,
        limiter.check(3),
    );

    table.row(
        &clock,
        "cost above the burst: can never fit",
        4,
        limiter.check(4),
    );

    let reset_after = limiter.peek(0).reset_after_ns;
    clock.advance_ns(reset_after);
    table.row(
        &clock,
        "peek (cost 0) after reset_after",
        0,
        limiter.peek(0),
    );
    table.row(&clock, "the full burst again", 3, limiter.check(3));
    Ok(())
}

/// Token bucket with interval refill: 5 tokens at every whole second, starting empty.
fn interval_bucket_tour() -> Result<(), Box<dyn Error>> {
    let quota = Quota::per_second(5)?;
    let clock = ManualClock::new(0);
    let bucket = TokenBucket::builder(quota)
        .refill(Refill::Interval)
        .initial_tokens(0)
        .build_with_clock(clock.clone())?;

    section(&format!(
        "2. Token bucket, quota {quota}, interval refill: all 5 tokens arrive at each whole \
         second; starts empty"
    ));
    let mut table = Table::new();

    table.row(&clock, "empty bucket", 1, bucket.check(1));
    clock.advance_ns(500 * NS_PER_MS);
    table.row(
        &clock,
        "half a second in: no partial refill",
        1,
        bucket.check(1),
    );
    clock.advance_ns(500 * NS_PER_MS);
    table.row(
        &clock,
        "at the 1 s boundary: 5 tokens arrive",
        2,
        bucket.check(2),
    );
    table.row(&clock, "take the rest", 3, bucket.check(3));
    let denied = bucket.check(1);
    table.row(&clock, "empty again: wait for the next boundary", 1, denied);
    clock.advance_ns(denied.retry_after_ns.saturating_sub(1));
    table.row(&clock, "1 ns before the 2 s boundary", 1, bucket.check(1));
    clock.advance_ns(1);
    table.row(&clock, "at the 2 s boundary", 5, bucket.check(5));
    Ok(())
}

fn section(title: &str) {
    println!();
    println!("{title}");
}

/// Prints one decision per row under a header, numbering the rows.
struct Table {
    rows: usize,
}

impl Table {
    fn new() -> Self {
        println!(
            "  {:>2}  {:<40} {:>15} {:>4}  {:<7} {:>9}  {:>15}  {:>13}",
            "#", "step", "t", "cost", "result", "remaining", "retry after", "reset after"
        );
        Self { rows: 0 }
    }

    fn row(&mut self, clock: &ManualClock, step: &str, cost: u64, decision: Decision) {
        self.rows += 1;
        let result = if decision.allowed {
            "allowed"
        } else {
            "DENIED"
        };
        let retry = if decision.allowed {
            "-".to_string()
        } else {
            ms(decision.retry_after_ns)
        };
        println!(
            "  {:>2}  {:<40} {:>15} {:>4}  {:<7} {:>5} / {:<1}  {:>15}  {:>13}",
            self.rows,
            step,
            ms(clock.now_ns()),
            cost,
            result,
            decision.remaining,
            decision.limit,
            retry,
            ms(decision.reset_after_ns),
        );
    }
}

/// Nanoseconds as milliseconds, exact: `200 ms`, `199.999999 ms`, or `never`.
fn ms(ns: u64) -> String {
    if ns == NEVER {
        return "never".to_string();
    }
    let (whole, fraction) = (ns / NS_PER_MS, ns % NS_PER_MS);
    if fraction == 0 {
        format!("{whole} ms")
    } else {
        let digits = format!("{fraction:06}");
        format!("{whole}.{} ms", digits.trim_end_matches('0'))
    }
}
