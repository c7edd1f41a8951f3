//! Experiment `throughput_vs_threads`: echo round trips/s with 1…1,000 concurrent clients, one
//! server thread each (`--quick`: up to 100). Prints one JSON table.

use m03_thread_per_conn::lab::{self, experiments};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let t = experiments::throughput_table(lab::quick())?;
        t.print();
        Ok(())
    })
}
