//! Experiment `kernel_vs_user_cpu_time`: the echo_server's user vs system CPU time (getrusage
//! over `run`) for small and large messages.

use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, Table, round};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let mut t = Table::new(
            "Kernel vs user CPU time of the echo server (getrusage)",
            &[
                "message (bytes)",
                "clients",
                "messages",
                "MB echoed",
                "user ms",
                "system ms",
                "system share %",
                "CPU µs per message",
            ],
        );
        for (size, rounds) in [(64usize, 2000usize), (4096, 1000), (65536, 200)] {
            let rounds = if quick { rounds / 5 } else { rounds };
            let server =
                ServerProcess::spawn(&[], &["--quiet", "--json-report"], Duration::from_secs(10))?;
            let stats = lab::drive(server.addr, 10, rounds, size)?;
            let (_, _, out) = server.terminate(Duration::from_secs(10))?;
            let report: serde_json::Value =
                serde_json::from_str(out.last().map_or("{}", String::as_str))
                    .map_err(std::io::Error::other)?;
            let user = report["cpu"]["user_us"].as_f64().unwrap_or(0.0);
            let sys = report["cpu"]["system_us"].as_f64().unwrap_or(0.0);
            t.rows.push(vec![
                size.into(),
                10.into(),
                stats.messages.into(),
                round(stats.bytes as f64 / 1e6, 2).into(),
                round(user / 1e3, 1).into(),
                round(sys / 1e3, 1).into(),
                round(100.0 * sys / (user + sys).max(1.0), 1).into(),
                round((user + sys) / stats.messages as f64, 2).into(),
            ]);
        }
        t.notes = format!(
            "A fresh echo_server per row, 10 connections in lock-step rounds; CPU from \
             getrusage(RUSAGE_SELF) over EchoServer::run (reported with --json-report). The server \
             does almost nothing in user space (move bytes from recv to send): nearly all its CPU \
             time is the kernel's (syscall entry, socket locking, copying, the loopback TCP stack), \
             which is what later milestones attack (fewer syscalls, epoll, io_uring, zero copy). \
             The kernel splits CPU time into user and system by sampling at timer ticks, so a few \
             milliseconds of user time can read as 0. \
             Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
