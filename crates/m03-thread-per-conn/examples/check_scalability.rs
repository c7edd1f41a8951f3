//! Exit check `scalability_limits_table`: measures the maximum sustainable thread count (ramp
//! to failure or 15,000) and throughput vs thread count (1…1,000 clients) at full size,
//! validates both tables and checks that the write-up documents `max_threads` and
//! `throughput_vs_threads`. Prints `{"pass", "detail"}`.

use m03_thread_per_conn::lab::{self, experiments};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (max, reached) = experiments::max_threads_table(false)?;
        let tp = experiments::throughput_table(false)?;
        let mut problems = experiments::validate_throughput_table(&tp, false);
        if reached < 1000 {
            problems.push(format!("only {reached} threads reached"));
        }
        let last = max.rows.last().cloned().unwrap_or_default();
        if last.first().and_then(|v| v.as_u64()) != Some(reached as u64) {
            problems.push("max_threads table lacks its final row".into());
        }
        if !max.notes.contains(&lab::machine()) {
            problems.push("max_threads notes lack the machine".into());
        }
        problems.extend(experiments::doc_mentions(&[
            "max_threads",
            "throughput_vs_threads",
        ]));
        let rps: Vec<String> = tp
            .rows
            .iter()
            .map(|r| format!("{}:{}", r[0], r[2]))
            .collect();
        lab::print_check(
            problems.is_empty(),
            &if problems.is_empty() {
                format!(
                    "max threads {reached} (stopped by {}); round trips/s by clients {}",
                    last.get(6).cloned().unwrap_or_default(),
                    rps.join(", ")
                )
            } else {
                problems.join("; ")
            },
        );
        Ok(())
    })
}
