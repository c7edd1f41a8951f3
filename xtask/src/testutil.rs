//! Test helpers: fixture directories copied into a scratch directory under the system temp dir,
//! so that running cargo in them writes neither `Cargo.lock` nor `target/` into the source tree.

use std::path::{Path, PathBuf};

/// A scratch directory removed on drop.
pub(crate) struct Scratch {
    /// Its path.
    pub(crate) path: PathBuf,
}

impl Scratch {
    /// A fresh `$TMPDIR/xtask-NAME-PID` directory.
    pub(crate) fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    /// Copies `xtask/tests/fixtures/NAME` into the scratch directory; returns the copy.
    pub(crate) fn fixture(&self, name: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let to = self.path.join(name);
        copy_dir(&from, &to);
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
