//! Experiment `context_switches_vs_concurrency`: the echo_server's voluntary and involuntary
//! context switches (from /proc/PID/status) while echoing the same number of messages to 1, 10
//! and 100 concurrent clients.

use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, Table, round};
use m01_raw_sockets::stats::proc_status_field;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let messages: usize = if lab::quick() { 5_000 } else { 50_000 };
        let mut t = Table::new(
            "Context switches under concurrency (echo_server, poll mode, 64-byte echoes)",
            &[
                "clients",
                "messages",
                "voluntary",
                "involuntary",
                "voluntary per 1k messages",
                "messages per poll wake-up",
                "server user ms",
                "server system ms",
            ],
        );
        for clients in [1usize, 10, 100] {
            let server =
                ServerProcess::spawn(&[], &["--quiet", "--json-report"], Duration::from_secs(10))?;
            let pid = server.server_pid().to_string();
            let v0 = proc_status_field(&pid, "voluntary_ctxt_switches")?;
            let n0 = proc_status_field(&pid, "nonvoluntary_ctxt_switches")?;
            let stats = lab::drive(server.addr, clients, messages / clients, 64)?;
            let v = proc_status_field(&pid, "voluntary_ctxt_switches")? - v0;
            let n = proc_status_field(&pid, "nonvoluntary_ctxt_switches")? - n0;
            let (_, _, out) = server.terminate(Duration::from_secs(10))?;
            let report: serde_json::Value =
                serde_json::from_str(out.last().map_or("{}", String::as_str))
                    .map_err(std::io::Error::other)?;
            let wakeups = report["counters"]["wakeups"].as_u64().unwrap_or(0).max(1);
            t.rows.push(vec![
                clients.into(),
                stats.messages.into(),
                v.into(),
                n.into(),
                round(v as f64 * 1000.0 / stats.messages as f64, 1).into(),
                round(stats.messages as f64 / wakeups as f64, 2).into(),
                round(report["cpu"]["user_us"].as_f64().unwrap_or(0.0) / 1e3, 1).into(),
                round(report["cpu"]["system_us"].as_f64().unwrap_or(0.0) / 1e3, 1).into(),
            ]);
        }
        t.notes = format!(
            "A fresh echo_server per row; one client thread in this process drives all connections \
             in lock-step rounds (every client writes, then every client reads). Voluntary switches \
             happen when the server sleeps in poll with nothing ready; with one client every message \
             is a sleep and a wake-up, with 100 clients one poll wake-up finds many sockets ready, so \
             switches per message fall. Involuntary switches are preemptions (other processes share \
             the 2 cores). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
