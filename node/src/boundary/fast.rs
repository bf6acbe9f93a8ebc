//! The hot path: one plain Node-API function bound to one limiter, the one entry point of
//! every operation (the operation, like the costs, is read from the shared array: core's
//! `Limiter::apply_at` takes it, so nothing here matches on it).
//!
//! napi-rs's generated callbacks do much more than this path needs on every call (a borrow
//! scope, references to `this` and the arguments, unwrapping `this`), which measured several
//! times the cost of the work itself. A function made here does three things: read its bound
//! limiter from the callback data, read the key (one Node-API call, see [`read_key`]), and
//! run the operation. The cost is read from, and the status written to, the shared array
//! ([`crate::boundary::shared`]), so no number crosses the boundary and the function returns
//! `undefined`.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Error, Result, Status, ValueType};

use crate::boundary::key::{read_key, KeyBuffer};

/// Why a fast operation failed: the message of a `RangeError` thrown to JavaScript.
pub struct FastError(pub(crate) &'static str);

/// A limiter that a fast function can drive.
pub trait FastTarget: 'static {
    /// Runs the operation in the shared array for `key` with the cost(s) there; writes the
    /// decision and the status into the shared array. Implementations are `#[inline]`: the
    /// fast function is compiled for one target type.
    fn run(&self, key: &[u8]) -> core::result::Result<(), FastError>;
}

/// The function `(key) => undefined` for one limiter, made when converted to a JavaScript
/// value. Its callback data is a strong reference to the target (`Rc::into_raw`), released by
/// the function's finalizer.
pub struct FastFunction<T: FastTarget>(pub(crate) Rc<T>);

impl<T: FastTarget> TypeName for FastFunction<T> {
    fn type_name() -> &'static str {
        "(key: string | Uint8Array) => void"
    }

    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl<T: FastTarget> ToNapiValue for FastFunction<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let target = Rc::into_raw(value.0).cast_mut();
        let mut function = ptr::null_mut();
        // SAFETY: the name is a NUL-terminated literal; `target` (a strong reference) stays
        // valid until the finalizer below releases it, after the function is collected.
        let status = unsafe {
            sys::napi_create_function(
                env,
                c"apply".as_ptr(),
                5,
                Some(call::<T>),
                target.cast(),
                &mut function,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the function was not created, so nothing else owns this reference.
            drop(unsafe { Rc::from_raw(target) });
            return Err(Error::new(Status::from(status), "function".to_owned()));
        }
        // SAFETY: `function` is a live object; the finalizer takes over the reference.
        let status = unsafe {
            sys::napi_add_finalizer(
                env,
                function,
                target.cast(),
                Some(finalize::<T>),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok {
            // The function stays callable with `target`; leaking it is the safe choice.
            return Err(Error::new(Status::from(status), "finalizer".to_owned()));
        }
        Ok(function)
    }
}

/// Reads a call's first argument and its function data (`napi_get_cb_info`), as every probe
/// and `call` do: the status, the first argument (`undefined` if none was passed), the data.
///
/// # Safety
/// `env` and `info` come from Node-API for the current call.
pub(crate) unsafe fn first_argument(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> (sys::napi_status, sys::napi_value, *mut c_void) {
    let mut argc = 1;
    let mut argv = [ptr::null_mut(); 1];
    let mut data = ptr::null_mut();
    // SAFETY: `env` and `info` are this call's (the caller's contract); the out-pointers are
    // valid, and `argv` has room for `argc` values.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    (status, argv[0], data)
}

/// Releases a fast function's reference to its target when the function is collected.
unsafe extern "C" fn finalize<T: FastTarget>(
    _env: sys::napi_env,
    data: *mut c_void,
    _hint: *mut c_void,
) {
    if !data.is_null() {
        // SAFETY: `data` is the `Rc::into_raw` of an `Rc<T>` made in `to_napi_value` for this
        // function, and each function is finalized once.
        drop(unsafe { Rc::from_raw(data.cast::<T>().cast_const()) });
    }
}

/// Throws a `TypeError` or `RangeError` with a static message.
fn throw(env: sys::napi_env, range: bool, code: &'static std::ffi::CStr, message: &str) {
    let message = std::ffi::CString::new(message).unwrap_or_default();
    let code: *const c_char = code.as_ptr();
    // SAFETY: `env` is the current call's environment; both strings are NUL-terminated.
    let _ = unsafe {
        if range {
            sys::napi_throw_range_error(env, code, message.as_ptr())
        } else {
            sys::napi_throw_type_error(env, code, message.as_ptr())
        }
    };
}

/// The callback of the fast function on a `T`: `(key) => undefined`. One copy per target
/// type, so the target's `run` is inlined (no virtual call).
unsafe extern "C" fn call<T: FastTarget>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `env` and `info` come from Node-API for this call.
        let (status, argument, data) = unsafe { first_argument(env, info) };
        if status != sys::Status::napi_ok || data.is_null() {
            throw(env, false, c"ERR_INVALID_ARG_TYPE", "cellgate: bad call");
            return;
        }
        // SAFETY: `data` is the `Rc<T>` this function holds (see `to_napi_value`), alive
        // while the function is: the finalizer releases it only after the function is
        // collected, so not during a call.
        let target = unsafe { &*data.cast::<T>() };
        let mut buffer = KeyBuffer::new();
        // SAFETY: `argument` is this call's first argument (`undefined` when absent); the
        // key is used only during this call.
        let key = match unsafe { read_key(env, argument, &mut buffer) } {
            Ok(key) => key,
            Err(error) => {
                // Not a key, or a Uint8Array whose bytes cannot be read (detached, shared).
                throw(env, false, c"ERR_INVALID_ARG_TYPE", &error.reason);
                return;
            }
        };
        if let Err(FastError(message)) = target.run(&key) {
            throw(env, true, c"ERR_OUT_OF_RANGE", message);
        }
    }));
    if outcome.is_err() {
        throw(
            env,
            false,
            c"ERR_CELLGATE_PANIC",
            "cellgate: internal error (a bug: please report it)",
        );
    }
    ptr::null_mut()
}
