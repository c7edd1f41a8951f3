//! Experiment `cachegrind`: runs `parse_many` (m04, then httparse) under
//! `valgrind --tool=cachegrind --branch-sim=yes --cache-sim=yes` and reports the simulated
//! branch mispredict rate and D1/LL miss rates. Fails loudly if valgrind is missing.

use std::path::PathBuf;
use std::process::Command;

use m04_http10::lab::{self, Table};

fn binary() -> std::io::Result<PathBuf> {
    let status = Command::new("cargo")
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "m04-http10",
            "--example",
            "parse_many",
        ])
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other("building parse_many failed"));
    }
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .map(|d| d.join("parse_many"))
        .unwrap_or_default())
}

/// The number after `label` in cachegrind's summary (`D1  miss rate:  0.1% (...)`).
fn field(text: &str, label: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once(label).map(|(_, r)| r.trim().to_owned()))
        .next()
        .map(|r| r.split_whitespace().next().unwrap_or("").replace(',', ""))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        if !lab::have_tool("valgrind") {
            return Err(std::io::Error::other(
                "valgrind is not installed: run `cargo xtask setup`",
            ));
        }
        let n = if lab::quick() { "20000" } else { "200000" };
        let bin = binary()?;
        let mut t = Table::new(
            "Simulated cache and branch behaviour (cachegrind)",
            &[
                "parser",
                "requests",
                "instructions",
                "instr/request",
                "branch mispredict rate (simulated)",
                "D1 miss rate (simulated)",
                "LLd miss rate (simulated)",
            ],
        );
        let run = |which: &str, n: &str| {
            Command::new("valgrind")
                .args([
                    "--tool=cachegrind",
                    "--branch-sim=yes",
                    "--cache-sim=yes",
                    "--cachegrind-out-file=/dev/null",
                ])
                .arg(&bin)
                .args([which, n])
                .output()
        };
        for which in ["m04", "httparse"] {
            let base = run(which, "0")?;
            let base_err = String::from_utf8_lossy(&base.stderr);
            let base_irefs: f64 = field(&base_err, "I   refs:")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            let out = run(which, n)?;
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                return Err(std::io::Error::other(format!("valgrind failed: {err}")));
            }
            let irefs: f64 = field(&err, "I   refs:")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            let get = |l: &str| field(&err, l).unwrap_or_else(|| "n/a".into());
            let reqs: f64 = n.parse().unwrap_or(1.0);
            t.rows.push(vec![
                which.into(),
                n.into(),
                irefs.into(),
                lab::round((irefs - base_irefs) / reqs, 0).into(),
                get("Mispred rate:").into(),
                get("D1  miss rate:").into(),
                get("LLd miss rate:").into(),
            ]);
        }
        t.notes = format!(
            "valgrind cachegrind with --branch-sim=yes --cache-sim=yes (simulated caches and branch predictor, not hardware counters: perf has none here). \
             Whole-program figures including startup and the 256-request generator; instr/request = (instructions with N requests − with 0) / N. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
