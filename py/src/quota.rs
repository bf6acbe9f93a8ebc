//! `Quota`: a rate, a period and a burst, from numbers or from `limits`-style rate strings.

use crate::convert::{seconds_arg, type_name, u64_arg};
use crate::errors::{invalid, invalid_rate, invalid_type};
use cellgate::{parse_quotas, QuotaError, NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// A quota: `rate` cost units per `period` seconds, at most `burst` at once, with an optional
/// name that rate-limit headers show.
#[pyclass(frozen, eq, hash, module = "cellgate", name = "Quota")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PyQuota {
    /// The core quota.
    pub quota: cellgate::Quota,
    /// The name given, if any.
    pub name: Option<String>,
}

impl PyQuota {
    /// The name headers show: the given name, or a label such as `10-in-1s`.
    pub fn header_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| label(&self.quota))
    }
}

/// A short label for a quota, in the style of the older IETF draft's policy names:
/// `100-in-1min`, `10-in-1s`, `1000-in-1d`, `500-in-7d`, `5-in-250ms`.
pub fn label(quota: &cellgate::Quota) -> String {
    let period_ns = quota.period_ns();
    let units: [(u64, &str); 7] = [
        (NS_PER_DAY, "d"),
        (NS_PER_HOUR, "h"),
        (NS_PER_MINUTE, "min"),
        (NS_PER_SECOND, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let (unit_ns, unit) = units
        .into_iter()
        .find(|(unit_ns, _)| period_ns % unit_ns == 0)
        .unwrap_or((1, "ns"));
    format!("{}-in-{}{}", quota.rate_cost(), period_ns / unit_ns, unit)
}

/// A quota error as an `InvalidArgument` naming the argument at fault.
pub fn quota_error(py: Python<'_>, error: QuotaError) -> PyErr {
    let argument = match error {
        QuotaError::ZeroRate => "rate",
        QuotaError::ZeroPeriod | QuotaError::PeriodOverflow => "period",
        QuotaError::InitialFillAboveBurst => "initial_tokens",
        _ => "burst",
    };
    invalid(py, argument, &error.to_string())
}

/// Checks a policy name: non-empty printable ASCII, as a Structured Field string needs.
pub fn check_name(py: Python<'_>, argument: &str, name: &str) -> PyResult<()> {
    if name.is_empty() || !name.bytes().all(|byte| (0x20..=0x7E).contains(&byte)) {
        return Err(invalid(
            py,
            argument,
            &format!("must be non-empty printable ASCII (a header carries it), got {name:?}"),
        ));
    }
    Ok(())
}

fn with_name(py: Python<'_>, quota: cellgate::Quota, name: Option<String>) -> PyResult<PyQuota> {
    if let Some(name) = &name {
        check_name(py, "name", name)?;
    }
    Ok(PyQuota { quota, name })
}

fn with_burst(
    py: Python<'_>,
    quota: cellgate::Quota,
    burst: Option<&Bound<'_, PyAny>>,
) -> PyResult<cellgate::Quota> {
    match burst {
        None => Ok(quota),
        Some(burst) => {
            let burst = u64_arg(burst, "burst")?;
            quota
                .with_burst(burst)
                .map_err(|error| quota_error(py, error))
        }
    }
}

/// Parses a rate string or a list of them (`"10/s; 1000/day"`) for `argument`.
pub fn parse_list(py: Python<'_>, argument: &str, text: &str) -> PyResult<Vec<cellgate::Quota>> {
    parse_quotas(text)
        .map(|item| {
            item.map_err(|error| {
                invalid_rate(py, argument, text, error.offset(), &error.to_string())
            })
        })
        .collect()
}

/// The quotas of a `rate` argument: a rate string (possibly a list), a `Quota`, or a sequence
/// of them. `burst`, when given, replaces the burst of a single quota.
pub fn quotas_arg(
    rate: &Bound<'_, PyAny>,
    burst: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<PyQuota>> {
    let py = rate.py();
    let mut quotas = Vec::new();
    let mut add = |item: &Bound<'_, PyAny>| -> PyResult<()> {
        if let Ok(text) = item.cast::<PyString>() {
            let text = text.to_cow()?;
            for quota in parse_list(py, "rate", &text)? {
                quotas.push(PyQuota { quota, name: None });
            }
            Ok(())
        } else if let Ok(quota) = item.cast::<PyQuota>() {
            quotas.push(quota.get().clone());
            Ok(())
        } else {
            Err(invalid_type(
                py,
                "rate",
                &format!(
                    "must be a rate string, a Quota, or a list of them, not {}",
                    type_name(item).unwrap_or_default()
                ),
            ))
        }
    };
    if rate.is_instance_of::<PyList>() || rate.is_instance_of::<PyTuple>() {
        for item in rate.try_iter()? {
            add(&item?)?;
        }
    } else {
        add(rate)?;
    }
    if quotas.is_empty() {
        return Err(invalid(py, "rate", "must hold at least one quota"));
    }
    if let Some(burst) = burst {
        let [only] = quotas.as_mut_slice() else {
            return Err(invalid(
                py,
                "burst",
                "applies to a single quota; give each of several quotas its own burst \
                 (Quota(..., burst=N) or a '(burst N)' suffix)",
            ));
        };
        only.quota = with_burst(py, only.quota, Some(burst))?;
    }
    Ok(quotas)
}

#[pymethods]
impl PyQuota {
    /// `rate` cost units per `period` seconds (int or float, rounded to the nanosecond), at
    /// most `burst` (default: `rate`) at once.
    #[new]
    #[pyo3(signature = (rate, period=None, *, burst=None, name=None), text_signature = "(rate, period=1, *, burst=None, name=None)")]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        period: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        let rate = u64_arg(rate, "rate")?;
        let period_ns = match period {
            None => NS_PER_SECOND,
            Some(period) => seconds_arg(period, "period")?,
        };
        let quota =
            cellgate::Quota::new(rate, period_ns).map_err(|error| quota_error(py, error))?;
        let quota = with_burst(py, quota, burst)?;
        with_name(py, quota, name)
    }

    /// Parses one rate string such as `"10/second"`, `"10 per minute"`, `"500/7 days"` or
    /// `"5/s (burst 2)"` (the notation of the `limits` package). Raises `InvalidRate`.
    #[staticmethod]
    #[pyo3(signature = (text, *, name=None))]
    fn parse(py: Python<'_>, text: &str, name: Option<String>) -> PyResult<Self> {
        let quota = cellgate::Quota::parse(text)
            .map_err(|error| invalid_rate(py, "text", text, error.offset(), &error.to_string()))?;
        with_name(py, quota, name)
    }

    /// Parses a list of rate strings separated by `,`, `;` or `|` (`"10/s; 1000/day"`).
    #[staticmethod]
    fn parse_many(py: Python<'_>, text: &str) -> PyResult<Vec<Self>> {
        Ok(parse_list(py, "text", text)?
            .into_iter()
            .map(|quota| PyQuota { quota, name: None })
            .collect())
    }

    /// `rate` per second.
    #[staticmethod]
    #[pyo3(signature = (rate, *, burst=None, name=None))]
    fn per_second(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        per(py, rate, NS_PER_SECOND, burst, name)
    }

    /// `rate` per minute.
    #[staticmethod]
    #[pyo3(signature = (rate, *, burst=None, name=None))]
    fn per_minute(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        per(py, rate, NS_PER_MINUTE, burst, name)
    }

    /// `rate` per hour.
    #[staticmethod]
    #[pyo3(signature = (rate, *, burst=None, name=None))]
    fn per_hour(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        per(py, rate, NS_PER_HOUR, burst, name)
    }

    /// `rate` per day.
    #[staticmethod]
    #[pyo3(signature = (rate, *, burst=None, name=None))]
    fn per_day(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        burst: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        per(py, rate, NS_PER_DAY, burst, name)
    }

    /// Cost units replenished per period.
    #[getter]
    fn rate(&self) -> u64 {
        self.quota.rate_cost()
    }

    /// The period in seconds.
    #[getter]
    fn period(&self) -> f64 {
        self.quota.period_ns() as f64 / 1e9
    }

    /// The period in nanoseconds.
    #[getter]
    fn period_ns(&self) -> u64 {
        self.quota.period_ns()
    }

    /// The most cost admitted at once (the bucket's capacity).
    #[getter]
    fn burst(&self) -> u64 {
        self.quota.burst_cost()
    }

    /// The name given, or None.
    #[getter]
    fn name(&self) -> Option<String> {
        self.name.clone()
    }

    /// The name rate-limit headers show: the name given, or a label such as `"10-in-1s"`.
    #[getter(header_name)]
    fn header_name_py(&self) -> String {
        self.header_name()
    }

    /// The same quota with another name.
    fn named(&self, py: Python<'_>, name: String) -> PyResult<Self> {
        with_name(py, self.quota, Some(name))
    }

    fn __str__(&self) -> String {
        self.quota.to_string()
    }

    fn __repr__(&self) -> String {
        match &self.name {
            Some(name) => format!("Quota.parse({:?}, name={name:?})", self.quota.to_string()),
            None => format!("Quota.parse({:?})", self.quota.to_string()),
        }
    }
}

fn per(
    py: Python<'_>,
    rate: &Bound<'_, PyAny>,
    period_ns: u64,
    burst: Option<&Bound<'_, PyAny>>,
    name: Option<String>,
) -> PyResult<PyQuota> {
    let rate = u64_arg(rate, "rate")?;
    let quota = cellgate::Quota::new(rate, period_ns).map_err(|error| quota_error(py, error))?;
    let quota = with_burst(py, quota, burst)?;
    with_name(py, quota, name)
}
