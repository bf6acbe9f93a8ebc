//! The exceptions the package raises, defined here so that Rust can raise them directly.
//!
//! Every error caused by an argument names it: the exception's `argument` attribute holds the
//! parameter's name, and the message starts with it. An operation that raises changes no state.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;

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
create_exception!(
    cellgate,
    TableFull,
    PyException,
    "A new key could not be placed: every slot of both its windows in the keyed table holds a \
     live key. No live key is evicted to make room (a flood of new keys cannot reset an exhausted \
     one); answer 429 or 503, or build the limiter with a larger `max_keys`."
);

/// A `MemoryError` for a keyed table of `max_keys` keys that the allocator refused (see
/// `cellgate::KeyedLimiter::try_with_options`).
pub fn table_memory_error(max_keys: usize) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(format!(
        "max_keys={max_keys}: the keyed table cannot be allocated on this machine"
    ))
}

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

/// The [`TableFull`] error.
pub fn table_full() -> PyErr {
    TableFull::new_err(
        "the keyed table has no room for this new key (every slot of both its windows holds a live key)",
    )
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
    m.add("TableFull", py.get_type::<TableFull>())?;
    Ok(())
}
