//! Host-wide limits: a [`cg_limiter`] whose tables live in a file mapping shared by every
//! process on the host (`cellgate_host::SharedTable`), in any runtime. The same limiter type
//! as the in-process one (`Limiter<TableSlots>`), so every `cg_limiter_*` function works on
//! it unchanged; this module only opens, and removes, the file.

use crate::boundary::{guard, into_handle, output, slice, write};
use crate::clock::TimeSource;
use crate::keyed::check_table_size;
use crate::limiter::{
    cg_limiter, cg_limiter_options, cg_limiter_quota, core_options, limiter_quotas,
};
use crate::status::cg_status;
use cellgate::check_max_keys;
use core::ffi::{c_char, CStr};

/// `cg_shared_options.access`: a new file is mode 0600, and an existing one may grant no
/// more (the default).
pub const CG_SHARED_ACCESS_OWNER: u32 = 0;
/// `cg_shared_options.access`: mode 0660, for workers running as several users of one group.
pub const CG_SHARED_ACCESS_GROUP: u32 = 1;

/// How `cg_limiter_open_shared` creates and accepts the file. `cg_shared_options_init` fills
/// the defaults; passing NULL means them (owner-only, owned by this process's user).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct cg_shared_options {
    /// `CG_SHARED_ACCESS_OWNER` (0600, the default) or `CG_SHARED_ACCESS_GROUP` (0660). Never
    /// world-accessible: whoever can write the file can reset anyone's limit.
    pub access: u32,
    /// Whether a file owned by another user is accepted (false by default: that user can
    /// reset or exhaust every limit in it).
    pub allow_other_owner: bool,
}

/// Writes the default shared options into `*options`: `CG_SHARED_ACCESS_OWNER`, no other
/// owner.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or valid for writing a `cg_shared_options`.
#[no_mangle]
pub unsafe extern "C" fn cg_shared_options_init(options: *mut cg_shared_options) -> cg_status {
    guard(|| {
        let out = output(options)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_shared_options::default()) };
        Ok(())
    })
}

/// A NUL-terminated path from C, as the bytes Unix paths are.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn path_of<'a>(path: *const c_char) -> Result<&'a std::path::Path, cg_status> {
    if path.is_null() {
        return Err(cg_status::NullArgument);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.is_empty() {
        return Err(cg_status::InvalidArgument);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        core::str::from_utf8(bytes)
            .map(std::path::Path::new)
            .map_err(|_| cg_status::InvalidUtf8)
    }
}

#[cfg(unix)]
impl From<cellgate_host::SharedError> for cg_status {
    fn from(error: cellgate_host::SharedError) -> Self {
        use cellgate_host::SharedError;
        match error {
            SharedError::Unsupported { .. } => Self::SharedUnsupported,
            SharedError::ConfigMismatch { .. } | SharedError::WrongKind { .. } => {
                Self::SharedConfigMismatch
            }
            SharedError::Version { .. } => Self::SharedVersion,
            SharedError::NotRegularFile
            | SharedError::Truncated { .. }
            | SharedError::NotATable
            | SharedError::Corrupt
            | SharedError::Core { .. } => Self::SharedBadFile,
            SharedError::Owner { .. } | SharedError::Permissions { .. } => Self::SharedPermission,
            SharedError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Self::SharedPermission
            }
            SharedError::Io { .. } => Self::SharedIo,
            SharedError::Limiter(error) => error.into(),
            SharedError::Config { .. } => Self::InvalidArgument,
            // SharedError is non_exhaustive: a new refusal is still the file's.
            _ => Self::SharedBadFile,
        }
    }
}

/// Opens the host-wide limiter at `path` (NUL-terminated; e.g. `"/dev/shm/myapp-limits"`),
/// creating its file if none exists, over `count` quotas with `options` (NULL: the defaults),
/// exactly as `cg_limiter_new` takes them; `*out` receives a `cg_limiter` that every
/// `cg_limiter_*` function uses as an in-process one (free it with `cg_limiter_free`).
///
/// Every process (C, Python, Node, Rust) that opens the same path with the same quotas
/// (rate, period, burst, dimension), refill and `max_keys` shares one table: a limit of 20
/// per minute is 20 per minute for the host, not per worker. Names and `on_full` are each
/// process's own; the hash seed is the file's (drawn by its creator; `seeded` is ignored).
/// Creation is race-free when many workers start at once. Pass `CG_NOW` (the host's
/// `CLOCK_MONOTONIC`, one time line for every process) or `cg_monotonic_now` times.
///
/// The table lives as long as its file, across restarts of every process, until
/// `cg_shared_remove` (or a reboot, under `/dev/shm`); it is never resized. Whoever can write
/// the file can reset anyone's limit: keep it owner-only (`shared` NULL) or group-only.
///
/// # Errors
/// `cg_limiter_new`'s (checked before the file is touched); `CG_STATUS_NULL_ARGUMENT`
/// (`path`), `CG_STATUS_INVALID_ARGUMENT` (an empty path, an unknown `access`),
/// `CG_STATUS_SHARED_UNSUPPORTED`, `CG_STATUS_SHARED_CONFIG_MISMATCH` (the file holds another
/// configuration), `CG_STATUS_SHARED_BAD_FILE` (not a table: truncated, garbage, a
/// directory, a symbolic link), `CG_STATUS_SHARED_VERSION`, `CG_STATUS_SHARED_PERMISSION`,
/// `CG_STATUS_SHARED_IO`. Nothing is left partly opened.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `quotas`, `options` and `out` as for `cg_limiter_new`;
/// `shared` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn cg_limiter_open_shared(
    path: *const c_char,
    quotas: *const cg_limiter_quota,
    count: usize,
    options: *const cg_limiter_options,
    shared: *const cg_shared_options,
    out: *mut *mut cg_limiter,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: NULL or NUL-terminated, by the caller's contract.
        let path = unsafe { path_of(path) }?;
        // SAFETY: NULL or `count` readable quotas, by the caller's contract.
        let quotas = unsafe { slice(quotas, count) }?;
        // SAFETY: NULL or a readable options struct, by the caller's contract.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        // SAFETY: NULL or a readable options struct, by the caller's contract.
        let shared = unsafe { shared.as_ref() }.copied().unwrap_or_default();
        // SAFETY: the names are readable as their lengths say, by the caller's contract.
        let entries = unsafe { limiter_quotas(quotas) }?;
        let core_options = core_options(&options)?;
        if let Ok(max_keys) = check_max_keys(u64::try_from(options.max_keys).unwrap_or(u64::MAX)) {
            check_table_size(max_keys, entries.len())?;
        }
        let limiter = open(path, &entries, core_options, &shared)?.with_block_ns(options.block_ns);
        let limiter = cg_limiter {
            limiter,
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(options.clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(limiter)) };
        Ok(())
    })
}

#[cfg(unix)]
fn open(
    path: &std::path::Path,
    entries: &[cellgate::LimiterQuota<'_>],
    options: cellgate::LimiterOptions,
    shared: &cg_shared_options,
) -> Result<cellgate::Limiter<cellgate_host::TableSlots>, cg_status> {
    use cellgate_host::{Access, OpenOptions, SharedTable};
    let access = match shared.access {
        CG_SHARED_ACCESS_OWNER => Access::Owner,
        CG_SHARED_ACCESS_GROUP => Access::Group,
        _ => return Err(cg_status::InvalidArgument),
    };
    let open_options = OpenOptions::new()
        .access(access)
        .allow_other_owner(shared.allow_other_owner);
    Ok(SharedTable::open_limiter(
        path,
        entries,
        options,
        &open_options,
    )?)
}

#[cfg(not(unix))]
fn open(
    _path: &std::path::Path,
    _entries: &[cellgate::LimiterQuota<'_>],
    _options: cellgate::LimiterOptions,
    _shared: &cg_shared_options,
) -> Result<cellgate::Limiter<cellgate_host::TableSlots>, cg_status> {
    Err(cg_status::SharedUnsupported)
}

/// Removes the shared table's file at `path` (`unlink`); `*removed` (NULL: not reported)
/// says whether there was one. Do it only with every process using the table stopped:
/// processes that still have it open go on with the old, nameless table, while the next
/// `cg_limiter_open_shared` creates a fresh one (every key full again). Nothing else removes
/// the file.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`path`), `CG_STATUS_INVALID_ARGUMENT` (an empty path),
/// `CG_STATUS_SHARED_PERMISSION` or `CG_STATUS_SHARED_IO` when the unlink fails for another
/// reason than a missing file, `CG_STATUS_SHARED_UNSUPPORTED` outside Unix.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `removed` is NULL or valid for writing a `bool`.
#[no_mangle]
pub unsafe extern "C" fn cg_shared_remove(path: *const c_char, removed: *mut bool) -> cg_status {
    guard(|| {
        // SAFETY: NULL or NUL-terminated, by the caller's contract.
        let path = unsafe { path_of(path) }?;
        #[cfg(unix)]
        let was_there = cellgate_host::SharedTable::remove(path)?;
        #[cfg(not(unix))]
        let was_there: bool = {
            let _ = path;
            return Err(cg_status::SharedUnsupported);
        };
        if let Some(removed) = core::ptr::NonNull::new(removed) {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { write(removed, was_there) };
        }
        Ok(())
    })
}
