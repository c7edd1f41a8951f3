//! Experiment `max_threads`: ramps parked threads (128 KiB stacks) until creation fails or the
//! bound (15,000; `--quick`: 2,000) is reached, with memory at each step. Prints one JSON table.

use m03_thread_per_conn::lab::{self, experiments};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (t, _) = experiments::max_threads_table(lab::quick())?;
        t.print();
        Ok(())
    })
}
