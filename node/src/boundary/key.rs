//! Keys from JavaScript: a string (its UTF-8 bytes) or a `Buffer`/`Uint8Array` (its bytes).
//!
//! A key **is its bytes**, in every runtime: the string `"a"` and `Buffer.from("a")` are the
//! same key, as they are for the C and Python bindings. Strings are read as UTF-8 straight into
//! a stack buffer (lone surrogates become U+FFFD, as `TextEncoder` and `Buffer.from` do), so a
//! key of up to [`INLINE_KEY_BYTES`] bytes costs one Node-API call and no allocation; a
//! `Uint8Array`'s bytes are used where they are, for the duration of the call. (Read this
//! way, a key costs less than read as UTF-16 and encoded here, or as napi-rs's `String`, which
//! asks for the length first and allocates: see the boundary rows of `node/bench/check.js`.)
//!
//! Two kinds of `Uint8Array` are refused, each with a `TypeError` naming the key: one whose
//! `ArrayBuffer` is detached (transferred away: it reports no bytes, and read as the empty
//! key it would put every such caller in one bucket), and one over a `SharedArrayBuffer`.
//! While a native call runs no JavaScript runs *on this thread*, but another worker may be
//! writing a `SharedArrayBuffer`'s bytes at that moment: hashing them would be a data race,
//! and copying them first only moves the race into the copy (a key torn between two writes is
//! no one's key). Refusing costs one `napi_is_arraybuffer` per `Uint8Array` key, and the
//! caller who means it copies the bytes out (`Buffer.from(view)`), at a moment it controls.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Error, Result, Status, ValueType};

use crate::boundary::type_error;

/// Keys up to this many UTF-8 bytes are read without allocating.
pub const INLINE_KEY_BYTES: usize = 250;

/// The stack buffer: the inline bytes, a NUL that Node-API writes, and room to detect that a
/// string was cut short (Node-API stops before a character of up to 4 bytes that does not fit).
const BUFFER_BYTES: usize = INLINE_KEY_BYTES + 6;

/// Stack room for one key, uninitialised until [`read_key`] writes it (nothing zeroes it:
/// a key's buffer that was zeroed measured as a 264-byte `memset` on every call).
pub struct KeyBuffer(MaybeUninit<[u8; BUFFER_BYTES]>);

impl KeyBuffer {
    /// An uninitialised buffer.
    #[inline]
    pub fn new() -> Self {
        KeyBuffer(MaybeUninit::uninit())
    }
}

impl Default for KeyBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// A Node-API status as a result.
fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), what.to_owned()))
    }
}

/// Reads `value` (a string, `Buffer` or `Uint8Array`) as a key's bytes: a string's UTF-8 in
/// `buffer` (or, past [`INLINE_KEY_BYTES`], in a `Vec`), a `Uint8Array`'s bytes where they are.
///
/// # Errors
/// A type error for any other value, for a `Uint8Array` whose `ArrayBuffer` is detached, and
/// for one over a `SharedArrayBuffer`.
///
/// # Safety
/// `env` and `value` must be valid for the current Node-API call, and the bytes returned must
/// not be used after it. A borrowed `Uint8Array`'s memory is JavaScript's: no JavaScript runs
/// on this thread while the native call runs (the one exception, [`confirm_detached`], runs
/// for a zero-length key, which borrows nothing), so nothing on it can write, detach or resize the
/// (non-shared) `ArrayBuffer` before the call returns, and no other thread can reach a
/// non-shared `ArrayBuffer` at all (a `SharedArrayBuffer`, which other threads can write, is
/// refused).
#[inline]
pub unsafe fn read_key<'a>(
    env: sys::napi_env,
    value: sys::napi_value,
    buffer: &'a mut KeyBuffer,
) -> Result<Cow<'a, [u8]>> {
    let mut written = 0;
    // SAFETY: `env` and `value` come from Node-API for this call; the buffer is
    // `BUFFER_BYTES` long and Node-API writes at most that many bytes (the text and a NUL).
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            value,
            buffer.0.as_mut_ptr().cast(),
            BUFFER_BYTES,
            &mut written,
        )
    };
    if status == sys::Status::napi_ok {
        if written <= INLINE_KEY_BYTES {
            // Complete: a cut-short string leaves fewer than 4 bytes of room unused, and
            // here at least 5 bytes (besides the NUL) were left.
            // SAFETY: Node-API initialised the first `written` bytes of the buffer.
            let bytes =
                unsafe { std::slice::from_raw_parts(buffer.0.as_ptr().cast::<u8>(), written) };
            return Ok(Cow::Borrowed(bytes));
        }
        // SAFETY: as above; a first call with no buffer asks for the length.
        return Ok(Cow::Owned(unsafe { read_long_string(env, value)? }));
    }
    if status != sys::Status::napi_string_expected {
        return Err(Error::new(
            Status::from(status),
            "key: cannot read the string".to_owned(),
        ));
    }
    // Not a string: a Uint8Array (Buffer is one).
    let mut is_typed_array = false;
    // SAFETY: `env` and `value` are valid for this call.
    let status = unsafe { sys::napi_is_typedarray(env, value, &mut is_typed_array) };
    check(status, "key")?;
    if !is_typed_array {
        return Err(type_error("key must be a string, Buffer or Uint8Array"));
    }
    let mut kind = 0;
    let mut length = 0;
    let mut data = ptr::null_mut();
    let mut array_buffer = ptr::null_mut();
    let mut offset = 0;
    check(
        // SAFETY: `value` is a typed array; the out-pointers are valid locals.
        unsafe {
            sys::napi_get_typedarray_info(
                env,
                value,
                &mut kind,
                &mut length,
                &mut data,
                &mut array_buffer,
                &mut offset,
            )
        },
        "key",
    )?;
    if kind != sys::TypedarrayType::uint8_array {
        return Err(type_error("key must be a string, Buffer or Uint8Array"));
    }
    // `napi_is_arraybuffer` is false for a SharedArrayBuffer.
    let mut is_array_buffer = false;
    // SAFETY: `array_buffer` is the typed array's buffer, a value of this call.
    let status = unsafe { sys::napi_is_arraybuffer(env, array_buffer, &mut is_array_buffer) };
    check(status, "key")?;
    if !is_array_buffer {
        return Err(type_error(
            "key must be a string, Buffer or Uint8Array over an ArrayBuffer, got a Uint8Array over a SharedArrayBuffer (another thread may write it during the call: copy it first, Buffer.from(key))",
        ));
    }
    if length == 0 || data.is_null() {
        // A detached buffer reports no bytes: it is not the empty key.
        let mut detached = false;
        // SAFETY: `array_buffer` is an ArrayBuffer of this call.
        let status = unsafe { sys::napi_is_detached_arraybuffer(env, array_buffer, &mut detached) };
        check(status, "key")?;
        // SAFETY: as above.
        if detached && unsafe { confirm_detached(env, array_buffer)? } {
            return Err(type_error(
                "key must be a string, Buffer or Uint8Array with its bytes, got a Uint8Array whose ArrayBuffer is detached (transferred)",
            ));
        }
        return Ok(Cow::Borrowed(&[]));
    }
    // SAFETY: Node-API reports `length` bytes at `data` (a Uint8Array has 1-byte elements) in
    // a non-shared ArrayBuffer that is not detached; no JavaScript runs on this thread during
    // the call and no other thread can reach the buffer, so the bytes stay as they are until
    // it returns (the caller's contract bounds how long the slice is used).
    Ok(Cow::Borrowed(unsafe {
        std::slice::from_raw_parts(data.cast::<u8>(), length)
    }))
}

/// Whether `array_buffer`, which `napi_is_detached_arraybuffer` reported detached, is. Node-API
/// before `v8::ArrayBuffer::WasDetached` (Node 20) answered "its data is null", which a
/// zero-length ArrayBuffer with no backing memory also is: only JavaScript tells the two
/// apart, since constructing a view over a detached buffer throws. Reached only for a
/// zero-length key so reported; the key has no bytes to borrow, so running JavaScript here
/// invalidates nothing.
///
/// # Safety
/// `env` and `array_buffer` (an ArrayBuffer) must be valid for the current Node-API call.
unsafe fn confirm_detached(env: sys::napi_env, array_buffer: sys::napi_value) -> Result<bool> {
    let mut global = ptr::null_mut();
    // SAFETY: the caller's contract; `global` is a valid out-pointer.
    check(unsafe { sys::napi_get_global(env, &mut global) }, "key")?;
    let mut constructor = ptr::null_mut();
    check(
        // SAFETY: `global` is this call's global object; the name is NUL-terminated.
        unsafe {
            sys::napi_get_named_property(env, global, c"Uint8Array".as_ptr(), &mut constructor)
        },
        "key",
    )?;
    let mut view = ptr::null_mut();
    // SAFETY: `constructor` and `array_buffer` are values of this call; one argument.
    let status = unsafe { sys::napi_new_instance(env, constructor, 1, &array_buffer, &mut view) };
    if status == sys::Status::napi_ok {
        return Ok(false);
    }
    if status == sys::Status::napi_pending_exception {
        // The TypeError of a detached buffer: cleared, the key's own error replaces it.
        let mut exception = ptr::null_mut();
        // SAFETY: an exception is pending in this call.
        let _ = unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
        return Ok(true);
    }
    check(status, "key").map(|()| true)
}

/// A key's bytes, owned: the argument type of the `#[napi]` methods that take a key (the
/// hot path reads keys in place with [`read_key`] instead).
pub struct Key(Vec<u8>);

impl AsRef<[u8]> for Key {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TypeName for Key {
    fn type_name() -> &'static str {
        "string | Uint8Array"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for Key {}

impl FromNapiValue for Key {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut buffer = KeyBuffer::new();
        // SAFETY: the caller's contract; the bytes are copied before the call returns.
        let bytes = unsafe { read_key(env, value, &mut buffer)? };
        Ok(Key(bytes.into_owned()))
    }
}

/// Reads a string longer than the stack buffer into a `Vec`.
///
/// # Safety
/// `env` and `value` must be valid for the current call, and `value` a string.
unsafe fn read_long_string(env: sys::napi_env, value: sys::napi_value) -> Result<Vec<u8>> {
    let mut length = 0;
    check(
        // SAFETY: the caller's contract; a null buffer asks for the length only.
        unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut length) },
        "key",
    )?;
    let mut bytes = vec![0u8; length.saturating_add(1)];
    let mut written = 0;
    check(
        // SAFETY: the caller's contract; the buffer holds `length + 1` bytes: the text and
        // its NUL.
        unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                bytes.as_mut_ptr().cast(),
                bytes.len(),
                &mut written,
            )
        },
        "key",
    )?;
    bytes.truncate(written);
    Ok(bytes)
}
