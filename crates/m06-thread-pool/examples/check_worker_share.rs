//! Exit check `worker_share_deviation_pct`: 1,000,000 uniform tasks (≈ 1 µs each) queued on the
//! default pool (work stealing, one worker per core) while its workers are held, then released
//! at once (so one submitter's speed does not decide who gets work); measured = max over workers
//! of |share − 1/N| / (1/N), percent, from the pool's per-worker counters (the two holding tasks
//! included).

use std::time::Duration;

use m06_thread_pool::{PoolConfig, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_micros(1));
        let config = PoolConfig::default();
        let workers = config.workers;
        let (tps, report) = lab::prefilled_run(config, 1_000_000, units)?;
        let s = &report.snapshot;
        let shares: Vec<String> = s
            .workers
            .iter()
            .map(|w| {
                format!(
                    "w{}={} ({:.1}% busy)",
                    w.worker,
                    w.tasks,
                    w.utilisation * 100.0
                )
            })
            .collect();
        lab::print_measured(
            lab::round(s.share_deviation_pct(), 2),
            "%",
            &format!(
                "1M tasks of ~1 µs on {workers} workers (work stealing): {}; steals {}; {tps:.0} tasks/s; {}",
                shares.join(", "),
                s.steals,
                lab::machine()
            ),
        );
        Ok(())
    })
}
