//! [`RemoteLimiter`]: a [`Limiter`] whose buckets live in Redis, one script call per decision,
//! deciding exactly what the in-process core decides. This module holds everything a client
//! needs, once, for every runtime: the Lua script ([`SCRIPT`]) and its SHA1
//! ([`SCRIPT_SHA1_HEX`]), the encoding of a call's `KEYS` and `ARGV` ([`RemoteLimiter::encode`]),
//! the decoding of the reply into a [`LimiterDecision`] ([`RemoteLimiter::decode`]) whose
//! headers and 429 body come from core unchanged, and the outage policy
//! ([`OutagePolicy`], [`RemoteLimiter::outage`]). A client only sends bytes and returns bytes.
//!
//! # A call
//!
//! ```text
//! EVALSHA <SCRIPT_SHA1_HEX> 1 <call.key()> <limiter.params()> <call.argv()>
//! ```
//!
//! (`EVAL <SCRIPT> ...` after a `NOSCRIPT` error.) The reply is an array of three bulk strings,
//! handed to [`RemoteLimiter::decode`] as they came.
//!
//! # What a client (a binding) does
//!
//! 1. Once: [`RemoteLimiter::new`] with the quotas, [`LimiterOptions`] and [`RemoteOptions`];
//!    keep [`RemoteLimiter::params`] (`ARGV[1]`), [`SCRIPT`] and [`SCRIPT_SHA1_HEX`].
//! 2. Per decision: [`RemoteLimiter::encode`] (or [`encode_reserve`](RemoteLimiter::encode_reserve))
//!    with `now_ns: None` (Redis's clock); send `EVALSHA` as above on the user's client, under a
//!    timeout; on a `NOSCRIPT` error send `EVAL` with the script text instead.
//! 3. On a reply: [`RemoteLimiter::decode`] → [`RemoteDecided`] (the [`LimiterDecision`] and, for
//!    an admitted reserve, the [`RemoteReservation`]). On an error, a timeout or a
//!    [`ReplyError`]: [`RemoteLimiter::outage`] with the host's monotonic time (it applies the
//!    [`OutagePolicy`]; `decision.reason` says which path decided), and count it.
//! 4. To settle: [`RemoteLimiter::settle`] → [`SettlePlan::Remote`] (send and decode as in 2-3)
//!    or [`SettlePlan::Done`].
//! 5. Headers and 429 bodies: [`RemoteLimiter::render_headers`], [`render_429_body`](RemoteLimiter::render_429_body),
//!    or any renderer of [`RemoteLimiter::local`]: the same bytes as the in-process limiter.
//!
//! Recovery is the client's loop: after a failure, skip Redis for a retry interval (answering
//! with [`RemoteLimiter::outage`]), then try again; `cellgate-redis` shows one.
//!
//! # How the script decides, and why the reply is trusted
//!
//! The script reads the key's record, runs core's decision rule ([`Rule::decide`]) over every
//! quota exactly as core's keyed tables do (a policy's quotas all-or-nothing; a refusal writes
//! nothing, except the block of a limiter that blocks, [`Limiter::with_block_ns`]), writes the record back with an expiry, and replies with the time it used and the
//! record before and after. [`RemoteLimiter::decode`] then runs core itself on the record before,
//! at that time, and compares the record core would write with the one the script wrote: the
//! decision returned (every quota's `remaining`, `retry_after_ns`, `reset_after_ns`, the binding
//! quota) is core's own, and a script that ever decided otherwise is reported
//! ([`ReplyError::Disagrees`]) instead of trusted. The script computes no wait, no `remaining`
//! and no header: only admission and the next state.
//!
//! # Time
//!
//! By default `now` comes from `redis.call('TIME')` in the script, so the hosts' clocks do not
//! matter; an explicit `now_ns` (tests, replays) is sent instead when given. A `now` earlier
//! than a bucket's last time (a failover to a replica whose clock is behind, an NTP step)
//! counts as no time passing, as in core: the record keeps each bucket's last time.
//!
//! # Exactness: every number in the script is an exact integer
//!
//! Lua numbers are IEEE doubles, exact for integers up to 2^53; core's states are `u64`
//! nanoseconds and ticks (up to 2^64 − 1), so the script never holds a `u64` in one number. It
//! holds every `u64` as a pair `(h, l)` of integers in `[0, 2^32)`, worth `h·2^32 + l`. Each
//! operation keeps every intermediate an integer below 2^53, so every double operation is exact
//! (a sum, difference or product of integers is exact when the true result is below 2^53, and
//! `x % 2^k`, `(x − x % 2^k) / 2^k` of such an integer are exact):
//!
//! * **bytes ↔ pairs** (`unpack`, `pack`): Redis's built-in `struct` library (`struct.unpack('>I')`,
//!   `struct.pack('>I')`, in C) reads 4 big-endian bytes as an unsigned 32-bit integer, which a
//!   double holds exactly, and writes an integer in `[0, 2^32)` back as its 4 bytes (a cast
//!   of an integral double to an unsigned 32-bit integer is exact). No arithmetic is done.
//! * **`gt`**: compares `h`, then `l`: exact comparisons of integers.
//! * **`add`**: `l + l' < 2^33`, `h + h' + 1 < 2^33`; an `h` reaching 2^32 means the sum
//!   reached 2^64, and the result saturates to 2^64 − 1, as `u64::saturating_add`.
//! * **`dif`**: compared first; when `a > b`, `l − l' > −2^32`, and adding 2^32 gives
//!   `[0, 2^32)`. `b ≥ a` gives 0, as `u64::saturating_sub`.
//! * **`mul`**: both `h` non-zero means the product is at least 2^64 (saturate). Else one
//!   factor, `a`, is below 2^32 (swapped if needed). If the other is too and `p = a·b` computes
//!   below 2^53, it is exact (the true product is below 2^53: rounding is monotonic and 2^53 is
//!   a double, so a true product of 2^53 or more computes as 2^53 or more). Otherwise `a` is
//!   split into 16-bit halves `a₁·2^16 + a₀`: `t₀ = a₀·l`, `t₁ = a₁·l` are below 2^48,
//!   `low = t₀ + (t₁ % 2^16)·2^16 < 2^49`, and `a·l = (⌊t₁/2^16⌋ + ⌊low/2^32⌋)·2^32 +
//!   low % 2^32`, whose high part is below 2^33. `a·h` (with `h` the other factor's high half)
//!   is below 2^32 or saturates (the same monotonicity argument decides `a·h ≥ 2^32` exactly);
//!   a high part reaching 2^32 saturates, as `u64::saturating_mul`.
//! * **`div`** (interval refill only: `now / period_ns`): below 2^53 both operands are exact
//!   doubles and `⌊x / y⌋` is exact: if `x / y = k − r/y` with `0 < r < y`, the rounding error
//!   of the division is at most `(x/y)·2^-53 < 1/y ≤ r/y` because `x < 2^53`, so the rounded
//!   quotient stays in `[k − 1, k)`. Above, binary long division: the remainder stays below the
//!   divisor `< 2^64`, so `2·r + 1 < 2^65` is held as a carry bit and a pair; every step is an
//!   `add`/`dif` as above, and each quotient bit adds a power of two below 2^32 to one half.
//! * **`TIME`**: seconds and microseconds are strings of integers; `s·10^6 + µs < 2^53` until
//!   the year 2255 (checked: the script fails rather than round); split into a pair with `%`
//!   and an exact division by 2^32, then multiplied by 1000 with `mul` (no saturation before
//!   the year 2554).
//!
//! * **blocks** ([`RemoteLimiter::with_block_ns`]): after a refused check, the script
//!   compares (`gt`) the cost times the units per cost (`mul`) with the capacity, and the
//!   refilled `missing` with the capacity, and writes `missing = capacity + debt` (`add`,
//!   saturating as `u64::saturating_add`) with the refilled time: the debt is computed by core
//!   ([`Rule::block`]'s), so the script does no other arithmetic for a block.
//!
//! So the admission and the next state are exact for every quota core accepts, in the whole
//! `u64` domain of core: no quota is refused for being unrepresentable, and no decision is
//! rounded. (Besides, decode re-checks every state written against core, and the Redis tests
//! compare 14,400 random steps, values around 2^53 and 2^61 and near `u64::MAX` included.)
//!
//! The only doubles that are not exact integers are in the **expiry**, which decides nothing:
//! `h·2^32 + l` has a relative error of at most 2^-53, and the wait until full
//! (`missing / ticks_per_ns` ns, or at most `(missing / rate + 1)·period` ns for interval refill)
//! plus the lead of the bucket's time over `now` is computed with a handful more operations,
//! within a relative 2^-49 of the true value `T`. The script sets `⌊T'/10^6·(1 + 2^-40)⌋ + 2` ms
//! (plus the grace), which is above `T` ns: the key expires after its bucket is full again,
//! never before. It is capped at 2^52 ms (142,000 years).
//!
//! # The record
//!
//! One Redis key per (limiter, user key), holding every quota of the limiter: a string of
//! `8 + 16·n` bytes, the limiter's fingerprint (its quotas and refill, so a changed
//! configuration reads old records as empty instead of misreading them) and per quota
//! `last_ns` and `missing` ([`CellState`]), big-endian; `last_ns = 2^64 − 1` marks a quota that
//! holds nothing for the key (a full bucket, as a table that does not hold the key). A record in
//! which every quota holds nothing is deleted. The key is `prefix{user key}` (the user key, or
//! with [`RemoteOptions::key_secret`] its keyed hash, is the Cluster hash tag), so one call
//! touches one key, in one slot: a policy never crosses slots.
//!
//! # Layouts (protocol 2)
//!
//! `ARGV[1]`, [`RemoteLimiter::params`]: `[2, n, interval, single]`, the fingerprint (8 bytes),
//! the expiry grace in ms (8), then per quota 48 bytes: capacity (in units of `missing`), units
//! per cost, ticks per ns, period ns, rate, and the debt a block leaves (`Rule::block`'s,
//! computed by core; 0 when the limiter does not block). Protocol 1 had no block debt. `ARGV[2]`, [`RemoteCall::argv`]: the operation
//! (1 check, 2 peek, 3 force, 4 refund, 5 reset, 6 settle), 1 if `now` follows explicitly else 0,
//! `now_ns` (8 bytes), then per quota two costs of 8 bytes (the cost, 0; for settle, the refund
//! and the extra charge). All integers big-endian.

use crate::config::{resolve_settle_costs, ConfigError};
use crate::decision::Decision;
use crate::headers::{HeaderError, HeaderStyle, RenderedHeaders};
use crate::keyed::{Reason, TableFull};
use crate::limiter::{Limiter, LimiterDecision, LimiterOptions, LimiterQuota, LimiterReservation};
use crate::policy::{block_refusals, check_all, run_all, Buckets, Charge, Undo, MAX_POLICY_QUOTAS};
use crate::rule::{refusal_blocks, CellState, Op, Outcome, Refill, Rule};
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::hash::Hasher;

/// The Lua script every client sends (`EVAL`), or names by [`SCRIPT_SHA1_HEX`] (`EVALSHA`).
pub const SCRIPT: &str = include_str!("remote/script.lua");

/// The SHA1 of [`SCRIPT`], computed when core is compiled.
pub const SCRIPT_SHA1: [u8; 20] = sha1(SCRIPT.as_bytes());

const SCRIPT_SHA1_HEX_BYTES: [u8; 40] = hex(SCRIPT_SHA1);

/// [`SCRIPT_SHA1`] in lowercase hexadecimal, as `EVALSHA` and `SCRIPT LOAD` spell it.
pub const SCRIPT_SHA1_HEX: &str = match core::str::from_utf8(&SCRIPT_SHA1_HEX_BYTES) {
    Ok(text) => text,
    Err(_) => "",
};

/// The version of the argument, reply and record layouts (the first byte of the parameters).
pub const PROTOCOL_VERSION: u8 = 2;

/// The version of the record's layout, in its fingerprint (protocol 2 kept protocol 1's).
const RECORD_VERSION: u8 = 1;

/// The prefix of every key when none is given.
pub const DEFAULT_PREFIX: &str = "cellgate:";

/// The longest expiry grace accepted, in ms (about 35 years): the script holds it in a double.
pub const MAX_EXPIRY_GRACE_MS: u64 = 1 << 40;

/// The `retry_after_ns` of a decision denied by [`OutagePolicy::FailClosed`] when none is
/// configured: one second.
pub const DEFAULT_OUTAGE_RETRY_AFTER_NS: u64 = crate::quota::NS_PER_SECOND;

/// A `last_ns` in a record: this quota holds nothing for the key.
const ABSENT_NS: u64 = u64::MAX;

/// The latest time core's tables decide at (`u64::MAX` marks a slot changing owner there).
const MAX_NOW_NS: u64 = u64::MAX - 1;

/// What decides when the store cannot be asked (an error, a timeout, a store marked down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OutagePolicy {
    /// Deny ([`Reason::FailedClosed`]; answer 503, `retry_after_ns` as configured).
    FailClosed,
    /// Admit ([`Reason::FailedOpen`]); nothing is counted anywhere.
    FailOpen,
    /// Decide on this host's own limiter, with the same quotas ([`Reason::Fallback`]): limits
    /// hold per host while the store is away, so the whole fleet admits at most one quota per
    /// host. The default: no host stops limiting and none stops serving.
    #[default]
    Fallback,
}

impl OutagePolicy {
    /// The policy as every runtime names it: `"fail_closed"`, `"fail_open"`, `"fallback"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FailClosed => "fail_closed",
            Self::FailOpen => "fail_open",
            Self::Fallback => "fallback",
        }
    }

    /// The policy as every binding's `outage` option names it: `"fallback"`, `"open"`,
    /// `"closed"`.
    pub const fn option_name(self) -> &'static str {
        match self {
            Self::FailClosed => "closed",
            Self::FailOpen => "open",
            Self::Fallback => "fallback",
        }
    }

    /// The policy an `outage` option names ([`option_name`](Self::option_name)), or `None`
    /// for any other text.
    pub fn from_option_name(name: &str) -> Option<Self> {
        [Self::Fallback, Self::FailOpen, Self::FailClosed]
            .into_iter()
            .find(|policy| policy.option_name() == name)
    }
}

/// A [`RemoteLimiter`]'s options beside its quotas and [`LimiterOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteOptions<'a> {
    /// Put before every key ([`DEFAULT_PREFIX`] by default); one prefix per limiter. Must not
    /// hold `{` or `}` (the user key is the Cluster hash tag).
    pub prefix: &'a str,
    /// When set, user keys are stored as their SipHash-2-4 (128-bit) under this secret, in
    /// hex, so IPs and emails are not written to Redis in clear. Every host of one limiter
    /// must share it.
    pub key_secret: Option<[u8; 16]>,
    /// What decides when the store cannot be asked ([`OutagePolicy::Fallback`] by default).
    pub outage: OutagePolicy,
    /// Milliseconds a record is kept after its buckets are full again (0 by default): a
    /// backward step of Redis's clock within the grace still sees the buckets' last time.
    pub expiry_grace_ms: u64,
    /// The `retry_after_ns` of a [`OutagePolicy::FailClosed`] denial.
    pub outage_retry_after_ns: u64,
}

impl Default for RemoteOptions<'_> {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX,
            key_secret: None,
            outage: OutagePolicy::Fallback,
            expiry_grace_ms: 0,
            outage_retry_after_ns: DEFAULT_OUTAGE_RETRY_AFTER_NS,
        }
    }
}

/// Why a [`RemoteLimiter`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteError {
    /// The quotas or limiter options were refused, as [`Limiter::new`] refuses them.
    Config(ConfigError),
    /// `prefix` holds `{` or `}`, which would make it the Cluster hash tag of every key (one
    /// slot for the whole limiter).
    PrefixBrace,
    /// `expiry_grace_ms` above [`MAX_EXPIRY_GRACE_MS`].
    ExpiryGrace {
        /// The value given.
        given: u64,
    },
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => error.fmt(f),
            Self::PrefixBrace => {
                f.write_str("prefix must not hold '{' or '}': the user key is the Cluster hash tag")
            }
            Self::ExpiryGrace { given } => write!(
                f,
                "expiry_grace_ms must be at most {MAX_EXPIRY_GRACE_MS}, got {given}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RemoteError {}

impl From<ConfigError> for RemoteError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// Why a reply could not be turned into a decision. A client treats it like a store error
/// (apply the outage policy) and reports it: it means another script answered, or a bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply is not three strings.
    Shape,
    /// The time is not 8 bytes.
    Time,
    /// The script wrote a record other than the one core would have written.
    Disagrees,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shape => "the script's reply is not an array of three strings",
            Self::Time => "the script's reply does not start with an 8-byte time",
            Self::Disagrees => "the script wrote a record core would not have written",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReplyError {}

/// What one call asks, kept between [`RemoteLimiter::encode`] and [`RemoteLimiter::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Apply(Op),
    Reserve,
    Settle,
}

/// One encoded call: the key (`KEYS[1]`) and this call's argument (`ARGV[2]`; `ARGV[1]` is
/// [`RemoteLimiter::params`]), and what decoding its reply needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCall {
    key: Vec<u8>,
    user_key: Vec<u8>,
    argv: Vec<u8>,
    kind: Kind,
    /// Per quota: the cost (for settle, the refund), and the extra charge of a settle.
    first: [u64; MAX_POLICY_QUOTAS],
    second: [u64; MAX_POLICY_QUOTAS],
    /// Per dimension, resolved: the costs (for settle, the actual costs).
    costs: [Option<u64>; MAX_POLICY_QUOTAS],
    dimensions: usize,
    now_ns: Option<u64>,
}

impl RemoteCall {
    /// `KEYS[1]`: the Redis key of the user key's record.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// `ARGV[2]`: this call's operation, time and costs.
    pub fn argv(&self) -> &[u8] {
        &self.argv
    }

    /// The user key as given (what the outage fallback charges).
    pub fn user_key(&self) -> &[u8] {
        &self.user_key
    }
}

/// Where a [`RemoteReservation`] was charged.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Held {
    /// In the store: the Redis key, and the user key (for the outage policy of the settle).
    Remote(Vec<u8>, Vec<u8>),
    /// On this host's fallback limiter.
    Local(LimiterReservation),
    /// Nowhere (admitted by [`OutagePolicy::FailOpen`]).
    Untracked,
}

/// An admitted estimate, to settle once on the limiter that made it. Not `Clone`: settling
/// consumes it.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an admitted reservation must be settled"]
pub struct RemoteReservation {
    limiter_id: u64,
    costs: [u64; MAX_POLICY_QUOTAS],
    dimensions: usize,
    held: Held,
}

impl RemoteReservation {
    /// The estimate reserved on each dimension.
    pub fn costs(&self) -> &[u64] {
        self.costs.get(..self.dimensions).unwrap_or(&[])
    }

    /// Whether it was charged in the store (not by the outage policy).
    pub fn is_remote(&self) -> bool {
        matches!(self.held, Held::Remote(..))
    }
}

/// A decision, and for a reserve that was admitted, the reservation to settle.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a RemoteDecided says whether the request was admitted"]
pub struct RemoteDecided {
    /// The decision: `reason` says which path decided ([`Reason::Limit`]: the store).
    pub decision: LimiterDecision,
    /// For an admitted reserve, what to settle.
    pub reservation: Option<RemoteReservation>,
}

/// What settling a reservation needs: a call to the store, or nothing more.
#[derive(Debug, PartialEq, Eq)]
pub enum SettlePlan {
    /// Send this call, then [`RemoteLimiter::decode`] its reply (or
    /// [`RemoteLimiter::outage`] on error: the settle is then lost, and the reservation's
    /// charge stays in the store).
    Remote(RemoteCall),
    /// Settled without the store (a reservation of the outage policy).
    Done(LimiterDecision),
}

/// A keyed limiter over named quotas whose buckets live in Redis: configured, encoded and
/// decoded here, sent by any client. See the [module docs](self) for the protocol and the
/// proof that its decisions are core's.
///
/// ```
/// use cellgate::{LimiterOptions, LimiterQuota, Op, Quota, RemoteLimiter, RemoteOptions, Seed};
///
/// let quotas = [LimiterQuota::new("2/second".parse::<Quota>().unwrap())];
/// let limiter = RemoteLimiter::new(
///     &quotas,
///     LimiterOptions::with_seed(Seed::new(1, 2)),
///     RemoteOptions::default(),
/// )
/// .unwrap();
/// let call = limiter.encode(b"user:42", None, &[None], Op::Check).unwrap();
/// assert_eq!(call.key(), b"cellgate:{user:42}");
/// // A client sends EVALSHA SCRIPT_SHA1_HEX 1 call.key() limiter.params() call.argv(),
/// // and hands the three strings of the reply to limiter.decode(&call, &reply).
/// ```
pub struct RemoteLimiter {
    id: u64,
    local: Limiter,
    rules: Vec<Rule>,
    dimension_of: Vec<usize>,
    single: bool,
    prefix: Vec<u8>,
    key_secret: Option<[u8; 16]>,
    outage: OutagePolicy,
    outage_retry_after_ns: u64,
    params: Vec<u8>,
    fingerprint: [u8; 8],
    /// Nanoseconds a denial blocks its key for (0: never), in the script and the fallback.
    block_ns: u64,
}

/// Bytes of `ARGV[1]` before the quotas, and per quota.
const PARAMS_HEAD: usize = 20;
const PARAMS_PER_QUOTA: usize = 48;

impl fmt::Debug for RemoteLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteLimiter")
            .field("local", &self.local)
            .field("outage", &self.outage)
            .finish_non_exhaustive()
    }
}

impl RemoteLimiter {
    /// A limiter over `quotas`: every rule of [`Limiter::new`] applies (the same names,
    /// dimensions, refill), and `options` configure the [`OutagePolicy::Fallback`] limiter
    /// (its `max_keys` and `on_full`; with another outage policy it is built for one key, to
    /// render headers only).
    ///
    /// # Errors
    /// [`RemoteError::Config`] as [`Limiter::new`]; [`RemoteError::PrefixBrace`];
    /// [`RemoteError::ExpiryGrace`].
    pub fn new(
        quotas: &[LimiterQuota<'_>],
        options: LimiterOptions,
        remote: RemoteOptions<'_>,
    ) -> Result<Self, RemoteError> {
        if remote
            .prefix
            .bytes()
            .any(|byte| byte == b'{' || byte == b'}')
        {
            return Err(RemoteError::PrefixBrace);
        }
        if remote.expiry_grace_ms > MAX_EXPIRY_GRACE_MS {
            return Err(RemoteError::ExpiryGrace {
                given: remote.expiry_grace_ms,
            });
        }
        let mut local_options = options;
        if remote.outage != OutagePolicy::Fallback {
            local_options.max_keys = 1;
        }
        let local = Limiter::new(quotas, local_options)?;
        let refill = local.refill();
        let rules: Vec<Rule> = quotas
            .iter()
            .map(|quota| Rule::new(quota.quota, refill))
            .collect();
        let dimension_of: Vec<usize> = quotas.iter().map(|quota| quota.dimension).collect();
        // As `Limiter::new` picks its engine: one table, or a keyed policy.
        let single = quotas.len() == 1 && local.dimensions() == 1;
        let fingerprint = fingerprint(&rules, single);
        let mut params = Vec::with_capacity(
            PARAMS_HEAD.saturating_add(rules.len().saturating_mul(PARAMS_PER_QUOTA)),
        );
        params.push(PROTOCOL_VERSION);
        params.push(u8::try_from(rules.len()).unwrap_or(u8::MAX));
        params.push(u8::from(refill == Refill::Interval));
        params.push(u8::from(single));
        params.extend_from_slice(&fingerprint);
        params.extend_from_slice(&remote.expiry_grace_ms.to_be_bytes());
        for rule in &rules {
            let quota = rule.quota();
            let units_per_cost = match refill {
                Refill::Greedy => quota.emission_ticks(),
                Refill::Interval => 1,
            };
            // The last: the debt a block leaves (0 until `with_block_ns`).
            for value in [
                rule.capacity(),
                units_per_cost,
                quota.ticks_per_ns(),
                quota.period_ns(),
                quota.rate_cost(),
                0,
            ] {
                params.extend_from_slice(&value.to_be_bytes());
            }
        }
        Ok(Self {
            id: next_remote_id(),
            local,
            rules,
            dimension_of,
            single,
            prefix: remote.prefix.as_bytes().to_vec(),
            key_secret: remote.key_secret,
            outage: remote.outage,
            outage_retry_after_ns: remote.outage_retry_after_ns,
            params,
            fingerprint,
            block_ns: 0,
        })
    }

    /// This limiter, blocking a key for `block_ns` after each denial of a check or reserve,
    /// exactly as [`Limiter::with_block_ns`] does (the script writes the same block into the
    /// record; the fallback limiter blocks too). 0 never blocks.
    #[must_use]
    pub fn with_block_ns(mut self, block_ns: u64) -> Self {
        self.block_ns = block_ns;
        self.local.set_block_ns(block_ns);
        for (index, rule) in self.rules.iter().enumerate() {
            let debt = if block_ns == 0 {
                0
            } else {
                rule.block_debt(block_ns)
            };
            let at = PARAMS_HEAD
                .saturating_add(index.saturating_mul(PARAMS_PER_QUOTA))
                .saturating_add(40);
            if let Some(bytes) = self.params.get_mut(at..at.saturating_add(8)) {
                bytes.copy_from_slice(&debt.to_be_bytes());
            }
        }
        self
    }

    /// How long a denial blocks a key ([`with_block_ns`](Self::with_block_ns)); 0: never.
    pub fn block_ns(&self) -> u64 {
        self.block_ns
    }

    /// `ARGV[1]`: the limiter's parameters, the same bytes for every call.
    pub fn params(&self) -> &[u8] {
        &self.params
    }

    /// The outage policy.
    pub fn outage_policy(&self) -> OutagePolicy {
        self.outage
    }

    /// The local limiter: the [`OutagePolicy::Fallback`] path, and the names and quotas that
    /// headers show.
    pub fn local(&self) -> &Limiter {
        &self.local
    }

    /// How many costs a call takes: one per dimension.
    pub fn dimensions(&self) -> usize {
        self.local.dimensions()
    }

    /// The Redis key of `user_key`'s record: `prefix{user_key}`, or `prefix{hex hash}` with a
    /// key secret.
    pub fn redis_key(&self, user_key: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len().saturating_add(34));
        key.extend_from_slice(&self.prefix);
        key.push(b'{');
        match self.key_secret {
            None => key.extend_from_slice(user_key),
            Some(secret) => {
                let mut halves = [0u8; 8];
                halves.copy_from_slice(secret.get(..8).unwrap_or(&[0; 8]));
                let k0 = u64::from_le_bytes(halves);
                halves.copy_from_slice(secret.get(8..).unwrap_or(&[0; 8]));
                let k1 = u64::from_le_bytes(halves);
                let mut hasher = siphasher::sip128::SipHasher24::new_with_keys(k0, k1);
                hasher.write(user_key);
                let digest = siphasher::sip128::Hasher128::finish128(&hasher).as_bytes();
                for byte in digest {
                    key.push(hex_digit(byte >> 4));
                    key.push(hex_digit(byte & 0xf));
                }
            }
        }
        key.push(b'}');
        key
    }

    /// Encodes `op` on `user_key` with the costs the caller named (as
    /// [`Limiter::apply_at`]), at Redis's time (`now_ns: None`) or an explicit one.
    /// [`Op::Reset`] uses no cost and ignores `costs` (any length, `&[]` included).
    ///
    /// # Errors
    /// [`ConfigError::CostCount`], [`ConfigError::MissingCost`], as [`Limiter::apply_at`].
    pub fn encode(
        &self,
        user_key: &[u8],
        now_ns: Option<u64>,
        costs: &[Option<u64>],
        op: Op,
    ) -> Result<RemoteCall, ConfigError> {
        self.encode_kind(user_key, now_ns, costs, Kind::Apply(op))
    }

    /// Encodes a reserve of `estimate` (a check whose admission returns a
    /// [`RemoteReservation`], as [`Limiter::reserve_at`]).
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn encode_reserve(
        &self,
        user_key: &[u8],
        now_ns: Option<u64>,
        estimate: &[Option<u64>],
    ) -> Result<RemoteCall, ConfigError> {
        self.encode_kind(user_key, now_ns, estimate, Kind::Reserve)
    }

    fn resolve(
        &self,
        costs: &[Option<u64>],
    ) -> Result<([u64; MAX_POLICY_QUOTAS], usize), ConfigError> {
        let dimensions = self.local.dimensions();
        let count = ConfigError::CostCount {
            expected: dimensions,
            given: costs.len(),
        };
        if costs.len() != dimensions {
            return Err(count);
        }
        let mut resolved = [0u64; MAX_POLICY_QUOTAS];
        crate::config::resolve_costs(costs, resolved.get_mut(..dimensions).ok_or(count)?)?;
        Ok((resolved, dimensions))
    }

    fn encode_kind(
        &self,
        user_key: &[u8],
        now_ns: Option<u64>,
        costs: &[Option<u64>],
        kind: Kind,
    ) -> Result<RemoteCall, ConfigError> {
        // A reset uses no cost and ignores `costs`, as `Limiter::apply_at` does.
        let (resolved, dimensions) = if kind == Kind::Apply(Op::Reset) {
            ([0u64; MAX_POLICY_QUOTAS], self.local.dimensions())
        } else {
            self.resolve(costs)?
        };
        let mut first = [0u64; MAX_POLICY_QUOTAS];
        for (slot, dimension) in first.iter_mut().zip(&self.dimension_of) {
            *slot = resolved.get(*dimension).copied().unwrap_or(0);
        }
        let op_code = match kind {
            Kind::Apply(Op::Check) | Kind::Reserve => 1,
            Kind::Apply(Op::Peek) => 2,
            Kind::Apply(Op::Force) => 3,
            Kind::Apply(Op::Refund) => 4,
            Kind::Apply(Op::Reset) => 5,
            Kind::Settle => 6,
        };
        let mut given = [None; MAX_POLICY_QUOTAS];
        for (slot, cost) in given.iter_mut().zip(resolved.iter().take(dimensions)) {
            *slot = Some(*cost);
        }
        Ok(self.call(
            self.redis_key(user_key),
            user_key,
            now_ns,
            op_code,
            kind,
            first,
            [0; MAX_POLICY_QUOTAS],
            given,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        key: Vec<u8>,
        user_key: &[u8],
        now_ns: Option<u64>,
        op_code: u8,
        kind: Kind,
        first: [u64; MAX_POLICY_QUOTAS],
        second: [u64; MAX_POLICY_QUOTAS],
        costs: [Option<u64>; MAX_POLICY_QUOTAS],
    ) -> RemoteCall {
        let now_ns = now_ns.map(|now| now.min(MAX_NOW_NS));
        let mut argv =
            Vec::with_capacity(10usize.saturating_add(self.rules.len().saturating_mul(16)));
        argv.push(op_code);
        argv.push(u8::from(now_ns.is_some()));
        argv.extend_from_slice(&now_ns.unwrap_or(0).to_be_bytes());
        for (a, b) in first.iter().zip(&second).take(self.rules.len()) {
            argv.extend_from_slice(&a.to_be_bytes());
            argv.extend_from_slice(&b.to_be_bytes());
        }
        RemoteCall {
            key,
            user_key: user_key.to_vec(),
            argv,
            kind,
            first,
            second,
            costs,
            dimensions: self.local.dimensions(),
            now_ns,
        }
    }

    /// What settling `reservation` with the `actual` costs (a dimension given `None` keeps its
    /// estimate) needs: for a reservation charged in the store, a call (refund what was not
    /// used, charge what exceeds the estimate, as [`Limiter::settle_at`]); for one of the
    /// outage policy, the decision of settling it here.
    ///
    /// # Errors
    /// [`ConfigError::ForeignReservation`] for another limiter's reservation;
    /// [`ConfigError::CostCount`].
    pub fn settle(
        &self,
        reservation: RemoteReservation,
        now_ns: Option<u64>,
        local_now_ns: u64,
        actual: &[Option<u64>],
    ) -> Result<SettlePlan, ConfigError> {
        if reservation.limiter_id != self.id {
            return Err(ConfigError::ForeignReservation);
        }
        let dimensions = self.local.dimensions();
        if actual.len() != dimensions {
            return Err(ConfigError::CostCount {
                expected: dimensions,
                given: actual.len(),
            });
        }
        let estimate = reservation.costs;
        match reservation.held {
            Held::Local(inner) => {
                self.local
                    .settle_at(local_now_ns, inner, actual)
                    .map(|mut decision| {
                        decision.reason = Reason::Fallback;
                        SettlePlan::Done(decision)
                    })
            }
            Held::Untracked => Ok(SettlePlan::Done(self.open_decision())),
            Held::Remote(key, user_key) => {
                let mut used = [0u64; MAX_POLICY_QUOTAS];
                let out = used.get_mut(..dimensions).ok_or(ConfigError::CostCount {
                    expected: dimensions,
                    given: actual.len(),
                })?;
                resolve_settle_costs(actual, estimate.get(..dimensions).unwrap_or(&[]), out)?;
                let mut refund = [0u64; MAX_POLICY_QUOTAS];
                let mut extra = [0u64; MAX_POLICY_QUOTAS];
                for ((r, e), dimension) in refund.iter_mut().zip(&mut extra).zip(&self.dimension_of)
                {
                    let estimate = estimate.get(*dimension).copied().unwrap_or(0);
                    let used = used.get(*dimension).copied().unwrap_or(0);
                    *r = estimate.saturating_sub(used);
                    *e = used.saturating_sub(estimate);
                }
                let mut given = [None; MAX_POLICY_QUOTAS];
                for (slot, cost) in given.iter_mut().zip(used.iter().take(dimensions)) {
                    *slot = Some(*cost);
                }
                Ok(SettlePlan::Remote(self.call(
                    key,
                    &user_key,
                    now_ns,
                    6,
                    Kind::Settle,
                    refund,
                    extra,
                    given,
                )))
            }
        }
    }

    /// Turns the script's reply to `call` (its three strings, as received) into the
    /// decision, core's own: core decides again on the record the script read, at the time it
    /// used, and the record the script wrote must be the one core writes.
    ///
    /// # Errors
    /// [`ReplyError`]: the reply is not this script's, or disagrees with core. Treat it as a
    /// store error ([`outage`](Self::outage)).
    pub fn decode<R: AsRef<[u8]>>(
        &self,
        call: &RemoteCall,
        reply: &[R],
    ) -> Result<RemoteDecided, ReplyError> {
        let [now, before, after] = reply else {
            return Err(ReplyError::Shape);
        };
        let now_ns = u64::from_be_bytes(now.as_ref().try_into().map_err(|_| ReplyError::Time)?)
            .min(MAX_NOW_NS);
        if call.now_ns.is_some_and(|given| given != now_ns) {
            return Err(ReplyError::Disagrees);
        }
        let buckets = StateBuckets::read(&self.rules, &self.fingerprint, before.as_ref(), now_ns);
        let decision = self.replay(&buckets, call);
        if buckets.record(&self.fingerprint) != after.as_ref() {
            return Err(ReplyError::Disagrees);
        }
        let reservation = (call.kind == Kind::Reserve && decision.allowed).then(|| {
            let mut costs = [0u64; MAX_POLICY_QUOTAS];
            for (slot, cost) in costs
                .iter_mut()
                .zip(call.costs.iter().take(call.dimensions))
            {
                *slot = cost.unwrap_or(0);
            }
            RemoteReservation {
                limiter_id: self.id,
                costs,
                dimensions: call.dimensions,
                held: Held::Remote(call.key.clone(), call.user_key.clone()),
            }
        });
        Ok(RemoteDecided {
            decision,
            reservation,
        })
    }

    /// Core's decision for `call` over `buckets`, as [`Limiter`] decides it.
    fn replay(&self, buckets: &StateBuckets<'_>, call: &RemoteCall) -> LimiterDecision {
        let len = self.rules.len();
        let first = |index: usize| call.first.get(index).copied().unwrap_or(0);
        let second = |index: usize| call.second.get(index).copied().unwrap_or(0);
        let now_ns = buckets.now_ns;
        let run_one = |cost: u64, op: Op| {
            buckets
                .run(0, now_ns, cost, op)
                .map_or(EMPTY_DECISION, |outcome| outcome.decision)
        };
        let checks = matches!(call.kind, Kind::Apply(Op::Check) | Kind::Reserve);
        let blocks = checks && self.block_ns != 0;
        if self.single {
            let decision = match call.kind {
                Kind::Apply(Op::Check) | Kind::Reserve => {
                    let decision = run_one(first(0), Op::Check);
                    // As `Limiter`: a refusal blocks the bucket, and shows it blocked.
                    if blocks
                        && refusal_blocks(&decision, first(0))
                        && buckets.block(0, now_ns, self.block_ns)
                    {
                        run_one(first(0), Op::Peek)
                    } else {
                        decision
                    }
                }
                Kind::Apply(op) => run_one(first(0), op),
                Kind::Settle => {
                    let refunded = run_one(first(0), Op::Refund);
                    if second(0) > 0 {
                        run_one(second(0), Op::Force)
                    } else {
                        refunded
                    }
                }
            };
            return LimiterDecision::single(decision, Reason::Limit);
        }
        let policy = match call.kind {
            Kind::Apply(Op::Check) | Kind::Reserve => check_all(buckets, len, now_ns, first)
                .and_then(|decision| {
                    let blocked = blocks
                        && !decision.allowed
                        && block_refusals(decision.decisions(), first, |index| {
                            buckets.block(index, now_ns, self.block_ns)
                        });
                    if blocked {
                        run_all(buckets, len, now_ns, Op::Peek, first)
                    } else {
                        Ok(decision)
                    }
                }),
            Kind::Apply(Op::Reset) => run_all(buckets, len, now_ns, Op::Reset, |_| 0)
                .and_then(|_| run_all(buckets, len, now_ns, Op::Peek, |_| 0)),
            Kind::Apply(op) => run_all(buckets, len, now_ns, op, first),
            Kind::Settle => run_all(buckets, len, now_ns, Op::Refund, first)
                .and_then(|_| run_all(buckets, len, now_ns, Op::Force, second)),
        };
        match policy {
            Ok(decision) => LimiterDecision::of_policy(decision, Reason::Limit),
            Err(TableFull) => LimiterDecision::from_parts(false, Reason::Limit, &[]),
        }
    }

    /// The decision of the outage policy for `call`, when the store could not be asked:
    /// [`OutagePolicy::Fallback`] charges this host's limiter at `local_now_ns` (its own
    /// clock); the others decide without counting.
    pub fn outage(&self, call: &RemoteCall, local_now_ns: u64) -> RemoteDecided {
        let costs = call.costs.get(..call.dimensions).unwrap_or(&[]);
        match (self.outage, call.kind) {
            (OutagePolicy::FailClosed, _) => RemoteDecided {
                decision: self.closed_decision(),
                reservation: None,
            },
            (OutagePolicy::FailOpen, kind) => RemoteDecided {
                decision: self.open_decision(),
                reservation: (kind == Kind::Reserve)
                    .then(|| self.reservation(call, Held::Untracked)),
            },
            // A settle whose call failed is lost; show the buckets as this host sees them.
            (OutagePolicy::Fallback, Kind::Settle) => {
                let zeros = [Some(0u64); MAX_POLICY_QUOTAS];
                let decision = self
                    .local
                    .apply_at(
                        call.user_key(),
                        local_now_ns,
                        zeros.get(..call.dimensions).unwrap_or(&[]),
                        Op::Peek,
                    )
                    .unwrap_or_else(|_| self.closed_decision());
                RemoteDecided {
                    decision: with_reason(decision, Reason::Fallback),
                    reservation: None,
                }
            }
            (OutagePolicy::Fallback, Kind::Reserve) => {
                match self.local.reserve_at(call.user_key(), local_now_ns, costs) {
                    Ok(reserved) => RemoteDecided {
                        decision: with_reason(reserved.decision, Reason::Fallback),
                        reservation: reserved
                            .reservation
                            .map(|inner| self.reservation(call, Held::Local(inner))),
                    },
                    Err(_) => RemoteDecided {
                        decision: self.closed_decision(),
                        reservation: None,
                    },
                }
            }
            (OutagePolicy::Fallback, Kind::Apply(op)) => {
                let decision = self
                    .local
                    .apply_at(call.user_key(), local_now_ns, costs, op)
                    .unwrap_or_else(|_| self.closed_decision());
                RemoteDecided {
                    decision: with_reason(decision, Reason::Fallback),
                    reservation: None,
                }
            }
        }
    }

    fn reservation(&self, call: &RemoteCall, held: Held) -> RemoteReservation {
        let mut costs = [0u64; MAX_POLICY_QUOTAS];
        for (slot, cost) in costs
            .iter_mut()
            .zip(call.costs.iter().take(call.dimensions))
        {
            *slot = cost.unwrap_or(0);
        }
        RemoteReservation {
            limiter_id: self.id,
            costs,
            dimensions: call.dimensions,
            held,
        }
    }

    /// Every quota admitting, full ([`Reason::FailedOpen`]).
    fn open_decision(&self) -> LimiterDecision {
        let mut decisions = [EMPTY_DECISION; MAX_POLICY_QUOTAS];
        for (slot, rule) in decisions.iter_mut().zip(&self.rules) {
            let burst = rule.quota().burst_cost();
            *slot = Decision {
                allowed: true,
                limit: burst,
                remaining: burst,
                retry_after_ns: 0,
                reset_after_ns: 0,
            };
        }
        let len = self.rules.len();
        LimiterDecision::from_parts(
            true,
            Reason::FailedOpen,
            decisions.get(..len).unwrap_or(&[]),
        )
    }

    /// Every quota denying for the configured wait ([`Reason::FailedClosed`]).
    fn closed_decision(&self) -> LimiterDecision {
        let mut decisions = [EMPTY_DECISION; MAX_POLICY_QUOTAS];
        for (slot, rule) in decisions.iter_mut().zip(&self.rules) {
            *slot = Decision {
                allowed: false,
                limit: rule.quota().burst_cost(),
                remaining: 0,
                retry_after_ns: self.outage_retry_after_ns,
                reset_after_ns: self.outage_retry_after_ns,
            };
        }
        let len = self.rules.len();
        LimiterDecision::from_parts(
            false,
            Reason::FailedClosed,
            decisions.get(..len).unwrap_or(&[]),
        )
    }

    /// The headers of `decision` (see [`Limiter::render_headers`]): the same bytes as the
    /// in-process limiter sends for the same decision.
    ///
    /// # Errors
    /// [`HeaderError::BufferTooSmall`] with the length needed.
    pub fn render_headers<'b>(
        &self,
        decision: &LimiterDecision,
        style: HeaderStyle,
        out: &'b mut [u8],
    ) -> Result<RenderedHeaders<'b>, HeaderError> {
        self.local.render_headers(decision, style, out)
    }

    /// The wait `Retry-After` describes (see [`Limiter::retry_after_ns`]).
    pub fn retry_after_ns(&self, decision: &LimiterDecision) -> Option<u64> {
        self.local.retry_after_ns(decision)
    }

    /// The 429 body of `decision` (see [`Limiter::render_429_body`]).
    ///
    /// # Errors
    /// [`HeaderError::BufferTooSmall`] with the length needed.
    pub fn render_429_body(
        &self,
        decision: &LimiterDecision,
        out: &mut [u8],
    ) -> Result<usize, HeaderError> {
        self.local.render_429_body(decision, out)
    }
}

fn with_reason(mut decision: LimiterDecision, reason: Reason) -> LimiterDecision {
    decision.reason = reason;
    decision
}

const EMPTY_DECISION: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    retry_after_ns: 0,
    reset_after_ns: 0,
};

/// A record's states, decided in place exactly as a keyed table decides (a quota that holds
/// nothing for the key is a full bucket, and stores a state only to hold less).
struct StateBuckets<'a> {
    rules: &'a [Rule],
    states: [Cell<Option<CellState>>; MAX_POLICY_QUOTAS],
    now_ns: u64,
}

impl<'a> StateBuckets<'a> {
    /// The states of `record` (any record not of this limiter reads as holding nothing).
    fn read(rules: &'a [Rule], fingerprint: &[u8; 8], record: &[u8], now_ns: u64) -> Self {
        let states: [Cell<Option<CellState>>; MAX_POLICY_QUOTAS] = Default::default();
        let expected = rules.len().saturating_mul(16).saturating_add(8);
        if record.len() == expected && record.get(..8) == Some(fingerprint.as_slice()) {
            let body = record.get(8..).unwrap_or(&[]);
            for (state, chunk) in states.iter().zip(body.chunks_exact(16)) {
                let (last, missing) = chunk.split_at(8);
                let last_ns = u64::from_be_bytes(last.try_into().unwrap_or([0; 8]));
                let missing = u64::from_be_bytes(missing.try_into().unwrap_or([0; 8]));
                if last_ns != ABSENT_NS {
                    state.set(Some(CellState { last_ns, missing }));
                }
            }
        }
        Self {
            rules,
            states,
            now_ns,
        }
    }

    /// Blocks bucket `index` for `block_ns` from `now_ns` ([`Rule::block`]); whether it wrote
    /// (a bucket it does not hold is full, and was not refused).
    fn block(&self, index: usize, now_ns: u64, block_ns: u64) -> bool {
        let (Some(rule), Some(slot)) = (self.rules.get(index), self.states.get(index)) else {
            return false;
        };
        let Some(next) = slot
            .get()
            .and_then(|held| rule.block(held, now_ns, block_ns))
        else {
            return false;
        };
        slot.set(Some(next));
        true
    }

    /// The record of the states ("" when no quota holds anything).
    fn record(&self, fingerprint: &[u8; 8]) -> Vec<u8> {
        let len = self.rules.len();
        if self
            .states
            .iter()
            .take(len)
            .all(|state| state.get().is_none())
        {
            return Vec::new();
        }
        let mut record = Vec::with_capacity(len.saturating_mul(16).saturating_add(8));
        record.extend_from_slice(fingerprint);
        for state in self.states.iter().take(len) {
            let (last_ns, missing) = match state.get() {
                Some(state) => (state.last_ns, state.missing),
                None => (ABSENT_NS, 0),
            };
            record.extend_from_slice(&last_ns.to_be_bytes());
            record.extend_from_slice(&missing.to_be_bytes());
        }
        record
    }
}

impl Buckets for StateBuckets<'_> {
    fn run(&self, index: usize, now_ns: u64, cost: u64, op: Op) -> Result<Outcome, TableFull> {
        let (Some(rule), Some(slot)) = (self.rules.get(index), self.states.get(index)) else {
            return Err(TableFull);
        };
        let held = slot.get();
        let outcome = rule.decide(held.unwrap_or(CellState::FULL), now_ns, cost, op);
        match outcome.next {
            Some(next) if held.is_some() || next.missing != 0 => {
                slot.set(Some(next));
                Ok(outcome)
            }
            _ => Ok(Outcome {
                decision: outcome.decision,
                next: None,
            }),
        }
    }

    fn charge(&self, index: usize, now_ns: u64, cost: u64) -> Result<Charge, TableFull> {
        let (Some(rule), Some(slot)) = (self.rules.get(index), self.states.get(index)) else {
            return Err(TableFull);
        };
        let Some(before) = slot.get() else {
            let fresh = rule.decide(CellState::FULL, now_ns, cost, Op::Check);
            return Ok(match fresh.next {
                Some(next) if next.missing != 0 => Charge::Deferred(fresh),
                _ => Charge::Unwritten(Outcome {
                    decision: fresh.decision,
                    next: None,
                }),
            });
        };
        let outcome = rule.decide(before, now_ns, cost, Op::Check);
        Ok(match outcome.next {
            Some(next) => {
                slot.set(Some(next));
                Charge::Committed { outcome, before }
            }
            None => Charge::Unwritten(outcome),
        })
    }

    fn undo(&self, index: usize, undo: Undo) {
        if let (Some(rule), Some(slot)) = (self.rules.get(index), self.states.get(index)) {
            if let Some(state) = slot.get() {
                slot.set(crate::policy::undo_outcome(rule, state, undo).next);
            }
        }
    }
}

/// The fingerprint of a limiter's rules in its records.
fn fingerprint(rules: &[Rule], single: bool) -> [u8; 8] {
    let mut hasher =
        siphasher::sip::SipHasher13::new_with_keys(0x6365_6c6c_6761_7465, 0x7265_6469_735f_7631);
    // The record's layout, unchanged since protocol 1: records written before an upgrade of
    // the arguments are read as they were, not reset.
    hasher.write_u8(RECORD_VERSION);
    hasher.write_u8(u8::from(single));
    for rule in rules {
        let quota = rule.quota();
        hasher.write_u8(u8::from(rule.refill() == Refill::Interval));
        hasher.write_u64(quota.rate_cost());
        hasher.write_u64(quota.period_ns());
        hasher.write_u64(quota.burst_cost());
    }
    hasher.finish().to_be_bytes()
}

const fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0'.wrapping_add(nibble),
        _ => b'a'.wrapping_add(nibble.wrapping_sub(10)),
    }
}

/// A number no other remote limiter in this process has.
fn next_remote_id() -> u64 {
    static NEXT: portable_atomic::AtomicU64 = portable_atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters, which the read-modify-write gives on its own.
    NEXT.fetch_add(1, portable_atomic::Ordering::Relaxed)
}

/// `digest` in lowercase hexadecimal; for [`SCRIPT_SHA1_HEX`] only, evaluated at compile time
/// (see [`sha1`]).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn hex(digest: [u8; 20]) -> [u8; 40] {
    let mut out = [0u8; 40];
    let mut index = 0;
    while index < 20 {
        let byte = digest[index];
        out[index * 2] = hex_digit(byte >> 4);
        out[index * 2 + 1] = hex_digit(byte & 0xf);
        index += 1;
    }
    out
}

/// SHA-1 (FIPS 180-4) of `data`, for [`SCRIPT_SHA1`] only: evaluated while core is compiled
/// (a `const` item), where an overflow or an index out of bounds is a compile error, never a
/// panic at run time. Checked against Redis's own `SCRIPT LOAD` by the Redis tests.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
const fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let len = data.len();
    // The message, 0x80, zeros, and the bit length in 8 bytes, to a multiple of 64 bytes.
    let total = (len + 8) / 64 * 64 + 64;
    let bit_len = (len as u64) * 8;
    let mut block = 0;
    while block < total {
        let mut w = [0u32; 80];
        let mut t = 0;
        while t < 16 {
            let mut word = 0u32;
            let mut k = 0;
            while k < 4 {
                let at = block + t * 4 + k;
                let byte = if at < len {
                    data[at]
                } else if at == len {
                    0x80
                } else if at >= total - 8 {
                    (bit_len >> ((total - 1 - at) * 8)) as u8
                } else {
                    0
                };
                word = (word << 8) | byte as u32;
                k += 1;
            }
            w[t] = word;
            t += 1;
        }
        while t < 80 {
            w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
            t += 1;
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        let mut t = 0;
        while t < 80 {
            let (f, k) = if t < 20 {
                ((b & c) | (!b & d), 0x5A82_7999)
            } else if t < 40 {
                (b ^ c ^ d, 0x6ED9_EBA1)
            } else if t < 60 {
                ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            } else {
                (b ^ c ^ d, 0xCA62_C1D6)
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(w[t]);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
            t += 1;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
        block += 64;
    }
    let mut out = [0u8; 20];
    let mut i = 0;
    while i < 5 {
        let bytes = h[i].to_be_bytes();
        out[i * 4] = bytes[0];
        out[i * 4 + 1] = bytes[1];
        out[i * 4 + 2] = bytes[2];
        out[i * 4 + 3] = bytes[3];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_known_texts() {
        assert_eq!(hex(sha1(b"")), *b"da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            *b"a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        // 56 bytes: the length no longer fits the first block.
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            *b"84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(SCRIPT_SHA1_HEX.len(), 40);
    }

    use crate::keyed::Seed;
    use crate::limiter::{LimiterOptions, LimiterQuota};
    use crate::quota::Quota;
    use alloc::vec;

    /// A fixed seed and a small local table: the fallback limiter of a table of the default
    /// 100,000 keys takes most of a minute to build under miri.
    fn small_options() -> LimiterOptions {
        let mut options = LimiterOptions::with_seed(Seed::new(1, 2));
        options.max_keys = 64;
        options
    }

    fn limiter(text: &str, remote: RemoteOptions<'_>) -> RemoteLimiter {
        let quotas: Vec<LimiterQuota<'_>> = text
            .split(';')
            .map(|rate| LimiterQuota::new(rate.trim().parse::<Quota>().unwrap()))
            .collect();
        RemoteLimiter::new(&quotas, small_options(), remote).unwrap()
    }

    /// What the script replies to a check of `cost` on a fresh key at `now_ns`, written by
    /// hand from the layout: the decode must accept exactly the record core would write.
    fn fresh_check_reply(limiter: &RemoteLimiter, now_ns: u64, missing: u64) -> [Vec<u8>; 3] {
        let mut after = limiter.fingerprint.to_vec();
        after.extend_from_slice(&now_ns.to_be_bytes());
        after.extend_from_slice(&missing.to_be_bytes());
        [now_ns.to_be_bytes().to_vec(), Vec::new(), after]
    }

    #[test]
    fn encodes_the_documented_layout() {
        let limiter = limiter("3/second", RemoteOptions::default());
        let params = limiter.params();
        assert_eq!(params.len(), 20 + 48);
        assert_eq!(&params[..4], &[2, 1, 0, 1]);
        // 3/second: emission 10^9 ticks per unit, 3 ticks per ns, capacity 3·10^9; no block.
        let field = |params: &[u8], i: usize| {
            u64::from_be_bytes(params[20 + 8 * i..28 + 8 * i].try_into().unwrap())
        };
        assert_eq!(
            (0..6).map(|i| field(params, i)).collect::<Vec<_>>(),
            [3_000_000_000, 1_000_000_000, 3, 1_000_000_000, 3, 0]
        );
        // A block of 2 s leaves 2·10^9 ns × 3 ticks per ns of debt.
        let blocking = super::tests::limiter("3/second", RemoteOptions::default())
            .with_block_ns(2_000_000_000);
        assert_eq!(field(blocking.params(), 5), 6_000_000_000);
        assert_eq!(blocking.local().block_ns(), 2_000_000_000);
        let call = limiter.encode(b"k", Some(5), &[None], Op::Check).unwrap();
        assert_eq!(call.key(), b"cellgate:{k}");
        let mut argv = vec![1u8, 1];
        argv.extend_from_slice(&5u64.to_be_bytes());
        argv.extend_from_slice(&1u64.to_be_bytes());
        argv.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(call.argv(), argv.as_slice());
        // A reset names no cost, whatever the dimensions.
        let two = RemoteLimiter::new(
            &[
                LimiterQuota::new(Quota::per_second(1).unwrap()),
                LimiterQuota {
                    dimension: 1,
                    ..LimiterQuota::new(Quota::per_minute(9).unwrap())
                },
            ],
            small_options(),
            RemoteOptions::default(),
        )
        .unwrap();
        assert_eq!(
            two.encode(b"k", Some(5), &[], Op::Reset).unwrap().argv()[0],
            5
        );
        assert!(two.encode(b"k", Some(5), &[], Op::Check).is_err());
        // Redis's time: the flag is 0; explicit times are clamped as tables clamp them.
        assert_eq!(
            limiter
                .encode(b"k", None, &[None], Op::Peek)
                .unwrap()
                .argv()[..2],
            [2, 0]
        );
        let late = limiter
            .encode(b"k", Some(u64::MAX), &[None], Op::Check)
            .unwrap();
        assert_eq!(late.argv()[2..10], (u64::MAX - 1).to_be_bytes());
    }

    #[test]
    fn decode_accepts_core_s_record_and_refuses_any_other() {
        let limiter = limiter("3/second", RemoteOptions::default());
        let call = limiter
            .encode(b"k", Some(7), &[Some(2)], Op::Check)
            .unwrap();
        let reply = fresh_check_reply(&limiter, 7, 2_000_000_000);
        let decided = limiter.decode(&call, &reply).unwrap();
        assert!(decided.decision.allowed);
        assert_eq!(decided.decision.reason, Reason::Limit);
        assert_eq!(decided.decision.decisions()[0].remaining, 1);
        // One tick more or less, another time, another shape: refused.
        let wrong = fresh_check_reply(&limiter, 7, 2_000_000_001);
        assert_eq!(limiter.decode(&call, &wrong), Err(ReplyError::Disagrees));
        let other_time = fresh_check_reply(&limiter, 8, 2_000_000_000);
        assert_eq!(
            limiter.decode(&call, &other_time),
            Err(ReplyError::Disagrees)
        );
        assert_eq!(limiter.decode(&call, &reply[..2]), Err(ReplyError::Shape));
        let short = [vec![0u8; 7], Vec::new(), Vec::new()];
        assert_eq!(limiter.decode(&call, &short), Err(ReplyError::Time));
        // A record of another configuration reads as empty.
        let other = self::limiter("4/second", RemoteOptions::default());
        let foreign = fresh_check_reply(&other, 7, 1);
        let peek = limiter.encode(b"k", Some(7), &[Some(1)], Op::Peek).unwrap();
        let seen = limiter
            .decode(&peek, &[foreign[0].clone(), foreign[2].clone(), Vec::new()])
            .unwrap();
        assert_eq!(seen.decision.decisions()[0].remaining, 3);
    }

    /// A settle's call names the user key of its reservation, which the outage fallback charges
    /// (it was empty: a failed settle under `Fallback` looked at the key "" on this host).
    #[test]
    fn a_settle_call_keeps_the_user_key() {
        let limiter = limiter("3/second", RemoteOptions::default());
        let call = limiter.encode_reserve(b"k", Some(7), &[Some(2)]).unwrap();
        let reply = fresh_check_reply(&limiter, 7, 2_000_000_000);
        let reserved = limiter.decode(&call, &reply).unwrap();
        let reservation = reserved.reservation.unwrap();
        assert!(reservation.is_remote());
        assert_eq!(reservation.costs(), &[2]);
        let plan = limiter.settle(reservation, Some(8), 8, &[Some(1)]).unwrap();
        let SettlePlan::Remote(settle) = plan else {
            panic!("a remote reservation settles remotely")
        };
        assert_eq!(settle.key(), b"cellgate:{k}");
        assert_eq!(settle.user_key(), b"k");
        // Refund 1, charge nothing more.
        assert_eq!(settle.argv()[0], 6);
        assert_eq!(settle.argv()[10..18], 1u64.to_be_bytes());
        assert_eq!(settle.argv()[18..26], 0u64.to_be_bytes());
    }

    #[test]
    fn outage_option_names_round_trip() {
        for policy in [
            OutagePolicy::Fallback,
            OutagePolicy::FailOpen,
            OutagePolicy::FailClosed,
        ] {
            assert_eq!(
                OutagePolicy::from_option_name(policy.option_name()),
                Some(policy)
            );
        }
        assert_eq!(OutagePolicy::option_name(OutagePolicy::FailOpen), "open");
        assert_eq!(OutagePolicy::from_option_name("fail_open"), None);
    }

    #[test]
    fn keys_options_and_outage() {
        assert_eq!(
            RemoteLimiter::new(
                &[LimiterQuota::new(Quota::per_second(1).unwrap())],
                small_options(),
                RemoteOptions {
                    prefix: "a{b}:",
                    ..RemoteOptions::default()
                }
            )
            .unwrap_err(),
            RemoteError::PrefixBrace
        );
        assert_eq!(
            RemoteLimiter::new(
                &[LimiterQuota::new(Quota::per_second(1).unwrap())],
                small_options(),
                RemoteOptions {
                    expiry_grace_ms: MAX_EXPIRY_GRACE_MS + 1,
                    ..RemoteOptions::default()
                }
            )
            .unwrap_err(),
            RemoteError::ExpiryGrace {
                given: MAX_EXPIRY_GRACE_MS + 1
            }
        );
        let secret = RemoteOptions {
            key_secret: Some([7; 16]),
            prefix: "p:",
            ..RemoteOptions::default()
        };
        let hashed = limiter("1/second", secret);
        let key = hashed.redis_key(b"203.0.113.7");
        assert_eq!(key.len(), 2 + 34);
        assert!(key.starts_with(b"p:{") && key.ends_with(b"}"));
        assert_eq!(key, limiter("5/minute", secret).redis_key(b"203.0.113.7"));
        assert_ne!(
            key,
            limiter(
                "1/second",
                RemoteOptions {
                    key_secret: Some([8; 16]),
                    ..secret
                }
            )
            .redis_key(b"203.0.113.7")
        );
        // The default outage policy is the local fallback: it counts on this host.
        let fallback = limiter("2/hour", RemoteOptions::default());
        assert_eq!(fallback.outage_policy(), OutagePolicy::Fallback);
        let call = fallback.encode(b"k", None, &[None], Op::Check).unwrap();
        let answers: Vec<bool> = (0..3)
            .map(|_| fallback.outage(&call, 1).decision.allowed)
            .collect();
        assert_eq!(answers, [true, true, false]);
        assert_eq!(fallback.outage(&call, 1).decision.reason, Reason::Fallback);
        let closed = limiter(
            "2/hour",
            RemoteOptions {
                outage: OutagePolicy::FailClosed,
                ..RemoteOptions::default()
            },
        );
        let denied = closed.outage(&call, 1).decision;
        assert_eq!(
            (denied.allowed, denied.reason),
            (false, Reason::FailedClosed)
        );
        assert_eq!(
            closed.retry_after_ns(&denied),
            Some(DEFAULT_OUTAGE_RETRY_AFTER_NS)
        );
        let open = limiter(
            "2/hour",
            RemoteOptions {
                outage: OutagePolicy::FailOpen,
                ..RemoteOptions::default()
            },
        );
        let admitted = open.outage(&call, 1).decision;
        assert_eq!(
            (
                admitted.allowed,
                admitted.reason,
                admitted.decisions()[0].remaining
            ),
            (true, Reason::FailedOpen, 2)
        );
    }
}
