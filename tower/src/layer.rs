//! [`RateLimitLayer`], its builder, the [`RateLimit`] service and its [`ResponseFuture`].

use crate::key::{Head, Key, KeyExtractor, MissingKey};
use bytes::Bytes;
use cellgate::{
    ClientKeyConfig, Clock, DimensionStyle, HeaderError, HeaderStyle, Limiter, LimiterDecision,
    MonotonicClock, Op, SlotGroup, DEFAULT_COST, MAX_POLICY_QUOTAS,
};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use tower::{Layer, Service};

/// Which rate-limit headers the layer adds (every one of them rendered by core, so the bytes
/// are those of every other cellgate runtime).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Headers {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10) on every
    /// limited response, and `Retry-After` on a denial: [`HeaderStyle::Ietf`]. The default.
    #[default]
    Ietf,
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds until full) and `Retry-After` on
    /// a denial: [`HeaderStyle::Legacy`].
    Legacy,
    /// As [`Headers::Legacy`], with `X-RateLimit-Reset` as a Unix time read from the wall
    /// clock per request: [`HeaderStyle::LegacyEpoch`].
    LegacyEpoch,
    /// Per-dimension headers as Anthropic's API sends them
    /// (`anthropic-ratelimit-{name}-remaining`...): [`DimensionStyle::anthropic`]. Quota
    /// names must be valid in a header name ([`RateLimitLayerBuilder::build`] checks).
    Anthropic,
    /// Per-dimension headers as OpenAI's API sends them (`x-ratelimit-remaining-{name}`...):
    /// [`DimensionStyle::openai`].
    OpenAi,
    /// `RateLimit-Policy: 100;w=60`, `RateLimit-Limit`, `-Remaining`, `-Reset` as
    /// express-rate-limit's `standardHeaders: 'draft-6'`: [`HeaderStyle::Draft6`].
    Draft6,
    /// `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100, remaining=99, reset=60` as
    /// express-rate-limit's `standardHeaders: 'draft-7'`: [`HeaderStyle::Draft7`].
    Draft7,
    /// No rate-limit headers, except `Retry-After` on a denial (a client needs it to back off).
    Off,
}

/// Which admitted requests stay counted once their response is known. A request that should
/// not count is refunded through core ([`Op::Refund`], its full cost) after the inner service
/// answered, so that its quota is as if it had never come.
///
/// The login recipe: `CountMode::failed()` on a login route lets a client fail a few times in
/// a quota, while its successful logins cost nothing.
#[derive(Clone, Default)]
pub struct CountMode(Count);

type CountFn = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

#[derive(Clone, Default)]
enum Count {
    #[default]
    All,
    Failed,
    Successful,
    When(CountFn),
}

impl fmt::Debug for CountMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Count::All => "CountMode::all()",
            Count::Failed => "CountMode::failed()",
            Count::Successful => "CountMode::successful()",
            Count::When(_) => "CountMode::when(..)",
        })
    }
}

impl CountMode {
    /// Every admitted request counts (the default).
    pub fn all() -> Self {
        Self(Count::All)
    }

    /// Only failed requests count: a response with status 400 or above, or an error from the
    /// inner service. A response below 400 is refunded (express-rate-limit's
    /// `skipSuccessfulRequests`, Flask-Limiter's `deduct_when` on failure).
    pub fn failed() -> Self {
        Self(Count::Failed)
    }

    /// Only successful requests count: a response below 400. A response of 400 or above, or
    /// an error from the inner service, is refunded (express-rate-limit's
    /// `skipFailedRequests`).
    pub fn successful() -> Self {
        Self(Count::Successful)
    }

    /// A request counts when `counts(status, headers)` of its response says so; an error
    /// from the inner service counts.
    pub fn when<F>(counts: F) -> Self
    where
        F: Fn(StatusCode, &HeaderMap) -> bool + Send + Sync + 'static,
    {
        Self(Count::When(Arc::new(counts)))
    }

    /// Whether a request with this response still counts (`None`: the service failed).
    fn counts(&self, response: Option<(StatusCode, &HeaderMap)>) -> bool {
        match (&self.0, response) {
            (Count::All, _) => true,
            (Count::Failed, None) => true,
            (Count::Failed, Some((status, _))) => status.as_u16() >= 400,
            (Count::Successful, None) => false,
            (Count::Successful, Some((status, _))) => status.as_u16() < 400,
            (Count::When(_), None) => true,
            (Count::When(counts), Some((status, headers))) => counts(status, headers),
        }
    }
}

/// What a denial handler ([`RateLimitLayerBuilder::on_denied`]) is given: the decision, and
/// what the default answer would send.
#[derive(Debug)]
pub struct Denied<'a> {
    decision: &'a LimiterDecision,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    retry_after_ns: Option<u64>,
}

impl<'a> Denied<'a> {
    /// The limiter's decision (every quota's, and the binding one).
    pub fn decision(&self) -> &'a LimiterDecision {
        self.decision
    }

    /// The rate-limit headers of the configured [`Headers`] style, `Retry-After` included,
    /// as core renders them.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// Core's 429 body, `{"error":"rate_limited","retry_after":N}`.
    pub fn body(&self) -> &'a Bytes {
        self.body
    }

    /// The wait `Retry-After` describes, in nanoseconds ([`cellgate::NEVER`] when retrying
    /// cannot succeed).
    pub fn retry_after_ns(&self) -> Option<u64> {
        self.retry_after_ns
    }

    /// A response with `status`, `body` and [`Denied::headers`]: what a handler that only
    /// changes status or body returns.
    pub fn response(&self, status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
        let mut response = Response::new(body.into());
        *response.status_mut() = status;
        response.headers_mut().clone_from(self.headers);
        response
    }

    /// The default answer: `429 Too Many Requests`, [`Denied::headers`],
    /// `Content-Type: application/json` and [`Denied::body`].
    pub fn default_response(&self) -> Response<Bytes> {
        let mut response = self.response(StatusCode::TOO_MANY_REQUESTS, self.body.clone());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

type PartsFn<T> = Arc<dyn Fn(&Parts) -> T + Send + Sync>;
type DeniedFn = Arc<dyn Fn(&Parts, &Denied<'_>) -> Response<Bytes> + Send + Sync>;

/// Why [`RateLimitLayerBuilder::build`] refused a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The limiter's headers cannot be rendered in the chosen [`Headers`] style: for the
    /// per-dimension styles, the quota `name` cannot be part of a header name (only ASCII
    /// letters, digits, `-` and `_`).
    Headers {
        /// The style.
        style: Headers,
        /// The first quota name at fault (empty when core named none).
        name: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Headers { style, name } => write!(
                f,
                "headers: the {style:?} style cannot name quota {name:?} in a header \
                 (only ASCII letters, digits, `-` and `_`)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Everything a [`RateLimit`] service reads per request, shared by every clone.
struct Shared<S, C> {
    limiter: Arc<Limiter<S>>,
    clock: C,
    key: KeyExtractor,
    client_key: ClientKeyConfig,
    missing_key: MissingKey,
    cost: Option<PartsFn<u64>>,
    exempt: Option<PartsFn<bool>>,
    allow: Vec<Key>,
    /// Made keys of `allow` by `build`, under the final `client_key`.
    allow_ips: Vec<std::net::IpAddr>,
    count: CountMode,
    on_denied: Option<DeniedFn>,
    headers: Headers,
    methods: Option<Vec<Method>>,
    decision_in_extensions: bool,
    /// The `RateLimit-Policy` value core renders for this limiter (the same for every
    /// decision), rendered by `build` for the IETF style.
    policy: Option<HeaderValue>,
}

/// Builds a [`RateLimitLayer`]; every option has a default, so
/// `RateLimitLayer::builder(limiter).build()` limits by peer IP with draft-10 headers.
///
/// | option | default |
/// |---|---|
/// | [`key`](Self::key) | [`KeyExtractor::peer_ip`] |
/// | [`client_key`](Self::client_key) | IPv6 grouped by /56 ([`ClientKeyConfig::DEFAULT`]) |
/// | [`on_missing_key`](Self::on_missing_key) | `500` ([`MissingKey::default`]) |
/// | [`cost`](Self::cost) | core's default cost, 1 on every dimension |
/// | [`exempt`](Self::exempt), [`allow_key`](Self::allow_key) | none |
/// | [`methods`](Self::methods) | every method |
/// | [`count`](Self::count) | [`CountMode::all`] |
/// | [`on_denied`](Self::on_denied) | 429, core's headers and body ([`Denied::default_response`]) |
/// | [`headers`](Self::headers) | [`Headers::Ietf`] |
/// | [`decision_in_extensions`](Self::decision_in_extensions) | on |
/// | [`clock`](Self::clock) | [`MonotonicClock`] |
pub struct RateLimitLayerBuilder<S = Box<[SlotGroup]>, C = MonotonicClock> {
    shared: Shared<S, C>,
}

impl<S, C: fmt::Debug> fmt::Debug for RateLimitLayerBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<S, C: fmt::Debug> fmt::Debug for Shared<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("limiter", &self.limiter)
            .field("clock", &self.clock)
            .field("key", &self.key)
            .field("client_key", &self.client_key)
            .field("missing_key", &self.missing_key)
            .field("cost", &self.cost.is_some())
            .field("exempt", &self.exempt.is_some())
            .field("allow", &self.allow)
            .field("count", &self.count)
            .field("on_denied", &self.on_denied.is_some())
            .field("headers", &self.headers)
            .field("methods", &self.methods)
            .field("decision_in_extensions", &self.decision_in_extensions)
            .finish()
    }
}

impl<S, C> RateLimitLayerBuilder<S, C> {
    /// Where each request's key comes from (default: [`KeyExtractor::peer_ip`]).
    pub fn key(mut self, key: KeyExtractor) -> Self {
        self.shared.key = key;
        self
    }

    /// How IP addresses become keys (core's [`cellgate::ClientKey`] rule): IPv6 grouped by
    /// /56 by default; `ClientKeyConfig::DEFAULT.with_ipv6_prefix_len(64)?` for /64.
    pub fn client_key(mut self, config: ClientKeyConfig) -> Self {
        self.shared.client_key = config;
        self
    }

    /// What a request without a key gets (default: [`MissingKey::Reject`] with 500).
    pub fn on_missing_key(mut self, missing: MissingKey) -> Self {
        self.shared.missing_key = missing;
        self
    }

    /// The cost of a request, charged on every dimension of the limiter (default: core's
    /// [`DEFAULT_COST`], 1). A cost of 0 is admitted without charging anything.
    pub fn cost<F>(mut self, cost: F) -> Self
    where
        F: Fn(&Parts) -> u64 + Send + Sync + 'static,
    {
        self.shared.cost = Some(Arc::new(cost));
        self
    }

    /// Requests for which `exempt` is true pass unlimited, without headers or a decision
    /// (express-rate-limit's `skip`).
    pub fn exempt<F>(mut self, exempt: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.shared.exempt = Some(Arc::new(exempt));
        self
    }

    /// Requests whose key is `key` pass unlimited, as exempt ones. For an IP address use
    /// [`allow_ip`](Self::allow_ip), which makes its key by the configured rule.
    pub fn allow_key(mut self, key: impl Into<Key>) -> Self {
        self.shared.allow.push(key.into());
        self
    }

    /// Requests from `ip` (under the peer-IP and proxy extractors) pass unlimited. Its key is
    /// made by the [`client_key`](Self::client_key) rule the layer is built with, so an IPv6
    /// address allows its whole prefix (/56 by default).
    pub fn allow_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.shared.allow_ips.push(ip);
        self
    }

    /// Limit only requests with one of `methods` (tower_governor's `methods`, django-ratelimit's
    /// `method`); others pass unlimited. Default: every method.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.shared.methods = Some(methods.into_iter().collect());
        self
    }

    /// Which admitted requests stay counted after their response (default: all).
    pub fn count(mut self, count: CountMode) -> Self {
        self.shared.count = count;
        self
    }

    /// The answer to a denied request, instead of [`Denied::default_response`]. It is sent as
    /// returned: build it with [`Denied::response`] to keep the rate-limit headers.
    ///
    /// ```
    /// # use cellgate_tower::RateLimitLayerBuilder;
    /// use http::StatusCode;
    /// # fn f(builder: RateLimitLayerBuilder) -> RateLimitLayerBuilder {
    /// builder.on_denied(|_request, denied| {
    ///     denied.response(StatusCode::SERVICE_UNAVAILABLE, "busy, try later")
    /// })
    /// # }
    /// ```
    pub fn on_denied<F>(mut self, handler: F) -> Self
    where
        F: Fn(&Parts, &Denied<'_>) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.shared.on_denied = Some(Arc::new(handler));
        self
    }

    /// Which rate-limit headers are sent (default: [`Headers::Ietf`]).
    pub fn headers(mut self, headers: Headers) -> Self {
        self.shared.headers = headers;
        self
    }

    /// Whether an admitted request carries its [`LimiterDecision`] in its extensions for the
    /// handler (axum: `Extension<LimiterDecision>`). Default: on; off saves an allocation per
    /// request.
    pub fn decision_in_extensions(mut self, on: bool) -> Self {
        self.shared.decision_in_extensions = on;
        self
    }

    /// The clock the limiter is read at (default: [`MonotonicClock`]). A limiter over the
    /// shared-memory table of `cellgate-host` needs that crate's `HostClock`, the one time line
    /// of every process on the host; tests pass a [`cellgate::ManualClock`].
    pub fn clock<C2: Clock>(self, clock: C2) -> RateLimitLayerBuilder<S, C2> {
        let s = self.shared;
        RateLimitLayerBuilder {
            shared: Shared {
                limiter: s.limiter,
                clock,
                key: s.key,
                client_key: s.client_key,
                missing_key: s.missing_key,
                cost: s.cost,
                exempt: s.exempt,
                allow: s.allow,
                allow_ips: s.allow_ips,
                count: s.count,
                on_denied: s.on_denied,
                headers: s.headers,
                methods: s.methods,
                decision_in_extensions: s.decision_in_extensions,
                policy: s.policy,
            },
        }
    }
}

impl<S: AsRef<[SlotGroup]>, C: Clock> RateLimitLayerBuilder<S, C> {
    /// The layer.
    ///
    /// # Errors
    /// [`BuildError::Headers`] when the limiter's quota names cannot be rendered in the
    /// chosen per-dimension [`Headers`] style.
    pub fn build(self) -> Result<RateLimitLayer<S, C>, BuildError> {
        let mut shared = self.shared;
        let config = shared.client_key;
        let ips = std::mem::take(&mut shared.allow_ips);
        shared.allow.extend(
            ips.into_iter()
                .map(|ip| Key::from(cellgate::ClientKey::from_ip(ip, config))),
        );
        shared.policy = None;
        if shared.headers == Headers::Ietf {
            // Core's rendering for a peek at a fresh key (charges nothing): the policy value
            // depends on the limiter's names and quotas only.
            let costs = shared.costs(None);
            let now_ns = shared.clock.now_ns();
            if let Ok(decision) = shared
                .limiter
                .apply_at(b"", now_ns, costs.as_slice(), Op::Peek)
            {
                let mut buf = vec![0u8; header_buf_len(&shared.limiter)];
                if let Ok(headers) =
                    shared
                        .limiter
                        .render_headers(&decision, HeaderStyle::Ietf, &mut buf)
                {
                    shared.policy = headers
                        .value("RateLimit-Policy")
                        .and_then(|value| HeaderValue::from_str(value).ok());
                }
            }
        }
        if matches!(shared.headers, Headers::Anthropic | Headers::OpenAi) {
            // A peek at a key's fresh state: renders every name, charges nothing.
            let costs = shared.costs(None);
            let now_ns = shared.clock.now_ns();
            let peek = shared
                .limiter
                .apply_at(b"", now_ns, costs.as_slice(), Op::Peek);
            if let Ok(decision) = peek {
                let mut buf = vec![0u8; header_buf_len(&shared.limiter)];
                let style = dimension_style(shared.headers);
                if let Err(HeaderError::InvalidName { index }) = shared
                    .limiter
                    .render_dimension_headers(&decision, style, &mut buf)
                {
                    let name = shared.limiter.names().nth(index).unwrap_or("").to_owned();
                    return Err(BuildError::Headers {
                        style: shared.headers,
                        name,
                    });
                }
            }
        }
        Ok(RateLimitLayer {
            shared: Arc::new(shared),
        })
    }
}

/// A tower [`Layer`] that rate-limits HTTP requests with a [`cellgate::Limiter`].
///
/// `S` is the limiter's slot storage: the default for [`Limiter::new`]'s, or
/// `cellgate_host::TableSlots` for the table every process on the host shares. Clones share
/// one configuration and one limiter. See the crate documentation for an axum example.
pub struct RateLimitLayer<S = Box<[SlotGroup]>, C = MonotonicClock> {
    shared: Arc<Shared<S, C>>,
}

impl<S, C> Clone for RateLimitLayer<S, C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C: fmt::Debug> fmt::Debug for RateLimitLayer<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<S> RateLimitLayer<S, MonotonicClock> {
    /// A builder over `limiter` (a [`Limiter`], or an `Arc` of one the application also
    /// uses), with every option at its default.
    pub fn builder(limiter: impl Into<Arc<Limiter<S>>>) -> RateLimitLayerBuilder<S> {
        RateLimitLayerBuilder {
            shared: Shared {
                limiter: limiter.into(),
                clock: MonotonicClock,
                key: KeyExtractor::default(),
                client_key: ClientKeyConfig::DEFAULT,
                missing_key: MissingKey::default(),
                cost: None,
                exempt: None,
                allow: Vec::new(),
                allow_ips: Vec::new(),
                count: CountMode::all(),
                on_denied: None,
                headers: Headers::Ietf,
                methods: None,
                decision_in_extensions: true,
                policy: None,
            },
        }
    }
}

impl<S, C> RateLimitLayer<S, C> {
    /// The limiter requests are decided by.
    pub fn limiter(&self) -> &Arc<Limiter<S>> {
        &self.shared.limiter
    }
}

impl<Inner, S, C> Layer<Inner> for RateLimitLayer<S, C> {
    type Service = RateLimit<Inner, S, C>;

    fn layer(&self, inner: Inner) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around an inner service.
pub struct RateLimit<Inner, S = Box<[SlotGroup]>, C = MonotonicClock> {
    inner: Inner,
    shared: Arc<Shared<S, C>>,
}

impl<Inner: Clone, S, C> Clone for RateLimit<Inner, S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Inner: fmt::Debug, S, C: fmt::Debug> fmt::Debug for RateLimit<Inner, S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

/// One cost per dimension of a limiter, as `apply_at` takes them.
#[derive(Clone, Copy, Debug)]
struct Costs {
    costs: [Option<u64>; MAX_POLICY_QUOTAS],
    len: usize,
}

impl Costs {
    fn as_slice(&self) -> &[Option<u64>] {
        self.costs.get(..self.len).unwrap_or(&[])
    }
}

impl<S, C> Shared<S, C> {
    /// Whether the request is limited at all (method filter, exemption).
    fn limits<H: Head>(&self, head: &H) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.contains(head.method()) {
                return false;
            }
        }
        match (&self.exempt, head.parts()) {
            (Some(exempt), Some(parts)) => !exempt(parts),
            _ => true,
        }
    }

    /// Whether a request must be taken apart for a user closure, which takes `&Parts`.
    fn needs_parts(&self) -> bool {
        self.exempt.is_some()
            || self.cost.is_some()
            || self.on_denied.is_some()
            || self.key.needs_parts()
    }
}

impl<S: AsRef<[SlotGroup]>, C> Shared<S, C> {
    /// The costs of a request: the cost function's on every dimension, else core's default
    /// (`None` for one dimension, which core resolves to `DEFAULT_COST`).
    fn costs(&self, parts: Option<&Parts>) -> Costs {
        let dimensions = self.limiter.dimensions().min(MAX_POLICY_QUOTAS);
        let cost = match (&self.cost, parts) {
            (Some(cost), Some(parts)) => Some(cost(parts)),
            _ if dimensions > 1 => Some(DEFAULT_COST),
            _ => None,
        };
        Costs {
            costs: [cost; MAX_POLICY_QUOTAS],
            len: dimensions,
        }
    }

    /// The headers of `decision` in the configured style (on a denial, `Retry-After` at least).
    fn render(&self, decision: &LimiterDecision) -> RenderedHeaders {
        let only_retry_after = self.headers == Headers::Off;
        if only_retry_after && decision.allowed {
            return RenderedHeaders::default();
        }
        // Enough for two quotas with default names; more take the heap.
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let rendered = match self.headers {
            Headers::Anthropic | Headers::OpenAi => {
                let style = dimension_style(self.headers);
                let rendered = match self
                    .limiter
                    .render_dimension_headers(decision, style, &mut stack)
                {
                    Err(HeaderError::BufferTooSmall { needed }) => {
                        heap.resize(needed, 0);
                        self.limiter
                            .render_dimension_headers(decision, style, &mut heap)
                    }
                    other => other,
                };
                match rendered {
                    Ok(headers) => RenderedHeaders::collect(headers.iter(), false, None),
                    Err(_) => RenderedHeaders::default(),
                }
            }
            style => {
                let style = match style {
                    Headers::Legacy => HeaderStyle::Legacy,
                    Headers::LegacyEpoch => HeaderStyle::LegacyEpoch {
                        now_unix_s: now_unix_s(),
                    },
                    Headers::Draft6 => HeaderStyle::Draft6,
                    Headers::Draft7 => HeaderStyle::Draft7,
                    _ => HeaderStyle::Ietf,
                };
                let rendered = match self.limiter.render_headers(decision, style, &mut stack) {
                    Err(HeaderError::BufferTooSmall { needed }) => {
                        heap.resize(needed, 0);
                        self.limiter.render_headers(decision, style, &mut heap)
                    }
                    other => other,
                };
                match rendered {
                    Ok(headers) => RenderedHeaders::collect(
                        headers.iter(),
                        only_retry_after,
                        self.policy.as_ref(),
                    ),
                    Err(_) => RenderedHeaders::default(),
                }
            }
        };
        rendered
    }

    /// The answer to a denied request: the handler's, or the default one.
    fn denied_response(
        &self,
        parts: Option<&Parts>,
        decision: &LimiterDecision,
    ) -> Response<Bytes> {
        let mut headers = HeaderMap::new();
        self.render(decision).apply(&mut headers);
        let mut body = [0u8; cellgate::MAX_429_BODY_BYTES];
        let len = self
            .limiter
            .render_429_body(decision, &mut body)
            .unwrap_or(0);
        let body = Bytes::copy_from_slice(body.get(..len).unwrap_or(&[]));
        let denied = Denied {
            decision,
            headers: &headers,
            body: &body,
            retry_after_ns: self.limiter.retry_after_ns(decision),
        };
        match (&self.on_denied, parts) {
            (Some(handler), Some(parts)) => handler(parts, &denied),
            _ => denied.default_response(),
        }
    }
}

fn dimension_style(headers: Headers) -> DimensionStyle<'static> {
    match headers {
        Headers::Anthropic => DimensionStyle::anthropic(now_unix_s()),
        _ => DimensionStyle::openai(),
    }
}

/// The wall clock's Unix time in seconds (0 before 1970).
fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The names core's header styles render (the per-dimension styles aside), as core writes
/// them; [`known_name`] gives each as a [`HeaderName`].
const KNOWN_NAMES: [&str; 6] = [
    "RateLimit-Policy",
    "RateLimit",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
];

/// The [`HeaderName`] of `KNOWN_NAMES[index]`, lowercase as HTTP/2 sends it: a constant, so
/// that a request pays nothing to name its headers.
fn known_name(index: u8) -> Option<HeaderName> {
    const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
    const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
    const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    match index {
        0 => Some(RATELIMIT_POLICY),
        1 => Some(RATELIMIT),
        2 => Some(RETRY_AFTER),
        3 => Some(X_RATELIMIT_LIMIT),
        4 => Some(X_RATELIMIT_REMAINING),
        5 => Some(X_RATELIMIT_RESET),
        _ => None,
    }
}

/// The index in [`KNOWN_NAMES`] of `RateLimit-Policy`, whose value a limiter renders the same
/// for every decision (its names and quotas only), so it is rendered once per layer.
const POLICY_NAME: u8 = 0;

/// How many of core's named headers are held inline: as many as an admitted response gets in
/// any named style (the legacy triple); a denial's fourth goes beside.
const KNOWN_INLINE: usize = 3;

/// Headers rendered for one response, ready to insert: up to [`KNOWN_INLINE`] of core's named
/// styles held inline, the rest and the per-dimension ones (names made per request) beside.
#[derive(Default)]
struct RenderedHeaders {
    known: [Option<(u8, HeaderValue)>; KNOWN_INLINE],
    more: Vec<(HeaderName, HeaderValue)>,
}

impl RenderedHeaders {
    /// The pairs of a rendering, each value copied into its own [`HeaderValue`]; only
    /// `Retry-After` when `only_retry_after`. `policy`, when given, stands for the rendered
    /// `RateLimit-Policy` value (the same bytes, rendered once when the layer was built).
    fn collect<'n, 'v>(
        pairs: impl Iterator<Item = (&'n str, &'v str)>,
        only_retry_after: bool,
        policy: Option<&HeaderValue>,
    ) -> Self {
        let mut out = Self::default();
        let mut slots = out.known.iter_mut();
        for (name, value) in pairs {
            if only_retry_after && !name.eq_ignore_ascii_case("retry-after") {
                continue;
            }
            let known = KNOWN_NAMES
                .iter()
                .position(|known| *known == name)
                .and_then(|index| u8::try_from(index).ok());
            let value = match (known, policy) {
                (Some(POLICY_NAME), Some(policy)) => Ok(policy.clone()),
                _ => HeaderValue::from_str(value),
            };
            let Ok(value) = value else { continue };
            let slot = known.and_then(|index| Some((index, slots.next()?)));
            match slot {
                Some((index, slot)) => *slot = Some((index, value)),
                None => {
                    if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                        out.more.push((name, value));
                    }
                }
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.known.iter().all(Option::is_none) && self.more.is_empty()
    }

    /// Inserts every header into `headers`, replacing any of the same name.
    fn apply(self, headers: &mut HeaderMap) {
        for (index, value) in self.known.into_iter().flatten() {
            if let Some(name) = known_name(index) {
                headers.insert(name, value);
            }
        }
        for (name, value) in self.more {
            headers.insert(name, value);
        }
    }
}

/// What is left to do once the inner service answered an admitted request.
struct After<S, C> {
    headers: RenderedHeaders,
    /// Set when the count mode may refund the request.
    refund: Option<Box<Refund<S, C>>>,
}

struct Refund<S, C> {
    shared: Arc<Shared<S, C>>,
    key: Key,
    costs: Costs,
}

impl<S: AsRef<[SlotGroup]>, C: Clock> After<S, C> {
    fn finish<B, E>(self, result: &mut Result<Response<B>, E>) {
        let response = result.as_mut().ok();
        if let Some(refund) = self.refund {
            let view = response.as_ref().map(|r| (r.status(), r.headers()));
            if !refund.shared.count.counts(view) {
                let now_ns = refund.shared.clock.now_ns();
                // The costs were accepted by the check; a refund cannot fail on them.
                let _ = refund.shared.limiter.apply_at(
                    refund.key.as_bytes(),
                    now_ns,
                    refund.costs.as_slice(),
                    Op::Refund,
                );
            }
        }
        if let Some(response) = response {
            self.headers.apply(response.headers_mut());
        }
    }
}

pin_project! {
    /// The future of a [`RateLimit`] service's response: the inner service's, with the
    /// rate-limit headers added (and the count mode's refund made) when it is ready; or the
    /// layer's own answer (a denial, a missing key), ready at once.
    pub struct ResponseFuture<F, B, S, C> {
        #[pin]
        state: State<F, B, S, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, S, C> {
        Inner {
            #[pin]
            future: F,
            after: Option<After<S, C>>,
        },
        Ready {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, S, C> ResponseFuture<F, B, S, C> {
    fn inner(future: F, after: Option<After<S, C>>) -> Self {
        Self {
            state: State::Inner { future, after },
        }
    }

    fn ready(response: Response<B>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E, S, C> Future for ResponseFuture<F, B, S, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<Bytes>,
    S: AsRef<[SlotGroup]>,
    C: Clock,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, after } => {
                let mut result = ready!(future.poll(cx));
                if let Some(after) = after.take() {
                    after.finish(&mut result);
                }
                Poll::Ready(result)
            }
            // Polled again after it completed (a caller's bug): an empty 500, not a panic.
            StateProj::Ready { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| status_response(StatusCode::INTERNAL_SERVER_ERROR)))),
        }
    }
}

/// An answer with `status` and an empty body.
fn status_response<B: From<Bytes>>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::from(Bytes::new()));
    *response.status_mut() = status;
    response
}

impl<Inner, ReqBody, ResBody, S, C> Service<Request<ReqBody>> for RateLimit<Inner, S, C>
where
    Inner: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    S: AsRef<[SlotGroup]>,
    C: Clock,
{
    type Response = Response<ResBody>;
    type Error = Inner::Error;
    type Future = ResponseFuture<Inner::Future, ResBody, S, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !self.shared.needs_parts() {
            // No closure needs `&Parts`: the request is read in place, never moved.
            let mut request = request;
            return match Shared::decide(&self.shared, &mut request) {
                Verdict::Answer(response) => ResponseFuture::ready(response.map(ResBody::from)),
                Verdict::Pass(after) => ResponseFuture::inner(self.inner.call(request), after),
            };
        }
        let (mut parts, body) = request.into_parts();
        match Shared::decide(&self.shared, &mut parts) {
            Verdict::Answer(response) => ResponseFuture::ready(response.map(ResBody::from)),
            Verdict::Pass(after) => {
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)), after)
            }
        }
    }
}

/// What [`Shared::decide`] makes of a request.
enum Verdict<S, C> {
    /// To the inner service: unlimited (no `After`), or admitted, with what its response
    /// gets (headers, a refund).
    Pass(Option<After<S, C>>),
    /// The layer's own answer: a denial, a missing key.
    Answer(Response<Bytes>),
}

impl<S: AsRef<[SlotGroup]>, C: Clock> Shared<S, C> {
    /// The layer's verdict on a request: steps 1 to 5 of the crate documentation, and for an
    /// admitted request, its decision put into its extensions.
    fn decide<H: Head>(shared: &Arc<Self>, head: &mut H) -> Verdict<S, C> {
        if !shared.limits(head) {
            return Verdict::Pass(None);
        }
        let key = match shared.key.extract_from(head, shared.client_key) {
            Some(key) => key,
            None => match &shared.missing_key {
                MissingKey::UseKey(key) => key.clone(),
                MissingKey::Reject(status) => return Verdict::Answer(status_response(*status)),
            },
        };
        if shared.allow.contains(&key) {
            return Verdict::Pass(None);
        }
        let costs = shared.costs(head.parts());
        let now_ns = shared.clock.now_ns();
        let decision =
            match shared
                .limiter
                .apply_at(key.as_bytes(), now_ns, costs.as_slice(), Op::Check)
            {
                Ok(decision) => decision,
                // The costs match the dimensions by construction; answer, never panic.
                Err(_) => {
                    return Verdict::Answer(status_response(StatusCode::INTERNAL_SERVER_ERROR))
                }
            };
        if !decision.allowed {
            return Verdict::Answer(shared.denied_response(head.parts(), &decision));
        }
        let headers = shared.render(&decision);
        if shared.decision_in_extensions {
            head.extensions_mut().insert(decision);
        }
        let refund = match shared.count.0 {
            Count::All => None,
            _ => Some(Box::new(Refund {
                shared: Arc::clone(shared),
                key,
                costs,
            })),
        };
        if headers.is_empty() && refund.is_none() {
            return Verdict::Pass(None);
        }
        Verdict::Pass(Some(After { headers, refund }))
    }
}

/// A buffer length that holds any rendering of `limiter`'s headers in the named styles
/// (core's bound); the per-dimension styles need less.
fn header_buf_len<S: AsRef<[SlotGroup]>>(limiter: &Limiter<S>) -> usize {
    let name_bytes = limiter.names().map(str::len).sum();
    cellgate::max_header_bytes(limiter.quotas().len(), name_bytes).max(1024)
}
