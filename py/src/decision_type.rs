//! The Python type `cellgate.Decision`, built with `PyType_FromSpec` instead of `#[pyclass]`.
//!
//! Every check returns a new `Decision`, so creating and freeing one is on the hot path. A
//! `#[pyclass]` object is created through `object.__new__` with an argument tuple and
//! `tp_alloc`, tracked by the cyclic garbage collector (pyo3 makes every class a GC type), and
//! freed through pyo3's deallocation trampoline, which enters pyo3's thread-local state: about
//! 520 instructions per decision (callgrind), a third of a `Limiter.check`. A `Decision` holds
//! no Python object, so it can never be part of a reference cycle and need not be tracked:
//! this type takes its memory from `PyObject_Malloc`, initialises it with `PyObject_Init` and
//! gives it back with `PyObject_Free`, and its getters and methods call the plain Rust methods
//! of [`Decision`] (`decision.rs`).
//!
//! The type behaves as the `#[pyclass(frozen)]` it replaces: read-only attributes, not
//! subclassable, no constructor from Python, no `__dict__` or weak references, `==` and `!=`
//! by value, unhashable.

use crate::boundary::{boundary, fastcall_arguments, FastcallWithKeywords};
use crate::headers::{style_text, Decision};
use pyo3::exceptions::{PyMemoryError, PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::{Borrowed, IntoPyObjectExt};
use std::ffi::{c_char, c_int, c_void, CStr};

/// A `Decision` object: the object header, then the Rust value.
#[repr(C)]
struct DecisionObject {
    header: ffi::PyObject,
    decision: Decision,
}

/// `PyObject_Malloc` aligns to 16 bytes on every platform CPython supports.
const _: () = assert!(std::mem::align_of::<DecisionObject>() <= 16);

/// The type, created once when the module loads.
static DECISION_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl<'py> IntoPyObject<'py> for Decision {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    /// A new `cellgate.Decision` object holding `self`.
    #[inline]
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(decision_type) = DECISION_TYPE.get(py) else {
            return Err(PySystemError::new_err(
                "cellgate: the Decision type is not initialised",
            ));
        };
        let size = std::mem::size_of::<DecisionObject>();
        // SAFETY: the thread is attached (`py`); PyObject_Malloc returns memory for `size`
        // bytes, aligned for any object (checked above), or NULL.
        let object = unsafe { ffi::PyObject_Malloc(size) }.cast::<DecisionObject>();
        if object.is_null() {
            return Err(PyMemoryError::new_err(()));
        }
        // SAFETY: `object` is fresh memory for a `DecisionObject` and the type's basic size is
        // that size (`create_type`). PyObject_Init sets the type and a reference count of 1,
        // and takes a reference to the (heap) type, which `dealloc` gives back; it cannot fail
        // on non-NULL memory. Writing `decision` initialises the rest.
        unsafe {
            ffi::PyObject_Init(
                object.cast(),
                decision_type.as_ptr().cast::<ffi::PyTypeObject>(),
            );
            std::ptr::addr_of_mut!((*object).decision).write(self);
            Ok(Bound::from_owned_ptr(py, object.cast()))
        }
    }
}

/// The `Decision` inside `object`, if it is one.
pub fn decision_of<'a>(object: &'a Bound<'_, PyAny>) -> Option<&'a Decision> {
    let decision_type = DECISION_TYPE.get(object.py())?;
    if !object.get_type().is(decision_type) {
        return None;
    }
    // SAFETY: an object of exactly this type (it has no subclasses) is a `DecisionObject`,
    // initialised by `into_pyobject`; its `decision` is never mutated, and lives as long as
    // the object, which `object` keeps alive for `'a`.
    Some(unsafe { &(*object.as_ptr().cast::<DecisionObject>()).decision })
}

/// The `Decision` of `object`, a `self` CPython passes to one of this type's slots.
///
/// # Safety
/// `object` is a live instance of the Decision type, borrowed for `'a`.
unsafe fn this<'a>(object: *mut ffi::PyObject) -> &'a Decision {
    // SAFETY: see the function's contract and `decision_of`.
    unsafe { &(*object.cast::<DecisionObject>()).decision }
}

/// `tp_dealloc`: drops the value and frees the memory (the reference count reached zero).
unsafe extern "C" fn dealloc(object: *mut ffi::PyObject) {
    // SAFETY: CPython calls tp_dealloc once, with an attached thread, on an instance of this
    // type (made by `into_pyobject`) that nothing references any more: its value is moved
    // out once and the memory goes back to PyObject_Malloc's allocator; then the reference
    // to the type that PyObject_Init took is released, as a heap type's instance must.
    unsafe {
        let decision_type = ffi::Py_TYPE(object);
        let decision = std::ptr::addr_of!((*object.cast::<DecisionObject>()).decision).read();
        ffi::PyObject_Free(object.cast());
        // The thread is attached, so the core's reference is released here and now, without
        // the thread-state lookup of `Py`'s drop; the rest (a box for several quotas) is
        // dropped as Rust drops it.
        let (core, view) = decision.into_parts();
        ffi::Py_DECREF(core.into_ptr());
        drop(view);
        ffi::Py_DECREF(decision_type.cast());
    }
}

/// `tp_new`: a `Decision` is made by limiters only.
unsafe extern "C" fn no_constructor(
    _subtype: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_new with an attached thread.
    let py = unsafe { Python::assume_attached() };
    boundary(py, "Decision.__new__", || {
        Err(PyTypeError::new_err(
            "cannot create 'cellgate.Decision' instances",
        ))
    })
}

/// The attributes, read by [`get`] (the closure pointer of each getter holds the field).
#[derive(Clone, Copy)]
enum Field {
    Allowed,
    Limit,
    Remaining,
    RetryAfter,
    ResetAfter,
    RetryAfterNs,
    ResetAfterNs,
    Policy,
    Reason,
    Decisions,
}

const FIELDS: [(Field, &CStr, &CStr); 10] = [
    (
        Field::Allowed,
        c"allowed",
        c"Whether the cost was admitted (for `force`: whether it fitted without debt).",
    ),
    (
        Field::Limit,
        c"limit",
        c"The quota's burst: the most cost that can ever be admitted at once.",
    ),
    (
        Field::Remaining,
        c"remaining",
        c"Cost units that could be admitted right now (0 while in debt).",
    ),
    (
        Field::RetryAfter,
        c"retry_after",
        c"Seconds to wait before the same request is admitted: 0.0 when allowed, `math.inf`\nwhen the cost exceeds the burst.",
    ),
    (
        Field::ResetAfter,
        c"reset_after",
        c"Seconds until the bucket is full again.",
    ),
    (
        Field::RetryAfterNs,
        c"retry_after_ns",
        c"`retry_after` in exact nanoseconds (rounded up); `2**64 - 1` for never.",
    ),
    (
        Field::ResetAfterNs,
        c"reset_after_ns",
        c"`reset_after` in exact nanoseconds (rounded up).",
    ),
    (
        Field::Policy,
        c"policy",
        c"The name of the quota this decision describes (the binding one, for several quotas).",
    ),
    (
        Field::Reason,
        c"reason",
        c"Why: 'limit' (the key's buckets decided), 'table_full' (denied: the keyed table had no\nroom for this new key) or 'untracked' (admitted without being stored, on_full='allow_untracked').",
    ),
    (
        Field::Decisions,
        c"decisions",
        c"Every quota's decision, in order (one for a single quota).",
    ),
];

/// The getter of every attribute: `closure` holds the [`Field`]'s index in [`FIELDS`].
unsafe extern "C" fn get(object: *mut ffi::PyObject, closure: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a getter with an attached thread, on an instance of the type the
    // getter belongs to.
    let (py, decision) = unsafe { (Python::assume_attached(), this(object)) };
    boundary(py, "a Decision attribute", || {
        let Some(&(field, _, _)) = FIELDS.get(closure as usize) else {
            return Err(PySystemError::new_err("cellgate: unknown Decision field"));
        };
        let value = match field {
            Field::Allowed => decision.allowed().into_bound_py_any(py),
            Field::Limit => decision.limit().into_bound_py_any(py),
            Field::Remaining => decision.remaining().into_bound_py_any(py),
            Field::RetryAfter => decision.retry_after().into_bound_py_any(py),
            Field::ResetAfter => decision.reset_after().into_bound_py_any(py),
            Field::RetryAfterNs => decision.retry_after_ns().into_bound_py_any(py),
            Field::ResetAfterNs => decision.reset_after_ns().into_bound_py_any(py),
            Field::Policy => decision.policy().into_bound_py_any(py),
            Field::Reason => decision.reason().into_bound_py_any(py),
            Field::Decisions => decision.decisions(py).into_bound_py_any(py),
        };
        value.map(Bound::into_ptr)
    })
}

/// `headers(style="ietf", now_unix=None)`, a `METH_FASTCALL | METH_KEYWORDS` method.
unsafe extern "C" fn headers(
    object: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with an attached thread, `object` an instance of the
    // type, and the arguments as `fastcall_arguments` requires.
    let py = unsafe { Python::assume_attached() };
    boundary(py, "Decision.headers", || {
        // SAFETY: `object` is an instance of the type (see above).
        let decision = unsafe { this(object) };
        // SAFETY: the arguments are as CPython passes them (see above).
        let [style, now_unix] = unsafe {
            fastcall_arguments(py, args, nargs, kwnames, ["style", "now_unix"], "headers")
        }?;
        let style = style_text(style.as_deref())?;
        let now_unix = now_unix.filter(|value| !value.is_none());
        decision
            .headers(py, &style, now_unix.as_deref())?
            .into_bound_py_any(py)
            .map(Bound::into_ptr)
    })
}

/// `error_body()`, a `METH_NOARGS` method.
unsafe extern "C" fn error_body(
    object: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a method with an attached thread, on an instance of the type.
    let (py, decision) = unsafe { (Python::assume_attached(), this(object)) };
    boundary(py, "Decision.error_body", || {
        Ok(decision.error_body(py)?.into_ptr())
    })
}

/// `repr(decision)`.
unsafe extern "C" fn repr(object: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_repr with an attached thread, on an instance of the type.
    let (py, decision) = unsafe { (Python::assume_attached(), this(object)) };
    boundary(py, "Decision.__repr__", || {
        decision.repr(py).into_bound_py_any(py).map(Bound::into_ptr)
    })
}

/// `bool(decision)`: `decision.allowed`.
unsafe extern "C" fn truth(object: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython calls nb_bool on an instance of the type.
    c_int::from(unsafe { this(object) }.allowed())
}

/// `==` and `!=` by value (a Decision is never equal to anything else); other comparisons are
/// not supported.
unsafe extern "C" fn richcompare(
    object: *mut ffi::PyObject,
    other: *mut ffi::PyObject,
    op: c_int,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_richcompare with an attached thread, `object` an instance of the
    // type and `other` a live object, both borrowed for the call.
    let (py, decision) = unsafe { (Python::assume_attached(), this(object)) };
    boundary(py, "Decision.__eq__", || {
        // SAFETY: `other` is a live object borrowed for the call (see above).
        let other = unsafe { Borrowed::from_ptr(py, other) };
        let equal = decision_of(&other).is_some_and(|other| decision == other);
        let answer = match op {
            ffi::Py_EQ => equal.into_bound_py_any(py)?,
            ffi::Py_NE => (!equal).into_bound_py_any(py)?,
            _ => py.NotImplemented().into_bound(py),
        };
        Ok(answer.into_ptr())
    })
}

const DOC: &CStr = c"The outcome of one operation: whether it was admitted, the limit, what remains, and the\nwaits, in float seconds (`retry_after`, `reset_after`, `math.inf` when the cost can never\nbe admitted) and integer nanoseconds. `bool(decision)` is `decision.allowed`.";

/// Creates the type (once) and adds it to the module as `Decision`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let decision_type = DECISION_TYPE.get_or_try_init(py, || create_type(py))?;
    module.add("Decision", decision_type.bind(py))
}

fn create_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    // CPython keeps pointers to the getter and method definitions for the life of the type,
    // which is the rest of the process: each list is allocated once and never freed.
    let mut getters: Vec<ffi::PyGetSetDef> = FIELDS
        .iter()
        .enumerate()
        .map(|(index, (_, name, doc))| ffi::PyGetSetDef {
            name: name.as_ptr(),
            get: Some(get),
            set: None,
            doc: doc.as_ptr(),
            closure: index as *mut c_void,
        })
        .collect();
    getters.push(ffi::PyGetSetDef::default());
    let getters = Box::leak(getters.into_boxed_slice());
    let methods = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"headers".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                // SAFETY: CPython calls `ml_meth` with the signature its flags name;
                // METH_FASTCALL | METH_KEYWORDS is `headers`'. The union only stores the
                // pointer; both types are `extern "C"` function pointers of one size.
                PyCFunction: unsafe {
                    std::mem::transmute::<FastcallWithKeywords, ffi::PyCFunction>(headers)
                },
            },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: c"headers($self, style='ietf', now_unix=None)\n--\n\nThe rate-limit headers for this decision as `(name, value)` pairs, rendered by core\n(identical bytes in every runtime). `style`: `\"ietf\"` (default: `RateLimit-Policy`\nand `RateLimit`, draft-ietf-httpapi-ratelimit-headers-10), `\"legacy\"`\n(`X-RateLimit-Limit/Remaining/Reset`, reset in seconds from now), `\"legacy_epoch\"`\n(reset as Unix seconds), or per quota as LLM APIs send them: `\"anthropic\"`\n(`anthropic-ratelimit-{name}-limit/remaining/reset`, reset in RFC 3339) or `\"openai\"`\n(`x-ratelimit-limit/remaining/reset-{name}`, reset as `6m0s`), both with `retry-after-ms`.\n`\"draft-6\"` and `\"draft-7\"`: the older drafts' shapes express-rate-limit sends.\n`now_unix` (Unix seconds; default the wall clock) is read by `legacy_epoch` and\n`anthropic`. `Retry-After` follows on a denial (omitted when the cost can never be admitted).".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"error_body".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: error_body,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"error_body($self)\n--\n\nThe JSON body of a 429 response, `{\"error\":\"rate_limited\",\"retry_after\":N}` with N the\n`Retry-After` seconds (`null` when the cost can never be admitted), as bytes.".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = [
        slot(ffi::Py_tp_doc, DOC.as_ptr().cast_mut().cast()),
        slot(ffi::Py_tp_new, no_constructor as *mut c_void),
        slot(ffi::Py_tp_dealloc, dealloc as *mut c_void),
        slot(ffi::Py_tp_free, ffi::PyObject_Free as *mut c_void),
        slot(ffi::Py_tp_repr, repr as *mut c_void),
        slot(ffi::Py_tp_richcompare, richcompare as *mut c_void),
        slot(ffi::Py_nb_bool, truth as *mut c_void),
        slot(ffi::Py_tp_getset, getters.as_mut_ptr().cast()),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(0, std::ptr::null_mut()),
    ];
    let mut spec = ffi::PyType_Spec {
        // The name must outlive the type (CPython keeps a pointer to the part after the dot):
        // a string literal does.
        name: c"cellgate.Decision".as_ptr().cast::<c_char>(),
        basicsize: c_int::try_from(std::mem::size_of::<DecisionObject>())
            .map_err(|_| PySystemError::new_err("cellgate: Decision too large"))?,
        itemsize: 0,
        // Not Py_TPFLAGS_BASETYPE (no subclasses: `decision_of` relies on it), not
        // Py_TPFLAGS_HAVE_GC (a Decision references only its limiter's `_Meta`, which
        // references no Python object: no reference cycle can pass through either).
        flags: ffi::Py_TPFLAGS_DEFAULT as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: `spec` and `slots` are valid for the call, which copies what it keeps except the
    // name, the doc (copied) and the getter and method lists (leaked above, so they live as
    // long as the type); PyType_FromSpec returns a new reference to the type, or NULL with an
    // exception set.
    let created = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec)) }?;
    Ok(created.cast_into::<PyType>()?.unbind())
}

fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}
