//! What the router counts: requests per route, error responses by cause, the last 404 paths,
//! lookup / handler / framework time, slow requests, and allocations per request.
//!
//! Counters are relaxed atomics (one `fetch_add` each on the hot path); the two bounded lists
//! (recent 404 paths, slow requests) take a mutex, only on those paths.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// How many recent 404 paths are kept.
pub const NOT_FOUND_HISTORY: usize = 32;
/// How many recent slow requests are kept.
pub const SLOW_HISTORY: usize = 32;
/// Longest path stored in those lists (longer ones are cut).
pub const MAX_LOGGED_PATH: usize = 256;

/// A log2 histogram of nanoseconds: bucket `i` holds values in `[2^i, 2^(i+1))`.
#[derive(Debug)]
pub struct NsHistogram {
    buckets: [AtomicU64; 40],
    sum: AtomicU64,
    count: AtomicU64,
}

impl Default for NsHistogram {
    fn default() -> Self {
        NsHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl NsHistogram {
    /// Records one value.
    pub fn record(&self, ns: u64) {
        let i = (63 - ns.max(1).leading_zeros() as usize).min(39);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Summary: count, mean and the upper bound of the bucket holding each quantile.
    pub fn summary(&self) -> HistSummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        let q = |q: f64| {
            let target = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= target {
                    return 1u64 << (i + 1);
                }
            }
            0
        };
        HistSummary {
            count,
            mean_ns: if count == 0 {
                0.0
            } else {
                self.sum.load(Ordering::Relaxed) as f64 / count as f64
            },
            p50_ns_below: q(0.5),
            p99_ns_below: q(0.99),
        }
    }
}

/// A histogram summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistSummary {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// The median is below this (power of two).
    pub p50_ns_below: u64,
    /// The 99th percentile is below this (power of two).
    pub p99_ns_below: u64,
}

/// One slow request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlowRequest {
    /// Method and path.
    pub request: String,
    /// Matched pattern.
    pub route: Option<String>,
    /// Status sent.
    pub status: u16,
    /// Whole call, µs.
    pub total_us: u64,
    /// Inside the handler, µs.
    pub handler_us: u64,
}

/// The router's live counters. See the [module docs](self).
#[derive(Debug)]
pub struct RouterStats {
    pub(crate) requests: AtomicU64,
    pub(crate) per_route: Vec<AtomicU64>,
    pub(crate) not_found: AtomicU64,
    pub(crate) method_not_allowed: AtomicU64,
    pub(crate) bad_request: AtomicU64,
    pub(crate) uri_too_long: AtomicU64,
    pub(crate) traversal_blocked: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) redirect_loops: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) slow_requests: AtomicU64,
    pub(crate) lookup_ns: NsHistogram,
    pub(crate) handler_ns: NsHistogram,
    pub(crate) framework_ns: NsHistogram,
    pub(crate) alloc_requests: AtomicU64,
    pub(crate) allocs_total: AtomicU64,
    pub(crate) allocs_max: AtomicU64,
    pub(crate) recent_404: Mutex<VecDeque<String>>,
    pub(crate) recent_slow: Mutex<VecDeque<SlowRequest>>,
}

impl RouterStats {
    pub(crate) fn new(routes: usize) -> RouterStats {
        RouterStats {
            requests: AtomicU64::new(0),
            per_route: (0..routes).map(|_| AtomicU64::new(0)).collect(),
            not_found: AtomicU64::new(0),
            method_not_allowed: AtomicU64::new(0),
            bad_request: AtomicU64::new(0),
            uri_too_long: AtomicU64::new(0),
            traversal_blocked: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            redirect_loops: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            slow_requests: AtomicU64::new(0),
            lookup_ns: NsHistogram::default(),
            handler_ns: NsHistogram::default(),
            framework_ns: NsHistogram::default(),
            alloc_requests: AtomicU64::new(0),
            allocs_total: AtomicU64::new(0),
            allocs_max: AtomicU64::new(0),
            recent_404: Mutex::new(VecDeque::with_capacity(NOT_FOUND_HISTORY)),
            recent_slow: Mutex::new(VecDeque::with_capacity(SLOW_HISTORY)),
        }
    }

    pub(crate) fn record_404(&self, path: &str) {
        self.not_found.fetch_add(1, Ordering::Relaxed);
        let mut cut = path.len().min(MAX_LOGGED_PATH);
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Ok(mut q) = self.recent_404.lock() {
            if q.len() >= NOT_FOUND_HISTORY {
                q.pop_front();
            }
            q.push_back(path[..cut].to_owned());
        }
    }

    pub(crate) fn record_slow(&self, slow: SlowRequest) {
        self.slow_requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut q) = self.recent_slow.lock() {
            if q.len() >= SLOW_HISTORY {
                q.pop_front();
            }
            q.push_back(slow);
        }
    }

    pub(crate) fn record_allocs(&self, n: u64) {
        self.alloc_requests.fetch_add(1, Ordering::Relaxed);
        self.allocs_total.fetch_add(n, Ordering::Relaxed);
        self.allocs_max.fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn record_times(&self, lookup: Duration, handler: Duration, total: Duration) {
        self.lookup_ns.record(lookup.as_nanos() as u64);
        self.handler_ns.record(handler.as_nanos() as u64);
        self.framework_ns
            .record(total.saturating_sub(handler).as_nanos() as u64);
    }
}

/// A copy of the counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsSnapshot {
    /// Requests seen.
    pub requests: u64,
    /// `(pattern, methods, requests)` per route, in registration order.
    pub per_route: Vec<(String, String, u64)>,
    /// 404 responses (no route, or a static file not found).
    pub not_found: u64,
    /// 404s per request.
    pub not_found_rate: f64,
    /// The last [`NOT_FOUND_HISTORY`] paths answered 404, oldest first.
    pub recent_404: Vec<String>,
    /// 405 responses.
    pub method_not_allowed: u64,
    /// 400 responses (bad escapes, forbidden bytes, traversal).
    pub bad_request: u64,
    /// 414 responses (oversized query strings).
    pub uri_too_long: u64,
    /// Traversal attempts refused (`..` above the root, `%2F`, `%00`, symlinks out of a root).
    pub traversal_blocked: u64,
    /// Handler panics caught (each answered 500).
    pub handler_panics: u64,
    /// Redirect chains that looped or ran too long (508).
    pub redirect_loops: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// Requests slower than the threshold.
    pub slow_requests: u64,
    /// The last [`SLOW_HISTORY`] slow requests.
    pub recent_slow: Vec<SlowRequest>,
    /// Route lookup time.
    pub lookup: HistSummary,
    /// Time inside handlers.
    pub handler: HistSummary,
    /// Everything else the router did (decode, lookup, render, log).
    pub framework: HistSummary,
    /// Requests whose allocations were counted (needs the counting allocator).
    pub alloc_requests: u64,
    /// Mean heap allocations per counted request.
    pub allocs_per_request: f64,
    /// Most allocations in one request.
    pub allocs_max: u64,
}
