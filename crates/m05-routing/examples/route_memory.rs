//! Experiment ``:quick())?:routing_memory_overhead: heap bytes per route for each lookup algorithm (counting allocator).
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::memory_overhead(lab::quick())?.print();
        Ok(())
    })
}
