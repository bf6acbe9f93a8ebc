//! Keys from JavaScript: a string (its UTF-8 bytes) or a `Buffer`/`Uint8Array` (its bytes).
//!
//! A key **is its bytes**, in every runtime: the string `"a"` and `Buffer.from("a")` are the
//! same key, as they are for the C and Python bindings. Strings are read as UTF-8 straight into
//! a stack buffer (lone surrogates become U+FFFD, as `TextEncoder` and `Buffer.from` do), so a
//! key of up to [`INLINE_KEY_BYTES`] bytes costs one Node-API call and no allocation. (Read this
//! way, a key costs less than read as UTF-16 and encoded here, or as napi-rs's `String`, which
//! asks for the length first and allocates: see the boundary rows of `node/bench/check.js`.)

use std::mem::MaybeUninit;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Error, Result, Status, ValueType};

use crate::error::type_error;

/// Keys up to this many UTF-8 bytes are read without allocating.
pub const INLINE_KEY_BYTES: usize = 250;

/// The stack buffer: the inline bytes, a NUL that Node-API writes, and room to detect that a
/// string was cut short (Node-API stops before a character of up to 4 bytes that does not fit).
const BUFFER_BYTES: usize = INLINE_KEY_BYTES + 6;

/// A key's bytes, read from a JavaScript string, `Buffer` or `Uint8Array`.
pub struct Key {
    inline: [MaybeUninit<u8>; BUFFER_BYTES],
    len: usize,
    heap: Option<Vec<u8>>,
}

impl Key {
    /// The key's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.heap {
            Some(heap) => heap,
            // SAFETY: `from_napi_value` initialised the first `len` bytes of `inline`, and
            // `len <= INLINE_KEY_BYTES < BUFFER_BYTES`.
            None => unsafe {
                std::slice::from_raw_parts(self.inline.as_ptr().cast::<u8>(), self.len)
            },
        }
    }
}

impl AsRef<[u8]> for Key {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.bytes()
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

/// A Node-API status as a result.
fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), what.to_owned()))
    }
}

impl Key {
    /// An empty key, to [`read`](Self::read) into where it will be used (a `Key` is a few
    /// hundred bytes: returning one by value measured as a `memmove` on every call).
    #[inline]
    pub fn empty() -> Self {
        Key {
            inline: [MaybeUninit::uninit(); BUFFER_BYTES],
            len: 0,
            heap: None,
        }
    }

    /// Reads `value` (a string, `Buffer` or `Uint8Array`) into this key.
    ///
    /// # Errors
    /// A type error for any other value.
    ///
    /// # Safety
    /// `env` and `value` must be valid for the current Node-API call.
    #[inline]
    pub unsafe fn read(&mut self, env: sys::napi_env, value: sys::napi_value) -> Result<()> {
        let key = self;
        key.len = 0;
        key.heap = None;
        let mut written = 0;
        // SAFETY: `env` and `value` come from Node-API for this call; the buffer is
        // `BUFFER_BYTES` long and Node-API writes at most that many bytes (the text and a NUL).
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                key.inline.as_mut_ptr().cast(),
                BUFFER_BYTES,
                &mut written,
            )
        };
        if status == sys::Status::napi_ok {
            if written <= INLINE_KEY_BYTES {
                // Complete: a cut-short string leaves fewer than 4 bytes of room unused, and
                // here at least 5 bytes (besides the NUL) were left.
                key.len = written;
                return Ok(());
            }
            // SAFETY: as above; a first call with no buffer asks for the length.
            let heap = unsafe { read_long_string(env, value)? };
            key.heap = Some(heap);
            return Ok(());
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
        let mut buffer = ptr::null_mut();
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
                    &mut buffer,
                    &mut offset,
                )
            },
            "key",
        )?;
        if kind != sys::TypedarrayType::uint8_array {
            return Err(type_error("key must be a string, Buffer or Uint8Array"));
        }
        if length == 0 || data.is_null() {
            return Ok(());
        }
        // SAFETY: Node-API reports `length` bytes at `data` (a Uint8Array has 1-byte
        // elements), valid during this call, in which no JavaScript runs.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) };
        if length <= INLINE_KEY_BYTES {
            for (slot, byte) in key.inline.iter_mut().zip(bytes) {
                *slot = MaybeUninit::new(*byte);
            }
            key.len = length;
        } else {
            key.heap = Some(bytes.to_vec());
        }
        Ok(())
    }
}

impl FromNapiValue for Key {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut key = Key::empty();
        // SAFETY: the caller's contract.
        unsafe { key.read(env, value)? };
        Ok(key)
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
