//! Exit check `single_thread_conns_held`: 10,000 connections held at once by one event loop
//! in a process with exactly one thread, each having completed a request.
//!
//! The server is this example's `--server` mode in a child process (m09's `EpollServer`, one
//! worker: the loop runs on the process's only thread; m08's HTTP/1.1 session; idle timeout
//! raised to 300 s so held connections stay). Four holder processes open 2,500 connections
//! each from 127.0.0.2-5 (RLIMIT_NOFILE is 20,000 per process) and ask `GET /plaintext` on
//! each. Measured: connections that answered 200 *and* are open at the server at the same
//! time (the server's open gauge, minus the `/stats` connection), or 0 if the server process
//! has more than one thread.

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use m08_http11::lab::{print_measured, run_main};

const TOTAL: usize = 10_000;
const PROCS: usize = 4;

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let server = support::spawn_server(&[])?;
        let started = Instant::now();
        let holders = support::Holders::open(server.addr, TOTAL, PROCS)?;
        let ramp = started.elapsed();
        let ready = holders.ready;
        let threads = server.threads()?;
        let stats = server.stats()?;
        let open = support::driver(&stats, "open") as usize;
        let held = open.saturating_sub(1); // the /stats request's own connection
        let threads_after = server.threads()?;
        let rss = server.rss_kib();
        let iter_p99 = support::driver(&stats, "iteration_p99_ns") / 1e3;
        holders.release();
        server.stop()?;
        let single = threads == 1 && threads_after == 1;
        let measured = if single { held.min(ready) } else { 0 };
        let detail = format!(
            "{} of {TOTAL} connections answered GET /plaintext (200) in {:.1} s from {PROCS} holder processes; server held {held} open at once; server process threads {threads} (before /stats) and {threads_after} (after); RSS {rss} KiB ({:.1} KiB/conn); loop iteration p99 over the ramp {iter_p99:.0} us",
            ready,
            ramp.as_secs_f64(),
            rss as f64 / held.max(1) as f64
        );
        eprintln!("{detail}");
        print_measured(measured as f64, "connections", &detail);
        Ok(())
    })
}
