//! Experiment `context_switches_per_request`: voluntary and non-voluntary context switches of
//! the server's threads per echo request, by concurrency and message size, read from
//! `/proc/self/task/TID/status`. Prints one JSON table.

use std::time::Duration;

use m03_thread_per_conn::ThreadMode;
use m03_thread_per_conn::lab::{self, Table, experiments, round};
use serde_json::json;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::raise_nofile()?;
        let quick = lab::quick();
        let clients: &[usize] = if quick {
            &[1, 10, 50]
        } else {
            &[1, 10, 100, 500]
        };
        let duration = Duration::from_millis(if quick { 200 } else { 1000 });
        let mut t = Table::new(
            "Context switches per request (server threads, echo)",
            &[
                "clients",
                "message_bytes",
                "requests",
                "voluntary_per_req",
                "nonvoluntary_per_req",
                "round_trips_per_s",
            ],
        );
        for &n in clients {
            for size in [64usize, 16 * 1024] {
                let r = experiments::echo_load(ThreadMode::PerConnection, n, size, duration)?;
                t.rows.push(vec![
                    json!(n),
                    json!(size),
                    json!(r.requests),
                    json!(round(r.ctx_per_req.0, 3)),
                    json!(round(r.ctx_per_req.1, 3)),
                    json!(round(r.rps, 0)),
                ]);
            }
        }
        t.notes = format!(
            "Sums over the server's conn-* threads of voluntary_ctxt_switches (blocked: in recv \
             waiting for the next message) and nonvoluntary_ctxt_switches (preempted) from \
             /proc/self/task/TID/status, before/after {duration:?} of rounds (all clients \
             write, then all read). About one voluntary switch per request is the price of \
             blocking I/O: every request wakes a sleeping thread. Non-voluntary switches grow \
             when more threads are runnable than cores. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
