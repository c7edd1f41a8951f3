//! Exit check `shutdown_unaccounted_tasks`: 100,000 tasks queued behind blocked workers (every
//! 10th submits a child when it runs; every 100th has a handle), then shutdown — drain and
//! cancel, both queue designs. Measured = tasks neither completed nor reported cancelled, by the
//! pool's books plus by an independent tally, plus workers not joined, summed over the 4 runs.

use m06_thread_pool::{QueueDesign, ShutdownMode, lab};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut total = 0;
        let mut parts = Vec::new();
        for design in QueueDesign::ALL {
            for mode in [ShutdownMode::Drain, ShutdownMode::Cancel] {
                let o = lab::shutdown_scenario(design, mode, 100_000)?;
                let bad = o.pool_unaccounted + o.tally_unaccounted + o.workers_missing;
                total += bad;
                parts.push(format!(
                    "{}/{mode:?}: queued {} + spawned {}, ran {}, cancelled {}, unaccounted {bad}, {} of {} workers joined in {:.1} ms",
                    design.name(),
                    o.queued,
                    o.spawned,
                    o.ran,
                    o.report.snapshot.cancelled,
                    o.report.workers_joined,
                    o.report.workers,
                    o.report.took.as_secs_f64() * 1e3
                ));
                eprintln!("{}", parts.last().map_or("", String::as_str));
            }
        }
        lab::print_measured(total as f64, "tasks", &parts.join("; "));
        Ok(())
    })
}
