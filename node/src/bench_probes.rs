//! Calls that measure the Node-API boundary itself, for `node/bench/check.js`: what an empty
//! call costs, a number in and a bool out, a key read as `String`, as UTF-16, or as
//! [`Key`](crate::boundary::key::Key), and an object built through Node-API.
//!
//! Built only with the `bench-probes` feature (`make bench-node` builds a second addon with
//! it, outside the package): the shipped addon exports none of them.

use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{ToNapiValue, TypeName, Utf16String};
use napi::{sys, ValueType};
use napi_derive::napi;

use crate::boundary::fast::{first_argument, FastError, FastFunction, FastTarget};
use crate::boundary::key::Key;

/// Does nothing.
#[napi(js_name = "benchEmpty")]
pub fn bench_empty() {}

/// A number in, a bool out.
#[napi(js_name = "benchNumberToBool")]
pub fn bench_number_to_bool(value: f64) -> bool {
    value > 0.5
}

/// A key read as a `String` (napi-rs's default conversion: a length query, an allocation).
#[napi(js_name = "benchString")]
pub fn bench_string(key: String) -> u32 {
    u32::try_from(key.len()).unwrap_or(u32::MAX)
}

/// A key read as UTF-16 (napi-rs's `Utf16String`: an allocation).
#[napi(js_name = "benchUtf16")]
pub fn bench_utf16(key: Utf16String) -> u32 {
    u32::try_from(key.len()).unwrap_or(u32::MAX)
}

/// A key as cellgate's `#[napi]` methods take it (`reset`, `reserve`): UTF-8 into a stack
/// buffer, then copied into a `Vec`.
#[napi(js_name = "benchKey")]
pub fn bench_key(key: Key) -> u32 {
    u32::try_from(key.as_ref().len()).unwrap_or(u32::MAX)
}

/// A decision built as an object through Node-API (what the package avoids).
#[napi(object)]
pub struct BenchDecision {
    /// Allowed.
    pub allowed: bool,
    /// Limit.
    pub limit: f64,
    /// Remaining.
    pub remaining: f64,
    /// Retry after, in ms.
    pub retry_after_ms: f64,
    /// Reset after, in ms.
    pub reset_after_ms: f64,
}

/// Returns a five-field object built through Node-API.
#[napi(js_name = "benchObject")]
pub fn bench_object() -> BenchDecision {
    BenchDecision {
        allowed: true,
        limit: 10.0,
        remaining: 9.0,
        retry_after_ms: 0.0,
        reset_after_ms: 100.0,
    }
}

/// Plain Node-API functions, as the hot path uses: `[empty, keyOnly]`, where `empty` does
/// nothing at all and `keyOnly` is a fast function (arguments read, key read) that runs no
/// limiter.
pub struct RawProbes;

impl TypeName for RawProbes {
    fn type_name() -> &'static str {
        "Array<(key?: string | Uint8Array) => void>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for RawProbes {
    unsafe fn to_napi_value(env: sys::napi_env, _value: Self) -> napi::Result<sys::napi_value> {
        let mut probes = ptr::null_mut();
        // SAFETY: `env` is the current call's environment; `probes` a valid out-pointer.
        let status = unsafe { sys::napi_create_array_with_length(env, 5, &mut probes) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                "array".to_owned(),
            ));
        }
        // SAFETY: the caller's contract: `env` is the current call's environment.
        let key_only =
            unsafe { FastFunction::to_napi_value(env, FastFunction(Rc::new(NoTarget)))? };
        let probes_more = [
            (1, empty as unsafe extern "C" fn(_, _) -> _),
            (2, args_only),
            (3, latin1_probe),
            (4, utf8_probe),
        ];
        // SAFETY: `probes` and `key_only` are live values of this call.
        let status = unsafe { sys::napi_set_element(env, probes, 0, key_only) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                "array".to_owned(),
            ));
        }
        for (index, callback) in probes_more {
            let function = plain_function(env, Some(callback))?;
            // SAFETY: `probes` and `function` are live values of this call.
            let status = unsafe { sys::napi_set_element(env, probes, index, function) };
            if status != sys::Status::napi_ok {
                return Err(napi::Error::new(
                    napi::Status::from(status),
                    "array".to_owned(),
                ));
            }
        }
        // `[keyOnly, empty, argsOnly, latin1, utf8]`.
        Ok(probes)
    }
}

/// `[keyOnly, empty, ...]`: see [`RawProbes`].
#[napi(
    js_name = "benchRawProbes",
    ts_return_type = "Array<(key?: string | Uint8Array) => void>"
)]
pub fn bench_raw_probes() -> RawProbes {
    RawProbes
}

/// A target that does nothing: its fast functions measure the call and the key read alone.
struct NoTarget;

impl FastTarget for NoTarget {
    fn run(
        &self,
        _key: &[u8],
        _emit: &mut dyn FnMut(&[u8]),
    ) -> core::result::Result<(), FastError> {
        Ok(())
    }
}

/// A Node-API function that does nothing at all (not even read its arguments).
unsafe extern "C" fn empty(_env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    ptr::null_mut()
}

/// A Node-API function that reads its arguments (`napi_get_cb_info`) and nothing else.
unsafe extern "C" fn args_only(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `crate::fast`'s `call`: `env` and `info` come from Node-API for this call.
    let _ = unsafe { first_argument(env, info) };
    ptr::null_mut()
}

/// Reads its argument as Latin-1 into a stack buffer (a probe: Latin-1 loses characters
/// above U+00FF, so keys are never read this way).
unsafe extern "C" fn latin1_probe(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `crate::fast`'s `call`: `env` and `info` come from Node-API for this call.
    let (_, argument, _) = unsafe { first_argument(env, info) };
    let mut buffer = [0u8; 128];
    let mut written = 0;
    // SAFETY: the buffer holds 128 bytes; Node-API writes at most that many.
    let _ = unsafe {
        sys::napi_get_value_string_latin1(
            env,
            argument,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut written,
        )
    };
    ptr::null_mut()
}

/// Reads its argument as UTF-8 into a stack buffer (a probe).
unsafe extern "C" fn utf8_probe(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `crate::fast`'s `call`: `env` and `info` come from Node-API for this call.
    let (_, argument, _) = unsafe { first_argument(env, info) };
    let mut buffer = [0u8; 128];
    let mut written = 0;
    // SAFETY: the buffer holds 128 bytes; Node-API writes at most that many.
    let _ = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            argument,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut written,
        )
    };
    ptr::null_mut()
}

/// Makes a plain Node-API function with no data.
fn plain_function(
    env: sys::napi_env,
    callback: sys::napi_callback,
) -> napi::Result<sys::napi_value> {
    let mut function = ptr::null_mut();
    // SAFETY: `env` is the current call's environment; the name is a NUL-terminated literal.
    let status = unsafe {
        sys::napi_create_function(
            env,
            c"empty".as_ptr(),
            5,
            callback,
            ptr::null_mut(),
            &mut function,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::new(
            napi::Status::from(status),
            "function".to_owned(),
        ));
    }
    Ok(function)
}
