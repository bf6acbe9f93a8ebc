//! Client keys: an IP address (as a server reports it) to the bytes of a limiter key, through
//! core's [`ClientKey`]: one key per IPv4 address, per IPv6 prefix (/56 by default), with every
//! spelling of an address (ports, brackets, zone ids, IPv4-mapped IPv6) giving the same key.

use cellgate::{ClientKey, ClientKeyConfig};
use napi::bindgen_prelude::Buffer;
use napi::Result;
use napi_derive::napi;

use crate::boundary::range_error;

/// The key bytes for `address`, grouping IPv6 addresses by their first `ipv6_prefix_len`
/// bits (1 to 128).
///
/// # Errors
/// A `RangeError`-coded error for a prefix length out of range or text that is not an
/// address (the message says what is wrong and where).
#[napi(js_name = "clientKey")]
pub fn client_key(address: String, ipv6_prefix_len: u32) -> Result<Buffer> {
    let prefix = u8::try_from(ipv6_prefix_len)
        .map_err(|_| range_error("ipv6PrefixLen must be an integer from 1 to 128"))?;
    let config = ClientKeyConfig::new()
        .with_ipv6_prefix_len(prefix)
        .map_err(|error| range_error(format!("ipv6PrefixLen: {error}")))?;
    let key = ClientKey::parse(&address, config)
        .map_err(|error| range_error(format!("address {address:?}: {error}")))?;
    Ok(Buffer::from(key.as_bytes().to_vec()))
}
