//! `Policy`: several named dimensions (requests, input tokens, output tokens), each with one
//! or more quotas, decided all-or-nothing per key, with `reserve` of an estimate and `settle`
//! of the actual: core's `cellgate::Limiter` with one dimension per name, costs given as
//! keyword arguments, its tables in this process or in a `SharedMemory` store (`store.rs`).

use crate::boundary::{
    config_error, invalid, invalid_type, key_bytes, str_arg, type_name, u64_arg, Arguments, Given,
};
use crate::clock::TimeSource;
use crate::headers::{Core, Decision, Source};
use crate::limiter::{options_arg, stats_of};
use crate::quota::quotas_arg;
use crate::store::{store_arg, SharedMemory};
use cellgate::Clock;
use cellgate::{
    default_quota_name, resolve_costs, ConfigError, LimiterQuota, LimiterReservation, Op, Refill,
};
use cellgate_host::TableSlots;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::sync::Mutex;

/// A keyed policy over named dimensions. `Policy({"requests": "60/minute; 1000/day",
/// "output_tokens": "20000/minute"}, max_keys=100_000, on_full="deny", clock=None,
/// store=None)`; every
/// call gives the cost of each dimension as a keyword argument. With one dimension a call
/// that names none costs 1; with several, every dimension must be named (0 is a cost), since
/// charging a forgotten one nothing would admit without limit on it (core's `resolve_costs`).
#[pyclass(frozen, module = "cellgate", name = "Policy")]
pub struct Policy {
    core: Py<Core>,
    clock: TimeSource,
    dimensions: Vec<String>,
    /// The shared store the tables are in, or `None` for this process's heap.
    store: Option<Py<SharedMemory>>,
}

/// An admitted (or refused) reservation of estimated costs, to settle with the actual ones.
#[pyclass(frozen, module = "cellgate", name = "Reservation")]
pub struct Reservation {
    /// Core's reservation, taken (consumed) by the settle.
    reservation: Mutex<Option<LimiterReservation>>,
    /// Whether the estimate was admitted (`decision.allowed`).
    allowed: bool,
    /// The `Decision` of the reserving check.
    decision: Py<PyAny>,
    estimate: Vec<u64>,
    /// The policy's core: a reservation offered to another policy is refused before core's
    /// (consuming) settle sees it, so that it stays pending for its own.
    core: Py<Core>,
    dimensions: Vec<String>,
}

/// The `(dimension, rate)` pairs of a `dimensions` argument: a dict, or a list of pairs.
fn dimension_pairs<'py>(
    dimensions: &Bound<'py, PyAny>,
) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let py = dimensions.py();
    let wrong = || {
        invalid_type(
            py,
            "dimensions",
            &format!(
                "must be a dict of dimension name to rate, or a list of (dimension, rate) \
                 pairs, not {}",
                type_name(dimensions).unwrap_or_default()
            ),
        )
    };
    let items: Vec<Bound<'py, PyAny>> = if let Ok(dict) = dimensions.cast::<PyDict>() {
        dict.items().iter().collect()
    } else if dimensions.is_instance_of::<PyList>() || dimensions.is_instance_of::<PyTuple>() {
        dimensions.try_iter()?.collect::<PyResult<_>>()?
    } else {
        return Err(wrong());
    };
    let mut pairs = Vec::new();
    for item in items {
        let (name, rate): (Bound<'py, PyAny>, Bound<'py, PyAny>) =
            item.extract().map_err(|_| wrong())?;
        if !name.is_instance_of::<PyString>() {
            return Err(invalid_type(
                py,
                "dimensions",
                &format!(
                    "dimension names must be str, not {}",
                    type_name(&name).unwrap_or_default()
                ),
            ));
        }
        let name = str_arg(&name, "dimensions")?.into_owned();
        pairs.push((name, rate));
    }
    if pairs.is_empty() {
        return Err(invalid(
            py,
            "dimensions",
            "must name at least one dimension",
        ));
    }
    Ok(pairs)
}

/// Names a dimension may not take: the calls' own parameters (`check(key, **costs)`,
/// `settle(reservation, **actual)`, a Redis policy's `now_ns=`).
const RESERVED_NAMES: [&str; 3] = ["key", "reservation", "now_ns"];

/// The quotas of a `dimensions` argument, parsed once for `Policy` and `_RemoteLimiter`.
pub struct PolicyQuotas {
    /// The dimension names, in order of first appearance.
    pub dimensions: Vec<String>,
    /// Each quota's header name (given, or derived from its dimension).
    pub names: Vec<String>,
    /// Each quota with the index of its dimension.
    pub quotas: Vec<(usize, cellgate::Quota)>,
}

impl PolicyQuotas {
    /// Parses `dimensions` (a dict of dimension name to rate, or a list of pairs). A quota
    /// with no name of its own is named after its dimension when it is the dimension's only
    /// one, else `{dimension}-{core's default name}` (`"requests-1000-in-1d"`).
    ///
    /// # Errors
    /// `InvalidArgumentType`/`InvalidArgument` naming `dimensions` (or the rate at fault).
    pub fn parse(dimensions: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = dimensions.py();
        let pairs = dimension_pairs(dimensions)?;
        let mut names: Vec<String> = Vec::new();
        let mut quotas = Vec::new();
        for (name, rate) in &pairs {
            if RESERVED_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    py,
                    "dimensions",
                    &format!("{name:?} cannot name a dimension: it is a parameter of the calls"),
                ));
            }
            let index = match names.iter().position(|known| known == name) {
                Some(index) => index,
                None => {
                    names.push(name.clone());
                    names.len() - 1
                }
            };
            for quota in quotas_arg(rate, None)? {
                quotas.push((index, quota));
            }
        }
        let per_dimension = |index: usize| {
            quotas
                .iter()
                .filter(|(dimension, _)| *dimension == index)
                .count()
        };
        let header_names: Vec<String> = quotas
            .iter()
            .map(|(dimension, quota)| {
                let dimension_name = names.get(*dimension).cloned().unwrap_or_default();
                match &quota.name {
                    Some(given) => given.clone(),
                    None if per_dimension(*dimension) == 1 => dimension_name,
                    None => format!("{dimension_name}-{}", default_quota_name(&quota.quota)),
                }
            })
            .collect();
        Ok(Self {
            dimensions: names,
            names: header_names,
            quotas: quotas
                .into_iter()
                .map(|(dimension, quota)| (dimension, quota.quota))
                .collect(),
        })
    }

    /// Core's entries, borrowing the names.
    pub fn entries(&self) -> Vec<LimiterQuota<'_>> {
        self.quotas
            .iter()
            .zip(&self.names)
            .map(|((dimension, quota), name)| LimiterQuota {
                quota: *quota,
                name: Some(name),
                dimension: *dimension,
            })
            .collect()
    }

    /// How core's errors name these arguments.
    pub fn arguments(&self) -> Arguments<'_> {
        Arguments {
            quotas: "dimensions",
            names: &self.names,
            dimensions: &self.dimensions,
        }
    }
}

/// The costs of a call, one per dimension in order, from its keyword arguments: `None` where
/// a dimension is not named (core's `Limiter` then applies its rule).
///
/// # Errors
/// `InvalidArgument` naming a keyword that is not a dimension, or a cost that is not an
/// integer from 0 to 2^64 - 1.
pub fn named_costs(
    py: Python<'_>,
    dimensions: &[String],
    given: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<Option<u64>>> {
    let mut named: Vec<Option<u64>> = vec![None; dimensions.len()];
    if let Some(given) = given {
        for (name, value) in given.iter() {
            let name = str_arg(&name, "costs")?;
            let Some(index) = dimensions.iter().position(|dimension| *dimension == name) else {
                return Err(invalid(
                    py,
                    &name,
                    &format!(
                        "is not a dimension of this policy (dimensions: {})",
                        dimensions.join(", ")
                    ),
                ));
            };
            if let Some(cost) = named.get_mut(index) {
                *cost = Some(u64_arg(&value, &name)?);
            }
        }
    }
    Ok(named)
}

/// Takes the charge a reservation holds, for its one settle (in process or in Redis); when it
/// holds none, `InvalidArgument` naming `reservation`, `empty` saying why.
///
/// # Errors
/// As above; also a lock poisoned by a thread that panicked holding it.
pub fn take_reservation<T>(py: Python<'_>, held: &Mutex<Option<T>>, empty: &str) -> PyResult<T> {
    let mut slot = held.lock().map_err(|_| {
        invalid(
            py,
            "reservation",
            "is unusable (a thread panicked holding it)",
        )
    })?;
    slot.take().ok_or_else(|| invalid(py, "reservation", empty))
}

impl Policy {
    /// Core's limiter.
    fn limiter(&self) -> &cellgate::Limiter<TableSlots> {
        match &self.core.get().source {
            Source::Limiter(limiter) => limiter,
            _ => unreachable!("a Policy's core is a limiter"),
        }
    }

    /// The costs of a call, one per dimension in order, from its keyword arguments.
    fn costs(
        &self,
        py: Python<'_>,
        given: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Option<u64>>> {
        named_costs(py, &self.dimensions, given)
    }

    #[cold]
    fn error(&self, py: Python<'_>, error: ConfigError) -> PyErr {
        let names: Vec<String> = self.limiter().names().map(str::to_owned).collect();
        config_error(
            py,
            error,
            &Arguments {
                quotas: "dimensions",
                names: &names,
                dimensions: &self.dimensions,
            },
        )
    }

    /// Applies `op` through core's one verb.
    fn apply(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
        op: Op,
    ) -> PyResult<Decision> {
        let costs = self.costs(py, costs)?;
        let key = key_bytes(key)?;
        let decision = self
            .limiter()
            .apply_at(key.as_bytes(), self.clock.now_ns(), &costs, op)
            .map_err(|error| self.error(py, error))?;
        Ok(Decision::of_limiter(py, &decision, &self.core))
    }
}

#[pymethods]
impl Policy {
    /// `dimensions` maps each dimension's name to its quotas: a rate string (possibly a list,
    /// `"60/minute; 1000/day"`), a `Quota`, or a list of them; or it is a list of
    /// `(dimension, rate)` pairs, which fixes the quotas' order (ties between quotas go to the
    /// first). At most 8 quotas in all. A quota with no name of its own is named after its
    /// dimension when it is the dimension's only one, else `{dimension}-{core's default name}`
    /// (`"requests-1000-in-1d"`).
    #[new]
    #[pyo3(signature = (dimensions, *, max_keys=None, on_full=Given::Absent, block_ms=None, clock=None, store=None), text_signature = "(dimensions, *, max_keys=100000, on_full='deny', block_ms=0, clock=None, store=None)")]
    fn new(
        py: Python<'_>,
        dimensions: &Bound<'_, PyAny>,
        max_keys: Option<&Bound<'_, PyAny>>,
        on_full: Given<'_>,
        block_ms: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        store: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let parsed = PolicyQuotas::parse(dimensions)?;
        let entries = parsed.entries();
        let options = options_arg(max_keys, &on_full, Refill::Greedy)?;
        let block_ns = crate::limiter::block_ns_arg(block_ms)?;
        let clock = TimeSource::from_arg(clock)?;
        let store = store_arg(store)?;
        let limiter = crate::store::open(
            py,
            &entries,
            options,
            store.as_ref(),
            &clock,
            &parsed.arguments(),
        )?
        .with_block_ns(block_ns);
        Ok(Self {
            core: Py::new(
                py,
                Core {
                    source: Source::Limiter(limiter),
                },
            )?,
            clock,
            dimensions: parsed.dimensions,
            store,
        })
    }

    /// Admits the costs for `key` only if every quota admits its dimension's cost, charging
    /// all or none. One dimension: a call naming no cost costs 1. Several: every dimension
    /// must be named (`InvalidArgument` naming the one missing); a dimension that costs 0 is
    /// shown but cannot refuse.
    #[pyo3(signature = (key, **costs))]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.apply(py, key, costs, Op::Check)
    }

    /// The decision `check` would make, consuming nothing.
    #[pyo3(signature = (key, **costs))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.apply(py, key, costs, Op::Peek)
    }

    /// Charges the costs on every quota regardless (debt).
    #[pyo3(signature = (key, **costs))]
    fn force(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.apply(py, key, costs, Op::Force)
    }

    /// Gives the costs back on every quota, never above full.
    #[pyo3(signature = (key, **costs))]
    fn refund(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.apply(py, key, costs, Op::Refund)
    }

    /// Makes every quota's bucket for `key` full.
    fn reset(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let zeros = PyDict::new(py);
        for dimension in &self.dimensions {
            zeros.set_item(dimension, 0)?;
        }
        self.apply(py, key, Some(&zeros), Op::Reset).map(drop)
    }

    /// Reserves an estimate for `key` (a `check` of it). The `Reservation` is truthy when
    /// admitted; settle it with the actual costs once known.
    #[pyo3(signature = (key, **estimate))]
    fn reserve(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        estimate: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Reservation> {
        let costs = self.costs(py, estimate)?;
        let key = key_bytes(key)?;
        let reserved = self
            .limiter()
            .reserve_at(key.as_bytes(), self.clock.now_ns(), &costs)
            .map_err(|error| self.error(py, error))?;
        // The costs core reserved (resolved by its rule: reserve_at has just accepted them).
        let mut estimate = vec![0; costs.len()];
        resolve_costs(&costs, &mut estimate).map_err(|error| self.error(py, error))?;
        Ok(Reservation {
            allowed: reserved.decision.allowed,
            decision: Decision::of_limiter(py, &reserved.decision, &self.core)
                .into_pyobject(py)?
                .unbind(),
            reservation: Mutex::new(reserved.reservation),
            estimate,
            core: self.core.clone_ref(py),
            dimensions: self.dimensions.clone(),
        })
    }

    /// Settles `reservation` with the actual costs (a dimension not given keeps its estimate):
    /// refunds what was not used, charges what exceeds the estimate (possibly into debt).
    /// A reservation is settled once; a refused one cannot be settled.
    #[pyo3(signature = (reservation, **actual))]
    fn settle(
        &self,
        py: Python<'_>,
        reservation: &Bound<'_, PyAny>,
        actual: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        let reservation = reservation.cast::<Reservation>().map_err(|_| {
            invalid_type(
                py,
                "reservation",
                &format!(
                    "must be a Reservation from Policy.reserve, not {}",
                    type_name(reservation).unwrap_or_default()
                ),
            )
        })?;
        let held = reservation.get();
        if !held.core.is(&self.core) {
            return Err(self.error(py, ConfigError::ForeignReservation));
        }
        let costs = self.costs(py, actual)?;
        let empty = if held.allowed {
            "was already settled"
        } else {
            "was refused: nothing was reserved"
        };
        let taken = take_reservation(py, &held.reservation, empty)?;
        let decision = self
            .limiter()
            .settle_at(self.clock.now_ns(), taken, &costs)
            .map_err(|error| self.error(py, error))?;
        Ok(Decision::of_limiter(py, &decision, &self.core))
    }

    /// The `SharedMemory` holding the tables, or None for this process's memory.
    #[getter]
    fn store(&self, py: Python<'_>) -> Option<Py<SharedMemory>> {
        self.store.as_ref().map(|store| store.clone_ref(py))
    }

    /// The dimension names, in order.
    #[getter]
    fn dimensions(&self) -> Vec<String> {
        self.dimensions.clone()
    }

    /// The quotas' names (as headers show them), in order.
    #[getter]
    fn quota_names(&self) -> Vec<String> {
        self.limiter().names().map(str::to_owned).collect()
    }

    /// The number of keys each quota's table was sized for.
    #[getter]
    fn max_keys(&self) -> usize {
        self.limiter().max_keys()
    }

    /// `"deny"` or `"allow_untracked"`: the answer to a new key a table has no room for.
    #[getter]
    fn on_full(&self) -> &'static str {
        crate::limiter::on_full_name(self.limiter().on_full())
    }

    /// Milliseconds a denial blocks its key for (0: never), as `Limiter.block_ms`.
    #[getter]
    fn block_ms(&self) -> u64 {
        self.limiter().block_ns() / crate::limiter::NS_PER_MS
    }

    /// Core's counters of each quota's table, as `Limiter.stats`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        stats_of(py, self.limiter())
    }

    /// The policy's clock reading, in nanoseconds.
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
}

#[pymethods]
impl Reservation {
    /// Whether the estimate was admitted (and so reserved).
    #[getter]
    fn allowed(&self) -> bool {
        self.allowed
    }

    /// The decision of the check that reserved the estimate.
    #[getter]
    fn decision(&self, py: Python<'_>) -> Py<PyAny> {
        self.decision.clone_ref(py)
    }

    /// The estimate, per dimension.
    #[getter]
    fn estimate(&self) -> Vec<(String, u64)> {
        self.dimensions
            .iter()
            .cloned()
            .zip(self.estimate.iter().copied())
            .collect()
    }

    /// Whether the reservation still waits to be settled.
    #[getter]
    fn pending(&self) -> bool {
        self.reservation
            .lock()
            .map(|slot| slot.is_some())
            .unwrap_or(false)
    }

    fn __bool__(&self) -> bool {
        self.allowed()
    }
}
