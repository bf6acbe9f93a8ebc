//! The atomics the limiters use, switched for loom's model checker under `--cfg loom`.
//!
//! Outside loom this is `portable_atomic::AtomicU128`: lock-free via `cmpxchg16b` on x86_64 and
//! `ldxp`/`stxp` (or LSE `casp`) on aarch64; on targets without a native 128-bit CAS,
//! portable-atomic falls back to a lock (see the README's "Embedded" section).

#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicU128, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU64;
#[cfg(loom)]
pub(crate) use loom_shim::{AtomicU128, Ordering};

/// Waits a moment for another thread's progress (an insert of the same key settling).
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// loom has no 128-bit atomic. This one makes every operation a single step of loom's model
/// (through a loom mutex), so the checker explores every interleaving of loads and
/// compare-exchanges, which is what the CAS loops' correctness rests on.
#[cfg(loom)]
mod loom_shim {
    pub(crate) use core::sync::atomic::Ordering;
    use loom::sync::Mutex;

    #[derive(Debug)]
    pub(crate) struct AtomicU128(Mutex<u128>);

    impl AtomicU128 {
        pub(crate) fn new(value: u128) -> Self {
            Self(Mutex::new(value))
        }

        fn lock(&self) -> loom::sync::MutexGuard<'_, u128> {
            match self.0.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }

        pub(crate) fn load(&self, _order: Ordering) -> u128 {
            *self.lock()
        }

        pub(crate) fn store(&self, value: u128, _order: Ordering) {
            *self.lock() = value;
        }

        pub(crate) fn compare_exchange_weak(
            &self,
            current: u128,
            new: u128,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u128, u128> {
            self.compare_exchange(current, new, success, failure)
        }

        pub(crate) fn compare_exchange(
            &self,
            current: u128,
            new: u128,
            _success: Ordering,
            _failure: Ordering,
        ) -> Result<u128, u128> {
            let mut guard = self.lock();
            if *guard == current {
                *guard = new;
                Ok(current)
            } else {
                Err(*guard)
            }
        }
    }
}
