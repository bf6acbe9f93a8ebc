//! [`NativeRemoteLimiter`]: the native half of `RedisLimiter` (`node/lib/redis.js`), over
//! core's [`RemoteLimiter`]. Core holds everything about the protocol (the script, the
//! argument bytes, the decoding of the reply and its check against core, the outage policy);
//! this file converts: JavaScript's specs to core's configuration, the shared array's costs to
//! [`RemoteLimiter::encode`], the reply's `Buffer`s to [`RemoteLimiter::decode`], and core's
//! decisions back into the shared array. JavaScript sends the bytes on the user's client.

use std::cell::RefCell;

use cellgate::{
    Clock, ConfigError, OutagePolicy, RemoteCall, RemoteDecided, RemoteError, RemoteLimiter,
    RemoteOptions, RemoteReservation, SettlePlan, MAX_POLICY_QUOTAS, SCRIPT, SCRIPT_SHA1_HEX,
};
use napi::bindgen_prelude::{BigInt, Buffer, BufferSlice, Float64Array};
use napi::Env;
use napi::Result;
use napi_derive::napi;

use crate::boundary::key::Key;
use crate::boundary::range_error;
use crate::boundary::shared::{
    cost_from_f64, InvalidCost, Shared, BINDING, LEN, MISSING_COST, OPS, STATUS,
};
use crate::clock::{u64_from_bigint, NodeClock};
use crate::headers::{render, HeaderSource};
use crate::limiter::{config_error, limiter_options, LimiterSpec};
use crate::quota::{limiter_entries, parse_specs, QuotaSpec};

/// The Redis side of a `RedisLimiter`'s options, as JavaScript gives them (validated there
/// first).
#[napi(object)]
pub struct RemoteSpec {
    /// Put before every key (core's `DEFAULT_PREFIX`, `"cellgate:"`, when absent).
    pub prefix: Option<String>,
    /// `"fallback"` (the default), `"open"` or `"closed"`.
    pub outage: String,
    /// 16 bytes: store user keys as their keyed hash (SipHash-2-4, 128 bits) under it.
    pub key_secret: Option<Buffer>,
    /// Milliseconds a record is kept after its buckets are full again (0 by default).
    pub expiry_grace_ms: Option<f64>,
    /// The `retryAfterMs` of an `outage: "closed"` denial (1000 by default).
    pub outage_retry_after_ms: Option<f64>,
}

/// Where an encoded call's id goes in the shared array (after core's layout, in the room
/// `sharedArray()` leaves), and the length of its key in the bytes `encode` returns.
pub const CALL_ID: usize = LEN + 2;
/// See [`CALL_ID`].
pub const CALL_KEY_LEN: usize = LEN + 3;

/// The calls in flight, by id: each is taken back by [`NativeRemoteLimiter::decode`] (when the
/// reply is core's) or [`NativeRemoteLimiter::outage`]. Ids of finished calls are reused, so
/// it holds as many calls as were ever in flight at once.
#[derive(Default)]
struct Calls {
    slots: Vec<Option<RemoteCall>>,
    free: Vec<usize>,
}

impl Calls {
    fn insert(&mut self, call: RemoteCall) -> usize {
        match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.get_mut(id) {
                    *slot = Some(call);
                }
                id
            }
            None => {
                self.slots.push(Some(call));
                self.slots.len() - 1
            }
        }
    }

    fn get(&self, id: u32) -> Option<&RemoteCall> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn take(&mut self, id: u32) -> Option<RemoteCall> {
        let taken = self.slots.get_mut(id as usize).and_then(Option::take);
        if taken.is_some() {
            self.free.push(id as usize);
        }
        taken
    }
}

/// An admitted reserve of a `RedisLimiter`, settled at most once.
#[napi]
pub struct NativeRemoteReservation {
    reservation: Option<RemoteReservation>,
}

#[napi]
impl NativeRemoteReservation {
    /// Whether it is not settled yet.
    #[napi(getter)]
    pub fn pending(&self) -> bool {
        self.reservation.is_some()
    }

    /// Whether it was charged in Redis (not by the outage policy).
    #[napi(getter)]
    pub fn remote(&self) -> bool {
        self.reservation
            .as_ref()
            .is_some_and(RemoteReservation::is_remote)
    }
}

/// The native half of a `RedisLimiter`: core's [`RemoteLimiter`] and the array it shares with
/// JavaScript.
#[napi]
pub struct NativeRemoteLimiter {
    remote: RemoteLimiter,
    shared: Shared,
    arguments: Vec<String>,
    calls: RefCell<Calls>,
}

/// The error for a call id that is not in flight (a bug of the JavaScript layer).
fn unknown_call() -> napi::Error {
    range_error("call: not a call of this limiter in flight")
}

/// A whole number of milliseconds from JavaScript, in nanoseconds.
fn ms_to_ns(value: Option<f64>, default_ns: u64, what: &str) -> Result<u64> {
    match value {
        None => Ok(default_ns),
        Some(ms) => cost_from_f64(ms)
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| range_error(format!("{what} must be a non-negative integer"))),
    }
}

/// An explicit time from JavaScript (`None`: Redis's clock).
fn now_of(now_ns: Option<BigInt>) -> Result<Option<u64>> {
    now_ns
        .map(|now| u64_from_bigint(&now, "options.nowNs"))
        .transpose()
}

#[napi]
impl NativeRemoteLimiter {
    /// A limiter over `quotas` with `options` (as `NativeLimiter`: every rule is core's) and
    /// the Redis options `remote`, writing decisions into `shared`.
    ///
    /// # Errors
    /// `RangeError`-coded errors naming the argument at fault.
    #[napi(constructor)]
    pub fn new(
        quotas: Vec<QuotaSpec>,
        options: LimiterSpec,
        remote: RemoteSpec,
        shared: Float64Array,
    ) -> Result<Self> {
        let parsed = parse_specs(&quotas)?;
        let (limiter_quotas, arguments) = limiter_entries(&parsed);
        let limiter_options = limiter_options(&options)?;
        let max_keys = limiter_options.max_keys;
        let outage = OutagePolicy::from_option_name(&remote.outage)
            .ok_or_else(|| range_error("options.outage must be 'fallback', 'open' or 'closed'"))?;
        let key_secret = match &remote.key_secret {
            None => None,
            Some(secret) => Some(<[u8; 16]>::try_from(&secret[..]).map_err(|_| {
                range_error(format!(
                    "options.keySecret must be 16 bytes, got {}",
                    secret.len()
                ))
            })?),
        };
        let expiry_grace_ms = match remote.expiry_grace_ms {
            None => 0,
            Some(ms) => cost_from_f64(ms).ok_or_else(|| {
                range_error("options.expiryGraceMs must be a non-negative integer")
            })?,
        };
        let outage_retry_after_ns = ms_to_ns(
            remote.outage_retry_after_ms,
            cellgate::remote::DEFAULT_OUTAGE_RETRY_AFTER_NS,
            "options.outageRetryAfterMs",
        )?;
        let prefix = remote
            .prefix
            .as_deref()
            .unwrap_or(cellgate::remote::DEFAULT_PREFIX);
        let built = RemoteLimiter::new(
            &limiter_quotas,
            limiter_options,
            RemoteOptions {
                prefix,
                key_secret,
                outage,
                expiry_grace_ms,
                outage_retry_after_ns,
            },
        )
        .map_err(|error| match error {
            RemoteError::Config(error) => {
                config_error(error, &arguments, &options.argument, max_keys)
            }
            RemoteError::PrefixBrace => range_error(format!("options.prefix: {error}")),
            _ => range_error(format!("options.expiryGraceMs: {error}")),
        })?
        .with_block_ns(crate::limiter::block_ns(options.block_ms)?);
        if shared.len() <= CALL_KEY_LEN {
            return Err(range_error(format!(
                "shared: a Float64Array of more than {CALL_KEY_LEN} elements is required"
            )));
        }
        Ok(Self {
            remote: built,
            shared: Shared::new(shared)?,
            arguments,
            calls: RefCell::new(Calls::default()),
        })
    }

    /// `[CALL_ID, CALL_KEY_LEN]`: the shared array's slots of a call in flight.
    #[napi]
    pub fn call_slots() -> Vec<u32> {
        [CALL_ID, CALL_KEY_LEN]
            .map(|slot| u32::try_from(slot).unwrap_or(u32::MAX))
            .to_vec()
    }

    /// The script's text (`EVAL`).
    #[napi]
    pub fn script() -> &'static str {
        SCRIPT
    }

    /// The script's SHA1 in hex (`EVALSHA`).
    #[napi]
    pub fn script_sha1() -> &'static str {
        SCRIPT_SHA1_HEX
    }

    /// `ARGV[1]`: the limiter's parameters, the same bytes for every call.
    #[napi]
    pub fn params(&self) -> Buffer {
        Buffer::from(self.remote.params().to_vec())
    }

    /// The outage policy as JavaScript names it: `"fallback"`, `"open"`, `"closed"`.
    #[napi(getter)]
    pub fn outage_policy(&self) -> &'static str {
        self.remote.outage_policy().option_name()
    }

    /// How many costs a call reads from the shared array: one per dimension.
    #[napi(getter)]
    pub fn dimensions(&self) -> u32 {
        u32::try_from(self.remote.dimensions()).unwrap_or(u32::MAX)
    }

    /// Each quota's name in headers, in order.
    #[napi]
    pub fn names(&self) -> Vec<String> {
        self.remote.local().names().map(str::to_owned).collect()
    }

    /// Each quota written back as a rate string, in order.
    #[napi]
    pub fn rates(&self) -> Vec<String> {
        let quotas = self.remote.local().quotas().iter();
        quotas.map(ToString::to_string).collect()
    }

    /// Each quota's burst (its decisions' `limit`), in order.
    #[napi]
    pub fn limits(&self) -> Vec<f64> {
        let quotas = self.remote.local().quotas().iter();
        quotas.map(|quota| quota.burst_cost() as f64).collect()
    }

    /// Encodes operation `op` (its index in the shared array's operations) on `key` with the
    /// costs in the shared array, at Redis's time or `now_ns`: returns `KEYS[1]` and `ARGV[2]`
    /// as one buffer, and writes the call's id into `CALL_ID` and the key's length into
    /// `CALL_KEY_LEN`. `None` (with `MISSING_COST` written) when core's rule needs a cost
    /// that was not given.
    ///
    /// # Errors
    /// An invalid operation or cost.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn encode<'env>(
        &self,
        env: &'env Env,
        key: Key,
        op: u32,
        now_ns: Option<BigInt>,
    ) -> Result<Option<BufferSlice<'env>>> {
        let op = usize::try_from(op)
            .ok()
            .and_then(|index| OPS.get(index).copied())
            .ok_or_else(|| range_error("op: not one of the limiter's operations"))?;
        let given = self.given()?;
        let given = given.get(..self.dims()).unwrap_or_default();
        let encoded = self.remote.encode(key.as_ref(), now_of(now_ns)?, given, op);
        self.call_or_missing(env, encoded)
    }

    /// Encodes a reserve of the estimate in the shared array (as [`encode`](Self::encode)).
    ///
    /// # Errors
    /// An invalid cost.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn encode_reserve<'env>(
        &self,
        env: &'env Env,
        key: Key,
        now_ns: Option<BigInt>,
    ) -> Result<Option<BufferSlice<'env>>> {
        let given = self.given()?;
        let given = given.get(..self.dims()).unwrap_or_default();
        let encoded = self
            .remote
            .encode_reserve(key.as_ref(), now_of(now_ns)?, given);
        self.call_or_missing(env, encoded)
    }

    /// Decodes the script's reply to call `call` (its three strings) into core's decision,
    /// written into the shared array; returns the reservation of an admitted reserve. The
    /// call is finished then; after an error it stays in flight for [`outage`](Self::outage).
    ///
    /// # Errors
    /// The reply is not this script's, or disagrees with core (treat it as a store error).
    #[napi]
    pub fn decode(
        &self,
        call: u32,
        reply: Vec<BufferSlice<'_>>,
    ) -> Result<Option<NativeRemoteReservation>> {
        let strings: Vec<&[u8]> = reply.iter().map(|buffer| &buffer[..]).collect();
        let decided = {
            let calls = self.calls.borrow();
            let encoded = calls.get(call).ok_or_else(unknown_call)?;
            self.remote
                .decode(encoded, &strings)
                .map_err(|error| napi::Error::from_reason(format!("cellgate reply: {error}")))?
        };
        self.calls.borrow_mut().take(call);
        Ok(self.write(decided))
    }

    /// The outage policy's decision for `call` (written into the shared array), deciding a
    /// fallback at `now_ns` or the process's monotonic time.
    ///
    /// # Errors
    /// `now_ns` out of range.
    #[napi]
    pub fn outage(
        &self,
        call: u32,
        now_ns: Option<BigInt>,
    ) -> Result<Option<NativeRemoteReservation>> {
        let local_now = now_of(now_ns)?.unwrap_or_else(|| NodeClock::Monotonic.now_ns());
        let encoded = self
            .calls
            .borrow_mut()
            .take(call)
            .ok_or_else(unknown_call)?;
        Ok(self.write(self.remote.outage(&encoded, local_now)))
    }

    /// Settles `reservation` with the actual costs in the shared array: the call to send (as
    /// [`encode`](Self::encode) returns it), or `None` when it was settled here (the decision
    /// is in the shared array).
    ///
    /// # Errors
    /// A reservation already settled or another limiter's; an invalid cost.
    #[napi(ts_return_type = "Buffer | null")]
    pub fn settle<'env>(
        &self,
        env: &'env Env,
        reservation: &mut NativeRemoteReservation,
        now_ns: Option<BigInt>,
    ) -> Result<Option<BufferSlice<'env>>> {
        let given = self.given()?;
        let given = given.get(..self.dims()).unwrap_or_default();
        let now_ns = now_of(now_ns)?;
        let taken = reservation
            .reservation
            .take()
            .ok_or_else(|| range_error("reservation: already settled, or refused"))?;
        let local_now = now_ns.unwrap_or_else(|| NodeClock::Monotonic.now_ns());
        match self
            .remote
            .settle(taken, now_ns, local_now, given)
            .map_err(|error| range_error(format!("reservation: {error}")))?
        {
            SettlePlan::Remote(call) => self.start(env, call).map(Some),
            SettlePlan::Done(decision) => {
                self.shared.write_decision(&decision);
                Ok(None)
            }
        }
    }

    /// As `NativeLimiter::render_headers`, for this limiter's quotas.
    ///
    /// # Errors
    /// An invalid style or decision.
    #[napi]
    pub fn render_headers(&self, style: u32, now_unix_s: f64, count: u32) -> Result<String> {
        render(&self.source(count), style, now_unix_s)
    }

    /// As `NativeLimiter::render_429_body`.
    ///
    /// # Errors
    /// An invalid decision.
    #[napi]
    pub fn render_429_body(&self, count: u32) -> Result<String> {
        crate::headers::render_body(&self.source(count))
    }
}

impl NativeRemoteLimiter {
    fn dims(&self) -> usize {
        self.remote.dimensions().min(MAX_POLICY_QUOTAS)
    }

    fn given(&self) -> Result<[Option<u64>; MAX_POLICY_QUOTAS]> {
        let mut given = [None; MAX_POLICY_QUOTAS];
        for (dimension, slot) in given.iter_mut().enumerate().take(self.dims()) {
            *slot = self
                .shared
                .given_cost(dimension)
                .map_err(InvalidCost::to_napi)?;
        }
        Ok(given)
    }

    /// Puts `call` in flight: its bytes (`KEYS[1]` then `ARGV[2]`), its id and key length in
    /// the shared array.
    fn start<'env>(&self, env: &'env Env, call: RemoteCall) -> Result<BufferSlice<'env>> {
        let mut bytes = Vec::with_capacity(call.key().len().saturating_add(call.argv().len()));
        bytes.extend_from_slice(call.key());
        bytes.extend_from_slice(call.argv());
        let buffer = BufferSlice::copy_from(env, &bytes)?;
        self.shared.set(CALL_KEY_LEN, call.key().len() as f64);
        let id = self.calls.borrow_mut().insert(call);
        self.shared.set(CALL_ID, id as f64);
        Ok(buffer)
    }

    fn call_or_missing<'env>(
        &self,
        env: &'env Env,
        encoded: core::result::Result<RemoteCall, ConfigError>,
    ) -> Result<Option<BufferSlice<'env>>> {
        match encoded {
            Ok(call) => self.start(env, call).map(Some),
            Err(ConfigError::MissingCost { dimension }) => {
                self.shared.set(BINDING, dimension as f64);
                self.shared.set(STATUS, f64::from(MISSING_COST));
                Ok(None)
            }
            Err(error) => Err(range_error(format!("costs: {error}"))),
        }
    }

    fn write(&self, decided: RemoteDecided) -> Option<NativeRemoteReservation> {
        self.shared.write_decision(&decided.decision);
        decided
            .reservation
            .map(|reservation| NativeRemoteReservation {
                reservation: Some(reservation),
            })
    }

    fn source(&self, count: u32) -> HeaderSource<'_> {
        HeaderSource {
            shared: &self.shared,
            names: crate::headers::names(self.remote.local().names()),
            quotas: self.remote.local().quotas(),
            arguments: &self.arguments,
            count: usize::try_from(count).unwrap_or(usize::MAX),
        }
    }
}
