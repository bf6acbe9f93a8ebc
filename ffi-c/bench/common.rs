//! What the Rust benchmarks of `make bench-c` share with `bench_keyed.c`: the same keys (8
//! bytes from splitmix64, seed 42) placed until N are present, in the same shuffled order, and
//! the same timed loop (time injected, 1 ms a check, every check admitted and asserted).
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), as in the C program: on a shared
//! machine, time spent descheduled is not counted.

use cellgate::{KeyedLimiter, NoClock, Quota, Refill, Seed, SlotGroup};
use std::hint::black_box;

/// The table type behind the C library's `cg_keyed_limiter`.
pub type Table = KeyedLimiter<Box<[SlotGroup]>, NoClock>;

/// The benchmark's table: `keys` keys of 1000 per second each (GCRA), a random seed, as
/// `bench_keyed.c` makes it through the C library.
pub fn table(keys: usize) -> Table {
    let quota = Quota::per_second(1000).expect("a valid quota");
    KeyedLimiter::with_options(quota, Refill::Greedy, keys, Seed::random(), NoClock)
}

/// Uses the keyed operations other than the check, once each, on a key outside the
/// benchmark's, as the C library (which exports them all) and most services do: whether a
/// program uses them decides how the compiler specializes the check.
#[allow(dead_code)] // not every bench program uses it
pub fn use_other_operations(table: &Table) {
    let scratch: &[u8] = b"scratch";
    let _ = table.peek_at(scratch, 0, 1);
    let _ = table.force_at(scratch, 0, 1);
    let _ = table.refund_at(scratch, 0, 1);
    table.reset_at(scratch, 0);
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

/// Linux's `CLOCK_THREAD_CPUTIME_ID`.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

extern "C" {
    /// From the C library that std links on Linux.
    fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
}

/// The calling thread's CPU time, in nanoseconds.
fn cpu_ns() -> u64 {
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: `time` is a valid, writable `struct timespec`; the clock id is Linux's.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    let seconds = u64::try_from(time.seconds).expect("non-negative");
    let nanoseconds = u64::try_from(time.nanoseconds).expect("non-negative");
    seconds * 1_000_000_000 + nanoseconds
}

/// The time step per check: the emission interval of 1000/second, so every check is admitted.
pub const STEP_NS: u64 = 1_000_000;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The command line: `[VARIANT] KEYS ITERATIONS ROUNDS`, VARIANT naming the one variant to
/// run (all of the program's when absent).
pub struct Args {
    /// The variant to run, or `None` for all.
    pub only: Option<String>,
    /// Keys in the table.
    pub keys: usize,
    /// Checks per round.
    pub iterations: u64,
    /// Timed rounds (after one warm-up round).
    pub rounds: u32,
}

impl Args {
    /// Parses the command line.
    pub fn parse() -> Self {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        let only = (args.len() == 4).then(|| args.remove(0));
        let numbers: Vec<u64> = args
            .iter()
            .map(|arg| {
                arg.parse()
                    .expect("usage: [VARIANT] KEYS ITERATIONS ROUNDS")
            })
            .collect();
        let [keys, iterations, rounds] = numbers[..] else {
            panic!("usage: [VARIANT] KEYS ITERATIONS ROUNDS");
        };
        Self {
            only,
            keys: usize::try_from(keys).expect("KEYS fits in usize"),
            iterations,
            rounds: u32::try_from(rounds).expect("ROUNDS fits in u32"),
        }
    }

    /// Whether to run the variant `name`.
    pub fn runs(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == name)
    }
}

/// Keys placed (by `place`, which says whether the table took it) until `keys` are present,
/// then shuffled, exactly as `bench_keyed.c` does.
pub fn keys_in_order(keys: usize, mut place: impl FnMut(&[u8; 8]) -> bool) -> Vec<[u8; 8]> {
    let mut seed = 42u64;
    let mut placed = Vec::with_capacity(keys);
    while placed.len() < keys {
        let key = splitmix64(&mut seed).to_le_bytes();
        if place(&key) {
            placed.push(key);
        }
    }
    let mut order: Vec<usize> = (0..keys).collect();
    for i in (1..keys).rev() {
        let bound = u64::try_from(i + 1).expect("fits");
        let j = usize::try_from(splitmix64(&mut seed) % bound).expect("fits");
        order.swap(i, j);
    }
    order.iter().map(|&i| placed[i]).collect()
}

/// Times `rounds` rounds (after one warm-up round) of `iterations` checks by `check`, printing
/// `NAME KEYS NS_PER_CHECK` per round; asserts that every check was admitted.
pub fn run(
    name: &str,
    keys: &[[u8; 8]],
    iterations: u64,
    rounds: u32,
    mut check: impl FnMut(&[u8; 8], u64) -> bool,
) {
    let mut now_ns = 0u64;
    let mut next = 0usize;
    let mut admitted = 0u64;
    for round in 0..=rounds {
        let start = cpu_ns();
        for _ in 0..iterations {
            now_ns += STEP_NS;
            admitted += u64::from(check(black_box(&keys[next]), now_ns));
            next += 1;
            if next == keys.len() {
                next = 0;
            }
        }
        let elapsed_ns = cpu_ns() - start;
        if round > 0 {
            let per_check = elapsed_ns as f64 / iterations as f64;
            println!("{name} {} {per_check:.2}", keys.len());
        }
    }
    let expected = iterations * u64::from(rounds + 1);
    assert_eq!(admitted, expected, "{name}: off the admitted path");
}
