//! The header styles by the names every binding accepts, once: `"ietf"`, `"legacy"`,
//! `"legacy-epoch"`, `"anthropic"`, `"openai"`, `"draft-6"`, `"draft-7"`.

use super::{DimensionStyle, HeaderStyle};

/// A header style named without its wall clock: what a binding's `style` option names.
/// [`StyleName::with_now`] completes it with the Unix time the styles that show one need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StyleName {
    /// `"ietf"`: [`HeaderStyle::Ietf`].
    Ietf,
    /// `"legacy"`: [`HeaderStyle::Legacy`].
    Legacy,
    /// `"legacy-epoch"`: [`HeaderStyle::LegacyEpoch`] (reads the wall clock).
    LegacyEpoch,
    /// `"anthropic"`: [`DimensionStyle::anthropic`] (reads the wall clock).
    Anthropic,
    /// `"openai"`: [`DimensionStyle::openai`].
    OpenAi,
    /// `"draft-6"`: [`HeaderStyle::Draft6`].
    Draft6,
    /// `"draft-7"`: [`HeaderStyle::Draft7`].
    Draft7,
}

/// A style ready to render: over the policies ([`render_headers`](super::render_headers)) or
/// per dimension ([`render_dimension_headers`](super::render_dimension_headers)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedStyle {
    /// One of the policy styles.
    Policies(HeaderStyle),
    /// One of the per-dimension styles of LLM APIs.
    Dimensions(DimensionStyle<'static>),
}

impl StyleName {
    /// Every style, in the order of their indices (the order bindings list them in).
    pub const ALL: [Self; 7] = [
        Self::Ietf,
        Self::Legacy,
        Self::LegacyEpoch,
        Self::Anthropic,
        Self::OpenAi,
        Self::Draft6,
        Self::Draft7,
    ];

    /// The name every binding accepts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ietf => "ietf",
            Self::Legacy => "legacy",
            Self::LegacyEpoch => "legacy-epoch",
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::Draft6 => "draft-6",
            Self::Draft7 => "draft-7",
        }
    }

    /// The style `name` names ([`as_str`](Self::as_str)), or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|style| style.as_str() == name)
    }

    /// Whether the style shows a wall-clock time (so [`with_now`](Self::with_now) needs one).
    pub const fn reads_wall_clock(self) -> bool {
        matches!(self, Self::LegacyEpoch | Self::Anthropic)
    }

    /// The style, with `now_unix_s` (the wall clock in Unix seconds) for those that show it;
    /// ignored by the others.
    pub const fn with_now(self, now_unix_s: u64) -> NamedStyle {
        match self {
            Self::Ietf => NamedStyle::Policies(HeaderStyle::Ietf),
            Self::Legacy => NamedStyle::Policies(HeaderStyle::Legacy),
            Self::LegacyEpoch => NamedStyle::Policies(HeaderStyle::LegacyEpoch { now_unix_s }),
            Self::Anthropic => NamedStyle::Dimensions(DimensionStyle::anthropic(now_unix_s)),
            Self::OpenAi => NamedStyle::Dimensions(DimensionStyle::openai()),
            Self::Draft6 => NamedStyle::Policies(HeaderStyle::Draft6),
            Self::Draft7 => NamedStyle::Policies(HeaderStyle::Draft7),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StyleName;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for style in StyleName::ALL {
            assert_eq!(StyleName::from_name(style.as_str()), Some(style));
        }
        assert_eq!(StyleName::from_name("legacy_epoch"), None);
        assert_eq!(StyleName::from_name(""), None);
        assert!(StyleName::LegacyEpoch.reads_wall_clock() && !StyleName::Draft6.reads_wall_clock());
    }
}
