//! `_RemoteLimiter`: core's `RemoteLimiter` (a limiter whose buckets live in Redis) with
//! Python's arguments. Core holds the script, encodes each call's `KEYS` and `ARGV`, decodes
//! (and re-checks) the reply and applies the outage policy; this file translates arguments,
//! and `cellgate/redis.py` sends the bytes on the user's own redis-py client.

use crate::boundary::{
    config_error, cost_arg, invalid, invalid_type, key_bytes, str_arg, u64_arg, Arguments, Given,
};
use crate::clock::TimeSource;
use crate::headers::{Core, Decision, Source};
use crate::limiter::{one_dimension, options_arg, refill_args};
use crate::policy::{named_costs, take_reservation, PolicyQuotas};
use crate::quota::quotas_arg;
use cellgate::remote::{DEFAULT_OUTAGE_RETRY_AFTER_NS, DEFAULT_PREFIX};
use cellgate::Clock;
use cellgate::{
    resolve_costs, LimiterOptions, LimiterQuota, Op, OutagePolicy, Refill, RemoteCall,
    RemoteDecided, RemoteError, RemoteLimiter, RemoteOptions, RemoteReservation, SettlePlan,
    SCRIPT, SCRIPT_SHA1_HEX,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::sync::Mutex;

/// One encoded call, held until its reply (or its failure) is decided: core's `RemoteCall`.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_RemoteCall")]
pub struct PyRemoteCall {
    call: RemoteCall,
    /// A reserve's costs per dimension, as core's rule completes them (`resolve_costs`); empty
    /// for any other call.
    estimate: Vec<u64>,
}

/// An admitted reserve's charge (core's `RemoteReservation`), taken by its one settle.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_RemoteReservation")]
pub struct PyRemoteReservation {
    reservation: Mutex<Option<RemoteReservation>>,
    /// Whether Redis holds the charge (not the outage policy).
    remote: bool,
    /// The limiter that made it: another's is refused before core's (consuming) settle.
    owner: Py<Core>,
}

/// The native half of `cellgate.redis`'s limiters: core's `RemoteLimiter` over the quotas of
/// a rate string (`RedisLimiter`: one dimension, costs as `cost=`) or of named dimensions
/// (`RedisPolicy`: costs as a dict per dimension). See `_cellgate.pyi`.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_RemoteLimiter")]
pub struct PyRemoteLimiter {
    core: Py<Core>,
    clock: TimeSource,
    names: Vec<String>,
    /// The dimension names (`["cost"]` for a rate string: its errors name `cost`).
    dimensions: Vec<String>,
    /// Whether the quotas came from `dimensions` (costs are then a dict).
    policy: bool,
}

/// The `outage` argument: `"fallback"` (absent), `"open"` or `"closed"` (core's names).
fn outage_arg(outage: &Given<'_>) -> PyResult<OutagePolicy> {
    match outage {
        Given::Absent => Ok(OutagePolicy::Fallback),
        Given::Value(value) => {
            let name = str_arg(value, "outage")?;
            OutagePolicy::from_option_name(&name).ok_or_else(|| {
                invalid(
                    value.py(),
                    "outage",
                    &format!("must be 'fallback', 'open' or 'closed', not {name:?}"),
                )
            })
        }
    }
}

/// The `op` argument of `encode`.
fn op_arg(py: Python<'_>, op: &str) -> PyResult<Op> {
    match op {
        "check" => Ok(Op::Check),
        "peek" => Ok(Op::Peek),
        "force" => Ok(Op::Force),
        "refund" => Ok(Op::Refund),
        "reset" => Ok(Op::Reset),
        other => Err(invalid(
            py,
            "op",
            &format!("must be 'check', 'peek', 'force', 'refund' or 'reset', not {other:?}"),
        )),
    }
}

/// The `key_secret` argument: 16 bytes (a `bytes`), or `None`.
fn key_secret_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<[u8; 16]>> {
    let Some(value) = value.filter(|value| !value.is_none()) else {
        return Ok(None);
    };
    let py = value.py();
    let Ok(bytes) = value.cast::<PyBytes>() else {
        return Err(invalid_type(
            py,
            "key_secret",
            "must be 16 bytes (a bytes object)",
        ));
    };
    <[u8; 16]>::try_from(bytes.as_bytes())
        .map(Some)
        .map_err(|_| {
            invalid(
                py,
                "key_secret",
                &format!("must be 16 bytes, not {}", bytes.as_bytes().len()),
            )
        })
}

/// Core's `RemoteLimiter` over `entries`, its errors named by `arguments`.
fn remote_limiter(
    py: Python<'_>,
    entries: &[LimiterQuota<'_>],
    options: LimiterOptions,
    remote_options: RemoteOptions<'_>,
    arguments: &Arguments<'_>,
) -> PyResult<RemoteLimiter> {
    RemoteLimiter::new(entries, options, remote_options).map_err(|error| match error {
        RemoteError::Config(error) => config_error(py, error, arguments),
        RemoteError::PrefixBrace => invalid(
            py,
            "prefix",
            "must not hold '{' or '}' (the user key is the Cluster hash tag)",
        ),
        other => invalid(py, "expiry_grace_ms", &other.to_string()),
    })
}

/// The script's reply as its strings, or `None` when it is not a list of `bytes`.
fn reply_parts(reply: &Bound<'_, PyAny>) -> Option<Vec<Vec<u8>>> {
    let list = reply.cast::<PyList>().ok()?;
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(3);
    for item in list.iter() {
        parts.push(item.cast::<PyBytes>().ok()?.as_bytes().to_vec());
    }
    Some(parts)
}

/// `(KEYS[1], ARGV[2], call)` of an encoded call.
type Encoded<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, PyRemoteCall);

impl PyRemoteLimiter {
    fn remote(&self) -> &RemoteLimiter {
        match &self.core.get().source {
            Source::Remote(remote) => remote,
            _ => unreachable!("a _RemoteLimiter's core is a remote limiter"),
        }
    }

    /// The costs of a call, one per dimension: `cost` (an int, or None) for a rate string's
    /// limiter, a dict of dimension name to cost (or None) for a policy's.
    fn costs(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Option<u64>>> {
        let cost = cost.filter(|value| !value.is_none());
        if !self.policy {
            return Ok(vec![cost_arg(cost)?]);
        }
        match cost {
            None => named_costs(py, &self.dimensions, None),
            Some(value) => {
                let given = value.cast::<PyDict>().map_err(|_| {
                    invalid_type(py, "costs", "must be a dict of dimension name to cost")
                })?;
                named_costs(py, &self.dimensions, Some(given))
            }
        }
    }

    #[cold]
    fn error(&self, py: Python<'_>, error: cellgate::ConfigError) -> PyErr {
        config_error(
            py,
            error,
            &Arguments {
                quotas: if self.policy { "dimensions" } else { "rate" },
                names: &self.names,
                dimensions: &self.dimensions,
            },
        )
    }

    fn now_arg(now_ns: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
        now_ns
            .filter(|value| !value.is_none())
            .map(|value| u64_arg(value, "now_ns"))
            .transpose()
    }

    fn encoded<'py>(py: Python<'py>, call: RemoteCall, estimate: Vec<u64>) -> Encoded<'py> {
        (
            PyBytes::new(py, call.key()),
            PyBytes::new(py, call.argv()),
            PyRemoteCall { call, estimate },
        )
    }

    /// A reserve's `(decision, reservation, estimate)`: the reservation when admitted (else
    /// None), and the costs asked per dimension as core completed them (shown by a refused
    /// reservation too).
    fn reserved<'py>(
        &self,
        py: Python<'py>,
        call: &PyRemoteCall,
        decided: RemoteDecided,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let decision = Decision::of_limiter(py, &decided.decision, &self.core);
        let reservation = decided.reservation.map(|reservation| PyRemoteReservation {
            remote: reservation.is_remote(),
            reservation: Mutex::new(Some(reservation)),
            owner: self.core.clone_ref(py),
        });
        (decision, reservation, call.estimate.clone()).into_pyobject(py)
    }
}

#[pymethods]
impl PyRemoteLimiter {
    /// See `_cellgate.pyi`.
    #[new]
    #[pyo3(
        signature = (rate=None, *, dimensions=None, burst=None, algorithm=Given::Absent, refill=None, max_keys=None, on_full=Given::Absent, clock=None, prefix=None, outage=Given::Absent, key_secret=None, expiry_grace_ms=None, outage_retry_after_ms=None, block_ms=None),
        text_signature = "(rate=None, *, dimensions=None, burst=None, algorithm='gcra', refill=None, max_keys=None, on_full='deny', clock=None, prefix=None, outage='fallback', key_secret=None, expiry_grace_ms=None, outage_retry_after_ms=None, block_ms=0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        rate: Option<&Bound<'_, PyAny>>,
        dimensions: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        algorithm: Given<'_>,
        refill: Option<&Bound<'_, PyAny>>,
        max_keys: Option<&Bound<'_, PyAny>>,
        on_full: Given<'_>,
        clock: Option<&Bound<'_, PyAny>>,
        prefix: Option<&Bound<'_, PyAny>>,
        outage: Given<'_>,
        key_secret: Option<&Bound<'_, PyAny>>,
        expiry_grace_ms: Option<&Bound<'_, PyAny>>,
        outage_retry_after_ms: Option<&Bound<'_, PyAny>>,
        block_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let block_ns = crate::limiter::block_ns_arg(block_ms)?;
        let prefix = match prefix {
            None => DEFAULT_PREFIX.to_owned(),
            Some(value) => str_arg(value, "prefix")?.into_owned(),
        };
        let outage_retry_after_ns = match outage_retry_after_ms {
            None => DEFAULT_OUTAGE_RETRY_AFTER_NS,
            Some(value) => u64_arg(value, "outage_retry_after_ms")?
                .checked_mul(1_000_000)
                .ok_or_else(|| invalid(py, "outage_retry_after_ms", "is too large"))?,
        };
        let remote_options = RemoteOptions {
            prefix: &prefix,
            key_secret: key_secret_arg(key_secret)?,
            outage: outage_arg(&outage)?,
            expiry_grace_ms: match expiry_grace_ms {
                None => 0,
                Some(value) => u64_arg(value, "expiry_grace_ms")?,
            },
            outage_retry_after_ns,
        };
        let clock_arg = clock;
        let (remote, dimension_names, policy) = match (rate, dimensions) {
            (Some(rate), None) => {
                let quotas = quotas_arg(rate, burst)?;
                let (_, refill) = refill_args(py, &algorithm, refill)?;
                let options = options_arg(max_keys, &on_full, refill)?;
                let (entries, names) = one_dimension(&quotas);
                let dimensions = vec!["cost".to_owned()];
                let arguments = Arguments {
                    quotas: "rate",
                    names: &names,
                    dimensions: &dimensions,
                };
                let remote = remote_limiter(py, &entries, options, remote_options, &arguments)?;
                (remote, dimensions, false)
            }
            (None, Some(dimensions)) => {
                if burst.is_some() || refill.is_some() || !matches!(algorithm, Given::Absent) {
                    return Err(invalid(
                        py,
                        "dimensions",
                        "takes its quotas' bursts from Quota(...): burst, algorithm and refill \
                         are arguments of a rate",
                    ));
                }
                let parsed = PolicyQuotas::parse(dimensions)?;
                let options = options_arg(max_keys, &on_full, Refill::Greedy)?;
                let remote = remote_limiter(
                    py,
                    &parsed.entries(),
                    options,
                    remote_options,
                    &parsed.arguments(),
                )?;
                (remote, parsed.dimensions, true)
            }
            _ => {
                return Err(invalid_type(
                    py,
                    "rate",
                    "give exactly one of rate (a rate string or Quota) and dimensions",
                ))
            }
        };
        let remote = remote.with_block_ns(block_ns);
        let clock = TimeSource::from_arg(clock_arg)?;
        let names = remote.local().names().map(str::to_owned).collect();
        Ok(Self {
            core: Py::new(
                py,
                Core {
                    source: Source::Remote(remote),
                },
            )?,
            clock,
            names,
            dimensions: dimension_names,
            policy,
        })
    }

    /// The Lua script (`EVAL`).
    #[getter]
    fn script(&self) -> &'static str {
        SCRIPT
    }

    /// The script's SHA1 (`EVALSHA`).
    #[getter]
    fn sha1(&self) -> &'static str {
        SCRIPT_SHA1_HEX
    }

    /// `ARGV[1]`: the limiter's parameters, the same for every call.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.remote().params())
    }

    /// `"fallback"`, `"open"` or `"closed"`.
    #[getter]
    fn outage(&self) -> &'static str {
        self.remote().outage_policy().option_name()
    }

    /// The names headers show, in quota order.
    #[getter]
    fn quota_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The dimension names, in order (`["cost"]` for a rate string).
    #[getter]
    fn dimensions(&self) -> Vec<String> {
        self.dimensions.clone()
    }

    /// Encodes `op` on `key` with `cost` (an int for a rate string, a dict per dimension for
    /// a policy; None: core's rule) at Redis's time, or `now_ns` when given: returns
    /// `(KEYS[1], ARGV[2], call)`.
    #[pyo3(signature = (op, key, cost=None, now_ns=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        op: &str,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now_ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Encoded<'py>> {
        let op = op_arg(py, op)?;
        let costs = if op == Op::Reset {
            vec![None; self.dimensions.len()]
        } else {
            self.costs(py, cost)?
        };
        let key = key_bytes(key)?;
        let now_ns = Self::now_arg(now_ns)?;
        let call = self
            .remote()
            .encode(key.as_bytes(), now_ns, &costs, op)
            .map_err(|error| self.error(py, error))?;
        Ok(Self::encoded(py, call, Vec::new()))
    }

    /// Encodes a reserve of `estimate` (as `encode`'s `cost`) on `key`.
    #[pyo3(signature = (key, estimate=None, now_ns=None))]
    fn encode_reserve<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'_, PyAny>,
        estimate: Option<&Bound<'_, PyAny>>,
        now_ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Encoded<'py>> {
        let costs = self.costs(py, estimate)?;
        let key = key_bytes(key)?;
        let now_ns = Self::now_arg(now_ns)?;
        let call = self
            .remote()
            .encode_reserve(key.as_bytes(), now_ns, &costs)
            .map_err(|error| self.error(py, error))?;
        // The costs core reserves (its rule, which encode_reserve has just accepted).
        let mut estimate = vec![0; costs.len()];
        resolve_costs(&costs, &mut estimate).map_err(|error| self.error(py, error))?;
        Ok(Self::encoded(py, call, estimate))
    }

    /// What settling `reservation` with `actual` (as `encode`'s `cost`; a dimension not named
    /// keeps its estimate) needs: `(KEYS[1], ARGV[2], call)` to send, or the `Decision` when
    /// the outage policy held the charge. Raises `InvalidArgument` naming `reservation` when
    /// it was settled already or is another limiter's.
    #[pyo3(signature = (reservation, actual=None, now_ns=None))]
    fn settle<'py>(
        &self,
        py: Python<'py>,
        reservation: &PyRemoteReservation,
        actual: Option<&Bound<'_, PyAny>>,
        now_ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !reservation.owner.is(&self.core) {
            return Err(self.error(py, cellgate::ConfigError::ForeignReservation));
        }
        let costs = self.costs(py, actual)?;
        let now_ns = Self::now_arg(now_ns)?;
        let taken = take_reservation(py, &reservation.reservation, "was already settled")?;
        match self
            .remote()
            .settle(taken, now_ns, self.clock.now_ns(), &costs)
        {
            Ok(SettlePlan::Remote(call)) => Ok(Self::encoded(py, call, Vec::new())
                .into_pyobject(py)?
                .into_any()),
            Ok(SettlePlan::Done(decision)) => Ok(Decision::of_limiter(py, &decision, &self.core)
                .into_pyobject(py)?
                .into_any()),
            // Unreachable in practice: the owner and the costs' count are checked above.
            Err(error) => Err(self.error(py, error)),
        }
    }

    /// The decision in the script's reply to `call` (a list of three `bytes`), or `None` when
    /// the reply is not the script's or disagrees with core (treat it as a store error).
    fn decode(
        &self,
        py: Python<'_>,
        call: &PyRemoteCall,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Decision>> {
        let Some(parts) = reply_parts(reply) else {
            return Ok(None);
        };
        Ok(self
            .remote()
            .decode(&call.call, &parts)
            .ok()
            .map(|decided| Decision::of_limiter(py, &decided.decision, &self.core)))
    }

    /// As `decode`, for a reserve: `(decision, reservation)`, the reservation None when
    /// refused; or `None` for a reply core refuses.
    fn decode_reserve<'py>(
        &self,
        py: Python<'py>,
        call: &PyRemoteCall,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Some(parts) = reply_parts(reply) else {
            return Ok(None);
        };
        match self.remote().decode(&call.call, &parts) {
            Ok(decided) => self.reserved(py, call, decided).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The outage policy's decision for `call` (Redis could not be asked in time): the
    /// fallback limiter decides at this process's clock, or `open`/`closed` without counting.
    fn outage_decision(&self, py: Python<'_>, call: &PyRemoteCall) -> Decision {
        let decided = self.remote().outage(&call.call, self.clock.now_ns());
        Decision::of_limiter(py, &decided.decision, &self.core)
    }

    /// As `outage_decision`, for a reserve: `(decision, reservation)` (held by the fallback
    /// limiter, or untracked when the policy is `open`).
    fn outage_reserve<'py>(
        &self,
        py: Python<'py>,
        call: &PyRemoteCall,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let decided = self.remote().outage(&call.call, self.clock.now_ns());
        self.reserved(py, call, decided)
    }

    fn __repr__(&self) -> String {
        format!(
            "RedisLimiter({:?}, outage={:?})",
            self.remote()
                .local()
                .quotas()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            self.outage()
        )
    }
}

#[pymethods]
impl PyRemoteReservation {
    /// Whether it waits to be settled.
    #[getter]
    fn pending(&self) -> bool {
        self.reservation
            .lock()
            .map(|slot| slot.is_some())
            .unwrap_or(false)
    }

    /// Whether Redis holds its charge (not the outage policy).
    #[getter]
    fn remote(&self) -> bool {
        self.remote
    }
}
