//! `Decision`: what a limiter answered, with the rate-limit headers and 429 body core renders.
//! The Python type that holds one is built in `decision_type.rs`; this is its Rust value and
//! the behaviour of its attributes and methods.

use crate::convert::{ns_to_seconds, type_name};
use crate::errors::{invalid, invalid_type};
use cellgate::{
    combined_retry_after_ns, max_header_bytes, render_429_body, render_headers, HeaderStyle,
    PolicyHeader, MAX_429_BODY_BYTES,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};
use std::time::{SystemTime, UNIX_EPOCH};

/// One quota of a limiter or policy, as its headers describe it.
#[derive(Debug)]
pub struct Entry {
    /// The name headers show (printable ASCII, checked at construction).
    pub name: String,
    /// The quota.
    pub quota: cellgate::Quota,
}

/// The quotas a limiter's decisions describe, shared by the limiter and every decision it
/// returns. It is a (private, immutable) Python object rather than an `Arc`, so that a
/// decision's share of it is a reference count that the interpreter's lock protects, not the
/// two atomic read-modify-writes per decision of an `Arc` (about 50 instructions and a few
/// nanoseconds per check, measured). It references no Python object, so no reference cycle
/// can pass through it or through a decision.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_Meta")]
#[derive(Debug)]
pub struct Meta {
    /// One entry per quota, in order.
    pub entries: Vec<Entry>,
}

/// The outcome of one operation: whether it was admitted, the limit, what remains, and the
/// waits, in float seconds (`retry_after`, `reset_after`, `math.inf` when the cost can never
/// be admitted) and integer nanoseconds. `bool(decision)` is `decision.allowed`.
#[derive(Debug)]
pub struct Decision {
    inner: cellgate::Decision,
    /// Released by the type's `tp_dealloc` without pyo3's thread-state check (see
    /// `decision_type.rs`), and by `Py`'s own drop elsewhere.
    pub(crate) meta: Py<Meta>,
    /// Every quota's decision, for a limiter or policy with several quotas.
    pub(crate) entries: Option<Box<[cellgate::Decision]>>,
    /// The entry of `meta` that `inner` is (the binding one).
    binding: usize,
}

impl Decision {
    /// The decision of a single-quota limiter.
    #[inline]
    pub fn single(py: Python<'_>, inner: cellgate::Decision, meta: &Py<Meta>) -> Self {
        Self {
            inner,
            meta: meta.clone_ref(py),
            entries: None,
            binding: 0,
        }
    }

    /// The decision of a policy: the binding entry's, with every entry's kept for headers.
    pub fn of_policy(py: Python<'_>, decision: &cellgate::PolicyDecision, meta: &Py<Meta>) -> Self {
        Self {
            inner: decision.decision(),
            meta: meta.clone_ref(py),
            entries: Some(decision.decisions().into()),
            binding: decision.binding,
        }
    }

    fn policy_headers(&self) -> Vec<PolicyHeader<'_>> {
        match &self.entries {
            Some(entries) => self
                .meta
                .get()
                .entries
                .iter()
                .zip(entries.iter())
                .map(|(entry, decision)| PolicyHeader {
                    name: &entry.name,
                    quota: entry.quota,
                    decision: *decision,
                })
                .collect(),
            None => self
                .meta
                .get()
                .entries
                .get(self.binding)
                .map(|entry| PolicyHeader {
                    name: &entry.name,
                    quota: entry.quota,
                    decision: self.inner,
                })
                .into_iter()
                .collect(),
        }
    }
}

fn header_style(
    py: Python<'_>,
    style: &str,
    now_unix: Option<&Bound<'_, PyAny>>,
) -> PyResult<HeaderStyle> {
    match style {
        "ietf" => Ok(HeaderStyle::Ietf),
        "legacy" => Ok(HeaderStyle::Legacy),
        "legacy_epoch" => {
            let now_unix_s = match now_unix {
                None => SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|since| since.as_secs())
                    .unwrap_or(0),
                Some(value) if value.is_instance_of::<PyInt>() => {
                    crate::convert::u64_arg(value, "now_unix")?
                }
                Some(value) => {
                    return Err(invalid_type(
                        py,
                        "now_unix",
                        &format!(
                            "must be an int (Unix seconds) or None, not {}",
                            type_name(value).unwrap_or_default()
                        ),
                    ))
                }
            };
            Ok(HeaderStyle::LegacyEpoch { now_unix_s })
        }
        other => Err(invalid(
            py,
            "style",
            &format!("must be 'ietf', 'legacy' or 'legacy_epoch', not {other:?}"),
        )),
    }
}

/// The attributes and methods of `cellgate.Decision` (see `decision_type.rs`).
impl Decision {
    /// Whether the cost was admitted (for `force`: whether it fitted without debt).
    pub fn allowed(&self) -> bool {
        self.inner.allowed
    }

    /// The quota's burst: the most cost that can ever be admitted at once.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Cost units that could be admitted right now (0 while in debt).
    pub fn remaining(&self) -> u64 {
        self.inner.remaining
    }

    /// Seconds to wait before the same request is admitted: 0.0 when allowed, `math.inf`
    /// when the cost exceeds the burst.
    pub fn retry_after(&self) -> f64 {
        ns_to_seconds(self.inner.retry_after_ns)
    }

    /// Seconds until the bucket is full again.
    pub fn reset_after(&self) -> f64 {
        ns_to_seconds(self.inner.reset_after_ns)
    }

    /// `retry_after` in exact nanoseconds (rounded up); `2**64 - 1` for never.
    pub fn retry_after_ns(&self) -> u64 {
        self.inner.retry_after_ns
    }

    /// `reset_after` in exact nanoseconds (rounded up).
    pub fn reset_after_ns(&self) -> u64 {
        self.inner.reset_after_ns
    }

    /// The name of the quota this decision describes (the binding one, for several quotas).
    pub fn policy(&self) -> String {
        self.meta
            .get()
            .entries
            .get(self.binding)
            .map(|entry| entry.name.clone())
            .unwrap_or_default()
    }

    /// Every quota's decision, in order (one for a single quota).
    pub fn decisions(&self, py: Python<'_>) -> Vec<Decision> {
        match &self.entries {
            Some(entries) => entries
                .iter()
                .enumerate()
                .map(|(binding, decision)| Decision {
                    inner: *decision,
                    meta: self.meta.clone_ref(py),
                    entries: None,
                    binding,
                })
                .collect(),
            None => vec![Decision {
                inner: self.inner,
                meta: self.meta.clone_ref(py),
                entries: None,
                binding: self.binding,
            }],
        }
    }

    /// The rate-limit headers for this decision as `(name, value)` pairs, rendered by core
    /// (identical bytes in every runtime). `style`: `"ietf"` (default: `RateLimit-Policy`
    /// and `RateLimit`, draft-ietf-httpapi-ratelimit-headers-10), `"legacy"`
    /// (`X-RateLimit-Limit/Remaining/Reset`, reset in seconds from now) or `"legacy_epoch"`
    /// (reset as Unix seconds; `now_unix` defaults to the wall clock). `Retry-After` follows
    /// on a denial (omitted when the cost can never be admitted).
    pub fn headers(
        &self,
        py: Python<'_>,
        style: &str,
        now_unix: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(&'static str, String)>> {
        let style = header_style(py, style, now_unix)?;
        let policies = self.policy_headers();
        let name_bytes = policies.iter().map(|policy| policy.name.len()).sum();
        let mut buffer = vec![0u8; max_header_bytes(policies.len(), name_bytes)];
        let rendered = render_headers(style, &policies, &mut buffer)
            .map_err(|error| invalid(py, "headers", &error.to_string()))?;
        Ok(rendered
            .iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect())
    }

    /// The JSON body of a 429 response, `{"error":"rate_limited","retry_after":N}` with N the
    /// `Retry-After` seconds (`null` when the cost can never be admitted), as bytes.
    pub fn error_body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let retry_after_ns =
            combined_retry_after_ns(&self.policy_headers()).unwrap_or(self.inner.retry_after_ns);
        let mut body = [0u8; MAX_429_BODY_BYTES];
        let len = render_429_body(retry_after_ns, &mut body)
            .map_err(|error| invalid(py, "body", &error.to_string()))?;
        Ok(PyBytes::new(py, body.get(..len).unwrap_or(&[])))
    }

    /// `repr(decision)`.
    pub fn repr(&self, py: Python<'_>) -> String {
        let policy = PyString::new(py, &self.policy())
            .repr()
            .map(|repr| repr.to_string())
            .unwrap_or_default();
        format!(
            "Decision(allowed={}, limit={}, remaining={}, retry_after={}, reset_after={}, policy={})",
            if self.inner.allowed { "True" } else { "False" },
            self.inner.limit,
            self.inner.remaining,
            float_repr(ns_to_seconds(self.inner.retry_after_ns)),
            float_repr(ns_to_seconds(self.inner.reset_after_ns)),
            policy,
        )
    }
}

/// `==` of two decisions: the same outcome, and the same per-quota outcomes.
impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        other.inner == self.inner && other.entries == self.entries
    }
}

fn float_repr(value: f64) -> String {
    if value.is_infinite() {
        "inf".to_owned()
    } else {
        format!("{value:?}")
    }
}
