//! Exit check `shutdown_latency_ms`: SIGTERM to an echo_server with 100 live connections, each
//! with a 4 KiB message in flight (sent, echo not yet read); the time from kill() to the
//! process's exit as seen by waitpid, worst of 20 runs (measured, threshold <= 100 ms). Every run
//! must exit 0, report no descriptor open at exit, and drain: each client then reads its full
//! 4 KiB echo followed by a clean EOF (FIN, not RST); otherwise `pass` is false.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, echo_round_trip, pattern};

const RUNS: usize = 20;
const CONNECTIONS: usize = 100;
const MESSAGE: usize = 4096;
const LIMIT_MS: f64 = 100.0;

/// Reads everything until EOF; `Some(bytes)` on a clean EOF, `None` on an error (e.g. RST).
fn read_to_eof(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    c.read_to_end(&mut all).ok().map(|_| all)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut times = Vec::new();
        let mut internal = Vec::new();
        let mut problems = Vec::new();
        let mut drained_total = 0usize;
        for run in 0..RUNS {
            let server =
                ServerProcess::spawn(&[], &["--quiet", "--json-report"], Duration::from_secs(10))?;
            let mut clients: Vec<TcpStream> = (0..CONNECTIONS)
                .map(|_| lab::connect(server.addr, Duration::from_secs(10)))
                .collect::<Result<_, _>>()?;
            for c in &mut clients {
                echo_round_trip(c, b"live")?; // accepted and served
            }
            for (i, c) in clients.iter_mut().enumerate() {
                c.write_all(&pattern(MESSAGE, (run + i) as u8))?; // in flight at the signal
            }
            let (status, took, out) = server.terminate(Duration::from_secs(5))?;
            let report: serde_json::Value =
                serde_json::from_str(out.last().map_or("{}", String::as_str))
                    .map_err(std::io::Error::other)?;
            if !status.success() {
                problems.push(format!("run {run}: exit {status}"));
            }
            if report["fds"]["open_at_exit"].as_u64() != Some(0) {
                problems.push(format!(
                    "run {run}: {} fds open at exit",
                    report["fds"]["open_at_exit"]
                ));
            }
            if report["shutdown"]["connections_closed"].as_u64() != Some(CONNECTIONS as u64) {
                problems.push(format!(
                    "run {run}: shutdown closed {} connections",
                    report["shutdown"]["connections_closed"]
                ));
            }
            let mut drained = 0;
            for (i, c) in clients.iter_mut().enumerate() {
                if read_to_eof(c).is_some_and(|got| got == pattern(MESSAGE, (run + i) as u8)) {
                    drained += 1;
                }
            }
            if drained != CONNECTIONS {
                problems.push(format!(
                    "run {run}: {drained}/{CONNECTIONS} clients got their full echo and a clean EOF"
                ));
            }
            drained_total += drained;
            internal.push(report["shutdown"]["took_us"].as_f64().unwrap_or(f64::NAN) / 1e3);
            times.push(took.as_secs_f64() * 1e3);
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        let mut sorted = times.clone();
        let median = lab::quantile(&mut sorted, 0.5);
        let max_internal = internal.iter().copied().fold(0.0, f64::max);
        if max > LIMIT_MS {
            problems.push(format!("worst {max:.1} ms > {LIMIT_MS} ms"));
        }
        let pass = problems.is_empty();
        lab::print_check_measured(
            pass,
            lab::round(max, 1),
            "ms",
            &format!(
                "worst of {RUNS} runs, SIGTERM → process exit (waitpid) with {CONNECTIONS} live connections, each with a \
                 {MESSAGE}-byte message in flight: max {max:.1} ms, median {median:.1} ms (limit {LIMIT_MS} ms); in-process \
                 shutdown sequence max {max_internal:.1} ms; {drained_total}/{} clients drained (full echo, then FIN); \
                 every run exit 0 with 0 fds open at exit{}; runs (ms): [{}]",
                RUNS * CONNECTIONS,
                if pass {
                    String::new()
                } else {
                    format!("; FAILED: {}", problems.join("; "))
                },
                times
                    .iter()
                    .map(|t| format!("{t:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        );
        Ok(())
    })
}
