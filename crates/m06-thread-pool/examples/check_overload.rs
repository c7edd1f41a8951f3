//! Exit check `overload_latency_p999_ms`: p99.9 submit → start latency of accepted tasks while
//! offering twice the pool's measured capacity, open loop (excess rejected with `QueueFull` or
//! `QueueDelay`, counted). Five windows of 6 s (30 s in all); each window measures capacity
//! first (saturated, same task), then offers twice that. Measured: the median of the five
//! windows' p99.9 (each window's figures are in the detail): a burst of load from another
//! process that stalls the workers for milliseconds lands in one window's tail, not in the
//! pool's bound; a pool whose admission does not bound the wait fails every window.
//! Admission: the count bound from `PoolConfig::capacity_for_latency` (2 ms budget at the
//! nominal task time: 200 tasks) plus the delay bound `max_queue_delay` = 1 ms, which holds
//! even when the workers run slower than nominal because other processes take CPU.

use std::time::Duration;

use m06_thread_pool::{PoolConfig, QueueDesign, lab};

const WINDOWS: usize = 5;
const WINDOW: Duration = Duration::from_secs(6);

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let task = Duration::from_micros(20);
        let units = lab::units_for(task);
        let workers = 2;
        let mut config = PoolConfig::with(workers, QueueDesign::WorkStealing);
        config.queue_capacity =
            PoolConfig::capacity_for_latency(workers, task, Duration::from_millis(2));
        config.max_queue_delay = Some(Duration::from_millis(1));
        let (mut p999s, mut windows) = (Vec::new(), Vec::new());
        let mut unaccounted = 0;
        for w in 0..WINDOWS {
            // Capacity: saturated throughput of this task on this pool, now.
            let (capacity, _) = lab::pool_throughput(config.clone(), 100_000, units, 16)?;
            let offered = 2.0 * capacity;
            eprintln!("window {w}: capacity {capacity:.0} tasks/s; offering {offered:.0}/s");
            let run = lab::open_loop(config.clone(), offered, WINDOW, units)?;
            let s = &run.report.snapshot;
            let p999 = s.queue_wait.quantile_ns(0.999) as f64 / 1e6;
            unaccounted += run.report.unaccounted();
            windows.push(format!(
                "[capacity {capacity:.0}/s, offered {:.0}/s, completed {:.0}/s, rejected \
                 {:.1}% (QueueFull {}, QueueDelay {}), accepted {}: p50 {:.3} ms, p99 {:.3} ms, \
                 p99.9 {p999:.3} ms, max {:.3} ms]",
                run.offered_per_s,
                run.completed_per_s,
                run.rejected_share * 100.0,
                s.rejected_queue_full,
                s.rejected_queue_delay,
                s.submitted,
                s.queue_wait.quantile_ns(0.5) as f64 / 1e6,
                s.queue_wait.quantile_ns(0.99) as f64 / 1e6,
                s.queue_wait.max_ns as f64 / 1e6,
            ));
            p999s.push(p999);
        }
        let median = lab::median(&p999s);
        lab::print_measured(
            lab::round(median, 3),
            "ms",
            &format!(
                "median of {WINDOWS} windows' p99.9 submit→start; 20 µs tasks, {workers} \
                 workers, queue capacity {}, 2x capacity offered open loop for {} s per window: \
                 {}; unaccounted {unaccounted}; {}",
                config.queue_capacity,
                WINDOW.as_secs(),
                windows.join(" "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
