//! Loop statistics: written by the loop's own thread only, read by anyone, no lock.
//!
//! Every counter has a single writer (its loop), so it is bumped with a relaxed load and
//! store: no `lock`-prefixed instruction on the hot path, and a reader sees each counter's
//! latest value within a moment (relaxed: counters are independent; nothing is published
//! through them). [`LoopStats::snapshot`] copies them into a plain [`LoopSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use m03_thread_per_conn::CloseReason;

/// A counter with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (only the owning loop calls this).
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Sets the value (gauges).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The value now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sub-buckets per power of two: values are recorded within 1/8 (12.5 %).
const SUB: usize = 8;
const SUB_BITS: u32 = 3;
/// Enough buckets for nanosecond values up to 2⁴⁰ (18 minutes).
const BUCKETS: usize = 41 * SUB;

/// A log-linear histogram of durations in nanoseconds with one writer (the loop).
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: Counter,
    max: Counter,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: Counter::default(),
            max: Counter::default(),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let msb = 63 - ns.leading_zeros();
    let sub = ((ns >> (msb - SUB_BITS)) as usize) & (SUB - 1);
    (((msb - SUB_BITS + 1) as usize) * SUB + sub).min(BUCKETS - 1)
}

/// The largest value that falls in `bucket` (what percentiles report: never optimistic).
fn bucket_high(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let group = (bucket / SUB) as u32; // msb - SUB_BITS + 1
    let sub = (bucket % SUB) as u64;
    let msb = group + SUB_BITS - 1;
    let low = (1u64 << msb) | (sub << (msb - SUB_BITS));
    low + (1u64 << (msb - SUB_BITS)) - 1
}

impl Histogram {
    /// Records one value.
    #[inline]
    pub fn record(&self, ns: u64) {
        let b = &self.buckets[bucket_of(ns)];
        b.store(b.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.count.incr();
        if ns > self.max.get() {
            self.max.set(ns);
        }
    }

    /// A copy of the bucket counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            max: self.max.get(),
        }
    }
}

/// Bucket counts copied out of a [`Histogram`] (mergeable across loops).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    buckets: Vec<u64>,
    max: u64,
}

impl HistogramSnapshot {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values fall, rounded up to
    /// its bucket's top (at most 12.5 % high, never low). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high(i).min(self.max.max(1));
            }
        }
        self.max
    }

    /// Adds another snapshot's counts.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    /// Counts recorded since `earlier` (same histogram, taken before).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| n - earlier.buckets.get(i).copied().unwrap_or(0).min(*n))
            .collect();
        HistogramSnapshot {
            buckets,
            max: self.max,
        }
    }
}

/// The live counters of one event loop.
#[derive(Debug, Default)]
pub struct LoopStats {
    /// Loop iterations (one `epoll_wait` each).
    pub iterations: Counter,
    /// Readiness events handled.
    pub events: Counter,
    /// Waits that returned no event before their timeout (timer wake-ups excluded).
    pub empty_wakeups: Counter,
    /// Readable reports whose read found nothing (`EAGAIN`): spurious wake-ups.
    pub spurious_reads: Counter,
    /// Connections accepted.
    pub accepted: Counter,
    /// `accept4` batches (listener readiness events handled).
    pub accept_batches: Counter,
    /// Accepted connections refused (over `max_connections` or the reactor refused them).
    pub refused: Counter,
    /// `EMFILE`/`ENFILE` met by `accept4` (survived with the reserve descriptor).
    pub fd_exhausted: Counter,
    /// Connections open now.
    pub open: Counter,
    /// Most connections open at once.
    pub open_peak: Counter,
    /// `recv` calls.
    pub reads: Counter,
    /// `send` calls.
    pub writes: Counter,
    /// Bytes received.
    pub bytes_in: Counter,
    /// Bytes sent.
    pub bytes_out: Counter,
    /// Session events (requests answered, for HTTP).
    pub session_events: Counter,
    /// Interest changes (`epoll_ctl(MOD)`).
    pub modifications: Counter,
    /// Timers armed.
    pub timers_armed: Counter,
    /// Timers that fired and were due (`handle_timeout` called).
    pub timers_fired: Counter,
    /// Timers that fired for a connection whose deadline had moved (re-armed or ignored).
    pub timers_stale: Counter,
    /// Events for a token whose connection is gone (ignored).
    pub stale_events: Counter,
    /// Connections whose session panicked (closed; the loop lives on).
    pub panics: Counter,
    /// Iterations that took longer than the configured budget.
    pub blocked_iterations: Counter,
    /// Connections that hit the per-event read budget (edge-triggered fairness).
    pub read_budget_hits: Counter,
    /// Unconsumed input parked in a pool buffer (m07).
    pub stash_pooled: Counter,
    /// Unconsumed input parked on the heap (larger than a pool buffer, or pool exhausted).
    pub stash_heap: Counter,
    /// Closes, by [`CloseReason::index`].
    pub closed: [Counter; CloseReason::ALL.len()],
    /// Time spent handling each iteration's events (wait excluded), ns.
    pub iteration_ns: Histogram,
    /// Events returned per wait.
    pub batch_size: Histogram,
    /// The loop thread's CPU time, ns (updated about every 100 ms).
    pub cpu_ns: Counter,
    /// The loop thread's kernel id.
    pub tid: Counter,
}

/// A copy of [`LoopStats`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoopSnapshot {
    /// See [`LoopStats::iterations`].
    pub iterations: u64,
    /// See [`LoopStats::events`].
    pub events: u64,
    /// See [`LoopStats::empty_wakeups`].
    pub empty_wakeups: u64,
    /// See [`LoopStats::spurious_reads`].
    pub spurious_reads: u64,
    /// See [`LoopStats::accepted`].
    pub accepted: u64,
    /// See [`LoopStats::accept_batches`].
    pub accept_batches: u64,
    /// See [`LoopStats::refused`].
    pub refused: u64,
    /// See [`LoopStats::fd_exhausted`].
    pub fd_exhausted: u64,
    /// See [`LoopStats::open`].
    pub open: u64,
    /// See [`LoopStats::open_peak`].
    pub open_peak: u64,
    /// See [`LoopStats::reads`].
    pub reads: u64,
    /// See [`LoopStats::writes`].
    pub writes: u64,
    /// See [`LoopStats::bytes_in`].
    pub bytes_in: u64,
    /// See [`LoopStats::bytes_out`].
    pub bytes_out: u64,
    /// See [`LoopStats::session_events`].
    pub session_events: u64,
    /// See [`LoopStats::modifications`].
    pub modifications: u64,
    /// See [`LoopStats::timers_armed`].
    pub timers_armed: u64,
    /// See [`LoopStats::timers_fired`].
    pub timers_fired: u64,
    /// See [`LoopStats::timers_stale`].
    pub timers_stale: u64,
    /// See [`LoopStats::stale_events`].
    pub stale_events: u64,
    /// See [`LoopStats::panics`].
    pub panics: u64,
    /// See [`LoopStats::blocked_iterations`].
    pub blocked_iterations: u64,
    /// See [`LoopStats::read_budget_hits`].
    pub read_budget_hits: u64,
    /// See [`LoopStats::stash_pooled`].
    pub stash_pooled: u64,
    /// See [`LoopStats::stash_heap`].
    pub stash_heap: u64,
    /// Closes by reason name.
    pub closed: std::collections::BTreeMap<&'static str, u64>,
    /// Iteration time p50, ns.
    pub iteration_p50_ns: u64,
    /// Iteration time p99, ns.
    pub iteration_p99_ns: u64,
    /// Iteration time max, ns.
    pub iteration_max_ns: u64,
    /// Mean events per wait.
    pub mean_batch: f64,
    /// Loop thread CPU, seconds.
    pub cpu_s: f64,
    /// Loop thread id.
    pub tid: u64,
    #[serde(skip)]
    /// The iteration-time histogram (for merging and windows).
    pub iteration_hist: HistogramSnapshot,
}

impl LoopStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> LoopSnapshot {
        let hist = self.iteration_ns.snapshot();
        let batches = self.batch_size.snapshot();
        let waits = batches.count();
        LoopSnapshot {
            iterations: self.iterations.get(),
            events: self.events.get(),
            empty_wakeups: self.empty_wakeups.get(),
            spurious_reads: self.spurious_reads.get(),
            accepted: self.accepted.get(),
            accept_batches: self.accept_batches.get(),
            refused: self.refused.get(),
            fd_exhausted: self.fd_exhausted.get(),
            open: self.open.get(),
            open_peak: self.open_peak.get(),
            reads: self.reads.get(),
            writes: self.writes.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            session_events: self.session_events.get(),
            modifications: self.modifications.get(),
            timers_armed: self.timers_armed.get(),
            timers_fired: self.timers_fired.get(),
            timers_stale: self.timers_stale.get(),
            stale_events: self.stale_events.get(),
            panics: self.panics.get(),
            blocked_iterations: self.blocked_iterations.get(),
            read_budget_hits: self.read_budget_hits.get(),
            stash_pooled: self.stash_pooled.get(),
            stash_heap: self.stash_heap.get(),
            closed: CloseReason::ALL
                .iter()
                .map(|r| (r.name(), self.closed[r.index()].get()))
                .collect(),
            iteration_p50_ns: hist.quantile(0.50),
            iteration_p99_ns: hist.quantile(0.99),
            iteration_max_ns: hist.max(),
            mean_batch: if waits == 0 {
                0.0
            } else {
                self.events.get() as f64 / waits as f64
            },
            cpu_s: Duration::from_nanos(self.cpu_ns.get()).as_secs_f64(),
            tid: self.tid.get(),
            iteration_hist: hist,
        }
    }
}

impl LoopSnapshot {
    /// Sums several loops' snapshots (gauges add; percentiles from the merged histogram).
    pub fn merged(parts: &[LoopSnapshot]) -> LoopSnapshot {
        let mut m = LoopSnapshot::default();
        let mut hist = HistogramSnapshot::default();
        let mut weighted_batch = 0.0;
        for p in parts {
            m.iterations += p.iterations;
            m.events += p.events;
            m.empty_wakeups += p.empty_wakeups;
            m.spurious_reads += p.spurious_reads;
            m.accepted += p.accepted;
            m.accept_batches += p.accept_batches;
            m.refused += p.refused;
            m.fd_exhausted += p.fd_exhausted;
            m.open += p.open;
            m.open_peak += p.open_peak;
            m.reads += p.reads;
            m.writes += p.writes;
            m.bytes_in += p.bytes_in;
            m.bytes_out += p.bytes_out;
            m.session_events += p.session_events;
            m.modifications += p.modifications;
            m.timers_armed += p.timers_armed;
            m.timers_fired += p.timers_fired;
            m.timers_stale += p.timers_stale;
            m.stale_events += p.stale_events;
            m.panics += p.panics;
            m.blocked_iterations += p.blocked_iterations;
            m.read_budget_hits += p.read_budget_hits;
            m.stash_pooled += p.stash_pooled;
            m.stash_heap += p.stash_heap;
            for (k, v) in &p.closed {
                *m.closed.entry(k).or_default() += v;
            }
            m.cpu_s += p.cpu_s;
            weighted_batch += p.mean_batch * p.events as f64;
            hist.merge(&p.iteration_hist);
        }
        m.mean_batch = if m.events == 0 {
            0.0
        } else {
            weighted_batch / m.events as f64
        };
        m.iteration_p50_ns = hist.quantile(0.5);
        m.iteration_p99_ns = hist.quantile(0.99);
        m.iteration_max_ns = hist.max();
        m.iteration_hist = hist;
        m
    }

    /// Prometheus text exposition.
    pub fn prometheus(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let counters: [(&str, u64); 16] = [
            ("iterations_total", self.iterations),
            ("events_total", self.events),
            ("spurious_reads_total", self.spurious_reads),
            ("accepted_total", self.accepted),
            ("refused_total", self.refused),
            ("fd_exhausted_total", self.fd_exhausted),
            ("reads_total", self.reads),
            ("writes_total", self.writes),
            ("bytes_in_total", self.bytes_in),
            ("bytes_out_total", self.bytes_out),
            ("modifications_total", self.modifications),
            ("timers_armed_total", self.timers_armed),
            ("timers_fired_total", self.timers_fired),
            ("timers_stale_total", self.timers_stale),
            ("blocked_iterations_total", self.blocked_iterations),
            ("panics_total", self.panics),
        ];
        for (name, v) in counters {
            let _ = writeln!(s, "{prefix}_{name} {v}");
        }
        let _ = writeln!(s, "{prefix}_connections {}", self.open);
        for (reason, v) in &self.closed {
            let _ = writeln!(s, "{prefix}_closed_total{{reason=\"{reason}\"}} {v}");
        }
        let _ = writeln!(
            s,
            "{prefix}_iteration_seconds{{quantile=\"0.99\"}} {}",
            self.iteration_p99_ns as f64 / 1e9
        );
        let _ = writeln!(s, "{prefix}_cpu_seconds_total {}", self.cpu_s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_histogram_quantile_within_an_eighth_never_low() {
        let h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        for (q, exact) in [(0.5, 500_000u64), (0.99, 990_000), (1.0, 1_000_000)] {
            let got = s.quantile(q);
            assert!(got >= exact, "q{q}: {got} < {exact}");
            assert!(
                got as f64 <= exact as f64 * 1.126,
                "q{q}: {got} too far above {exact}"
            );
        }
    }

    #[test]
    fn test_histogram_buckets_cover_their_values() {
        for ns in [0u64, 1, 7, 8, 9, 15, 16, 17, 1000, 123_456_789, 1 << 39] {
            let b = bucket_of(ns);
            assert!(
                bucket_high(b) >= ns,
                "{ns} above its bucket top {}",
                bucket_high(b)
            );
            if b > 0 {
                assert!(bucket_high(b - 1) < ns, "{ns} fits a lower bucket");
            }
        }
    }

    #[test]
    fn test_counter_single_writer_adds() {
        let c = Counter::default();
        c.add(5);
        c.incr();
        assert_eq!(c.get(), 6);
    }
}
