//! `docs/results/mNN.json`: what the last `--verify` measured, and the generated results section
//! of `docs/milestones/NN-slug.md`.
//!
//! The JSON is the record (machine, revision, timestamp, profile, every command and figure); the
//! Markdown section is rendered from it. Item states shown by `cargo xtask milestone N` and the
//! status board are computed from the *current* manifest against the last record, so an evidence
//! entry added since the last run shows as not yet verified rather than passing.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::machine::{GitInfo, Machine};
use crate::manifest::{Item, Manifest, Op, Section, Threshold, format_number};

/// Marker before the generated section of a write-up.
pub(crate) fn begin_marker(number: u32) -> String {
    format!("<!-- BEGIN GENERATED RESULTS (cargo xtask milestone {number} --verify) -->")
}

/// Marker after the generated section of a write-up.
pub(crate) const END_MARKER: &str = "<!-- END GENERATED RESULTS -->";

/// How close a candidate must come to its yardstick for a missed threshold to be judged a
/// [`Verdict::Ceiling`] rather than a plain [`Verdict::Fail`].
///
/// The rule, for every exit check in the project: a check may report `ceiling` only when
/// (1) it measured, in the same run, a *yardstick* that does strictly less work than any correct
/// implementation could (a bare stack with no checks, no generations, no statistics…),
/// (2) the yardstick itself misses the threshold, and (3) the candidate reaches at least this
/// fraction of the yardstick's figure: `measured >= CEILING_FRACTION * yardstick` when higher is
/// better (`>=`, `>`), `measured <= yardstick / CEILING_FRACTION` when lower is better (`<=`,
/// `<`). It never applies to `==` or `pass` thresholds. A ceiling is **not met**; it only tells
/// "no implementation could meet this here" apart from "this implementation falls short".
pub(crate) const CEILING_FRACTION: f64 = 0.85;

/// Pass, fail, or (exit checks only) a miss at the machine's ceiling; see [`CEILING_FRACTION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// It held.
    Pass,
    /// It did not.
    Fail,
    /// An exit check missed its threshold, but so did a yardstick doing strictly less work than
    /// any correct implementation, measured in the same run, and the candidate came within
    /// [`CEILING_FRACTION`] of it. Not met, yet not a failure of `--verify`.
    Ceiling,
}

impl Verdict {
    /// `Pass` when `ok`.
    pub(crate) fn from_bool(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Fail }
    }

    /// `PASS` / `FAIL` / `CEILING`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Ceiling => "CEILING",
        }
    }
}

/// A yardstick measured in the same run as a check: the same figure for something that does
/// strictly less work than any correct implementation (see [`CEILING_FRACTION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Yardstick {
    /// Its figure, in the check's unit.
    pub(crate) value: f64,
    /// What it is, in one phrase ("a bare index stack, no checks").
    pub(crate) what: String,
}

/// Quick (CI) or full profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Profile {
    /// Experiments with `quick` args and `ZYPHOS_QUICK=1`; exit checks at full size.
    Quick,
    /// Everything at full size.
    Full,
}

/// One evidence entry's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvidenceRecord {
    /// The reference as written in the manifest.
    pub(crate) reference: String,
    /// Its verdict.
    pub(crate) verdict: Verdict,
    /// Why.
    pub(crate) detail: String,
    /// The command that produced it.
    pub(crate) command: String,
    /// Wall time of that command (for tests: the whole `cargo test` run of the package).
    pub(crate) duration_s: f64,
}

/// One exit check's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckRecord {
    /// The `[[check]]` id.
    pub(crate) id: String,
    /// The exit item it measures.
    pub(crate) item: String,
    /// The exact command.
    pub(crate) command: String,
    /// The measured value (numeric checks).
    pub(crate) measured: Option<f64>,
    /// The unit it was reported in.
    pub(crate) unit: Option<String>,
    /// The reported pass/fail (`op = "pass"` checks).
    pub(crate) pass: Option<bool>,
    /// What it was compared with.
    pub(crate) threshold: Threshold,
    /// The verdict.
    pub(crate) verdict: Verdict,
    /// The check's own detail, or why it failed.
    pub(crate) detail: String,
    /// Wall time.
    pub(crate) duration_s: f64,
    /// The yardstick the check measured in the same run, if it reported one (records written
    /// before yardsticks existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) yardstick: Option<Yardstick>,
}

impl CheckRecord {
    /// The measurement as shown in tables; for a ceiling, with the threshold and the yardstick
    /// (`5.7 x of 10 x; ceiling here 6.7 x`).
    pub(crate) fn measured_text(&self) -> String {
        if self.verdict == Verdict::Ceiling {
            if let (Some(m), Some(t), Some(y)) =
                (self.measured, self.threshold.value, self.yardstick.as_ref())
            {
                // The unit proper: `x (vs malloc, same run)` reads `x` three times over.
                let unit = crate::verify::base_unit(self.unit.as_deref().unwrap_or_default());
                let with_unit = |v: f64| {
                    if unit.is_empty() {
                        format_number(v)
                    } else {
                        format!("{} {unit}", format_number(v))
                    }
                };
                let against = match self.threshold.op {
                    Op::Le | Op::Lt => "against",
                    _ => "of",
                };
                return format!(
                    "{} {against} {}; ceiling here {}",
                    with_unit(m),
                    with_unit(t),
                    with_unit(y.value)
                );
            }
        }
        match (self.measured, self.pass) {
            (Some(v), _) => match &self.unit {
                Some(u) if !u.is_empty() => format!("{} {u}", format_number(v)),
                _ => format_number(v),
            },
            (None, Some(true)) => "pass".into(),
            (None, Some(false)) => "fail".into(),
            (None, None) => "—".into(),
        }
    }
}

/// A table an experiment printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Table {
    /// Title.
    pub(crate) title: String,
    /// Column headings.
    pub(crate) columns: Vec<String>,
    /// Rows of cells (strings or numbers).
    pub(crate) rows: Vec<Vec<serde_json::Value>>,
    /// What to read in it.
    #[serde(default)]
    pub(crate) notes: String,
}

impl Table {
    /// Parses and validates an experiment's stdout.
    pub(crate) fn parse(stdout: &str) -> Result<Table> {
        let table: Table = serde_json::from_str(stdout.trim())
            .context("stdout is not a {title, columns, rows, notes} JSON table")?;
        if table.columns.is_empty() {
            bail!("the table has no columns");
        }
        for (i, row) in table.rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                bail!(
                    "row {} has {} cells for {} columns",
                    i + 1,
                    row.len(),
                    table.columns.len()
                );
            }
            if let Some(cell) = row.iter().find(|c| !(c.is_string() || c.is_number())) {
                bail!(
                    "row {} has a cell that is neither string nor number: {cell}",
                    i + 1
                );
            }
        }
        Ok(table)
    }
}

/// One experiment run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExperimentRecord {
    /// The `[[experiment]]` name.
    pub(crate) name: String,
    /// The exact command.
    pub(crate) command: String,
    /// The verdict (the command ran and printed a valid table).
    pub(crate) verdict: Verdict,
    /// Why it failed, or empty.
    pub(crate) detail: String,
    /// Wall time.
    pub(crate) duration_s: f64,
    /// The table.
    pub(crate) table: Option<Table>,
}

/// One benchmark run (`--verify` uses its `verify` command, `--bench` its `run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BenchRecord {
    /// The `[[bench]]` name.
    pub(crate) name: String,
    /// The exact command.
    pub(crate) command: String,
    /// The verdict (the command succeeded).
    pub(crate) verdict: Verdict,
    /// Why it failed, or empty.
    pub(crate) detail: String,
    /// Wall time.
    pub(crate) duration_s: f64,
    /// Its stdout (criterion summaries, a load report…), trimmed.
    pub(crate) output: String,
}

/// A throughput/latency figure for the charts (from a load report a bench printed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Figure {
    /// Series label (the bench name).
    pub(crate) label: String,
    /// Load scenario.
    pub(crate) scenario: String,
    /// Requests per second.
    pub(crate) rps: f64,
    /// p99 latency in microseconds.
    pub(crate) p99_us: f64,
    /// The command.
    pub(crate) command: String,
}

impl Figure {
    /// A figure from a bench's stdout, when it is a `zyphos-load --json` report.
    pub(crate) fn from_output(label: &str, command: &str, stdout: &str) -> Option<Figure> {
        let report: zyphos_load::Report = serde_json::from_str(stdout.trim()).ok()?;
        Some(Figure {
            label: label.to_string(),
            scenario: report.scenario,
            rps: report.rps,
            p99_us: report.latency.p99_us,
            command: command.to_string(),
        })
    }
}

/// The build step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BuildRecord {
    /// The exact command.
    pub(crate) command: String,
    /// The verdict.
    pub(crate) verdict: Verdict,
    /// Wall time.
    pub(crate) duration_s: f64,
}

/// Everything one `cargo xtask milestone N --verify` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MilestoneResults {
    /// Milestone number.
    pub(crate) milestone: u32,
    /// Title.
    pub(crate) title: String,
    /// Crate.
    #[serde(rename = "crate")]
    pub(crate) crate_name: String,
    /// Quick or full.
    pub(crate) profile: Profile,
    /// The xtask command that wrote this.
    pub(crate) command: String,
    /// Where.
    pub(crate) machine: Machine,
    /// Which tree.
    pub(crate) git: GitInfo,
    /// When (RFC 3339 UTC).
    pub(crate) timestamp: String,
    /// Everything passed.
    pub(crate) passed: bool,
    /// The build.
    pub(crate) build: BuildRecord,
    /// Every evidence entry's verdict.
    pub(crate) evidence: Vec<EvidenceRecord>,
    /// Every exit check.
    pub(crate) checks: Vec<CheckRecord>,
    /// Every experiment.
    pub(crate) experiments: Vec<ExperimentRecord>,
    /// Every bench (verify runs).
    pub(crate) benches: Vec<BenchRecord>,
    /// Throughput/latency figures for the charts.
    #[serde(default)]
    pub(crate) figures: Vec<Figure>,
}

impl MilestoneResults {
    /// How many records failed (evidence, checks, experiments, benches); a ceiling is not a
    /// failure.
    pub(crate) fn failures(&self) -> usize {
        let fail = |v: Verdict| v == Verdict::Fail;
        self.evidence.iter().filter(|e| fail(e.verdict)).count()
            + self.checks.iter().filter(|c| fail(c.verdict)).count()
            + self.experiments.iter().filter(|e| fail(e.verdict)).count()
            + self.benches.iter().filter(|b| fail(b.verdict)).count()
    }

    /// The exit checks judged at a ceiling.
    pub(crate) fn ceilings(&self) -> impl Iterator<Item = &CheckRecord> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Ceiling)
    }

    /// The outcome in a few words: `everything passed`, `2 failed`, `1 exit check at a ceiling
    /// (not met), nothing failed`, `2 failed, 1 exit check at a ceiling (not met)`.
    pub(crate) fn outcome(&self) -> String {
        let failures = self.failures();
        let ceilings = self.ceilings().count();
        let at_ceiling = format!(
            "{ceilings} exit check{} at a ceiling (not met)",
            if ceilings == 1 { "" } else { "s" }
        );
        match (self.passed, failures, ceilings) {
            (true, _, _) => "everything passed".into(),
            (false, f, 0) => format!("{f} failed"),
            (false, 0, _) => format!("{at_ceiling}, nothing failed"),
            (false, f, _) => format!("{f} failed, {at_ceiling}"),
        }
    }
}

/// What `cargo xtask milestone N --bench` recorded (`docs/results/mNN-bench.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BenchResults {
    /// Milestone number.
    pub(crate) milestone: u32,
    /// The xtask command that wrote this.
    pub(crate) command: String,
    /// Where.
    pub(crate) machine: Machine,
    /// Which tree.
    pub(crate) git: GitInfo,
    /// When (RFC 3339 UTC).
    pub(crate) timestamp: String,
    /// Every bench's full run.
    pub(crate) benches: Vec<BenchRecord>,
    /// Throughput/latency figures for the charts.
    #[serde(default)]
    pub(crate) figures: Vec<Figure>,
}

/// Reads `docs/results/mNN.json` if it exists. An unreadable file is reported on stderr and
/// treated as absent (it is rewritten by the next `--verify`).
pub(crate) fn load(root: &Path, manifest: &Manifest) -> Option<MilestoneResults> {
    let path = root.join(manifest.results_path());
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!(
                "warning: {} is unreadable ({e}); ignoring it",
                manifest.results_path().display()
            );
            None
        }
    }
}

/// Writes JSON with a trailing newline, creating parent directories.
pub(crate) fn write_json<T: Serialize>(root: &Path, rel: &Path, value: &T) -> Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", rel.display()))
}

/// The state of one checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemState {
    /// No evidence listed.
    Open,
    /// Evidence listed but not (all) verified by the last run.
    Unverified,
    /// Every evidence entry passed in the last run.
    Passing,
    /// Some evidence entry failed in the last run.
    Failing,
}

impl ItemState {
    /// The checkbox glyph.
    pub(crate) fn glyph(self) -> &'static str {
        match self {
            ItemState::Open => "[ ]",
            ItemState::Unverified => "[?]",
            ItemState::Passing => "[x]",
            ItemState::Failing => "[!]",
        }
    }
}

/// Verdict per evidence reference in a record.
pub(crate) fn verdict_map(results: Option<&MilestoneResults>) -> BTreeMap<&str, Verdict> {
    results
        .map(|r| {
            r.evidence
                .iter()
                .map(|e| (e.reference.as_str(), e.verdict))
                .collect()
        })
        .unwrap_or_default()
}

/// An item's state against the last record.
pub(crate) fn item_state(item: &Item, verdicts: &BTreeMap<&str, Verdict>) -> ItemState {
    if item.evidence.is_empty() {
        return ItemState::Open;
    }
    let mut all_pass = true;
    for e in &item.evidence {
        match verdicts.get(e.get_ref().as_str()) {
            // Evidence is pass/fail; a ceiling (exit checks only) is not passing either.
            Some(Verdict::Fail | Verdict::Ceiling) => return ItemState::Failing,
            Some(Verdict::Pass) => {}
            None => all_pass = false,
        }
    }
    if all_pass {
        ItemState::Passing
    } else {
        ItemState::Unverified
    }
}

/// An exit item against the last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitState {
    /// Its check passed and none of its evidence failed or is unverified.
    Met,
    /// Its check is at a ceiling ([`Verdict::Ceiling`]) and its evidence is fine: not met.
    Ceiling,
    /// Anything else: not met.
    NotMet,
}

impl ExitState {
    /// The verdict cell of the write-ups' exit-criteria table.
    pub(crate) fn markdown(self) -> &'static str {
        match self {
            ExitState::Met => "met",
            ExitState::Ceiling => "**not met** (ceiling)",
            ExitState::NotMet => "**not met**",
        }
    }

    /// The same in plain text (`--verify`'s table, the checklist).
    pub(crate) fn plain(self) -> &'static str {
        match self {
            ExitState::Met => "met",
            ExitState::Ceiling => "NOT MET (ceiling)",
            ExitState::NotMet => "NOT MET",
        }
    }
}

/// An exit item's state: met when its check passed in the last run and none of its evidence
/// failed or is unverified; a ceiling when its check is at a ceiling and the evidence is fine.
pub(crate) fn exit_state(
    item: &Item,
    results: Option<&MilestoneResults>,
    verdicts: &BTreeMap<&str, Verdict>,
) -> ExitState {
    let Some(results) = results else {
        return ExitState::NotMet;
    };
    let check = item
        .check
        .as_deref()
        .and_then(|id| results.checks.iter().find(|c| c.id == id));
    let evidence_ok = matches!(
        item_state(item, verdicts),
        ItemState::Open | ItemState::Passing
    );
    match check.map(|c| c.verdict) {
        Some(Verdict::Pass) if evidence_ok => ExitState::Met,
        Some(Verdict::Ceiling) if evidence_ok => ExitState::Ceiling,
        _ => ExitState::NotMet,
    }
}

/// Counts for one milestone (status board, `milestone N`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Items.
    pub(crate) total: usize,
    /// Items with evidence.
    pub(crate) evidenced: usize,
    /// Items whose evidence all passed.
    pub(crate) passing: usize,
    /// Items with failing evidence.
    pub(crate) failing: usize,
    /// Exit items.
    pub(crate) exit_total: usize,
    /// Exit items met.
    pub(crate) exit_met: usize,
    /// Exit items not met because their check is at a ceiling.
    pub(crate) exit_ceiling: usize,
}

/// Counts the items of `manifest` (optionally only one section).
pub(crate) fn counts(
    manifest: &Manifest,
    results: Option<&MilestoneResults>,
    section: Option<Section>,
) -> Counts {
    let verdicts = verdict_map(results);
    let mut c = Counts::default();
    for item in manifest.items.iter().map(|i| i.get_ref()) {
        if section.is_some_and(|s| s != item.section) {
            continue;
        }
        c.total += 1;
        match item_state(item, &verdicts) {
            ItemState::Open => {}
            ItemState::Unverified => c.evidenced += 1,
            ItemState::Passing => {
                c.evidenced += 1;
                c.passing += 1;
            }
            ItemState::Failing => {
                c.evidenced += 1;
                c.failing += 1;
            }
        }
        if item.section == Section::Exit {
            c.exit_total += 1;
            match exit_state(item, results, &verdicts) {
                ExitState::Met => c.exit_met += 1,
                ExitState::Ceiling => c.exit_ceiling += 1,
                ExitState::NotMet => {}
            }
        }
    }
    c
}

/// Escapes a Markdown table cell.
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), format_number),
        other => other.to_string(),
    }
}

/// Renders a table as Markdown.
pub(crate) fn table_markdown(table: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {} |",
        table
            .columns
            .iter()
            .map(|c| md_cell(c))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|{}", "---|".repeat(table.columns.len()));
    for row in &table.rows {
        let _ = writeln!(
            out,
            "| {} |",
            row.iter()
                .map(|c| md_cell(&cell_text(c)))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    out
}

/// The generated results section (between the markers, exclusive).
pub(crate) fn results_markdown(manifest: &Manifest, r: &MilestoneResults) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(
        out,
        "Verified {} at revision `{}` on {}, {} profile: **{}**.\n",
        r.timestamp,
        r.git.short(),
        r.machine.summary(),
        match r.profile {
            Profile::Quick => "quick",
            Profile::Full => "full",
        },
        r.outcome()
    );
    if r.profile == Profile::Quick {
        let _ = writeln!(
            out,
            "Quick profile: experiments ran with their `quick` arguments and `ZYPHOS_QUICK=1` \
             (fewer repetitions, shorter runs); exit criteria ran at full size.\n"
        );
    }
    let _ = writeln!(out, "Command: `{}`\n", r.command);

    let _ = writeln!(out, "### Exit criteria\n");
    let _ = writeln!(out, "| item | measured | threshold | verdict |");
    let _ = writeln!(out, "|---|---|---|---|");
    let verdicts = verdict_map(Some(r));
    for item in manifest.exit_items() {
        let check = item
            .check
            .as_deref()
            .and_then(|id| r.checks.iter().find(|c| c.id == id));
        let measured = check.map_or_else(|| "not run".to_string(), CheckRecord::measured_text);
        let threshold = item
            .threshold
            .as_ref()
            .map_or_else(|| "—".to_string(), ToString::to_string);
        let state = exit_state(item, Some(r), &verdicts);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md_cell(&item.text),
            md_cell(&measured),
            md_cell(&threshold),
            state.markdown()
        );
    }
    if !r.checks.is_empty() {
        let _ = writeln!(out, "\nCheck commands:\n");
        for c in &r.checks {
            let _ = writeln!(
                out,
                "- `{}`: `{}` ({:.1} s){}{}",
                c.id,
                c.command,
                c.duration_s,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail.replace('\n', " "))
                },
                c.yardstick.as_ref().map_or_else(String::new, |y| format!(
                    " (yardstick, same run: {}, {}{})",
                    y.what.replace('\n', " "),
                    format_number(y.value),
                    c.unit
                        .as_deref()
                        .map(crate::verify::base_unit)
                        .filter(|u| !u.is_empty())
                        .map_or_else(String::new, |u| format!(" {u}"))
                ))
            );
        }
    }

    if !r.evidence.is_empty() {
        let _ = writeln!(out, "\n### Evidence\n");
        let _ = writeln!(out, "| evidence | verdict | detail |");
        let _ = writeln!(out, "|---|---|---|");
        for e in &r.evidence {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                md_cell(&e.reference),
                e.verdict.label(),
                md_cell(&e.detail)
            );
        }
    }

    for x in &r.experiments {
        let _ = writeln!(out, "\n### Experiment `{}`\n", x.name);
        match &x.table {
            Some(t) => {
                let _ = writeln!(out, "**{}**\n", t.title.replace('\n', " "));
                out.push_str(&table_markdown(t));
                if !t.notes.is_empty() {
                    let _ = writeln!(out, "\n{}", t.notes.trim());
                }
            }
            None => {
                let _ = writeln!(out, "FAILED: {}", x.detail.replace('\n', " "));
            }
        }
        let _ = writeln!(out, "\nCommand: `{}` ({:.1} s)", x.command, x.duration_s);
    }

    if !r.benches.is_empty() {
        let _ = writeln!(out, "\n### Benchmarks (verification runs)\n");
        for b in &r.benches {
            let _ = writeln!(
                out,
                "- `{}`: {} `{}` ({:.1} s){}",
                b.name,
                b.verdict.label(),
                b.command,
                b.duration_s,
                if b.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", b.detail.replace('\n', " "))
                }
            );
        }
    }
    out
}

/// Replaces the generated section of a write-up, keeping everything outside the markers.
/// Without markers, the section is appended; without a file, one is started with a title.
pub(crate) fn splice_writeup(
    existing: Option<&str>,
    manifest: &Manifest,
    section: &str,
) -> Result<String> {
    let begin = begin_marker(manifest.number);
    let block = format!("{begin}\n{}\n{END_MARKER}\n", section.trim_end());
    let Some(text) = existing else {
        return Ok(format!(
            "# Milestone {}: {}\n\n{block}",
            manifest.number, manifest.title
        ));
    };
    // Any BEGIN marker counts, whatever command it names.
    let begin_at = text.find("<!-- BEGIN GENERATED RESULTS");
    let end_at = text.find(END_MARKER);
    match (begin_at, end_at) {
        (None, None) => {
            let mut out = text.trim_end().to_string();
            out.push_str("\n\n");
            out.push_str(&block);
            Ok(out)
        }
        (Some(b), Some(e)) if b < e => {
            let mut after = &text[e + END_MARKER.len()..];
            after = after.strip_prefix('\n').unwrap_or(after);
            Ok(format!("{}{block}{after}", &text[..b]))
        }
        _ => bail!(
            "{}: the generated-results markers are unbalanced or out of order; fix them by hand \
             (`{begin}` … `{END_MARKER}`)",
            manifest.writeup_path().display()
        ),
    }
}

/// Rewrites the generated section of `docs/milestones/NN-slug.md`.
pub(crate) fn update_writeup(root: &Path, manifest: &Manifest, r: &MilestoneResults) -> Result<()> {
    let rel = manifest.writeup_path();
    let path = root.join(&rel);
    let existing = std::fs::read_to_string(&path).ok();
    let text = splice_writeup(
        existing.as_deref(),
        manifest,
        &results_markdown(manifest, r),
    )?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", rel.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let text = r#"number = 7
slug = "buffers"
title = "Memory Pools & Zero-Copy Buffers"
crate = "m07-buffers"
phase = 2
phase_title = "Concurrency & Performance"
built = true
objectives = []
[server]
args = ["serve", "--listen", "{listen}"]
protocol = "http1.1"
[[item]]
section = "scope"
text = "Pool it"
evidence = ["test:m07-buffers::pool::reuses", "experiment:alloc_cost"]
[[item]]
section = "observe"
text = "Watch it"
evidence = []
[[item]]
section = "exit"
text = "Allocation-free hot path"
check = "alloc_free"
threshold = { op = "==", value = 0, unit = "allocs" }
evidence = ["test:m07-buffers::pool::reuses"]
"#;
        Manifest::parse(text, Path::new("milestones/07-buffers.toml")).expect("parses")
    }

    pub(crate) fn results(test: Verdict, check: Verdict) -> MilestoneResults {
        MilestoneResults {
            milestone: 7,
            title: "t".into(),
            crate_name: "m07-buffers".into(),
            profile: Profile::Quick,
            command: "cargo xtask milestone 7 --verify --quick".into(),
            machine: Machine {
                cpu_model: "cpu".into(),
                cores: 2,
                available_parallelism: 2,
                kernel: "linux 6".into(),
                arch: "x86_64".into(),
            },
            git: GitInfo {
                revision: "0123456789abcdef".into(),
                dirty: true,
                ..GitInfo::default()
            },
            timestamp: "2026-11-25T00:00:00Z".into(),
            passed: false,
            build: BuildRecord {
                command: "cargo build".into(),
                verdict: Verdict::Pass,
                duration_s: 1.0,
            },
            evidence: vec![EvidenceRecord {
                reference: "test:m07-buffers::pool::reuses".into(),
                verdict: test,
                detail: "ok".into(),
                command: "cargo test".into(),
                duration_s: 0.5,
            }],
            checks: vec![CheckRecord {
                id: "alloc_free".into(),
                item: "Allocation-free hot path".into(),
                command: "cargo run".into(),
                measured: Some(0.0),
                unit: Some("allocs".into()),
                pass: None,
                threshold: Threshold {
                    op: crate::manifest::Op::Eq,
                    value: Some(0.0),
                    unit: Some("allocs".into()),
                },
                verdict: check,
                detail: String::new(),
                duration_s: 0.1,
                yardstick: None,
            }],
            experiments: vec![],
            benches: vec![],
            figures: vec![],
        }
    }

    #[test]
    fn item_states_follow_the_last_record() {
        let m = manifest();
        let r = results(Verdict::Pass, Verdict::Pass);
        let v = verdict_map(Some(&r));
        let items: Vec<&Item> = m.items.iter().map(|i| i.get_ref()).collect();
        // The experiment was never run: evidenced but not verified.
        assert_eq!(item_state(items[0], &v), ItemState::Unverified);
        assert_eq!(item_state(items[1], &v), ItemState::Open);
        assert_eq!(item_state(items[2], &v), ItemState::Passing);
        assert_eq!(exit_state(items[2], Some(&r), &v), ExitState::Met);
        let c = counts(&m, Some(&r), None);
        assert_eq!(
            c,
            Counts {
                total: 3,
                evidenced: 2,
                passing: 1,
                failing: 0,
                exit_total: 1,
                exit_met: 1,
                exit_ceiling: 0,
            }
        );
    }

    #[test]
    fn failing_evidence_or_check_means_not_met() {
        let m = manifest();
        let exit = m.exit_items().next().expect("exit item");
        let r = results(Verdict::Fail, Verdict::Pass);
        let v = verdict_map(Some(&r));
        assert_eq!(item_state(exit, &v), ItemState::Failing);
        assert_eq!(exit_state(exit, Some(&r), &v), ExitState::NotMet);
        let r = results(Verdict::Pass, Verdict::Fail);
        let v = verdict_map(Some(&r));
        assert_eq!(exit_state(exit, Some(&r), &v), ExitState::NotMet);
        assert_eq!(exit_state(exit, None, &BTreeMap::new()), ExitState::NotMet);
    }

    #[test]
    fn writeup_keeps_hand_written_text() {
        let m = manifest();
        let hand = "# Milestone 7\n\nIntro by hand.\n\n<!-- BEGIN GENERATED RESULTS (cargo xtask milestone 7 --verify) -->\nold\n<!-- END GENERATED RESULTS -->\n\n## Afterword\nKeep me.\n";
        let out = splice_writeup(Some(hand), &m, "NEW").expect("splices");
        assert!(out.starts_with("# Milestone 7\n\nIntro by hand.\n\n<!-- BEGIN"));
        assert!(out.contains("\nNEW\n<!-- END GENERATED RESULTS -->\n"));
        assert!(!out.contains("old"));
        assert!(out.ends_with("\n## Afterword\nKeep me.\n"));
        // Idempotent.
        assert_eq!(splice_writeup(Some(&out), &m, "NEW").expect("again"), out);
    }

    #[test]
    fn writeup_is_created_or_appended() {
        let m = manifest();
        let fresh = splice_writeup(None, &m, "R").expect("creates");
        assert!(fresh.starts_with("# Milestone 7: Memory Pools & Zero-Copy Buffers\n"));
        assert!(fresh.contains(&begin_marker(7)));
        let appended = splice_writeup(Some("# Title\n\nText.\n"), &m, "R").expect("appends");
        assert!(appended.starts_with("# Title\n\nText.\n\n<!-- BEGIN"));
        let broken = "<!-- END GENERATED RESULTS -->\n<!-- BEGIN GENERATED RESULTS -->\n";
        assert!(splice_writeup(Some(broken), &m, "R").is_err());
    }

    #[test]
    fn results_markdown_shows_exit_table() {
        let m = manifest();
        let r = results(Verdict::Pass, Verdict::Pass);
        let md = results_markdown(&m, &r);
        assert!(
            md.contains("| Allocation-free hot path | 0 allocs | == 0 allocs | met |"),
            "{md}"
        );
        assert!(md.contains("Quick profile"));
        assert!(md.contains("`0123456789ab-dirty`"));
    }

    #[test]
    fn tables_are_validated() {
        let ok = r#"{"title":"t","columns":["size","ns"],"rows":[["4 KiB", 12.5]],"notes":"n"}"#;
        assert_eq!(Table::parse(ok).map(|t| t.rows.len()).ok(), Some(1));
        let ragged = r#"{"title":"t","columns":["a","b"],"rows":[["x"]]}"#;
        assert!(Table::parse(ragged).is_err());
        let nested = r#"{"title":"t","columns":["a"],"rows":[[{"x":1}]]}"#;
        assert!(Table::parse(nested).is_err());
        assert!(Table::parse("size ns\n4096 12\n").is_err());
        let md = table_markdown(&Table::parse(ok).expect("ok"));
        assert_eq!(md, "| size | ns |\n|---|---|\n| 4 KiB | 12.5 |\n");
    }

    /// The record of a `>= 10 x` exit check at a ceiling: 5.7 x, the yardstick 6.7 x.
    pub(crate) fn at_ceiling() -> (Manifest, MilestoneResults) {
        let text = r#"number = 7
slug = "buffers"
title = "Memory Pools & Zero-Copy Buffers"
crate = "m07-buffers"
phase = 2
phase_title = "Concurrency & Performance"
built = true
objectives = []
[server]
args = ["serve", "--listen", "{listen}"]
protocol = "http1.1"
[[item]]
section = "exit"
text = "10x faster than malloc"
check = "speedup"
threshold = { op = ">=", value = 10, unit = "x (vs malloc, same run)" }
evidence = ["test:m07-buffers::pool::reuses"]
"#;
        let m = Manifest::parse(text, Path::new("milestones/07-buffers.toml")).expect("parses");
        let mut r = results(Verdict::Pass, Verdict::Ceiling);
        let c = &mut r.checks[0];
        c.id = "speedup".into();
        c.item = "10x faster than malloc".into();
        c.measured = Some(5.7);
        c.unit = Some("x (vs malloc, same run)".into());
        c.threshold = Threshold {
            op: Op::Ge,
            value: Some(10.0),
            unit: Some("x (vs malloc, same run)".into()),
        };
        c.yardstick = Some(Yardstick {
            value: 6.7,
            what: "a bare index stack, no checks".into(),
        });
        (m, r)
    }

    #[test]
    fn ceiling_verdict_serialises_as_ceiling() {
        assert_eq!(
            serde_json::to_string(&Verdict::Ceiling).expect("serialises"),
            "\"ceiling\""
        );
        let v: Verdict = serde_json::from_str("\"ceiling\"").expect("parses");
        assert_eq!(v, Verdict::Ceiling);
        assert_eq!(Verdict::Ceiling.label(), "CEILING");
        assert!((0.0..1.0).contains(&CEILING_FRACTION));
    }

    #[test]
    fn old_check_records_without_a_yardstick_still_load_and_round_trip() {
        let old = r#"{"id": "alloc_free", "item": "Allocation-free hot path", "command": "cargo run",
            "measured": 0.0, "unit": "allocs", "pass": null,
            "threshold": {"op": "==", "value": 0.0, "unit": "allocs"},
            "verdict": "pass", "detail": "", "duration_s": 0.1}"#;
        let c: CheckRecord = serde_json::from_str(old).expect("an old record loads");
        assert_eq!(c.yardstick, None);
        assert_eq!(c.verdict, Verdict::Pass);
        // Rewriting it adds nothing: records without a yardstick stay byte-for-byte the same.
        let again = serde_json::to_string(&c).expect("serialises");
        assert!(!again.contains("yardstick"), "{again}");
        // With one, it is kept.
        let (_, r) = at_ceiling();
        let text = serde_json::to_string(&r).expect("serialises");
        assert!(
            text.contains(r#""yardstick":{"value":6.7,"what":"a bare index stack, no checks"}"#),
            "{text}"
        );
        let back: MilestoneResults = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn a_ceiling_is_not_met_and_shows_both_figures() {
        let (m, r) = at_ceiling();
        let exit = m.exit_items().next().expect("exit item");
        let v = verdict_map(Some(&r));
        assert_eq!(exit_state(exit, Some(&r), &v), ExitState::Ceiling);
        let c = counts(&m, Some(&r), None);
        assert_eq!((c.exit_met, c.exit_ceiling, c.exit_total), (0, 1, 1));
        assert_eq!(
            r.checks[0].measured_text(),
            "5.7 x of 10 x; ceiling here 6.7 x"
        );
        let md = results_markdown(&m, &r);
        assert!(
            md.contains(
                "| 10x faster than malloc | 5.7 x of 10 x; ceiling here 6.7 x | \
                 >= 10 x (vs malloc, same run) | **not met** (ceiling) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("**1 exit check at a ceiling (not met), nothing failed**"),
            "{md}"
        );
        assert!(
            md.contains("(yardstick, same run: a bare index stack, no checks, 6.7 x)"),
            "{md}"
        );
        assert_eq!(r.failures(), 0);
        // Failing evidence makes it a plain miss, whatever the check says.
        let mut r = r;
        r.evidence[0].verdict = Verdict::Fail;
        let v = verdict_map(Some(&r));
        assert_eq!(exit_state(exit, Some(&r), &v), ExitState::NotMet);
        assert_eq!(r.outcome(), "1 failed, 1 exit check at a ceiling (not met)");
    }

    #[test]
    fn lower_is_better_ceiling_text() {
        let (_, mut r) = at_ceiling();
        let c = &mut r.checks[0];
        c.measured = Some(12.5);
        c.unit = Some("ms".into());
        c.threshold = Threshold {
            op: Op::Le,
            value: Some(10.0),
            unit: Some("ms".into()),
        };
        c.yardstick = Some(Yardstick {
            value: 11.0,
            what: "no parsing at all".into(),
        });
        assert_eq!(
            c.measured_text(),
            "12.5 ms against 10 ms; ceiling here 11 ms"
        );
        // Only a ceiling verdict shows the yardstick in the measured column.
        c.verdict = Verdict::Fail;
        assert_eq!(c.measured_text(), "12.5 ms");
    }
}
