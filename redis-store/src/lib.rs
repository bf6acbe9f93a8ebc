//! # cellgate-redis
//!
//! cellgate's exact keyed limiter with its buckets in Redis: one script call per decision,
//! decisions identical to the in-process core (every quota, dimension, reserve and settle),
//! Redis's clock by default, and an outage policy when Redis cannot be asked in time.
//!
//! Everything about the protocol (the script, the argument bytes, the reply, the proof of
//! exactness) lives in core, [`cellgate::remote`]; this crate only sends the bytes, over the
//! `redis` crate: [`RedisLimiter`] (blocking, its own small connection pool with timeouts),
//! [`eval`] (one call on any `redis::ConnectionLike`, a Cluster connection included), and with
//! the `tokio` feature [`AsyncRedisLimiter`] over any `redis::aio::ConnectionLike`.
//!
//! ```no_run
//! use cellgate::{LimiterOptions, LimiterQuota, Op, Quota, RemoteOptions};
//! use cellgate_redis::{RedisLimiter, StoreOptions};
//!
//! let quotas = [LimiterQuota::new("100/minute".parse::<Quota>().unwrap())];
//! let client = redis::Client::open("redis://127.0.0.1/").unwrap();
//! let limiter = RedisLimiter::new(client, &quotas, LimiterOptions::default(),
//!     RemoteOptions::default(), StoreOptions::default()).unwrap();
//! let decision = limiter.apply(b"user:42", &[None], Op::Check).unwrap();
//! assert!(decision.allowed);
//! ```

use cellgate::Clock;
use cellgate::{
    ConfigError, Limiter, LimiterDecision, LimiterOptions, LimiterQuota, MonotonicClock, Op,
    RemoteCall, RemoteDecided, RemoteError, RemoteLimiter, RemoteOptions, RemoteReservation,
    ReplyError, SettlePlan, SCRIPT, SCRIPT_SHA1_HEX,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[cfg(feature = "tokio")]
mod r#async;
#[cfg(feature = "tokio")]
pub use r#async::{eval_async, AsyncRedisLimiter};

/// Options of the client beside the limiter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The longest one decision may wait for Redis (connecting, sending, reading): past it the
    /// outage policy decides. 50 ms by default.
    pub timeout: Duration,
    /// After a failure, how long decisions go straight to the outage policy without trying
    /// Redis (so a dead server costs no timeout per request); the first call after it tries
    /// again, and decisions return to Redis by themselves once it answers. 1 s by default.
    pub retry_interval: Duration,
    /// Connections kept open for reuse (more are opened under load and closed after). 16 by
    /// default.
    pub max_idle_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(50),
            retry_interval: Duration::from_secs(1),
            max_idle_connections: 16,
        }
    }
}

/// Why a call was refused before any decision (the arguments, not Redis: Redis errors go to
/// the outage policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The limiter could not be built.
    Remote(RemoteError),
    /// The call's costs or reservation were refused.
    Config(ConfigError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote(error) => error.fmt(f),
            Self::Config(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<RemoteError> for StoreError {
    fn from(error: RemoteError) -> Self {
        Self::Remote(error)
    }
}

impl From<ConfigError> for StoreError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// How many decisions each path made, and why Redis was not used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Decided by Redis (`Reason::Limit`).
    pub remote: u64,
    /// Admitted by `OutagePolicy::FailOpen`.
    pub failed_open: u64,
    /// Denied by `OutagePolicy::FailClosed`.
    pub failed_closed: u64,
    /// Decided by the local fallback limiter.
    pub fallback: u64,
    /// Calls to Redis that failed (error, timeout, or a reply core refused).
    pub errors: u64,
    /// Decisions that skipped Redis because it failed less than `retry_interval` ago.
    pub skipped: u64,
    /// Times the script had to be sent in full (`NOSCRIPT`: a restart, failover, `SCRIPT FLUSH`).
    pub script_loads: u64,
}

#[derive(Default)]
struct Counters {
    remote: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    fallback: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    script_loads: AtomicU64,
}

impl Counters {
    fn count(&self, decision: &LimiterDecision) {
        let counter = match decision.reason {
            cellgate::Reason::FailedOpen => &self.failed_open,
            cellgate::Reason::FailedClosed => &self.failed_closed,
            cellgate::Reason::Fallback => &self.fallback,
            _ => &self.remote,
        };
        // Relaxed: independent counters, read for reporting only.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StoreStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StoreStats {
            remote: read(&self.remote),
            failed_open: read(&self.failed_open),
            failed_closed: read(&self.failed_closed),
            fallback: read(&self.fallback),
            errors: read(&self.errors),
            skipped: read(&self.skipped),
            script_loads: read(&self.script_loads),
        }
    }
}

/// Why one script call failed.
#[derive(Debug)]
pub enum CallError {
    /// Redis or the connection failed (including timeouts).
    Redis(redis::RedisError),
    /// The reply was refused by core ([`ReplyError`]).
    Reply(ReplyError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(error) => error.fmt(f),
            Self::Reply(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

/// Sends `call` on `connection` (`EVALSHA`, then `EVAL` if the server does not know the
/// script) and decodes the reply. Works on any connection, a Cluster connection included
/// (the call touches one key). Returns whether the script had to be sent in full.
///
/// # Errors
/// [`CallError`] on any failure: apply [`RemoteLimiter::outage`] then.
pub fn eval<C: redis::ConnectionLike>(
    connection: &mut C,
    limiter: &RemoteLimiter,
    call: &RemoteCall,
) -> Result<(RemoteDecided, bool), CallError> {
    let mut reply = |command: &str, script: &str| {
        redis::cmd(command)
            .arg(script)
            .arg(1)
            .arg(call.key())
            .arg(limiter.params())
            .arg(call.argv())
            .query::<Vec<Vec<u8>>>(&mut *connection)
    };
    let (strings, loaded) = match reply("EVALSHA", SCRIPT_SHA1_HEX) {
        Ok(strings) => (strings, false),
        Err(error) if error.code() == Some("NOSCRIPT") => {
            (reply("EVAL", SCRIPT).map_err(CallError::Redis)?, true)
        }
        Err(error) => return Err(CallError::Redis(error)),
    };
    let decided = limiter.decode(call, &strings).map_err(CallError::Reply)?;
    Ok((decided, loaded))
}

/// A keyed limiter whose buckets live in Redis, over a blocking client: connections from a
/// small pool, each call bounded by [`StoreOptions::timeout`], and the outage policy of its
/// [`RemoteOptions`] when Redis fails. Share it between threads (`&self` everywhere).
pub struct RedisLimiter {
    remote: RemoteLimiter,
    client: redis::Client,
    options: StoreOptions,
    pool: Mutex<Vec<redis::Connection>>,
    down_until: Mutex<Option<Instant>>,
    counters: Counters,
    clock: MonotonicClock,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("remote", &self.remote)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter over `quotas` (every rule of [`Limiter::new`]), storing its buckets through
    /// `client` (your URL, TLS, auth).
    ///
    /// # Errors
    /// [`StoreError::Remote`] as [`RemoteLimiter::new`].
    pub fn new(
        client: redis::Client,
        quotas: &[LimiterQuota<'_>],
        limiter: LimiterOptions,
        remote: RemoteOptions<'_>,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::with_remote(
            client,
            RemoteLimiter::new(quotas, limiter, remote)?,
            options,
        ))
    }

    /// A client for an already built [`RemoteLimiter`].
    pub fn with_remote(
        client: redis::Client,
        remote: RemoteLimiter,
        options: StoreOptions,
    ) -> Self {
        Self {
            remote,
            client,
            options,
            pool: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
            counters: Counters::default(),
            clock: MonotonicClock,
        }
    }

    /// The protocol side: headers, 429 bodies, the local limiter.
    pub fn remote(&self) -> &RemoteLimiter {
        &self.remote
    }

    /// The local limiter (headers' names and quotas; the fallback).
    pub fn local(&self) -> &Limiter {
        self.remote.local()
    }

    /// The counters of each path.
    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    /// Applies `op` to `key` at Redis's time with the costs the caller named (as
    /// [`Limiter::apply_at`]). Never fails for Redis: the outage policy decides then.
    ///
    /// # Errors
    /// [`ConfigError`] for the costs (nothing is sent).
    pub fn apply(
        &self,
        key: &[u8],
        costs: &[Option<u64>],
        op: Op,
    ) -> Result<LimiterDecision, ConfigError> {
        let call = self.remote.encode(key, None, costs, op)?;
        Ok(self.run(&call).decision)
    }

    /// [`apply`](Self::apply) at an explicit `now_ns` (tests, replays): Redis's clock is not
    /// read, and the fallback decides at the same time.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_at(
        &self,
        key: &[u8],
        now_ns: u64,
        costs: &[Option<u64>],
        op: Op,
    ) -> Result<LimiterDecision, ConfigError> {
        let call = self.remote.encode(key, Some(now_ns), costs, op)?;
        Ok(self.run_at(&call, Some(now_ns)).decision)
    }

    /// Reserves `estimate` for `key` (as [`Limiter::reserve_at`]); `now_ns: None` for Redis's
    /// time.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn reserve(
        &self,
        key: &[u8],
        now_ns: Option<u64>,
        estimate: &[Option<u64>],
    ) -> Result<RemoteDecided, ConfigError> {
        let call = self.remote.encode_reserve(key, now_ns, estimate)?;
        Ok(self.run_at(&call, now_ns))
    }

    /// Settles `reservation` with the `actual` costs (as [`Limiter::settle_at`]).
    ///
    /// # Errors
    /// [`ConfigError::ForeignReservation`], [`ConfigError::CostCount`].
    pub fn settle(
        &self,
        reservation: RemoteReservation,
        now_ns: Option<u64>,
        actual: &[Option<u64>],
    ) -> Result<LimiterDecision, ConfigError> {
        let local_now = now_ns.unwrap_or_else(|| self.clock.now_ns());
        match self.remote.settle(reservation, now_ns, local_now, actual)? {
            SettlePlan::Remote(call) => Ok(self.run_at(&call, now_ns).decision),
            SettlePlan::Done(decision) => {
                self.counters.count(&decision);
                Ok(decision)
            }
        }
    }

    fn run(&self, call: &RemoteCall) -> RemoteDecided {
        self.run_at(call, None)
    }

    fn run_at(&self, call: &RemoteCall, now_ns: Option<u64>) -> RemoteDecided {
        let decided = match self.try_remote(call) {
            Some(decided) => decided,
            None => {
                let local_now = now_ns.unwrap_or_else(|| self.clock.now_ns());
                self.remote.outage(call, local_now)
            }
        };
        self.counters.count(&decided.decision);
        decided
    }

    /// The store's decision, or `None` when Redis failed or is marked down.
    fn try_remote(&self, call: &RemoteCall) -> Option<RemoteDecided> {
        if let Ok(down) = self.down_until.lock() {
            if down.is_some_and(|until| Instant::now() < until) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let result = self.connection().and_then(|mut connection| {
            match eval(&mut connection, &self.remote, call) {
                Ok((decided, loaded)) => {
                    if loaded {
                        self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                    }
                    self.give_back(connection);
                    Ok(decided)
                }
                // A refused reply leaves the connection usable; a Redis error may not.
                Err(CallError::Reply(error)) => {
                    self.give_back(connection);
                    Err(CallError::Reply(error))
                }
                Err(error) => Err(error),
            }
        });
        match result {
            Ok(decided) => {
                if let Ok(mut down) = self.down_until.lock() {
                    *down = None;
                }
                Some(decided)
            }
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut down) = self.down_until.lock() {
                    *down = Instant::now().checked_add(self.options.retry_interval);
                }
                // Connections opened before the failure may be dead too.
                if let Ok(mut pool) = self.pool.lock() {
                    pool.clear();
                }
                None
            }
        }
    }

    fn connection(&self) -> Result<redis::Connection, CallError> {
        if let Some(connection) = self.pool.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(connection);
        }
        let timeout = self.options.timeout;
        let connection = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(CallError::Redis)?;
        connection
            .set_read_timeout(Some(timeout))
            .and_then(|()| connection.set_write_timeout(Some(timeout)))
            .map_err(CallError::Redis)?;
        Ok(connection)
    }

    fn give_back(&self, connection: redis::Connection) {
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < self.options.max_idle_connections {
                pool.push(connection);
            }
        }
    }
}

/// The README's examples, compiled (not run: they need a server).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
