//! `zyphos-load`: run a load (the default command), serve as a `sink`, or `calibrate` against
//! nginx and wrk. See `zyphos-load --help`.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use zyphos_load::calibrate::{CalibrateOptions, calibrate};
use zyphos_load::config::{self, parse_cpu_list, parse_source_ips, parse_target};
use zyphos_load::{LoadConfig, PipelineMode, Scenario, SinkMode, SinkOptions};

/// Zyphos load generator: TCP echo and HTTP/1.x load, closed or open loop, with HdrHistogram
/// latencies. Every run is bounded by --duration (and optionally --requests) and exits by
/// itself.
#[derive(Debug, Parser)]
#[command(
    name = "zyphos-load",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve canned HTTP/1.1 responses (or echo) on one pinned thread: the generator's own
    /// ceiling, cheaper than any real server.
    Sink(SinkArgs),
    /// Measure zyphos-load against wrk on nginx, and its own ceiling on `sink`; write
    /// docs/benchmarks.md.
    Calibrate(CalibrateArgs),
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    config::parse_duration(s).map_err(|e| e.to_string())
}

/// A parsed `--cpu` list (a newtype so clap takes it as one value, not many).
#[derive(Debug, Clone)]
struct CpuList(Vec<usize>);

fn cpu_list_arg(s: &str) -> Result<CpuList, String> {
    parse_cpu_list(s).map(CpuList).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// TCP echo: send --size bytes, wait for the same bytes back.
    Echo,
    /// HTTP/1.0: one request per connection; connect time counts in the latency.
    #[value(name = "http1.0")]
    Http10,
    /// HTTP/1.1 keep-alive, pipelined with --pipeline.
    #[value(name = "http1.1")]
    Http11,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PipelineModeArg {
    /// Sliding window: N requests always in flight.
    Window,
    /// Batches of N, like wrk's pipeline.lua.
    Batch,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Server: `host:port` or `http://host:port/path`.
    #[arg(value_name = "TARGET", required = true)]
    target: Option<String>,
    /// Protocol.
    #[arg(short, long, value_enum, default_value = "http1.1")]
    scenario: ScenarioArg,
    /// Concurrent connections (at most RLIMIT_NOFILE minus a margin).
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// Client threads, each with its own event loop.
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Requests in flight per connection (keep-alive scenarios).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// `window`: refill after every read so N stay in flight; `batch`: send N, wait for all N
    /// (wrk's pipelining).
    #[arg(long, value_enum, default_value = "window")]
    pipeline_mode: PipelineModeArg,
    /// Measured run time (`10`, `1.5s`, `500ms`, `2m`; at most 3600 s).
    #[arg(short, long, default_value = "10", value_parser = duration_arg)]
    duration: Duration,
    /// Stop after this many measured requests are answered.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Open loop: total requests per second on a fixed schedule; latency counts from each
    /// request's intended send time.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Per-request timeout: no progress this long with requests outstanding resets the
    /// connection and counts a `timeout` error.
    #[arg(long, default_value = "5", value_parser = duration_arg)]
    timeout: Duration,
    /// Unrecorded warm-up before the measured run.
    #[arg(long, default_value = "0", value_parser = duration_arg)]
    warmup: Duration,
    /// HTTP request path (default: the URL's path, else `/`).
    #[arg(long)]
    path: Option<String>,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Echo message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Client source addresses: `127.0.0.1-127.0.0.50` or a comma list; connections use them
    /// round-robin (IP_BIND_ADDRESS_NO_PORT), so each address gets the whole port range.
    #[arg(long, value_name = "RANGE")]
    source_ips: Option<String>,
    /// Pin client threads to these CPUs (`1`, `0,2`, `0-3`); thread i gets the i-th.
    #[arg(long, value_name = "LIST", value_parser = cpu_list_arg)]
    cpu: Option<CpuList>,
    /// Print exactly one JSON report on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SinkModeArg {
    /// One canned keep-alive response (13-byte body) per request head.
    Http,
    /// Write back every byte.
    Echo,
}

#[derive(Debug, Args)]
struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Pin the sink thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// What to answer.
    #[arg(long, value_enum, default_value = "http")]
    mode: SinkModeArg,
    /// Exit after this long.
    #[arg(short, long, default_value = "3600", value_parser = duration_arg)]
    duration: Duration,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    /// Rounds of alternating runs (default 3; 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Length of each run (default 10 s; 3 s with --quick).
    #[arg(short, long, value_parser = duration_arg)]
    duration: Option<Duration>,
    /// Quick profile for CI: 1 round of 3 s runs.
    #[arg(long)]
    quick: bool,
    /// Write the Markdown report here (e.g. docs/benchmarks.md); otherwise print it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// CPU for nginx and sink.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// CPU for zyphos-load and wrk.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Connections per run.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Depth of the pipelined runs.
    #[arg(long, default_value_t = 16)]
    depth: usize,
    /// Before each run, wait up to this long for the machine to be quiet (0 = never wait;
    /// default 30 s, 5 s with --quick).
    #[arg(long, value_parser = duration_arg)]
    quiet_wait: Option<Duration>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Sink(a)) => sink(&a),
        Some(Command::Calibrate(a)) => calibrate_cmd(&a),
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zyphos-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let Some(target) = a.target.as_deref() else {
        bail!("a TARGET is required (host:port or http://host:port/path)");
    };
    let target = parse_target(target)?;
    let mut c = LoadConfig::new(target.addr);
    c.host = target.host;
    c.scenario = match a.scenario {
        ScenarioArg::Echo => Scenario::Echo,
        ScenarioArg::Http10 => Scenario::Http10,
        ScenarioArg::Http11 => Scenario::Http11,
    };
    c.connections = a.connections;
    c.threads = a.threads;
    c.pipeline = a.pipeline;
    c.pipeline_mode = match a.pipeline_mode {
        PipelineModeArg::Window => PipelineMode::Window,
        PipelineModeArg::Batch => PipelineMode::Batch,
    };
    c.duration = a.duration;
    c.requests = a.requests;
    c.rate = a.rate;
    c.timeout = a.timeout;
    c.warmup = a.warmup;
    c.path = a.path.or(target.path).unwrap_or_else(|| "/".to_owned());
    c.method = a.method;
    c.headers = a.headers;
    c.message_size = a.size;
    if let Some(s) = &a.source_ips {
        c.source_ips = parse_source_ips(s)?;
    }
    c.cpus = a.cpu.map(|l| l.0).unwrap_or_default();
    let report = zyphos_load::run(&c)?;
    if a.json {
        eprint!("{}", report.summary());
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.summary());
    }
    Ok(())
}

fn sink(a: &SinkArgs) -> anyhow::Result<()> {
    let mut opts = SinkOptions::new(a.listen);
    opts.cpu = a.cpu;
    opts.mode = match a.mode {
        SinkModeArg::Http => SinkMode::Http,
        SinkModeArg::Echo => SinkMode::Echo,
    };
    opts.max_lifetime = a.duration;
    zyphos_load::sink::serve(&opts, |addr| {
        eprintln!(
            "zyphos-load sink: listening on {addr} ({:?}), exits after {} s",
            opts.mode,
            opts.max_lifetime.as_secs()
        );
    })
    .with_context(|| format!("sink on {}", a.listen))
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn calibrate_cmd(a: &CalibrateArgs) -> anyhow::Result<()> {
    let mut opts = if a.quick {
        CalibrateOptions::quick()
    } else {
        CalibrateOptions::full()
    };
    if let Some(r) = a.rounds {
        if r == 0 || r > 20 {
            bail!("--rounds must be between 1 and 20");
        }
        opts.rounds = r;
    }
    if let Some(d) = a.duration {
        if d < Duration::from_secs(1) || d > Duration::from_secs(300) {
            bail!("--duration must be between 1 s and 300 s per run");
        }
        opts.duration = d;
    }
    if a.server_cpu == a.client_cpu {
        bail!("--server-cpu and --client-cpu must differ");
    }
    opts.server_cpu = a.server_cpu;
    opts.client_cpu = a.client_cpu;
    if a.connections == 0 || a.depth == 0 || a.depth > zyphos_load::config::MAX_PIPELINE {
        bail!("--connections must be at least 1 and --depth between 1 and 1024");
    }
    opts.connections = a.connections;
    opts.depth = a.depth;
    if let Some(w) = a.quiet_wait {
        opts.quiet_wait = w;
    }
    // The exact command line, as invoked (argv[0] included).
    let args: Vec<String> = std::env::args().map(|s| shell_quote(&s)).collect();
    opts.command = args.join(" ");
    let cal = calibrate(&opts, |line| eprintln!("{line}"))?;
    let md = cal.to_markdown();
    match &a.out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // A hand-written tail after the marker survives regeneration.
            let old = std::fs::read_to_string(path).unwrap_or_default();
            let page = zyphos_load::calibrate::keep_hand_written(&old, &md);
            std::fs::write(path, &page).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    let ratio = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.2}"));
    eprintln!(
        "agreement (zyphos-load / wrk on nginx): keep-alive {}, pipelined {}; ceiling (sink / nginx): keep-alive {}, pipelined {}",
        ratio(cal.agreement(1)),
        ratio(cal.agreement(opts.depth)),
        ratio(cal.headroom(1)),
        ratio(cal.headroom(opts.depth))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn test_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn test_cli_parses_run_options() {
        let cli = Cli::try_parse_from([
            "zyphos-load",
            "http://127.0.0.1:1/x",
            "--cpu",
            "1",
            "--pipeline",
            "16",
            "-d",
            "2s",
        ])
        .expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.run.cpu.map(|c| c.0), Some(vec![1]));
        assert_eq!(cli.run.duration, Duration::from_secs(2));
        let cli =
            Cli::try_parse_from(["zyphos-load", "sink", "--listen", "127.0.0.1:0"]).expect("parse");
        assert!(matches!(cli.command, Some(Command::Sink(_))));
        assert!(Cli::try_parse_from(["zyphos-load"]).is_err());
    }
}
