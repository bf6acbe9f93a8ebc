//! What an in-process table (`TableSlots::heap`) costs in resident memory: nothing at
//! construction, about the pages its keys touch while in use, and nothing after it is dropped,
//! however many tables come and go. Linux only (reads `/proc/self/statm`); a binary of its
//! own, with one test, so that no other test's allocations move the figures.
#![cfg(target_os = "linux")]

use cellgate::{KeyedLimiter, NoClock, Quota, Refill, Seed, SlotGroup};
use cellgate_host::TableSlots;

/// This process's resident memory, in bytes (the second field of `/proc/self/statm`, in pages).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

const MIB: usize = 1 << 20;

#[test]
fn heap_tables_are_committed_only_where_keys_are() {
    let max_keys = 1_000_000;
    let table_bytes = cellgate::group_count_for(max_keys) * core::mem::size_of::<SlotGroup>();
    assert!(table_bytes > 30 * MIB, "{table_bytes}");

    let before = resident_bytes();
    let slots = TableSlots::heap(max_keys).unwrap();
    let limiter = KeyedLimiter::with_storage(
        slots,
        Quota::per_second(10).unwrap(),
        Refill::Greedy,
        Seed::new(3, 4),
        NoClock,
    )
    .unwrap();
    let fresh = resident_bytes().saturating_sub(before);
    assert!(
        fresh < 2 * MIB,
        "a fresh table of {table_bytes} bytes made {fresh} bytes resident"
    );

    // 1,000 keys touch at most 2,000 pages (a fingerprint line and a state line each).
    for key in 0..1_000u32 {
        assert!(limiter.check_at(key.to_le_bytes(), 0, 1).unwrap().allowed);
    }
    let used = resident_bytes().saturating_sub(before);
    assert!(used <= 2_000 * 4096 + 2 * MIB, "1,000 keys: {used} bytes");
    assert!(
        used < table_bytes / 2,
        "1,000 keys: {used} of {table_bytes}"
    );
    drop(limiter);

    // Tables made, used and dropped one after another (as a fuzzer or a reloading
    // configuration does) give their memory back: no heap keeps it, none is re-zeroed by hand.
    let start = resident_bytes();
    for round in 0..40u32 {
        let slots = TableSlots::heap(max_keys).unwrap();
        let limiter = KeyedLimiter::with_storage(
            slots,
            Quota::per_second(10).unwrap(),
            Refill::Greedy,
            Seed::new(u64::from(round), 4),
            NoClock,
        )
        .unwrap();
        for key in 0..100u32 {
            assert!(limiter.check_at(key.to_le_bytes(), 0, 1).unwrap().allowed);
        }
    }
    let grown = resident_bytes().saturating_sub(start);
    assert!(
        grown < 4 * MIB,
        "40 tables of {table_bytes} bytes made and dropped left {grown} bytes resident"
    );
}
