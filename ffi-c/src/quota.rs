//! [`cg_quota`]: a quota as plain data, built from integers or parsed from rate strings.

use crate::boundary::{guard, output, slice, write};
use crate::status::cg_status;
use cellgate::{parse_quotas, Quota};
use core::ffi::{c_char, CStr};

/// Nanoseconds in one second.
pub const CG_NS_PER_SECOND: u64 = 1_000_000_000_u64;
/// Nanoseconds in one minute.
pub const CG_NS_PER_MINUTE: u64 = 60_000_000_000_u64;
/// Nanoseconds in one hour.
pub const CG_NS_PER_HOUR: u64 = 3_600_000_000_000_u64;
/// Nanoseconds in one day.
pub const CG_NS_PER_DAY: u64 = 86_400_000_000_000_u64;

// Literals with a `u64` suffix: the header says `1000000000ull`, so `3 * CG_NS_PER_SECOND`
// is computed in 64 bits in C (a plain `1000000000` is an `int` there, and overflows).
const _: () = assert!(CG_NS_PER_SECOND == cellgate::NS_PER_SECOND);
const _: () = assert!(CG_NS_PER_MINUTE == cellgate::NS_PER_MINUTE);
const _: () = assert!(CG_NS_PER_HOUR == cellgate::NS_PER_HOUR);
const _: () = assert!(CG_NS_PER_DAY == cellgate::NS_PER_DAY);

/// Pass as a text length to mean "the text is NUL-terminated" (for rate strings, policy
/// names, addresses; never for keys, which are bytes). `SIZE_MAX` in the header (cbindgen
/// cannot write it, so `tests/header.rs` adds the macro).
pub const CG_NUL_TERMINATED: usize = usize::MAX;

/// A quota: `rate_cost` cost units per `period_ns` nanoseconds, at most `burst_cost` at once
/// (the bucket's capacity; usually equal to `rate_cost`).
///
/// Plain data: fill it yourself, or with `cg_quota_new` / `cg_quota_parse`, which validate it.
/// Every function that takes a quota validates it again and fails with the quota's status
/// (`CG_STATUS_ZERO_RATE`, ...), so an invalid quota never reaches a limiter.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct cg_quota {
    /// Cost units replenished per period (at least 1).
    pub rate_cost: u64,
    /// The period in nanoseconds (at least 1).
    pub period_ns: u64,
    /// The most cost admitted at once (at least 1).
    pub burst_cost: u64,
}

impl cg_quota {
    pub(crate) fn to_core(self) -> Result<Quota, cg_status> {
        Quota::with_parts(self.rate_cost, self.period_ns, self.burst_cost).map_err(Into::into)
    }

    pub(crate) fn from_core(quota: Quota) -> Self {
        Self {
            rate_cost: quota.rate_cost(),
            period_ns: quota.period_ns(),
            burst_cost: quota.burst_cost(),
        }
    }
}

/// Reads text given as pointer and length (or `CG_NUL_TERMINATED`) as UTF-8.
///
/// # Safety
/// `text` is NULL or points to `len` readable bytes, or to a NUL-terminated string when `len`
/// is [`CG_NUL_TERMINATED`].
pub(crate) unsafe fn text<'a>(text: *const c_char, len: usize) -> Result<&'a str, cg_status> {
    let bytes = if len == CG_NUL_TERMINATED {
        if text.is_null() {
            return Err(cg_status::NullArgument);
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's contract.
        unsafe { CStr::from_ptr(text) }.to_bytes()
    } else {
        // SAFETY: NULL or `len` readable bytes by the caller's contract.
        unsafe { slice(text.cast::<u8>(), len) }?
    };
    core::str::from_utf8(bytes).map_err(|_| cg_status::InvalidUtf8)
}

/// Builds and validates a quota of `rate_cost` per `period_ns` with `burst_cost` (pass
/// `rate_cost` for the usual burst), into `*out`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`out`), `CG_STATUS_ZERO_RATE`, `CG_STATUS_ZERO_PERIOD`,
/// `CG_STATUS_ZERO_BURST`, `CG_STATUS_CAPACITY_OVERFLOW`.
///
/// # Safety
/// `out` is NULL or valid for writing a `cg_quota`.
#[no_mangle]
pub unsafe extern "C" fn cg_quota_new(
    rate_cost: u64,
    period_ns: u64,
    burst_cost: u64,
    out: *mut cg_quota,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let quota = Quota::with_parts(rate_cost, period_ns, burst_cost)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_quota::from_core(quota)) };
        Ok(())
    })
}

/// Parses one rate string in the notation of Python's `limits` (`"10/second"`,
/// `"10 per minute"`, `"500/7 days"`, `"5/s (burst 2)"`; units `ns`, `us`, `ms`, `s`, `m`,
/// `h`, `d`, `month` = 30 days, `year` = 360 days, and their long forms) into `*out`.
///
/// `len` is the text's length in bytes, or `CG_NUL_TERMINATED`. On a parse failure,
/// `*error_offset` (when `error_offset` is not NULL) receives the byte offset of the problem.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` (`text` with a non-zero length, or `out`), `CG_STATUS_INVALID_UTF8`,
/// `CG_STATUS_PARSE_ERROR` (malformed, or a list: use `cg_quota_parse_list`), or a quota status
/// (`CG_STATUS_ZERO_RATE`, `CG_STATUS_PERIOD_OVERFLOW`, ...) for a well-formed but invalid quota.
///
/// # Safety
/// `text` as for [`CG_NUL_TERMINATED`] texts; `out` NULL or writable; `error_offset` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn cg_quota_parse(
    text: *const c_char,
    len: usize,
    out: *mut cg_quota,
    error_offset: *mut usize,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: forwarded from the caller's contract.
        let text = unsafe { self::text(text, len) }?;
        match Quota::parse(text) {
            Ok(quota) => {
                // SAFETY: non-NULL and writable by the caller's contract.
                unsafe { write(out, cg_quota::from_core(quota)) };
                Ok(())
            }
            Err(error) => {
                if let Ok(offset_out) = output(error_offset) {
                    // SAFETY: non-NULL and writable by the caller's contract.
                    unsafe { write(offset_out, error.offset()) };
                }
                Err(error.kind().into())
            }
        }
    })
}

/// Parses a list of rate strings separated by `,`, `;` or `|` (`"10/s; 1000/day"`) into
/// `out[0..capacity]`, and the number of quotas in the list into `*count`.
///
/// # Errors
/// As `cg_quota_parse` (with `*error_offset` relative to the whole text), and
/// `CG_STATUS_BUFFER_TOO_SMALL` when the list holds more than `capacity` quotas: `*count` is
/// then the number needed and `out` holds the first `capacity`. `count` must not be NULL; `out`
/// may be NULL when `capacity` is 0 (to ask for the count).
///
/// # Safety
/// `text` as for [`CG_NUL_TERMINATED`] texts; `out` NULL or valid for writing `capacity`
/// quotas; `count` and `error_offset` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_quota_parse_list(
    text: *const c_char,
    len: usize,
    out: *mut cg_quota,
    capacity: usize,
    count: *mut usize,
    error_offset: *mut usize,
) -> cg_status {
    guard(|| {
        let count_out = output(count)?;
        if capacity > 0 && out.is_null() {
            return Err(cg_status::NullArgument);
        }
        // SAFETY: forwarded from the caller's contract.
        let text = unsafe { self::text(text, len) }?;
        let mut quotas = Vec::new();
        for item in parse_quotas(text) {
            match item {
                Ok(quota) => quotas.push(cg_quota::from_core(quota)),
                Err(error) => {
                    if let Ok(offset_out) = output(error_offset) {
                        // SAFETY: non-NULL and writable by the caller's contract.
                        unsafe { write(offset_out, error.offset()) };
                    }
                    return Err(error.kind().into());
                }
            }
        }
        for (index, quota) in quotas.iter().take(capacity).enumerate() {
            // SAFETY: `out` is non-NULL (capacity > 0 here) and writable for `capacity`
            // quotas; `index < capacity`.
            unsafe { out.add(index).write(*quota) };
        }
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(count_out, quotas.len()) };
        if quotas.len() > capacity {
            return Err(cg_status::BufferTooSmall);
        }
        Ok(())
    })
}
