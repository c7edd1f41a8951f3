//! Experiment: level- vs edge-triggered epoll, and `EPOLLONESHOT`: throughput, latency and the
//! system calls each mode spends per request (counted by the loop: `epoll_wait`, `recv`, `send`,
//! `epoll_ctl(MOD)`), for keep-alive and 16-deep pipelined `GET /plaintext` over 64 connections.
//!
//! One server per mode (this example's `--server` mode in a child process: one loop, m08's
//! HTTP/1.1). `--quick`: 0.5 s per run instead of 5.

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{Table, machine, quick, run_main};
use support::{Run, r, summary};

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let secs = if quick() { "0.5" } else { "5" };
        let mut t = Table::new(
            "Triggering modes: level, edge, level + EPOLLONESHOT (one loop, 64 connections)",
            &[
                "mode",
                "load",
                "rps",
                "p99 us",
                "epoll_wait/req",
                "recv/req",
                "send/req",
                "epoll_ctl MOD/req",
                "spurious reads",
                "syscalls/req",
            ],
        );
        let modes: [(&str, &[&str]); 4] = [
            ("level", &["--trigger", "level"]),
            ("edge", &["--trigger", "edge"]),
            ("level+oneshot", &["--trigger", "level", "--oneshot"]),
            ("edge+oneshot", &["--trigger", "edge", "--oneshot"]),
        ];
        for (name, flags) in modes {
            let server = support::spawn_server(flags)?;
            for (load, pipeline) in [("keep-alive", "1"), ("pipeline 16", "16")] {
                let run = Run::plaintext(
                    &server,
                    &[
                        "-c",
                        "64",
                        "--pipeline",
                        pipeline,
                        "--pipeline-mode",
                        "batch",
                        "-d",
                        secs,
                    ],
                )?;
                let (rps, _, p99, _, _) = summary(&run.report);
                let calls = ["iterations", "reads", "writes", "modifications"]
                    .iter()
                    .map(|c| run.per_request(c))
                    .sum::<f64>();
                eprintln!("{name} {load}: {rps:.0} rps, {calls:.2} syscalls/req");
                t.rows.push(vec![
                    name.into(),
                    load.into(),
                    r(rps, 0),
                    r(p99, 0),
                    r(run.per_request("iterations"), 3),
                    r(run.per_request("reads"), 3),
                    r(run.per_request("writes"), 3),
                    r(run.per_request("modifications"), 3),
                    r(run.delta("spurious_reads"), 0),
                    r(calls, 3),
                ]);
            }
            server.stop()?;
        }
        t.notes = format!(
            "zyphos-load -c 64 (batch pipelining), {secs} s per run, GET /plaintext, one server process per mode (m09 EpollServer, 1 loop, m08 HTTP/1.1). Per-request counts are the loop's own counters (epoll_wait = iterations, recv, send, epoll_ctl MOD) divided by the requests the client saw. Level-triggered registers READ once and changes interest only under backpressure; edge-triggered registers READ|WRITE once and never modifies, and must read until the socket is drained: a short read proves it is (no extra recv that finds EAGAIN), a full one puts the connection on the ready list for the next turn (spurious reads counts the EAGAINs); oneshot re-arms with one epoll_ctl(MOD) after every event. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
