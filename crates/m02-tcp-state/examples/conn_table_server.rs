//! The echo server with a connection table: `echo_server`'s flags plus the table's (see
//! `m02_tcp_state::cli`). What `zyphos echo --conn-table` runs.

fn main() -> std::process::ExitCode {
    m02_tcp_state::cli::server_main(std::env::args().skip(1))
}
