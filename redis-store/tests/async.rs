//! The tokio client: the same decisions as core in-process, and a server that stops answering
//! (SIGSTOP) costs one timeout, then the outage policy, then Redis again once it answers.
#![cfg(feature = "tokio")]

mod support;

use cellgate::{
    Limiter, LimiterQuota, Op, OutagePolicy, Quota, Reason, Refill, RemoteLimiter, RemoteOptions,
};
use cellgate_redis::{AsyncRedisLimiter, StoreOptions};
use std::time::{Duration, Instant};

fn quotas() -> Vec<LimiterQuota<'static>> {
    vec![
        LimiterQuota {
            quota: "3/second".parse::<Quota>().unwrap(),
            name: Some("burst"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "10/minute".parse::<Quota>().unwrap(),
            name: Some("minute"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "1000/hour".parse::<Quota>().unwrap(),
            name: Some("tokens"),
            dimension: 1,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_decisions_equal_core_and_reserve_settle_round_trips() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("async");
    let quotas = quotas();
    let remote = RemoteLimiter::new(
        &quotas,
        support::limiter_options(Refill::Greedy),
        support::remote_options(&prefix),
    )
    .unwrap();
    let local = Limiter::new(&quotas, support::limiter_options(Refill::Greedy)).unwrap();
    let connection = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let limiter = AsyncRedisLimiter::new(connection, remote, support::store_options());
    for step in 0..200u64 {
        let now_ns = 1_000_000_000 + step * 70_000_000 - (step % 7) * 90_000_000;
        let key: &[u8] = if step % 3 == 0 { b"a" } else { b"b" };
        let costs = [Some(1 + step % 2), Some(step * 13 % 300)];
        let op = if step % 11 == 0 {
            Op::Force
        } else if step % 13 == 0 {
            Op::Refund
        } else {
            Op::Check
        };
        let expected = local.apply_at(key, now_ns, &costs, op).unwrap();
        let decision = limiter.apply(key, Some(now_ns), &costs, op).await.unwrap();
        assert_eq!(decision, expected, "step {step}");
    }
    let now_ns = 100_000_000_000;
    let reserved = limiter
        .reserve(b"r", Some(now_ns), &[Some(1), Some(400)])
        .await
        .unwrap();
    let local_reserved = local
        .reserve_at(b"r", now_ns, &[Some(1), Some(400)])
        .unwrap();
    assert_eq!(reserved.decision, local_reserved.decision);
    let settled = limiter
        .settle(
            reserved.reservation.unwrap(),
            Some(now_ns + 5),
            &[None, Some(650)],
        )
        .await
        .unwrap();
    let local_settled = local
        .settle_at(
            now_ns + 5,
            local_reserved.reservation.unwrap(),
            &[None, Some(650)],
        )
        .unwrap();
    assert_eq!(settled, local_settled);
    assert_eq!(settled.decisions()[2].remaining, 350);
    assert_eq!(limiter.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_costs_one_timeout_then_the_outage_policy() {
    let server = support::Server::start();
    let quotas = vec![LimiterQuota::new("5/hour".parse::<Quota>().unwrap())];
    let remote = RemoteLimiter::new(
        &quotas,
        support::limiter_options(Refill::Greedy),
        RemoteOptions {
            prefix: "hang:",
            outage: OutagePolicy::FailClosed,
            ..RemoteOptions::default()
        },
    )
    .unwrap();
    let connection = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let options = StoreOptions {
        timeout: Duration::from_millis(200),
        retry_interval: Duration::from_millis(300),
        max_idle_connections: 1,
    };
    let limiter = AsyncRedisLimiter::new(connection, remote, options);
    assert_eq!(
        limiter
            .apply(b"k", None, &[None], Op::Check)
            .await
            .unwrap()
            .reason,
        Reason::Limit
    );
    server.pause();
    let started = Instant::now();
    let first = limiter.apply(b"k", None, &[None], Op::Check).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(first.reason, Reason::FailedClosed);
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_millis(1_000),
        "{waited:?}"
    );
    // Within the retry interval: no wait at all.
    let started = Instant::now();
    let second = limiter.apply(b"k", None, &[None], Op::Check).await.unwrap();
    assert_eq!(second.reason, Reason::FailedClosed);
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(limiter.stats().skipped, 1);
    server.resume();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let back = limiter.apply(b"k", None, &[None], Op::Check).await.unwrap();
    assert_eq!(back.reason, Reason::Limit, "{:?}", limiter.stats());
    assert_eq!(limiter.stats().failed_closed, 2);
}
