//! Harness for experiments, exit checks and benches: calibrated work, a throughput runner, the
//! crossbeam-channel baseline pool, an open-loop load driver, the shutdown scenario. Output
//! helpers come from milestone 1's lab.
//!
//! Hidden from the docs: it is scaffolding around the lesson, not the lesson.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use m01_raw_sockets::lab::{
    Table, machine, print_check, print_json, print_measured, quantile, quick, round, run_main,
};

use crate::{PoolConfig, QueueDesign, ShutdownMode, ShutdownReport, SubmitError, ThreadPool};

/// `units` rounds of integer mixing: deterministic CPU work that the optimiser cannot remove.
#[inline(never)]
pub fn work(units: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for i in 0..units {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD).wrapping_add(i);
    }
    black_box(x)
}

/// Work units per microsecond on this machine (measured once per process, best of 5).
pub fn units_per_us() -> f64 {
    static CAL: OnceLock<f64> = OnceLock::new();
    *CAL.get_or_init(|| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            work(200_000);
            best = best.min(t.elapsed().as_secs_f64());
        }
        200_000.0 / (best * 1e6)
    })
}

/// Work units for a task of about `d` of CPU.
pub fn units_for(d: Duration) -> u64 {
    (units_per_us() * d.as_secs_f64() * 1e6).round().max(1.0) as u64
}

/// Throughput of one run: `tasks` tasks of `units` work each, submitted from this thread in
/// batches of `batch` (retrying with a yield while the queue is full). Returns tasks/s and the
/// pool's shutdown report.
pub fn pool_throughput(
    config: PoolConfig,
    tasks: usize,
    units: u64,
    batch: usize,
) -> std::io::Result<(f64, ShutdownReport)> {
    let pool = ThreadPool::new(config)?;
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut left = tasks;
    while left > 0 {
        let n = batch.min(left).max(1);
        loop {
            let d = Arc::clone(&done);
            let r = pool.execute_batch((0..n).map(|_| {
                let d = Arc::clone(&d);
                move || {
                    work(units);
                    d.fetch_add(1, Ordering::Relaxed);
                }
            }));
            match r {
                Ok(_) => break,
                Err(SubmitError::QueueFull { .. } | SubmitError::QueueDelay { .. }) => {
                    thread::yield_now()
                }
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        left -= n;
    }
    while done.load(Ordering::Relaxed) < tasks as u64 {
        thread::yield_now();
    }
    let secs = t.elapsed().as_secs_f64();
    let report = pool.shutdown(ShutdownMode::Drain);
    Ok((tasks as f64 / secs, report))
}

/// The established baseline: `workers` threads receiving boxed closures from one bounded
/// crossbeam channel.
pub struct ChannelPool {
    tx: Option<crossbeam::channel::Sender<Box<dyn FnOnce() + Send>>>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl ChannelPool {
    /// Starts `workers` threads behind a channel of `capacity`.
    pub fn new(workers: usize, capacity: usize) -> ChannelPool {
        let (tx, rx) = crossbeam::channel::bounded::<Box<dyn FnOnce() + Send>>(capacity);
        let workers = (0..workers)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    while let Ok(f) = rx.recv() {
                        f();
                    }
                })
            })
            .collect();
        ChannelPool {
            tx: Some(tx),
            workers,
        }
    }

    /// Queues `f`, blocking while the channel is full.
    pub fn run(&self, f: Box<dyn FnOnce() + Send>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(f);
        }
    }

    /// Closes the channel and joins the workers (after they ran everything queued).
    pub fn join(mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Throughput of the channel baseline on the same workload as [`pool_throughput`].
pub fn channel_throughput(workers: usize, capacity: usize, tasks: usize, units: u64) -> f64 {
    let pool = ChannelPool::new(workers, capacity);
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    for _ in 0..tasks {
        let d = Arc::clone(&done);
        pool.run(Box::new(move || {
            work(units);
            d.fetch_add(1, Ordering::Relaxed);
        }));
    }
    while done.load(Ordering::Relaxed) < tasks as u64 {
        thread::yield_now();
    }
    let secs = t.elapsed().as_secs_f64();
    pool.join();
    tasks as f64 / secs
}

/// Median of `xs` (0 when empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    quantile(&mut v, 0.5)
}

/// What [`open_loop`] measured.
#[derive(Debug, Clone)]
pub struct OpenLoop {
    /// Tasks offered per second (intended).
    pub offered_per_s: f64,
    /// Tasks accepted and completed per second.
    pub completed_per_s: f64,
    /// Share of offered tasks rejected with `QueueFull`.
    pub rejected_share: f64,
    /// The pool's final report (queue-wait histogram: submit → start).
    pub report: ShutdownReport,
}

/// Offers `rate` tasks/s of `units` work for `duration`, open loop: every millisecond the
/// submitter queues every task due by the clock, one by one (a rejected task is dropped and
/// counted, never retried), whatever the pool's state.
pub fn open_loop(
    config: PoolConfig,
    rate: f64,
    duration: Duration,
    units: u64,
) -> std::io::Result<OpenLoop> {
    let pool = ThreadPool::new(config)?;
    let start = Instant::now();
    let mut offered: u64 = 0;
    let mut rejected: u64 = 0;
    loop {
        let now = start.elapsed();
        if now >= duration {
            break;
        }
        let due = (now.as_secs_f64() * rate) as u64;
        while offered < due {
            offered += 1;
            if pool
                .execute(move || {
                    work(units);
                })
                .is_err()
            {
                rejected += 1;
            }
        }
        thread::sleep(Duration::from_micros(500));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let report = pool.shutdown(ShutdownMode::Drain);
    Ok(OpenLoop {
        offered_per_s: offered as f64 / elapsed,
        completed_per_s: report.snapshot.completed as f64 / elapsed,
        rejected_share: if offered == 0 {
            0.0
        } else {
            rejected as f64 / offered as f64
        },
        report,
    })
}

/// A latch the shutdown scenario uses to hold the workers while it fills the queue.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Waits (at most 30 s) until opened.
    pub fn wait(&self) {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let _ = cv.wait_timeout_while(g, Duration::from_secs(30), |open| !*open);
    }

    /// Opens it.
    pub fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

/// What [`shutdown_scenario`] found.
#[derive(Debug, Clone)]
pub struct ShutdownOutcome {
    /// Tasks the test queued from outside (all accepted).
    pub queued: u64,
    /// Children accepted from running tasks.
    pub spawned: u64,
    /// Task bodies that ran (independent tally).
    pub ran: u64,
    /// Accepted tasks the pool does not account for (its own books).
    pub pool_unaccounted: u64,
    /// Accepted tasks the independent tally does not account for: drain expects every one to
    /// have run; cancel expects ran + cancelled = accepted.
    pub tally_unaccounted: u64,
    /// Workers not joined.
    pub workers_missing: u64,
    /// The pool's report.
    pub report: ShutdownReport,
}

/// Queues `n` tasks behind blocked workers (every 10th submits a child when it runs, every
/// 100th is submitted with a handle and every 1,000th of those is cancelled through it), then
/// releases the workers and shuts down in `mode` at once.
pub fn shutdown_scenario(
    design: QueueDesign,
    mode: ShutdownMode,
    n: usize,
) -> std::io::Result<ShutdownOutcome> {
    let mut c = PoolConfig::with(2, design);
    c.queue_capacity = n + n / 10 + 16;
    let pool = ThreadPool::new(c)?;
    let gate = Gate::default();
    let inside = Arc::new(AtomicU64::new(0));
    for _ in 0..2 {
        let (g, i) = (gate.clone(), Arc::clone(&inside));
        pool.execute(move || {
            i.fetch_add(1, Ordering::SeqCst);
            g.wait();
        })
        .map_err(std::io::Error::other)?;
    }
    while inside.load(Ordering::SeqCst) < 2 {
        thread::yield_now();
    }
    let ran = Arc::new(AtomicU64::new(0));
    let spawned = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for i in 0..n {
        let (sp, ran, spawned) = (pool.spawner(), Arc::clone(&ran), Arc::clone(&spawned));
        let body = move || {
            ran.fetch_add(1, Ordering::Relaxed);
            if i % 10 == 0 {
                let r2 = Arc::clone(&ran);
                if sp
                    .execute(move || {
                        r2.fetch_add(1, Ordering::Relaxed);
                    })
                    .is_ok()
                {
                    spawned.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        if i % 100 == 0 {
            let h = pool.submit(body).map_err(std::io::Error::other)?;
            if i % 100_000 == 0 {
                h.cancel();
            }
            handles.push(h);
        } else {
            pool.execute(body).map_err(std::io::Error::other)?;
        }
    }
    gate.open();
    let report = pool.shutdown(mode);
    let ran = ran.load(Ordering::Relaxed);
    let spawned = spawned.load(Ordering::Relaxed);
    let accepted = n as u64 + spawned;
    // Drain: the cancelled term is only the handle-cancelled tasks; cancel: everything queued.
    let by_tally = ran + report.snapshot.cancelled;
    let handles_open = handles.iter().filter(|h| !h.status().is_final()).count() as u64;
    Ok(ShutdownOutcome {
        queued: n as u64,
        spawned,
        ran,
        pool_unaccounted: report.unaccounted(),
        tally_unaccounted: accepted.abs_diff(by_tally) + handles_open,
        workers_missing: (report.workers - report.workers_joined) as u64,
        report,
    })
}

/// Throughputs of a sweep, per configuration, one value per round.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// `("global_mutex/2", [tasks/s per round])`, in sweep order.
    pub points: Vec<(String, Vec<f64>)>,
    /// `PoolConfig::default()`, one value per round.
    pub default: Vec<f64>,
}

/// Runs `tasks` tasks of `units` ([`prefilled_run`]: queued, then released) on every `workers` ×
/// design point and on the default config, `rounds` times, alternating configurations within
/// each round.
pub fn sweep(workers: &[usize], tasks: usize, units: u64, rounds: usize) -> std::io::Result<Sweep> {
    let mut out = Sweep::default();
    for &n in workers {
        for d in QueueDesign::ALL {
            out.points.push((format!("{}/{n}", d.name()), Vec::new()));
        }
    }
    for round in 0..rounds {
        let (tps, _) = prefilled_run(PoolConfig::default(), tasks, units)?;
        out.default.push(tps);
        let mut i = 0;
        for &n in workers {
            for d in QueueDesign::ALL {
                let (tps, _) = prefilled_run(PoolConfig::with(n, d), tasks, units)?;
                out.points[i].1.push(tps);
                i += 1;
            }
        }
        eprintln!("sweep round {round} done");
    }
    Ok(out)
}

/// Queues `tasks` tasks of `units` behind blocked workers, then releases them all at once and
/// drains: the distribution then depends on the scheduler alone, not on how fast one submitter
/// thread can feed the pool. Returns tasks/s (from release to drained) and the report.
pub fn prefilled_run(
    mut config: PoolConfig,
    tasks: usize,
    units: u64,
) -> std::io::Result<(f64, ShutdownReport)> {
    config.queue_capacity = config.queue_capacity.max(tasks + config.workers);
    let workers = config.workers;
    let pool = ThreadPool::new(config)?;
    let gate = Gate::default();
    let inside = Arc::new(AtomicU64::new(0));
    for _ in 0..workers {
        let (g, i) = (gate.clone(), Arc::clone(&inside));
        pool.execute(move || {
            i.fetch_add(1, Ordering::SeqCst);
            g.wait();
        })
        .map_err(std::io::Error::other)?;
    }
    while inside.load(Ordering::SeqCst) < workers as u64 {
        thread::yield_now();
    }
    let mut left = tasks;
    while left > 0 {
        let n = left.min(1024);
        pool.execute_batch((0..n).map(|_| {
            move || {
                work(units);
            }
        }))
        .map_err(std::io::Error::other)?;
        left -= n;
    }
    let t = Instant::now();
    gate.open();
    while pool.queued() > 0 {
        thread::sleep(Duration::from_micros(200));
    }
    let report = pool.shutdown(ShutdownMode::Drain);
    Ok((tasks as f64 / t.elapsed().as_secs_f64(), report))
}

/// Heavy-tailed task sizes in work units: Pareto with shape 1.5 and minimum `min_units`
/// (mean 3 × min, uncapped), capped at `max_units`; `seed` makes the sequence reproducible.
pub fn pareto_sizes(n: usize, min_units: u64, max_units: u64, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            // xorshift64*, top 53 bits as a uniform in (0, 1].
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let size = min_units as f64 / u.powf(1.0 / 1.5);
            (size as u64).clamp(min_units.max(1), max_units)
        })
        .collect()
}

/// What [`local_submit_run`] measured.
#[derive(Debug, Clone)]
pub struct LocalSubmitRun {
    /// Per worker: share of all busy time (time spent running tasks), 0…1.
    pub busy_share: Vec<f64>,
    /// Per worker: share of the work units run, 0…1.
    pub unit_share: Vec<f64>,
    /// Largest |busy share − 1/N| / (1/N), percent.
    pub deviation_pct: f64,
    /// Tasks moved between workers by steals.
    pub stolen_tasks: u64,
    /// Accepted tasks the pool does not account for after shutdown.
    pub unaccounted: u64,
    /// Wall time from the root task's start to the end of the drain.
    pub elapsed: Duration,
}

/// One task submitted from outside lands on one worker; it then submits every task of `sizes`
/// from inside that worker (so all of them go to that worker's local deque, none to the shared
/// injector), and the pool drains. Only stealing can move work to the other workers. The
/// deviation is computed from busy time (so a worker slowed by another process on its core is
/// not counted as unfair, as long as it had work the whole time).
pub fn local_submit_run(mut config: PoolConfig, sizes: &[u64]) -> std::io::Result<LocalSubmitRun> {
    config.queue_capacity = config.queue_capacity.max(sizes.len() + config.workers + 1);
    let n = config.workers;
    let pool = ThreadPool::new(config)?;
    let units_by_worker: Arc<Vec<AtomicU64>> =
        Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let names: Arc<Vec<String>> = Arc::new(
        (0..n)
            .map(|i| format!("{}-{i}", pool.config().name))
            .collect(),
    );
    let (sp, sizes_owned) = (pool.spawner(), sizes.to_vec());
    let started = Arc::new(OnceLock::new());
    let st = Arc::clone(&started);
    let (ub, nm) = (Arc::clone(&units_by_worker), Arc::clone(&names));
    pool.execute(move || {
        let _ = st.set(Instant::now());
        for units in sizes_owned {
            let (ub, nm) = (Arc::clone(&ub), Arc::clone(&nm));
            sp.execute(move || {
                work(units);
                let me = thread::current();
                if let Some(i) = nm.iter().position(|n| Some(n.as_str()) == me.name()) {
                    ub[i].fetch_add(units, Ordering::Relaxed);
                }
            })
            .expect("queue sized for every task");
        }
    })
    .map_err(std::io::Error::other)?;
    let report = pool.shutdown(ShutdownMode::Drain);
    let elapsed = started.get().map_or(Duration::ZERO, |t| t.elapsed());
    let s = &report.snapshot;
    let busy: Vec<f64> = s.workers.iter().map(|w| w.busy_ns as f64).collect();
    let busy_total: f64 = busy.iter().sum::<f64>().max(1.0);
    let busy_share: Vec<f64> = busy.iter().map(|b| b / busy_total).collect();
    let units: Vec<f64> = units_by_worker
        .iter()
        .map(|u| u.load(Ordering::Relaxed) as f64)
        .collect();
    let units_total: f64 = units.iter().sum::<f64>().max(1.0);
    let fair = 1.0 / n as f64;
    let deviation_pct = busy_share
        .iter()
        .map(|b| (b - fair).abs() / fair * 100.0)
        .fold(0.0, f64::max);
    Ok(LocalSubmitRun {
        busy_share,
        unit_share: units.iter().map(|u| u / units_total).collect(),
        deviation_pct,
        stolen_tasks: s.workers.iter().map(|w| w.stolen_tasks).sum(),
        unaccounted: report.unaccounted(),
        elapsed,
    })
}
