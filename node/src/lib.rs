//! Node.js bindings for cellgate: a Node-API addon (napi-rs 3) under the thin JavaScript
//! layer in `node/lib/`.
//!
//! The addon is private to the package: users import `cellgate`, whose JavaScript validates
//! every argument (with `TypeError`/`RangeError` naming the argument) and builds the decision
//! objects. The boundary is designed for the cost of a Node-API call:
//!
//! - an operation returns a small integer ([`shared::DENIED`], [`shared::ALLOWED`],
//!   [`shared::TABLE_FULL`]) and writes the numbers of its decision into a `Float64Array` that
//!   the JavaScript object shares with its native half ([`shared`]), because building an
//!   object through Node-API costs ten times a plain JavaScript literal;
//! - string keys are read as UTF-8 into a stack buffer ([`key`]), with no allocation for
//!   keys up to 250 bytes;
//! - costs arrive as `f64` already validated by JavaScript, and are checked again here
//!   (an invalid one is an error, never a silent zero).
//!
//! Nothing here panics across the boundary: arithmetic is checked, and every fallible
//! conversion returns a Node-API error that the JavaScript layer turns into a typed error.

#[cfg(feature = "bench-probes")]
mod boundary;
mod client;
mod clock;
mod config;
mod error;
pub mod fast;
mod headers;
mod key;
mod limiter;
mod policy;
mod quota;
mod shared;

#[cfg(feature = "bench-probes")]
pub use boundary::{
    bench_empty, bench_key, bench_number_to_bool, bench_object, bench_raw_probes, bench_string,
    bench_utf16, BenchDecision, RawProbes,
};
pub use client::client_key;
pub use clock::{monotonic_now_ns, NativeManualClock};
pub use config::{check_names, limits, Limits, NameProblem};
pub use headers::render_body;
pub use limiter::NativeLimiter;
pub use policy::{NativePolicy, NativeReservation};
pub use quota::{split_rates, RateSpec};
pub use shared::layout;
