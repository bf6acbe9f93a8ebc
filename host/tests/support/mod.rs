//! Helpers shared by the host tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh directory for one test's files: under `/dev/shm` (where shared tables live in
/// production) when it is there, else the temporary directory. Emptied first, removed with
/// everything in it when dropped.
pub fn scratch_dir(test: &str) -> ScratchDir {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("cellgate-host-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    ScratchDir(dir)
}

/// A test's directory, removed on drop (see [`scratch_dir`]).
pub struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for ScratchDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The byte offset of the 192-byte group holding slot `index` in table `table` of a file
/// whose tables have `slot_count` slots (header 512 bytes; groups of 8 slots: their 8
/// fingerprints, then their 8 128-bit states, `last_ns` in each state's high half).
fn group_offset(table: u64, slot_count: u64, index: u64) -> u64 {
    512 + (table * (slot_count / 8) + index / 8) * 192
}

/// The byte offset of slot `index`'s state word.
pub fn state_offset(table: u64, slot_count: u64, index: u64) -> u64 {
    group_offset(table, slot_count, index) + 64 + (index % 8) * 16
}

/// The byte offset of slot `index`'s fingerprint.
pub fn fingerprint_offset(table: u64, slot_count: u64, index: u64) -> u64 {
    group_offset(table, slot_count, index) + (index % 8) * 8
}
