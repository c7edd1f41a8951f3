//! Experiment: latency and loop iteration time as connections grow (100, 1,000, 10,000) at the
//! same offered load (an open-loop 20,000 requests/s in total, spread over the connections).
//! With epoll, what grows with the connection count is memory, not per-request work.
//!
//! One server (this example's `--server` mode in a child process), one zyphos-load run per
//! count from 127.0.0.10-13. `--quick`: 100 and 1,000 connections, 2 s each (full: 6 s, after a 2 s warm-up).

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{Table, machine, quick, run_main};
use support::{Run, r, summary};

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let (secs, counts): (&str, &[&str]) = if quick() {
            ("2", &["100", "1000"])
        } else {
            ("6", &["100", "1000", "10000"])
        };
        let warmup = if quick() { "0.5" } else { "2" };
        let mut t = Table::new(
            "Latency and loop iteration time vs connections (open loop, 20,000 req/s in total)",
            &[
                "connections",
                "rps",
                "p50 us",
                "p99 us",
                "p99.9 us",
                "errors",
                "iteration p50 us",
                "iteration p99 us",
                "CPU us/req",
                "server RSS KiB",
            ],
        );
        let server = support::spawn_server(&[])?;
        for c in counts {
            let run = Run::plaintext(
                &server,
                &[
                    "-c",
                    c,
                    "-r",
                    "20000",
                    "-d",
                    secs,
                    "--source-ips",
                    "127.0.0.10-127.0.0.13",
                ],
            )?;
            let (rps, p50, p99, p999, errors) = summary(&run.report);
            eprintln!("{c} connections: {rps:.0} rps, p99 {p99:.0} us");
            t.rows.push(vec![
                c.parse::<u64>().unwrap_or(0).into(),
                r(rps, 0),
                r(p50, 0),
                r(p99, 0),
                r(p999, 0),
                r(errors, 0),
                r(run.window_us("window_p50_ns"), 1),
                r(run.window_us("window_p99_ns"), 1),
                r(run.cpu_s / run.requests() * 1e6, 2),
                server.rss_kib().into(),
            ]);
        }
        server.stop()?;
        t.notes = format!(
            "zyphos-load -r 20000 (open loop: latency from each request's scheduled send time) over N keep-alive connections, GET /plaintext, {secs} s per row after {warmup} s of unrecorded warm-up (the connection ramp), one m09 server process (1 loop, m08 HTTP/1.1). Iteration times from the loop's histogram over each run; CPU = server utime+stime / requests. The load generator shares the 2 cores. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
