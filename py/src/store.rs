//! `SharedMemory`: where a `Limiter` or `Policy` keeps its table when every worker process
//! of the host must share it (`cellgate_host::SharedTable`), and `cellgate_host`'s
//! `SharedError` as typed Python exceptions. The table's choice of store is made here, once
//! for `Limiter` and `Policy`: `cellgate_host::in_process` without a store, or
//! `SharedTable::open_limiter` with one; both give core's `Limiter<TableSlots>`.

use crate::boundary::{config_error, invalid, invalid_type, str_arg, type_name, Arguments, Given};
use crate::clock::TimeSource;
use cellgate::{LimiterOptions, LimiterQuota};
use cellgate_host::TableSlots;
use pyo3::create_exception;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};
use std::path::PathBuf;

create_exception!(
    cellgate,
    SharedMemoryError,
    PyOSError,
    "A shared-memory table could not be opened or removed. `path` holds the file's path. A \
     failed system call sets `errno`, `strerror`, `filename` and `operation`."
);
create_exception!(
    cellgate,
    SharedMemoryConfigMismatch,
    SharedMemoryError,
    "The file holds a table of another configuration than this process asked for. `field` \
     names the first difference (`\"rate_cost\"`, `\"period_ns\"`, `\"burst_cost\"`, \
     `\"dimension\"` of quota `quota`, or `\"quota_count\"`, `\"dimensions\"`, `\"refill\"`, \
     `\"max_keys\"`, ...), `file_value` its value in the file, `our_value` this process's. A \
     table is never resized: stop every worker, `SharedMemory.remove(path)`, start again."
);
create_exception!(
    cellgate,
    SharedMemoryBadFile,
    SharedMemoryError,
    "The file is not a usable shared table: `problem` is `\"not_a_table\"` (bad magic), \
     `\"corrupt\"` (header checksum), `\"truncated\"`, `\"version\"` (another layout; `field` \
     names it), `\"not_regular_file\"` (a directory, device or symbolic link) or \
     `\"wrong_kind\"`. Never reinterpreted, never a crash."
);
create_exception!(
    cellgate,
    SharedMemoryUnsupported,
    SharedMemoryError,
    "Shared tables need lock-free 64- and 128-bit atomics in hardware (x86_64 with cmpxchg16b, \
     aarch64) on a Unix system; here a process-local lock would protect nothing across \
     processes."
);
create_exception!(
    cellgate,
    SharedMemoryPermissionError,
    SharedMemoryError,
    "The file is owned by another user (`file_uid`, `our_uid`; pass \
     `allow_other_owner=True` to accept it) or grants more than the access asked for \
     (`file_mode`, `allowed_mode`). Whoever can write the file can reset anyone's limit."
);

/// Adds the exceptions and `SharedMemory` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SharedMemoryError", py.get_type::<SharedMemoryError>())?;
    m.add(
        "SharedMemoryConfigMismatch",
        py.get_type::<SharedMemoryConfigMismatch>(),
    )?;
    m.add("SharedMemoryBadFile", py.get_type::<SharedMemoryBadFile>())?;
    m.add(
        "SharedMemoryUnsupported",
        py.get_type::<SharedMemoryUnsupported>(),
    )?;
    m.add(
        "SharedMemoryPermissionError",
        py.get_type::<SharedMemoryPermissionError>(),
    )?;
    m.add_class::<SharedMemory>()?;
    Ok(())
}

/// Who may open the file besides its owner: `"owner"` (0600) or `"group"` (0660).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Owner,
    Group,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Group => "group",
        }
    }
}

/// A table in a file mapping that every process opening the same path shares (under
/// `/dev/shm`: memory). `SharedMemory(path, *, access="owner", allow_other_owner=False)`; pass
/// it as `store=` to `Limiter` or `Policy`. The first process to open the path creates the
/// table, the others attach; every one must give the same quotas, `algorithm`/`refill` and
/// `max_keys`. The table lives as long as the file: `SharedMemory.remove(path)`, with every
/// worker stopped, retires it.
#[pyclass(frozen, module = "cellgate", name = "SharedMemory")]
#[derive(Clone, Debug)]
pub struct SharedMemory {
    path: PathBuf,
    access: Access,
    allow_other_owner: bool,
    /// Accept a `ManualClock` on a limiter over this store (`_allow_manual_clock()`): for
    /// tests that replay fixed times in one process only.
    manual_clock_for_tests: bool,
}

/// A path argument: `str`, `bytes` or an `os.PathLike` (`pathlib.Path`).
fn path_arg(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<PathBuf> {
    let py = value.py();
    let path = match value.cast::<PyString>() {
        Ok(_) => value.clone(),
        Err(_) if value.is_instance_of::<PyBytes>() => value.clone(),
        Err(_) => py
            .import("os")?
            .call_method1("fspath", (value,))
            .map_err(|_| {
                invalid_type(
                    py,
                    argument,
                    &format!(
                        "must be a str, bytes or os.PathLike path, not {}",
                        type_name(value).unwrap_or_default()
                    ),
                )
            })?,
    };
    let path: PathBuf = if let Ok(bytes) = path.cast::<PyBytes>() {
        bytes_path(bytes.as_bytes())
    } else {
        PathBuf::from(str_arg(&path, argument)?.into_owned())
    };
    if path.as_os_str().is_empty() {
        return Err(invalid(py, argument, "must not be empty"));
    }
    Ok(path)
}

#[cfg(unix)]
fn bytes_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn bytes_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[pymethods]
impl SharedMemory {
    /// `SharedMemory(path, *, access="owner", allow_other_owner=False)`.
    #[new]
    #[pyo3(
        signature = (path, *, access=Given::Absent, allow_other_owner=None),
        text_signature = "(path, *, access='owner', allow_other_owner=False)"
    )]
    fn new(
        path: &Bound<'_, PyAny>,
        access: Given<'_>,
        allow_other_owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let path = path_arg(path, "path")?;
        let allow_other_owner = match allow_other_owner {
            None => false,
            Some(value) => match value.cast::<PyBool>() {
                Ok(flag) => flag.is_true(),
                Err(_) => {
                    return Err(invalid_type(
                        value.py(),
                        "allow_other_owner",
                        &format!(
                            "must be a bool, not {}",
                            type_name(value).unwrap_or_default()
                        ),
                    ))
                }
            },
        };
        let access = match access {
            Given::Absent => Access::Owner,
            Given::Value(value) => match str_arg(&value, "access")?.as_ref() {
                "owner" => Access::Owner,
                "group" => Access::Group,
                other => {
                    return Err(invalid(
                        value.py(),
                        "access",
                        &format!("must be 'owner' or 'group', not {other:?}"),
                    ))
                }
            },
        };
        Ok(Self {
            path,
            access,
            allow_other_owner,
            manual_clock_for_tests: false,
        })
    }

    /// The file's path, as given.
    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// `"owner"` (new files 0600) or `"group"` (0660).
    #[getter]
    fn access(&self) -> &'static str {
        self.access.name()
    }

    /// Whether a file owned by another user is accepted.
    #[getter]
    fn allow_other_owner(&self) -> bool {
        self.allow_other_owner
    }

    /// Removes the table's file; `False` if there was none. Stop every process using it
    /// first: those that still have it open keep using the old, nameless table, while the
    /// next open creates a fresh one (every key full again).
    #[staticmethod]
    fn remove(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<bool> {
        let path = path_arg(path, "path")?;
        remove(py, &path)
    }

    /// A copy that accepts a `ManualClock` (private: for tests replaying fixed times in one
    /// process; processes sharing a table must all read `CLOCK_MONOTONIC`).
    fn _allow_manual_clock(&self) -> Self {
        Self {
            manual_clock_for_tests: true,
            ..self.clone()
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let path = PyString::new(py, &self.path.to_string_lossy()).repr()?;
        Ok(format!(
            "SharedMemory({path}, access='{}', allow_other_owner={})",
            self.access.name(),
            if self.allow_other_owner {
                "True"
            } else {
                "False"
            }
        ))
    }
}

#[cfg(unix)]
fn remove(py: Python<'_>, path: &std::path::Path) -> PyResult<bool> {
    cellgate_host::SharedTable::remove(path).map_err(|error| shared_error(py, path, error, None))
}

#[cfg(not(unix))]
fn remove(py: Python<'_>, path: &std::path::Path) -> PyResult<bool> {
    Err(unsupported(py, path))
}

#[cfg(not(unix))]
fn unsupported(py: Python<'_>, path: &std::path::Path) -> PyErr {
    let error = SharedMemoryUnsupported::new_err(
        "shared tables are built on Unix only (a file mapping shared by processes)",
    );
    let _ = error.value(py).setattr("path", path.to_string_lossy());
    error
}

/// A `store=` argument: `None` (absent) or a `SharedMemory`.
pub fn store_arg(store: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Py<SharedMemory>>> {
    match store {
        None => Ok(None),
        Some(store) if store.is_none() => Ok(None),
        Some(store) => match store.cast::<SharedMemory>() {
            Ok(shared) => Ok(Some(shared.clone().unbind())),
            Err(_) => Err(invalid_type(
                store.py(),
                "store",
                &format!(
                    "must be a cellgate.SharedMemory or None, not {}",
                    type_name(store).unwrap_or_default()
                ),
            )),
        },
    }
}

/// Core's limiter over `quotas` and `options` in the chosen store: this process's heap
/// (`store` None) or the shared table at the store's path. `arguments` names the parameters
/// for core's configuration errors. A `ManualClock` with a shared store is an
/// `InvalidArgument` naming `clock`: every process sharing a table must read one time line,
/// `CLOCK_MONOTONIC`.
pub fn open(
    py: Python<'_>,
    quotas: &[LimiterQuota<'_>],
    options: LimiterOptions,
    store: Option<&Py<SharedMemory>>,
    clock: &TimeSource,
    arguments: &Arguments<'_>,
) -> PyResult<cellgate::Limiter<TableSlots>> {
    let Some(store) = store else {
        return cellgate_host::in_process(quotas, options)
            .map_err(|error| config_error(py, error, arguments));
    };
    let store = store.get();
    if clock.manual().is_some() && !store.manual_clock_for_tests {
        return Err(invalid(
            py,
            "clock",
            "cannot be a ManualClock with store=SharedMemory(...): every process sharing a \
             table reads one time line, CLOCK_MONOTONIC (leave clock=None)",
        ));
    }
    open_shared(py, quotas, options, store, arguments)
}

#[cfg(unix)]
fn open_shared(
    py: Python<'_>,
    quotas: &[LimiterQuota<'_>],
    options: LimiterOptions,
    store: &SharedMemory,
    arguments: &Arguments<'_>,
) -> PyResult<cellgate::Limiter<TableSlots>> {
    let access = match store.access {
        Access::Owner => cellgate_host::Access::Owner,
        Access::Group => cellgate_host::Access::Group,
    };
    let open_options = cellgate_host::OpenOptions::new()
        .access(access)
        .allow_other_owner(store.allow_other_owner);
    // The file is opened, checked and mapped without the interpreter's lock: creating one
    // allocates its space (fallocate), which may take a while for a large table.
    let path = store.path.clone();
    let opened = py
        .detach(|| cellgate_host::SharedTable::open_limiter(&path, quotas, options, &open_options));
    opened.map_err(|error| shared_error(py, &store.path, error, Some(arguments)))
}

#[cfg(not(unix))]
fn open_shared(
    py: Python<'_>,
    _quotas: &[LimiterQuota<'_>],
    _options: LimiterOptions,
    store: &SharedMemory,
    _arguments: &Arguments<'_>,
) -> PyResult<cellgate::Limiter<TableSlots>> {
    Err(unsupported(py, &store.path))
}

/// `cellgate_host`'s `SharedError` as the Python exception that names what was wrong, with
/// the path (and the error's fields) as attributes.
#[cfg(unix)]
#[cold]
fn shared_error(
    py: Python<'_>,
    path: &std::path::Path,
    error: cellgate_host::SharedError,
    arguments: Option<&Arguments<'_>>,
) -> PyErr {
    use cellgate_host::SharedError as E;
    let shown = path.to_string_lossy().into_owned();
    let message = format!("{shown}: {error}");
    let int = |value: u64| -> Py<PyAny> {
        match value.into_pyobject(py) {
            Ok(value) => value.into_any().unbind(),
            Err(never) => match never {},
        }
    };
    let mut attributes: Vec<(&str, Py<PyAny>)> = Vec::new();
    let err = match error {
        E::Limiter(error) => {
            return match arguments {
                Some(arguments) => config_error(py, error, arguments),
                None => SharedMemoryError::new_err(message),
            }
        }
        E::Config { reason } => {
            return invalid(py, arguments.map_or("rate", |a| a.quotas), reason);
        }
        E::Unsupported { .. } => SharedMemoryUnsupported::new_err(message),
        E::Io { operation, source } => {
            let strerror = format!("{operation} failed: {source}");
            let err = match source.raw_os_error() {
                // OSError(errno, strerror, filename): `errno`, `strerror` and `filename` set.
                Some(errno) => SharedMemoryError::new_err((errno, strerror, shown.clone())),
                None => SharedMemoryError::new_err(message),
            };
            let _ = err.value(py).setattr("operation", operation);
            err
        }
        E::NotRegularFile => bad_file(py, "not_regular_file", message),
        E::NotATable => bad_file(py, "not_a_table", message),
        E::Corrupt => bad_file(py, "corrupt", message),
        E::Truncated {
            file_bytes,
            expected_bytes,
        } => {
            attributes.push(("file_bytes", int(file_bytes)));
            attributes.push(("expected_bytes", int(expected_bytes)));
            bad_file(py, "truncated", message)
        }
        E::Version { field, file, ours } => {
            attributes.push(("file_value", int(file)));
            attributes.push(("our_value", int(ours)));
            let err = bad_file(py, "version", message);
            let _ = err.value(py).setattr("field", field);
            err
        }
        E::WrongKind { .. } => bad_file(py, "wrong_kind", message),
        E::ConfigMismatch {
            field,
            quota,
            file,
            ours,
        } => {
            attributes.push(("file_value", int(file)));
            attributes.push(("our_value", int(ours)));
            let err = SharedMemoryConfigMismatch::new_err(message);
            let value = err.value(py);
            let _ = value.setattr("field", field);
            let _ = value.setattr("quota", quota);
            err
        }
        E::Owner { file_uid, our_uid } => {
            attributes.push(("file_uid", int(u64::from(file_uid))));
            attributes.push(("our_uid", int(u64::from(our_uid))));
            SharedMemoryPermissionError::new_err(message)
        }
        E::Permissions {
            file_mode,
            allowed_mode,
        } => {
            attributes.push(("file_mode", int(u64::from(file_mode))));
            attributes.push(("allowed_mode", int(u64::from(allowed_mode))));
            SharedMemoryPermissionError::new_err(message)
        }
        other => SharedMemoryError::new_err(format!("{shown}: {other}")),
    };
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail short of memory
    // exhaustion; the exception is still the right type without them.
    let _ = value.setattr("path", &shown);
    for (name, attribute) in attributes {
        let _ = value.setattr(name, attribute);
    }
    err
}

#[cfg(unix)]
fn bad_file(py: Python<'_>, problem: &str, message: String) -> PyErr {
    let err = SharedMemoryBadFile::new_err(message);
    let _ = err.value(py).setattr("problem", problem);
    err
}
