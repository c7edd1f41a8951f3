//! Exit check `concurrent_1000_served`: 1,000 connections held open at once, one server thread
//! each, every one completing two echo exchanges (one after all are open). Prints
//! `{"measured": N, "unit": "connections", …}`: the connections that completed both exchanges
//! while all 1,000 threads were alive, or fewer if anything failed.

use std::time::Duration;

use m03_thread_per_conn::EchoFactory;
use m03_thread_per_conn::lab::{self, RunningServer, echo_round_trip, open_clients, pattern};

const CONNECTIONS: usize = 1000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::raise_nofile()?;
        let server = RunningServer::start(lab::quiet_config(), EchoFactory::default())?;
        let (mut clients, open_errors) =
            open_clients(server.addr, CONNECTIONS, Duration::from_secs(10));
        let live = server.stats.snapshot();
        let mut second_errors = 0;
        for (i, c) in clients.iter_mut().enumerate() {
            if echo_round_trip(c, &pattern(512, i as u8)).is_err() {
                second_errors += 1;
            }
        }
        let held = clients.len();
        drop(clients);
        let report = server.stop()?;
        let served = held
            .saturating_sub(second_errors)
            .min(live.threads_live as usize);
        let measured = if open_errors + second_errors == 0 {
            served
        } else {
            served.min(held - open_errors - second_errors)
        };
        lab::print_measured(
            measured as f64,
            "connections",
            &format!(
                "{held} connections held at once; {} connection threads alive while held (peak {}); \
                 errors: {open_errors} opening/first exchange, {second_errors} second exchange; \
                 server closes: {:?}; refused {}; panics {}",
                live.threads_live,
                report.stats.threads_peak,
                report.stats.closes,
                report.stats.refused_cap + report.stats.spawn_failures,
                report.stats.panics
            ),
        );
        Ok(())
    })
}
