//! Exit check `default_config_vs_best`: is what `zyphos serve --io epoll` does by default
//! (one loop per allowed CPU, pinned) as good as the best configuration we could pick by hand?
//!
//! Sweep: loops {1, 2} × pinning {on, off} (`--workers N`, `--no-pin`), plus the default (no
//! `--workers`, no `--no-pin`), each a fresh release `zyphos` process, load from `zyphos-load`
//! (keep-alive `GET /plaintext`, 64 connections, 2 s after a 0.5 s warm-up). Rounds are
//! interleaved (every configuration once per round, order rotated each round) so drift in
//! the machine hits all of them alike.
//!
//! **Measured**: median throughput of the default ÷ the best median of the swept points, × 100.

use std::io;

use m10_multi_loop::lab::{Zyphos, keepalive_load, median, num, print_measured, run_main};

const ROUNDS: usize = 5;
const SECS: f64 = 3.0;

fn run(args: &[&str]) -> io::Result<f64> {
    let mut all = vec!["--io", "epoll", "--proto", "http1.1"];
    all.extend_from_slice(args);
    let z = Zyphos::spawn(&all)?;
    keepalive_load(z.addr, "/plaintext", 64, 0.5)?;
    let report = keepalive_load(z.addr, "/plaintext", 64, SECS)?;
    z.stop()?;
    Ok(num(&report, &["rps"]))
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let configs: [(&str, &[&str]); 5] = [
            ("default", &[]),
            ("1 loop pinned", &["--workers", "1"]),
            ("1 loop unpinned", &["--workers", "1", "--no-pin"]),
            ("2 loops pinned", &["--workers", "2"]),
            ("2 loops unpinned", &["--workers", "2", "--no-pin"]),
        ];
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for round in 0..ROUNDS {
            for k in 0..configs.len() {
                let i = (k + round) % configs.len();
                let r = run(configs[i].1)?;
                eprintln!("round {round}: {}: {r:.0} req/s", configs[i].0);
                results[i].push(r);
            }
        }
        let medians: Vec<f64> = results.iter().map(|r| median(r)).collect();
        let (best_i, best) = medians[1..]
            .iter()
            .enumerate()
            .map(|(i, &m)| (i + 1, m))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or_else(|| io::Error::other("empty sweep"))?;
        let ratio = medians[0] / best * 100.0;
        let loops = m10_multi_loop::affinity::allowed_cpus()?.len();
        let table: Vec<String> = configs
            .iter()
            .zip(&medians)
            .map(|((name, _), m)| format!("{name} {m:.0}"))
            .collect();
        let detail = format!(
            "median req/s over {ROUNDS} interleaved rounds of {SECS} s: {}; best swept point: {} ({best:.0}); default = {loops} loop(s) (allowed CPUs), pinned",
            table.join(", "),
            configs[best_i].0
        );
        eprintln!("{detail}");
        print_measured(ratio, "% (of best swept config, same run)", &detail);
        Ok(())
    })
}
