//! Exit check `thread_creation_cost_table`: measures spawn + join latency (p50/p99, 5
//! repetitions at 1…10,000 threads) at full size, validates the table and checks that the
//! write-up documents the `thread_creation_cost` experiment. Prints `{"pass", "detail"}`.

use m03_thread_per_conn::lab::{self, experiments};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let t = experiments::thread_creation_table(false)?;
        let mut problems = experiments::validate_creation_table(&t, false);
        problems.extend(experiments::doc_mentions(&["thread_creation_cost"]));
        let last = t.rows.last().cloned().unwrap_or_default();
        lab::print_check(
            problems.is_empty(),
            &if problems.is_empty() {
                format!(
                    "{} rows; at {} threads spawn+join p50 {} us, p99 {} us",
                    t.rows.len(),
                    last.first().cloned().unwrap_or_default(),
                    last.get(6).cloned().unwrap_or_default(),
                    last.get(7).cloned().unwrap_or_default()
                )
            } else {
                problems.join("; ")
            },
        );
        Ok(())
    })
}
