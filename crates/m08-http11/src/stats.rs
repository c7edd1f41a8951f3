//! Statistics: one [`ConnStats`] per connection, merged into a shared [`Http11Stats`] when the
//! session is dropped (whatever ended it: the session, the driver, a reset).
//!
//! The registry is plain atomics; histograms have fixed power-of-two buckets.
//!
//! **Per-thread shards, summed on read.** A registry is shared by every thread that serves
//! the factory's connections (every event loop of milestone 10). One set of atomics would put
//! every loop's `fetch_add`s on the same cache lines; instead the registry holds [`SHARDS`]
//! copies, each in its own cache-padded block, and a thread writes only the shard it was
//! given: [`set_thread_shard`] (an event loop passes its index), else one assigned the first
//! time the thread records (from the upper half, so it never lands on a loop's shard while
//! there are fewer than `SHARDS / 2` loops). Readers sum the shards ([`Http11Stats::sum`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam::utils::CachePadded;

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

/// Shards in a registry: loops `0..SHARDS / 2` get their own by index (wrapping beyond).
pub const SHARDS: usize = 32;

thread_local! {
    /// This thread's shard, once chosen.
    static THREAD_SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Where threads without an explicit shard go next (upper half, round robin).
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// Makes this thread record into shard `index % (SHARDS / 2)` of every registry (an event loop
/// calls it with its loop index before serving).
pub fn set_thread_shard(index: usize) {
    THREAD_SHARD.with(|s| s.set(Some(index % (SHARDS / 2))));
}

/// This thread's shard: the one set by [`set_thread_shard`], else one of the upper half chosen
/// once per thread (a `fetch_add` on the thread's first record, not per connection).
pub fn thread_shard() -> usize {
    THREAD_SHARD.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = SHARDS / 2 + NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % (SHARDS / 2);
            s.set(Some(i));
            i
        }
    })
}

/// Counters shared by every connection of a factory, one cache-padded shard per thread (see
/// the [module docs](self)); [`sum`](Self::sum) adds them up.
#[derive(Debug)]
pub struct Http11Stats {
    shards: Box<[CachePadded<Http11Counters>]>,
}

impl Default for Http11Stats {
    fn default() -> Self {
        Http11Stats {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Http11Counters::default()))
                .collect(),
        }
    }
}

impl Http11Stats {
    /// The shard this thread writes.
    pub fn local(&self) -> &Http11Counters {
        &self.shards[thread_shard()]
    }

    /// Shard `i` (what threads with that shard recorded).
    pub fn shard(&self, i: usize) -> &Http11Counters {
        &self.shards[i]
    }

    /// Every shard added up (what `/stats`-like reports show).
    pub fn sum(&self) -> Http11Counters {
        let total = Http11Counters::default();
        for s in self.shards.iter() {
            total.add(s);
        }
        total
    }

    /// See [`Http11Counters::live`], over all shards.
    pub fn live(&self) -> u64 {
        self.sum().live()
    }

    /// See [`Http11Counters::reuse_percent`], over all shards.
    pub fn reuse_percent(&self) -> f64 {
        self.sum().reuse_percent()
    }

    /// See [`Http11Counters::close_rows`], over all shards.
    pub fn close_rows(&self) -> Vec<(&'static str, u64)> {
        self.sum().close_rows()
    }

    /// Counts a new session (in this thread's shard).
    pub fn record_open(&self) {
        self.local().opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Merges a finished connection (into this thread's shard).
    pub fn record_close(&self, s: &ConnStats) {
        self.local().record_close(s);
    }
}

/// One shard of an [`Http11Stats`] (or their sum).
#[derive(Debug, Default)]
pub struct Http11Counters {
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

impl Http11Counters {
    /// Adds `other` into `self` (summing shards).
    fn add(&self, other: &Http11Counters) {
        let add = |a: &AtomicU64, b: &AtomicU64| {
            a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        };
        add(&self.opened, &other.opened);
        add(&self.closed, &other.closed);
        for (a, b) in self.close_reasons.iter().zip(&other.close_reasons) {
            add(a, b);
        }
        add(&self.closed_by_driver, &other.closed_by_driver);
        add(&self.requests, &other.requests);
        add(&self.reused_requests, &other.reused_requests);
        add(&self.rejected, &other.rejected);
        add(&self.bytes_in, &other.bytes_in);
        add(&self.bytes_out, &other.bytes_out);
        add(&self.chunked_requests, &other.chunked_requests);
        add(&self.chunked_responses, &other.chunked_responses);
        for (a, b) in [
            (&self.requests_per_conn, &other.requests_per_conn),
            (&self.lifetime_ms, &other.lifetime_ms),
            (&self.depth, &other.depth),
        ] {
            for (x, y) in a.counts.iter().zip(&b.counts) {
                add(x, y);
            }
        }
    }

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

    /// Two "loops" (threads with shards 0 and 1) recording into one registry: each one's
    /// counts land only in its own shard, no other shard moves, and the sum sees both. Fails
    /// if every thread writes one shared set of counters.
    #[test]
    fn test_each_thread_records_into_its_own_shard_and_sum_adds_them() {
        let stats = std::sync::Arc::new(Http11Stats::default());
        let work = [(0usize, 3u64), (1, 5)];
        let threads: Vec<_> = work
            .iter()
            .map(|&(loop_index, conns)| {
                let stats = std::sync::Arc::clone(&stats);
                std::thread::spawn(move || {
                    set_thread_shard(loop_index);
                    for _ in 0..conns {
                        stats.record_open();
                        stats.record_close(&ConnStats {
                            requests: 10,
                            ..ConnStats::default()
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for i in 0..SHARDS {
            let expected = work.iter().find(|w| w.0 == i).map_or(0, |w| w.1);
            let s = stats.shard(i);
            assert_eq!(s.opened.load(Ordering::Relaxed), expected, "shard {i}");
            assert_eq!(
                s.requests.load(Ordering::Relaxed),
                expected * 10,
                "shard {i}"
            );
        }
        let sum = stats.sum();
        assert_eq!(sum.opened.load(Ordering::Relaxed), 8);
        assert_eq!(sum.closed.load(Ordering::Relaxed), 8);
        assert_eq!(sum.requests.load(Ordering::Relaxed), 80);
        assert_eq!(sum.requests_per_conn.snapshot()[Histogram::bucket(10)], 8);
        assert_eq!(stats.live(), 0);
    }

    /// No two shards share a cache line (what one loop writes is padded from the others).
    #[test]
    fn test_shards_never_share_a_cache_line() {
        let stats = Http11Stats::default();
        let line = 128; // crossbeam's CachePadded on x86-64/aarch64; 64-byte lines are covered
        let spans: Vec<(usize, usize)> = (0..SHARDS)
            .map(|i| {
                let s = stats.shard(i);
                let start = std::ptr::from_ref(s) as usize;
                (start / line, (start + std::mem::size_of_val(s) - 1) / line)
            })
            .collect();
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                assert!(a.1 < b.0 || b.1 < a.0, "shards share a line: {a:?} {b:?}");
            }
        }
    }

    /// A thread without an explicit shard never takes a loop's (lower-half) shard.
    #[test]
    fn test_unassigned_threads_use_the_upper_half() {
        let got: Vec<usize> = (0..SHARDS)
            .map(|_| std::thread::spawn(thread_shard).join().unwrap())
            .collect();
        assert!(
            got.iter().all(|&i| (SHARDS / 2..SHARDS).contains(&i)),
            "{got:?}"
        );
    }

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
