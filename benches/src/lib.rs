//! `zyphos-load`: the Zyphos load generator, as a library (used by `cargo xtask`) and a binary.
//!
//! It drives TCP echo, HTTP/1.0 (a connection per request) and HTTP/1.1 (keep-alive, pipelined
//! to depth N) load, closed loop (N connections as fast as responses come back) or open loop
//! (a fixed request rate, latency measured from each request's *intended* send time so that
//! coordinated omission does not hide stalls), and reports HdrHistogram latencies, errors by
//! kind and byte counts as one [`Report`]. Every run is bounded by time (and optionally by a
//! request count) and stops by itself.
//!
//! # Map
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`config`] | [`LoadConfig`] and its validation; parsers for durations, CPU lists, source-address ranges, targets |
//! | [`wire`] | the request bytes and the strict incremental HTTP/1.x response parser (sans-IO) |
//! | `client` | the engine: one mio event loop per thread, [`run`] |
//! | `stats` | per-thread HdrHistogram and counters, [`ErrorKind`] |
//! | [`report`] | [`Report`], the JSON document `--json` prints and xtask reads |
//! | [`sink`] | a one-thread canned-response server: the generator's own ceiling, and the tests' peer |
//! | [`peers`] | nginx and wrk as real peers: start, pin, wait, stop; run wrk and parse its output |
//! | [`calibrate`] | the evidence run: zyphos-load vs wrk on nginx, and the generator's ceiling on sink |
//! | `sys` | the only `unsafe`: `IP_BIND_ADDRESS_NO_PORT`, `sched_setaffinity`, `getrlimit`, timerfd, `kill` |
//!
//! # The public interface
//!
//! Build a [`LoadConfig`], call [`run`], read the [`Report`]:
//!
//! ```no_run
//! let mut config = zyphos_load::LoadConfig::new("127.0.0.1:8080".parse()?);
//! config.path = "/plaintext".into();
//! config.pipeline = 16;
//! let report = zyphos_load::run(&config)?;
//! println!("{:.0} requests/s, p99 {:.0} µs", report.rps, report.latency.p99_us);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calibrate;
mod client;
pub mod config;
pub mod peers;
pub mod report;
pub mod sink;
mod stats;
mod sys;
pub mod wire;

pub use client::{RunError, run};
pub use config::{ConfigError, LoadConfig, PipelineMode, Scenario};
pub use report::{Latency, Report};
pub use sink::{Sink, SinkMode, SinkOptions};
pub use stats::ErrorKind;

/// Pin the calling thread to `cpus` (children spawned from it afterwards inherit the mask).
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    sys::pin_current_thread(cpus)
}
