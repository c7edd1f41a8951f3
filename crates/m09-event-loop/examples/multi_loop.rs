//! Experiment: more than one epoll loop: one loop, two loops sharing one listener
//! (`EPOLLEXCLUSIVE`: the kernel wakes one waiter per connection) and two loops with their own
//! `SO_REUSEPORT` listeners (the kernel hashes connections over the sockets). Throughput, p99
//! and how the 200 connections split between the loops.
//!
//! This example's `--server --workers N [--reuseport]` in a child process; zyphos-load -c 200
//! closed loop, keep-alive `GET /plaintext`. `--quick`: 1 s per run (full: 5 s).

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{Table, machine, quick, run_main};
use m09_event_loop::lab::num;
use support::{Run, r, summary};

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let secs = if quick() { "1" } else { "5" };
        let mut t = Table::new(
            "Multi-thread epoll: 1 loop vs 2 loops (shared listener with EPOLLEXCLUSIVE, SO_REUSEPORT)",
            &[
                "setup",
                "rps",
                "p99 us",
                "accepted per loop (server life)",
                "requests per loop (server life)",
                "server CPU s",
            ],
        );
        let setups: [(&str, &[&str]); 3] = [
            ("1 loop", &["--workers", "1"]),
            (
                "2 loops, shared listener (EPOLLEXCLUSIVE)",
                &["--workers", "2"],
            ),
            ("2 loops, SO_REUSEPORT", &["--workers", "2", "--reuseport"]),
        ];
        for (name, flags) in setups {
            let server = support::spawn_server(flags)?;
            let run = Run::plaintext(&server, &["-c", "200", "-d", secs])?;
            server.stop()?;
            let (rps, _, p99, _, _) = summary(&run.report);
            let loops = run
                .after
                .get("loops")
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_default();
            let split = |field: &str| {
                loops
                    .iter()
                    .map(|l| format!("{}", num(l, &[field])))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            eprintln!("{name}: {rps:.0} rps, accepted {}", split("accepted"));
            t.rows.push(vec![
                name.into(),
                r(rps, 0),
                r(p99, 0),
                split("accepted").into(),
                split("session_events").into(),
                r(run.cpu_s, 2),
            ]);
        }
        t.notes = format!(
            "zyphos-load -c 200 closed loop, keep-alive GET /plaintext, {secs} s, m09 EpollServer with m08 HTTP/1.1 (this example's server mode). Two loops on a 2-core machine also share the cores with the load generator. With a shared listener EPOLLEXCLUSIVE wakes one loop per incoming connection, and the loop that is awake and accepting tends to take the next ones too (uneven, LIFO wake-ups); SO_REUSEPORT hashes each connection's 4-tuple to one listener (even on average, blind to load). {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
