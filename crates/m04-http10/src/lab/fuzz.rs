//! The invariants the fuzz target `http10_request` checks, shared with the seed-corpus replay
//! test so `cargo test` runs the same function on stable.

use crate::{Limits, Mode, ParseError, Parser, Request, Status, disposition};

fn inside(data: &[u8], part: &[u8]) -> bool {
    let (d, p) = (data.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= d && p + part.len() <= d + data.len())
}

fn check_fields(data: &[u8], r: &Request<'_>) {
    assert!(r.len() <= data.len(), "consumed more than given");
    assert!(r.head_len() <= r.len());
    assert!(inside(data, r.target().as_bytes()), "target outside input");
    assert!(inside(data, r.body()), "body outside input");
    assert!(inside(data, r.path().as_bytes()));
    let mut count = 0;
    for (name, value) in r.headers() {
        assert!(inside(data, name.as_bytes()), "header name outside input");
        assert!(inside(data, value), "header value outside input");
        assert!(!name.is_empty());
        count += 1;
    }
    assert_eq!(
        count,
        r.header_count(),
        "header iterator disagrees with count"
    );
}

/// Parses `data` with `parser` and checks every invariant; panics on a violation.
pub fn check_one(parser: &Parser, data: &[u8]) -> Result<usize, ParseError> {
    let full = parser.parse(data);
    match &full {
        Ok(Status::Complete(r)) => check_fields(data, r),
        Ok(Status::Partial) => {}
        Err(e) => {
            let d = disposition(*e);
            assert!(matches!(
                d.status,
                400 | 408 | 411 | 413 | 414 | 431 | 501 | 505
            ));
        }
    }
    // Prefixes: Partial or the same error; a complete request's own prefix is complete.
    let cuts: Vec<usize> = if data.len() <= 200 {
        (0..data.len()).collect()
    } else {
        (0..64).map(|i| i * data.len() / 64).collect()
    };
    for n in cuts {
        let prefix = parser.parse(&data[..n]);
        match (&full, prefix) {
            (_, Ok(Status::Partial)) => {}
            (Err(e), Err(e2)) => assert_eq!(*e, e2, "prefix {n} gave another error"),
            (Ok(Status::Complete(r)), Ok(Status::Complete(p))) => {
                assert!(n >= r.len(), "prefix {n} complete before the request ends");
                assert_eq!(p.len(), r.len());
            }
            (full, prefix) => panic!("prefix {n}: {prefix:?} but full input: {full:?}"),
        }
    }
    full.map(|s| match s {
        Status::Complete(r) => r.len(),
        Status::Partial => 0,
    })
}

/// The fuzz target's body: default and tiny limits, both modes; strict acceptance implies
/// tolerant acceptance of the same request.
pub fn check_request(data: &[u8]) {
    let strict = Parser::default();
    let lenient = Parser::new(Limits::default(), Mode::Rfc1945);
    let tiny = Parser::new(
        Limits {
            max_request_line: 32,
            max_headers: 3,
            max_header_line: 24,
            max_head: 96,
            max_body: 16,
            ..Limits::default()
        },
        Mode::Strict,
    );
    let s = check_one(&strict, data);
    let l = check_one(&lenient, data);
    let _ = check_one(&tiny, data);
    if let Ok(n) = s {
        if n > 0 {
            assert_eq!(l, Ok(n), "strict accepted what RFC 1945 mode did not");
        }
    }
}

/// What one [`run_libfuzzer`] session found.
#[derive(Debug, Clone)]
pub struct FuzzRun {
    /// The cargo-fuzz target.
    pub target: String,
    /// Seconds it ran for.
    pub seconds: u64,
    /// Inputs executed (libFuzzer's `Done N runs`).
    pub runs: u64,
    /// Crash and leak artifacts.
    pub crashes: usize,
    /// Timeout artifacts (an input that took over 10 s).
    pub timeouts: usize,
    /// Out-of-memory artifacts (over 2 GiB RSS).
    pub ooms: usize,
    /// The run ended abnormally without leaving an artifact (counted as one failure).
    pub abnormal: bool,
    /// Seed inputs it started from.
    pub seeds: usize,
    /// Inputs in the corpus when it stopped.
    pub corpus: usize,
    /// Where the artifacts were kept (only when something was found).
    pub kept: Option<std::path::PathBuf>,
}

impl FuzzRun {
    /// Crashes + timeouts + OOMs + an abnormal exit.
    pub fn failures(&self) -> usize {
        self.crashes + self.timeouts + self.ooms + usize::from(self.abnormal)
    }
}

/// Runs cargo-fuzz target `target` (of the workspace's `fuzz/` crate) for `seconds` from a
/// copy of `fuzz/corpus/<target>/`, with `fuzz/dicts/<dict>` if given, and counts what
/// libFuzzer left behind. The working copy is removed unless something was found (then
/// [`FuzzRun::kept`] says where the reproducers are). Fails loudly, naming the install
/// command, when cargo-fuzz is missing, and when libFuzzer did not run at all.
pub fn run_libfuzzer(
    root: &std::path::Path,
    target: &str,
    seconds: u64,
    dict: Option<&str>,
) -> std::io::Result<FuzzRun> {
    use std::process::Command;
    let have = Command::new("cargo").args(["fuzz", "--version"]).output();
    if !have.is_ok_and(|o| o.status.success()) {
        return Err(std::io::Error::other(
            "cargo-fuzz is not installed: run `cargo xtask setup` (or `cargo install --locked cargo-fuzz`)",
        ));
    }
    let work = std::env::temp_dir().join(format!("zyphos-fuzz-{target}-{}", std::process::id()));
    let corpus = work.join("corpus");
    let artifacts = work.join("artifacts");
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut seeds = 0;
    for e in std::fs::read_dir(root.join("fuzz/corpus").join(target))? {
        let p = e?.path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, corpus.join(name))?;
            seeds += 1;
        }
    }
    let mut prefix = artifacts.clone().into_os_string();
    prefix.push("/");
    eprintln!("fuzzing {target} for {seconds} s from {seeds} seeds ...");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target])
        .arg(&corpus)
        .arg("--");
    if let Some(dict) = dict {
        cmd.arg(format!(
            "-dict={}",
            root.join("fuzz/dicts").join(dict).display()
        ));
    }
    let out = cmd
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg(format!("-artifact_prefix={}", prefix.to_string_lossy()))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let runs = stderr
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("Done ")
                .and_then(|r| r.split_whitespace().next())
        })
        .and_then(|n| n.parse::<u64>().ok());
    let found: Vec<std::path::PathBuf> = std::fs::read_dir(&artifacts)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let count = |p: &str| {
        found
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(p))
            })
            .count()
    };
    let (crashes, timeouts, ooms) = (
        count("crash-") + count("leak-"),
        count("timeout-"),
        count("oom-"),
    );
    let Some(runs) = runs else {
        eprintln!("{stderr}");
        return Err(std::io::Error::other(format!(
            "cargo fuzz did not run {target} (exit {:?}); see stderr above",
            out.status.code()
        )));
    };
    let abnormal = !out.status.success() && crashes + timeouts + ooms == 0;
    if abnormal || crashes + timeouts + ooms > 0 {
        // The tail of libFuzzer's report names the failing input and the assertion.
        let lines: Vec<&str> = stderr.lines().collect();
        eprintln!("{}", lines[lines.len().saturating_sub(40)..].join("\n"));
    }
    let corpus_size = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    let mut run = FuzzRun {
        target: target.to_string(),
        seconds,
        runs,
        crashes,
        timeouts,
        ooms,
        abnormal,
        seeds,
        corpus: corpus_size,
        kept: None,
    };
    if run.failures() > 0 {
        eprintln!("reproducers kept in {}", artifacts.display());
        run.kept = Some(artifacts);
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(run)
}
