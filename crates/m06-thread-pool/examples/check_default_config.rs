//! Exit check `default_config_vs_best`: throughput of `PoolConfig::default()` relative to the
//! best point of the sweep workers {1,2,4,8,16} × {global mutex, work stealing}, same run.
//! Workload: 60,000 tasks of ≈ 5 µs queued behind held workers, then released (no submitter
//! competing for the cores).
//!
//! Two phases, so that noise from other processes on the machine neither picks the winner nor
//! grades it with the same samples (picking the maximum of ten noisy figures and comparing the
//! default against it biases the figure down: the winner's curse):
//! 1. **selection**: 3 rounds over all ten configurations (order rotated each round); the best
//!    is the one with the highest median throughput;
//! 2. **confirmation**: 11 fresh rounds of default and that best run back to back (order
//!    alternating), the ratio taken per round; measured = the median ratio, percent. A default
//!    that is really slower shows in every pair; a burst of load shows in one.
//!
//! What pairing cannot remove: on a machine that other processes keep busy, a configuration
//! with more threads than cores gets a larger share of the CPU from the OS scheduler (8
//! runnable workers against the others' threads instead of 2), so it can win for reasons that
//! have nothing to do with the pool. The detail reports the selection table so that this
//! shows.

use std::time::Duration;

use m06_thread_pool::{PoolConfig, QueueDesign, lab};

const WORKERS: [usize; 5] = [1, 2, 4, 8, 16];
const TASKS: usize = 60_000;
const SELECTION_ROUNDS: usize = 3;
const CONFIRM_ROUNDS: usize = 11;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let units = lab::units_for(Duration::from_micros(5));
        let run = |c: PoolConfig| lab::prefilled_run(c, TASKS, units).map(|(tps, _)| tps);
        let points: Vec<(String, PoolConfig)> = WORKERS
            .iter()
            .flat_map(|&n| {
                QueueDesign::ALL
                    .into_iter()
                    .map(move |d| (format!("{}/{n}", d.name()), PoolConfig::with(n, d)))
            })
            .collect();
        // Warm-up: thread creation, page faults of the queues, CPU frequency.
        run(PoolConfig::default())?;
        let mut sel: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
        for round in 0..SELECTION_ROUNDS {
            for k in 0..points.len() {
                let i = (k + round * 3) % points.len();
                sel[i].push(run(points[i].1.clone())?);
            }
            eprintln!("selection round {round} done");
        }
        let medians: Vec<f64> = sel.iter().map(|v| lab::median(v)).collect();
        let best = (0..points.len())
            .max_by(|&a, &b| medians[a].total_cmp(&medians[b]))
            .unwrap_or(0);
        let (best_name, best_config) = &points[best];
        let (mut ratios, mut d_tps, mut b_tps) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..CONFIRM_ROUNDS {
            let (d, b) = if round % 2 == 0 {
                let d = run(PoolConfig::default())?;
                (d, run(best_config.clone())?)
            } else {
                let b = run(best_config.clone())?;
                (run(PoolConfig::default())?, b)
            };
            ratios.push(d / b);
            d_tps.push(d);
            b_tps.push(b);
        }
        let pct = 100.0 * lab::median(&ratios);
        let table: Vec<String> = points
            .iter()
            .zip(&medians)
            .map(|((n, _), m)| format!("{n} {m:.0}"))
            .collect();
        let per_round: Vec<String> = ratios.iter().map(|r| format!("{:.1}", r * 100.0)).collect();
        let d = PoolConfig::default();
        lab::print_measured(
            lab::round(pct, 2),
            "%",
            &format!(
                "default ({} workers, {}) vs best of the sweep {best_name}: median of \
                 {CONFIRM_ROUNDS} paired rounds {pct:.1}% (per round: {}; default median \
                 {:.0} tasks/s, {best_name} {:.0}); selection (median of {SELECTION_ROUNDS} \
                 rotated rounds, tasks/s): {}; {TASKS} tasks of ~5 µs, prefilled; {}",
                d.workers,
                d.design.name(),
                per_round.join(", "),
                lab::median(&d_tps),
                lab::median(&b_tps),
                table.join(", "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
