//! [`NativeLimiter`]: one quota per key, over core's [`KeyedLimiter`].

use cellgate::{Clock, Decision, KeyedLimiter, Quota, Refill, Seed, Slot, TableFull};
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use napi_derive::napi;

use crate::clock::{NativeManualClock, NodeClock};
use crate::error::range_error;
use crate::headers::{header_style, render};
use crate::key::Key;
use crate::shared::{cost_from_f64, status, Shared, TABLE_FULL};

/// The most keys a table may be sized for: 50 million keys take about 2.1 GB. The limit
/// turns a typo into a `RangeError` instead of an allocation failure, which would abort.
pub(crate) const MAX_KEYS: u64 = 50_000_000;

/// `max_keys` from JavaScript, validated.
pub(crate) fn max_keys(value: f64) -> Result<usize> {
    cost_from_f64(value)
        .filter(|&keys| (1..=MAX_KEYS).contains(&keys))
        .and_then(|keys| usize::try_from(keys).ok())
        .ok_or_else(|| range_error(format!("maxKeys must be an integer from 1 to {MAX_KEYS}")))
}

/// A cost from JavaScript, validated again (JavaScript validated it first).
#[inline]
pub(crate) fn cost(value: f64) -> Result<u64> {
    cost_from_f64(value).ok_or_else(|| range_error("cost must be a non-negative safe integer"))
}

/// The native half of a `Limiter` with one quota: a keyed table of GCRA cells (or token
/// buckets with interval refill), a clock, and the array it writes decisions into.
#[napi]
pub struct NativeLimiter {
    table: KeyedLimiter<Box<[Slot]>, NodeClock>,
    shared: Shared,
    names: [String; 1],
    quotas: [Quota; 1],
}

#[napi]
impl NativeLimiter {
    /// A table for `max_keys` keys with the quota `rate` (one rate string), `burst` (or the
    /// rate's count), `refill` (`"greedy"`, as GCRA, or `"interval"`), `clock` (monotonic when
    /// absent), writing decisions into `shared`; `name` is the policy name in headers.
    ///
    /// # Errors
    /// `RangeError`-coded errors for an invalid rate, burst, refill or `max_keys`.
    #[napi(constructor)]
    pub fn new(
        rate: String,
        burst: Option<f64>,
        refill: String,
        max_keys: f64,
        clock: Option<&NativeManualClock>,
        shared: Float64Array,
        name: String,
    ) -> Result<Self> {
        let quota = crate::quota::parse_one(&rate, burst, "rate")?;
        let refill = match refill.as_str() {
            "greedy" => Refill::Greedy,
            "interval" => Refill::Interval,
            _ => return Err(range_error("refill must be 'greedy' or 'interval'")),
        };
        let table = KeyedLimiter::with_options(
            quota,
            refill,
            self::max_keys(max_keys)?,
            Seed::random(),
            NodeClock::new(clock),
        );
        Ok(Self {
            table,
            shared: Shared::new(shared)?,
            names: [name],
            quotas: [quota],
        })
    }

    /// The burst: the most cost ever admitted at once (every decision's `limit`).
    #[napi(getter)]
    pub fn limit(&self) -> f64 {
        self.table.quota().burst_cost() as f64
    }

    /// The quota, written back as a rate string.
    #[napi(getter)]
    pub fn rate(&self) -> String {
        self.table.quota().to_string()
    }

    /// Tests and consumes `cost` for `key`; writes the decision; returns its status
    /// (`TABLE_FULL` when the key is new and its window of slots holds only live keys).
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn check(&self, key: Key, cost: f64) -> Result<u32> {
        let cost = self::cost(cost)?;
        Ok(self.written(self.table.check(key, cost)))
    }

    /// The decision `check` would make, consuming nothing.
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn peek(&self, key: Key, cost: f64) -> Result<u32> {
        let cost = self::cost(cost)?;
        Ok(self.written(Ok(self.table.peek(key, cost))))
    }

    /// Consumes `cost` whether or not it fits (into debt).
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn force(&self, key: Key, cost: f64) -> Result<u32> {
        let cost = self::cost(cost)?;
        Ok(self.written(self.table.force(key, cost)))
    }

    /// Gives `cost` back, never above a full bucket.
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn refund(&self, key: Key, cost: f64) -> Result<u32> {
        let cost = self::cost(cost)?;
        Ok(self.written(Ok(self.table.refund(key, cost))))
    }

    /// Makes `key`'s bucket full.
    #[napi]
    pub fn reset(&self, key: Key) {
        self.table.reset(key);
    }

    /// `[live keys, reclaimed slots, keys refused because the table was full, slots]`.
    #[napi]
    pub fn stats(&self) -> Vec<f64> {
        let stats = self.table.stats();
        vec![
            stats.live_keys as f64,
            stats.reclaimed as f64,
            stats.rejected_full as f64,
            self.table.slot_count() as f64,
        ]
    }

    /// The clock's time in nanoseconds, as a `f64` (exact below 2^53 ns, 104 days).
    #[napi]
    pub fn now_ns(&self) -> f64 {
        self.table.clock().now_ns() as f64
    }

    /// Renders the headers for the decision that JavaScript wrote into entry 0 of the shared
    /// array, as `[name, value, ...]`.
    ///
    /// # Errors
    /// An invalid style or decision.
    #[napi]
    pub fn render_headers(&self, style: u32, now_unix_s: f64) -> Result<Vec<String>> {
        render(
            &self.shared,
            &self.names,
            &self.quotas,
            header_style(style, now_unix_s)?,
            1,
        )
    }

    #[inline]
    fn written(&self, decision: core::result::Result<Decision, TableFull>) -> u32 {
        match decision {
            Ok(decision) => {
                self.shared.write_single(&decision);
                status(&decision)
            }
            Err(TableFull) => TABLE_FULL,
        }
    }
}
