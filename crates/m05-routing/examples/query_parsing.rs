//! Experiment ``:quick())?:query_parsing_cost: ns per query string for the router's check, a lazy get and a full decode.
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::query_parsing(lab::quick())?.print();
        Ok(())
    })
}
