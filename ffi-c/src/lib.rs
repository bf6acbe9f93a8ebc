//! The C ABI of cellgate: `libcellgate.so` / `libcellgate.a` and `include/cellgate.h`
//! (generated from this crate by cbindgen; `tests/header.rs` fails when it is stale).
//!
//! Every exported function is `extern "C"`, `#[no_mangle]`, and goes through the private
//! `boundary` module: a panic guard that turns a panic into `CG_STATUS_PANIC`, and NULL
//! checks that turn a NULL pointer into `CG_STATUS_NULL_ARGUMENT`. Handles are opaque boxes handed out by
//! `_new` and taken back by `_free` (NULL does nothing). The same functions are callable from
//! Rust through this crate's rlib (the fuzz targets do).
//!
//! The C guide (conventions, NULL, threads, ownership, statuses, time) is `ffi-c/README.md`.

mod boundary;
pub mod cell;
pub mod client_key;
pub mod clock;
pub mod decision;
pub mod headers;
pub mod keyed;
pub mod limiter;
pub mod policy;
pub mod quota;
pub mod remote;
pub mod shared;
pub mod status;

pub use cell::*;
pub use client_key::*;
pub use clock::*;
pub use decision::*;
pub use headers::*;
pub use keyed::*;
pub use limiter::*;
pub use policy::*;
pub use quota::*;
pub use remote::*;
pub use shared::*;
pub use status::*;

use core::ffi::c_char;

/// The library's major version (the crate version's). The header's `CG_VERSION_*` are checked
/// against `Cargo.toml` at compile time, and against `cg_version()` by the C tests.
pub const CG_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const CG_VERSION_MINOR: u32 = 1;
/// The library's patch version.
pub const CG_VERSION_PATCH: u32 = 0;

/// Parses a decimal version component at compile time.
const fn parse_version(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value: u32 = 0;
    let mut index = 0;
    while index < bytes.len() {
        let digit = bytes[index];
        assert!(digit.is_ascii_digit(), "version component is not a number");
        value = value * 10 + (digit - b'0') as u32;
        index += 1;
    }
    value
}

const _: () = assert!(CG_VERSION_MAJOR == parse_version(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(CG_VERSION_MINOR == parse_version(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(CG_VERSION_PATCH == parse_version(env!("CARGO_PKG_VERSION_PATCH")));

/// The library's version, `"MAJOR.MINOR.PATCH"`: static, NUL-terminated, never NULL. Compare it
/// with the header's `CG_VERSION` to detect a header and library from different releases.
#[no_mangle]
pub extern "C" fn cg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Every handle may be used from several threads at once (the C guide promises it): checked
/// at compile time.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<cg_clock>();
    shareable::<cg_cell>();
    shareable::<cg_limiter>();
    shareable::<cg_limiter_reservation>();
    shareable::<cg_remote>();
    shareable::<cg_remote_call>();
    shareable::<cg_keyed_limiter>();
    shareable::<cg_policy>();
    shareable::<cg_keyed_policy>();
    shareable::<cg_reservation>();
};
