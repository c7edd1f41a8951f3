//! Milestone manifests: `milestones/NN-slug.toml`, one per roadmap milestone.
//!
//! The schema is `milestones/README.md`; this module is its typed mirror. Every table rejects
//! unknown keys, so a typo (`evidnce = […]`) is an error with file and line rather than a silently
//! empty list. Spans are kept for the parts that later errors point at (items, evidence entries,
//! executables), so `--verify` and `cargo xtask ci` can say `milestones/01-raw-sockets.toml:172`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

use crate::UsageError;

/// How many milestones the roadmap has.
pub(crate) const MILESTONE_COUNT: u32 = 30;

/// The crate of each milestone, in order (from `docs/ARCHITECTURE.md`).
pub(crate) const CRATE_NAMES: [&str; MILESTONE_COUNT as usize] = [
    "m01-raw-sockets",
    "m02-tcp-state",
    "m03-thread-per-conn",
    "m04-http10",
    "m05-routing",
    "m06-thread-pool",
    "m07-buffers",
    "m08-http11",
    "m09-event-loop",
    "m10-multi-loop",
    "m11-simd-parse",
    "m12-metrics",
    "m13-router",
    "m14-cache",
    "m15-io-uring",
    "m16-sendfile",
    "m17-reuseport",
    "m18-tcp-options",
    "m19-rate-limit",
    "m20-parser-security",
    "m21-resilience",
    "m22-tls",
    "m23-h2-frames",
    "m24-h2-streams",
    "m25-websocket",
    "m26-sse",
    "m27-udp",
    "m28-reliable-udp",
    "m29-multicast",
    "m30-quic",
];

/// The load-scenario families a `[server]` may speak.
pub(crate) const PROTOCOLS: [&str; 11] = [
    "echo",
    "http1.0",
    "http1.1",
    "https1.1",
    "h2c",
    "ws",
    "sse",
    "udp-echo",
    "rudp",
    "multicast",
    "quic",
];

/// The workspace root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A roadmap checklist section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Section {
    /// Implementation Scope.
    Scope,
    /// Conceptual Exploration.
    Explore,
    /// Observability & Measurement.
    Observe,
    /// Failure Scenarios.
    Failure,
    /// Exit Criteria.
    Exit,
}

impl Section {
    /// All sections in roadmap order.
    pub(crate) const ALL: [Section; 5] = [
        Section::Scope,
        Section::Explore,
        Section::Observe,
        Section::Failure,
        Section::Exit,
    ];

    /// The roadmap's `#### …` heading for this section.
    pub(crate) fn heading(self) -> &'static str {
        match self {
            Section::Scope => "Implementation Scope",
            Section::Explore => "Conceptual Exploration",
            Section::Observe => "Observability & Measurement",
            Section::Failure => "Failure Scenarios",
            Section::Exit => "Exit Criteria",
        }
    }

    /// The manifest key (`scope`, `explore`, …).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Section::Scope => "scope",
            Section::Explore => "explore",
            Section::Observe => "observe",
            Section::Failure => "failure",
            Section::Exit => "exit",
        }
    }
}

/// A threshold comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// measured <= value
    #[serde(rename = "<=")]
    Le,
    /// measured < value
    #[serde(rename = "<")]
    Lt,
    /// measured >= value
    #[serde(rename = ">=")]
    Ge,
    /// measured > value
    #[serde(rename = ">")]
    Gt,
    /// measured == value
    #[serde(rename = "==")]
    Eq,
    /// the check reports pass/fail itself
    #[serde(rename = "pass")]
    Pass,
}

impl Op {
    /// The operator as written in manifests.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
            Op::Pass => "pass",
        }
    }

    /// Whether `measured op value` holds (`Pass` never holds for a number).
    pub(crate) fn holds(self, measured: f64, value: f64) -> bool {
        match self {
            Op::Le => measured <= value,
            Op::Lt => measured < value,
            Op::Ge => measured >= value,
            Op::Gt => measured > value,
            Op::Eq => measured == value,
            Op::Pass => false,
        }
    }
}

/// An exit item's threshold: `{ op = "<=", value = 100, unit = "ms" }` or `{ op = "pass" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Threshold {
    /// The comparison.
    pub(crate) op: Op,
    /// The bound (numeric ops only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<f64>,
    /// The unit the check must report (numeric ops only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) unit: Option<String>,
}

impl Threshold {
    /// Why this threshold is malformed, if it is.
    pub(crate) fn problem(&self) -> Option<String> {
        match (self.op, self.value, &self.unit) {
            (Op::Pass, None, None) => None,
            (Op::Pass, _, _) => Some("op = \"pass\" takes no value or unit".into()),
            (_, None, _) => Some(format!("op = \"{}\" needs a value", self.op.symbol())),
            (_, Some(v), _) if !v.is_finite() => Some(format!("value {v} is not a finite number")),
            (_, Some(_), None) => Some(format!(
                "op = \"{}\" needs a unit (the unit the check reports)",
                self.op.symbol()
            )),
            (_, Some(_), Some(_)) => None,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.op, self.value) {
            (Op::Pass, _) => f.write_str("pass"),
            (op, Some(v)) => {
                write!(f, "{} {}", op.symbol(), format_number(v))?;
                match &self.unit {
                    Some(u) if !u.is_empty() => write!(f, " {u}"),
                    _ => Ok(()),
                }
            }
            (op, None) => write!(f, "{} ?", op.symbol()),
        }
    }
}

/// A number without a pointless `.0` and with at most 3 decimals.
pub(crate) fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `[server]`: how to start "the server as of this milestone".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Server {
    /// `zyphos` arguments; `{listen}` and `{port}` are filled in.
    pub(crate) args: Vec<String>,
    /// The load-scenario family it speaks.
    pub(crate) protocol: String,
}

/// One roadmap checklist item.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Item {
    /// The roadmap section.
    pub(crate) section: Section,
    /// The roadmap's words, verbatim.
    pub(crate) text: String,
    /// Evidence references (`test:…`, `experiment:…`, `metric:…`, `bench:…`).
    pub(crate) evidence: Vec<Spanned<String>>,
    /// Exit items: the id of the `[[check]]` that measures it.
    #[serde(default)]
    pub(crate) check: Option<String>,
    /// Exit items: what the check must show.
    #[serde(default)]
    pub(crate) threshold: Option<Threshold>,
}

/// `[[check]]`: the executable behind an exit criterion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Check {
    /// Referenced by an exit item's `check`.
    pub(crate) id: String,
    /// The command (run from the workspace root).
    pub(crate) run: Vec<String>,
    /// Quick-profile arguments; must stay empty (exit checks run at full size).
    #[serde(default)]
    pub(crate) quick: Vec<String>,
    /// Timeout in seconds (default 20 minutes).
    #[serde(default)]
    pub(crate) timeout_s: Option<u64>,
}

/// `[[experiment]]`: a command that prints a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Experiment {
    /// Referenced as `experiment:NAME`.
    pub(crate) name: String,
    /// The command (run from the workspace root).
    pub(crate) run: Vec<String>,
    /// Arguments appended in the quick profile.
    #[serde(default)]
    pub(crate) quick: Vec<String>,
    /// Timeout in seconds (default 20 minutes).
    #[serde(default)]
    pub(crate) timeout_s: Option<u64>,
}

/// `[[metric]]`: a metric the server exposes, checked by a test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metric {
    /// Referenced as `metric:NAME`.
    pub(crate) name: String,
    /// `PACKAGE::path::to::test`.
    pub(crate) test: String,
    /// Timeout in seconds for the test run (default 20 minutes).
    #[serde(default)]
    pub(crate) timeout_s: Option<u64>,
}

/// `[[bench]]`: a benchmark with a full command and a short verification run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bench {
    /// Referenced as `bench:NAME`.
    pub(crate) name: String,
    /// The full benchmark (`cargo xtask milestone N --bench`).
    pub(crate) run: Vec<String>,
    /// The short run `--verify` uses.
    pub(crate) verify: Vec<String>,
    /// Timeout in seconds (default 20 minutes).
    #[serde(default)]
    pub(crate) timeout_s: Option<u64>,
}

/// One parsed manifest, with where it came from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Milestone number (1–30).
    pub(crate) number: u32,
    /// File-name slug.
    pub(crate) slug: String,
    /// Roadmap title.
    pub(crate) title: String,
    /// Crate under `crates/`.
    #[serde(rename = "crate")]
    pub(crate) crate_name: String,
    /// Roadmap phase number.
    pub(crate) phase: u32,
    /// Roadmap phase title.
    pub(crate) phase_title: String,
    /// Whether the milestone is meant to pass `--verify`.
    pub(crate) built: bool,
    /// Learning objectives (text only).
    pub(crate) objectives: Vec<String>,
    /// How to start the server as of this milestone.
    pub(crate) server: Server,
    /// The checklist.
    #[serde(default, rename = "item")]
    pub(crate) items: Vec<Spanned<Item>>,
    /// Exit-criterion checks.
    #[serde(default, rename = "check")]
    pub(crate) checks: Vec<Spanned<Check>>,
    /// Experiments.
    #[serde(default, rename = "experiment")]
    pub(crate) experiments: Vec<Spanned<Experiment>>,
    /// Metrics.
    #[serde(default, rename = "metric")]
    pub(crate) metrics: Vec<Spanned<Metric>>,
    /// Benchmarks.
    #[serde(default, rename = "bench")]
    pub(crate) benches: Vec<Spanned<Bench>>,
    /// The file, relative to the workspace root (for messages).
    #[serde(skip)]
    pub(crate) path: PathBuf,
    /// Byte offsets where lines start (for span → line).
    #[serde(skip)]
    line_starts: Vec<usize>,
}

impl Manifest {
    /// Parses a manifest's text; `path` is only used in messages.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let line_starts = line_starts(text);
        let mut manifest: Manifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(&line_starts, s.start));
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
        })?;
        manifest.path = path.to_path_buf();
        manifest.line_starts = line_starts;
        Ok(manifest)
    }

    /// `milestones/NN-slug.toml:LINE` for a span of this manifest.
    pub(crate) fn location(&self, span: Range<usize>) -> String {
        format!(
            "{}:{}",
            self.path.display(),
            line_of(&self.line_starts, span.start)
        )
    }

    /// The expected file name, `NN-slug.toml`.
    pub(crate) fn file_name(&self) -> String {
        format!("{:02}-{}.toml", self.number, self.slug)
    }

    /// `docs/milestones/NN-slug.md`, relative to the root.
    pub(crate) fn writeup_path(&self) -> PathBuf {
        Path::new("docs/milestones").join(format!("{:02}-{}.md", self.number, self.slug))
    }

    /// `docs/results/mNN.json`, relative to the root.
    pub(crate) fn results_path(&self) -> PathBuf {
        Path::new("docs/results").join(format!("m{:02}.json", self.number))
    }

    /// `crates/CRATE`, relative to the root.
    pub(crate) fn crate_dir(&self) -> PathBuf {
        Path::new("crates").join(&self.crate_name)
    }

    /// Why the milestone cannot be verified yet, if it cannot.
    pub(crate) fn not_built_reason(&self, root: &Path) -> Option<String> {
        let dir = self.crate_dir();
        let reason = if !root.join(&dir).join("Cargo.toml").is_file() {
            format!("{} does not exist", dir.display())
        } else if !self.built {
            "manifest says built = false".to_string()
        } else {
            return None;
        };
        Some(format!(
            "milestone {} ({}) is not built yet: {reason}",
            self.number, self.title
        ))
    }

    /// The declared check with this id.
    pub(crate) fn check(&self, id: &str) -> Option<&Spanned<Check>> {
        self.checks.iter().find(|c| c.get_ref().id == id)
    }

    /// The declared experiment with this name.
    pub(crate) fn experiment(&self, name: &str) -> Option<&Spanned<Experiment>> {
        self.experiments.iter().find(|e| e.get_ref().name == name)
    }

    /// The declared metric with this name.
    pub(crate) fn metric(&self, name: &str) -> Option<&Spanned<Metric>> {
        self.metrics.iter().find(|m| m.get_ref().name == name)
    }

    /// The declared bench with this name.
    pub(crate) fn bench(&self, name: &str) -> Option<&Spanned<Bench>> {
        self.benches.iter().find(|b| b.get_ref().name == name)
    }

    /// The exit items.
    pub(crate) fn exit_items(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .map(|i| i.get_ref())
            .filter(|i| i.section == Section::Exit)
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn line_of(line_starts: &[usize], offset: usize) -> usize {
    line_starts.partition_point(|&start| start <= offset).max(1)
}

/// `milestones/` under the root.
pub(crate) fn milestones_dir(root: &Path) -> PathBuf {
    root.join("milestones")
}

/// Every `*.toml` in `milestones/`, sorted by name.
pub(crate) fn manifest_paths(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = milestones_dir(root);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads and parses one manifest file.
pub(crate) fn load(root: &Path, path: &Path) -> Result<Manifest> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", rel.display()))?;
    Manifest::parse(&text, rel)
}

/// Loads every manifest; fails on the first that does not parse.
pub(crate) fn load_all(root: &Path) -> Result<Vec<Manifest>> {
    let mut manifests = manifest_paths(root)?
        .iter()
        .map(|p| load(root, p))
        .collect::<Result<Vec<_>>>()?;
    manifests.sort_by_key(|m| m.number);
    Ok(manifests)
}

/// Parses a milestone number given on the command line (a usage error when it is not 1–30).
pub(crate) fn parse_number(arg: &str) -> Result<u32> {
    match arg.trim().parse::<u32>() {
        Ok(n) if (1..=MILESTONE_COUNT).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "unknown milestone `{arg}`: milestones are numbered 1 to {MILESTONE_COUNT}"
        ))
        .into()),
    }
}

/// Loads the manifest of milestone `arg` (as typed by the user).
pub(crate) fn find(root: &Path, arg: &str) -> Result<Manifest> {
    let number = parse_number(arg)?;
    let prefix = format!("{number:02}-");
    let matches: Vec<PathBuf> = manifest_paths(root)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    match matches.as_slice() {
        [] => Err(UsageError(format!(
            "unknown milestone `{arg}`: no milestones/{prefix}*.toml"
        ))
        .into()),
        [path] => {
            let manifest = load(root, path)?;
            if manifest.number != number {
                bail!(
                    "{}: says number = {} but its file name says {number}",
                    manifest.path.display(),
                    manifest.number
                );
            }
            Ok(manifest)
        }
        many => bail!(
            "milestone {number} has {} manifests: {}",
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"number = 3
slug = "thread-per-conn"
title = "Thread-per-Connection Model"
crate = "m03-thread-per-conn"
phase = 1
phase_title = "Network Foundations"
built = false
objectives = ["one"]

[server]
args = ["serve", "--listen", "{listen}"]
protocol = "echo"

[[item]]
section = "scope"
text = "Do a thing"
evidence = ["test:m03-thread-per-conn::a::b"]

[[item]]
section = "exit"
text = "Fast enough"
check = "fast_enough"
threshold = { op = "<=", value = 100, unit = "ms" }
evidence = []
"#;

    #[test]
    fn parses_minimal_manifest_with_lines() {
        let m = Manifest::parse(MINIMAL, Path::new("milestones/03-thread-per-conn.toml"))
            .expect("parses");
        assert_eq!(m.number, 3);
        assert_eq!(m.items.len(), 2);
        let ev = &m.items[0].get_ref().evidence[0];
        assert_eq!(
            m.location(ev.span()),
            "milestones/03-thread-per-conn.toml:17"
        );
        assert_eq!(
            m.location(m.items[1].span()),
            "milestones/03-thread-per-conn.toml:19"
        );
        let t = m.items[1].get_ref().threshold.clone().expect("threshold");
        assert_eq!(t.to_string(), "<= 100 ms");
        assert_eq!(t.problem(), None);
        assert_eq!(m.file_name(), "03-thread-per-conn.toml");
    }

    #[test]
    fn unknown_key_is_reported_with_file_and_line() {
        let bad = MINIMAL.replace("evidence = []", "evidnce = []");
        let err = Manifest::parse(&bad, Path::new("milestones/03-x.toml"))
            .expect_err("typo must not parse");
        let msg = err.to_string();
        assert!(msg.starts_with("milestones/03-x.toml:"), "{msg}");
        assert!(msg.contains("evidnce"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
        let line: usize = msg
            .split(':')
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("line number");
        assert_eq!(bad.lines().nth(line - 1), Some("evidnce = []"));
    }

    #[test]
    fn thresholds_are_validated() {
        let pass = Threshold {
            op: Op::Pass,
            value: None,
            unit: None,
        };
        assert_eq!(pass.problem(), None);
        let no_value = Threshold {
            op: Op::Le,
            value: None,
            unit: Some("ms".into()),
        };
        assert!(no_value.problem().is_some());
        let pass_with_value = Threshold {
            op: Op::Pass,
            value: Some(1.0),
            unit: None,
        };
        assert!(pass_with_value.problem().is_some());
        let no_unit = Threshold {
            op: Op::Gt,
            value: Some(5.0),
            unit: None,
        };
        assert!(no_unit.problem().is_some());
    }

    #[test]
    fn ops_compare() {
        assert!(Op::Le.holds(100.0, 100.0));
        assert!(!Op::Lt.holds(100.0, 100.0));
        assert!(Op::Ge.holds(5.0, 5.0));
        assert!(!Op::Gt.holds(5.0, 5.0));
        assert!(Op::Eq.holds(0.0, 0.0));
        assert!(!Op::Pass.holds(1.0, 1.0));
    }

    #[test]
    fn milestone_numbers_are_checked() {
        for bad in ["0", "31", "abc", "", "-1"] {
            let err = parse_number(bad).expect_err(bad);
            assert!(err.downcast_ref::<UsageError>().is_some(), "{bad}");
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(parse_number("4").ok(), Some(4));
        assert_eq!(parse_number("30").ok(), Some(30));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(100.0), "100");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(1.0 / 3.0), "0.333");
    }
}
