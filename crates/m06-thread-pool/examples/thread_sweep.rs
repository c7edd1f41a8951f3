//! Experiment `thread_count_sweep`: throughput of 5 µs tasks at 1, 2, 4, 8, 16 workers, both
//! queue designs (tasks queued behind held workers, then released; median of rounds).

use std::time::Duration;

use m06_thread_pool::{PoolConfig, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let (tasks, rounds) = if quick { (20_000, 1) } else { (100_000, 3) };
        let units = lab::units_for(Duration::from_micros(5));
        let sweep = lab::sweep(&[1, 2, 4, 8, 16], tasks, units, rounds)?;
        let best = sweep
            .points
            .iter()
            .map(|(_, v)| lab::median(v))
            .fold(0.0, f64::max);
        let mut t = lab::Table::new(
            "Thread count sweep: 5 µs tasks, both queue designs",
            &[
                "config",
                "workers",
                "design",
                "tasks/s (median)",
                "% of best",
                "min",
                "max",
            ],
        );
        for (name, v) in &sweep.points {
            let (design, workers) = name.split_once('/').unwrap_or((name, "?"));
            let m = lab::median(v);
            t.rows.push(vec![
                name.as_str().into(),
                workers.parse::<u64>().unwrap_or(0).into(),
                design.into(),
                lab::round(m, 0).into(),
                lab::round(100.0 * m / best, 1).into(),
                lab::round(v.iter().copied().fold(f64::MAX, f64::min), 0).into(),
                lab::round(v.iter().copied().fold(0.0, f64::max), 0).into(),
            ]);
        }
        let d = PoolConfig::default();
        t.rows.push(vec![
            "default".into(),
            (d.workers as u64).into(),
            d.design.name().into(),
            lab::round(lab::median(&sweep.default), 0).into(),
            lab::round(100.0 * lab::median(&sweep.default) / best, 1).into(),
            "".into(),
            "".into(),
        ]);
        t.notes = format!(
            "{tasks} tasks of ~5 µs CPU per point, queued while the workers are held, then released (no submitter competing for the cores); {rounds} round(s), configurations alternating. On 2 cores, 2 workers should saturate the machine; more workers only add switches, unless other processes compete for the CPU (then more threads win a larger CPU share). {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
