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
use crate::quota::quotas_arg;
use cellgate::remote::{DEFAULT_OUTAGE_RETRY_AFTER_NS, DEFAULT_PREFIX};
use cellgate::Clock;
use cellgate::{
    Op, OutagePolicy, RemoteCall, RemoteError, RemoteLimiter, RemoteOptions, SCRIPT,
    SCRIPT_SHA1_HEX,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// One encoded call, held until its reply (or its failure) is decided: core's `RemoteCall`.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_RemoteCall")]
pub struct PyRemoteCall {
    call: RemoteCall,
}

/// The native half of `cellgate.redis.RedisLimiter`: core's `RemoteLimiter` over the quotas of
/// a rate string (one dimension, one or several quotas). See `_cellgate.pyi`.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_RemoteLimiter")]
pub struct PyRemoteLimiter {
    core: Py<Core>,
    clock: TimeSource,
    names: Vec<String>,
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

impl PyRemoteLimiter {
    fn remote(&self) -> &RemoteLimiter {
        match &self.core.get().source {
            Source::Remote(remote) => remote,
            _ => unreachable!("a _RemoteLimiter's core is a remote limiter"),
        }
    }
}

#[pymethods]
impl PyRemoteLimiter {
    /// See `_cellgate.pyi`.
    #[new]
    #[pyo3(
        signature = (rate, *, burst=None, algorithm=Given::Absent, refill=None, max_keys=None, on_full=Given::Absent, clock=None, prefix=None, outage=Given::Absent, key_secret=None, expiry_grace_ms=None, outage_retry_after_ms=None, block_ms=None),
        text_signature = "(rate, *, burst=None, algorithm='gcra', refill=None, max_keys=None, on_full='deny', clock=None, prefix=None, outage='fallback', key_secret=None, expiry_grace_ms=None, outage_retry_after_ms=None, block_ms=0)"
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
        clock: Option<&Bound<'_, PyAny>>,
        prefix: Option<&Bound<'_, PyAny>>,
        outage: Given<'_>,
        key_secret: Option<&Bound<'_, PyAny>>,
        expiry_grace_ms: Option<&Bound<'_, PyAny>>,
        outage_retry_after_ms: Option<&Bound<'_, PyAny>>,
        block_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let block_ns = crate::limiter::block_ns_arg(block_ms)?;
        let quotas = quotas_arg(rate, burst)?;
        let (_, refill) = refill_args(py, &algorithm, refill)?;
        let options = options_arg(max_keys, &on_full, refill)?;
        let clock = TimeSource::from_arg(clock)?;
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
        let (entries, names) = one_dimension(&quotas);
        let remote = RemoteLimiter::new(&entries, options, remote_options)
            .map_err(|error| match error {
                RemoteError::Config(error) => config_error(
                    py,
                    error,
                    &Arguments {
                        quotas: "rate",
                        names: &names,
                        dimensions: &["cost".to_owned()],
                    },
                ),
                RemoteError::PrefixBrace => invalid(
                    py,
                    "prefix",
                    "must not hold '{' or '}' (the user key is the Cluster hash tag)",
                ),
                other => invalid(py, "expiry_grace_ms", &other.to_string()),
            })?
            .with_block_ns(block_ns);
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

    /// Encodes `op` on `key` with `cost` at Redis's time, or `now_ns` when given: returns
    /// `(KEYS[1], ARGV[2], call)`.
    #[pyo3(signature = (op, key, cost=None, now_ns=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        op: &str,
        key: &Bound<'_, PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        now_ns: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, PyRemoteCall)> {
        let op = op_arg(py, op)?;
        let cost = cost_arg(cost)?;
        let key = key_bytes(key)?;
        let now_ns = now_ns
            .filter(|value| !value.is_none())
            .map(|value| u64_arg(value, "now_ns"))
            .transpose()?;
        let call = self
            .remote()
            .encode(key.as_bytes(), now_ns, &[cost], op)
            .map_err(|error| {
                config_error(
                    py,
                    error,
                    &Arguments {
                        quotas: "rate",
                        names: &self.names,
                        dimensions: &["cost".to_owned()],
                    },
                )
            })?;
        Ok((
            PyBytes::new(py, call.key()),
            PyBytes::new(py, call.argv()),
            PyRemoteCall { call },
        ))
    }

    /// The decision in the script's reply to `call` (a list of three `bytes`), or `None` when
    /// the reply is not the script's or disagrees with core (treat it as a store error).
    fn decode(
        &self,
        py: Python<'_>,
        call: &PyRemoteCall,
        reply: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Decision>> {
        let Ok(list) = reply.cast::<PyList>() else {
            return Ok(None);
        };
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(3);
        for item in list.iter() {
            let Ok(bytes) = item.cast::<PyBytes>() else {
                return Ok(None);
            };
            parts.push(bytes.as_bytes().to_vec());
        }
        Ok(self
            .remote()
            .decode(&call.call, &parts)
            .ok()
            .map(|decided| Decision::of_limiter(py, &decided.decision, &self.core)))
    }

    /// The outage policy's decision for `call` (Redis could not be asked in time): the
    /// fallback limiter decides at this process's clock, or `open`/`closed` without counting.
    fn outage_decision(&self, py: Python<'_>, call: &PyRemoteCall) -> Decision {
        let decided = self.remote().outage(&call.call, self.clock.now_ns());
        Decision::of_limiter(py, &decided.decision, &self.core)
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
