//! Exit check `vs_nginx_rps_ratio`: issue 6's bar for this milestone's server (one epoll loop,
//! `zyphos serve --io epoll --workers 1 --proto http1.1`) against nginx with one worker. Both
//! keep a connection for the whole run (nginx: `keepalive_requests 100000000` in
//! benches/peers/nginx.conf; zyphos: `--keepalive-requests 100000000`).
//!
//! Runs `cargo xtask race` (nginx and zyphos alternating A B A B, each pinned to one CPU, the
//! load generator on the other) over plaintext keep-alive (64 connections), plaintext
//! pipelined 16 deep and 1 KiB static keep-alive, 3 rounds of 5 s, with wrk and zyphos-load,
//! then reads docs/results/race-m09.json. For each (scenario, tool) the ratio is zyphos's
//! median requests/s over nginx's; a pair where zyphos's median p99 is not lower than
//! nginx's, or either side had over 1 % errors, counts 0. A tool that reports a p99 of 0 µs
//! measured none (wrk with a pipelining script): that pair's latency is judged by the other
//! tool's p99s for the same scenario. Measured: the minimum over all pairs.

use std::process::{Command, Stdio};

use m08_http11::lab::{print_measured, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root)
            .args([
                "xtask",
                "race",
                "--zyphos-args",
                // Connections kept for the whole run, as benches/peers/nginx.conf does.
                "serve --io epoll --workers 1 --proto http1.1 --keepalive-requests 100000000",
                "--scenarios",
                "plaintext-keepalive,plaintext-pipeline16,static1k-keepalive",
                "--rounds",
                "3",
                "--duration",
                "5",
                "--tools",
                "wrk,zyphos-load",
                "--syscall-seconds",
                "0",
                "--out",
                "race-m09",
            ])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "cargo xtask race failed: {status}"
            )));
        }
        let text = std::fs::read_to_string(format!("{root}/docs/results/race-m09.json"))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        let summaries = doc
            .get("summaries")
            .and_then(|s| s.as_array())
            .ok_or_else(|| std::io::Error::other("no summaries in race-m09.json"))?;
        if summaries.len() < 3 {
            return Err(std::io::Error::other(format!(
                "only {} summaries",
                summaries.len()
            )));
        }
        let mut min = f64::MAX;
        let mut parts = Vec::new();
        let p99s = |s: &serde_json::Value| {
            (
                m09_event_loop::lab::num(s, &["zyphos", "median_p99_us"]),
                m09_event_loop::lab::num(s, &["nginx", "median_p99_us"]),
            )
        };
        let scenario = |s: &serde_json::Value| {
            s.get("scenario")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_owned()
        };
        for s in summaries {
            let get = |path: &[&str]| m09_event_loop::lab::num(s, path);
            let ratio = get(&["ratio_rps"]);
            let (mut zp99, mut np99) = p99s(s);
            // A p99 of 0 µs is no measurement (wrk reports none for pipelined runs): judge the
            // latency with the other tool's figures for the same scenario, if it has them.
            let mut from = "";
            if zp99 <= 0.0 || np99 <= 0.0 {
                if let Some(other) = summaries
                    .iter()
                    .filter(|o| scenario(o) == scenario(s))
                    .map(p99s)
                    .find(|(z, n)| *z > 0.0 && *n > 0.0)
                {
                    (zp99, np99) = other;
                    from = " (p99 from the other tool: this one measured none)";
                }
            }
            let errors_ok = get(&["zyphos", "errors"]) <= 0.01 * get(&["zyphos", "requests"])
                && get(&["nginx", "errors"]) <= 0.01 * get(&["nginx", "requests"]);
            let counted = if zp99 > 0.0 && zp99 < np99 && errors_ok {
                ratio
            } else {
                0.0
            };
            min = min.min(counted);
            // Which core set the pace (median % busy of the server's / the generator's CPU).
            let cores = |side: &str| {
                let pct = |key: &str| {
                    s.get(side)
                        .and_then(|v| v.get(key))
                        .and_then(|v| v.as_f64())
                };
                match (pct("median_server_core_pct"), pct("median_load_core_pct")) {
                    (Some(a), Some(b)) => format!("{a:.0}/{b:.0}%"),
                    _ => "not recorded".to_string(),
                }
            };
            parts.push(format!(
                "{} / {}: {:.0} vs {:.0} rps = {ratio:.2}x, p99 {zp99:.0} vs {np99:.0} us{from}, cores server/load zyphos {} nginx {} -> {counted:.2}",
                s.get("scenario").and_then(|v| v.as_str()).unwrap_or("?"),
                s.get("tool").and_then(|v| v.as_str()).unwrap_or("?"),
                get(&["zyphos", "median_rps"]),
                get(&["nginx", "median_rps"]),
                cores("zyphos"),
                cores("nginx"),
            ));
        }
        let detail = format!(
            "min over {} (scenario, tool) pairs of zyphos/nginx median rps (0 where zyphos's p99 is not lower): {}; docs/results/race-m09.json",
            summaries.len(),
            parts.join("; ")
        );
        eprintln!("{detail}");
        print_measured(min, "x", &detail);
        Ok(())
    })
}
