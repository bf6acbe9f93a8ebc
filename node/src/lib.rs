//! Node.js bindings for cellgate: a Node-API addon (napi-rs 3) under the thin JavaScript
//! layer in `node/lib/`. Each file translates the core module it is named after: [`clock`],
//! [`quota`], [`limiter`] (core's `Limiter`: one engine for `Limiter` and `Policy`),
//! [`headers`], [`client_key`]; [`boundary`] holds the guard and the conversions.
//!
//! The addon is private to the package: users import `cellgate`, whose JavaScript validates
//! argument types (with `TypeError`/`RangeError` naming the argument) and builds the decision
//! objects. The boundary is designed for the cost of a Node-API call:
//!
//! - every operation goes through one native function per limiter (core's `apply_at`), which
//!   reads the operation and the costs from a `Float64Array` that the JavaScript object shares
//!   with its native half and writes the decision's numbers there
//!   ([`boundary::shared`]), because building an object through Node-API costs ten times a
//!   plain JavaScript literal;
//! - string keys are read as UTF-8 into a stack buffer ([`boundary::key`]), with no
//!   allocation for keys up to 250 bytes;
//! - costs arrive as `f64` and are checked here (an invalid one is an error, never a silent
//!   zero).
//!
//! Nothing here panics across the boundary: arithmetic is checked, and every fallible
//! conversion returns a Node-API error that the JavaScript layer turns into a typed error.

#[cfg(feature = "bench-probes")]
mod bench_probes;
pub mod boundary;
mod client_key;
mod clock;
mod headers;
mod limiter;
mod quota;
mod remote;
mod store;

#[cfg(feature = "bench-probes")]
pub use bench_probes::{
    bench_empty, bench_key, bench_number_to_bool, bench_object, bench_raw_probes, bench_string,
    bench_utf16, BenchDecision, RawProbes,
};
pub use boundary::shared::{layout, names};
pub use client_key::{client_key_into, client_key_max_len};
pub use clock::{monotonic_now_ns, NativeManualClock};
pub use headers::{header_styles, wall_clock_styles};
pub use limiter::{limits, LimiterSpec, Limits, NativeLimiter, NativeReservation};
pub use quota::QuotaSpec;
pub use remote::{NativeRemoteLimiter, NativeRemoteReservation, RemoteSpec};
pub use store::remove_shared_table;
