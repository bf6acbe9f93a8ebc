//! A real redis-server for the tests: the one `make test-redis` started (`CELLGATE_REDIS_URL`),
//! or one started here on a free loopback port, without persistence, killed on drop.

#![allow(dead_code)]

use cellgate::{LimiterOptions, LimiterQuota, RemoteLimiter, RemoteOptions, Seed};
use cellgate_redis::{RedisLimiter, StoreOptions};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A redis-server process of this test.
pub struct Server {
    pub port: u16,
    child: Child,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

impl Server {
    pub fn start() -> Self {
        Self::start_on(free_port(), &[])
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(port, &extra);
        let server = Self { port, child, extra };
        server.wait_ready();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn wait_ready(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut connection) =
                client.get_connection_with_timeout(Duration::from_millis(200))
            {
                if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// Continues a paused process (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, &self.extra);
        self.wait_ready();
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_ready(url: &str, port: u16) {
    let client = redis::Client::open(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(200)) {
            if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(port: u16, extra: &[String]) -> Child {
    let dir = std::env::temp_dir().join(format!("cellgate-redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (make test-redis installs it)")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The URL of the shared server: `CELLGATE_REDIS_URL`, or one started for this test binary.
pub fn shared_url() -> String {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("CELLGATE_REDIS_URL") {
            Ok(url) => url,
            Err(_) => {
                // A static is never dropped: a watcher stops this server when the test
                // process is gone.
                let port = free_port();
                let dir = std::env::temp_dir().join(format!("cellgate-redis-{port}"));
                std::fs::create_dir_all(&dir).unwrap();
                let script = format!(
                    "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --dir '{}' >/dev/null 2>&1 & r=$!; \
                     while kill -0 {} 2>/dev/null; do sleep 0.2; done; kill $r",
                    dir.display(),
                    std::process::id()
                );
                // Never waited for: the watcher outlives this process by design.
                #[allow(clippy::zombie_processes)]
                let _watcher = Command::new("sh").arg("-c").arg(script).spawn().expect("sh");
                let url = format!("redis://127.0.0.1:{port}/");
                wait_ready(&url, port);
                url
            }
        })
        .clone()
}

/// A prefix no other test or run uses.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test:{}:{nanos}:{n}:{name}:", std::process::id())
}

/// Options for tests with injected time: records live an hour past full, so that real time
/// passing between steps never expires one (the in-process tables never forget a key either).
pub fn remote_options(prefix: &str) -> RemoteOptions<'_> {
    RemoteOptions {
        prefix,
        expiry_grace_ms: 3_600_000,
        ..RemoteOptions::default()
    }
}

pub const SEED: Seed = Seed::new(1, 2);

pub fn limiter_options(refill: cellgate::Refill) -> LimiterOptions {
    let mut options = LimiterOptions::with_seed(SEED);
    options.refill = refill;
    options.max_keys = 1024;
    options
}

/// A Redis limiter on `url` for `quotas`.
pub fn redis_limiter(
    url: &str,
    quotas: &[LimiterQuota<'_>],
    refill: cellgate::Refill,
    remote: RemoteOptions<'_>,
    store: StoreOptions,
) -> RedisLimiter {
    let client = redis::Client::open(url).unwrap();
    let remote = RemoteLimiter::new(quotas, limiter_options(refill), remote).unwrap();
    RedisLimiter::with_remote(client, remote, store)
}

/// Store options for tests: generous timeout (a loaded 2-core machine), short retry.
pub fn store_options() -> StoreOptions {
    StoreOptions {
        timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(50),
        max_idle_connections: 16,
    }
}
