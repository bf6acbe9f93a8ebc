//! The key a request is counted under: [`Key`], where it comes from ([`KeyExtractor`]), and
//! what happens when a request has none ([`MissingKey`]).

use cellgate::{ClientKey, ClientKeyConfig};
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, Method, Request, StatusCode};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Keys up to this many bytes are held without allocating (every [`ClientKey`] is).
const INLINE_LEN: usize = 32;

/// The bytes a request is counted under, as given to [`cellgate::Limiter::apply_at`].
///
/// Keys of up to 32 bytes (every [`ClientKey`], most user ids) are held inline, without an
/// allocation; longer ones on the heap.
///
/// ```
/// use cellgate_tower::Key;
/// assert_eq!(Key::from("user:42").as_bytes(), b"user:42");
/// assert_eq!(Key::from(vec![7u8; 100]).as_bytes().len(), 100);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { bytes: [u8; INLINE_LEN], len: u8 },
    Heap(Box<[u8]>),
}

impl Key {
    /// A key holding a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut inline = [0u8; INLINE_LEN];
        match (inline.get_mut(..bytes.len()), u8::try_from(bytes.len())) {
            (Some(prefix), Ok(len)) => {
                prefix.copy_from_slice(bytes);
                Self(Repr::Inline { bytes: inline, len })
            }
            _ => Self(Repr::Heap(bytes.into())),
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { bytes, len } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Repr::Heap(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.as_bytes()) {
            Ok(text) if text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
                write!(f, "Key({text:?})")
            }
            _ => write!(f, "Key({:02x?})", self.as_bytes()),
        }
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes())
    }
}

impl From<String> for Key {
    fn from(text: String) -> Self {
        Self::from(text.into_bytes())
    }
}

impl From<Vec<u8>> for Key {
    fn from(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE_LEN {
            Self::new(&bytes)
        } else {
            Self(Repr::Heap(bytes.into_boxed_slice()))
        }
    }
}

impl From<ClientKey> for Key {
    /// The client key's stable encoding ([`ClientKey::as_bytes`]).
    fn from(key: ClientKey) -> Self {
        Self::new(key.as_bytes())
    }
}

/// Which proxy header a [`KeyExtractor::x_forwarded_for`] or [`KeyExtractor::forwarded`]
/// reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ProxyHeader {
    XForwardedFor,
    Forwarded,
}

/// The request's own key function: `Fn(&Parts) -> Option<Key>`.
type KeyFn = Arc<dyn Fn(&Parts) -> Option<Key> + Send + Sync>;

#[derive(Clone)]
enum Source {
    PeerIp,
    Proxy {
        header: ProxyHeader,
        trusted_hops: usize,
    },
    Header(HeaderName),
    Global,
    Fn(KeyFn),
}

/// Where a request's [`Key`] comes from. Every IP address becomes a key through core's
/// [`ClientKey`] rule: IPv4-mapped IPv6 addresses count as their IPv4 address, and IPv6
/// addresses are grouped by prefix (/56 by default; see
/// [`RateLimitLayerBuilder::client_key`](crate::RateLimitLayerBuilder::client_key)).
///
/// A request without a key (no peer address, no header, an address that does not parse, a
/// closure that returned `None`) is answered by the layer's
/// [`MissingKey`] policy; it never panics.
#[derive(Clone)]
pub struct KeyExtractor(Source);

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::PeerIp => f.write_str("KeyExtractor::peer_ip()"),
            Source::Proxy {
                header: ProxyHeader::XForwardedFor,
                trusted_hops,
            } => write!(f, "KeyExtractor::x_forwarded_for({trusted_hops})"),
            Source::Proxy {
                header: ProxyHeader::Forwarded,
                trusted_hops,
            } => write!(f, "KeyExtractor::forwarded({trusted_hops})"),
            Source::Header(name) => write!(f, "KeyExtractor::header({name:?})"),
            Source::Global => f.write_str("KeyExtractor::global()"),
            Source::Fn(_) => f.write_str("KeyExtractor::from_fn(..)"),
        }
    }
}

impl Default for KeyExtractor {
    /// [`KeyExtractor::peer_ip`].
    fn default() -> Self {
        Self::peer_ip()
    }
}

impl KeyExtractor {
    /// The peer address of the connection (the default): axum's `ConnectInfo<SocketAddr>`
    /// extension (with the `axum` feature; serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`), else a plain [`SocketAddr`]
    /// extension (which a hyper server loop can insert itself).
    ///
    /// Behind a reverse proxy every request has the proxy's address: use
    /// [`KeyExtractor::x_forwarded_for`] or [`KeyExtractor::forwarded`] there.
    pub fn peer_ip() -> Self {
        Self(Source::PeerIp)
    }

    /// The client address a chain of `trusted_hops` proxies that you run reports in
    /// `X-Forwarded-For` (every line of it, in order, as one comma-separated list).
    ///
    /// Each proxy appends the address it received the request from, so the last
    /// `trusted_hops - 1` entries are your own proxies and the entry `trusted_hops` from the
    /// right is the client, whatever a client wrote to the left of it. When the list is
    /// shorter (the request skipped some proxies), the leftmost entry counts; without the
    /// header, the peer address ([`KeyExtractor::peer_ip`]). `trusted_hops == 0` trusts no
    /// proxy: the peer address. These are Express's `trust proxy = n` semantics.
    ///
    /// An entry that is not an IP address (`unknown`) is a missing key. Entries may carry a
    /// port (`192.0.2.1:443`, `[2001:db8::1]:443`).
    pub fn x_forwarded_for(trusted_hops: usize) -> Self {
        Self(Source::Proxy {
            header: ProxyHeader::XForwardedFor,
            trusted_hops,
        })
    }

    /// As [`KeyExtractor::x_forwarded_for`], over the `for=` parameters of RFC 7239's
    /// `Forwarded` header (`for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`):
    /// one element per proxy. An element without `for=`, or with an obfuscated or `unknown`
    /// identifier, is a missing key when it is the one chosen.
    pub fn forwarded(trusted_hops: usize) -> Self {
        Self(Source::Proxy {
            header: ProxyHeader::Forwarded,
            trusted_hops,
        })
    }

    /// The value of the header `name` (its first line), byte for byte: an API key, a tenant
    /// id. A request without it has no key.
    pub fn header(name: HeaderName) -> Self {
        Self(Source::Header(name))
    }

    /// One key for every request: a limit on the whole service (tower_governor's
    /// `GlobalKeyExtractor`).
    pub fn global() -> Self {
        Self(Source::Global)
    }

    /// The key `f` returns for the request's head (method, URI, headers, extensions: a user
    /// id an authentication layer put there, for example); `None` is a missing key.
    ///
    /// ```
    /// use cellgate_tower::KeyExtractor;
    /// let by_user = KeyExtractor::from_fn(|parts| {
    ///     parts.headers.get("x-user").map(|value| value.as_bytes().to_vec())
    /// });
    /// # let _ = by_user;
    /// ```
    pub fn from_fn<F, K>(f: F) -> Self
    where
        F: Fn(&Parts) -> Option<K> + Send + Sync + 'static,
        K: Into<Key>,
    {
        Self(Source::Fn(Arc::new(move |parts| f(parts).map(Into::into))))
    }

    /// The key of a request with head `parts`, IP addresses made keys under `config`; `None`
    /// when the request has none.
    pub fn extract(&self, parts: &Parts, config: ClientKeyConfig) -> Option<Key> {
        self.extract_from(parts, config)
    }

    /// Whether extracting needs the request's [`Parts`] (a closure's key).
    pub(crate) fn needs_parts(&self) -> bool {
        matches!(self.0, Source::Fn(_))
    }

    /// [`KeyExtractor::extract`] over any view of the request's head; a closure's key needs
    /// [`Head::parts`] (see [`KeyExtractor::needs_parts`]).
    pub(crate) fn extract_from<H: Head>(&self, head: &H, config: ClientKeyConfig) -> Option<Key> {
        match &self.0 {
            Source::PeerIp => peer_ip(head).map(|ip| ClientKey::from_ip(ip, config).into()),
            Source::Proxy {
                header,
                trusted_hops,
            } => proxied_client(head, *header, *trusted_hops, config).map(Key::from),
            Source::Header(name) => head.headers().get(name).map(|v| Key::new(v.as_bytes())),
            Source::Global => Some(Key::new(b"")),
            Source::Fn(f) => head.parts().and_then(|parts| f(parts)),
        }
    }
}

/// A request's head as the layer reads it: the request itself (no move), or its [`Parts`]
/// when a user closure takes `&Parts`.
pub(crate) trait Head {
    fn method(&self) -> &Method;
    fn headers(&self) -> &HeaderMap;
    fn extensions(&self) -> &Extensions;
    fn extensions_mut(&mut self) -> &mut Extensions;
    /// The parts, when this view is one.
    fn parts(&self) -> Option<&Parts>;
}

impl Head for Parts {
    fn method(&self) -> &Method {
        &self.method
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
    fn parts(&self) -> Option<&Parts> {
        Some(self)
    }
}

impl<B> Head for Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
    fn extensions(&self) -> &Extensions {
        self.extensions()
    }
    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }
    fn parts(&self) -> Option<&Parts> {
        None
    }
}

/// The connection's peer address, from the request's extensions.
fn peer_ip<H: Head>(head: &H) -> Option<IpAddr> {
    let extensions = head.extensions();
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The client `trusted_hops` proxies report (see [`KeyExtractor::x_forwarded_for`]).
fn proxied_client<H: Head>(
    parts: &H,
    header: ProxyHeader,
    trusted_hops: usize,
    config: ClientKeyConfig,
) -> Option<ClientKey> {
    if trusted_hops == 0 {
        return peer_ip(parts).map(|ip| ClientKey::from_ip(ip, config));
    }
    let name = match header {
        ProxyHeader::XForwardedFor => "x-forwarded-for",
        ProxyHeader::Forwarded => "forwarded",
    };
    let mut lines = parts.headers().get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return peer_ip(parts).map(|ip| ClientKey::from_ip(ip, config));
    }
    // The entries nearest first: the last line's last entry, then leftwards, then the line
    // before. Lines that are not visible ASCII are not addresses: a missing key.
    let lines: Vec<&str> = lines
        .map(|value| value.to_str().ok())
        .collect::<Option<_>>()?;
    let mut nearest_first = lines.iter().rev().flat_map(|line| split_list(line).rev());
    let mut chosen = nearest_first.next()?;
    for _ in 1..trusted_hops {
        match nearest_first.next() {
            Some(entry) => chosen = entry,
            None => break,
        }
    }
    let address = match header {
        ProxyHeader::XForwardedFor => chosen,
        ProxyHeader::Forwarded => forwarded_for(chosen)?,
    };
    ClientKey::parse(address, config).ok()
}

/// The members of a comma-separated header list, commas inside quoted strings kept (RFC 9110
/// §5.6.1 and §5.6.4); empty members are skipped.
fn split_list(line: &str) -> impl DoubleEndedIterator<Item = &str> {
    let mut members = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0usize, false, false);
    for (index, byte) in line.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                members.push(line.get(start..index).unwrap_or(""));
                start = index.saturating_add(1);
            }
            _ => {}
        }
    }
    members.push(line.get(start..).unwrap_or(""));
    members
        .into_iter()
        .map(str::trim)
        .filter(|member| !member.is_empty())
}

/// The node of the `for=` parameter of one `Forwarded` element, unquoted; `None` without one.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        // A quoted node holds no escapes in any valid form (`"[v6]:port"`, `"v4:port"`).
        Some(
            value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .unwrap_or(value),
        )
    })
}

/// What the layer does with a request that has no [`Key`] (see [`KeyExtractor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingKey {
    /// Answer with this status and an empty body; the inner service is not called. The
    /// default is `500 Internal Server Error`: a missing peer address or proxy header is a
    /// deployment error (for a key from a client header, `400 Bad Request` says it better).
    Reject(StatusCode),
    /// Count the request under this key (all keyless requests share one quota).
    UseKey(Key),
}

impl Default for MissingKey {
    /// `MissingKey::Reject(StatusCode::INTERNAL_SERVER_ERROR)`.
    fn default() -> Self {
        Self::Reject(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut builder = http::Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            parts.extensions.insert(peer.parse::<SocketAddr>().unwrap());
        }
        parts
    }

    fn key(ip: &str) -> Key {
        ClientKey::parse(ip, ClientKeyConfig::DEFAULT)
            .unwrap()
            .into()
    }

    #[test]
    fn x_forwarded_for_takes_the_entry_trusted_hops_from_the_right() {
        let request = parts(
            &[
                ("x-forwarded-for", "203.0.113.9, 198.51.100.7"),
                ("x-forwarded-for", "10.0.0.2"),
            ],
            Some("10.0.0.1:1"),
        );
        let config = ClientKeyConfig::DEFAULT;
        let at = |hops| KeyExtractor::x_forwarded_for(hops).extract(&request, config);
        assert_eq!(at(0), Some(key("10.0.0.1")));
        assert_eq!(at(1), Some(key("10.0.0.2")));
        assert_eq!(at(2), Some(key("198.51.100.7")));
        assert_eq!(at(3), Some(key("203.0.113.9")));
        // Fewer entries than hops: the leftmost.
        assert_eq!(at(9), Some(key("203.0.113.9")));
    }

    #[test]
    fn x_forwarded_for_without_the_header_is_the_peer_and_junk_is_missing() {
        let config = ClientKeyConfig::DEFAULT;
        let plain = parts(&[], Some("192.0.2.1:80"));
        assert_eq!(
            KeyExtractor::x_forwarded_for(1).extract(&plain, config),
            Some(key("192.0.2.1"))
        );
        let junk = parts(&[("x-forwarded-for", "unknown")], Some("192.0.2.1:80"));
        assert_eq!(
            KeyExtractor::x_forwarded_for(1).extract(&junk, config),
            None
        );
        let nothing = parts(&[], None);
        assert_eq!(KeyExtractor::peer_ip().extract(&nothing, config), None);
    }

    #[test]
    fn forwarded_reads_for_parameters_with_quotes_and_ports() {
        let request = parts(
            &[(
                "forwarded",
                r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#,
            )],
            None,
        );
        let config = ClientKeyConfig::DEFAULT;
        assert_eq!(
            KeyExtractor::forwarded(1).extract(&request, config),
            Some(key("2001:db8:cafe::"))
        );
        assert_eq!(
            KeyExtractor::forwarded(2).extract(&request, config),
            Some(key("192.0.2.60"))
        );
        let hidden = parts(&[("forwarded", "for=_hidden")], None);
        assert_eq!(KeyExtractor::forwarded(1).extract(&hidden, config), None);
    }

    #[test]
    fn split_list_keeps_commas_inside_quotes() {
        let members: Vec<&str> = split_list(r#"a, "b,c" ,, d"#).collect();
        assert_eq!(members, ["a", r#""b,c""#, "d"]);
    }

    #[test]
    fn long_keys_go_to_the_heap_and_compare_by_bytes() {
        let short = Key::from("abc");
        assert!(matches!(short.0, Repr::Inline { .. }));
        let long = Key::from("x".repeat(40));
        assert!(matches!(long.0, Repr::Heap(_)));
        assert_eq!(long, Key::new("x".repeat(40).as_bytes()));
        assert_eq!(format!("{short:?}"), r#"Key("abc")"#);
    }
}
