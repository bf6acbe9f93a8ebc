//! Where a `Limiter` or `Policy` keeps its tables: in this process
//! (`cellgate_host::in_process`) or in a file mapping every worker process of the host shares
//! (`cellgate_host::SharedTable::open_limiter`, JavaScript's `SharedMemory`). Both give core's
//! `Limiter<TableSlots>`; the choice is made here, once, for `Limiter` and `Policy`.
//!
//! A shared table's refusal is an `Error` whose message starts with its code
//! (`ERR_CELLGATE_SHARED_CONFIG_MISMATCH: ...`); `lib/errors.js` turns it into a
//! `SharedMemoryError` with that `code`.

use cellgate::{Limiter, LimiterOptions, LimiterQuota};
use cellgate_host::TableSlots;
use napi::{Error, Result, Status};
use napi_derive::napi;

/// A shared store as JavaScript's `SharedMemory` describes it (validated there first).
pub struct StoreSpec {
    /// The table file's path.
    pub path: String,
    /// `"owner"` (0600) or `"group"` (0660).
    pub access: String,
    /// Whether a file owned by another user is accepted.
    pub allow_other_owner: bool,
}

/// Opens `store`'s table for `quotas` and `options` (creating it if absent), or, without a
/// store, builds the in-process tables. `config_error` names the argument at fault for a
/// configuration core refuses.
pub(crate) fn open(
    store: Option<&StoreSpec>,
    quotas: &[LimiterQuota<'_>],
    options: LimiterOptions,
    config_error: impl FnOnce(cellgate::ConfigError) -> Error,
) -> Result<Limiter<TableSlots>> {
    let Some(store) = store else {
        return cellgate_host::in_process(quotas, options).map_err(config_error);
    };
    open_shared(store, quotas, options, config_error)
}

#[cfg(unix)]
fn open_shared(
    store: &StoreSpec,
    quotas: &[LimiterQuota<'_>],
    options: LimiterOptions,
    config_error: impl FnOnce(cellgate::ConfigError) -> Error,
) -> Result<Limiter<TableSlots>> {
    use cellgate_host::{Access, OpenOptions, SharedError, SharedTable};
    let access = match store.access.as_str() {
        "owner" => Access::Owner,
        "group" => Access::Group,
        _ => {
            return Err(crate::boundary::range_error(
                "options.store.access must be 'owner' or 'group'",
            ))
        }
    };
    let open_options = OpenOptions::new()
        .access(access)
        .allow_other_owner(store.allow_other_owner);
    SharedTable::open_limiter(&store.path, quotas, options, &open_options).map_err(|error| {
        match error {
            SharedError::Limiter(error) => config_error(error),
            error => shared_error(&store.path, &error),
        }
    })
}

#[cfg(not(unix))]
fn open_shared(
    store: &StoreSpec,
    _quotas: &[LimiterQuota<'_>],
    _options: LimiterOptions,
    _config_error: impl FnOnce(cellgate::ConfigError) -> Error,
) -> Result<Limiter<TableSlots>> {
    Err(coded(
        "ERR_CELLGATE_SHARED_UNSUPPORTED",
        &store.path,
        "shared-memory tables are built on Unix only",
    ))
}

/// An error whose message is `CODE: path: message` (see the module documentation).
fn coded(code: &str, path: &str, message: &str) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {path}: {message}"))
}

/// The code JavaScript gives each kind of refusal, and core's words for it.
#[cfg(unix)]
fn shared_error(path: &str, error: &cellgate_host::SharedError) -> Error {
    use cellgate_host::SharedError as E;
    let code = match error {
        E::Unsupported { .. } => "ERR_CELLGATE_SHARED_UNSUPPORTED",
        E::ConfigMismatch { .. } | E::WrongKind { .. } => "ERR_CELLGATE_SHARED_CONFIG_MISMATCH",
        E::Version { .. } => "ERR_CELLGATE_SHARED_VERSION",
        E::NotRegularFile | E::Truncated { .. } | E::NotATable | E::Corrupt => {
            "ERR_CELLGATE_SHARED_BAD_FILE"
        }
        E::Owner { .. } | E::Permissions { .. } => "ERR_CELLGATE_SHARED_PERMISSION",
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "ERR_CELLGATE_SHARED_PERMISSION"
        }
        _ => "ERR_CELLGATE_SHARED_IO",
    };
    coded(code, path, &error.to_string())
}

/// Removes the shared table file at `path`: `true` if there was one, `false` if none.
/// Processes that still map it keep their (now private) table; the next open creates a new
/// one.
///
/// # Errors
/// `ERR_CELLGATE_SHARED_IO` (or `_PERMISSION`) when the file cannot be removed.
#[napi(js_name = "removeSharedTable")]
pub fn remove_shared_table(path: String) -> Result<bool> {
    #[cfg(unix)]
    {
        cellgate_host::SharedTable::remove(&path).map_err(|error| shared_error(&path, &error))
    }
    #[cfg(not(unix))]
    {
        Err(coded(
            "ERR_CELLGATE_SHARED_UNSUPPORTED",
            &path,
            "shared-memory tables are built on Unix only",
        ))
    }
}
