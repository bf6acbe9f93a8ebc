//! Policies: all-or-nothing over several quotas, dimensions, reserve and settle.

use cellgate::{
    Gcra, KeyedPolicy, NoClock, Policy, PolicyEntry, PolicyError, Quota, Seed, NS_PER_SECOND,
};
use proptest::prelude::*;

fn entry(name: &'static str, quota: Quota, dimension: usize) -> PolicyEntry<&'static str> {
    PolicyEntry {
        name,
        quota,
        dimension,
    }
}

fn burst_and_daily() -> Policy {
    Policy::new([
        entry("burst", Quota::per_second(10).unwrap(), 0),
        entry("daily", Quota::per_day(25).unwrap(), 0),
    ])
    .unwrap()
}

#[test]
fn every_quota_or_none_is_charged() {
    let policy = burst_and_daily();
    assert!(policy.check_at(0, &[10]).unwrap().allowed);
    // The burst is empty: refused, and the daily quota is not charged either.
    let refused = policy.check_at(0, &[1]).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.binding, 0);
    assert_eq!(refused.decision().retry_after_ns, NS_PER_SECOND / 10);
    assert_eq!(refused.decisions()[1].remaining, 15);
    // A second later: 10 more fit the burst, but the day has 15 left.
    assert!(policy.check_at(NS_PER_SECOND, &[10]).unwrap().allowed);
    let daily = policy.check_at(2 * NS_PER_SECOND, &[6]).unwrap();
    assert!(!daily.allowed);
    assert_eq!(daily.binding, 1);
    assert_eq!(
        daily.decisions()[0].remaining,
        10,
        "burst was charged then taken back"
    );
    let fits = policy.check_at(2 * NS_PER_SECOND, &[5]).unwrap();
    assert!(fits.allowed);
    assert_eq!(fits.binding, 1);
    assert_eq!(fits.decision().remaining, 0);
}

#[test]
fn bad_arguments_are_typed_errors() {
    let policy = burst_and_daily();
    assert_eq!(
        policy.check_at(0, &[1, 2]).err(),
        Some(PolicyError::CostCount {
            expected: 1,
            given: 2
        })
    );
    assert_eq!(Policy::<&str>::new([]).err(), Some(PolicyError::Empty));
    let many = (0..9).map(|_| entry("x", Quota::per_second(1).unwrap(), 0));
    assert_eq!(Policy::new(many).err(), Some(PolicyError::TooManyQuotas));
    // Nothing was charged by the refused call.
    assert_eq!(
        policy.peek_at(0, &[1]).unwrap().decisions()[0].remaining,
        10
    );
}

#[test]
fn dimensions_with_reserve_and_settle() {
    let policy = Policy::new([
        entry("requests", Quota::per_minute(3).unwrap(), 0),
        entry("input_tokens", Quota::per_minute(1_000).unwrap(), 1),
        entry("output_tokens", Quota::per_minute(2_000).unwrap(), 2),
    ])
    .unwrap();
    assert_eq!(policy.dimensions(), 3);
    let reservation = policy
        .reserve_at(0, &[1, 300, 500])
        .unwrap()
        .reservation
        .unwrap();
    assert_eq!(reservation.costs(), &[1, 300, 500]);
    // The answer used fewer input tokens and more output tokens than estimated.
    let settled = policy.settle_at(0, reservation, &[1, 200, 2_100]).unwrap();
    let remaining: Vec<u64> = settled.decisions().iter().map(|d| d.remaining).collect();
    assert_eq!(remaining, [2, 800, 0]);
    assert!(!settled.allowed, "output tokens are 100 in debt");
    // Output tokens are in debt: any request with output is refused until it is repaid.
    let refused = policy.reserve_at(0, &[1, 10, 1]).unwrap();
    assert!(refused.reservation.is_none());
    let refused = refused.decision;
    assert_eq!(refused.binding, 2);
    assert!(refused.decision().retry_after_ns > 0);
    // A request that needs no output tokens still passes.
    assert!(policy.check_at(0, &[1, 10, 0]).unwrap().allowed);
}

#[test]
fn a_refused_check_leaves_every_bucket_as_it_was() {
    let policy = Policy::new([
        entry("a", Quota::per_second(5).unwrap(), 0),
        entry("b", Quota::per_second(7).unwrap(), 0),
        entry("c", Quota::per_second(3).unwrap(), 0),
    ])
    .unwrap();
    assert!(policy.check_at(0, &[2]).unwrap().allowed);
    let before = policy.peek_at(100, &[1]).unwrap();
    assert!(!policy.check_at(100, &[2]).unwrap().allowed);
    assert_eq!(policy.peek_at(100, &[1]).unwrap(), before);
}

#[test]
fn threads_never_exceed_any_quota() {
    let policy = Policy::new([
        entry("small", Quota::per_day(40).unwrap(), 0),
        entry("large", Quota::per_day(100).unwrap(), 1),
    ])
    .unwrap();
    let admitted: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|worker| {
                let policy = &policy;
                scope.spawn(move || {
                    let (mut small, mut large) = (0, 0);
                    for round in 0..200u64 {
                        let costs = [1 + (round + worker) % 2, 1 + (round * 7 + worker) % 5];
                        if policy.check_at(0, &costs).unwrap().allowed {
                            small += costs[0];
                            large += costs[1];
                        }
                    }
                    (small, large)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let small: u64 = admitted.iter().map(|a| a.0).sum();
    let large: u64 = admitted.iter().map(|a| a.1).sum();
    assert!(small <= 40 && large <= 100, "admitted {small} and {large}");
    // Undo is exact here (one time), so the buckets account for exactly what was admitted.
    let left = policy.peek_at(0, &[0, 0]).unwrap();
    assert_eq!(left.decisions()[0].remaining, 40 - small);
    assert_eq!(left.decisions()[1].remaining, 100 - large);
}

#[test]
fn keyed_policy_keeps_keys_apart_and_settles_by_reservation() {
    let policy = KeyedPolicy::new(
        [
            entry("requests", Quota::per_minute(2).unwrap(), 0),
            entry("tokens", Quota::per_minute(100).unwrap(), 1),
        ],
        100,
        Seed::new(11, 12),
    )
    .unwrap();
    assert!(policy.check_at("alice", 0, &[2, 10]).unwrap().allowed);
    assert!(!policy.check_at("alice", 0, &[1, 10]).unwrap().allowed);
    assert!(policy.check_at("bob", 0, &[1, 90]).unwrap().allowed);
    let reservation = policy
        .reserve_at("bob", 0, &[1, 10])
        .unwrap()
        .reservation
        .unwrap();
    let settled = policy.settle_at(0, reservation, &[1, 0]).unwrap();
    assert_eq!(settled.decisions()[1].remaining, 10);
    assert_eq!(
        policy.peek_at("alice", 0, &[0, 0]).unwrap().decisions()[1].remaining,
        90
    );
    let plain = Policy::new([entry("r", Quota::per_second(1).unwrap(), 0)]).unwrap();
    let reservation = plain.reserve_at(0, &[1]).unwrap().reservation.unwrap();
    assert_eq!(
        policy.settle_at(0, reservation, &[1, 0]).err(),
        Some(PolicyError::WrongReservation)
    );
}

#[test]
fn keyed_policy_full_table_charges_nothing() {
    let policy = KeyedPolicy::with_clock(
        [
            entry("wide", Quota::per_day(10).unwrap(), 0),
            entry("wide too", Quota::per_day(10).unwrap(), 0),
        ],
        1,
        Seed::new(3, 3),
        NoClock,
    )
    .unwrap();
    let mut placed = 0;
    let mut full = 0;
    for key in 0u32..100 {
        match policy.check_at(key.to_le_bytes(), 0, &[1]) {
            Ok(decision) => {
                assert!(decision.allowed);
                placed += 1;
            }
            Err(PolicyError::TableFull) => full += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(placed, 16);
    assert_eq!(full, 84);
    let stats: Vec<_> = policy.stats().collect();
    assert_eq!(stats.len(), 2);
    for table in stats {
        assert_eq!(table.live_keys, 16);
        assert_eq!(table.reclaimed, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Single-threaded, a policy decides exactly as "peek every quota; if all admit, check
    /// every quota" on independent cells, over random quotas, costs and times.
    #[test]
    fn matches_all_or_nothing_model(
        quotas in proptest::collection::vec((1u64..20, 1u64..5, 1u64..30), 1..5),
        steps in proptest::collection::vec((0u64..3 * NS_PER_SECOND, proptest::collection::vec(0u64..8, 2)), 1..80),
    ) {
        let built: Vec<Quota> = quotas
            .iter()
            .map(|(rate, seconds, burst)| Quota::per_seconds(*rate, *seconds).unwrap().with_burst(*burst).unwrap())
            .collect();
        let policy = Policy::new(built.iter().enumerate().map(|(index, quota)| PolicyEntry {
            name: index,
            quota: *quota,
            dimension: index % 2,
        }))
        .unwrap();
        let model: Vec<Gcra> = built.iter().map(|quota| Gcra::new(*quota)).collect();
        let dimensions = policy.dimensions();
        let mut now = 0u64;
        for (dt, costs) in steps {
            now += dt;
            let costs = &costs[..dimensions];
            let decision = policy.check_at(now, costs).unwrap();
            let cost_of = |index: usize| costs[index % 2];
            let all_fit = model
                .iter()
                .enumerate()
                .all(|(index, cell)| cell.peek_at(now, cost_of(index)).allowed);
            prop_assert_eq!(decision.allowed, all_fit);
            if all_fit {
                for (index, cell) in model.iter().enumerate() {
                    prop_assert_eq!(decision.decisions()[index], cell.check_at(now, cost_of(index)));
                }
            }
            for (index, cell) in model.iter().enumerate() {
                prop_assert_eq!(
                    policy.peek_at(now, &[0; 2][..dimensions]).unwrap().decisions()[index],
                    cell.peek_at(now, 0)
                );
            }
        }
    }
}

/// A keyed policy whose tables cannot be allocated is an error, not an abort.
#[test]
fn keyed_policy_of_impossible_size_is_out_of_memory() {
    let built = KeyedPolicy::new(
        [entry("requests", Quota::per_minute(2).unwrap(), 0)],
        usize::MAX,
        Seed::new(11, 12),
    );
    assert_eq!(built.err(), Some(PolicyError::OutOfMemory));
}

#[test]
fn a_keyed_policy_over_caller_built_tables() {
    use cellgate::{KeyedLimiter, Refill, SlotGroup};
    let entries = [
        entry("requests", Quota::per_minute(2).unwrap(), 0),
        entry("tokens", Quota::per_minute(100).unwrap(), 1),
    ];
    let table = |quota, refill, seed| {
        let slots: Vec<SlotGroup> = (0..8).map(|_| SlotGroup::new()).collect();
        KeyedLimiter::with_storage(slots, quota, refill, seed, NoClock).unwrap()
    };
    let seed = Seed::new(3, 4);
    let tables = || {
        entries
            .iter()
            .map(|entry| table(entry.quota, Refill::Greedy, seed))
            .collect::<Vec<_>>()
    };
    let policy = KeyedPolicy::from_tables(entries, tables(), NoClock).unwrap();
    // The same decisions as a KeyedPolicy that allocates its own tables.
    let own = KeyedPolicy::new(entries, 64, seed).unwrap();
    for costs in [[1, 60], [1, 30], [1, 20], [0, 5]] {
        assert_eq!(
            policy.check_at("k", 0, &costs).unwrap(),
            own.check_at("k", 0, &costs).unwrap()
        );
    }
    let reserved = policy.reserve_at("r", 0, &[1, 50]).unwrap();
    let after = policy
        .settle_at(0, reserved.reservation.unwrap(), &[1, 80])
        .unwrap();
    assert_eq!(after.decisions()[1].remaining, 20);

    // A table that does not fit its entry is refused, naming the entry.
    let mut wrong_quota = tables();
    wrong_quota[1] = table(Quota::per_minute(99).unwrap(), Refill::Greedy, seed);
    assert_eq!(
        KeyedPolicy::from_tables(entries, wrong_quota, NoClock).err(),
        Some(PolicyError::TableMismatch { index: 1 })
    );
    let mut wrong_seed = tables();
    wrong_seed[1] = table(entries[1].quota, Refill::Greedy, Seed::new(9, 9));
    assert_eq!(
        KeyedPolicy::from_tables(entries, wrong_seed, NoClock).err(),
        Some(PolicyError::TableMismatch { index: 1 })
    );
    let mut interval = tables();
    interval[0] = table(entries[0].quota, Refill::Interval, seed);
    assert_eq!(
        KeyedPolicy::from_tables(entries, interval, NoClock).err(),
        Some(PolicyError::TableMismatch { index: 0 })
    );
    let mut missing = tables();
    missing.pop();
    assert_eq!(
        KeyedPolicy::from_tables(entries, missing, NoClock).err(),
        Some(PolicyError::TableMismatch { index: 1 })
    );
    let mut extra = tables();
    extra.push(table(entries[0].quota, Refill::Greedy, seed));
    assert_eq!(
        KeyedPolicy::from_tables(entries, extra, NoClock).err(),
        Some(PolicyError::TableMismatch { index: 2 })
    );
    assert_eq!(
        PolicyError::TableMismatch { index: 1 }.to_string(),
        "table 1 does not fit policy entry 1 (quota, refill, seed or count)"
    );
}

/// A refused policy check leaves every bucket as it was, the time it was last written included:
/// a later call at an earlier time (a backward clock step) sees what it would have seen had the
/// refused call never happened. Before, the entries charged before the refusing one kept the
/// refused call's time (and a new key was inserted), so the wait they showed grew by the step.
#[test]
fn refused_check_writes_nothing_even_the_time() {
    use cellgate::{KeyedPolicy, Policy, PolicyEntry, Quota, Seed, NS_PER_SECOND};
    let entries = [
        PolicyEntry {
            name: "fast",
            quota: Quota::per_second(10).unwrap(),
            dimension: 0,
        },
        PolicyEntry {
            name: "slow",
            quota: Quota::per_minute(2).unwrap(),
            dimension: 0,
        },
    ];
    let keyed = KeyedPolicy::new(entries, 64, Seed::new(1, 2)).unwrap();
    let cells = Policy::new(entries).unwrap();
    let fresh = Policy::new(entries).unwrap();
    // t = 1 s: 2 admitted by both; "slow" is now empty.
    assert!(keyed.check_at("k", NS_PER_SECOND, &[2]).unwrap().allowed);
    assert!(cells.check_at(NS_PER_SECOND, &[2]).unwrap().allowed);
    assert!(fresh.check_at(NS_PER_SECOND, &[2]).unwrap().allowed);
    // t = 10 s: "fast" admits, "slow" refuses: nothing may change.
    assert!(
        !keyed
            .check_at("k", 10 * NS_PER_SECOND, &[1])
            .unwrap()
            .allowed
    );
    assert!(!cells.check_at(10 * NS_PER_SECOND, &[1]).unwrap().allowed);
    // t = 1.1 s (the clock stepped back): as if the refused call never happened ("fast" is
    // one unit short of full, not full as of 10 s).
    let back_ns = NS_PER_SECOND + NS_PER_SECOND / 10;
    let expected = fresh.peek_at(back_ns, &[1]).unwrap();
    assert_eq!(expected.decisions()[0].remaining, 9);
    assert_eq!(keyed.peek_at("k", back_ns, &[1]).unwrap(), expected);
    assert_eq!(cells.peek_at(back_ns, &[1]).unwrap(), expected);
    // A new key refused by its second entry (cost above its burst) is not inserted anywhere.
    assert!(
        !keyed
            .check_at("new", 10 * NS_PER_SECOND, &[3])
            .unwrap()
            .allowed
    );
    let total: u64 = keyed.stats().map(|stats| stats.live_keys).sum();
    assert_eq!(total, 2, "only \"k\" holds slots, one per table");
}
