//! Exit check `churn_leaked_resources`: 10 rounds of 1,000 connections (each opened, one echo,
//! closed) through one server, with a counting global allocator. Measures open descriptors +
//! OS threads + live heap blocks after round 10 minus after round 1 (absolute differences
//! summed). Prints `{"measured": N, "unit": "fds + threads + heap blocks", …}`.

use std::time::Duration;

use m01_raw_sockets::stats::proc_fd_count;
use m03_thread_per_conn::lab::{self, RunningServer, open_clients, wait_until};
use m03_thread_per_conn::sys::{CountingAlloc, live_blocks};
use m03_thread_per_conn::{EchoFactory, procfs};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const ROUNDS: usize = 10;
const CONNECTIONS: usize = 1000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::raise_nofile()?;
        let server = RunningServer::start(lab::quiet_config(), EchoFactory::default())?;
        // Allocated up front: a push after round 1 must not count as a leak.
        let mut marks = Vec::with_capacity(2);
        let mut errors = 0;
        for round in 1..=ROUNDS {
            let (clients, e) = open_clients(server.addr, CONNECTIONS, Duration::from_secs(10));
            errors += e;
            drop(clients);
            let target = (round * CONNECTIONS) as u64;
            let settled = wait_until(Duration::from_secs(20), || {
                let s = server.stats.snapshot();
                s.joined >= target && s.connections_live == 0 && s.live_slots == 0
            });
            if !settled {
                return Err(std::io::Error::other(format!(
                    "round {round} did not settle"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
            eprintln!(
                "round {round}: {} heap blocks {:?} (log2 size, count), {} tasks",
                live_blocks(),
                m03_thread_per_conn::sys::live_blocks_by_size(),
                procfs::task_count()?
            );
            if round == 1 || round == ROUNDS {
                marks.push((
                    proc_fd_count("self")? as i64,
                    procfs::task_count()? as i64,
                    live_blocks(),
                ));
            }
        }
        let report = server.stop()?;
        let (a, b) = (marks[0], marks[1]);
        let leaked = (b.0 - a.0).abs() + (b.1 - a.1).abs() + (b.2 - a.2).abs();
        lab::print_measured(
            leaked as f64,
            "fds + threads + heap blocks",
            &format!(
                "after round 1: {} fds, {} threads, {} heap blocks; after round {ROUNDS}: {} fds, \
                 {} threads, {} heap blocks; {} connections served, {errors} client errors, \
                 {} spawned, {} joined",
                a.0,
                a.1,
                a.2,
                b.0,
                b.1,
                b.2,
                report.stats.accepted,
                report.stats.spawned,
                report.stats.joined
            ),
        );
        Ok(())
    })
}
