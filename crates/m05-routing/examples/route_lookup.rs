//! Experiment ``:quick())?:route_lookup_algorithms: ns per lookup for linear, hash and prefix at 10, 100, 1,000 and 10,000 routes (quick: up to 1,000).
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::lookup_algorithms(lab::quick())?.print();
        Ok(())
    })
}
