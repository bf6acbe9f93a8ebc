//! Quotas from JavaScript arguments: rate strings in the notation of Python's `limits`
//! (`"100/minute"`, `"10/s; 1000/day"`) and an optional burst.

use cellgate::{parse_quotas, Quota};
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

/// Splits a rate string into its quotas, each written back in the rate-string grammar
/// (`"10/s; 1000/day"` gives `["10/second", "1000/day"]`): what a limiter with several quotas
/// uses for its entries and their header names.
///
/// # Errors
/// A `RangeError`-coded error naming the problem and its byte offset.
#[napi(js_name = "splitRates")]
pub fn split_rates(rate: String) -> Result<Vec<String>> {
    Ok(parse_list(&rate, "rate")?
        .iter()
        .map(ToString::to_string)
        .collect())
}
