//! The layer in a real axum 0.8 `Router`, driven through `tower::ServiceExt::oneshot`, and
//! one real axum server on loopback hit by a hyper client.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use cellgate::{
    ClientKeyConfig, HeaderStyle, Limiter, LimiterDecision, LimiterOptions, LimiterQuota,
    ManualClock, Op, Quota, Seed, NS_PER_SECOND,
};
use cellgate_tower::{
    CountMode, Headers, Key, KeyExtractor, MissingKey, RateLimitLayer, RateLimitLayerBuilder,
};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

fn quotas(text: &str) -> Vec<LimiterQuota<'static>> {
    text.split(';')
        .map(|q| LimiterQuota::new(q.trim().parse::<Quota>().unwrap()))
        .collect()
}

/// A limiter with a fixed seed, so that a twin built alike decides alike.
fn limiter(text: &str) -> Limiter {
    Limiter::new(&quotas(text), LimiterOptions::with_seed(Seed::new(7, 9))).unwrap()
}

fn builder(
    text: &str,
    clock: &ManualClock,
) -> RateLimitLayerBuilder<Box<[cellgate::SlotGroup]>, ManualClock> {
    RateLimitLayer::builder(limiter(text)).clock(clock.clone())
}

/// The test app: `/` answers "ok"; `/login` answers 200 for the right password and 401
/// otherwise; `/remaining` answers the remaining of the decision the layer put in the
/// request's extensions; `/health` answers "up".
fn test_app(layer: RateLimitLayer<Box<[cellgate::SlotGroup]>, ManualClock>) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }).post(|| async { "posted" }))
        .route(
            "/login",
            post(|headers: HeaderMap| async move {
                if headers.get("x-password").is_some_and(|p| p == "right") {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }),
        )
        .route(
            "/remaining",
            get(
                |Extension(decision): Extension<LimiterDecision>| async move {
                    decision.decision().remaining.to_string()
                },
            ),
        )
        .route("/health", get(|| async { "up" }))
        .layer(layer)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

fn request(method: Method, path: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    request
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_from(app: &Router, path: &str, peer: &str) -> Answer {
    send(app, request(Method::GET, path, peer, &[])).await
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Core's rendering of `decision` by `limiter` in the IETF style, as (lowercase name, value).
fn core_headers(
    limiter: &Limiter,
    decision: &LimiterDecision,
    style: HeaderStyle,
) -> Vec<(String, String)> {
    let mut buf = [0u8; 512];
    limiter
        .render_headers(decision, style, &mut buf)
        .unwrap()
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect()
}

/// Every rate-limit header of an answer, as (lowercase name, value), in core's order.
fn sent_headers(answer: &Answer, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| header(answer, name).map(|v| (name.to_string(), v.to_owned())))
        .collect()
}

const IETF: [&str; 3] = ["ratelimit-policy", "ratelimit", "retry-after"];

#[tokio::test]
async fn admits_exactly_the_quota_then_429_with_core_headers_and_body() {
    let clock = ManualClock::new(1_000);
    let app = test_app(builder("3/minute; 5/hour", &clock).build().unwrap());
    let twin = limiter("3/minute; 5/hour");
    let peer = "192.0.2.7:5000";
    let twin_key = cellgate::ClientKey::parse(peer, ClientKeyConfig::DEFAULT).unwrap();
    for _ in 0..3 {
        let answer = get_from(&app, "/", peer).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "ok");
        let expected = twin
            .apply_at(twin_key.as_bytes(), 1_000, &[None], Op::Check)
            .unwrap();
        assert!(expected.allowed);
        assert_eq!(
            sent_headers(&answer, &IETF),
            core_headers(&twin, &expected, HeaderStyle::Ietf)
        );
        assert_eq!(header(&answer, "retry-after"), None);
    }
    let denied = get_from(&app, "/", peer).await;
    let expected = twin
        .apply_at(twin_key.as_bytes(), 1_000, &[None], Op::Check)
        .unwrap();
    assert!(!expected.allowed);
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&denied, "retry-after"), Some("20"));
    assert_eq!(
        sent_headers(&denied, &IETF),
        core_headers(&twin, &expected, HeaderStyle::Ietf)
    );
    let mut body = [0u8; cellgate::MAX_429_BODY_BYTES];
    let len = twin.render_429_body(&expected, &mut body).unwrap();
    assert_eq!(denied.body.as_bytes(), &body[..len]);
    assert_eq!(denied.body, r#"{"error":"rate_limited","retry_after":20}"#);
    assert_eq!(header(&denied, "content-type"), Some("application/json"));

    // Another client has its own quota; the first gets one back after 20 s.
    assert_eq!(
        get_from(&app, "/", "192.0.2.8:1").await.status,
        StatusCode::OK
    );
    clock.advance_ns(20 * NS_PER_SECOND);
    assert_eq!(get_from(&app, "/", peer).await.status, StatusCode::OK);
    assert_eq!(
        get_from(&app, "/", peer).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn legacy_and_off_styles_send_cores_bytes() {
    let clock = ManualClock::new(0);
    let legacy = test_app(
        builder("1/minute", &clock)
            .headers(Headers::Legacy)
            .build()
            .unwrap(),
    );
    let twin = limiter("1/minute");
    let key = cellgate::ClientKey::parse("192.0.2.1", ClientKeyConfig::DEFAULT).unwrap();
    let names = [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ];
    for _ in 0..2 {
        let answer = get_from(&legacy, "/", "192.0.2.1:1").await;
        let expected = twin
            .apply_at(key.as_bytes(), 0, &[None], Op::Check)
            .unwrap();
        assert_eq!(
            sent_headers(&answer, &names),
            core_headers(&twin, &expected, HeaderStyle::Legacy)
        );
        assert_eq!(header(&answer, "ratelimit"), None);
    }

    let off = test_app(
        builder("1/minute", &clock)
            .headers(Headers::Off)
            .build()
            .unwrap(),
    );
    let admitted = get_from(&off, "/", "192.0.2.1:1").await;
    assert_eq!(admitted.status, StatusCode::OK);
    assert!(sent_headers(&admitted, &names).is_empty());
    assert!(sent_headers(&admitted, &IETF).is_empty());
    let denied = get_from(&off, "/", "192.0.2.1:1").await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sent_headers(&denied, &IETF),
        [("retry-after".to_owned(), "60".to_owned())]
    );
}

#[tokio::test]
async fn per_dimension_styles_render_and_bad_names_fail_at_build() {
    let clock = ManualClock::new(0);
    let quotas = [LimiterQuota {
        name: Some("requests"),
        ..LimiterQuota::new(Quota::per_minute(2).unwrap())
    }];
    let named = Limiter::new(&quotas, LimiterOptions::with_seed(Seed::new(1, 1))).unwrap();
    let layer = RateLimitLayer::builder(named)
        .clock(clock.clone())
        .headers(Headers::OpenAi)
        .build()
        .unwrap();
    let answer = get_from(&test_app(layer), "/", "192.0.2.1:1").await;
    assert_eq!(header(&answer, "x-ratelimit-remaining-requests"), Some("1"));
    assert_eq!(header(&answer, "x-ratelimit-limit-requests"), Some("2"));

    let quotas = [LimiterQuota {
        name: Some("per user"),
        ..LimiterQuota::new(Quota::per_minute(2).unwrap())
    }];
    let spaced = Limiter::new(&quotas, LimiterOptions::with_seed(Seed::new(1, 1))).unwrap();
    let error = RateLimitLayer::builder(spaced)
        .headers(Headers::Anthropic)
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        cellgate_tower::BuildError::Headers {
            style: Headers::Anthropic,
            name: "per user".to_owned()
        }
    );
}

#[tokio::test]
async fn only_failed_logins_count() {
    let clock = ManualClock::new(0);
    let app = test_app(
        builder("2/minute", &clock)
            .count(CountMode::failed())
            .build()
            .unwrap(),
    );
    let login = |password: &'static str| {
        request(
            Method::POST,
            "/login",
            "198.51.100.1:1",
            &[("x-password", password)],
        )
    };
    // Successful logins are refunded: any number pass.
    for _ in 0..5 {
        assert_eq!(send(&app, login("right")).await.status, StatusCode::OK);
    }
    // Failed ones count: two, then the quota is spent, for right and wrong passwords alike.
    assert_eq!(
        send(&app, login("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, login("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, login("wrong")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, login("right")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn only_successful_requests_count_and_a_predicate_decides() {
    let clock = ManualClock::new(0);
    let app1 = test_app(
        builder("2/minute", &clock)
            .count(CountMode::successful())
            .build()
            .unwrap(),
    );
    let login = |password: &'static str| {
        request(
            Method::POST,
            "/login",
            "198.51.100.1:1",
            &[("x-password", password)],
        )
    };
    for _ in 0..4 {
        assert_eq!(
            send(&app1, login("wrong")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(send(&app1, login("right")).await.status, StatusCode::OK);
    assert_eq!(send(&app1, login("right")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app1, login("right")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Counted only when the response is a 401.
    let only_401 = CountMode::when(|status, _headers| status == StatusCode::UNAUTHORIZED);
    let app2 = test_app(builder("1/minute", &clock).count(only_401).build().unwrap());
    assert_eq!(send(&app2, login("right")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app2, login("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app2, login("right")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn cost_is_chosen_per_request() {
    let clock = ManualClock::new(0);
    let layer = builder("10/minute", &clock)
        .cost(|parts| {
            parts
                .headers
                .get("x-cost")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(1)
        })
        .build()
        .unwrap();
    let app = test_app(layer);
    let costing =
        |cost: &'static str| request(Method::GET, "/", "192.0.2.1:1", &[("x-cost", cost)]);
    assert_eq!(send(&app, costing("6")).await.status, StatusCode::OK);
    let denied = send(&app, costing("6")).await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&denied, "retry-after"), Some("12"));
    let admitted = send(&app, costing("4")).await;
    assert_eq!(admitted.status, StatusCode::OK);
    assert_eq!(
        header(&admitted, "ratelimit"),
        Some(r#""10-in-1min";r=0;t=6"#)
    );
}

#[tokio::test]
async fn exempt_requests_allow_listed_keys_and_other_methods_pass_unlimited() {
    let clock = ManualClock::new(0);
    let layer = builder("1/minute", &clock)
        .exempt(|parts| parts.uri.path() == "/health")
        .allow_ip("10.0.0.9".parse().unwrap())
        .allow_ip("2001:db8:1:100::1".parse().unwrap())
        .methods([Method::GET])
        .build()
        .unwrap();
    let app = test_app(layer);
    for _ in 0..3 {
        let health = get_from(&app, "/health", "192.0.2.1:1").await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(header(&health, "ratelimit"), None);
        assert_eq!(
            get_from(&app, "/", "10.0.0.9:1").await.status,
            StatusCode::OK
        );
        // The allowed IPv6 address allows its /56.
        assert_eq!(
            get_from(&app, "/", "[2001:db8:1:1ff::2]:1").await.status,
            StatusCode::OK
        );
        let posted = send(&app, request(Method::POST, "/", "192.0.2.1:1", &[])).await;
        assert_eq!(posted.body, "posted");
    }
    assert_eq!(
        get_from(&app, "/", "192.0.2.1:1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, "/", "192.0.2.1:1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get_from(&app, "/", "[2001:db8:1:200::1]:1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, "/", "[2001:db8:1:200::1]:1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let keyed = builder("1/minute", &clock)
        .key(KeyExtractor::header("x-api-key".parse().unwrap()))
        .allow_key("internal")
        .build()
        .unwrap();
    let keyed = test_app(keyed);
    let with_key =
        |key: &'static str| request(Method::GET, "/", "192.0.2.1:1", &[("x-api-key", key)]);
    for _ in 0..3 {
        assert_eq!(
            send(&keyed, with_key("internal")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&keyed, with_key("outside")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&keyed, with_key("outside")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_denial_handler_chooses_status_body_and_headers() {
    let clock = ManualClock::new(0);
    let layer = builder("1/minute", &clock)
        .on_denied(|parts, denied| {
            let mut response = denied.response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("slow down on {}", parts.uri.path()),
            );
            let wait_s = denied.retry_after_ns().unwrap().div_ceil(NS_PER_SECOND);
            response
                .headers_mut()
                .insert("x-wait", wait_s.to_string().parse().unwrap());
            assert!(!denied.decision().allowed);
            assert_eq!(
                denied.body().as_ref(),
                br#"{"error":"rate_limited","retry_after":60}"#
            );
            response
        })
        .build()
        .unwrap();
    let app = test_app(layer);
    assert_eq!(
        get_from(&app, "/", "192.0.2.1:1").await.status,
        StatusCode::OK
    );
    let denied = get_from(&app, "/", "192.0.2.1:1").await;
    assert_eq!(denied.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(denied.body, "slow down on /");
    assert_eq!(header(&denied, "x-wait"), Some("60"));
    assert_eq!(header(&denied, "retry-after"), Some("60"));
    assert_eq!(
        header(&denied, "ratelimit"),
        Some(r#""1-in-1min";r=0;t=60"#)
    );
}

#[tokio::test]
async fn the_handler_sees_the_decision_in_the_request_extensions() {
    let clock = ManualClock::new(0);
    let app = test_app(builder("5/minute", &clock).build().unwrap());
    for remaining in (0..5).rev() {
        let answer = get_from(&app, "/remaining", "192.0.2.1:1").await;
        assert_eq!(answer.body, remaining.to_string());
    }
}

#[tokio::test]
async fn x_forwarded_for_counts_trusted_hops_from_the_right() {
    let clock = ManualClock::new(0);
    let layer = builder("2/minute", &clock)
        .key(KeyExtractor::x_forwarded_for(2))
        .build()
        .unwrap();
    let app = test_app(layer);
    // Two proxies: the edge proxy appends the client, the inner one the edge proxy; whatever
    // the client put before is ignored.
    let via =
        |xff: &'static str| request(Method::GET, "/", "10.0.0.2:1", &[("x-forwarded-for", xff)]);
    assert_eq!(
        send(&app, via("203.0.113.5, 10.0.0.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("6.6.6.6, 203.0.113.5, 10.0.0.1"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, via("7.7.7.7, 203.0.113.5, 10.0.0.1"))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via("203.0.113.6, 10.0.0.1")).await.status,
        StatusCode::OK
    );
    // Not an address where the client should be: the missing-key answer.
    assert_eq!(
        send(&app, via("unknown, 10.0.0.1")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let forwarded = builder("1/minute", &clock)
        .key(KeyExtractor::forwarded(1))
        .build()
        .unwrap();
    let forwarded = test_app(forwarded);
    let via =
        |value: &'static str| request(Method::GET, "/", "10.0.0.2:1", &[("forwarded", value)]);
    assert_eq!(
        send(&forwarded, via(r#"for="[2001:db8:aa:1::1]:80""#))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&forwarded, via(r#"for=1.2.3.4, for="[2001:db8:aa:2::9]""#))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn ipv6_clients_are_grouped_by_56_unless_configured() {
    let clock = ManualClock::new(0);
    let app56 = test_app(builder("1/minute", &clock).build().unwrap());
    assert_eq!(
        get_from(&app56, "/", "[2001:db8:0:100::1]:1").await.status,
        StatusCode::OK
    );
    // The same /56, another /64: the same client.
    assert_eq!(
        get_from(&app56, "/", "[2001:db8:0:1ff:aaaa::7]:1")
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /56.
    assert_eq!(
        get_from(&app56, "/", "[2001:db8:0:200::1]:1").await.status,
        StatusCode::OK
    );
    // IPv4-mapped is its IPv4 address.
    assert_eq!(
        get_from(&app56, "/", "192.0.2.44:1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app56, "/", "[::ffff:192.0.2.44]:1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let config64 = ClientKeyConfig::DEFAULT.with_ipv6_prefix_len(64).unwrap();
    let app64 = test_app(
        builder("1/minute", &clock)
            .client_key(config64)
            .build()
            .unwrap(),
    );
    assert_eq!(
        get_from(&app64, "/", "[2001:db8:0:100::1]:1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app64, "/", "[2001:db8:0:1ff::1]:1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app64, "/", "[2001:db8:0:1ff::2]:1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_request_without_a_key_gets_the_missing_key_policy() {
    let clock = ManualClock::new(0);
    let no_peer = || Request::builder().uri("/").body(Body::empty()).unwrap();
    let reject = test_app(builder("1/minute", &clock).build().unwrap());
    assert_eq!(
        send(&reject, no_peer()).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let header_keyed = builder("1/minute", &clock)
        .key(KeyExtractor::header("x-api-key".parse().unwrap()))
        .on_missing_key(MissingKey::Reject(StatusCode::BAD_REQUEST))
        .build()
        .unwrap();
    assert_eq!(
        send(&test_app(header_keyed), no_peer()).await.status,
        StatusCode::BAD_REQUEST
    );
    let shared = builder("2/minute", &clock)
        .on_missing_key(MissingKey::UseKey(Key::from("anonymous")))
        .build()
        .unwrap();
    let shared = test_app(shared);
    assert_eq!(send(&shared, no_peer()).await.status, StatusCode::OK);
    assert_eq!(send(&shared, no_peer()).await.status, StatusCode::OK);
    assert_eq!(
        send(&shared, no_peer()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_closure_key_and_a_shared_limiter() {
    let clock = ManualClock::new(0);
    let limiter = Arc::new(limiter("2/minute"));
    let layer = RateLimitLayer::builder(Arc::clone(&limiter))
        .clock(clock.clone())
        .key(KeyExtractor::from_fn(|parts| {
            parts.uri.query().map(|q| format!("user:{q}"))
        }))
        .build()
        .unwrap();
    let users = test_app(layer);
    let as_user = |path: &'static str| request(Method::GET, path, "192.0.2.1:1", &[]);
    assert_eq!(
        send(&users, as_user("/?alice")).await.status,
        StatusCode::OK
    );
    // The application uses the same limiter: what it charges, the layer sees.
    let charged = limiter
        .apply_at(b"user:alice", 0, &[None], Op::Check)
        .unwrap();
    assert!(charged.allowed);
    assert_eq!(
        send(&users, as_user("/?alice")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send(&users, as_user("/?bob")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_host_wide_table_works_behind_the_layer() {
    let quotas = quotas("2/minute");
    let options = LimiterOptions::with_seed(Seed::new(3, 4));
    let path = std::env::temp_dir().join(format!("cellgate-tower-test-{}", std::process::id()));
    let limiter = cellgate_host::SharedTable::open_limiter(
        &path,
        &quotas,
        options,
        &cellgate_host::OpenOptions::new(),
    )
    .unwrap();
    let layer = RateLimitLayer::builder(limiter)
        .clock(cellgate_host::HostClock)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    let statuses = [
        get_from(&app, "/", "192.0.2.1:1").await.status,
        get_from(&app, "/", "192.0.2.1:1").await.status,
        get_from(&app, "/", "192.0.2.1:1").await.status,
    ];
    cellgate_host::SharedTable::remove(&path).unwrap();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Aborts the server task when dropped: the server stops however the test ends.
struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test]
async fn a_real_axum_server_on_loopback() {
    let quota = quotas("2/minute");
    let limiter = Limiter::new(&quota, LimiterOptions::default()).unwrap();
    let layer = RateLimitLayer::builder(limiter).build().unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = ServerGuard(tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    }));

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let _connection = ServerGuard(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let mut answers = Vec::new();
    for _ in 0..3 {
        let request = Request::builder()
            .uri("/")
            .header("host", address.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            sender.send_request(request),
        )
        .await
        .unwrap()
        .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        answers.push((status, headers, body));
    }
    drop(server);
    let statuses: Vec<StatusCode> = answers.iter().map(|(status, _, _)| *status).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let (_, first, body) = &answers[0];
    assert_eq!(first["ratelimit-policy"], r#""2-in-1min";q=2;w=60"#);
    assert_eq!(first["ratelimit"], r#""2-in-1min";r=1;t=30"#);
    assert_eq!(body.as_ref(), b"ok");
    let (_, denied, body) = &answers[2];
    assert_eq!(denied["retry-after"], "30");
    assert_eq!(denied["ratelimit"], r#""2-in-1min";r=0;t=30"#);
    assert_eq!(
        body.as_ref(),
        br#"{"error":"rate_limited","retry_after":30}"#
    );
}

#[tokio::test]
async fn a_plain_hyper_server_through_hyper_util() {
    use http_body_util::Full;
    use hyper::body::Incoming;
    use tower::Layer;

    let quota = quotas("1/minute");
    let limiter = Limiter::new(&quota, LimiterOptions::default()).unwrap();
    let layer = RateLimitLayer::builder(limiter)
        .headers(Headers::Legacy)
        .build()
        .unwrap();
    let hello = tower::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
            bytes::Bytes::from_static(b"hello"),
        )))
    });
    let limited = layer.layer(hello);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = ServerGuard(tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            // The peer address as a plain `SocketAddr` extension, which `peer_ip()` reads.
            let service = tower::ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    request
                })
                .service(limited.clone());
            tokio::spawn(async move {
                let service = hyper_util::service::TowerToHyperService::new(service);
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    }));

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let _connection = ServerGuard(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = Request::builder()
            .uri("/")
            .header("host", address.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        answers.push((status, headers, body));
    }
    drop(server);
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(answers[0].1["x-ratelimit-remaining"], "0");
    assert_eq!(answers[0].2.as_ref(), b"hello");
    assert_eq!(answers[1].0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answers[1].1["retry-after"], "60");
    assert_eq!(
        answers[1].2.as_ref(),
        br#"{"error":"rate_limited","retry_after":60}"#
    );
}
