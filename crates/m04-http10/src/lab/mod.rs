//! Harness for tests, experiments and exit checks (hidden: scaffolding around the lesson).

pub use m01_raw_sockets::lab::{
    Table, have_tool, machine, print_check, print_measured, quick, round, run_main,
};

/// TSC cycles now (x86_64), for the cycles-per-byte experiment.
pub fn tsc() -> Option<u64> {
    crate::sys::rdtsc()
}

pub mod fuzz;

pub use crate::sys::CountingAlloc;
pub mod cost;
pub mod generate;
pub mod malformed;
