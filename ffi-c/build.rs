//! Gives libcellgate.so an ELF SONAME carrying its ABI version, so that a program linked
//! against one release does not silently load an incompatible one: `libcellgate.so.MAJOR`,
//! or `libcellgate.so.0.MINOR` while the major version is 0 (where a minor release may
//! break compatibility, as in Cargo's semver).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        return;
    }
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    let soname = if major == "0" {
        format!("libcellgate.so.0.{minor}")
    } else {
        format!("libcellgate.so.{major}")
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
}
