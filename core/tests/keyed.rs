//! The keyed limiter against a model of one independent `Gcra` per key.

use cellgate::{
    group_count_for, slot_count_for, Gcra, KeyedLimiter, ManualClock, NoClock, Quota, Refill, Seed,
    SlotGroup, TableError, TableFull, GROUP_SLOTS, NS_PER_SECOND, PROBE_WINDOW,
};
use proptest::prelude::*;
use std::collections::HashMap;

fn table(quota: Quota, max_keys: usize) -> KeyedLimiter<Box<[SlotGroup]>> {
    KeyedLimiter::with_options(quota, Refill::Greedy, max_keys, Seed::new(1, 2), NoClock)
}

#[test]
fn keys_are_independent() {
    let limiter = table(Quota::per_second(2).unwrap(), 100);
    assert!(limiter.check_at("a", 0, 2).unwrap().allowed);
    assert!(!limiter.check_at("a", 0, 1).unwrap().allowed);
    assert!(limiter.check_at("b", 0, 2).unwrap().allowed);
    assert!(limiter.check_at(b"", 0, 1).unwrap().allowed);
    assert!(limiter.check_at(b"a\0", 0, 1).unwrap().allowed);
    assert_eq!(limiter.stats().live_keys, 4);
}

#[test]
fn absent_keys_are_full_and_not_inserted() {
    let limiter = table(Quota::per_second(2).unwrap(), 100);
    assert_eq!(limiter.peek_at("x", 0, 1).remaining, 2);
    assert_eq!(limiter.refund_at("x", 0, 1).remaining, 2);
    limiter.reset_at("x", 0);
    assert!(limiter.check_at("x", 0, 0).unwrap().allowed);
    assert!(limiter.check_at("x", 0, 3).unwrap().is_never());
    assert_eq!(limiter.stats().live_keys, 0);
}

#[test]
fn clocked_operations() {
    let clock = ManualClock::new(0);
    let limiter = KeyedLimiter::with_options(
        Quota::per_second(1).unwrap(),
        Refill::Greedy,
        10,
        Seed::new(3, 4),
        clock.clone(),
    );
    assert!(limiter.check("k", 1).unwrap().allowed);
    assert!(!limiter.check("k", 1).unwrap().allowed);
    clock.advance_ns(NS_PER_SECOND);
    assert!(limiter.peek("k", 1).allowed);
    assert!(limiter.force("k", 2).unwrap().remaining == 0);
    assert_eq!(limiter.refund("k", 5).remaining, 1);
    limiter.reset("k");
}

#[test]
fn caller_provided_slots() {
    let slots: Vec<SlotGroup> = (0..PROBE_WINDOW / GROUP_SLOTS)
        .map(|_| SlotGroup::new())
        .collect();
    let quota = Quota::per_second(1).unwrap();
    let limiter =
        KeyedLimiter::with_slots(&slots, quota, Refill::Greedy, Seed::new(5, 6), NoClock).unwrap();
    for key in 0..PROBE_WINDOW {
        assert!(limiter.check_at(key.to_le_bytes(), 0, 1).unwrap().allowed);
    }
    assert_eq!(limiter.check_at("one more", 0, 1), Err(TableFull));
    assert_eq!(limiter.stats().rejected_full, 1);
    let few: Vec<SlotGroup> = vec![SlotGroup::new()];
    assert_eq!(
        KeyedLimiter::with_slots(&few, quota, Refill::Greedy, Seed::new(5, 6), NoClock).err(),
        Some(TableError::BadSlotCount)
    );
}

#[test]
fn owned_caller_storage() {
    // Any AsRef<[SlotGroup]> storage, here a Vec the limiter owns; a second limiter over the same
    // slots (a clone of the storage handle in a shared mapping) would share every key.
    let slots: Vec<SlotGroup> = (0..8).map(|_| SlotGroup::new()).collect();
    let quota = Quota::per_second(2).unwrap();
    let limiter =
        KeyedLimiter::with_storage(slots, quota, Refill::Greedy, Seed::new(5, 6), NoClock).unwrap();
    assert_eq!(limiter.slot_count(), 64);
    assert!(limiter.check_at("k", 0, 2).unwrap().allowed);
    assert!(!limiter.check_at("k", 0, 1).unwrap().allowed);
    let few: Vec<SlotGroup> = (0..PROBE_WINDOW / GROUP_SLOTS - 1)
        .map(|_| SlotGroup::new())
        .collect();
    assert_eq!(
        KeyedLimiter::with_storage(few, quota, Refill::Greedy, Seed::new(5, 6), NoClock).err(),
        Some(TableError::BadSlotCount)
    );
}

#[test]
fn claim_recovery_changes_no_decision_of_a_healthy_table() {
    // With recovery on, every insert stamps its claim with the clock; decisions are the
    // same as without, and nothing is recovered while no claimant dies.
    fn clock() -> u64 {
        7
    }
    let quota = Quota::per_second(3).unwrap();
    let plain = KeyedLimiter::with_options(quota, Refill::Greedy, 64, Seed::new(1, 2), NoClock);
    let recovering =
        KeyedLimiter::with_options(quota, Refill::Greedy, 64, Seed::new(1, 2), NoClock)
            .with_claim_recovery(cellgate::ClaimRecovery {
                timeout_ns: 1,
                clock,
            });
    for step in 0..2_000u64 {
        let key = (step % 97).to_le_bytes();
        let now_ns = step * 10_000_000;
        assert_eq!(
            plain.check_at(key, now_ns, 1 + step % 2),
            recovering.check_at(key, now_ns, 1 + step % 2)
        );
    }
    assert_eq!(recovering.recovered_claims(), 0);
}

#[test]
fn a_flood_of_new_keys_never_resets_an_exhausted_key() {
    let limiter = table(Quota::per_minute(3).unwrap(), 64);
    let capacity = limiter.slot_count();
    assert!(limiter.check_at("victim", 0, 3).unwrap().allowed);
    let mut rejected = 0;
    for attacker in 0..100 * capacity {
        let key = format!("attacker-{attacker}");
        // Later and later, so that earlier attackers' buckets become idle and reclaimable.
        let now = attacker as u64 * 1_000;
        match limiter.check_at(key, now, 3) {
            Ok(decision) => assert!(decision.allowed),
            Err(TableFull) => rejected += 1,
        }
        assert!(!limiter.peek_at("victim", now, 1).allowed);
    }
    // The victim's slot was never taken: it is still exhausted and still waits.
    let now = (100 * capacity) as u64 * 1_000;
    let decision = limiter.check_at("victim", now, 1).unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.retry_after_ns, 20 * NS_PER_SECOND - now);
    assert!(rejected > 0);
    assert_eq!(limiter.stats().rejected_full, rejected);
}

#[test]
fn idle_keys_are_reclaimed_without_changing_decisions() {
    let quota = Quota::per_second(10).unwrap();
    let limiter = table(quota, 16);
    let slots = limiter.slot_count() as u64;
    // Fill the table (some windows fill before others), then let every bucket refill.
    let placed = (0..2 * slots)
        .filter(|key| limiter.check_at(key.to_le_bytes(), 0, 5).is_ok())
        .count();
    assert!(placed >= slots as usize / 2);
    // Each new key comes a second after the last, when every earlier bucket is full again.
    let mut now = 0;
    for key in 2 * slots..6 * slots {
        now += NS_PER_SECOND;
        let decision = limiter.check_at(key.to_le_bytes(), now, 1).unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 9);
    }
    assert!(limiter.stats().reclaimed >= 2 * slots);
    assert!(limiter.stats().live_keys <= slots);
    // A reclaimed key comes back as the full bucket it had become.
    let back = limiter.check_at(0u64.to_le_bytes(), now + NS_PER_SECOND, 10);
    assert_eq!(back.map(|d| d.allowed), Ok(true));
}

#[test]
fn many_threads_many_keys_never_over_admit() {
    let quota = Quota::per_day(50).unwrap();
    let limiter = table(quota, 1_000);
    let keys = 200u64;
    let admitted: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut admitted = vec![0u64; keys as usize];
                    for round in 0..100 {
                        for key in 0..keys {
                            let cost = 1 + (key + round) % 3;
                            let decision = limiter.check_at(key.to_le_bytes(), 0, cost).unwrap();
                            if decision.allowed {
                                admitted[key as usize] += cost;
                            }
                        }
                    }
                    admitted
                })
            })
            .collect();
        let results: Vec<Vec<u64>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (0..keys as usize)
            .map(|key| results.iter().map(|r| r[key]).sum())
            .collect()
    });
    for (key, total) in admitted.iter().enumerate() {
        assert!(*total <= 50, "key {key} admitted {total}");
        assert!(*total >= 48, "key {key} admitted only {total}");
    }
}

#[test]
fn racing_inserts_of_one_key_make_one_bucket() {
    for seed in 0..200 {
        let limiter = KeyedLimiter::with_options(
            Quota::per_day(3).unwrap(),
            Refill::Greedy,
            16,
            Seed::new(seed, seed),
            NoClock,
        );
        let admitted: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        (0..3)
                            .filter(|_| limiter.check_at("same", 0, 1).unwrap().allowed)
                            .count() as u64
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(admitted, 3);
        assert_eq!(limiter.stats().live_keys, 1);
    }
}

#[derive(Clone, Debug)]
enum Step {
    Check { key: u8, cost: u64, dt: u64 },
    Force { key: u8, cost: u64, dt: u64 },
    Refund { key: u8, cost: u64, dt: u64 },
    Reset { key: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0u8..40;
    let cost = 0u64..5;
    let dt = prop_oneof![Just(0u64), 0u64..NS_PER_SECOND, 0u64..10 * NS_PER_SECOND];
    prop_oneof![
        6 => (key.clone(), cost.clone(), dt.clone()).prop_map(|(key, cost, dt)| Step::Check { key, cost, dt }),
        1 => (key.clone(), cost.clone(), dt.clone()).prop_map(|(key, cost, dt)| Step::Force { key, cost, dt }),
        1 => (key.clone(), cost, dt).prop_map(|(key, cost, dt)| Step::Refund { key, cost, dt }),
        1 => key.prop_map(|key| Step::Reset { key }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every decision equals that of an independent Gcra per key; `TableFull` happens only
    /// for keys whose model bucket is full (absent or idle), and then changes nothing.
    #[test]
    fn matches_one_gcra_per_key(
        rate in 1u64..5,
        burst in 1u64..6,
        seed in any::<u64>(),
        steps in proptest::collection::vec(step(), 1..300),
    ) {
        let quota = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
        // A small table: 16 slots for 40 keys, so reclaiming and rejecting both happen.
        let limiter = KeyedLimiter::with_options(quota, Refill::Greedy, 12, Seed::new(seed, !seed), NoClock);
        prop_assert_eq!(limiter.slot_count(), 16);
        let mut model: HashMap<u8, Gcra> = HashMap::new();
        let mut now = 0u64;
        for step in steps {
            match step {
                Step::Check { key, cost, dt } => {
                    now += dt;
                    let cell = model.entry(key).or_insert_with(|| Gcra::new(quota));
                    match limiter.check_at([key], now, cost) {
                        Ok(decision) => prop_assert_eq!(decision, cell.check_at(now, cost)),
                        Err(TableFull) => {
                            let expected = cell.peek_at(now, cost);
                            prop_assert_eq!(expected.remaining, burst, "rejected a live key");
                        }
                    }
                }
                Step::Force { key, cost, dt } => {
                    now += dt;
                    let cell = model.entry(key).or_insert_with(|| Gcra::new(quota));
                    match limiter.force_at([key], now, cost) {
                        Ok(decision) => prop_assert_eq!(decision, cell.force_at(now, cost)),
                        Err(TableFull) => {
                            prop_assert_eq!(cell.peek_at(now, 0).remaining, burst, "rejected a live key");
                        }
                    }
                }
                Step::Refund { key, cost, dt } => {
                    now += dt;
                    let cell = model.entry(key).or_insert_with(|| Gcra::new(quota));
                    prop_assert_eq!(limiter.refund_at([key], now, cost), cell.refund_at(now, cost));
                }
                Step::Reset { key } => {
                    limiter.reset_at([key], now);
                    model.entry(key).or_insert_with(|| Gcra::new(quota)).reset();
                }
            }
        }
        // Every key still agrees at the end.
        for (key, cell) in &model {
            prop_assert_eq!(limiter.peek_at([*key], now, 1), cell.peek_at(now, 1));
        }
    }
}

#[test]
fn header_describes_the_table() {
    let limiter = table(Quota::per_minute(100).unwrap().with_burst(20).unwrap(), 30);
    let header = limiter.header();
    assert_eq!(&header.magic, b"cellgate");
    assert_eq!(header.layout_version, cellgate::TABLE_LAYOUT_VERSION);
    assert_eq!(header.group_bytes, 192);
    assert_eq!(header.slot_count, 40);
    assert_eq!(header.probe_window, PROBE_WINDOW as u64);
    assert_eq!(header.seed, [1, 2]);
    assert_eq!(
        (
            header.rate_cost,
            header.period_ns,
            header.burst_cost,
            header.refill
        ),
        (100, 60 * NS_PER_SECOND, 20, 0)
    );
    assert_eq!(std::mem::size_of::<SlotGroup>(), 192);
    assert_eq!(std::mem::align_of::<SlotGroup>(), 64);
}

#[test]
fn any_hash_key_works_through_the_hashed_operations() {
    let limiter = table(Quota::per_second(1).unwrap(), 10);
    let user = (42u32, "eu-west");
    let hashed = limiter.hash(&user);
    assert_eq!(hashed, limiter.hash(&(42u32, "eu-west")));
    assert_ne!(hashed, limiter.hash(&(43u32, "eu-west")));
    assert!(limiter.check_hashed_at(hashed, 0, 1).unwrap().allowed);
    assert!(!limiter.check_hashed_at(hashed, 0, 1).unwrap().allowed);
    // Byte keys hash the bytes alone, the same in every runtime.
    assert_eq!(limiter.hash_key(b"abc"), limiter.hash_key("abc".as_bytes()));
}

/// A key whose first window holds only live keys goes to its second window, so live keys fill
/// most of the table before the first refusal. (With one window of 16 slots, refusals began
/// at about half of `max_keys` and reached 1.2 % of new keys by `max_keys`; see
/// `BENCHMARKS.md`, "Memory per key".) Every placed key keeps its own bucket.
#[test]
fn live_keys_fill_most_of_the_table_before_a_refusal() {
    let max_keys: u64 = 20_000;
    let limiter = KeyedLimiter::with_options(
        Quota::per_minute(1).unwrap(),
        Refill::Greedy,
        max_keys as usize,
        Seed::new(11, 12),
        NoClock,
    );
    let mut placed = Vec::new();
    let mut first_refusal = None;
    for key in 0..max_keys {
        match limiter.check_at(key.to_le_bytes(), 0, 1) {
            Ok(decision) => {
                assert!(decision.allowed);
                placed.push(key);
            }
            Err(TableFull) => {
                first_refusal.get_or_insert(key);
            }
        }
    }
    let refused = max_keys - placed.len() as u64;
    assert!(
        first_refusal.is_none_or(|key| key >= max_keys * 6 / 10),
        "first refusal at key {first_refusal:?} of {max_keys}"
    );
    assert!(
        refused * 1000 <= max_keys * 2,
        "{refused} of {max_keys} refused"
    );
    assert_eq!(limiter.stats().rejected_full, refused);
    assert_eq!(limiter.stats().live_keys, placed.len() as u64);
    for key in placed {
        assert!(
            !limiter.peek_at(key.to_le_bytes(), 0, 1).allowed,
            "key {key}"
        );
    }
}

/// The fallible constructor builds the same table as `with_options`, and a size that cannot be
/// allocated is `OutOfMemory` instead of an abort.
#[test]
fn try_with_options_sizes_like_with_options_and_reports_impossible_sizes() {
    assert_eq!(slot_count_for(0), PROBE_WINDOW);
    assert_eq!(slot_count_for(12), PROBE_WINDOW);
    // 1,333 slots, rounded up to whole groups of 8.
    assert_eq!(slot_count_for(1_000), 1_336);
    assert_eq!(group_count_for(1_000), 167);
    assert_eq!(
        slot_count_for(usize::MAX),
        usize::MAX / GROUP_SLOTS * GROUP_SLOTS
    );
    let quota = Quota::per_second(2).unwrap();
    let seed = Seed::new(3, 4);
    let fallible =
        KeyedLimiter::try_with_options(quota, Refill::Greedy, 1_000, seed, NoClock).unwrap();
    let infallible = KeyedLimiter::with_options(quota, Refill::Greedy, 1_000, seed, NoClock);
    assert_eq!(fallible.slot_count(), infallible.slot_count());
    assert_eq!(fallible.header(), infallible.header());
    for now in [0, 1, NS_PER_SECOND] {
        assert_eq!(
            fallible.check_at("k", now, 1),
            infallible.check_at("k", now, 1)
        );
    }
    for max_keys in [usize::MAX, usize::MAX / 32, isize::MAX as usize / 8] {
        let error =
            KeyedLimiter::try_with_options(quota, Refill::Greedy, max_keys, seed, NoClock).err();
        assert_eq!(error, Some(TableError::OutOfMemory), "max_keys {max_keys}");
    }
    assert_eq!(
        TableError::OutOfMemory.to_string(),
        "the keyed table's slots could not be allocated"
    );
}
