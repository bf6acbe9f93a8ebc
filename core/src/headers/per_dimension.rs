//! Per-dimension rate-limit headers, the families LLM API clients already parse:
//! `anthropic-ratelimit-input-tokens-remaining` (name, then field) and
//! `x-ratelimit-remaining-tokens` (field, then name), with `retry-after` and optionally
//! `retry-after-ms`. Names and values are both written into the caller's buffer, so the
//! rendering allocates nothing and is the same bytes in every runtime.

use super::{combined_retry_after_ns, div_ceil, retry_after_seconds, HeaderError, PolicyHeader};
use super::{Sink, SECOND};
use crate::decision::NEVER;
use core::num::NonZeroU64;

/// Where the policy's name goes in a per-dimension header's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOrder {
    /// `{prefix}{name}-{field}`: `anthropic-ratelimit-requests-remaining`.
    NameThenField,
    /// `{prefix}{field}-{name}`: `x-ratelimit-remaining-requests`.
    FieldThenName,
}

/// How the `reset` field (the time until the quota is full again) is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetFormat {
    /// Whole seconds from now, rounded up: `60`.
    Seconds,
    /// A duration as OpenAI-style APIs send it: `20ms` below one second (milliseconds rounded
    /// up), otherwise whole seconds rounded up as `59s`, `6m0s`, `1h0m0s`; `0s` when full.
    Duration,
    /// The RFC 3339 UTC time at which the quota is full, as Anthropic sends it:
    /// `2026-12-03T08:06:40Z`, from `now_unix_s` (the wall clock) plus the seconds rounded up.
    Rfc3339 {
        /// The current Unix time in seconds.
        now_unix_s: u64,
    },
}

/// A per-dimension header style: the header names' prefix and pattern, the reset format, and
/// whether `retry-after-ms` is sent beside `retry-after`.
///
/// ```
/// use cellgate::{DimensionStyle, FieldOrder, ResetFormat};
/// // anthropic-ratelimit-{name}-limit / -remaining / -reset (RFC 3339)
/// let anthropic = DimensionStyle::anthropic(1_764_748_800);
/// assert_eq!(anthropic.prefix, "anthropic-ratelimit-");
/// // x-ratelimit-limit-{name} / remaining / reset ("6m0s")
/// let openai = DimensionStyle::openai();
/// assert_eq!(openai.order, FieldOrder::FieldThenName);
/// assert_eq!(openai.reset, ResetFormat::Duration);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DimensionStyle<'p> {
    /// Written before every per-dimension header name: lowercase letters, digits and `-`.
    pub prefix: &'p str,
    /// Name then field, or field then name.
    pub order: FieldOrder,
    /// The format of the `reset` field.
    pub reset: ResetFormat,
    /// Whether `retry-after-ms` (milliseconds, rounded up, at least 1) follows `retry-after`.
    pub retry_after_ms: bool,
}

impl DimensionStyle<'static> {
    /// `anthropic-ratelimit-{name}-{limit,remaining,reset}`, reset in RFC 3339 from
    /// `now_unix_s`, with `retry-after-ms`.
    pub const fn anthropic(now_unix_s: u64) -> Self {
        Self {
            prefix: "anthropic-ratelimit-",
            order: FieldOrder::NameThenField,
            reset: ResetFormat::Rfc3339 { now_unix_s },
            retry_after_ms: true,
        }
    }

    /// `x-ratelimit-{limit,remaining,reset}-{name}`, reset as a duration (`6m0s`), with
    /// `retry-after-ms`.
    pub const fn openai() -> Self {
        Self {
            prefix: "x-ratelimit-",
            order: FieldOrder::FieldThenName,
            reset: ResetFormat::Duration,
            retry_after_ms: true,
        }
    }
}

/// The most headers [`render_dimension_headers`] yields: three per policy (8 at most) and the
/// two retry headers.
pub const MAX_DIMENSION_HEADERS: usize = 3 * crate::policy::MAX_POLICY_QUOTAS + 2;

/// One rendered header: where its name and its value lie in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

/// The headers [`render_dimension_headers`] wrote: `(name, value)` pairs that both borrow the
/// caller's buffer, in sending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DimensionHeaders<'b> {
    text: &'b str,
    fields: [Field; MAX_DIMENSION_HEADERS],
    count: usize,
}

impl<'b> DimensionHeaders<'b> {
    /// How many headers were rendered.
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether none was (never, for a successful rendering).
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The header at `index`, in sending order.
    pub fn get(&self, index: usize) -> Option<(&'b str, &'b str)> {
        if index >= self.count {
            return None;
        }
        let field = self.fields.get(index)?;
        Some((
            self.text.get(field.name.0..field.name.1)?,
            self.text.get(field.value.0..field.value.1)?,
        ))
    }

    /// The value of the header named `name` (ASCII case-insensitive), if rendered.
    pub fn value(&self, name: &str) -> Option<&'b str> {
        self.iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The `(name, value)` pairs in sending order.
    pub fn iter(&self) -> impl Iterator<Item = (&'b str, &'b str)> + '_ {
        (0..self.count).map_while(|index| self.get(index))
    }
}

/// Whether `name` can go into a header name once `_` is written as `-` and letters are
/// lowercased: ASCII letters, digits, `-` and `_`, non-empty.
fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Writes `name` lowercased, `_` as `-`.
fn push_field_name(sink: &mut Sink<'_>, name: &str) {
    for byte in name.bytes() {
        let byte = if byte == b'_' {
            b'-'
        } else {
            byte.to_ascii_lowercase()
        };
        sink.push(&[byte]);
    }
}

/// Writes one header value into the sink.
type WriteValue<'s> = dyn FnMut(&mut Sink<'_>) + 's;

const MILLISECOND: NonZeroU64 = match NonZeroU64::new(1_000_000) {
    Some(ms) => ms,
    None => NonZeroU64::MIN,
};

/// Renders per-dimension headers for `policies` in `style` into `out`: for each policy, in
/// order, `limit` (the quota's rate, [`Quota::rate_cost`](crate::Quota::rate_cost)),
/// `remaining` ([`Decision::remaining`](crate::Decision::remaining)) and `reset` (the time
/// until the quota is full again, `reset_after_ns`, in `style.reset`'s format); then, when a
/// policy denied with a finite wait, `retry-after` (the longest wait among the denying
/// policies, whole seconds rounded up, at least 1, as [`retry_after_seconds`]) and, with
/// `style.retry_after_ms`, `retry-after-ms` (milliseconds rounded up, at least 1).
///
/// A policy's name becomes part of header names: it is lowercased and `_` is written as `-`
/// (`input_tokens` gives `anthropic-ratelimit-input-tokens-remaining`).
///
/// # Errors
/// - [`HeaderError::NoPolicies`] for an empty slice;
/// - [`HeaderError::InvalidName`] with the index of the first policy whose name is empty or
///   holds anything but ASCII letters, digits, `-` and `_`, or whose header names would repeat
///   an earlier policy's (two quotas on one dimension need distinct names). The prefix is
///   checked the same way (index `usize::MAX`): lowercase letters, digits and `-`;
/// - [`HeaderError::BufferTooSmall`] with the exact length needed.
///
/// ```
/// use cellgate::{render_dimension_headers, Decision, DimensionStyle, PolicyHeader, Quota};
/// let policies = [PolicyHeader {
///     name: "output_tokens",
///     quota: Quota::per_minute(20_000).unwrap(),
///     decision: Decision {
///         allowed: true,
///         limit: 20_000,
///         remaining: 19_000,
///         retry_after_ns: 0,
///         reset_after_ns: 3_000_000_000,
///     },
/// }];
/// let mut buf = [0u8; 256];
/// let headers = render_dimension_headers(DimensionStyle::openai(), &policies, &mut buf).unwrap();
/// let pairs: Vec<_> = headers.iter().collect();
/// assert_eq!(
///     pairs,
///     [
///         ("x-ratelimit-limit-output-tokens", "20000"),
///         ("x-ratelimit-remaining-output-tokens", "19000"),
///         ("x-ratelimit-reset-output-tokens", "3s"),
///     ]
/// );
/// ```
pub fn render_dimension_headers<'b>(
    style: DimensionStyle<'_>,
    policies: &[PolicyHeader<'_>],
    out: &'b mut [u8],
) -> Result<DimensionHeaders<'b>, HeaderError> {
    if policies.is_empty() {
        return Err(HeaderError::NoPolicies);
    }
    let prefix_ok = style
        .prefix
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if !prefix_ok {
        return Err(HeaderError::InvalidName { index: usize::MAX });
    }
    for (index, policy) in policies.iter().enumerate() {
        let same = |other: &PolicyHeader<'_>| {
            other.name.len() == policy.name.len()
                && other.name.bytes().zip(policy.name.bytes()).all(|(a, b)| {
                    let fold = |byte: u8| {
                        if byte == b'_' {
                            b'-'
                        } else {
                            byte.to_ascii_lowercase()
                        }
                    };
                    fold(a) == fold(b)
                })
        };
        let earlier = policies.get(..index).unwrap_or_default();
        if !valid_field_name(policy.name) || earlier.iter().any(same) {
            return Err(HeaderError::InvalidName { index });
        }
    }
    let mut sink = Sink { out, len: 0 };
    let mut fields = [Field::default(); MAX_DIMENSION_HEADERS];
    let mut count = 0usize;
    let mut field = |sink: &mut Sink<'_>,
                     name: &mut dyn FnMut(&mut Sink<'_>),
                     value: &mut dyn FnMut(&mut Sink<'_>)| {
        let name_start = sink.len;
        name(sink);
        let name_end = sink.len;
        value(sink);
        if let Some(slot) = fields.get_mut(count) {
            *slot = Field {
                name: (name_start, name_end),
                value: (name_end, sink.len),
            };
            count = count.saturating_add(1);
        }
    };
    for policy in policies {
        let decision = policy.decision;
        let entries: [(&str, &mut WriteValue<'_>); 3] = [
            ("limit", &mut |sink: &mut Sink<'_>| {
                sink.push_u64(policy.quota.rate_cost())
            }),
            ("remaining", &mut |sink: &mut Sink<'_>| {
                sink.push_u64(decision.remaining)
            }),
            ("reset", &mut |sink: &mut Sink<'_>| {
                push_reset(sink, style.reset, decision.reset_after_ns);
            }),
        ];
        for (label, value) in entries {
            field(
                &mut sink,
                &mut |sink: &mut Sink<'_>| {
                    sink.push(style.prefix.as_bytes());
                    match style.order {
                        FieldOrder::NameThenField => {
                            push_field_name(sink, policy.name);
                            sink.push(b"-");
                            sink.push(label.as_bytes());
                        }
                        FieldOrder::FieldThenName => {
                            sink.push(label.as_bytes());
                            sink.push(b"-");
                            push_field_name(sink, policy.name);
                        }
                    }
                },
                value,
            );
        }
    }
    if let Some(wait_ns) = combined_retry_after_ns(policies).filter(|&wait| wait != NEVER) {
        let seconds = retry_after_seconds(wait_ns).unwrap_or(1);
        field(
            &mut sink,
            &mut |sink: &mut Sink<'_>| sink.push(b"retry-after"),
            &mut |sink: &mut Sink<'_>| sink.push_u64(seconds),
        );
        if style.retry_after_ms {
            let millis = div_ceil(wait_ns, MILLISECOND).max(1);
            field(
                &mut sink,
                &mut |sink: &mut Sink<'_>| sink.push(b"retry-after-ms"),
                &mut |sink: &mut Sink<'_>| sink.push_u64(millis),
            );
        }
    }
    let Sink { out, len } = sink;
    let written: &'b [u8] = match out.get(..len) {
        Some(written) => written,
        None => return Err(HeaderError::BufferTooSmall { needed: len }),
    };
    // Only ASCII was written (validated names and prefix, digits, punctuation).
    let text = core::str::from_utf8(written).unwrap_or_default();
    Ok(DimensionHeaders {
        text,
        fields,
        count,
    })
}

/// Writes the time until full, `reset_ns`, in `format`.
fn push_reset(sink: &mut Sink<'_>, format: ResetFormat, reset_ns: u64) {
    match format {
        ResetFormat::Seconds => sink.push_u64(div_ceil(reset_ns, SECOND)),
        ResetFormat::Duration => {
            if reset_ns == 0 {
                sink.push(b"0s");
            } else if reset_ns < SECOND.get() {
                sink.push_u64(div_ceil(reset_ns, MILLISECOND));
                sink.push(b"ms");
            } else {
                let seconds = div_ceil(reset_ns, SECOND);
                let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
                if hours > 0 {
                    sink.push_u64(hours);
                    sink.push(b"h");
                }
                if hours > 0 || minutes > 0 {
                    sink.push_u64(minutes);
                    sink.push(b"m");
                }
                sink.push_u64(seconds);
                sink.push(b"s");
            }
        }
        ResetFormat::Rfc3339 { now_unix_s } => {
            push_rfc3339(sink, now_unix_s.saturating_add(div_ceil(reset_ns, SECOND)));
        }
    }
}

/// The last second of year 9999: RFC 3339 has four-digit years.
const MAX_RFC3339_UNIX_S: u64 = 253_402_300_799;

/// Writes `unix_s` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), clamped to year 9999.
fn push_rfc3339(sink: &mut Sink<'_>, unix_s: u64) {
    let unix_s = unix_s.min(MAX_RFC3339_UNIX_S);
    let days = unix_s / 86_400;
    let second_of_day = unix_s % 86_400;
    let (year, month, day) = civil_from_days(days);
    let two = |sink: &mut Sink<'_>, value: u64| {
        if value < 10 {
            sink.push(b"0");
        }
        sink.push_u64(value);
    };
    sink.push_u64(year);
    sink.push(b"-");
    two(sink, month);
    sink.push(b"-");
    two(sink, day);
    sink.push(b"T");
    two(sink, second_of_day / 3600);
    sink.push(b":");
    two(sink, second_of_day / 60 % 60);
    sink.push(b":");
    two(sink, second_of_day % 60);
    sink.push(b"Z");
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, for days ≥ 0, in unsigned arithmetic: every quantity stays below 2^40).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days end each 400-year era.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = day_of_era
        .saturating_sub(day_of_era / 1_460)
        .saturating_add(day_of_era / 36_524)
        .saturating_sub(day_of_era / 146_096)
        / 365;
    let day_of_year = day_of_era.saturating_sub(
        year_of_era
            .saturating_mul(365)
            .saturating_add(year_of_era / 4)
            .saturating_sub(year_of_era / 100),
    );
    let month_index = day_of_year.saturating_mul(5).saturating_add(2) / 153;
    let day = day_of_year
        .saturating_sub(month_index.saturating_mul(153).saturating_add(2) / 5)
        .saturating_add(1);
    let month = if month_index < 10 {
        month_index.saturating_add(3)
    } else {
        month_index.saturating_sub(9)
    };
    let year = era
        .saturating_mul(400)
        .saturating_add(year_of_era)
        .saturating_add(u64::from(month <= 2));
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Quota, NS_PER_SECOND};

    fn render(
        style: DimensionStyle<'_>,
        policies: &[PolicyHeader<'_>],
    ) -> std::vec::Vec<(std::string::String, std::string::String)> {
        let mut buf = [0u8; 1024];
        let headers = render_dimension_headers(style, policies, &mut buf).unwrap();
        headers.iter().map(|(n, v)| (n.into(), v.into())).collect()
    }

    fn policy(name: &str, rate_per_minute: u64, decision: Decision) -> PolicyHeader<'_> {
        PolicyHeader {
            name,
            quota: Quota::per_minute(rate_per_minute).unwrap(),
            decision,
        }
    }

    fn decision(
        allowed: bool,
        remaining: u64,
        retry_after_ns: u64,
        reset_after_ns: u64,
    ) -> Decision {
        Decision {
            allowed,
            limit: 0,
            remaining,
            retry_after_ns,
            reset_after_ns,
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_425), (2025, 12, 3));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
        let mut buf = [0u8; 32];
        let mut sink = Sink {
            out: &mut buf,
            len: 0,
        };
        push_rfc3339(&mut sink, 1_764_720_000 + 3_600 + 61);
        let len = sink.len;
        assert_eq!(&buf[..len], b"2025-12-03T01:01:01Z");
    }

    #[test]
    fn anthropic_and_openai_families() {
        let p = [
            policy("requests", 60, decision(true, 59, 0, NS_PER_SECOND)),
            policy(
                "input_tokens",
                100_000,
                decision(false, 100, 6 * NS_PER_SECOND + 1, 360 * NS_PER_SECOND),
            ),
        ];
        let anthropic = render(DimensionStyle::anthropic(1_764_720_000), &p);
        let names: std::vec::Vec<&str> = anthropic.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
                "anthropic-ratelimit-input-tokens-limit",
                "anthropic-ratelimit-input-tokens-remaining",
                "anthropic-ratelimit-input-tokens-reset",
                "retry-after",
                "retry-after-ms",
            ]
        );
        assert_eq!(anthropic[2].1, "2025-12-03T00:00:01Z");
        assert_eq!(anthropic[5].1, "2025-12-03T00:06:00Z");
        assert_eq!(anthropic[6].1, "7");
        assert_eq!(anthropic[7].1, "6001");
        let openai = render(DimensionStyle::openai(), &p);
        assert_eq!(
            openai[3],
            ("x-ratelimit-limit-input-tokens".into(), "100000".into())
        );
        assert_eq!(
            openai[5],
            ("x-ratelimit-reset-input-tokens".into(), "6m0s".into())
        );
        assert_eq!(openai[2].1, "1s");
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (20_000_000, "20ms"),
            (999_999_999, "1000ms"),
            (NS_PER_SECOND, "1s"),
            (59 * NS_PER_SECOND + 1, "1m0s"),
            (3_600 * NS_PER_SECOND, "1h0m0s"),
            (3_661 * NS_PER_SECOND, "1h1m1s"),
        ];
        for (ns, text) in cases {
            let mut buf = [0u8; 32];
            let mut sink = Sink {
                out: &mut buf,
                len: 0,
            };
            push_reset(&mut sink, ResetFormat::Duration, ns);
            let len = sink.len;
            assert_eq!(core::str::from_utf8(&buf[..len]).unwrap(), text, "{ns}");
        }
    }

    #[test]
    fn names_are_checked() {
        let d = decision(true, 1, 0, 0);
        let mut buf = [0u8; 256];
        for (names, index) in [
            (&["requests", "Requests"][..], 1),
            (&["input_tokens", "input-tokens"][..], 1),
            (&["a b"][..], 0),
            (&[""][..], 0),
        ] {
            let p: std::vec::Vec<_> = names.iter().map(|name| policy(name, 1, d)).collect();
            assert_eq!(
                render_dimension_headers(DimensionStyle::openai(), &p, &mut buf),
                Err(HeaderError::InvalidName { index })
            );
        }
        let bad_prefix = DimensionStyle {
            prefix: "X-",
            ..DimensionStyle::openai()
        };
        assert_eq!(
            render_dimension_headers(bad_prefix, &[policy("r", 1, d)], &mut buf),
            Err(HeaderError::InvalidName { index: usize::MAX })
        );
        // Never: no retry headers; too small: the exact size.
        let never = [policy("r", 1, decision(false, 0, NEVER, 0))];
        let rendered = render(DimensionStyle::openai(), &never);
        assert_eq!(rendered.len(), 3);
        let needed = match render_dimension_headers(DimensionStyle::openai(), &never, &mut []) {
            Err(HeaderError::BufferTooSmall { needed }) => needed,
            other => panic!("{other:?}"),
        };
        let mut exact = std::vec![0u8; needed];
        assert!(render_dimension_headers(DimensionStyle::openai(), &never, &mut exact).is_ok());
    }
}
