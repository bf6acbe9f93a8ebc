//! Node.js bindings for cellgate (napi-rs) (under construction).
