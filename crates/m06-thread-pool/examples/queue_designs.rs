//! Experiment `queue_designs`: the global mutex+condvar queue vs work stealing, 2 workers, on
//! three workloads: fed by one outside submitter (tiny and 5 µs tasks) and a recursive
//! fan-out where tasks submit tasks. Throughput, queue wait, lock hold/wait (global), steals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m06_thread_pool::{
    PoolConfig, QueueDesign, ShutdownMode, ShutdownReport, Spawner, ThreadPool, lab,
};

fn fan(sp: Spawner, depth: u32, units: u64, leaves: Arc<AtomicU64>) {
    lab::work(units);
    if depth == 0 {
        leaves.fetch_add(1, Ordering::Relaxed);
        return;
    }
    for _ in 0..4 {
        let (s2, l) = (sp.clone(), Arc::clone(&leaves));
        let _ = sp.execute_or_run(move || fan(s2, depth - 1, units, l));
    }
}

fn fan_out(design: QueueDesign, depth: u32, units: u64) -> std::io::Result<(f64, ShutdownReport)> {
    let mut c = PoolConfig::with(2, design);
    c.queue_capacity = 1 << 20;
    let pool = ThreadPool::new(c)?;
    let leaves = Arc::new(AtomicU64::new(0));
    let want = 4u64.pow(depth);
    let (sp, l) = (pool.spawner(), Arc::clone(&leaves));
    let t = Instant::now();
    pool.execute(move || fan(sp, depth, units, l))
        .map_err(std::io::Error::other)?;
    while leaves.load(Ordering::Relaxed) < want {
        std::thread::sleep(Duration::from_micros(100));
    }
    let secs = t.elapsed().as_secs_f64();
    let r = pool.shutdown(ShutdownMode::Drain);
    Ok((r.snapshot.completed as f64 / secs, r))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let (fed, depth) = if quick { (50_000, 6) } else { (400_000, 8) };
        let tiny = lab::units_for(Duration::from_nanos(200));
        let five = lab::units_for(Duration::from_micros(5));
        let mut t = lab::Table::new(
            "Queue designs: global mutex+condvar vs work stealing (2 workers)",
            &[
                "workload",
                "design",
                "tasks/s",
                "queue wait p50 µs",
                "queue wait p99 µs",
                "lock hold p99 µs",
                "lock wait p99 µs",
                "steals",
                "run inline",
            ],
        );
        let workloads: [(&str, u64); 2] = [("fed, 0.2 µs tasks", tiny), ("fed, 5 µs tasks", five)];
        for (name, units) in workloads {
            let n = if units == five { fed / 4 } else { fed };
            for design in QueueDesign::ALL {
                let (tps, r) = lab::pool_throughput(PoolConfig::with(2, design), n, units, 1)?;
                t.rows.push(row(name, design, tps, &r));
            }
        }
        for design in QueueDesign::ALL {
            let (tps, r) = fan_out(design, depth, tiny)?;
            t.rows
                .push(row(&format!("fan-out 4^{depth}, 0.2 µs"), design, tps, &r));
        }
        t.notes = format!(
            "Fed: one outside thread submits one task at a time (execute, retry on QueueFull). Fan-out: one root task, each task submits 4 children down to depth {depth} (execute_or_run). Queue wait = submit → start. Lock times are sampled 1 op in 16 per thread (global design only). With work stealing, children go to the submitting worker's own deque (no shared lock) and the other worker steals half at a time. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}

fn row(name: &str, design: QueueDesign, tps: f64, r: &ShutdownReport) -> Vec<serde_json::Value> {
    let s = &r.snapshot;
    let us = |ns: u64| lab::round(ns as f64 / 1e3, 2);
    vec![
        name.into(),
        design.name().into(),
        lab::round(tps, 0).into(),
        us(s.queue_wait.quantile_ns(0.5)).into(),
        us(s.queue_wait.quantile_ns(0.99)).into(),
        us(s.lock_hold.quantile_ns(0.99)).into(),
        us(s.lock_wait.quantile_ns(0.99)).into(),
        s.steals.into(),
        s.run_inline.into(),
    ]
}
