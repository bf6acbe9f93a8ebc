//! Quotas from JavaScript arguments: rate strings in the notation of Python's `limits`
//! (`"100/minute"`, `"10/s; 1000/day"`), an optional burst, name and dimension.

use cellgate::{parse_quotas, Quota};
use napi::Result;
use napi_derive::napi;

use crate::boundary::range_error;
use crate::boundary::shared::{cost_from_f64, MAX_SAFE_INTEGER};

/// One quota (or, with neither burst nor name, a list of them) as JavaScript gives it.
#[napi(object)]
pub struct QuotaSpec {
    /// A rate string, such as `"10/second"` (or `"10/s; 1000/day"`).
    pub rate: String,
    /// The burst, or the rate's count when absent.
    pub burst: Option<f64>,
    /// The name headers show; core's default (`"10-in-1s"`) when absent.
    pub name: Option<String>,
    /// The dimension (index into the costs) this quota is charged in.
    pub dimension: u32,
    /// The argument that gave it, for errors (`"rate"`, `"entries[1]"`).
    pub argument: String,
    /// The argument that gave its name, for errors (`"options.name"`, `"entries[1].name"`).
    pub name_argument: String,
}

/// A quota parsed from a [`QuotaSpec`], borrowing its name and argument.
pub(crate) struct ParsedQuota<'s> {
    pub(crate) quota: Quota,
    pub(crate) name: Option<&'s str>,
    pub(crate) dimension: usize,
    pub(crate) name_argument: &'s str,
}

/// The parsed quotas as core's entries, and the argument that named each (for errors): what
/// the in-process, shared and Redis limiters are built from.
pub(crate) fn limiter_entries<'p>(
    parsed: &'p [ParsedQuota<'_>],
) -> (Vec<cellgate::LimiterQuota<'p>>, Vec<String>) {
    let entries = parsed
        .iter()
        .map(|each| cellgate::LimiterQuota {
            quota: each.quota,
            name: each.name,
            dimension: each.dimension,
        })
        .collect();
    let arguments = parsed
        .iter()
        .map(|each| each.name_argument.to_owned())
        .collect();
    (entries, arguments)
}

/// Parses every spec's rate string; a spec with several rates gives several quotas (on its
/// dimension, default names), and a burst or a name only applies to a spec of one.
pub(crate) fn parse_specs(specs: &[QuotaSpec]) -> Result<Vec<ParsedQuota<'_>>> {
    let mut parsed = Vec::with_capacity(specs.len());
    for spec in specs {
        let what = spec.argument.as_str();
        let quotas = parse_quotas(&spec.rate)
            .map(|quota| {
                quota.map_err(|error| {
                    range_error(format!("{what}: invalid rate {:?}: {error}", spec.rate))
                })
            })
            .collect::<Result<Vec<Quota>>>()?;
        if quotas.len() > 1 && (spec.burst.is_some() || spec.name.is_some()) {
            return Err(range_error(format!(
                "{what}: a burst or a name applies to one quota, and {:?} holds {} (write '10/s (burst 20)' per quota)",
                spec.rate,
                quotas.len()
            )));
        }
        for mut quota in quotas {
            if let Some(burst) = spec.burst {
                let burst = cost_from_f64(burst).ok_or_else(|| {
                    range_error(format!("{what}: burst must be a positive safe integer"))
                })?;
                quota = quota
                    .with_burst(burst)
                    .map_err(|error| range_error(format!("{what}: burst {burst}: {error}")))?;
            }
            check_representable(&quota, what)?;
            parsed.push(ParsedQuota {
                quota,
                name: spec.name.as_deref(),
                dimension: usize::try_from(spec.dimension).unwrap_or(usize::MAX),
                name_argument: &spec.name_argument,
            });
        }
    }
    Ok(parsed)
}

/// A limit (burst) above 2^53 - 1 would be rounded in every decision JavaScript reads.
fn check_representable(quota: &Quota, what: &str) -> Result<()> {
    if quota.burst_cost() as f64 > MAX_SAFE_INTEGER {
        return Err(range_error(format!(
            "{what}: the burst ({}) is above 2^53 - 1, which a JavaScript number cannot hold exactly",
            quota.burst_cost()
        )));
    }
    Ok(())
}
