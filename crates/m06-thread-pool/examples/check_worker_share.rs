//! Exit check `worker_share_deviation_pct`: 1,000,000 uniform tasks (≈ 1 µs each) queued on the
//! default pool (work stealing, one worker per core) while its workers are held, then released
//! at once (so one submitter's speed does not decide who gets work); per run, the deviation is
//! the max over workers of |share − 1/N| / (1/N), percent, from the pool's per-worker counters
//! (the holding tasks included). Measured: the median over 7 runs. A scheduler that is unfair
//! skews every run; another process stealing one worker's core for a while skews one (the
//! per-run figures are in the detail).

use std::time::Duration;

use m06_thread_pool::{PoolConfig, lab};

const RUNS: usize = 7;
const TASKS: usize = 1_000_000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_micros(1));
        let workers = PoolConfig::default().workers;
        let (mut devs, mut runs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (tps, report) = lab::prefilled_run(PoolConfig::default(), TASKS, units)?;
            let s = &report.snapshot;
            let shares: Vec<String> = s
                .workers
                .iter()
                .map(|w| {
                    format!(
                        "w{}={} ({:.0}% busy)",
                        w.worker,
                        w.tasks,
                        w.utilisation * 100.0
                    )
                })
                .collect();
            let dev = s.share_deviation_pct();
            eprintln!("deviation {dev:.2}%: {}", shares.join(", "));
            runs.push(format!(
                "{dev:.1}% [{}; steals {}; {tps:.0} tasks/s]",
                shares.join(" "),
                s.steals
            ));
            devs.push(dev);
        }
        let median = lab::median(&devs);
        lab::print_measured(
            lab::round(median, 2),
            "%",
            &format!(
                "median over {RUNS} runs of 1M tasks of ~1 µs on {workers} workers (work \
                 stealing): {}; {}",
                runs.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
