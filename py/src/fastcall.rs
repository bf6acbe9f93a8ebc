//! `Limiter.check` / `peek` / `force` / `refund` as `METH_FASTCALL` methods.
//!
//! pyo3 builds abi3-py39 methods with `METH_VARARGS`, because `METH_FASTCALL` entered the
//! stable ABI only in Python 3.10: every call then packs its arguments into a new tuple and
//! parses them back, about a fifth of a check's time (measured with `perf`). These four are
//! the hot path, so they are defined here with `METH_FASTCALL | METH_KEYWORDS` (the vectorcall
//! convention, which CPython 3.9 implements exactly as 3.10 documents it) and installed on the
//! `Limiter` type when the module loads, replacing nothing else.

use crate::limiter::{Limiter, Op};
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use pyo3::Borrowed;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `METH_FASTCALL` (not exported by pyo3-ffi for abi3 builds below 3.10).
const METH_FASTCALL: c_int = 0x0080;

/// The C signature of a `METH_FASTCALL | METH_KEYWORDS` function.
type FastcallWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// Parses `(key, cost=1)` from a vectorcall argument array and runs `op`.
///
/// # Safety
/// `slf` is the bound object (a `Limiter`, as the method descriptor checked); `args` holds
/// `nargs` positional arguments followed by one value per name in `kwnames` (a tuple, or
/// NULL), all borrowed for the call; the thread is attached to the interpreter.
unsafe fn call(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    op: Op,
    name: &str,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with an attached thread state.
    let py = unsafe { Python::assume_attached() };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> PyResult<*mut ffi::PyObject> {
        // SAFETY: `slf` is a live object borrowed for the call (see the function's contract).
        let slf = unsafe { Borrowed::from_ptr(py, slf) };
        let limiter = slf.cast::<Limiter>()?;
        let positional = usize::try_from(nargs).unwrap_or(0);
        let keywords = if kwnames.is_null() {
            None
        } else {
            // SAFETY: a non-NULL `kwnames` is a tuple borrowed for the call.
            Some(unsafe { Borrowed::from_ptr(py, kwnames) }.cast::<PyTuple>()?)
        };
        let arg = |index: usize| {
            // SAFETY: `args` holds `nargs` positional values and one per keyword name, each a
            // live object borrowed for the call; callers stay within that count.
            unsafe { Borrowed::from_ptr(py, *args.add(index)) }
        };
        if positional > 2 {
            return Err(PyTypeError::new_err(format!(
                "{name}() takes at most 2 arguments (key, cost), {positional} given"
            )));
        }
        let mut key = (positional >= 1).then(|| arg(0));
        let mut cost = (positional >= 2).then(|| arg(1));
        if let Some(names) = &keywords {
            for (index, keyword) in names.iter().enumerate() {
                let keyword = keyword.cast_into::<PyString>()?;
                let value = Some(arg(positional + index));
                let slot = match keyword.to_cow()?.as_ref() {
                    "key" => &mut key,
                    "cost" => &mut cost,
                    other => {
                        return Err(PyTypeError::new_err(format!(
                            "{name}() got an unexpected keyword argument {other:?}"
                        )))
                    }
                };
                if slot.is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "{name}() got multiple values for argument {:?}",
                        keyword.to_cow()?
                    )));
                }
                *slot = value;
            }
        }
        let Some(key) = key else {
            return Err(PyTypeError::new_err(format!(
                "{name}() missing required argument 'key'"
            )));
        };
        let cost = cost.filter(|cost| !cost.is_none());
        let decision = limiter.get().run(py, &key, cost.as_deref(), op)?;
        Ok(Bound::new(py, decision)?.into_ptr())
    }));
    match outcome {
        Ok(Ok(object)) => object,
        Ok(Err(error)) => {
            error.restore(py);
            std::ptr::null_mut()
        }
        Err(_) => {
            PySystemError::new_err(format!("cellgate: a panic in Limiter.{name}")).restore(py);
            std::ptr::null_mut()
        }
    }
}

macro_rules! fastcall_method {
    ($function:ident, $op:expr, $name:literal) => {
        /// The `METH_FASTCALL | METH_KEYWORDS` entry point of this operation.
        ///
        /// # Safety
        /// Called by CPython only, with the vectorcall convention (see [`call`]).
        unsafe extern "C" fn $function(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: CPython honours `call`'s contract for a METH_FASTCALL method.
            unsafe { call(slf, args, nargs, kwnames, $op, $name) }
        }
    };
}

fastcall_method!(check, Op::Check, "check");
fastcall_method!(peek, Op::Peek, "peek");
fastcall_method!(force, Op::Force, "force");
fastcall_method!(refund, Op::Refund, "refund");

/// The methods, with their text signatures (`__text_signature__`) and docs.
const METHODS: [(&CStr, FastcallWithKeywords, &CStr); 4] = [
    (
        c"check",
        check,
        c"check($self, key, cost=1)\n--\n\nTests and consumes `cost` for `key` atomically: admitted whole, or denied with nothing consumed. Raises TableFull when a new key finds no room.",
    ),
    (
        c"peek",
        peek,
        c"peek($self, key, cost=1)\n--\n\nThe decision `check` would make, consuming nothing.",
    ),
    (
        c"force",
        force,
        c"force($self, key, cost=1)\n--\n\nConsumes `cost` whether or not it fits (the key may go into debt); `allowed` says whether it fitted. Raises TableFull when a new key finds no room.",
    ),
    (
        c"refund",
        refund,
        c"refund($self, key, cost=1)\n--\n\nGives `cost` back to `key`, never above a full bucket.",
    ),
];

/// Installs the fastcall methods on the `Limiter` type.
pub fn install(limiter_type: &Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
    let py = limiter_type.py();
    for (name, function, doc) in METHODS {
        // The definition must outlive the type: one small allocation per method, made once
        // when the module loads.
        let definition = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                // SAFETY: CPython calls `ml_meth` with the signature its flags name;
                // METH_FASTCALL | METH_KEYWORDS is `function`'s. The union only stores the
                // pointer; both types are `extern "C"` function pointers of one size.
                PyCFunction: unsafe {
                    std::mem::transmute::<FastcallWithKeywords, ffi::PyCFunction>(function)
                },
            },
            ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: doc.as_ptr().cast::<c_char>(),
        }));
        // SAFETY: the type object is live, and `definition` lives for the rest of the
        // process; PyDescr_NewMethod returns a new reference or NULL with an exception set.
        let descriptor = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyDescr_NewMethod(limiter_type.as_type_ptr(), definition),
            )
        }?;
        limiter_type.setattr(name.to_str().unwrap_or_default(), descriptor)?;
    }
    Ok(())
}
