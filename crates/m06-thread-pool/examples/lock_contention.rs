//! Experiment `lock_contention`: the global queue's lock under 1, 2 and 4 submitting threads
//! (2 workers, tiny tasks): lock wait and hold times (sampled), throughput; work stealing beside
//! it for the same load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use m06_thread_pool::{PoolConfig, QueueDesign, ShutdownMode, SubmitError, ThreadPool, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let per = if lab::quick() { 20_000 } else { 200_000 };
        let units = lab::units_for(Duration::from_nanos(200));
        let mut t = lab::Table::new(
            "Lock contention: submitters × queue design (2 workers, 0.2 µs tasks)",
            &[
                "submitters",
                "design",
                "tasks/s",
                "lock wait p50 µs",
                "lock wait p99 µs",
                "lock hold p50 µs",
                "lock hold p99 µs",
                "lock samples",
            ],
        );
        for submitters in [1usize, 2, 4] {
            for design in QueueDesign::ALL {
                let pool = ThreadPool::new(PoolConfig::with(2, design))?;
                let done = Arc::new(AtomicU64::new(0));
                let start = Instant::now();
                let threads: Vec<_> = (0..submitters)
                    .map(|_| {
                        let (sp, done) = (pool.spawner(), Arc::clone(&done));
                        thread::spawn(move || {
                            for _ in 0..per {
                                loop {
                                    let d = Arc::clone(&done);
                                    match sp.execute(move || {
                                        lab::work(units);
                                        d.fetch_add(1, Ordering::Relaxed);
                                    }) {
                                        Ok(()) => break,
                                        Err(SubmitError::ShuttingDown) => return,
                                        Err(_) => thread::yield_now(),
                                    }
                                }
                            }
                        })
                    })
                    .collect();
                for th in threads {
                    let _ = th.join();
                }
                while done.load(Ordering::Relaxed) < (per * submitters) as u64 {
                    thread::yield_now();
                }
                let secs = start.elapsed().as_secs_f64();
                let r = pool.shutdown(ShutdownMode::Drain);
                let s = &r.snapshot;
                let us = |ns: u64| lab::round(ns as f64 / 1e3, 3);
                t.rows.push(vec![
                    (submitters as u64).into(),
                    design.name().into(),
                    lab::round((per * submitters) as f64 / secs, 0).into(),
                    us(s.lock_wait.quantile_ns(0.5)).into(),
                    us(s.lock_wait.quantile_ns(0.99)).into(),
                    us(s.lock_hold.quantile_ns(0.5)).into(),
                    us(s.lock_hold.quantile_ns(0.99)).into(),
                    s.lock_hold.count.into(),
                ]);
            }
        }
        t.notes = format!(
            "{per} tasks per submitter. Lock wait = time to acquire the global queue mutex, hold = acquire → release (sampled 1 op in 16 per thread; pops that slept on the condvar are excluded). Work stealing has no queue lock (lock columns 0): outside submitters push to a lock-free injector. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
