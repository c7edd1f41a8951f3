//! Experiment `throughput_vs_latency`: open-loop offered load from 25 % to 200 % of the pool's
//! measured capacity (20 µs tasks, 2 workers, work stealing, queue capacity 500 and a 2 ms
//! delay budget): completed rate, rejections, submit → start latency.

use std::time::Duration;

use m06_thread_pool::{PoolConfig, QueueDesign, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let dur = Duration::from_millis(if quick { 500 } else { 3000 });
        let task = Duration::from_micros(20);
        let units = lab::units_for(task);
        let mut config = PoolConfig::with(2, QueueDesign::WorkStealing);
        config.queue_capacity = PoolConfig::capacity_for_latency(2, task, Duration::from_millis(5));
        config.max_queue_delay = Some(Duration::from_millis(2));
        let (capacity, _) = lab::pool_throughput(
            config.clone(),
            if quick { 20_000 } else { 100_000 },
            units,
            16,
        )?;
        let mut t = lab::Table::new(
            "Throughput vs latency under open-loop load (20 µs tasks, 2 workers)",
            &[
                "offered % of capacity",
                "offered/s",
                "completed/s",
                "rejected %",
                "wait p50 ms",
                "wait p99 ms",
                "wait p99.9 ms",
                "wait max ms",
                "run p50 µs",
            ],
        );
        for pct in [25.0, 50.0, 75.0, 90.0, 100.0, 125.0, 150.0, 200.0] {
            let r = lab::open_loop(config.clone(), capacity * pct / 100.0, dur, units)?;
            let s = &r.report.snapshot;
            let ms = |ns: u64| lab::round(ns as f64 / 1e6, 3);
            t.rows.push(vec![
                pct.into(),
                lab::round(r.offered_per_s, 0).into(),
                lab::round(r.completed_per_s, 0).into(),
                lab::round(r.rejected_share * 100.0, 2).into(),
                ms(s.queue_wait.quantile_ns(0.5)).into(),
                ms(s.queue_wait.quantile_ns(0.99)).into(),
                ms(s.queue_wait.quantile_ns(0.999)).into(),
                ms(s.queue_wait.max_ns).into(),
                lab::round(s.run.quantile_ns(0.5) as f64 / 1e3, 1).into(),
            ]);
        }
        t.notes = format!(
            "Capacity measured first: {capacity:.0} tasks/s saturated. Each point runs {dur:?}, open loop (the submitter queues what the clock says is due every 0.5 ms, rejected tasks are dropped). Below capacity the wait is the wake-up cost; near capacity it grows (queueing); above, admission control (count bound + 2 ms delay budget) rejects the excess and the wait of accepted tasks stays bounded instead of growing without limit. Latencies are log-linear bucket upper bounds (≤ 25 % high). {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
