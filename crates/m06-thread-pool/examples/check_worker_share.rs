//! Exit check `worker_share_deviation_pct`: does work stealing spread work that arrives unevenly?
//!
//! Each run: one task submitted from outside lands on one worker, and that task submits 100,000
//! tasks from inside the worker, so every one of them goes to that worker's local deque (none to
//! the shared injector). Task sizes are heavy-tailed (Pareto, shape 1.5, 1 µs minimum, capped at
//! 2 ms; mean ≈ 3 µs; a fresh seed per run). The pool (default config: work stealing, one worker
//! per core) then drains. Only stealing can move work to the other workers, and the few huge
//! tasks make an even split by count meaningless. Per run, the deviation is the max over
//! workers of |busy share − 1/N| / (1/N), percent, where busy share is the worker's time spent
//! running tasks over all workers' (a worker whose core another process takes for a while
//! still counts as busy, so the figure is about who had work, not about the machine's noise).
//! Measured: the **worst** of 7 runs.
//!
//! Control, same runs and sizes with `PoolConfig::steal = false`: the other workers never get
//! any of these tasks, so its deviation is about (N − 1) × 100 %. The check exits with an error
//! unless even the control's best run misses the 10 % bar (a setup in which work ends up
//! balanced without stealing measures nothing), or if any run leaves a task unaccounted for.
//! What makes it fail: stealing that moves too little or too late (one worker busy while the
//! others idle for more than ~10 % of the run), in any one of the 7 runs.

use std::time::Duration;

use m06_thread_pool::{PoolConfig, lab};

const RUNS: usize = 7;
const CONTROL_RUNS: usize = 3;
const TASKS: usize = 100_000;
const BAR_PCT: f64 = 10.0;

fn describe(r: &lab::LocalSubmitRun) -> String {
    let pct = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.1}%", x * 100.0))
            .collect::<Vec<_>>()
            .join("/")
    };
    format!(
        "{:.1}% [busy {}; units {}; stolen {}; {:.0} ms]",
        r.deviation_pct,
        pct(&r.busy_share),
        pct(&r.unit_share),
        r.stolen_tasks,
        r.elapsed.as_secs_f64() * 1e3
    )
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let min = lab::units_for(Duration::from_micros(1)).max(1);
        let max = lab::units_for(Duration::from_millis(2)).max(min);
        let workers = PoolConfig::default().workers;
        let (mut devs, mut runs) = (Vec::new(), Vec::new());
        let (mut control_devs, mut controls) = (Vec::new(), Vec::new());
        let mut unaccounted = 0;
        for i in 0..RUNS {
            let sizes = lab::pareto_sizes(TASKS, min, max, 0x5eed + i as u64);
            let r = lab::local_submit_run(PoolConfig::default(), &sizes)?;
            eprintln!("stealing run {i}: {}", describe(&r));
            unaccounted += r.unaccounted;
            runs.push(describe(&r));
            devs.push(r.deviation_pct);
            if i < CONTROL_RUNS {
                let config = PoolConfig {
                    steal: false,
                    ..PoolConfig::default()
                };
                let c = lab::local_submit_run(config, &sizes)?;
                eprintln!("control run {i}: {}", describe(&c));
                unaccounted += c.unaccounted;
                controls.push(describe(&c));
                control_devs.push(c.deviation_pct);
            }
        }
        let worst = devs.iter().copied().fold(0.0, f64::max);
        let control_best = control_devs.iter().copied().fold(f64::INFINITY, f64::min);
        if unaccounted != 0 {
            return Err(std::io::Error::other(format!(
                "{unaccounted} tasks unaccounted for"
            )));
        }
        if workers > 1 && control_best <= BAR_PCT {
            return Err(std::io::Error::other(format!(
                "control without stealing met the {BAR_PCT}% bar ({control_best:.1}%): the \
                 setup balances work by itself; runs: {}",
                controls.join("; ")
            )));
        }
        lab::print_measured(
            lab::round(worst, 2),
            "%",
            &format!(
                "worst of {RUNS} runs: 100K heavy-tailed tasks (Pareto 1.5, 1 µs..2 ms) \
                 submitted from inside one worker onto its local deque, {workers} workers \
                 (work stealing), deviation of busy-time share: {}; control without stealing \
                 (best of {CONTROL_RUNS}: {control_best:.1}%): {}; {}",
                runs.join("; "),
                controls.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
