//! The boundary between CPython and core: the guard that turns a Rust result or panic into
//! CPython's convention, the parsing of `METH_FASTCALL | METH_KEYWORDS` arguments, the strict
//! conversions of arguments (keys, costs, nanoseconds and seconds), and the exceptions, with
//! core's `ConfigError` translated into them.
//!
//! A bool is never a number here (`True` as a cost is a mistake, not 1); NaN, infinities,
//! negative numbers, fractions and values above `u64::MAX` are errors that name the argument,
//! never a silent zero or a saturation. Every error caused by an argument names it: the
//! exception's `argument` attribute holds the parameter's name, and the message starts with it.
//! An operation that raises changes no state.

use cellgate::ConfigError;
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PySystemError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString};
use pyo3::Borrowed;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The C signature of a `METH_FASTCALL | METH_KEYWORDS` function.
pub type FastcallWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// Runs `body` and returns what CPython expects of a function returning an object: the new
/// reference, or NULL with the exception set (a panic becomes a `SystemError` naming `what`;
/// it never unwinds into CPython).
///
/// Always inlined, so that a fast method and its body are one frame (18 instructions less per
/// `Limiter.check`, measured with callgrind).
#[inline(always)]
pub fn boundary(
    py: Python<'_>,
    what: &str,
    body: impl FnOnce() -> PyResult<*mut ffi::PyObject>,
) -> *mut ffi::PyObject {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(object)) => object,
        Ok(Err(error)) => {
            error.restore(py);
            std::ptr::null_mut()
        }
        Err(_) => {
            PySystemError::new_err(format!("cellgate: a panic in {what}")).restore(py);
            std::ptr::null_mut()
        }
    }
}

/// The arguments of a `METH_FASTCALL | METH_KEYWORDS` call, matched to `names` (every
/// parameter may be given by position or keyword): one entry per name, `None` where not given.
/// Too many positional arguments, an unknown keyword or a parameter given twice is a
/// `TypeError` naming `function`, as CPython words them.
///
/// # Safety
/// `args` holds `nargs` positional values followed by one value per name in `kwnames` (a
/// tuple of str, or NULL), each a live object borrowed for `'a` (the call), as CPython passes
/// them to a `METH_FASTCALL | METH_KEYWORDS` function.
#[inline]
pub unsafe fn fastcall_arguments<'a, 'py, const N: usize>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    names: [&str; N],
    function: &str,
) -> PyResult<[Option<Borrowed<'a, 'py, PyAny>>; N]> {
    let positional = usize::try_from(nargs).unwrap_or(0);
    if positional > N {
        return Err(too_many_arguments(function, &names, positional));
    }
    let arg = |index: usize| {
        // SAFETY: `args` holds `nargs` positional values and one per keyword name, each a live
        // object borrowed for the call (the function's contract); callers stay within that
        // count.
        unsafe { Borrowed::from_ptr(py, *args.add(index)) }
    };
    let mut values = [None; N];
    for (index, value) in values.iter_mut().enumerate().take(positional) {
        *value = Some(arg(index));
    }
    if kwnames.is_null() {
        return Ok(values);
    }
    // SAFETY: as above (the function's contract).
    unsafe { keyword_arguments(py, args, positional, kwnames, &names, function, &mut values) }?;
    Ok(values)
}

/// The `TypeError` for `given` positional arguments to `function`, which takes `names`.
#[cold]
fn too_many_arguments(function: &str, names: &[&str], given: usize) -> PyErr {
    PyTypeError::new_err(format!(
        "{function}() takes at most {} arguments ({}), {given} given",
        names.len(),
        names.join(", ")
    ))
}

/// The keyword part of [`fastcall_arguments`] (out of line: most calls have no keywords).
///
/// # Safety
/// As [`fastcall_arguments`], with `positional` the number of positional arguments.
#[inline(never)]
unsafe fn keyword_arguments<'a, 'py>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    positional: usize,
    kwnames: *mut ffi::PyObject,
    names: &[&str],
    function: &str,
    values: &mut [Option<Borrowed<'a, 'py, PyAny>>],
) -> PyResult<()> {
    let arg = |index: usize| {
        // SAFETY: `args` holds `positional` values and one per keyword name, each a live
        // object borrowed for the call (the function's contract); callers stay within that
        // count.
        unsafe { Borrowed::from_ptr(py, *args.add(index)) }
    };
    // SAFETY: a non-NULL `kwnames` is a tuple borrowed for the call (the function's contract).
    let keywords = unsafe { Borrowed::from_ptr(py, kwnames) }.cast::<pyo3::types::PyTuple>()?;
    for (index, keyword) in keywords.iter().enumerate() {
        let keyword = keyword.cast_into::<PyString>()?;
        let keyword = keyword.to_cow()?;
        let Some(slot) = names
            .iter()
            .position(|name| *name == keyword)
            .and_then(|position| values.get_mut(position))
        else {
            return Err(PyTypeError::new_err(format!(
                "{function}() got an unexpected keyword argument {keyword:?}"
            )));
        };
        if slot.is_some() {
            return Err(PyTypeError::new_err(format!(
                "{function}() got multiple values for argument {keyword:?}"
            )));
        }
        *slot = Some(arg(positional + index));
    }
    Ok(())
}

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

/// A cost: `None` where none was given (core's `Limiter` resolves it, see
/// `cellgate::resolve_costs`); otherwise as [`u64_arg`].
#[inline]
pub fn cost_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match value {
        None => Ok(None),
        Some(value) => u64_arg(value, "cost").map(Some),
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

create_exception!(
    cellgate,
    InvalidArgument,
    PyValueError,
    "An argument had the right type but a bad value (negative, fractional, NaN, infinite or \
     too large a number; an unknown option). `argument` names the parameter."
);
create_exception!(
    cellgate,
    InvalidArgumentType,
    PyTypeError,
    "An argument had the wrong type (a bool where a number is expected, a float key, ...). \
     `argument` names the parameter."
);
create_exception!(
    cellgate,
    InvalidRate,
    InvalidArgument,
    "A rate string could not be parsed or does not make a valid quota. `argument` names the \
     parameter, `rate` holds the text and `offset` the byte offset (in its UTF-8 encoding) where \
     it goes wrong."
);

/// An [`InvalidArgument`] for `argument`, with `message` saying what was wrong.
pub fn invalid(py: Python<'_>, argument: &str, message: &str) -> PyErr {
    with_argument::<InvalidArgument>(py, argument, message)
}

/// An [`InvalidArgumentType`] for `argument`.
pub fn invalid_type(py: Python<'_>, argument: &str, message: &str) -> PyErr {
    with_argument::<InvalidArgumentType>(py, argument, message)
}

/// An [`InvalidRate`] for `argument` holding `rate`, failing at byte `offset`.
pub fn invalid_rate(
    py: Python<'_>,
    argument: &str,
    rate: &str,
    offset: usize,
    message: &str,
) -> PyErr {
    let err = with_argument::<InvalidRate>(py, argument, message);
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail short of memory
    // exhaustion; the exception is still the right type without them.
    let _ = value.setattr("rate", rate);
    let _ = value.setattr("offset", offset);
    err
}

fn with_argument<T: pyo3::PyTypeInfo>(py: Python<'_>, argument: &str, message: &str) -> PyErr {
    let err = PyErr::new::<T, _>(format!("{argument}: {message}"));
    // See `invalid_rate`.
    let _ = err.value(py).setattr("argument", argument);
    err
}

/// Adds the exceptions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("InvalidArgumentType", py.get_type::<InvalidArgumentType>())?;
    m.add("InvalidRate", py.get_type::<InvalidRate>())?;
    Ok(())
}

/// The argument names a `ConfigError` is reported under, in the terms of the Python call that
/// met it: the parameter holding the quotas, and the name of each dimension (for a missing
/// cost).
pub struct Arguments<'a> {
    /// `"rate"` for a `Limiter`, `"dimensions"` for a `Policy`.
    pub quotas: &'a str,
    /// The names headers show, in quota order (for messages about names).
    pub names: &'a [String],
    /// The dimension names, in order (a `Limiter` has one, `"cost"`).
    pub dimensions: &'a [String],
}

/// Core's `ConfigError` as the exception a Python caller expects: an `InvalidArgument` naming
/// the parameter at fault, or a `MemoryError` for tables that cannot be allocated.
#[cold]
pub fn config_error(py: Python<'_>, error: ConfigError, arguments: &Arguments<'_>) -> PyErr {
    let name = |index: usize| {
        arguments
            .names
            .get(index)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let quotas = arguments.quotas;
    match error {
        ConfigError::OutOfMemory => PyMemoryError::new_err(error.to_string()),
        ConfigError::MaxKeys { .. } => invalid(py, "max_keys", &error.to_string()),
        ConfigError::RefillNeedsOneQuota => invalid(py, "refill", &error.to_string()),
        ConfigError::NoQuotas => invalid(py, quotas, "must hold at least one quota"),
        ConfigError::DuplicateName { index, first } => invalid(
            py,
            quotas,
            &format!(
                "quotas {first} and {index} would both be named {:?} in the rate-limit headers, \
                 which must tell them apart: name them (Quota(..., name=...))",
                name(index)
            ),
        ),
        ConfigError::EmptyName { .. } | ConfigError::InvalidName { .. } => invalid(
            py,
            quotas,
            &format!("{error}: a header name is non-empty printable ASCII"),
        ),
        ConfigError::TooManyNames { given } => invalid(
            py,
            quotas,
            &format!(
                "at most {} quotas, got {given}",
                cellgate::MAX_POLICY_QUOTAS
            ),
        ),
        ConfigError::MissingCost { dimension } => invalid(
            py,
            arguments
                .dimensions
                .get(dimension)
                .map_or("costs", String::as_str),
            &format!(
                "no cost given: a policy of several dimensions ({}) needs a cost for each \
                 (0 is allowed), or it would admit without limit on this one",
                arguments.dimensions.join(", ")
            ),
        ),
        ConfigError::ForeignReservation => invalid(py, "reservation", "was made by another policy"),
        other => invalid(py, "costs", &other.to_string()),
    }
}
