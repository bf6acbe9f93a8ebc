//! [`cg_remote`]: core's `RemoteLimiter` in C, a limiter whose buckets live in Redis. The
//! library sends nothing: it gives the script, encodes each call's key and arguments into the
//! caller's buffers, and decodes the script's reply into the same `cg_limiter_decision` the
//! in-process limiter gives; the caller sends `EVALSHA` on its own client (its pool, TLS,
//! auth). `examples/c/redis_client.c` does it with hiredis.
//!
//! Everything here converts: the script, the argument encoding, the decoding (with core
//! deciding again on the record the script read) and the outage policy are core's.

use crate::boundary::{buffer, free_handle, guard, into_handle, object, output, slice, write};
use crate::clock::TimeSource;
use crate::clock::CG_NOW;
use crate::headers::{render_lines, style};
use crate::limiter::{
    cg_limiter_decision, cg_limiter_options, cg_limiter_quota, core_options, limiter_quotas,
    with_policy_headers, CG_COST_DEFAULT, CG_OP_CHECK, CG_OP_FORCE, CG_OP_PEEK, CG_OP_REFUND,
    CG_OP_RESET,
};
use crate::policy::CG_MAX_POLICY_QUOTAS;
use crate::quota::text;
use crate::status::cg_status;
use cellgate::remote::{DEFAULT_OUTAGE_RETRY_AFTER_NS, DEFAULT_PREFIX};
use cellgate::{
    Op, OutagePolicy, RemoteCall, RemoteError, RemoteLimiter, RemoteOptions, ReplyError, SCRIPT,
    SCRIPT_SHA1_HEX,
};
use core::ffi::c_char;

/// Decide on this host's own in-process limiter (same quotas) while Redis cannot be asked:
/// limits hold per host (the default).
pub const CG_OUTAGE_FALLBACK: u32 = 0;
/// Deny while Redis cannot be asked: reason `CG_REASON_FAILED_CLOSED` (answer 503 with the
/// `Retry-After` of `outage_retry_after_ns`).
pub const CG_OUTAGE_FAIL_CLOSED: u32 = 1;
/// Admit while Redis cannot be asked, counting nothing: reason `CG_REASON_FAILED_OPEN`.
pub const CG_OUTAGE_FAIL_OPEN: u32 = 2;

/// The script with a NUL after it, built at compile time from core's text.
const SCRIPT_NUL: [u8; SCRIPT.len() + 1] = {
    let mut bytes = [0u8; SCRIPT.len() + 1];
    let text = SCRIPT.as_bytes();
    let mut index = 0;
    while index < text.len() {
        bytes[index] = text[index];
        index += 1;
    }
    bytes
};

/// The SHA-1 of the script in hex (40 digits) with a NUL after it.
const SHA1_NUL: [u8; 41] = {
    let mut bytes = [0u8; 41];
    let text = SCRIPT_SHA1_HEX.as_bytes();
    let mut index = 0;
    while index < 40 {
        bytes[index] = text[index];
        index += 1;
    }
    bytes
};

/// The Lua script every call runs (core's, the same in every runtime): static, NUL-terminated,
/// never NULL. `*len` (NULL: not reported) receives its length without the NUL. Send it with
/// `EVAL` when `EVALSHA` answers `NOSCRIPT` (after a restart, a failover, `SCRIPT FLUSH`), or
/// load it once with `SCRIPT LOAD`.
///
/// # Safety
/// `len` is NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_script(len: *mut usize) -> *const c_char {
    if let Some(len) = core::ptr::NonNull::new(len) {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(len, SCRIPT.len()) };
    }
    SCRIPT_NUL.as_ptr().cast()
}

/// The SHA-1 of `cg_remote_script`'s text, 40 lowercase hex digits: what `EVALSHA` takes.
/// Static, NUL-terminated, never NULL.
#[no_mangle]
pub extern "C" fn cg_remote_script_sha1() -> *const c_char {
    SHA1_NUL.as_ptr().cast()
}

/// A `cg_remote`'s options beside its quotas and `cg_limiter_options`.
/// `cg_remote_options_init` fills the defaults; passing NULL means them.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cg_remote_options {
    /// Put before every Redis key, `prefix_len` bytes or `CG_NUL_TERMINATED` (copied); NULL:
    /// `"cellgate:"`. One prefix per limiter; it must not hold `{` or `}` (the user key is the
    /// Cluster hash tag, so that one key's record never crosses hash slots).
    pub prefix: *const c_char,
    /// The prefix's length in bytes, or `CG_NUL_TERMINATED`; unused when `prefix` is NULL.
    pub prefix_len: usize,
    /// Whether user keys are stored as their keyed hash (SipHash-2-4, 128 bits, in hex)
    /// under `key_secret`, so that IPs and emails are not written to Redis in clear. Every
    /// host of one limiter must share the secret.
    pub hash_keys: bool,
    /// The secret, when `hash_keys`.
    pub key_secret: [u8; 16],
    /// `CG_OUTAGE_FALLBACK` (the default), `CG_OUTAGE_FAIL_CLOSED` or `CG_OUTAGE_FAIL_OPEN`.
    pub outage: u32,
    /// Milliseconds a record is kept after its buckets are full again (0 by default).
    pub expiry_grace_ms: u64,
    /// The `retry_after_ns` of a `CG_OUTAGE_FAIL_CLOSED` denial (one second by default).
    pub outage_retry_after_ns: u64,
}

impl Default for cg_remote_options {
    fn default() -> Self {
        Self {
            prefix: core::ptr::null(),
            prefix_len: 0,
            hash_keys: false,
            key_secret: [0; 16],
            outage: CG_OUTAGE_FALLBACK,
            expiry_grace_ms: 0,
            outage_retry_after_ns: DEFAULT_OUTAGE_RETRY_AFTER_NS,
        }
    }
}

/// A limiter whose buckets live in Redis: core's `RemoteLimiter`. Safe to share between
/// threads; free it with `cg_remote_free`.
#[allow(non_camel_case_types)]
pub struct cg_remote {
    remote: RemoteLimiter,
    time: TimeSource,
}

/// One encoded call, kept from `cg_remote_encode` to `cg_remote_decode` or
/// `cg_remote_outage`. Free it with `cg_remote_call_free`.
#[allow(non_camel_case_types)]
pub struct cg_remote_call {
    call: RemoteCall,
}

impl From<RemoteError> for cg_status {
    fn from(error: RemoteError) -> Self {
        match error {
            RemoteError::Config(error) => error.into(),
            RemoteError::PrefixBrace => Self::PrefixBrace,
            RemoteError::ExpiryGrace { .. } => Self::ExpiryGrace,
            _ => Self::InvalidArgument,
        }
    }
}

impl From<ReplyError> for cg_status {
    fn from(_: ReplyError) -> Self {
        Self::BadReply
    }
}

/// Writes the default remote options into `*options`: prefix `"cellgate:"`, keys in clear,
/// `CG_OUTAGE_FALLBACK`, no expiry grace, a one-second fail-closed wait.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `options` is NULL.
///
/// # Safety
/// `options` is NULL or valid for writing a `cg_remote_options`.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_options_init(options: *mut cg_remote_options) -> cg_status {
    guard(|| {
        let out = output(options)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, cg_remote_options::default()) };
        Ok(())
    })
}

/// Creates a Redis-backed limiter over `count` quotas with `options` (NULL: the defaults),
/// exactly as `cg_limiter_new` takes them (the same rules; `max_keys` and `on_full` size the
/// in-process fallback), and `remote` (NULL: the defaults); `*out` receives it.
///
/// # Errors
/// `cg_limiter_new`'s; `CG_STATUS_PREFIX_BRACE` (a `{` or `}` in the prefix),
/// `CG_STATUS_EXPIRY_GRACE`, `CG_STATUS_INVALID_ARGUMENT` (an unknown `outage`, a prefix that
/// is not UTF-8).
///
/// # Safety
/// As `cg_limiter_new`; `remote` is NULL or readable, its `prefix` NULL or readable as its
/// length says.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_new(
    quotas: *const cg_limiter_quota,
    count: usize,
    options: *const cg_limiter_options,
    remote: *const cg_remote_options,
    out: *mut *mut cg_remote,
) -> cg_status {
    guard(|| {
        let out = output(out)?;
        // SAFETY: NULL or `count` readable quotas, by the caller's contract.
        let quotas = unsafe { slice(quotas, count) }?;
        // SAFETY: NULL or a readable options struct, by the caller's contract.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        // SAFETY: NULL or a readable options struct, by the caller's contract.
        let remote = unsafe { remote.as_ref() }.copied().unwrap_or_default();
        // SAFETY: the names are readable as their lengths say, by the caller's contract.
        let entries = unsafe { limiter_quotas(quotas) }?;
        let core_options = core_options(&options)?;
        let prefix = if remote.prefix.is_null() {
            DEFAULT_PREFIX
        } else {
            // SAFETY: readable as its length says, by the caller's contract.
            match unsafe { text(remote.prefix, remote.prefix_len) } {
                Ok(prefix) => prefix,
                Err(cg_status::InvalidUtf8) => return Err(cg_status::InvalidArgument),
                Err(status) => return Err(status),
            }
        };
        let outage = match remote.outage {
            CG_OUTAGE_FALLBACK => OutagePolicy::Fallback,
            CG_OUTAGE_FAIL_CLOSED => OutagePolicy::FailClosed,
            CG_OUTAGE_FAIL_OPEN => OutagePolicy::FailOpen,
            _ => return Err(cg_status::InvalidArgument),
        };
        let remote_options = RemoteOptions {
            prefix,
            key_secret: remote.hash_keys.then_some(remote.key_secret),
            outage,
            expiry_grace_ms: remote.expiry_grace_ms,
            outage_retry_after_ns: remote.outage_retry_after_ns,
        };
        let handle = cg_remote {
            remote: RemoteLimiter::new(&entries, core_options, remote_options)?
                .with_block_ns(options.block_ns),
            // SAFETY: NULL or a live clock, by the caller's contract.
            time: unsafe { TimeSource::from_ptr(options.clock) },
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, into_handle(handle)) };
        Ok(())
    })
}

/// Frees a Redis-backed limiter. NULL does nothing. Calls it encoded must be freed too.
///
/// # Safety
/// `remote` is NULL or a limiter not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_free(remote: *mut cg_remote) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(remote) }
}

/// Copies `bytes` into the caller's buffer when it fits; the length goes to `*len` either way.
fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<(), cg_status> {
    let dst = out
        .get_mut(..bytes.len())
        .ok_or(cg_status::BufferTooSmall)?;
    dst.copy_from_slice(bytes);
    Ok(())
}

/// Writes `ARGV[1]`, the limiter's parameters (the same bytes for every call), into `buf`;
/// `*len` receives its length (binary: send it with its length, not as a C string).
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` with the length needed in `*len`, nothing written (20 + 40
/// bytes per quota suffice); `CG_STATUS_NULL_ARGUMENT` (`remote`, `len`, `buf` with a non-zero
/// length).
///
/// # Safety
/// `remote` is NULL or live; `buf` is NULL or valid for writing `buf_len` bytes; `len` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_params(
    remote: *const cg_remote,
    buf: *mut u8,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let remote = unsafe { object(remote) }?;
        let len = output(len)?;
        // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
        let out = unsafe { buffer(buf, buf_len) }?;
        let params = remote.remote.params();
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(len, params.len()) };
        copy_out(params, out)
    })
}

/// Encodes `op` (`CG_OP_*`) on the user key (`key_len` bytes at `key`) with `costs` as for
/// `cg_limiter_apply`, at Redis's clock (`now_ns` `CG_NOW`, the default: `TIME` inside the
/// script, so the hosts' clocks do not matter) or at an explicit `now_ns` (tests, replays).
/// Writes the Redis key (`KEYS[1]`) into `key_buf` and the call's argument (`ARGV[2]`) into
/// `argv_buf`, their lengths into `*key_out_len` and `*argv_out_len`, and the call to
/// `*call` (for `cg_remote_decode` or `cg_remote_outage`; free it with
/// `cg_remote_call_free`). Send
/// `EVALSHA <cg_remote_script_sha1()> 1 <key> <cg_remote_params> <argv>`.
///
/// # Errors
/// `CG_STATUS_BUFFER_TOO_SMALL` when either buffer is too small: both lengths needed are
/// written, nothing else (no bytes, no call; the key needs the prefix, the user key and 2
/// bytes, or 34 with hashed keys; the argument 10 + 16 bytes per quota).
/// `CG_STATUS_NULL_ARGUMENT`, `CG_STATUS_INVALID_ARGUMENT` (an unknown `op`),
/// `CG_STATUS_COST_COUNT`, `CG_STATUS_MISSING_COST`, as `cg_limiter_apply`.
///
/// # Safety
/// `remote` is NULL or live; `key` and `costs` as for `cg_limiter_apply`; each buffer NULL or
/// writable for its length; each length and `call` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cg_remote_encode(
    remote: *const cg_remote,
    key: *const u8,
    key_len: usize,
    now_ns: u64,
    costs: *const u64,
    cost_count: usize,
    op: u32,
    key_buf: *mut u8,
    key_buf_len: usize,
    key_out_len: *mut usize,
    argv_buf: *mut u8,
    argv_buf_len: usize,
    argv_out_len: *mut usize,
    call: *mut *mut cg_remote_call,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let remote = unsafe { object(remote) }?;
        let key_out_len = output(key_out_len)?;
        let argv_out_len = output(argv_out_len)?;
        let call_out = output(call)?;
        let op = match op {
            CG_OP_CHECK => Op::Check,
            CG_OP_PEEK => Op::Peek,
            CG_OP_FORCE => Op::Force,
            CG_OP_REFUND => Op::Refund,
            CG_OP_RESET => Op::Reset,
            _ => return Err(cg_status::InvalidArgument),
        };
        // SAFETY: NULL or `key_len` readable bytes, by the caller's contract.
        let key = unsafe { slice(key, key_len) }?;
        // SAFETY: NULL or `cost_count` readable costs, by the caller's contract.
        let given = unsafe { slice(costs, cost_count) }?;
        let dimensions = remote.remote.dimensions();
        let mut named = [None; CG_MAX_POLICY_QUOTAS];
        let count = if given.is_empty() {
            dimensions
        } else {
            given.len()
        };
        let named = if op == Op::Reset {
            &named[..0]
        } else {
            let named = named.get_mut(..count).ok_or(cg_status::CostCount)?;
            for (slot, cost) in named.iter_mut().zip(given) {
                *slot = (*cost != CG_COST_DEFAULT).then_some(*cost);
            }
            named
        };
        let now = (now_ns != CG_NOW).then_some(now_ns);
        let encoded = remote.remote.encode(key, now, named, op)?;
        // SAFETY: NULL or writable for their lengths, by the caller's contract.
        let key_buf = unsafe { buffer(key_buf, key_buf_len) }?;
        // SAFETY: as above.
        let argv_buf = unsafe { buffer(argv_buf, argv_buf_len) }?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe {
            write(key_out_len, encoded.key().len());
            write(argv_out_len, encoded.argv().len());
        }
        if key_buf.len() < encoded.key().len() || argv_buf.len() < encoded.argv().len() {
            return Err(cg_status::BufferTooSmall);
        }
        copy_out(encoded.key(), key_buf)?;
        copy_out(encoded.argv(), argv_buf)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(call_out, into_handle(cg_remote_call { call: encoded })) };
        Ok(())
    })
}

/// Frees an encoded call. NULL does nothing.
///
/// # Safety
/// `call` is NULL or a call from `cg_remote_encode` not yet freed, that no other thread uses.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_call_free(call: *mut cg_remote_call) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(call) }
}

/// Turns the script's reply to `call` into the decision, into `*out`: the reply is an array
/// of `reply_count` (3) bulk strings, string `i` being `reply_lens[i]` bytes at `reply[i]`,
/// as received. Core decides again on the record the script read, at the time it used, so the
/// decision is exactly the in-process limiter's (reason `CG_REASON_LIMIT`).
///
/// # Errors
/// `CG_STATUS_BAD_REPLY` when the reply is not this script's or disagrees with core: treat it
/// as a store error (`cg_remote_outage`) and report it. `CG_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `remote` and `call` are NULL or live; `reply` and `reply_lens` are NULL or point to
/// `reply_count` entries, each string readable for its length; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_decode(
    remote: *const cg_remote,
    call: *const cg_remote_call,
    reply: *const *const u8,
    reply_lens: *const usize,
    reply_count: usize,
    out: *mut cg_limiter_decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let remote = unsafe { object(remote) }?;
        // SAFETY: NULL or live, by the caller's contract.
        let call = unsafe { object(call) }?;
        let out = output(out)?;
        // SAFETY: NULL or `reply_count` entries, by the caller's contract.
        let pointers = unsafe { slice(reply, reply_count) }?;
        // SAFETY: as above.
        let lens = unsafe { slice(reply_lens, reply_count) }?;
        let mut strings: Vec<&[u8]> = Vec::with_capacity(pointers.len());
        for (pointer, len) in pointers.iter().zip(lens) {
            // SAFETY: each string is readable for its length, by the caller's contract.
            strings.push(unsafe { slice(*pointer, *len) }?);
        }
        let decided = remote.remote.decode(&call.call, &strings)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, (&decided.decision).into()) };
        Ok(())
    })
}

/// The decision of the outage policy for `call` when Redis could not be asked (an error, a
/// timeout, a reply `cg_remote_decode` refused), into `*out`: `CG_OUTAGE_FALLBACK` charges
/// this process's in-process limiter at `local_now_ns` (`CG_NOW`: the limiter's clock;
/// reason `CG_REASON_FALLBACK`), the others decide without counting (`CG_REASON_FAILED_OPEN`,
/// `CG_REASON_FAILED_CLOSED`). Nothing is retried: the next call asks Redis again, so
/// decisions go back to Redis by themselves when it returns.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `remote` and `call` are NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cg_remote_outage(
    remote: *const cg_remote,
    call: *const cg_remote_call,
    local_now_ns: u64,
    out: *mut cg_limiter_decision,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let remote = unsafe { object(remote) }?;
        // SAFETY: NULL or live, by the caller's contract.
        let call = unsafe { object(call) }?;
        let out = output(out)?;
        let now_ns = remote.time.resolve(local_now_ns);
        let decided = remote.remote.outage(&call.call, now_ns);
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, (&decided.decision).into()) };
        Ok(())
    })
}

/// Renders the rate-limit headers of `decision` (made by `remote`, by Redis or the outage
/// policy) into `buf`, exactly as `cg_limiter_render_headers` does for a `cg_limiter` of the
/// same quotas and names: the same bytes as the in-process limiter sends.
///
/// # Errors
/// As `cg_limiter_render_headers`.
///
/// # Safety
/// `remote` is NULL or live; `decision` is NULL or readable; `buf` is NULL or valid for
/// writing `buf_len` bytes; `len` is NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cg_remote_render_headers(
    remote: *const cg_remote,
    decision: *const cg_limiter_decision,
    style: u32,
    now_unix_s: u64,
    buf: *mut c_char,
    buf_len: usize,
    len: *mut usize,
) -> cg_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let remote = unsafe { object(remote) }?;
        let len = output(len)?;
        let style = self::style(style, now_unix_s)?;
        // SAFETY: NULL or `buf_len` writable bytes, by the caller's contract.
        let out = unsafe { buffer(buf.cast::<u8>(), buf_len) }?;
        // SAFETY: NULL or a readable decision, by the caller's contract.
        unsafe {
            with_policy_headers(remote.remote.local(), decision, |policies| {
                render_lines(style, policies, out, len)
            })
        }
    })
}
