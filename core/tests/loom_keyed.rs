//! loom models of the keyed table's slot claim and reclaim races.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p cellgate --test loom_keyed --release`.
#![cfg(loom)]

use cellgate::{KeyedLimiter, NoClock, Quota, Refill, Seed, SlotGroup, GROUP_SLOTS, NS_PER_SECOND};
use loom::sync::Arc;
use loom::thread;

fn limiter(rate: u64) -> Arc<KeyedLimiter<Box<[SlotGroup]>>> {
    Arc::new(KeyedLimiter::with_options(
        Quota::per_second(rate).unwrap(),
        Refill::Greedy,
        1,
        Seed::new(7, 9),
        NoClock,
    ))
}

fn model(test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = 100_000;
    builder.check(test);
}

/// Two threads insert the same new key at once: one bucket results, never two.
#[test]
fn racing_inserts_of_one_key() {
    model(|| {
        let table = limiter(1);
        let other = Arc::clone(&table);
        let racer = thread::spawn(move || other.check_at("k", 0, 1).unwrap().allowed);
        let mine = table.check_at("k", 0, 1).unwrap().allowed;
        let theirs = racer.join().unwrap();
        assert!(
            mine ^ theirs,
            "admitted {mine} and {theirs} from a bucket of 1"
        );
        assert_eq!(table.stats().live_keys, 1);
    });
}

/// An idle key is checked while a new key reclaims its slot: the check is never lost and
/// the new key never inherits it.
#[test]
fn check_races_reclaim() {
    model(|| {
        // PROBE_WINDOW slots (4 under loom); fill them at t = 0 with keys idle after 1 s.
        let table = limiter(1);
        let mut placed = Vec::new();
        for key in 0u8..32 {
            if table.check_at([key], 0, 1).is_ok() {
                placed.push(key);
            }
            if placed.len() == table.slot_count() {
                break;
            }
        }
        let old = placed[0];
        let later = 2 * NS_PER_SECOND;
        let other = Arc::clone(&table);
        let checker = thread::spawn(move || other.check_at([old], later, 1));
        // A new key at the same time may take the idle slot of `old` (or another one).
        let newcomer = table.check_at([200u8], later, 1);
        let old_decision = checker.join().unwrap();
        if let Ok(decision) = old_decision {
            assert!(decision.allowed);
            // Whatever happened, `old` is now exhausted and `200` too if it was placed.
            assert!(!table.peek_at([old], later, 1).allowed);
        }
        if let Ok(decision) = newcomer {
            assert!(decision.allowed);
            assert!(!table.peek_at([200u8], later, 1).allowed);
        }
    });
}

/// A table over slots that live for the whole test, shared between threads.
type SharedTable = Arc<KeyedLimiter<&'static [SlotGroup]>>;

/// A table of 8 slots (a key's two windows of 4 can be disjoint, 1 per second per key), a key
/// whose second window shares no slot with its first, and four other keys of the same first
/// home, which fill that first window when they are inserted.
fn two_window_setup() -> (SharedTable, [u8; 2], Vec<[u8; 2]>) {
    let slots: &'static [SlotGroup] =
        Box::leak((0..8 / GROUP_SLOTS).map(|_| SlotGroup::new()).collect());
    let table = Arc::new(
        KeyedLimiter::with_slots(
            slots,
            Quota::per_second(1).unwrap(),
            Refill::Greedy,
            Seed::new(7, 9),
            NoClock,
        )
        .unwrap(),
    );
    let key = (0u8..=255)
        .map(|b| [b, b'k'])
        .find(|key| {
            let first = table.loom_index_at(key, 0);
            let second = table.loom_index_at(key, 4);
            (second + 8 - first) % 8 == 4
        })
        .expect("a key with disjoint windows");
    let home = table.loom_index_at(&key, 0);
    let fillers: Vec<[u8; 2]> = (0u8..=255)
        .map(|b| [b, b'f'])
        .filter(|filler| table.loom_index_at(filler, 0) == home)
        .take(4)
        .collect();
    assert_eq!(fillers.len(), 4);
    (table, key, fillers)
}

/// Two threads insert the same new key whose first window is full of live keys, so both go to
/// its second window: one bucket results, found through the overflow flag by every later
/// lookup.
#[test]
fn racing_inserts_into_the_second_window() {
    model(|| {
        let (table, key, fillers) = two_window_setup();
        for filler in &fillers {
            assert!(table.check_at(filler, 0, 1).unwrap().allowed);
        }
        let other = Arc::clone(&table);
        let racer = thread::spawn(move || other.check_at(key, 0, 1).unwrap().allowed);
        let mine = table.check_at(key, 0, 1).unwrap().allowed;
        let theirs = racer.join().unwrap();
        assert!(
            mine ^ theirs,
            "admitted {mine} and {theirs} from a bucket of 1"
        );
        assert_eq!(table.stats().live_keys, 5);
        assert!(
            !table.peek_at(key, 0, 1).allowed,
            "the key's bucket is found"
        );
    });
}

/// One thread inserts a key while every slot of its first window is live, so it goes to its
/// second window; another inserts the same key a moment later, when one first-window key has
/// become idle, so it claims that slot. One bucket results, whichever order they run in.
#[test]
fn racing_inserts_into_either_window() {
    model(|| {
        let (table, key, fillers) = two_window_setup();
        // The first filler is full again (idle) from 1 s; the others stay live past 2 s.
        let second_ns = NS_PER_SECOND;
        assert!(table.check_at(fillers[0], 0, 1).unwrap().allowed);
        for filler in &fillers[1..] {
            assert!(
                table
                    .check_at(filler, 3 * second_ns / 2, 1)
                    .unwrap()
                    .allowed
            );
        }
        let other = Arc::clone(&table);
        // At 0.9 s the first window is all live: the second window.
        let early = thread::spawn(move || other.check_at(key, 9 * second_ns / 10, 1).unwrap());
        // At 1.2 s the first filler is idle: its slot in the first window.
        let late = table.check_at(key, 12 * second_ns / 10, 1).unwrap();
        let early = early.join().unwrap();
        assert!(
            early.allowed ^ late.allowed,
            "admitted {} and {} from a bucket of 1",
            early.allowed,
            late.allowed
        );
        assert!(!table.peek_at(key, 12 * second_ns / 10, 1).allowed);
    });
}

/// The claim clock of the recovery models: always 10 ns, so that a claim stamped 0 is stale
/// (timeout 1 ns) and one stamped 10 is not.
fn claim_clock() -> u64 {
    10
}

fn recovering(rate: u64) -> Arc<KeyedLimiter<Box<[SlotGroup]>>> {
    Arc::new(
        KeyedLimiter::with_options(
            Quota::per_second(rate).unwrap(),
            Refill::Greedy,
            1,
            Seed::new(7, 9),
            NoClock,
        )
        .with_claim_recovery(cellgate::ClaimRecovery {
            timeout_ns: 1,
            clock: claim_clock,
        }),
    )
}

/// A process died mid-insert of key `k`, leaving its slot claimed with `k`'s fingerprint;
/// two threads then check `k` at once: they race to recover the claim (one wins), and one
/// bucket of 1 results, never two.
#[test]
fn racing_recoveries_of_a_dead_claim_admit_one_bucket() {
    model(|| {
        let table = recovering(1);
        let home = table.loom_index_at(b"k", 0);
        table.loom_leave_claim(home, 0, Some(b"k"));
        let other = Arc::clone(&table);
        let racer = thread::spawn(move || other.check_at("k", 0, 1).unwrap().allowed);
        let mine = table.check_at("k", 0, 1).unwrap().allowed;
        let theirs = racer.join().unwrap();
        assert!(
            mine ^ theirs,
            "admitted {mine} and {theirs} from a bucket of 1"
        );
        assert!(!table.peek_at("k", 0, 1).allowed);
        assert!(table.recovered_claims() >= 1);
    });
}

/// A dead claim (no fingerprint written yet) on the home slot of a new key while another new
/// key is inserted: both are placed, each exactly limited, and the claim is gone.
#[test]
fn inserts_recover_a_dead_claim_and_stay_exact() {
    model(|| {
        let table = recovering(1);
        let home = table.loom_index_at(b"a", 0);
        table.loom_leave_claim(home, 0, None);
        let other = Arc::clone(&table);
        let racer = thread::spawn(move || other.check_at("b", 0, 1).unwrap().allowed);
        assert!(table.check_at("a", 0, 1).unwrap().allowed);
        assert!(racer.join().unwrap());
        assert!(!table.check_at("a", 0, 1).unwrap().allowed);
        assert!(!table.check_at("b", 0, 1).unwrap().allowed);
    });
}

/// A claim younger than the timeout is not recovered: the live claimant may still publish.
#[test]
fn a_young_claim_is_left_to_its_claimant() {
    model(|| {
        let table = recovering(1);
        let home = table.loom_index_at(b"a", 0);
        table.loom_leave_claim(home, 10, None);
        // A new key skips the claimed slot (4 slots: room elsewhere).
        assert!(table.check_at("a", 0, 1).unwrap().allowed);
        assert_eq!(table.recovered_claims(), 0);
    });
}
