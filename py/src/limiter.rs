//! `Limiter`: core's `cellgate::Limiter` (keyed, one or several quotas on one dimension) with
//! Python's arguments, its tables in this process or shared by the host's processes
//! (`store=SharedMemory(...)`, `store.rs`): one type, `Limiter<TableSlots>`, for both. Core
//! checks every configuration rule and makes every decision, a full table's included; this
//! file translates the arguments and the clock.

use crate::boundary::{
    config_error, cost_arg, invalid, key_bytes, optional_str_arg, str_arg, u64_arg, Arguments,
    Given,
};
use crate::clock::TimeSource;
use crate::headers::{Core, Decision, Source};
use crate::quota::{quotas_arg, PyQuota};
use crate::store::{store_arg, SharedMemory};
use cellgate::Clock;
use cellgate::{LimiterOptions, LimiterQuota, OnFull, Op, Refill};
use cellgate_host::TableSlots;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict};

/// The `algorithm` and `refill` arguments as core's `Refill`: `algorithm` a `str` (absent:
/// `"gcra"`), `refill` a `str` or `None`. GCRA and a greedy token bucket decide alike (core
/// has one greedy cell), so `algorithm` only says whether `refill` may be given.
pub fn refill_args(
    py: Python<'_>,
    algorithm: &Given<'_>,
    refill: Option<&Bound<'_, PyAny>>,
) -> PyResult<(&'static str, Refill)> {
    let algorithm = match algorithm {
        Given::Absent => "gcra",
        Given::Value(value) => match str_arg(value, "algorithm")?.as_ref() {
            "gcra" => "gcra",
            "token_bucket" => "token_bucket",
            other => {
                return Err(invalid(
                    value.py(),
                    "algorithm",
                    &format!("must be 'gcra' or 'token_bucket', not {other:?}"),
                ))
            }
        },
    };
    let refill_text = optional_str_arg(refill, "refill")?;
    let refill_mode = match (algorithm, refill_text.as_deref()) {
        (_, None) | ("token_bucket", Some("greedy")) => Refill::Greedy,
        ("token_bucket", Some("interval")) => Refill::Interval,
        ("gcra", Some(_)) => {
            return Err(invalid(
                py,
                "refill",
                "applies to algorithm='token_bucket' only (GCRA refills continuously)",
            ))
        }
        (_, Some(other)) => {
            return Err(invalid(
                py,
                "refill",
                &format!("must be 'greedy' or 'interval', not {other:?}"),
            ))
        }
    };
    Ok((algorithm, refill_mode))
}

/// The `on_full` argument: `"deny"` (absent) or `"allow_untracked"`.
pub fn on_full_arg(on_full: &Given<'_>) -> PyResult<OnFull> {
    match on_full {
        Given::Absent => Ok(OnFull::Deny),
        Given::Value(value) => match str_arg(value, "on_full")?.as_ref() {
            "deny" => Ok(OnFull::Deny),
            "allow_untracked" => Ok(OnFull::AllowUntracked),
            other => Err(invalid(
                value.py(),
                "on_full",
                &format!("must be 'deny' or 'allow_untracked', not {other:?}"),
            )),
        },
    }
}

/// The options of a limiter or policy: `max_keys` (absent: core's default; core checks the
/// bounds), `on_full`, a random seed.
pub fn options_arg(
    max_keys: Option<&Bound<'_, PyAny>>,
    on_full: &Given<'_>,
    refill: Refill,
) -> PyResult<LimiterOptions> {
    let mut options = LimiterOptions {
        refill,
        on_full: on_full_arg(on_full)?,
        ..LimiterOptions::default()
    };
    if let Some(value) = max_keys {
        options.max_keys = usize::try_from(u64_arg(value, "max_keys")?).unwrap_or(usize::MAX);
    }
    Ok(options)
}

/// Nanoseconds per millisecond, the unit of `block_ms`.
pub const NS_PER_MS: u64 = 1_000_000;

/// The `block_ms` argument (an int >= 0; absent: 0, never block) in nanoseconds, for core's
/// `Limiter::with_block_ns`.
pub fn block_ns_arg(block_ms: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    let Some(value) = block_ms else {
        return Ok(0);
    };
    let ms = u64_arg(value, "block_ms")?;
    ms.checked_mul(NS_PER_MS).ok_or_else(|| {
        invalid(
            value.py(),
            "block_ms",
            &format!(
                "must be at most {} (u64 nanoseconds), got {ms}",
                u64::MAX / NS_PER_MS
            ),
        )
    })
}

/// The quotas of a rate string as core's entries on one dimension, and the names headers
/// show for them (for messages): a `Limiter`'s, and a `RedisLimiter`'s.
pub fn one_dimension(quotas: &[PyQuota]) -> (Vec<LimiterQuota<'_>>, Vec<String>) {
    let entries = quotas
        .iter()
        .map(|quota| LimiterQuota {
            quota: quota.quota,
            name: quota.name.as_deref(),
            dimension: 0,
        })
        .collect();
    (entries, quotas.iter().map(PyQuota::header_name).collect())
}

/// `"deny"` or `"allow_untracked"`.
pub fn on_full_name(on_full: OnFull) -> &'static str {
    match on_full {
        OnFull::AllowUntracked => "allow_untracked",
        _ => "deny",
    }
}

/// A rate limiter with one bucket per key (str, bytes or int) in a table of bounded size,
/// allocated once: core's `Limiter`. See the package documentation for the full contract.
#[pyclass(frozen, subclass, module = "cellgate._cellgate", name = "Limiter")]
pub struct Limiter {
    core: Py<Core>,
    clock: TimeSource,
    quotas: Vec<PyQuota>,
    algorithm: &'static str,
    /// The shared store the tables are in, or `None` for this process's heap.
    store: Option<Py<SharedMemory>>,
}

impl Limiter {
    /// Core's limiter.
    #[inline]
    fn limiter(&self) -> &cellgate::Limiter<TableSlots> {
        match &self.core.get().source {
            Source::Limiter(limiter) => limiter,
            _ => unreachable!("a Limiter's core is a limiter"),
        }
    }

    /// Applies `op` to `key` with `cost` (None: core's default cost) at the clock's time,
    /// through core's one verb: the body of `check`, `peek`, `force`, `refund` (see
    /// `fastcall.rs`) and `reset`.
    ///
    /// Always inlined, into the fastcall entry points above all: left to the compiler's
    /// heuristics it became a second frame (with a copy of the returned decision) after an
    /// unrelated edit, and `Limiter.check` went from 125 to 139 ns (same-run bench). The
    /// crate is also built as one codegen unit (the workspace `Cargo.toml`) for the same reason.
    #[inline(always)]
    pub fn apply(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        op: Op,
    ) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        let key = key_bytes(key)?;
        let now_ns = self.clock.now_ns();
        let limiter = self.limiter();
        // One quota: core's fast path, without assembling a whole LimiterDecision.
        if let Some(answer) = limiter.apply_one_at(key.as_bytes(), now_ns, cost, op) {
            return Ok(Decision::of_quota(
                py,
                answer.decision,
                answer.reason,
                &self.core,
            ));
        }
        match limiter.apply_at(key.as_bytes(), now_ns, &[cost], op) {
            Ok(decision) => Ok(Decision::of_limiter(py, &decision, &self.core)),
            Err(error) => Err(self.error(py, error)),
        }
    }

    #[cold]
    fn error(&self, py: Python<'_>, error: cellgate::ConfigError) -> PyErr {
        let names: Vec<String> = self.limiter().names().map(str::to_owned).collect();
        config_error(
            py,
            error,
            &Arguments {
                quotas: "rate",
                names: &names,
                dimensions: &["cost".to_owned()],
            },
        )
    }
}

#[pymethods]
impl Limiter {
    /// `Limiter(rate, *, burst=None, algorithm="gcra", refill=None, max_keys=100_000,
    /// on_full="deny", block_ms=0, clock=None, store=None)`.
    #[new]
    #[pyo3(
        signature = (rate, *, burst=None, algorithm=Given::Absent, refill=None, max_keys=None, on_full=Given::Absent, block_ms=None, clock=None, store=None),
        text_signature = "(rate, *, burst=None, algorithm='gcra', refill=None, max_keys=100000, on_full='deny', block_ms=0, clock=None, store=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        algorithm: Given<'_>,
        refill: Option<&Bound<'_, PyAny>>,
        max_keys: Option<&Bound<'_, PyAny>>,
        on_full: Given<'_>,
        block_ms: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let quotas = quotas_arg(rate, burst)?;
        let (algorithm, refill) = refill_args(py, &algorithm, refill)?;
        let options = options_arg(max_keys, &on_full, refill)?;
        let block_ns = block_ns_arg(block_ms)?;
        let clock = TimeSource::from_arg(clock)?;
        let store = store_arg(store)?;
        let (entries, names) = one_dimension(&quotas);
        let arguments = Arguments {
            quotas: "rate",
            names: &names,
            dimensions: &["cost".to_owned()],
        };
        let limiter =
            crate::store::open(py, &entries, options, store.as_ref(), &clock, &arguments)?
                .with_block_ns(block_ns);
        Ok(Self {
            core: Py::new(
                py,
                Core {
                    source: Source::Limiter(limiter),
                },
            )?,
            clock,
            quotas,
            algorithm,
            store,
        })
    }

    // `check`, `peek`, `force` and `refund` are METH_FASTCALL methods: see `fastcall.rs`.

    /// Makes `key`'s bucket full.
    fn reset(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        self.apply(py, key, None, Op::Reset).map(drop)
    }

    /// The limiter's clock reading, in nanoseconds.
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// The `ManualClock` the limiter reads, or None for the monotonic clock.
    #[getter]
    fn clock(&self) -> Option<crate::clock::ManualClock> {
        self.clock.manual()
    }

    /// The `SharedMemory` holding the tables, or None for this process's memory.
    #[getter]
    fn store(&self, py: Python<'_>) -> Option<Py<SharedMemory>> {
        self.store.as_ref().map(|store| store.clone_ref(py))
    }

    /// The quotas, in order.
    #[getter]
    fn quotas(&self) -> Vec<PyQuota> {
        self.quotas.clone()
    }

    /// The names rate-limit headers show, in quota order (core's default names where none
    /// was given).
    #[getter]
    fn quota_names(&self) -> Vec<String> {
        self.limiter().names().map(str::to_owned).collect()
    }

    /// The number of keys the table was sized for.
    #[getter]
    fn max_keys(&self) -> usize {
        self.limiter().max_keys()
    }

    /// `"gcra"` or `"token_bucket"`.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// `"greedy"` (continuous) or `"interval"` (the whole rate at each period boundary).
    #[getter]
    fn refill(&self) -> &'static str {
        refill_name(self.limiter().refill())
    }

    /// `"deny"` or `"allow_untracked"`: the answer to a new key the table has no room for.
    #[getter]
    fn on_full(&self) -> &'static str {
        on_full_name(self.limiter().on_full())
    }

    /// Milliseconds a denial blocks its key for (0: never).
    #[getter]
    fn block_ms(&self) -> u64 {
        self.limiter().block_ns() / NS_PER_MS
    }

    /// Core's counters of each quota's table, in quota order, one dict each:
    /// `live_keys`, `reclaimed`, `rejected_full` (new keys the full table had no room for)
    /// and `admitted_untracked` (of those, admitted under `on_full="allow_untracked"`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        stats_of(py, self.limiter())
    }

    fn __repr__(&self) -> String {
        let rates: Vec<String> = self
            .quotas
            .iter()
            .map(|quota| quota.quota.to_string())
            .collect();
        format!(
            "Limiter({:?}, algorithm={:?}, max_keys={})",
            rates.join("; "),
            self.algorithm,
            self.limiter().max_keys()
        )
    }
}

/// Core's counters as one dict per table.
pub fn stats_of<'py>(
    py: Python<'py>,
    limiter: &cellgate::Limiter<TableSlots>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    limiter
        .stats()
        .iter()
        .map(|stats| {
            [
                ("live_keys", stats.live_keys),
                ("reclaimed", stats.reclaimed),
                ("rejected_full", stats.rejected_full),
                ("admitted_untracked", stats.admitted_untracked),
            ]
            .into_py_dict(py)
        })
        .collect()
}

fn refill_name(refill: Refill) -> &'static str {
    match refill {
        Refill::Interval => "interval",
        _ => "greedy",
    }
}
