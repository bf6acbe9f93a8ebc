//! [`Decision`]: what a limiter answered, on allow and deny alike.

/// A `retry_after_ns` of `NEVER` means the request can never be admitted: its cost exceeds the
/// quota's burst (capacity), so no amount of waiting helps, or the wait would end after the
/// last representable time (`u64::MAX` ns on the clock's time line, about 584 years).
pub const NEVER: u64 = u64::MAX;

/// The outcome of one operation on a limiter.
///
/// Every field is filled on allow and on deny, so a caller can render rate-limit headers from
/// either. Times are relative to the `now` of the operation, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a Decision says whether the request was admitted"]
pub struct Decision {
    /// Whether the cost was admitted (for `force`: whether it fitted without creating debt).
    pub allowed: bool,
    /// The quota's burst: the most cost that can ever be admitted at once.
    pub limit: u64,
    /// Cost units that could be admitted right now, after this operation (0 while in debt).
    pub remaining: u64,
    /// 0 when allowed. When denied, the exact wait after which the same request is admitted if
    /// nothing else consumes in between, rounded up to the nanosecond: retrying at
    /// `now + retry_after_ns` succeeds and one nanosecond earlier does not. [`NEVER`] when the
    /// cost exceeds the burst.
    pub retry_after_ns: u64,
    /// Nanoseconds until the bucket is full again (rounded up); 0 when it is full now.
    pub reset_after_ns: u64,
}

impl Decision {
    /// Whether the request can never be admitted (`retry_after_ns == NEVER`).
    pub const fn is_never(&self) -> bool {
        self.retry_after_ns == NEVER
    }
}
