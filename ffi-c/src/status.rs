//! [`cg_status`]: what every function returns, with stable numbers, and its messages.

use cellgate::{ClientKeyError, ConfigError, HeaderError, ParseErrorKind, PolicyError, QuotaError};
use core::ffi::{c_char, c_int};

/// What a function did. Every function of the library returns one (except the `_free`
/// functions, which cannot fail, and `cg_status_message` and `cg_version`, which return text).
///
/// The numbers are stable: a code keeps its number and meaning forever, and a number is never
/// reused for another meaning, even if its code is retired. New codes get new numbers.
/// `cg_status_message` turns any code into text.
///
/// Unless a function says otherwise, a function that does not return `CG_STATUS_OK` has
/// changed no state and written none of its outputs.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum cg_status {
    /// Success.
    Ok = 0,
    /// A pointer argument that must not be NULL was NULL (or a byte pointer was NULL with a
    /// non-zero length).
    NullArgument = 1,
    /// An argument is out of its range: an unknown constant (refill, header style), a length
    /// above `PTRDIFF_MAX`, or a table size whose bytes overflow `PTRDIFF_MAX`.
    InvalidArgument = 2,
    /// Text that must be UTF-8 (a rate string) is not.
    InvalidUtf8 = 3,
    /// A rate string is malformed; the offset of the problem is reported where the function
    /// takes an `error_offset` pointer.
    ParseError = 4,
    /// A quota's rate (cost per period) is zero.
    ZeroRate = 5,
    /// A quota's period is zero nanoseconds.
    ZeroPeriod = 6,
    /// A quota's burst is zero.
    ZeroBurst = 7,
    /// `burst × period / gcd(rate, period)` is too large to represent exactly: lower the burst.
    CapacityOverflow = 8,
    /// A period overflows 64-bit nanoseconds (about 584 years).
    PeriodOverflow = 9,
    /// A token bucket's initial fill exceeds its burst.
    InitialFillAboveBurst = 10,
    /// A new key could not be placed in a keyed limiter's or policy's table: every slot in
    /// both its windows holds a live key. No live key is ever evicted; answer 429 with a
    /// `Retry-After`. (A `cg_limiter` never returns it: a full table is one of its decisions.)
    TableFull = 11,
    /// The output buffer is too small; the exact length needed is reported.
    BufferTooSmall = 12,
    /// A policy entry's name holds a byte outside printable ASCII (0x20 to 0x7E).
    InvalidName = 13,
    /// A policy needs at least one entry (or headers at least one policy).
    EmptyPolicy = 14,
    /// A policy holds at most `CG_MAX_POLICY_QUOTAS` entries.
    TooManyQuotas = 15,
    /// A policy entry's dimension is `CG_MAX_POLICY_QUOTAS` or more, or the dimensions used
    /// skip a number (they must be 0 to n-1, each used by some entry).
    InvalidDimension = 16,
    /// The costs do not give exactly one cost per dimension of the policy.
    CostCount = 17,
    /// The reservation was made by another policy.
    WrongReservation = 18,
    /// The reservation was already settled.
    AlreadySettled = 19,
    /// The text is not an IP address (with optional brackets, port and zone).
    InvalidAddress = 20,
    /// An IPv6 prefix length outside 1 to 128 (0 means the default, /56).
    InvalidPrefixLength = 21,
    /// A bug in the library: a Rust panic was caught at the boundary. The operation may have
    /// been partly applied. Please report it.
    Panic = 22,
    /// The memory a table needs could not be allocated.
    OutOfMemory = 23,
    /// A policy entry's name is empty (NULL with length 0 included): headers need a name.
    EmptyName = 24,
    /// Two policy entries have the same name: their header items would be ambiguous.
    DuplicateName = 25,
    /// `max_keys` is outside 1 to `CG_MAX_MAX_KEYS`, as in every runtime.
    InvalidMaxKeys = 26,
    /// A limiter needs at least one quota (`cg_limiter_new` with a count of 0).
    NoQuotas = 27,
    /// No quota of a limiter is charged in some dimension below the highest one used:
    /// dimensions are numbered from 0 without gaps.
    DimensionGap = 28,
    /// `CG_REFILL_INTERVAL` applies to a single quota; several quotas refill greedily.
    RefillNeedsOneQuota = 29,
    /// The reservation was made by another limiter (`cg_limiter_settle`).
    ForeignReservation = 30,
    /// A limiter of several dimensions was given no cost (`CG_COST_DEFAULT`, or no costs at
    /// all) for some dimension: each needs one, 0 included.
    MissingCost = 31,
    /// Shared tables need 64- and 128-bit atomics that are lock-free in hardware (x86_64 with
    /// `cmpxchg16b`, aarch64), or a Unix system; this one would use a process-local lock,
    /// which protects nothing across processes (`cg_limiter_open_shared`).
    SharedUnsupported = 32,
    /// The shared table's file holds another configuration (a quota's rate, period, burst or
    /// dimension, the refill, `max_keys`, the quota count): a table is never reinterpreted or
    /// resized. Stop every process using it, `cg_shared_remove` it, and start again.
    SharedConfigMismatch = 33,
    /// The path is not a cellgate shared table: not a regular file (symbolic links are
    /// refused), truncated, another file's contents, or a header failing its checksum.
    SharedBadFile = 34,
    /// The shared table's file was made by another layout version of the library: remove it
    /// (with every process using it stopped) to start afresh.
    SharedVersion = 35,
    /// The shared table's file belongs to another user (see `allow_other_owner`), grants more
    /// than the access asked for, or the system refused access to it.
    SharedPermission = 36,
    /// A system call on the shared table's file failed (a missing directory, no space left
    /// for the table, ...).
    SharedIo = 37,
    /// A `cg_remote`'s prefix holds `{` or `}`, which would make it the Redis Cluster hash tag
    /// of every key (one slot for the whole limiter).
    PrefixBrace = 38,
    /// A `cg_remote`'s `expiry_grace_ms` is above 2^40.
    ExpiryGrace = 39,
    /// The Redis script's reply is not this script's, or disagrees with core
    /// (`cg_remote_decode`): treat it as a store error (`cg_remote_outage`) and report it.
    BadReply = 40,
}

impl cg_status {
    /// The message of this code: static, NUL-terminated.
    const fn message(self) -> &'static [u8] {
        match self {
            Self::Ok => b"ok\0",
            Self::NullArgument => b"a required pointer argument was NULL\0",
            Self::InvalidArgument => b"an argument is out of range\0",
            Self::InvalidUtf8 => b"text is not valid UTF-8\0",
            Self::ParseError => b"malformed rate string\0",
            Self::ZeroRate => b"rate must be at least 1 cost unit per period\0",
            Self::ZeroPeriod => b"period must be at least 1 nanosecond\0",
            Self::ZeroBurst => b"burst must be at least 1 cost unit\0",
            Self::CapacityOverflow => {
                b"burst * period / gcd(rate, period) overflows the exact representation; lower the burst\0"
            }
            Self::PeriodOverflow => b"period overflows 64-bit nanoseconds (about 584 years)\0",
            Self::InitialFillAboveBurst => b"initial fill must not exceed the burst\0",
            Self::TableFull => b"the keyed table has no room for a new key\0",
            Self::BufferTooSmall => b"output buffer too small\0",
            Self::InvalidName => {
                b"policy name holds a byte outside printable ASCII (0x20..0x7E)\0"
            }
            Self::EmptyPolicy => b"a policy needs at least one quota\0",
            Self::TooManyQuotas => b"a policy holds at most CG_MAX_POLICY_QUOTAS quotas\0",
            Self::InvalidDimension => {
                b"policy dimensions must be 0..n-1, each used, below CG_MAX_POLICY_QUOTAS\0"
            }
            Self::CostCount => b"costs must give exactly one cost per dimension\0",
            Self::WrongReservation => b"the reservation was made by another policy\0",
            Self::AlreadySettled => b"the reservation was already settled\0",
            Self::InvalidAddress => b"not an IP address\0",
            Self::InvalidPrefixLength => {
                b"IPv6 prefix length must be 1..128 (or 0 for the default)\0"
            }
            Self::Panic => b"internal error (a panic was caught); please report it\0",
            Self::OutOfMemory => b"out of memory\0",
            // The texts of core's ConfigError without the positions (a static text cannot
            // hold them); the test below keeps them in step.
            Self::EmptyName => b"a name is empty\0",
            Self::DuplicateName => b"a name repeats an earlier name: names must be unique\0",
            Self::InvalidMaxKeys => b"max_keys must be in 1..=134217728\0",
            Self::NoQuotas => b"a limiter needs at least one quota\0",
            Self::DimensionGap => {
                b"no quota is charged in a dimension: dimensions are numbered from 0 without gaps\0"
            }
            Self::RefillNeedsOneQuota => {
                b"interval refill applies to a single quota; several quotas refill greedily\0"
            }
            Self::ForeignReservation => b"the reservation was made by another limiter\0",
            Self::MissingCost => {
                b"a dimension has no cost: a policy of several dimensions needs one for each (0 is allowed)\0"
            }
            Self::SharedUnsupported => {
                b"shared tables need lock-free 64- and 128-bit atomics in hardware (x86_64 with cmpxchg16b, aarch64) on Unix\0"
            }
            Self::SharedConfigMismatch => {
                b"the shared table holds another configuration (it is never resized: remove the file with every process stopped)\0"
            }
            Self::SharedBadFile => {
                b"the path is not a cellgate shared table (not a regular file, truncated, or damaged)\0"
            }
            Self::SharedVersion => {
                b"the shared table was made by another layout version (remove the file with every process stopped)\0"
            }
            Self::SharedPermission => {
                b"the shared table's file belongs to another user, grants too much access, or access was denied\0"
            }
            Self::SharedIo => b"a system call on the shared table's file failed\0",
            Self::PrefixBrace => {
                b"prefix must not hold '{' or '}': the user key is the Cluster hash tag\0"
            }
            Self::ExpiryGrace => b"expiry_grace_ms must be at most 1099511627776\0",
            Self::BadReply => {
                b"the Redis script's reply is not this script's or disagrees with core\0"
            }
        }
    }

    /// Every code, in number order (for the tests and `cg_status_message`).
    pub(crate) const ALL: [Self; 41] = [
        Self::Ok,
        Self::NullArgument,
        Self::InvalidArgument,
        Self::InvalidUtf8,
        Self::ParseError,
        Self::ZeroRate,
        Self::ZeroPeriod,
        Self::ZeroBurst,
        Self::CapacityOverflow,
        Self::PeriodOverflow,
        Self::InitialFillAboveBurst,
        Self::TableFull,
        Self::BufferTooSmall,
        Self::InvalidName,
        Self::EmptyPolicy,
        Self::TooManyQuotas,
        Self::InvalidDimension,
        Self::CostCount,
        Self::WrongReservation,
        Self::AlreadySettled,
        Self::InvalidAddress,
        Self::InvalidPrefixLength,
        Self::Panic,
        Self::OutOfMemory,
        Self::EmptyName,
        Self::DuplicateName,
        Self::InvalidMaxKeys,
        Self::NoQuotas,
        Self::DimensionGap,
        Self::RefillNeedsOneQuota,
        Self::ForeignReservation,
        Self::MissingCost,
        Self::SharedUnsupported,
        Self::SharedConfigMismatch,
        Self::SharedBadFile,
        Self::SharedVersion,
        Self::SharedPermission,
        Self::SharedIo,
        Self::PrefixBrace,
        Self::ExpiryGrace,
        Self::BadReply,
    ];
}

/// The message for any status code: a static, NUL-terminated English sentence that the caller
/// must not free. An unknown code (from a newer library, or not a status at all) gives
/// "unknown status code". Never NULL; thread-safe.
#[no_mangle]
pub extern "C" fn cg_status_message(status: c_int) -> *const c_char {
    let message: &'static [u8] = usize::try_from(status)
        .ok()
        .and_then(|index| cg_status::ALL.get(index))
        .map_or(b"unknown status code\0", |status| status.message());
    message.as_ptr().cast()
}

impl From<QuotaError> for cg_status {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::ZeroRate => Self::ZeroRate,
            QuotaError::ZeroPeriod => Self::ZeroPeriod,
            QuotaError::ZeroBurst => Self::ZeroBurst,
            QuotaError::CapacityOverflow => Self::CapacityOverflow,
            QuotaError::PeriodOverflow => Self::PeriodOverflow,
            QuotaError::InitialFillAboveBurst => Self::InitialFillAboveBurst,
            // QuotaError is non_exhaustive: a new kind is still a bad quota.
            _ => Self::InvalidArgument,
        }
    }
}

impl From<ParseErrorKind> for cg_status {
    fn from(kind: ParseErrorKind) -> Self {
        match kind {
            ParseErrorKind::Quota(error) => error.into(),
            _ => Self::ParseError,
        }
    }
}

impl From<PolicyError> for cg_status {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Empty => Self::EmptyPolicy,
            PolicyError::TooManyQuotas => Self::TooManyQuotas,
            PolicyError::TableFull => Self::TableFull,
            PolicyError::WrongReservation => Self::WrongReservation,
            PolicyError::CostCount { .. } => Self::CostCount,
            PolicyError::OutOfMemory => Self::OutOfMemory,
            _ => Self::InvalidArgument,
        }
    }
}

impl From<HeaderError> for cg_status {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::NoPolicies => Self::EmptyPolicy,
            HeaderError::InvalidName { .. } => Self::InvalidName,
            HeaderError::BufferTooSmall { .. } => Self::BufferTooSmall,
            _ => Self::InvalidArgument,
        }
    }
}

impl From<ConfigError> for cg_status {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::EmptyName { .. } => Self::EmptyName,
            ConfigError::InvalidName { .. } => Self::InvalidName,
            ConfigError::DuplicateName { .. } => Self::DuplicateName,
            ConfigError::TooManyNames { .. } => Self::TooManyQuotas,
            ConfigError::MaxKeys { .. } => Self::InvalidMaxKeys,
            ConfigError::NoQuotas => Self::NoQuotas,
            ConfigError::DimensionGap { .. } => Self::DimensionGap,
            ConfigError::RefillNeedsOneQuota => Self::RefillNeedsOneQuota,
            ConfigError::OutOfMemory => Self::OutOfMemory,
            ConfigError::ForeignReservation => Self::ForeignReservation,
            ConfigError::MissingCost { .. } => Self::MissingCost,
            ConfigError::CostCount { .. } => Self::CostCount,
            // ConfigError is non_exhaustive: a new kind is still a bad argument (and the
            // test below fails until it has its own status).
            _ => Self::InvalidArgument,
        }
    }
}

impl From<ClientKeyError> for cg_status {
    fn from(_: ClientKeyError) -> Self {
        Self::InvalidAddress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    #[test]
    fn codes_are_numbered_in_order_and_have_messages() {
        for (number, status) in cg_status::ALL.iter().enumerate() {
            assert_eq!(*status as usize, number);
            let message = cg_status_message(c_int::try_from(number).unwrap());
            // SAFETY: cg_status_message returns a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(message) }.to_str().unwrap();
            assert!(!text.is_empty() && !text.contains("unknown"), "{status:?}");
        }
        for unknown in [-1, 41, c_int::MAX, c_int::MIN] {
            // SAFETY: as above.
            let text = unsafe { CStr::from_ptr(cg_status_message(unknown)) };
            assert_eq!(text.to_str().unwrap(), "unknown status code");
        }
    }

    /// The messages of the configuration statuses are core's `ConfigError` texts, less the
    /// positions a static text cannot hold.
    #[test]
    fn config_messages_are_cores() {
        let text = |status: cg_status| {
            core::str::from_utf8(status.message())
                .unwrap()
                .trim_end_matches('\0')
                .to_owned()
        };
        let core = |error: ConfigError| error.to_string();
        assert_eq!(
            core(ConfigError::EmptyName { index: 2 }).replace(" 2", ""),
            text(cg_status::EmptyName).replacen("a name", "name", 1)
        );
        assert_eq!(
            core(ConfigError::DuplicateName { index: 2, first: 0 }),
            text(cg_status::DuplicateName)
                .replacen("a name", "name 2", 1)
                .replacen("an earlier name", "name 0", 1)
        );
        assert_eq!(
            core(ConfigError::MaxKeys { given: 0 }),
            format!("{}, got 0", text(cg_status::InvalidMaxKeys))
        );
        for (error, status) in [
            (ConfigError::EmptyName { index: 0 }, cg_status::EmptyName),
            (
                ConfigError::InvalidName { index: 0 },
                cg_status::InvalidName,
            ),
            (
                ConfigError::DuplicateName { index: 1, first: 0 },
                cg_status::DuplicateName,
            ),
            (
                ConfigError::TooManyNames { given: 9 },
                cg_status::TooManyQuotas,
            ),
            (ConfigError::MaxKeys { given: 0 }, cg_status::InvalidMaxKeys),
            (ConfigError::NoQuotas, cg_status::NoQuotas),
            (
                ConfigError::DimensionGap { dimension: 1 },
                cg_status::DimensionGap,
            ),
            (
                ConfigError::RefillNeedsOneQuota,
                cg_status::RefillNeedsOneQuota,
            ),
            (ConfigError::OutOfMemory, cg_status::OutOfMemory),
            (
                ConfigError::ForeignReservation,
                cg_status::ForeignReservation,
            ),
            (
                ConfigError::MissingCost { dimension: 1 },
                cg_status::MissingCost,
            ),
            (
                ConfigError::CostCount {
                    expected: 2,
                    given: 1,
                },
                cg_status::CostCount,
            ),
        ] {
            assert_eq!(cg_status::from(error), status, "{error:?}");
        }
        // The statuses that only a limiter gives carry core's texts, positions aside.
        for (error, status) in [
            (ConfigError::NoQuotas, cg_status::NoQuotas),
            (
                ConfigError::RefillNeedsOneQuota,
                cg_status::RefillNeedsOneQuota,
            ),
            (
                ConfigError::ForeignReservation,
                cg_status::ForeignReservation,
            ),
        ] {
            assert_eq!(core(error), text(status));
        }
        assert_eq!(
            core(ConfigError::DimensionGap { dimension: 3 }),
            text(cg_status::DimensionGap).replacen("a dimension", "dimension 3", 1)
        );
        assert_eq!(
            core(ConfigError::MissingCost { dimension: 3 }),
            text(cg_status::MissingCost).replacen("a dimension", "dimension 3", 1)
        );
    }
}
