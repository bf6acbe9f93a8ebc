//! The rules every runtime applies to a limiter's configuration and to the arguments of a call,
//! kept once here so that C, Python and Node accept, refuse and name things alike: the default
//! cost, the bounds of `max_keys`, the names headers show, and how the costs of a call over
//! several dimensions are completed.

use crate::policy::MAX_POLICY_QUOTAS;
use crate::quota::{Quota, NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND};
use core::fmt;

/// The cost of a call that names none, on a limiter or a one-dimension policy.
pub const DEFAULT_COST: u64 = 1;

/// The `max_keys` of a keyed limiter when none is given, in every runtime: 100,000 keys take
/// about 4.3 MB per quota.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The largest `max_keys` any runtime accepts: 2^27 keys take about 4.3 GB per quota. Beyond
/// it a table is more likely a unit mistake than a plan.
pub const MAX_MAX_KEYS: u64 = 1 << 27;

/// Why a configuration or a call's arguments were refused. Each variant says which item was at
/// fault; a binding adds the argument's name in its own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// `names[index]` is empty: a header item needs a name.
    EmptyName {
        /// The position of the name.
        index: usize,
    },
    /// `names[index]` holds a byte outside printable ASCII (`0x20..=0x7E`), which a Structured
    /// Field string cannot carry.
    InvalidName {
        /// The position of the name.
        index: usize,
    },
    /// `names[index]` repeats `names[first]`: the header items would be ambiguous.
    DuplicateName {
        /// The position of the repeated name.
        index: usize,
        /// The position where the name first appears.
        first: usize,
    },
    /// A limiter needs at least one quota.
    NoQuotas,
    /// No quota is charged in `dimension`, although a later dimension is used: dimensions are
    /// numbered densely from 0.
    DimensionGap {
        /// The dimension without a quota.
        dimension: usize,
    },
    /// Interval refill applies to a single quota; several quotas refill greedily.
    RefillNeedsOneQuota,
    /// The tables for `max_keys` keys could not be allocated on this machine.
    OutOfMemory,
    /// A reservation was settled on a limiter other than the one that made it.
    ForeignReservation,
    /// [`Limiter::with_tables`](crate::Limiter::with_tables) was given a table that does not
    /// fit the quota of the same index (another quota, refill or seed than the options say,
    /// fewer than `max_keys` need) or a count of tables other than the quotas'.
    TableMismatch {
        /// The index of the first quota (or table) at fault.
        index: usize,
    },
    /// More names than a policy can hold ([`MAX_POLICY_QUOTAS`]).
    TooManyNames {
        /// The number of names given.
        given: usize,
    },
    /// `max_keys` outside `1..=MAX_MAX_KEYS`.
    MaxKeys {
        /// The value given.
        given: u64,
    },
    /// A policy of several dimensions was given no cost for `dimension`: charging it nothing
    /// would admit without limit, so every dimension must be named (0 is a valid cost).
    MissingCost {
        /// The dimension without a cost.
        dimension: usize,
    },
    /// The costs given and the dimensions (or the output slice) differ in number.
    CostCount {
        /// The number of dimensions.
        expected: usize,
        /// The number given.
        given: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName { index } => write!(f, "name {index} is empty"),
            Self::InvalidName { index } => write!(
                f,
                "name {index} holds a character outside printable ASCII (0x20..0x7E)"
            ),
            Self::DuplicateName { index, first } => {
                write!(f, "name {index} repeats name {first}: names must be unique")
            }
            Self::NoQuotas => f.write_str("a limiter needs at least one quota"),
            Self::DimensionGap { dimension } => write!(
                f,
                "no quota is charged in dimension {dimension}: dimensions are numbered from 0 without gaps"
            ),
            Self::RefillNeedsOneQuota => f.write_str(
                "interval refill applies to a single quota; several quotas refill greedily",
            ),
            Self::OutOfMemory => f.write_str(
                "the keyed tables cannot be allocated on this machine (max_keys too large)",
            ),
            Self::TableMismatch { index } => write!(
                f,
                "table {index} does not fit quota {index} (quota, refill, seed, size or count)"
            ),
            Self::ForeignReservation => {
                f.write_str("the reservation was made by another limiter")
            }
            Self::TooManyNames { given } => write!(
                f,
                "{given} names given: a policy holds at most {MAX_POLICY_QUOTAS}"
            ),
            Self::MaxKeys { given } => {
                write!(f, "max_keys must be in 1..={MAX_MAX_KEYS}, got {given}")
            }
            Self::MissingCost { dimension } => write!(
                f,
                "dimension {dimension} has no cost: a policy of several dimensions needs one for each (0 is allowed)"
            ),
            Self::CostCount { expected, given } => {
                write!(f, "expected {expected} costs, one per dimension, got {given}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// Checks the names a limiter or policy will show in headers (given, or
/// [`default_quota_name`]): each non-empty, printable ASCII only, all distinct, at most
/// [`MAX_POLICY_QUOTAS`] of them.
///
/// # Errors
/// The first problem found, in order of position: [`ConfigError::TooManyNames`],
/// [`ConfigError::EmptyName`], [`ConfigError::InvalidName`], [`ConfigError::DuplicateName`].
///
/// ```
/// use cellgate::{check_names, ConfigError};
/// assert_eq!(check_names(&["burst", "daily"]), Ok(()));
/// assert_eq!(
///     check_names(&["burst", "burst"]),
///     Err(ConfigError::DuplicateName { index: 1, first: 0 })
/// );
/// assert_eq!(check_names(&[""]), Err(ConfigError::EmptyName { index: 0 }));
/// ```
pub fn check_names<S: AsRef<str>>(names: &[S]) -> Result<(), ConfigError> {
    if names.len() > MAX_POLICY_QUOTAS {
        return Err(ConfigError::TooManyNames { given: names.len() });
    }
    for (index, name) in names.iter().enumerate() {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(ConfigError::EmptyName { index });
        }
        if !name.bytes().all(|byte| (0x20..=0x7E).contains(&byte)) {
            return Err(ConfigError::InvalidName { index });
        }
        let earlier = names.get(..index).unwrap_or_default();
        if let Some(first) = earlier.iter().position(|other| other.as_ref() == name) {
            return Err(ConfigError::DuplicateName { index, first });
        }
    }
    Ok(())
}

/// A runtime's `max_keys` as a table size: `1..=MAX_MAX_KEYS`.
///
/// # Errors
/// [`ConfigError::MaxKeys`] outside that range (also when it does not fit a `usize`).
pub fn check_max_keys(max_keys: u64) -> Result<usize, ConfigError> {
    if max_keys == 0 || max_keys > MAX_MAX_KEYS {
        return Err(ConfigError::MaxKeys { given: max_keys });
    }
    usize::try_from(max_keys).map_err(|_| ConfigError::MaxKeys { given: max_keys })
}

/// The costs of one call from the costs its caller named: `given` holds one entry per dimension,
/// in dimension order, `None` where the caller named no cost.
///
/// - One dimension: `None` costs [`DEFAULT_COST`].
/// - Several dimensions: every dimension must be named; a `None` is
///   [`ConfigError::MissingCost`] (charging it 0 would admit without limit on that dimension).
///
/// # Errors
/// [`ConfigError::CostCount`] when `out.len() != given.len()` or `given` is empty;
/// [`ConfigError::MissingCost`] with the first dimension lacking a cost. `out` is written only
/// on success.
///
/// ```
/// use cellgate::{resolve_costs, ConfigError};
/// let mut costs = [0u64; 1];
/// resolve_costs(&[None], &mut costs).unwrap();
/// assert_eq!(costs, [1]);
/// let mut costs = [0u64; 2];
/// assert_eq!(
///     resolve_costs(&[Some(1), None], &mut costs),
///     Err(ConfigError::MissingCost { dimension: 1 })
/// );
/// ```
#[inline]
pub fn resolve_costs(given: &[Option<u64>], out: &mut [u64]) -> Result<(), ConfigError> {
    if given.is_empty() || out.len() != given.len() {
        return Err(ConfigError::CostCount {
            expected: out.len(),
            given: given.len(),
        });
    }
    let single = given.len() == 1;
    if let Some(dimension) = given.iter().position(Option::is_none) {
        if !single {
            return Err(ConfigError::MissingCost { dimension });
        }
    }
    for (slot, cost) in out.iter_mut().zip(given) {
        *slot = cost.unwrap_or(DEFAULT_COST);
    }
    Ok(())
}

/// The actual costs of a settle from the costs its caller named: a dimension not named keeps
/// its `estimate` (the reservation is then exact on it).
///
/// # Errors
/// [`ConfigError::CostCount`] when `given`, `estimate` and `out` differ in length. `out` is
/// written only on success.
pub fn resolve_settle_costs(
    given: &[Option<u64>],
    estimate: &[u64],
    out: &mut [u64],
) -> Result<(), ConfigError> {
    if estimate.len() != given.len() || out.len() != given.len() {
        return Err(ConfigError::CostCount {
            expected: estimate.len(),
            given: given.len(),
        });
    }
    for ((slot, cost), estimated) in out.iter_mut().zip(given).zip(estimate) {
        *slot = cost.unwrap_or(*estimated);
    }
    Ok(())
}

/// The longest [`QuotaName`]: 20 digits, `-in-`, 20 digits and a 3-letter unit.
const QUOTA_NAME_BYTES: usize = 48;

/// A quota's default header name ([`default_quota_name`]), held without allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaName {
    bytes: [u8; QUOTA_NAME_BYTES],
    len: usize,
}

impl QuotaName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        // Only ASCII digits and letters are ever written.
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Debug for QuotaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for QuotaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for QuotaName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Write for QuotaName {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len.checked_add(text.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The name headers show for a quota that was given none, the same in every runtime:
/// `{rate}-in-{n}{unit}` with the period in the largest unit that divides it exactly
/// (`d`, `h`, `min`, `s`, `ms`, `us`, `ns`), in the style of the older IETF drafts' policy
/// names: `100-in-1min`, `10-in-1s`, `1000-in-1d`, `500-in-7d`, `5-in-250ms`.
///
/// ```
/// use cellgate::{default_quota_name, Quota};
/// let quota: Quota = "500/7 days".parse().unwrap();
/// assert_eq!(default_quota_name(&quota).as_str(), "500-in-7d");
/// ```
pub fn default_quota_name(quota: &Quota) -> QuotaName {
    use core::fmt::Write as _;
    const UNITS: [(u64, &str); 7] = [
        (NS_PER_DAY, "d"),
        (NS_PER_HOUR, "h"),
        (NS_PER_MINUTE, "min"),
        (NS_PER_SECOND, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let period_ns = quota.period_ns();
    let (count, unit) = UNITS
        .iter()
        .find_map(|&(unit_ns, unit)| match period_ns.checked_rem(unit_ns) {
            Some(0) => period_ns.checked_div(unit_ns).map(|count| (count, unit)),
            _ => None,
        })
        .unwrap_or((period_ns, "ns"));
    let mut name = QuotaName {
        bytes: [0; QUOTA_NAME_BYTES],
        len: 0,
    };
    // At most 47 bytes (see QUOTA_NAME_BYTES): the write cannot fail.
    let _ = write!(name, "{}-in-{}{}", quota.rate_cost(), count, unit);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_pick_the_largest_exact_unit() {
        let cases = [
            ("100/minute", "100-in-1min"),
            ("10/second", "10-in-1s"),
            ("1000/day", "1000-in-1d"),
            ("500/7 days", "500-in-7d"),
            ("3/hour", "3-in-1h"),
            ("2/90 seconds", "2-in-90s"),
        ];
        for (rate, name) in cases {
            let quota: Quota = rate.parse().unwrap();
            assert_eq!(default_quota_name(&quota).as_str(), name, "{rate}");
        }
        let quota = Quota::new(5, 250_000_000).unwrap();
        assert_eq!(default_quota_name(&quota).as_str(), "5-in-250ms");
        let quota = Quota::with_parts(u64::MAX >> 40, 1_000_001, 1).unwrap();
        assert_eq!(default_quota_name(&quota).as_str(), "16777215-in-1000001ns");
    }

    #[test]
    fn names_are_checked_in_order() {
        assert_eq!(check_names::<&str>(&[]), Ok(()));
        assert_eq!(
            check_names(&["a", "b\u{e9}"]),
            Err(ConfigError::InvalidName { index: 1 })
        );
        assert_eq!(
            check_names(&["a", "b", "a"]),
            Err(ConfigError::DuplicateName { index: 2, first: 0 })
        );
        assert_eq!(
            check_names(&["a"; 9]),
            Err(ConfigError::TooManyNames { given: 9 })
        );
        assert_eq!(
            check_names(&["a", "\n"]),
            Err(ConfigError::InvalidName { index: 1 })
        );
    }

    #[test]
    fn max_keys_bounds() {
        assert_eq!(check_max_keys(0), Err(ConfigError::MaxKeys { given: 0 }));
        assert_eq!(check_max_keys(1), Ok(1));
        assert_eq!(check_max_keys(MAX_MAX_KEYS), Ok(1 << 27));
        assert_eq!(
            check_max_keys(MAX_MAX_KEYS + 1),
            Err(ConfigError::MaxKeys {
                given: MAX_MAX_KEYS + 1
            })
        );
    }

    #[test]
    fn costs_default_only_for_one_dimension() {
        let mut one = [7u64];
        assert_eq!(resolve_costs(&[None], &mut one), Ok(()));
        assert_eq!(one, [DEFAULT_COST]);
        assert_eq!(resolve_costs(&[Some(0)], &mut one), Ok(()));
        assert_eq!(one, [0]);
        let mut three = [7u64; 3];
        assert_eq!(
            resolve_costs(&[Some(1), None, None], &mut three),
            Err(ConfigError::MissingCost { dimension: 1 })
        );
        assert_eq!(three, [7; 3], "nothing written on an error");
        assert_eq!(
            resolve_costs(&[Some(1), Some(0), Some(5)], &mut three),
            Ok(())
        );
        assert_eq!(three, [1, 0, 5]);
        assert_eq!(
            resolve_costs(&[], &mut []),
            Err(ConfigError::CostCount {
                expected: 0,
                given: 0
            })
        );
        assert_eq!(
            resolve_costs(&[None], &mut three),
            Err(ConfigError::CostCount {
                expected: 3,
                given: 1
            })
        );
    }

    #[test]
    fn settle_keeps_the_estimate_of_unnamed_dimensions() {
        let mut out = [0u64; 3];
        assert_eq!(
            resolve_settle_costs(&[None, Some(9), None], &[1, 2, 3], &mut out),
            Ok(())
        );
        assert_eq!(out, [1, 9, 3]);
        assert!(resolve_settle_costs(&[None], &[1, 2], &mut out).is_err());
    }
}
