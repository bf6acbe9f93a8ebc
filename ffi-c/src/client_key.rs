//! Client IP keys: core's `ClientKey` (IPv4 by address, IPv6 by its /56), from text or from
//! address bytes.

use crate::boundary::{buffer, guard, output, slice, write};
use crate::quota::text;
use crate::status::cg_status;
use cellgate::{ClientKey, ClientKeyConfig};
use core::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest client key `cg_client_key_*` writes (an IPv6 /128 key).
pub const CG_CLIENT_KEY_MAX_LEN: usize = 18;

const _: () = assert!(CG_CLIENT_KEY_MAX_LEN == ClientKey::MAX_LEN);

/// The configuration for an IPv6 prefix length; 0 means the default, /56.
fn client_key_config(ipv6_prefix_len: u32) -> Result<ClientKeyConfig, cg_status> {
    if ipv6_prefix_len == 0 {
        return Ok(ClientKeyConfig::DEFAULT);
    }
    let len = u8::try_from(ipv6_prefix_len).map_err(|_| cg_status::InvalidPrefixLength)?;
    ClientKeyConfig::new()
        .with_ipv6_prefix_len(len)
        .map_err(|_| cg_status::InvalidPrefixLength)
}

/// Writes a client key into the caller's buffer.
fn write_key(
    key: &ClientKey,
    out: *mut u8,
    capacity: usize,
    len: core::ptr::NonNull<usize>,
) -> Result<(), cg_status> {
    let bytes = key.as_bytes();
    // SAFETY: `len` is a non-NULL output the caller provided as writable.
    unsafe { write(len, bytes.len()) };
    if bytes.len() > capacity {
        return Err(cg_status::BufferTooSmall);
    }
    // SAFETY: NULL or `capacity` writable bytes, by the caller's contract.
    let out = unsafe { buffer(out, capacity) }?;
    if let Some(dst) = out.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    Ok(())
}

/// The limiter key of a client IP address given as text (`192.0.2.1`, `2001:db8::1`,
/// `[2001:db8::1]:8080`, `fe80::1%eth0`, with surrounding whitespace), as core's `ClientKey`
/// builds it: IPv4 (and IPv4-mapped IPv6) by address, IPv6 by its first `ipv6_prefix_len`
/// bits (0 for the default, 56). The key's bytes go to `out` (at most `CG_CLIENT_KEY_MAX_LEN`)
/// and their number to `*len`.
///
/// # Errors
/// `CG_STATUS_INVALID_ADDRESS` (the empty text too, NULL with length 0 included),
/// `CG_STATUS_INVALID_UTF8`, `CG_STATUS_INVALID_PREFIX_LENGTH`, `CG_STATUS_BUFFER_TOO_SMALL`
/// (with the length needed in `*len`; nothing is written to `out`), `CG_STATUS_NULL_ARGUMENT`
/// (`len`, `text` with a non-zero length or `CG_NUL_TERMINATED`, `out` with a non-zero
/// capacity).
///
/// # Safety
/// `text` is NULL or readable as `text_len` says (or NUL-terminated with
/// `CG_NUL_TERMINATED`); `out` is NULL or valid for writing `capacity` bytes; `len` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn cg_client_key_parse(
    text: *const c_char,
    text_len: usize,
    ipv6_prefix_len: u32,
    out: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        let len = output(len)?;
        // SAFETY: forwarded from the caller's contract.
        let text = unsafe { self::text(text, text_len) }?;
        let config = client_key_config(ipv6_prefix_len)?;
        let key = ClientKey::parse(text, config)?;
        write_key(&key, out, capacity, len)
    })
}

/// The limiter key of a client IP address given as bytes in network order (`address_len` 4
/// for IPv4, 16 for IPv6, as in `struct in_addr` / `struct in6_addr`); otherwise as
/// `cg_client_key_parse`.
///
/// # Errors
/// `CG_STATUS_INVALID_ARGUMENT` (an `address_len` other than 4 or 16: 0, the empty address, is
/// this whether `address` is NULL or not), `CG_STATUS_INVALID_PREFIX_LENGTH`,
/// `CG_STATUS_BUFFER_TOO_SMALL` (as for `cg_client_key_parse`), `CG_STATUS_NULL_ARGUMENT`
/// (`len`, `address` with a non-zero length, `out` with a non-zero capacity).
///
/// # Safety
/// `address` is NULL or points to `address_len` bytes (NULL only with length 0); `out` is NULL or valid for writing
/// `capacity` bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_client_key_from_ip(
    address: *const u8,
    address_len: usize,
    ipv6_prefix_len: u32,
    out: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        let len = output(len)?;
        // SAFETY: NULL or `address_len` readable bytes, by the caller's contract (NULL with
        // length 0 is the empty address, which is neither 4 nor 16 bytes).
        let address = unsafe { slice(address, address_len) }?;
        let ip = if let Ok(octets) = <[u8; 4]>::try_from(address) {
            IpAddr::V4(Ipv4Addr::from(octets))
        } else if let Ok(octets) = <[u8; 16]>::try_from(address) {
            IpAddr::V6(Ipv6Addr::from(octets))
        } else {
            return Err(cg_status::InvalidArgument);
        };
        let key = ClientKey::from_ip(ip, client_key_config(ipv6_prefix_len)?);
        write_key(&key, out, capacity, len)
    })
}
