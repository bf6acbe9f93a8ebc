//! [`ClientKey`]: a client's IP address as a limiter key.
//!
//! Keying a limiter on the raw address text has two holes:
//!
//! - **One address, many spellings.** `2001:db8::1`, `2001:DB8:0:0:0:0:0:1`, `[2001:db8::1]:443`
//!   and `::ffff:192.0.2.1` / `192.0.2.1` are the same client; as strings they are different keys,
//!   each with a full quota.
//! - **One client, many addresses.** An IPv6 client is usually given a whole prefix (a /64 at
//!   least, commonly a /56 or /48) and can send from any address in it. Keyed per address, it
//!   has 2⁶⁴ quotas or more.
//!
//! A [`ClientKey`] closes both: it is built from the parsed address, IPv4-mapped IPv6 addresses
//! become their IPv4 address, and an IPv6 address is reduced to its prefix of
//! [`ClientKeyConfig::ipv6_prefix_len`] bits, /56 by default (express-rate-limit moved from /64
//! to /56 after /64 was found to let clients with a larger delegation through). IPv4 addresses
//! are keyed whole.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use cellgate::{ClientKey, ClientKeyConfig, KeyedLimiter, NoClock, Quota, Refill, Seed};
//!
//! let config = ClientKeyConfig::default(); // IPv6 grouped by /56
//! let a = ClientKey::parse("[2001:db8:aa:bb::1]:8080", config).unwrap();
//! let b = ClientKey::parse("2001:DB8:AA:CC:0:0:0:7", config).unwrap();
//! assert_eq!(a, b); // same /56
//! assert_eq!(a.to_string(), "2001:db8:aa::/56");
//! assert_eq!(a.as_bytes(), [6, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00]);
//!
//! let v4 = ClientKey::parse(" ::ffff:192.0.2.1 ", config).unwrap();
//! assert_eq!(v4, ClientKey::parse("192.0.2.1:443", config).unwrap());
//! assert_eq!(v4.as_bytes(), [4, 192, 0, 2, 1]);
//!
//! let limiter = KeyedLimiter::with_options(
//!     Quota::per_second(1).unwrap(),
//!     Refill::Greedy,
//!     100,
//!     Seed::new(1, 2),
//!     NoClock,
//! );
//! assert!(limiter.check_at(a, 0, 1).unwrap().allowed);
//! assert!(!limiter.check_at(b, 0, 1).unwrap().allowed); // b shares a's quota
//! # }
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How addresses are grouped into keys: for now, the IPv6 prefix length.
///
/// Build one with [`ClientKeyConfig::new`] (or `default()`, or the constants) and
/// [`ClientKeyConfig::with_ipv6_prefix_len`]. The fields are private so that every value is
/// valid: the prefix length is always in `1..=128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKeyConfig {
    ipv6_prefix_len: u8,
}

impl ClientKeyConfig {
    /// The IPv6 prefix length of [`ClientKeyConfig::DEFAULT`]: 56.
    pub const DEFAULT_IPV6_PREFIX_LEN: u8 = 56;

    /// IPv6 addresses grouped by /56 ([`DEFAULT_IPV6_PREFIX_LEN`](Self::DEFAULT_IPV6_PREFIX_LEN)):
    /// the default.
    pub const DEFAULT: Self = Self {
        ipv6_prefix_len: Self::DEFAULT_IPV6_PREFIX_LEN,
    };

    /// IPv6 addresses grouped by /64, the smallest prefix normally given to one network.
    /// Finer than the default: a client holding a /56 has 256 keys under it.
    pub const IPV6_64: Self = Self {
        ipv6_prefix_len: 64,
    };

    /// Every IPv6 address its own key (/128). Only for networks where addresses are not
    /// chosen by the clients (a known proxy tier, tests).
    pub const IPV6_128: Self = Self {
        ipv6_prefix_len: 128,
    };

    /// The default configuration, [`ClientKeyConfig::DEFAULT`].
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// This configuration with IPv6 addresses grouped by their first `len` bits.
    ///
    /// # Errors
    ///
    /// [`PrefixLenError`] unless `len` is in `1..=128`.
    pub const fn with_ipv6_prefix_len(self, len: u8) -> Result<Self, PrefixLenError> {
        if len >= 1 && len <= 128 {
            Ok(Self {
                ipv6_prefix_len: len,
            })
        } else {
            Err(PrefixLenError { len })
        }
    }

    /// The IPv6 prefix length, in `1..=128`.
    pub const fn ipv6_prefix_len(&self) -> u8 {
        self.ipv6_prefix_len
    }
}

impl Default for ClientKeyConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An IPv6 prefix length outside `1..=128` was given to
/// [`ClientKeyConfig::with_ipv6_prefix_len`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixLenError {
    len: u8,
}

impl PrefixLenError {
    /// The rejected length.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }
}

impl fmt::Display for PrefixLenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IPv6 prefix length {} is not in 1..=128", self.len)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PrefixLenError {}

/// Why [`ClientKey::parse`] rejected a text.
///
/// Every `offset` is a byte offset into the text given to `parse` (before trimming), of a byte
/// that is in the text and starts a character: `offset < text.len()` and
/// `text.is_char_boundary(offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKeyError {
    /// The text is empty or only whitespace.
    Empty,
    /// The address is not an IPv4 or IPv6 address (inside brackets: not an IPv6 address).
    /// `offset` is that of the first byte of the address that cannot be in any address (not an
    /// ASCII hex digit, `.` or `:`), or, if there is none, of the address's first byte.
    Invalid {
        /// Where the address goes wrong, or where it begins.
        offset: usize,
    },
    /// The `[` at `offset` has no `]` after it.
    UnclosedBracket {
        /// The `[`.
        offset: usize,
    },
    /// The port after the `:` at `offset` is not 1 to 5 ASCII digits of value at most 65535.
    InvalidPort {
        /// The `:` before the port.
        offset: usize,
    },
    /// The zone id after the `%` at `offset` is empty or has a byte that is not an ASCII
    /// letter, digit, `-`, `.`, `_` or `~` (RFC 6874's set).
    InvalidZone {
        /// The `%` before the zone id.
        offset: usize,
    },
    /// A complete address is followed by something other than a port (after `]` or an IPv4
    /// address) or a zone id (after an IPv6 address), such as a zone id after an IPv4 address.
    TrailingInput {
        /// The first byte after the address.
        offset: usize,
    },
}

impl ClientKeyError {
    /// The error's byte offset into the parsed text; `None` for [`ClientKeyError::Empty`].
    pub const fn offset(&self) -> Option<usize> {
        match *self {
            Self::Empty => None,
            Self::Invalid { offset }
            | Self::UnclosedBracket { offset }
            | Self::InvalidPort { offset }
            | Self::InvalidZone { offset }
            | Self::TrailingInput { offset } => Some(offset),
        }
    }
}

impl fmt::Display for ClientKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("no IP address: the text is empty"),
            Self::Invalid { offset } => write!(f, "not an IP address (at byte {offset})"),
            Self::UnclosedBracket { offset } => {
                write!(f, "the `[` at byte {offset} is not closed")
            }
            Self::InvalidPort { offset } => {
                write!(
                    f,
                    "the port after byte {offset} is not a number in 0..=65535"
                )
            }
            Self::InvalidZone { offset } => write!(f, "invalid IPv6 zone id after byte {offset}"),
            Self::TrailingInput { offset } => {
                write!(f, "unexpected text after the IP address at byte {offset}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientKeyError {}

/// The longest encoding: an IPv6 /128 key, 2 header bytes and 16 address bytes.
const MAX_LEN: usize = 18;

/// A client's address as a limiter key: an IPv4 address, or an IPv6 prefix.
///
/// Pass it (or [`ClientKey::as_bytes`]) as the key of a
/// [`KeyedLimiter`](crate::KeyedLimiter). Two addresses give equal keys exactly when they are
/// the same IPv4 address (IPv4-mapped IPv6 `::ffff:a.b.c.d` counting as `a.b.c.d`), or IPv6
/// addresses (not IPv4-mapped) that agree in their first `ipv6_prefix_len` bits under the
/// same [`ClientKeyConfig`].
///
/// # Encoding (stable)
///
/// [`as_bytes`](ClientKey::as_bytes) is part of the API, and other languages' bindings may
/// build the same keys themselves:
///
/// | address | bytes | length |
/// |---------|-------|--------|
/// | IPv4 `a.b.c.d` (or `::ffff:a.b.c.d`) | `[4, a, b, c, d]` | 5 |
/// | IPv6, prefix length `p` (1..=128) | `[6, p]` then the first `⌈p/8⌉` bytes of the address, network byte order, with the bits after the first `p` cleared | `2 + ⌈p/8⌉` |
///
/// For example `192.0.2.1` is `[4, 192, 0, 2, 1]`; `2001:db8:aa:bb::1` under /56 is
/// `[6, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00]`, under /60 it is
/// `[6, 60, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00, 0xb0]`. Because the prefix length is
/// part of the key, keys made under different configurations never collide. An encoding is
/// at most [`ClientKey::MAX_LEN`] (18) bytes.
///
/// # Which addresses are mapped
///
/// Only IPv4-mapped addresses (`::ffff:0:0/96`, RFC 4291 §2.5.5.2), which dual-stack sockets
/// report for IPv4 clients. Not mapped, so grouped like any other IPv6 address:
/// - IPv4-compatible addresses (`::a.b.c.d`, deprecated by RFC 4291 §2.5.5.1): all of
///   `::/96` falls in one /56 (with `::1`) under the default;
/// - NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo (`2001::/32`) addresses, whose
///   embedded IPv4 address belongs to a translator or relay, or identifies a whole IPv4 site.
///
/// # Text
///
/// `Display` writes IPv4 keys as the address (`192.0.2.1`) and IPv6 keys as the cleared
/// prefix in RFC 5952 form with its length (`2001:db8:aa00::/56`, `2001:db8::1/128`), honoring
/// width, fill and alignment. `Debug` writes `ClientKey(` that `)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The encoding in `bytes[..len]`; the rest is zero.
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl ClientKey {
    /// The length of the longest encoding (an IPv6 /128 key): 18 bytes.
    pub const MAX_LEN: usize = MAX_LEN;

    /// The key of an address. Never fails: every [`ClientKeyConfig`] is valid.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) gives the key of `a.b.c.d`; any other
    /// IPv6 address, that of its first `config.ipv6_prefix_len()` bits.
    pub fn from_ip(ip: impl Into<IpAddr>, config: ClientKeyConfig) -> Self {
        match ip.into() {
            IpAddr::V4(v4) => Self::from_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::from_v4(v4),
                None => Self::from_v6(v6, config.ipv6_prefix_len),
            },
        }
    }

    fn from_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, d] = ip.octets();
        let mut bytes = [0; MAX_LEN];
        for (dst, src) in bytes.iter_mut().zip([4, a, b, c, d]) {
            *dst = src;
        }
        Self { bytes, len: 5 }
    }

    /// `prefix_len` is in `1..=128` (a [`ClientKeyConfig`]'s).
    fn from_v6(ip: Ipv6Addr, prefix_len: u8) -> Self {
        let masked = ip.to_bits() & prefix_mask(prefix_len);
        let address_len = prefix_len.div_ceil(8);
        let mut bytes = [0; MAX_LEN];
        let header = [6, prefix_len];
        let address = masked.to_be_bytes();
        let encoding = header
            .iter()
            .chain(address.iter().take(usize::from(address_len)));
        for (dst, src) in bytes.iter_mut().zip(encoding) {
            *dst = *src;
        }
        Self {
            bytes,
            len: address_len.saturating_add(2),
        }
    }

    /// The key of an address written as text, as a server or proxy may report it.
    ///
    /// Accepted, around what [`IpAddr`]'s `FromStr` accepts (so every address as Rust, RFC 5952
    /// or `inet_ntop` writes it, and hex digits in either case, with up to four digits a group):
    /// - whitespace before and after (Unicode `White_Space`, as [`str::trim`]);
    /// - an IPv6 address in brackets: `[2001:db8::1]`;
    /// - a port, dropped: `192.0.2.1:8080`, `[2001:db8::1]:8080` (1 to 5 digits, at most
    ///   65535). An IPv6 address with a port must be bracketed: `::1:8080` is the address
    ///   `::1:8080`;
    /// - an IPv6 zone id, dropped: `fe80::1%eth0`, `[fe80::1%25eth0]:8080` (RFC 6874's
    ///   characters: ASCII letters, digits, `-`, `.`, `_`, `~`).
    ///
    /// Rejected, as `FromStr` rejects them: IPv4 octets with leading zeros (`010.0.0.1`, octal
    /// to `inet_aton`), the short IPv4 forms (`127.1`), IPv4 in brackets, prefixes
    /// (`2001:db8::/56`, so `Display`'s IPv6 form is not parsed back), lists
    /// (`X-Forwarded-For`'s `a, b`: choosing the hop to trust is the caller's job).
    ///
    /// # Errors
    ///
    /// A [`ClientKeyError`] saying what is wrong and where. Never panics, whatever the text.
    pub fn parse(text: &str, config: ClientKeyConfig) -> Result<Self, ClientKeyError> {
        parse_ip(text).map(|ip| Self::from_ip(ip, config))
    }

    /// The encoding (see the type's documentation): 5 bytes for IPv4, `2 + ⌈p/8⌉` for IPv6.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    /// The address the key stands for: the IPv4 address, or the first address of the IPv6
    /// prefix (the bits after the prefix cleared).
    pub fn ip(&self) -> IpAddr {
        match self.bytes {
            [4, a, b, c, d, ..] => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            [_, _, ref rest @ ..] => {
                let mut octets = [0; 16];
                let address_len = usize::from(self.len).saturating_sub(2);
                for (dst, src) in octets.iter_mut().zip(rest.iter().take(address_len)) {
                    *dst = *src;
                }
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        }
    }

    /// The number of leading address bits the key keeps: 32 for IPv4, the configured prefix
    /// length for IPv6.
    pub fn prefix_len(&self) -> u8 {
        match self.bytes {
            [4, ..] => 32,
            [_, len, ..] => len,
        }
    }

    /// Whether the key is an IPv4 address's.
    pub fn is_ipv4(&self) -> bool {
        matches!(self.bytes, [4, ..])
    }
}

impl AsRef<[u8]> for ClientKey {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through a buffer so that `f.pad` applies width and alignment to the whole key.
        let mut buf = TextBuf::new();
        match self.ip() {
            IpAddr::V4(v4) => fmt::write(&mut buf, format_args!("{v4}"))?,
            IpAddr::V6(v6) => fmt::write(&mut buf, format_args!("{v6}/{}", self.prefix_len()))?,
        }
        f.pad(buf.as_str().ok_or(fmt::Error)?)
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

/// The mask of the first `prefix_len` bits (`1..=128`) of an IPv6 address.
fn prefix_mask(prefix_len: u8) -> u128 {
    let shift = 128_u32.saturating_sub(u32::from(prefix_len));
    u128::MAX.checked_shl(shift).unwrap_or(0)
}

/// A key's text: at most 39 bytes of IPv6 address and 4 of `/128`.
struct TextBuf {
    bytes: [u8; 48],
    len: usize,
}

impl TextBuf {
    const fn new() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `base + delta`, for offsets within one `str` (which cannot overflow).
fn at(base: usize, delta: usize) -> usize {
    base.saturating_add(delta)
}

/// Parses `text` (see [`ClientKey::parse`]) to the address, dropping port and zone.
fn parse_ip(text: &str) -> Result<IpAddr, ClientKeyError> {
    let start_trimmed = text.trim_start();
    let start = text.len().saturating_sub(start_trimmed.len());
    let body = start_trimmed.trim_end();
    if body.is_empty() {
        return Err(ClientKeyError::Empty);
    }

    if let Some(after_open) = body.strip_prefix('[') {
        // `[v6]`, `[v6%zone]`, with `:port` or not.
        let Some((inner, rest)) = after_open.split_once(']') else {
            return Err(ClientKeyError::UnclosedBracket { offset: start });
        };
        let inner_start = at(start, 1);
        let ip = parse_v6_with_zone(inner, inner_start)?;
        let rest_start = at(inner_start, at(inner.len(), 1));
        if !rest.is_empty() {
            let Some(port) = rest.strip_prefix(':') else {
                return Err(ClientKeyError::TrailingInput { offset: rest_start });
            };
            check_port(port, rest_start)?;
        }
        return Ok(IpAddr::V6(ip));
    }

    if body.contains('%') {
        // `v6%zone`; the zone runs to the end, so there is no port.
        return parse_v6_with_zone(body, start).map(IpAddr::V6);
    }

    // Every IPv6 address has at least two colons, and no IPv4 address has one.
    let mut colons = body.match_indices(':').map(|(index, _)| index);
    match (colons.next(), colons.next()) {
        (Some(colon), None) => {
            // `v4:port`.
            let (address, port) = body.split_at_checked(colon).unwrap_or((body, ""));
            let ip = parse_address::<Ipv4Addr>(address, start)?;
            check_port(port.get(1..).unwrap_or(""), at(start, colon))?;
            Ok(IpAddr::V4(ip))
        }
        _ => parse_address::<IpAddr>(body, start),
    }
}

/// Parses `text` (at `offset` in the input) as an IPv6 address, with an optional `%zone`.
fn parse_v6_with_zone(text: &str, offset: usize) -> Result<Ipv6Addr, ClientKeyError> {
    let Some((address, zone)) = text.split_once('%') else {
        return parse_address::<Ipv6Addr>(text, offset);
    };
    let percent = at(offset, address.len());
    let ip = match parse_address::<IpAddr>(address, offset)? {
        IpAddr::V6(ip) => ip,
        IpAddr::V4(_) => return Err(ClientKeyError::TrailingInput { offset: percent }),
    };
    let zone_ok = !zone.is_empty()
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if zone_ok {
        Ok(ip)
    } else {
        Err(ClientKeyError::InvalidZone { offset: percent })
    }
}

/// Parses `text` (at `offset` in the input) as an `A` with its `FromStr`.
fn parse_address<A: core::str::FromStr>(text: &str, offset: usize) -> Result<A, ClientKeyError> {
    text.parse().map_err(|_| {
        let bad = text
            .bytes()
            .position(|b| !(b.is_ascii_hexdigit() || b == b'.' || b == b':'))
            .unwrap_or(0);
        ClientKeyError::Invalid {
            offset: at(offset, bad),
        }
    })
}

/// Checks the port after the `:` at `colon`: 1 to 5 ASCII digits, at most 65535.
fn check_port(port: &str, colon: usize) -> Result<(), ClientKeyError> {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    if digits && port.parse::<u16>().is_ok() {
        Ok(())
    } else {
        Err(ClientKeyError::InvalidPort { offset: colon })
    }
}
