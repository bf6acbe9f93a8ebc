//! The boundary every exported function goes through: the panic guard, and the checks that
//! turn raw pointers from C into references (or a `cg_status`).

use crate::status::cg_status;
use core::ptr::NonNull;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`, turning its error into the status and a panic into [`cg_status::Panic`], so
/// that no unwind ever crosses into C.
///
/// `AssertUnwindSafe`: after a caught panic the caller gets `Panic` and the handles stay
/// usable; every state they hold is atomic words whose every value is valid (a panic cannot
/// leave one half-written), so observing them after the panic breaks no invariant.
#[inline(always)]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), cg_status>) -> cg_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => cg_status::Ok,
        Ok(Err(status)) => status,
        Err(_) => cg_status::Panic,
    }
}

/// A shared reference to the object behind a handle or input pointer; NULL is
/// [`cg_status::NullArgument`].
///
/// # Safety
/// `ptr` is NULL or points to a live, properly aligned `T` that nothing mutates through a
/// unique reference during `'a` (every handle type here is only ever mutated through atomics).
#[inline(always)]
pub(crate) unsafe fn object<'a, T>(ptr: *const T) -> Result<&'a T, cg_status> {
    // SAFETY: the caller guarantees NULL or a valid, aligned, shared-readable `T`.
    unsafe { ptr.as_ref() }.ok_or(cg_status::NullArgument)
}

/// A non-NULL output pointer, to be written with [`NonNull::write`] once the function has
/// succeeded (never read: the memory may be uninitialized).
#[inline(always)]
pub(crate) fn output<T>(ptr: *mut T) -> Result<NonNull<T>, cg_status> {
    NonNull::new(ptr).ok_or(cg_status::NullArgument)
}

/// Writes `value` through an output pointer obtained from [`output`].
///
/// # Safety
/// `out` is valid for writes of a `T` and properly aligned (the caller's contract).
#[inline(always)]
pub(crate) unsafe fn write<T>(out: NonNull<T>, value: T) {
    // SAFETY: the caller guarantees `out` is writable and aligned; `write` does not read or
    // drop the old contents, which may be uninitialized.
    unsafe { out.as_ptr().write(value) }
}

/// `len` elements from `ptr`. A length of 0 is the empty slice whatever `ptr` is (NULL
/// included); NULL with a non-zero length is [`cg_status::NullArgument`], a length whose byte
/// size exceeds `isize::MAX` is [`cg_status::InvalidArgument`].
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` points to `len` initialized, aligned `T`s that
/// are not mutated during `'a`.
#[inline(always)]
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], cg_status> {
    // Ordered for the common case, a non-NULL pointer with a length: two tests for bytes (a
    // key on every keyed check), where testing the length for 0 first took three.
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(cg_status::NullArgument)
        };
    }
    if len > isize::MAX.unsigned_abs() / core::mem::size_of::<T>().max(1) {
        return Err(cg_status::InvalidArgument);
    }
    // With length 0, C may pass any pointer; an empty slice still needs an aligned one. (For
    // bytes every pointer is aligned, and this test compiles to nothing.)
    if len == 0 && !ptr.is_aligned() {
        return Ok(&[]);
    }
    // SAFETY: non-NULL and aligned; `len` readable elements when `len > 0` (the caller's
    // contract), none to read when it is 0; and the byte size fits in isize as checked above.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A caller's output buffer of `len` bytes, as a mutable slice. A length of 0 is an empty
/// slice whatever `ptr` is; NULL with a non-zero length is [`cg_status::NullArgument`].
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` is valid for writes of `len` bytes, and nothing
/// else accesses them during `'a`.
pub(crate) unsafe fn buffer<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], cg_status> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(cg_status::NullArgument);
    }
    if len > isize::MAX.unsigned_abs() {
        return Err(cg_status::InvalidArgument);
    }
    // SAFETY: non-NULL and writable for `len` bytes by the caller's contract; any byte value
    // is a valid u8, so writing before reading is sound even if the bytes were uninitialized
    // (we never read them).
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Moves `value` to the heap and hands ownership to C as a handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops a handle given out by [`into_handle`]; NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or was returned by [`into_handle`] for this `T` and not freed since; no other
/// thread uses it any more.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller guarantees `ptr` came from `Box::into_raw` and is freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status() {
        assert_eq!(guard(|| panic!("boom")), cg_status::Panic);
        assert_eq!(guard(|| Err(cg_status::TableFull)), cg_status::TableFull);
        assert_eq!(guard(|| Ok(())), cg_status::Ok);
    }

    #[test]
    fn slices_from_c() {
        // SAFETY: length 0 never dereferences the pointer.
        assert_eq!(unsafe { slice::<u8>(core::ptr::null(), 0) }, Ok(&[][..]));
        // SAFETY: NULL with a length is refused before any dereference.
        let null = unsafe { slice::<u8>(core::ptr::null(), 3) };
        assert_eq!(null, Err(cg_status::NullArgument));
        let bytes = [1u8, 2, 3];
        // SAFETY: a length above isize::MAX is refused before any dereference.
        let too_long = unsafe { slice(bytes.as_ptr(), usize::MAX) };
        assert_eq!(too_long, Err(cg_status::InvalidArgument));
        // SAFETY: `bytes` holds 3 readable bytes.
        assert_eq!(unsafe { slice(bytes.as_ptr(), 3) }, Ok(&bytes[..]));
        // SAFETY: length 0 reads nothing, whatever the (non-NULL) pointer.
        assert_eq!(unsafe { slice(bytes.as_ptr(), 0) }, Ok(&[][..]));
        // SAFETY: a NULL pointer with a length that is also too long is refused as NULL.
        let null_too_long = unsafe { slice::<u8>(core::ptr::null(), usize::MAX) };
        assert_eq!(null_too_long, Err(cg_status::NullArgument));
        let costs = [7u64; 2];
        // SAFETY: a count whose byte size exceeds isize::MAX is refused first.
        let too_many = unsafe { slice(costs.as_ptr(), usize::MAX / 4) };
        assert_eq!(too_many, Err(cg_status::InvalidArgument));
        // SAFETY: length 0 reads nothing; a misaligned pointer gives the empty slice without
        // being used.
        let misaligned = unsafe { slice(costs.as_ptr().cast::<u8>().add(1).cast::<u64>(), 0) };
        assert_eq!(misaligned, Ok(&[][..]));
        // SAFETY: length 0 reads nothing; an aligned pointer.
        assert_eq!(unsafe { slice(costs.as_ptr(), 0) }, Ok(&[][..]));
    }

    #[test]
    fn handles_round_trip_and_null_frees_nothing() {
        let handle = into_handle(String::from("owned"));
        // SAFETY: a live handle from `into_handle`, read before it is freed.
        assert_eq!(unsafe { object(handle) }.map(String::as_str), Ok("owned"));
        // SAFETY: freed once; NULL is allowed.
        unsafe {
            free_handle(handle);
            free_handle::<String>(core::ptr::null_mut());
        }
        // SAFETY: NULL is refused.
        assert!(unsafe { object::<String>(core::ptr::null()) }.is_err());
    }
}
