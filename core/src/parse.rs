//! Rate strings: `"10/second"`, `"10 per minute"`, `"500/7 days"`, `"10/s; 1000/day"`.
//!
//! The grammar is that of Python's [`limits`](https://limits.readthedocs.io/) library (the
//! rate-limit string notation used by Flask-Limiter, SlowAPI and others), plus a few
//! abbreviations, sub-second units, and the `(burst N)` suffix that [`Quota`]'s `Display`
//! writes, so that `Quota::parse(&quota.to_string()) == Ok(quota)` for every quota.
//!
//! ```text
//! list     = item , { sep , item } ;
//! sep      = "," | ";" | "|" ;
//! item     = ws* , count , ws* , per , ws* , [ multiple ] , ws* , unit , ws* , [ burst , ws* ] ;
//! per      = "/" | "per" ;                      (* "per" in any case *)
//! count    = digit , { digit } ;                (* a u64; 0 is rejected (ZeroRate) *)
//! multiple = digit , { digit } ;                (* a u64 of at least 1; absent means 1 *)
//! unit     = letter , { letter } ;              (* one of the names below, any case *)
//! burst    = "(" , ws* , "burst" , ws* , digit , { digit } , ws* , ")" ;  (* extension *)
//! digit    = "0" | … | "9" ;                    (* ASCII only *)
//! letter   = "a" | … | "z" | "A" | … | "Z" ;    (* ASCII only *)
//! ws       = ? a char with the Unicode White_Space property, or U+001C..U+001F ? ;
//! ```
//!
//! The period is `multiple × unit`; the burst defaults to the count. Whitespace is optional
//! between every two tokens (`limits` accepts `10per7days`, and so does this parser).
//!
//! | unit names (any case)                        | length                                    |
//! |----------------------------------------------|-------------------------------------------|
//! | `ns`, `nanosecond`, `nanoseconds`            | 1 ns                                      |
//! | `us`, `microsecond`, `microseconds`          | 1 000 ns                                  |
//! | `ms`, `millisecond`, `milliseconds`          | 1 000 000 ns                              |
//! | `s`, `sec`, `secs`, `second`, `seconds`      | 1 s = 10⁹ ns                              |
//! | `m`, `min`, `mins`, `minute`, `minutes`      | 60 s                                      |
//! | `h`, `hr`, `hrs`, `hour`, `hours`            | 3 600 s                                   |
//! | `d`, `day`, `days`                           | 86 400 s                                  |
//! | `month`, `months`                            | 30 days = 2 592 000 s (as in `limits`)    |
//! | `year`, `years`                              | 12 × 30 = 360 days = 31 104 000 s (as in `limits`) |
//!
//! Only `second`, `minute`, `hour`, `day`, `month`, `year` and their plurals are `limits`
//! names; the rest are extensions. Every string `limits` accepts is accepted here with the same
//! meaning, except:
//! - a zero count or zero multiple is rejected (`limits` builds a limit that admits nothing,
//!   or one with an empty window), and counts and periods must fit in `u64` (nanoseconds,
//!   for the period) and make a valid [`Quota`];
//! - case-insensitivity is ASCII only (Python's also folds `ſ` to `s` and `ı` to `i`);
//! - a `:` before a list separator (`1/s:;2/s`), which a typo (`(:?`) in `limits`' list
//!   regular expression lets through, is trailing input here.
//!
//! ```
//! use cellgate::{parse_quotas, Quota, NS_PER_DAY, NS_PER_SECOND};
//!
//! let quota = Quota::parse("500/7 days").unwrap();
//! assert_eq!((quota.rate_cost(), quota.period_ns()), (500, 7 * NS_PER_DAY));
//!
//! let mut list = parse_quotas("10/s; 1000/day");
//! assert_eq!(list.next(), Some(Ok(Quota::new(10, NS_PER_SECOND).unwrap())));
//! assert_eq!(list.next(), Some(Ok(Quota::new(1000, NS_PER_DAY).unwrap())));
//! assert_eq!(list.next(), None);
//! ```

use core::fmt;
use core::iter::FusedIterator;
use core::str::FromStr;

use crate::quota::{Quota, QuotaError, NS_PER_DAY, NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND};

/// Nanoseconds in a `limits` month: 30 days.
const NS_PER_MONTH: u64 = 30 * NS_PER_DAY;
/// Nanoseconds in a `limits` year: 12 months of 30 days, 360 days.
const NS_PER_YEAR: u64 = 12 * NS_PER_MONTH;

/// Every accepted unit name (matched ASCII case-insensitively) and its length in nanoseconds.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("nanosecond", 1),
    ("nanoseconds", 1),
    ("us", 1_000),
    ("microsecond", 1_000),
    ("microseconds", 1_000),
    ("ms", 1_000_000),
    ("millisecond", 1_000_000),
    ("milliseconds", 1_000_000),
    ("s", NS_PER_SECOND),
    ("sec", NS_PER_SECOND),
    ("secs", NS_PER_SECOND),
    ("second", NS_PER_SECOND),
    ("seconds", NS_PER_SECOND),
    ("m", NS_PER_MINUTE),
    ("min", NS_PER_MINUTE),
    ("mins", NS_PER_MINUTE),
    ("minute", NS_PER_MINUTE),
    ("minutes", NS_PER_MINUTE),
    ("h", NS_PER_HOUR),
    ("hr", NS_PER_HOUR),
    ("hrs", NS_PER_HOUR),
    ("hour", NS_PER_HOUR),
    ("hours", NS_PER_HOUR),
    ("d", NS_PER_DAY),
    ("day", NS_PER_DAY),
    ("days", NS_PER_DAY),
    ("month", NS_PER_MONTH),
    ("months", NS_PER_MONTH),
    ("year", NS_PER_YEAR),
    ("years", NS_PER_YEAR),
];

/// How many bytes of an unknown unit name a [`ParseError`] keeps for its `Display`.
const NAME_CAPACITY: usize = 24;

/// What was wrong with a rate string; see [`ParseError::offset`] for where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input, or one item of a list, was empty or only whitespace. The offset is where
    /// the item would have begun: the end of the input or the separator that follows.
    Empty,
    /// A count (ASCII digits) was expected but something else was found.
    ExpectedCount,
    /// The count does not fit in `u64`; the offset is the count's first digit.
    CountOverflow,
    /// After the count, neither `/` nor `per` was found.
    ExpectedSeparator,
    /// The period's multiple (the `7` of `500/7 days`) does not fit in `u64`; the offset is
    /// its first digit.
    MultipleOverflow,
    /// The period's multiple was zero (`10/0 seconds`); the offset is its first digit.
    ZeroMultiple,
    /// A time unit (ASCII letters) was expected but something else, or nothing, was found.
    ExpectedUnit,
    /// The word at the offset, `len` bytes long, is not a known time unit. The offending
    /// slice of the input is `&input[offset..offset + len]`.
    UnknownUnit {
        /// The length in bytes of the unknown unit name.
        len: usize,
    },
    /// A `(burst N)` suffix was started with `(` but is malformed at the offset.
    ExpectedBurst,
    /// The burst of a `(burst N)` suffix does not fit in `u64`; the offset is its first digit.
    BurstOverflow,
    /// The item is complete but is followed by something other than whitespace, a list
    /// separator, or the end of the input.
    TrailingInput,
    /// [`Quota::parse`] was given a list of more than one item; the offset is the first
    /// separator (`,`, `;` or `|`).
    MoreThanOne,
    /// The rate string is well formed but does not make a valid [`Quota`]. The offset is the
    /// period (its multiple, or its unit when it has none) for
    /// [`QuotaError::PeriodOverflow`], the count for [`QuotaError::ZeroRate`], and for the
    /// others the burst's digits when a `(burst N)` suffix gives the burst, else the count.
    Quota(QuotaError),
}

/// Why a rate string could not be parsed, and the byte offset in the input where.
///
/// Offsets are relative to the whole string given to [`Quota::parse`] or [`parse_quotas`],
/// even for the later items of a list, and always fall on a `char` boundary.
///
/// ```
/// use cellgate::{ParseErrorKind, Quota};
/// let error = Quota::parse("10 / fortnight").unwrap_err();
/// assert_eq!(error.kind(), ParseErrorKind::UnknownUnit { len: 9 });
/// assert_eq!(error.offset(), 5);
/// assert_eq!(error.to_string(), r#"unknown time unit "fortnight" at byte 5"#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    /// For [`ParseErrorKind::UnknownUnit`]: the name, for `Display`, which has no access to
    /// the input. Empty for every other kind.
    name: UnitName,
}

/// The first [`NAME_CAPACITY`] bytes of an unknown unit name (ASCII letters), padded with
/// zeros; inline because [`ParseError`] is `Copy` and the crate does not allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct UnitName([u8; NAME_CAPACITY]);

impl UnitName {
    fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_CAPACITY);
        self.0
            .get(..len)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }
}

impl fmt::Debug for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl ParseError {
    const fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self {
            kind,
            offset,
            name: UnitName([0; NAME_CAPACITY]),
        }
    }

    /// `word` must be ASCII letters (so that any prefix of it is valid UTF-8 without NULs).
    fn unknown_unit(word: &str, offset: usize) -> Self {
        let mut error = Self::new(ParseErrorKind::UnknownUnit { len: word.len() }, offset);
        for (slot, byte) in error.name.0.iter_mut().zip(word.bytes()) {
            *slot = byte;
        }
        error
    }

    /// What was wrong.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The byte offset in the input at which the problem was found (see each
    /// [`ParseErrorKind`] variant for exactly where); at most the input's length.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ParseError {
    /// Describes the problem and where, e.g. `expected a count at byte 0` or
    /// `unknown time unit "fortnight" at byte 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ParseErrorKind::Empty => f.write_str("expected a rate limit, found nothing")?,
            ParseErrorKind::ExpectedCount => f.write_str("expected a count")?,
            ParseErrorKind::CountOverflow => f.write_str("count does not fit in u64")?,
            ParseErrorKind::ExpectedSeparator => f.write_str(r#"expected "/" or "per""#)?,
            ParseErrorKind::MultipleOverflow => {
                f.write_str("period multiple does not fit in u64")?;
            }
            ParseErrorKind::ZeroMultiple => f.write_str("period multiple must be at least 1")?,
            ParseErrorKind::ExpectedUnit => f.write_str("expected a time unit")?,
            ParseErrorKind::UnknownUnit { len } => {
                let name = self.name.as_str();
                let ellipsis = if len > NAME_CAPACITY { "..." } else { "" };
                write!(f, "unknown time unit \"{name}{ellipsis}\"")?;
            }
            ParseErrorKind::ExpectedBurst => f.write_str(r#"expected "(burst N)""#)?,
            ParseErrorKind::BurstOverflow => f.write_str("burst does not fit in u64")?,
            ParseErrorKind::TrailingInput => f.write_str("unexpected trailing input")?,
            ParseErrorKind::MoreThanOne => {
                f.write_str("expected one rate limit, found a list separator")?;
            }
            ParseErrorKind::Quota(error) => write!(f, "{error}")?,
        }
        write!(f, " at byte {}", self.offset)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseErrorKind::Quota(error) => Some(error),
            _ => None,
        }
    }
}

/// Python `str.isspace`, which is what `limits`' `\s` matches: Unicode White_Space plus the
/// ASCII information separators U+001C..U+001F.
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}')
}

fn is_list_separator(byte: u8) -> bool {
    matches!(byte, b',' | b';' | b'|')
}

/// A position in the input. Every method leaves `pos` on a `char` boundary and at most
/// `input.len()`.
struct Cursor<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    /// Advances past `len` bytes of [`Self::rest`] that are known to end on a char boundary.
    fn advance(&mut self, len: usize) {
        self.pos = self.pos.saturating_add(len).min(self.input.len());
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        let skipped = rest
            .char_indices()
            .find(|&(_, c)| !is_space(c))
            .map_or(rest.len(), |(index, _)| index);
        self.advance(skipped);
    }

    /// Takes the longest prefix of [`Self::rest`] whose bytes satisfy `accept` (ASCII only).
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.bytes().position(|b| !accept(b)).unwrap_or(rest.len());
        let taken = rest.get(..len).unwrap_or("");
        self.advance(len);
        taken
    }

    /// Takes `word` (ASCII case-insensitive) if [`Self::rest`] starts with it.
    fn eat_word(&mut self, word: &str) -> bool {
        let matches = self
            .rest()
            .as_bytes()
            .get(..word.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(word.as_bytes()));
        if matches {
            self.advance(word.len());
        }
        matches
    }

    /// Takes a run of ASCII digits as a `u64`: `None` if there is none, `Some(None)` if it
    /// overflows. Returns the offset of the first digit as well.
    fn number(&mut self) -> (usize, Option<Option<u64>>) {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return (start, None);
        }
        let value = digits.bytes().try_fold(0_u64, |acc, b| {
            let digit = u64::from(char::from(b).to_digit(10)?);
            acc.checked_mul(10)?.checked_add(digit)
        });
        (start, Some(value))
    }
}

/// Parses the item that starts at `pos` (leading whitespace included). On success returns
/// the quota and, when the item is followed by a list separator, the separator's offset.
fn parse_item(input: &str, pos: usize) -> Result<(Quota, Option<usize>), ParseError> {
    let mut cursor = Cursor { input, pos };
    let err = |kind: ParseErrorKind, offset: usize| Err(ParseError::new(kind, offset));

    cursor.skip_space();
    let (count_at, count) = cursor.number();
    let count = match count {
        Some(Some(count)) => count,
        Some(None) => return err(ParseErrorKind::CountOverflow, count_at),
        None if cursor.peek().is_none_or(is_list_separator) => {
            return err(ParseErrorKind::Empty, count_at);
        }
        None => return err(ParseErrorKind::ExpectedCount, count_at),
    };

    cursor.skip_space();
    if !(cursor.eat_word("/") || cursor.eat_word("per")) {
        return err(ParseErrorKind::ExpectedSeparator, cursor.pos);
    }

    cursor.skip_space();
    let (period_at, multiple) = cursor.number();
    let multiple = match multiple {
        Some(Some(0)) => return err(ParseErrorKind::ZeroMultiple, period_at),
        Some(Some(multiple)) => multiple,
        Some(None) => return err(ParseErrorKind::MultipleOverflow, period_at),
        None => 1,
    };

    cursor.skip_space();
    let unit_at = cursor.pos;
    let word = cursor.take_while(|b| b.is_ascii_alphabetic());
    if word.is_empty() {
        return err(ParseErrorKind::ExpectedUnit, unit_at);
    }
    let Some(&(_, unit_ns)) = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
    else {
        return Err(ParseError::unknown_unit(word, unit_at));
    };
    let Some(period_ns) = multiple.checked_mul(unit_ns) else {
        return err(ParseErrorKind::Quota(QuotaError::PeriodOverflow), period_at);
    };

    cursor.skip_space();
    // The optional `(burst N)`: the burst and the offset of its digits.
    let mut burst = None;
    if cursor.eat_word("(") {
        cursor.skip_space();
        if !cursor.eat_word("burst") {
            return err(ParseErrorKind::ExpectedBurst, cursor.pos);
        }
        cursor.skip_space();
        let (burst_at, value) = cursor.number();
        match value {
            Some(Some(value)) => burst = Some((value, burst_at)),
            Some(None) => return err(ParseErrorKind::BurstOverflow, burst_at),
            None => return err(ParseErrorKind::ExpectedBurst, burst_at),
        }
        cursor.skip_space();
        if !cursor.eat_word(")") {
            return err(ParseErrorKind::ExpectedBurst, cursor.pos);
        }
        cursor.skip_space();
    }

    // Built in one step, so that a burst that makes an otherwise too large quota fit (or the
    // reverse) is judged on the quota actually asked for.
    let (burst_cost, burst_at) = burst.unwrap_or((count, count_at));
    let quota = match Quota::with_parts(count, period_ns, burst_cost) {
        Ok(quota) => quota,
        Err(error @ QuotaError::ZeroRate) => return err(ParseErrorKind::Quota(error), count_at),
        Err(error) => return err(ParseErrorKind::Quota(error), burst_at),
    };

    match cursor.peek() {
        None => Ok((quota, None)),
        Some(byte) if is_list_separator(byte) => Ok((quota, Some(cursor.pos))),
        Some(_) => err(ParseErrorKind::TrailingInput, cursor.pos),
    }
}

/// The quotas of a rate-string list such as `"10/second; 1000/day"`, parsed lazily and
/// without allocation; returned by [`parse_quotas`].
///
/// Yields one `Ok(Quota)` per item in order, or an `Err` for the first item that fails, after
/// which it yields nothing more (it is fused). It always yields at least one item: an empty
/// input yields [`ParseErrorKind::Empty`].
#[derive(Clone, Debug)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct QuotaList<'a> {
    input: &'a str,
    /// Where the next item starts; `None` once the list is exhausted or has failed.
    next: Option<usize>,
}

impl Iterator for QuotaList<'_> {
    type Item = Result<Quota, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let pos = self.next.take()?;
        Some(parse_item(self.input, pos).map(|(quota, separator)| {
            self.next = separator.map(|at| at.saturating_add(1));
            quota
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.next {
            None => (0, Some(0)),
            Some(pos) => {
                let remaining = self.input.get(pos..).unwrap_or("");
                let separators = remaining.bytes().filter(|&b| is_list_separator(b)).count();
                (1, Some(separators.saturating_add(1)))
            }
        }
    }
}

impl FusedIterator for QuotaList<'_> {}

/// Parses a list of rate strings separated by `,`, `;` or `|` (`"10/s; 1000/day"`), as
/// `limits.parse_many` does; see [`Quota::parse`] for the grammar of an item.
///
/// The returned iterator yields each quota in order and stops after the first error. Errors:
/// every [`ParseErrorKind`] except `MoreThanOne`; an empty input, or an empty item (`"1/s;"`,
/// `"1/s;;2/s"`), is [`ParseErrorKind::Empty`]. Offsets are relative to `s`.
///
/// ```
/// use cellgate::{parse_quotas, ParseErrorKind};
/// let mut quotas = parse_quotas("10/second | 100 per minute, oops");
/// assert_eq!(quotas.next().unwrap().unwrap().rate_cost(), 10);
/// assert_eq!(quotas.next().unwrap().unwrap().rate_cost(), 100);
/// let error = quotas.next().unwrap().unwrap_err();
/// assert_eq!((error.kind(), error.offset()), (ParseErrorKind::ExpectedCount, 28));
/// assert!(quotas.next().is_none());
/// ```
pub fn parse_quotas(s: &str) -> QuotaList<'_> {
    QuotaList {
        input: s,
        next: Some(0),
    }
}

impl Quota {
    /// Parses exactly one rate string, such as `"10/second"`, `"10 per minute"`,
    /// `"500/7 days"` or `"5/7 nanoseconds (burst 2)"`, in the notation of Python's `limits`
    /// library (with extensions):
    ///
    /// ```text
    /// item = count ("/" | "per") [multiple] unit ["(" "burst" count ")"]
    /// ```
    ///
    /// Counts and the multiple are ASCII-digit `u64`s (the multiple defaults to 1 and must not
    /// be 0); whitespace is optional between tokens; words are ASCII case-insensitive. The
    /// period is `multiple × unit`, the unit one of `ns`/`nanosecond(s)`, `us`/`microsecond(s)`,
    /// `ms`/`millisecond(s)`, `s`/`sec`/`secs`/`second(s)`, `m`/`min`/`mins`/`minute(s)`,
    /// `h`/`hr`/`hrs`/`hour(s)`, `d`/`day(s)`, `month(s)` (30 days, as in `limits`) or
    /// `year(s)` (360 days, as in `limits`). The burst is the count unless a `(burst N)`
    /// suffix gives it. Reads back everything `Display` writes.
    ///
    /// # Errors
    /// A [`ParseError`] for the first problem found: any [`ParseErrorKind`], including
    /// [`ParseErrorKind::MoreThanOne`] at the first list separator when `s` is a list (use
    /// [`parse_quotas`] for lists), and [`ParseErrorKind::Quota`] when the numbers do not
    /// make a valid quota (a zero count, a period over `u64::MAX` nanoseconds, …).
    ///
    /// ```
    /// use cellgate::{ParseErrorKind, Quota, NS_PER_MINUTE};
    /// let quota = Quota::parse("  5 PER 10 Minutes ").unwrap();
    /// assert_eq!((quota.rate_cost(), quota.period_ns()), (5, 10 * NS_PER_MINUTE));
    /// let error = Quota::parse("10/s; 1000/day").unwrap_err();
    /// assert_eq!((error.kind(), error.offset()), (ParseErrorKind::MoreThanOne, 4));
    /// ```
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match parse_item(s, 0)? {
            (quota, None) => Ok(quota),
            (_, Some(separator)) => Err(ParseError::new(ParseErrorKind::MoreThanOne, separator)),
        }
    }
}

impl FromStr for Quota {
    type Err = ParseError;

    /// As [`Quota::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    fn parts(s: &str) -> (u64, u64) {
        let quota = Quota::parse(s).unwrap();
        assert_eq!(quota.burst_cost(), quota.rate_cost(), "{s}");
        (quota.rate_cost(), quota.period_ns())
    }

    fn error(s: &str) -> (ParseErrorKind, usize) {
        let error = Quota::parse(s).unwrap_err();
        (error.kind(), error.offset())
    }

    fn list(s: &str) -> Vec<Result<(u64, u64), (ParseErrorKind, usize)>> {
        parse_quotas(s)
            .map(|item| {
                item.map(|q| (q.rate_cost(), q.period_ns()))
                    .map_err(|e| (e.kind(), e.offset()))
            })
            .collect()
    }

    #[test]
    fn brief_examples() {
        assert_eq!(parts("10/second"), (10, NS_PER_SECOND));
        assert_eq!(parts("10 per minute"), (10, NS_PER_MINUTE));
        assert_eq!(parts("10/s"), (10, NS_PER_SECOND));
        assert_eq!(parts("500/7 days"), (500, 7 * NS_PER_DAY));
        assert_eq!(parts("500/7 days"), (500, 604_800_000_000_000));
        assert_eq!(parts("13/7 seconds"), (13, 7_000_000_000));
        assert_eq!(parts("1/day"), (1, 86_400_000_000_000));
        assert_eq!(parts("  5 PER 10 Minutes "), (5, 600_000_000_000));
        assert_eq!(
            list("10/s; 1000/day"),
            vec![Ok((10, NS_PER_SECOND)), Ok((1000, NS_PER_DAY))]
        );
    }

    #[test]
    fn every_unit_in_every_case() {
        let expected: &[(&str, u64)] = &[
            ("ns", 1),
            ("nanosecond", 1),
            ("nanoseconds", 1),
            ("us", 1_000),
            ("microsecond", 1_000),
            ("microseconds", 1_000),
            ("ms", 1_000_000),
            ("millisecond", 1_000_000),
            ("milliseconds", 1_000_000),
            ("s", 1_000_000_000),
            ("sec", 1_000_000_000),
            ("secs", 1_000_000_000),
            ("second", 1_000_000_000),
            ("seconds", 1_000_000_000),
            ("m", 60_000_000_000),
            ("min", 60_000_000_000),
            ("mins", 60_000_000_000),
            ("minute", 60_000_000_000),
            ("minutes", 60_000_000_000),
            ("h", 3_600_000_000_000),
            ("hr", 3_600_000_000_000),
            ("hrs", 3_600_000_000_000),
            ("hour", 3_600_000_000_000),
            ("hours", 3_600_000_000_000),
            ("d", 86_400_000_000_000),
            ("day", 86_400_000_000_000),
            ("days", 86_400_000_000_000),
            ("month", 2_592_000_000_000_000),
            ("months", 2_592_000_000_000_000),
            ("year", 31_104_000_000_000_000),
            ("years", 31_104_000_000_000_000),
        ];
        assert_eq!(expected.len(), UNITS.len());
        for &(name, ns) in expected {
            for spelled in [
                name.to_string(),
                name.to_ascii_uppercase(),
                capitalize(name),
            ] {
                assert_eq!(parts(&std::format!("3/{spelled}")), (3, ns), "{spelled}");
                assert_eq!(parts(&std::format!("3 per 2 {spelled}")), (3, 2 * ns));
            }
        }
    }

    fn capitalize(name: &str) -> String {
        let mut chars = name.chars();
        chars
            .next()
            .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn limits_compatible_forms() {
        // Straight from the `limits` documentation.
        assert_eq!(parts("10 per hour"), (10, NS_PER_HOUR));
        assert_eq!(parts("10/hour"), (10, NS_PER_HOUR));
        assert_eq!(
            list("10/hour;100/day;2000 per year"),
            vec![
                Ok((10, NS_PER_HOUR)),
                Ok((100, NS_PER_DAY)),
                Ok((2000, 360 * NS_PER_DAY))
            ]
        );
        assert_eq!(
            list("100/day, 500/7days"),
            vec![Ok((100, NS_PER_DAY)), Ok((500, 7 * NS_PER_DAY))]
        );
        // Whitespace is optional everywhere, as with limits' `\s*`.
        assert_eq!(parts("10per7days"), (10, 7 * NS_PER_DAY));
        assert_eq!(parts("10 PeR7 DAYS"), (10, 7 * NS_PER_DAY));
        assert_eq!(
            parts("\t10\n/\r\n2\x0bminutes\x0c"),
            (10, 2 * NS_PER_MINUTE)
        );
        assert_eq!(parts("\u{1c}10/s\u{1f}"), (10, NS_PER_SECOND));
        assert_eq!(
            parts("10\u{a0}per\u{3000}minute\u{2029}"),
            (10, NS_PER_MINUTE)
        );
        assert_eq!(parts("010/01 second"), (10, NS_PER_SECOND));
        assert_eq!(parts("1/month"), (1, 30 * NS_PER_DAY));
        assert_eq!(parts("1/year"), (1, 360 * NS_PER_DAY));
        assert_eq!(parts("2/3 Years"), (2, 3 * 360 * NS_PER_DAY));
        assert_eq!(
            list("1/s|2/m , 3/h"),
            vec![
                Ok((1, NS_PER_SECOND)),
                Ok((2, NS_PER_MINUTE)),
                Ok((3, NS_PER_HOUR))
            ]
        );
    }

    #[test]
    fn burst_suffix() {
        let quota = Quota::parse("10/s (burst 5)").unwrap();
        assert_eq!(
            (quota.rate_cost(), quota.period_ns(), quota.burst_cost()),
            (10, NS_PER_SECOND, 5)
        );
        assert_eq!(
            error("10/s( BURST 50 ) ;"),
            (ParseErrorKind::MoreThanOne, 17)
        );
        assert_eq!(
            parse_quotas("10/s(burst 50); 1/d")
                .map(|q| q.unwrap().burst_cost())
                .collect::<Vec<_>>(),
            vec![50, 1]
        );
        assert_eq!(error("10/s (bust 5)"), (ParseErrorKind::ExpectedBurst, 6));
        assert_eq!(error("10/s (burst)"), (ParseErrorKind::ExpectedBurst, 11));
        assert_eq!(error("10/s (burst 5"), (ParseErrorKind::ExpectedBurst, 13));
        assert_eq!(error("10/s (burst 5]"), (ParseErrorKind::ExpectedBurst, 13));
        assert_eq!(error("10/s ("), (ParseErrorKind::ExpectedBurst, 6));
        assert_eq!(
            error("10/s (burst 99999999999999999999)"),
            (ParseErrorKind::BurstOverflow, 12)
        );
        assert_eq!(
            error("10/s (burst 0)"),
            (ParseErrorKind::Quota(QuotaError::ZeroBurst), 12)
        );
        assert_eq!(
            error("1/s (burst 18446744073709551615)"),
            (ParseErrorKind::Quota(QuotaError::CapacityOverflow), 11)
        );
        assert_eq!(
            error("10/s (burst 5) x"),
            (ParseErrorKind::TrailingInput, 15)
        );
        assert_eq!(
            error("10/s (burst 5)(burst 6)"),
            (ParseErrorKind::TrailingInput, 14)
        );
    }

    #[test]
    fn each_error_kind_and_offset() {
        use ParseErrorKind as K;
        assert_eq!(error(""), (K::Empty, 0));
        assert_eq!(error("   "), (K::Empty, 3));
        assert_eq!(error(" ;1/s"), (K::Empty, 1));
        assert_eq!(error("abc"), (K::ExpectedCount, 0));
        assert_eq!(error("  x/s"), (K::ExpectedCount, 2));
        assert_eq!(error("-1/s"), (K::ExpectedCount, 0));
        assert_eq!(error("/s"), (K::ExpectedCount, 0));
        assert_eq!(error("\u{ff11}/s"), (K::ExpectedCount, 0)); // fullwidth digit one
        assert_eq!(error("18446744073709551616/s"), (K::CountOverflow, 0));
        assert_eq!(error(" 99999999999999999999999/s"), (K::CountOverflow, 1));
        assert_eq!(error("10"), (K::ExpectedSeparator, 2));
        assert_eq!(error("10 second"), (K::ExpectedSeparator, 3));
        assert_eq!(error("10 pr second"), (K::ExpectedSeparator, 3));
        assert_eq!(error("10 pe"), (K::ExpectedSeparator, 3));
        assert_eq!(error("10 \\ second"), (K::ExpectedSeparator, 3));
        assert_eq!(error("10/18446744073709551616 s"), (K::MultipleOverflow, 3));
        assert_eq!(error("10 per  0 s"), (K::ZeroMultiple, 8));
        assert_eq!(error("10/000 s"), (K::ZeroMultiple, 3));
        assert_eq!(error("10/5"), (K::ExpectedUnit, 4));
        assert_eq!(error("10/ "), (K::ExpectedUnit, 4));
        assert_eq!(error("10/\u{e9}"), (K::ExpectedUnit, 3));
        assert_eq!(error("10/;"), (K::ExpectedUnit, 3));
        assert_eq!(error("10 / fortnight"), (K::UnknownUnit { len: 9 }, 5));
        assert_eq!(error("10/secondx"), (K::UnknownUnit { len: 7 }, 3));
        assert_eq!(error("10/ss"), (K::UnknownUnit { len: 2 }, 3));
        assert_eq!(error("10/2 weeks"), (K::UnknownUnit { len: 5 }, 5));
        assert_eq!(error("10/s x"), (K::TrailingInput, 5));
        assert_eq!(error("10/s1"), (K::TrailingInput, 4));
        assert_eq!(error("10/s \u{e9}"), (K::TrailingInput, 5));
        assert_eq!(error("10/s/"), (K::TrailingInput, 4));
        // Accepted by `limits` through its `(:?` typo and Unicode case folding; not here.
        assert_eq!(error("1/s:;2/s"), (K::TrailingInput, 3));
        assert_eq!(error("1/month\u{17f}"), (K::TrailingInput, 7));
        assert_eq!(error("10/s;5/m"), (K::MoreThanOne, 4));
        assert_eq!(error("10/s ;"), (K::MoreThanOne, 5));
        assert_eq!(error("10/s|garbage"), (K::MoreThanOne, 4));
        assert_eq!(error("0/s"), (K::Quota(QuotaError::ZeroRate), 0));
        assert_eq!(error(" 0 per day"), (K::Quota(QuotaError::ZeroRate), 1));
        assert_eq!(
            error("1/18446744073709551615 days"),
            (K::Quota(QuotaError::PeriodOverflow), 2)
        );
        assert_eq!(
            error("5 per 600 years"),
            (K::Quota(QuotaError::PeriodOverflow), 6)
        );
        assert_eq!(
            error("18446744073709551615/ns"),
            (K::Quota(QuotaError::CapacityOverflow), 0)
        );
    }

    #[test]
    fn period_limits() {
        // 593 years of 360 days fit in u64 nanoseconds; 594 do not.
        // 593 years of 360 days fit in u64 nanoseconds, 594 do not; but a quota's capacity
        // (at least its period) must fit in MAX_CAPACITY_TICKS, so 296 years is the longest.
        assert_eq!(parts("1/296 years"), (1, 296 * 360 * NS_PER_DAY));
        assert_eq!(
            error("1/297 years"),
            (ParseErrorKind::Quota(QuotaError::CapacityOverflow), 0)
        );
        assert_eq!(
            error("1/593 years"),
            (ParseErrorKind::Quota(QuotaError::CapacityOverflow), 0)
        );
        assert_eq!(
            error("1/594 years"),
            (ParseErrorKind::Quota(QuotaError::PeriodOverflow), 2)
        );
        // A burst smaller than the rate can make a quota fit that would not with the default.
        let quota = Quota::parse("18446744073709551615/1ns (burst 9223372036854775807)").unwrap();
        assert_eq!(quota.burst_cost(), 9_223_372_036_854_775_807);
        assert_eq!(
            error("18446744073709551615/1ns (burst 9223372036854775808)"),
            (ParseErrorKind::Quota(QuotaError::CapacityOverflow), 32)
        );
        assert_eq!(
            parts("1/9223372036854775807 ns"),
            (1, 9_223_372_036_854_775_807)
        );
        // Fits in u64 but not in the exact representation: the capacity overflows.
        assert_eq!(
            error("1/18446744073709551615 ns"),
            (ParseErrorKind::Quota(QuotaError::CapacityOverflow), 0)
        );
    }

    #[test]
    fn display_messages() {
        let shown = |s: &str| Quota::parse(s).unwrap_err().to_string();
        assert_eq!(shown(""), "expected a rate limit, found nothing at byte 0");
        assert_eq!(shown("x"), "expected a count at byte 0");
        assert_eq!(
            shown("99999999999999999999/s"),
            "count does not fit in u64 at byte 0"
        );
        assert_eq!(shown("1 s"), r#"expected "/" or "per" at byte 2"#);
        assert_eq!(
            shown("1/99999999999999999999 s"),
            "period multiple does not fit in u64 at byte 2"
        );
        assert_eq!(
            shown("1/0s"),
            "period multiple must be at least 1 at byte 2"
        );
        assert_eq!(shown("1/"), "expected a time unit at byte 2");
        assert_eq!(
            shown("10 / fortnight"),
            r#"unknown time unit "fortnight" at byte 5"#
        );
        assert_eq!(
            shown("1/abcdefghijklmnopqrstuvwxyz"),
            r#"unknown time unit "abcdefghijklmnopqrstuvwx..." at byte 2"#
        );
        assert_eq!(shown("1/s (b"), r#"expected "(burst N)" at byte 5"#);
        assert_eq!(
            shown("1/s (burst 99999999999999999999)"),
            "burst does not fit in u64 at byte 11"
        );
        assert_eq!(shown("1/s s"), "unexpected trailing input at byte 4");
        assert_eq!(
            shown("1/s, 2/s"),
            "expected one rate limit, found a list separator at byte 3"
        );
        assert_eq!(
            shown("0/s"),
            "rate must be at least 1 cost unit per period at byte 0"
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn error_source() {
        use std::error::Error as _;
        assert!(Quota::parse("0/s").unwrap_err().source().is_some());
        assert!(Quota::parse("x").unwrap_err().source().is_none());
    }

    #[test]
    fn debug_shows_the_name() {
        assert_eq!(
            std::format!("{:?}", Quota::parse("1/fortnight").unwrap_err()),
            r#"ParseError { kind: UnknownUnit { len: 9 }, offset: 2, name: "fortnight" }"#
        );
    }

    #[test]
    fn lists() {
        use ParseErrorKind as K;
        assert_eq!(list(""), vec![Err((K::Empty, 0))]);
        assert_eq!(list(" \t"), vec![Err((K::Empty, 2))]);
        assert_eq!(
            list("1/s;"),
            vec![Ok((1, NS_PER_SECOND)), Err((K::Empty, 4))]
        );
        assert_eq!(
            list("1/s, "),
            vec![Ok((1, NS_PER_SECOND)), Err((K::Empty, 5))]
        );
        assert_eq!(
            list("1/s;;2/s"),
            vec![Ok((1, NS_PER_SECOND)), Err((K::Empty, 4))]
        );
        // Stops after the first error; offsets are relative to the whole input.
        assert_eq!(
            list("1/s; x; 2/s"),
            vec![Ok((1, NS_PER_SECOND)), Err((K::ExpectedCount, 5))]
        );
        assert_eq!(
            list("1/s | 2/fortnight"),
            vec![Ok((1, NS_PER_SECOND)), Err((K::UnknownUnit { len: 9 }, 8))]
        );
        assert_eq!(
            list("1/s,2/s x,3/s"),
            vec![Ok((1, NS_PER_SECOND)), Err((K::TrailingInput, 8))]
        );
        let mut quotas = parse_quotas("x");
        assert!(quotas.next().unwrap().is_err());
        assert!(quotas.next().is_none());
        assert!(quotas.next().is_none());
        // size_hint brackets the actual count.
        let quotas = parse_quotas("1/s;2/s|3/s");
        assert_eq!(quotas.size_hint(), (1, Some(3)));
        assert_eq!(quotas.count(), 3);
    }

    #[test]
    fn from_str() {
        let quota: Quota = "3/second".parse().unwrap();
        assert_eq!(quota, Quota::per_second(3).unwrap());
        assert_eq!(
            "x".parse::<Quota>().unwrap_err().kind(),
            ParseErrorKind::ExpectedCount
        );
    }

    #[test]
    fn round_trips() {
        let quotas = [
            Quota::per_second(3).unwrap(),
            Quota::new(100, 60 * NS_PER_SECOND).unwrap(),
            Quota::new(5, 7).unwrap(),
            Quota::new(1, 1_500_000_000).unwrap(),
            Quota::per_seconds(500, 7 * 86_400).unwrap(),
            Quota::per_minute(100).unwrap().with_burst(20).unwrap(),
            Quota::new(7, 333).unwrap().with_burst(1).unwrap(),
            Quota::with_parts(u64::MAX, 1, u64::MAX / 2).unwrap(),
        ];
        for quota in quotas {
            let text = quota.to_string();
            assert_eq!(Quota::parse(&text), Ok(quota), "{text}");
            assert_eq!(
                parse_quotas(&text).collect::<Vec<_>>(),
                vec![Ok(quota)],
                "{text}"
            );
        }
        assert_eq!(Quota::new(5, 7).unwrap().to_string(), "5/7 nanoseconds");
    }

    const TOKENS: &[&str] = &[
        "",
        " ",
        "  ",
        "\t",
        "\u{a0}",
        "\u{3000}",
        "0",
        "1",
        "7",
        "10",
        "500",
        "010",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
        "/",
        "per",
        "PER",
        "pe",
        "s",
        "sec",
        "second",
        "seconds",
        "m",
        "min",
        "minutes",
        "h",
        "hours",
        "d",
        "day",
        "days",
        "month",
        "year",
        "years",
        "ms",
        "us",
        "ns",
        "nanoseconds",
        "fortnight",
        "week",
        ",",
        ";",
        "|",
        "(",
        ")",
        "burst",
        "BURST",
        "x",
        "-",
        ".",
        "\u{e9}",
        "\u{1f600}",
        "\u{ff11}",
        "\u{1c}",
    ];

    fn token_string() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..12)
            .prop_map(|tokens| tokens.concat())
    }

    fn plausible_item() -> impl Strategy<Value = String> {
        (
            prop::sample::select(&["", " ", "0", "1", "10", "18446744073709551616"][..]),
            prop::sample::select(&["/", " per ", "PER", " ", "p"][..]),
            prop::sample::select(&["", "0", "7 ", "2", "100000"][..]),
            prop::sample::select(&["s", "second", "Minutes", "day", "year", "ns", "x", ""][..]),
            prop::sample::select(&["", " ", " (burst 3)", "(burst 0)", "(", " y"][..]),
        )
            .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].concat())
    }

    /// Checks the invariants that hold for every input and returns the list's results.
    fn check(s: &str) -> Vec<Result<Quota, ParseError>> {
        let single = Quota::parse(s);
        let items: Vec<_> = parse_quotas(s).collect();
        assert!(!items.is_empty());
        let last_error = items.iter().position(Result::is_err);
        assert!(last_error.is_none_or(|at| at + 1 == items.len()));
        for error in items
            .iter()
            .filter_map(|item| item.as_ref().err())
            .chain(single.as_ref().err())
        {
            assert!(error.offset() <= s.len());
            assert!(s.is_char_boundary(error.offset()));
            let _ = error.to_string();
            if let ParseErrorKind::UnknownUnit { len } = error.kind() {
                let end = error.offset() + len;
                assert!(s
                    .get(error.offset()..end)
                    .is_some_and(|w| w.bytes().all(|b| b.is_ascii_alphabetic())));
            }
        }
        // `Quota::parse` is the list's first item, or MoreThanOne when the list goes on.
        match (&single, items.first(), items.len()) {
            (_, Some(first), 1) => assert_eq!(&single, first),
            (Err(error), Some(Ok(_)), _) => {
                assert_eq!(error.kind(), ParseErrorKind::MoreThanOne);
                assert!(is_list_separator(s.as_bytes()[error.offset()]));
            }
            _ => panic!("{s:?}: {single:?} vs {items:?}"),
        }
        if let Ok(quota) = single {
            assert_eq!(Quota::parse(&quota.to_string()), Ok(quota));
        }
        items
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_text_never_panics(s in "\\PC*") {
            check(&s);
        }

        #[test]
        fn any_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            check(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn token_soup_never_panics(s in token_string()) {
            check(&s);
        }

        #[test]
        fn plausible_lists(items in prop::collection::vec(plausible_item(), 1..4), sep in prop::sample::select(&[",", ";", "|", " ; "][..])) {
            let s = items.join(sep);
            let results = check(&s);
            // An item's result does not depend on the items around it.
            for (item, result) in items.iter().zip(&results) {
                let alone = Quota::parse(item);
                prop_assert_eq!(alone.map_err(|e| e.kind()), (*result).map_err(|e| e.kind()));
            }
        }

        #[test]
        fn single_items_agree(item in plausible_item()) {
            prop_assert_eq!(parse_quotas(&item).collect::<Vec<_>>(), vec![Quota::parse(&item)]);
        }

        #[test]
        fn display_round_trips(rate in 1..=u64::MAX, period in 1..=u64::MAX, burst in 1..=u64::MAX) {
            for quota in [Quota::new(rate, period), Quota::with_parts(rate, period, burst)].into_iter().flatten() {
                prop_assert_eq!(Quota::parse(&quota.to_string()), Ok(quota));
            }
        }

        #[test]
        fn well_formed_items(count in 1..1_000_000_u64, multiple in 1..1_000_u64, unit in 0..UNITS.len(), ws in "[ \t]{0,2}") {
            let (name, ns) = UNITS[unit];
            let s = std::format!("{ws}{count}{ws}/{ws}{multiple}{ws}{name}{ws}");
            let expected = match multiple.checked_mul(ns) {
                None => Err(ParseErrorKind::Quota(QuotaError::PeriodOverflow)),
                Some(period) => Quota::new(count, period).map_err(ParseErrorKind::Quota),
            };
            prop_assert_eq!(Quota::parse(&s).map_err(|e| e.kind()), expected);
        }
    }
}
