//! Exit check `concurrent_100_fd_leak`: an echo_server process serves 10 rounds of 100
//! concurrent connections; after each round its descriptor count (/proc/PID/fd) must be back to
//! the baseline (measured: the largest excess, in fds; threshold == 0) and its resident memory
//! must not grow beyond 1 MiB over the rounds (reported in the detail; `pass` is false if not).
//! Heap leaks proper are the valgrind check's job.

use std::net::TcpStream;
use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, echo_round_trip, pattern, wait_until};

const CONNECTIONS: usize = 100;
const ROUNDS: usize = 10;
/// Allowed RSS growth between the first and the last measured round.
const RSS_BOUND_KIB: u64 = 1024;

fn round_of_100(server: &ServerProcess, round: usize) -> std::io::Result<()> {
    let mut clients: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| lab::connect(server.addr, Duration::from_secs(10)))
        .collect::<Result<_, _>>()?;
    for _ in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            echo_round_trip(c, &pattern(1024, (round * CONNECTIONS + i) as u8))?;
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let server =
            ServerProcess::spawn(&[], &["--quiet", "--json-report"], Duration::from_secs(10))?;
        let baseline_fds = server.fd_count()?;
        // Warm-up round: first-touch allocations (records queue, allocator arenas) happen here.
        round_of_100(&server, 0)?;
        let back = |s: &ServerProcess| {
            wait_until(Duration::from_secs(10), || {
                s.fd_count().is_ok_and(|n| n == baseline_fds)
            })
        };
        let mut problems = Vec::new();
        if !back(&server) {
            problems.push(format!(
                "after warm-up: {} fds, baseline {baseline_fds}",
                server.fd_count()?
            ));
        }
        let rss_start = server.rss_kib()?;
        let mut peak_fds = 0;
        let mut leftover = 0usize;
        for r in 1..=ROUNDS {
            let clients: Vec<TcpStream> = (0..CONNECTIONS)
                .map(|_| lab::connect(server.addr, Duration::from_secs(10)))
                .collect::<Result<_, _>>()?;
            // All 100 open at once: echo on each, then count the server's descriptors.
            let mut clients = clients;
            for (i, c) in clients.iter_mut().enumerate() {
                echo_round_trip(c, &pattern(1024, (r * CONNECTIONS + i) as u8))?;
            }
            peak_fds = peak_fds.max(server.fd_count()?);
            drop(clients);
            if !back(&server) {
                let now = server.fd_count()?;
                leftover = leftover.max(now.saturating_sub(baseline_fds));
                problems.push(format!(
                    "round {r}: {now} fds after close, baseline {baseline_fds}"
                ));
            }
        }
        let rss_end = server.rss_kib()?;
        let growth = rss_end.saturating_sub(rss_start);
        if growth > RSS_BOUND_KIB {
            problems.push(format!(
                "RSS grew {growth} KiB over {ROUNDS} rounds (bound {RSS_BOUND_KIB} KiB)"
            ));
        }
        if peak_fds < baseline_fds + CONNECTIONS {
            problems.push(format!(
                "peak {peak_fds} fds: the 100 connections were not open at once"
            ));
        }
        let (status, took, out) = server.terminate(Duration::from_secs(10))?;
        let report: serde_json::Value =
            serde_json::from_str(out.last().map_or("{}", String::as_str))
                .map_err(std::io::Error::other)?;
        let accepted = report["counters"]["accepted"].as_u64().unwrap_or(0);
        let closed = report["counters"]["closed"].as_u64().unwrap_or(0);
        let expected = ((ROUNDS + 1) * CONNECTIONS) as u64;
        if !status.success() {
            problems.push(format!("exit status {status}"));
        }
        if accepted != expected || closed != expected {
            problems.push(format!(
                "accepted {accepted}, closed {closed}, expected {expected}"
            ));
        }
        if report["fds"]["open_at_exit"].as_u64() != Some(0) {
            problems.push(format!("open at exit: {}", report["fds"]["open_at_exit"]));
        }
        if report["counters"]["peak_active"].as_u64() != Some(CONNECTIONS as u64) {
            problems.push(format!("peak active {}", report["counters"]["peak_active"]));
        }
        let detail = format!(
            "server fds left over after a round: max {leftover} (over baseline {baseline_fds}); {ROUNDS} rounds (+1 warm-up) of {CONNECTIONS} concurrent connections, 1 KiB echoes on each; \
             server fds baseline {baseline_fds}, peak {peak_fds}, back to {baseline_fds} after every round; \
             RSS {rss_start} → {rss_end} KiB (growth {growth} KiB, bound {RSS_BOUND_KIB} KiB; the ring of the last 1,024 connection records fills during these rounds, then stays that size); \
             accepted {accepted}, closed {closed}, open at exit {}; SIGTERM exit in {:.1} ms{}",
            report["fds"]["open_at_exit"],
            took.as_secs_f64() * 1e3,
            if problems.is_empty() {
                String::new()
            } else {
                format!("; FAILED: {}", problems.join("; "))
            }
        );
        lab::print_check_measured(problems.is_empty(), leftover as f64, "fds", &detail);
        Ok(())
    })
}
