//! [`SharedError`]: why a shared table could not be opened.

use std::fmt;
use std::io;

/// Why [`SharedTable::open`](crate::SharedTable::open) (or the configuration it was given) was
/// refused. Every variant names what was at fault; none leaves a partly opened table behind.
#[derive(Debug)]
#[non_exhaustive]
pub enum SharedError {
    /// Shared mode needs 64- and 128-bit atomics that are lock-free in hardware (x86_64 with
    /// `cmpxchg16b`, aarch64); this CPU or target would use portable-atomic's lock-based
    /// fallback, whose locks live in each process and protect nothing across processes.
    Unsupported {
        /// The atomic that is not lock-free: `"AtomicU64"` or `"AtomicU128"`.
        atomic: &'static str,
    },
    /// The configuration itself is invalid (no quota, too many, bad `max_keys`, interval
    /// refill with several quotas).
    Config {
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// A system call on the file failed (`open`, `fstat`, `mmap`, ...).
    Io {
        /// The operation that failed.
        operation: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The path names something other than a regular file (a directory, a device, a symbolic
    /// link: links are never followed).
    NotRegularFile,
    /// The file belongs to another user, and
    /// [`OpenOptions::allow_other_owner`](crate::OpenOptions::allow_other_owner) was not set.
    /// Whoever can write the file can reset anyone's limit.
    Owner {
        /// The file's owner.
        file_uid: u32,
        /// This process's effective user.
        our_uid: u32,
    },
    /// The file's permissions grant more than this process would create it with: any access
    /// for others, or group access when [`Access::Owner`](crate::Access::Owner) was asked.
    Permissions {
        /// The file's permission bits.
        file_mode: u32,
        /// The most this process accepts.
        allowed_mode: u32,
    },
    /// The file is shorter than its header, or than the header says it must be: truncated,
    /// or still being written by something that is not cellgate.
    Truncated {
        /// The file's length in bytes.
        file_bytes: u64,
        /// The length it needs.
        expected_bytes: u64,
    },
    /// The file does not start with the shared table's magic: not a cellgate table.
    NotATable,
    /// The header's checksum does not match its contents: the file was damaged or written
    /// by something else.
    Corrupt,
    /// The file was made by another version of the layout (`"mapping_version"`, core's
    /// `"table_layout_version"`, `"group_bytes"`, `"probe_window"`); a table is never
    /// reinterpreted. Remove it (after stopping every process using it) to start afresh.
    Version {
        /// The header field that differs.
        field: &'static str,
        /// Its value in the file.
        file: u64,
        /// This build's value.
        ours: u64,
    },
    /// The file holds a table of another configuration. `field` names the first difference:
    /// `"quota_count"`, `"dimensions"`, `"refill"`, `"max_keys"`, `"slot_count"`,
    /// `"claim_timeout_ns"`, or one of a quota's `"rate_cost"`, `"period_ns"`, `"burst_cost"`,
    /// `"dimension"` (with `quota` its index). A table is never resized: a different
    /// `max_keys` needs the file removed first.
    ConfigMismatch {
        /// The configuration field that differs.
        field: &'static str,
        /// The index of the quota it belongs to, for a quota's field.
        quota: Option<usize>,
        /// Its value in the file.
        file: u64,
        /// The value this process asked for.
        ours: u64,
    },
    /// The table holds another kind of limiter than asked for: [`SharedTable::limiter`]
    /// needs a single-quota table.
    ///
    /// [`SharedTable::limiter`]: crate::SharedTable::limiter
    WrongKind {
        /// How many quotas the table has.
        quotas: usize,
    },
    /// Core's [`Limiter`](cellgate::Limiter) configuration rules refused the quotas or
    /// options given to [`SharedTable::open_limiter`](crate::SharedTable::open_limiter)
    /// (checked before the file is touched).
    Limiter(cellgate::ConfigError),
    /// Core refused to build the limiter or policy over the mapped slots.
    Core {
        /// Core's reason, in words.
        reason: String,
    },
}

impl SharedError {
    pub(crate) fn io(operation: &'static str, source: impl Into<io::Error>) -> Self {
        Self::Io {
            operation,
            source: source.into(),
        }
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { atomic } => write!(
                f,
                "shared tables need lock-free {atomic} in hardware (x86_64 with cmpxchg16b, \
                 aarch64); this CPU would use a process-local lock"
            ),
            Self::Config { reason } => write!(f, "invalid shared table configuration: {reason}"),
            Self::Io { operation, source } => write!(f, "{operation} failed: {source}"),
            Self::NotRegularFile => f.write_str(
                "the path is not a regular file (directories, devices and symbolic links are refused)",
            ),
            Self::Owner { file_uid, our_uid } => write!(
                f,
                "the file belongs to uid {file_uid}, not to this process's uid {our_uid} \
                 (set allow_other_owner to attach anyway: whoever can write it can reset any limit)"
            ),
            Self::Permissions {
                file_mode,
                allowed_mode,
            } => write!(
                f,
                "the file's mode {file_mode:04o} grants more than {allowed_mode:04o} \
                 (never world-accessible; group access only with Access::Group)"
            ),
            Self::Truncated {
                file_bytes,
                expected_bytes,
            } => write!(
                f,
                "the file is {file_bytes} bytes long, a shared table of its header needs {expected_bytes}"
            ),
            Self::NotATable => f.write_str("the file is not a cellgate shared table (bad magic)"),
            Self::Corrupt => f.write_str("the shared table's header fails its checksum"),
            Self::Version { field, file, ours } => write!(
                f,
                "the shared table was made by another layout: {field} is {file} in the file, \
                 {ours} in this build (remove the file to start afresh)"
            ),
            Self::ConfigMismatch {
                field,
                quota,
                file,
                ours,
            } => {
                match quota {
                    Some(index) => write!(f, "quota {index}'s {field}")?,
                    None => f.write_str(field)?,
                }
                write!(
                    f,
                    " differs: the file has {file}, this process asked for {ours}"
                )?;
                if matches!(*field, "max_keys" | "slot_count") {
                    f.write_str(
                        " (a shared table cannot be resized: stop every process using it, \
                         remove the file with SharedTable::remove, and start again)",
                    )?;
                }
                Ok(())
            }
            Self::WrongKind { quotas } => write!(
                f,
                "the shared table holds {quotas} quotas; a keyed limiter needs exactly 1 (open it as a policy)"
            ),
            Self::Limiter(error) => write!(f, "invalid limiter configuration: {error}"),
            Self::Core { reason } => write!(f, "core refused the shared slots: {reason}"),
        }
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Limiter(error) => Some(error),
            _ => None,
        }
    }
}
