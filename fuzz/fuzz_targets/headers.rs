//! Header and 429-body rendering: arbitrary policies (names of any bytes, any quota, any
//! decision, `NEVER` included) in every style, into buffers of arbitrary length.
//!
//! - Never panics; errors come in the documented order: `NoPolicies` for an empty slice, then
//!   `InvalidName` with the index of the first name holding a byte outside `0x20..=0x7E`, then
//!   `BufferTooSmall` with the exact length needed (which `max_header_bytes` bounds).
//! - A buffer of at least the needed length succeeds with the same bytes whatever its length;
//!   one byte less fails.
//! - The output parses back (with a reader written independently, `cellgate_fuzz::headers_text`)
//!   into exactly the documented values: names unescaped, `q`, `w`, `r`, `t`, the legacy triple
//!   of the binding policy, `Retry-After` only on a denial with a finite wait; the values lie
//!   back to back in `as_str()`.
//! - The 429 body agrees with `Retry-After`, fits `MAX_429_BODY_BYTES`, and reports the exact
//!   length when the buffer is short.
#![no_main]

use arbitrary::Arbitrary;
use cellgate::{
    combined_retry_after_ns, max_header_bytes, render_429_body, render_headers, Decision,
    HeaderError, HeaderStyle, PolicyHeader, Quota, MAX_429_BODY_BYTES, MAX_HEADERS, NEVER,
    NS_PER_SECOND,
};
use cellgate_fuzz::headers_text::{parse_integer, parse_sf_list};
use cellgate_fuzz::QuotaSpec;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Name {
    /// Printable ASCII (each byte mapped into `0x20..=0x7E`), quotes and backslashes included.
    Printable(Vec<u8>),
    /// Any text.
    Any(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Wait {
    Zero,
    Never,
    Seconds(u16),
    Any(u64),
}

impl Wait {
    fn ns(self) -> u64 {
        match self {
            Self::Zero => 0,
            Self::Never => NEVER,
            Self::Seconds(n) => u64::from(n) * NS_PER_SECOND,
            Self::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct PolicyInput {
    name: Name,
    quota: QuotaSpec,
    allowed: bool,
    limit: u64,
    remaining: u64,
    retry: Wait,
    reset: Wait,
}

#[derive(Arbitrary, Debug)]
enum Style {
    Ietf,
    Legacy,
    LegacyEpoch(u64),
    Draft6,
    Draft7,
}

#[derive(Arbitrary, Debug)]
enum Length {
    /// Exactly the length needed.
    Exact,
    /// One byte short.
    Short,
    /// `max_header_bytes` for these policies.
    Bound,
    /// Any length up to 4 KiB.
    Any(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    style: Style,
    policies: Vec<PolicyInput>,
    length: Length,
    body_length: u8,
}

fn ceil_seconds(ns: u64) -> u64 {
    ns.div_ceil(NS_PER_SECOND)
}

/// `Retry-After` in seconds for a wait: rounded up, at least 1; `None` for `NEVER`.
fn retry_seconds(ns: u64) -> Option<u64> {
    (ns != NEVER).then(|| ceil_seconds(ns).max(1))
}

/// The `t` parameter of one policy, restated from the documentation of `render_headers`.
fn expected_t(policy: &PolicyHeader<'_>) -> Option<u64> {
    let decision = policy.decision;
    if !decision.allowed {
        return retry_seconds(decision.retry_after_ns);
    }
    if decision.reset_after_ns == 0 {
        return Some(0);
    }
    let unit_ns = policy.quota.period_ns().div_ceil(policy.quota.rate_cost());
    Some(ceil_seconds(decision.reset_after_ns.min(unit_ns)))
}

/// The binding policy of the legacy styles: when some policy denied, the denying one with the
/// longest retry; otherwise least remaining, then longest reset; ties to the first.
fn binding<'p, 'a>(policies: &'p [PolicyHeader<'a>]) -> &'p PolicyHeader<'a> {
    let denied = policies.iter().any(|policy| !policy.decision.allowed);
    let mut best = &policies[0];
    for policy in &policies[1..] {
        let (b, p) = (best.decision, policy.decision);
        let better = if denied {
            !p.allowed && (b.allowed || p.retry_after_ns > b.retry_after_ns)
        } else {
            (p.remaining, u64::MAX - p.reset_after_ns) < (b.remaining, u64::MAX - b.reset_after_ns)
        };
        if better {
            best = policy;
        }
    }
    best
}

fn check_rendering(style: HeaderStyle, policies: &[PolicyHeader<'_>], pairs: &[(&str, &str)]) {
    let denied_wait = policies
        .iter()
        .filter(|policy| !policy.decision.allowed)
        .map(|policy| policy.decision.retry_after_ns)
        .max();
    let retry_after = denied_wait.and_then(retry_seconds);
    let mut expected_names: Vec<&str> = match style {
        HeaderStyle::Ietf | HeaderStyle::Draft7 => vec!["RateLimit-Policy", "RateLimit"],
        HeaderStyle::Draft6 => vec![
            "RateLimit-Policy",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
        _ => vec![
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
    };
    if retry_after.is_some() {
        expected_names.push("Retry-After");
    }
    let names: Vec<&str> = pairs.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected_names);
    assert!(pairs.len() <= MAX_HEADERS);
    match style {
        HeaderStyle::Ietf => {
            let policy_items = parse_sf_list(pairs[0].1).expect("RateLimit-Policy parses");
            let limit_items = parse_sf_list(pairs[1].1).expect("RateLimit parses");
            assert_eq!(policy_items.len(), policies.len());
            assert_eq!(limit_items.len(), policies.len());
            for ((policy, (name, params)), (limit_name, limit_params)) in
                policies.iter().zip(&policy_items).zip(&limit_items)
            {
                assert_eq!(name, policy.name);
                assert_eq!(limit_name, policy.name);
                let w = ceil_seconds(policy.quota.period_ns());
                assert_eq!(
                    params,
                    &[
                        ("q".to_owned(), policy.quota.rate_cost()),
                        ("w".to_owned(), w)
                    ]
                );
                assert!(w >= 1);
                let mut expected = vec![("r".to_owned(), policy.decision.remaining)];
                if let Some(t) = expected_t(policy) {
                    expected.push(("t".to_owned(), t));
                }
                assert_eq!(limit_params, &expected);
            }
        }
        HeaderStyle::Legacy | HeaderStyle::LegacyEpoch { .. } => {
            let decision = binding(policies).decision;
            let reset_s = ceil_seconds(decision.reset_after_ns);
            let reset = match style {
                HeaderStyle::LegacyEpoch { now_unix_s } => now_unix_s.saturating_add(reset_s),
                _ => reset_s,
            };
            let numbers: Vec<u64> = pairs[..3]
                .iter()
                .map(|(_, value)| parse_integer(value).expect("an integer"))
                .collect();
            assert_eq!(numbers, [decision.limit, decision.remaining, reset]);
        }
        HeaderStyle::Draft6 | HeaderStyle::Draft7 => {
            let policy_list: Vec<String> = policies
                .iter()
                .map(|policy| {
                    let w = ceil_seconds(policy.quota.period_ns());
                    format!("{};w={w}", policy.quota.rate_cost())
                })
                .collect();
            assert_eq!(pairs[0].1, policy_list.join(", "));
            let decision = binding(policies).decision;
            let reset_s = ceil_seconds(decision.reset_after_ns);
            if style == HeaderStyle::Draft6 {
                let numbers: Vec<u64> = pairs[1..4]
                    .iter()
                    .map(|(_, value)| parse_integer(value).expect("an integer"))
                    .collect();
                assert_eq!(numbers, [decision.limit, decision.remaining, reset_s]);
            } else {
                let expected = format!(
                    "limit={}, remaining={}, reset={reset_s}",
                    decision.limit, decision.remaining
                );
                assert_eq!(pairs[1].1, expected);
            }
        }
        _ => {}
    }
    if let Some(seconds) = retry_after {
        assert_eq!(parse_integer(pairs.last().unwrap().1), Some(seconds));
    }
}

fuzz_target!(|input: Input| {
    let names: Vec<String> = input
        .policies
        .iter()
        .take(8)
        .map(|policy| match &policy.name {
            Name::Printable(bytes) => bytes.iter().map(|&b| char::from(0x20 + b % 0x5F)).collect(),
            Name::Any(text) => text.clone(),
        })
        .collect();
    let mut policies = Vec::new();
    for (policy, name) in input.policies.iter().zip(&names) {
        let quota = policy
            .quota
            .quota()
            .unwrap_or_else(|| Quota::per_second(1).expect("a valid quota"));
        policies.push(PolicyHeader {
            name,
            quota,
            decision: Decision {
                allowed: policy.allowed,
                limit: policy.limit,
                remaining: policy.remaining,
                retry_after_ns: policy.retry.ns(),
                reset_after_ns: policy.reset.ns(),
            },
        });
    }
    let style = match input.style {
        Style::Ietf => HeaderStyle::Ietf,
        Style::Legacy => HeaderStyle::Legacy,
        Style::LegacyEpoch(now_unix_s) => HeaderStyle::LegacyEpoch { now_unix_s },
        Style::Draft6 => HeaderStyle::Draft6,
        Style::Draft7 => HeaderStyle::Draft7,
    };
    let name_bytes: usize = policies.iter().map(|policy| policy.name.len()).sum();
    let bound = max_header_bytes(policies.len(), name_bytes);
    let mut big = vec![0u8; bound];

    let invalid = policies
        .iter()
        .position(|policy| !policy.name.bytes().all(|b| (0x20..=0x7E).contains(&b)));
    let result = render_headers(style, &policies, &mut big);
    if policies.is_empty() {
        assert_eq!(result, Err(HeaderError::NoPolicies));
        assert_eq!(
            render_headers(style, &policies, &mut []),
            Err(HeaderError::NoPolicies)
        );
        return;
    }
    if let Some(index) = invalid {
        assert_eq!(result, Err(HeaderError::InvalidName { index }));
        assert_eq!(
            render_headers(style, &policies, &mut []),
            Err(HeaderError::InvalidName { index })
        );
        return;
    }
    let rendered = result.expect("a buffer of max_header_bytes always suffices");
    let text = rendered.as_str().to_owned();
    let pairs: Vec<(&str, String)> = rendered.iter().map(|(n, v)| (n, v.to_owned())).collect();
    assert_eq!(rendered.len(), pairs.len());
    assert!(!rendered.is_empty());
    let joined: String = pairs.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(joined, text, "values lie back to back");
    assert!(text.is_ascii());
    for (name, value) in &pairs {
        assert_eq!(
            rendered.value(&name.to_ascii_lowercase()),
            Some(value.as_str())
        );
    }
    let needed = text.len();
    assert!(needed <= bound);
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    check_rendering(style, &policies, &borrowed);

    // Any other length: the same bytes, or the exact length needed.
    let length = match input.length {
        Length::Exact => needed,
        Length::Short => needed.saturating_sub(1),
        Length::Bound => bound,
        Length::Any(n) => usize::from(n) % 4096,
    };
    let mut buf = vec![0xAAu8; length];
    match render_headers(style, &policies, &mut buf) {
        Ok(again) => {
            assert!(length >= needed);
            assert_eq!(again.as_str(), text);
            assert!(again
                .iter()
                .map(|(n, v)| (n, v.to_owned()))
                .eq(pairs.iter().cloned()));
        }
        Err(error) => {
            assert!(length < needed, "failed with room: {error:?}");
            assert_eq!(error, HeaderError::BufferTooSmall { needed });
        }
    }
    assert_eq!(
        render_headers(style, &policies, &mut []),
        Err(HeaderError::BufferTooSmall { needed })
    );

    // The 429 body agrees with Retry-After.
    let wait = combined_retry_after_ns(&policies);
    let body_wait = wait.unwrap_or(0);
    let mut body = [0u8; MAX_429_BODY_BYTES];
    let len = render_429_body(body_wait, &mut body).expect("MAX_429_BODY_BYTES suffices");
    let body_text = std::str::from_utf8(&body[..len]).expect("ASCII");
    let number = body_text
        .strip_prefix(r#"{"error":"rate_limited","retry_after":"#)
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("the body's shape");
    match retry_seconds(body_wait) {
        Some(seconds) => assert_eq!(parse_integer(number), Some(seconds)),
        None => assert_eq!(number, "null"),
    }
    if wait.is_some() {
        let header = rendered.value("retry-after");
        assert_eq!(
            header.map(str::to_owned),
            retry_seconds(body_wait).map(|s| s.to_string())
        );
    }
    let short = usize::from(input.body_length) % (len + 1);
    let mut small = vec![0u8; short];
    match render_429_body(body_wait, &mut small) {
        Ok(written) => assert!(short >= len && written == len),
        Err(error) => {
            assert!(short < len);
            assert_eq!(error, HeaderError::BufferTooSmall { needed: len });
        }
    }
});
