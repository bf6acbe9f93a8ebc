//! `Quota`: a rate, a period and a burst, from numbers or from `limits`-style rate strings.

use crate::boundary::{invalid, invalid_rate, invalid_type};
use crate::boundary::{optional_str_arg, seconds_arg, str_arg, type_name, u64_arg};
use cellgate::{
    check_names, default_quota_name, parse_quotas, QuotaError, NS_PER_DAY, NS_PER_HOUR,
    NS_PER_MINUTE, NS_PER_SECOND,
};
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
    /// The name headers show: the given name, or core's default name such as `10-in-1s`
    /// ([`default_quota_name`], the same in every runtime).
    pub fn header_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| default_quota_name(&self.quota).to_string())
    }
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

/// The error for a quota made from a rate alone (`Quota(rate, period)`, `Quota.per_*`): its
/// burst defaults to the rate, so an unrepresentable capacity is the rate's fault.
fn rate_error(py: Python<'_>, error: QuotaError) -> PyErr {
    match error {
        QuotaError::CapacityOverflow => invalid(
            py,
            "rate",
            "with the burst equal to the rate (the default), the bucket cannot be represented \
             exactly (burst * period / gcd(rate, period) overflows); lower the rate, or give a \
             smaller burst",
        ),
        other => quota_error(py, other),
    }
}

/// Checks a name headers will show: non-empty printable ASCII, as a Structured Field string
/// needs (core's rule, [`check_names`]).
pub fn check_name(py: Python<'_>, argument: &str, name: &str) -> PyResult<()> {
    check_names(&[name]).map_err(|_| {
        invalid(
            py,
            argument,
            &format!("must be non-empty printable ASCII (a header carries it), got {name:?}"),
        )
    })
}

/// The `name` argument of a quota: `None` (absent or `None`), or a `str` that [`check_name`]
/// accepts.
fn name_arg(py: Python<'_>, name: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(name) = optional_str_arg(name, "name")? else {
        return Ok(None);
    };
    check_name(py, "name", &name)?;
    Ok(Some(name.into_owned()))
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
        if item.is_instance_of::<PyString>() {
            let text = str_arg(item, "rate")?;
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
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let rate = u64_arg(rate, "rate")?;
        let period_ns = match period {
            None => NS_PER_SECOND,
            Some(period) => seconds_arg(period, "period")?,
        };
        let name = name_arg(py, name)?;
        from_rate(py, rate, period_ns, burst, name)
    }

    /// Parses one rate string such as `"10/second"`, `"10 per minute"`, `"500/7 days"` or
    /// `"5/s (burst 2)"` (the notation of the `limits` package). Raises `InvalidRate`.
    #[staticmethod]
    #[pyo3(signature = (text, *, name=None))]
    fn parse(
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let text = str_arg(text, "text")?;
        let name = name_arg(py, name)?;
        let quota = cellgate::Quota::parse(&text)
            .map_err(|error| invalid_rate(py, "text", &text, error.offset(), &error.to_string()))?;
        Ok(PyQuota { quota, name })
    }

    /// Parses a list of rate strings separated by `,`, `;` or `|` (`"10/s; 1000/day"`).
    #[staticmethod]
    fn parse_many(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Vec<Self>> {
        let text = str_arg(text, "text")?;
        Ok(parse_list(py, "text", &text)?
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
        name: Option<&Bound<'_, PyAny>>,
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
        name: Option<&Bound<'_, PyAny>>,
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
        name: Option<&Bound<'_, PyAny>>,
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
        name: Option<&Bound<'_, PyAny>>,
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
    fn named(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name = str_arg(name, "name")?;
        check_name(py, "name", &name)?;
        Ok(PyQuota {
            quota: self.quota,
            name: Some(name.into_owned()),
        })
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
    name: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyQuota> {
    let rate = u64_arg(rate, "rate")?;
    let name = name_arg(py, name)?;
    from_rate(py, rate, period_ns, burst, name)
}

/// A quota of `rate` per `period_ns`, with `burst` when given (else the rate).
fn from_rate(
    py: Python<'_>,
    rate: u64,
    period_ns: u64,
    burst: Option<&Bound<'_, PyAny>>,
    name: Option<String>,
) -> PyResult<PyQuota> {
    let quota = match burst {
        // Without a burst the capacity is the rate's: blame it, not a burst never given.
        None => cellgate::Quota::new(rate, period_ns).map_err(|error| rate_error(py, error))?,
        Some(burst) => {
            let burst = u64_arg(burst, "burst")?;
            cellgate::Quota::with_parts(rate, period_ns, burst)
                .map_err(|error| quota_error(py, error))?
        }
    };
    Ok(PyQuota { quota, name })
}
