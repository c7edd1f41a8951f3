//! Exit check `starvation_probe_p999_ms`: while one connection floods the loop with pipelined
//! requests for 30 s, how long do 100 other connections wait?
//!
//! Server: this example's `--server` mode in a child process (one loop, level-triggered, m08's
//! HTTP/1.1). Flood: `zyphos-load -c 1 --pipeline 64` (64 requests always in flight on one
//! connection) for 30 s. Probes: `zyphos-load -c 100 -r 1000` (open loop: 1,000 requests/s
//! spread over 100 connections; latency counted from each request's scheduled send time) for
//! the 28 s inside the flood. Measured: the probes' p99.9 latency, ms.
//!
//! Placement: the server is pinned to CPU 0, both clients to CPU 1, the flood client at nice 19.
//! Three busy programs on two cores would otherwise measure the scheduler: a probe client
//! waiting behind the flood client for its time slice reports the wait as server latency. With
//! the flood niced, the probe client runs as soon as a response arrives, and what is left is
//! the server's fairness (the flood still saturates the server's core).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use m08_http11::lab::{print_measured, run_main};

/// Runs `zyphos-load` on CPU 1 (`--cpu 1`), under `nice -n NICE`, and parses its JSON report.
fn load_on_cpu1(addr: SocketAddr, nice: i32, extra: &[&str]) -> std::io::Result<serde_json::Value> {
    let bin = m09_event_loop::lab::release_binary("zyphos-load", "zyphos-load")?;
    let out = Command::new("nice")
        .args(["-n", &nice.to_string()])
        .arg(bin)
        .arg(format!("http://{addr}/plaintext"))
        .args(extra)
        .args(["--cpu", "1", "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "zyphos-load {extra:?} failed: {}",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(std::io::Error::other)
}

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"])
            .arg(std::env::current_exe()?)
            .arg("--server");
        let server = m09_event_loop::lab::ServerChild::start(cmd)?;
        let addr = server.addr;
        let cpu0 = server.cpu_s()?;
        let flood = std::thread::spawn(move || {
            load_on_cpu1(
                addr,
                19,
                &[
                    "-c",
                    "1",
                    "--pipeline",
                    "64",
                    "-d",
                    "30",
                    "--source-ips",
                    "127.0.0.20",
                ],
            )
        });
        std::thread::sleep(Duration::from_secs(1));
        let probes = load_on_cpu1(
            addr,
            0,
            &[
                "-c",
                "100",
                "-r",
                "1000",
                "-d",
                "28",
                "--source-ips",
                "127.0.0.21",
            ],
        )?;
        let flood = flood
            .join()
            .map_err(|_| std::io::Error::other("flood thread panicked"))??;
        let stats = server.stats()?;
        let cpu = server.cpu_s()? - cpu0;
        server.stop()?;
        let (f_rps, _, _, _, f_err) = support::summary(&flood);
        let (p_rps, p50, p99, p999, p_err) = support::summary(&probes);
        let detail = format!(
            "flood: 1 connection, 64 pipelined, {f_rps:.0} rps for 30 s ({f_err} errors); probes: 100 connections, {p_rps:.0} rps open loop, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms ({p_err} errors); loop iteration p99 {:.0} us, max {:.1} ms, blocked iterations (> 10 ms) {}; server CPU {:.1} s of 30",
            p50 / 1e3,
            p99 / 1e3,
            p999 / 1e3,
            support::driver(&stats, "iteration_p99_ns") / 1e3,
            support::driver(&stats, "iteration_max_ns") / 1e6,
            support::driver(&stats, "blocked_iterations"),
            cpu,
        );
        eprintln!("{detail}");
        if p_err > 0.0 || p_rps < 900.0 {
            // Lost or missing probes are not in the percentiles: no honest figure.
            return Err(std::io::Error::other(format!(
                "probes incomplete: {detail}"
            )));
        }
        print_measured(p999 / 1e3, "ms", &detail);
        Ok(())
    })
}
