//! `Limiter.check` / `peek` / `force` / `refund` as `METH_FASTCALL` methods.
//!
//! These four are the hot path, so they are written by hand as `METH_FASTCALL |
//! METH_KEYWORDS` functions (the vectorcall convention, in the stable ABI from Python 3.10,
//! the wheel's minimum) and installed on the `Limiter` type when the module loads, replacing
//! nothing else. They were written when the wheel targeted 3.9, for which pyo3 builds methods
//! with `METH_VARARGS`: every call then packed its arguments into a new tuple and parsed them
//! back, about a fifth of a check's time (measured with `perf`). For 3.10 pyo3 uses
//! `METH_FASTCALL` as well; what these still save over pyo3's generic argument extraction has
//! not been measured since.

use crate::boundary::{boundary, fastcall_arguments, FastcallWithKeywords};
use crate::limiter::Limiter;
use cellgate::Op;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::Borrowed;
use std::ffi::{c_char, CStr};

/// Parses `(key, cost=1)` from a vectorcall argument array and applies `op` (core's `Op`,
/// through `Limiter::apply`, which calls core's one verb).
///
/// # Safety
/// `slf` is the bound object, an instance of `Limiter` or of a subclass: CPython's method
/// descriptor checks that before it calls (or binds) the method. `args`, `nargs` and
/// `kwnames` are as [`fastcall_arguments`] requires. The thread is attached to the
/// interpreter.
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
    boundary(py, name, || {
        // SAFETY: `slf` is a live `Limiter` (or subclass) instance borrowed for the call (the
        // function's contract), so the unchecked cast holds.
        let limiter = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<Limiter>() };
        // SAFETY: the arguments are as CPython passes them (the function's contract).
        let [key, cost] =
            unsafe { fastcall_arguments(py, args, nargs, kwnames, ["key", "cost"], name) }?;
        let Some(key) = key else {
            return Err(PyTypeError::new_err(format!(
                "{name}() missing required argument 'key'"
            )));
        };
        let cost = cost.filter(|cost| !cost.is_none());
        let decision = limiter.get().apply(py, &key, cost.as_deref(), op)?;
        Ok(decision.into_pyobject(py)?.into_ptr())
    })
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
        c"check($self, key, cost=1)\n--\n\nTests and consumes `cost` for `key` atomically: admitted whole, or denied with nothing consumed. A new key that finds the table full is answered by `on_full` (a denial with reason 'table_full' by default), never an exception.",
    ),
    (
        c"peek",
        peek,
        c"peek($self, key, cost=1)\n--\n\nThe decision `check` would make, consuming nothing.",
    ),
    (
        c"force",
        force,
        c"force($self, key, cost=1)\n--\n\nConsumes `cost` whether or not it fits (the key may go into debt); `allowed` says whether it fitted. A new key that finds the table full is answered by `on_full`.",
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
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
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
