//! Statistics: one [`ConnStats`] per connection, merged into a shared [`Http11Stats`] when the
//! session is dropped (whatever ended it: the session, the driver, a reset).
//!
//! The registry is plain atomics; histograms have fixed power-of-two buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use m03_thread_per_conn::CloseReason;

/// What one connection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Requests answered by the service (rejections not included).
    pub requests: u64,
    /// Error responses sent (400, 408, 413, 417, 431, 501, 505…).
    pub rejected: u64,
    /// Bytes received (handed to the session).
    pub bytes_in: u64,
    /// Bytes sent (consumed by the driver).
    pub bytes_out: u64,
    /// From accept to the last instant the session was given.
    pub lifetime: Duration,
    /// Most responses queued unsent at once (the pipeline depth seen).
    pub max_depth: usize,
    /// Requests with a chunked body.
    pub chunked_requests: u64,
    /// Responses sent chunked.
    pub chunked_responses: u64,
    /// `100 Continue` interim responses sent.
    pub continues: u64,
    /// Why the session ended (`None` while open, or when the driver ended it).
    pub close: Option<CloseReason>,
}

/// Upper bounds of histogram buckets: `0, 1, 2, 4, … 2^(BUCKETS-2)`, then everything above.
pub const BUCKETS: usize = 16;

/// A fixed-bucket histogram (power-of-two bounds).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl Histogram {
    /// The bucket of `v`: 0 for 0, then `1 + floor(log2 v)`, capped.
    pub fn bucket(v: u64) -> usize {
        if v == 0 {
            0
        } else {
            ((64 - v.leading_zeros()) as usize).min(BUCKETS - 1)
        }
    }

    /// The largest value in bucket `i` (`u64::MAX` for the last).
    pub fn upper(i: usize) -> u64 {
        match i {
            0 => 0,
            i if i >= BUCKETS - 1 => u64::MAX,
            i => (1u64 << i) - 1,
        }
    }

    /// Adds `v`.
    pub fn record(&self, v: u64) {
        self.counts[Self::bucket(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts per bucket.
    pub fn snapshot(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Non-empty buckets as `("≤upper", count)`.
    pub fn rows(&self) -> Vec<(String, u64)> {
        self.snapshot()
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let label = match Self::upper(i) {
                    u64::MAX => format!(">{}", Self::upper(i - 1)),
                    u => format!("<={u}"),
                };
                (label, *c)
            })
            .collect()
    }
}

/// Counters shared by every connection of a factory.
#[derive(Debug, Default)]
pub struct Http11Stats {
    /// Sessions created.
    pub opened: AtomicU64,
    /// Sessions dropped.
    pub closed: AtomicU64,
    /// Closes per [`CloseReason`] (index [`CloseReason::index`]); `closed_by_driver` for the rest.
    pub close_reasons: [AtomicU64; CloseReason::ALL.len()],
    /// Sessions the driver ended while they were open (reset, I/O error, panic).
    pub closed_by_driver: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests that were not the first on their connection (reuse).
    pub reused_requests: AtomicU64,
    /// Error responses.
    pub rejected: AtomicU64,
    /// Bytes in / out.
    pub bytes_in: AtomicU64,
    /// Bytes out.
    pub bytes_out: AtomicU64,
    /// Chunked request bodies.
    pub chunked_requests: AtomicU64,
    /// Chunked responses.
    pub chunked_responses: AtomicU64,
    /// Requests per connection.
    pub requests_per_conn: Histogram,
    /// Connection lifetimes, ms.
    pub lifetime_ms: Histogram,
    /// Maximum pipeline depth per connection.
    pub depth: Histogram,
}

impl Http11Stats {
    /// Connections open now (created and not yet dropped): a leak shows as a gauge that never
    /// returns to zero.
    pub fn live(&self) -> u64 {
        self.opened
            .load(Ordering::Relaxed)
            .saturating_sub(self.closed.load(Ordering::Relaxed))
    }

    /// `requests − connections` over `requests`: the server-side reuse rate, in percent.
    pub fn reuse_percent(&self) -> f64 {
        let r = self.requests.load(Ordering::Relaxed);
        if r == 0 {
            return 0.0;
        }
        100.0 * self.reused_requests.load(Ordering::Relaxed) as f64 / r as f64
    }

    /// Close counts per reason, non-zero only, plus `driver` for closes the session did not
    /// decide.
    pub fn close_rows(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = CloseReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name(),
                    self.close_reasons[r.index()].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let d = self.closed_by_driver.load(Ordering::Relaxed);
        if d > 0 {
            v.push(("driver", d));
        }
        v
    }

    /// Merges a finished connection.
    pub fn record_close(&self, s: &ConnStats) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        match s.close {
            Some(r) => self.close_reasons[r.index()].fetch_add(1, Ordering::Relaxed),
            None => self.closed_by_driver.fetch_add(1, Ordering::Relaxed),
        };
        self.requests.fetch_add(s.requests, Ordering::Relaxed);
        self.reused_requests
            .fetch_add(s.requests.saturating_sub(1), Ordering::Relaxed);
        self.rejected.fetch_add(s.rejected, Ordering::Relaxed);
        self.bytes_in.fetch_add(s.bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(s.bytes_out, Ordering::Relaxed);
        self.chunked_requests
            .fetch_add(s.chunked_requests, Ordering::Relaxed);
        self.chunked_responses
            .fetch_add(s.chunked_responses, Ordering::Relaxed);
        self.requests_per_conn.record(s.requests);
        self.lifetime_ms.record(s.lifetime.as_millis() as u64);
        self.depth.record(s.max_depth as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_histogram_buckets() {
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(1), 1);
        assert_eq!(Histogram::bucket(3), 2);
        assert_eq!(Histogram::bucket(4), 3);
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
        for v in [0u64, 1, 2, 3, 7, 8, 100, 5000] {
            let b = Histogram::bucket(v);
            assert!(v <= Histogram::upper(b));
            if b > 0 {
                assert!(v > Histogram::upper(b - 1));
            }
        }
    }
}
