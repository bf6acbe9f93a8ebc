//! Quotas from JavaScript arguments: rate strings in the notation of Python's `limits`
//! (`"100/minute"`, `"10/s; 1000/day"`) and an optional burst.

use cellgate::{default_quota_name, parse_quotas, Quota};
use napi::Result;
use napi_derive::napi;

use crate::error::range_error;
use crate::shared::{cost_from_f64, MAX_SAFE_INTEGER};

/// Parses a list of rate strings (`"10/s; 1000/day"`), each with the error naming `what`.
pub(crate) fn parse_list(rate: &str, what: &str) -> Result<Vec<Quota>> {
    parse_quotas(rate)
        .map(|quota| {
            quota.map_err(|error| range_error(format!("{what}: invalid rate {rate:?}: {error}")))
        })
        .collect()
}

/// Parses exactly one rate string and applies `burst` (when given), refusing limits that a
/// JavaScript number cannot hold exactly.
pub(crate) fn parse_one(rate: &str, burst: Option<f64>, what: &str) -> Result<Quota> {
    let mut quotas = parse_list(rate, what)?;
    if quotas.len() != 1 {
        return Err(range_error(format!(
            "{what}: expected one rate, got {:?}",
            rate
        )));
    }
    let mut quota = quotas.remove(0);
    if let Some(burst) = burst {
        let burst = cost_from_f64(burst)
            .ok_or_else(|| range_error(format!("{what}: burst must be a positive safe integer")))?;
        quota = quota
            .with_burst(burst)
            .map_err(|error| range_error(format!("{what}: burst {burst}: {error}")))?;
    }
    check_representable(&quota, what)?;
    Ok(quota)
}

/// A limit (burst) above 2^53 - 1 would be rounded in every decision JavaScript reads.
pub(crate) fn check_representable(quota: &Quota, what: &str) -> Result<()> {
    if quota.burst_cost() as f64 > MAX_SAFE_INTEGER {
        return Err(range_error(format!(
            "{what}: the burst ({}) is above 2^53 - 1, which a JavaScript number cannot hold exactly",
            quota.burst_cost()
        )));
    }
    Ok(())
}

/// One quota of a rate string: the quota written back in the rate-string grammar, and the
/// name headers show for it (core's [`default_quota_name`]).
#[napi(object)]
pub struct RateSpec {
    /// The quota as a rate string (`"10/second"`).
    pub rate: String,
    /// Its default header name (`"10-in-1s"`).
    pub name: String,
}

/// Splits a rate string into its quotas (`"10/s; 1000/day"` gives `10/second` named
/// `10-in-1s` and `1000/day` named `1000-in-1d`): what a limiter with several quotas uses for
/// its entries and their header names.
///
/// # Errors
/// A `RangeError`-coded error naming the problem and its byte offset.
#[napi(js_name = "splitRates")]
pub fn split_rates(rate: String) -> Result<Vec<RateSpec>> {
    Ok(parse_list(&rate, "rate")?
        .iter()
        .map(|quota| RateSpec {
            rate: quota.to_string(),
            name: default_quota_name(quota).to_string(),
        })
        .collect())
}
