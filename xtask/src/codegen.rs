//! Generated files: write them, or (check mode) fail when they are stale.
//!
//! The `ensure_file_contents` pattern of rust-analyzer's `xtask/src/codegen.rs`: the generator
//! is the source of truth; CI runs it in check mode and the failure names the command to run.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Write the files, or only check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Rewrite what differs.
    Write,
    /// Fail on the first file that differs.
    Check,
}

/// Makes `root/rel` contain `contents` (write mode) or fails if it does not (check mode),
/// naming `command` as the fix.
pub(crate) fn ensure_file_contents(
    root: &Path,
    rel: &Path,
    contents: &str,
    mode: Mode,
    command: &str,
) -> Result<()> {
    let path = root.join(rel);
    if let Ok(old) = std::fs::read_to_string(&path) {
        if old.replace("\r\n", "\n") == contents {
            return Ok(());
        }
    }
    match mode {
        Mode::Check => bail!(
            "{} is stale or missing: run `{command}` and commit the result",
            rel.display()
        ),
        Mode::Write => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", rel.display()))?;
            println!("updated {}", rel.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_mode_names_the_command_and_write_mode_fixes() {
        let dir = std::env::temp_dir().join(format!("xtask-codegen-{}", std::process::id()));
        let rel = Path::new("sub/gen.txt");
        let err = ensure_file_contents(&dir, rel, "new\n", Mode::Check, "cargo xtask gen")
            .expect_err("missing file is stale");
        assert_eq!(
            err.to_string(),
            "sub/gen.txt is stale or missing: run `cargo xtask gen` and commit the result"
        );
        ensure_file_contents(&dir, rel, "new\n", Mode::Write, "cargo xtask gen").expect("writes");
        ensure_file_contents(&dir, rel, "new\n", Mode::Check, "cargo xtask gen").expect("fresh");
        assert!(ensure_file_contents(&dir, rel, "newer\n", Mode::Check, "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
