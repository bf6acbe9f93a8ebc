//! Core's configuration rules ([`cellgate::check_names`], the `max_keys` bounds) for the
//! JavaScript layer, which checks its arguments before anything is built and names the
//! argument at fault in its own terms.

use napi_derive::napi;

/// A name that core's rule refuses: its position and core's reason.
#[napi(object)]
pub struct NameProblem {
    /// Whether the list as a whole is too long (more names than a policy holds) rather than
    /// one name at fault.
    pub too_many: bool,
    /// The position of the name at fault.
    pub index: u32,
    /// Core's reason (`"name 1 repeats name 0: names must be unique"`).
    pub message: String,
}

/// Checks the names a limiter or policy will show in headers with core's rule (each non-empty
/// printable ASCII, all distinct, at most 8): `null` when they pass, else the first problem.
#[napi(js_name = "checkNames")]
pub fn check_names(names: Vec<String>) -> Option<NameProblem> {
    cellgate::check_names(&names)
        .err()
        .map(|error| NameProblem {
            too_many: matches!(error, cellgate::ConfigError::TooManyNames { .. }),
            index: u32::try_from(name_index(error)).unwrap_or(u32::MAX),
            message: error.to_string(),
        })
}

/// The position of the name a [`cellgate::check_names`] error is about (0 for a list that is
/// too long).
pub(crate) fn name_index(error: cellgate::ConfigError) -> usize {
    match error {
        cellgate::ConfigError::EmptyName { index }
        | cellgate::ConfigError::InvalidName { index }
        | cellgate::ConfigError::DuplicateName { index, .. } => index,
        _ => 0,
    }
}

/// Core's bounds for a keyed table, the same in every runtime.
#[napi(object)]
pub struct Limits {
    /// `maxKeys` when none is given ([`cellgate::DEFAULT_MAX_KEYS`]).
    pub default_max_keys: f64,
    /// The largest `maxKeys` accepted ([`cellgate::MAX_MAX_KEYS`], 2^27).
    pub max_max_keys: f64,
}

/// Core's bounds for `maxKeys`.
#[napi(js_name = "configLimits")]
pub fn limits() -> Limits {
    Limits {
        default_max_keys: cellgate::DEFAULT_MAX_KEYS as f64,
        max_max_keys: cellgate::MAX_MAX_KEYS as f64,
    }
}
