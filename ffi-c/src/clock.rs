//! Time: `CG_NOW`, the built-in monotonic clock (the host's `CLOCK_MONOTONIC`, read by
//! `cellgate_host::host_now_ns`, the one clock of every binding), and manual clocks for tests.

use crate::boundary::{free_handle, guard, into_handle, object, output, write};
use crate::status::cg_status;
use cellgate::{Clock, ManualClock};
use cellgate_host::host_now_ns;

/// Pass as `now_ns` to read the object's clock instead of giving the time: the built-in
/// monotonic clock, or the manual clock the object was built with.
///
/// It is `UINT64_MAX`, so that time itself cannot be passed explicitly; a manual clock set to
/// `UINT64_MAX` reaches it (584 years after the clock's origin, so only tests care).
pub const CG_NOW: u64 = u64::MAX;

/// A manual clock: time that moves only when told to, for tests. Build limiters and policies
/// with it, pass `CG_NOW`, and move time with `cg_clock_advance` / `cg_clock_set`.
///
/// Every object built with a clock shares it (the clock's time, not a copy), and keeps it
/// alive: the clock may be freed before the objects built with it. Safe to use from any
/// number of threads at once.
#[allow(non_camel_case_types)]
pub struct cg_clock {
    clock: ManualClock,
}

/// Where an object reads the time when it is given `CG_NOW`.
#[derive(Clone, Debug)]
pub(crate) enum TimeSource {
    /// The host's monotonic clock (`CLOCK_MONOTONIC`, `cellgate_host::host_now_ns`): the same
    /// time line in every process on the host, as a shared table needs.
    Monotonic,
    /// A manual clock shared with a `cg_clock`.
    Manual(ManualClock),
}

impl TimeSource {
    /// The time source for an optional `cg_clock` pointer: NULL is the monotonic clock.
    ///
    /// # Safety
    /// `clock` is NULL or a live `cg_clock`.
    pub(crate) unsafe fn from_ptr(clock: *const cg_clock) -> Self {
        // SAFETY: the caller guarantees NULL or a live clock; `as_ref` maps NULL to None.
        match unsafe { clock.as_ref() } {
            None => Self::Monotonic,
            Some(clock) => Self::Manual(clock.clock.clone()),
        }
    }

    /// `now_ns` itself, or this source's time when `now_ns` is [`CG_NOW`].
    #[inline(always)]
    pub(crate) fn resolve(&self, now_ns: u64) -> u64 {
        if now_ns != CG_NOW {
            return now_ns;
        }
        self.now_ns()
    }

    #[cold]
    fn now_ns(&self) -> u64 {
        match self {
            Self::Monotonic => host_now_ns(),
            Self::Manual(clock) => clock.now_ns(),
        }
    }
}

/// Creates a manual clock reading `start_ns` until moved; `*out` receives it (free it with
/// `cg_clock_free`).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn cg_clock_new(start_ns: u64, out: *mut *mut cg_clock) -> cg_status {
    guard(|| {
        let out = output(out)?;
        let clock = into_handle(cg_clock {
            clock: ManualClock::new(start_ns),
        });
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { write(out, clock) };
        Ok(())
    })
}

/// Frees a clock made by `cg_clock_new`. Objects built with it keep working and keep its
/// time (they share it). NULL does nothing.
///
/// # Safety
/// `clock` is NULL or a clock from `cg_clock_new` not yet freed, that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn cg_clock_free(clock: *mut cg_clock) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { free_handle(clock) }
}

/// Moves the clock forward by `delta_ns`, saturating at `UINT64_MAX`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `clock` is NULL.
///
/// # Safety
/// `clock` is NULL or a live clock.
#[no_mangle]
pub unsafe extern "C" fn cg_clock_advance(clock: *const cg_clock, delta_ns: u64) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live clock, by the caller's contract.
        unsafe { object(clock) }?.clock.advance_ns(delta_ns);
        Ok(())
    })
}

/// Sets the clock's time; it may move backwards (limiters treat that as no time passing).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `clock` is NULL.
///
/// # Safety
/// `clock` is NULL or a live clock.
#[no_mangle]
pub unsafe extern "C" fn cg_clock_set(clock: *const cg_clock, now_ns: u64) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live clock, by the caller's contract.
        unsafe { object(clock) }?.clock.set_ns(now_ns);
        Ok(())
    })
}

/// Reads the clock's time into `*out_ns`.
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `clock` or `out_ns` is NULL.
///
/// # Safety
/// `clock` is NULL or a live clock; `out_ns` is NULL or valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cg_clock_now(clock: *const cg_clock, out_ns: *mut u64) -> cg_status {
    guard(|| {
        // SAFETY: NULL or a live clock, by the caller's contract.
        let clock = unsafe { object(clock) }?;
        let out = output(out_ns)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, clock.clock.now_ns()) };
        Ok(())
    })
}

/// Reads the built-in monotonic clock (what `CG_NOW` reads for objects built without a
/// clock) into `*out_ns`: `CLOCK_MONOTONIC` in nanoseconds (since boot on Linux), the same
/// time line in every process on the host, so times may be passed between processes that
/// share a table (`cg_limiter_open_shared`).
///
/// # Errors
/// `CG_STATUS_NULL_ARGUMENT` when `out_ns` is NULL.
///
/// # Safety
/// `out_ns` is NULL or valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cg_monotonic_now(out_ns: *mut u64) -> cg_status {
    guard(|| {
        let out = output(out_ns)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write(out, host_now_ns()) };
        Ok(())
    })
}
