//! Header and 429-body rendering through core, so that Node sends the same bytes as every
//! other runtime: the rate-limit styles of [`render_headers`] and the per-dimension styles of
//! [`render_dimension_headers`] (LLM API header families).

use cellgate::{
    combined_retry_after_ns, render_429_body, render_dimension_headers, render_headers,
    HeaderError, NamedStyle, PolicyHeader, Quota, StyleName, MAX_429_BODY_BYTES, MAX_POLICY_QUOTAS,
};
use napi::Result;
use std::cell::RefCell;

use crate::boundary::range_error;
use crate::boundary::shared::{cost_from_f64, f64_to_ns, Shared, ENTRIES, ENTRY_SLOTS};

/// What a rendering reads: the decision JavaScript wrote into the shared array (`count`
/// entries), and the limiter's names and quotas. Nothing in it is allocated: a rendering of
/// a known shape allocates nothing at all.
pub(crate) struct HeaderSource<'a> {
    pub(crate) shared: &'a Shared,
    /// The quotas' names, in order ([`names`] fills them; the rest are empty).
    pub(crate) names: [&'a str; MAX_POLICY_QUOTAS],
    pub(crate) quotas: &'a [Quota],
    /// The argument that gave each quota's name.
    pub(crate) arguments: &'a [String],
    pub(crate) count: usize,
}

/// The first [`MAX_POLICY_QUOTAS`] of `names` as an array (a limiter has no more quotas).
pub(crate) fn names<'a>(names: impl Iterator<Item = &'a str>) -> [&'a str; MAX_POLICY_QUOTAS] {
    let mut array = [""; MAX_POLICY_QUOTAS];
    for (slot, name) in array.iter_mut().zip(names) {
        *slot = name;
    }
    array
}

impl HeaderSource<'_> {
    /// Entry `index` of the decision as core's header description of quota `index`.
    fn policy(&self, index: usize) -> Result<PolicyHeader<'_>> {
        let base = ENTRIES + ENTRY_SLOTS * index;
        let number = |slot: usize, what: &str| {
            f64_to_ns(self.shared.get(base + slot))
                .ok_or_else(|| range_error(format!("decision: {what} is not a valid count")))
        };
        let (Some(name), Some(quota)) = (self.names.get(index), self.quotas.get(index)) else {
            return Err(range_error(
                "decision: more entries than the limiter has quotas",
            ));
        };
        Ok(PolicyHeader {
            name,
            quota: *quota,
            decision: cellgate::Decision {
                allowed: self.shared.get(base) != 0.0,
                limit: number(1, "limit")?,
                remaining: number(2, "remaining")?,
                retry_after_ns: number(3, "retryAfter")?,
                reset_after_ns: number(4, "resetAfter")?,
            },
        })
    }

    /// Calls `with` on the decision's entries as core's header descriptions, one per quota
    /// (on the stack: one entry, the common case, is not an array of eight).
    fn with_policies<R>(&self, with: impl FnOnce(&[PolicyHeader<'_>]) -> Result<R>) -> Result<R> {
        let count = self.count.min(self.quotas.len()).min(MAX_POLICY_QUOTAS);
        if count == 1 {
            return with(core::slice::from_ref(&self.policy(0)?));
        }
        let mut policies = Vec::with_capacity(count);
        for index in 0..count {
            policies.push(self.policy(index)?);
        }
        with(&policies)
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

/// The names of the header styles, core's (`StyleName::ALL`), in the order of their indices:
/// an index crosses the boundary, not a string (which napi-rs would copy into a `String` on
/// every call).
#[napi_derive::napi(js_name = "headerStyles")]
pub fn header_styles() -> Vec<String> {
    StyleName::ALL
        .map(|style| style.as_str().to_owned())
        .to_vec()
}

/// The names of the header styles that show the wall clock (core's
/// `StyleName::reads_wall_clock`): the styles whose rendering needs `nowUnixS`.
#[napi_derive::napi(js_name = "wallClockStyles")]
pub fn wall_clock_styles() -> Vec<String> {
    StyleName::ALL
        .into_iter()
        .filter(|style| style.reads_wall_clock())
        .map(|style| style.as_str().to_owned())
        .collect()
}

/// Renders `source` in the style at index `style` of `StyleName::ALL`; `now_unix_s` is the
/// wall clock for the styles that show one. Returns `name\nvalue\nname\nvalue...`.
pub(crate) fn render(source: &HeaderSource<'_>, style: u32, now_unix_s: f64) -> Result<String> {
    let style = named_style(style, now_unix_s)?;
    let mut text = String::with_capacity(256);
    render_with(source, style, &mut Vec::new(), |headers| {
        for (name, value) in headers {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(name);
            text.push('\n');
            text.push_str(value);
        }
    })?;
    Ok(text)
}

/// Renders `source` as [`render`] does, in `buffer` (grown as needed, never shrunk: a
/// kept buffer makes a rendering allocate nothing), and hands the `(name, value)` pairs,
/// core's bytes (printable ASCII, no newline in either), to `emit`.
fn render_with(
    source: &HeaderSource<'_>,
    style: NamedStyle,
    buffer: &mut Vec<u8>,
    emit: impl FnOnce(&mut dyn Iterator<Item = (&str, &str)>),
) -> Result<()> {
    source.with_policies(|policies| render_policies(source, style, policies, buffer, emit))
}

/// The style at index `style` of `StyleName::ALL`, at `now_unix_s` where it reads the wall
/// clock. Errors: a `RangeError` naming `options.style` for an index that is no style, or
/// `options.nowUnixS` for a wall-clock style given a negative, NaN or too large second.
pub(crate) fn named_style(style: u32, now_unix_s: f64) -> Result<NamedStyle> {
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
    Ok(style.with_now(now_unix_s))
}

/// The rendering of [`render_with`], once the style is known and the policies read.
fn render_policies(
    source: &HeaderSource<'_>,
    style: NamedStyle,
    policies: &[PolicyHeader<'_>],
    buffer: &mut Vec<u8>,
    emit: impl FnOnce(&mut dyn Iterator<Item = (&str, &str)>),
) -> Result<()> {
    let needed = match style {
        NamedStyle::Policies(style) => {
            // Core's bound for these policies: one rendering is enough.
            let name_bytes = policies.iter().map(|policy| policy.name.len()).sum();
            let needed = cellgate::max_header_bytes(policies.len(), name_bytes);
            if buffer.len() < needed {
                buffer.resize(needed, 0);
            }
            let headers =
                render_headers(style, policies, buffer).map_err(|error| source.error(error))?;
            emit(&mut headers.iter());
            return Ok(());
        }
        NamedStyle::Dimensions(style) => {
            if buffer.len() < 512 {
                buffer.resize(512, 0);
            }
            match render_dimension_headers(style, policies, buffer) {
                Ok(headers) => {
                    emit(&mut headers.iter());
                    return Ok(());
                }
                Err(HeaderError::BufferTooSmall { needed }) => (style, needed),
                Err(error) => return Err(source.error(error)),
            }
        }
    };
    let (style, needed) = needed;
    buffer.resize(needed, 0);
    let headers =
        render_dimension_headers(style, policies, buffer).map_err(|error| source.error(error))?;
    emit(&mut headers.iter());
    Ok(())
}

/// How many distinct lists of header names one limiter remembers (a style and a decision's
/// shape give one: a handful in practice). A rendering of another list gets no shape, and
/// JavaScript renders it whole through `renderHeaders` instead.
pub(crate) const MAX_HEADER_SHAPES: usize = 64;

/// The lists of header names (a *shape*: the names of one rendering, in order) a limiter's
/// renderings have had, by index, so that a rendering crosses the boundary as its values
/// alone plus the index of its shape, and JavaScript builds the object with a constructor it
/// made once per shape (an object literal of fixed keys: a few nanoseconds, where setting
/// computed keys from a split string costs about 200).
#[derive(Default)]
pub(crate) struct HeaderShapes {
    scratch: RefCell<ShapeScratch>,
}

/// What [`HeaderShapes`] keeps between renderings, so that a rendering allocates nothing.
#[derive(Default)]
struct ShapeScratch {
    /// Each shape's names joined by `\n`.
    shapes: Vec<Box<[u8]>>,
    /// The values of the last rendering, joined by `\n`.
    values: Vec<u8>,
    /// The names of the last rendering, joined by `\n`.
    names: Vec<u8>,
    /// Where core renders.
    buffer: Vec<u8>,
}

impl HeaderShapes {
    /// Renders `source` in `style` (resolved by [`named_style`]) as [`render`] does, and passes
    /// `finish` its values joined by `\n` with the index of its shape (`None` once
    /// [`MAX_HEADER_SHAPES`] shapes are known and this is another).
    ///
    /// # Errors
    /// As [`render`]'s past the style; also a re-entrant call (none can happen: nothing here calls back into
    /// JavaScript).
    pub(crate) fn render<R>(
        &self,
        source: &HeaderSource<'_>,
        style: NamedStyle,
        finish: impl FnOnce(Option<usize>, &[u8]) -> R,
    ) -> Result<R> {
        let mut scratch = self
            .scratch
            .try_borrow_mut()
            .map_err(|_| range_error("headers: a rendering is already under way"))?;
        let ShapeScratch {
            shapes,
            values,
            names,
            buffer,
        } = &mut *scratch;
        values.clear();
        names.clear();
        render_with(source, style, buffer, |headers| {
            for (name, value) in headers {
                if !names.is_empty() {
                    names.push(b'\n');
                    values.push(b'\n');
                }
                names.extend_from_slice(name.as_bytes());
                values.extend_from_slice(value.as_bytes());
            }
        })?;
        let shape = match shapes.iter().position(|shape| **shape == **names) {
            Some(index) => Some(index),
            None if shapes.len() < MAX_HEADER_SHAPES => {
                shapes.push(names.as_slice().into());
                Some(shapes.len() - 1)
            }
            None => None,
        };
        Ok(finish(shape, values))
    }

    /// The names of shape `index`, joined by `\n` (`None` for an index never returned).
    pub(crate) fn names(&self, index: u32) -> Option<String> {
        let scratch = self.scratch.try_borrow().ok()?;
        let shape = scratch.shapes.get(usize::try_from(index).ok()?)?;
        Some(String::from_utf8_lossy(shape).into_owned())
    }
}

/// The JSON body of the 429 answer to `source`'s decision: core's
/// `{"error":"rate_limited","retry_after":N}`, `N` the `Retry-After` seconds or `null`.
pub(crate) fn render_body(source: &HeaderSource<'_>) -> Result<String> {
    let retry_after_ns =
        source.with_policies(|policies| Ok(combined_retry_after_ns(policies).unwrap_or(0)))?;
    let mut body = [0u8; MAX_429_BODY_BYTES];
    let len = render_429_body(retry_after_ns, &mut body)
        .map_err(|error| range_error(format!("body: {error}")))?;
    Ok(String::from_utf8_lossy(body.get(..len).unwrap_or_default()).into_owned())
}
