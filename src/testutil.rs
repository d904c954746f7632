//! Helpers shared by the unit tests of several modules, and by the
//! integration tests (tests/common includes this file).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A directory under the system temp dir, removed when dropped (also when a
/// test panics, since panics unwind).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "synqc-{tag}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A just-dropped store's writer thread may still hold the files for
        // a moment; retry briefly rather than leave the directory behind.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
