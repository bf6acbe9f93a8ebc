//! `cellgate._cellgate`: the Python extension module of cellgate (pyo3, abi3 for Python 3.10+).
//!
//! A thin translation layer over the `cellgate` core, one file per core module it translates
//! (`clock`, `quota`, `cell`, `limiter`, `policy`, `headers`, `client_key`), plus `store` (the
//! choice of `cellgate-host` table: in this process, or shared by every process of the host),
//! `boundary` (the panic guard, argument conversions and exceptions) and the measured fast
//! path (`fastcall`, `decision_type`). Core's `Limiter` checks every configuration rule and
//! makes every decision; arguments are checked strictly here (typed errors naming the
//! argument, no state change on error), time comes from the host's monotonic clock
//! (`cellgate_host::HostClock`) or a `ManualClock`, and decisions, headers and 429 bodies are
//! the core's. The pure-Python package `cellgate` re-exports these types and adds waiting,
//! middleware and the decorator.

mod boundary;
mod cell;
mod client_key;
mod clock;
mod decision_type;
mod fastcall;
mod headers;
mod limiter;
mod policy;
mod quota;
mod remote;
mod store;

use pyo3::prelude::*;

/// The module. Every class is `Sync` (atomics, or a mutex for a reservation), so the module
/// declares that it does not need the GIL (free-threaded Python).
#[pymodule(gil_used = false)]
fn _cellgate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    boundary::register(m)?;
    m.add_class::<clock::ManualClock>()?;
    m.add_class::<quota::PyQuota>()?;
    decision_type::register(m)?;
    m.add_class::<limiter::Limiter>()?;
    fastcall::install(&m.py().get_type::<limiter::Limiter>())?;
    m.add_class::<cell::Bucket>()?;
    m.add_class::<policy::Policy>()?;
    m.add_class::<policy::Reservation>()?;
    store::register(m)?;
    m.add_class::<remote::PyRemoteLimiter>()?;
    m.add_class::<remote::PyRemoteCall>()?;
    m.add_class::<remote::PyRemoteReservation>()?;
    m.add_function(wrap_pyfunction!(client_key::client_key, m)?)?;
    m.add_function(wrap_pyfunction!(boundary::duration_ns, m)?)?;
    m.add("NEVER_NS", cellgate::NEVER)?;
    m.add("DEFAULT_MAX_KEYS", cellgate::DEFAULT_MAX_KEYS)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
