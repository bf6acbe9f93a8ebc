//! Client keys: an IP address (as a server reports it) to the bytes of a limiter key, through
//! core's [`ClientKey`]: one key per IPv4 address, per IPv6 prefix (/56 by default), with every
//! spelling of an address (ports, brackets, zone ids, IPv4-mapped IPv6) giving the same key.

use cellgate::{ClientKey, ClientKeyConfig};
use napi::bindgen_prelude::Uint8ArraySlice;
use napi::Result;
use napi_derive::napi;

use crate::boundary::key::Key;
use crate::boundary::range_error;

/// Writes the key bytes for `address` (a string, or its UTF-8 bytes) into `out` and returns
/// their length, grouping IPv6 addresses by their first `ipv6_prefix_len` bits (1 to 128).
/// `out` needs room for [`ClientKey::MAX_LEN`] bytes (`clientKeyMaxLen()`).
///
/// The caller copies the bytes out (`node/lib/client_key.js`): the address is read with one
/// Node-API call into a stack buffer (as a limiter key is), and nothing is allocated on the
/// JavaScript heap here. Returning a new Buffer from Rust measured 0.6 µs (a Buffer over
/// Rust's memory, freed through a finalizer, 1.9 µs under a request load) and reading the
/// address as napi-rs's `String` 0.25 µs, against about 0.1 µs for a copy made in JavaScript.
///
/// # Errors
/// A `RangeError`-coded error for a prefix length out of range, text that is not an address
/// (the message says what is wrong and where) or an `out` too short.
#[napi(js_name = "clientKeyInto")]
pub fn client_key_into(
    address: Key,
    ipv6_prefix_len: u32,
    mut out: Uint8ArraySlice<'_>,
) -> Result<u32> {
    let prefix = u8::try_from(ipv6_prefix_len)
        .map_err(|_| range_error("ipv6PrefixLen must be an integer from 1 to 128"))?;
    let config = ClientKeyConfig::new()
        .with_ipv6_prefix_len(prefix)
        .map_err(|error| range_error(format!("ipv6PrefixLen: {error}")))?;
    let text = core::str::from_utf8(address.as_ref())
        .map_err(|_| range_error("address: not UTF-8 text"))?;
    let key = ClientKey::parse(text, config)
        .map_err(|error| range_error(format!("address {text:?}: {error}")))?;
    let bytes = key.as_bytes();
    // SAFETY: `out` is the module's own scratch (node/lib/client_key.js), over a plain
    // `ArrayBuffer` no other thread can reach, and no JavaScript runs on this thread while this
    // call runs: nothing else reads or writes these bytes until it returns.
    let out = unsafe { out.as_mut() };
    let room = out
        .get_mut(..bytes.len())
        .ok_or_else(|| range_error("out: shorter than clientKeyMaxLen()"))?;
    room.copy_from_slice(bytes);
    // At most ClientKey::MAX_LEN (18): it fits.
    Ok(bytes.len() as u32)
}

/// The most bytes a client key has ([`ClientKey::MAX_LEN`]).
#[napi(js_name = "clientKeyMaxLen")]
pub fn client_key_max_len() -> u32 {
    ClientKey::MAX_LEN as u32
}
