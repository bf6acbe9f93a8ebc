//! # cellgate-host
//!
//! Host-wide rate limits: cellgate's keyed tables in a file mapping (typically under
//! `/dev/shm`) that every worker process on the host uses at once, in any runtime, at
//! in-process speed: no lock, no system call, no message per check.
//!
//! ```
//! use cellgate::{Quota, Refill};
//! use cellgate_host::{OpenOptions, SharedTable, TableConfig};
//! # let dir = std::env::temp_dir().join(format!("cellgate-doc-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("api");
//! let config = TableConfig::limiter(Quota::per_minute(20).unwrap(), Refill::Greedy, 100_000).unwrap();
//! let limiter = SharedTable::open(&path, &config, &OpenOptions::new()).unwrap().limiter().unwrap();
//! // In every worker process: 20 per minute per client, for the whole host.
//! assert!(limiter.check(b"203.0.113.9", 1).unwrap().allowed);
//! # cellgate_host::SharedTable::remove(&path).unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! Core's [`Limiter`](cellgate::Limiter), the product every binding wraps, opens host-wide
//! with [`SharedTable::open_limiter`], and [`in_process`] builds the in-process one with the
//! same type, `Limiter<TableSlots>`.
//!
//! # What is shared, and how
//!
//! The file holds a header (magic, [`MAPPING_VERSION`], core's
//! [`TABLE_LAYOUT_VERSION`](cellgate::TABLE_LAYOUT_VERSION), the random hash seed, every
//! field of the [`TableConfig`], a checksum) and then one table of core [`SlotGroup`](cellgate::SlotGroup)s
//! per quota. The limiter is core's [`KeyedLimiter`](cellgate::KeyedLimiter) (or
//! [`KeyedPolicy`](cellgate::KeyedPolicy) for several quotas and dimensions, with
//! reserve/settle) over [`TableSlots`]: every decision is the in-process one, made with
//! compare-exchanges on the shared slots. Times come from [`HostClock`] (`CLOCK_MONOTONIC`),
//! one time line for every process.
//!
//! # Platforms
//!
//! Shared tables are built on Unix (tested on Linux x86_64; the file calls are `rustix`'s).
//! Elsewhere the crate holds only [`HostClock`], which there falls back to core's
//! process-local `MonotonicClock`.
//!
//! # Only where it is safe
//!
//! [`SharedTable::open`] refuses ([`SharedError::Unsupported`]) unless 64- and 128-bit atomics
//! are lock-free in hardware: portable-atomic's fallback lock lives in each process and would
//! protect nothing across processes.
//!
//! # Crash safety
//!
//! No lock is ever held across processes: a process killed at any instruction leaves every
//! slot either consistent or *claimed* (an insert of a new key cut short). Each claim is
//! stamped with [`HostClock`]; any process meeting one older than [`CLAIM_TIMEOUT_NS`] (1 s)
//! empties that slot ([`cellgate::ClaimRecovery`]), which admits nothing extra: every key such a
//! claim touched was a full bucket, as an absent key is. Until then, a check of one of the
//! (at most two) keys of that slot waits, at most the timeout.
//!
//! # Permissions and security
//!
//! Files are created 0600 ([`Access::Owner`]) or 0660 ([`Access::Group`]), never
//! world-accessible; attaching to a file owned by another user, or granting more than the
//! access asked for, is refused ([`OpenOptions::allow_other_owner`] to accept another owner).
//! **Whoever can write the file can reset anyone's limit** (or exhaust it, or crash the
//! processes mapping it by truncating it), and whoever can read it learns the hash seed.
//!
//! # Lifecycle
//!
//! The table persists while the file exists, across restarts of every process; nothing
//! removes it but [`SharedTable::remove`] (or a reboot, under `/dev/shm`). It is never resized:
//! another `max_keys` is a [`SharedError::ConfigMismatch`] that says so.
#![deny(missing_docs)]
// Examples are copied: they must compile without a warning.
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod clock;
#[cfg(unix)]
mod error;
#[cfg(unix)]
mod layout;
#[cfg(unix)]
mod mapping;
mod slots;
#[cfg(unix)]
mod table;

pub use clock::{host_now_ns, HostClock};
#[cfg(unix)]
pub use error::SharedError;
#[cfg(unix)]
pub use layout::{TableConfig, CLAIM_TIMEOUT_NS, HEADER_BYTES, MAPPING_VERSION};
pub use slots::{in_process, in_process_limiter, in_process_policy, TableSlots};
#[cfg(unix)]
pub use table::{Access, OpenOptions, SharedTable};

/// The Rust examples of `host/README.md`, run as doctests exactly as written (they use
/// `/dev/shm`, so on Linux only).
#[cfg(all(doctest, target_os = "linux"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
