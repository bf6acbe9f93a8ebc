//! Rate-limit headers (every style) and the 429 body, rendered by core into the caller's
//! buffer.

use crate::boundary::{buffer, guard, output, slice, write};
use crate::decision::cg_decision;
use crate::quota::{cg_quota, text};
use crate::status::cg_status;
use cellgate::{
    render_429_body, render_dimension_headers, render_headers, HeaderError, NamedStyle,
    PolicyHeader, StyleName,
};
use core::ffi::c_char;

/// IETF `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10), one
/// item per policy, then `Retry-After` on a denial. The default.
pub const CG_HEADER_STYLE_IETF: u32 = 0;
/// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds from now until
/// full) for the binding policy, then `Retry-After` on a denial.
pub const CG_HEADER_STYLE_LEGACY: u32 = 1;
/// As `CG_HEADER_STYLE_LEGACY`, but `X-RateLimit-Reset` is the Unix time (seconds) at which the
/// bucket is full: `now_unix_s + ceil(reset_after_ns / 1e9)`.
pub const CG_HEADER_STYLE_LEGACY_EPOCH: u32 = 2;

/// Per-dimension headers as Anthropic's API sends them, for LLM API clients:
/// `anthropic-ratelimit-{name}-limit`, `-remaining`, `-reset` (RFC 3339 UTC, from `now_unix_s`)
/// for each policy, then `retry-after` and `retry-after-ms` on a denial. Names become part of
/// header names: ASCII letters, digits, `-` and `_` only (`_` is written `-`), else
/// `CG_STATUS_INVALID_NAME`.
pub const CG_HEADER_STYLE_ANTHROPIC: u32 = 3;
/// Per-dimension headers as OpenAI's API sends them: `x-ratelimit-limit-{name}`,
/// `x-ratelimit-remaining-{name}`, `x-ratelimit-reset-{name}` (a duration: `20ms`, `59s`,
/// `6m0s`), then `retry-after` and `retry-after-ms` on a denial; names as for
/// `CG_HEADER_STYLE_ANTHROPIC`.
pub const CG_HEADER_STYLE_OPENAI: u32 = 4;
/// draft-ietf-httpapi-ratelimit-headers-06 as express-rate-limit sends it: `RateLimit-Policy`
/// (per policy `Q;w=W`), then `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`
/// (seconds until full) of the binding policy, then `Retry-After` on a denial.
pub const CG_HEADER_STYLE_DRAFT_6: u32 = 5;
/// draft-ietf-httpapi-ratelimit-headers-07 as express-rate-limit sends it: `RateLimit-Policy`
/// as draft-6, then `RateLimit: limit=L, remaining=R, reset=S` of the binding policy, then
/// `Retry-After` on a denial.
pub const CG_HEADER_STYLE_DRAFT_7: u32 = 6;

/// The most header lines one rendering writes in the IETF, legacy and draft styles.
pub const CG_MAX_HEADERS: usize = 5;
/// The most header lines one rendering writes in any style (the per-dimension ones: three per
/// policy, and two retry headers).
pub const CG_MAX_DIMENSION_HEADERS: usize = 26;
/// The longest 429 body `cg_render_429_body` writes; a buffer this long never fails.
pub const CG_MAX_429_BODY_BYTES: usize = 50;

const _: () = assert!(CG_MAX_HEADERS == cellgate::MAX_HEADERS);
const _: () = assert!(CG_MAX_DIMENSION_HEADERS == cellgate::MAX_DIMENSION_HEADERS);
const _: () = assert!(CG_MAX_429_BODY_BYTES == cellgate::MAX_429_BODY_BYTES);

/// One policy to describe in the headers: its name (`name_len` bytes, or `CG_NUL_TERMINATED`;
/// printable ASCII only), its quota and the decision it gave.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_policy_header {
    /// The policy's name, as the IETF headers show it.
    pub name: *const c_char,
    /// The name's length in bytes, or `CG_NUL_TERMINATED`.
    pub name_len: usize,
    /// The policy's quota (`q` and `w` of `RateLimit-Policy`).
    pub quota: cg_quota,
    /// What the policy's limiter answered.
    pub decision: cg_decision,
}

/// A `CG_HEADER_STYLE_*`: one of core's policy styles, or a per-dimension one.
pub(crate) type Style = NamedStyle;

/// The `CG_HEADER_STYLE_*` constants, in the order of core's `StyleName::ALL` (ietf, legacy,
/// legacy-epoch, anthropic, openai, draft-6, draft-7): each is its style's index there.
const STYLE_CONSTANTS: [u32; 7] = [
    CG_HEADER_STYLE_IETF,
    CG_HEADER_STYLE_LEGACY,
    CG_HEADER_STYLE_LEGACY_EPOCH,
    CG_HEADER_STYLE_ANTHROPIC,
    CG_HEADER_STYLE_OPENAI,
    CG_HEADER_STYLE_DRAFT_6,
    CG_HEADER_STYLE_DRAFT_7,
];
const _: () = {
    assert!(STYLE_CONSTANTS.len() == StyleName::ALL.len());
    let mut index = 0;
    while index < STYLE_CONSTANTS.len() {
        assert!(STYLE_CONSTANTS[index] as usize == index);
        index += 1;
    }
};

/// The header style for a `CG_HEADER_STYLE_*` constant (`now_unix_s` for the styles that
/// show the wall clock).
pub(crate) fn style(style: u32, now_unix_s: u64) -> Result<Style, cg_status> {
    usize::try_from(style)
        .ok()
        .and_then(|index| StyleName::ALL.get(index))
        .map(|name| name.with_now(now_unix_s))
        .ok_or(cg_status::InvalidArgument)
}

/// Renders `policies` in `style` with core's renderer (into a scratch, or on the heap when
/// longer) and runs `f` over the `(name, value)` pairs, in sending order.
fn with_rendered<R>(
    style: Style,
    policies: &[PolicyHeader<'_>],
    f: impl FnOnce(&[(&str, &str)]) -> Result<R, cg_status>,
) -> Result<R, cg_status> {
    let mut scratch = [0u8; 1024];
    match style {
        NamedStyle::Policies(style) => match render_headers(style, policies, &mut scratch) {
            Ok(headers) => f(&headers.iter().collect::<Vec<_>>()),
            Err(HeaderError::BufferTooSmall { needed }) => {
                let mut heap = vec![0u8; needed];
                let headers = render_headers(style, policies, &mut heap)?;
                f(&headers.iter().collect::<Vec<_>>())
            }
            Err(error) => Err(error.into()),
        },
        NamedStyle::Dimensions(style) => {
            match render_dimension_headers(style, policies, &mut scratch) {
                Ok(headers) => f(&headers.iter().collect::<Vec<_>>()),
                Err(HeaderError::BufferTooSmall { needed }) => {
                    let mut heap = vec![0u8; needed];
                    let headers = render_dimension_headers(style, policies, &mut heap)?;
                    f(&headers.iter().collect::<Vec<_>>())
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// The core's view of C policy headers: names read (as their lengths say), quotas validated.
///
/// # Safety
/// Every name is NULL or readable as its length says (or NUL-terminated with
/// `CG_NUL_TERMINATED`) for as long as `policies` is borrowed.
unsafe fn policy_headers(
    policies: &[cg_policy_header],
) -> Result<Vec<PolicyHeader<'_>>, cg_status> {
    let mut headers = Vec::with_capacity(policies.len());
    for policy in policies {
        // SAFETY: the name is readable as its length says, by this function's contract.
        let name = unsafe { text(policy.name, policy.name_len) }.map_err(|status| {
            if status == cg_status::InvalidUtf8 {
                cg_status::InvalidName
            } else {
                status
            }
        })?;
        headers.push(PolicyHeader {
            name,
            quota: policy.quota.to_core()?,
            decision: policy.decision.into(),
        });
    }
    Ok(headers)
}

/// The arguments every header renderer takes, checked in this order: the style, the policies,
/// the output buffer, then each policy's name and quota.
///
/// # Safety
/// `policies` is NULL or points to `count` readable entries whose names are readable as their
/// lengths say, and `buf` is NULL or valid for writing `buf_len` bytes, all for `'a`.
unsafe fn header_request<'a>(
    style: u32,
    now_unix_s: u64,
    policies: *const cg_policy_header,
    count: usize,
    buf: *mut c_char,
    buf_len: usize,
) -> Result<(Style, &'a mut [u8], Vec<PolicyHeader<'a>>), cg_status> {
    let style = self::style(style, now_unix_s)?;
    // SAFETY: NULL or `count` readable entries, by this function's contract.
    let policies = unsafe { slice(policies, count) }?;
    // SAFETY: NULL or `buf_len` writable bytes, by this function's contract.
    let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
    // SAFETY: the names are readable as their lengths say, by this function's contract.
    let headers = unsafe { policy_headers(policies) }?;
    Ok((style, out, headers))
}

/// Renders `policies` as HTTP header lines (`Name: value\r\n` each) into `out`, reporting the
/// exact length written, or needed, into `*len`. Writes nothing into `out` unless every line
/// fits (`cg_status::BufferTooSmall` then, with the length needed).
pub(crate) fn render_lines(
    style: Style,
    policies: &[PolicyHeader<'_>],
    out: &mut [u8],
    len: core::ptr::NonNull<usize>,
) -> Result<(), cg_status> {
    with_rendered(style, policies, |headers| {
        let needed: usize = headers
            .iter()
            .map(|(name, value)| name.len() + 2 + value.len() + 2)
            .sum();
        // SAFETY: `len` is a non-NULL output the caller provided as writable.
        unsafe { write(len, needed) };
        // The length first: a buffer too small receives nothing, not the lines that fit.
        let Some(out) = out.get_mut(..needed) else {
            return Err(cg_status::BufferTooSmall);
        };
        let mut written = 0usize;
        for (name, value) in headers {
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                let end = written + part.len();
                if let Some(dst) = out.get_mut(written..end) {
                    dst.copy_from_slice(part);
                }
                written = end;
            }
        }
        Ok(())
    })
}

/// One rendered header as a name and a value, both NUL-terminated C strings inside the
/// caller's buffer (see `cg_render_header_fields`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_header_field {
    /// The header's name, e.g. `RateLimit` or `Retry-After`.
    pub name: *const c_char,
    /// The header's value.
    pub value: *const c_char,
}

/// Renders the same headers as `cg_render_headers`, as name/value pairs for servers that add
/// headers one by one (libmicrohttpd, libevent, nginx modules): `buf` receives each name and
/// value as NUL-terminated strings, and `fields[0..*field_count]` point to them (valid as long
/// as `buf` is). `*len` receives the bytes used in `buf`.
///
/// # Errors
/// As `cg_render_headers`; `CG_STATUS_BUFFER_TOO_SMALL` when `buf_len` is below the length
/// needed (reported in `*len`) or `fields_capacity` below the number of headers (reported in
/// `*field_count`; `CG_MAX_HEADERS` always suffices for the IETF, legacy and draft styles,
/// `CG_MAX_DIMENSION_HEADERS` for every style), and nothing is written to `buf` or
/// `fields`; `CG_STATUS_NULL_ARGUMENT` also for `field_count`, or `fields` with a non-zero
/// capacity.
///
/// # Safety
/// As `cg_render_headers`; `fields` is NULL or valid for writing `fields_capacity` entries;
/// `field_count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_render_header_fields(
    style: u32,
    now_unix_s: u64,
    policies: *const cg_policy_header,
    count: usize,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
    fields: *mut cg_header_field,
    fields_capacity: usize,
    field_count: *mut usize,
) -> cg_status {
    guard(|| {
        let len = output(len)?;
        let field_count = output(field_count)?;
        if fields.is_null() && fields_capacity > 0 {
            return Err(cg_status::NullArgument);
        }
        // SAFETY: forwarded from the caller's contract.
        let (style, out, headers) =
            unsafe { header_request(style, now_unix_s, policies, count, buf, buf_len) }?;
        with_rendered(style, &headers, |rendered| {
            let needed: usize = rendered
                .iter()
                .map(|(name, value)| name.len() + value.len() + 2)
                .sum();
            // SAFETY: both are non-NULL outputs the caller provided as writable.
            unsafe {
                write(len, needed);
                write(field_count, rendered.len());
            }
            if needed > out.len() || rendered.len() > fields_capacity {
                return Err(cg_status::BufferTooSmall);
            }
            // Copy each name and value, NUL-terminated, and remember where they start.
            let mut offsets = [(0usize, 0usize); CG_MAX_DIMENSION_HEADERS];
            let mut at = 0usize;
            for ((name, value), offset) in rendered.iter().zip(offsets.iter_mut()) {
                let mut starts = [0usize; 2];
                for (text, start) in [name, value].into_iter().zip(starts.iter_mut()) {
                    *start = at;
                    if let Some((nul, bytes)) = out
                        .get_mut(at..at + text.len() + 1)
                        .and_then(|dst| dst.split_last_mut())
                    {
                        bytes.copy_from_slice(text.as_bytes());
                        *nul = 0;
                    }
                    at += text.len() + 1;
                }
                *offset = (starts[0], starts[1]);
            }
            let base = out.as_ptr().cast::<c_char>();
            for (index, &(name_at, value_at)) in offsets.iter().take(rendered.len()).enumerate() {
                // SAFETY: `index < rendered.len() <= fields_capacity` entries are writable;
                // both offsets are below `needed <= out.len()`, so inside the buffer `base`
                // points to.
                unsafe {
                    fields.add(index).write(cg_header_field {
                        name: base.add(name_at),
                        value: base.add(value_at),
                    });
                }
            }
            Ok(())
        })
    })
}

/// Renders the rate-limit headers for `count` policies in `style` (`CG_HEADER_STYLE_*`) into
/// `buf` as HTTP header lines, `Name: value\r\n` each, ready to append to a response head (no
/// NUL is written). `*len` receives the number of bytes written; `now_unix_s` is used by
/// `CG_HEADER_STYLE_LEGACY_EPOCH` and `CG_HEADER_STYLE_ANTHROPIC` only.
///
/// The values are core's, byte for byte the same in every runtime: durations in whole seconds
/// rounded up; `Retry-After` only when some policy denied, at least 1, omitted when the wait
/// is `CG_NEVER`. Every value is specified on `render_headers` in `core/src/headers.rs`.
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` with the exact length needed in `*len`, and nothing written to
/// `buf`, not even the lines that fit (render with `buf_len` 0 to ask);
/// `CG_STATUS_NULL_ARGUMENT` (`policies` with a non-zero count, `len`, a name, or
/// `buf` with a non-zero length); `CG_STATUS_EMPTY_POLICY` (`count` 0);
/// `CG_STATUS_INVALID_NAME` (a name not printable ASCII); `CG_STATUS_INVALID_ARGUMENT`
/// (unknown style); the quota's status for an invalid quota.
///
/// # Safety
/// `policies` is NULL or points to `count` readable entries whose names are readable as their
/// lengths say; `buf` is NULL or valid for writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_render_headers(
    style: u32,
    now_unix_s: u64,
    policies: *const cg_policy_header,
    count: usize,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        let len = output(len)?;
        // SAFETY: forwarded from the caller's contract.
        let (style, out, headers) =
            unsafe { header_request(style, now_unix_s, policies, count, buf, buf_len) }?;
        render_lines(style, &headers, out, len)
    })
}

/// Writes the JSON body of a 429 response into `buf`: `{"error":"rate_limited","retry_after":N}`
/// with N the `Retry-After` value (seconds, rounded up, at least 1), or `null` when
/// `retry_after_ns` is `CG_NEVER`. `*len` receives its length (at most
/// `CG_MAX_429_BODY_BYTES`; no NUL is written).
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` with the length needed in `*len` (nothing is written to
/// `buf`); `CG_STATUS_NULL_ARGUMENT` (`len`, or `buf` with a non-zero length).
///
/// # Safety
/// `buf` is NULL or valid for writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_render_429_body(
    retry_after_ns: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        let len = output(len)?;
        // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
        let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
        // Rendered into a scratch, copied only if it fits: a buffer too small receives
        // nothing (core's renderer fills what fits).
        let mut scratch = [0u8; CG_MAX_429_BODY_BYTES];
        let body_len = render_429_body(retry_after_ns, &mut scratch)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(len, body_len) };
        match (out.get_mut(..body_len), scratch.get(..body_len)) {
            (Some(dst), Some(body)) => dst.copy_from_slice(body),
            _ => return Err(cg_status::BufferTooSmall),
        }
        Ok(())
    })
}
