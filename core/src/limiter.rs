//! [`Limiter`]: the product every runtime configures, once, in core. A keyed limiter over 1 to
//! [`MAX_POLICY_QUOTAS`] named quotas on named dimensions, with one verb
//! ([`Limiter::apply_at`]), the full-table answer ([`OnFull`]), and the headers and 429 body of
//! its decisions, so that C, Python and Node accept the same configuration and send the same
//! bytes for it.

use crate::clock::NoClock;
use crate::config::resolve_settle_costs;
use crate::config::{check_max_keys, check_names, default_quota_name, resolve_costs};
use crate::config::{ConfigError, QuotaName, DEFAULT_MAX_KEYS};
use crate::decision::Decision;
use crate::headers::{
    combined_retry_after_ns, render_429_body, render_headers, HeaderError, HeaderStyle,
    PolicyHeader, RenderedHeaders,
};
use crate::keyed::{
    KeyHash, KeyedDecision, KeyedLimiter, KeyedStats, OnFull, Reason, Seed, SlotGroup, TableFull,
};
use crate::policy::{
    block_refusals, KeyedPolicy, PolicyDecision, PolicyEntry, PolicyError, Reservation,
    EMPTY_DECISION, MAX_POLICY_QUOTAS,
};
use crate::quota::Quota;
use crate::rule::{Op, Refill};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

/// One quota of a [`Limiter`]: what it allows, where it is charged, how headers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LimiterQuota<'a> {
    /// The quota.
    pub quota: Quota,
    /// The name headers show; `None` gives [`default_quota_name`] (`"100-in-1min"`).
    pub name: Option<&'a str>,
    /// The dimension (the index of the cost in each call's costs) this quota is charged in.
    pub dimension: usize,
}

impl<'a> LimiterQuota<'a> {
    /// A quota on dimension 0 with its default name.
    pub const fn new(quota: Quota) -> Self {
        Self {
            quota,
            name: None,
            dimension: 0,
        }
    }
}

/// A [`Limiter`]'s options beside its quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterOptions {
    /// Refill mode. [`Refill::Interval`] needs a single quota.
    pub refill: Refill,
    /// Keys each quota's table has room for: `1..=MAX_MAX_KEYS`
    /// ([`DEFAULT_MAX_KEYS`] by default).
    pub max_keys: usize,
    /// The answer for a new key when a table has no room ([`OnFull::Deny`] by default).
    pub on_full: OnFull,
    /// The hash seed (random by default, under `std`): keep it secret.
    pub seed: Seed,
}

impl LimiterOptions {
    /// The defaults with the given seed: greedy refill, [`DEFAULT_MAX_KEYS`], [`OnFull::Deny`].
    pub const fn with_seed(seed: Seed) -> Self {
        Self {
            refill: Refill::Greedy,
            max_keys: DEFAULT_MAX_KEYS,
            on_full: OnFull::Deny,
            seed,
        }
    }
}

#[cfg(feature = "std")]
impl Default for LimiterOptions {
    /// The defaults with a random seed.
    fn default() -> Self {
        Self::with_seed(Seed::random())
    }
}

/// Where a limiter's buckets live: one table for a single quota on one dimension (the fast
/// path, any refill), or a keyed policy for several.
enum Engine<S> {
    Single(KeyedLimiter<S>),
    Several(Box<KeyedPolicy<usize, NoClock, S>>),
}

/// A keyed rate limiter over named quotas and dimensions: the product every binding wraps.
///
/// All configuration rules are checked by [`Limiter::new`], the only copy of them: names
/// (given or default; unique, non-empty, printable ASCII), dimensions (numbered densely from 0),
/// `max_keys` bounds, refill against the number of quotas. Memory is allocated there and
/// never after.
///
/// ```
/// use cellgate::{HeaderStyle, Limiter, LimiterOptions, LimiterQuota, Op, Quota, Seed};
///
/// let quotas = [
///     LimiterQuota::new("2/second".parse::<Quota>().unwrap()),
///     LimiterQuota::new("3/day".parse::<Quota>().unwrap()),
/// ];
/// let limiter = Limiter::new(&quotas, LimiterOptions::with_seed(Seed::new(1, 2))).unwrap();
/// let decision = limiter.apply_at(b"user:42", 0, &[None], Op::Check).unwrap();
/// assert!(decision.allowed);
/// let mut buf = [0u8; 256];
/// let headers = limiter.render_headers(&decision, HeaderStyle::Ietf, &mut buf).unwrap();
/// assert_eq!(
///     headers.value("RateLimit-Policy"),
///     Some(r#""2-in-1s";q=2;w=1,"3-in-1d";q=3;w=86400"#)
/// );
/// ```
///
/// `S` is the tables' slot storage: this process's heap (`Box<[SlotGroup]>`, [`Limiter::new`]), or
/// slots the caller provides, such as a mapping shared by every worker process on the host
/// ([`Limiter::with_tables`]).
pub struct Limiter<S = Box<[SlotGroup]>> {
    /// Tells this limiter's reservations from any other's.
    id: u64,
    quotas: Vec<Quota>,
    names: Vec<String>,
    dimensions: usize,
    max_keys: usize,
    refill: Refill,
    on_full: OnFull,
    /// Nanoseconds a key is blocked for after a denial; 0: never blocked.
    block_ns: u64,
    engine: Engine<S>,
}

impl<S> core::fmt::Debug for Limiter<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Limiter")
            .field("quotas", &self.quotas)
            .field("names", &self.names)
            .field("dimensions", &self.dimensions)
            .field("max_keys", &self.max_keys)
            .field("on_full", &self.on_full)
            .field("block_ns", &self.block_ns)
            .finish_non_exhaustive()
    }
}

/// A [`Limiter`]'s decision: every quota's, which one binds, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a LimiterDecision says whether the request was admitted"]
pub struct LimiterDecision {
    /// Whether the request was admitted (every quota admitted its cost, and all were charged).
    pub allowed: bool,
    /// Which path decided: the buckets (in process or in Redis: [`Reason::Limit`]), a full
    /// table under [`OnFull`], or for a [`RemoteLimiter`](crate::RemoteLimiter) the outage
    /// policy ([`Reason::FailedOpen`], [`Reason::FailedClosed`], [`Reason::Fallback`]).
    pub reason: Reason,
    /// The binding quota: when denied, the refusing quota with the longest wait; when allowed,
    /// the quota with the least remaining.
    pub binding: usize,
    decisions: [Decision; MAX_POLICY_QUOTAS],
    len: usize,
}

impl LimiterDecision {
    /// The binding quota's decision, with the limiter's `allowed`.
    #[inline]
    pub fn decision(&self) -> Decision {
        let mut decision = self
            .decisions()
            .get(self.binding)
            .copied()
            .unwrap_or(EMPTY_DECISION);
        decision.allowed = self.allowed;
        if self.allowed {
            decision.retry_after_ns = 0;
        }
        decision
    }

    /// Every quota's decision, in the limiter's quota order.
    #[inline]
    pub fn decisions(&self) -> &[Decision] {
        self.decisions.get(..self.len).unwrap_or(&[])
    }

    #[inline]
    pub(crate) fn single(decision: Decision, reason: Reason) -> Self {
        // All-zero (a plain memset) rather than eight copies of the decision.
        let mut decisions = [EMPTY_DECISION; MAX_POLICY_QUOTAS];
        if let Some(first) = decisions.first_mut() {
            *first = decision;
        }
        Self {
            allowed: decision.allowed,
            reason,
            binding: 0,
            decisions,
            len: 1,
        }
    }

    /// A decision of `len` quotas to fill in place: not allowed, every quota's decision
    /// empty, the binding quota the first.
    #[inline(always)]
    pub(crate) fn filling(len: usize, reason: Reason) -> Self {
        Self {
            allowed: false,
            reason,
            binding: 0,
            decisions: [EMPTY_DECISION; MAX_POLICY_QUOTAS],
            len,
        }
    }

    /// A decision over `decisions` (one per quota, at most [`MAX_POLICY_QUOTAS`]) with the
    /// binding quota chosen by [`PolicyDecision`]'s rule.
    pub(crate) fn from_parts(allowed: bool, reason: Reason, decisions: &[Decision]) -> Self {
        let mut all = [EMPTY_DECISION; MAX_POLICY_QUOTAS];
        let mut len = 0usize;
        for (slot, decision) in all.iter_mut().zip(decisions) {
            *slot = *decision;
            len = len.saturating_add(1);
        }
        let mut result = Self {
            allowed,
            reason,
            binding: 0,
            decisions: all,
            len,
        };
        result.binding = binding_of(&result);
        result
    }

    #[inline]
    pub(crate) fn of_policy(decision: PolicyDecision, reason: Reason) -> Self {
        let (allowed, binding) = (decision.allowed, decision.binding);
        let (decisions, len) = decision.into_parts();
        Self {
            allowed,
            reason,
            binding,
            decisions,
            len,
        }
    }
}

impl Limiter {
    /// Checks `quotas` and `options` by every rule of [`Limiter::new`] without allocating
    /// anything: for a caller that must know the configuration is valid before it provides
    /// tables ([`Limiter::with_tables`]), such as one that creates a shared mapping for them.
    ///
    /// # Errors
    /// [`Limiter::new`]'s, except `OutOfMemory`.
    pub fn check_config(
        quotas: &[LimiterQuota<'_>],
        options: &LimiterOptions,
    ) -> Result<(), ConfigError> {
        Checked::new(quotas, options).map(|_| ())
    }

    /// A limiter over `quotas` with `options`, its tables (`Box<[SlotGroup]>`, 32 bytes per
    /// key and quota) allocated and written here, so resident from the start. For tables
    /// committed only as keys touch them, and returned to the system on drop (what every
    /// binding uses), build it with `cellgate_host::in_process` instead: the same decisions.
    ///
    /// # Errors
    /// - [`ConfigError::NoQuotas`] when `quotas` is empty; [`ConfigError::TooManyNames`] above
    ///   [`MAX_POLICY_QUOTAS`];
    /// - [`ConfigError::EmptyName`], [`ConfigError::InvalidName`],
    ///   [`ConfigError::DuplicateName`] for the names headers would show (given or default:
    ///   `"10/s; 10/s"` repeats `"10-in-1s"`);
    /// - [`ConfigError::DimensionGap`] when the dimensions are not numbered densely from 0;
    /// - [`ConfigError::RefillNeedsOneQuota`] for [`Refill::Interval`] with several quotas;
    /// - [`ConfigError::MaxKeys`] outside `1..=MAX_MAX_KEYS`;
    /// - [`ConfigError::OutOfMemory`] when the tables cannot be allocated.
    pub fn new(quotas: &[LimiterQuota<'_>], options: LimiterOptions) -> Result<Self, ConfigError> {
        let checked = Checked::new(quotas, &options)?;
        let engine = match quotas {
            [only] if checked.dimensions == 1 => Engine::Single(
                KeyedLimiter::try_with_options(
                    only.quota,
                    options.refill,
                    checked.max_keys,
                    options.seed,
                    crate::clock::NoClock,
                )
                .map_err(|_| ConfigError::OutOfMemory)?,
            ),
            several => Engine::Several(Box::new(
                KeyedPolicy::new(policy_entries(several), checked.max_keys, options.seed)
                    .map_err(|_| ConfigError::OutOfMemory)?,
            )),
        };
        Ok(Self::build(quotas, &options, checked, engine))
    }
}

/// The entries of the keyed policy of several quotas: each quota's index is its name.
fn policy_entries<'q>(
    quotas: &'q [LimiterQuota<'_>],
) -> impl Iterator<Item = PolicyEntry<usize>> + 'q {
    quotas.iter().enumerate().map(|(index, quota)| PolicyEntry {
        name: index,
        quota: quota.quota,
        dimension: quota.dimension,
    })
}

/// A configuration that passed every rule of [`Limiter::new`].
struct Checked {
    names: Vec<String>,
    dimensions: usize,
    max_keys: usize,
}

impl Checked {
    /// Checks every configuration rule (see [`Limiter::new`]'s errors, all but
    /// `OutOfMemory`).
    fn new(quotas: &[LimiterQuota<'_>], options: &LimiterOptions) -> Result<Self, ConfigError> {
        if quotas.is_empty() {
            return Err(ConfigError::NoQuotas);
        }
        let defaults: Vec<QuotaName> = quotas
            .iter()
            .map(|quota| default_quota_name(&quota.quota))
            .collect();
        let names: Vec<&str> = quotas
            .iter()
            .zip(&defaults)
            .map(|(quota, default)| quota.name.unwrap_or(default.as_str()))
            .collect();
        check_names(&names)?;
        let dimensions = quotas
            .iter()
            .map(|quota| quota.dimension.saturating_add(1))
            .max()
            .unwrap_or(1);
        if let Some(dimension) =
            (0..dimensions).find(|&d| !quotas.iter().any(|quota| quota.dimension == d))
        {
            return Err(ConfigError::DimensionGap { dimension });
        }
        if options.refill == Refill::Interval && quotas.len() > 1 {
            return Err(ConfigError::RefillNeedsOneQuota);
        }
        let max_keys = check_max_keys(u64::try_from(options.max_keys).unwrap_or(u64::MAX))?;
        Ok(Self {
            names: names.into_iter().map(String::from).collect(),
            dimensions,
            max_keys,
        })
    }
}

impl<S: AsRef<[SlotGroup]>> Limiter<S> {
    /// A limiter over tables the caller built, one per quota in quota order, for slots that
    /// live elsewhere than this process's heap (a mapping shared by every worker process on
    /// the host, which `cellgate-host` builds). The configuration rules are
    /// [`Limiter::new`]'s; the tables keep their own options, such as
    /// [`KeyedLimiter::with_claim_recovery`].
    ///
    /// Table `i` must have quota `i`'s quota, `options.refill`, `options.seed`, and at least
    /// `slot_count_for(options.max_keys)` slots. (A single quota on one dimension is decided
    /// by its table alone; several by a keyed policy over the tables.)
    ///
    /// # Errors
    /// [`Limiter::new`]'s, except `OutOfMemory`; [`ConfigError::TableMismatch`] naming the
    /// first table that does not fit its quota (or the first quota without a table, or the
    /// first table beyond the quotas).
    pub fn with_tables(
        quotas: &[LimiterQuota<'_>],
        options: LimiterOptions,
        tables: impl IntoIterator<Item = KeyedLimiter<S>>,
    ) -> Result<Self, ConfigError> {
        let checked = Checked::new(quotas, &options)?;
        let mut tables: Vec<KeyedLimiter<S>> = tables.into_iter().collect();
        let seed = options.seed;
        let slots = crate::keyed::slot_count_for(checked.max_keys);
        let refill = options.refill;
        for (index, quota) in quotas.iter().enumerate() {
            let fits = tables.get(index).is_some_and(|table| {
                table.quota() == quota.quota
                    && table.rule().refill() == refill
                    && table.seed() == seed
                    && table.slot_count() >= slots
            });
            if !fits {
                return Err(ConfigError::TableMismatch { index });
            }
        }
        if tables.len() != quotas.len() {
            return Err(ConfigError::TableMismatch {
                index: quotas.len(),
            });
        }
        let engine = if quotas.len() == 1 && checked.dimensions == 1 {
            match tables.pop() {
                Some(table) => Engine::Single(table),
                None => return Err(ConfigError::TableMismatch { index: 0 }),
            }
        } else {
            let policy = KeyedPolicy::from_tables(policy_entries(quotas), tables, NoClock)
                .map_err(|error| match error {
                    PolicyError::TableMismatch { index } => ConfigError::TableMismatch { index },
                    _ => ConfigError::TableMismatch { index: 0 },
                })?;
            Engine::Several(Box::new(policy))
        };
        Ok(Self::build(quotas, &options, checked, engine))
    }

    fn build(
        quotas: &[LimiterQuota<'_>],
        options: &LimiterOptions,
        checked: Checked,
        engine: Engine<S>,
    ) -> Self {
        Self {
            id: next_limiter_id(),
            quotas: quotas.iter().map(|quota| quota.quota).collect(),
            names: checked.names,
            dimensions: checked.dimensions,
            max_keys: checked.max_keys,
            refill: options.refill,
            on_full: options.on_full,
            block_ns: 0,
            engine,
        }
    }

    /// This limiter, blocking a key for `block_ns` after each denial of a
    /// [`check`](Op::Check) (or a reservation): rate-limiter-flexible's `blockDuration`,
    /// express-rate-limit users' "ban". 0 (the default) never blocks.
    ///
    /// Each quota that denied is left empty and `block_ns` in debt ([`Rule::block`]): every
    /// request of the key is denied for at least `block_ns`, with a `retry_after` that says
    /// so, and the bucket then refills from empty (the first request fits one emission
    /// interval after the block, as after a spent burst, not a fresh burst). The denials a
    /// block answers do not extend it, and a denial that waiting can never end (a cost above
    /// the burst) blocks nothing. A block is stored in the key's buckets, so it holds in every
    /// tier that stores them (this process, the host-wide table) for every process using the
    /// limiter with the same `block_ns`.
    ///
    /// [`Rule::block`]: crate::Rule::block
    #[must_use]
    pub fn with_block_ns(mut self, block_ns: u64) -> Self {
        self.set_block_ns(block_ns);
        self
    }

    /// [`with_block_ns`](Self::with_block_ns) in place (for a limiter held inside another).
    pub(crate) fn set_block_ns(&mut self, block_ns: u64) {
        self.block_ns = block_ns;
    }

    /// How long a denial blocks a key ([`with_block_ns`](Self::with_block_ns)); 0: never.
    pub fn block_ns(&self) -> u64 {
        self.block_ns
    }

    /// The quotas, in order.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// The names headers show, in quota order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// How many costs a call takes: one per dimension.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The `max_keys` each quota's table was sized for.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The refill mode.
    pub fn refill(&self) -> Refill {
        self.refill
    }

    /// The full-table policy.
    pub fn on_full(&self) -> OnFull {
        self.on_full
    }

    /// The counters of each quota's table, in quota order.
    pub fn stats(&self) -> Vec<KeyedStats> {
        match &self.engine {
            Engine::Single(table) => alloc::vec![table.stats()],
            Engine::Several(policy) => policy.stats().collect(),
        }
    }

    /// Applies `op` to `key` at `now_ns` with the costs the caller named (`costs[d]` for
    /// dimension `d`, `None` where none was named; see [`resolve_costs`]). A new key that a
    /// table cannot place is answered under the limiter's [`OnFull`], never an error.
    ///
    /// [`Op::Reset`] uses no cost and ignores `costs` (any length, `&[]` included).
    ///
    /// # Errors
    /// [`ConfigError::CostCount`] unless `costs` has one entry per dimension;
    /// [`ConfigError::MissingCost`] when several dimensions are configured and one has no
    /// cost. Nothing is charged then.
    #[inline(always)]
    pub fn apply_at(
        &self,
        key: &[u8],
        now_ns: u64,
        costs: &[Option<u64>],
        op: Op,
    ) -> Result<LimiterDecision, ConfigError> {
        if op == Op::Reset {
            // A reset uses no cost: none need be named, whatever the dimensions.
            let zeros = [0u64; MAX_POLICY_QUOTAS];
            let zeros = zeros.get(..self.dimensions).unwrap_or_default();
            return Ok(self.apply_resolved(key, now_ns, zeros, op));
        }
        let mut resolved = [0u64; MAX_POLICY_QUOTAS];
        let resolved = self.resolve(costs, &mut resolved)?;
        Ok(self.apply_resolved(key, now_ns, resolved, op))
    }

    /// `costs` completed by [`resolve_costs`] into `out`.
    #[inline]
    fn resolve<'o>(
        &self,
        costs: &[Option<u64>],
        out: &'o mut [u64; MAX_POLICY_QUOTAS],
    ) -> Result<&'o [u64], ConfigError> {
        let count = ConfigError::CostCount {
            expected: self.dimensions,
            given: costs.len(),
        };
        if costs.len() != self.dimensions {
            return Err(count);
        }
        let resolved = out.get_mut(..costs.len()).ok_or(count)?;
        resolve_costs(costs, resolved)?;
        Ok(resolved)
    }

    /// Inlined, and each op calls the table's own specialised operation, so that a binding's
    /// check over one quota is the table's check (the same instructions as
    /// `KeyedLimiter::check_at`) plus the decision's assembly; a full table, rare, takes the
    /// general path.
    #[inline(always)]
    fn apply_resolved(&self, key: &[u8], now_ns: u64, costs: &[u64], op: Op) -> LimiterDecision {
        match &self.engine {
            Engine::Single(table) => {
                let cost = costs.first().copied().unwrap_or(0);
                let answer = self.apply_single(table, key, now_ns, cost, op);
                LimiterDecision::single(answer.decision, answer.reason)
            }
            Engine::Several(policy) => {
                let decision = self.apply_policy(policy, key, now_ns, costs, op);
                // A blocking limiter's refused check blocks (out of line, after the decision,
                // so that the common path only tests).
                if op == Op::Check
                    && self.block_ns != 0
                    && !decision.allowed
                    && decision.reason == Reason::Limit
                {
                    if let Some(blocked) =
                        self.policy_block(policy, key, now_ns, costs, decision.decisions())
                    {
                        return LimiterDecision::of_policy(blocked, Reason::Limit);
                    }
                }
                decision
            }
        }
    }

    /// The fast path of a limiter of one quota on one dimension: what
    /// [`apply_at`](Self::apply_at) decides (`cost` as its one entry of `costs`), without
    /// assembling a [`LimiterDecision`]: its one quota's decision and the reason. `None` for a
    /// limiter of several quotas or dimensions (use `apply_at`). For bindings whose check is
    /// measured per nanosecond; the decisions are the same.
    #[inline(always)]
    pub fn apply_one_at(
        &self,
        key: &[u8],
        now_ns: u64,
        cost: Option<u64>,
        op: Op,
    ) -> Option<KeyedDecision> {
        match &self.engine {
            Engine::Single(table) => {
                let cost = cost.unwrap_or(crate::config::DEFAULT_COST);
                let cost = if op == Op::Reset { 0 } else { cost };
                Some(self.apply_single(table, key, now_ns, cost, op))
            }
            Engine::Several(_) => None,
        }
    }

    /// One table's operation: each op calls the table's own specialised operation; a new key
    /// the full table refused is answered from that refusal (counted once), not retried.
    #[inline(always)]
    fn apply_single(
        &self,
        table: &KeyedLimiter<S>,
        key: &[u8],
        now_ns: u64,
        cost: u64,
        op: Op,
    ) -> KeyedDecision {
        let hash = table.hash_key(key);
        let placed = match op {
            Op::Check => table
                .check_hashed_at(hash, now_ns, cost)
                .map(|decision| self.blocked_if_denied(table, hash, key, now_ns, cost, decision)),
            Op::Peek => Ok(table.peek_at(key, now_ns, cost)),
            Op::Force => table
                .apply_outcome(hash, now_ns, cost, Op::Force)
                .map(|outcome| outcome.decision),
            Op::Refund => Ok(table.refund_at(key, now_ns, cost)),
            Op::Reset => {
                table.reset_at(key, now_ns);
                Ok(table.peek_at(key, now_ns, 0))
            }
        };
        match placed {
            Ok(decision) => KeyedDecision {
                decision,
                reason: Reason::Limit,
            },
            Err(TableFull) => table.table_full_decision(hash, now_ns, cost, op, self.on_full),
        }
    }

    /// Checks the `estimate` (costs as for [`apply_at`](Self::apply_at)) for `key` and, when
    /// admitted, returns a reservation to settle with the actual costs once they are known
    /// ([`settle_at`](Self::settle_at)). A new key admitted by [`OnFull::AllowUntracked`]
    /// holds an untracked reservation, whose settle charges nothing.
    ///
    /// # Errors
    /// As [`apply_at`](Self::apply_at).
    pub fn reserve_at(
        &self,
        key: &[u8],
        now_ns: u64,
        estimate: &[Option<u64>],
    ) -> Result<LimiterReserved, ConfigError> {
        let mut resolved = [0u64; MAX_POLICY_QUOTAS];
        let estimate = self.resolve(estimate, &mut resolved)?;
        let mut costs = [0u64; MAX_POLICY_QUOTAS];
        for (slot, cost) in costs.iter_mut().zip(estimate) {
            *slot = *cost;
        }
        let (decision, held) = match &self.engine {
            Engine::Single(table) => {
                let hash = table.hash_key(key);
                let cost = estimate.first().copied().unwrap_or(0);
                let mut answer = table.apply_hashed_at(hash, now_ns, cost, Op::Check, self.on_full);
                if answer.reason == Reason::Limit {
                    answer.decision =
                        self.blocked_if_denied(table, hash, key, now_ns, cost, answer.decision);
                }
                let decision = LimiterDecision::single(answer.decision, answer.reason);
                (decision, Held::Single(hash))
            }
            Engine::Several(policy) => match policy.reserve_at(key, now_ns, estimate) {
                Ok(reserved) => {
                    let blocked = if reserved.decision.allowed || self.block_ns == 0 {
                        None
                    } else {
                        let decisions = reserved.decision.decisions();
                        self.policy_block(policy, key, now_ns, estimate, decisions)
                    };
                    let decision = blocked.unwrap_or(reserved.decision);
                    let decision = LimiterDecision::of_policy(decision, Reason::Limit);
                    match reserved.reservation {
                        Some(reservation) => (decision, Held::Several(reservation)),
                        None => (decision, Held::Untracked),
                    }
                }
                Err(_) => (
                    self.policy_table_full(policy, key, now_ns, estimate, Op::Check),
                    Held::Untracked,
                ),
            },
        };
        let held = if decision.reason == Reason::Limit {
            held
        } else {
            Held::Untracked
        };
        let reservation = decision.allowed.then_some(LimiterReservation {
            limiter_id: self.id,
            costs,
            dimensions: estimate.len(),
            held,
        });
        Ok(LimiterReserved {
            decision,
            reservation,
        })
    }

    /// Settles `reservation` with the `actual` costs (a dimension given `None` keeps its
    /// estimate, see [`resolve_settle_costs`]): refunds what was not used and charges what
    /// exceeds the estimate, regardless (possibly into debt). The reservation is consumed, so
    /// it cannot be settled twice. The decision shows every quota after; `allowed` is false
    /// when some quota is now in debt.
    ///
    /// # Errors
    /// [`ConfigError::ForeignReservation`] for a reservation another limiter made (nothing is
    /// charged); [`ConfigError::CostCount`] unless `actual` has one entry per dimension.
    pub fn settle_at(
        &self,
        now_ns: u64,
        reservation: LimiterReservation,
        actual: &[Option<u64>],
    ) -> Result<LimiterDecision, ConfigError> {
        if reservation.limiter_id != self.id {
            return Err(ConfigError::ForeignReservation);
        }
        if actual.len() != self.dimensions {
            return Err(ConfigError::CostCount {
                expected: self.dimensions,
                given: actual.len(),
            });
        }
        let mut resolved = [0u64; MAX_POLICY_QUOTAS];
        let out = resolved
            .get_mut(..actual.len())
            .ok_or(ConfigError::CostCount {
                expected: self.dimensions,
                given: actual.len(),
            })?;
        resolve_settle_costs(actual, reservation.costs(), out)?;
        let actual = &*out;
        match (&self.engine, reservation.held) {
            (Engine::Single(table), Held::Single(hash)) => {
                let estimate = reservation.costs.first().copied().unwrap_or(0);
                let used = actual.first().copied().unwrap_or(0);
                let refund = estimate.saturating_sub(used);
                let extra = used.saturating_sub(estimate);
                let mut answer =
                    table.apply_hashed_at(hash, now_ns, refund, Op::Refund, self.on_full);
                if extra > 0 {
                    answer = table.apply_hashed_at(hash, now_ns, extra, Op::Force, self.on_full);
                }
                Ok(LimiterDecision::single(answer.decision, answer.reason))
            }
            (Engine::Several(policy), Held::Several(inner)) => {
                match policy.settle_at(now_ns, inner, actual) {
                    Ok(decision) => Ok(LimiterDecision::of_policy(decision, Reason::Limit)),
                    Err(PolicyError::CostCount { expected, given }) => {
                        Err(ConfigError::CostCount { expected, given })
                    }
                    // The key lost its slots and a table is full: nothing more can be stored.
                    Err(_) => {
                        let mut decision = self.untracked_view(now_ns);
                        decision.reason = Reason::TableFull;
                        Ok(decision)
                    }
                }
            }
            // Untracked: nothing was stored, so nothing is settled; show a fresh key.
            _ => Ok(self.untracked_view(now_ns)),
        }
    }

    /// The decision shown after settling an untracked reservation: each quota as a fresh key
    /// with nothing charged.
    fn untracked_view(&self, now_ns: u64) -> LimiterDecision {
        let mut decision = LimiterDecision {
            allowed: true,
            reason: Reason::Untracked,
            binding: 0,
            decisions: [EMPTY_DECISION; MAX_POLICY_QUOTAS],
            len: self.quotas.len().min(MAX_POLICY_QUOTAS),
        };
        match &self.engine {
            Engine::Single(table) => {
                if let Some(slot) = decision.decisions.first_mut() {
                    *slot = table.untracked_decision(now_ns, 0, Op::Peek, false);
                }
            }
            Engine::Several(policy) => {
                for (slot, table) in decision.decisions.iter_mut().zip(policy.tables()) {
                    *slot = table.untracked_decision(now_ns, 0, Op::Peek, false);
                }
            }
        }
        decision.binding = binding_of(&decision);
        decision
    }

    #[inline]
    fn apply_policy(
        &self,
        policy: &KeyedPolicy<usize, NoClock, S>,
        key: &[u8],
        now_ns: u64,
        costs: &[u64],
        op: Op,
    ) -> LimiterDecision {
        let outcome = match op {
            Op::Check => {
                // Filled in place (see `policy::check_into`).
                let mut decision = LimiterDecision::filling(policy.len(), Reason::Limit);
                return match policy.check_into(key, now_ns, costs, &mut decision.decisions) {
                    Ok(allowed) => {
                        decision.allowed = allowed;
                        decision.binding = binding_of(&decision);
                        decision
                    }
                    // The costs were resolved above, so only a full table is left.
                    Err(_) => self.policy_table_full(policy, key, now_ns, costs, op),
                };
            }
            Op::Peek => policy.peek_at(key, now_ns, costs),
            Op::Force => policy.force_at(key, now_ns, costs),
            Op::Refund => policy.refund_at(key, now_ns, costs),
            Op::Reset => {
                policy.reset_at(key, now_ns);
                let zeros = [0u64; MAX_POLICY_QUOTAS];
                policy.peek_at(key, now_ns, zeros.get(..costs.len()).unwrap_or(&[]))
            }
        };
        match outcome {
            Ok(decision) => LimiterDecision::of_policy(decision, Reason::Limit),
            // The costs were resolved above, so only a full table is left.
            Err(_) => self.policy_table_full(policy, key, now_ns, costs, op),
        }
    }

    /// A check's `decision` for `key` in a table of one quota, after blocking the key when it
    /// was denied and [`block_ns`](Self::block_ns) is set: then the decision shows the block.
    #[inline(always)]
    fn blocked_if_denied(
        &self,
        table: &KeyedLimiter<S>,
        hash: KeyHash,
        key: &[u8],
        now_ns: u64,
        cost: u64,
        decision: Decision,
    ) -> Decision {
        // An admission (the common case) is decided by the decision alone, in a register.
        if !crate::rule::refusal_blocks(&decision, cost) || self.block_ns == 0 {
            return decision;
        }
        self.block_single(table, hash, key, now_ns, cost)
            .unwrap_or(decision)
    }

    /// The rare part of [`blocked_if_denied`](Self::blocked_if_denied), out of the hot path.
    #[inline(never)]
    fn block_single(
        &self,
        table: &KeyedLimiter<S>,
        hash: KeyHash,
        key: &[u8],
        now_ns: u64,
        cost: u64,
    ) -> Option<Decision> {
        table
            .block_hashed_at(hash, now_ns, self.block_ns)
            .then(|| table.peek_at(key, now_ns, cost))
    }

    /// After a keyed policy's refused check for `key` (each quota's `decisions`), on a limiter
    /// that blocks:
    /// blocks each quota that denied, and returns the decision showing the blocks (`None`
    /// when none was written). Out of line: only denials of a blocking limiter come here.
    #[cold]
    #[inline(never)]
    fn policy_block(
        &self,
        policy: &KeyedPolicy<usize, NoClock, S>,
        key: &[u8],
        now_ns: u64,
        costs: &[u64],
        decisions: &[Decision],
    ) -> Option<PolicyDecision> {
        let hash = policy.hash_key(key);
        let tables = policy.tables();
        let cost = |index: usize| {
            let entry = policy.entries().nth(index);
            entry
                .and_then(|entry| costs.get(entry.dimension))
                .copied()
                .unwrap_or(0)
        };
        let blocked = block_refusals(decisions, cost, |index| {
            tables
                .get(index)
                .is_some_and(|table| table.block_hashed_at(hash, now_ns, self.block_ns))
        });
        if !blocked {
            return None;
        }
        policy.peek_at(key, now_ns, costs).ok()
    }

    /// A keyed policy's answer when a table had no room for a new key: under `Deny`, every
    /// quota denies with the wait until every table that lacks the key can place it; under
    /// `AllowUntracked`, each quota decides as for a fresh key (the first table counts the
    /// admission), and nothing is stored.
    fn policy_table_full(
        &self,
        policy: &KeyedPolicy<usize, NoClock, S>,
        key: &[u8],
        now_ns: u64,
        costs: &[u64],
        op: Op,
    ) -> LimiterDecision {
        let hash = policy.hash_key(key);
        let tables = policy.tables();
        let mut decision = LimiterDecision {
            allowed: false,
            reason: Reason::TableFull,
            binding: 0,
            decisions: [EMPTY_DECISION; MAX_POLICY_QUOTAS],
            len: tables.len().min(MAX_POLICY_QUOTAS),
        };
        match self.on_full {
            OnFull::AllowUntracked => {
                let mut allowed = true;
                for (index, (slot, table)) in decision.decisions.iter_mut().zip(tables).enumerate()
                {
                    let cost = costs.get(index).copied().unwrap_or(0);
                    *slot = table.untracked_decision(now_ns, cost, op, index == 0);
                    allowed &= cost == 0 || slot.allowed;
                }
                decision.allowed = allowed;
                decision.reason = Reason::Untracked;
                decision.binding = binding_of(&decision);
            }
            _ => {
                let retry_after_ns = tables
                    .iter()
                    .filter(|table| !table.holds(hash))
                    .map(|table| table.until_reclaimable_ns(hash, now_ns))
                    .max()
                    .unwrap_or(1);
                for (slot, quota) in decision.decisions.iter_mut().zip(&self.quotas) {
                    *slot = Decision {
                        allowed: false,
                        limit: quota.burst_cost(),
                        remaining: 0,
                        retry_after_ns,
                        reset_after_ns: retry_after_ns,
                    };
                }
            }
        }
        decision
    }

    /// Renders the rate-limit headers of `decision` (made by this limiter) in `style`, one
    /// item per quota under the limiter's names; see [`render_headers`] for the bytes.
    ///
    /// # Errors
    /// [`HeaderError::BufferTooSmall`] with the exact length needed (nothing usable is
    /// written then).
    pub fn render_headers<'b>(
        &self,
        decision: &LimiterDecision,
        style: HeaderStyle,
        out: &'b mut [u8],
    ) -> Result<RenderedHeaders<'b>, HeaderError> {
        self.with_policy_headers(decision, |policies| render_headers(style, policies, out))
    }

    /// Renders the per-dimension headers of `decision` (LLM API style:
    /// `anthropic-ratelimit-input-tokens-remaining`, `x-ratelimit-reset-requests`) under the
    /// limiter's names; see [`render_dimension_headers`](crate::render_dimension_headers).
    ///
    /// # Errors
    /// As `render_dimension_headers`: a name that cannot be part of a header name (only ASCII
    /// letters, digits, `-` and `_`; default names such as `"100-in-1min"` qualify), or
    /// [`HeaderError::BufferTooSmall`].
    pub fn render_dimension_headers<'b>(
        &self,
        decision: &LimiterDecision,
        style: crate::headers::DimensionStyle<'_>,
        out: &'b mut [u8],
    ) -> Result<crate::headers::DimensionHeaders<'b>, HeaderError> {
        self.with_policy_headers(decision, |policies| {
            crate::headers::render_dimension_headers(style, policies, out)
        })
    }

    /// The wait `Retry-After` describes for `decision`: `None` when it was admitted, else the
    /// longest wait among the denying quotas ([`NEVER`](crate::NEVER) if any is).
    pub fn retry_after_ns(&self, decision: &LimiterDecision) -> Option<u64> {
        self.with_policy_headers(decision, combined_retry_after_ns)
    }

    /// Writes the JSON body of the 429 answer to `decision` into `out` (see
    /// [`render_429_body`]); the same bytes in every runtime.
    ///
    /// # Errors
    /// [`HeaderError::BufferTooSmall`] with the exact length needed.
    pub fn render_429_body(
        &self,
        decision: &LimiterDecision,
        out: &mut [u8],
    ) -> Result<usize, HeaderError> {
        render_429_body(self.retry_after_ns(decision).unwrap_or(0), out)
    }

    /// Runs `f` over the header descriptions of `decision`: one per quota, in order.
    fn with_policy_headers<R>(
        &self,
        decision: &LimiterDecision,
        f: impl FnOnce(&[PolicyHeader<'_>]) -> R,
    ) -> R {
        let Some(&first) = self.quotas.first() else {
            return f(&[]);
        };
        let blank = PolicyHeader {
            name: "",
            quota: first,
            decision: EMPTY_DECISION,
        };
        let mut policies = [blank; MAX_POLICY_QUOTAS];
        let mut len = 0usize;
        for (((slot, name), quota), entry) in policies
            .iter_mut()
            .zip(&self.names)
            .zip(&self.quotas)
            .zip(decision.decisions())
        {
            *slot = PolicyHeader {
                name,
                quota: *quota,
                decision: *entry,
            };
            len = len.saturating_add(1);
        }
        f(policies.get(..len).unwrap_or(&[]))
    }
}

/// The binding quota of a decision assembled here, by [`PolicyDecision`]'s rule.
fn binding_of(decision: &LimiterDecision) -> usize {
    crate::policy::binding_index(decision.allowed, decision.decisions())
}

/// What a [`LimiterReservation`] holds on to.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Held {
    /// The key's hash in the single table.
    Single(KeyHash),
    /// The keyed policy's reservation.
    Several(Reservation),
    /// Nothing: admitted untracked by [`OnFull::AllowUntracked`].
    Untracked,
}

/// An admitted estimate, to settle once with the actual costs on the limiter that made it.
/// Not `Clone`: settling consumes it, so it cannot be settled twice.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an admitted reservation must be settled"]
pub struct LimiterReservation {
    limiter_id: u64,
    costs: [u64; MAX_POLICY_QUOTAS],
    dimensions: usize,
    held: Held,
}

impl LimiterReservation {
    /// The estimate reserved on each dimension.
    pub fn costs(&self) -> &[u64] {
        self.costs.get(..self.dimensions).unwrap_or(&[])
    }

    /// Whether nothing was stored for it (admitted by [`OnFull::AllowUntracked`]).
    pub fn is_untracked(&self) -> bool {
        self.held == Held::Untracked
    }
}

/// The answer to [`Limiter::reserve_at`]: the decision, and the reservation when admitted.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an admitted reservation must be settled"]
pub struct LimiterReserved {
    /// The decision of the check that reserved the estimate.
    pub decision: LimiterDecision,
    /// The reservation to settle, when admitted; `None` when refused (nothing was charged).
    pub reservation: Option<LimiterReservation>,
}

/// A number no other limiter in this process has.
fn next_limiter_id() -> u64 {
    static NEXT: portable_atomic::AtomicU64 = portable_atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness matters, which the read-modify-write gives on its own.
    NEXT.fetch_add(1, portable_atomic::Ordering::Relaxed)
}
