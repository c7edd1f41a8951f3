//! Experiment `route_priority_ordering`: which route wins each ambiguous request and why, identical for all three algorithms.
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::priority_table()?.print();
        Ok(())
    })
}
