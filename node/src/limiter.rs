//! [`NativeLimiter`]: one quota per key, over core's [`KeyedLimiter`].

use std::rc::Rc;

use cellgate::{
    check_max_keys, check_names, default_quota_name, resolve_costs, KeyedLimiter, Quota, Refill,
    Seed, Slot, TableFull,
};
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use napi_derive::napi;

use crate::clock::{NativeManualClock, NodeClock};
use crate::error::range_error;
use crate::fast::{FastError, FastFunctions, FastOp, FastTarget};
use crate::headers::{header_style, render};
use crate::key::Key;
use crate::shared::{cost_from_f64, status, Shared, STATUS, TABLE_FULL};

/// The error for a table of `max_keys` keys that the allocator refused: a `RangeError` naming
/// `maxKeys` (too large for this machine), instead of the allocator's abort.
pub(crate) fn table_memory_error(max_keys: usize) -> napi::Error {
    range_error(format!(
        "maxKeys: a table for {max_keys} keys cannot be allocated on this machine"
    ))
}

/// `max_keys` from JavaScript, validated by core's rule ([`check_max_keys`]).
pub(crate) fn max_keys(value: f64) -> Result<usize> {
    let error = || {
        range_error(format!(
            "maxKeys must be an integer from 1 to {}",
            cellgate::MAX_MAX_KEYS
        ))
    };
    let keys = cost_from_f64(value).ok_or_else(error)?;
    check_max_keys(keys).map_err(|_| error())
}

/// The header names a limiter or policy will show, checked by core's rule ([`check_names`]);
/// `what(index)` names the argument that gave name `index`.
pub(crate) fn checked_names<S: AsRef<str>>(
    names: &[S],
    what: impl Fn(usize) -> String,
) -> Result<()> {
    check_names(names).map_err(|error| {
        range_error(format!(
            "{}: {error}",
            what(crate::config::name_index(error))
        ))
    })
}

/// The state behind a [`NativeLimiter`] and its fast functions.
pub struct LimiterInner {
    table: KeyedLimiter<Box<[Slot]>, NodeClock>,
    shared: Shared,
    names: [String; 1],
    quotas: [Quota; 1],
}

impl FastTarget for LimiterInner {
    #[inline]
    fn run(&self, op: FastOp, key: &[u8]) -> core::result::Result<(), FastError> {
        let given = self
            .shared
            .given_cost(0)
            .map_err(|_| FastError("cost must be an integer from 0 to 2^53 - 1"))?;
        // Core's rule completes the cost (one dimension: DEFAULT_COST when none is named).
        let mut cost = [0u64; 1];
        resolve_costs(&[given], &mut cost)
            .map_err(|_| FastError("cost: one cost per call on a limiter"))?;
        let [cost] = cost;
        let decision = match op {
            FastOp::Check => self.table.check(key, cost),
            FastOp::Peek => Ok(self.table.peek(key, cost)),
            FastOp::Force => self.table.force(key, cost),
            FastOp::Refund => Ok(self.table.refund(key, cost)),
        };
        let status = match decision {
            Ok(decision) => {
                self.shared.write_single(&decision);
                status(&decision)
            }
            Err(TableFull) => TABLE_FULL,
        };
        self.shared.set(STATUS, f64::from(status));
        Ok(())
    }
}

/// The native half of a `Limiter` with one quota: a keyed table of GCRA cells (or token
/// buckets with interval refill), a clock, and the array it writes decisions into.
#[napi]
pub struct NativeLimiter {
    inner: Rc<LimiterInner>,
}

#[napi]
impl NativeLimiter {
    /// A table for `max_keys` keys with the quota `rate` (one rate string), `burst` (or the
    /// rate's count), `refill` (`"greedy"`, as GCRA, or `"interval"`), `clock` (monotonic when
    /// absent), writing decisions into `shared`; `name` is the policy name in headers (core's
    /// [`default_quota_name`] when absent: `"100-in-1min"`).
    ///
    /// # Errors
    /// `RangeError`-coded errors for an invalid rate, burst, refill, `max_keys` or name.
    #[napi(constructor)]
    pub fn new(
        rate: String,
        burst: Option<f64>,
        refill: String,
        max_keys: f64,
        clock: Option<&NativeManualClock>,
        shared: Float64Array,
        name: Option<String>,
    ) -> Result<Self> {
        let quota = crate::quota::parse_one(&rate, burst, "rate")?;
        let name = name.unwrap_or_else(|| default_quota_name(&quota).to_string());
        checked_names(&[&name], |_| "name".to_owned())?;
        let refill = match refill.as_str() {
            "greedy" => Refill::Greedy,
            "interval" => Refill::Interval,
            _ => return Err(range_error("refill must be 'greedy' or 'interval'")),
        };
        let max_keys = self::max_keys(max_keys)?;
        let table = KeyedLimiter::try_with_options(
            quota,
            refill,
            max_keys,
            Seed::random(),
            NodeClock::new(clock),
        )
        .map_err(|_| table_memory_error(max_keys))?;
        Ok(Self {
            inner: Rc::new(LimiterInner {
                table,
                shared: Shared::new(shared)?,
                names: [name],
                quotas: [quota],
            }),
        })
    }

    /// The burst: the most cost ever admitted at once (every decision's `limit`).
    #[napi(getter)]
    pub fn limit(&self) -> f64 {
        self.inner.table.quota().burst_cost() as f64
    }

    /// The quota, written back as a rate string.
    #[napi(getter)]
    pub fn rate(&self) -> String {
        self.inner.table.quota().to_string()
    }

    /// The functions `[check, peek, force, refund]`, each `(key) => undefined`: the cost is
    /// read from the shared array's `COSTS` slot, the status written to its `STATUS` slot
    /// and the decision to entry 0 (see `crate::shared`).
    #[napi(ts_return_type = "Array<(key: string | Uint8Array) => void>")]
    pub fn fast_functions(&self) -> FastFunctions<LimiterInner> {
        FastFunctions(self.inner.clone())
    }

    /// Makes `key`'s bucket full.
    #[napi]
    pub fn reset(&self, key: Key) {
        self.inner.table.reset(key);
    }

    /// `[live keys, reclaimed slots, keys refused because the table was full, slots]`.
    #[napi]
    pub fn stats(&self) -> Vec<f64> {
        let stats = self.inner.table.stats();
        vec![
            stats.live_keys as f64,
            stats.reclaimed as f64,
            stats.rejected_full as f64,
            self.inner.table.slot_count() as f64,
        ]
    }

    /// Renders the headers for the decision that JavaScript wrote into entry 0 of the shared
    /// array, as `name\nvalue\nname\nvalue...` (one string: one conversion).
    ///
    /// # Errors
    /// An invalid style or decision.
    #[napi]
    pub fn render_headers(&self, style: u32, now_unix_s: f64) -> Result<String> {
        let inner = &self.inner;
        render(
            &inner.shared,
            &inner.names,
            &inner.quotas,
            header_style(style, now_unix_s)?,
            1,
        )
    }
}
