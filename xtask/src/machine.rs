//! Where a measurement was taken: the machine, the git revision and the time.
//!
//! Read from `/proc` directly (no shell-outs), except the revision and the uncommitted changes,
//! which ask `git`.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::exec::Cmd;

/// The machine a result was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub(crate) cpu_model: String,
    /// Logical CPUs the machine has.
    pub(crate) cores: usize,
    /// CPUs this process may use (affinity, cgroup).
    pub(crate) available_parallelism: usize,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub(crate) kernel: String,
    /// CPU architecture.
    pub(crate) arch: String,
}

impl Machine {
    /// Reads the current machine.
    pub(crate) fn current() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu_model, cores) = parse_cpuinfo(&cpuinfo);
        let available_parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu_model,
            cores: if cores == 0 {
                available_parallelism
            } else {
                cores
            },
            available_parallelism,
            kernel: format!("{} {kernel}", std::env::consts::OS),
            arch: std::env::consts::ARCH.to_string(),
        }
    }

    /// One line: `Intel(R) Xeon(R) … (2 cores, linux 6.1.0, x86_64)`.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} ({} cores, {}, {})",
            self.cpu_model, self.cores, self.kernel, self.arch
        )
    }
}

/// The CPU model and the number of `processor` entries.
pub(crate) fn parse_cpuinfo(text: &str) -> (String, usize) {
    let mut model = None;
    let mut processors = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "processor" => processors += 1,
            // x86 says `model name`; some arm kernels say `Model` or `CPU part`.
            "model name" | "Model" if model.is_none() => model = Some(value.trim().to_string()),
            _ => {}
        }
    }
    (model.unwrap_or_else(|| "unknown CPU".into()), processors)
}

/// The git revision of the tree a result was measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct GitInfo {
    /// `git rev-parse HEAD`, or `none` when there is no commit / no git.
    pub(crate) revision: String,
    /// Uncommitted changes (tracked or untracked) were present.
    pub(crate) dirty: bool,
    /// With `dirty`: the git object hash of `git diff HEAD --binary` followed by every untracked
    /// file's path and blob hash, so two dirty results can be told apart. Absent in older
    /// results, in clean ones, and when the tree changed during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) diff_hash: Option<String>,
    /// With `dirty`: the paths with uncommitted changes (`git status --porcelain`, untracked
    /// files listed one by one). `cargo xtask ci` treats a dirty result as stale unless this
    /// list is known and touches none of the milestone's inputs. Absent in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dirty_paths: Option<Vec<String>>,
}

/// Runs `git ARGS` in `root`; its stdout when it succeeded.
pub(crate) fn git(root: &Path, args: &[&str]) -> Option<String> {
    let mut argv = vec!["git"];
    argv.extend_from_slice(args);
    Cmd::new(argv, root)
        .timeout(Duration::from_secs(60))
        .run()
        .ok()
        .filter(|f| f.success())
        .map(|f| f.stdout)
}

/// One entry of `git status --porcelain -z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusEntry {
    /// The path (for a rename or copy, the new one).
    pub(crate) path: String,
    /// For a rename or copy, the old path.
    pub(crate) from: Option<String>,
    /// `??`: not tracked.
    pub(crate) untracked: bool,
}

/// Parses `git status --porcelain -z` output (`XY PATH\0`, renames `XY NEW\0OLD\0`).
pub(crate) fn parse_status_z(text: &str) -> Vec<StatusEntry> {
    let mut out = Vec::new();
    let mut fields = text.split('\0');
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        let (xy, path) = field.split_at(3);
        let xy = xy.as_bytes();
        let from = if matches!(xy[0], b'R' | b'C') || matches!(xy[1], b'R' | b'C') {
            fields.next().map(str::to_string)
        } else {
            None
        };
        out.push(StatusEntry {
            path: path.to_string(),
            from,
            untracked: xy[0] == b'?',
        });
    }
    out
}

/// The uncommitted changes of the tree at `root` (ignored files excluded), or `None` when git
/// cannot say.
pub(crate) fn uncommitted(root: &Path) -> Option<Vec<StatusEntry>> {
    git(
        root,
        &["status", "--porcelain", "-z", "--untracked-files=all"],
    )
    .map(|s| parse_status_z(&s))
}

/// Every path an uncommitted change touches (both sides of a rename), sorted.
pub(crate) fn entry_paths(entries: &[StatusEntry]) -> Vec<String> {
    let mut paths: Vec<String> = entries
        .iter()
        .flat_map(|e| std::iter::once(e.path.clone()).chain(e.from.clone()))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The git object hash of `git diff HEAD --binary` plus each untracked file's path and blob
/// hash (`None` when git cannot tell, e.g. before the first commit).
fn diff_hash(root: &Path, entries: &[StatusEntry]) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let output = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    };
    let mut bytes = output(&["diff", "HEAD", "--binary", "--no-ext-diff", "--no-color"])?;
    let untracked: Vec<&str> = entries
        .iter()
        .filter(|e| e.untracked)
        .map(|e| e.path.as_str())
        .collect();
    if !untracked.is_empty() {
        let mut args = vec!["hash-object", "--"];
        args.extend(&untracked);
        let hashes = String::from_utf8(output(&args)?).ok()?;
        for (path, hash) in untracked.iter().zip(hashes.lines()) {
            bytes.extend_from_slice(format!("untracked {path} {hash}\n").as_bytes());
        }
    }
    let mut child = Command::new("git")
        .args(["hash-object", "--stdin"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(&bytes).ok()?;
    let out = child.wait_with_output().ok()?;
    let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !hash.is_empty()).then_some(hash)
}

impl GitInfo {
    /// Asks git about `root`.
    pub(crate) fn current(root: &Path) -> GitInfo {
        let revision = git(root, &["rev-parse", "HEAD"])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into());
        match uncommitted(root) {
            // No git, or git failed: count it as dirty, with nothing known about the changes.
            None => GitInfo {
                revision,
                dirty: true,
                ..GitInfo::default()
            },
            Some(entries) if entries.is_empty() => GitInfo {
                revision,
                dirty: false,
                ..GitInfo::default()
            },
            Some(entries) => GitInfo {
                revision,
                dirty: true,
                diff_hash: diff_hash(root, &entries),
                dirty_paths: Some(entry_paths(&entries)),
            },
        }
    }

    /// The record for a run that started at `self`: asks git again and, when the tree changed
    /// during the run, says so on stderr and returns a dirty record (the union of both change
    /// lists when the revision stayed; nothing known about the changes when it moved).
    pub(crate) fn finish(self, root: &Path) -> GitInfo {
        let end = GitInfo::current(root);
        if end == self {
            return self;
        }
        eprintln!(
            "warning: the working tree changed during the run (at the start {}, at the end {}); \
             the result is recorded as dirty",
            self.short(),
            end.short()
        );
        let dirty_paths = match (&self.dirty_paths, &end.dirty_paths) {
            _ if self.revision != end.revision => None,
            (Some(a), Some(b)) => {
                let mut all: Vec<String> = a.iter().chain(b).cloned().collect();
                all.sort();
                all.dedup();
                Some(all)
            }
            (Some(a), None) if !end.dirty => Some(a.clone()),
            (None, Some(b)) if !self.dirty => Some(b.clone()),
            _ => None,
        };
        GitInfo {
            revision: self.revision,
            dirty: true,
            diff_hash: None,
            dirty_paths,
        }
    }

    /// With uncommitted changes: a loud warning on stderr (`when`: `start`, `end`) naming them.
    pub(crate) fn warn_if_dirty(&self, when: &str) {
        if !self.dirty {
            return;
        }
        let rule = "=".repeat(78);
        eprintln!("warning: {rule}");
        eprintln!(
            "warning: DIRTY TREE ({when} of the run): uncommitted changes on top of {}; the \
             result is recorded with dirty = true{}",
            self.short(),
            self.diff_hash
                .as_ref()
                .map(|h| format!(" and diff_hash = {}", &h[..h.len().min(12)]))
                .unwrap_or_default()
        );
        match &self.dirty_paths {
            Some(paths) => {
                for p in paths.iter().take(8) {
                    eprintln!("warning:   {p}");
                }
                if paths.len() > 8 {
                    eprintln!("warning:   … and {} more", paths.len() - 8);
                }
            }
            None => eprintln!("warning:   (git could not list the changes)"),
        }
        eprintln!(
            "warning: `cargo xtask ci` re-verifies a dirty result when the changes touch the \
             milestone's inputs; commit first and verify again to record a clean result"
        );
        eprintln!("warning: {rule}");
    }

    /// `abc123def456` or `abc123def456-dirty` (12 hex digits); `no-commit` without a revision.
    pub(crate) fn short(&self) -> String {
        let rev: String = if self.revision == "none" {
            "no-commit".to_string()
        } else {
            self.revision.chars().take(12).collect()
        };
        if self.dirty {
            format!("{rev}-dirty")
        } else {
            rev
        }
    }
}

/// Now, as RFC 3339 UTC (`2026-11-25T18:20:00Z`).
pub(crate) fn timestamp_now() -> String {
    rfc3339(SystemTime::now())
}

/// Formats a time as RFC 3339 UTC with second precision.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn cpuinfo_model_and_count() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.0GHz\n\n\
                    processor\t: 1\nmodel name\t: Test CPU @ 2.0GHz\n";
        assert_eq!(parse_cpuinfo(text), ("Test CPU @ 2.0GHz".to_string(), 2));
        assert_eq!(parse_cpuinfo(""), ("unknown CPU".to_string(), 0));
    }

    #[test]
    fn current_machine_is_plausible() {
        let m = Machine::current();
        assert!(m.cores >= 1);
        assert!(m.available_parallelism >= 1);
        assert!(!m.kernel.is_empty());
    }
}
