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
//! `undefined`; or, when the shared array's `RENDER_STYLE` asks for it (the middleware's
//! check), the values of the decision's headers as one string, so that a request costs one
//! native call and not two.

use std::borrow::Cow;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Error, Result, Status, ValueType};

use crate::boundary::key::{read_key, KeyBuffer};
use crate::headers::named_style;
use cellgate::NamedStyle;

/// Why a fast operation failed: the message of a `RangeError` thrown to JavaScript (a fixed
/// one for the operation's own errors; a rendering's names the argument at fault).
pub struct FastError(pub(crate) Cow<'static, str>);

impl FastError {
    /// The error with a fixed message.
    pub(crate) const fn new(message: &'static str) -> Self {
        Self(Cow::Borrowed(message))
    }
}

/// A limiter that a fast function can drive.
pub trait FastTarget: 'static {
    /// Runs the operation in the shared array for `key` with the cost(s) there; writes the
    /// decision and the status into the shared array. When the shared array asks for the
    /// decision's headers (`RENDER_STYLE`), passes the bytes to return (printable ASCII) to
    /// `emit`, once; the function then returns them as a string. Implementations are
    /// `#[inline]`: the fast function is compiled for one target type.
    ///
    /// # Errors
    /// The message of the `RangeError` to throw.
    fn run(&self, key: &[u8], emit: &mut dyn FnMut(&[u8])) -> core::result::Result<(), FastError>;
}

/// The function `(key) => undefined | string` for one limiter, made when converted to a
/// JavaScript value (a string: the header values a rendering call asked for). Its callback
/// data is a strong reference to the target (`Rc::into_raw`), released by the function's
/// finalizer.
pub struct FastFunction<T: FastTarget>(pub(crate) Rc<T>);

impl<T: FastTarget> TypeName for FastFunction<T> {
    fn type_name() -> &'static str {
        "(key: string | Uint8Array) => string | undefined"
    }

    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl<T: FastTarget> ToNapiValue for FastFunction<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        // SAFETY: `env` is the caller's (this trait's contract); `call::<T>` reads its data
        // as the `Rc<T>` given here.
        unsafe { bound_function(env, c"apply", Some(call::<T>), value.0) }
    }
}

/// A limiter whose decisions' headers a [`HeaderFunction`] renders.
pub trait HeaderTarget: 'static {
    /// Renders the headers of the decision JavaScript wrote into the shared array (`count`
    /// entries) in `style`, writes the shape index (or -1) into the shared array, and passes
    /// the bytes to return (printable ASCII) to `finish`.
    ///
    /// # Errors
    /// The message of the `RangeError` to throw.
    fn render(
        &self,
        style: NamedStyle,
        count: u32,
        finish: &mut dyn FnMut(&[u8]),
    ) -> core::result::Result<(), String>;
}

/// The function `(style, nowUnixS, count) => string` for one limiter: its decision's headers,
/// rendered by core, as [`crate::headers::HeaderShapes::render`] returns them (the values of
/// a known shape, whose index it writes into the shared array's `HEADER_SHAPE` slot). A plain
/// Node-API function, as [`FastFunction`] is: napi-rs's generated method measured 485 ns for
/// this call, of which the rendering is a small part.
pub struct HeaderFunction<T: HeaderTarget>(pub(crate) Rc<T>);

impl<T: HeaderTarget> TypeName for HeaderFunction<T> {
    fn type_name() -> &'static str {
        "(style: number, nowUnixS: number, count: number) => string"
    }

    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl<T: HeaderTarget> ToNapiValue for HeaderFunction<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        // SAFETY: `env` is the caller's (this trait's contract); `render_call::<T>` reads its
        // data as the `Rc<T>` given here.
        unsafe { bound_function(env, c"renderHeaders", Some(render_call::<T>), value.0) }
    }
}

/// A JavaScript function calling `callback` with `target` as its data: a strong reference
/// (`Rc::into_raw`) released by the function's finalizer once the function is collected.
///
/// # Safety
/// `env` is a live environment, and `callback` reads its data as a `*const T` from this
/// `Rc<T>`.
unsafe fn bound_function<T: 'static>(
    env: sys::napi_env,
    name: &'static std::ffi::CStr,
    callback: sys::napi_callback,
    target: Rc<T>,
) -> Result<sys::napi_value> {
    let target = Rc::into_raw(target).cast_mut();
    let mut function = ptr::null_mut();
    // SAFETY: the name is a NUL-terminated literal (its length passed as NAPI_AUTO_LENGTH, -1);
    // `target` (a strong reference) stays valid until the finalizer below releases it, after
    // the function is collected.
    let status = unsafe {
        sys::napi_create_function(
            env,
            name.as_ptr(),
            -1,
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
    Ok(function)
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
unsafe extern "C" fn finalize<T: 'static>(
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

/// The callback of the fast function on a `T`: `(key) => undefined | string`. One copy per
/// target type, so the target's `run` is inlined (no virtual call).
unsafe extern "C" fn call<T: FastTarget>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut result = ptr::null_mut();
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
        let mut made = sys::Status::napi_ok;
        let ran = target.run(&key, &mut |bytes| {
            // SAFETY: `env` is this call's environment.
            made = unsafe { latin1_string(env, bytes, &mut result) };
        });
        finish_string(
            env,
            ran.map_err(|FastError(message)| message),
            made,
            &mut result,
        );
    }));
    if outcome.is_err() {
        throw_panic(env);
        return ptr::null_mut();
    }
    result
}

/// `bytes` as a JavaScript string in `result`: Latin-1 is exact for core's printable-ASCII
/// header bytes, and V8 copies them.
///
/// # Safety
/// `env` is the current call's environment.
unsafe fn latin1_string(
    env: sys::napi_env,
    bytes: &[u8],
    result: &mut sys::napi_value,
) -> sys::napi_status {
    let Ok(len) = isize::try_from(bytes.len()) else {
        return sys::Status::napi_string_expected;
    };
    // SAFETY: `bytes` is valid for its length during this call; `result` is a valid
    // out-pointer.
    unsafe { sys::napi_create_string_latin1(env, bytes.as_ptr().cast::<c_char>(), len, result) }
}

/// Ends a call that may return a string: throws the `RangeError` of `ran`, or the error of a
/// string that could not be made (`made`), clearing `result` (the call returns `undefined`).
fn finish_string(
    env: sys::napi_env,
    ran: core::result::Result<(), Cow<'static, str>>,
    made: sys::napi_status,
    result: &mut sys::napi_value,
) {
    match ran {
        Err(message) => {
            *result = ptr::null_mut();
            throw(env, true, c"ERR_OUT_OF_RANGE", &message);
        }
        Ok(()) if made != sys::Status::napi_ok => {
            *result = ptr::null_mut();
            throw(
                env,
                false,
                c"ERR_CELLGATE_PANIC",
                "cellgate: the headers could not be made into a string",
            );
        }
        Ok(()) => {}
    }
}

/// Throws the error of a panic caught at the boundary.
fn throw_panic(env: sys::napi_env) {
    throw(
        env,
        false,
        c"ERR_CELLGATE_PANIC",
        "cellgate: internal error (a bug: please report it)",
    );
}

/// The callback of the header function on a `T`: `(style, nowUnixS, count) => string`.
unsafe extern "C" fn render_call<T: HeaderTarget>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut result = ptr::null_mut();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut argc = 3;
        let mut argv = [ptr::null_mut(); 3];
        let mut data = ptr::null_mut();
        // SAFETY: `env` and `info` are this call's; the out-pointers are valid, and `argv`
        // has room for `argc` values.
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
        if status != sys::Status::napi_ok || data.is_null() || argc < 3 {
            throw(env, false, c"ERR_INVALID_ARG_TYPE", "cellgate: bad call");
            return;
        }
        let (mut style, mut now_unix_s, mut count) = (0u32, 0f64, 0u32);
        // SAFETY: the values are this call's arguments (a missing one is `undefined`, which
        // the calls refuse with a status); the out-pointers are valid.
        let read = unsafe {
            sys::napi_get_value_uint32(env, argv[0], &mut style) == sys::Status::napi_ok
                && sys::napi_get_value_double(env, argv[1], &mut now_unix_s) == sys::Status::napi_ok
                && sys::napi_get_value_uint32(env, argv[2], &mut count) == sys::Status::napi_ok
        };
        if !read {
            throw(env, false, c"ERR_INVALID_ARG_TYPE", "cellgate: bad call");
            return;
        }
        // SAFETY: `data` is the `Rc<T>` this function holds (see `bound_function`), alive
        // while the function is.
        let target = unsafe { &*data.cast::<T>() };
        let mut made = sys::Status::napi_ok;
        let rendered = named_style(style, now_unix_s)
            .map_err(|error| error.reason)
            .and_then(|style| {
                target.render(style, count, &mut |bytes| {
                    // SAFETY: `env` is this call's environment.
                    made = unsafe { latin1_string(env, bytes, &mut result) };
                })
            });
        finish_string(env, rendered.map_err(Cow::Owned), made, &mut result);
    }));
    if outcome.is_err() {
        throw_panic(env);
        return ptr::null_mut();
    }
    result
}
