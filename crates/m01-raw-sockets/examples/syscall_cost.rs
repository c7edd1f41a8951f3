//! Experiment `syscall_cost_vs_buffer_size`: ns per `write`/`read` call and MB/s over loopback TCP
//! for buffers from 64 B to 1 MiB. Prints one JSON table on stdout; `--quick` for a short run.

use m01_raw_sockets::lab;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::cost::table(lab::quick())?.print();
        Ok(())
    })
}
