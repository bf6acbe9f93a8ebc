//! What functions called by CPython directly (not through pyo3's macros) share: the boundary
//! that turns a Rust result or panic into CPython's convention, and the parsing of
//! `METH_FASTCALL | METH_KEYWORDS` arguments.

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::Borrowed;
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
