//! `client_key`: the key of a client's IP address, as the middleware uses by default.

use crate::boundary::invalid;
use crate::boundary::{str_arg, u64_arg};
use cellgate::{ClientKey, ClientKeyConfig};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The key of the IP address `address` (text as a server reports it: `192.0.2.1`,
/// `2001:db8::1`, `[2001:db8::1]:8080`, `fe80::1%eth0`): IPv4 by address, IPv4-mapped IPv6
/// as IPv4, other IPv6 by its first `ipv6_prefix` bits (default 56, so a client owning a /64
/// or more cannot multiply its quota). Every spelling of one address gives one key. Raises
/// `InvalidArgument` for text that is not an address, or a prefix outside 1..=128.
#[pyfunction]
#[pyo3(signature = (address, ipv6_prefix=None), text_signature = "(address, ipv6_prefix=56)")]
pub fn client_key<'py>(
    py: Python<'py>,
    address: &Bound<'py, PyAny>,
    ipv6_prefix: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let address = str_arg(address, "address")?;
    let prefix = match ipv6_prefix {
        None => ClientKeyConfig::DEFAULT_IPV6_PREFIX_LEN,
        Some(value) => u8::try_from(u64_arg(value, "ipv6_prefix")?).unwrap_or(0),
    };
    let config = ClientKeyConfig::new()
        .with_ipv6_prefix_len(prefix)
        .map_err(|error| invalid(py, "ipv6_prefix", &error.to_string()))?;
    let key = ClientKey::parse(&address, config)
        .map_err(|error| invalid(py, "address", &error.to_string()))?;
    Ok(PyBytes::new(py, key.as_bytes()))
}
