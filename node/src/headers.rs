//! Header and 429-body rendering through core, so that Node sends the same bytes as every
//! other runtime: the rate-limit styles of [`render_headers`] and the per-dimension styles of
//! [`render_dimension_headers`] (LLM API header families).

use cellgate::{
    combined_retry_after_ns, render_429_body, render_dimension_headers, render_headers,
    HeaderError, NamedStyle, PolicyHeader, Quota, StyleName, MAX_429_BODY_BYTES,
};
use napi::Result;

use crate::boundary::range_error;
use crate::boundary::shared::{cost_from_f64, f64_to_ns, Shared, ENTRIES, ENTRY_SLOTS};

/// What a rendering reads: the decision JavaScript wrote into the shared array (`count`
/// entries), and the limiter's names and quotas.
pub(crate) struct HeaderSource<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) names: Vec<&'a str>,
    pub(crate) quotas: &'a [Quota],
    /// The argument that gave each quota's name.
    pub(crate) arguments: &'a [String],
    pub(crate) count: usize,
}

impl HeaderSource<'_> {
    /// The decision's entries as core's header descriptions, one per quota.
    fn policies(&self) -> Result<Vec<PolicyHeader<'_>>> {
        let mut policies = Vec::with_capacity(self.count.min(self.names.len()));
        for (index, (name, quota)) in self
            .names
            .iter()
            .zip(self.quotas)
            .enumerate()
            .take(self.count)
        {
            let base = ENTRIES + ENTRY_SLOTS * index;
            let number = |slot: usize, what: &str| {
                f64_to_ns(self.shared.get(base + slot))
                    .ok_or_else(|| range_error(format!("decision: {what} is not a valid count")))
            };
            policies.push(PolicyHeader {
                name,
                quota: *quota,
                decision: cellgate::Decision {
                    allowed: self.shared.get(base) != 0.0,
                    limit: number(1, "limit")?,
                    remaining: number(2, "remaining")?,
                    retry_after_ns: number(3, "retryAfter")?,
                    reset_after_ns: number(4, "resetAfter")?,
                },
            });
        }
        Ok(policies)
    }

    /// The error of a rendering, naming the quota whose name is at fault.
    fn error(&self, error: HeaderError) -> napi::Error {
        match error {
            HeaderError::InvalidName { index } => range_error(format!(
                "{}: {error}",
                self.arguments.get(index).map_or("decision", String::as_str)
            )),
            _ => range_error(format!("headers: {error}")),
        }
    }
}

/// One of core's rendered header lists as `name\nvalue\nname\nvalue...` (neither names nor
/// values hold a newline: both are printable ASCII).
fn joined<N: AsRef<str>, V: AsRef<str>>(headers: impl Iterator<Item = (N, V)>) -> String {
    let mut text = String::with_capacity(256);
    for (name, value) in headers {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name.as_ref());
        text.push('\n');
        text.push_str(value.as_ref());
    }
    text
}

/// The names of the header styles, core's (`StyleName::ALL`), in the order of their indices:
/// an index crosses the boundary, not a string (which napi-rs would copy into a `String` on
/// every call).
#[napi_derive::napi(js_name = "headerStyles")]
pub fn header_styles() -> Vec<String> {
    StyleName::ALL
        .map(|style| style.as_str().to_owned())
        .to_vec()
}

/// Renders `source` in the style at index `style` of `StyleName::ALL`; `now_unix_s` is the
/// wall clock for the styles that show one.
pub(crate) fn render(source: &HeaderSource<'_>, style: u32, now_unix_s: f64) -> Result<String> {
    let Some(style) = usize::try_from(style)
        .ok()
        .and_then(|index| StyleName::ALL.get(index))
        .copied()
    else {
        return Err(range_error(format!(
            "options.style must be one of {}",
            StyleName::ALL.map(StyleName::as_str).join(", ")
        )));
    };
    let now_unix_s = if style.reads_wall_clock() {
        cost_from_f64(now_unix_s.floor())
            .ok_or_else(|| range_error("options.nowUnixS must be a non-negative number"))?
    } else {
        0
    };
    let policies = source.policies()?;
    match style.with_now(now_unix_s) {
        NamedStyle::Policies(style) => {
            let name_bytes = policies.iter().map(|policy| policy.name.len()).sum();
            let mut buffer = vec![0u8; cellgate::max_header_bytes(policies.len(), name_bytes)];
            let text = render_headers(style, &policies, &mut buffer)
                .map(|headers| joined(headers.iter()))
                .map_err(|error| source.error(error))?;
            Ok(text)
        }
        NamedStyle::Dimensions(style) => {
            let mut buffer = vec![0u8; 512];
            let needed = match render_dimension_headers(style, &policies, &mut buffer) {
                Ok(headers) => return Ok(joined(headers.iter())),
                Err(HeaderError::BufferTooSmall { needed }) => needed,
                Err(error) => return Err(source.error(error)),
            };
            buffer.resize(needed, 0);
            let text = render_dimension_headers(style, &policies, &mut buffer)
                .map(|headers| joined(headers.iter()))
                .map_err(|error| source.error(error))?;
            Ok(text)
        }
    }
}

/// The JSON body of the 429 answer to `source`'s decision: core's
/// `{"error":"rate_limited","retry_after":N}`, `N` the `Retry-After` seconds or `null`.
pub(crate) fn render_body(source: &HeaderSource<'_>) -> Result<String> {
    let policies = source.policies()?;
    let retry_after_ns = combined_retry_after_ns(&policies).unwrap_or(0);
    let mut body = [0u8; MAX_429_BODY_BYTES];
    let len = render_429_body(retry_after_ns, &mut body)
        .map_err(|error| range_error(format!("body: {error}")))?;
    Ok(String::from_utf8_lossy(body.get(..len).unwrap_or_default()).into_owned())
}
