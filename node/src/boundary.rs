//! Calls that measure the Node-API boundary itself, for `node/bench/check.js` (they are
//! exported under a `bench` prefix and are not part of the package's API): what an empty
//! call costs, a number in and a bool out, a key read as `String`, as UTF-16, or as
//! [`Key`](crate::key::Key), and an object built through Node-API.

use std::rc::Rc;

use napi::bindgen_prelude::{ToNapiValue, TypeName, Utf16String};
use napi::{sys, ValueType};
use napi_derive::napi;

use crate::fast::{plain_function, FastFunctions, NoTarget};
use crate::key::Key;

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
        let empty = plain_function(env, Some(crate::fast::empty))?;
        // SAFETY: the caller's contract: `env` is the current call's environment.
        let probes =
            unsafe { FastFunctions::to_napi_value(env, FastFunctions(Rc::new(NoTarget)))? };
        // SAFETY: `probes` is the array just made; `empty` a live function.
        let status = unsafe { sys::napi_set_element(env, probes, 1, empty) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                "array".to_owned(),
            ));
        }
        let probes_more = [
            (2, crate::fast::args_only as unsafe extern "C" fn(_, _) -> _),
            (3, crate::fast::latin1_probe),
            (4, crate::fast::utf8_probe),
        ];
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
