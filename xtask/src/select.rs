//! Which built milestones `cargo xtask ci` verifies: those whose inputs changed since the revision
//! their `docs/results/mNN.json` records.
//!
//! A milestone's inputs are its crate directory and every workspace crate it depends on,
//! transitively (path dependencies of every kind, from `cargo metadata`); its manifest
//! `milestones/NN-slug.toml`; what every verify uses ([`SHARED_INPUTS`]: `xtask/`, `benches/`,
//! the root `Cargo.toml` and `Cargo.lock`, `.ci/`, `.cargo/`); `fuzz/` when its crate or
//! manifest mentions fuzzing; `crates/zyphos/` when its crate runs the `zyphos` binary; and the
//! hand-written part of its write-up `docs/milestones/NN-slug.md` (checks read it; the generated
//! results section is left out). Everything else under `docs/` is output: a commit that only
//! records results leaves every milestone as it was.
//!
//! Changed means: in `git diff --name-only --no-renames REV HEAD` or uncommitted
//! (`git status --porcelain`), where REV is the recorded `git.revision`. A milestone is also
//! selected when its results are missing or unreadable, when REV cannot be compared (no
//! revision, a revision this clone lacks or that is not an ancestor of HEAD, a shallow clone),
//! when its last result did not pass, and when that result was recorded from a tree with
//! uncommitted changes, unless the record lists those changes (`git.dirty_paths`) and none
//! touches the milestone's inputs (the usual case: results and write-ups of milestones verified
//! just before it in the same batch).

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::deps::{self, Metadata};
use crate::machine::{self, GitInfo};
use crate::manifest::Manifest;
use crate::results;

/// Inputs of every milestone: a directory ends with `/`, anything else is one file.
pub(crate) const SHARED_INPUTS: [&str; 8] = [
    "xtask/",
    "benches/",
    "Cargo.toml",
    "Cargo.lock",
    ".ci/",
    ".cargo/",
    "rust-toolchain.toml",
    "rust-toolchain",
];

/// What, in a milestone's crate directory, says it runs the `zyphos` binary
/// (`release_binary("zyphos", …)`, `…/target/release/zyphos"`).
const ZYPHOS_BINARY_NEEDLES: [&str; 2] = ["(\"zyphos\"", "/zyphos\""];

/// Start of a write-up's generated results section (any milestone number).
const GENERATED_BEGIN: &str = "<!-- BEGIN GENERATED RESULTS";

/// A milestone's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inputs {
    /// Directories (ending with `/`) and files, relative to the root.
    pub(crate) paths: Vec<String>,
    /// The write-up, of which only the hand-written part counts.
    pub(crate) writeup: String,
}

impl Inputs {
    /// The entry of [`Inputs::paths`] that covers `path`, if one does.
    pub(crate) fn covering(&self, path: &str) -> Option<&str> {
        self.paths
            .iter()
            .find(|p| {
                if p.ends_with('/') {
                    path.starts_with(p.as_str()) || path == p.trim_end_matches('/')
                } else {
                    path == p.as_str()
                }
            })
            .map(String::as_str)
    }

    /// Whether an uncommitted change to `path` (recorded with a result) touches these inputs;
    /// the write-up counts whole, since the record does not say which part changed.
    fn touched_by(&self, path: &str) -> bool {
        path == self.writeup || self.covering(path).is_some()
    }
}

/// Workspace packages `package` depends on through path dependencies of any kind,
/// transitively, itself included (when it is a workspace package).
pub(crate) fn closure(meta: &Metadata, package: &str) -> BTreeSet<String> {
    let by_name: BTreeMap<&str, &deps::Package> =
        meta.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(name) = todo.pop() {
        let Some(p) = by_name.get(name.as_str()) else {
            continue;
        };
        if !seen.insert(name) {
            continue;
        }
        for d in &p.dependencies {
            if d.path.is_some() && by_name.contains_key(d.name.as_str()) {
                todo.push(d.name.clone());
            }
        }
    }
    seen
}

/// The directory of a workspace package relative to `root`, ending with `/`
/// (`crates/NAME/` when metadata gives no usable path).
fn package_dir(meta: &Metadata, root: &Path, name: &str) -> String {
    let fallback = format!("crates/{name}/");
    let Some(p) = meta.packages.iter().find(|p| p.name == name) else {
        return fallback;
    };
    let manifest = Path::new(&p.manifest_path);
    let Some(dir) = manifest.parent() else {
        return fallback;
    };
    let roots = [Some(root.to_path_buf()), root.canonicalize().ok()];
    for r in roots.iter().flatten() {
        if let Ok(rel) = dir.strip_prefix(r) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !rel.is_empty() {
                return format!("{rel}/");
            }
        }
    }
    fallback
}

/// Whether any file under `dir` (recursively, `target/` left out) contains one of `needles`.
fn mentions(dir: &Path, needles: &[&str]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if entry.file_name() != "target" && mentions(&path, needles) {
                return true;
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            if needles.iter().any(|n| text.contains(n)) {
                return true;
            }
        }
    }
    false
}

/// The inputs of milestone `m` (see the module docs).
pub(crate) fn inputs(root: &Path, m: &Manifest, meta: &Metadata) -> Inputs {
    // Most specific first: reasons name the entries in this order.
    let own_dir = format!("{}/", m.crate_dir().to_string_lossy());
    let mut paths = vec![own_dir.clone(), m.path.to_string_lossy().replace('\\', "/")];
    let mut crates: BTreeSet<String> = closure(meta, &m.crate_name)
        .iter()
        .map(|name| package_dir(meta, root, name))
        .collect();
    crates.remove(&own_dir);
    // Dependencies from the nearest (highest-numbered) down.
    paths.extend(crates.into_iter().rev());
    let zyphos = package_dir(meta, root, "zyphos");
    if !paths.contains(&zyphos) && mentions(&root.join(&own_dir), &ZYPHOS_BINARY_NEEDLES) {
        paths.push(zyphos);
    }
    let manifest_text = std::fs::read_to_string(root.join(&m.path)).unwrap_or_default();
    if manifest_text.contains("fuzz") || mentions(&root.join(&own_dir), &["fuzz"]) {
        paths.push("fuzz/".into());
    }
    paths.extend(SHARED_INPUTS.iter().map(|s| (*s).to_string()));
    Inputs {
        paths,
        writeup: m.writeup_path().to_string_lossy().replace('\\', "/"),
    }
}

/// `text` without its generated results sections.
pub(crate) fn hand_written(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(begin) = rest.find(GENERATED_BEGIN) {
        out.push_str(&rest[..begin]);
        match rest[begin..].find(results::END_MARKER) {
            Some(end) => rest = &rest[begin + end + results::END_MARKER.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Paths changed since a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Changed between the revision and HEAD.
    pub(crate) committed: Vec<String>,
    /// Changed in the working tree (and index) against HEAD.
    pub(crate) uncommitted: Vec<String>,
}

/// What selection asks of the repository.
pub(crate) trait History {
    /// Paths changed between `rev` and the working tree, or why `rev` cannot be compared.
    fn changes_since(&mut self, rev: &str) -> Result<Changes, String>;
    /// Whether the hand-written part of `path` differs between `rev` and the working tree.
    fn writeup_changed(&mut self, rev: &str, path: &str) -> bool;
}

/// [`History`] from git.
pub(crate) struct GitHistory<'a> {
    root: &'a Path,
    /// Why nothing can be compared (no git, a shallow clone).
    unusable: Option<String>,
    uncommitted: Vec<String>,
    cache: BTreeMap<String, Result<Vec<String>, String>>,
}

impl<'a> GitHistory<'a> {
    /// Asks git about `root` once (uncommitted changes, shallowness).
    pub(crate) fn new(root: &'a Path) -> GitHistory<'a> {
        let mut h = GitHistory {
            root,
            unusable: None,
            uncommitted: Vec::new(),
            cache: BTreeMap::new(),
        };
        if machine::git(root, &["rev-parse", "--verify", "HEAD"]).is_none() {
            h.unusable = Some("git cannot read HEAD here".into());
        } else if machine::git(root, &["rev-parse", "--is-shallow-repository"])
            .is_some_and(|s| s.trim() == "true")
        {
            h.unusable = Some(
                "this is a shallow clone, so recorded revisions cannot be compared (clone with \
                 full history, e.g. actions/checkout `fetch-depth: 0`)"
                    .into(),
            );
        } else {
            match machine::uncommitted(root) {
                Some(entries) => h.uncommitted = machine::entry_paths(&entries),
                None => h.unusable = Some("`git status` failed".into()),
            }
        }
        h
    }

    fn committed_since(&self, rev: &str) -> Result<Vec<String>, String> {
        let short = short_rev(rev);
        if machine::git(self.root, &["cat-file", "-e", &format!("{rev}^{{commit}}")]).is_none() {
            return Err(format!(
                "recorded at {short}, a revision this clone does not have"
            ));
        }
        if machine::git(self.root, &["merge-base", "--is-ancestor", rev, "HEAD"]).is_none() {
            return Err(format!(
                "recorded at {short}, which is not an ancestor of HEAD"
            ));
        }
        let out = machine::git(
            self.root,
            &["diff", "--name-only", "--no-renames", "-z", rev, "HEAD"],
        )
        .ok_or_else(|| format!("`git diff {short} HEAD` failed"))?;
        Ok(out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

impl History for GitHistory<'_> {
    fn changes_since(&mut self, rev: &str) -> Result<Changes, String> {
        if let Some(why) = &self.unusable {
            return Err(why.clone());
        }
        if rev == "none" || rev.is_empty() {
            return Err("recorded without a git revision".into());
        }
        if !self.cache.contains_key(rev) {
            let got = self.committed_since(rev);
            self.cache.insert(rev.to_string(), got);
        }
        let committed = self.cache[rev].clone()?;
        Ok(Changes {
            committed,
            uncommitted: self.uncommitted.clone(),
        })
    }

    fn writeup_changed(&mut self, rev: &str, path: &str) -> bool {
        let then = machine::git(self.root, &["show", &format!("{rev}:{path}")]);
        let now = std::fs::read_to_string(self.root.join(path)).ok();
        match (then, now) {
            (None, None) => false,
            (Some(a), Some(b)) => hand_written(&a) != hand_written(&b),
            _ => true,
        }
    }
}

/// The first 7 hex digits of a revision.
pub(crate) fn short_rev(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

/// What a recorded result says about itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    /// Where it was measured.
    pub(crate) git: GitInfo,
    /// Everything passed.
    pub(crate) passed: bool,
}

/// Whether one milestone is verified, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Milestone number.
    pub(crate) number: u32,
    /// Verified by this run.
    pub(crate) selected: bool,
    /// One line: what changed, or since when nothing did.
    pub(crate) reason: String,
}

impl Decision {
    /// `m07: selected: crates/m07-buffers/ changed since 427443c`.
    pub(crate) fn line(&self) -> String {
        format!(
            "m{:02}: {}: {}",
            self.number,
            if self.selected { "selected" } else { "skipped" },
            self.reason
        )
    }
}

/// How many changed input entries a reason names.
const MAX_NAMED: usize = 3;

/// `3 files` / `1 file`.
fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

/// Decides for one built milestone from its inputs and its recorded result.
pub(crate) fn decide(
    number: u32,
    inputs: &Inputs,
    recorded: Option<&Recorded>,
    results_path: &str,
    history: &mut dyn History,
) -> Decision {
    let selected = |reason: String| Decision {
        number,
        selected: true,
        reason,
    };
    let Some(rec) = recorded else {
        return selected(format!(
            "no results recorded ({results_path} missing or unreadable)"
        ));
    };
    let rev = rec.git.revision.as_str();
    let short = short_rev(rev);
    let changes = match history.changes_since(rev) {
        Ok(c) => c,
        Err(why) => return selected(why),
    };
    // Changed inputs, grouped by the input entry that covers them.
    let mut touched: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let uncommitted: BTreeSet<&str> = changes.uncommitted.iter().map(String::as_str).collect();
    let all: BTreeSet<&str> = changes
        .committed
        .iter()
        .map(String::as_str)
        .chain(uncommitted.iter().copied())
        .collect();
    for path in all {
        if let Some(entry) = inputs.covering(path) {
            let counts = touched.entry(entry).or_insert_with(|| {
                order.push(entry);
                (0, 0)
            });
            counts.0 += 1;
            if uncommitted.contains(path) {
                counts.1 += 1;
            }
        }
    }
    if !order.is_empty() {
        order.sort_by_key(|e| inputs.paths.iter().position(|p| p == e));
        let mut what = String::new();
        for (i, entry) in order.iter().take(MAX_NAMED).enumerate() {
            let (n, u) = touched[entry];
            let _ = write!(
                what,
                "{}{entry} ({}{})",
                if i == 0 { "" } else { ", " },
                files(n),
                if u == 0 {
                    String::new()
                } else if u == n {
                    ", uncommitted".into()
                } else {
                    format!(", {u} uncommitted")
                }
            );
        }
        if order.len() > MAX_NAMED {
            let _ = write!(what, " and {} more inputs", order.len() - MAX_NAMED);
        }
        return selected(format!("{what} changed since {short}"));
    }
    if history.writeup_changed(rev, &inputs.writeup) {
        return selected(format!(
            "{} (outside its generated results) changed since {short}",
            inputs.writeup
        ));
    }
    let mut note = "";
    if rec.git.dirty {
        match &rec.git.dirty_paths {
            None => {
                return selected(format!(
                    "its result was recorded at {short} from a tree with uncommitted changes \
                     that the record does not list"
                ));
            }
            Some(paths) => {
                let hits: Vec<&str> = paths
                    .iter()
                    .map(String::as_str)
                    .filter(|p| inputs.touched_by(p))
                    .collect();
                if !hits.is_empty() {
                    let more = if hits.len() > 3 {
                        format!(" and {} more", hits.len() - 3)
                    } else {
                        String::new()
                    };
                    return selected(format!(
                        "its result was recorded at {short} with uncommitted changes to its \
                         inputs: {}{more}",
                        hits[..hits.len().min(3)].join(", ")
                    ));
                }
                note = " (recorded with uncommitted changes, none to its inputs)";
            }
        }
    }
    if !rec.passed {
        return selected(format!("its last result (at {short}) did not pass"));
    }
    Decision {
        number,
        selected: false,
        reason: format!("no input changed since {short}{note}"),
    }
}

/// The decision for every built milestone, in manifest order (`all`: select every one).
pub(crate) fn plan(root: &Path, manifests: &[Manifest], all: bool) -> Result<Vec<Decision>> {
    let built: Vec<&Manifest> = manifests.iter().filter(|m| m.built).collect();
    if all {
        return Ok(built
            .iter()
            .map(|m| Decision {
                number: m.number,
                selected: true,
                reason: "--all".into(),
            })
            .collect());
    }
    let meta = deps::metadata(root)?;
    let mut history = GitHistory::new(root);
    Ok(built
        .iter()
        .map(|m| {
            let recorded = results::load(root, m).map(|r| Recorded {
                git: r.git,
                passed: r.passed,
            });
            decide(
                m.number,
                &inputs(root, m, &meta),
                recorded.as_ref(),
                &m.results_path().to_string_lossy(),
                &mut history,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    fn meta(json: &str) -> Metadata {
        serde_json::from_str(json).expect("metadata parses")
    }

    fn sample_meta() -> Metadata {
        meta(
            r#"{"packages": [
              {"name": "m01-raw-sockets", "manifest_path": "/r/crates/m01-raw-sockets/Cargo.toml",
               "dependencies": [{"name": "libc", "kind": null}]},
              {"name": "m02-tcp-state", "manifest_path": "/r/crates/m02-tcp-state/Cargo.toml",
               "dependencies": [{"name": "m01-raw-sockets", "kind": "dev", "path": "/r/crates/m01-raw-sockets"}]},
              {"name": "m03-thread-per-conn", "manifest_path": "/r/crates/m03-thread-per-conn/Cargo.toml",
               "dependencies": [{"name": "m02-tcp-state", "kind": null, "path": "/r/crates/m02-tcp-state"}]},
              {"name": "m04-http10", "manifest_path": "/r/crates/m04-http10/Cargo.toml",
               "dependencies": [{"name": "m01-raw-sockets", "kind": null, "path": "/r/crates/m01-raw-sockets"}]},
              {"name": "zyphos", "manifest_path": "/r/crates/zyphos/Cargo.toml",
               "dependencies": [{"name": "m04-http10", "kind": null, "path": "/r/crates/m04-http10"}]}
            ]}"#,
        )
    }

    #[test]
    fn closure_follows_path_dependencies_of_every_kind() {
        let m = sample_meta();
        let names = |p: &str| closure(&m, p).into_iter().collect::<Vec<_>>();
        assert_eq!(names("m01-raw-sockets"), ["m01-raw-sockets"]);
        assert_eq!(
            names("m03-thread-per-conn"),
            ["m01-raw-sockets", "m02-tcp-state", "m03-thread-per-conn"]
        );
        assert_eq!(names("m04-http10"), ["m01-raw-sockets", "m04-http10"]);
        assert!(names("m99-none").is_empty());
        assert_eq!(
            package_dir(&m, Path::new("/r"), "m02-tcp-state"),
            "crates/m02-tcp-state/"
        );
        assert_eq!(package_dir(&m, Path::new("/elsewhere"), "x"), "crates/x/");
    }

    fn sample_inputs() -> Inputs {
        Inputs {
            paths: [
                "crates/m03-thread-per-conn/",
                "milestones/03-thread-per-conn.toml",
                "crates/m01-raw-sockets/",
                "xtask/",
                "Cargo.lock",
            ]
            .map(String::from)
            .to_vec(),
            writeup: "docs/milestones/03-thread-per-conn.md".into(),
        }
    }

    #[test]
    fn covering_matches_directories_by_prefix_and_files_exactly() {
        let i = sample_inputs();
        assert_eq!(i.covering("xtask/src/ci.rs"), Some("xtask/"));
        assert_eq!(i.covering("Cargo.lock"), Some("Cargo.lock"));
        assert_eq!(i.covering("crates/Cargo.lock"), None);
        assert_eq!(
            i.covering("crates/m01-raw-sockets/src/lib.rs"),
            Some("crates/m01-raw-sockets/")
        );
        // A sibling whose name merely starts the same is not covered.
        assert_eq!(i.covering("crates/m01-raw-sockets-old/src/lib.rs"), None);
        assert_eq!(i.covering("crates/m02-tcp-state/src/lib.rs"), None);
        assert_eq!(i.covering("docs/results/m03.json"), None);
        assert_eq!(i.covering("docs/milestones/03-thread-per-conn.md"), None);
        assert_eq!(i.covering("README.md"), None);
    }

    #[test]
    fn hand_written_drops_generated_sections() {
        let a = "# M3\n\nIntro.\n\n<!-- BEGIN GENERATED RESULTS (cargo xtask milestone 3 --verify) -->\nold\n<!-- END GENERATED RESULTS -->\n\n## After\n";
        let b = a.replace("old", "new numbers");
        assert_eq!(hand_written(a), hand_written(&b));
        assert_eq!(hand_written(a), "# M3\n\nIntro.\n\n\n\n## After\n");
        assert_ne!(
            hand_written(a),
            hand_written(&a.replace("Intro", "Changed"))
        );
        assert_eq!(hand_written("no markers"), "no markers");
    }

    /// A [`History`] from fixed answers.
    struct Fake {
        changes: Result<Changes, String>,
        writeup: bool,
    }

    impl History for Fake {
        fn changes_since(&mut self, _rev: &str) -> Result<Changes, String> {
            self.changes.clone()
        }
        fn writeup_changed(&mut self, _rev: &str, _path: &str) -> bool {
            self.writeup
        }
    }

    fn fake(committed: &[&str], uncommitted: &[&str]) -> Fake {
        Fake {
            changes: Ok(Changes {
                committed: committed.iter().map(|s| s.to_string()).collect(),
                uncommitted: uncommitted.iter().map(|s| s.to_string()).collect(),
            }),
            writeup: false,
        }
    }

    fn rec(dirty: bool, dirty_paths: Option<&[&str]>, passed: bool) -> Recorded {
        Recorded {
            git: GitInfo {
                revision: "d2344fc40b29e90d7df961d4aa83d6f5d716733f".into(),
                dirty,
                diff_hash: None,
                dirty_paths: dirty_paths.map(|p| p.iter().map(|s| s.to_string()).collect()),
            },
            passed,
        }
    }

    fn run(recorded: Option<&Recorded>, h: &mut Fake) -> Decision {
        decide(3, &sample_inputs(), recorded, "docs/results/m03.json", h)
    }

    #[test]
    fn unchanged_inputs_skip_and_outputs_do_not_count() {
        let clean = rec(false, None, true);
        let d = run(
            Some(&clean),
            &mut fake(
                &[
                    "docs/results/m03.json",
                    "docs/README.md",
                    "docs/milestones/03-thread-per-conn.md",
                    "crates/m02-tcp-state/src/lib.rs",
                    "milestones/04-http10.toml",
                    "README.md",
                ],
                &["docs/charts/race.svg"],
            ),
        );
        assert!(!d.selected, "{d:?}");
        assert_eq!(d.line(), "m03: skipped: no input changed since d2344fc");
    }

    #[test]
    fn changed_inputs_select_with_what_changed() {
        let clean = rec(false, None, true);
        let d = run(
            Some(&clean),
            &mut fake(
                &[
                    "crates/m03-thread-per-conn/src/log.rs",
                    "crates/m03-thread-per-conn/src/lib.rs",
                    "xtask/src/ci.rs",
                ],
                &["crates/m01-raw-sockets/src/lab.rs"],
            ),
        );
        assert!(d.selected);
        assert_eq!(
            d.line(),
            "m03: selected: crates/m03-thread-per-conn/ (2 files), crates/m01-raw-sockets/ \
             (1 file, uncommitted), xtask/ (1 file) changed since d2344fc"
        );
        let d = run(
            Some(&clean),
            &mut fake(
                &[
                    "Cargo.lock",
                    "xtask/src/ci.rs",
                    "crates/m01-raw-sockets/src/lib.rs",
                ],
                &["milestones/03-thread-per-conn.toml", "xtask/src/ci.rs"],
            ),
        );
        assert_eq!(
            d.line(),
            "m03: selected: milestones/03-thread-per-conn.toml (1 file, uncommitted), \
             crates/m01-raw-sockets/ (1 file), xtask/ (1 file, uncommitted) and 1 more inputs \
             changed since d2344fc"
        );
    }

    #[test]
    fn writeup_counts_only_outside_its_generated_section() {
        let clean = rec(false, None, true);
        let mut h = fake(&["docs/milestones/03-thread-per-conn.md"], &[]);
        assert!(!run(Some(&clean), &mut h).selected);
        h.writeup = true;
        let d = run(Some(&clean), &mut h);
        assert!(d.selected);
        assert!(
            d.reason
                .starts_with("docs/milestones/03-thread-per-conn.md (outside its generated"),
            "{d:?}"
        );
    }

    #[test]
    fn missing_uncomparable_failed_and_dirty_results_are_selected() {
        let d = run(None, &mut fake(&[], &[]));
        assert!(d.selected);
        assert!(d.reason.contains("docs/results/m03.json missing"), "{d:?}");

        let clean = rec(false, None, true);
        let mut shallow = Fake {
            changes: Err("this is a shallow clone".into()),
            writeup: false,
        };
        let d = run(Some(&clean), &mut shallow);
        assert_eq!(d.line(), "m03: selected: this is a shallow clone");

        let failed = rec(false, None, false);
        let d = run(Some(&failed), &mut fake(&[], &[]));
        assert!(d.selected);
        assert!(d.reason.contains("did not pass"), "{d:?}");

        // An old dirty record: which changes is unknown.
        let old_dirty = rec(true, None, true);
        let d = run(Some(&old_dirty), &mut fake(&[], &[]));
        assert!(d.selected);
        assert!(d.reason.contains("does not list"), "{d:?}");

        // Dirty in its inputs (or its write-up, whichever part).
        for p in [
            "crates/m03-thread-per-conn/src/lib.rs",
            "docs/milestones/03-thread-per-conn.md",
        ] {
            let dirty = rec(true, Some(&["docs/results/m01.json", p]), true);
            let d = run(Some(&dirty), &mut fake(&[], &[]));
            assert!(d.selected, "{p}");
            assert!(d.reason.ends_with(&format!("inputs: {p}")), "{d:?}");
        }

        // Dirty only in other milestones' outputs: as good as clean.
        let batch = rec(
            true,
            Some(&["docs/results/m01.json", "docs/milestones/01-raw-sockets.md"]),
            true,
        );
        let d = run(Some(&batch), &mut fake(&[], &[]));
        assert!(!d.selected, "{d:?}");
        assert!(d.reason.contains("none to its inputs"), "{d:?}");
    }

    fn sh(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn git_history_in_a_real_repository() {
        let scratch = Scratch::new("select-git");
        let repo = scratch.path.join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        sh(&repo, &["init", "-q", "-b", "main"]);
        sh(&repo, &["config", "commit.gpgsign", "false"]);
        write(&repo, "crates/m01-a/src/lib.rs", "// one\n");
        write(&repo, "crates/m01-a/src/old.rs", "// moved later\n");
        write(
            &repo,
            "docs/milestones/01-a.md",
            "# A\n<!-- BEGIN GENERATED RESULTS (x) -->\n1\n<!-- END GENERATED RESULTS -->\n",
        );
        sh(&repo, &["add", "-A"]);
        sh(&repo, &["commit", "-q", "-m", "one"]);
        let first = sh(&repo, &["rev-parse", "HEAD"]);

        // Nothing since: no changes, write-up unchanged.
        let mut h = GitHistory::new(&repo);
        assert_eq!(h.changes_since(&first), Ok(Changes::default()));
        assert!(!h.writeup_changed(&first, "docs/milestones/01-a.md"));

        // A results-only commit, a rename (both sides count) and uncommitted changes.
        write(
            &repo,
            "docs/milestones/01-a.md",
            "# A\n<!-- BEGIN GENERATED RESULTS (x) -->\n2\n<!-- END GENERATED RESULTS -->\n",
        );
        write(&repo, "docs/results/m01.json", "{}\n");
        sh(
            &repo,
            &["mv", "crates/m01-a/src/old.rs", "crates/m01-a/src/new.rs"],
        );
        sh(&repo, &["add", "-A"]);
        sh(&repo, &["commit", "-q", "-m", "two"]);
        write(&repo, "crates/m01-a/src/lib.rs", "// changed\n");
        write(&repo, "untracked/file.txt", "new\n");
        let mut h = GitHistory::new(&repo);
        let c = h.changes_since(&first).expect("comparable");
        assert_eq!(
            c.committed,
            [
                "crates/m01-a/src/new.rs",
                "crates/m01-a/src/old.rs",
                "docs/milestones/01-a.md",
                "docs/results/m01.json"
            ]
        );
        assert_eq!(
            c.uncommitted,
            ["crates/m01-a/src/lib.rs", "untracked/file.txt"]
        );
        assert!(!h.writeup_changed(&first, "docs/milestones/01-a.md"));
        write(&repo, "docs/milestones/01-a.md", "# A, edited by hand\n");
        assert!(h.writeup_changed(&first, "docs/milestones/01-a.md"));

        // Unknown and non-ancestor revisions cannot be compared.
        let err = h
            .changes_since("0123456789abcdef0123456789abcdef01234567")
            .expect_err("unknown");
        assert!(err.contains("does not have"), "{err}");
        sh(&repo, &["stash", "-q", "-u"]);
        sh(&repo, &["checkout", "-q", "--orphan", "other"]);
        write(&repo, "x.txt", "x\n");
        sh(&repo, &["add", "-A"]);
        sh(&repo, &["commit", "-q", "-m", "unrelated"]);
        let mut h = GitHistory::new(&repo);
        let err = h.changes_since(&first).expect_err("not an ancestor");
        assert!(err.contains("not an ancestor"), "{err}");
        assert!(h.changes_since("none").is_err());

        // GitInfo records the uncommitted paths and a diff hash that follows the contents.
        sh(&repo, &["checkout", "-q", "main"]);
        let clean = GitInfo::current(&repo);
        assert!(!clean.dirty, "{clean:?}");
        assert_eq!(
            (clean.diff_hash.as_ref(), clean.dirty_paths.as_ref()),
            (None, None)
        );
        write(&repo, "crates/m01-a/src/lib.rs", "// dirty\n");
        write(&repo, "new.txt", "a\n");
        let dirty = GitInfo::current(&repo);
        assert!(dirty.dirty);
        assert_eq!(
            dirty.dirty_paths.as_deref(),
            Some(&["crates/m01-a/src/lib.rs".to_string(), "new.txt".to_string()][..])
        );
        let hash = dirty.diff_hash.clone().expect("a hash");
        assert_eq!(GitInfo::current(&repo).diff_hash, Some(hash.clone()));
        write(&repo, "new.txt", "b\n");
        assert_ne!(GitInfo::current(&repo).diff_hash, Some(hash));
        assert_eq!(
            GitInfo::current(&repo).finish(&repo).dirty_paths,
            dirty.dirty_paths
        );

        // A shallow clone compares nothing.
        let shallow = scratch.path.join("shallow");
        let url = format!("file://{}", repo.display());
        sh(
            &scratch.path,
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                &url,
                &shallow.to_string_lossy(),
            ],
        );
        let mut h = GitHistory::new(&shallow);
        let err = h.changes_since(&first).expect_err("shallow");
        assert!(err.contains("shallow clone"), "{err}");
    }

    #[test]
    fn old_results_without_the_new_git_fields_still_load() {
        let old: GitInfo =
            serde_json::from_str(r#"{"revision": "abc", "dirty": true}"#).expect("loads");
        assert_eq!((old.diff_hash, old.dirty_paths), (None, None));
        let clean = GitInfo {
            revision: "abc".into(),
            ..GitInfo::default()
        };
        assert_eq!(
            serde_json::to_string(&clean).expect("serializes"),
            r#"{"revision":"abc","dirty":false}"#
        );
    }

    #[test]
    fn inputs_of_a_real_milestone() {
        let root = crate::manifest::project_root();
        let manifests = crate::manifest::load_all(&root).expect("manifests");
        let m10 = manifests.iter().find(|m| m.number == 10).expect("m10");
        let meta = deps::metadata(&root).expect("cargo metadata");
        let i = inputs(&root, m10, &meta);
        for want in [
            "xtask/",
            "benches/",
            "Cargo.toml",
            "Cargo.lock",
            ".ci/",
            "milestones/10-multi-loop.toml",
            "crates/m10-multi-loop/",
            "crates/m09-event-loop/",
            // check_default_loops runs the zyphos binary.
            "crates/zyphos/",
        ] {
            assert!(i.paths.iter().any(|p| p == want), "{want} in {i:?}");
        }
        assert!(!i.paths.iter().any(|p| p.starts_with("docs")), "{i:?}");
        assert_eq!(i.writeup, "docs/milestones/10-multi-loop.md");
        let m1 = manifests.iter().find(|m| m.number == 1).expect("m01");
        let i1 = inputs(&root, m1, &meta);
        assert!(
            !i1.paths
                .iter()
                .any(|p| p.starts_with("crates/m0") && p != "crates/m01-raw-sockets/"),
            "{i1:?}"
        );
        assert!(!i1.paths.iter().any(|p| p == "crates/zyphos/"), "{i1:?}");
    }
}
