//! Exit check `fuzz_http10_crashes`: runs cargo-fuzz target `http10_request` for 300 s (always
//! full size) from a copy of the seed corpus with the HTTP dictionary, then counts crashes,
//! timeouts and OOMs (libFuzzer's artifacts, plus an abnormal exit without one). Prints
//! `{"measured": crashes, ...}`. Fails loudly if cargo-fuzz is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use m04_http10::lab;

const SECONDS: u64 = 300;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let have = Command::new("cargo").args(["fuzz", "--version"]).output();
        if !have.is_ok_and(|o| o.status.success()) {
            return Err(std::io::Error::other(
                "cargo-fuzz is not installed: run `cargo xtask setup` (or `cargo install --locked cargo-fuzz`)",
            ));
        }
        let work = std::env::temp_dir().join(format!("zyphos-fuzz-http10-{}", std::process::id()));
        let corpus = work.join("corpus");
        let artifacts = work.join("artifacts");
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seeds = root.join("fuzz/corpus/http10_request");
        let mut n_seeds = 0;
        for e in std::fs::read_dir(&seeds)? {
            let p = e?.path();
            if let Some(name) = p.file_name() {
                std::fs::copy(&p, corpus.join(name))?;
                n_seeds += 1;
            }
        }
        let dict = root.join("fuzz/dicts/http.dict");
        let mut prefix = artifacts.clone().into_os_string();
        prefix.push("/");
        eprintln!("fuzzing http10_request for {SECONDS} s from {n_seeds} seeds ...");
        let out = Command::new("cargo")
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "http10_request"])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-dict={}", dict.display()))
            .arg(format!("-max_total_time={SECONDS}"))
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
        let found: Vec<PathBuf> = std::fs::read_dir(&artifacts)?
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
        let mut total = crashes + timeouts + ooms;
        if runs.is_none() || (!out.status.success() && total == 0) {
            eprintln!("{stderr}");
            if runs.is_none() {
                return Err(std::io::Error::other(format!(
                    "cargo fuzz did not run (exit {:?}); see stderr above",
                    out.status.code()
                )));
            }
            total += 1; // abnormal exit without an artifact still counts
        }
        let corpus_size = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
        let _ = std::fs::remove_dir_all(&work);
        lab::print_measured(
            total as f64,
            "crashes",
            &format!(
                "{SECONDS} s of libFuzzer on http10_request: {} runs, {crashes} crashes, {timeouts} timeouts, {ooms} OOMs; corpus {n_seeds} seeds -> {corpus_size} inputs; {}",
                runs.unwrap_or(0),
                lab::machine()
            ),
        );
        Ok(())
    })
}
