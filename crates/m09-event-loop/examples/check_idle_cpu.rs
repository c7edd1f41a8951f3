//! Exit check `idle_conn_cpu_ratio`: does an idle connection cost CPU? Server CPU per request
//! with 100 active + 9,900 idle connections, divided by the same with 100 active alone, in the
//! same server process.
//!
//! Server: this example's `--server` mode in a child process (one loop, m08's HTTP/1.1, idle
//! timeout 300 s). Each phase: `zyphos-load -c 100 -r 20000` (open loop, a fixed 20,000
//! requests/s of keep-alive `GET /plaintext`) for 8 s; server CPU = utime + stime from
//! /proc/PID/stat around it. Phase A: no other connection. Phase B: 9,900 idle connections
//! held by 4 holder processes (each answered one request first), released after the phase.
//! A B A B; the ratio is of the means. Then, for the detail, 400 active + 9,900 idle at the same
//! total rate (CPU follows the *work*, not the connection count).
//!
//! Fails (no figure printed, non-zero exit) when any phase did not measure what it claims:
//! fewer than 9,900 idle connections held in a phase that needs them, any request of any phase
//! errored, or a phase achieved under 95 % of the offered 20,000 req/s (a phase that fell
//! behind measured a different load from the phase it is compared with).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;

use m08_http11::lab::{print_measured, run_main};
use m09_event_loop::lab::ServerChild;

const RATE: &str = "20000";
const SECS: &str = "6";
const ROUNDS: usize = 2;
/// Idle connections held in the B phases.
const IDLE: usize = 9_900;
/// The offered rate as a number, and the share of it a phase must achieve.
const OFFERED: f64 = 20_000.0;
const MIN_SHARE: f64 = 0.95;

/// What one phase measured: CPU µs/request, req/s, client p99 µs.
type Phase = (f64, f64, f64);

/// The phase's figures, or why the phase does not count.
fn validated(what: &str, r: &serde_json::Value) -> std::io::Result<(f64, f64)> {
    let (rps, _, p99, _, errors) = support::summary(r);
    if errors > 0.0 || rps < MIN_SHARE * OFFERED {
        return Err(std::io::Error::other(format!(
            "{what}: {rps:.0} req/s of {OFFERED:.0} offered (need {:.0} %), {errors} errors",
            MIN_SHARE * 100.0
        )));
    }
    Ok((rps, p99))
}

/// Fails unless the holders hold every idle connection asked for.
fn held(holders: &support::Holders) -> std::io::Result<usize> {
    if holders.ready < IDLE {
        return Err(std::io::Error::other(format!(
            "only {} of {IDLE} idle connections held",
            holders.ready
        )));
    }
    Ok(holders.ready)
}

fn phase(server: &ServerChild, addr: SocketAddr, conns: &str) -> std::io::Result<Phase> {
    let cpu0 = server.cpu_s()?;
    let r = support::load_http(
        addr,
        "/plaintext",
        &[
            "-c",
            conns,
            "-r",
            RATE,
            "-d",
            SECS,
            "--source-ips",
            "127.0.0.10-127.0.0.11",
        ],
    )?;
    let cpu = server.cpu_s()? - cpu0;
    let (rps, p99) = validated(&format!("{conns} active connections"), &r)?;
    let requests = rps * SECS.parse::<f64>().unwrap_or(1.0);
    Ok((cpu / requests.max(1.0) * 1e6, rps, p99))
}

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let server = support::spawn_server(&[])?;
        let addr = server.addr;
        // A B A B: without idle, with 9,900 idle, twice, so that drift on a shared machine
        // does not fall on one side only; the ratio is of the two sides' means.
        let mut alone = Vec::new();
        let mut with_idle = Vec::new();
        let mut idle = 0;
        for _ in 0..ROUNDS {
            alone.push(phase(&server, addr, "100")?);
            let holders = support::Holders::open(addr, IDLE, 4)?;
            idle = held(&holders)?;
            with_idle.push(phase(&server, addr, "100")?);
            holders.release();
            // Let the loop finish closing them before the next phase measures.
            m09_event_loop::lab::wait_until(std::time::Duration::from_secs(20), || {
                server
                    .stats()
                    .is_ok_and(|s| support::driver(&s, "open") <= 2.0)
            });
        }
        let holders = support::Holders::open(addr, IDLE, 4)?;
        held(&holders)?;
        let (c_us, c_rps, _) = phase(&server, addr, "400")?;
        holders.release();
        server.stop()?;
        let mean = |v: &[Phase]| v.iter().map(|p| p.0).sum::<f64>() / v.len().max(1) as f64;
        let (a_us, b_us) = (mean(&alone), mean(&with_idle));
        let ratio = b_us / a_us.max(1e-9);
        let show = |v: &[Phase]| {
            v.iter()
                .map(|(us, rps, p99)| format!("{us:.2} us ({rps:.0} rps, p99 {p99:.0} us)"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let detail = format!(
            "server CPU per request at {RATE} req/s offered, {SECS} s per phase, A B A B: 100 active alone {}; 100 active + {idle} idle {}; means {a_us:.2} vs {b_us:.2} us, ratio {ratio:.3}; then 400 active + 9,900 idle {c_us:.2} us ({c_rps:.0} rps)",
            show(&alone),
            show(&with_idle),
        );
        eprintln!("{detail}");
        print_measured(ratio, "x", &detail);
        Ok(())
    })
}
