//! Experiment ``:quick())?:url_decoding_cost: decode + normalise vs lookup vs a whole request, for paths with and without escapes.
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::url_decoding(lab::quick())?.print();
        Ok(())
    })
}
