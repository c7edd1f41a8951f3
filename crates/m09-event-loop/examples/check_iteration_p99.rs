//! Exit check `loop_iteration_p99_us`: the p99 time of one loop iteration (events handled,
//! wait excluded) while one loop holds 10,000 connections of which 1,000 are busy.
//!
//! Server: this example's `--server` mode in a child process (one loop, one thread, m08's
//! HTTP/1.1, idle timeout 300 s). 9,000 idle connections (each answered one request) are held
//! by 4 holder processes; then `/mark` opens a window and `zyphos-load -c 1000 -r 20000` runs
//! keep-alive `GET /plaintext` for 10 s: 1,000 active connections, each sending 20 requests/s
//! on a fixed schedule (open loop; a closed loop would only measure how full `maxevents` makes
//! an iteration of a saturated loop: that figure is in the detail). Measured: p99 of the
//! iterations inside the open-loop window (from the loop's own histogram, bucket top: at most
//! 12.5 % high).
//!
//! Fails (no figure printed, non-zero exit) when the run did not measure what it claims: fewer
//! than 9,000 idle connections held, any request errored (in the open-loop window or in the
//! saturated run of the detail), or the window achieved under 95 % of the offered 20,000 req/s
//! (a loop that falls behind has fewer, not shorter, iterations to report).

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{print_measured, run_main};
use m09_event_loop::lab::{http_get, num};

const IDLE: usize = 9_000;
const ACTIVE: &str = "1000";
/// The offered rate as a number, and the share of it the window must achieve.
const OFFERED: f64 = 20_000.0;
const MIN_SHARE: f64 = 0.95;

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let t0 = std::time::Instant::now();
        let server = support::spawn_server(&[])?;
        let holders = support::Holders::open(server.addr, IDLE, 4)?;
        let idle_ready = holders.ready;
        eprintln!("holders ready after {:?}", t0.elapsed());
        http_get(server.addr, "/mark")?;
        let report = support::load_http(
            server.addr,
            "/plaintext",
            &[
                "-c",
                ACTIVE,
                "-r",
                "20000",
                "-d",
                "10",
                "--source-ips",
                "127.0.0.10-127.0.0.13",
            ],
        )?;
        eprintln!("load done after {:?}", t0.elapsed());
        let stats = server.stats()?;
        // The saturated case, for the detail only.
        http_get(server.addr, "/mark")?;
        let closed = support::load_http(
            server.addr,
            "/plaintext",
            &[
                "-c",
                ACTIVE,
                "-d",
                "5",
                "--source-ips",
                "127.0.0.10-127.0.0.13",
            ],
        )?;
        let sat = server.stats()?;
        let open_peak = support::driver(&stats, "open_peak");
        let threads = server.threads()?;
        holders.release();
        server.stop()?;
        eprintln!("stopped after {:?}", t0.elapsed());
        let (rps, _, p99, _, errors) = support::summary(&report);
        let sat_errors = support::summary(&closed).4;
        let it_p99_us = num(&stats, &["window_p99_ns"]) / 1e3;
        let detail = format!(
            "{} idle held + {ACTIVE} active (zyphos-load open loop 20,000 req/s, keep-alive GET /plaintext, 10 s): {:.0} rps, client p99 {:.0} us, {errors} errors; loop iterations in the window {}, p50 {:.0} us, p99 {it_p99_us:.0} us, p99.9 {:.0} us; open peak {open_peak}; server threads {threads}. Saturated (closed loop, {ACTIVE} connections, 5 s): {:.0} rps, iteration p50 {:.0} us, p99 {:.0} us, mean batch {:.0} events",
            idle_ready,
            rps,
            p99,
            num(&stats, &["window_iterations"]),
            num(&stats, &["window_p50_ns"]) / 1e3,
            num(&stats, &["window_p999_ns"]) / 1e3,
            support::summary(&closed).0,
            num(&sat, &["window_p50_ns"]) / 1e3,
            num(&sat, &["window_p99_ns"]) / 1e3,
            (support::driver(&sat, "events") - support::driver(&stats, "events"))
                / (support::driver(&sat, "iterations") - support::driver(&stats, "iterations"))
                    .max(1.0),
        );
        eprintln!("{detail}");
        if idle_ready < IDLE || errors > 0.0 || sat_errors > 0.0 || rps < MIN_SHARE * OFFERED {
            // Not the load the figure claims: no honest figure.
            return Err(std::io::Error::other(format!(
                "run incomplete ({idle_ready} of {IDLE} idle held, {errors} errors in the window, {sat_errors} in the saturated run, {rps:.0} of {OFFERED:.0} req/s, need {:.0} %): {detail}",
                MIN_SHARE * 100.0
            )));
        }
        print_measured(it_p99_us, "us", &detail);
        Ok(())
    })
}
