//! Experiment `fd_usage_vs_limit`: descriptors held by the echo_server (/proc/PID/fd) as
//! connections open, against RLIMIT_NOFILE, and after they close.

use std::net::TcpStream;
use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, Table, echo_round_trip, round, wait_until};

fn soft_limit(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let steps: &[usize] = if lab::quick() {
            &[0, 10, 50, 100]
        } else {
            &[0, 10, 100, 500, 1000]
        };
        let server = ServerProcess::spawn(&[], &["--quiet"], Duration::from_secs(10))?;
        let limit = soft_limit(server.server_pid());
        let baseline = server.fd_count()?;
        let mut t = Table::new(
            "File descriptor usage vs RLIMIT_NOFILE (echo_server, /proc/PID/fd)",
            &[
                "phase",
                "client connections",
                "server fds",
                "fds per connection",
                "RLIMIT_NOFILE (soft)",
                "% of limit",
            ],
        );
        let push = |t: &mut Table, phase: &str, conns: usize, fds: usize| {
            let per = if conns == 0 {
                0.0
            } else {
                (fds - baseline.min(fds)) as f64 / conns as f64
            };
            t.rows.push(vec![
                phase.into(),
                conns.into(),
                fds.into(),
                round(per, 2).into(),
                limit.into(),
                round(100.0 * fds as f64 / limit.max(1) as f64, 2).into(),
            ]);
        };
        let mut clients: Vec<TcpStream> = Vec::new();
        for &n in steps {
            while clients.len() < n {
                let mut c = lab::connect(server.addr, Duration::from_secs(10))?;
                echo_round_trip(&mut c, b"fd")?; // accepted for sure
                clients.push(c);
            }
            push(&mut t, "open", n, server.fd_count()?);
        }
        drop(clients);
        wait_until(Duration::from_secs(10), || {
            server.fd_count().is_ok_and(|c| c == baseline)
        });
        push(&mut t, "after all closed", 0, server.fd_count()?);
        server.terminate(Duration::from_secs(10))?;
        t.notes = format!(
            "One echo_server; connections are added in steps, each confirmed by an echo, and the \
             server's /proc/PID/fd is counted. Baseline {baseline} = stdin/stdout/stderr, the listener, \
             the self-pipe's two ends and the reserve descriptor on /dev/null. Each connection costs \
             exactly one descriptor; the soft limit is where accept4 fails with EMFILE (see the \
             fd_exhaustion experiment). After the clients close, the count returns to the baseline: \
             no leak. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
