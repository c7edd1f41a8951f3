//! `cargo xtask milestone N --verify [--quick]`: build, run every piece of evidence and every
//! exit check, print the table, write `docs/results/mNN.json` and the write-up's results section.
//!
//! Order: refuse unbuilt milestones (one line, non-zero exit); resolve every reference first (a
//! missing experiment or check is an error with `file:line` before anything runs); build the
//! crate and the `zyphos` binary in release; run tests grouped by package (by exact name, zero
//! matches fail); run checks at full size; run experiments (quick arguments and
//! `ZYPHOS_QUICK=1` in the quick profile) and bench verification runs; then record.

use anyhow::{Result, bail};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::consistency;
use crate::deps;
use crate::evidence::{EvidenceRef, TestName, TestRunner, TestVerdict, cargo};
use crate::exec::{Cmd, Finished};
use crate::machine::{self, GitInfo, Machine};
use crate::manifest::{Bench, Check, Experiment, Item, Manifest, Op, Threshold};
use crate::report;
use crate::results::{
    self, BenchRecord, BuildRecord, CEILING_FRACTION, CheckRecord, EvidenceRecord,
    ExperimentRecord, Figure, MilestoneResults, Profile, Table, Verdict, Yardstick,
};
use crate::setup;

/// Builds are allowed longer than other steps.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// What a check prints on stdout.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckOutput {
    /// The measurement (numeric thresholds).
    #[serde(default)]
    pub(crate) measured: Option<f64>,
    /// Its unit.
    #[serde(default)]
    pub(crate) unit: Option<String>,
    /// Pass/fail (`op = "pass"` thresholds).
    #[serde(default)]
    pub(crate) pass: Option<bool>,
    /// What was measured, for the record.
    #[serde(default)]
    pub(crate) detail: Option<String>,
    /// The same figure for a yardstick measured in the same run (something doing strictly less
    /// work than any correct implementation); lets a miss be judged a [`Verdict::Ceiling`].
    #[serde(default)]
    pub(crate) yardstick: Option<Yardstick>,
}

/// Compares a check's output with its threshold: (verdict, why). A missed numeric threshold is
/// a [`Verdict::Ceiling`] instead of a [`Verdict::Fail`] when [`at_ceiling`] says so.
pub(crate) fn judge_check(threshold: &Threshold, out: &CheckOutput) -> (Verdict, String) {
    let fail = |why: String| (Verdict::Fail, why);
    if out.pass == Some(false) {
        return fail("the check reported pass = false".into());
    }
    match threshold.op {
        Op::Pass => match out.pass {
            Some(true) => (Verdict::Pass, String::new()),
            _ => fail("threshold is op = \"pass\" but the check printed no \"pass\"".into()),
        },
        op => {
            let (Some(measured), Some(value)) = (out.measured, threshold.value) else {
                return fail(format!(
                    "threshold is {threshold} but the check printed no \"measured\""
                ));
            };
            if !measured.is_finite() {
                return fail(format!("measured {measured} is not a finite number"));
            }
            match (&out.unit, &threshold.unit) {
                (Some(got), Some(want)) if base_unit(got) != base_unit(want) => {
                    return fail(format!(
                        "unit mismatch: the check reports {got}, the threshold is in {want}"
                    ));
                }
                (None, Some(want)) => {
                    return fail(format!(
                        "the check reported no unit (threshold is in {want})"
                    ));
                }
                _ => {}
            }
            if op.holds(measured, value) {
                return (Verdict::Pass, String::new());
            }
            let n = crate::manifest::format_number;
            let missed = format!("{} does not satisfy {threshold}", n(measured));
            let Some(y) = &out.yardstick else {
                return fail(missed);
            };
            if !y.value.is_finite() {
                return fail(format!(
                    "{missed}; the yardstick ({}) is not a finite number: {}",
                    y.what, y.value
                ));
            }
            if op.holds(y.value, value) {
                return fail(format!(
                    "{missed}, though the yardstick ({}) reaches {} in the same run: not a ceiling",
                    y.what,
                    n(y.value)
                ));
            }
            if at_ceiling(op, measured, y.value) {
                (
                    Verdict::Ceiling,
                    format!(
                        "ceiling: {missed}, and neither does the yardstick ({}) at {} in the same \
                         run; {} is within {} % of it",
                        y.what,
                        n(y.value),
                        n(measured),
                        n(CEILING_FRACTION * 100.0)
                    ),
                )
            } else {
                fail(format!(
                    "{missed}; the yardstick ({}) misses it too at {}, but {} is not within {} % \
                     of it: not a ceiling",
                    y.what,
                    n(y.value),
                    n(measured),
                    n(CEILING_FRACTION * 100.0)
                ))
            }
        }
    }
}

/// Whether `measured` is within [`CEILING_FRACTION`] of `yardstick` in the direction `op`
/// rewards (the rule is stated there). Only `>=`/`>` (higher is better) and `<=`/`<` (lower is
/// better) can be at a ceiling.
pub(crate) fn at_ceiling(op: Op, measured: f64, yardstick: f64) -> bool {
    match op {
        Op::Ge | Op::Gt => measured >= CEILING_FRACTION * yardstick,
        Op::Le | Op::Lt => measured <= yardstick / CEILING_FRACTION,
        Op::Eq | Op::Pass => false,
    }
}

/// The unit proper, without the explanation a manifest may add after it:
/// `% (of best swept config, same run)` and `% of linear` are both `%`.
pub(crate) fn base_unit(unit: &str) -> &str {
    unit.trim().split([' ', '(']).next().unwrap_or_default()
}

/// Prints `[k/N] …` lines.
struct Progress {
    done: usize,
    total: usize,
}

impl Progress {
    fn line(&mut self, what: &str, verdict: Verdict, detail: &str, secs: f64) {
        self.done += 1;
        let status = match verdict {
            Verdict::Pass => "ok".to_string(),
            Verdict::Fail => format!("FAIL: {detail}"),
            Verdict::Ceiling => format!(
                "CEILING (not met, not a failure): {}",
                detail.strip_prefix("ceiling: ").unwrap_or(detail)
            ),
        };
        println!(
            "[{}/{}] {what} {status} ({secs:.1} s)",
            self.done, self.total
        );
    }
}

/// Runs a manifest command: a missing optional tool is reported with its install command.
fn run_manifest_command(cmd: &Cmd) -> Result<Finished> {
    if let Some(program) = cmd.argv().first() {
        if setup::is_known_tool(program) {
            setup::require_tool(program)?;
        }
    }
    cmd.run()
}

fn failure_detail(out: &Finished) -> String {
    let tail = out.stderr_tail(3);
    if tail.is_empty() {
        out.describe_status()
    } else {
        format!("{}: {tail}", out.describe_status())
    }
}

/// Everything `--verify` is going to run, resolved up front.
struct Plan<'a> {
    /// Test names per package (from `test:` evidence and `[[metric]]` tests).
    tests: BTreeMap<String, BTreeSet<String>>,
    /// Longest `timeout_s` of a metric per package.
    test_timeouts: BTreeMap<String, u64>,
    /// Exit items with their check.
    checks: Vec<(&'a Item, &'a Check)>,
    experiments: Vec<&'a Experiment>,
    benches: Vec<&'a Bench>,
    /// Unique evidence references in manifest order.
    evidence: Vec<(String, EvidenceRef)>,
}

impl<'a> Plan<'a> {
    fn new(m: &'a Manifest) -> Result<Plan<'a>> {
        let mut plan = Plan {
            tests: BTreeMap::new(),
            test_timeouts: BTreeMap::new(),
            checks: Vec::new(),
            experiments: m.experiments.iter().map(|x| x.get_ref()).collect(),
            benches: m.benches.iter().map(|b| b.get_ref()).collect(),
            evidence: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        for item in m.items.iter().map(|i| i.get_ref()) {
            for e in &item.evidence {
                let reference = e.get_ref().clone();
                if !seen.insert(reference.clone()) {
                    continue;
                }
                let parsed = EvidenceRef::parse(&reference)?;
                if let EvidenceRef::Test(t) = &parsed {
                    plan.add_test(t);
                }
                plan.evidence.push((reference, parsed));
            }
        }
        // Declared executables that no item names still run; record them under their own
        // reference so every failure shows up in the record.
        let declared = m
            .experiments
            .iter()
            .map(|x| EvidenceRef::Experiment(x.get_ref().name.clone()))
            .chain(
                m.metrics
                    .iter()
                    .map(|x| EvidenceRef::Metric(x.get_ref().name.clone())),
            )
            .chain(
                m.benches
                    .iter()
                    .map(|x| EvidenceRef::Bench(x.get_ref().name.clone())),
            );
        for parsed in declared {
            let reference = parsed.to_string();
            if seen.insert(reference.clone()) {
                plan.evidence.push((reference, parsed));
            }
        }
        for metric in m.metrics.iter().map(|x| x.get_ref()) {
            let t = TestName::parse(&metric.test)?;
            if let Some(s) = metric.timeout_s {
                let entry = plan.test_timeouts.entry(t.package.clone()).or_default();
                *entry = (*entry).max(s);
            }
            plan.add_test(&t);
        }
        let mut checked = BTreeSet::new();
        for item in m.exit_items() {
            if let Some(check) = item.check.as_deref().and_then(|id| m.check(id)) {
                if checked.insert(check.get_ref().id.as_str()) {
                    plan.checks.push((item, check.get_ref()));
                }
            }
        }
        Ok(plan)
    }

    fn add_test(&mut self, t: &TestName) {
        self.tests
            .entry(t.package.clone())
            .or_default()
            .insert(t.name.clone());
    }

    fn steps(&self) -> usize {
        1 + self.tests.values().map(BTreeSet::len).sum::<usize>()
            + self.checks.len()
            + self.experiments.len()
            + self.benches.len()
    }
}

/// Runs `--verify`; `Err` when the milestone cannot be verified or anything failed.
pub(crate) fn run(root: &Path, m: &Manifest, quick: bool) -> Result<()> {
    run_with_env(root, m, quick, &[])
}

/// [`run`] with extra environment for every command (tests use it for `CARGO_TARGET_DIR`).
fn run_with_env(
    root: &Path,
    m: &Manifest,
    quick: bool,
    base_env: &[(String, String)],
) -> Result<()> {
    if let Some(reason) = m.not_built_reason(root) {
        bail!("{reason}");
    }
    // Results are meant to be recorded from committed trees: say so loudly when this one is not
    // (and again at the end). The record keeps the revision and changes seen at the start.
    let git_start = GitInfo::current(root);
    git_start.warn_if_dirty("start");
    let packages = deps::workspace_packages(root)?;
    let problems = consistency::resolution_problems(m, Some(&packages));
    if let Some(first) = problems.first() {
        if problems.len() > 1 {
            bail!("{first} (and {} more problems)", problems.len() - 1);
        }
        bail!("{first}");
    }
    let plan = Plan::new(m)?;
    let profile = if quick { Profile::Quick } else { Profile::Full };
    let mut quick_env: Vec<(String, String)> = base_env.to_vec();
    if quick {
        quick_env.push(("ZYPHOS_QUICK".into(), "1".into()));
    }
    let env_of = |mut cmd: Cmd, env: &[(String, String)]| {
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd
    };
    // Everything but exit checks sees the quick profile.
    let with_env = |cmd: Cmd| env_of(cmd, &quick_env);
    let mut progress = Progress {
        done: 0,
        total: plan.steps(),
    };
    println!(
        "milestone {} ({}): {} steps, {} profile",
        m.number,
        m.title,
        progress.total,
        if quick { "quick" } else { "full" }
    );

    // 1. Build.
    let mut build_argv = vec![
        cargo(),
        "build".into(),
        "--release".into(),
        "-p".into(),
        m.crate_name.clone(),
    ];
    if packages.contains("zyphos") {
        build_argv.extend(["-p".to_string(), "zyphos".to_string()]);
    }
    let build_cmd = env_of(Cmd::new(build_argv, root), base_env)
        .timeout(BUILD_TIMEOUT)
        .echo_stderr();
    let build = build_cmd.run()?;
    let build_record = BuildRecord {
        command: build_cmd.display(),
        verdict: Verdict::from_bool(build.success()),
        duration_s: build.duration.as_secs_f64(),
    };
    progress.line(
        &format!("build {}", build_record.command),
        build_record.verdict,
        &build.describe_status(),
        build_record.duration_s,
    );
    if build_record.verdict == Verdict::Fail {
        bail!(
            "milestone {}: `{}` failed ({})",
            m.number,
            build_record.command,
            build.describe_status()
        );
    }

    // 2. Tests, one cargo run per package.
    let runner = TestRunner {
        workspace: root.to_path_buf(),
        env: quick_env.clone(),
    };
    let mut test_results: BTreeMap<(String, String), (TestVerdict, String, f64)> = BTreeMap::new();
    for (package, names) in &plan.tests {
        let names: Vec<String> = names.iter().cloned().collect();
        let timeout = plan
            .test_timeouts
            .get(package)
            .map(|s| Duration::from_secs(*s));
        let run = runner.run(package, &names, timeout)?;
        let secs = run.duration.as_secs_f64();
        for v in &run.verdicts {
            progress.line(
                &format!("test {package}::{}", v.name),
                Verdict::from_bool(v.passed),
                &v.detail,
                secs,
            );
        }
        if let Some(tail) = &run.failure_tail {
            println!("      cargo test -p {package}: {tail}");
        }
        for v in run.verdicts {
            test_results.insert(
                (package.clone(), v.name.clone()),
                (v, run.command.clone(), secs),
            );
        }
    }

    // 3. Exit checks, always at full size.
    let mut checks = Vec::new();
    for (item, check) in &plan.checks {
        let cmd = env_of(Cmd::new(check.run.clone(), root), base_env).timeout_s(check.timeout_s);
        let threshold = item.threshold.clone().unwrap_or(Threshold {
            op: Op::Pass,
            value: None,
            unit: None,
        });
        let mut record = CheckRecord {
            id: check.id.clone(),
            item: item.text.clone(),
            command: cmd.display(),
            measured: None,
            unit: None,
            pass: None,
            threshold: threshold.clone(),
            verdict: Verdict::Fail,
            detail: String::new(),
            duration_s: 0.0,
            yardstick: None,
        };
        match run_manifest_command(&cmd) {
            Err(e) => record.detail = format!("{e:#}"),
            Ok(out) => {
                record.duration_s = out.duration.as_secs_f64();
                if !out.success() {
                    record.detail = failure_detail(&out);
                } else {
                    match serde_json::from_str::<CheckOutput>(out.stdout.trim()) {
                        Err(e) => {
                            record.detail = format!(
                                "stdout is not {{\"measured\", \"unit\", \"detail\"}} (optionally with \"yardstick\": {{\"value\", \"what\"}}) or {{\"pass\", \"detail\"}} JSON: {e}"
                            );
                        }
                        Ok(parsed) => {
                            let (verdict, why) = judge_check(&threshold, &parsed);
                            record.measured = parsed.measured;
                            record.unit = parsed.unit.clone();
                            record.pass = parsed.pass;
                            record.yardstick = parsed.yardstick.clone();
                            record.verdict = verdict;
                            let own = parsed.detail.unwrap_or_default();
                            record.detail = match (own.is_empty(), why.is_empty()) {
                                (_, true) => own,
                                (true, false) => why,
                                (false, false) => format!("{why}; {own}"),
                            };
                        }
                    }
                }
            }
        }
        progress.line(
            &format!("check {} ({})", check.id, record.measured_text()),
            record.verdict,
            &record.detail,
            record.duration_s,
        );
        checks.push(record);
    }

    // 4. Experiments.
    let mut experiments = Vec::new();
    for x in &plan.experiments {
        let mut argv = x.run.clone();
        if quick {
            argv.extend(x.quick.iter().cloned());
        }
        let cmd = with_env(Cmd::new(argv, root).timeout_s(x.timeout_s));
        let mut record = ExperimentRecord {
            name: x.name.clone(),
            command: cmd.display(),
            verdict: Verdict::Fail,
            detail: String::new(),
            duration_s: 0.0,
            table: None,
        };
        match run_manifest_command(&cmd) {
            Err(e) => record.detail = format!("{e:#}"),
            Ok(out) => {
                record.duration_s = out.duration.as_secs_f64();
                if !out.success() {
                    record.detail = failure_detail(&out);
                } else {
                    match Table::parse(&out.stdout) {
                        Ok(t) => {
                            record.table = Some(t);
                            record.verdict = Verdict::Pass;
                        }
                        Err(e) => record.detail = format!("{e:#}"),
                    }
                }
            }
        }
        progress.line(
            &format!("experiment {}", x.name),
            record.verdict,
            &record.detail,
            record.duration_s,
        );
        experiments.push(record);
    }

    // 5. Bench verification runs.
    let mut benches = Vec::new();
    let mut figures = Vec::new();
    for b in &plan.benches {
        let cmd = with_env(Cmd::new(b.verify.clone(), root).timeout_s(b.timeout_s));
        let record = run_bench(&cmd, &b.name, &mut figures);
        progress.line(
            &format!("bench {} (verify)", b.name),
            record.verdict,
            &record.detail,
            record.duration_s,
        );
        benches.push(record);
    }

    // 6. Evidence verdicts.
    let evidence: Vec<EvidenceRecord> = plan
        .evidence
        .iter()
        .map(|(reference, parsed)| {
            evidence_record(reference, parsed, m, &test_results, &experiments, &benches)
        })
        .collect();

    let passed = evidence.iter().all(|e| e.verdict == Verdict::Pass)
        && checks.iter().all(|c| c.verdict == Verdict::Pass)
        && experiments.iter().all(|e| e.verdict == Verdict::Pass)
        && benches.iter().all(|b| b.verdict == Verdict::Pass)
        && test_results.values().all(|(v, _, _)| v.passed);
    let record = MilestoneResults {
        milestone: m.number,
        title: m.title.clone(),
        crate_name: m.crate_name.clone(),
        profile,
        command: format!(
            "cargo xtask milestone {} --verify{}",
            m.number,
            if quick { " --quick" } else { "" }
        ),
        machine: Machine::current(),
        git: git_start.finish(root),
        timestamp: machine::timestamp_now(),
        passed,
        build: build_record,
        evidence,
        checks,
        experiments,
        benches,
        figures,
    };
    print_table(m, &record);
    results::write_json(root, &m.results_path(), &record)?;
    results::update_writeup(root, m, &record)?;
    println!(
        "wrote {} and the results section of {}",
        m.results_path().display(),
        m.writeup_path().display()
    );
    if let Err(e) = report::write(root) {
        eprintln!("warning: docs/README.md not regenerated: {e:#}");
    }
    record.git.warn_if_dirty("end");
    let tests_ok = test_results.values().all(|(v, _, _)| v.passed);
    println!("{}", conclude(m, &record, tests_ok)?);
    Ok(())
}

/// The last line of `--verify`: `Ok` when nothing failed (exit 0; exit checks at a ceiling are
/// not met but do not fail the run), `Err` with the number of failures otherwise.
fn conclude(m: &Manifest, r: &MilestoneResults, tests_ok: bool) -> Result<String> {
    if r.passed {
        return Ok(format!(
            "milestone {} verified: everything passed",
            r.milestone
        ));
    }
    let failed = r.failures();
    let ceilings: Vec<String> = r
        .ceilings()
        .map(|c| format!("{} ({})", c.id, c.measured_text()))
        .collect();
    if failed == 0 && tests_ok && !ceilings.is_empty() {
        return Ok(format!(
            "milestone {} verified: nothing failed; {} exit criteri{} at a ceiling, NOT MET: {}",
            r.milestone,
            ceilings.len(),
            if ceilings.len() == 1 { "on" } else { "a" },
            ceilings.join(", ")
        ));
    }
    bail!(
        "milestone {} failed verification: {failed} failures (details in {})",
        r.milestone,
        m.results_path().display()
    )
}

/// Runs a bench command and records it (and a figure, when it printed a load report).
pub(crate) fn run_bench(cmd: &Cmd, name: &str, figures: &mut Vec<Figure>) -> BenchRecord {
    let mut record = BenchRecord {
        name: name.to_string(),
        command: cmd.display(),
        verdict: Verdict::Fail,
        detail: String::new(),
        duration_s: 0.0,
        output: String::new(),
    };
    match run_manifest_command(cmd) {
        Err(e) => record.detail = format!("{e:#}"),
        Ok(out) => {
            record.duration_s = out.duration.as_secs_f64();
            record.output = out.stdout.trim().to_string();
            if out.success() {
                record.verdict = Verdict::Pass;
                figures.extend(Figure::from_output(name, &record.command, &out.stdout));
            } else {
                record.detail = failure_detail(&out);
            }
        }
    }
    record
}

fn evidence_record(
    reference: &str,
    parsed: &EvidenceRef,
    m: &Manifest,
    tests: &BTreeMap<(String, String), (TestVerdict, String, f64)>,
    experiments: &[ExperimentRecord],
    benches: &[BenchRecord],
) -> EvidenceRecord {
    let missing = |what: &str| EvidenceRecord {
        reference: reference.to_string(),
        verdict: Verdict::Fail,
        detail: format!("{what} was not run"),
        command: String::new(),
        duration_s: 0.0,
    };
    let from_test =
        |t: &TestName, prefix: &str| match tests.get(&(t.package.clone(), t.name.clone())) {
            Some((v, command, secs)) => EvidenceRecord {
                reference: reference.to_string(),
                verdict: Verdict::from_bool(v.passed),
                detail: format!("{prefix}{}", v.detail),
                command: command.clone(),
                duration_s: *secs,
            },
            None => missing("the test"),
        };
    match parsed {
        EvidenceRef::Test(t) => from_test(t, ""),
        EvidenceRef::Metric(name) => match m
            .metric(name)
            .and_then(|x| TestName::parse(&x.get_ref().test).ok())
        {
            Some(t) => from_test(&t, &format!("test {t}: ")),
            None => missing("the metric's test"),
        },
        EvidenceRef::Experiment(name) => match experiments.iter().find(|x| x.name == *name) {
            Some(x) => EvidenceRecord {
                reference: reference.to_string(),
                verdict: x.verdict,
                detail: if x.verdict == Verdict::Pass {
                    x.table.as_ref().map_or_else(String::new, |t| {
                        format!("table \"{}\", {} rows", t.title, t.rows.len())
                    })
                } else {
                    x.detail.clone()
                },
                command: x.command.clone(),
                duration_s: x.duration_s,
            },
            None => missing("the experiment"),
        },
        EvidenceRef::Bench(name) => match benches.iter().find(|b| b.name == *name) {
            Some(b) => EvidenceRecord {
                reference: reference.to_string(),
                verdict: b.verdict,
                detail: if b.verdict == Verdict::Pass {
                    "verify run ok".into()
                } else {
                    b.detail.clone()
                },
                command: b.command.clone(),
                duration_s: b.duration_s,
            },
            None => missing("the bench"),
        },
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Prints the exit-criteria table and every failure.
fn print_table(m: &Manifest, r: &MilestoneResults) {
    let verdicts = results::verdict_map(Some(r));
    let rows: Vec<[String; 4]> = m
        .exit_items()
        .map(|item| {
            let check = item
                .check
                .as_deref()
                .and_then(|id| r.checks.iter().find(|c| c.id == id));
            [
                truncate(&item.text, 48),
                check.map_or_else(|| "not run".into(), CheckRecord::measured_text),
                item.threshold
                    .as_ref()
                    .map_or_else(|| "—".into(), ToString::to_string),
                results::exit_state(item, Some(r), &verdicts).plain().into(),
            ]
        })
        .collect();
    let headers = ["item", "measured", "threshold", "verdict"];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    println!();
    line(headers);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    let failures: Vec<String> = r
        .evidence
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .map(|e| format!("{}: {}", e.reference, e.detail))
        .chain(
            r.checks
                .iter()
                .filter(|c| c.verdict == Verdict::Fail)
                .map(|c| format!("check {}: {}", c.id, c.detail)),
        )
        .chain(
            r.experiments
                .iter()
                .filter(|x| x.verdict == Verdict::Fail)
                .map(|x| format!("experiment {}: {}", x.name, x.detail)),
        )
        .chain(
            r.benches
                .iter()
                .filter(|b| b.verdict == Verdict::Fail)
                .map(|b| format!("bench {}: {}", b.name, b.detail)),
        )
        .collect();
    if !failures.is_empty() {
        println!("\nfailures:");
        for f in failures {
            println!("  {f}");
        }
    }
    let ceilings: Vec<&CheckRecord> = r.ceilings().collect();
    if !ceilings.is_empty() {
        println!("\nat a ceiling (not met; not failures of --verify):");
        for c in ceilings {
            println!("  check {}: {}: {}", c.id, c.measured_text(), c.detail);
        }
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(op: Op, value: Option<f64>, unit: Option<&str>) -> Threshold {
        Threshold {
            op,
            value,
            unit: unit.map(String::from),
        }
    }

    fn measured(v: f64, unit: &str) -> CheckOutput {
        CheckOutput {
            measured: Some(v),
            unit: Some(unit.into()),
            pass: None,
            detail: None,
            yardstick: None,
        }
    }

    #[test]
    fn numeric_thresholds() {
        let t = threshold(Op::Le, Some(100.0), Some("ms"));
        assert_eq!(judge_check(&t, &measured(99.5, "ms")).0, Verdict::Pass);
        assert_eq!(judge_check(&t, &measured(100.0, "ms")).0, Verdict::Pass);
        let (verdict, why) = judge_check(&t, &measured(100.5, "ms"));
        assert_eq!(verdict, Verdict::Fail);
        assert_eq!(why, "100.5 does not satisfy <= 100 ms");
        let (verdict, why) = judge_check(&t, &measured(0.05, "s"));
        assert_eq!(verdict, Verdict::Fail, "a unit mismatch must not pass");
        assert!(why.contains("unit mismatch"));
        let no_unit = CheckOutput {
            measured: Some(1.0),
            ..CheckOutput::default()
        };
        assert_eq!(judge_check(&t, &no_unit).0, Verdict::Fail);
        // A manifest may explain its unit; the check reports the unit proper.
        let pct = threshold(Op::Ge, Some(90.0), Some("% of linear (same run)"));
        assert_eq!(judge_check(&pct, &measured(93.0, "%")).0, Verdict::Pass);
        assert_eq!(judge_check(&pct, &measured(93.0, "ms")).0, Verdict::Fail);
        assert_eq!(base_unit("% (vs read+write, same run)"), "%");
        assert_eq!(base_unit("connections"), "connections");
        let ge = threshold(Op::Ge, Some(5.0), Some("x"));
        assert_eq!(judge_check(&ge, &measured(5.2, "x")).0, Verdict::Pass);
        assert_eq!(judge_check(&ge, &measured(4.9, "x")).0, Verdict::Fail);
        assert_eq!(judge_check(&ge, &measured(f64::NAN, "x")).0, Verdict::Fail);
    }

    #[test]
    fn pass_thresholds() {
        let t = threshold(Op::Pass, None, None);
        let pass = |p: Option<bool>| CheckOutput {
            pass: p,
            ..CheckOutput::default()
        };
        assert_eq!(judge_check(&t, &pass(Some(true))).0, Verdict::Pass);
        assert_eq!(judge_check(&t, &pass(Some(false))).0, Verdict::Fail);
        assert_eq!(judge_check(&t, &pass(None)).0, Verdict::Fail);
        // A numeric check reporting failure fails whatever it measured.
        let n = threshold(Op::Le, Some(10.0), Some("ms"));
        let mixed = CheckOutput {
            measured: Some(1.0),
            unit: Some("ms".into()),
            pass: Some(false),
            detail: None,
            yardstick: None,
        };
        assert_eq!(judge_check(&n, &mixed).0, Verdict::Fail);
    }

    fn with_yardstick(v: f64, unit: &str, yardstick: f64) -> CheckOutput {
        CheckOutput {
            yardstick: Some(Yardstick {
                value: yardstick,
                what: "a bare stack".into(),
            }),
            ..measured(v, unit)
        }
    }

    #[test]
    fn ceiling_met_threshold_passes_whatever_the_yardstick() {
        let t = threshold(Op::Ge, Some(10.0), Some("x (vs malloc, same run)"));
        let (v, why) = judge_check(&t, &with_yardstick(12.0, "x", 15.0));
        assert_eq!((v, why.as_str()), (Verdict::Pass, ""));
        assert_eq!(
            judge_check(&t, &with_yardstick(12.0, "x", 6.0)).0,
            Verdict::Pass
        );
    }

    #[test]
    fn ceiling_higher_is_better() {
        let t = threshold(Op::Ge, Some(10.0), Some("x (vs malloc, same run)"));
        // 5.7 / 6.7 = 85.1 %: the yardstick misses 10x too, and the candidate is within 85 %.
        let (v, why) = judge_check(&t, &with_yardstick(5.7, "x", 6.7));
        assert_eq!(v, Verdict::Ceiling, "{why}");
        assert_eq!(
            why,
            "ceiling: 5.7 does not satisfy >= 10 x (vs malloc, same run), and neither does the \
             yardstick (a bare stack) at 6.7 in the same run; 5.7 is within 85 % of it"
        );
        let gt = threshold(Op::Gt, Some(10.0), Some("x"));
        assert_eq!(
            judge_check(&gt, &with_yardstick(9.0, "x", 10.0)).0,
            Verdict::Ceiling,
            "a yardstick exactly at a strict bound misses it"
        );
    }

    #[test]
    fn ceiling_lower_is_better() {
        let t = threshold(Op::Le, Some(10.0), Some("ms"));
        // 12.5 <= 11 / 0.85 = 12.94.
        assert_eq!(
            judge_check(&t, &with_yardstick(12.5, "ms", 11.0)).0,
            Verdict::Ceiling
        );
        // 13 > 12.94: too far behind the yardstick.
        let (v, why) = judge_check(&t, &with_yardstick(13.0, "ms", 11.0));
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("not within 85 %"), "{why}");
        let lt = threshold(Op::Lt, Some(10.0), Some("ms"));
        assert_eq!(
            judge_check(&lt, &with_yardstick(11.0, "ms", 10.0)).0,
            Verdict::Ceiling
        );
    }

    #[test]
    fn a_yardstick_that_meets_the_threshold_means_a_plain_miss() {
        let t = threshold(Op::Ge, Some(10.0), Some("x"));
        let (v, why) = judge_check(&t, &with_yardstick(9.5, "x", 11.0));
        assert_eq!(v, Verdict::Fail);
        assert!(why.ends_with("not a ceiling"), "{why}");
        let le = threshold(Op::Le, Some(10.0), Some("ms"));
        assert_eq!(
            judge_check(&le, &with_yardstick(10.5, "ms", 9.0)).0,
            Verdict::Fail
        );
    }

    #[test]
    fn a_candidate_below_85_percent_of_the_yardstick_fails() {
        let t = threshold(Op::Ge, Some(10.0), Some("x"));
        // 5.0 / 6.7 = 74.6 %.
        let (v, why) = judge_check(&t, &with_yardstick(5.0, "x", 6.7));
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("is not within 85 % of it"), "{why}");
        assert!(!at_ceiling(Op::Ge, 5.0, 6.7));
        assert!(at_ceiling(Op::Ge, 5.7, 6.7));
        assert!(at_ceiling(Op::Le, 12.9, 11.0));
        assert!(!at_ceiling(Op::Le, 13.0, 11.0));
    }

    #[test]
    fn no_yardstick_no_ceiling() {
        let t = threshold(Op::Ge, Some(10.0), Some("x"));
        let (v, why) = judge_check(&t, &measured(9.9, "x"));
        assert_eq!(v, Verdict::Fail);
        assert_eq!(why, "9.9 does not satisfy >= 10 x");
        // Equality and pass/fail thresholds never have a ceiling.
        let eq = threshold(Op::Eq, Some(0.0), Some("allocs"));
        assert_eq!(
            judge_check(&eq, &with_yardstick(1.0, "allocs", 1.0)).0,
            Verdict::Fail
        );
        assert!(!at_ceiling(Op::Eq, 1.0, 1.0));
        assert!(!at_ceiling(Op::Pass, 1.0, 1.0));
        let pass = threshold(Op::Pass, None, None);
        let out = CheckOutput {
            pass: Some(false),
            ..with_yardstick(1.0, "x", 1.0)
        };
        assert_eq!(judge_check(&pass, &out).0, Verdict::Fail);
        // Neither do units that do not match, or a yardstick that is not a number.
        assert_eq!(
            judge_check(&t, &with_yardstick(5.7, "ms", 6.7)).0,
            Verdict::Fail
        );
        assert_eq!(
            judge_check(&t, &with_yardstick(5.7, "x", f64::NAN)).0,
            Verdict::Fail
        );
    }

    #[test]
    fn check_output_with_a_yardstick_parses() {
        // What `m01_raw_sockets::lab::print_measured_with_yardstick` prints.
        let out: CheckOutput = serde_json::from_str(
            r#"{"measured": 5.7, "unit": "x", "yardstick": {"value": 6.7, "what": "a bare stack"}, "detail": "d"}"#,
        )
        .expect("parses");
        assert_eq!(
            out.yardstick,
            Some(Yardstick {
                value: 6.7,
                what: "a bare stack".into()
            })
        );
        assert!(
            serde_json::from_str::<CheckOutput>(
                r#"{"measured": 5.7, "unit": "x", "yardstick": {"value": 6.7, "wat": "?"}}"#
            )
            .is_err()
        );
        let old: CheckOutput =
            serde_json::from_str(r#"{"measured": 1, "unit": "x"}"#).expect("parses");
        assert_eq!(old.yardstick, None);
    }

    #[test]
    fn a_ceiling_does_not_fail_verify_but_a_miss_does() {
        let root = crate::manifest::project_root();
        let m = crate::manifest::find(&root, "7").expect("manifest 7");
        let base = MilestoneResults {
            milestone: 7,
            title: "t".into(),
            crate_name: "m07-buffers".into(),
            profile: Profile::Full,
            command: "cargo xtask milestone 7 --verify".into(),
            machine: Machine {
                cpu_model: "cpu".into(),
                cores: 2,
                available_parallelism: 2,
                kernel: "linux".into(),
                arch: "x86_64".into(),
            },
            git: GitInfo::default(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            passed: false,
            build: BuildRecord {
                command: "cargo build".into(),
                verdict: Verdict::Pass,
                duration_s: 1.0,
            },
            evidence: vec![],
            checks: vec![CheckRecord {
                id: "pool_vs_malloc_speedup".into(),
                item: "10x faster than malloc".into(),
                command: "cargo run".into(),
                measured: Some(5.7),
                unit: Some("x".into()),
                pass: None,
                threshold: threshold(Op::Ge, Some(10.0), Some("x")),
                verdict: Verdict::Ceiling,
                detail: String::new(),
                duration_s: 1.0,
                yardstick: Some(Yardstick {
                    value: 6.7,
                    what: "a bare stack".into(),
                }),
            }],
            experiments: vec![],
            benches: vec![],
            figures: vec![],
        };
        let line = conclude(&m, &base, true).expect("a ceiling alone exits 0");
        assert_eq!(
            line,
            "milestone 7 verified: nothing failed; 1 exit criterion at a ceiling, NOT MET: \
             pool_vs_malloc_speedup (5.7 x of 10 x; ceiling here 6.7 x)"
        );
        assert!(
            conclude(&m, &base, false).is_err(),
            "a failed test still fails"
        );
        let mut miss = base.clone();
        miss.checks[0].verdict = Verdict::Fail;
        let err = conclude(&m, &miss, true).expect_err("a plain miss fails");
        assert_eq!(
            err.to_string(),
            "milestone 7 failed verification: 1 failures (details in docs/results/m07.json)"
        );
        let mut all = base;
        all.passed = true;
        all.checks[0].verdict = Verdict::Pass;
        assert_eq!(
            conclude(&m, &all, true).expect("passes"),
            "milestone 7 verified: everything passed"
        );
    }

    #[test]
    fn check_output_must_be_the_schema() {
        let ok: CheckOutput =
            serde_json::from_str(r#"{"measured": 12.5, "unit": "ms", "detail": "p99 of 100"}"#)
                .expect("parses");
        assert_eq!(ok.measured, Some(12.5));
        assert!(serde_json::from_str::<CheckOutput>(r#"{"measurd": 1}"#).is_err());
        assert!(serde_json::from_str::<CheckOutput>("12.5 ms").is_err());
    }

    /// `--verify --quick` end to end on a miniature workspace: a real build, real `cargo test`
    /// runs, checks and an experiment, with passes and deliberate failures.
    #[test]
    fn verify_end_to_end_on_a_fixture_workspace() {
        let scratch = crate::testutil::Scratch::new("verify-ws");
        let root = scratch.fixture("verify-ws");
        let m = crate::manifest::find(&root, "1").expect("fixture manifest");

        let env = [(
            "CARGO_TARGET_DIR".to_string(),
            scratch.path.join("target").display().to_string(),
        )];
        let err = run_with_env(&root, &m, true, &env).expect_err("the fixture fails on purpose");
        assert!(
            err.to_string()
                .starts_with("milestone 1 failed verification: 2 failures"),
            "{err:#}"
        );

        let text = std::fs::read_to_string(root.join("docs/results/m01.json")).expect("json");
        let r: MilestoneResults = serde_json::from_str(&text).expect("parses");
        assert_eq!(r.profile, Profile::Quick);
        assert!(!r.passed);
        assert_eq!(r.build.verdict, Verdict::Pass);
        let ev: BTreeMap<&str, &EvidenceRecord> = r
            .evidence
            .iter()
            .map(|e| (e.reference.as_str(), e))
            .collect();
        assert_eq!(ev.len(), 5, "{ev:#?}");
        assert_eq!(
            ev["test:m01-raw-sockets::tests::echoes"].verdict,
            Verdict::Pass
        );
        assert_eq!(ev["metric:echo_bytes_total"].verdict, Verdict::Pass);
        assert_eq!(ev["experiment:profile_table"].verdict, Verdict::Pass);
        assert_eq!(ev["bench:echo_bench"].verdict, Verdict::Pass);
        let renamed = ev["test:m01-raw-sockets::tests::echoes_old_name"];
        assert_eq!(renamed.verdict, Verdict::Fail);
        assert_eq!(renamed.detail, "matched zero tests");
        assert!(renamed.command.contains("--exact"), "{}", renamed.command);

        let checks: BTreeMap<&str, &CheckRecord> =
            r.checks.iter().map(|c| (c.id.as_str(), c)).collect();
        let shutdown = checks["clean_shutdown_within_100ms"];
        assert_eq!(
            (shutdown.verdict, shutdown.measured),
            (Verdict::Pass, Some(12.5))
        );
        assert_eq!(shutdown.detail, "slowest of 10 shutdowns");
        let sub_ms = checks["sub_millisecond"];
        assert_eq!(sub_ms.verdict, Verdict::Fail);
        assert_eq!(sub_ms.detail, "3 does not satisfy < 1 ms");
        // Exit checks run at full size even in the quick profile.
        assert_eq!(
            checks["full_size"].verdict,
            Verdict::Pass,
            "{:?}",
            checks["full_size"]
        );

        // Experiments get their quick args and ZYPHOS_QUICK=1.
        let table = r.experiments[0].table.as_ref().expect("table");
        assert_eq!(
            table.rows,
            vec![vec![serde_json::json!("1"), serde_json::json!("--quick")]]
        );
        assert!(r.experiments[0].command.contains(" ZYPHOS_QUICK=1 sh -c"));
        assert!(
            !r.checks[0].command.contains("ZYPHOS_QUICK"),
            "{}",
            r.checks[0].command
        );
        assert_eq!(r.benches[0].output, "verify run");

        let writeup = std::fs::read_to_string(root.join("docs/milestones/01-raw-sockets.md"))
            .expect("write-up created");
        assert!(writeup.starts_with("# Milestone 1: Raw Sockets & System Calls\n"));
        assert!(writeup.contains("| Clean shutdown within 100ms | 12.5 ms | <= 100 ms | met |"));
        assert!(writeup.contains("| Sub-millisecond everything | 3 ms | < 1 ms | **not met** |"));
        assert!(writeup.contains("| Exit checks run at full size | pass | pass | met |"));
        assert!(
            root.join("docs/README.md").is_file(),
            "the status board is refreshed"
        );

        // The checklist now shows the states from the record.
        let shown = crate::checklist::render(&root, &m, Some(&r));
        assert!(
            shown.contains("[x] Passing test and metric evidence"),
            "{shown}"
        );
        assert!(shown.contains("[!] A renamed test"), "{shown}");
        assert!(shown.contains("[ ] Open item"), "{shown}");
        assert!(shown.contains("exit criteria met 2/3"), "{shown}");
    }

    #[test]
    fn missing_experiment_is_an_error_with_file_and_line_before_anything_runs() {
        let scratch = crate::testutil::Scratch::new("verify-ws-missing");
        let root = scratch.fixture("verify-ws");
        let path = root.join("milestones/01-raw-sockets.toml");
        let text = std::fs::read_to_string(&path)
            .expect("manifest")
            .replace("experiment:profile_table", "experiment:profile_tabel");
        let m =
            Manifest::parse(&text, Path::new("milestones/01-raw-sockets.toml")).expect("parses");
        let err = run(&root, &m, true).expect_err("unresolvable evidence");
        assert_eq!(
            err.to_string(),
            "milestones/01-raw-sockets.toml:23: evidence `experiment:profile_tabel` names no \
             [[experiment]] in milestones/01-raw-sockets.toml"
        );
        assert!(!root.join("docs/results/m01.json").exists(), "nothing ran");
    }
}
