//! Shared helpers for the cellgate benchmarks: criterion's mode, reproducible pseudo-random keys,
//! and the process's resident memory.

use std::fs;

/// Whether this bench binary runs to *measure* (`cargo bench`, or `--profile-time`), rather
/// than criterion's test mode (`cargo bench -- --test`, `cargo test --benches`: each benchmark
/// once, unmeasured) or `--list`.
///
/// Criterion decides this from the same arguments (`--bench` without `--test`); benchmarks use
/// it to keep slow setups (a million keys, in a debug build under `cargo test`) out of test
/// mode, where a smaller size exercises the same code.
pub fn measuring() -> bool {
    let mut bench = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => bench = true,
            "--test" | "--list" => return false,
            _ => {}
        }
    }
    bench
}

/// SplitMix64's output function: a bijection on `u64` that scatters consecutive inputs.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small deterministic generator (SplitMix64), so every run uses the same keys and order.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// A pseudo-random index below `bound` (which must not be 0); the bias of the modulo is
    /// irrelevant for shuffling benchmark keys.
    pub fn below(&mut self, bound: usize) -> usize {
        // u64 -> usize: a 64-bit target; the result is below `bound` anyway.
        (self.next_u64() % bound as u64) as usize
    }
}

/// An 8-byte key: the bytes of `mix64(index)`, so keys are distinct (`mix64` is a bijection)
/// and look random, like client identifiers.
pub fn key(index: u64) -> [u8; 8] {
    mix64(index).to_le_bytes()
}

/// Puts `items` in a pseudo-random order: a Fisher-Yates shuffle seeded with `seed`.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// `count` distinct 8-byte keys ([`key`] of `0..count`), in a pseudo-random order
/// ([`shuffle`] with `seed`).
pub fn shuffled_keys(count: usize, seed: u64) -> Vec<[u8; 8]> {
    let mut keys: Vec<[u8; 8]> = (0..count as u64).map(key).collect();
    shuffle(&mut keys, seed);
    keys
}

/// A cursor that walks a slice round and round: `next` returns the element after the last.
#[derive(Debug)]
pub struct Cycle<'a, T> {
    items: &'a [T],
    index: usize,
}

impl<'a, T> Cycle<'a, T> {
    /// A cursor at the start of `items`, which must not be empty.
    pub fn new(items: &'a [T]) -> Self {
        assert!(!items.is_empty(), "a cycle needs items");
        Self { items, index: 0 }
    }

    /// The next element, wrapping at the end.
    #[inline(always)]
    pub fn next_item(&mut self) -> &'a T {
        let item = &self.items[self.index];
        self.index += 1;
        if self.index == self.items.len() {
            self.index = 0;
        }
        item
    }
}

/// The process's resident set size in bytes: the second field of `/proc/self/statm` (pages),
/// times 4 KiB, the page size of x86_64 and most aarch64 Linux systems. `None` where
/// `/proc` is not available.
pub fn resident_bytes() -> Option<u64> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The size of a transparent huge page on x86_64 and aarch64 (4 KiB base pages) Linux.
pub const HUGE_PAGE_BYTES: usize = 2 << 20;

/// `len` values of `T` in anonymous memory advised as transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`, honoured when `/sys/kernel/mm/transparent_hugepage/enabled` is
/// `madvise` or `always`), so that a table of tens of MiB is covered by a few dozen TLB entries
/// instead of ten thousand. Elsewhere than Linux, an ordinary allocation.
///
/// The keyed benchmarks build a cellgate table over it with `KeyedLimiter::with_slots`, to
/// show how much of a check among a million keys is address translation.
pub struct HugePages<T> {
    #[cfg(target_os = "linux")]
    first: *mut T,
    #[cfg(target_os = "linux")]
    len: usize,
    /// The whole mapping: its start and length in bytes.
    #[cfg(target_os = "linux")]
    mapping: (*mut libc::c_void, usize),
    #[cfg(not(target_os = "linux"))]
    values: Box<[T]>,
}

impl<T> HugePages<T> {
    /// `len` values made by `init`, in (advised) huge pages.
    #[cfg(target_os = "linux")]
    pub fn new(len: usize, mut init: impl FnMut() -> T) -> Self {
        assert!(std::mem::align_of::<T>() <= HUGE_PAGE_BYTES);
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("the size fits a usize");
        // One huge page more than needed, to start at a huge-page boundary.
        let mapped = bytes.div_ceil(HUGE_PAGE_BYTES).max(1) * HUGE_PAGE_BYTES + HUGE_PAGE_BYTES;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing: it
        // aliases nothing; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap of {mapped} bytes failed");
        let offset = (base as usize).next_multiple_of(HUGE_PAGE_BYTES) - base as usize;
        // SAFETY: `offset < HUGE_PAGE_BYTES`, so the pointer stays inside the mapping.
        let start = unsafe { base.cast::<u8>().add(offset) };
        // SAFETY: `[start, start + mapped - offset)` lies inside the mapping just made. A
        // refusal (THP disabled) only leaves base pages, so the result is not checked.
        unsafe {
            libc::madvise(start.cast(), mapped - offset, libc::MADV_HUGEPAGE);
        }
        let first = start.cast::<T>();
        for index in 0..len {
            // SAFETY: `index < len`, and `len` values of `T` fit after `start` (which is
            // aligned for `T`: a huge-page boundary, and `align_of::<T>()` divides it).
            unsafe { first.add(index).write(init()) };
        }
        Self {
            first,
            len,
            mapping: (base, mapped),
        }
    }

    /// `len` values made by `init` (an ordinary allocation: huge pages are Linux-only here).
    #[cfg(not(target_os = "linux"))]
    pub fn new(len: usize, init: impl FnMut() -> T) -> Self {
        Self {
            values: std::iter::repeat_with(init).take(len).collect(),
        }
    }

    /// The values.
    pub fn as_slice(&self) -> &[T] {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `len` values initialized in `new` start at `first`, and stay until
            // `drop`, which cannot run while this borrow of `self` lives.
            unsafe { std::slice::from_raw_parts(self.first, self.len) }
        }
        #[cfg(not(target_os = "linux"))]
        {
            &self.values
        }
    }

    /// Bytes of this mapping backed by huge pages, from `/proc/self/smaps` (`AnonHugePages`),
    /// or `None` when unknown.
    pub fn huge_bytes(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            let start = format!("{:x}-", self.mapping.0 as usize);
            let smaps = fs::read_to_string("/proc/self/smaps").ok()?;
            let line = smaps
                .lines()
                .skip_while(|line| !line.starts_with(&start))
                .skip(1)
                .take_while(|line| line.contains(": ") || line.ends_with(':'))
                .find(|line| line.starts_with("AnonHugePages:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

#[cfg(target_os = "linux")]
impl<T> Drop for HugePages<T> {
    fn drop(&mut self) {
        let values = std::ptr::slice_from_raw_parts_mut(self.first, self.len);
        // SAFETY: the values were initialized in `new` and are dropped once, here; nothing
        // borrows them any more (`as_slice` borrows `self`).
        unsafe { std::ptr::drop_in_place(values) };
        // SAFETY: the mapping made in `new`, unmapped once; nothing points into it now.
        unsafe { libc::munmap(self.mapping.0, self.mapping.1) };
    }
}

impl<T> std::fmt::Debug for HugePages<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugePages")
            .field("len", &self.as_slice().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_keys_are_a_permutation() {
        let mut keys = shuffled_keys(1000, 7);
        assert_ne!(keys[..10], (0..10).map(key).collect::<Vec<_>>()[..]);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn huge_pages_hold_their_values() {
        let mut next = 0u64;
        let pages = HugePages::new(1000, || {
            next += 1;
            next
        });
        assert_eq!(pages.as_slice().len(), 1000);
        assert_eq!(pages.as_slice()[999], 1000);
        let big = HugePages::new(4 * HUGE_PAGE_BYTES / 8, || 1u64);
        assert_eq!(
            big.as_slice().iter().sum::<u64>(),
            big.as_slice().len() as u64
        );
        // Granted when transparent huge pages are enabled (`madvise` or `always`).
        eprintln!("huge bytes: {:?}", big.huge_bytes());
    }

    #[test]
    fn measuring_is_false_under_cargo_test() {
        assert!(!measuring());
    }
}

/// Checks run before measuring to assert the path a benchmark claims to measure.
pub const PRECHECKS: u32 = 5_000;

/// Runs `check` [`PRECHECKS`] times, asserting that each answer is `expected`: a benchmark
/// really stays on the path (admitted or denied) its name says.
pub fn assert_path(name: &str, expected: bool, mut check: impl FnMut() -> bool) {
    for i in 0..PRECHECKS {
        assert_eq!(
            check(),
            expected,
            "{name}: check {i} left the measured path"
        );
    }
}

/// The criterion settings every bench uses: short enough for a 2-core machine.
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

/// governor's quota of `rate` per second.
pub fn governor_quota(rate: u32) -> governor::Quota {
    governor::Quota::per_second(std::num::NonZeroU32::new(rate).expect("a non-zero rate"))
}

/// A governor clock whose time is set by the benchmark without atomics: governor's way of
/// injecting time, comparable to cellgate's `check_at(now, ..)`.
#[derive(Debug, Default)]
pub struct StepClock {
    now_ns: std::cell::Cell<u64>,
}

impl StepClock {
    /// Moves the clock forward.
    pub fn advance_ns(&self, delta_ns: u64) {
        self.now_ns.set(self.now_ns.get() + delta_ns);
    }
}

impl governor::clock::Clock for StepClock {
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> governor::nanos::Nanos {
        governor::nanos::Nanos::from(self.now_ns.get())
    }
}
