//! Experiment `thread_creation_cost`: spawn + join latency (p50/p99) with 1…10,000 threads
//! alive at once, 5 repetitions each (`--quick`: up to 1,000). Prints one JSON table.

use m03_thread_per_conn::lab::{self, experiments};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let t = experiments::thread_creation_table(lab::quick())?;
        t.print();
        Ok(())
    })
}
