//! Exit check `task_throughput`: completed tasks/s over 1,000,000 small tasks (≈ 0.5 µs of work
//! each, submitted from one thread in batches of 64) on the work-stealing pool with 2 workers;
//! median of 3 runs. The same workload on a crossbeam-channel pool and on `rayon::spawn`
//! (same run, alternating) gives the ratios in the detail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m06_thread_pool::lab;
use m06_thread_pool::{PoolConfig, QueueDesign};

const TASKS: usize = 1_000_000;

fn rayon_throughput(pool: &rayon::ThreadPool, tasks: usize, units: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    for _ in 0..tasks {
        let d = Arc::clone(&done);
        pool.spawn(move || {
            lab::work(units);
            d.fetch_add(1, Ordering::Relaxed);
        });
    }
    while done.load(Ordering::Relaxed) < tasks as u64 {
        std::thread::yield_now();
    }
    tasks as f64 / t.elapsed().as_secs_f64()
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_nanos(500));
        let rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .map_err(std::io::Error::other)?;
        let (mut ours, mut chan, mut ray) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..3 {
            let (tps, report) = lab::pool_throughput(
                PoolConfig::with(2, QueueDesign::WorkStealing),
                TASKS,
                units,
                64,
            )?;
            if report.unaccounted() != 0 || report.snapshot.completed != TASKS as u64 {
                return Err(std::io::Error::other("pool lost tasks"));
            }
            ours.push(tps);
            chan.push(lab::channel_throughput(2, 1024, TASKS, units));
            ray.push(rayon_throughput(&rayon, TASKS, units));
            eprintln!(
                "round {round}: pool {:.0}/s, channel {:.0}/s, rayon {:.0}/s",
                ours[round], chan[round], ray[round]
            );
        }
        let (o, c, r) = (lab::median(&ours), lab::median(&chan), lab::median(&ray));
        lab::print_measured(
            lab::round(o, 0),
            "tasks/s",
            &format!(
                "1M tasks of ~0.5 µs, 2 workers, work stealing, median of 3: {o:.0}/s; crossbeam-channel pool {c:.0}/s (ratio {:.2}); rayon::spawn {r:.0}/s (ratio {:.2}); {}",
                o / c,
                o / r,
                lab::machine()
            ),
        );
        Ok(())
    })
}
