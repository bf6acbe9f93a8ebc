//! [`cg_decision`]: what a limiter answered.

use cellgate::Decision;

/// Pass as a token bucket's `initial_tokens` for a full bucket.
pub const CG_FULL: u64 = u64::MAX;

/// A `retry_after_ns` (or `reset_after_ns`) of `CG_NEVER` means never: the cost exceeds the
/// burst, so no wait helps (or the wait would end after the last representable time).
pub const CG_NEVER: u64 = u64::MAX;

/// The outcome of one operation on a limiter, filled on allow and deny alike, so headers can
/// be rendered from either. Times are relative to the operation's `now`, in nanoseconds.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct cg_decision {
    /// Whether the cost was admitted (for a force: whether it fitted without debt; for a
    /// refund: whether the bucket is out of debt afterwards).
    pub allowed: bool,
    /// The quota's burst: the most cost that can ever be admitted at once.
    pub limit: u64,
    /// Cost units that could be admitted right now, after this operation (0 while in debt).
    pub remaining: u64,
    /// 0 when allowed. When denied, the exact wait (rounded up to the nanosecond) after which
    /// the same request is admitted if nothing else consumes in between; `CG_NEVER` when the
    /// cost exceeds the burst.
    pub retry_after_ns: u64,
    /// Nanoseconds until the bucket is full again (rounded up); 0 when it is full now.
    pub reset_after_ns: u64,
}

impl From<Decision> for cg_decision {
    #[inline(always)]
    fn from(decision: Decision) -> Self {
        Self {
            allowed: decision.allowed,
            limit: decision.limit,
            remaining: decision.remaining,
            retry_after_ns: decision.retry_after_ns,
            reset_after_ns: decision.reset_after_ns,
        }
    }
}

impl From<cg_decision> for Decision {
    fn from(decision: cg_decision) -> Self {
        Self {
            allowed: decision.allowed,
            limit: decision.limit,
            remaining: decision.remaining,
            retry_after_ns: decision.retry_after_ns,
            reset_after_ns: decision.reset_after_ns,
        }
    }
}
