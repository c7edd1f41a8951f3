//! Experiment `pool_vs_baselines`: our pool (both designs) vs a crossbeam-channel pool and
//! `rayon::spawn`, same workload, same run, 2 workers each, one outside submitter; ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m06_thread_pool::{PoolConfig, QueueDesign, lab};

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
        let quick = lab::quick();
        let (tasks, rounds) = if quick { (100_000, 1) } else { (1_000_000, 3) };
        let rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .map_err(std::io::Error::other)?;
        let mut t = lab::Table::new(
            "Our pool vs crossbeam-channel pool vs rayon::spawn (2 workers, same run)",
            &[
                "task",
                "executor",
                "tasks/s (median)",
                "ours (stealing) / this",
            ],
        );
        for (label, d) in [
            ("0.5 µs", Duration::from_nanos(500)),
            ("5 µs", Duration::from_micros(5)),
        ] {
            let units = lab::units_for(d);
            let n = if d > Duration::from_micros(1) {
                tasks / 5
            } else {
                tasks
            };
            let mut v: [Vec<f64>; 4] = Default::default();
            for _ in 0..rounds {
                v[0].push(
                    lab::pool_throughput(
                        PoolConfig::with(2, QueueDesign::WorkStealing),
                        n,
                        units,
                        64,
                    )?
                    .0,
                );
                v[1].push(
                    lab::pool_throughput(
                        PoolConfig::with(2, QueueDesign::GlobalMutex),
                        n,
                        units,
                        64,
                    )?
                    .0,
                );
                v[2].push(lab::channel_throughput(2, 1024, n, units));
                v[3].push(rayon_throughput(&rayon, n, units));
            }
            let m: Vec<f64> = v.iter().map(|x| lab::median(x)).collect();
            for (i, name) in [
                "m06 work stealing",
                "m06 global mutex",
                "crossbeam channel pool",
                "rayon::spawn",
            ]
            .iter()
            .enumerate()
            {
                t.rows.push(vec![
                    label.into(),
                    (*name).into(),
                    lab::round(m[i], 0).into(),
                    lab::round(m[0] / m[i], 2).into(),
                ]);
            }
        }
        t.notes = format!(
            "{tasks} tasks of 0.5 µs (and a fifth as many of 5 µs), one outside submitter; our pools take batches of 64 (execute_batch, retry on QueueFull), the channel pool blocks on a bounded(1024) channel, rayon::spawn is unbounded. Median of {rounds} alternating round(s). {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
