//! One request through the cellgate layer, through tower_governor's layer, and through no
//! layer, over the same trivial service (an empty 200), every limit high enough that every
//! request is admitted. The request and its response are built and dropped in every case, so
//! the differences are the layers' own costs.
//!
//! - `none`: the service alone;
//! - `cellgate`: the default layer (peer IP through core's client key, draft-10 headers on
//!   the response, the decision in the request's extensions);
//! - `cellgate_no_extension`: headers, no decision in the extensions;
//! - `cellgate_bare`: headers off and no decision in the extensions (the decision alone);
//! - `governor`: tower_governor's `PeerIpKeyExtractor`, no headers on admitted responses;
//! - `governor_headers`: tower_governor with `use_headers()` (`x-ratelimit-limit` and
//!   `-remaining` on admitted responses), the peer of `cellgate`.

use axum::body::Body;
use axum::extract::ConnectInfo;
use cellgate::{Limiter, LimiterOptions, LimiterQuota, Quota};
use cellgate_tower::{Headers, RateLimitLayer};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::{Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

/// Polls a future that is ready at once (every service here is synchronous inside).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn request(peer: SocketAddr) -> Request<Body> {
    let mut request = Request::builder()
        .uri("/")
        .body(Body::empty())
        .unwrap_or_default();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn trivial() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    tower::service_fn(|_request: Request<Body>| async { Ok(Response::new(Body::empty())) })
}

/// One request through `service`; its response is returned to be dropped outside.
fn one<S>(service: &mut S, peer: SocketAddr) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match now(service.call(request(peer))) {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A limit no bench run reaches: a billion a second, with as large a burst.
fn cellgate_limiter() -> Limiter {
    let quota = Quota::per_second(1_000_000_000).expect("a valid quota");
    Limiter::new(&[LimiterQuota::new(quota)], LimiterOptions::default()).expect("a limiter")
}

fn bench(c: &mut Criterion) {
    let peer: SocketAddr = "192.0.2.7:5000".parse().expect("an address");
    let mut group = c.benchmark_group("tower_layer");

    let mut none = trivial();
    group.bench_function("none", |b| b.iter(|| black_box(one(&mut none, peer))));

    let layer = RateLimitLayer::builder(cellgate_limiter())
        .build()
        .expect("a layer");
    let mut cellgate = layer.layer(trivial());
    assert!(one(&mut cellgate, peer).status().is_success());
    assert!(one(&mut cellgate, peer).headers().contains_key("ratelimit"));
    group.bench_function("cellgate", |b| {
        b.iter(|| black_box(one(&mut cellgate, peer)))
    });

    let headers_only = RateLimitLayer::builder(cellgate_limiter())
        .decision_in_extensions(false)
        .build()
        .expect("a layer");
    let mut cellgate_headers = headers_only.layer(trivial());
    group.bench_function("cellgate_no_extension", |b| {
        b.iter(|| black_box(one(&mut cellgate_headers, peer)))
    });

    let bare = RateLimitLayer::builder(cellgate_limiter())
        .headers(Headers::Off)
        .decision_in_extensions(false)
        .build()
        .expect("a layer");
    let mut cellgate_bare = bare.layer(trivial());
    assert!(one(&mut cellgate_bare, peer).status().is_success());
    group.bench_function("cellgate_bare", |b| {
        b.iter(|| black_box(one(&mut cellgate_bare, peer)))
    });

    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000_000)
        .finish()
        .expect("a governor config");
    let mut governor = GovernorLayer::new(config).layer(trivial());
    assert!(one(&mut governor, peer).status().is_success());
    group.bench_function("governor", |b| {
        b.iter(|| black_box(one(&mut governor, peer)))
    });

    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000_000)
        .use_headers()
        .finish()
        .expect("a governor config");
    let mut governor_headers = GovernorLayer::new(config).layer(trivial());
    assert!(one(&mut governor_headers, peer)
        .headers()
        .contains_key("x-ratelimit-remaining"));
    group.bench_function("governor_headers", |b| {
        b.iter(|| black_box(one(&mut governor_headers, peer)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
