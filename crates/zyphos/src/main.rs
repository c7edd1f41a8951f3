//! `zyphos`: the binary that composes the milestones.
//!
//! Every technique the milestones build is a layer, so the binary can switch each one on and off:
//! that is the lab. `zyphos serve` picks an I/O model (`--io`), a protocol stack (`--proto`) and
//! the number of workers; later milestones add their own switches (`--buffers`, `--http1-parser`,
//! `--sendfile`, …). A milestone's manifest (`milestones/NN-slug.toml`, `[server] args`) names the
//! switches that make "the server as of milestone N", which `cargo xtask compare A B` runs side by
//! side.
//!
//! The binary only offers what is built. Asking for an I/O model or a protocol whose milestone has
//! not landed yet is a one-line error that names the milestone, never a silent fallback.

mod cli;
mod site;

use clap::Parser;
use std::process::ExitCode;

/// The allocator of the server process: mimalloc, not glibc's malloc.
///
/// With `--io epoll` every loop allocates its connections' sessions on its own thread, but a
/// connection may be migrated to another loop (milestone 10's work stealing) and is then freed
/// there. glibc frees a block into the arena it came from, under that arena's mutex: when the
/// owning loop is allocating at the same moment (a burst of accepts or closes on both loops),
/// the free waits in `futex(2)`. `strace -f -k -e trace=futex` on `zyphos serve --workers 2`
/// showed exactly these (`__libc_free` → `__lll_lock_wait_private` from dropping a migrated
/// `Http11Session`), 0–3 per million requests, which is what m10's
/// `hot_path_lock_acquisitions` check counts. mimalloc hands a block freed by another thread
/// back to its owner through an atomic list, so a loop never waits for another to free.
/// (The request path itself allocates nothing in steady state: see
/// `tests/request_path_allocs.rs`.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zyphos: {err:#}");
            ExitCode::FAILURE
        }
    }
}
