//! The live view: a running table-server's connections next to the kernel's sockets, like
//! `ss -tn`. What `zyphos conns` runs.

fn main() -> std::process::ExitCode {
    m02_tcp_state::cli::conns_main(std::env::args().skip(1))
}
