//! Command line: subcommands, lab switches, and the honest "not built yet" answers.

use anyhow::{Context, Result, bail};
use m03_thread_per_conn::{
    EchoFactory, SessionFactory, ShutdownHandle, ThreadConfig, ThreadReport, ThreadServer,
};
use m04_http10::{Http10Factory, Limits};
use m05_routing::RouterKind;
use m06_thread_pool::{PoolServer, PoolServerConfig};
use m08_http11::{Http11Config, Http11Factory};
use m09_event_loop::LoopSnapshot;
use m10_multi_loop::{MultiConfig, MultiLoopServer};
use std::path::PathBuf;
use std::sync::Arc;

use crate::site;
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
    /// (m09; one per core with --workers, m10) or io_uring (m15). The default is the newest
    /// built one.
    #[arg(long, value_enum, default_value_t = DEFAULT_IO)]
    io: Io,

    /// Worker count: event loops for epoll/uring, pool threads for `pool`. Defaults to the
    /// number of CPUs.
    #[arg(long)]
    workers: Option<usize>,

    /// Protocol stack spoken on the listener. The default is the newest built HTTP.
    #[arg(long, value_enum, default_value_t = DEFAULT_PROTO)]
    proto: Proto,

    /// Route lookup algorithm of the lab site (milestone 5): try every route in order, a hash
    /// map of exact paths, or a segment trie.
    #[arg(long, value_enum, default_value_t = RouterChoice::Prefix)]
    router: RouterChoice,

    /// Directory served under `/static/` (default: the lab site shipped with the crate).
    #[arg(long)]
    root: Option<PathBuf>,

    /// Log every request to stderr in Common Log Format.
    #[arg(long)]
    access_log: bool,

    /// Server processes sharing the port (`--io epoll`): this one plus N−1 copies of itself,
    /// every loop of every process with its own SO_REUSEPORT listener. One process may hold
    /// at most RLIMIT_NOFILE connections; 100K connections need several.
    #[arg(long, default_value_t = 1)]
    processes: usize,

    /// Requests answered on one HTTP/1.1 connection before it is closed (`Connection: close`
    /// on the last), like nginx's `keepalive_requests` (default 1000, as nginx's).
    #[arg(long, default_value_t = DEFAULT_KEEPALIVE_REQUESTS)]
    keepalive_requests: u64,

    /// Do not pin event loops to CPUs (`--io epoll`; pinned by default, loop i on the i-th
    /// CPU the process may use).
    #[arg(long)]
    no_pin: bool,
}

/// The I/O model `zyphos serve` uses when none is given: event loops, one per CPU the process
/// may use (milestones 9 and 10). An idle keep-alive connection costs a table entry, not a
/// thread.
const DEFAULT_IO: Io = Io::Epoll;
/// Requests per HTTP/1.1 connection by default: m08's (and nginx's) 1000.
const DEFAULT_KEEPALIVE_REQUESTS: u64 = 1000;

/// The protocol `zyphos serve` speaks when none is given: the newest built HTTP core.
const DEFAULT_PROTO: Proto = Proto::Http11;

/// Route lookup algorithms (milestone 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RouterChoice {
    /// Every route in priority order.
    Linear,
    /// Exact paths in a hash map, then patterns in order.
    Hash,
    /// A segment trie.
    Prefix,
}

impl RouterChoice {
    fn kind(self) -> RouterKind {
        match self {
            RouterChoice::Linear => RouterKind::Linear,
            RouterChoice::Hash => RouterKind::Hash,
            RouterChoice::Prefix => RouterKind::Prefix,
        }
    }
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
            io: DEFAULT_IO,
            workers: None,
            proto: DEFAULT_PROTO,
            router: RouterChoice::Prefix,
            root: None,
            access_log: false,
            processes: 1,
            no_pin: false,
            keepalive_requests: DEFAULT_KEEPALIVE_REQUESTS,
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
    let built_io = matches!(args.io, Io::Threads | Io::Pool | Io::Epoll);
    let built_proto = matches!(args.proto, Proto::Echo | Proto::Http10 | Proto::Http11);
    if !(built_io && built_proto) {
        let mut missing = Vec::new();
        if !built_io {
            missing.push(args.io.milestone());
        }
        if !built_proto {
            missing.push(args.proto.milestone());
        }
        let needs = missing
            .iter()
            .map(|(number, krate)| format!("milestone {number} ({krate})"))
            .collect::<Vec<_>>()
            .join(" and ");
        bail!(
            "`serve --io {io} --proto {proto}` on {listen} needs {needs}, not built yet; \
             see `cargo xtask milestone {first}`",
            io = value_name(args.io),
            proto = value_name(args.proto),
            listen = args.listen,
            first = missing[0].0,
        );
    }
    let driver = match args.io {
        Io::Threads => {
            if args.workers.is_some() {
                bail!(
                    "--workers applies to `--io pool|epoll|uring`; `--io threads` runs one thread per connection"
                );
            }
            Driver::Threads(
                ThreadServer::bind(server_config(args.listen))
                    .with_context(|| format!("binding {}", args.listen))?,
            )
        }
        Io::Epoll => {
            let mut config = MultiConfig::new(args.listen);
            if let Some(workers) = args.workers {
                if workers == 0 {
                    bail!("--workers must be at least 1");
                }
                config.loops = workers;
            }
            config.pin = !args.no_pin;
            Driver::Epoll(
                MultiLoopServer::bind(config)
                    .with_context(|| format!("binding {}", args.listen))?,
            )
        }
        _ => {
            let mut config = PoolServerConfig::new(args.listen);
            config.server = server_config(args.listen);
            if let Some(workers) = args.workers {
                if workers == 0 {
                    bail!("--workers must be at least 1");
                }
                config.pool.workers = workers;
            }
            Driver::Pool(
                PoolServer::bind(config).with_context(|| format!("binding {}", args.listen))?,
            )
        }
    };
    let addr = driver.local_addr();
    if args.processes == 0 {
        bail!("--processes must be at least 1");
    }
    if args.processes > 1 && args.io != Io::Epoll {
        bail!("--processes applies to `--io epoll` (SO_REUSEPORT listeners)");
    }
    // The other processes join this one's port (its listeners are bound already).
    let children = spawn_copies(&args, addr)?;
    // First stdout line: the bound address (port 0 picks one), for scripts and tests.
    println!("{addr}");
    driver
        .shutdown_handle()
        .install_signal_handlers()
        .context("installing SIGINT/SIGTERM handlers")?;
    let io = value_name(args.io);
    let report = match args.proto {
        Proto::Echo => {
            eprintln!("zyphos: echo on {addr} (--io {io}); Ctrl-C stops");
            driver.run(Arc::new(EchoFactory::default()))?
        }
        Proto::Http10 | Proto::Http11 => {
            let stats = driver.stats_source();
            let root = args.root.clone().unwrap_or_else(site::default_root);
            let proto = value_name(args.proto);
            let router = site::router(site::SiteOptions {
                io: match args.io {
                    Io::Threads => "threads",
                    Io::Pool => "pool",
                    _ => "epoll",
                },
                proto: if args.proto == Proto::Http11 {
                    "http1.1"
                } else {
                    "http1.0"
                },
                router: args.router.kind(),
                root: root.clone(),
                addr,
                access_log: args.access_log,
                stats,
            })
            .with_context(|| format!("building the lab site (static root {})", root.display()))?;
            eprintln!(
                "zyphos: http://{addr}/ ({proto}, --io {io}, router {}); Ctrl-C stops",
                site::router_name(args.router.kind())
            );
            let service = Arc::new(router);
            if args.proto == Proto::Http11 {
                if args.keepalive_requests == 0 {
                    bail!("--keepalive-requests must be at least 1");
                }
                driver.run(Arc::new(Http11Factory::new(
                    service,
                    Http11Config {
                        max_requests: args.keepalive_requests,
                        ..Http11Config::default()
                    },
                )))?
            } else {
                driver.run(Arc::new(Http10Factory::new(service, Limits::default())))?
            }
        }
        Proto::H2c => unreachable!("refused above: not built"),
    };
    eprintln!("zyphos: {report}");
    stop_copies(children);
    Ok(())
}

/// The accept side as `zyphos serve` runs it: milestone 3's defaults, without the per-thread
/// `/proc` sampling (about twenty syscalls per connection, for experiments, not for serving).
fn server_config(listen: SocketAddr) -> ThreadConfig {
    let mut config = ThreadConfig::new(listen);
    config.sample_threads = false;
    config
}

/// The drivers built so far; each serves any session factory.
enum Driver {
    /// One thread per connection (milestone 3).
    Threads(ThreadServer),
    /// Connections as tasks of a thread pool (milestone 6).
    Pool(PoolServer),
    /// Event loops, one per core (milestones 9 and 10).
    Epoll(MultiLoopServer),
}

/// How a driver's shutdown went, in one line.
struct StopSummary(String);

impl std::fmt::Display for StopSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn thread_summary(report: &ThreadReport) -> StopSummary {
    StopSummary(format!(
        "stopped after {:.3} s of shutdown{}; {} connection thread(s) not joined",
        report.shutdown_s,
        if report.forced {
            " (grace period ran out, sockets forced shut)"
        } else {
            ""
        },
        report.unjoined,
    ))
}

impl Driver {
    fn local_addr(&self) -> SocketAddr {
        match self {
            Driver::Threads(s) => s.local_addr(),
            Driver::Pool(s) => s.local_addr(),
            Driver::Epoll(s) => s.local_addr(),
        }
    }

    fn shutdown_handle(&self) -> ShutdownHandle {
        match self {
            Driver::Threads(s) => s.shutdown_handle(),
            Driver::Pool(s) => s.shutdown_handle(),
            Driver::Epoll(s) => s.shutdown_handle(),
        }
    }

    /// What `/stats` shows: the driver's connection counters, the pool's (if any), syscalls.
    fn stats_source(&self) -> Arc<dyn Fn() -> serde_json::Value + Send + Sync> {
        if let Driver::Epoll(s) = self {
            let loops = s.stats();
            return Arc::new(move || {
                serde_json::json!({
                    "pid": std::process::id(),
                    "driver": loops.merged(),
                    "loops": loops.per_loop(),
                })
            });
        }
        let connections = match self {
            Driver::Threads(s) => s.stats(),
            Driver::Pool(s) => s.stats(),
            Driver::Epoll(_) => unreachable!("answered above"),
        };
        let pool = match self {
            Driver::Pool(s) => Some(s.pool_stats()),
            _ => None,
        };
        Arc::new(move || {
            serde_json::json!({
                "driver": connections.snapshot(),
                "pool": pool.as_ref().map(|p| p.snapshot()),
                "syscalls": m01_raw_sockets::accounting::snapshot(),
            })
        })
    }

    fn run<F: SessionFactory>(self, factory: Arc<F>) -> Result<StopSummary> {
        Ok(match self {
            Driver::Threads(s) => thread_summary(&s.run(factory)?),
            Driver::Epoll(s) => {
                let report = s.run(factory)?;
                let loops: Vec<_> = report.loops.iter().map(|l| l.event_loop.clone()).collect();
                let merged = LoopSnapshot::merged(&loops);
                let failed: Vec<String> = report
                    .loops
                    .iter()
                    .filter_map(|l| l.error.as_ref().map(|e| format!("loop {}: {e}", l.index)))
                    .collect();
                StopSummary(format!(
                    "stopped after {:.3} s of shutdown; {} connection(s) forced shut; {} loop(s), {} accepted, {} blocked iteration(s){}",
                    report.shutdown_s,
                    report.forced,
                    report.loops.len(),
                    merged.accepted,
                    merged.blocked_iterations,
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("; failed: {}", failed.join(", "))
                    },
                ))
            }
            Driver::Pool(s) => {
                let report = s.run(factory)?;
                let unaccounted = report.pool.unaccounted();
                if unaccounted != 0 {
                    bail!("the pool lost track of {unaccounted} connection task(s) at shutdown");
                }
                thread_summary(&report.server)
            }
        })
    }
}

/// Starts `args.processes − 1` copies of this server on `addr` (they join its SO_REUSEPORT
/// group) and waits until each prints its address.
fn spawn_copies(args: &ServeArgs, addr: SocketAddr) -> Result<Vec<std::process::Child>> {
    use std::io::BufRead;
    let mut children = Vec::new();
    if args.processes <= 1 {
        return Ok(children);
    }
    let exe = std::env::current_exe().context("locating the zyphos executable")?;
    for i in 1..args.processes {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("serve")
            .args(["--listen", &addr.to_string()])
            .args(["--io", "epoll", "--proto", &value_name(args.proto)])
            .args(["--router", &value_name(args.router)])
            .args(["--processes", "1"])
            .args(["--keepalive-requests", &args.keepalive_requests.to_string()])
            .stdout(std::process::Stdio::piped());
        if args.no_pin {
            cmd.arg("--no-pin");
        }
        if let Some(w) = args.workers {
            cmd.args(["--workers", &w.to_string()]);
        }
        if let Some(root) = &args.root {
            cmd.arg("--root").arg(root);
        }
        if args.access_log {
            cmd.arg("--access-log");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting server process {i}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        if line.trim() != addr.to_string() {
            let _ = child.kill();
            bail!(
                "server process {i} did not start on {addr} (said {:?})",
                line.trim()
            );
        }
        children.push(child);
    }
    Ok(children)
}

/// Asks the copies to stop (SIGTERM, their graceful path) and waits for them.
fn stop_copies(children: Vec<std::process::Child>) {
    for mut child in children {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = child.wait();
    }
}

/// The command-line spelling of a value (`http1.1`, `epoll`).
fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
