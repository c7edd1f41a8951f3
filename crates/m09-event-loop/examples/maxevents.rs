//! Experiment: the `maxevents` of `epoll_wait` (events returned per wait): 1, 8, 64, 256, 1024
//! with 256 busy keep-alive connections. Fewer events per wait = more waits per request;
//! more = longer iterations (the tail every connection in the batch waits behind).
//!
//! One server per value (this example's `--server --max-events N` in a child process).
//! `--quick`: 1 s per run instead of 4.

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{Table, machine, quick, run_main};
use support::{Run, r, summary};

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let secs = if quick() { "1" } else { "4" };
        let mut t = Table::new(
            "epoll_wait maxevents sweep (one loop, 256 keep-alive connections)",
            &[
                "maxevents",
                "rps",
                "p50 us",
                "p99 us",
                "mean events/wait",
                "epoll_wait/req",
                "iteration p50 us",
                "iteration p99 us",
            ],
        );
        for max in ["1", "8", "64", "256", "1024"] {
            let server = support::spawn_server(&["--max-events", max])?;
            let run = Run::plaintext(&server, &["-c", "256", "-d", secs])?;
            server.stop()?;
            let (rps, p50, p99, _, _) = summary(&run.report);
            let waits = run.delta("iterations");
            let events = run.delta("events");
            eprintln!("maxevents {max}: {rps:.0} rps");
            t.rows.push(vec![
                max.parse::<u64>().unwrap_or(0).into(),
                r(rps, 0),
                r(p50, 0),
                r(p99, 0),
                r(events / waits.max(1.0), 1),
                r(run.per_request("iterations"), 3),
                r(run.window_us("window_p50_ns"), 1),
                r(run.window_us("window_p99_ns"), 1),
            ]);
        }
        t.notes = format!(
            "zyphos-load -c 256 closed loop, GET /plaintext keep-alive, {secs} s per value; one m09 server process per value. Iteration = handling one wait's events (the wait excluded), from the loop's histogram over the run. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
