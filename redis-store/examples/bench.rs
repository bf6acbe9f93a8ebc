//! Decisions per second against a local redis-server (see the README of this crate).

fn main() {}
