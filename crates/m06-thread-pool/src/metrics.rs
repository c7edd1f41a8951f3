//! What the pool measures about itself, cheaply enough to leave on.
//!
//! - counters: submitted, rejected (by reason), completed, panicked, cancelled, run inline,
//!   worker restarts;
//! - per worker, on its own cache line (unless the false-sharing control packs them): tasks run,
//!   busy and idle nanoseconds (utilisation), steal events and tasks stolen;
//! - per worker (merged on snapshot): latency histograms of queue wait (submit → start) and run
//!   time (start → end);
//! - the global-mutex queue's lock hold and wait times (sampled, 1 operation in 16 per thread);
//! - a sampled series of queue depth over time (a bounded ring).
//!
//! [`crate::Spawner::snapshot`] gives a [`PoolSnapshot`] (serde); [`PoolSnapshot::prometheus`] renders it
//! in the Prometheus text format.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use serde::Serialize;

const SUB_BITS: u32 = 2;
const SUBS: usize = 1 << SUB_BITS;
/// Buckets of a [`Histogram`]: 4 per power of two up to 2^64 ns.
const BUCKETS: usize = 64 * SUBS;

/// A log-linear latency histogram of nanoseconds: four buckets per power of two (each bucket is
/// within 25 % of its values), lock-free, fixed size.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count.load(Relaxed))
            .finish()
    }
}

/// The bucket of `ns`.
pub(crate) fn bucket_of(ns: u64) -> usize {
    if ns < SUBS as u64 {
        return ns as usize;
    }
    let msb = 63 - ns.leading_zeros();
    let sub = (ns >> (msb - SUB_BITS)) as usize & (SUBS - 1);
    (msb - SUB_BITS + 1) as usize * SUBS + sub
}

/// The largest value that falls in bucket `i`.
pub(crate) fn bucket_upper(i: usize) -> u64 {
    if i < SUBS {
        return i as u64;
    }
    let group = (i / SUBS) as u32;
    let sub = (i % SUBS) as u64;
    let shift = group - 1; // msb - SUB_BITS
    let lower = (SUBS as u64 + sub) << shift;
    lower.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    fn add_to(&self, into: &mut HistogramSnapshot) {
        for (i, b) in self.buckets.iter().enumerate() {
            into.buckets[i] += b.load(Relaxed);
        }
        into.count += self.count.load(Relaxed);
        into.sum_ns += self.sum_ns.load(Relaxed);
        into.max_ns = into.max_ns.max(self.max_ns.load(Relaxed));
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        self.add_to(&mut s);
        s
    }
}

/// A point-in-time copy of one or more merged [`Histogram`]s.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramSnapshot {
    /// Per-bucket counts (see [`HistogramSnapshot::quantile_ns`] for bucket bounds).
    #[serde(skip)]
    pub buckets: Vec<u64>,
    /// Values recorded.
    pub count: u64,
    /// Sum of values, ns.
    pub sum_ns: u64,
    /// Largest value, ns (exact).
    pub max_ns: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl HistogramSnapshot {
    /// The upper bound of the bucket holding quantile `q` (0..=1), capped at the exact maximum;
    /// 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(i).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Mean, ns (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64
        }
    }

    /// Counts at or below each of `bounds_ns` (cumulative, for a Prometheus histogram).
    pub fn cumulative(&self, bounds_ns: &[u64]) -> Vec<u64> {
        bounds_ns
            .iter()
            .map(|&b| {
                self.buckets
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bucket_upper(*i) <= b)
                    .map(|(_, n)| n)
                    .sum()
            })
            .collect()
    }
}

/// One worker's hot counters (written only by that worker).
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) tasks: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) idle_ns: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) stolen_tasks: AtomicU64,
}

/// Per-worker counters, padded to a cache line each or packed (the false-sharing control).
pub(crate) enum WorkerSlots {
    Padded(Box<[CachePadded<WorkerCounters>]>),
    Packed(Box<[WorkerCounters]>),
}

impl WorkerSlots {
    fn new(n: usize, padded: bool) -> WorkerSlots {
        if padded {
            WorkerSlots::Padded(
                (0..n)
                    .map(|_| CachePadded::new(WorkerCounters::default()))
                    .collect(),
            )
        } else {
            WorkerSlots::Packed((0..n).map(|_| WorkerCounters::default()).collect())
        }
    }

    pub(crate) fn get(&self, i: usize) -> &WorkerCounters {
        match self {
            WorkerSlots::Padded(v) => &v[i],
            WorkerSlots::Packed(v) => &v[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            WorkerSlots::Padded(v) => v.len(),
            WorkerSlots::Packed(v) => v.len(),
        }
    }
}

/// Per-thread latency histograms (one set per worker, plus one for joining threads).
#[derive(Debug, Default)]
pub(crate) struct LatencySet {
    pub(crate) queue_wait: Histogram,
    pub(crate) run: Histogram,
}

/// A bounded series of `(milliseconds since start, queued tasks)`.
#[derive(Debug)]
pub(crate) struct DepthSeries {
    pub(crate) samples: VecDeque<(u64, u64)>,
    pub(crate) cap: usize,
    pub(crate) max: u64,
}

/// Everything the pool counts.
pub(crate) struct Metrics {
    pub(crate) started: Instant,
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) rejected_shutdown: AtomicU64,
    pub(crate) rejected_delay: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    /// Tasks completed by joining threads (not workers).
    pub(crate) helper_completed: AtomicU64,
    pub(crate) run_inline: AtomicU64,
    pub(crate) worker_restarts: AtomicU64,
    pub(crate) workers: WorkerSlots,
    /// `workers + 1` sets: the last is for joining threads.
    pub(crate) latency: Box<[CachePadded<LatencySet>]>,
    pub(crate) lock_hold: Histogram,
    pub(crate) lock_wait: Histogram,
    pub(crate) depth: Mutex<DepthSeries>,
}

impl Metrics {
    pub(crate) fn new(workers: usize, padded: bool, depth_samples: usize) -> Metrics {
        Metrics {
            started: Instant::now(),
            submitted: AtomicU64::new(0),
            rejected_full: AtomicU64::new(0),
            rejected_shutdown: AtomicU64::new(0),
            rejected_delay: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            helper_completed: AtomicU64::new(0),
            run_inline: AtomicU64::new(0),
            worker_restarts: AtomicU64::new(0),
            workers: WorkerSlots::new(workers, padded),
            latency: (0..=workers)
                .map(|_| CachePadded::new(LatencySet::default()))
                .collect(),
            lock_hold: Histogram::default(),
            lock_wait: Histogram::default(),
            depth: Mutex::new(DepthSeries {
                samples: VecDeque::with_capacity(depth_samples.min(4096)),
                cap: depth_samples.max(1),
                max: 0,
            }),
        }
    }

    pub(crate) fn record_depth(&self, depth: u64) {
        let t = self.started.elapsed().as_millis() as u64;
        let mut d = self.depth.lock().unwrap_or_else(PoisonError::into_inner);
        if d.samples.len() == d.cap {
            d.samples.pop_front();
        }
        d.samples.push_back((t, depth));
        d.max = d.max.max(depth);
    }

    pub(crate) fn snapshot(&self, design: &'static str, queued: u64) -> PoolSnapshot {
        let uptime = self.started.elapsed();
        let uptime_ns = uptime.as_nanos().max(1) as f64;
        let mut queue_wait = HistogramSnapshot::default();
        let mut run = HistogramSnapshot::default();
        for l in self.latency.iter() {
            l.queue_wait.add_to(&mut queue_wait);
            l.run.add_to(&mut run);
        }
        let workers: Vec<WorkerSnapshot> = (0..self.workers.len())
            .map(|i| {
                let w = self.workers.get(i);
                let busy = w.busy_ns.load(Relaxed);
                WorkerSnapshot {
                    worker: i,
                    tasks: w.tasks.load(Relaxed),
                    busy_ns: busy,
                    idle_ns: w.idle_ns.load(Relaxed),
                    utilisation: busy as f64 / uptime_ns,
                    steals: w.steals.load(Relaxed),
                    stolen_tasks: w.stolen_tasks.load(Relaxed),
                }
            })
            .collect();
        let completed =
            workers.iter().map(|w| w.tasks).sum::<u64>() + self.helper_completed.load(Relaxed);
        let depth = self.depth.lock().unwrap_or_else(PoisonError::into_inner);
        PoolSnapshot {
            design,
            uptime_s: uptime.as_secs_f64(),
            submitted: self.submitted.load(Relaxed),
            rejected_queue_full: self.rejected_full.load(Relaxed),
            rejected_shutting_down: self.rejected_shutdown.load(Relaxed),
            rejected_queue_delay: self.rejected_delay.load(Relaxed),
            completed,
            panicked: self.panicked.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            run_inline: self.run_inline.load(Relaxed),
            worker_restarts: self.worker_restarts.load(Relaxed),
            queued,
            max_sampled_depth: depth.max,
            depth_series: depth.samples.iter().copied().collect(),
            steals: workers.iter().map(|w| w.steals).sum(),
            workers,
            queue_wait,
            run,
            lock_hold: self.lock_hold.snapshot(),
            lock_wait: self.lock_wait.snapshot(),
        }
    }
}

/// One worker's share of the work.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerSnapshot {
    /// Worker index.
    pub worker: usize,
    /// Tasks it ran to the end (completed or panicked).
    pub tasks: u64,
    /// Time spent running tasks, ns.
    pub busy_ns: u64,
    /// Time spent parked waiting for work, ns.
    pub idle_ns: u64,
    /// `busy_ns` / pool uptime.
    pub utilisation: f64,
    /// Successful steals from other workers' deques (work-stealing design).
    pub steals: u64,
    /// Tasks moved by those steals.
    pub stolen_tasks: u64,
}

/// A point-in-time copy of the pool's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSnapshot {
    /// Queue design name.
    pub design: &'static str,
    /// Seconds since the pool started.
    pub uptime_s: f64,
    /// Tasks accepted.
    pub submitted: u64,
    /// Submissions refused: queue full.
    pub rejected_queue_full: u64,
    /// Submissions refused: shutting down.
    pub rejected_shutting_down: u64,
    /// Submissions refused: queue delay over budget.
    pub rejected_queue_delay: u64,
    /// Tasks that ran to the end without panicking.
    pub completed: u64,
    /// Tasks that panicked (caught).
    pub panicked: u64,
    /// Tasks cancelled before they started.
    pub cancelled: u64,
    /// Tasks run by the submitting or joining thread instead of a worker.
    pub run_inline: u64,
    /// Times a worker loop crashed and was restarted in place.
    pub worker_restarts: u64,
    /// Tasks queued now.
    pub queued: u64,
    /// Largest sampled queue depth.
    pub max_sampled_depth: u64,
    /// `(ms since start, queued)` samples, oldest first.
    pub depth_series: Vec<(u64, u64)>,
    /// Steal events, all workers.
    pub steals: u64,
    /// Per worker.
    pub workers: Vec<WorkerSnapshot>,
    /// Submit → start.
    pub queue_wait: HistogramSnapshot,
    /// Start → end.
    pub run: HistogramSnapshot,
    /// Global-mutex design: how long the queue lock was held (sampled).
    pub lock_hold: HistogramSnapshot,
    /// Global-mutex design: how long taking the queue lock waited (sampled).
    pub lock_wait: HistogramSnapshot,
}

/// Histogram bucket bounds used in the Prometheus text (seconds).
const PROM_BOUNDS_S: [f64; 12] = [
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 1.0,
];

impl PoolSnapshot {
    /// Tasks accepted and neither completed, panicked nor cancelled (queued or running now;
    /// zero after a shutdown means every task was accounted for).
    pub fn unaccounted(&self) -> u64 {
        self.submitted
            .saturating_sub(self.completed + self.panicked + self.cancelled)
    }

    /// Largest |share − 1/N| / (1/N) over workers, percent (0 = perfectly even).
    pub fn share_deviation_pct(&self) -> f64 {
        let total: u64 = self.workers.iter().map(|w| w.tasks).sum();
        let n = self.workers.len();
        if total == 0 || n == 0 {
            return 0.0;
        }
        let fair = 1.0 / n as f64;
        self.workers
            .iter()
            .map(|w| ((w.tasks as f64 / total as f64) - fair).abs() / fair * 100.0)
            .fold(0.0, f64::max)
    }

    /// The snapshot in the Prometheus text exposition format, labelled with `pool`.
    pub fn prometheus(&self, pool: &str) -> String {
        let mut o = String::new();
        let l = format!("pool=\"{pool}\",design=\"{}\"", self.design);
        let _ = writeln!(o, "# HELP zyphos_pool_tasks_total Tasks by outcome.");
        let _ = writeln!(o, "# TYPE zyphos_pool_tasks_total counter");
        for (outcome, v) in [
            ("submitted", self.submitted),
            ("completed", self.completed),
            ("panicked", self.panicked),
            ("cancelled", self.cancelled),
            ("run_inline", self.run_inline),
        ] {
            let _ = writeln!(
                o,
                "zyphos_pool_tasks_total{{{l},outcome=\"{outcome}\"}} {v}"
            );
        }
        let _ = writeln!(
            o,
            "# HELP zyphos_pool_rejected_total Submissions refused, by reason."
        );
        let _ = writeln!(o, "# TYPE zyphos_pool_rejected_total counter");
        let _ = writeln!(
            o,
            "zyphos_pool_rejected_total{{{l},reason=\"queue_full\"}} {}",
            self.rejected_queue_full
        );
        let _ = writeln!(
            o,
            "zyphos_pool_rejected_total{{{l},reason=\"shutting_down\"}} {}",
            self.rejected_shutting_down
        );
        let _ = writeln!(
            o,
            "zyphos_pool_rejected_total{{{l},reason=\"queue_delay\"}} {}",
            self.rejected_queue_delay
        );
        let _ = writeln!(
            o,
            "# HELP zyphos_pool_queue_depth Tasks queued, not started."
        );
        let _ = writeln!(o, "# TYPE zyphos_pool_queue_depth gauge");
        let _ = writeln!(o, "zyphos_pool_queue_depth{{{l}}} {}", self.queued);
        let _ = writeln!(
            o,
            "# HELP zyphos_pool_queue_depth_max Largest sampled queue depth."
        );
        let _ = writeln!(o, "# TYPE zyphos_pool_queue_depth_max gauge");
        let _ = writeln!(
            o,
            "zyphos_pool_queue_depth_max{{{l}}} {}",
            self.max_sampled_depth
        );
        let _ = writeln!(
            o,
            "# HELP zyphos_pool_worker_restarts_total Worker loops restarted after a crash."
        );
        let _ = writeln!(o, "# TYPE zyphos_pool_worker_restarts_total counter");
        let _ = writeln!(
            o,
            "zyphos_pool_worker_restarts_total{{{l}}} {}",
            self.worker_restarts
        );
        for (name, help, f) in [
            (
                "zyphos_pool_worker_tasks_total",
                "Tasks run per worker.",
                (|w: &WorkerSnapshot| w.tasks as f64) as fn(&WorkerSnapshot) -> f64,
            ),
            (
                "zyphos_pool_worker_busy_seconds_total",
                "Time each worker spent running tasks.",
                |w| w.busy_ns as f64 / 1e9,
            ),
            (
                "zyphos_pool_worker_utilisation",
                "Busy time / uptime per worker.",
                |w| w.utilisation,
            ),
            (
                "zyphos_pool_steals_total",
                "Successful steals per worker.",
                |w| w.steals as f64,
            ),
        ] {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            for w in &self.workers {
                let _ = writeln!(o, "{name}{{{l},worker=\"{}\"}} {}", w.worker, f(w));
            }
        }
        for (name, help, h) in [
            (
                "zyphos_pool_task_queue_wait_seconds",
                "Task latency, submit to start.",
                &self.queue_wait,
            ),
            (
                "zyphos_pool_task_run_seconds",
                "Task latency, start to end.",
                &self.run,
            ),
            (
                "zyphos_pool_lock_hold_seconds",
                "Global queue lock hold time (sampled).",
                &self.lock_hold,
            ),
            (
                "zyphos_pool_lock_wait_seconds",
                "Global queue lock wait time (sampled).",
                &self.lock_wait,
            ),
        ] {
            write_histogram(&mut o, name, help, &l, h);
        }
        o
    }
}

fn write_histogram(o: &mut String, name: &str, help: &str, labels: &str, h: &HistogramSnapshot) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} histogram");
    let bounds_ns: Vec<u64> = PROM_BOUNDS_S.iter().map(|s| (s * 1e9) as u64).collect();
    for (s, c) in PROM_BOUNDS_S.iter().zip(h.cumulative(&bounds_ns)) {
        let _ = writeln!(o, "{name}_bucket{{{labels},le=\"{s}\"}} {c}");
    }
    let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(o, "{name}_sum{{{labels}}} {}", h.sum_ns as f64 / 1e9);
    let _ = writeln!(o, "{name}_count{{{labels}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_histogram_buckets_bound_values() {
        for v in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            15,
            16,
            100,
            1_000,
            65_535,
            1 << 40,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_upper(b) >= v, "{v} above its bucket {b}");
            if b > 0 {
                assert!(bucket_upper(b - 1) < v, "{v} belongs lower than {b}");
            }
            // Within 25 %: the bucket's width is a quarter of its lower bound.
            assert!(bucket_upper(b) as f64 <= (v as f64) * 1.25 + 1.0, "{v}");
        }
    }

    #[test]
    fn test_histogram_quantiles_track_values() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 1000);
        let p50 = s.quantile_ns(0.5) as f64 / 1e3;
        let p99 = s.quantile_ns(0.99) as f64 / 1e3;
        assert!((500.0..=625.0).contains(&p50), "p50 {p50}");
        assert!((990.0..=1000.0).contains(&p99), "p99 {p99}");
        assert_eq!(s.quantile_ns(1.0), 1_000_000);
    }
}
