//! Header and 429-body rendering through core, so that Node sends the same bytes as every
//! other runtime.

use cellgate::{
    render_429_body, render_headers, HeaderStyle, PolicyHeader, Quota, MAX_429_BODY_BYTES,
};
use napi::Result;
use napi_derive::napi;

use crate::error::range_error;
use crate::shared::{f64_to_ns, Shared, ENTRIES, ENTRY_SLOTS};

/// `style`: 0 IETF (draft-10), 1 legacy `X-RateLimit-*` (reset in seconds from now), 2 legacy
/// with the reset as a Unix time (`now_unix_s` is the current Unix time in seconds).
pub(crate) fn header_style(style: u32, now_unix_s: f64) -> Result<HeaderStyle> {
    match style {
        0 => Ok(HeaderStyle::Ietf),
        1 => Ok(HeaderStyle::Legacy),
        2 => {
            let now_unix_s = crate::shared::cost_from_f64(now_unix_s.floor())
                .ok_or_else(|| range_error("nowUnixS must be a non-negative number"))?;
            Ok(HeaderStyle::LegacyEpoch { now_unix_s })
        }
        _ => Err(range_error(
            "style must be 'ietf', 'legacy' or 'legacy-epoch'",
        )),
    }
}

/// Reads `count` entries' decisions from the shared array (written there by JavaScript from
/// decision objects) and renders the headers as `name\nvalue\nname\nvalue...` (neither names
/// nor values contain a newline: names are printable ASCII, values are too).
pub(crate) fn render(
    shared: &Shared,
    names: &[String],
    quotas: &[Quota],
    style: HeaderStyle,
    count: usize,
) -> Result<String> {
    let mut policies = Vec::with_capacity(count);
    for (index, (name, quota)) in names.iter().zip(quotas).enumerate().take(count) {
        let base = ENTRIES + ENTRY_SLOTS * index;
        let number = |slot: usize, what: &str| {
            f64_to_ns(shared.get(base + slot))
                .ok_or_else(|| range_error(format!("decision: {what} is not a valid count")))
        };
        policies.push(PolicyHeader {
            name,
            quota: *quota,
            decision: cellgate::Decision {
                allowed: shared.get(base) != 0.0,
                limit: number(1, "limit")?,
                remaining: number(2, "remaining")?,
                retry_after_ns: number(3, "retryAfter")?,
                reset_after_ns: number(4, "resetAfter")?,
            },
        });
    }
    let name_bytes = names.iter().map(String::len).sum();
    let mut buffer = vec![0u8; cellgate::max_header_bytes(policies.len(), name_bytes)];
    let headers = render_headers(style, &policies, &mut buffer)
        .map_err(|error| range_error(format!("headers: {error}")))?;
    let mut text = String::with_capacity(headers.as_str().len().saturating_add(64));
    for (name, value) in headers.iter() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name);
        text.push('\n');
        text.push_str(value);
    }
    Ok(text)
}

/// The JSON body of a 429 response for a wait of `retry_after_ns` (`Infinity` for never):
/// `{"error":"rate_limited","retry_after":N}` with `N` the `Retry-After` seconds, or `null`.
///
/// # Errors
/// A `RangeError`-coded error for a value that is not a non-negative integer or `Infinity`.
#[napi(js_name = "render429Body")]
pub fn render_body(retry_after_ns: f64) -> Result<String> {
    let retry_after_ns = f64_to_ns(retry_after_ns)
        .ok_or_else(|| range_error("retryAfterNs must be a non-negative integer"))?;
    let mut body = [0u8; MAX_429_BODY_BYTES];
    let len = render_429_body(retry_after_ns, &mut body)
        .map_err(|error| range_error(format!("body: {error}")))?;
    Ok(String::from_utf8_lossy(body.get(..len).unwrap_or_default()).into_owned())
}
