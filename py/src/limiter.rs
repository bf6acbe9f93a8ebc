//! `Limiter` (keyed, one or several quotas) and `Bucket` (a single bucket, no keys).

use crate::clock::TimeSource;
use crate::convert::{cost_arg, key_bytes, optional_str_arg, str_arg, u64_arg, Given};
use crate::decision::{Decision, Entry, Meta};
use crate::errors::{invalid, table_full, table_memory_error};
use crate::quota::{quota_error, quotas_arg, PyQuota};
use cellgate::{
    check_max_keys, check_names, Clock, ConfigError, Gcra, KeyedLimiter, KeyedPolicy, NoClock,
    PolicyEntry, PolicyError, Refill, Seed, Slot, TokenBucket, DEFAULT_MAX_KEYS, MAX_MAX_KEYS,
};
use pyo3::prelude::*;

type Table = KeyedLimiter<Box<[Slot]>, NoClock>;

enum Engine {
    /// One quota: one table.
    Single(Table),
    /// Several quotas on one dimension, all-or-nothing: a keyed policy.
    Multi(Box<KeyedPolicy<usize, NoClock>>),
}

/// The `algorithm` and `refill` arguments as text: `algorithm` a `str` (absent: `"gcra"`),
/// `refill` a `str` or `None`; another type is an `InvalidArgumentType` naming it.
fn algorithm_args<'a>(
    algorithm: &'a Given<'_>,
    refill: Option<&'a Bound<'_, PyAny>>,
) -> PyResult<(&'static str, Option<std::borrow::Cow<'a, str>>)> {
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
    Ok((algorithm, optional_str_arg(refill, "refill")?))
}

/// Which algorithm and refill, from the `algorithm` and `refill` arguments.
pub fn refill_arg(py: Python<'_>, algorithm: &str, refill: Option<&str>) -> PyResult<Refill> {
    match (algorithm, refill) {
        ("gcra", None) => Ok(Refill::Greedy),
        ("gcra", Some(_)) => Err(invalid(
            py,
            "refill",
            "applies to algorithm='token_bucket' only (GCRA refills continuously)",
        )),
        ("token_bucket", None | Some("greedy")) => Ok(Refill::Greedy),
        ("token_bucket", Some("interval")) => Ok(Refill::Interval),
        ("token_bucket", Some(other)) => Err(invalid(
            py,
            "refill",
            &format!("must be 'greedy' or 'interval', not {other:?}"),
        )),
        (other, _) => Err(invalid(
            py,
            "algorithm",
            &format!("must be 'gcra' or 'token_bucket', not {other:?}"),
        )),
    }
}

/// The `max_keys` argument: absent is core's `DEFAULT_MAX_KEYS`; otherwise an int that core's
/// `check_max_keys` accepts (`1..=MAX_MAX_KEYS`).
pub fn max_keys_arg(max_keys: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    let Some(value) = max_keys else {
        return Ok(DEFAULT_MAX_KEYS);
    };
    let max_keys = u64_arg(value, "max_keys")?;
    check_max_keys(max_keys).map_err(|_| {
        invalid(
            value.py(),
            "max_keys",
            &format!("must be in 1..={MAX_MAX_KEYS}, got {max_keys}"),
        )
    })
}

/// The error for header names that core's `check_names` refused, naming `argument` (the
/// parameter the quotas came from) and the names at fault.
pub fn names_error(py: Python<'_>, argument: &str, names: &[&str], error: ConfigError) -> PyErr {
    let name = |index: usize| names.get(index).copied().unwrap_or_default();
    let message = match error {
        ConfigError::DuplicateName { index, first } => format!(
            "quotas {first} and {index} would both be named {:?} in the rate-limit headers, \
             which must tell them apart: name them (Quota(..., name=...))",
            name(index)
        ),
        ConfigError::TooManyNames { given } => format!(
            "at most {} quotas, got {given}",
            cellgate::MAX_POLICY_QUOTAS
        ),
        other => other.to_string(),
    };
    invalid(py, argument, &message)
}

fn meta_of(py: Python<'_>, quotas: &[PyQuota]) -> PyResult<Py<Meta>> {
    Py::new(
        py,
        Meta {
            entries: quotas
                .iter()
                .map(|quota| Entry {
                    name: quota.header_name(),
                    quota: quota.quota,
                })
                .collect(),
        },
    )
}

/// The error for a keyed policy's failure.
pub fn policy_error(py: Python<'_>, error: PolicyError) -> PyErr {
    match error {
        PolicyError::TableFull => table_full(),
        PolicyError::OutOfMemory => pyo3::exceptions::PyMemoryError::new_err(
            "the keyed tables cannot be allocated on this machine (max_keys too large)",
        ),
        PolicyError::TooManyQuotas => invalid(
            py,
            "rate",
            &format!("at most {} quotas", cellgate::MAX_POLICY_QUOTAS),
        ),
        other => invalid(py, "costs", &other.to_string()),
    }
}

/// A rate limiter with one bucket per key (str, bytes or int) in a table of bounded size,
/// allocated once. See the package documentation for the full contract.
#[pyclass(frozen, subclass, module = "cellgate._cellgate", name = "Limiter")]
pub struct Limiter {
    engine: Engine,
    clock: TimeSource,
    meta: Py<Meta>,
    quotas: Vec<PyQuota>,
    max_keys: usize,
    algorithm: &'static str,
    refill: Refill,
}

impl Limiter {
    /// Runs `op` for `key` with `cost` (None: 1) at the clock's time: the body of `check`,
    /// `peek`, `force` and `refund` (see `fastcall.rs`).
    #[inline]
    pub fn run(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        op: Op,
    ) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        let key = key_bytes(key)?;
        let key = key.as_bytes();
        let now_ns = self.clock.now_ns();
        match &self.engine {
            Engine::Single(table) => {
                let decision = match op {
                    Op::Check => table
                        .check_at(key, now_ns, cost)
                        .map_err(|_| table_full())?,
                    Op::Peek => table.peek_at(key, now_ns, cost),
                    Op::Force => table
                        .force_at(key, now_ns, cost)
                        .map_err(|_| table_full())?,
                    Op::Refund => table.refund_at(key, now_ns, cost),
                };
                Ok(Decision::single(py, decision, &self.meta))
            }
            Engine::Multi(policy) => {
                let costs = [cost];
                let decision = match op {
                    Op::Check => policy.check_at(key, now_ns, &costs),
                    Op::Peek => policy.peek_at(key, now_ns, &costs),
                    Op::Force => policy.force_at(key, now_ns, &costs),
                    Op::Refund => policy.refund_at(key, now_ns, &costs),
                }
                .map_err(|error| policy_error(py, error))?;
                Ok(Decision::of_policy(py, &decision, &self.meta))
            }
        }
    }
}

/// An operation of `Limiter::run`.
#[derive(Clone, Copy)]
pub enum Op {
    /// `check`.
    Check,
    /// `peek`.
    Peek,
    /// `force`.
    Force,
    /// `refund`.
    Refund,
}

#[pymethods]
impl Limiter {
    /// `Limiter(rate, *, burst=None, algorithm="gcra", refill=None, max_keys=100_000,
    /// clock=None)`.
    #[new]
    #[pyo3(
        signature = (rate, *, burst=None, algorithm=Given::Absent, refill=None, max_keys=None, clock=None),
        text_signature = "(rate, *, burst=None, algorithm='gcra', refill=None, max_keys=100000, clock=None)"
    )]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        algorithm: Given<'_>,
        refill: Option<&Bound<'_, PyAny>>,
        max_keys: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let quotas = quotas_arg(rate, burst)?;
        let header_names: Vec<String> = quotas.iter().map(PyQuota::header_name).collect();
        let header_names: Vec<&str> = header_names.iter().map(String::as_str).collect();
        check_names(&header_names)
            .map_err(|error| names_error(py, "rate", &header_names, error))?;
        let (algorithm, refill) = algorithm_args(&algorithm, refill)?;
        let refill_mode = refill_arg(py, algorithm, refill.as_deref())?;
        let max_keys = max_keys_arg(max_keys)?;
        let clock = TimeSource::from_arg(clock)?;
        let engine = match quotas.as_slice() {
            [only] => Engine::Single(
                KeyedLimiter::try_with_options(
                    only.quota,
                    refill_mode,
                    max_keys,
                    Seed::random(),
                    NoClock,
                )
                .map_err(|_| table_memory_error(max_keys))?,
            ),
            several => {
                if refill_mode == Refill::Interval {
                    return Err(invalid(
                        py,
                        "refill",
                        "'interval' applies to a single quota; several quotas refill greedily",
                    ));
                }
                let entries = several
                    .iter()
                    .enumerate()
                    .map(|(index, quota)| PolicyEntry {
                        name: index,
                        quota: quota.quota,
                        dimension: 0,
                    });
                Engine::Multi(Box::new(
                    KeyedPolicy::new(entries, max_keys, Seed::random())
                        .map_err(|error| policy_error(py, error))?,
                ))
            }
        };
        Ok(Self {
            engine,
            clock,
            meta: meta_of(py, &quotas)?,
            quotas,
            max_keys,
            algorithm,
            refill: refill_mode,
        })
    }

    // `check`, `peek`, `force` and `refund` are METH_FASTCALL methods: see `fastcall.rs`.

    /// Makes `key`'s bucket full.
    fn reset(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = key_bytes(key)?;
        let now_ns = self.clock.now_ns();
        match &self.engine {
            Engine::Single(table) => table.reset_at(key.as_bytes(), now_ns),
            Engine::Multi(policy) => policy.reset_at(key.as_bytes(), now_ns),
        }
        Ok(())
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

    /// The quotas, in order.
    #[getter]
    fn quotas(&self) -> Vec<PyQuota> {
        self.quotas.clone()
    }

    /// The number of keys the table was sized for.
    #[getter]
    fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// `"gcra"` or `"token_bucket"`.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// `"greedy"` (continuous) or `"interval"` (the whole rate at each period boundary).
    #[getter]
    fn refill(&self) -> &'static str {
        refill_name(self.refill)
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
            self.max_keys
        )
    }
}

fn refill_name(refill: Refill) -> &'static str {
    match refill {
        Refill::Greedy => "greedy",
        Refill::Interval => "interval",
    }
}

enum Cell {
    Gcra(Gcra<TimeSource>),
    TokenBucket(TokenBucket<TimeSource>),
}

/// One bucket without keys: a global limit, or one you keep per object yourself.
#[pyclass(frozen, module = "cellgate", name = "Bucket")]
pub struct Bucket {
    cell: Cell,
    meta: Py<Meta>,
    quota: PyQuota,
}

macro_rules! on_cell {
    ($cell:expr, $bucket:ident => $body:expr) => {
        match $cell {
            Cell::Gcra($bucket) => $body,
            Cell::TokenBucket($bucket) => $body,
        }
    };
}

#[pymethods]
impl Bucket {
    /// `Bucket(rate, *, burst=None, algorithm="gcra", refill=None, initial_tokens=None,
    /// clock=None)`: one quota; `initial_tokens` (token bucket only) starts it partly full.
    #[new]
    #[pyo3(
        signature = (rate, *, burst=None, algorithm=Given::Absent, refill=None, initial_tokens=None, clock=None),
        text_signature = "(rate, *, burst=None, algorithm='gcra', refill=None, initial_tokens=None, clock=None)"
    )]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        algorithm: Given<'_>,
        refill: Option<&Bound<'_, PyAny>>,
        initial_tokens: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let quotas = quotas_arg(rate, burst)?;
        let [quota] = quotas.as_slice() else {
            return Err(invalid(
                py,
                "rate",
                "a Bucket has one quota; use Limiter for several",
            ));
        };
        let (algorithm, refill) = algorithm_args(&algorithm, refill)?;
        let refill_mode = refill_arg(py, algorithm, refill.as_deref())?;
        let clock = TimeSource::from_arg(clock)?;
        let cell = match (algorithm, initial_tokens) {
            ("gcra", None) => Cell::Gcra(Gcra::with_clock(quota.quota, clock)),
            ("gcra", Some(_)) => {
                return Err(invalid(
                    py,
                    "initial_tokens",
                    "applies to algorithm='token_bucket' only",
                ))
            }
            (_, initial) => {
                let mut builder = TokenBucket::builder(quota.quota).refill(refill_mode);
                if let Some(initial) = initial {
                    builder = builder.initial_tokens(u64_arg(initial, "initial_tokens")?);
                }
                Cell::TokenBucket(
                    builder
                        .build_with_clock(clock)
                        .map_err(|error| quota_error(py, error))?,
                )
            }
        };
        Ok(Self {
            cell,
            meta: meta_of(py, std::slice::from_ref(quota))?,
            quota: quota.clone(),
        })
    }

    /// Tests and consumes `cost` atomically.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn check(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        Ok(Decision::single(
            py,
            on_cell!(&self.cell, bucket => bucket.check(cost)),
            &self.meta,
        ))
    }

    /// The decision `check` would make, consuming nothing.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn peek(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        Ok(Decision::single(
            py,
            on_cell!(&self.cell, bucket => bucket.peek(cost)),
            &self.meta,
        ))
    }

    /// Consumes `cost` whether or not it fits (debt).
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn force(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        Ok(Decision::single(
            py,
            on_cell!(&self.cell, bucket => bucket.force(cost)),
            &self.meta,
        ))
    }

    /// Gives `cost` back, never above full.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn refund(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?;
        Ok(Decision::single(
            py,
            on_cell!(&self.cell, bucket => bucket.refund(cost)),
            &self.meta,
        ))
    }

    /// Makes the bucket full.
    fn reset(&self) {
        on_cell!(&self.cell, bucket => bucket.reset());
    }

    /// The quota.
    #[getter]
    fn quota(&self) -> PyQuota {
        self.quota.clone()
    }

    /// The bucket's clock reading, in nanoseconds.
    fn now_ns(&self) -> u64 {
        on_cell!(&self.cell, bucket => bucket.clock().now_ns())
    }
}
