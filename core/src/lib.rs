//! # cellgate
//!
//! Exact, lock-free rate limiting: GCRA and token bucket cells over integer time, with an
//! injectable clock. `#![no_std]`; the `alloc` and `std` features add helpers, never remove them, and
//! `quanta` adds `QuantaClock`, a clock over the CPU's time-stamp counter.
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use cellgate::{Gcra, ManualClock, Quota, NS_PER_SECOND};
//!
//! let clock = ManualClock::new(0);
//! let limiter = Gcra::with_clock("3/second".parse::<Quota>().unwrap(), clock.clone());
//! assert!(limiter.check(3).allowed); // the whole burst at once
//! let denied = limiter.check(1);
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after_ns, NS_PER_SECOND / 3 + 1); // rounded up: 333_333_334 ns
//! clock.advance_ns(denied.retry_after_ns);
//! assert!(limiter.check(1).allowed);
//! # }
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::float_arithmetic,
        clippy::as_conversions
    )
)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// Examples are copied: they must compile without a warning (`unused_must_use` included).
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod cell;
mod client_key;
mod clock;
mod config;
mod decision;
mod divide;
mod headers;
mod keyed;
#[cfg(feature = "alloc")]
mod limiter;
mod parse;
mod policy;
mod quota;
#[cfg(feature = "alloc")]
pub mod remote;
mod rule;
mod sync;

pub use cell::{Gcra, TokenBucket, TokenBucketBuilder};
pub use client_key::{ClientKey, ClientKeyConfig, ClientKeyError, PrefixLenError};
#[cfg(feature = "alloc")]
pub use clock::ManualClock;
#[cfg(feature = "std")]
pub use clock::MonotonicClock;
#[cfg(feature = "quanta")]
pub use clock::QuantaClock;
pub use clock::{Clock, NoClock};
pub use config::{
    check_max_keys, check_names, default_quota_name, resolve_costs, resolve_settle_costs,
    ConfigError, QuotaName, DEFAULT_COST, DEFAULT_MAX_KEYS, MAX_MAX_KEYS,
};
pub use decision::{Decision, NEVER};
pub use headers::{
    combined_retry_after_ns, max_header_bytes, render_429_body, render_dimension_headers,
    render_headers, retry_after_seconds, DimensionHeaders, DimensionStyle, FieldOrder, HeaderError,
    HeaderIter, HeaderStyle, NamedStyle, PolicyHeader, RenderedHeaders, ResetFormat, StyleName,
    MAX_429_BODY_BYTES, MAX_DIMENSION_HEADERS, MAX_HEADERS,
};
pub use keyed::{
    group_count_for, slot_count_for, ClaimRecovery, KeyHash, KeyedDecision, KeyedLimiter,
    KeyedStats, OnFull, Reason, Seed, SlotGroup, TableError, TableFull, TableHeader, GROUP_SLOTS,
    PROBE_WINDOW, TABLE_LAYOUT_VERSION,
};
#[cfg(feature = "alloc")]
pub use limiter::{
    Limiter, LimiterDecision, LimiterOptions, LimiterQuota, LimiterReservation, LimiterReserved,
};
pub use parse::{parse_quotas, ParseError, ParseErrorKind, QuotaList};
#[cfg(feature = "alloc")]
pub use policy::KeyedPolicy;
pub use policy::{
    Policy, PolicyDecision, PolicyEntry, PolicyError, Reservation, Reserved, MAX_POLICY_QUOTAS,
};
pub use quota::{
    Quota, QuotaError, MAX_CAPACITY_TICKS, NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND,
};
#[cfg(feature = "alloc")]
pub use remote::{
    OutagePolicy, RemoteCall, RemoteDecided, RemoteError, RemoteLimiter, RemoteOptions,
    RemoteReservation, ReplyError, SettlePlan, SCRIPT, SCRIPT_SHA1_HEX,
};
pub use rule::{CellState, Op, Outcome, Refill, Rule};

/// The Rust examples of the top-level `README.md`, run as doctests exactly as written (with
/// warnings denied, like every doctest here), so the README cannot teach code that does not
/// build or that warns.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
