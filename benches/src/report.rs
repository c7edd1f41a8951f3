//! The machine-readable result of one load run: what `zyphos-load --json` prints and what
//! `cargo xtask compare` / `race` read back.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency percentiles of one run, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest recorded latency.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// Everything one load run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name (`echo`, `http1.0`, `http1.1`, …).
    pub scenario: String,
    /// Target address.
    pub target: String,
    /// Concurrent connections.
    pub connections: u64,
    /// Client threads.
    pub threads: u64,
    /// Requests in flight per connection (1 = no pipelining).
    pub pipeline: u64,
    /// `window` (refill after every read) or `batch` (wait for the whole batch, like wrk);
    /// empty in older reports.
    #[serde(default)]
    pub pipeline_mode: String,
    /// `closed` (as fast as responses come back) or `open` (fixed rate).
    pub mode: String,
    /// Target rate in requests per second for open-loop runs.
    pub target_rate: Option<f64>,
    /// Unrecorded warm-up before the measured run, in seconds (absent in older reports).
    #[serde(default)]
    pub warmup_s: f64,
    /// Measured wall time of the run, in seconds.
    pub duration_s: f64,
    /// Completed requests (a full response was read).
    pub requests: u64,
    /// Completed requests per second.
    pub rps: f64,
    /// Bytes read from the server.
    pub bytes_read: u64,
    /// Bytes written to the server.
    pub bytes_written: u64,
    /// Errors by kind (`connect`, `reset`, `timeout`, `bad_status`, `parse`, …).
    pub errors: BTreeMap<String, u64>,
    /// Latency distribution. In open-loop mode it is measured from the *intended* send time,
    /// so coordinated omission does not hide stalls.
    pub latency: Latency,
}

impl Report {
    /// A few lines for people: what ran, throughput, latency percentiles, bytes, errors.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let mode = match self.target_rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            s,
            "zyphos-load: {} {mode}, {} connections, {} thread(s), pipeline {} -> {} for {:.2} s",
            self.scenario,
            self.connections,
            self.threads,
            self.pipeline,
            self.target,
            self.duration_s
        );
        let _ = writeln!(s, "  requests  {}  ({:.1}/s)", self.requests, self.rps);
        let l = &self.latency;
        let basis = if self.target_rate.is_some() {
            " (from intended send time)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}{basis}",
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.p999_us),
            fmt_us(l.max_us),
            fmt_us(l.mean_us)
        );
        let _ = writeln!(
            s,
            "  bytes     read {}  written {}",
            self.bytes_read, self.bytes_written
        );
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "  errors    {errors}");
        s
    }
}

/// Microseconds as `850us`, `1.25ms` or `2.50s`.
fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}
