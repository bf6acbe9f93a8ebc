//! loom model of a policy's all-or-nothing charge and undo under concurrency.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p cellgate --test loom_policy --release`.
#![cfg(loom)]

use cellgate::{Policy, PolicyEntry, Quota};
use loom::sync::Arc;
use loom::thread;

/// Two threads check a two-quota policy where only one of them can fit: whatever the
/// interleaving (including a charge taken back while the other thread looks), each quota is
/// charged at most up to its burst, and the buckets account for exactly what was admitted.
#[test]
fn racing_checks_charge_all_or_nothing() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let policy = Arc::new(
            Policy::new([
                PolicyEntry {
                    name: "a",
                    quota: Quota::per_day(3).unwrap(),
                    dimension: 0,
                },
                PolicyEntry {
                    name: "b",
                    quota: Quota::per_day(2).unwrap(),
                    dimension: 0,
                },
            ])
            .unwrap(),
        );
        let other = Arc::clone(&policy);
        let racer = thread::spawn(move || other.check_at(0, &[2]).unwrap().allowed);
        let mine = policy.check_at(0, &[1]).unwrap().allowed;
        let theirs = racer.join().unwrap();
        let admitted = u64::from(mine) + 2 * u64::from(theirs);
        assert!(admitted <= 2, "admitted {admitted} against a burst of 2");
        let left = policy.peek_at(0, &[0]).unwrap();
        assert_eq!(left.decisions()[0].remaining, 3 - admitted);
        assert_eq!(left.decisions()[1].remaining, 2 - admitted);
    });
}
