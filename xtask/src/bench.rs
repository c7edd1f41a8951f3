//! `cargo xtask milestone N --bench`: the milestone's `[[bench]]` commands at full size, their
//! output printed and recorded in `docs/results/mNN-bench.json` (with machine, revision, time).

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

use crate::exec::Cmd;
use crate::machine::{self, GitInfo, Machine};
use crate::manifest::Manifest;
use crate::results::{self, BenchResults, Verdict};
use crate::verify::run_bench;

/// `docs/results/mNN-bench.json`.
pub(crate) fn bench_results_path(m: &Manifest) -> PathBuf {
    Path::new("docs/results").join(format!("m{:02}-bench.json", m.number))
}

/// Runs every bench of `m`.
pub(crate) fn run(root: &Path, m: &Manifest) -> Result<()> {
    if let Some(reason) = m.not_built_reason(root) {
        bail!("{reason}");
    }
    if m.benches.is_empty() {
        println!(
            "milestone {} declares no benchmarks (no [[bench]] in {})",
            m.number,
            m.path.display()
        );
        return Ok(());
    }
    let mut records = Vec::new();
    let mut figures = Vec::new();
    let total = m.benches.len();
    for (i, b) in m.benches.iter().map(|b| b.get_ref()).enumerate() {
        let cmd = Cmd::new(b.run.clone(), root)
            .timeout_s(b.timeout_s)
            .echo_stderr();
        println!("[{}/{total}] bench {}: {}", i + 1, b.name, cmd.display());
        let record = run_bench(&cmd, &b.name, &mut figures);
        if !record.output.is_empty() {
            println!("{}", record.output);
        }
        println!(
            "[{}/{total}] bench {} {} ({:.1} s){}",
            i + 1,
            b.name,
            record.verdict.label(),
            record.duration_s,
            if record.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", record.detail)
            }
        );
        records.push(record);
    }
    let failed: Vec<String> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.name.clone())
        .collect();
    let record = BenchResults {
        milestone: m.number,
        command: format!("cargo xtask milestone {} --bench", m.number),
        machine: Machine::current(),
        git: GitInfo::current(root),
        timestamp: machine::timestamp_now(),
        benches: records,
        figures,
    };
    let path = bench_results_path(m);
    results::write_json(root, &path, &record)?;
    println!("wrote {}", path.display());
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "milestone {} benchmarks failed: {}",
            m.number,
            failed.join(", ")
        )
    }
}
