//! `echo_server`: the milestone-1 echo server as a standalone process.
//!
//! Prints its bound address on the first line of stdout; see [`m01_raw_sockets::cli`] for flags.

fn main() -> std::process::ExitCode {
    m01_raw_sockets::cli::main(std::env::args().skip(1))
}
