//! C ABI for cellgate (under construction).
