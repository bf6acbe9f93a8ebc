//! The boundary between JavaScript and core: the guard (typed errors, nothing panics across
//! it) and the conversions (keys, the shared `Float64Array`, the fast functions).
//!
//! The JavaScript layer validates argument types first, so these errors are the second line
//! of defence; they carry a message naming the argument, and a `code` that the JavaScript
//! layer maps to `TypeError` or `RangeError`.

pub mod fast;
pub mod key;
pub mod shared;

use napi::{Error, Status};

/// An argument of the right type but an invalid value (JavaScript maps it to `RangeError`).
pub(crate) fn range_error(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, message.into())
}

/// An argument of the wrong type (JavaScript maps it to `TypeError`).
pub(crate) fn type_error(message: impl Into<String>) -> Error {
    Error::new(Status::ObjectExpected, message.into())
}
