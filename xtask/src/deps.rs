//! The one hard rule of the dependency graph: milestone N depends only on milestones below N.
//!
//! Read from `cargo metadata --format-version 1 --no-deps` (workspace packages only). Every
//! package named `mNN-…` may depend (normal, dev or build, through a `path`) only on `mKK-…`
//! with KK < NN. Only `zyphos`, `xtask` and `zyphos-load` may depend on any milestone; every
//! other workspace package may depend on none.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::evidence::cargo;
use crate::exec::Cmd;

/// Packages allowed to depend on every milestone crate.
pub(crate) const COMPOSERS: [&str; 3] = ["zyphos", "xtask", "zyphos-load"];

/// The parts of `cargo metadata` output the rule needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Metadata {
    /// Workspace packages (with `--no-deps`).
    pub(crate) packages: Vec<Package>,
}

/// A package.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Package {
    /// Package name.
    pub(crate) name: String,
    /// Absolute path of its `Cargo.toml` (empty in fixtures that leave it out).
    #[serde(default)]
    pub(crate) manifest_path: String,
    /// Its declared dependencies.
    #[serde(default)]
    pub(crate) dependencies: Vec<Dependency>,
    /// Its build targets (library, binaries, examples, tests, benches).
    #[serde(default)]
    pub(crate) targets: Vec<Target>,
}

/// A build target of a package.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Target {
    /// Target name (an example's is its output file name).
    pub(crate) name: String,
    /// `["lib"]`, `["bin"]`, `["example"]`, `["test"]`, `["bench"]`, …
    #[serde(default)]
    pub(crate) kind: Vec<String>,
}

/// A declared dependency.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Dependency {
    /// The depended-on package's name (not the rename).
    pub(crate) name: String,
    /// `null` (normal), `"dev"` or `"build"`.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    /// Set for path dependencies.
    #[serde(default)]
    pub(crate) path: Option<String>,
}

/// Runs `cargo metadata --format-version 1 --no-deps` in `root`.
pub(crate) fn metadata(root: &Path) -> Result<Metadata> {
    let cmd = Cmd::new(
        [
            cargo().as_str(),
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
        ],
        root,
    )
    .timeout(Duration::from_secs(300));
    let out = cmd.run()?;
    if !out.success() {
        bail!(
            "`{}` failed ({}): {}",
            cmd.display(),
            out.describe_status(),
            out.stderr_tail(3)
        );
    }
    serde_json::from_str(&out.stdout).context("parsing cargo metadata output")
}

/// The names of the workspace packages.
pub(crate) fn workspace_packages(root: &Path) -> Result<BTreeSet<String>> {
    Ok(metadata(root)?
        .packages
        .into_iter()
        .map(|p| p.name)
        .collect())
}

/// `NN` of a package named `mNN-…`.
pub(crate) fn milestone_of(package: &str) -> Option<u32> {
    let rest = package.strip_prefix('m')?;
    let (digits, tail) = rest.split_at_checked(2)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !tail.starts_with('-') || tail.len() < 2 {
        return None;
    }
    digits.parse().ok()
}

/// Every violation of the rule, one line each (empty when the graph is clean).
pub(crate) fn violations(meta: &Metadata) -> Vec<String> {
    let mut out = Vec::new();
    for package in &meta.packages {
        if COMPOSERS.contains(&package.name.as_str()) {
            continue;
        }
        let own = milestone_of(&package.name);
        for dep in &package.dependencies {
            if dep.path.is_none() {
                continue;
            }
            let Some(theirs) = milestone_of(&dep.name) else {
                continue;
            };
            let kind = dep.kind.as_deref().unwrap_or("normal");
            match own {
                Some(n) if theirs < n => {}
                Some(n) => out.push(format!(
                    "{} (milestone {n}) has a {kind} dependency on {} (milestone {theirs}): a \
                     milestone may depend only on milestones below it",
                    package.name, dep.name
                )),
                None => out.push(format!(
                    "{} has a {kind} dependency on {}: only {} may depend on milestone crates",
                    package.name,
                    dep.name,
                    COMPOSERS.join(", ")
                )),
            }
        }
    }
    out
}

/// Checks the workspace; fails listing every violation.
pub(crate) fn check(root: &Path) -> Result<()> {
    let v = violations(&metadata(root)?);
    if v.is_empty() {
        Ok(())
    } else {
        bail!("dependency rule broken:\n  {}", v.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Metadata {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let text = std::fs::read_to_string(&path).expect("fixture exists");
        serde_json::from_str(&text).expect("fixture parses")
    }

    #[test]
    fn good_graph_has_no_violations() {
        let meta = fixture("metadata-good.json");
        assert!(
            meta.packages.len() >= 5,
            "the fixture exercises several packages"
        );
        assert_eq!(violations(&meta), Vec::<String>::new());
    }

    #[test]
    fn bad_graph_reports_every_violation() {
        let v = violations(&fixture("metadata-bad.json"));
        assert_eq!(v.len(), 4, "{v:#?}");
        assert!(v[0].starts_with("m03-thread-per-conn (milestone 3) has a normal dependency on m05-routing (milestone 5)"), "{}", v[0]);
        assert!(
            v[1].starts_with(
                "m04-http10 (milestone 4) has a dev dependency on m04-http10 (milestone 4)"
            ),
            "{}",
            v[1]
        );
        assert!(
            v[2].starts_with("m04-http10 (milestone 4) has a build dependency on m09-event-loop"),
            "{}",
            v[2]
        );
        assert!(v[3].starts_with("lab-tools has a normal dependency on m01-raw-sockets: only zyphos, xtask, zyphos-load"), "{}", v[3]);
    }

    #[test]
    fn milestone_names() {
        assert_eq!(milestone_of("m01-raw-sockets"), Some(1));
        assert_eq!(milestone_of("m30-quic"), Some(30));
        assert_eq!(milestone_of("zyphos"), None);
        assert_eq!(milestone_of("m1-x"), None);
        assert_eq!(milestone_of("m01"), None);
        assert_eq!(milestone_of("m01-"), None);
        assert_eq!(milestone_of("mio"), None);
    }
}
