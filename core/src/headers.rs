//! Rate-limit response headers and the 429 body, rendered into a caller's buffer without
//! allocation, so that every runtime (Rust, C, Python, Node) sends identical bytes.
//!
//! [`render_headers`] turns one [`PolicyHeader`] per policy (a name, its [`Quota`] and the
//! [`Decision`] it gave) into header values written back to back into `out`, and returns a
//! [`RenderedHeaders`] that yields `(name, value)` pairs. [`render_429_body`] writes the JSON
//! body of a `429 Too Many Requests` response.
//!
//! The exact contract (every value, the choices for [`NEVER`], the binding policy of the legacy
//! styles, name escaping, buffer sizes) is documented on [`render_headers`].
//!
//! # Example
//!
//! ```
//! use cellgate::{render_headers, Decision, HeaderStyle, PolicyHeader, Quota, NS_PER_SECOND};
//!
//! let policy = PolicyHeader {
//!     name: "api",
//!     quota: Quota::per_second(10).unwrap(),
//!     decision: Decision {
//!         allowed: false,
//!         limit: 10,
//!         remaining: 0,
//!         retry_after_ns: 2_500_000_000,
//!         reset_after_ns: 3 * NS_PER_SECOND,
//!     },
//! };
//! let mut buf = [0u8; 128];
//! let headers = render_headers(HeaderStyle::default(), &[policy], &mut buf).unwrap();
//! let mut pairs = headers.iter();
//! assert_eq!(pairs.next(), Some(("RateLimit-Policy", r#""api";q=10;w=1"#)));
//! assert_eq!(pairs.next(), Some(("RateLimit", r#""api";r=0;t=3"#)));
//! assert_eq!(pairs.next(), Some(("Retry-After", "3")));
//! assert_eq!(pairs.next(), None);
//!
//! let mut body = [0u8; cellgate::MAX_429_BODY_BYTES];
//! let len = cellgate::render_429_body(policy.decision.retry_after_ns, &mut body).unwrap();
//! assert_eq!(&body[..len], br#"{"error":"rate_limited","retry_after":3}"#);
//! ```

use crate::decision::{Decision, NEVER};
use crate::quota::{Quota, NS_PER_SECOND};
use core::fmt;
use core::iter::FusedIterator;
use core::num::NonZeroU64;

mod per_dimension;
mod style_name;
pub use per_dimension::{
    render_dimension_headers, DimensionHeaders, DimensionStyle, FieldOrder, ResetFormat,
    MAX_DIMENSION_HEADERS,
};
pub use style_name::{NamedStyle, StyleName};

/// One policy to describe in the headers: its name, its quota and the decision it gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyHeader<'a> {
    /// The policy's name, written as a Structured Field string in the IETF styles. Printable
    /// ASCII only (`0x20..=0x7E`); checked in every style.
    pub name: &'a str,
    /// The policy's quota: supplies `q` (rate) and `w` (period) for `RateLimit-Policy`, and the
    /// emission interval for `t`.
    pub quota: Quota,
    /// What the policy's limiter answered for this request.
    pub decision: Decision,
}

/// Which headers [`render_headers`] writes. The default is [`HeaderStyle::Ietf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HeaderStyle {
    /// `RateLimit-Policy` and `RateLimit` as in draft-ietf-httpapi-ratelimit-headers-10, one
    /// list member per policy, then `Retry-After` on a denial. The default.
    #[default]
    Ietf,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds from now
    /// until the bucket is full, as Fastify sends it) for the binding policy, then
    /// `Retry-After` on a denial.
    Legacy,
    /// As [`HeaderStyle::Legacy`], but `X-RateLimit-Reset` is the Unix time (seconds) at which
    /// the bucket is full, as express-rate-limit and Flask-Limiter send it:
    /// `now_unix_s + ceil(reset_after_ns / 1e9)`, saturating at `u64::MAX`.
    LegacyEpoch {
        /// The current Unix time in seconds (the wall clock; the limiter's clock need not be).
        now_unix_s: u64,
    },
    /// draft-ietf-httpapi-ratelimit-headers-06, as express-rate-limit sends it
    /// (`standardHeaders: 'draft-6'`, its `true`): `RateLimit-Policy` (per policy `Q;w=W`,
    /// joined by `, `), then `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// (seconds until full) of the binding policy, then `Retry-After` on a denial.
    Draft6,
    /// draft-ietf-httpapi-ratelimit-headers-07, as express-rate-limit sends it
    /// (`standardHeaders: 'draft-7'`): `RateLimit-Policy` as in [`HeaderStyle::Draft6`], then
    /// `RateLimit: limit=L, remaining=R, reset=S` of the binding policy, then `Retry-After` on
    /// a denial.
    Draft7,
}

/// Why headers or a body could not be rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderError {
    /// The policy slice was empty: there is nothing to describe.
    NoPolicies,
    /// The name of the policy at `index` (in the slice given) holds a byte outside printable
    /// ASCII (`0x20..=0x7E`), which a Structured Field string cannot carry.
    InvalidName {
        /// The policy's position in the slice.
        index: usize,
    },
    /// `out` is too small. `needed` is the exact length that succeeds (saturating at
    /// `usize::MAX`); the contents of `out` are unspecified.
    BufferTooSmall {
        /// The exact number of bytes the rendering needs.
        needed: usize,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPolicies => f.write_str("no policies to render headers for"),
            Self::InvalidName { index } => write!(
                f,
                "policy {index} has a name with a byte outside printable ASCII (0x20..=0x7E)"
            ),
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeaderError {}

/// The most headers one rendering yields (draft-6's policy and triple plus `Retry-After`).
pub const MAX_HEADERS: usize = 5;

/// The longest body [`render_429_body`] writes: `{"error":"rate_limited","retry_after":N}` with
/// N at its largest, 18446744074 (11 digits). A buffer of this size never fails.
pub const MAX_429_BODY_BYTES: usize = 50;

/// Digits in `u64::MAX`, the longest number any header holds.
const MAX_DIGITS: usize = 20;
/// `"`, `"`, `;q=`, `;w=` (or `;r=`, `;t=`) and `,`: per item, beside the name and numbers.
const ITEM_PUNCTUATION: usize = 9;
/// One policy's share of the IETF headers, beside its name: two items of punctuation and two
/// numbers each.
const IETF_PER_POLICY: usize = 2 * (ITEM_PUNCTUATION + 2 * MAX_DIGITS);
/// The legacy triple and `Retry-After`: four numbers.
const LEGACY_TOTAL: usize = 4 * MAX_DIGITS;
/// One policy's share of the draft-6 and draft-7 `RateLimit-Policy`: `Q;w=W, `.
const DRAFT_PER_POLICY: usize = 2 * MAX_DIGITS + 5;
/// Beside it, draft-7's `RateLimit` (`limit=`, `, remaining=`, `, reset=` and three numbers,
/// the longest of the two drafts) and `Retry-After`.
const DRAFT_REST: usize = 4 * MAX_DIGITS + 27;

/// An upper bound on the bytes [`render_headers`] needs for `policy_count` policies whose names
/// hold `name_bytes` bytes in all, in every style and for every decision:
/// `max(98 × policy_count + 4 × name_bytes + 20, 45 × policy_count + 107)`, saturating at
/// `usize::MAX`.
///
/// Each name byte counts four times: twice in each IETF header, as the worst case is a name of
/// `"` or `\`, each escaped to two bytes. The exact size is what
/// [`HeaderError::BufferTooSmall`] reports, e.g. for an empty buffer.
pub const fn max_header_bytes(policy_count: usize, name_bytes: usize) -> usize {
    let ietf = policy_count
        .saturating_mul(IETF_PER_POLICY)
        .saturating_add(name_bytes.saturating_mul(4))
        .saturating_add(MAX_DIGITS);
    let drafts = policy_count
        .saturating_mul(DRAFT_PER_POLICY)
        .saturating_add(DRAFT_REST);
    let most = if ietf > drafts { ietf } else { drafts };
    if most > LEGACY_TOTAL {
        most
    } else {
        LEGACY_TOTAL
    }
}

const SECOND: NonZeroU64 = match NonZeroU64::new(NS_PER_SECOND) {
    Some(second) => second,
    None => NonZeroU64::MIN,
};

/// `numerator / divisor`, rounded up.
const fn div_ceil(numerator: u64, divisor: NonZeroU64) -> u64 {
    let divisor = divisor.get();
    match (
        numerator.checked_div(divisor),
        numerator.checked_rem(divisor),
    ) {
        (Some(quotient), Some(0)) => quotient,
        // A remainder implies divisor >= 2, so quotient < u64::MAX.
        (Some(quotient), Some(_)) => quotient.saturating_add(1),
        // Unreachable: the divisor is non-zero.
        _ => 0,
    }
}

/// The `Retry-After` value, in seconds, for a wait of `retry_after_ns`: rounded up, at least 1,
/// or `None` for [`NEVER`] (retrying cannot succeed, so no `Retry-After` is sent).
///
/// This is the `N` of [`render_429_body`] and the value of the `Retry-After` header.
pub const fn retry_after_seconds(retry_after_ns: u64) -> Option<u64> {
    if retry_after_ns == NEVER {
        return None;
    }
    let seconds = div_ceil(retry_after_ns, SECOND);
    Some(if seconds == 0 { 1 } else { seconds })
}

/// The wait that `Retry-After` describes for these policies: `None` when no policy denied,
/// otherwise the longest `retry_after_ns` among the denying policies ([`NEVER`] if any is).
///
/// Pass it to [`render_429_body`] so that the body agrees with the header.
pub fn combined_retry_after_ns(policies: &[PolicyHeader<'_>]) -> Option<u64> {
    policies
        .iter()
        .filter(|policy| !policy.decision.allowed)
        .map(|policy| policy.decision.retry_after_ns)
        .max()
}

/// The `t` parameter for one policy (see the module documentation); `None` omits it.
fn seconds_until_more(policy: &PolicyHeader<'_>) -> Option<u64> {
    let decision = &policy.decision;
    if !decision.allowed {
        return retry_after_seconds(decision.retry_after_ns);
    }
    // Draft-10: `t` is the time until *additional* quota is available, so 0 only when the
    // bucket is full (nothing more can come back), whatever `remaining` is.
    if decision.reset_after_ns == 0 {
        return Some(0);
    }
    let unit_ns = div_ceil(policy.quota.period_ns(), policy.quota.rate_cost_nz());
    Some(div_ceil(decision.reset_after_ns.min(unit_ns), SECOND))
}

/// Writes into a slice while it has room and counts every byte, so that one pass gives both
/// the rendering and, when it does not fit, the exact length needed.
struct Sink<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Sink<'_> {
    /// Inlined, so that a literal's copy has a constant length and compiles to a few moves:
    /// out of line, every push was a `memmove` call (more than half of a rendering's time,
    /// BENCHMARKS.md round 10).
    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// Writes `value` in decimal straight into the output (no staging array to copy from).
    fn push_u64(&mut self, value: u64) {
        const TEN: NonZeroU64 = match NonZeroU64::new(10) {
            Some(ten) => ten,
            None => NonZeroU64::MIN,
        };
        let mut digits = 1usize;
        let mut rest = value / TEN;
        while rest != 0 {
            digits = digits.saturating_add(1);
            rest /= TEN;
        }
        let end = self.len.saturating_add(digits);
        if let Some(dst) = self.out.get_mut(self.len..end) {
            let mut value = value;
            for slot in dst.iter_mut().rev() {
                *slot = b'0'.saturating_add(u8::try_from(value % TEN).unwrap_or(0));
                value /= TEN;
            }
        }
        self.len = end;
    }

    /// Writes `name` as a Structured Field string (already validated as printable ASCII).
    fn push_sf_string(&mut self, name: &str) {
        self.push(b"\"");
        for chunk in name
            .as_bytes()
            .split_inclusive(|&byte| byte == b'"' || byte == b'\\')
        {
            match chunk.split_last() {
                Some((&last, head)) if last == b'"' || last == b'\\' => {
                    self.push(head);
                    self.push(&[b'\\', last]);
                }
                _ => self.push(chunk),
            }
        }
        self.push(b"\"");
    }
}

/// Whether `name` can be a Structured Field string: printable ASCII only.
fn valid_name(name: &str) -> bool {
    name.bytes().all(|byte| (0x20..=0x7E).contains(&byte))
}

/// The policy the legacy headers describe, by the rule of
/// [`PolicyDecision::binding`](crate::PolicyDecision::binding): when some policy denied, the
/// denying policy with the longest `retry_after_ns`; otherwise the least `remaining`, then the
/// longest `reset_after_ns`. Ties go to the first.
fn binding_policy<'p, 'a>(policies: &'p [PolicyHeader<'a>]) -> Option<&'p PolicyHeader<'a>> {
    let denied = policies.iter().any(|policy| !policy.decision.allowed);
    policies.iter().reduce(|best, policy| {
        let (b, p) = (&best.decision, &policy.decision);
        let better = if denied {
            !p.allowed && (b.allowed || p.retry_after_ns > b.retry_after_ns)
        } else {
            p.remaining < b.remaining
                || (p.remaining == b.remaining && p.reset_after_ns > b.reset_after_ns)
        };
        if better {
            policy
        } else {
            best
        }
    })
}

/// One rendered header: its name and where its value starts in the buffer (it ends where the
/// next one starts, the last at the end of the text: values are written back to back).
/// Without the end, the five entries take 120 bytes, which a move copies inline rather than
/// through a `memcpy` call (three per rendering at 160 bytes: BENCHMARKS.md round 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Entry {
    name: &'static str,
    start: usize,
}

const EMPTY_ENTRY: Entry = Entry { name: "", start: 0 };

/// The headers [`render_headers`] wrote: up to [`MAX_HEADERS`] `(name, value)` pairs whose
/// values borrow the caller's buffer.
///
/// Iterate it (by value or by reference) for the pairs, in the order they should be sent.
/// Names are `&'static str` in the case shown on [`render_headers`]; values are ASCII.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RenderedHeaders<'b> {
    text: &'b str,
    entries: [Entry; MAX_HEADERS],
    count: usize,
}

impl<'b> RenderedHeaders<'b> {
    /// How many headers were rendered (2 to [`MAX_HEADERS`]).
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether no header was rendered (never true for a successful rendering).
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The header at `index`, in sending order, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<(&'static str, &'b str)> {
        if index >= self.count {
            return None;
        }
        let entry = self.entries.get(index)?;
        let end = match index.checked_add(1) {
            Some(next) if next < self.count => self.entries.get(next)?.start,
            _ => self.text.len(),
        };
        Some((entry.name, self.text.get(entry.start..end)?))
    }

    /// The value of the header named `name` (compared ASCII case-insensitively), if rendered.
    pub fn value(&self, name: &str) -> Option<&'b str> {
        self.iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The `(name, value)` pairs in sending order.
    pub const fn iter(&self) -> HeaderIter<'b> {
        HeaderIter {
            headers: *self,
            next: 0,
        }
    }

    /// The bytes of `out` that were written: every value back to back, in order.
    pub const fn as_str(&self) -> &'b str {
        self.text
    }
}

impl<'b> IntoIterator for RenderedHeaders<'b> {
    type Item = (&'static str, &'b str);
    type IntoIter = HeaderIter<'b>;

    fn into_iter(self) -> HeaderIter<'b> {
        self.iter()
    }
}

impl<'b> IntoIterator for &RenderedHeaders<'b> {
    type Item = (&'static str, &'b str);
    type IntoIter = HeaderIter<'b>;

    fn into_iter(self) -> HeaderIter<'b> {
        self.iter()
    }
}

/// An iterator over [`RenderedHeaders`]: `(name, value)` pairs in sending order.
#[derive(Clone, Debug)]
pub struct HeaderIter<'b> {
    headers: RenderedHeaders<'b>,
    next: usize,
}

impl<'b> Iterator for HeaderIter<'b> {
    type Item = (&'static str, &'b str);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.headers.get(self.next)?;
        self.next = self.next.saturating_add(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.headers.count.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}
impl FusedIterator for HeaderIter<'_> {}

/// Collects header values as they are written into a [`Sink`].
struct Builder<'a> {
    sink: Sink<'a>,
    entries: [Entry; MAX_HEADERS],
    count: usize,
}

impl Builder<'_> {
    /// Writes one header's value with `write` and records where it lies.
    fn header(&mut self, name: &'static str, write: impl FnOnce(&mut Sink<'_>)) {
        let start = self.sink.len;
        write(&mut self.sink);
        if let Some(entry) = self.entries.get_mut(self.count) {
            *entry = Entry { name, start };
            self.count = self.count.saturating_add(1);
        }
    }
}

/// Renders the rate-limit headers for `policies` in `style` into `out`.
///
/// On success the returned [`RenderedHeaders`] yields `(name, value)` pairs whose values
/// borrow `out`. The output is a pure function of the arguments.
///
/// # Styles
///
/// [`HeaderStyle::Ietf`] (the default) follows draft-ietf-httpapi-ratelimit-headers-10; the
/// `Legacy` styles send the `X-RateLimit-*` triple; `Draft6` and `Draft7` the shapes of the
/// older drafts that express-rate-limit sends (one policy list, the binding policy's numbers). Every style adds `Retry-After` when a policy
/// denied. Header names are written in the case shown below; HTTP field names are
/// case-insensitive, and HTTP/2 and HTTP/3 layers lowercase them.
///
/// | header                  | style     | value                                               |
/// |-------------------------|-----------|-----------------------------------------------------|
/// | `RateLimit-Policy`      | `Ietf`    | per policy `"name";q=Q;w=W`, joined by `,`          |
/// | `RateLimit`             | `Ietf`    | per policy `"name";r=R;t=T`, joined by `,`          |
/// | `X-RateLimit-Limit`     | `Legacy*` | the binding policy's `decision.limit`               |
/// | `X-RateLimit-Remaining` | `Legacy*` | the binding policy's `decision.remaining`           |
/// | `X-RateLimit-Reset`     | `Legacy*` | seconds until the binding policy is full (or epoch) |
/// | `RateLimit-Policy`      | `Draft6`, `Draft7` | per policy `Q;w=W`, joined by `, ` |
/// | `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` | `Draft6` | as the `X-RateLimit-*` triple of `Legacy` |
/// | `RateLimit`             | `Draft7`  | `limit=L, remaining=R, reset=S`, the same three numbers |
/// | `Retry-After`           | all       | seconds, only when some policy denied (see below)   |
///
/// Headers come in the order of this table; policies in the order of the slice.
///
/// # Numbers
///
/// Every duration is rounded **up** to whole seconds: `ceil(ns / 1e9)`.
///
/// - `q` is [`Quota::rate_cost`]; `w` is [`Quota::period_ns`] in seconds rounded up, so at
///   least 1 (the draft requires a non-zero integer): a 1500 ms period is `w=2`.
/// - `r` is [`Decision::remaining`].
/// - `t`, the seconds until more quota becomes available:
///   - denied: `ceil(retry_after_ns / 1e9)`, at least 1; when `retry_after_ns` is [`NEVER`]
///     (the cost exceeds the burst, so waiting never helps) `t` is **omitted** from that
///     policy's item;
///   - allowed and full (`reset_after_ns == 0`): `0`, nothing more can become available;
///   - allowed and not full, whatever `remaining` is: `ceil(min(reset_after_ns,
///     ceil(period_ns / rate_cost)) / 1e9)`, the time until the next unit refills (draft-10
///     defines `t` as the time until *additional* quota is available, so `r=4;t=2` after one
///     request into `5/10s`, not `t=0`). For continuous refill (GCRA, and token buckets with
///     [`Refill::Greedy`](crate::Refill::Greedy)) that is an upper bound; a
///     [`Refill::Interval`](crate::Refill::Interval) bucket refills only at period boundaries,
///     which can be later.
/// - `Retry-After` is sent only when at least one policy denied (`allowed == false`). Its value
///   is the longest `retry_after_ns` among the denying policies, rounded up, at least 1. When
///   that longest wait is [`NEVER`], `Retry-After` is **omitted**: retrying cannot succeed, and
///   the caller still answers 429 (or 413) without it. [`combined_retry_after_ns`] computes the
///   same wait, for [`render_429_body`].
/// - `X-RateLimit-Reset` is `ceil(reset_after_ns / 1e9)` seconds from now (`0` when full) with
///   [`HeaderStyle::Legacy`], or `now_unix_s + ceil(reset_after_ns / 1e9)` (saturating) with
///   [`HeaderStyle::LegacyEpoch`].
///
/// # The binding policy (legacy styles)
///
/// The legacy headers describe one policy, the one a [`PolicyDecision`](crate::PolicyDecision)
/// binds: when some policy denied, the **denying policy with the longest `retry_after_ns`**
/// (so the three headers describe what refused, in its own units); otherwise the one with the
/// **least `remaining`**, then the longest `reset_after_ns`. Ties go to the first in the slice.
///
/// # Names
///
/// Policy names are Structured Field strings (RFC 9651): written in double quotes, with `"` and
/// `\` escaped by a backslash. A name may hold only printable ASCII (`0x20..=0x7E`); any other
/// byte is [`HeaderError::InvalidName`]. Names are checked in every style, including the legacy
/// ones that do not write them, so that the same policies fail or succeed alike in all styles.
///
/// # Buffer size
///
/// The values are written back to back, with nothing between them. The exact size needed is
/// reported by [`HeaderError::BufferTooSmall`] (render into an empty buffer to ask for it), and
/// [`max_header_bytes`] is an upper bound for every style and every decision.
///
/// # Errors
/// - [`HeaderError::NoPolicies`] when `policies` is empty;
/// - [`HeaderError::InvalidName`] with the index of the first policy whose name holds a byte
///   outside `0x20..=0x7E` (checked in every style);
/// - [`HeaderError::BufferTooSmall`] with the exact length needed when `out` is shorter.
///   [`max_header_bytes`] bounds it.
///
/// Errors are reported in this order, before anything is written for the first two.
///
/// # Example
///
/// ```
/// use cellgate::{render_headers, Decision, HeaderStyle, PolicyHeader, Quota, NS_PER_SECOND};
///
/// let policies = [
///     PolicyHeader {
///         name: "burst",
///         quota: Quota::per_second(10).unwrap(),
///         decision: Decision {
///             allowed: false,
///             limit: 10,
///             remaining: 0,
///             retry_after_ns: NS_PER_SECOND / 10,
///             reset_after_ns: NS_PER_SECOND,
///         },
///     },
///     PolicyHeader {
///         name: "daily",
///         quota: Quota::per_day(1000).unwrap(),
///         decision: Decision {
///             allowed: true,
///             limit: 1000,
///             remaining: 997,
///             retry_after_ns: 0,
///             reset_after_ns: 259_200_000_000,
///         },
///     },
/// ];
/// let mut buf = [0u8; 256];
/// let headers = render_headers(HeaderStyle::Ietf, &policies, &mut buf).unwrap();
/// let pairs: Vec<(&str, &str)> = headers.iter().collect();
/// assert_eq!(
///     pairs,
///     [
///         ("RateLimit-Policy", r#""burst";q=10;w=1,"daily";q=1000;w=86400"#),
///         ("RateLimit", r#""burst";r=0;t=1,"daily";r=997;t=87"#),
///         ("Retry-After", "1"),
///     ]
/// );
///
/// let headers = render_headers(HeaderStyle::Legacy, &policies, &mut buf).unwrap();
/// let pairs: Vec<(&str, &str)> = headers.iter().collect();
/// assert_eq!(
///     pairs,
///     [
///         ("X-RateLimit-Limit", "10"),
///         ("X-RateLimit-Remaining", "0"),
///         ("X-RateLimit-Reset", "1"),
///         ("Retry-After", "1"),
///     ]
/// );
/// ```
pub fn render_headers<'b>(
    style: HeaderStyle,
    policies: &[PolicyHeader<'_>],
    out: &'b mut [u8],
) -> Result<RenderedHeaders<'b>, HeaderError> {
    if policies.is_empty() {
        return Err(HeaderError::NoPolicies);
    }
    if let Some(index) = policies.iter().position(|policy| !valid_name(policy.name)) {
        return Err(HeaderError::InvalidName { index });
    }
    let mut builder = Builder {
        sink: Sink { out, len: 0 },
        entries: [EMPTY_ENTRY; MAX_HEADERS],
        count: 0,
    };
    match style {
        HeaderStyle::Ietf => {
            builder.header("RateLimit-Policy", |sink| {
                for (index, policy) in policies.iter().enumerate() {
                    if index > 0 {
                        sink.push(b",");
                    }
                    sink.push_sf_string(policy.name);
                    sink.push(b";q=");
                    sink.push_u64(policy.quota.rate_cost());
                    sink.push(b";w=");
                    sink.push_u64(div_ceil(policy.quota.period_ns(), SECOND));
                }
            });
            builder.header("RateLimit", |sink| {
                for (index, policy) in policies.iter().enumerate() {
                    if index > 0 {
                        sink.push(b",");
                    }
                    sink.push_sf_string(policy.name);
                    sink.push(b";r=");
                    sink.push_u64(policy.decision.remaining);
                    if let Some(seconds) = seconds_until_more(policy) {
                        sink.push(b";t=");
                        sink.push_u64(seconds);
                    }
                }
            });
        }
        HeaderStyle::Draft6 | HeaderStyle::Draft7 => {
            builder.header("RateLimit-Policy", |sink| {
                for (index, policy) in policies.iter().enumerate() {
                    if index > 0 {
                        sink.push(b", ");
                    }
                    sink.push_u64(policy.quota.rate_cost());
                    sink.push(b";w=");
                    sink.push_u64(div_ceil(policy.quota.period_ns(), SECOND));
                }
            });
            if let Some(binding) = binding_policy(policies) {
                let decision = binding.decision;
                let reset_s = div_ceil(decision.reset_after_ns, SECOND);
                if style == HeaderStyle::Draft6 {
                    builder.header("RateLimit-Limit", |sink| sink.push_u64(decision.limit));
                    builder.header("RateLimit-Remaining", |sink| {
                        sink.push_u64(decision.remaining);
                    });
                    builder.header("RateLimit-Reset", |sink| sink.push_u64(reset_s));
                } else {
                    builder.header("RateLimit", |sink| {
                        sink.push(b"limit=");
                        sink.push_u64(decision.limit);
                        sink.push(b", remaining=");
                        sink.push_u64(decision.remaining);
                        sink.push(b", reset=");
                        sink.push_u64(reset_s);
                    });
                }
            }
        }
        HeaderStyle::Legacy | HeaderStyle::LegacyEpoch { .. } => {
            if let Some(binding) = binding_policy(policies) {
                let decision = binding.decision;
                let reset_s = div_ceil(decision.reset_after_ns, SECOND);
                let reset = match style {
                    HeaderStyle::LegacyEpoch { now_unix_s } => now_unix_s.saturating_add(reset_s),
                    _ => reset_s,
                };
                builder.header("X-RateLimit-Limit", |sink| sink.push_u64(decision.limit));
                builder.header("X-RateLimit-Remaining", |sink| {
                    sink.push_u64(decision.remaining);
                });
                builder.header("X-RateLimit-Reset", |sink| sink.push_u64(reset));
            }
        }
    }
    if let Some(seconds) = combined_retry_after_ns(policies).and_then(retry_after_seconds) {
        builder.header("Retry-After", |sink| sink.push_u64(seconds));
    }
    let Builder {
        sink: Sink { out, len },
        entries,
        count,
    } = builder;
    let written: &'b [u8] = match out.get(..len) {
        Some(written) => written,
        None => return Err(HeaderError::BufferTooSmall { needed: len }),
    };
    // Only ASCII was written (digits, punctuation, validated names), so this cannot fail.
    let text = core::str::from_utf8(written).unwrap_or_default();
    Ok(RenderedHeaders {
        text,
        entries,
        count,
    })
}

/// Writes the JSON body of a 429 response into `out` and returns its length:
/// `{"error":"rate_limited","retry_after":N}`, where `N` is the `Retry-After` value
/// ([`retry_after_seconds`]: `ceil(retry_after_ns / 1e9)`, at least 1), or
/// `{"error":"rate_limited","retry_after":null}` when `retry_after_ns` is [`NEVER`] (retrying
/// cannot succeed; no `Retry-After` is sent).
///
/// For several policies pass [`combined_retry_after_ns`], so that the body agrees with the
/// `Retry-After` header. The body is compact (no spaces) and always the same bytes for the same
/// input; it is at most [`MAX_429_BODY_BYTES`] long.
///
/// # Errors
/// [`HeaderError::BufferTooSmall`] with the exact length needed when `out` is shorter; the
/// contents of `out` are then unspecified.
pub fn render_429_body(retry_after_ns: u64, out: &mut [u8]) -> Result<usize, HeaderError> {
    let mut sink = Sink { out, len: 0 };
    sink.push(br#"{"error":"rate_limited","retry_after":"#);
    match retry_after_seconds(retry_after_ns) {
        Some(seconds) => sink.push_u64(seconds),
        None => sink.push(b"null"),
    }
    sink.push(b"}");
    if sink.len > sink.out.len() {
        return Err(HeaderError::BufferTooSmall { needed: sink.len });
    }
    Ok(sink.len)
}
