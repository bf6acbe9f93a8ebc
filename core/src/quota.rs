//! [`Quota`]: how much cost a limiter admits per period, and how much at once.

use core::fmt;
use core::num::NonZeroU64;

/// Nanoseconds in one second.
pub const NS_PER_SECOND: u64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NS_PER_MINUTE: u64 = 60 * NS_PER_SECOND;
/// Nanoseconds in one hour.
pub const NS_PER_HOUR: u64 = 60 * NS_PER_MINUTE;
/// Nanoseconds in one day.
pub const NS_PER_DAY: u64 = 24 * NS_PER_HOUR;

/// The largest capacity, in ticks (see [`Quota::capacity_ticks`]), that a quota may have.
///
/// Half of `u64::MAX`, so that a cell can always hold at least one full bucket of debt
/// created by `force` on top of an empty bucket.
pub const MAX_CAPACITY_TICKS: u64 = u64::MAX / 2;

/// A rate limit: `rate_cost` cost units per `period_ns` nanoseconds, with at most `burst_cost`
/// units admitted at once.
///
/// A quota is validated when it is built, so every quota that exists can be checked against
/// without overflow. Internally time is counted in *ticks* of `1 / ticks_per_ns` nanoseconds,
/// the unit in which one cost unit's share of the period (the emission interval) is a whole
/// number: `period_ns / rate_cost` reduced by their greatest common divisor. That is what makes
/// `3/second` exactly three per second rather than one per 333,333,333 ns.
///
/// ```
/// use cellgate::Quota;
/// let quota = Quota::per_minute(100).unwrap().with_burst(20).unwrap();
/// assert_eq!(quota.rate_cost(), 100);
/// assert_eq!(quota.burst_cost(), 20);
/// let parsed: Quota = "100/minute".parse().unwrap();
/// assert_eq!(parsed.burst_cost(), 100);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    rate_cost: NonZeroU64,
    period_ns: NonZeroU64,
    burst_cost: u64,
    /// Ticks per cost unit: the emission interval, `period_ns / gcd` (ticks).
    emission_ticks: NonZeroU64,
    /// Ticks per nanosecond: `rate_cost / gcd`.
    ticks_per_ns: NonZeroU64,
    /// `burst_cost * emission_ticks`: the bucket's size in ticks.
    capacity_ticks: u64,
}

/// Why a [`Quota`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaError {
    /// The rate (cost per period) was zero.
    ZeroRate,
    /// The period was zero nanoseconds.
    ZeroPeriod,
    /// The burst (capacity) was zero.
    ZeroBurst,
    /// `burst × period / gcd(rate, period)` exceeds [`MAX_CAPACITY_TICKS`]: the bucket could
    /// not be represented exactly. Lower the burst or choose a rate that divides the period
    /// more evenly.
    CapacityOverflow,
    /// A period given in a larger unit (seconds, days, …) overflows `u64` nanoseconds.
    PeriodOverflow,
    /// An initial fill larger than the burst was requested.
    InitialFillAboveBurst,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroRate => "rate must be at least 1 cost unit per period",
            Self::ZeroPeriod => "period must be at least 1 nanosecond",
            Self::ZeroBurst => "burst must be at least 1 cost unit",
            Self::CapacityOverflow => {
                "burst * period / gcd(rate, period) overflows the exact representation; lower the burst"
            }
            Self::PeriodOverflow => "period overflows u64 nanoseconds (about 584 years)",
            Self::InitialFillAboveBurst => "initial fill must not exceed the burst",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for QuotaError {}

/// Euclid's algorithm; `gcd(a, 0) == a`.
const fn nonzero(value: Option<u64>) -> Option<NonZeroU64> {
    match value {
        Some(value) => NonZeroU64::new(value),
        None => None,
    }
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while let Some(r) = a.checked_rem(b) {
        a = b;
        b = r;
    }
    a
}

impl Quota {
    /// A quota of `rate_cost` units per `period_ns` nanoseconds; the burst defaults to
    /// `rate_cost`, so `Quota::new(100, NS_PER_MINUTE)` admits 100 at once.
    ///
    /// # Errors
    /// [`QuotaError::ZeroRate`], [`QuotaError::ZeroPeriod`], or
    /// [`QuotaError::CapacityOverflow`] when the exact representation would overflow.
    pub const fn new(rate_cost: u64, period_ns: u64) -> Result<Self, QuotaError> {
        Self::with_parts(rate_cost, period_ns, rate_cost)
    }

    /// A quota with every part given: `rate_cost` per `period_ns`, at most `burst_cost` at once.
    ///
    /// # Errors
    /// [`QuotaError::ZeroRate`], [`QuotaError::ZeroPeriod`], [`QuotaError::ZeroBurst`], or
    /// [`QuotaError::CapacityOverflow`].
    pub const fn with_parts(
        rate_cost: u64,
        period_ns: u64,
        burst_cost: u64,
    ) -> Result<Self, QuotaError> {
        let Some(rate) = NonZeroU64::new(rate_cost) else {
            return Err(QuotaError::ZeroRate);
        };
        let Some(period) = NonZeroU64::new(period_ns) else {
            return Err(QuotaError::ZeroPeriod);
        };
        if burst_cost == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        // The divisor divides both non-zero inputs, so both quotients are exact and non-zero.
        let divisor = gcd(rate_cost, period_ns);
        let (Some(emission_ticks), Some(ticks_per_ns)) = (
            nonzero(period_ns.checked_div(divisor)),
            nonzero(rate_cost.checked_div(divisor)),
        ) else {
            return Err(QuotaError::ZeroPeriod);
        };
        let capacity_ticks = match burst_cost.checked_mul(emission_ticks.get()) {
            Some(ticks) if ticks <= MAX_CAPACITY_TICKS => ticks,
            _ => return Err(QuotaError::CapacityOverflow),
        };
        Ok(Self {
            rate_cost: rate,
            period_ns: period,
            burst_cost,
            emission_ticks,
            ticks_per_ns,
            capacity_ticks,
        })
    }

    /// `count` per `seconds` seconds (`500/7 days` is `per_seconds(500, 7 * 86_400)`).
    ///
    /// # Errors
    /// As [`Quota::new`], and [`QuotaError::PeriodOverflow`] when the period exceeds `u64`
    /// nanoseconds.
    pub const fn per_seconds(count: u64, seconds: u64) -> Result<Self, QuotaError> {
        match seconds.checked_mul(NS_PER_SECOND) {
            Some(period_ns) => Self::new(count, period_ns),
            None => Err(QuotaError::PeriodOverflow),
        }
    }

    /// `count` per second.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub const fn per_second(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, NS_PER_SECOND)
    }

    /// `count` per minute.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub const fn per_minute(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, NS_PER_MINUTE)
    }

    /// `count` per hour.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub const fn per_hour(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, NS_PER_HOUR)
    }

    /// `count` per day.
    ///
    /// # Errors
    /// As [`Quota::new`].
    pub const fn per_day(count: u64) -> Result<Self, QuotaError> {
        Self::new(count, NS_PER_DAY)
    }

    /// The same rate with another burst (capacity).
    ///
    /// # Errors
    /// [`QuotaError::ZeroBurst`] or [`QuotaError::CapacityOverflow`].
    pub const fn with_burst(self, burst_cost: u64) -> Result<Self, QuotaError> {
        Self::with_parts(self.rate_cost.get(), self.period_ns.get(), burst_cost)
    }

    /// Cost units replenished per period.
    #[inline(always)]
    pub const fn rate_cost(&self) -> u64 {
        self.rate_cost.get()
    }

    #[inline(always)]
    pub(crate) const fn rate_cost_nz(&self) -> NonZeroU64 {
        self.rate_cost
    }

    /// The period, in nanoseconds.
    pub const fn period_ns(&self) -> u64 {
        self.period_ns.get()
    }

    #[inline(always)]
    pub(crate) const fn period_ns_nz(&self) -> NonZeroU64 {
        self.period_ns
    }

    /// The most cost admitted at once (the bucket's capacity); also the `limit` of a decision.
    #[inline(always)]
    pub const fn burst_cost(&self) -> u64 {
        self.burst_cost
    }

    /// Ticks per cost unit (the emission interval, exact). One tick is `1 / ticks_per_ns` ns.
    pub const fn emission_ticks(&self) -> u64 {
        self.emission_ticks.get()
    }

    #[inline(always)]
    pub(crate) const fn emission_ticks_nz(&self) -> NonZeroU64 {
        self.emission_ticks
    }

    /// Ticks per nanosecond.
    #[inline(always)]
    pub const fn ticks_per_ns(&self) -> u64 {
        self.ticks_per_ns.get()
    }

    #[inline(always)]
    pub(crate) const fn ticks_per_ns_nz(&self) -> NonZeroU64 {
        self.ticks_per_ns
    }

    /// The bucket's capacity in ticks: `burst_cost × emission_ticks`.
    #[inline(always)]
    pub const fn capacity_ticks(&self) -> u64 {
        self.capacity_ticks
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("rate_cost", &self.rate_cost)
            .field("period_ns", &self.period_ns)
            .field("burst_cost", &self.burst_cost)
            .finish()
    }
}

impl fmt::Display for Quota {
    /// Renders the rate in the rate-string grammar (`100/60 seconds`, `3/second`), which
    /// [`Quota::parse`] reads back; a burst that differs from the rate follows as `(burst N)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period_ns = self.period_ns.get();
        if period_ns % NS_PER_SECOND == 0 {
            let seconds = period_ns / NS_PER_SECOND;
            if seconds == 1 {
                write!(f, "{}/second", self.rate_cost)?;
            } else {
                write!(f, "{}/{} seconds", self.rate_cost, seconds)?;
            }
        } else {
            write!(f, "{}/{} nanoseconds", self.rate_cost, period_ns)?;
        }
        if self.burst_cost != self.rate_cost.get() {
            write!(f, " (burst {})", self.burst_cost)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_by_gcd() {
        let quota = Quota::per_second(3).unwrap();
        assert_eq!(quota.emission_ticks(), NS_PER_SECOND);
        assert_eq!(quota.ticks_per_ns(), 3);
        let quota = Quota::per_second(1_000).unwrap();
        assert_eq!(quota.emission_ticks(), 1_000_000);
        assert_eq!(quota.ticks_per_ns(), 1);
    }

    #[test]
    fn rejects_invalid() {
        assert_eq!(Quota::new(0, 1), Err(QuotaError::ZeroRate));
        assert_eq!(Quota::new(1, 0), Err(QuotaError::ZeroPeriod));
        assert_eq!(Quota::with_parts(1, 1, 0), Err(QuotaError::ZeroBurst));
        assert_eq!(
            Quota::per_seconds(1, u64::MAX / 2),
            Err(QuotaError::PeriodOverflow)
        );
        assert_eq!(
            Quota::with_parts(1, NS_PER_SECOND, u64::MAX),
            Err(QuotaError::CapacityOverflow)
        );
        // The largest burst that still fits.
        let max_burst = MAX_CAPACITY_TICKS / NS_PER_SECOND;
        assert!(Quota::with_parts(1, NS_PER_SECOND, max_burst).is_ok());
        assert_eq!(
            Quota::with_parts(1, NS_PER_SECOND, max_burst + 1),
            Err(QuotaError::CapacityOverflow)
        );
    }

    #[test]
    fn huge_rates_are_exact() {
        let quota = Quota::with_parts(u64::MAX, 1, u64::MAX / 2).unwrap();
        assert_eq!(quota.emission_ticks(), 1);
        assert_eq!(quota.ticks_per_ns(), u64::MAX);
    }
}
