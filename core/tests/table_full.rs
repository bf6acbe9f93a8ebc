//! A full table is a decision (`apply_at` under an `OnFull` policy), never an error, and never
//! frees a live key: the flood of 100,000 new keys into `max_keys = 1000` under `1/hour`.

use cellgate::{
    KeyedLimiter, NoClock, OnFull, Op, Quota, Reason, Refill, Seed, SlotGroup, NS_PER_HOUR,
    NS_PER_SECOND,
};

fn table(max_keys: usize) -> KeyedLimiter<Box<[SlotGroup]>> {
    let quota: Quota = "1/hour".parse().unwrap();
    KeyedLimiter::with_options(quota, Refill::Greedy, max_keys, Seed::new(7, 9), NoClock)
}

fn key(index: u64) -> [u8; 8] {
    index.to_le_bytes()
}

#[test]
fn a_flood_into_a_full_table_gets_denials_that_say_why_and_the_exhausted_key_stays_denied() {
    let limiter = table(1000);
    let now_ns = 5 * NS_PER_SECOND;
    let victim = b"exhausted";
    let first = limiter.apply_at(victim, now_ns, 1, Op::Check, OnFull::Deny);
    assert!(first.decision.allowed);
    assert_eq!(first.reason, Reason::Limit);

    let (mut admitted, mut table_full) = (0u64, 0u64);
    for index in 0..100_000 {
        let answer = limiter.apply_at(key(index), now_ns, 1, Op::Check, OnFull::Deny);
        match answer.reason {
            Reason::Limit => {
                assert!(answer.decision.allowed, "a new key is a full bucket");
                admitted += 1;
            }
            Reason::TableFull => {
                let decision = answer.decision;
                assert!(!decision.allowed);
                assert_eq!(decision.remaining, 0);
                assert_eq!(decision.limit, 1);
                // Every slot near the key is live and full again within the hour.
                assert!(decision.retry_after_ns > 0 && decision.retry_after_ns <= NS_PER_HOUR);
                assert_eq!(decision.reset_after_ns, decision.retry_after_ns);
                table_full += 1;
            }
            other => panic!("unexpected reason {other:?}"),
        }
        let victim_now = limiter.apply_at(victim, now_ns, 1, Op::Check, OnFull::Deny);
        assert!(
            !victim_now.decision.allowed,
            "the flood freed the exhausted key"
        );
        assert_eq!(victim_now.reason, Reason::Limit);
    }
    let stats = limiter.stats();
    assert_eq!(admitted + table_full, 100_000);
    assert_eq!(stats.rejected_full, table_full);
    assert_eq!(stats.admitted_untracked, 0);
    assert_eq!(stats.live_keys, admitted + 1);
    assert!(table_full > 90_000, "{table_full}");
}

#[test]
fn retry_after_of_a_full_table_is_when_a_retry_can_be_placed() {
    let limiter = table(16);
    // Fill the table at staggered times so slots become idle at different times.
    let mut index = 0u64;
    let mut now_ns = 0;
    let denial = loop {
        let answer = limiter.apply_at(key(index), now_ns, 1, Op::Check, OnFull::Deny);
        if answer.reason == Reason::TableFull {
            break answer;
        }
        index += 1;
        now_ns += NS_PER_SECOND;
    };
    let retry_after_ns = denial.decision.retry_after_ns;
    // Before the reported time the same key is still refused; at it, it is placed.
    let before = limiter.apply_at(
        key(index),
        now_ns + retry_after_ns - 1,
        1,
        Op::Check,
        OnFull::Deny,
    );
    assert_eq!(before.reason, Reason::TableFull);
    let at = limiter.apply_at(
        key(index),
        now_ns + retry_after_ns,
        1,
        Op::Check,
        OnFull::Deny,
    );
    assert_eq!(at.reason, Reason::Limit);
    assert!(at.decision.allowed);
}

#[test]
fn allow_untracked_admits_counts_and_stores_nothing() {
    let limiter = table(16);
    let mut index = 0u64;
    while limiter
        .apply_at(key(index), 0, 1, Op::Check, OnFull::Deny)
        .reason
        != Reason::TableFull
    {
        index += 1;
    }
    let live = limiter.stats().live_keys;
    let untracked = limiter.apply_at(key(index), 0, 1, Op::Check, OnFull::AllowUntracked);
    assert_eq!(untracked.reason, Reason::Untracked);
    assert!(untracked.decision.allowed);
    assert_eq!(untracked.decision.remaining, 0);
    // Not stored: the same key is admitted again (fail open), and counted each time.
    let again = limiter.apply_at(key(index), 0, 1, Op::Check, OnFull::AllowUntracked);
    assert!(again.decision.allowed);
    let stats = limiter.stats();
    assert_eq!(stats.admitted_untracked, 2);
    assert_eq!(stats.live_keys, live);
    // A cost above the burst is refused on every path, full table or not.
    let never = limiter.apply_at(key(index), 0, 2, Op::Check, OnFull::AllowUntracked);
    assert!(!never.decision.allowed);
    assert!(never.decision.is_never());
    assert_eq!(never.reason, Reason::Limit);
    assert_eq!(Reason::TableFull.as_str(), "table_full");
    assert_eq!(OnFull::default(), OnFull::Deny);
}

#[test]
fn apply_at_is_the_named_operations() {
    let limiter = table(100);
    let other = table(100);
    for (now_ns, op, cost) in [
        (0, Op::Check, 1),
        (1, Op::Peek, 1),
        (2, Op::Force, 2),
        (3, Op::Refund, 1),
        (4, Op::Check, 1),
    ] {
        let via_verb = limiter
            .apply_at("k", now_ns, cost, op, OnFull::Deny)
            .decision;
        let named = match op {
            Op::Check => other.check_at("k", now_ns, cost).unwrap(),
            Op::Peek => other.peek_at("k", now_ns, cost),
            Op::Force => other.force_at("k", now_ns, cost).unwrap(),
            Op::Refund => other.refund_at("k", now_ns, cost),
            _ => unreachable!(),
        };
        assert_eq!(via_verb, named, "{op:?} at {now_ns}");
    }
    let _ = limiter.apply_at("k", 5, 0, Op::Reset, OnFull::Deny);
    other.reset_at("k", 5);
    assert_eq!(limiter.peek_at("k", 5, 1), other.peek_at("k", 5, 1));
}

/// Through core's `Limiter` (what every binding calls) a new key that finds the table full is
/// counted once: its fast path must not retry the insert (found by the Python flood test,
/// which read `rejected_full` at twice the table-full decisions).
#[test]
fn the_limiter_counts_each_refused_new_key_once() {
    use cellgate::{Limiter, LimiterOptions, LimiterQuota};
    for on_full in [OnFull::Deny, OnFull::AllowUntracked] {
        for op in [Op::Check, Op::Force] {
            let mut options = LimiterOptions::with_seed(Seed::new(7, 9));
            options.max_keys = 1000;
            options.on_full = on_full;
            let quota: Quota = "1/hour".parse().unwrap();
            let limiter = Limiter::new(&[LimiterQuota::new(quota)], options).unwrap();
            let mut refused = 0u64;
            for index in 0..20_000 {
                let decision = limiter.apply_at(&key(index), 0, &[None], op).unwrap();
                if decision.reason != Reason::Limit {
                    refused += 1;
                }
            }
            let stats = limiter.stats();
            assert!(refused > 15_000, "{refused}");
            assert_eq!(stats[0].rejected_full, refused, "{on_full:?} {op:?}");
            let untracked = if on_full == OnFull::AllowUntracked {
                refused
            } else {
                0
            };
            assert_eq!(stats[0].admitted_untracked, untracked, "{on_full:?} {op:?}");
        }
    }
}
