//! Calls that measure the Node-API boundary itself, for `node/bench/check.js` (they are
//! exported under a `bench` prefix and are not part of the package's API): what an empty
//! call costs, a number in and a bool out, a key read as `String`, as UTF-16, or as
//! [`Key`](crate::key::Key), and an object built through Node-API.

use napi::bindgen_prelude::Utf16String;
use napi_derive::napi;

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

/// A key read as cellgate reads it: UTF-8 into a stack buffer.
#[napi(js_name = "benchKey")]
pub fn bench_key(key: Key) -> u32 {
    u32::try_from(key.bytes().len()).unwrap_or(u32::MAX)
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
