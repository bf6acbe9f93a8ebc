//! [`TableSlots`]: a table's slot storage, in this process's heap or in a shared mapping, as
//! one type, so that a binding holds one limiter type for both.

#[cfg(unix)]
use crate::mapping::Mapping;
use cellgate::{
    group_count_for, KeyedLimiter, KeyedPolicy, NoClock, PolicyEntry, PolicyError, Quota, Refill,
    Seed, SlotGroup, TableError,
};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Arc;

/// What keeps a [`TableSlots`]'s memory alive (held, never read).
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) enum Keeper {
    /// A mapping: a file shared by processes, or anonymous memory of this process.
    #[cfg(unix)]
    Mapping(Arc<Mapping>),
    /// A zeroed heap allocation of this process (a small table, or no mappings).
    Heap(Arc<HeapSlots>),
}

/// A zeroed heap array of slots, freed on drop. Held as a raw pointer, never as a `Box`, so
/// that the shared slices handed out alias nothing unique.
#[derive(Debug)]
pub(crate) struct HeapSlots {
    first: NonNull<SlotGroup>,
    layout: Layout,
}

// SAFETY: the allocation is owned by this value and only used through `&[SlotGroup]` (atomics,
// `Sync` and `Send`), from any thread.
unsafe impl Send for HeapSlots {}
// SAFETY: as for `Send`.
unsafe impl Sync for HeapSlots {}

impl Drop for HeapSlots {
    fn drop(&mut self) {
        // SAFETY: `first` was returned by `alloc_zeroed` with this exact layout, and no slice
        // into it remains: every one comes from a `TableSlots`, which holds an `Arc` of this.
        unsafe { dealloc(self.first.as_ptr().cast(), self.layout) }
    }
}

/// The slots of one keyed table, wherever they live: in this process's heap
/// ([`TableSlots::heap`]) or in a mapping shared by processes
/// ([`SharedTable::slots`](crate::SharedTable::slots), and the limiters that
/// [`SharedTable`](crate::SharedTable) builds). It is the `S` of core's `KeyedLimiter<S, C>`
/// and `KeyedPolicy<N, C, S>`, so that one limiter type serves both; the check costs the same
/// for either (a pointer and a length, no branch). Cloning it shares the same slots, which stay
/// allocated (or mapped) until the last clone is dropped.
#[derive(Clone, Debug)]
pub struct TableSlots {
    first: NonNull<SlotGroup>,
    count: usize,
    /// Keeps the slots allocated or mapped; never read.
    _keeper: Keeper,
}

// SAFETY: the pointer is into memory `_keeper` keeps alive; the slots are only used through
// `&[SlotGroup]`, and `SlotGroup` (atomics only) is `Send` and `Sync`.
unsafe impl Send for TableSlots {}
// SAFETY: as for `Send`.
unsafe impl Sync for TableSlots {}

impl TableSlots {
    /// # Safety
    /// `first` must be aligned for `SlotGroup`, and `count` groups from it valid for reads and
    /// writes through atomics (all bit patterns are valid `SlotGroup`s) for as long as `keeper`
    /// lives, by no other means than atomics.
    pub(crate) unsafe fn from_raw(first: NonNull<SlotGroup>, count: usize, keeper: Keeper) -> Self {
        Self {
            first,
            count,
            _keeper: keeper,
        }
    }

    /// A fresh table's slots for `max_keys` keys (`group_count_for(max_keys)` groups, all empty)
    /// for this process alone: what an in-process limiter would allocate, as a `TableSlots`.
    /// On Unix a table of 64 KiB or more (about 2,000 keys) is a private anonymous mapping:
    /// zero, cache-line (page) aligned, committed only as keys first write each page (a fresh
    /// table of 10⁶ keys costs no resident memory, a full one 32 bytes per key), and returned
    /// to the system when the last clone is dropped. A smaller one, and any table elsewhere,
    /// is a zeroed, cache-line aligned heap allocation. A refusal is an error, not an abort.
    ///
    /// # Errors
    /// [`TableError::OutOfMemory`] when the size overflows or the system refuses it.
    pub fn heap(max_keys: usize) -> Result<Self, TableError> {
        let count = group_count_for(max_keys);
        let bytes = core::mem::size_of::<SlotGroup>()
            .checked_mul(count)
            .filter(|&bytes| bytes <= isize::MAX.unsigned_abs())
            .ok_or(TableError::OutOfMemory)?;
        // `group_count_for` is at least PROBE_WINDOW / GROUP_SLOTS, so the size is never 0.
        if bytes == 0 {
            return Err(TableError::OutOfMemory);
        }
        Self::fresh(bytes, count)
    }

    /// `count` zeroed groups (`bytes` of them, not 0): in an anonymous mapping from
    /// [`MAPPED_TABLE_BYTES`] up, in the heap below (where a table is a few pages at most: a
    /// mapping would round a 384-byte table up to a 4 KiB page, and cost a system call).
    fn fresh(bytes: usize, count: usize) -> Result<Self, TableError> {
        #[cfg(unix)]
        if bytes >= MAPPED_TABLE_BYTES {
            let mapping = Arc::new(Mapping::anonymous(bytes).map_err(|_| TableError::OutOfMemory)?);
            // Offset 0 of a page-aligned mapping of exactly `count` groups: always in range.
            return mapping.slots(0, count).ok_or(TableError::OutOfMemory);
        }
        let layout = Layout::from_size_align(bytes, core::mem::align_of::<SlotGroup>())
            .map_err(|_| TableError::OutOfMemory)?;
        // SAFETY: the layout has a non-zero size (checked by the caller).
        let memory = unsafe { alloc_zeroed(layout) };
        let first = NonNull::new(memory.cast::<SlotGroup>()).ok_or(TableError::OutOfMemory)?;
        let keeper = Keeper::Heap(Arc::new(HeapSlots { first, layout }));
        // SAFETY: a fresh allocation of `count` groups, aligned for `SlotGroup` (64 bytes),
        // zeroed: a zero `SlotGroup` is an empty one (`SlotGroup::new()`, tested in this
        // crate) and every bit pattern is a valid one; it lives as long as the keeper.
        Ok(unsafe { Self::from_raw(first, count, keeper) })
    }
}

/// The size from which an in-process table is an anonymous mapping rather than a heap
/// allocation (see [`TableSlots::heap`]): 64 KiB, about 2,000 keys.
#[cfg(unix)]
const MAPPED_TABLE_BYTES: usize = 64 * 1024;

/// An in-process keyed limiter over [`TableSlots::heap`]: the same decisions as
/// `KeyedLimiter::try_with_options(quota, refill, max_keys, seed, clock)`, but of the type a
/// shared one has (`KeyedLimiter<TableSlots, C>`), so that a binding holds one type for both.
///
/// # Errors
/// [`TableError::OutOfMemory`] when the slots cannot be allocated.
pub fn in_process_limiter<C>(
    quota: Quota,
    refill: Refill,
    max_keys: usize,
    seed: Seed,
    clock: C,
) -> Result<KeyedLimiter<TableSlots, C>, TableError> {
    KeyedLimiter::with_storage(TableSlots::heap(max_keys)?, quota, refill, seed, clock)
}

/// An in-process keyed policy over [`TableSlots::heap`] tables: the same decisions as
/// `KeyedPolicy::with_clock(entries, max_keys, seed, clock)`, of the type a shared one has
/// (`KeyedPolicy<N, C, TableSlots>`).
///
/// # Errors
/// [`PolicyError::Empty`], [`PolicyError::TooManyQuotas`], or [`PolicyError::OutOfMemory`]
/// when the tables cannot be allocated.
pub fn in_process_policy<N, C>(
    entries: impl IntoIterator<Item = PolicyEntry<N>>,
    max_keys: usize,
    seed: Seed,
    clock: C,
) -> Result<KeyedPolicy<N, C, TableSlots>, PolicyError> {
    let entries: Vec<PolicyEntry<N>> = entries.into_iter().collect();
    if entries.len() > cellgate::MAX_POLICY_QUOTAS {
        return Err(PolicyError::TooManyQuotas);
    }
    let tables = entries
        .iter()
        .map(|entry| {
            TableSlots::heap(max_keys)
                .and_then(|slots| {
                    KeyedLimiter::with_storage(slots, entry.quota, Refill::Greedy, seed, NoClock)
                })
                .map_err(|_| PolicyError::OutOfMemory)
        })
        .collect::<Result<Vec<_>, _>>()?;
    KeyedPolicy::from_tables(entries, tables, clock)
}

/// Core's [`Limiter`](cellgate::Limiter) over `quotas` and `options` with its tables in this
/// process's heap, of the type a shared one has (`Limiter<TableSlots>`, see
/// [`SharedTable::open_limiter`](crate::SharedTable::open_limiter)), so that a binding holds one
/// type whether its store is in process or host-wide. Decides exactly as `Limiter::new`.
///
/// # Errors
/// `Limiter::new`'s ([`ConfigError::OutOfMemory`](cellgate::ConfigError::OutOfMemory) when the
/// tables cannot be allocated).
pub fn in_process(
    quotas: &[cellgate::LimiterQuota<'_>],
    options: cellgate::LimiterOptions,
) -> Result<cellgate::Limiter<TableSlots>, cellgate::ConfigError> {
    cellgate::Limiter::check_config(quotas, &options)?;
    let tables = quotas
        .iter()
        .map(|quota| {
            TableSlots::heap(options.max_keys)
                .and_then(|slots| {
                    KeyedLimiter::with_storage(
                        slots,
                        quota.quota,
                        options.refill,
                        options.seed,
                        NoClock,
                    )
                })
                .map_err(|_| cellgate::ConfigError::OutOfMemory)
        })
        .collect::<Result<Vec<_>, _>>()?;
    cellgate::Limiter::with_tables(quotas, options, tables)
}

impl AsRef<[SlotGroup]> for TableSlots {
    #[inline(always)]
    fn as_ref(&self) -> &[SlotGroup] {
        // SAFETY: `from_raw`'s contract: `count` aligned slots from `first`, valid for as long
        // as `self._keeper` lives, which outlives the borrow of `self`. They are only accessed
        // through atomics, by this and (for a mapping) other processes, so sharing them as
        // `&[SlotGroup]` is sound (`SlotGroup` is `Sync`; atomics permit mutation through a shared
        // reference). Shared mode is refused unless those atomics are lock-free in hardware,
        // so other processes' accesses are atomic too.
        unsafe { core::slice::from_raw_parts(self.first.as_ptr(), self.count) }
    }
}

#[cfg(test)]
mod tests {
    use super::TableSlots;
    use cellgate::{KeyedLimiter, NoClock, PolicyError, Quota, Refill, Seed, SlotGroup};

    #[test]
    fn a_zeroed_group_is_an_empty_one() {
        // The files and heap tables here are zero bytes; core's empty group must be too.
        let slot = SlotGroup::new();
        // SAFETY: reads the 192 initialised bytes of a local `SlotGroup` (atomics of plain
        // integers, no padding), which nothing else accesses.
        let bytes = unsafe {
            core::slice::from_raw_parts(
                (&slot as *const SlotGroup).cast::<u8>(),
                core::mem::size_of::<SlotGroup>(),
            )
        };
        assert!(bytes.iter().all(|&byte| byte == 0), "{bytes:?}");
    }

    #[test]
    fn small_tables_are_heap_allocations_and_large_ones_mappings() {
        let small = TableSlots::heap(10).unwrap();
        assert!(matches!(small._keeper, super::Keeper::Heap(_)));
        assert_eq!(
            small.as_ref().as_ptr() as usize % 64,
            0,
            "cache-line aligned"
        );
        #[cfg(unix)]
        {
            // 100,000 keys: 3.2 MB, far above the 64 KiB from which tables are mapped.
            let large = TableSlots::heap(100_000).unwrap();
            assert!(matches!(large._keeper, super::Keeper::Mapping(_)));
        }
    }

    #[test]
    fn heap_slots_make_an_in_process_table() {
        let slots = TableSlots::heap(100).unwrap();
        assert_eq!(slots.as_ref().len(), cellgate::group_count_for(100));
        assert_eq!(
            slots.as_ref().as_ptr() as usize % 64,
            0,
            "cache-line aligned"
        );
        let limiter = KeyedLimiter::with_storage(
            slots.clone(),
            Quota::per_hour(2).unwrap(),
            Refill::Greedy,
            Seed::new(1, 2),
            NoClock,
        )
        .unwrap();
        assert!(limiter.check_at(b"k", 0, 2).unwrap().allowed);
        assert!(!limiter.check_at(b"k", 0, 1).unwrap().allowed);
        // A second limiter over a clone of the storage shares the keys.
        let twin = KeyedLimiter::with_storage(
            slots,
            Quota::per_hour(2).unwrap(),
            Refill::Greedy,
            Seed::new(1, 2),
            NoClock,
        )
        .unwrap();
        assert!(!twin.check_at(b"k", 0, 1).unwrap().allowed);
        assert_eq!(
            TableSlots::heap(usize::MAX).err(),
            Some(cellgate::TableError::OutOfMemory)
        );
    }

    #[test]
    fn in_process_builders_decide_as_core_s_own() {
        use cellgate::PolicyEntry;
        let quota = Quota::per_second(3).unwrap();
        let ours = super::in_process_limiter(quota, Refill::Interval, 50, Seed::new(1, 2), NoClock)
            .unwrap();
        let core =
            KeyedLimiter::with_options(quota, Refill::Interval, 50, Seed::new(1, 2), NoClock);
        let entries = [
            PolicyEntry {
                name: "a",
                quota,
                dimension: 0,
            },
            PolicyEntry {
                name: "b",
                quota: Quota::per_minute(100).unwrap(),
                dimension: 1,
            },
        ];
        let our_policy = super::in_process_policy(entries, 50, Seed::new(1, 2), NoClock).unwrap();
        let core_policy = cellgate::KeyedPolicy::new(entries, 50, Seed::new(1, 2)).unwrap();
        for step in 0..500u64 {
            let key = (step % 7).to_le_bytes();
            let now_ns = step * 100_000_000;
            assert_eq!(
                ours.check_at(key, now_ns, 1 + step % 3),
                core.check_at(key, now_ns, 1 + step % 3)
            );
            let costs = [step % 2, step % 40];
            assert_eq!(
                our_policy.check_at(key, now_ns, &costs).unwrap(),
                core_policy.check_at(key, now_ns, &costs).unwrap()
            );
        }
        let nine: Vec<_> = (0..9)
            .map(|_| PolicyEntry {
                name: "q",
                quota,
                dimension: 0,
            })
            .collect();
        assert_eq!(
            super::in_process_policy(nine, 10, Seed::new(1, 2), NoClock).err(),
            Some(PolicyError::TooManyQuotas)
        );
    }
}
