//! Command line: subcommands, lab switches, and the honest "not built yet" answers.

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::process::ExitCode;

/// The default listen address of every server in the lab.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

#[derive(Debug, Parser)]
#[command(
    name = "zyphos",
    version,
    about = "A network-protocol laboratory that is also a small, fast, hardened server.",
    long_about = "A network-protocol laboratory that is also a small, fast, hardened server.\n\n\
        Without a subcommand, `zyphos` runs `zyphos serve` with its defaults. Each switch turns one \
        technique of the thirty milestones on or off, so the same workload can be measured under \
        different I/O models and protocol implementations (`cargo xtask compare A B`). A switch \
        whose milestone is not built yet is refused with the milestone's number and name.",
    after_help = "Walk the milestones with `cargo xtask milestone N` (checklist), \
        `cargo xtask milestone N --verify` (tests, exit criteria, measurements) and \
        `cargo xtask compare A B` (two milestones' servers under the same load)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the built-in lab site over TCP (the default subcommand).
    Serve(ServeArgs),
    /// Milestone 1's TCP echo server: raw Berkeley sockets, poll(2), every syscall counted and
    /// timed (the table is printed at exit). Ctrl-C or SIGTERM shuts it down gracefully.
    ///
    /// Options (milestone 1's own command line, passed through unchanged):
    /// --listen ADDR (127.0.0.1:3000), --mode poll|blocking, --backlog N, --buffer-size BYTES,
    /// --max-connections N, --sndbuf BYTES, --rcvbuf BYTES, --read-timeout-ms MS,
    /// --write-timeout-ms MS, --drain-ms MS, --nofile N, --quiet, --no-inspect, --json-report,
    /// --keep-sigpipe-ignored. With --conn-table, milestone 2's connection table tracks every
    /// connection's TCP state against the kernel's (see `zyphos conns`); its own options are
    /// listed by `zyphos echo --conn-table --help`.
    #[command(disable_help_flag = true)]
    Echo {
        /// Arguments for the echo server (see above); `zyphos echo --help` prints its usage.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Milestone 2's live view: the connections of a server on a port, like `ss`, with our
    /// tracked TCP state next to the kernel's and the time in state.
    ///
    /// Options: --port N (3000), --file PATH, --watch MS, --json; `zyphos conns --help` for all.
    #[command(disable_help_flag = true)]
    Conns {
        /// Arguments for the view (see above).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The switches of `zyphos serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed at start-up).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// I/O model: one thread per connection (m03), a thread pool (m06), an epoll event loop
    /// (m09; one per core with --workers, m10) or io_uring (m15).
    #[arg(long, value_enum, default_value_t = Io::Epoll)]
    io: Io,

    /// Worker count: event loops for epoll/uring, pool threads for `pool`. Defaults to the
    /// number of CPUs.
    #[arg(long)]
    workers: Option<usize>,

    /// Protocol stack spoken on the listener.
    #[arg(long, value_enum, default_value_t = Proto::Http11)]
    proto: Proto,
}

/// The I/O models of the lab, each a driver built by one milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Io {
    /// Blocking sockets, one thread per connection (milestone 3).
    Threads,
    /// Blocking sockets served by a fixed work-stealing thread pool (milestone 6).
    Pool,
    /// Non-blocking sockets on an epoll reactor (milestone 9), one loop per core (milestone 10).
    Epoll,
    /// Completion-based io_uring loop (milestone 15).
    Uring,
}

impl Io {
    /// The milestone that builds this driver, as (number, crate).
    fn milestone(self) -> (u32, &'static str) {
        match self {
            Io::Threads => (3, "m03-thread-per-conn"),
            Io::Pool => (6, "m06-thread-pool"),
            Io::Epoll => (9, "m09-event-loop"),
            Io::Uring => (15, "m15-io-uring"),
        }
    }
}

/// The protocol stacks of the lab, each a sans-IO core built by one milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// TCP echo (milestone 1's protocol, as a core from milestone 3).
    Echo,
    /// HTTP/1.0, one request per connection (milestone 4).
    #[value(name = "http1.0")]
    Http10,
    /// HTTP/1.1 with keep-alive, pipelining and chunked bodies (milestone 8).
    #[value(name = "http1.1")]
    Http11,
    /// HTTP/2 over cleartext with prior knowledge (milestones 23–24).
    H2c,
}

impl Proto {
    /// The milestone that builds this protocol core, as (number, crate).
    fn milestone(self) -> (u32, &'static str) {
        match self {
            Proto::Echo => (3, "m03-thread-per-conn"),
            Proto::Http10 => (4, "m04-http10"),
            Proto::Http11 => (8, "m08-http11"),
            Proto::H2c => (24, "m24-h2-streams"),
        }
    }
}

/// Runs the parsed command line.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    let command = cli.command.unwrap_or_else(|| {
        Command::Serve(ServeArgs {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address is valid"),
            io: Io::Epoll,
            workers: None,
            proto: Proto::Http11,
        })
    });
    match command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Echo { args } => echo(args),
        Command::Conns { args } => Ok(m02_tcp_state::cli::conns_main(args)),
    }
}

/// `zyphos echo`: milestone 1's server with its own command line; it prints its syscall table
/// at exit and exits 2 on a usage error, like `echo_server`.
fn echo(args: Vec<String>) -> Result<ExitCode> {
    if args.iter().any(|a| a == "--conn-table") {
        return Ok(m02_tcp_state::cli::server_main(args));
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "{}",
            m01_raw_sockets::cli::USAGE.replacen("echo_server", "zyphos echo", 1)
        );
        return Ok(ExitCode::SUCCESS);
    }
    Ok(m01_raw_sockets::cli::main(args))
}

fn serve(args: ServeArgs) -> Result<()> {
    let mut missing = vec![args.io.milestone(), args.proto.milestone()];
    missing.dedup();
    let needs = missing
        .iter()
        .map(|(number, krate)| format!("milestone {number} ({krate})"))
        .collect::<Vec<_>>()
        .join(" and ");
    let first = missing[0].0;
    // Nothing of the serving stack is built yet: say exactly which milestones are missing.
    bail!(
        "`serve --io {io} --proto {proto}` on {listen} needs {needs}, not built yet; \
         see `cargo xtask milestone {first}`",
        io = value_name(args.io),
        proto = value_name(args.proto),
        listen = args.listen,
    )
}

/// The command-line spelling of a value (`http1.1`, `epoll`).
fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
