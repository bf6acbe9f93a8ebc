//! Arguments from Python to Rust: keys, costs, nanoseconds and seconds, checked strictly.
//!
//! A bool is never a number here (`True` as a cost is a mistake, not 1); NaN, infinities,
//! negative numbers, fractions and values above `u64::MAX` are errors that name the argument,
//! never a silent zero or a saturation.

use crate::errors::{invalid, invalid_type};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString};
use std::borrow::Cow;

/// `2^64` as a float: the first float above every `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// A key's bytes: borrowed from a `str` or `bytes` object, or an int's decimal digits.
pub enum Key<'a> {
    /// The UTF-8 of a `str` (cached inside the string object) or the contents of a `bytes`.
    Borrowed(&'a [u8]),
    /// The decimal text of an int that fits `i64`, on the stack.
    Digits([u8; 20], usize),
    /// The decimal text of a larger int.
    Owned(Vec<u8>),
}

impl Key<'_> {
    /// The key's bytes: what the keyed table hashes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Borrowed(bytes) => bytes,
            Key::Digits(digits, len) => digits.get(..*len).unwrap_or(&[]),
            Key::Owned(bytes) => bytes,
        }
    }
}

/// The UTF-8 bytes of `text`, borrowed from the string object, which caches them (an ASCII
/// string's are its own storage: no copy, no allocation). `PyUnicode_AsUTF8AndSize` is in
/// the stable ABI from Python 3.10, the wheel's minimum (`Cargo.toml`); the allocating
/// alternative, `PyUnicode_AsUTF8String`, would make a bytes object per call.
#[inline]
fn utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<&'a [u8]> {
    let mut size: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a live `str` object (the cast checked it) and `size` a valid out
    // pointer; the call needs an attached thread, which the `Bound` proves.
    let data = unsafe { pyo3::ffi::PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size) };
    if data.is_null() {
        return Err(PyErr::fetch(text.py()));
    }
    let len = usize::try_from(size).unwrap_or(0);
    // SAFETY: on success the pointer is to `size` bytes owned by the string object, which
    // outlives the borrow `'a` of it and never changes them (str is immutable).
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// The bytes of a key given as `str` (its UTF-8), `bytes` (as is) or `int` (its decimal text,
/// so `42` and `"42"` are one key). Anything else, including `bool`, is an
/// `InvalidArgumentType`; a `str` with lone surrogates is an `InvalidArgument`.
#[inline]
pub fn key_bytes<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Key<'a>> {
    // An exact `str`, the usual key, is recognised by its type pointer alone (`PyUnicode_Check`
    // is a call into CPython under the limited API), here where the check is inlined; every
    // other key, `str` subclasses included, takes `any_key_bytes`, which decides the same.
    if key.is_exact_instance_of::<PyString>() {
        // SAFETY: `key` is a `str` (checked just above).
        let text = unsafe { key.cast_unchecked::<PyString>() };
        return utf8(text)
            .map(Key::Borrowed)
            .map_err(|_| unencodable(key.py()));
    }
    any_key_bytes(key)
}

/// The error for a `str` key with lone surrogates.
#[cold]
fn unencodable(py: Python<'_>) -> PyErr {
    invalid(py, "key", "the string cannot be encoded as UTF-8")
}

/// [`key_bytes`] for every key type.
fn any_key_bytes<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Key<'a>> {
    let py = key.py();
    if let Ok(text) = key.cast::<PyString>() {
        return utf8(text).map(Key::Borrowed).map_err(|_| unencodable(py));
    }
    if let Ok(bytes) = key.cast::<PyBytes>() {
        return Ok(Key::Borrowed(bytes.as_bytes()));
    }
    if key.is_instance_of::<PyInt>() && !key.is_instance_of::<PyBool>() {
        if let Ok(value) = key.extract::<i64>() {
            return Ok(decimal(value));
        }
        let text = key.str()?;
        return Ok(Key::Owned(text.to_cow()?.into_owned().into_bytes()));
    }
    Err(invalid_type(
        py,
        "key",
        &format!(
            "must be str, bytes or int, not {}",
            type_name(key).unwrap_or_default()
        ),
    ))
}

/// `value`'s decimal text on the stack.
fn decimal(value: i64) -> Key<'static> {
    let mut digits = [0u8; 20];
    let mut magnitude = value.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        // The remainder is below 10.
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        digits[start] = b'-';
    }
    let len = digits.len() - start;
    digits.copy_within(start.., 0);
    Key::Digits(digits, len)
}

/// A text argument: a `str` encodable as UTF-8. Another type is an `InvalidArgumentType`, a
/// `str` holding a lone surrogate an `InvalidArgument`, each naming `argument` (never a bare
/// `TypeError` or `UnicodeEncodeError`).
pub fn str_arg<'a>(value: &'a Bound<'_, PyAny>, argument: &str) -> PyResult<Cow<'a, str>> {
    let py = value.py();
    let Ok(text) = value.cast::<PyString>() else {
        return Err(invalid_type(
            py,
            argument,
            &format!(
                "must be a str, not {}",
                type_name(value).unwrap_or_default()
            ),
        ));
    };
    text.to_cow().map_err(|_| {
        invalid(
            py,
            argument,
            "must be encodable as UTF-8 (it holds a lone surrogate)",
        )
    })
}

/// An argument that may be omitted, told apart from one given as `None` (pyo3 extracts an
/// `Option` from `None` as `None`, so `f(x=None)` would read as `f()`): for parameters whose
/// default is not `None`, so that an explicit `None` is the error it is.
pub enum Given<'py> {
    /// Not passed: the parameter's default.
    Absent,
    /// Passed, possibly as `None`.
    Value(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Given<'py> {
    type Error = PyErr;

    fn extract(value: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Self::Value(value.to_owned()))
    }
}

/// An optional text argument: absent or `None` is `None`, otherwise as [`str_arg`].
pub fn optional_str_arg<'a>(
    value: Option<&'a Bound<'_, PyAny>>,
    argument: &str,
) -> PyResult<Option<Cow<'a, str>>> {
    match value {
        Some(value) if !value.is_none() => str_arg(value, argument).map(Some),
        _ => Ok(None),
    }
}

/// The name of `value`'s type, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> Option<String> {
    value
        .get_type()
        .name()
        .ok()
        .and_then(|name| name.extract().ok())
}

/// A cost: `None` is core's `DEFAULT_COST` (1); otherwise as [`u64_arg`].
#[inline]
pub fn cost_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match value {
        None => Ok(cellgate::DEFAULT_COST),
        Some(value) => u64_arg(value, "cost"),
    }
}

/// A count or nanoseconds: an int in `0..=u64::MAX`, or a float with such an integral value.
/// A bool, a negative, fractional, NaN or infinite number, or one above `u64::MAX` is an error
/// naming `argument`.
#[inline]
pub fn u64_arg(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<u64> {
    let py = value.py();
    if value.is_exact_instance_of::<PyInt>() {
        return value
            .extract::<u64>()
            .map_err(|_| int_out_of_range(value, argument));
    }
    if value.is_instance_of::<PyBool>() {
        return Err(invalid_type(py, argument, "must be an int, not bool"));
    }
    if value.is_instance_of::<PyInt>() {
        return value
            .extract::<u64>()
            .map_err(|_| int_out_of_range(value, argument));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let number = float.value();
        if number.is_nan() {
            return Err(invalid(py, argument, "must be a number, not NaN"));
        }
        if number < 0.0 {
            return Err(invalid(
                py,
                argument,
                &format!("must not be negative, got {number}"),
            ));
        }
        if number.is_infinite() || number >= TWO_POW_64 {
            return Err(invalid(
                py,
                argument,
                &format!("must be at most {}, got {number}", u64::MAX),
            ));
        }
        if number.fract() != 0.0 {
            return Err(invalid(
                py,
                argument,
                &format!("must be a whole number, got {number}"),
            ));
        }
        // Checked above: integral and in 0..2^64, so the conversion is exact.
        return Ok(number as u64);
    }
    Err(invalid_type(
        py,
        argument,
        &format!(
            "must be an int, not {}",
            type_name(value).unwrap_or_default()
        ),
    ))
}

fn int_out_of_range(value: &Bound<'_, PyAny>, argument: &str) -> PyErr {
    let py = value.py();
    let negative = value.lt(0).unwrap_or(false);
    let shown = value
        .str()
        .ok()
        .and_then(|text| text.to_cow().ok().map(|text| text.into_owned()))
        .unwrap_or_default();
    if negative {
        invalid(py, argument, &format!("must not be negative, got {shown}"))
    } else {
        invalid(
            py,
            argument,
            &format!("must be at most {}, got {shown}", u64::MAX),
        )
    }
}

/// A duration in seconds (int or float) to nanoseconds, rounded to the nearest nanosecond.
/// A bool, a negative, NaN or infinite number, or one above `u64::MAX` ns is an error naming
/// `argument`.
pub fn seconds_arg(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<u64> {
    let py = value.py();
    if value.is_instance_of::<PyBool>() {
        return Err(invalid_type(
            py,
            argument,
            "must be a number of seconds, not bool",
        ));
    }
    if value.is_instance_of::<PyInt>() {
        let seconds = value
            .extract::<u64>()
            .map_err(|_| int_out_of_range(value, argument))?;
        return seconds.checked_mul(1_000_000_000).ok_or_else(|| {
            invalid(
                py,
                argument,
                &format!(
                    "must be at most {} seconds, got {seconds}",
                    u64::MAX / 1_000_000_000
                ),
            )
        });
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        let seconds = float.value();
        if seconds.is_nan() {
            return Err(invalid(
                py,
                argument,
                "must be a number of seconds, not NaN",
            ));
        }
        if seconds < 0.0 {
            return Err(invalid(
                py,
                argument,
                &format!("must not be negative, got {seconds}"),
            ));
        }
        let ns = (seconds * 1e9).round();
        if ns.is_infinite() || ns >= TWO_POW_64 {
            return Err(invalid(
                py,
                argument,
                &format!(
                    "must be at most {} nanoseconds, got {seconds} seconds",
                    u64::MAX
                ),
            ));
        }
        // Checked above: in 0..2^64 and integral, so the conversion is exact.
        return Ok(ns as u64);
    }
    Err(invalid_type(
        py,
        argument,
        &format!(
            "must be a number of seconds (int or float), not {}",
            type_name(value).unwrap_or_default()
        ),
    ))
}

/// Nanoseconds as float seconds, `inf` for `cellgate::NEVER`.
pub fn ns_to_seconds(ns: u64) -> f64 {
    if ns == cellgate::NEVER {
        f64::INFINITY
    } else {
        ns as f64 / 1e9
    }
}

/// `duration_ns(seconds, argument)`: seconds (int or float) to whole nanoseconds, with the
/// same checks and errors as every duration argument of the package (for the pure-Python
/// layer's `timeout`).
#[pyfunction]
#[pyo3(name = "_duration_ns")]
pub fn duration_ns(seconds: &Bound<'_, PyAny>, argument: &str) -> PyResult<u64> {
    seconds_arg(seconds, argument)
}
