//! The memory mappings (with `slots.rs`, the crate's only unsafe code): a file shared by
//! processes, or anonymous memory for a table of this process alone.

use crate::error::SharedError;
use crate::slots::{Keeper, TableSlots};
use cellgate::SlotGroup;
use rustix::mm::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags};
use std::fs::File;
use std::ptr::NonNull;
use std::sync::Arc;

/// A read-write mapping, unmapped on drop: `MAP_SHARED` of a whole file ([`Mapping::map`]), or
/// private anonymous memory ([`Mapping::anonymous`]).
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is a range of shared memory owned by this value; it is only read and
// written through atomics (the slots), which any thread (or process) may use at once, and the
// pointer stays valid until drop, wherever the value moves.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`: `&Mapping` only gives out `&[SlotGroup]`, and `SlotGroup` is `Sync`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `file`, which the caller has checked is at least `len`
    /// bytes long (a mapping beyond the end of a file faults on access).
    pub(crate) fn map(file: &File, len: usize) -> Result<Self, SharedError> {
        // SAFETY: a null hint asks the kernel for a fresh range, so no existing memory of this
        // process is replaced; the file descriptor is open for reading and writing, and the
        // caller checked that the file holds `len` bytes.
        let base = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )
        }
        .map_err(|error| SharedError::io("mmap", error))?;
        Self::mapped(base, len)
    }

    /// `len` bytes of private anonymous memory: page-aligned, zero, and committed by the kernel
    /// only as pages are first written (a table's untouched groups cost no memory), returned to
    /// the system on drop (not kept by the C library's heap, as freed memory is). `len` is not 0.
    pub(crate) fn anonymous(len: usize) -> Result<Self, SharedError> {
        // SAFETY: a null hint asks the kernel for a fresh range, so no existing memory of this
        // process is replaced; anonymous memory has no file to outlive.
        let base = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .map_err(|error| SharedError::io("mmap", error))?;
        Self::mapped(base, len)
    }

    /// The mapping `mmap` returned at `base`, `len` bytes; an error for a null address.
    fn mapped(base: *mut core::ffi::c_void, len: usize) -> Result<Self, SharedError> {
        let base = NonNull::new(base.cast::<u8>()).ok_or(SharedError::Io {
            operation: "mmap",
            source: std::io::Error::other("mmap returned a null address"),
        })?;
        Ok(Self { base, len })
    }

    /// `count` slot groups at byte `offset`, keeping the mapping alive; `None` unless they lie
    /// within the mapping at the group alignment.
    pub(crate) fn slots(self: &Arc<Self>, offset: usize, count: usize) -> Option<TableSlots> {
        let bytes = core::mem::size_of::<SlotGroup>().checked_mul(count)?;
        let end = offset.checked_add(bytes)?;
        if end > self.len || offset.checked_rem(core::mem::align_of::<SlotGroup>()) != Some(0) {
            return None;
        }
        // SAFETY: `offset + bytes <= len`, so the pointer stays within the mapping (or one
        // past its end for an empty range).
        let first = unsafe { self.base.as_ptr().add(offset) };
        // The mapping is page-aligned and `offset` a multiple of the group alignment.
        let first = NonNull::new(first.cast::<SlotGroup>())?;
        // SAFETY: `first` is aligned for `SlotGroup`, and `count` groups from it lie within the
        // mapping, which the keeper keeps mapped; every byte pattern is a valid `SlotGroup`
        // (`u64` and `u128` atomics), accessed by every process through atomics only.
        Some(unsafe { TableSlots::from_raw(first, count, Keeper::Mapping(Arc::clone(self))) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is the one `mmap` returned, and nothing borrows it any more:
        // every slice into it comes from a `TableSlots`, which holds an `Arc` of this mapping.
        // An error (impossible for a valid range) leaves the memory mapped, which is safe.
        let _ = unsafe { munmap(self.base.as_ptr().cast(), self.len) };
    }
}
