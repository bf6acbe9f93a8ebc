//! The rate-string parser. Every input is checked twice: its bytes as text (lossy UTF-8, so the
//! committed seeds are plain rate strings such as `10/second`), and the same bytes read as a
//! structured input: a rate string assembled from grammar pieces (counts, `/` or `per`,
//! multiples, unit names in any case, burst suffixes, list separators, Unicode whitespace) so
//! that most inputs reach deep into the grammar, or a quota built from parts.
//!
//! - `Quota::parse`, `str::parse` and `parse_quotas` never panic; errors carry an offset within
//!   the input, on a character boundary, and render with `Display`.
//! - Round trip: a parsed quota's `Display` parses back to the same quota, and so does the
//!   `Display` of any quota built from parts.
//! - `Quota::parse` and `parse_quotas` agree: a single item parses the same both ways; a list is
//!   `MoreThanOne` for `Quota::parse` exactly when its first item parses; the list iterator
//!   yields at most one item per separator plus one, stops after its first error, and is fused.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use cellgate::{parse_quotas, ParseErrorKind, Quota};
use cellgate_fuzz::QuotaSpec;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Piece {
    Count(u64),
    SmallCount(u8),
    Slash,
    Per(u8),
    Unit(u8, u8),
    Burst(u64),
    Separator(u8),
    Space(u8),
    Byte(u8),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// A string assembled from grammar pieces.
    Pieces(Vec<Piece>),
    /// A quota built from parts, displayed and parsed back.
    Quota(QuotaSpec),
}

const UNITS: &[&str] = &[
    "ns",
    "nanosecond",
    "nanoseconds",
    "us",
    "microsecond",
    "microseconds",
    "ms",
    "millisecond",
    "milliseconds",
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
    "m",
    "min",
    "mins",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "d",
    "day",
    "days",
    "month",
    "months",
    "year",
    "years",
    "weeks",
    "sx",
];
const SPACES: &[&str] = &[
    " ", "\t", "\n", "\u{a0}", "\u{2003}", "\u{1f}", "\u{3000}", "  ",
];

fn assemble(pieces: &[Piece]) -> String {
    let mut text = String::new();
    for piece in pieces.iter().take(64) {
        match piece {
            Piece::Count(n) => text.push_str(&n.to_string()),
            Piece::SmallCount(n) => text.push_str(&n.to_string()),
            Piece::Slash => text.push('/'),
            Piece::Per(case) => text.push_str(["per", "PER", "Per", "pEr"][usize::from(*case % 4)]),
            Piece::Unit(index, case) => {
                let unit = UNITS[usize::from(*index) % UNITS.len()];
                if case % 3 == 0 {
                    text.push_str(&unit.to_ascii_uppercase());
                } else {
                    text.push_str(unit);
                }
            }
            Piece::Burst(n) => text.push_str(&format!("(burst {n})")),
            Piece::Separator(which) => text.push([',', ';', '|', ':'][usize::from(*which % 4)]),
            Piece::Space(which) => text.push_str(SPACES[usize::from(*which) % SPACES.len()]),
            Piece::Byte(byte) => text.push(char::from(*byte)),
            Piece::Text(more) => text.push_str(more),
        }
    }
    text
}

fn round_trip(quota: Quota) {
    let shown = quota.to_string();
    assert_eq!(
        Quota::parse(&shown),
        Ok(quota),
        "Display of {quota:?} is {shown:?}"
    );
}

fn check_text(text: &str) {
    let single = Quota::parse(text);
    assert_eq!(text.parse::<Quota>(), single);
    match single {
        Ok(quota) => {
            round_trip(quota);
            let mut list = parse_quotas(text);
            assert_eq!(list.next(), Some(Ok(quota)));
            assert_eq!(list.next(), None);
        }
        Err(error) => {
            assert!(
                error.offset() <= text.len(),
                "offset past the end: {error:?}"
            );
            assert!(
                text.is_char_boundary(error.offset()),
                "offset inside a char: {error:?}"
            );
            assert!(!error.to_string().is_empty());
        }
    }
    let separators = text
        .bytes()
        .filter(|b| matches!(b, b',' | b';' | b'|'))
        .count();
    let mut list = parse_quotas(text);
    let mut items = 0;
    let mut first: Option<Result<Quota, _>> = None;
    for item in list.by_ref() {
        items += 1;
        assert!(items <= separators + 1, "more items than separators allow");
        match item {
            Ok(quota) => round_trip(quota),
            Err(error) => {
                assert_ne!(error.kind(), ParseErrorKind::MoreThanOne);
                assert!(error.offset() <= text.len());
                assert!(text.is_char_boundary(error.offset()));
                first.get_or_insert(Err(error));
                break;
            }
        }
        first.get_or_insert(item);
    }
    assert_eq!(list.next(), None, "fused after the end or the first error");
    assert!(items >= 1, "a list always yields at least one item");
    if let Err(error) = single {
        if error.kind() == ParseErrorKind::MoreThanOne {
            assert!(
                matches!(first, Some(Ok(_))),
                "MoreThanOne, but the first item failed"
            );
        } else {
            // Failing for another reason: the list fails on its first item the same way,
            // unless the failure lay past the first separator (then the single parse reported
            // the first item fine and the separator as MoreThanOne, handled above).
            assert_eq!(first, Some(Err(error)));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_text(&String::from_utf8_lossy(data));
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Pieces(pieces) => check_text(&assemble(&pieces)),
        Input::Quota(spec) => {
            if let Some(quota) = spec.quota() {
                round_trip(quota);
            }
        }
    }
});
