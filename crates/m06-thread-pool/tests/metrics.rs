//! Each exposed metric, scraped from the Prometheus text before and after the pool does work it
//! should count: the metric must be there and must move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use m06_thread_pool::{PoolConfig, QueueDesign, ShutdownMode, ThreadPool};

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} {labels:?} not exposed in:\n{text}"))
}

fn pool(design: QueueDesign, workers: usize, capacity: usize) -> ThreadPool {
    let mut c = PoolConfig::with(workers, design);
    c.queue_capacity = capacity;
    c.depth_sample_interval = Some(Duration::from_millis(1));
    c.name = "metrics".into();
    ThreadPool::new(c).unwrap()
}

#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);
impl Gate {
    fn wait(&self) {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap();
        let _ = cv
            .wait_timeout_while(g, Duration::from_secs(5), |o| !*o)
            .unwrap();
    }
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

fn block(p: &ThreadPool, gate: &Gate) {
    let inside = Arc::new(AtomicUsize::new(0));
    for _ in 0..p.config().workers {
        let (g, i) = (gate.clone(), Arc::clone(&inside));
        p.execute(move || {
            i.fetch_add(1, Ordering::SeqCst);
            g.wait();
        })
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while inside.load(Ordering::SeqCst) < p.config().workers && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

fn settle(p: &ThreadPool, completed: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.snapshot().completed < completed && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn test_prometheus_tasks_total_moves() {
    let p = pool(QueueDesign::WorkStealing, 2, 1000);
    let before = p.prometheus();
    let l = ["pool=\"metrics\"", "outcome=\"completed\""];
    assert_eq!(sample(&before, "zyphos_pool_tasks_total", &l), 0.0);
    for _ in 0..50 {
        p.execute(|| {}).unwrap();
    }
    let h = p
        .submit(|| panic!("counted panic (expected in this test)"))
        .unwrap();
    h.wait_timeout(Duration::from_secs(5));
    settle(&p, 50);
    let after = p.prometheus();
    assert_eq!(sample(&after, "zyphos_pool_tasks_total", &l), 50.0);
    assert_eq!(
        sample(
            &after,
            "zyphos_pool_tasks_total",
            &["outcome=\"submitted\""]
        ),
        51.0
    );
    assert_eq!(
        sample(&after, "zyphos_pool_tasks_total", &["outcome=\"panicked\""]),
        1.0
    );
    p.shutdown(ShutdownMode::Drain);
}

#[test]
fn test_prometheus_queue_depth_moves() {
    for design in QueueDesign::ALL {
        let p = pool(design, 1, 1000);
        let gate = Gate::default();
        block(&p, &gate);
        for _ in 0..10 {
            p.execute(|| {}).unwrap();
        }
        // Wait for the sampler (every 1 ms, but a loaded machine may not run it for a while) to
        // have taken a sample of the full queue, instead of sleeping and hoping it did.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.snapshot().depth_series.iter().any(|&(_, d)| d == 10) {
            assert!(Instant::now() < deadline, "{design:?}: series never saw 10");
            thread::sleep(Duration::from_millis(1));
        }
        let full = p.prometheus();
        assert_eq!(sample(&full, "zyphos_pool_queue_depth", &[]), 10.0);
        assert!(sample(&full, "zyphos_pool_queue_depth_max", &[]) >= 10.0);
        gate.open();
        settle(&p, 11);
        let drained = p.prometheus();
        assert_eq!(sample(&drained, "zyphos_pool_queue_depth", &[]), 0.0);
        p.shutdown(ShutdownMode::Drain);
    }
}

#[test]
fn test_prometheus_task_latency_histograms_move() {
    let p = pool(QueueDesign::WorkStealing, 2, 1000);
    let count = |t: &str, n: &str| sample(t, &format!("{n}_count"), &[]);
    let before = p.prometheus();
    assert_eq!(count(&before, "zyphos_pool_task_queue_wait_seconds"), 0.0);
    for _ in 0..20 {
        p.execute(|| thread::sleep(Duration::from_millis(1)))
            .unwrap();
    }
    settle(&p, 20);
    let after = p.prometheus();
    assert_eq!(count(&after, "zyphos_pool_task_queue_wait_seconds"), 20.0);
    assert_eq!(count(&after, "zyphos_pool_task_run_seconds"), 20.0);
    // Each run took ≥ 1 ms: none is in the ≤ 0.5 ms bucket, all are in +Inf.
    assert_eq!(
        sample(
            &after,
            "zyphos_pool_task_run_seconds_bucket",
            &["le=\"0.0005\""]
        ),
        0.0
    );
    assert!(sample(&after, "zyphos_pool_task_run_seconds_sum", &[]) >= 0.02);
    p.shutdown(ShutdownMode::Drain);
}

#[test]
fn test_prometheus_worker_utilisation_moves() {
    let p = pool(QueueDesign::GlobalMutex, 2, 1000);
    for _ in 0..10 {
        p.execute(|| thread::sleep(Duration::from_millis(5)))
            .unwrap();
    }
    settle(&p, 10);
    let t = p.prometheus();
    let busy: f64 = (0..2)
        .map(|w| {
            sample(
                &t,
                "zyphos_pool_worker_busy_seconds_total",
                &[&format!("worker=\"{w}\"")],
            )
        })
        .sum();
    assert!(busy >= 0.05, "busy {busy}");
    let u0 = sample(&t, "zyphos_pool_worker_utilisation", &["worker=\"0\""]);
    assert!(u0 > 0.0 && u0 <= 1.0);
    let tasks: f64 = (0..2)
        .map(|w| {
            sample(
                &t,
                "zyphos_pool_worker_tasks_total",
                &[&format!("worker=\"{w}\"")],
            )
        })
        .sum();
    assert_eq!(tasks, 10.0);
    p.shutdown(ShutdownMode::Drain);
}

#[test]
fn test_prometheus_steals_total_moves() {
    let p = pool(QueueDesign::WorkStealing, 2, 10_000);
    let steals = |t: &str| -> f64 {
        (0..2)
            .map(|w| sample(t, "zyphos_pool_steals_total", &[&format!("worker=\"{w}\"")]))
            .sum()
    };
    assert_eq!(steals(&p.prometheus()), 0.0);
    let sp = p.spawner();
    let elsewhere = Arc::new(AtomicUsize::new(0));
    p.execute(move || {
        let me = thread::current().id();
        for _ in 0..100 {
            let e = Arc::clone(&elsewhere);
            sp.execute(move || {
                if thread::current().id() != me {
                    e.fetch_add(1, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_micros(100));
            })
            .unwrap();
        }
        // Stay busy until the idle worker has stolen a child (bounded), not for a guessed time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while elsewhere.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    })
    .unwrap();
    settle(&p, 101);
    assert!(steals(&p.prometheus()) > 0.0);
    p.shutdown(ShutdownMode::Drain);
}

#[test]
fn test_prometheus_lock_hold_histogram_moves() {
    let p = pool(QueueDesign::GlobalMutex, 2, 100_000);
    let before = p.prometheus();
    assert_eq!(
        sample(&before, "zyphos_pool_lock_hold_seconds_count", &[]),
        0.0
    );
    for _ in 0..1000 {
        p.execute(|| {}).unwrap();
    }
    settle(&p, 1000);
    let after = p.prometheus();
    // Sampled 1 in 16 per thread: ~1000 pushes + ~1000 pops give well over 50 samples.
    assert!(sample(&after, "zyphos_pool_lock_hold_seconds_count", &[]) >= 50.0);
    assert!(sample(&after, "zyphos_pool_lock_wait_seconds_count", &[]) >= 50.0);
    p.shutdown(ShutdownMode::Drain);
}

#[test]
fn test_prometheus_rejected_total_moves() {
    let p = pool(QueueDesign::WorkStealing, 1, 4);
    let gate = Gate::default();
    block(&p, &gate);
    let l = ["reason=\"queue_full\""];
    assert_eq!(
        sample(&p.prometheus(), "zyphos_pool_rejected_total", &l),
        0.0
    );
    let refused = (0..10).filter(|_| p.execute(|| {}).is_err()).count();
    assert_eq!(refused, 6);
    assert_eq!(
        sample(&p.prometheus(), "zyphos_pool_rejected_total", &l),
        6.0
    );
    gate.open();
    p.shutdown(ShutdownMode::Drain);
}
