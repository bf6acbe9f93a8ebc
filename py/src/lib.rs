//! Python bindings for cellgate (pyo3) (under construction).
