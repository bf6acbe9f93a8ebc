//! Keys from JavaScript: a string (its UTF-8 bytes) or a `Buffer`/`Uint8Array` (its bytes).
//!
//! A key **is its bytes**, in every runtime: the string `"a"` and `Buffer.from("a")` are the
//! same key, as they are for the C and Python bindings. Strings are read as UTF-16 into a stack
//! buffer and encoded to UTF-8 here (lone surrogates become U+FFFD, as `TextEncoder` and
//! `Buffer.from` do), so a key of up to [`INLINE_KEY_UNITS`] UTF-16 code units costs one
//! Node-API call and no allocation. Measured here, V8 copies UTF-16 out faster than it encodes
//! UTF-8 (see `node/bench/check.js`), and encoding a short key in Rust is nearly free.

use std::mem::MaybeUninit;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Error, Result, Status, ValueType};

use crate::error::type_error;

/// String keys up to this many UTF-16 code units are read without allocating.
pub const INLINE_KEY_UNITS: usize = 126;

/// The UTF-16 stack buffer: the units, one more to detect that a string was cut short, and
/// the NUL that Node-API writes.
const UNIT_BUFFER: usize = INLINE_KEY_UNITS + 2;

/// The UTF-8 bytes of at most `INLINE_KEY_UNITS` units (3 bytes per unit at most; a
/// surrogate pair is 2 units and 4 bytes).
const BUFFER_BYTES: usize = INLINE_KEY_UNITS * 3;

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
            // `len <= BUFFER_BYTES`.
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

impl FromNapiValue for Key {
    #[inline]
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut key = Key {
            inline: [MaybeUninit::uninit(); BUFFER_BYTES],
            len: 0,
            heap: None,
        };
        let mut units = [MaybeUninit::<u16>::uninit(); UNIT_BUFFER];
        let mut written = 0;
        // SAFETY: `env` and `value` come from Node-API for this call; the buffer holds
        // `UNIT_BUFFER` units and Node-API writes at most that many (the text and a NUL).
        let status = unsafe {
            sys::napi_get_value_string_utf16(
                env,
                value,
                units.as_mut_ptr().cast(),
                UNIT_BUFFER,
                &mut written,
            )
        };
        if status == sys::Status::napi_ok {
            if written <= INLINE_KEY_UNITS {
                // SAFETY: Node-API initialised the first `written` units.
                let units =
                    unsafe { std::slice::from_raw_parts(units.as_ptr().cast::<u16>(), written) };
                key.len = encode_utf8(units, &mut key.inline);
                return Ok(key);
            }
            // Possibly cut short: read it whole.
            // SAFETY: as above, and `value` is a string.
            let heap = unsafe { read_long_string(env, value)? };
            key.heap = Some(heap);
            return Ok(key);
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
        // SAFETY: `value` is a typed array; the out-pointers are valid locals.
        let status = unsafe {
            sys::napi_get_typedarray_info(
                env,
                value,
                &mut kind,
                &mut length,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        };
        check(status, "key")?;
        if kind != sys::TypedarrayType::uint8_array {
            return Err(type_error("key must be a string, Buffer or Uint8Array"));
        }
        if length == 0 || data.is_null() {
            return Ok(key);
        }
        // SAFETY: Node-API reports `length` bytes at `data` (a Uint8Array has 1-byte
        // elements), valid during this call, in which no JavaScript runs.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) };
        if length <= BUFFER_BYTES {
            for (slot, byte) in key.inline.iter_mut().zip(bytes) {
                *slot = MaybeUninit::new(*byte);
            }
            key.len = length;
        } else {
            key.heap = Some(bytes.to_vec());
        }
        Ok(key)
    }
}

/// Encodes UTF-16 `units` as UTF-8 into `out` (lone surrogates as U+FFFD) and returns the
/// length. `out` holds 3 bytes per unit, the most any unit needs, so everything fits.
#[inline]
fn encode_utf8(units: &[u16], out: &mut [MaybeUninit<u8>; BUFFER_BYTES]) -> usize {
    let mut len = 0;
    if units.iter().all(|&unit| unit < 0x80) {
        for (slot, &unit) in out.iter_mut().zip(units) {
            // ASCII: the unit is the byte.
            *slot = MaybeUninit::new(unit as u8);
        }
        return units.len();
    }
    let mut encoded = [0u8; 4];
    for decoded in char::decode_utf16(units.iter().copied()) {
        let ch = decoded.unwrap_or(char::REPLACEMENT_CHARACTER);
        for &byte in ch.encode_utf8(&mut encoded).as_bytes() {
            if let Some(slot) = out.get_mut(len) {
                *slot = MaybeUninit::new(byte);
                len += 1;
            }
        }
    }
    len
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
