//! Evidence references and the test runner behind `test:` and `metric:` evidence.
//!
//! A `test:PACKAGE::path::to::test` reference is run as
//! `cargo test -p PACKAGE --no-fail-fast -- --exact NAME1 NAME2 …` (one cargo run per package)
//! and judged from libtest's `test NAME ... ok|FAILED|ignored` lines across every test binary of
//! the package. A name that no binary reported **fails** with "matched zero tests": a renamed or
//! deleted test must not pass silently. An ignored test fails too (it did not run).

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::exec::{Cmd, DEFAULT_TIMEOUT};

/// A parsed evidence reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum EvidenceRef {
    /// `test:PACKAGE::name`
    Test(TestName),
    /// `experiment:NAME`
    Experiment(String),
    /// `metric:NAME`
    Metric(String),
    /// `bench:NAME`
    Bench(String),
}

/// A test in a package: `PACKAGE::path::to::test`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TestName {
    /// The cargo package.
    pub(crate) package: String,
    /// The name libtest prints.
    pub(crate) name: String,
}

impl TestName {
    /// Parses `PACKAGE::path::to::test`.
    pub(crate) fn parse(s: &str) -> Result<TestName> {
        let Some((package, name)) = s.split_once("::") else {
            bail!("`{s}` is not PACKAGE::path::to::test");
        };
        if package.is_empty() || name.is_empty() || name.split("::").any(str::is_empty) {
            bail!("`{s}` is not PACKAGE::path::to::test");
        }
        if !package
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("`{package}` in `{s}` is not a package name");
        }
        if name.chars().any(char::is_whitespace) {
            bail!("test name `{name}` in `{s}` contains whitespace");
        }
        Ok(TestName {
            package: package.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for TestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.package, self.name)
    }
}

impl EvidenceRef {
    /// Parses an evidence string from a manifest.
    pub(crate) fn parse(s: &str) -> Result<EvidenceRef> {
        let Some((kind, rest)) = s.split_once(':') else {
            bail!("evidence `{s}` has no kind (test:, experiment:, metric:, bench:)");
        };
        let simple_name = |rest: &str| -> Result<String> {
            if rest.is_empty()
                || !rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                bail!("evidence `{s}`: `{rest}` is not a valid name");
            }
            Ok(rest.to_string())
        };
        match kind {
            "test" => Ok(EvidenceRef::Test(
                TestName::parse(rest).map_err(|e| anyhow::anyhow!("evidence `{s}`: {e}"))?,
            )),
            "experiment" => Ok(EvidenceRef::Experiment(simple_name(rest)?)),
            "metric" => Ok(EvidenceRef::Metric(simple_name(rest)?)),
            "bench" => Ok(EvidenceRef::Bench(simple_name(rest)?)),
            other => bail!(
                "evidence `{s}`: unknown kind `{other}` (expected test, experiment, metric or bench)"
            ),
        }
    }
}

impl fmt::Display for EvidenceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceRef::Test(t) => write!(f, "test:{t}"),
            EvidenceRef::Experiment(n) => write!(f, "experiment:{n}"),
            EvidenceRef::Metric(n) => write!(f, "metric:{n}"),
            EvidenceRef::Bench(n) => write!(f, "bench:{n}"),
        }
    }
}

/// What libtest reported for one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `... ok`
    Ok,
    /// `... FAILED`
    Failed,
    /// `... ignored`
    Ignored,
}

/// Every `test NAME ... RESULT` line in libtest output (all binaries of a `cargo test` run).
pub(crate) fn parse_libtest(output: &str) -> Vec<(String, Outcome)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.trim_end().strip_prefix("test ")?;
            let (name, result) = rest.rsplit_once(" ... ")?;
            let outcome = if result == "ok" {
                Outcome::Ok
            } else if result == "FAILED" {
                Outcome::Failed
            } else if result == "ignored" || result.starts_with("ignored, ") {
                Outcome::Ignored
            } else {
                return None;
            };
            // `should_panic` tests print `name - should panic`.
            let name = name.strip_suffix(" - should panic").unwrap_or(name);
            Some((name.to_string(), outcome))
        })
        .collect()
}

/// The verdict on one test name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestVerdict {
    /// The test name as given.
    pub(crate) name: String,
    /// Passed?
    pub(crate) passed: bool,
    /// Why (`ok`, `matched zero tests`, `FAILED`, `ignored`, …).
    pub(crate) detail: String,
}

/// Judges each wanted name against parsed libtest results. `cargo_failure` describes a failed
/// cargo run (build error, crash) so a name without results can say why.
pub(crate) fn judge(
    wanted: &[String],
    results: &[(String, Outcome)],
    cargo_failure: Option<&str>,
) -> Vec<TestVerdict> {
    let mut by_name: BTreeMap<&str, Vec<Outcome>> = BTreeMap::new();
    for (name, outcome) in results {
        by_name.entry(name.as_str()).or_default().push(*outcome);
    }
    wanted
        .iter()
        .map(|name| {
            let outcomes = by_name.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let failed = outcomes.iter().filter(|o| **o == Outcome::Failed).count();
            let ignored = outcomes.iter().filter(|o| **o == Outcome::Ignored).count();
            let (passed, detail) = if outcomes.is_empty() {
                let why = match cargo_failure {
                    Some(f) => format!("matched zero tests (cargo test: {f})"),
                    None => "matched zero tests".to_string(),
                };
                (false, why)
            } else if failed > 0 {
                (false, "FAILED".to_string())
            } else if ignored > 0 {
                (
                    false,
                    "ignored (an ignored test is not evidence)".to_string(),
                )
            } else if outcomes.len() > 1 {
                (true, format!("ok ({} binaries)", outcomes.len()))
            } else {
                (true, "ok".to_string())
            };
            TestVerdict {
                name: name.clone(),
                passed,
                detail,
            }
        })
        .collect()
}

/// Runs `cargo test` for one package of some workspace.
#[derive(Debug, Clone)]
pub(crate) struct TestRunner {
    /// The workspace to run in.
    pub(crate) workspace: PathBuf,
    /// Extra environment (`CARGO_TARGET_DIR`, `ZYPHOS_QUICK`).
    pub(crate) env: Vec<(String, String)>,
}

/// One package's `cargo test` run.
#[derive(Debug, Clone)]
pub(crate) struct PackageRun {
    /// The exact command.
    pub(crate) command: String,
    /// Wall time of the whole run.
    pub(crate) duration: Duration,
    /// One verdict per wanted name, in order.
    pub(crate) verdicts: Vec<TestVerdict>,
    /// The last lines of stderr when cargo itself failed.
    pub(crate) failure_tail: Option<String>,
}

impl TestRunner {
    /// Runs the named tests of `package` by exact name and judges each.
    pub(crate) fn run(
        &self,
        package: &str,
        names: &[String],
        timeout: Option<Duration>,
    ) -> Result<PackageRun> {
        let mut argv = vec![
            cargo(),
            "test".to_string(),
            "-p".to_string(),
            package.to_string(),
            "--no-fail-fast".to_string(),
            "--".to_string(),
            "--exact".to_string(),
        ];
        argv.extend(names.iter().cloned());
        let mut cmd = Cmd::new(argv, &self.workspace).timeout(timeout.unwrap_or(DEFAULT_TIMEOUT));
        for (k, v) in &self.env {
            cmd = cmd.env(k, v);
        }
        let finished = cmd.run()?;
        let results = parse_libtest(&finished.stdout);
        let failure = (!finished.success()).then(|| finished.describe_status());
        let verdicts = judge(names, &results, failure.as_deref());
        let failure_tail = failure.map(|f| format!("{f}: {}", finished.stderr_tail(6)));
        Ok(PackageRun {
            command: cmd.display(),
            duration: finished.duration,
            verdicts,
            failure_tail,
        })
    }
}

/// `cargo` from PATH (so recorded commands read as typed), else the cargo that runs us.
pub(crate) fn cargo() -> String {
    if crate::setup::find_in_path("cargo").is_some() {
        return "cargo".to_string();
    }
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_evidence_kinds() {
        assert_eq!(
            EvidenceRef::parse("test:m01-raw-sockets::echo::round_trip").ok(),
            Some(EvidenceRef::Test(TestName {
                package: "m01-raw-sockets".into(),
                name: "echo::round_trip".into()
            }))
        );
        assert_eq!(
            EvidenceRef::parse("test:m01-raw-sockets::loopback").ok(),
            Some(EvidenceRef::Test(TestName {
                package: "m01-raw-sockets".into(),
                name: "loopback".into()
            }))
        );
        assert_eq!(
            EvidenceRef::parse("experiment:syscall_cost").ok(),
            Some(EvidenceRef::Experiment("syscall_cost".into()))
        );
        assert_eq!(
            EvidenceRef::parse("metric:zyphos_syscalls_total").ok(),
            Some(EvidenceRef::Metric("zyphos_syscalls_total".into()))
        );
        assert_eq!(
            EvidenceRef::parse("bench:parse_vs_httparse").ok(),
            Some(EvidenceRef::Bench("parse_vs_httparse".into()))
        );
        let round_trip = "test:m04-http10::wire::tests::parses_request_line";
        assert_eq!(
            EvidenceRef::parse(round_trip).map(|r| r.to_string()).ok(),
            Some(round_trip.to_string())
        );
    }

    #[test]
    fn rejects_malformed_evidence() {
        for bad in [
            "m01::x",
            "test:m01-raw-sockets",
            "test:m01-raw-sockets::",
            "test:::name",
            "test:m01::a::::b",
            "test:m01::has space",
            "experiment:",
            "experiment:has space",
            "proof:thing",
            "",
        ] {
            assert!(EvidenceRef::parse(bad).is_err(), "`{bad}` must be rejected");
        }
    }

    const LIBTEST: &str = "\
running 4 tests
test echo::round_trip ... ok
test echo::slow_client has been running for over 60 seconds
test echo::slow_client ... FAILED
test echo::later ... ignored
test echo::reasoned ... ignored, needs nginx
test panics - should panic ... ok

failures:

---- echo::slow_client stdout ----
thread 'echo::slow_client' panicked at src/echo.rs:9:5

test result: FAILED. 2 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out

running 1 test
test round_trip ... ok
test echo::round_trip ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out
";

    #[test]
    fn parses_libtest_lines() {
        let results = parse_libtest(LIBTEST);
        assert_eq!(
            results,
            vec![
                ("echo::round_trip".to_string(), Outcome::Ok),
                ("echo::slow_client".to_string(), Outcome::Failed),
                ("echo::later".to_string(), Outcome::Ignored),
                ("echo::reasoned".to_string(), Outcome::Ignored),
                ("panics".to_string(), Outcome::Ok),
                ("round_trip".to_string(), Outcome::Ok),
                ("echo::round_trip".to_string(), Outcome::Ok),
            ]
        );
    }

    #[test]
    fn parser_ignores_non_result_lines() {
        let noise = "test result: ok. 3 passed\ntest foo has been running for over 60 seconds\n\
                     testing ... ok\n   Compiling m01 v0.1.0\ntest bar ... bench:  12 ns/iter\n";
        assert!(parse_libtest(noise).is_empty());
    }

    #[test]
    fn judges_each_name() {
        let results = parse_libtest(LIBTEST);
        let wanted: Vec<String> = [
            "echo::round_trip",
            "echo::slow_client",
            "echo::later",
            "echo::renamed",
            "round_trip",
        ]
        .map(String::from)
        .to_vec();
        let v = judge(&wanted, &results, None);
        assert!(v[0].passed, "{v:?}");
        assert_eq!(v[0].detail, "ok (2 binaries)");
        assert!(!v[1].passed);
        assert_eq!(v[1].detail, "FAILED");
        assert!(!v[2].passed);
        assert!(v[2].detail.starts_with("ignored"));
        assert!(!v[3].passed);
        assert_eq!(v[3].detail, "matched zero tests");
        assert!(v[4].passed);
    }

    #[test]
    fn zero_matches_after_cargo_failure_says_why() {
        let v = judge(&["a::b".to_string()], &[], Some("exit status: 101"));
        assert!(!v[0].passed);
        assert_eq!(
            v[0].detail,
            "matched zero tests (cargo test: exit status: 101)"
        );
    }

    /// The zero-matching-tests rule end to end: a real `cargo test` of a fixture crate, run by
    /// the same runner `--verify` uses (copied to the temp dir, with its own target dir).
    #[test]
    fn zero_matching_tests_fail_end_to_end() {
        let scratch = crate::testutil::Scratch::new("zero-match");
        let runner = TestRunner {
            workspace: scratch.fixture("zero-match"),
            env: vec![(
                "CARGO_TARGET_DIR".to_string(),
                scratch.path.join("target").display().to_string(),
            )],
        };
        let names: Vec<String> = [
            "tests::passes",
            "tests::fails",
            "tests::skipped",
            "tests::passes_renamed",
            "adds_across_the_crate_boundary",
        ]
        .map(String::from)
        .to_vec();
        let run = runner
            .run("zero-match", &names, Some(Duration::from_secs(600)))
            .expect("cargo test starts");
        let by_name: BTreeMap<&str, &TestVerdict> =
            run.verdicts.iter().map(|v| (v.name.as_str(), v)).collect();
        assert!(
            run.command.ends_with(
                "test -p zero-match --no-fail-fast -- --exact tests::passes tests::fails \
             tests::skipped tests::passes_renamed adds_across_the_crate_boundary"
            ),
            "{}",
            run.command
        );
        let ok = by_name["tests::passes"];
        assert!(ok.passed, "{ok:?} / {:?}", run.failure_tail);
        let failed = by_name["tests::fails"];
        assert!(!failed.passed);
        assert_eq!(failed.detail, "FAILED");
        let ignored = by_name["tests::skipped"];
        assert!(!ignored.passed);
        assert!(ignored.detail.starts_with("ignored"), "{ignored:?}");
        let renamed = by_name["tests::passes_renamed"];
        assert!(!renamed.passed, "a name matching zero tests must fail");
        assert!(
            renamed.detail.starts_with("matched zero tests"),
            "{renamed:?}"
        );
        let integration = by_name["adds_across_the_crate_boundary"];
        assert!(integration.passed, "{integration:?}");
        // The failing test makes cargo exit non-zero; that is reported, not swallowed.
        assert!(run.failure_tail.is_some());
    }
}
