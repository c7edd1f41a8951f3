//! Exit check `default_config_vs_best`: throughput of `PoolConfig::default()` divided by the
//! best point of the sweep workers {1,2,4,8,16} × {global mutex, work stealing}, same run.
//! Workload: 60,000 tasks of ≈ 5 µs queued behind held workers, then released (no submitter
//! competing for the cores); 5 rounds, configurations alternating within each round; each
//! configuration's best round is compared (other processes on the machine can only slow a run
//! down, so the best round is the least disturbed estimate of what the configuration can do).

use std::time::Duration;

use m06_thread_pool::{PoolConfig, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_micros(5));
        let sweep = lab::sweep(&[1, 2, 4, 8, 16], 60_000, units, 5)?;
        let best_of = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let default = best_of(&sweep.default);
        let (best_name, best) = sweep
            .points
            .iter()
            .map(|(n, v)| (n.clone(), best_of(v)))
            .fold((String::new(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let pct = 100.0 * default / best;
        let table: Vec<String> = sweep
            .points
            .iter()
            .map(|(n, v)| format!("{n} {:.0}", best_of(v)))
            .collect();
        let d = PoolConfig::default();
        lab::print_measured(
            lab::round(pct, 2),
            "%",
            &format!(
                "default ({} workers, {}) {default:.0} tasks/s vs best {best_name} {best:.0}/s; sweep, best of 5: {}; {}",
                d.workers,
                d.design.name(),
                table.join(", "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
