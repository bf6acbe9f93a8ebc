//! `Decision`: what a limiter answered, with the rate-limit headers and 429 body core renders
//! (core's `headers` module, through `cellgate::Limiter`'s rendering of its decisions). The
//! Python type that holds one is built in `decision_type.rs`; this is its Rust value and the
//! behaviour of its attributes and methods.

use crate::boundary::{invalid, invalid_type, ns_to_seconds, str_arg, type_name, u64_arg};
use cellgate::{
    combined_retry_after_ns, max_header_bytes, render_429_body, render_dimension_headers,
    render_headers, HeaderError, LimiterDecision, NamedStyle, PolicyHeader, Quota, Reason,
    StyleName, MAX_429_BODY_BYTES,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};
use std::time::{SystemTime, UNIX_EPOCH};

/// What every decision of one limiter shares: the core limiter itself (which decides and
/// renders), or a `Bucket`'s one named quota. It is a (private, immutable) Python object
/// rather than an `Arc`, so that a decision's share of it is a reference count that the
/// interpreter's lock protects, not the two atomic read-modify-writes per decision of an `Arc`
/// (about 50 instructions and a few nanoseconds per check, measured). It references no Python
/// object, so no reference cycle can pass through it or through a decision.
#[pyclass(frozen, module = "cellgate._cellgate", name = "_Core")]
#[derive(Debug)]
pub struct Core {
    /// What decides.
    pub source: Source,
}

/// See [`Core`].
// One `Source` per Python limiter object, held in place and never moved on a check: boxing the
// 312-byte `Limiter` would add a pointer chase to every check to save bytes nobody copies.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Source {
    /// A `Limiter` or `Policy`: core's limiter, its tables in this process or shared.
    Limiter(cellgate::Limiter<cellgate_host::TableSlots>),
    /// A `RedisLimiter`: core's remote limiter, which renders through its local limiter.
    Remote(cellgate::RemoteLimiter),
    /// A `Bucket`: its quota and the name headers show.
    Bucket {
        /// The name headers show.
        name: String,
        /// The quota.
        quota: Quota,
    },
}

impl Core {
    /// The name headers show for quota `index`.
    fn name(&self, index: usize) -> &str {
        match &self.source {
            Source::Limiter(limiter) => limiter.names().nth(index).unwrap_or_default(),
            Source::Remote(remote) => remote.local().names().nth(index).unwrap_or_default(),
            Source::Bucket { name, .. } => name,
        }
    }

    /// Quota `index`.
    fn quota(&self, index: usize) -> Option<Quota> {
        match &self.source {
            Source::Limiter(limiter) => limiter.quotas().get(index).copied(),
            Source::Remote(remote) => remote.local().quotas().get(index).copied(),
            Source::Bucket { quota, .. } => Some(*quota),
        }
    }
}

/// What a [`Decision`] describes.
///
/// A one-quota limiter's decision is held as its one quota's (`Quota`), whose headers and body
/// are the same bytes as core's `Limiter` renders for it (the header vectors check this): a
/// `LimiterDecision` has room for every quota a limiter may have (344 bytes), and holding one
/// in every `Decision` made `Limiter.check` a third slower (126 to 178 ns; callgrind: about
/// 600 more instructions per check, mostly copies of it). Several quotas keep core's whole
/// decision, boxed, as they kept a boxed slice before.
#[derive(Clone, Debug, PartialEq, Eq)]
enum View {
    /// Core's decision over every quota of a limiter of several (its `source` is
    /// `Source::Limiter`).
    Limiter(Box<LimiterDecision>),
    /// One quota's decision: a one-quota limiter's, a `Bucket`'s, or one entry of a limiter
    /// decision's `decisions`.
    Quota {
        index: usize,
        decision: cellgate::Decision,
        reason: Reason,
    },
}

/// The outcome of one operation: whether it was admitted, the limit, what remains, and the
/// waits, in float seconds (`retry_after`, `reset_after`, `math.inf` when the cost can never
/// be admitted) and integer nanoseconds, and why (`reason`). `bool(decision)` is
/// `decision.allowed`.
#[derive(Debug)]
pub struct Decision {
    view: View,
    /// Released by the type's `tp_dealloc` without pyo3's thread-state check (see
    /// `decision_type.rs`), and by `Py`'s own drop elsewhere.
    pub(crate) core: Py<Core>,
}

/// The current Unix time in seconds, or `now_unix` when given (an int).
fn now_unix_arg(py: Python<'_>, now_unix: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match now_unix {
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0)),
        Some(value) if value.is_instance_of::<PyInt>() => u64_arg(value, "now_unix"),
        Some(value) => Err(invalid_type(
            py,
            "now_unix",
            &format!(
                "must be an int (Unix seconds) or None, not {}",
                type_name(value).unwrap_or_default()
            ),
        )),
    }
}

/// A header style as `Decision.headers` and the middleware take it: core's names
/// (`StyleName`: `"ietf"`, `"legacy"`, `"legacy-epoch"`, `"anthropic"`, `"openai"`,
/// `"draft-6"`, `"draft-7"`), and `"legacy_epoch"`, the spelling Python had first.
fn style_arg(
    py: Python<'_>,
    style: &str,
    now_unix: Option<&Bound<'_, PyAny>>,
) -> PyResult<NamedStyle> {
    let name = if style == "legacy_epoch" {
        Some(StyleName::LegacyEpoch)
    } else {
        StyleName::from_name(style)
    };
    let Some(name) = name else {
        return Err(invalid(
            py,
            "style",
            &format!(
                "must be one of 'ietf', 'legacy', 'legacy_epoch' (or 'legacy-epoch'), 'anthropic', \
                 'openai', 'draft-6', 'draft-7', not {style:?}"
            ),
        ));
    };
    let now_unix_s = if name.reads_wall_clock() {
        now_unix_arg(py, now_unix)?
    } else {
        0
    };
    Ok(name.with_now(now_unix_s))
}

/// Rendered `(name, value)` pairs, copied out of core's buffer.
type Pairs = Vec<(String, String)>;

impl Decision {
    /// A decision of core's limiter `core` (a `Source::Limiter`).
    #[inline]
    pub fn of_limiter(py: Python<'_>, decision: &LimiterDecision, core: &Py<Core>) -> Self {
        let view = match decision.decisions() {
            [only] => View::Quota {
                index: 0,
                decision: *only,
                reason: decision.reason,
            },
            _ => View::Limiter(Box::new(*decision)),
        };
        Self {
            view,
            core: core.clone_ref(py),
        }
    }

    /// The decision of a one-quota limiter's fast path (`Limiter::apply_one_at`).
    #[inline]
    pub fn of_quota(
        py: Python<'_>,
        decision: cellgate::Decision,
        reason: Reason,
        core: &Py<Core>,
    ) -> Self {
        Self {
            view: View::Quota {
                index: 0,
                decision,
                reason,
            },
            core: core.clone_ref(py),
        }
    }

    /// The core reference and the rest, for `tp_dealloc` (`decision_type.rs`).
    pub(crate) fn into_parts(self) -> (Py<Core>, impl Sized) {
        (self.core, self.view)
    }

    /// A `Bucket`'s decision.
    pub fn of_bucket(py: Python<'_>, decision: cellgate::Decision, core: &Py<Core>) -> Self {
        Self {
            view: View::Quota {
                index: 0,
                decision,
                reason: Reason::Limit,
            },
            core: core.clone_ref(py),
        }
    }

    /// The decision the scalar attributes show: the binding quota's.
    #[inline]
    fn shown(&self) -> cellgate::Decision {
        match &self.view {
            View::Limiter(decision) => decision.decision(),
            View::Quota { decision, .. } => *decision,
        }
    }

    /// Whether the cost was admitted (for `force`: whether it fitted without debt).
    pub fn allowed(&self) -> bool {
        match &self.view {
            View::Limiter(decision) => decision.allowed,
            View::Quota { decision, .. } => decision.allowed,
        }
    }

    /// Why: `"limit"` (the key's buckets decided), `"table_full"` (denied: the keyed table had
    /// no room for this new key) or `"untracked"` (admitted without being stored, under
    /// `on_full="allow_untracked"`).
    pub fn reason(&self) -> &'static str {
        match &self.view {
            View::Limiter(decision) => decision.reason.as_str(),
            View::Quota { reason, .. } => reason.as_str(),
        }
    }

    /// The quota's burst: the most cost that can ever be admitted at once.
    pub fn limit(&self) -> u64 {
        self.shown().limit
    }

    /// Cost units that could be admitted right now (0 while in debt).
    pub fn remaining(&self) -> u64 {
        self.shown().remaining
    }

    /// Seconds to wait before the same request is admitted: 0.0 when allowed, `math.inf`
    /// when the cost exceeds the burst.
    pub fn retry_after(&self) -> f64 {
        ns_to_seconds(self.shown().retry_after_ns)
    }

    /// Seconds until the bucket is full again.
    pub fn reset_after(&self) -> f64 {
        ns_to_seconds(self.shown().reset_after_ns)
    }

    /// `retry_after` in exact nanoseconds (rounded up); `2**64 - 1` for never.
    pub fn retry_after_ns(&self) -> u64 {
        self.shown().retry_after_ns
    }

    /// `reset_after` in exact nanoseconds (rounded up).
    pub fn reset_after_ns(&self) -> u64 {
        self.shown().reset_after_ns
    }

    /// The name of the quota this decision describes (the binding one, for several quotas).
    pub fn policy(&self) -> String {
        let index = match &self.view {
            View::Limiter(decision) => decision.binding,
            View::Quota { index, .. } => *index,
        };
        self.core.get().name(index).to_owned()
    }

    /// Every quota's decision, in order (one for a single quota).
    pub fn decisions(&self, py: Python<'_>) -> Vec<Decision> {
        match &self.view {
            View::Limiter(decision) => decision
                .decisions()
                .iter()
                .enumerate()
                .map(|(index, entry)| Decision {
                    view: View::Quota {
                        index,
                        decision: *entry,
                        reason: decision.reason,
                    },
                    core: self.core.clone_ref(py),
                })
                .collect(),
            View::Quota { .. } => vec![Decision {
                view: self.view.clone(),
                core: self.core.clone_ref(py),
            }],
        }
    }

    /// The one quota a `View::Quota` describes, as core's headers take it.
    fn policy_header(
        &self,
        index: usize,
        decision: cellgate::Decision,
    ) -> Option<PolicyHeader<'_>> {
        let core = self.core.get();
        Some(PolicyHeader {
            name: core.name(index),
            quota: core.quota(index)?,
            decision,
        })
    }

    /// Renders `style` into a buffer of `size` bytes, growing it once to the exact size core
    /// asks for.
    fn render(&self, style: NamedStyle, size: usize) -> Result<Pairs, HeaderError> {
        let mut buffer = vec![0u8; size];
        match self.render_into(style, &mut buffer) {
            Err(HeaderError::BufferTooSmall { needed }) => {
                buffer = vec![0u8; needed];
                self.render_into(style, &mut buffer)
            }
            other => other,
        }
    }

    fn render_into(&self, style: NamedStyle, buffer: &mut [u8]) -> Result<Pairs, HeaderError> {
        fn owned<N: AsRef<str>, V: AsRef<str>>(pairs: impl Iterator<Item = (N, V)>) -> Pairs {
            pairs
                .map(|(name, value)| (name.as_ref().to_owned(), value.as_ref().to_owned()))
                .collect()
        }
        let core = self.core.get();
        match (&self.view, &core.source, style) {
            (View::Limiter(decision), Source::Limiter(limiter), NamedStyle::Policies(style)) => Ok(
                owned(limiter.render_headers(decision, style, buffer)?.iter()),
            ),
            (View::Limiter(decision), Source::Limiter(limiter), NamedStyle::Dimensions(style)) => {
                Ok(owned(
                    limiter
                        .render_dimension_headers(decision, style, buffer)?
                        .iter(),
                ))
            }
            (View::Limiter(decision), Source::Remote(remote), NamedStyle::Policies(style)) => {
                Ok(owned(
                    remote
                        .local()
                        .render_headers(decision, style, buffer)?
                        .iter(),
                ))
            }
            (View::Limiter(decision), Source::Remote(remote), NamedStyle::Dimensions(style)) => {
                Ok(owned(
                    remote
                        .local()
                        .render_dimension_headers(decision, style, buffer)?
                        .iter(),
                ))
            }
            (
                View::Quota {
                    index, decision, ..
                },
                _,
                style,
            ) => {
                let policies: Vec<PolicyHeader<'_>> =
                    self.policy_header(*index, *decision).into_iter().collect();
                match style {
                    NamedStyle::Policies(style) => {
                        Ok(owned(render_headers(style, &policies, buffer)?.iter()))
                    }
                    NamedStyle::Dimensions(style) => Ok(owned(
                        render_dimension_headers(style, &policies, buffer)?.iter(),
                    )),
                }
            }
            (View::Limiter(_), Source::Bucket { .. }, _) => Err(HeaderError::NoPolicies),
        }
    }

    /// The rate-limit headers for this decision as `(name, value)` pairs, rendered by core
    /// (identical bytes in every runtime); see `Decision.headers` in the stub for the styles.
    pub fn headers(
        &self,
        py: Python<'_>,
        style: &str,
        now_unix: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pairs> {
        let style = style_arg(py, style, now_unix)?;
        let core = self.core.get();
        let (count, name_bytes) = match &core.source {
            Source::Limiter(limiter) => (
                limiter.quotas().len(),
                limiter.names().map(str::len).sum::<usize>(),
            ),
            Source::Remote(remote) => (
                remote.local().quotas().len(),
                remote.local().names().map(str::len).sum::<usize>(),
            ),
            Source::Bucket { name, .. } => (1, name.len()),
        };
        self.render(style, max_header_bytes(count, name_bytes))
            .map_err(|error| match error {
                HeaderError::InvalidName { index } => {
                    let index = match &self.view {
                        View::Quota { index: own, .. } => *own,
                        View::Limiter(_) => index,
                    };
                    invalid(
                        py,
                        "style",
                        &format!(
                            "quota {index} is named {:?}, which cannot be part of a header name \
                             (ASCII letters, digits, '-' and '_' only): name it so, or use \
                             style='ietf'",
                            core.name(index)
                        ),
                    )
                }
                other => invalid(py, "style", &other.to_string()),
            })
    }

    /// The JSON body of a 429 response, `{"error":"rate_limited","retry_after":N}` with N the
    /// `Retry-After` seconds (`null` when the cost can never be admitted), as bytes: core's.
    pub fn error_body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut body = [0u8; MAX_429_BODY_BYTES];
        let rendered = match (&self.view, &self.core.get().source) {
            (View::Limiter(decision), Source::Limiter(limiter)) => {
                limiter.render_429_body(decision, &mut body)
            }
            (View::Limiter(decision), Source::Remote(remote)) => {
                remote.local().render_429_body(decision, &mut body)
            }
            (
                View::Quota {
                    index, decision, ..
                },
                _,
            ) => {
                let policies: Vec<PolicyHeader<'_>> =
                    self.policy_header(*index, *decision).into_iter().collect();
                render_429_body(combined_retry_after_ns(&policies).unwrap_or(0), &mut body)
            }
            (View::Limiter(_), Source::Bucket { .. }) => Err(HeaderError::NoPolicies),
        };
        let len = rendered.map_err(|error| invalid(py, "body", &error.to_string()))?;
        Ok(PyBytes::new(py, body.get(..len).unwrap_or(&[])))
    }

    /// `repr(decision)`.
    pub fn repr(&self, py: Python<'_>) -> String {
        let policy = PyString::new(py, &self.policy())
            .repr()
            .map(|repr| repr.to_string())
            .unwrap_or_default();
        let shown = self.shown();
        format!(
            "Decision(allowed={}, limit={}, remaining={}, retry_after={}, reset_after={}, policy={}, reason={:?})",
            if self.allowed() { "True" } else { "False" },
            shown.limit,
            shown.remaining,
            float_repr(ns_to_seconds(shown.retry_after_ns)),
            float_repr(ns_to_seconds(shown.reset_after_ns)),
            policy,
            self.reason(),
        )
    }
}

/// `==` of two decisions: the same outcome, the same per-quota outcomes and the same reason.
impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        other.view == self.view
    }
}

fn float_repr(value: f64) -> String {
    if value.is_infinite() {
        "inf".to_owned()
    } else {
        format!("{value:?}")
    }
}

/// A `str` style argument (absent: `"ietf"`).
pub fn style_text<'a>(style: Option<&'a Bound<'_, PyAny>>) -> PyResult<std::borrow::Cow<'a, str>> {
    match style {
        None => Ok(std::borrow::Cow::Borrowed("ietf")),
        Some(style) => str_arg(style, "style"),
    }
}
