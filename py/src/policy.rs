//! `Policy`: several named dimensions (requests, input tokens, output tokens), each with one
//! or more quotas, decided all-or-nothing per key, with `reserve` of an estimate and `settle`
//! of the actual.

use crate::clock::TimeSource;
use crate::convert::{key_bytes, str_arg, type_name, u64_arg};
use crate::decision::{Decision, Entry, Meta};
use crate::errors::{invalid, invalid_type};
use crate::limiter::{max_keys_arg, names_error, policy_error};
use crate::quota::{check_name, quotas_arg};
use cellgate::{
    check_names, default_quota_name, resolve_costs, resolve_settle_costs, Clock, ConfigError,
    KeyedPolicy, NoClock, PolicyEntry, Seed,
};
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
/// cost of each dimension as a keyword argument. With one dimension a call that names none
/// costs 1; with several, every dimension must be named (0 is a cost), since charging a
/// forgotten one nothing would admit without limit on it (core's `resolve_costs`).
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

impl Policy {
    /// The costs of a call, one per dimension, from its keyword arguments: completed by core's
    /// `resolve_costs` (one dimension: 1 when not named; several: each must be named), or for
    /// a settle by `resolve_settle_costs` (a dimension not named keeps its `estimate`).
    fn costs(
        &self,
        py: Python<'_>,
        given: Option<&Bound<'_, PyDict>>,
        estimate: Option<&[u64]>,
    ) -> PyResult<Vec<u64>> {
        let mut named: Vec<Option<u64>> = vec![None; self.dimensions.len()];
        if let Some(given) = given {
            for (name, value) in given.iter() {
                let name = str_arg(&name, "costs")?;
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
                if let Some(cost) = named.get_mut(index) {
                    *cost = Some(u64_arg(&value, &name)?);
                }
            }
        }
        let mut costs = vec![0; self.dimensions.len()];
        match estimate {
            None => resolve_costs(&named, &mut costs),
            Some(estimate) => resolve_settle_costs(&named, estimate, &mut costs),
        }
        .map_err(|error| match error {
            ConfigError::MissingCost { dimension } => invalid(
                py,
                self.dimensions
                    .get(dimension)
                    .map_or("costs", String::as_str),
                &format!(
                    "no cost given: a policy of several dimensions ({}) needs a cost for each \
                     (0 is allowed), or it would admit without limit on this one",
                    self.dimensions.join(", ")
                ),
            ),
            other => invalid(py, "costs", &other.to_string()),
        })?;
        Ok(costs)
    }

    fn decide(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        costs: Option<&Bound<'_, PyDict>>,
        op: PolicyOp,
    ) -> PyResult<Decision> {
        let costs = self.costs(py, costs, None)?;
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
                    None => format!("{dimension_name}-{}", default_quota_name(&quota.quota)),
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
        let header_names: Vec<&str> = entries
            .iter()
            .map(|(_, entry)| entry.name.as_str())
            .collect();
        check_names(&header_names)
            .map_err(|error| names_error(py, "dimensions", &header_names, error))?;
        let max_keys = max_keys_arg(max_keys)?;
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
        let costs = self.costs(py, estimate, None)?;
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
        if held.policy_id != self.id {
            return Err(invalid(py, "reservation", "was made by another policy"));
        }
        let costs = self.costs(py, actual, Some(&held.estimate))?;
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
