//! The hot path: plain Node-API functions, one per operation, bound to one limiter.
//!
//! napi-rs's generated callbacks do much more than this path needs on every call (a borrow
//! scope, references to `this` and the arguments, unwrapping `this`), which measured several
//! times the cost of the work itself. A function made here does three things: read its bound
//! limiter from the callback data, read the key (one Node-API call, see [`read_key`]), and
//! run the operation. The cost is read from, and the status written to, the shared array
//! ([`crate::shared`]), so no number crosses the boundary and the function returns
//! `undefined`.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Error, Result, Status, ValueType};

use crate::key::{read_key, KeyBuffer};

/// The operations a limiter's fast functions run, in the order of the returned array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastOp {
    /// Test and consume.
    Check,
    /// Decide without consuming.
    Peek,
    /// Consume regardless.
    Force,
    /// Give back.
    Refund,
}

impl FastOp {
    /// The operation at `index` of the array [`FastFunctions`] makes (a const generic
    /// parameter of [`call`]: stable Rust has no enum-valued const generics).
    const fn at(index: usize) -> FastOp {
        match index {
            0 => FastOp::Check,
            1 => FastOp::Peek,
            2 => FastOp::Force,
            _ => FastOp::Refund,
        }
    }
}

/// Why a fast operation failed: the message of a `RangeError` thrown to JavaScript.
pub struct FastError(pub(crate) &'static str);

/// A limiter that fast functions can drive.
pub trait FastTarget: 'static {
    /// Runs `op` for `key` with the cost(s) in the shared array; writes the decision and the
    /// status into the shared array. Implementations are `#[inline]`: each fast function is
    /// compiled for one target type and one operation, so `op` is a constant there.
    fn run(&self, op: FastOp, key: &[u8]) -> core::result::Result<(), FastError>;
}

/// The four functions `[check, peek, force, refund]` for one limiter, made when converted
/// to a JavaScript value. Each function's callback data is a strong reference to the target
/// (`Rc::into_raw`), released by the function's finalizer.
pub struct FastFunctions<T: FastTarget>(pub(crate) Rc<T>);

impl<T: FastTarget> TypeName for FastFunctions<T> {
    fn type_name() -> &'static str {
        "Array<(key: string | Uint8Array) => void>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), what.to_owned()))
    }
}

impl<T: FastTarget> ToNapiValue for FastFunctions<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let callbacks: [sys::napi_callback; 4] = [
            Some(call::<T, 0>),
            Some(call::<T, 1>),
            Some(call::<T, 2>),
            Some(call::<T, 3>),
        ];
        let mut array = ptr::null_mut();
        // SAFETY: `env` is the current call's environment; `array` is a valid out-pointer.
        let status =
            unsafe { sys::napi_create_array_with_length(env, callbacks.len(), &mut array) };
        check(status, "array")?;
        for (index, callback) in (0u32..).zip(callbacks) {
            let target = Rc::into_raw(Rc::clone(&value.0)).cast_mut();
            let mut function = ptr::null_mut();
            // SAFETY: the name is a NUL-terminated literal; `target` (a strong reference)
            // stays valid until the finalizer below releases it, after the function is
            // collected.
            let status = unsafe {
                sys::napi_create_function(
                    env,
                    c"fast".as_ptr(),
                    4,
                    callback,
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
            // SAFETY: `array` and `function` are live values of this call.
            let status = unsafe { sys::napi_set_element(env, array, index, function) };
            check(status, "array")?;
        }
        Ok(array)
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

/// The callback of the fast function for operation `FastOp::at(OP)` on a `T`:
/// `(key) => undefined`. One copy per target type and operation, so the operation is a
/// constant and the target's `run` is inlined (no virtual call, no operation switch).
unsafe extern "C" fn call<T: FastTarget, const OP: usize>(
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
        if let Err(FastError(message)) = target.run(const { FastOp::at(OP) }, &key) {
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
