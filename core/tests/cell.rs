//! Unit tests of the cells at their boundaries, driven by a `ManualClock` or explicit times.

use cellgate::{
    CellState, Gcra, ManualClock, Quota, QuotaError, Refill, TokenBucket, NEVER, NS_PER_DAY,
    NS_PER_MINUTE, NS_PER_SECOND,
};

fn per_second(rate: u64) -> Quota {
    Quota::per_second(rate).unwrap()
}

#[test]
fn three_per_second_is_exact_at_the_nanosecond() {
    let limiter = Gcra::new(per_second(3));
    assert!(limiter.check_at(0, 3).allowed);
    // A cost-3 request needs the whole bucket back: exactly 1 s, not one nanosecond earlier.
    let early = limiter.check_at(NS_PER_SECOND - 1, 3);
    assert!(!early.allowed);
    assert_eq!(early.retry_after_ns, 1);
    assert!(limiter.check_at(NS_PER_SECOND, 3).allowed);
}

#[test]
fn single_cells_of_three_per_second_round_up() {
    let limiter = Gcra::new(per_second(3));
    assert!(limiter.check_at(0, 3).allowed);
    // One cell every 333_333_333⅓ ns: the first is due at 333_333_334 (rounded up).
    let denied = limiter.check_at(0, 1);
    assert_eq!(denied.retry_after_ns, 333_333_334);
    assert!(!limiter.check_at(333_333_333, 1).allowed);
    assert!(limiter.check_at(333_333_334, 1).allowed);
    // The second at 666_666_667 (⅔ s rounded up), the third at exactly 1 s.
    assert!(!limiter.check_at(666_666_666, 1).allowed);
    assert!(limiter.check_at(666_666_667, 1).allowed);
    assert!(!limiter.check_at(NS_PER_SECOND - 1, 1).allowed);
    assert!(limiter.check_at(NS_PER_SECOND, 1).allowed);
}

#[test]
fn clocked_operations_read_the_clock() {
    let clock = ManualClock::new(0);
    let limiter = Gcra::with_clock(per_second(2), clock.clone());
    assert!(limiter.check(2).allowed);
    let denied = limiter.check(1);
    assert!(!denied.allowed);
    clock.advance_ns(denied.retry_after_ns - 1);
    assert!(!limiter.peek(1).allowed);
    clock.advance_ns(1);
    assert!(limiter.peek(1).allowed);
    assert!(limiter.check(1).allowed);
    assert!(!limiter.check(1).allowed);
}

#[test]
fn burst_after_long_idle_gives_no_extra_cell() {
    let limiter = Gcra::new(per_second(5));
    assert!(limiter.check_at(0, 5).allowed);
    let later = 1_000 * NS_PER_DAY;
    let full = limiter.check_at(later, 5);
    assert!(full.allowed);
    assert_eq!(full.remaining, 0);
    assert!(!limiter.check_at(later, 1).allowed);
}

#[test]
fn decisions_report_remaining_and_reset() {
    let limiter = Gcra::new(Quota::per_minute(60).unwrap().with_burst(10).unwrap());
    let first = limiter.check_at(0, 4);
    assert!(first.allowed);
    assert_eq!(first.limit, 10);
    assert_eq!(first.remaining, 6);
    assert_eq!(first.retry_after_ns, 0);
    assert_eq!(first.reset_after_ns, 4 * NS_PER_SECOND);
    let denied = limiter.check_at(0, 7);
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 6);
    assert_eq!(denied.retry_after_ns, NS_PER_SECOND);
    assert_eq!(denied.reset_after_ns, 4 * NS_PER_SECOND);
}

#[test]
fn weighted_costs_and_cost_above_burst() {
    let limiter = Gcra::new(per_second(10));
    assert!(limiter.check_at(0, 7).allowed);
    assert!(!limiter.check_at(0, 4).allowed);
    assert!(limiter.check_at(0, 3).allowed);
    let never = limiter.check_at(u64::MAX, 11);
    assert!(!never.allowed);
    assert!(never.is_never());
    assert_eq!(never.retry_after_ns, NEVER);
    // A request that can never be admitted changes nothing.
    assert_eq!(
        limiter.state().missing,
        10 * limiter.quota().emission_ticks()
    );
}

#[test]
fn cost_zero_is_a_pure_peek() {
    let limiter = Gcra::new(per_second(1));
    let before = limiter.state();
    let decision = limiter.check_at(5, 0);
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 1);
    assert_eq!(limiter.state(), before);
}

#[test]
fn denial_writes_nothing() {
    let limiter = Gcra::new(per_second(1));
    assert!(limiter.check_at(10, 1).allowed);
    let after_admit = limiter.state();
    assert!(!limiter.check_at(20, 1).allowed);
    assert!(!limiter.peek_at(30, 1).allowed);
    assert_eq!(limiter.state(), after_admit);
}

#[test]
fn force_creates_debt_then_recovers() {
    let limiter = Gcra::new(per_second(10));
    let forced = limiter.force_at(0, 25);
    assert!(!forced.allowed);
    assert_eq!(forced.remaining, 0);
    // 15 over the burst: one cost unit fits again after 16 emission intervals.
    assert_eq!(forced.retry_after_ns, 16 * NS_PER_SECOND / 10);
    assert_eq!(forced.reset_after_ns, 25 * NS_PER_SECOND / 10);
    assert!(!limiter.check_at(16 * NS_PER_SECOND / 10 - 1, 1).allowed);
    assert!(limiter.check_at(16 * NS_PER_SECOND / 10, 1).allowed);
    let full = limiter.peek_at(26 * NS_PER_SECOND / 10, 10);
    assert!(full.allowed);
    assert_eq!(full.remaining, 10);
}

#[test]
fn refund_never_exceeds_capacity() {
    let limiter = Gcra::new(per_second(4));
    assert!(limiter.check_at(0, 1).allowed);
    let refunded = limiter.refund_at(0, 100);
    assert_eq!(refunded.remaining, 4);
    assert_eq!(refunded.reset_after_ns, 0);
    assert!(limiter.check_at(0, 4).allowed);
    assert!(!limiter.check_at(0, 1).allowed);
}

#[test]
fn reset_makes_the_bucket_full() {
    let limiter = Gcra::new(per_second(4));
    let _ = limiter.force_at(0, 1_000);
    limiter.reset();
    assert_eq!(limiter.state(), CellState::FULL);
    assert_eq!(limiter.check_at(0, 4).remaining, 0);
}

#[test]
fn backward_clock_is_no_time_passing() {
    let clock = ManualClock::new(10 * NS_PER_SECOND);
    let limiter = Gcra::with_clock(per_second(2), clock.clone());
    assert!(limiter.check(1).allowed);
    // Ten seconds back: the remaining cell is still there, no extra one appears.
    clock.set_ns(0);
    let decision = limiter.check(1);
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 0);
    let denied = limiter.check(1);
    assert!(!denied.allowed);
    // The wait counts from the latest time seen, and says so from the caller's `now`.
    assert_eq!(
        denied.retry_after_ns,
        10 * NS_PER_SECOND + NS_PER_SECOND / 2
    );
}

#[test]
fn extreme_quotas() {
    // One per day.
    let daily = Gcra::new(Quota::per_day(1).unwrap());
    assert!(daily.check_at(0, 1).allowed);
    assert_eq!(daily.check_at(0, 1).retry_after_ns, NS_PER_DAY);
    assert!(daily.check_at(NS_PER_DAY, 1).allowed);

    // A billion per second: one per nanosecond.
    let fast = Gcra::new(per_second(1_000_000_000));
    assert!(fast.check_at(0, 1_000_000_000).allowed);
    assert_eq!(fast.check_at(0, 1).retry_after_ns, 1);
    assert!(fast.check_at(7, 7).allowed);

    // A huge burst.
    let burst = u64::MAX / 4;
    let huge = Gcra::new(Quota::with_parts(1, 1, burst).unwrap());
    assert!(huge.check_at(0, burst).allowed);
    assert_eq!(huge.check_at(0, 1).retry_after_ns, 1);

    // Costs near u64::MAX.
    let big = Gcra::new(Quota::with_parts(u64::MAX, 1, u64::MAX / 2).unwrap());
    assert!(big.check_at(0, u64::MAX / 2).allowed);
    assert!(big.check_at(0, u64::MAX).is_never());
    assert!(big.force_at(0, u64::MAX).retry_after_ns > 0);

    // Times near u64::MAX.
    let late = Gcra::new(per_second(1));
    assert!(late.check_at(u64::MAX - 1, 1).allowed);
    let denied = late.check_at(u64::MAX, 1);
    assert!(!denied.allowed);
    // The next cell is due after the end of representable time.
    assert_eq!(denied.retry_after_ns, NEVER);
    assert!(!late.check_at(0, 1).allowed);
}

#[test]
fn token_bucket_greedy_matches_gcra() {
    let quota = Quota::per_minute(7).unwrap().with_burst(3).unwrap();
    let gcra = Gcra::new(quota);
    let bucket = TokenBucket::new(quota);
    let mut now = 0u64;
    for step in 0..500u64 {
        now = now.wrapping_add((step * 7_919_993) % (NS_PER_MINUTE / 3));
        let cost = step % 4;
        assert_eq!(gcra.check_at(now, cost), bucket.check_at(now, cost));
    }
}

#[test]
fn token_bucket_interval_refills_in_steps() {
    let quota = Quota::per_second(10).unwrap().with_burst(15).unwrap();
    let bucket = TokenBucket::builder(quota)
        .refill(Refill::Interval)
        .build_at(0)
        .unwrap();
    assert!(bucket.check_at(0, 15).allowed);
    let denied = bucket.check_at(NS_PER_SECOND / 2, 1);
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after_ns, NS_PER_SECOND / 2);
    assert!(!bucket.check_at(NS_PER_SECOND - 1, 1).allowed);
    let at_boundary = bucket.check_at(NS_PER_SECOND, 10);
    assert!(at_boundary.allowed);
    assert_eq!(at_boundary.remaining, 0);
    // Needing 11 takes two boundaries; capped at the burst after many.
    assert_eq!(
        bucket.check_at(NS_PER_SECOND, 11).retry_after_ns,
        2 * NS_PER_SECOND
    );
    let idle = bucket.peek_at(100 * NS_PER_SECOND, 1);
    assert_eq!(idle.remaining, 15);
}

#[test]
fn token_bucket_initial_fill() {
    let quota = Quota::per_second(4).unwrap();
    let bucket = TokenBucket::builder(quota)
        .initial_tokens(1)
        .build_at(NS_PER_SECOND)
        .unwrap();
    let first = bucket.check_at(NS_PER_SECOND, 1);
    assert!(first.allowed);
    assert_eq!(first.remaining, 0);
    assert_eq!(
        bucket.check_at(NS_PER_SECOND, 1).retry_after_ns,
        NS_PER_SECOND / 4
    );
    assert_eq!(
        TokenBucket::builder(quota)
            .initial_tokens(5)
            .build_at(0)
            .err(),
        Some(QuotaError::InitialFillAboveBurst)
    );
}

#[test]
fn cells_are_shared_between_threads() {
    let limiter = Gcra::new(Quota::per_day(1000).unwrap());
    let admitted: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..1_000)
                        .filter(|_| limiter.check_at(0, 1).allowed)
                        .count() as u64
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1000);
}
