//! Experiment `thundering_herd`: N threads wait for connections on one shared listener;
//! connections arrive one at a time. Wake-ups and failed accepts per connection, by how the
//! threads wait. Prints one JSON table.

use m03_thread_per_conn::lab::{self, Table, experiments, round};
use serde_json::json;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let conns = if quick { 40 } else { 200 };
        let thread_counts: &[usize] = if quick { &[8] } else { &[8, 32] };
        let mut t = Table::new(
            "Thundering herd on a shared accept: wake-ups per connection",
            &[
                "mode",
                "threads",
                "connections",
                "accepted",
                "wakeups_per_conn",
                "failed_accepts_per_conn",
            ],
        );
        for &n in thread_counts {
            for mode in experiments::HERD_MODES {
                if mode == "single_acceptor" && n != thread_counts[0] {
                    continue;
                }
                let (w, a, f) = experiments::herd(mode, n, conns)?;
                t.rows.push(vec![
                    json!(mode),
                    json!(if mode == "single_acceptor" { 1 } else { n }),
                    json!(conns),
                    json!(a),
                    json!(round(w as f64 / conns as f64, 2)),
                    json!(round(f as f64 / conns as f64, 2)),
                ]);
            }
        }
        t.notes = format!(
            "Connections arrive one at a time (the next after the previous was accepted). \
             blocking_accept: threads sleep in accept(2), which waits exclusively: one wake-up \
             per connection. poll_shared / epoll_shared: every thread polls the same listener; \
             each connection wakes all of them and all but one get EAGAIN from accept4 (the \
             herd). epoll_exclusive: EPOLLEXCLUSIVE wakes one (or a few) waiters. \
             single_acceptor: one thread accepts and hands connections out (this driver's \
             design). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
