//! A tower [`Layer`](tower::Layer) over cellgate's exact limiter, for axum 0.8 and hyper 1
//! services (any tower service of `http` 1 requests): [`RateLimitLayer`].
//!
//! Every decision, header and 429 body is core's ([`cellgate::Limiter`]), so a service behind
//! this layer answers byte for byte as cellgate's Python, Node and C bindings do. The limiter
//! is any `Limiter<S>` behind an [`Arc`](std::sync::Arc): the in-process one, or the
//! shared-memory table of `cellgate-host` that every worker process on the host shares.
//!
//! ```
//! use axum::{routing::get, Router};
//! use cellgate::{Limiter, LimiterOptions, LimiterQuota, Quota};
//! use cellgate_tower::{KeyExtractor, RateLimitLayer};
//!
//! let quota = LimiterQuota::new("100/minute".parse::<Quota>().unwrap());
//! let limiter = Limiter::new(&[quota], LimiterOptions::default()).unwrap();
//! let layer = RateLimitLayer::builder(limiter)
//!     .key(KeyExtractor::x_forwarded_for(1)) // one reverse proxy in front
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(layer);
//! # let _ = app;
//! ```
//!
//! What the layer does with a request, in order:
//! 1. a method not in [`methods`](RateLimitLayerBuilder::methods), or an
//!    [`exempt`](RateLimitLayerBuilder::exempt) request, passes unlimited;
//! 2. its [`Key`] comes from the [`KeyExtractor`]; a request without one is answered by the
//!    [`MissingKey`] policy (500 by default, or a fixed key), never a panic;
//! 3. an allow-listed key ([`allow_key`](RateLimitLayerBuilder::allow_key),
//!    [`allow_ip`](RateLimitLayerBuilder::allow_ip)) passes unlimited;
//! 4. the limiter checks the key at the layer's clock with the request's
//!    [`cost`](RateLimitLayerBuilder::cost);
//! 5. denied: the [`on_denied`](RateLimitLayerBuilder::on_denied) handler's answer, by
//!    default 429 with core's headers and body; the inner service is not called;
//! 6. admitted: the decision goes into the request's extensions (`Extension<LimiterDecision>`
//!    in axum), the inner service answers, the [`Headers`] are added, and under a
//!    [`CountMode`] that does not count this response the cost is refunded.
//!
//! The denial and missing-key answers are built as `Response<Bytes>` and converted into the
//! service's body type, which must be `From<Bytes>` (axum's `Body`, `Full<Bytes>` are).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings), allow(unused))))]

mod key;
mod layer;

pub use key::{Key, KeyExtractor, MissingKey};
pub use layer::{
    BuildError, CountMode, Denied, Headers, RateLimit, RateLimitLayer, RateLimitLayerBuilder,
    ResponseFuture,
};

/// The examples of `README.md`, run as doctests exactly as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
