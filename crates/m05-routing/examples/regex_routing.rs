//! Experiment ``:quick())?:regex_routing_cost: the segment router vs the regex crate (one Regex per route, or a RegexSet).
//! Prints one JSON table on stdout; `--quick` for a short run.

use m05_routing::lab::{self, experiments};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        experiments::regex_routing(lab::quick())?.print();
        Ok(())
    })
}
