//! Per-thread measurements (an HdrHistogram of latencies in nanoseconds, counters, errors by
//! kind), merged into one [`Report`] at the end of a run.

use crate::report::{Latency, Report};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io;

/// Largest latency the histograms track (two hours, in ns); larger values are clamped.
const MAX_TRACKED_NS: u64 = 2 * 3600 * 1_000_000_000;

/// Why a request or connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connecting failed (refused, unreachable, no free port, …).
    Connect,
    /// The peer reset the connection (ECONNRESET, EPIPE).
    Reset,
    /// No progress within `--timeout` while requests were outstanding.
    Timeout,
    /// The peer closed the connection with requests outstanding or mid-response.
    Eof,
    /// The response could not be parsed.
    Parse,
    /// A complete response with a status outside 200–399.
    BadStatus,
    /// Any other socket error.
    Io,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Eof,
        ErrorKind::Parse,
        ErrorKind::BadStatus,
        ErrorKind::Io,
    ];

    /// The key used in [`Report::errors`].
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Eof => "eof",
            ErrorKind::Parse => "parse",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::Io => "io",
        }
    }

    /// Classify a read/write error on an established connection.
    pub fn from_io(e: &io::Error) -> ErrorKind {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one client thread measured.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub(crate) hist: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) errors: [u64; ErrorKind::ALL.len()],
}

impl Stats {
    pub(crate) fn new() -> Stats {
        // 3 significant digits from 1 ns to two hours: a fixed ~200 KiB table.
        // Constant, valid bounds (low >= 1, high >= 2 * low, sigfig <= 5): cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3)
            .expect("constant histogram bounds are valid");
        Stats {
            hist,
            requests: 0,
            bytes_read: 0,
            bytes_written: 0,
            errors: [0; ErrorKind::ALL.len()],
        }
    }

    /// Forget everything (end of the warm-up).
    pub(crate) fn reset(&mut self) {
        self.hist.reset();
        self.requests = 0;
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.errors = [0; ErrorKind::ALL.len()];
    }

    #[inline]
    pub(crate) fn record_latency(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
    }

    #[inline]
    pub(crate) fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    pub(crate) fn merge(&mut self, other: &Stats) {
        // Both histograms have the same bounds, so `add` cannot fail; saturate otherwise.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                self.hist
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.requests += other.requests;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
    }

    /// Latency percentiles in microseconds (all zero when nothing was recorded).
    pub(crate) fn latency(&self) -> Latency {
        if self.hist.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50_us: us(self.hist.value_at_quantile(0.50)),
            p90_us: us(self.hist.value_at_quantile(0.90)),
            p99_us: us(self.hist.value_at_quantile(0.99)),
            p999_us: us(self.hist.value_at_quantile(0.999)),
            max_us: us(self.hist.max()),
            mean_us: self.hist.mean() / 1000.0,
        }
    }

    /// Error counts keyed by [`ErrorKind::name`]; only kinds that occurred.
    pub(crate) fn error_map(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .filter(|k| self.errors[k.index()] > 0)
            .map(|k| (k.name().to_owned(), self.errors[k.index()]))
            .collect()
    }

    /// Fill the measured parts of a report.
    pub(crate) fn fill(&self, report: &mut Report, duration_s: f64) {
        report.duration_s = duration_s;
        report.requests = self.requests;
        report.rps = if duration_s > 0.0 {
            self.requests as f64 / duration_s
        } else {
            0.0
        };
        report.bytes_read = self.bytes_read;
        report.bytes_written = self.bytes_written;
        report.errors = self.error_map();
        report.latency = self.latency();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_stats_merge_adds_counts_and_histograms() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for i in 1..=100 {
            a.record_latency(i * 1000);
            b.record_latency(i * 1000 + 100_000);
        }
        a.requests = 100;
        b.requests = 100;
        b.error(ErrorKind::Timeout);
        a.merge(&b);
        assert_eq!(a.requests, 200);
        assert_eq!(a.hist.len(), 200);
        let lat = a.latency();
        assert!((lat.max_us - 200.0).abs() < 1.0, "{lat:?}");
        assert!(lat.p50_us > 90.0 && lat.p50_us < 110.0, "{lat:?}");
        assert_eq!(a.error_map().get("timeout"), Some(&1));
    }

    #[test]
    fn test_stats_reset_clears_everything() {
        let mut s = Stats::new();
        s.record_latency(5);
        s.error(ErrorKind::Parse);
        s.requests = 3;
        s.reset();
        assert!(s.hist.is_empty() && s.requests == 0 && s.error_map().is_empty());
    }
}
