//! Division by a divisor fixed when a rule is built, done with two multiplications.
//!
//! A 64-bit `div` costs 25 to 90 cycles on the x86_64 parts we measure on, and a decision needs
//! up to three (the `remaining` of a greedy bucket divides by the ticks of one cost unit; an
//! interval bucket divides times by its period twice). A [`Divisor`] precomputes, once per
//! quota, the reciprocal that turns each into two 64×64→128-bit multiplications and an add.
//!
//! # Why it is exact
//!
//! For a divisor `d` with `2 <= d < 2^64`, let `c = ⌈2^128 / d⌉`. Then `c·d` lies in
//! `[2^128, 2^128 + d − 1]`, inside `[2^128, 2^128 + 2^64]`, and by Theorem 1 of Lemire, Kaser
//! and Kurz, "Faster Remainder by Direct Computation" (2019), with `N = 64` and `L = 64`:
//! `⌊n / d⌋ = ⌊c·n / 2^128⌋` for every `n < 2^64`.
//!
//! With `c = c_hi·2^64 + c_lo` and `c_lo·n = A·2^64 + B` (`B < 2^64`),
//! `⌊c·n / 2^128⌋ = ⌊(c_hi·n + A) / 2^64⌋`: the dropped `B / 2^128` is below `1 / 2^64` and
//! `c_hi·n + A` is an integer, so it cannot carry the quotient past a multiple of `2^64`.
//! No step overflows: `d >= 2` makes `c <= 2^127 + 1`, so `c_hi <= 2^63`, `c_hi·n < 2^127`,
//! and `A < 2^64`. `d = 1` (common: every rate that divides its period in nanoseconds) skips
//! the arithmetic. The unit tests check it against `/` at the edges and on random values.

use core::num::NonZeroU64;

/// A divisor with its reciprocal `⌈2^128 / divisor⌉` (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Divisor {
    divisor: NonZeroU64,
    /// The high and low halves of `⌈2^128 / divisor⌉`; both 0 for a divisor of 1.
    reciprocal_hi: u64,
    reciprocal_lo: u64,
}

impl Divisor {
    /// Precomputes the reciprocal of `divisor` (one 128-bit division, once per quota).
    #[allow(clippy::as_conversions, clippy::arithmetic_side_effects)]
    pub(crate) const fn new(divisor: NonZeroU64) -> Self {
        let d = divisor.get();
        if d == 1 {
            return Self {
                divisor,
                reciprocal_hi: 0,
                reciprocal_lo: 0,
            };
        }
        // ⌈2^128 / d⌉ = ⌊(2^128 − 1) / d⌋ + 1 for d >= 2 (2^128 is not representable); the sum
        // cannot overflow, as the quotient is at most 2^127 − 1.
        let reciprocal = u128::MAX / (d as u128) + 1;
        Self {
            divisor,
            reciprocal_hi: (reciprocal >> 64) as u64,
            reciprocal_lo: reciprocal as u64,
        }
    }

    /// The divisor.
    #[inline(always)]
    pub(crate) const fn get(&self) -> NonZeroU64 {
        self.divisor
    }

    /// `⌊numerator / divisor⌋`, exactly, without a division instruction.
    #[inline(always)]
    #[allow(clippy::as_conversions, clippy::arithmetic_side_effects)]
    pub(crate) const fn div_floor(&self, numerator: u64) -> u64 {
        if self.divisor.get() == 1 {
            return numerator;
        }
        let n = numerator as u128;
        // No overflow (module documentation): reciprocal_hi <= 2^63, so the product is below
        // 2^127 and adding the high half of the low product stays below 2^128.
        let low_carry = ((self.reciprocal_lo as u128) * n) >> 64;
        (((self.reciprocal_hi as u128) * n + low_carry) >> 64) as u64
    }

    /// `⌈numerator / divisor⌉`, exactly, without a division instruction.
    #[inline(always)]
    #[allow(clippy::arithmetic_side_effects)]
    pub(crate) const fn div_ceil(&self, numerator: u64) -> u64 {
        let quotient = self.div_floor(numerator);
        // quotient × divisor <= numerator: no overflow. A remainder implies divisor >= 2, so
        // quotient < numerator and the + 1 cannot overflow either.
        if quotient * self.divisor.get() == numerator {
            quotient
        } else {
            quotient + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Divisor;
    use core::num::NonZeroU64;
    use proptest::prelude::*;

    fn divisor(d: u64) -> Divisor {
        Divisor::new(NonZeroU64::new(d).unwrap())
    }

    fn agrees(d: u64, n: u64) {
        let by = divisor(d);
        assert_eq!(by.div_floor(n), n / d, "{n} / {d}");
        assert_eq!(by.div_ceil(n), n.div_ceil(d), "ceil({n} / {d})");
    }

    #[test]
    fn edges() {
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            1_000,
            333_333_333,
            1_000_000_000,
            60_000_000_000,
            86_400_000_000_000,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &d in &divisors {
            for n in [0, 1, d - 1, d, d.saturating_add(1), u64::MAX - 1, u64::MAX] {
                agrees(d, n);
            }
            for k in [1, 2, 3, 1_000, u64::MAX / d] {
                let multiple = d.saturating_mul(k);
                agrees(d, multiple);
                agrees(d, multiple.saturating_sub(1));
                agrees(d, multiple.saturating_add(1));
            }
        }
    }

    proptest! {
        #[test]
        fn matches_division(d in 1..=u64::MAX, n in any::<u64>()) {
            agrees(d, n);
        }

        #[test]
        fn matches_division_small_divisors(d in 1..=1_000_000u64, n in any::<u64>()) {
            agrees(d, n);
        }

        #[test]
        fn matches_division_near_multiples(d in 2..=u64::MAX, k in any::<u64>(), delta in 0..3u64) {
            let n = d.saturating_mul(k % (u64::MAX / d).max(1)).saturating_add(delta).saturating_sub(1);
            agrees(d, n);
        }
    }
}
