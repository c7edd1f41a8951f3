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
