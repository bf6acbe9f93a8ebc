//! Shared helpers for the cellgate benchmarks (none yet).
