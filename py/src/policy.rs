//! `Policy`: several named dimensions (requests, input tokens, output tokens), each with one
//! or more quotas, decided all-or-nothing per key, with `reserve` of an estimate and `settle`
//! of the actual.

use crate::clock::TimeSource;
use crate::convert::{key_bytes, type_name, u64_arg};
use crate::decision::{Decision, Entry, Meta};
use crate::errors::{invalid, invalid_type};
use crate::limiter::{policy_error, DEFAULT_MAX_KEYS, MAX_MAX_KEYS};
use crate::quota::{check_name, label, quotas_arg};
use cellgate::{Clock, KeyedPolicy, NoClock, PolicyEntry, Seed};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One operation of a keyed policy at a time, with costs.
type PolicyOp = fn(
    &KeyedPolicy<usize, NoClock>,
    &[u8],
    u64,
    &[u64],
) -> Result<cellgate::PolicyDecision, cellgate::PolicyError>;

/// Distinguishes policies, so that a reservation is settled only by the policy that made it.
static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// A keyed policy over named dimensions. `Policy({"requests": "60/minute; 1000/day",
/// "output_tokens": "20000/minute"}, max_keys=100_000, clock=None)`; every call gives the
/// cost of each dimension as a keyword argument (missing dimensions cost 0).
#[pyclass(frozen, module = "cellgate", name = "Policy")]
pub struct Policy {
    inner: KeyedPolicy<usize, NoClock>,
    clock: TimeSource,
    meta: Py<Meta>,
    dimensions: Vec<String>,
    id: u64,
}

/// An admitted (or refused) reservation of estimated costs, to settle with the actual ones.
#[pyclass(frozen, module = "cellgate", name = "Reservation")]
pub struct Reservation {
    reservation: Mutex<Option<cellgate::Reservation>>,
    /// Whether the estimate was admitted (`decision.allowed`).
    allowed: bool,
    /// The `Decision` of the reserving check.
    decision: Py<PyAny>,
    estimate: Vec<u64>,
    policy_id: u64,
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
        let name = name
            .cast::<PyString>()
            .map_err(|_| invalid_type(py, "dimensions", "dimension names must be str"))?
            .to_cow()?
            .into_owned();
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

impl Policy {
    /// The costs of a call, one per dimension, from keyword arguments.
    fn costs(
        &self,
        py: Python<'_>,
        given: Option<&Bound<'_, PyDict>>,
        default: &[u64],
    ) -> PyResult<Vec<u64>> {
        let mut costs = default.to_vec();
        costs.resize(self.dimensions.len(), 0);
        if let Some(given) = given {
            for (name, value) in given.iter() {
                let name = name.cast::<PyString>()?.to_cow()?.into_owned();
                let Some(index) = self
                    .dimensions
                    .iter()
                    .position(|dimension| *dimension == name)
                else {
                    return Err(invalid(
                        py,
                        &name,
                        &format!(
                            "is not a dimension of this policy (dimensions: {})",
                            self.dimensions.join(", ")
                        ),
                    ));
                };
                if let Some(cost) = costs.get_mut(index) {
                    *cost = u64_arg(&value, &name)?;
                }
            }
        }
        Ok(costs)
    }

    fn decide(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
        op: PolicyOp,
    ) -> PyResult<Decision> {
        let costs = self.costs(py, costs, &[])?;
        let key = key_bytes(key)?;
        let decision = op(&self.inner, key.as_bytes(), self.clock.now_ns(), &costs)
            .map_err(|error| policy_error(py, error))?;
        Ok(Decision::of_policy(py, &decision, &self.meta))
    }
}

#[pymethods]
impl Policy {
    /// `dimensions` maps each dimension's name to its quotas: a rate string (possibly a list,
    /// `"60/minute; 1000/day"`), a `Quota`, or a list of them; or it is a list of
    /// `(dimension, rate)` pairs, which fixes the quotas' order (ties between quotas go to the
    /// first). At most 8 quotas in all.
    #[new]
    #[pyo3(signature = (dimensions, *, max_keys=None, clock=None), text_signature = "(dimensions, *, max_keys=100000, clock=None)")]
    fn new(
        py: Python<'_>,
        dimensions: &Bound<'_, PyAny>,
        max_keys: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let pairs = dimension_pairs(dimensions)?;
        let mut names: Vec<String> = Vec::new();
        let mut quotas = Vec::new();
        for (name, rate) in &pairs {
            check_name(py, "dimensions", name)?;
            if name == "key" || name == "reservation" {
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
        let entries: Vec<(usize, Entry)> = quotas
            .iter()
            .map(|(dimension, quota)| {
                let dimension_name = names.get(*dimension).cloned().unwrap_or_default();
                let name = match &quota.name {
                    Some(given) => given.clone(),
                    None if per_dimension(*dimension) == 1 => dimension_name,
                    None => format!("{dimension_name}-{}", label(&quota.quota)),
                };
                (
                    *dimension,
                    Entry {
                        name,
                        quota: quota.quota,
                    },
                )
            })
            .collect();
        let max_keys = match max_keys {
            None => DEFAULT_MAX_KEYS,
            Some(value) => u64_arg(value, "max_keys")?,
        };
        if max_keys == 0 || max_keys > MAX_MAX_KEYS {
            return Err(invalid(
                py,
                "max_keys",
                &format!("must be in 1..={MAX_MAX_KEYS}, got {max_keys}"),
            ));
        }
        let max_keys =
            usize::try_from(max_keys).map_err(|_| invalid(py, "max_keys", "too large"))?;
        let inner = KeyedPolicy::new(
            entries
                .iter()
                .enumerate()
                .map(|(index, (dimension, entry))| PolicyEntry {
                    name: index,
                    quota: entry.quota,
                    dimension: *dimension,
                }),
            max_keys,
            Seed::random(),
        )
        .map_err(|error| policy_error(py, error))?;
        Ok(Self {
            inner,
            clock: TimeSource::from_arg(clock)?,
            meta: Py::new(
                py,
                Meta {
                    entries: entries.into_iter().map(|(_, entry)| entry).collect(),
                },
            )?,
            dimensions: names,
            id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Admits the costs for `key` only if every quota admits its dimension's cost, charging
    /// all or none. A dimension that costs 0 is shown but cannot refuse.
    #[pyo3(signature = (key, **costs))]
    fn check(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.decide(py, key, costs, |policy, key, now, costs| {
            policy.check_at(key, now, costs)
        })
    }

    /// The decision `check` would make, consuming nothing.
    #[pyo3(signature = (key, **costs))]
    fn peek(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.decide(py, key, costs, |policy, key, now, costs| {
            policy.peek_at(key, now, costs)
        })
    }

    /// Charges the costs on every quota regardless (debt).
    #[pyo3(signature = (key, **costs))]
    fn force(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.decide(py, key, costs, |policy, key, now, costs| {
            policy.force_at(key, now, costs)
        })
    }

    /// Gives the costs back on every quota, never above full.
    #[pyo3(signature = (key, **costs))]
    fn refund(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        self.decide(py, key, costs, |policy, key, now, costs| {
            policy.refund_at(key, now, costs)
        })
    }

    /// Makes every quota's bucket for `key` full.
    fn reset(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = key_bytes(key)?;
        self.inner.reset_at(key.as_bytes(), self.clock.now_ns());
        Ok(())
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
        let costs = self.costs(py, estimate, &[])?;
        let key = key_bytes(key)?;
        let reserved = self
            .inner
            .reserve_at(key.as_bytes(), self.clock.now_ns(), &costs)
            .map_err(|error| policy_error(py, error))?;
        Ok(Reservation {
            reservation: Mutex::new(reserved.reservation),
            allowed: reserved.decision.decision().allowed,
            decision: Decision::of_policy(py, &reserved.decision, &self.meta)
                .into_pyobject(py)?
                .unbind(),
            estimate: costs,
            policy_id: self.id,
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
        reservation: &Bound<'_, Reservation>,
        actual: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Decision> {
        let held = reservation.get();
        if held.policy_id != self.id {
            return Err(invalid(py, "reservation", "was made by another policy"));
        }
        let costs = self.costs(py, actual, &held.estimate)?;
        let mut slot = held.reservation.lock().map_err(|_| {
            invalid(
                py,
                "reservation",
                "is unusable (a thread panicked holding it)",
            )
        })?;
        let Some(taken) = slot.take() else {
            let reason = if held.allowed {
                "was already settled"
            } else {
                "was refused: nothing was reserved"
            };
            return Err(invalid(py, "reservation", reason));
        };
        let decision = self
            .inner
            .settle_at(self.clock.now_ns(), taken, &costs)
            .map_err(|error| policy_error(py, error))?;
        Ok(Decision::of_policy(py, &decision, &self.meta))
    }

    /// The dimension names, in order.
    #[getter]
    fn dimensions(&self) -> Vec<String> {
        self.dimensions.clone()
    }

    /// The quotas' names (as headers show them), in order.
    #[getter]
    fn quota_names(&self) -> Vec<String> {
        self.meta
            .get()
            .entries
            .iter()
            .map(|entry| entry.name.clone())
            .collect()
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
