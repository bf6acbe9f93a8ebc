//! Decisions per second and latency per decision of the Redis store against a local
//! redis-server, for 1 client and 8 concurrent (threads, each its own connection), beside a
//! bare `INCR` (the floor of one round trip). Not a test: `make bench-redis` runs it.
//!
//! `CELLGATE_REDIS_URL` names the server; `BENCH_DECISIONS` the decisions per row (20,000).

use cellgate::{LimiterOptions, LimiterQuota, Op, Quota, RemoteOptions, Seed};
use cellgate_redis::{RedisLimiter, StoreOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Row {
    name: &'static str,
    clients: usize,
    decisions: usize,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
}

impl Row {
    fn print(&mut self) {
        self.latencies_ns.sort_unstable();
        let at = |fraction: f64| {
            let index = ((self.latencies_ns.len() as f64 - 1.0) * fraction) as usize;
            self.latencies_ns[index] as f64 / 1_000.0
        };
        println!(
            "{:<34} {:>2} clients {:>9.0} decisions/s   p50 {:>6.1} µs   p99 {:>6.1} µs",
            self.name,
            self.clients,
            self.decisions as f64 / self.elapsed.as_secs_f64(),
            at(0.5),
            at(0.99),
        );
    }
}

fn run(
    name: &'static str,
    clients: usize,
    decisions: usize,
    work: Arc<dyn Fn(usize) + Send + Sync>,
) -> Row {
    let per_client = decisions / clients;
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let work = Arc::clone(&work);
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(per_client);
                for index in 0..per_client {
                    let begun = Instant::now();
                    work(client * per_client + index);
                    latencies.push(begun.elapsed().as_nanos() as u64);
                }
                latencies
            })
        })
        .collect();
    let mut latencies_ns = Vec::with_capacity(decisions);
    for thread in threads {
        latencies_ns.extend(thread.join().unwrap());
    }
    Row {
        name,
        clients,
        decisions: per_client * clients,
        elapsed: started.elapsed(),
        latencies_ns,
    }
}

fn limiter(url: &str, quotas: &[LimiterQuota<'_>], prefix: &str) -> Arc<RedisLimiter> {
    let client = redis::Client::open(url).expect("CELLGATE_REDIS_URL");
    Arc::new(
        RedisLimiter::new(
            client,
            quotas,
            LimiterOptions::with_seed(Seed::new(1, 2)),
            RemoteOptions {
                prefix,
                ..RemoteOptions::default()
            },
            // Generous: a decision past the timeout would be the fallback's, not Redis's.
            StoreOptions {
                timeout: Duration::from_secs(2),
                ..StoreOptions::default()
            },
        )
        .expect("limiter"),
    )
}

fn main() {
    let url = std::env::var("CELLGATE_REDIS_URL")
        .expect("set CELLGATE_REDIS_URL (make bench-redis does)");
    let decisions: usize = std::env::var("BENCH_DECISIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let one = [LimiterQuota::new(
        "1000000/second".parse::<Quota>().unwrap(),
    )];
    let three = [
        LimiterQuota {
            quota: "1000000/second".parse().unwrap(),
            name: Some("burst"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "100000000/hour".parse().unwrap(),
            name: Some("hourly"),
            dimension: 0,
        },
        LimiterQuota {
            quota: "1000000000/minute".parse().unwrap(),
            name: Some("tokens"),
            dimension: 1,
        },
    ];
    let single = limiter(&url, &one, "bench1:");
    let policy = limiter(&url, &three, "bench3:");
    let keys: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..10_000)
            .map(|i| format!("client:{i}").into_bytes())
            .collect(),
    );
    for clients in [1, 8] {
        let mut rows = Vec::new();
        let url_incr = url.clone();
        let incr = Arc::new(move |_: usize| {
            thread_local! {
                static CONNECTION: std::cell::RefCell<Option<redis::Connection>> = const { std::cell::RefCell::new(None) };
            }
            CONNECTION.with(|cell| {
                let mut slot = cell.borrow_mut();
                let connection = slot.get_or_insert_with(|| {
                    redis::Client::open(url_incr.as_str())
                        .unwrap()
                        .get_connection()
                        .unwrap()
                });
                let _: i64 = redis::cmd("INCR")
                    .arg("bench:incr")
                    .query(connection)
                    .unwrap();
            });
        });
        rows.push(run(
            "INCR (one round trip, no script)",
            clients,
            decisions,
            incr,
        ));
        let (limiter, keys_single) = (Arc::clone(&single), Arc::clone(&keys));
        rows.push(run(
            "check, 1 quota (Redis TIME)",
            clients,
            decisions,
            Arc::new(move |i: usize| {
                let _ = limiter
                    .apply(&keys_single[i % keys_single.len()], &[None], Op::Check)
                    .unwrap();
            }),
        ));
        let (limiter, keys_policy) = (Arc::clone(&policy), Arc::clone(&keys));
        rows.push(run(
            "check, 3 quotas on 2 dimensions",
            clients,
            decisions,
            Arc::new(move |i: usize| {
                let _ = limiter
                    .apply(
                        &keys_policy[i % keys_policy.len()],
                        &[Some(1), Some(500)],
                        Op::Check,
                    )
                    .unwrap();
            }),
        ));
        let (limiter, keys_hot) = (Arc::clone(&single), Arc::clone(&keys));
        rows.push(run(
            "check, 1 quota, one hot key",
            clients,
            decisions,
            Arc::new(move |_: usize| {
                let _ = limiter.apply(&keys_hot[0], &[None], Op::Check).unwrap();
            }),
        ));
        for row in &mut rows {
            row.print();
        }
    }
    // Every decision above must have been Redis's, not the outage policy's.
    for (name, limiter) in [("1 quota", &single), ("3 quotas", &policy)] {
        let stats = limiter.stats();
        println!("{name}: {stats:?}");
        assert_eq!(stats.errors, 0, "{name}: some decisions were not Redis's");
    }
}
