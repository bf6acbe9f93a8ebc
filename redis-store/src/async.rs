//! The tokio client: [`AsyncRedisLimiter`] over any `redis::aio::ConnectionLike` that can be
//! cloned (a `MultiplexedConnection`, a `ConnectionManager`, a Cluster connection).

use crate::{CallError, Counters, StoreOptions, StoreStats};
use cellgate::{
    Clock, ConfigError, LimiterDecision, MonotonicClock, Op, RemoteCall, RemoteDecided,
    RemoteLimiter, RemoteReservation, SettlePlan, SCRIPT, SCRIPT_SHA1_HEX,
};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

/// Sends `call` on `connection` (`EVALSHA`, then `EVAL` on `NOSCRIPT`) and decodes the reply;
/// returns whether the script had to be sent in full.
///
/// # Errors
/// [`CallError`] on any failure: apply [`RemoteLimiter::outage`] then.
pub async fn eval_async<C: redis::aio::ConnectionLike>(
    connection: &mut C,
    limiter: &RemoteLimiter,
    call: &RemoteCall,
) -> Result<(RemoteDecided, bool), CallError> {
    let command = |name: &str, script: &str| {
        let mut command = redis::cmd(name);
        command
            .arg(script)
            .arg(1)
            .arg(call.key())
            .arg(limiter.params())
            .arg(call.argv());
        command
    };
    let first = command("EVALSHA", SCRIPT_SHA1_HEX)
        .query_async::<Vec<Vec<u8>>>(&mut *connection)
        .await;
    let (strings, loaded) = match first {
        Ok(strings) => (strings, false),
        Err(error) if error.code() == Some("NOSCRIPT") => (
            command("EVAL", SCRIPT)
                .query_async::<Vec<Vec<u8>>>(&mut *connection)
                .await
                .map_err(CallError::Redis)?,
            true,
        ),
        Err(error) => return Err(CallError::Redis(error)),
    };
    let decided = limiter.decode(call, &strings).map_err(CallError::Reply)?;
    Ok((decided, loaded))
}

/// A keyed limiter whose buckets live in Redis, over an async connection: each call bounded
/// by [`StoreOptions::timeout`] (`tokio::time::timeout`), never blocking the runtime, and the
/// outage policy when Redis fails.
pub struct AsyncRedisLimiter<C> {
    remote: RemoteLimiter,
    connection: C,
    options: StoreOptions,
    down_until: Mutex<Option<Instant>>,
    counters: Counters,
    clock: MonotonicClock,
}

impl<C: redis::aio::ConnectionLike + Clone + Send> AsyncRedisLimiter<C> {
    /// A limiter sending its calls on clones of `connection`.
    pub fn new(connection: C, remote: RemoteLimiter, options: StoreOptions) -> Self {
        Self {
            remote,
            connection,
            options,
            down_until: Mutex::new(None),
            counters: Counters::default(),
            clock: MonotonicClock,
        }
    }

    /// The protocol side: headers, 429 bodies, the local limiter.
    pub fn remote(&self) -> &RemoteLimiter {
        &self.remote
    }

    /// The counters of each path.
    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    /// Applies `op` to `key` (`now_ns: None`: Redis's time) with the costs the caller named.
    ///
    /// # Errors
    /// [`ConfigError`] for the costs (nothing is sent).
    pub async fn apply(
        &self,
        key: &[u8],
        now_ns: Option<u64>,
        costs: &[Option<u64>],
        op: Op,
    ) -> Result<LimiterDecision, ConfigError> {
        let call = self.remote.encode(key, now_ns, costs, op)?;
        Ok(self.run(&call, now_ns).await.decision)
    }

    /// Reserves `estimate` for `key`.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub async fn reserve(
        &self,
        key: &[u8],
        now_ns: Option<u64>,
        estimate: &[Option<u64>],
    ) -> Result<RemoteDecided, ConfigError> {
        let call = self.remote.encode_reserve(key, now_ns, estimate)?;
        Ok(self.run(&call, now_ns).await)
    }

    /// Settles `reservation` with the `actual` costs.
    ///
    /// # Errors
    /// [`ConfigError::ForeignReservation`], [`ConfigError::CostCount`].
    pub async fn settle(
        &self,
        reservation: RemoteReservation,
        now_ns: Option<u64>,
        actual: &[Option<u64>],
    ) -> Result<LimiterDecision, ConfigError> {
        let local_now = now_ns.unwrap_or_else(|| self.clock.now_ns());
        match self.remote.settle(reservation, now_ns, local_now, actual)? {
            SettlePlan::Remote(call) => Ok(self.run(&call, now_ns).await.decision),
            SettlePlan::Done(decision) => {
                self.counters.count(&decision);
                Ok(decision)
            }
        }
    }

    async fn run(&self, call: &RemoteCall, now_ns: Option<u64>) -> RemoteDecided {
        let decided = match self.try_remote(call).await {
            Some(decided) => decided,
            None => {
                let local_now = now_ns.unwrap_or_else(|| self.clock.now_ns());
                self.remote.outage(call, local_now)
            }
        };
        self.counters.count(&decided.decision);
        decided
    }

    async fn try_remote(&self, call: &RemoteCall) -> Option<RemoteDecided> {
        let skip = self
            .down_until
            .lock()
            .ok()
            .is_some_and(|down| down.is_some_and(|until| Instant::now() < until));
        if skip {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(
            self.options.timeout,
            eval_async(&mut connection, &self.remote, call),
        )
        .await;
        match result {
            Ok(Ok((decided, loaded))) => {
                if loaded {
                    self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut down) = self.down_until.lock() {
                    *down = None;
                }
                Some(decided)
            }
            _ => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut down) = self.down_until.lock() {
                    *down = Instant::now().checked_add(self.options.retry_interval);
                }
                None
            }
        }
    }
}
