//! `Bucket`: one cell without keys (core's `Gcra` or `TokenBucket`), a global limit or one
//! kept per object by the caller.

use crate::boundary::{cost_arg, invalid, u64_arg, Given};
use crate::clock::TimeSource;
use crate::headers::{Core, Decision, Source};
use crate::limiter::refill_args;
use crate::quota::{quota_error, quotas_arg, PyQuota};
use cellgate::{Clock, Gcra, TokenBucket, DEFAULT_COST};
use pyo3::prelude::*;

enum Cell {
    Gcra(Gcra<TimeSource>),
    TokenBucket(TokenBucket<TimeSource>),
}

/// One bucket without keys: a global limit, or one you keep per object yourself.
#[pyclass(frozen, module = "cellgate", name = "Bucket")]
pub struct Bucket {
    cell: Cell,
    core: Py<Core>,
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
        let (algorithm, refill_mode) = refill_args(py, &algorithm, refill)?;
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
            core: Py::new(
                py,
                Core {
                    source: Source::Bucket {
                        name: quota.header_name(),
                        quota: quota.quota,
                    },
                },
            )?,
            quota: quota.clone(),
        })
    }

    /// Tests and consumes `cost` atomically.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn check(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?.unwrap_or(DEFAULT_COST);
        Ok(Decision::of_bucket(
            py,
            on_cell!(&self.cell, bucket => bucket.check(cost)),
            &self.core,
        ))
    }

    /// The decision `check` would make, consuming nothing.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn peek(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?.unwrap_or(DEFAULT_COST);
        Ok(Decision::of_bucket(
            py,
            on_cell!(&self.cell, bucket => bucket.peek(cost)),
            &self.core,
        ))
    }

    /// Consumes `cost` whether or not it fits (debt).
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn force(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?.unwrap_or(DEFAULT_COST);
        Ok(Decision::of_bucket(
            py,
            on_cell!(&self.cell, bucket => bucket.force(cost)),
            &self.core,
        ))
    }

    /// Gives `cost` back, never above full.
    #[pyo3(signature = (cost=None), text_signature = "($self, cost=1)")]
    fn refund(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<Decision> {
        let cost = cost_arg(cost)?.unwrap_or(DEFAULT_COST);
        Ok(Decision::of_bucket(
            py,
            on_cell!(&self.cell, bucket => bucket.refund(cost)),
            &self.core,
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
