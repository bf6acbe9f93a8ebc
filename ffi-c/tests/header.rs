//! `include/cellgate.h` is exactly what cbindgen generates from the crate: a stale header
//! fails this test. `CELLGATE_BLESS=1 cargo test -p cellgate-ffi --test header` (or
//! `make header-c`) rewrites it.

use std::path::PathBuf;

fn generate() -> String {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi-c/cbindgen.toml is readable");
    config.after_includes = Some(format!(
        "\n/* The version of this header; cg_version() returns the library's. */\n\
         #define CG_VERSION \"{}\"\n\n\
         /* Pass as a text length: the text is NUL-terminated (CG_NUL_TERMINATED in Rust). */\n\
         #define CG_NUL_TERMINATED SIZE_MAX",
        env!("CARGO_PKG_VERSION")
    ));
    // cbindgen writes its trailer after the include guard: it goes inside, after everything.
    let trailer = config.trailer.take().unwrap_or_default();
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    let header = String::from_utf8(out).expect("the header is UTF-8");
    let guard_end = "#endif  /* CELLGATE_H */";
    let at = header.rfind(guard_end).expect("the include guard's end");
    format!("{}{}\n\n{}", &header[..at], trailer.trim(), &header[at..])
}

#[test]
fn header_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/cellgate.h");
    let generated = generate();
    if std::env::var_os("CELLGATE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("include/cellgate.h is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi-c/include/cellgate.h is stale: run `make header-c` \
         (CELLGATE_BLESS=1 cargo test -p cellgate-ffi --test header) and commit it"
    );
}

#[test]
fn hand_written_macros_match_the_crate() {
    assert_eq!(cellgate_ffi::CG_NUL_TERMINATED, usize::MAX); // SIZE_MAX
}

#[test]
fn header_version_matches_the_crate() {
    let header = generate();
    let version = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define CG_VERSION \"{version}\"")));
    let mut parts = version.split('.');
    for name in ["MAJOR", "MINOR", "PATCH"] {
        let part = parts.next().expect("three version parts");
        assert!(
            header.contains(&format!("#define CG_VERSION_{name} {part}\n")),
            "CG_VERSION_{name} is not {part}"
        );
    }
}
