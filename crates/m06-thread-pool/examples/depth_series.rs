//! Experiment `queue_depth_over_time`: the sampled queue-depth series through a burst: 1 worker,
//! 50 µs tasks, a burst of 2,000 tasks at t = 50 ms, a second of 1,000 at t = 150 ms.

use std::thread;
use std::time::Duration;

use m06_thread_pool::{PoolConfig, QueueDesign, ShutdownMode, ThreadPool, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_micros(50));
        let mut c = PoolConfig::with(1, QueueDesign::WorkStealing);
        c.queue_capacity = 4096;
        c.depth_sample_interval = Some(Duration::from_millis(if lab::quick() { 5 } else { 2 }));
        let pool = ThreadPool::new(c)?;
        thread::sleep(Duration::from_millis(50));
        for n in [2000usize, 1000] {
            pool.execute_batch((0..n).map(|_| {
                move || {
                    lab::work(units);
                }
            }))
            .map_err(std::io::Error::other)?;
            thread::sleep(Duration::from_millis(100));
        }
        while pool.queued() > 0 {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(20));
        let r = pool.shutdown(ShutdownMode::Drain);
        let s = &r.snapshot;
        let mut t = lab::Table::new(
            "Queue depth over time (sampled): two bursts, one worker",
            &["t ms", "queued"],
        );
        // Keep the table readable: at most ~60 rows, always including the peak.
        let step = (s.depth_series.len() / 60).max(1);
        for (i, &(ms, d)) in s.depth_series.iter().enumerate() {
            if i % step == 0 || d == s.max_sampled_depth {
                t.rows.push(vec![ms.into(), d.into()]);
            }
        }
        t.notes = format!(
            "Sampler thread reads the queued-task count every {:?} into a bounded ring (PoolSnapshot::depth_series; Prometheus: zyphos_pool_queue_depth, _max). Peak {} queued; {} tasks completed; queue wait p99 {:.1} ms. {}",
            Duration::from_millis(if lab::quick() { 5 } else { 2 }),
            s.max_sampled_depth,
            s.completed,
            s.queue_wait.quantile_ns(0.99) as f64 / 1e6,
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
