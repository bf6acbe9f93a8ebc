//! The Redis store against a real redis-server: the script's SHA1, Redis's clock, many threads
//! on one key, `SCRIPT FLUSH` and restarts mid-run, hashed keys, expiry, the outage policies
//! and recovery, and a three-node Cluster.

mod support;

use cellgate::{
    LimiterQuota, Op, OutagePolicy, Quota, Reason, Refill, RemoteOptions, SCRIPT, SCRIPT_SHA1_HEX,
};
use cellgate_redis::RedisLimiter;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn quotas(text: &str) -> Vec<LimiterQuota<'static>> {
    text.split(';')
        .map(|rate| LimiterQuota::new(rate.trim().parse::<Quota>().unwrap()))
        .collect()
}

fn connection(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

#[test]
fn sha1_is_the_one_redis_computes() {
    let url = support::shared_url();
    let mut connection = connection(&url);
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query(&mut connection)
        .unwrap();
    assert_eq!(sha, SCRIPT_SHA1_HEX);
    assert_eq!(sha, sha1_smol::Sha1::from(SCRIPT).digest().to_string());
}

#[test]
fn redis_time_drives_refill_and_one_key_holds_every_quota() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("time");
    let limiter = support::redis_limiter(
        &url,
        &quotas("2/second; 3/day"),
        Refill::Greedy,
        RemoteOptions {
            prefix: &prefix,
            ..RemoteOptions::default()
        },
        support::store_options(),
    );
    let first = limiter.apply(b"u", &[None], Op::Check).unwrap();
    assert!(first.allowed);
    assert_eq!(first.reason, Reason::Limit);
    assert!(limiter.apply(b"u", &[None], Op::Check).unwrap().allowed);
    let denied = limiter.apply(b"u", &[None], Op::Check).unwrap();
    assert!(!denied.allowed);
    // "2/second" binds: one unit back within 500 ms of Redis's clock.
    let retry = denied.decisions()[0].retry_after_ns;
    assert!(retry > 0 && retry <= 500_000_000, "{retry}");
    std::thread::sleep(Duration::from_nanos(retry) + Duration::from_millis(5));
    assert!(limiter.apply(b"u", &[None], Op::Check).unwrap().allowed);
    // "3/day" now refuses: all three used.
    std::thread::sleep(Duration::from_millis(600));
    let daily = limiter.apply(b"u", &[None], Op::Check).unwrap();
    assert!(!daily.allowed);
    assert_eq!(daily.binding, 1);
    // One key, with an expiry no later than when the day quota is full again (plus rounding).
    let mut connection = connection(&url);
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(keys, vec![format!("{prefix}{{u}}").into_bytes()]);
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query(&mut connection)
        .unwrap();
    assert!(ttl_ms > 86_000_000 && ttl_ms <= 86_400_000 + 3, "{ttl_ms}");
    // Headers come from core, from the decision Redis made.
    let mut buf = [0u8; 512];
    let headers = limiter
        .remote()
        .render_headers(&daily, cellgate::HeaderStyle::Ietf, &mut buf)
        .unwrap();
    assert!(headers.value("RateLimit").unwrap().contains("\"3-in-1d\""));
}

#[test]
fn eight_threads_on_one_key_admit_exactly_the_quota() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("threads");
    let limiter = Arc::new(support::redis_limiter(
        &url,
        &quotas("100/hour; 1000/day"),
        Refill::Greedy,
        RemoteOptions {
            prefix: &prefix,
            ..RemoteOptions::default()
        },
        support::store_options(),
    ));
    let admitted: u64 = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                (0..40)
                    .filter(|_| limiter.apply(b"hot", &[None], Op::Check).unwrap().allowed)
                    .count() as u64
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum();
    assert_eq!(admitted, 100);
    let stats = limiter.stats();
    assert_eq!(stats.remote, 320);
    assert_eq!(stats.errors, 0);
}

#[test]
fn processes_on_one_key_admit_exactly_the_quota() {
    // Several OS processes (this test binary re-run as a child), each with its own client.
    if let Ok(prefix) = std::env::var("CELLGATE_CHILD_PREFIX") {
        let url = support::shared_url();
        let limiter = support::redis_limiter(
            &url,
            &quotas("50/hour"),
            Refill::Greedy,
            RemoteOptions {
                prefix: &prefix,
                ..RemoteOptions::default()
            },
            support::store_options(),
        );
        let admitted = (0..30)
            .filter(|_| limiter.apply(b"hot", &[None], Op::Check).unwrap().allowed)
            .count();
        println!("ADMITTED {admitted}");
        return;
    }
    let url = support::shared_url();
    let prefix = support::unique_prefix("processes");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "processes_on_one_key_admit_exactly_the_quota",
                    "--nocapture",
                ])
                .env("CELLGATE_CHILD_PREFIX", &prefix)
                .env("CELLGATE_REDIS_URL", &url)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let total: usize = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let text = String::from_utf8(output.stdout).unwrap();
            let line = text
                .lines()
                .find(|line| line.starts_with("ADMITTED "))
                .unwrap();
            line["ADMITTED ".len()..].parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(total, 50);
}

#[test]
fn script_flush_mid_run_is_survived() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("flush");
    let limiter = support::redis_limiter(
        &url,
        &quotas("10/hour"),
        Refill::Greedy,
        support::remote_options(&prefix),
        support::store_options(),
    );
    let mut connection = connection(&url);
    let mut admitted = 0;
    for step in 0..14 {
        if step % 4 == 1 {
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query::<()>(&mut connection)
                .unwrap();
        }
        let decision = limiter
            .apply_at(b"k", 1_000 + step, &[None], Op::Check)
            .unwrap();
        assert_eq!(decision.reason, Reason::Limit);
        admitted += u64::from(decision.allowed);
    }
    assert_eq!(admitted, 10);
    let stats = limiter.stats();
    assert!(stats.script_loads >= 4, "{stats:?}");
    assert_eq!(stats.errors, 0);
}

#[test]
fn hashed_keys_are_not_written_in_clear() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("hashed");
    let remote = RemoteOptions {
        prefix: &prefix,
        key_secret: Some(*b"0123456789abcdef"),
        ..RemoteOptions::default()
    };
    let limiter = support::redis_limiter(
        &url,
        &quotas("5/minute"),
        Refill::Greedy,
        remote,
        support::store_options(),
    );
    assert!(
        limiter
            .apply(b"203.0.113.7", &[None], Op::Check)
            .unwrap()
            .allowed
    );
    let mut connection = connection(&url);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains("203.0.113.7"), "{}", keys[0]);
    let tag = &keys[0][prefix.len()..];
    assert_eq!(tag.len(), 34, "{{32 hex digits}}: {tag}");
    assert!(tag[1..33].bytes().all(|b| b.is_ascii_hexdigit()));
    // Another host with the same secret finds the same record.
    let other = support::redis_limiter(
        &url,
        &quotas("5/minute"),
        Refill::Greedy,
        remote,
        support::store_options(),
    );
    let seen = other.apply(b"203.0.113.7", &[None], Op::Peek).unwrap();
    assert_eq!(seen.decisions()[0].remaining, 4);
}

#[test]
fn a_full_bucket_leaves_no_record() {
    let url = support::shared_url();
    let prefix = support::unique_prefix("full");
    let limiter = support::redis_limiter(
        &url,
        &quotas("5/second"),
        Refill::Greedy,
        RemoteOptions {
            prefix: &prefix,
            ..RemoteOptions::default()
        },
        support::store_options(),
    );
    assert!(limiter.apply(b"k", &[Some(2)], Op::Check).unwrap().allowed);
    let mut connection = connection(&url);
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}{{k}}"))
        .query(&mut connection)
        .unwrap();
    // 2 units of 200 ms: full again 400 ms later (plus at most 2 ms of rounding up).
    assert!(ttl_ms > 300 && ttl_ms <= 402, "{ttl_ms}");
    std::thread::sleep(Duration::from_millis(450));
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}{{k}}"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(exists, 0);
    // A bucket made full again keeps its record only until then: 2 ms of rounding up.
    assert!(limiter.apply(b"j", &[Some(1)], Op::Check).unwrap().allowed);
    assert!(limiter.apply(b"j", &[Some(0)], Op::Reset).unwrap().allowed);
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}{{j}}"))
        .query(&mut connection)
        .unwrap();
    assert!((-2..=2).contains(&ttl_ms), "{ttl_ms}");
}

fn outage_limiter(server: &support::Server, outage: OutagePolicy, prefix: &str) -> RedisLimiter {
    support::redis_limiter(
        &server.url(),
        &quotas("3/hour"),
        Refill::Greedy,
        RemoteOptions {
            prefix,
            outage,
            ..RemoteOptions::default()
        },
        cellgate_redis::StoreOptions {
            timeout: Duration::from_millis(300),
            retry_interval: Duration::from_millis(100),
            max_idle_connections: 4,
        },
    )
}

#[test]
fn killing_the_server_applies_the_outage_policy_and_recovery_follows_its_restart() {
    let mut server = support::Server::start();
    let closed = outage_limiter(&server, OutagePolicy::FailClosed, "closed:");
    let open = outage_limiter(&server, OutagePolicy::FailOpen, "open:");
    let fallback = outage_limiter(&server, OutagePolicy::Fallback, "fallback:");
    let default = outage_limiter(&server, RemoteOptions::default().outage, "default:");
    for limiter in [&closed, &open, &fallback, &default] {
        assert_eq!(
            limiter.apply(b"k", &[None], Op::Check).unwrap().reason,
            Reason::Limit
        );
    }
    server.kill();
    let started = Instant::now();
    let denied = closed.apply(b"k", &[None], Op::Check).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.reason, Reason::FailedClosed);
    assert_eq!(closed.remote().retry_after_ns(&denied), Some(1_000_000_000));
    let admitted = open.apply(b"k", &[None], Op::Check).unwrap();
    assert!(admitted.allowed);
    assert_eq!(admitted.reason, Reason::FailedOpen);
    // The fallback limits on this host: 3 per hour, counted here from now on.
    let local: Vec<bool> = (0..4)
        .map(|_| fallback.apply(b"k", &[None], Op::Check).unwrap().allowed)
        .collect();
    assert_eq!(local, [true, true, true, false]);
    assert_eq!(
        fallback.apply(b"k", &[None], Op::Check).unwrap().reason,
        Reason::Fallback
    );
    // The documented default is the fallback.
    assert_eq!(
        default.apply(b"k", &[None], Op::Check).unwrap().reason,
        Reason::Fallback
    );
    // Nothing hung: every call was answered within its timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(fallback.stats().fallback >= 5);
    assert!(fallback.stats().errors >= 1);
    // Back: after the retry interval, decisions return to Redis by themselves.
    server.restart();
    std::thread::sleep(Duration::from_millis(150));
    for limiter in [&closed, &open, &fallback] {
        let decision = limiter.apply(b"k", &[None], Op::Check).unwrap();
        assert_eq!(decision.reason, Reason::Limit, "{:?}", limiter.stats());
    }
    // The restarted server is empty and the script was loaded again (NOSCRIPT then EVAL).
    assert!(closed.stats().script_loads >= 1);
    assert_eq!(open.stats().failed_open, 1);
    assert_eq!(closed.stats().failed_closed, 1);
}

#[test]
fn three_node_cluster_runs_policies_without_crossslot() {
    let ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let servers: Vec<support::Server> = ports
        .iter()
        .map(|&port| {
            let config = format!("nodes-{port}.conf");
            support::Server::start_on(
                port,
                &["--cluster-enabled", "yes", "--cluster-config-file", &config],
            )
        })
        .collect();
    let addresses: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let status = std::process::Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let nodes: Vec<String> = servers.iter().map(support::Server::url).collect();
    let client = redis::cluster::ClusterClient::new(nodes).unwrap();
    let mut connection = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The slots are assigned at once; the cluster says ok once every node agrees.
            let ready = client.get_connection().ok().and_then(|mut c| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut c)
                    .ok()
                    .filter(|info| info.contains("cluster_state:ok"))
                    .map(|_| c)
            });
            if let Some(c) = ready {
                break c;
            }
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let quotas = [
        LimiterQuota {
            quota: "2/second".parse().unwrap(),
            name: Some("burst"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "5/minute".parse().unwrap(),
            name: Some("minute"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "100/minute".parse().unwrap(),
            name: Some("tokens"),
            dimension: 1,
        },
    ];
    let remote = cellgate::RemoteLimiter::new(
        &quotas,
        support::limiter_options(Refill::Greedy),
        support::remote_options("cluster:"),
    )
    .unwrap();
    let local = cellgate::Limiter::new(&quotas, support::limiter_options(Refill::Greedy)).unwrap();
    let mut slots = std::collections::BTreeSet::new();
    for index in 0..60u64 {
        let key = format!("user:{}", index % 20);
        let now_ns = 1_000_000 * index;
        let costs = [Some(1), Some(7 * (index % 3))];
        let call = remote
            .encode(key.as_bytes(), Some(now_ns), &costs, Op::Check)
            .unwrap();
        let (decided, _) = cellgate_redis::eval(&mut connection, &remote, &call).unwrap();
        let expected = local
            .apply_at(key.as_bytes(), now_ns, &costs, Op::Check)
            .unwrap();
        assert_eq!(decided.decision, expected, "{key} at {now_ns}");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(call.key())
            .query(&mut connection)
            .unwrap();
        slots.insert(slot / 5462);
    }
    // The keys spread over the three nodes' slot ranges.
    assert_eq!(slots.len(), 3, "{slots:?}");
    drop(servers);
}

#[test]
fn a_hung_server_costs_one_timeout_per_retry_interval() {
    let server = support::Server::start();
    let limiter = outage_limiter(&server, OutagePolicy::FailOpen, "hung:");
    assert_eq!(
        limiter.apply(b"k", &[None], Op::Check).unwrap().reason,
        Reason::Limit
    );
    server.pause();
    let started = Instant::now();
    assert_eq!(
        limiter.apply(b"k", &[None], Op::Check).unwrap().reason,
        Reason::FailedOpen
    );
    let waited = started.elapsed();
    // The timeout is 300 ms: the read gives up then.
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_millis(1_500),
        "{waited:?}"
    );
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            limiter.apply(b"k", &[None], Op::Check).unwrap().reason,
            Reason::FailedOpen
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    server.resume();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        limiter.apply(b"k", &[None], Op::Check).unwrap().reason,
        Reason::Limit
    );
    let stats = limiter.stats();
    assert_eq!(
        (stats.failed_open, stats.skipped, stats.errors),
        (21, 20, 1),
        "{stats:?}"
    );
}
