//! Pins the exact bytes of the rate-limit headers and the 429 body, which every runtime (C,
//! Python, Node bindings) sends unchanged.

use cellgate::{
    combined_retry_after_ns, max_header_bytes, render_429_body, render_headers,
    retry_after_seconds, Decision, HeaderError, HeaderStyle, PolicyHeader, Quota,
    MAX_429_BODY_BYTES, MAX_HEADERS, NEVER, NS_PER_SECOND,
};

const NOW_UNIX_S: u64 = 1_700_000_000;
const EPOCH: HeaderStyle = HeaderStyle::LegacyEpoch {
    now_unix_s: NOW_UNIX_S,
};
const STYLES: [HeaderStyle; 5] = [
    HeaderStyle::Ietf,
    HeaderStyle::Legacy,
    EPOCH,
    HeaderStyle::Draft6,
    HeaderStyle::Draft7,
];

fn allowed(limit: u64, remaining: u64, reset_after_ns: u64) -> Decision {
    Decision {
        allowed: true,
        limit,
        remaining,
        retry_after_ns: 0,
        reset_after_ns,
    }
}

fn denied(limit: u64, remaining: u64, retry_after_ns: u64, reset_after_ns: u64) -> Decision {
    Decision {
        allowed: false,
        limit,
        remaining,
        retry_after_ns,
        reset_after_ns,
    }
}

fn policy(name: &str, quota: Quota, decision: Decision) -> PolicyHeader<'_> {
    PolicyHeader {
        name,
        quota,
        decision,
    }
}

fn per_second(count: u64) -> Quota {
    Quota::per_second(count).unwrap()
}

/// Renders `policies` and returns the pairs as owned strings. On the way it checks that the
/// size reported for an empty buffer is exact: a buffer of that size succeeds, one byte less
/// fails with the same `needed`, and the values fill the buffer exactly.
fn render(style: HeaderStyle, policies: &[PolicyHeader<'_>]) -> Vec<(&'static str, String)> {
    let needed = match render_headers(style, policies, &mut []) {
        Err(HeaderError::BufferTooSmall { needed }) => needed,
        other => panic!("an empty buffer must be too small, got {other:?}"),
    };
    let names: usize = policies.iter().map(|p| p.name.len()).sum();
    assert!(needed <= max_header_bytes(policies.len(), names));

    let mut short = vec![0u8; needed - 1];
    assert_eq!(
        render_headers(style, policies, &mut short),
        Err(HeaderError::BufferTooSmall { needed })
    );

    let mut exact = vec![0u8; needed];
    let headers = render_headers(style, policies, &mut exact).unwrap();
    assert_eq!(headers.as_str().len(), needed);
    let joined: String = headers.iter().map(|(_, value)| value).collect();
    assert_eq!(joined, headers.as_str());
    let pairs: Vec<_> = headers
        .iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect();

    // A larger buffer gives the same bytes.
    let mut large = vec![0xAAu8; needed + 64];
    let again = render_headers(style, policies, &mut large).unwrap();
    let again: Vec<_> = again.iter().map(|(n, v)| (n, v.to_owned())).collect();
    assert_eq!(again, pairs);
    pairs
}

fn owned(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|&(n, v)| (n, v.to_owned())).collect()
}

fn body(retry_after_ns: u64) -> String {
    let mut out = [0u8; MAX_429_BODY_BYTES];
    let len = render_429_body(retry_after_ns, &mut out).unwrap();
    String::from_utf8(out[..len].to_vec()).unwrap()
}

#[test]
fn the_older_drafts_as_express_rate_limit_sends_them() {
    let minute = Quota::per_minute(100).unwrap();
    let day = Quota::per_day(1000).unwrap();
    let policies = [
        policy(
            "minute",
            minute,
            denied(100, 0, 1_500_000_000, 60_000_000_000),
        ),
        policy("day", day, allowed(1000, 900, 8_640_000_000_000)),
    ];
    assert_eq!(
        render(HeaderStyle::Draft6, &policies),
        owned(&[
            ("RateLimit-Policy", "100;w=60, 1000;w=86400"),
            ("RateLimit-Limit", "100"),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", "60"),
            ("Retry-After", "2"),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Draft7, &policies[1..]),
        owned(&[
            ("RateLimit-Policy", "1000;w=86400"),
            ("RateLimit", "limit=1000, remaining=900, reset=8640"),
        ])
    );
    assert_eq!(MAX_HEADERS, 5);
}

#[test]
fn default_style_is_ietf() {
    assert_eq!(HeaderStyle::default(), HeaderStyle::Ietf);
}

#[test]
fn single_allowed() {
    let p = [policy("api", per_second(10), allowed(10, 7, 300_000_000))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""api";q=10;w=1"#),
            ("RateLimit", r#""api";r=7;t=1"#),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "7"),
            ("X-RateLimit-Reset", "1"),
        ])
    );
    assert_eq!(
        render(EPOCH, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "7"),
            ("X-RateLimit-Reset", "1700000001"),
        ])
    );
}

#[test]
fn single_allowed_full_bucket_resets_now() {
    let p = [policy("api", per_second(10), allowed(10, 10, 0))];
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "10"),
            ("X-RateLimit-Reset", "0"),
        ])
    );
    assert_eq!(
        render(EPOCH, &p)[2],
        ("X-RateLimit-Reset", "1700000000".to_owned())
    );
}

#[test]
fn single_denied() {
    let p = [policy(
        "api",
        per_second(10),
        denied(10, 0, 100_000_000, NS_PER_SECOND),
    )];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""api";q=10;w=1"#),
            ("RateLimit", r#""api";r=0;t=1"#),
            ("Retry-After", "1"),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1"),
            ("Retry-After", "1"),
        ])
    );
    assert_eq!(
        render(EPOCH, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1700000001"),
            ("Retry-After", "1"),
        ])
    );
    assert_eq!(
        body(100_000_000),
        r#"{"error":"rate_limited","retry_after":1}"#
    );
}

#[test]
fn denied_rounds_up_to_whole_seconds() {
    // 1 request per minute, a request of cost 1 denied 2.5 s before the next unit; a larger
    // request (cost 2 of burst 3) denied with one unit left.
    let quota = Quota::per_minute(1).unwrap().with_burst(3).unwrap();
    let p = [policy(
        "slow",
        quota,
        denied(3, 1, 2_500_000_000, 122_500_000_000),
    )];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""slow";q=1;w=60"#),
            ("RateLimit", r#""slow";r=1;t=3"#),
            ("Retry-After", "3"),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "3"),
            ("X-RateLimit-Remaining", "1"),
            ("X-RateLimit-Reset", "123"),
            ("Retry-After", "3"),
        ])
    );
    // Exactly whole seconds are not rounded further; one nanosecond more is.
    let exact = [policy(
        "s",
        per_second(1),
        denied(1, 0, 2 * NS_PER_SECOND, 0),
    )];
    assert_eq!(render(HeaderStyle::Ietf, &exact)[2].1, "2");
    let over = [policy(
        "s",
        per_second(1),
        denied(1, 0, 2 * NS_PER_SECOND + 1, 0),
    )];
    assert_eq!(render(HeaderStyle::Ietf, &over)[1].1, r#""s";r=0;t=3"#);
    assert_eq!(render(HeaderStyle::Ietf, &over)[2].1, "3");
    // A denial never says 0, even with a (contract-violating) zero wait.
    let zero = [policy("s", per_second(1), denied(1, 0, 0, 0))];
    assert_eq!(
        render(HeaderStyle::Ietf, &zero),
        owned(&[
            ("RateLimit-Policy", r#""s";q=1;w=1"#),
            ("RateLimit", r#""s";r=0;t=1"#),
            ("Retry-After", "1"),
        ])
    );
}

#[test]
fn two_policies_allowed() {
    let p = [
        policy("burst", per_second(10), allowed(10, 3, 700_000_000)),
        policy(
            "daily",
            Quota::per_day(1000).unwrap(),
            allowed(1000, 997, 259_200_000_000),
        ),
    ];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1,"daily";q=1000;w=86400"#
            ),
            ("RateLimit", r#""burst";r=3;t=1,"daily";r=997;t=87"#),
        ])
    );
    // The binding policy is "burst": the least remaining.
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "3"),
            ("X-RateLimit-Reset", "1"),
        ])
    );
    // Order of the slice is the order of the list members; the binding policy does not move.
    let swapped = [p[1], p[0]];
    assert_eq!(
        render(HeaderStyle::Ietf, &swapped)[1].1,
        r#""daily";r=997;t=87,"burst";r=3;t=1"#
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &swapped),
        render(HeaderStyle::Legacy, &p)
    );
}

#[test]
fn two_policies_one_denied() {
    let p = [
        policy("burst", per_second(10), allowed(10, 9, 100_000_000)),
        policy(
            "daily",
            Quota::per_day(1000).unwrap(),
            denied(1000, 0, 86_400_000_000, 86_400_000_000_000),
        ),
    ];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1,"daily";q=1000;w=86400"#
            ),
            ("RateLimit", r#""burst";r=9;t=1,"daily";r=0;t=87"#),
            ("Retry-After", "87"),
        ])
    );
    assert_eq!(
        render(EPOCH, &p),
        owned(&[
            ("X-RateLimit-Limit", "1000"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1700086400"),
            ("Retry-After", "87"),
        ])
    );
    assert_eq!(combined_retry_after_ns(&p), Some(86_400_000_000));
}

#[test]
fn two_policies_both_denied_use_longest_retry() {
    let p = [
        policy(
            "burst",
            per_second(10),
            denied(10, 0, 100_000_000, NS_PER_SECOND),
        ),
        policy(
            "hourly",
            Quota::per_hour(100).unwrap(),
            denied(100, 0, 5_000_500_000_000, 5_000_500_000_000),
        ),
    ];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1,"hourly";q=100;w=3600"#
            ),
            ("RateLimit", r#""burst";r=0;t=1,"hourly";r=0;t=5001"#),
            ("Retry-After", "5001"),
        ])
    );
    // Both have 0 remaining: the longer retry binds.
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "5001"),
            ("Retry-After", "5001"),
        ])
    );
    assert_eq!(combined_retry_after_ns(&p), Some(5_000_500_000_000));
    assert_eq!(
        body(combined_retry_after_ns(&p).unwrap()),
        r#"{"error":"rate_limited","retry_after":5001}"#
    );
}

#[test]
fn binding_policy_ties() {
    // Equal remaining and retry: the longer reset binds.
    let p = [
        policy("a", per_second(5), allowed(5, 2, 2 * NS_PER_SECOND)),
        policy("b", per_second(7), allowed(7, 2, 3 * NS_PER_SECOND)),
    ];
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "7"),
            ("X-RateLimit-Remaining", "2"),
            ("X-RateLimit-Reset", "3"),
        ])
    );
    // A complete tie: the first binds.
    let p = [
        policy("a", per_second(5), allowed(5, 2, 2 * NS_PER_SECOND)),
        policy("b", per_second(7), allowed(7, 2, 2 * NS_PER_SECOND)),
    ];
    assert_eq!(render(HeaderStyle::Legacy, &p)[0].1, "5");
    // On a denial the denying policy binds, even with more remaining: the triple describes
    // what refused (the rule of PolicyDecision::binding).
    let p = [
        policy("a", per_second(5), denied(5, 1, 9 * NS_PER_SECOND, 0)),
        policy("b", per_second(7), allowed(7, 0, NS_PER_SECOND)),
    ];
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "5"),
            ("X-RateLimit-Remaining", "1"),
            ("X-RateLimit-Reset", "0"),
            ("Retry-After", "9"),
        ])
    );
    // Of two denying policies, the longer wait binds.
    let p = [
        policy(
            "a",
            per_second(5),
            denied(5, 0, 2 * NS_PER_SECOND, 2 * NS_PER_SECOND),
        ),
        policy(
            "b",
            per_second(7),
            denied(7, 3, 4 * NS_PER_SECOND, 4 * NS_PER_SECOND),
        ),
    ];
    assert_eq!(render(HeaderStyle::Legacy, &p)[0].1, "7");
}

#[test]
fn remaining_zero_allowed_reports_next_unit() {
    // 10/s: the next unit is at most 100 ms away, rounded up to 1 s.
    let p = [policy("api", per_second(10), allowed(10, 0, NS_PER_SECOND))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""api";q=10;w=1"#),
            ("RateLimit", r#""api";r=0;t=1"#),
        ])
    );
    // No Retry-After without a denial; legacy reports the time until full.
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1"),
        ])
    );
    // 1000/day with a burst of 1000 just emptied: one unit every 86.4 s, so t=87 while the
    // bucket is full again only after a day.
    let daily = Quota::per_day(1000).unwrap();
    let p = [policy("daily", daily, allowed(1000, 0, 86_400_000_000_000))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""daily";r=0;t=87"#);
    assert_eq!(render(HeaderStyle::Legacy, &p)[2].1, "86400");
    // The reset is shorter than one emission interval: the reset bounds t.
    let minute = Quota::per_minute(1).unwrap();
    let p = [policy("m", minute, allowed(1, 0, 30_000_000_001))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""m";r=0;t=31"#);
    let p = [policy("m", minute, allowed(1, 0, 60 * NS_PER_SECOND))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""m";r=0;t=60"#);
    // 3/s: the interval is 333_333_333.3 ns, rounded up, then to 1 s.
    let p = [policy("t", per_second(3), allowed(3, 0, NS_PER_SECOND))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""t";r=0;t=1"#);
    // A (contract-violating) zero reset with nothing left gives t=0.
    let p = [policy("z", per_second(3), allowed(3, 0, 0))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""z";r=0;t=0"#);
}

#[test]
fn never_omits_t_and_retry_after() {
    let p = [policy("api", per_second(10), denied(10, 10, NEVER, 0))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""api";q=10;w=1"#),
            ("RateLimit", r#""api";r=10"#),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "10"),
            ("X-RateLimit-Reset", "0"),
        ])
    );
    assert_eq!(
        render(EPOCH, &p),
        owned(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "10"),
            ("X-RateLimit-Reset", "1700000000"),
        ])
    );
    assert_eq!(
        body(NEVER),
        r#"{"error":"rate_limited","retry_after":null}"#
    );
    assert_eq!(retry_after_seconds(NEVER), None);
}

#[test]
fn never_beside_a_finite_denial_omits_retry_after() {
    let p = [
        policy("burst", per_second(10), denied(10, 0, 100_000_000, 0)),
        policy(
            "daily",
            Quota::per_day(1000).unwrap(),
            denied(1000, 5, NEVER, 0),
        ),
    ];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            (
                "RateLimit-Policy",
                r#""burst";q=10;w=1,"daily";q=1000;w=86400"#
            ),
            ("RateLimit", r#""burst";r=0;t=1,"daily";r=5"#),
        ])
    );
    assert_eq!(combined_retry_after_ns(&p), Some(NEVER));
    for style in STYLES {
        let pairs = render(style, &p);
        assert!(pairs.iter().all(|(name, _)| *name != "Retry-After"));
    }
}

#[test]
fn names_are_escaped() {
    let quota = per_second(1);
    let p = [
        policy(r#"a"b\c"#, quota, allowed(1, 1, 0)),
        policy("", quota, allowed(1, 1, 0)),
        policy(r#" ~"\"#, quota, allowed(1, 1, 0)),
    ];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            (
                "RateLimit-Policy",
                r#""a\"b\\c";q=1;w=1,"";q=1;w=1," ~\"\\";q=1;w=1"#
            ),
            (
                "RateLimit",
                r#""a\"b\\c";r=1;t=0,"";r=1;t=0," ~\"\\";r=1;t=0"#
            ),
        ])
    );
    // Names that are nothing but escapes: the worst case of max_header_bytes.
    let name = "\"\\".repeat(50);
    let p = [policy(&name, quota, denied(1, 0, NEVER - 1, NEVER - 1))];
    let pairs = render(HeaderStyle::Ietf, &p);
    let escaped = "\\\"\\\\".repeat(50);
    assert_eq!(pairs[0].1, format!("\"{escaped}\";q=1;w=1"));
    assert_eq!(pairs[1].1, format!("\"{escaped}\";r=0;t=18446744074"));
}

#[test]
fn invalid_names() {
    let quota = per_second(1);
    let ok = allowed(1, 1, 0);
    for bad in [
        "é",
        "tab\there",
        "\n",
        "\u{7f}",
        "\0",
        "caf\u{e9}",
        "\u{1F600}",
    ] {
        for style in STYLES {
            let p = [policy("fine", quota, ok), policy(bad, quota, ok)];
            let mut buf = [0u8; 512];
            assert_eq!(
                render_headers(style, &p, &mut buf),
                Err(HeaderError::InvalidName { index: 1 }),
                "{bad:?}"
            );
            // The first invalid name is reported, before the buffer size.
            let p = [policy(bad, quota, ok), policy(bad, quota, ok)];
            assert_eq!(
                render_headers(style, &p, &mut []),
                Err(HeaderError::InvalidName { index: 0 })
            );
        }
    }
}

#[test]
fn no_policies() {
    for style in STYLES {
        assert_eq!(
            render_headers(style, &[], &mut [0u8; 64]),
            Err(HeaderError::NoPolicies)
        );
    }
}

#[test]
fn exact_buffer_size() {
    let p = [
        policy("burst", per_second(10), allowed(10, 3, 700_000_000)),
        policy(
            "daily",
            Quota::per_day(1000).unwrap(),
            allowed(1000, 997, 259_200_000_000),
        ),
    ];
    let rate_limit_policy = r#""burst";q=10;w=1,"daily";q=1000;w=86400"#;
    let rate_limit = r#""burst";r=3;t=1,"daily";r=997;t=87"#;
    let needed = rate_limit_policy.len() + rate_limit.len();
    assert_eq!(needed, 73);

    let mut exact = [0u8; 73];
    let headers = render_headers(HeaderStyle::Ietf, &p, &mut exact).unwrap();
    assert_eq!(headers.as_str(), format!("{rate_limit_policy}{rate_limit}"));
    let mut short = [0u8; 72];
    assert_eq!(
        render_headers(HeaderStyle::Ietf, &p, &mut short),
        Err(HeaderError::BufferTooSmall { needed: 73 })
    );
    assert_eq!(
        render_headers(HeaderStyle::Ietf, &p, &mut []),
        Err(HeaderError::BufferTooSmall { needed: 73 })
    );

    // Legacy: "10" + "3" + "1".
    let mut exact = [0u8; 4];
    let headers = render_headers(HeaderStyle::Legacy, &p, &mut exact).unwrap();
    assert_eq!(headers.as_str(), "1031");
    assert_eq!(
        render_headers(HeaderStyle::Legacy, &p, &mut [0u8; 3]),
        Err(HeaderError::BufferTooSmall { needed: 4 })
    );

    // The 429 body.
    let text = r#"{"error":"rate_limited","retry_after":1}"#;
    let mut exact = [0u8; 40];
    assert_eq!(text.len(), 40);
    assert_eq!(render_429_body(NS_PER_SECOND, &mut exact), Ok(40));
    assert_eq!(&exact[..], text.as_bytes());
    assert_eq!(
        render_429_body(NS_PER_SECOND, &mut [0u8; 39]),
        Err(HeaderError::BufferTooSmall { needed: 40 })
    );
    assert_eq!(
        render_429_body(NEVER, &mut [0u8; 42]),
        Err(HeaderError::BufferTooSmall { needed: 43 })
    );
    assert_eq!(render_429_body(NEVER, &mut [0u8; 43]), Ok(43));
}

#[test]
fn window_rounds_up_to_whole_seconds() {
    let cases = [
        (Quota::new(5, 1_500_000_000).unwrap(), r#""p";q=5;w=2"#),
        (Quota::new(1, 1).unwrap(), r#""p";q=1;w=1"#),
        (Quota::new(2, 999_999_999).unwrap(), r#""p";q=2;w=1"#),
        (Quota::new(7, 60_000_000_001).unwrap(), r#""p";q=7;w=61"#),
        (Quota::per_minute(100).unwrap(), r#""p";q=100;w=60"#),
        (
            Quota::per_seconds(500, 7 * 86_400).unwrap(),
            r#""p";q=500;w=604800"#,
        ),
    ];
    for (quota, expected) in cases {
        let p = [policy("p", quota, allowed(quota.burst_cost(), 1, 1))];
        assert_eq!(render(HeaderStyle::Ietf, &p)[0].1, expected, "{quota:?}");
    }
    // The burst does not appear in the policy; q is the rate.
    let quota = Quota::per_minute(100).unwrap().with_burst(20).unwrap();
    let p = [policy("p", quota, allowed(20, 20, 0))];
    assert_eq!(render(HeaderStyle::Ietf, &p)[0].1, r#""p";q=100;w=60"#);
    // 100 ms remaining-0 interval with a sub-second period: t rounds up to 1.
    let quota = Quota::new(5, 500_000_000).unwrap();
    let p = [policy("p", quota, allowed(5, 0, 500_000_000))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""p";q=5;w=1"#),
            ("RateLimit", r#""p";r=0;t=1"#),
        ])
    );
}

#[test]
fn huge_values() {
    let quota = Quota::with_parts(u64::MAX, 1, u64::MAX / 2).unwrap();
    let p = [policy("max", quota, allowed(u64::MAX, u64::MAX, NEVER - 1))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""max";q=18446744073709551615;w=1"#),
            ("RateLimit", r#""max";r=18446744073709551615;t=1"#),
        ])
    );
    assert_eq!(
        render(HeaderStyle::Legacy, &p),
        owned(&[
            ("X-RateLimit-Limit", "18446744073709551615"),
            ("X-RateLimit-Remaining", "18446744073709551615"),
            ("X-RateLimit-Reset", "18446744074"),
        ])
    );
    // The epoch reset saturates.
    let near_end = HeaderStyle::LegacyEpoch {
        now_unix_s: u64::MAX - 5,
    };
    assert_eq!(
        render(near_end, &p)[2],
        ("X-RateLimit-Reset", "18446744073709551615".to_owned())
    );

    // The longest period (with a burst of 1) and the longest finite waits.
    let quota = Quota::new(1, u64::MAX / 2).unwrap();
    let p = [policy("long", quota, denied(1, 0, NEVER - 1, NEVER - 1))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p),
        owned(&[
            ("RateLimit-Policy", r#""long";q=1;w=9223372037"#),
            ("RateLimit", r#""long";r=0;t=18446744074"#),
            ("Retry-After", "18446744074"),
        ])
    );
    // Allowed with nothing left: the emission interval (the whole period) bounds t.
    let p = [policy("long", quota, allowed(1, 0, NEVER - 1))];
    assert_eq!(
        render(HeaderStyle::Ietf, &p)[1].1,
        r#""long";r=0;t=9223372037"#
    );
    assert_eq!(
        body(NEVER - 1),
        r#"{"error":"rate_limited","retry_after":18446744074}"#
    );
    assert_eq!(body(NEVER - 1).len(), MAX_429_BODY_BYTES);
}

/// Every number of every length, 1 to 20 digits, on both sides of each power of ten: the
/// digits are written inline, a length at a time, so a miscounted length shows only at some.
#[test]
fn numbers_of_every_length() {
    let mut values = vec![0, 1, 9, u64::MAX];
    let mut power: u64 = 10;
    loop {
        values.extend([power - 1, power, power + 1]);
        match power.checked_mul(10) {
            Some(next) => power = next,
            None => break,
        }
    }
    for &value in &values {
        let digits = value.to_string();
        // `remaining` and `limit` of every length, in every style that shows them.
        let p = [policy(
            "n",
            per_second(1),
            allowed(value, value, NS_PER_SECOND),
        )];
        let legacy = render(HeaderStyle::Legacy, &p);
        assert_eq!(legacy[0], ("X-RateLimit-Limit", digits.clone()));
        assert_eq!(legacy[1], ("X-RateLimit-Remaining", digits.clone()));
        assert_eq!(
            render(HeaderStyle::Ietf, &p)[1].1,
            format!(r#""n";r={digits};t=1"#)
        );
        assert_eq!(
            render(HeaderStyle::Draft7, &p)[1].1,
            format!("limit={digits}, remaining={digits}, reset=1")
        );
        // The epoch reset: `now + 1`, of every length up to the saturated end.
        let epoch = HeaderStyle::LegacyEpoch {
            now_unix_s: value.saturating_sub(1),
        };
        let reset = value.max(1).to_string();
        assert_eq!(render(epoch, &p)[2], ("X-RateLimit-Reset", reset));
        // A quota of every size in the policy header (a quota needs at least 1).
        if value > 0 {
            let quota = Quota::with_parts(value, 1, 1).unwrap();
            let p = [policy("n", quota, allowed(value, 0, 1))];
            assert_eq!(
                render(HeaderStyle::Ietf, &p)[0].1,
                format!(r#""n";q={digits};w=1"#)
            );
        }
    }
}

#[test]
fn max_header_bytes_bounds_the_worst_case() {
    assert_eq!(max_header_bytes(0, 0), 107);
    assert_eq!(max_header_bytes(1, 0), 152);
    assert_eq!(max_header_bytes(2, 10), 256);
    assert_eq!(max_header_bytes(usize::MAX, 1), usize::MAX);
    // Every number at 20 digits, every name byte escaped, a denial: within the bound.
    let quota = Quota::with_parts(u64::MAX, 1, u64::MAX / 2).unwrap();
    let names = ["\"\"\"", "\\", "", "x"];
    let p: Vec<_> = names
        .iter()
        .map(|name| policy(name, quota, denied(u64::MAX, u64::MAX, NEVER - 1, NEVER)))
        .collect();
    let total: usize = names.iter().map(|n| n.len()).sum();
    for style in STYLES {
        let needed = match render_headers(style, &p, &mut []) {
            Err(HeaderError::BufferTooSmall { needed }) => needed,
            other => panic!("{other:?}"),
        };
        assert!(needed <= max_header_bytes(p.len(), total), "{style:?}");
    }
    let mut buf = vec![0u8; max_header_bytes(p.len(), total)];
    assert!(render_headers(HeaderStyle::Ietf, &p, &mut buf).is_ok());
}

#[test]
fn rendered_headers_api() {
    let p = [policy(
        "api",
        per_second(10),
        denied(10, 0, 100_000_000, NS_PER_SECOND),
    )];
    let mut buf = [0u8; 128];
    let headers = render_headers(HeaderStyle::Ietf, &p, &mut buf).unwrap();
    assert_eq!(headers.len(), 3);
    assert!(!headers.is_empty());
    assert!(headers.len() <= MAX_HEADERS);
    assert_eq!(
        headers.get(0),
        Some(("RateLimit-Policy", r#""api";q=10;w=1"#))
    );
    assert_eq!(headers.get(2), Some(("Retry-After", "1")));
    assert_eq!(headers.get(3), None);
    assert_eq!(headers.value("retry-after"), Some("1"));
    assert_eq!(headers.value("RATELIMIT"), Some(r#""api";r=0;t=1"#));
    assert_eq!(headers.value("X-RateLimit-Limit"), None);
    let mut iter = headers.iter();
    assert_eq!(iter.len(), 3);
    iter.next();
    assert_eq!(iter.size_hint(), (2, Some(2)));
    assert_eq!(iter.by_ref().count(), 2);
    assert_eq!(iter.next(), None);
    let by_ref: Vec<_> = (&headers).into_iter().collect();
    let by_value: Vec<_> = headers.into_iter().collect();
    assert_eq!(by_ref, by_value);

    let mut buf = [0u8; 128];
    let draft6 = render_headers(HeaderStyle::Draft6, &p, &mut buf).unwrap();
    assert_eq!(draft6.len(), MAX_HEADERS);
    let mut buf = [0u8; 128];
    let headers = render_headers(HeaderStyle::Legacy, &p, &mut buf).unwrap();
    assert_eq!(headers.len(), 4);
    let names: Vec<_> = headers.iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After"
        ]
    );
}

#[test]
fn retry_after_helpers() {
    assert_eq!(retry_after_seconds(0), Some(1));
    assert_eq!(retry_after_seconds(1), Some(1));
    assert_eq!(retry_after_seconds(NS_PER_SECOND), Some(1));
    assert_eq!(retry_after_seconds(NS_PER_SECOND + 1), Some(2));
    assert_eq!(retry_after_seconds(NEVER - 1), Some(18_446_744_074));
    assert_eq!(retry_after_seconds(NEVER), None);
    assert_eq!(body(0), r#"{"error":"rate_limited","retry_after":1}"#);
    assert_eq!(
        body(NS_PER_SECOND + 1),
        r#"{"error":"rate_limited","retry_after":2}"#
    );

    let allowed_only = [policy("a", per_second(1), allowed(1, 1, 0))];
    assert_eq!(combined_retry_after_ns(&allowed_only), None);
    assert_eq!(combined_retry_after_ns(&[]), None);
}

#[test]
fn errors_display() {
    assert_eq!(
        HeaderError::NoPolicies.to_string(),
        "no policies to render headers for"
    );
    assert_eq!(
        HeaderError::InvalidName { index: 2 }.to_string(),
        "policy 2 has a name with a byte outside printable ASCII (0x20..=0x7E)"
    );
    assert_eq!(
        HeaderError::BufferTooSmall { needed: 71 }.to_string(),
        "output buffer too small: 71 bytes needed"
    );
}

/// Draft-10's `t` is the time until *additional* quota is available: after one request into
/// `5/10s` one unit comes back in 2 s (`r=4;t=2`), and `t=0` only once the bucket is full again.
#[test]
fn t_is_the_time_until_more_quota_not_zero_below_the_quota() {
    let limiter = cellgate::Gcra::new("5/10s".parse::<Quota>().unwrap());
    let after_one = limiter.check_at(0, 1);
    let p = [policy("p", limiter.quota(), after_one)];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""p";r=4;t=2"#);
    let after_two = limiter.check_at(500_000_000, 1);
    let p = [policy("p", limiter.quota(), after_two)];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""p";r=3;t=2"#);
    let full = limiter.peek_at(10 * NS_PER_SECOND, 0);
    assert_eq!(full.reset_after_ns, 0);
    let p = [policy("p", limiter.quota(), full)];
    assert_eq!(render(HeaderStyle::Ietf, &p)[1].1, r#""p";r=5;t=0"#);
}
