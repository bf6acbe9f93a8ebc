//! [`NativeLimiter`]: the native half of `Limiter` and `Policy`, over core's [`Limiter`] (one
//! engine: a single quota or several over named dimensions, the full-table answer, names and
//! every configuration rule are core's). This file converts: JavaScript's specs to core's
//! configuration, core's errors to errors naming the JavaScript argument, the shared array's
//! costs and operation to [`Limiter::apply_at`], and core's decisions back into the array.

use std::rc::Rc;

use cellgate::{
    Clock, ConfigError, Limiter, LimiterOptions, LimiterReservation, NamedStyle, OnFull, Refill,
    Seed, MAX_POLICY_QUOTAS,
};
use cellgate_host::TableSlots;
use napi::bindgen_prelude::Float64Array;
use napi::Result;
use napi_derive::napi;

use crate::boundary::fast::{FastError, FastFunction, FastTarget, HeaderFunction, HeaderTarget};
use crate::boundary::key::Key;
use crate::boundary::range_error;
use crate::boundary::shared::{
    cost_from_f64, InvalidCost, Shared, BINDING, COUNT, HEADER_SHAPE, MISSING_COST, STATUS,
};
use crate::clock::{NativeManualClock, NodeClock};
use crate::headers::{named_style, render, HeaderShapes, HeaderSource};
use crate::quota::{limiter_entries, parse_specs, QuotaSpec};

/// A limiter's options as JavaScript gives them (validated there first).
#[napi(object)]
pub struct LimiterSpec {
    /// `"greedy"` or `"interval"`.
    pub refill: String,
    /// Keys each quota's table has room for (core checks the bounds).
    pub max_keys: f64,
    /// `"deny"` or `"allowUntracked"`.
    pub on_full: String,
    /// The argument that gave the quotas, for errors about the list (`"rate"`, `"entries"`).
    pub argument: String,
    /// A shared store's table file (`options.store`, a `SharedMemory`); absent: in process.
    pub store_path: Option<String>,
    /// The shared store's access, `"owner"` or `"group"`.
    pub store_access: Option<String>,
    /// Whether the shared store accepts a file owned by another user.
    pub store_allow_other_owner: Option<bool>,
    /// Milliseconds a denial blocks its key for (`options.blockMs`; absent or 0: never).
    pub block_ms: Option<f64>,
}

/// Nanoseconds per millisecond, the unit of `options.blockMs`.
const NS_PER_MS: u64 = 1_000_000;

/// `options.blockMs` (an integer number of milliseconds, checked in JavaScript first) as
/// core's `Limiter::with_block_ns` takes it.
///
/// # Errors
/// A `RangeError`-coded error for a value that is no integer or past `u64` nanoseconds.
pub(crate) fn block_ns(block_ms: Option<f64>) -> Result<u64> {
    let Some(ms) = block_ms else {
        return Ok(0);
    };
    cost_from_f64(ms)
        .and_then(|ms| ms.checked_mul(NS_PER_MS))
        .ok_or_else(|| {
            range_error(format!(
                "options.blockMs must be an integer from 0 to {}",
                u64::MAX / NS_PER_MS
            ))
        })
}

/// The state behind a [`NativeLimiter`] and its fast function.
pub struct LimiterInner {
    /// In process (`cellgate_host::in_process`): the type a host-wide table has too
    /// (`SharedTable::open_limiter`, issue 13), so both stores are one type.
    limiter: Limiter<TableSlots>,
    clock: NodeClock,
    shared: Shared,
    /// For each quota, the argument that gave its name (errors about the name say it).
    arguments: Vec<String>,
    /// Whether the limiter has one quota: the fast function takes core's one-quota path.
    single: bool,
    /// The header names its renderings have had (the header function's shapes).
    header_shapes: HeaderShapes,
}

/// The costs JavaScript wrote into the shared array, one per dimension, `None` where its
/// caller named none (core's [`cellgate::resolve_costs`] completes them).
fn given_costs(
    shared: &Shared,
    dimensions: usize,
) -> core::result::Result<[Option<u64>; MAX_POLICY_QUOTAS], InvalidCost> {
    let mut given = [None; MAX_POLICY_QUOTAS];
    for (dimension, slot) in given.iter_mut().enumerate().take(dimensions) {
        *slot = shared.given_cost(dimension)?;
    }
    Ok(given)
}

impl LimiterInner {
    fn dimensions(&self) -> usize {
        self.limiter.dimensions().min(MAX_POLICY_QUOTAS)
    }

    /// Writes `MISSING_COST` for `dimension` (nothing was charged), or returns the error of a
    /// call that core refused for another reason.
    fn refused(&self, error: ConfigError) -> core::result::Result<(), &'static str> {
        match error {
            ConfigError::MissingCost { dimension } => {
                self.shared.set(BINDING, dimension as f64);
                self.shared.set(STATUS, f64::from(MISSING_COST));
                Ok(())
            }
            _ => Err("the costs do not match the limiter's dimensions"),
        }
    }
}

impl LimiterInner {
    fn source(&self, count: u32) -> HeaderSource<'_> {
        HeaderSource {
            shared: &self.shared,
            names: crate::headers::names(self.limiter.names()),
            quotas: self.limiter.quotas(),
            arguments: &self.arguments,
            count: usize::try_from(count).unwrap_or(usize::MAX),
        }
    }
}

impl HeaderTarget for LimiterInner {
    fn render(
        &self,
        style: NamedStyle,
        count: u32,
        finish: &mut dyn FnMut(&[u8]),
    ) -> core::result::Result<(), String> {
        let source = self.source(count);
        let shape = self
            .header_shapes
            .render(&source, style, |shape, bytes| {
                finish(bytes);
                shape
            })
            .map_err(|error| error.reason)?;
        self.shared
            .set(HEADER_SHAPE, shape.map_or(-1.0, |index| index as f64));
        Ok(())
    }
}

impl LimiterInner {
    /// Runs the operation in the shared array for `key` and writes its decision there;
    /// `false` when core's rule needed a cost not given (`MISSING_COST` written, nothing
    /// charged, no decision).
    #[inline]
    fn decide(&self, key: &[u8]) -> core::result::Result<bool, FastError> {
        let op = self
            .shared
            .op()
            .ok_or(FastError::new("op: not one of the limiter's operations"))?;
        let now_ns = self.clock.now_ns();
        if self.single {
            // One quota: core's fast path, one decision (not a 344-byte `LimiterDecision`)
            // and only its slots written: check(key) 224 -> 177-184 ns in one bench run
            // (issue 12), the native call alone 180 -> 115 ns.
            let cost = self.shared.given_cost(0).map_err(|_| INVALID_COST)?;
            if let Some(decision) = &self.limiter.apply_one_at(key, now_ns, cost, op) {
                self.shared.write_single(decision);
                return Ok(true);
            }
        }
        let dimensions = self.dimensions();
        let given = given_costs(&self.shared, dimensions).map_err(|_| INVALID_COST)?;
        let given = given.get(..dimensions).unwrap_or_default();
        // Matched by reference: moving the decision (344 bytes) out of the result measured
        // as a `memcpy` per call.
        match &self.limiter.apply_at(key, now_ns, given, op) {
            Ok(decision) => {
                self.shared.write_decision(decision);
                Ok(true)
            }
            Err(error) => self.refused(*error).map(|()| false).map_err(FastError::new),
        }
    }

    /// Renders the headers of the decision just written into the shared array (its `COUNT`
    /// entries) in `style`, as the header function does, and passes the values to `emit`.
    /// Out of line: the plain check does not carry it.
    #[inline(never)]
    fn render_decided(
        &self,
        style: NamedStyle,
        emit: &mut dyn FnMut(&[u8]),
    ) -> core::result::Result<(), FastError> {
        // The count is one this crate wrote: a small integer.
        let count = slot_integer(self.shared.get(COUNT)).unwrap_or(0);
        HeaderTarget::render(self, style, count, emit).map_err(|message| FastError(message.into()))
    }

    /// The style a fast call was asked to render its decision's headers in (the shared
    /// array's `RENDER_STYLE` and `RENDER_NOW_S`, taken), resolved before anything is decided.
    ///
    /// # Errors
    /// The `RangeError` of a style index that is no style (`u32::MAX` stands for a slot value
    /// that is no index), or of a wall-clock style's bad second.
    fn render_request(&self) -> core::result::Result<Option<NamedStyle>, FastError> {
        let Some((style, now_unix_s)) = self.shared.take_render() else {
            return Ok(None);
        };
        named_style(slot_integer(style).unwrap_or(u32::MAX), now_unix_s)
            .map(Some)
            .map_err(|error| FastError(error.reason.into()))
    }
}

/// The error of a cost slot that holds no cost.
const INVALID_COST: FastError = FastError::new("every cost must be an integer from 0 to 2^53 - 1");

/// A shared-array slot's value as a `u32`: `None` unless it is an integer in range.
fn slot_integer(value: f64) -> Option<u32> {
    cost_from_f64(value).and_then(|integer| u32::try_from(integer).ok())
}

impl FastTarget for LimiterInner {
    #[inline]
    fn run(&self, key: &[u8], emit: &mut dyn FnMut(&[u8])) -> core::result::Result<(), FastError> {
        // Taken first: a call that fails renders nothing, and the next is not asked to; a
        // request no rendering could answer is refused before anything is charged.
        let render = self.render_request()?;
        if self.decide(key)? {
            if let Some(style) = render {
                return self.render_decided(style, emit);
            }
        }
        Ok(())
    }
}

/// Core's options from JavaScript's (`refill`, `maxKeys`, `onFull`; a random seed), for the
/// in-process, shared and Redis limiters alike.
///
/// # Errors
/// `RangeError`-coded errors naming the option at fault.
pub(crate) fn limiter_options(options: &LimiterSpec) -> Result<LimiterOptions> {
    let refill = match options.refill.as_str() {
        "greedy" => Refill::Greedy,
        "interval" => Refill::Interval,
        _ => return Err(range_error("options.refill must be 'greedy' or 'interval'")),
    };
    let on_full = match options.on_full.as_str() {
        "deny" => OnFull::Deny,
        "allowUntracked" => OnFull::AllowUntracked,
        _ => {
            return Err(range_error(
                "options.onFull must be 'deny' or 'allowUntracked'",
            ))
        }
    };
    // Core checks the bounds; a number that is no integer cannot reach them.
    let max_keys = cost_from_f64(options.max_keys)
        .and_then(|keys| usize::try_from(keys).ok())
        .ok_or_else(|| {
            range_error(format!(
                "options.maxKeys must be an integer from 1 to {}",
                cellgate::MAX_MAX_KEYS
            ))
        })?;
    Ok(LimiterOptions {
        refill,
        max_keys,
        on_full,
        seed: Seed::random(),
    })
}

/// The error for a configuration core refused, naming the JavaScript argument at fault:
/// `arguments[i]` gave quota `i`, `list` the quotas as a whole.
pub(crate) fn config_error(
    error: ConfigError,
    arguments: &[String],
    list: &str,
    max_keys: usize,
) -> napi::Error {
    let quota = |index: usize| arguments.get(index).map_or(list, String::as_str).to_owned();
    let argument = match error {
        ConfigError::EmptyName { index }
        | ConfigError::InvalidName { index }
        | ConfigError::DuplicateName { index, .. } => quota(index),
        ConfigError::MaxKeys { .. } => "options.maxKeys".to_owned(),
        ConfigError::RefillNeedsOneQuota => "options.refill".to_owned(),
        ConfigError::OutOfMemory => {
            return range_error(format!(
                "options.maxKeys: a table for {max_keys} keys cannot be allocated on this machine"
            ))
        }
        _ => list.to_owned(),
    };
    range_error(format!("{argument}: {error}"))
}

/// The native half of a `Limiter` or a `Policy`: core's [`Limiter`], a clock, and the array
/// it shares with JavaScript.
#[napi]
pub struct NativeLimiter {
    inner: Rc<LimiterInner>,
}

/// A reservation made by [`NativeLimiter::reserve`], settled at most once.
#[napi]
pub struct NativeReservation {
    reservation: Option<LimiterReservation>,
}

#[napi]
impl NativeReservation {
    /// Whether the reservation was admitted and is not settled yet.
    #[napi(getter)]
    pub fn pending(&self) -> bool {
        self.reservation.is_some()
    }
}

#[napi]
impl NativeLimiter {
    /// A limiter over `quotas` (each one rate string, or for a quota with neither burst nor
    /// name, several: `"10/s; 1000/day"`) with `options`, reading `clock` (monotonic when
    /// absent) and writing decisions into `shared`. Every rule is core's ([`Limiter::new`]).
    ///
    /// # Errors
    /// `RangeError`-coded errors naming the argument at fault.
    #[napi(constructor)]
    pub fn new(
        quotas: Vec<QuotaSpec>,
        options: LimiterSpec,
        clock: Option<&NativeManualClock>,
        shared: Float64Array,
    ) -> Result<Self> {
        let parsed = parse_specs(&quotas)?;
        let (limiter_quotas, arguments) = limiter_entries(&parsed);
        let limiter_options = limiter_options(&options)?;
        let block_ns = block_ns(options.block_ms)?;
        let max_keys = limiter_options.max_keys;
        let store = options
            .store_path
            .clone()
            .map(|path| crate::store::StoreSpec {
                path,
                access: options
                    .store_access
                    .clone()
                    .unwrap_or_else(|| "owner".to_owned()),
                allow_other_owner: options.store_allow_other_owner.unwrap_or(false),
            });
        if store.is_some() && clock.is_some() {
            // A shared table's time line is the host's CLOCK_MONOTONIC, for every process.
            return Err(crate::boundary::type_error(
                "options.clock: a ManualClock cannot drive a shared store (options.store): \
                 every process sharing the table must read the host's monotonic clock",
            ));
        }
        let limiter =
            crate::store::open(store.as_ref(), &limiter_quotas, limiter_options, |error| {
                config_error(error, &arguments, &options.argument, max_keys)
            })?
            .with_block_ns(block_ns);
        let single = limiter.quotas().len() == 1;
        let shared = Shared::new(shared)?;
        if single {
            shared.write_single_shape();
        }
        Ok(Self {
            inner: Rc::new(LimiterInner {
                limiter,
                clock: NodeClock::new(clock),
                shared,
                arguments,
                single,
                header_shapes: HeaderShapes::default(),
            }),
        })
    }

    /// How many costs each call reads from the shared array: one per dimension.
    #[napi(getter)]
    pub fn dimensions(&self) -> u32 {
        u32::try_from(self.inner.limiter.dimensions()).unwrap_or(u32::MAX)
    }

    /// Each quota's name in headers (given, or core's default: `"100-in-1min"`), in order.
    #[napi]
    pub fn names(&self) -> Vec<String> {
        self.inner.limiter.names().map(str::to_owned).collect()
    }

    /// Each quota written back as a rate string, in order.
    #[napi]
    pub fn rates(&self) -> Vec<String> {
        let quotas = self.inner.limiter.quotas().iter();
        quotas.map(ToString::to_string).collect()
    }

    /// Milliseconds a denial blocks its key for (0: never).
    #[napi(getter)]
    pub fn block_ms(&self) -> f64 {
        (self.inner.limiter.block_ns() / NS_PER_MS) as f64
    }

    /// The slots each quota's table holds (core's `slot_count_for(max_keys)`).
    #[napi(getter)]
    pub fn slots(&self) -> f64 {
        cellgate::slot_count_for(self.inner.limiter.max_keys()) as f64
    }

    /// Each quota's burst (its decisions' `limit`), in order.
    #[napi]
    pub fn limits(&self) -> Vec<f64> {
        let quotas = self.inner.limiter.quotas().iter();
        quotas.map(|quota| quota.burst_cost() as f64).collect()
    }

    /// The one entry point of every operation: `(key) => undefined`, running the operation in
    /// the shared array's `OP` slot with the costs in its `COSTS` slots, and writing the
    /// decision, the reason and the status there (see `crate::boundary::shared`). When the
    /// array's `RENDER_STYLE` names a style, the call also renders the decision's headers as
    /// the header function does (the shape into `HEADER_SHAPE`) and returns their values.
    #[napi(ts_return_type = "(key: string | Uint8Array) => string | undefined")]
    pub fn fast_function(&self) -> FastFunction<LimiterInner> {
        FastFunction(self.inner.clone())
    }

    /// The header function: `(style, nowUnixS, count) => string`, rendering as
    /// [`render_headers`](Self::render_headers) does, but returning only the values (joined by
    /// newlines) and writing the index of their shape into the shared
    /// array's `HEADER_SHAPE` slot (-1: a shape beyond those kept, to render through
    /// `renderHeaders` instead). A plain Node-API function, like the fast function.
    #[napi(ts_return_type = "(style: number, nowUnixS: number, count: number) => string")]
    pub fn header_function(&self) -> HeaderFunction<LimiterInner> {
        HeaderFunction(self.inner.clone())
    }

    /// The header names of shape `index` of the header function, joined by newlines.
    ///
    /// # Errors
    /// An index the header function never wrote.
    #[napi]
    pub fn header_shape(&self, index: u32) -> Result<String> {
        self.inner
            .header_shapes
            .names(index)
            .ok_or_else(|| range_error(format!("headers: no shape {index}")))
    }

    /// Per quota `[live keys, reclaimed slots, keys refused because a table was full, keys
    /// admitted untracked]`, in quota order.
    #[napi]
    pub fn stats(&self) -> Vec<Vec<f64>> {
        self.inner
            .limiter
            .stats()
            .iter()
            .map(|stats| {
                vec![
                    stats.live_keys as f64,
                    stats.reclaimed as f64,
                    stats.rejected_full as f64,
                    stats.admitted_untracked as f64,
                ]
            })
            .collect()
    }

    /// Reserves the estimate in the shared array for `key`: writes the decision and the
    /// status (`MISSING_COST` when core's rule needs a cost the estimate does not name) and
    /// returns the reservation (pending when admitted).
    ///
    /// # Errors
    /// An invalid cost.
    #[napi]
    pub fn reserve(&self, key: Key) -> Result<NativeReservation> {
        let inner = &self.inner;
        let dimensions = inner.dimensions();
        let given = given_costs(&inner.shared, dimensions).map_err(InvalidCost::to_napi)?;
        let given = given.get(..dimensions).unwrap_or_default();
        match inner
            .limiter
            .reserve_at(key.as_ref(), inner.clock.now_ns(), given)
        {
            Ok(reserved) => {
                inner.shared.write_decision(&reserved.decision);
                Ok(NativeReservation {
                    reservation: reserved.reservation,
                })
            }
            Err(error) => {
                inner.refused(error).map_err(range_error)?;
                Ok(NativeReservation { reservation: None })
            }
        }
    }

    /// Settles `reservation` with the actual costs in the shared array (a dimension given no
    /// cost keeps its estimate): refunds what was not used, charges what exceeds the estimate
    /// (into debt if need be); writes the decision.
    ///
    /// # Errors
    /// A reservation already settled, refused, or made by another limiter; an invalid cost.
    #[napi]
    pub fn settle(&self, reservation: &mut NativeReservation) -> Result<()> {
        let inner = &self.inner;
        let dimensions = inner.dimensions();
        // Before the reservation is taken: a settle with an invalid cost settles nothing.
        let given = given_costs(&inner.shared, dimensions).map_err(InvalidCost::to_napi)?;
        let given = given.get(..dimensions).unwrap_or_default();
        let taken = reservation
            .reservation
            .take()
            .ok_or_else(|| range_error("reservation: already settled, or refused"))?;
        let decision = inner
            .limiter
            .settle_at(inner.clock.now_ns(), taken, given)
            .map_err(|error| range_error(format!("reservation: {error}")))?;
        inner.shared.write_decision(&decision);
        Ok(())
    }

    /// Renders the headers of the decision that JavaScript wrote into the shared array (its
    /// `count` entries), in the style at index `style` of `headerStyles()` (`"ietf"`,
    /// `"legacy"`, `"legacy-epoch"`, `"anthropic"`, `"openai"`), as
    /// `name\nvalue\nname\nvalue...` (one string: one conversion).
    ///
    /// # Errors
    /// An invalid style or decision; a quota name that a per-dimension header name cannot hold.
    #[napi]
    pub fn render_headers(&self, style: u32, now_unix_s: f64, count: u32) -> Result<String> {
        render(&self.source(count), style, now_unix_s)
    }

    /// The JSON body of the 429 answer to the decision in the shared array (its `count`
    /// entries): core's bytes, `{"error":"rate_limited","retry_after":N}`.
    ///
    /// # Errors
    /// An invalid decision.
    #[napi]
    pub fn render_429_body(&self, count: u32) -> Result<String> {
        crate::headers::render_body(&self.source(count))
    }
}

impl NativeLimiter {
    fn source(&self, count: u32) -> HeaderSource<'_> {
        self.inner.source(count)
    }
}

/// Core's bounds for `maxKeys`, the same in every runtime.
#[napi(object)]
pub struct Limits {
    /// `maxKeys` when none is given ([`cellgate::DEFAULT_MAX_KEYS`]).
    pub default_max_keys: f64,
    /// The largest `maxKeys` accepted ([`cellgate::MAX_MAX_KEYS`], 2^27).
    pub max_max_keys: f64,
}

/// Core's bounds for `maxKeys`.
#[napi(js_name = "configLimits")]
pub fn limits() -> Limits {
    Limits {
        default_max_keys: cellgate::DEFAULT_MAX_KEYS as f64,
        max_max_keys: cellgate::MAX_MAX_KEYS as f64,
    }
}
