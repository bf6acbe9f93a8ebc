//! The axum server `make bench-tower` loads with `wrk`: one route answering `ok`, with no
//! limiter, with cellgate's layer, or with tower_governor's, each with a limit no run reaches
//! (every request admitted, rate-limit headers sent on every response).
//!
//! `cargo run --profile bench -p cellgate-tower --example bench_server -- MODE` with MODE one of
//! `none`, `cellgate`, `governor`. It listens on a free loopback port, prints it on the first
//! line of standard output, and serves until killed, or for at most `BENCH_SERVER_MAX_S`
//! seconds (default 600), so that a load run that goes wrong cannot leave it behind.

use axum::routing::get;
use axum::Router;
use cellgate::{Limiter, LimiterOptions, LimiterQuota, Quota};
use cellgate_tower::RateLimitLayer;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

fn app(mode: &str) -> Result<Router, String> {
    let router = Router::new().route("/", get(|| async { "ok" }));
    match mode {
        "none" => Ok(router),
        "cellgate" => {
            let quota = Quota::per_second(1_000_000_000).map_err(|e| e.to_string())?;
            let limiter = Limiter::new(&[LimiterQuota::new(quota)], LimiterOptions::default())
                .map_err(|e| e.to_string())?;
            let layer = RateLimitLayer::builder(limiter)
                .build()
                .map_err(|e| e.to_string())?;
            Ok(router.layer(layer))
        }
        "governor" => {
            let config = GovernorConfigBuilder::default()
                .per_nanosecond(1)
                .burst_size(1_000_000_000)
                .use_headers()
                .finish()
                .ok_or("tower_governor refused the configuration")?;
            Ok(router.layer(GovernorLayer::new(config)))
        }
        other => Err(format!(
            "MODE must be none, cellgate or governor, not {other:?}"
        )),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "none".to_owned());
    let app = app(&mode)?;
    let max_s = std::env::var("BENCH_SERVER_MAX_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{port}").map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let serve = axum::serve(listener, service);
    match tokio::time::timeout(Duration::from_secs(max_s), serve).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}
