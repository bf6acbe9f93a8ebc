//! Memory of a keyed limiter under a flood of new keys: cellgate's fixed table against governor's
//! default keyed limiter (a `DashMap` that grows with every new key until `retain_recent`).
//!
//! ```sh
//! cargo run --release -p cellgate-benches --example flood_memory [-- MAX_KEYS [FLOOD_FACTOR]]
//! ```
//!
//! For each limiter: the resident set size (RSS, from `/proc/self/statm`) before it is built,
//! once `MAX_KEYS` keys are in it, and after a flood of `FLOOD_FACTOR × MAX_KEYS` further new
//! keys (default: 1,000,000 keys, then 10,000,000 new ones). Time is injected and advances by
//! one emission interval per new key, so the keys before it are idle (their buckets full again)
//! and cellgate can reclaim their slots. A second cellgate flood with time frozen shows the
//! other side: no key is idle, new keys are refused with `TableFull`, nothing grows.
//!
//! RSS includes the allocator's retained pages, so "after" figures are upper bounds on what the
//! structure holds; cellgate allocates nothing after construction, so its figures do not move.

use std::cell::Cell;
use std::num::NonZeroU32;

use cellgate::{KeyedLimiter, NoClock, Quota, Refill, Seed, SlotGroup, GROUP_SLOTS};
use cellgate_benches::{key, resident_bytes};
use governor::clock::Clock;
use governor::nanos::Nanos;
use governor::RateLimiter;

/// Cost units per second of every key; one new key per emission interval keeps the older ones
/// idle.
const RATE_PER_SECOND: u32 = 1_000;
/// The emission interval of [`RATE_PER_SECOND`].
const STEP_NS: u64 = 1_000_000_000 / RATE_PER_SECOND as u64;
/// The hash seed of both cellgate tables (the core's and the bindings'), so that they hold the
/// same keys in the same slots.
const SEED: Seed = Seed::new(0x0123_4567, 0x89ab_cdef);

/// A governor clock whose time the example sets (as `StepClock` in the benches).
#[derive(Debug, Default)]
struct StepClock {
    now_ns: Cell<u64>,
}

impl Clock for StepClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.now_ns.get())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn rss() -> u64 {
    resident_bytes().expect("/proc/self/statm (Linux) is needed for the RSS figures")
}

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .map(|value| value.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let max_keys = arg(1, 1_000_000);
    let flood_factor = arg(2, 10);
    let flood = max_keys * flood_factor;
    let quota = Quota::per_second(u64::from(RATE_PER_SECOND)).expect("a valid quota");
    println!("max_keys {max_keys}, flood of {flood} new keys, quota {RATE_PER_SECOND}/second");

    // cellgate: every key at time 0 (none idle), then a flood with time advancing.
    let before = rss();
    let table_keys = usize::try_from(max_keys).expect("fits");
    let limiter = KeyedLimiter::with_options(quota, Refill::Greedy, table_keys, SEED, NoClock);
    let built = rss();
    let slots = limiter.slot_count() as u64;
    let groups = slots / GROUP_SLOTS as u64;
    let group_bytes = std::mem::size_of::<SlotGroup>() as u64;
    println!(
        "cellgate: {slots} slots in {groups} groups of {group_bytes} bytes = {} table; {:.2} bytes \
         per configured key",
        mib(groups * group_bytes),
        (groups * group_bytes) as f64 / max_keys as f64,
    );
    let mut rejected = 0u64;
    for index in 0..max_keys {
        if limiter.check_at(key(index), 0, 1).is_err() {
            rejected += 1;
        }
    }
    let full = rss();
    println!(
        "cellgate: RSS {} before, {} built (+{}), {} with {max_keys} keys inserted at one instant \
         (+{}); {:?}, {rejected} refused",
        mib(before),
        mib(built),
        mib(built - before),
        mib(full),
        mib(full - before),
        limiter.stats(),
    );

    let mut now = 0;
    let mut refused = 0u64;
    for index in max_keys..max_keys + flood {
        now += STEP_NS;
        if limiter.check_at(key(index), now, 1).is_err() {
            refused += 1;
        }
    }
    let flooded = rss();
    println!(
        "cellgate: after a flood of {flood} new keys with time advancing: RSS {} (+{} over the \
         full table); {:?}, {refused} refused",
        mib(flooded),
        mib(flooded.saturating_sub(full)),
        limiter.stats(),
    );

    let mut refused = 0u64;
    for index in max_keys + flood..max_keys + 2 * flood {
        if limiter.check_at(key(index), now, 1).is_err() {
            refused += 1;
        }
    }
    let frozen = rss();
    println!(
        "cellgate: after a flood of {flood} new keys with time frozen (no key idle): RSS {} \
         (+{}); {:?}, {refused} refused",
        mib(frozen),
        mib(frozen.saturating_sub(full)),
        limiter.stats(),
    );
    drop(limiter);

    // governor: DashMap state store over an injected clock.
    let before = rss();
    let governor = RateLimiter::dashmap_with_clock(
        governor::Quota::per_second(NonZeroU32::new(RATE_PER_SECOND).expect("non-zero")),
        StepClock::default(),
    );
    for index in 0..max_keys {
        let _ = governor.check_key(&key(index));
    }
    let full = rss();
    println!(
        "governor: RSS {} before, {} with {max_keys} keys (+{}, {:.1} bytes per key)",
        mib(before),
        mib(full),
        mib(full - before),
        (full - before) as f64 / max_keys as f64,
    );
    let mut now = 0;
    for index in max_keys..max_keys + flood {
        now += STEP_NS;
        governor.clock().now_ns.set(now);
        let _ = governor.check_key(&key(index));
    }
    let flooded = rss();
    println!(
        "governor: after a flood of {flood} new keys: RSS {} (+{} over {max_keys} keys), {} keys held",
        mib(flooded),
        mib(flooded.saturating_sub(full)),
        governor.len(),
    );
    governor.retain_recent();
    governor.shrink_to_fit();
    let retained = rss();
    println!(
        "governor: after retain_recent and shrink_to_fit: RSS {}, {} keys held",
        mib(retained),
        governor.len(),
    );
    drop(governor);

    // The bindings' table (C, Python, Node): the same table over `TableSlots::heap`, an
    // anonymous mapping committed as keys touch it and returned to the system when dropped.
    let before = rss();
    let bindings =
        cellgate_host::in_process_limiter(quota, Refill::Greedy, table_keys, SEED, NoClock)
            .expect("the table is allocated");
    let built = rss();
    for index in 0..max_keys / 100 {
        let _ = bindings.check_at(key(index), 0, 1);
    }
    let some = rss();
    for index in max_keys / 100..max_keys {
        let _ = bindings.check_at(key(index), 0, 1);
    }
    let full = rss();
    drop(bindings);
    let dropped = rss();
    println!(
        "cellgate, the bindings' table (cellgate_host::TableSlots::heap): RSS +{} built, +{} with \
         {} keys, +{} with {max_keys}, +{} once dropped",
        mib(built.saturating_sub(before)),
        mib(some.saturating_sub(before)),
        max_keys / 100,
        mib(full.saturating_sub(before)),
        mib(dropped.saturating_sub(before)),
    );
}
