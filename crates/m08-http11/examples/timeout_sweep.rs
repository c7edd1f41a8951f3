//! Experiment: the keep-alive / header / request timeout sweep (virtual time over the real
//! session; see `m08_http11::sweep`). Prints one table; `--quick` uses fewer clients.

use m08_http11::lab::{Table, machine, quick, round, run_main};
use m08_http11::sweep::{CLIENTS, TARGET_COMPLETE, TARGET_IDLE_HIT, sweep};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let clients = if quick() { 200 } else { CLIENTS };
        let (idle, slow, picks) = sweep(clients);
        let mut t = Table::new(
            "Timeout sweep: success share vs cost per candidate timeout",
            &[
                "timeout_s",
                "keepalive_hit_%",
                "reuse_%",
                "idle_conn_s_per_req",
                "heads_complete_%",
                "requests_complete_%",
                "slowloris_hold_s",
                "picked",
            ],
        );
        for (i, s) in idle.iter().zip(slow.iter()) {
            let mut picked = Vec::new();
            if i.timeout == picks.idle {
                picked.push("idle");
            }
            if s.timeout == picks.header {
                picked.push("header");
            }
            if s.timeout == picks.request {
                picked.push("request");
            }
            t.rows.push(vec![
                i.timeout.as_secs().into(),
                round(100.0 * i.hit_rate, 2).into(),
                round(100.0 * i.reuse, 2).into(),
                round(i.idle_conn_s_per_request, 3).into(),
                round(100.0 * s.heads_complete, 2).into(),
                round(100.0 * s.requests_complete, 2).into(),
                s.slowloris_hold_s.into(),
                picked.join("+").into(),
            ]);
        }
        t.notes = format!(
            "{clients} simulated clients per candidate, seeded, run through the real Http11Session in virtual time. \
             Idle: 10 requests per client, log-normal think time (median 0.5 s, sigma 1); rule: smallest timeout with keep-alive hit >= {}%. \
             Header/request: slow links (log-normal rate, median 16 KiB/s, sigma 1.5), 200 B-4 KiB head, 0-64 KiB body; rule: smallest timeout with >= {}% complete. \
             Picks: idle {} s, header {} s, request {} s. Cost columns: idle connection-seconds held per request; seconds a slowloris holds a connection. {}",
            100.0 * TARGET_IDLE_HIT,
            100.0 * TARGET_COMPLETE,
            picks.idle.as_secs(),
            picks.header.as_secs(),
            picks.request.as_secs(),
            machine()
        );
        t.print();
        Ok(())
    })
}
