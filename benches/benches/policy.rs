//! Policies (several quotas decided all or nothing) and rate-limit headers, one thread.
//!
//! Each benchmark reports `Throughput::Elements(1)`: one policy check, or one rendering of a
//! request's headers, per iteration. governor has neither (no multi-quota decision, no header
//! rendering), so the references here are cellgate's own single cell.
//!
//! # Groups
//!
//! - `policy/check_at`: the admitted path with injected time, advanced by one emission
//!   interval of the tightest quota ([`STEP_NS`], 1 ms) per iteration, so every check is
//!   admitted and every entry written back.
//!   - `policy_two_quotas`: `Policy::check_at(now, &[1])` over two entries on one dimension,
//!     `1000/second` and `3600000/hour` (the same rate over an hour, so both stay admitted):
//!     two compare-exchanges, plus choosing the binding entry.
//!   - `policy_one_quota`: the same with one entry: the policy's overhead over a bare cell.
//!   - `gcra`: one `Gcra::check_at`, the reference.
//!   - `gcra_x2`: two `Gcra::check_at` in sequence, what the two-quota policy does at least
//!     (without its all-or-nothing bookkeeping).
//! - `headers/render`: `render_headers` into a stack buffer of 256 bytes, for decisions a
//!   policy made (`RateLimit-Policy` and `RateLimit` in the IETF style; the
//!   `X-RateLimit-*` triple for the binding policy in the legacy style).
//!   - `ietf/1`, `ietf/2`: one and two policies, admitted (two headers).
//!   - `ietf_denied/2`: two policies, one denying: a third header, `Retry-After`.
//!   - `legacy/2`: two policies in the legacy style (three headers).

use std::hint::black_box;

use cellgate::{
    render_headers, Decision, Gcra, HeaderStyle, Policy, PolicyEntry, PolicyHeader, Quota,
    NS_PER_SECOND,
};
use cellgate_benches::assert_path;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// The step of injected time per iteration: the emission interval of 1000/second.
const STEP_NS: u64 = 1_000_000;
/// The header buffer: enough for two policies with short names in every style.
const HEADER_BUFFER: usize = 256;

fn per_second() -> Quota {
    Quota::per_second(1_000).expect("a valid quota")
}

fn per_hour() -> Quota {
    Quota::per_hour(3_600_000).expect("a valid quota")
}

fn policy_check_at(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy/check_at");
    group.throughput(Throughput::Elements(1));

    for (name, entries) in [
        (
            "policy_two_quotas",
            vec![
                PolicyEntry {
                    name: "burst",
                    quota: per_second(),
                    dimension: 0,
                },
                PolicyEntry {
                    name: "hourly",
                    quota: per_hour(),
                    dimension: 0,
                },
            ],
        ),
        (
            "policy_one_quota",
            vec![PolicyEntry {
                name: "burst",
                quota: per_second(),
                dimension: 0,
            }],
        ),
    ] {
        let policy = Policy::new(entries).expect("a valid policy");
        let mut now = 0;
        assert_path(name, true, || {
            now += STEP_NS;
            policy.check_at(now, &[1]).unwrap().allowed
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                now += STEP_NS;
                policy.check_at(black_box(now), black_box(&[1]))
            })
        });
    }

    let gcra = Gcra::new(per_second());
    let mut now = 0;
    assert_path("gcra", true, || {
        now += STEP_NS;
        gcra.check_at(now, 1).allowed
    });
    group.bench_function("gcra", |b| {
        b.iter(|| {
            now += STEP_NS;
            gcra.check_at(black_box(now), black_box(1))
        })
    });

    let (first, second) = (Gcra::new(per_second()), Gcra::new(per_hour()));
    let mut now = 0;
    assert_path("gcra_x2", true, || {
        now += STEP_NS;
        first.check_at(now, 1).allowed && second.check_at(now, 1).allowed
    });
    group.bench_function("gcra_x2", |b| {
        b.iter(|| {
            now += STEP_NS;
            (
                first.check_at(black_box(now), black_box(1)),
                second.check_at(black_box(now), black_box(1)),
            )
        })
    });

    group.finish();
}

/// The headers of a request that `per_second` admitted with 997 left and `per_hour` with
/// 3,599,000 left (or, when `denied`, that `per_second` refused for 250 ms).
fn policies(denied: bool) -> [PolicyHeader<'static>; 2] {
    let burst = if denied {
        Decision {
            allowed: false,
            limit: 1_000,
            remaining: 0,
            retry_after_ns: 250_000_000,
            reset_after_ns: NS_PER_SECOND,
        }
    } else {
        Decision {
            allowed: true,
            limit: 1_000,
            remaining: 997,
            retry_after_ns: 0,
            reset_after_ns: 3_000_000,
        }
    };
    [
        PolicyHeader {
            name: "burst",
            quota: per_second(),
            decision: burst,
        },
        PolicyHeader {
            name: "hourly",
            quota: per_hour(),
            decision: Decision {
                allowed: true,
                limit: 3_600_000,
                remaining: 3_599_000,
                retry_after_ns: 0,
                reset_after_ns: NS_PER_SECOND,
            },
        },
    ]
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers/render");
    group.throughput(Throughput::Elements(1));

    let admitted = policies(false);
    let denied = policies(true);
    for (name, style, policies, expected) in [
        ("ietf", HeaderStyle::Ietf, &admitted[..1], 2),
        ("ietf", HeaderStyle::Ietf, &admitted[..], 2),
        ("ietf_denied", HeaderStyle::Ietf, &denied[..], 3),
        ("legacy", HeaderStyle::Legacy, &admitted[..], 3),
    ] {
        let mut buf = [0u8; HEADER_BUFFER];
        let rendered = render_headers(style, policies, &mut buf).expect("rendered");
        assert_eq!(rendered.len(), expected, "{name}/{}", policies.len());
        group.bench_function(BenchmarkId::new(name, policies.len()), |b| {
            b.iter(|| {
                render_headers(black_box(style), black_box(policies), &mut buf)
                    .map(|headers| black_box(headers).len())
            })
        });
    }

    group.finish();
}

criterion_group! {
    name = benches;
    config = cellgate_benches::criterion_config();
    targets = policy_check_at, headers
}
criterion_main!(benches);
