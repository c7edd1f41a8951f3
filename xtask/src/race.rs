//! `cargo xtask race`: zyphos against nginx, side by side, with the same load generators.
//!
//! For each scenario (a row of [`SCENARIOS`]: a path, connection handling, connection count and
//! pipeline depth), for `rounds` rounds, with each load tool (`zyphos-load`, `wrk`), it runs
//! nginx then zyphos — A B A B — each a fresh server on a free loopback port, pinned to the
//! first allowed CPU while the load generator is pinned to the second. Then it takes medians per
//! (scenario, tool, server), the ratios zyphos / nginx (requests per second, p99 latency) and a
//! verdict against issue 6's bar (zyphos at least 1.3x nginx's throughput *and* a lower p99).
//! Optionally (`--syscall-seconds`, on by default when strace is installed) a separate short run
//! per scenario and server under `strace -c -f` gives system calls per request. Every run also
//! records how busy the server's and the load generator's CPUs were (`/proc/stat`), so the table
//! says which side set the pace: a ratio measured with the generator's core saturated and the
//! server's not is the generator's ceiling, not the server's.
//!
//! Writes `docs/results/<out>.json` (machine, git revision, every command and run, medians,
//! ratios, verdicts, syscall counts) and `docs/charts/<out>.svg` (grouped bars), and prints a
//! table. Verdicts are reported, not enforced, unless `--require RATIO` is given.
//!
//! Which scenarios run depends on what the zyphos arguments speak: keep-alive needs
//! `--proto http1.1`; a scenario that cannot run is skipped with its reason printed.

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use serde::Serialize;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};
use zyphos_load::Report;
use zyphos_load::peers::{self, Nginx, NginxOptions, WrkOptions};

use crate::UsageError;
use crate::compare::{self, median, server_args};
use crate::exec::{Background, Cmd, shell_quote};
use crate::machine::{self, GitInfo, Machine};
use crate::manifest::format_number;
use crate::results;
use crate::sys;

/// Issue 6's bar: zyphos must serve at least this many times nginx's requests per second (with
/// a lower p99) to "beat" it.
pub(crate) const ISSUE6_BAR: f64 = 1.3;

/// A run whose errors exceed this fraction of its completed requests does not count as a win.
pub(crate) const MAX_ERROR_FRACTION: f64 = 0.01;

/// How long a zyphos server may take to start accepting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// The zyphos arguments used when `--zyphos-args` is not given: issue 6's server (one epoll
/// loop), keeping connections for the whole run as `benches/peers/nginx.conf` does
/// (`keepalive_requests 100000000`).
pub(crate) const DEFAULT_ZYPHOS_ARGS: &str =
    "serve --io epoll --workers 1 --proto http1.1 --keepalive-requests 100000000";

/// The load tools, in the order they run within a round.
pub(crate) const DEFAULT_TOOLS: &str = "zyphos-load,wrk";

/// How long strace waits for the tracee before the traced load starts.
const STRACE_ATTACH_PAUSE: Duration = Duration::from_secs(1);

/// Seconds strace stays attached after the traced load's duration (the load must end first).
const STRACE_DETACH_MARGIN_S: u64 = 3;

/// How requests use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Connection {
    /// One request per connection: zyphos-load `-s http1.0`, wrk `-H 'Connection: close'`.
    Close,
    /// HTTP/1.1 keep-alive (optionally pipelined).
    KeepAlive,
}

/// One named load shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Scenario {
    /// Name used on the command line and in the results.
    pub(crate) name: &'static str,
    /// Request path (both servers serve the same bytes there).
    pub(crate) path: &'static str,
    /// Connection handling.
    pub(crate) connection: Connection,
    /// Concurrent connections.
    pub(crate) connections: u64,
    /// Requests written at a time per connection (1 = no pipelining). Pipelined runs use
    /// batches, as wrk's `pipeline.lua` does.
    pub(crate) pipeline: u64,
}

/// Every scenario the race knows, in the order they run.
pub(crate) const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "plaintext-close",
        path: "/plaintext",
        connection: Connection::Close,
        connections: 64,
        pipeline: 1,
    },
    Scenario {
        name: "static1k-close",
        path: "/static/1k.bin",
        connection: Connection::Close,
        connections: 64,
        pipeline: 1,
    },
    Scenario {
        name: "plaintext-keepalive",
        path: "/plaintext",
        connection: Connection::KeepAlive,
        connections: 64,
        pipeline: 1,
    },
    Scenario {
        name: "plaintext-pipeline16",
        path: "/plaintext",
        connection: Connection::KeepAlive,
        connections: 64,
        pipeline: 16,
    },
    Scenario {
        name: "static1k-keepalive",
        path: "/static/1k.bin",
        connection: Connection::KeepAlive,
        connections: 64,
        pipeline: 1,
    },
];

/// A load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Tool {
    /// Ours (`target/release/zyphos-load`): HdrHistogram latencies.
    ZyphosLoad,
    /// wrk (its percentiles are estimates; compare throughput across tools, not p99).
    Wrk,
}

impl Tool {
    /// The name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::ZyphosLoad => "zyphos-load",
            Tool::Wrk => "wrk",
        }
    }

    fn parse(s: &str) -> Option<Tool> {
        [Tool::ZyphosLoad, Tool::Wrk]
            .into_iter()
            .find(|t| t.name() == s)
    }
}

/// The server under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Server {
    /// The baseline (`benches/peers/nginx.conf`: one worker, access log off).
    Nginx,
    /// `target/release/zyphos` with the `--zyphos-args`.
    Zyphos,
}

impl Server {
    /// Its name in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Zyphos => "zyphos",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub(crate) struct RaceOptions {
    /// zyphos arguments, whitespace-separated (`{listen}`/`{port}` are filled in; without them
    /// `--listen 127.0.0.1:PORT` is appended).
    pub(crate) zyphos_args: String,
    /// Scenario names; `None` = every scenario the zyphos arguments can serve.
    pub(crate) scenarios: Option<Vec<String>>,
    /// nginx-zyphos rounds per scenario and tool.
    pub(crate) rounds: u32,
    /// Seconds per load run.
    pub(crate) duration_s: u64,
    /// Load tool names.
    pub(crate) tools: Vec<String>,
    /// Base name of the outputs (`docs/results/<out>.json`, `docs/charts/<out>.svg`).
    pub(crate) out: String,
    /// Fail unless every verdict meets this ratio (and a lower p99).
    pub(crate) require: Option<f64>,
    /// Seconds of the traced run per scenario and server (0 = do not count syscalls).
    pub(crate) syscall_seconds: u64,
}

/// A scenario that did not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Skipped {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Why it cannot run with these zyphos arguments.
    pub(crate) reason: String,
}

/// The scenarios to run and those left out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// In table order.
    pub(crate) run: Vec<Scenario>,
    /// With reasons.
    pub(crate) skipped: Vec<Skipped>,
}

/// The value of `--proto` in zyphos arguments (`--proto X` or `--proto=X`), if present.
pub(crate) fn proto_in_args(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--proto" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--proto=") {
            return Some(v.to_string());
        }
    }
    None
}

/// The `[default: X]` of `--proto` in `zyphos serve -h` output.
pub(crate) fn default_proto_in_help(help: &str) -> Option<String> {
    let after = &help[help.find("--proto")?..];
    let start = after.find("[default: ")? + "[default: ".len();
    let len = after[start..].find(']')?;
    Some(after[start..start + len].trim().to_string())
}

/// `Ok` when a zyphos speaking `proto` can serve `connection`, else the reason it cannot.
pub(crate) fn can_serve(proto: &str, connection: Connection) -> Result<(), String> {
    match (proto, connection) {
        ("http1.1", _) | ("http1.0", Connection::Close) => Ok(()),
        ("http1.0", Connection::KeepAlive) => Err(
            "keep-alive needs `--proto http1.1`; these zyphos args speak http1.0 (one request \
             per connection)"
                .to_string(),
        ),
        (other, _) => Err(format!(
            "zyphos speaks {other} with these args; the race needs http1.0 or http1.1"
        )),
    }
}

/// The requested scenarios by name, in the order given (duplicates dropped); all of them when
/// none are named. An unknown name is a usage error.
pub(crate) fn lookup_scenarios(requested: Option<&[String]>) -> Result<Vec<Scenario>> {
    let Some(names) = requested else {
        return Ok(SCENARIOS.to_vec());
    };
    let mut wanted = Vec::new();
    for name in names {
        let Some(s) = SCENARIOS.iter().find(|s| s.name == name.as_str()) else {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            return Err(UsageError(format!(
                "unknown scenario `{name}`; known: {}",
                known.join(", ")
            ))
            .into());
        };
        if !wanted.contains(s) {
            wanted.push(*s);
        }
    }
    Ok(wanted)
}

/// Splits `wanted` into those a zyphos speaking `proto` can serve and those skipped, with the
/// reason.
pub(crate) fn select_scenarios(wanted: &[Scenario], proto: &str) -> Selection {
    let mut selection = Selection {
        run: Vec::new(),
        skipped: Vec::new(),
    };
    for s in wanted {
        match can_serve(proto, s.connection) {
            Ok(()) => selection.run.push(*s),
            Err(reason) => selection.skipped.push(Skipped {
                scenario: s.name.to_string(),
                reason,
            }),
        }
    }
    selection
}

/// Parses `--tools` names (duplicates dropped, order kept).
pub(crate) fn parse_tools(names: &[String]) -> Result<Vec<Tool>> {
    let mut tools = Vec::new();
    for name in names {
        let tool = Tool::parse(name.trim()).ok_or_else(|| {
            UsageError(format!(
                "unknown load tool `{name}`; known: zyphos-load, wrk"
            ))
        })?;
        if !tools.contains(&tool) {
            tools.push(tool);
        }
    }
    if tools.is_empty() {
        return Err(UsageError("--tools names no load tool".into()).into());
    }
    Ok(tools)
}

/// `--out` must be a plain file stem starting with `race`, so `cargo xtask report` never takes
/// the results for a milestone's (`mNN*.json`) or a comparison's (`compare-*.json`).
pub(crate) fn check_out_name(out: &str) -> Result<()> {
    let plain = out
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !out.starts_with("race") || !plain || out.contains("..") {
        return Err(UsageError(format!(
            "--out `{out}`: use a plain name starting with `race` (letters, digits, -, _, .)"
        ))
        .into());
    }
    Ok(())
}

/// The zyphos command line: `{listen}`/`{port}` filled in when present, otherwise
/// `--listen 127.0.0.1:PORT` appended.
pub(crate) fn zyphos_argv(bin: &Path, args: &[String], port: u16) -> Vec<String> {
    let mut argv = vec![bin.display().to_string()];
    if args
        .iter()
        .any(|a| a.contains("{listen}") || a.contains("{port}"))
    {
        argv.extend(server_args(args, port));
    } else {
        argv.extend(args.iter().cloned());
        argv.extend(["--listen".to_string(), format!("127.0.0.1:{port}")]);
    }
    argv
}

/// The zyphos-load command line for one run (JSON report on stdout).
pub(crate) fn zyphos_load_argv(
    bin: &Path,
    s: &Scenario,
    addr: SocketAddr,
    duration_s: u64,
    cpu: Option<usize>,
) -> Vec<String> {
    let proto = match s.connection {
        Connection::Close => "http1.0",
        Connection::KeepAlive => "http1.1",
    };
    let mut argv = vec![
        bin.display().to_string(),
        "--json".into(),
        "--scenario".into(),
        proto.into(),
        "--connections".into(),
        s.connections.to_string(),
        "--duration".into(),
        duration_s.to_string(),
        "--path".into(),
        s.path.into(),
    ];
    if s.pipeline > 1 {
        argv.extend([
            "--pipeline".to_string(),
            s.pipeline.to_string(),
            "--pipeline-mode".to_string(),
            "batch".to_string(),
        ]);
    }
    if let Some(cpu) = cpu {
        argv.extend(["--cpu".to_string(), cpu.to_string()]);
    }
    argv.push(addr.to_string());
    argv
}

/// wrk's options for one run (one thread; `Connection: close` for the close scenarios).
pub(crate) fn wrk_options(s: &Scenario, addr: SocketAddr, duration_s: u64) -> WrkOptions {
    let mut o = WrkOptions::new(format!("http://{addr}{}", s.path));
    o.threads = 1;
    o.connections = usize::try_from(s.connections).unwrap_or(usize::MAX);
    o.duration = Duration::from_secs(duration_s);
    o.pipeline = usize::try_from(s.pipeline).unwrap_or(1);
    if s.connection == Connection::Close {
        o.headers.push("Connection: close".to_string());
    }
    o
}

/// The wrk command line for `opts`, with `script` as the pipelining script.
pub(crate) fn wrk_argv(wrk: &Path, opts: &WrkOptions, script: &Path) -> Vec<String> {
    let mut argv = vec![wrk.display().to_string()];
    argv.extend(peers::wrk_args(opts, script));
    argv
}

/// One load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RaceRun {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Load generator.
    pub(crate) tool: Tool,
    /// Server under load.
    pub(crate) server: Server,
    /// Round number (1-based).
    pub(crate) round: u32,
    /// How the server was started.
    pub(crate) server_command: String,
    /// The load command.
    pub(crate) load_command: String,
    /// Errors of all kinds the generator counted.
    pub(crate) errors: u64,
    /// The measurement (wrk's output converted; its p99.9 field carries wrk's max).
    pub(crate) report: Report,
    /// How busy the server's and the load generator's CPUs were during the run (absent when
    /// the two are not pinned or /proc/stat cannot be read).
    pub(crate) cores: Option<CoreBusy>,
}

/// Busy share of the two pinned CPUs over one load run, from `/proc/stat` (every kind of
/// time except idle and iowait, over all time; other processes' too, so a busy machine shows).
/// It says who set the pace: a run whose load-generator core is near 100 % while the server's
/// is not measured the generator's ceiling, not the server's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct CoreBusy {
    /// The server's CPU, % busy.
    pub(crate) server_pct: f64,
    /// The load generator's CPU, % busy.
    pub(crate) load_pct: f64,
}

/// (busy, total) jiffies of CPU `cpu` in a `/proc/stat` text.
pub(crate) fn cpu_jiffies(stat: &str, cpu: usize) -> Option<(u64, u64)> {
    let label = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle, total))
}

/// % busy of `cpu` between two `/proc/stat` texts.
pub(crate) fn busy_pct(before: &str, after: &str, cpu: usize) -> Option<f64> {
    let (b0, t0) = cpu_jiffies(before, cpu)?;
    let (b1, t1) = cpu_jiffies(after, cpu)?;
    let total = t1.checked_sub(t0).filter(|&t| t > 0)?;
    Some(100.0 * b1.saturating_sub(b0) as f64 / total as f64)
}

/// Medians of one server's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SideMedians {
    /// Runs that went into the medians.
    pub(crate) runs: usize,
    /// Median requests per second.
    pub(crate) median_rps: f64,
    /// Median p99 latency, µs.
    pub(crate) median_p99_us: f64,
    /// Errors over all its runs.
    pub(crate) errors: u64,
    /// Completed requests over all its runs.
    pub(crate) requests: u64,
    /// Median % busy of the server's CPU during its runs.
    pub(crate) median_server_core_pct: Option<f64>,
    /// Median % busy of the load generator's CPU during its runs.
    pub(crate) median_load_core_pct: Option<f64>,
}

/// The result of one (scenario, tool) pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Load generator.
    pub(crate) tool: Tool,
    /// nginx's medians.
    pub(crate) nginx: SideMedians,
    /// zyphos's medians.
    pub(crate) zyphos: SideMedians,
    /// zyphos median rps / nginx median rps.
    pub(crate) ratio_rps: f64,
    /// zyphos median p99 / nginx median p99 (below 1 = zyphos's tail is shorter).
    pub(crate) ratio_p99: f64,
    /// ratio_rps ≥ the bar, a lower p99, and errors under 1 % on both sides.
    pub(crate) beats_bar: bool,
}

/// Medians of the runs of `server` in `runs`.
pub(crate) fn side_medians(runs: &[&RaceRun], server: Server) -> SideMedians {
    let mine: Vec<&&RaceRun> = runs.iter().filter(|r| r.server == server).collect();
    SideMedians {
        runs: mine.len(),
        median_rps: median(&mine.iter().map(|r| r.report.rps).collect::<Vec<_>>()),
        median_p99_us: median(
            &mine
                .iter()
                .map(|r| r.report.latency.p99_us)
                .collect::<Vec<_>>(),
        ),
        errors: mine.iter().map(|r| r.errors).sum(),
        requests: mine.iter().map(|r| r.report.requests).sum(),
        median_server_core_pct: core_median(&mine, |c| c.server_pct),
        median_load_core_pct: core_median(&mine, |c| c.load_pct),
    }
}

/// Median of one [`CoreBusy`] field over the runs that have it (None if any run lacks it).
fn core_median(runs: &[&&RaceRun], field: impl Fn(&CoreBusy) -> f64) -> Option<f64> {
    let values: Option<Vec<f64>> = runs.iter().map(|r| r.cores.as_ref().map(&field)).collect();
    values.filter(|v| !v.is_empty()).map(|v| median(&v))
}

/// Whether a side's errors stay under [`MAX_ERROR_FRACTION`] of its requests.
fn clean(side: &SideMedians) -> bool {
    (side.errors as f64) <= MAX_ERROR_FRACTION * (side.requests as f64)
}

/// Issue 6's verdict: zyphos serves at least `bar` times nginx's rps with a lower p99, and
/// neither side's errors exceed 1 % of its requests. NaN (no data) never wins.
pub(crate) fn beats(nginx: &SideMedians, zyphos: &SideMedians, bar: f64) -> bool {
    let ratio = zyphos.median_rps / nginx.median_rps;
    ratio >= bar && zyphos.median_p99_us < nginx.median_p99_us && clean(nginx) && clean(zyphos)
}

/// One [`Summary`] per (scenario, tool) pair that has runs, in run order.
pub(crate) fn summarize(runs: &[RaceRun], bar: f64) -> Vec<Summary> {
    let mut pairs: Vec<(String, Tool)> = Vec::new();
    for r in runs {
        let key = (r.scenario.clone(), r.tool);
        if !pairs.contains(&key) {
            pairs.push(key);
        }
    }
    pairs
        .into_iter()
        .map(|(scenario, tool)| {
            let mine: Vec<&RaceRun> = runs
                .iter()
                .filter(|r| r.scenario == scenario && r.tool == tool)
                .collect();
            let nginx = side_medians(&mine, Server::Nginx);
            let zyphos = side_medians(&mine, Server::Zyphos);
            Summary {
                ratio_rps: zyphos.median_rps / nginx.median_rps,
                ratio_p99: zyphos.median_p99_us / nginx.median_p99_us,
                beats_bar: beats(&nginx, &zyphos, bar),
                scenario,
                tool,
                nginx,
                zyphos,
            }
        })
        .collect()
}

/// System calls one server made during a traced run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SyscallCount {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Server traced.
    pub(crate) server: Server,
    /// The strace command.
    pub(crate) strace_command: String,
    /// The load command run while it traced.
    pub(crate) load_command: String,
    /// Every system call of the server's processes and threads while attached.
    pub(crate) calls: u64,
    /// Requests the load generator completed meanwhile.
    pub(crate) requests: u64,
    /// calls / requests.
    pub(crate) per_request: f64,
    /// The most frequent calls, (name, count), most first (at most 8).
    pub(crate) top: Vec<(String, u64)>,
}

/// Parses `strace -c` output: (total calls, per-syscall counts most first).
pub(crate) fn parse_strace_summary(text: &str) -> Option<(u64, Vec<(String, u64)>)> {
    let mut rows = Vec::new();
    let mut total = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `% time  seconds  usecs/call  calls  [errors]  syscall`
        if words.len() < 5 || words[0].parse::<f64>().is_err() {
            continue;
        }
        let Ok(calls) = words[3].parse::<u64>() else {
            continue;
        };
        let name = words[words.len() - 1];
        if name == "total" {
            total = Some(calls);
        } else {
            rows.push((name.to_string(), calls));
        }
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    total.map(|t| (t, rows))
}

/// The parent pid in a `/proc/PID/stat` line (the field after the parenthesised name).
pub(crate) fn ppid_in_stat(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Children of `pid` (nginx's worker), found by scanning `/proc`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| ppid_in_stat(&s))
                == Some(pid)
        })
        .collect()
}

/// The process whose command line is exactly `argv` (found by scanning `/proc`).
fn pid_by_cmdline(argv: &[String]) -> Option<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
}

/// `docs/results/race.json` (serialised).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RaceResults {
    /// The xtask command.
    pub(crate) command: String,
    /// zyphos arguments (before the listen address was added).
    pub(crate) zyphos_args: Vec<String>,
    /// The protocol they speak.
    pub(crate) zyphos_proto: String,
    /// Rounds per scenario and tool.
    pub(crate) rounds: u32,
    /// Seconds per run.
    pub(crate) duration_s: u64,
    /// Load tools, in run order within a round.
    pub(crate) tools: Vec<Tool>,
    /// How server and load generator were placed on CPUs.
    pub(crate) pinning: String,
    /// Order of the runs.
    pub(crate) order: String,
    /// Where.
    pub(crate) machine: Machine,
    /// Which tree.
    pub(crate) git: GitInfo,
    /// When.
    pub(crate) timestamp: String,
    /// `nginx -v`.
    pub(crate) nginx_version: String,
    /// `wrk -v` (when wrk ran).
    pub(crate) wrk_version: Option<String>,
    /// The ratio a verdict needs.
    pub(crate) bar: f64,
    /// `--require`, if given.
    pub(crate) require: Option<f64>,
    /// The scenarios that ran.
    pub(crate) scenarios: Vec<Scenario>,
    /// Those that did not, with why.
    pub(crate) skipped: Vec<Skipped>,
    /// Medians, ratios and verdicts per (scenario, tool).
    pub(crate) summaries: Vec<Summary>,
    /// System calls per request (empty when not measured; see `syscalls_note`).
    pub(crate) syscalls: Vec<SyscallCount>,
    /// How syscalls were counted, or why they were not.
    pub(crate) syscalls_note: String,
    /// Every run in the order it ran.
    pub(crate) runs: Vec<RaceRun>,
}

/// Paths of the outputs, relative to the root.
pub(crate) fn output_paths(out: &str) -> (PathBuf, PathBuf) {
    (
        Path::new("docs/results").join(format!("{out}.json")),
        Path::new("docs/charts").join(format!("{out}.svg")),
    )
}

/// A peer tool's path, or an error naming `cargo xtask setup`.
fn require_peer(name: &str) -> Result<PathBuf> {
    peers::find_tool(name).ok_or_else(|| {
        anyhow!(
            "{name} is missing (not on PATH, /usr/sbin or /sbin): run `cargo xtask setup` to \
             install it"
        )
    })
}

/// The protocol the zyphos arguments speak: `--proto`, else the default `zyphos serve -h`
/// shows.
fn zyphos_proto(root: &Path, zyphos: &Path, args: &[String]) -> Result<String> {
    if let Some(p) = proto_in_args(args) {
        return Ok(p);
    }
    let out = Cmd::new(
        [zyphos.display().to_string(), "serve".into(), "-h".into()],
        root,
    )
    .timeout(Duration::from_secs(30))
    .run()?;
    default_proto_in_help(&out.stdout).with_context(|| {
        format!(
            "the zyphos args give no `--proto` and `{} serve -h` shows no default; pass \
             `--proto` in --zyphos-args",
            zyphos.display()
        )
    })
}

/// Everything a race needs to run.
struct Setup {
    root: PathBuf,
    zyphos: PathBuf,
    load: PathBuf,
    nginx: PathBuf,
    wrk: Option<PathBuf>,
    zyphos_args: Vec<String>,
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    duration_s: u64,
}

/// A running server of either kind; stopped on drop.
enum Running {
    Nginx(Nginx),
    /// The guard, and the server's pid when `/proc` showed it.
    Zyphos {
        /// Kills the server when dropped.
        _guard: Background,
        /// Its pid.
        pid: Option<u32>,
    },
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Nginx(n) = self {
            sys::unregister_group(n.pid());
        }
    }
}

impl Running {
    /// Its top process id.
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Nginx(n) => Some(n.pid()),
            Running::Zyphos { pid, .. } => *pid,
        }
    }
}

impl Setup {
    /// Starts `server` pinned to the server CPU; returns it, its address and its command.
    fn start(&self, server: Server) -> Result<(Running, SocketAddr, String)> {
        match server {
            Server::Nginx => {
                let mut o = NginxOptions::default();
                o.cpu = self.server_cpu;
                let nginx = Nginx::start(&o).context("starting nginx")?;
                // Its own process group: make sure an interrupted xtask kills it too.
                sys::register_group(nginx.pid());
                let addr = nginx.addr();
                let command = format!(
                    "{bin} -p {dir} -c {dir}/nginx.conf -e {dir}/error.log (the config is \
                     benches/peers/nginx.conf rendered: 1 worker, access log off)",
                    bin = self.nginx.display(),
                    dir = nginx.dir().display()
                );
                Ok((Running::Nginx(nginx), addr, command))
            }
            Server::Zyphos => {
                let port = peers::free_port().context("finding a free port")?;
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let argv = zyphos_argv(&self.zyphos, &self.zyphos_args, port);
                let mut cmd = Cmd::new(argv.clone(), &self.root);
                if let Some(cpu) = self.server_cpu {
                    cmd = cmd.pin_cpu(cpu);
                }
                let mut bg = cmd.spawn_background()?;
                let deadline = Instant::now() + STARTUP_TIMEOUT;
                loop {
                    if let Some(status) = bg.exited() {
                        bail!(
                            "zyphos exited before accepting on {addr} ({status}): `{}`: {}",
                            bg.command(),
                            bg.stderr_tail(3)
                        );
                    }
                    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "zyphos did not accept on {addr} within {} s: `{}`",
                            STARTUP_TIMEOUT.as_secs(),
                            bg.command()
                        );
                    }
                    thread::sleep(Duration::from_millis(50));
                }
                let command = bg.command().to_string();
                Ok((
                    Running::Zyphos {
                        pid: pid_by_cmdline(&argv),
                        _guard: bg,
                    },
                    addr,
                    command,
                ))
            }
        }
    }

    /// One zyphos-load run of `duration_s` against `addr`.
    fn zyphos_load(
        &self,
        s: &Scenario,
        addr: SocketAddr,
        duration_s: u64,
    ) -> Result<(Report, String)> {
        let mut cmd = Cmd::new(
            zyphos_load_argv(&self.load, s, addr, duration_s, self.load_cpu),
            &self.root,
        )
        .timeout(Duration::from_secs(duration_s.saturating_add(120)));
        if let Some(cpu) = self.load_cpu {
            cmd = cmd.pin_cpu(cpu);
        }
        let out = cmd.run()?;
        if !out.success() {
            bail!(
                "`{}` failed ({}): {}",
                cmd.display(),
                out.describe_status(),
                out.stderr_tail(3)
            );
        }
        let report: Report = serde_json::from_str(out.stdout.trim()).with_context(|| {
            format!(
                "`{}` did not print a zyphos-load JSON report",
                cmd.display()
            )
        })?;
        Ok((report, cmd.display()))
    }

    /// One wrk run against `addr`.
    fn wrk(&self, s: &Scenario, addr: SocketAddr) -> Result<(Report, u64, String)> {
        let wrk = self
            .wrk
            .as_deref()
            .context("wrk was not looked up (not in --tools)")?;
        let opts = wrk_options(s, addr, self.duration_s);
        let script = self.root.join("benches/peers/pipeline.lua");
        let mut cmd = Cmd::new(wrk_argv(wrk, &opts, &script), &self.root)
            .timeout(Duration::from_secs(self.duration_s.saturating_add(60)));
        if let Some(cpu) = self.load_cpu {
            cmd = cmd.pin_cpu(cpu);
        }
        let out = cmd.run()?;
        if !out.success() {
            bail!(
                "`{}` failed ({}): {} {}",
                cmd.display(),
                out.describe_status(),
                out.stderr_tail(3),
                out.stdout.trim()
            );
        }
        let parsed = peers::parse_wrk_output(&out.stdout)
            .with_context(|| format!("reading the output of `{}`", cmd.display()))?;
        let mut report = parsed.to_report(&opts);
        report.scenario = match s.connection {
            Connection::Close => "http1.1 (Connection: close)".into(),
            Connection::KeepAlive => "http1.1".into(),
        };
        Ok((report, parsed.socket_errors + parsed.non_2xx, cmd.display()))
    }

    /// A short zyphos-load run with the server under `strace -c -f`.
    fn count_syscalls(
        &self,
        s: &Scenario,
        server: Server,
        strace: &Path,
        secs: u64,
    ) -> Result<SyscallCount> {
        let (running, addr, _) = self.start(server)?;
        let mut pids: Vec<u32> = running.pid().into_iter().collect();
        if let (Server::Nginx, Some(&master)) = (server, pids.first()) {
            pids.extend(children_of(master));
        }
        if pids.is_empty() {
            bail!("cannot find the process id of {} to trace", server.name());
        }
        let file = std::env::temp_dir().join(format!(
            "zyphos-race-strace-{}-{}-{}.txt",
            std::process::id(),
            s.name,
            server.name()
        ));
        let _ = std::fs::remove_file(&file);
        // `timeout -s INT` detaches strace cleanly, so it writes its summary.
        let mut argv = vec![
            "timeout".to_string(),
            "-s".into(),
            "INT".into(),
            (secs + STRACE_ATTACH_PAUSE.as_secs() + STRACE_DETACH_MARGIN_S).to_string(),
            strace.display().to_string(),
            "-c".into(),
            "-f".into(),
            "-q".into(),
            "-o".into(),
            file.display().to_string(),
        ];
        for pid in &pids {
            argv.extend(["-p".to_string(), pid.to_string()]);
        }
        let cmd = Cmd::new(argv, &self.root);
        let mut tracer = cmd.spawn_background()?;
        thread::sleep(STRACE_ATTACH_PAUSE);
        let (report, load_command) = self.zyphos_load(s, addr, secs)?;
        if let Some(status) = tracer.exited() {
            bail!(
                "`{}` ended ({status}) before the traced load did, so its count would miss \
                 calls: {}",
                cmd.display(),
                tracer.stderr_tail(3)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(secs + 15);
        while tracer.exited().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        drop(tracer);
        drop(running);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        let (calls, rows) = parse_strace_summary(&text)
            .with_context(|| format!("`{}` wrote no summary: {text:?}", cmd.display()))?;
        Ok(SyscallCount {
            scenario: s.name.to_string(),
            server,
            strace_command: cmd.display(),
            load_command,
            calls,
            requests: report.requests,
            per_request: calls as f64 / report.requests as f64,
            top: rows.into_iter().take(8).collect(),
        })
    }
}

/// Runs the race: checks, builds, measures, prints, records.
pub(crate) fn run(root: &Path, opts: &RaceOptions) -> Result<()> {
    if opts.rounds == 0 || opts.duration_s == 0 {
        return Err(UsageError("--rounds and --duration must be at least 1".into()).into());
    }
    check_out_name(&opts.out)?;
    let tools = parse_tools(&opts.tools)?;
    let wanted = lookup_scenarios(opts.scenarios.as_deref())?;
    let zyphos_args: Vec<String> = opts
        .zyphos_args
        .split_whitespace()
        .map(String::from)
        .collect();
    if zyphos_args.is_empty() {
        return Err(UsageError("--zyphos-args is empty".into()).into());
    }
    let nginx = require_peer("nginx")?;
    let wrk = if tools.contains(&Tool::Wrk) {
        Some(require_peer("wrk")?)
    } else {
        None
    };
    let bins = compare::build_binaries(root)?;
    let zyphos = bins.server;
    let proto = zyphos_proto(root, &zyphos, &zyphos_args)?;
    let selection = select_scenarios(&wanted, &proto);
    for s in &selection.skipped {
        println!("skipping {}: {}", s.scenario, s.reason);
    }
    if selection.run.is_empty() {
        bail!(
            "no scenario left to run with zyphos args `{}`",
            opts.zyphos_args
        );
    }

    let cpus = sys::allowed_cpus();
    let (server_cpu, load_cpu) = match cpus.as_slice() {
        [first, second, ..] => (Some(*first), Some(*second)),
        _ => (None, None),
    };
    let pinning = match (server_cpu, load_cpu) {
        (Some(s), Some(l)) => format!(
            "server (nginx master+worker, or zyphos) pinned to CPU {s}, load generator \
             (zyphos-load, wrk -t1) pinned to CPU {l} (sched_setaffinity)"
        ),
        _ => "none: fewer than two CPUs available".to_string(),
    };
    println!("placement: {pinning}");
    let setup = Setup {
        root: root.to_path_buf(),
        zyphos,
        load: bins.load,
        nginx: nginx.clone(),
        wrk,
        zyphos_args: zyphos_args.clone(),
        server_cpu,
        load_cpu,
        duration_s: opts.duration_s,
    };
    let bar = opts.require.unwrap_or(ISSUE6_BAR);

    let mut runs = Vec::new();
    for s in &selection.run {
        for round in 1..=opts.rounds {
            for &tool in &tools {
                for server in [Server::Nginx, Server::Zyphos] {
                    let run = race_one(&setup, s, tool, server, round)?;
                    println!(
                        "{:<20} round {round}/{} {:<11} {:<6} {:>10} rps  p99 {:>9} us  errors {}",
                        s.name,
                        opts.rounds,
                        tool.name(),
                        server.name(),
                        format_number(run.report.rps.round()),
                        format_number(run.report.latency.p99_us.round()),
                        run.errors
                    );
                    runs.push(run);
                }
            }
        }
    }
    let summaries = summarize(&runs, bar);

    let (syscalls, syscalls_note) = if opts.syscall_seconds == 0 {
        (Vec::new(), "not measured (--syscall-seconds 0)".to_string())
    } else if let Some(strace) = peers::find_tool("strace") {
        let mut counts = Vec::new();
        for s in &selection.run {
            for server in [Server::Nginx, Server::Zyphos] {
                let c = setup.count_syscalls(s, server, &strace, opts.syscall_seconds)?;
                println!(
                    "{:<20} syscalls {:<6} {:>8.1} per request ({} calls, {} requests traced)",
                    s.name,
                    server.name(),
                    c.per_request,
                    c.calls,
                    c.requests
                );
                counts.push(c);
            }
        }
        (
            counts,
            format!(
                "a separate {}-s zyphos-load run per scenario and server with the server's \
                 processes and threads under `strace -c -f` (attached {} s before the load, \
                 detached about {} s after it ends): every call while attached / requests \
                 completed. strace slows the server many times over, so these runs' throughput \
                 means nothing; the per-request count is what they are for",
                opts.syscall_seconds,
                STRACE_ATTACH_PAUSE.as_secs(),
                STRACE_DETACH_MARGIN_S
            ),
        )
    } else {
        (
            Vec::new(),
            "not measured: strace is missing (run `cargo xtask setup`)".to_string(),
        )
    };

    let record = RaceResults {
        command: command_line(opts),
        zyphos_args,
        zyphos_proto: proto,
        rounds: opts.rounds,
        duration_s: opts.duration_s,
        tools: tools.clone(),
        pinning,
        order: "per scenario, per round, per tool: nginx then zyphos (A B A B); a fresh server \
                for every run"
            .to_string(),
        machine: Machine::current(),
        git: GitInfo::current(root),
        timestamp: machine::timestamp_now(),
        nginx_version: peers::tool_version(&nginx.display().to_string(), "-v")
            .unwrap_or_else(|| "unknown".into()),
        wrk_version: setup
            .wrk
            .as_ref()
            .and_then(|_| peers::tool_version("wrk", "-v")),
        bar,
        require: opts.require,
        scenarios: selection.run.clone(),
        skipped: selection.skipped.clone(),
        summaries,
        syscalls,
        syscalls_note,
        runs,
    };
    print_table(&record);
    let (json, svg) = output_paths(&opts.out);
    results::write_json(root, &json, &record)?;
    println!("wrote {}", json.display());
    let chart = chart(&record)?;
    let svg_abs = root.join(&svg);
    if let Some(dir) = svg_abs.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_abs, chart).with_context(|| format!("writing {}", svg.display()))?;
    println!("wrote {}", svg.display());
    if let Some(required) = opts.require {
        let missed: Vec<String> = record
            .summaries
            .iter()
            .filter(|s| !s.beats_bar)
            .map(|s| format!("{} ({}: x{:.2})", s.scenario, s.tool.name(), s.ratio_rps))
            .collect();
        if !missed.is_empty() {
            bail!(
                "--require {required}: zyphos does not beat nginx by {required}x with a lower p99 \
                 in {}",
                missed.join(", ")
            );
        }
    }
    Ok(())
}

/// One run: a fresh server, one load run, the server stopped.
fn race_one(
    setup: &Setup,
    s: &Scenario,
    tool: Tool,
    server: Server,
    round: u32,
) -> Result<RaceRun> {
    let (running, addr, server_command) = setup.start(server)?;
    let stat_before = std::fs::read_to_string("/proc/stat").ok();
    let (report, errors, load_command) = match tool {
        Tool::ZyphosLoad => {
            let (report, command) = setup.zyphos_load(s, addr, setup.duration_s)?;
            let errors = report.errors.values().sum();
            (report, errors, command)
        }
        Tool::Wrk => setup.wrk(s, addr)?,
    };
    let stat_after = std::fs::read_to_string("/proc/stat").ok();
    drop(running);
    let cores = (|| {
        let (before, after) = (stat_before?, stat_after?);
        Some(CoreBusy {
            server_pct: busy_pct(&before, &after, setup.server_cpu?)?,
            load_pct: busy_pct(&before, &after, setup.load_cpu?)?,
        })
    })();
    Ok(RaceRun {
        scenario: s.name.to_string(),
        tool,
        server,
        round,
        server_command,
        load_command,
        errors,
        report,
        cores,
    })
}

/// The command that reproduces a race.
pub(crate) fn command_line(opts: &RaceOptions) -> String {
    let mut parts = vec![
        "cargo xtask race".to_string(),
        format!("--zyphos-args {}", shell_quote(&opts.zyphos_args)),
    ];
    if let Some(names) = &opts.scenarios {
        parts.push(format!("--scenarios {}", names.join(",")));
    }
    parts.push(format!("--rounds {}", opts.rounds));
    parts.push(format!("--duration {}", opts.duration_s));
    parts.push(format!("--tools {}", opts.tools.join(",")));
    parts.push(format!("--out {}", opts.out));
    if let Some(r) = opts.require {
        parts.push(format!("--require {r}"));
    }
    parts.push(format!("--syscall-seconds {}", opts.syscall_seconds));
    parts.join(" ")
}

/// `1.25x`, or `n/a` when a side has no data.
fn ratio_text(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "n/a".into()
    }
}

fn print_table(r: &RaceResults) {
    println!();
    println!(
        "{:<21} {:<12} {:>11} {:>11} {:>7} {:>11} {:>11} {:>7}  verdict (bar {}x, lower p99)",
        "scenario",
        "tool",
        "nginx rps",
        "zyphos rps",
        "ratio",
        "nginx p99",
        "zyphos p99",
        "p99",
        r.bar
    );
    for s in &r.summaries {
        let errors = if s.nginx.errors + s.zyphos.errors > 0 {
            format!(
                " (errors: nginx {}, zyphos {})",
                s.nginx.errors, s.zyphos.errors
            )
        } else {
            String::new()
        };
        println!(
            "{:<21} {:<12} {:>11} {:>11} {:>7} {:>9}us {:>9}us {:>7}  {}{errors}",
            s.scenario,
            s.tool.name(),
            format_number(s.nginx.median_rps.round()),
            format_number(s.zyphos.median_rps.round()),
            ratio_text(s.ratio_rps),
            format_number(s.nginx.median_p99_us.round()),
            format_number(s.zyphos.median_p99_us.round()),
            ratio_text(s.ratio_p99),
            if s.beats_bar {
                "zyphos beats nginx"
            } else {
                "not met"
            }
        );
    }
    println!(
        "(medians of {} rounds of {} s; wrk's p99 is its own estimate)",
        r.rounds, r.duration_s
    );
    println!();
    println!(
        "{:<21} {:<12} {:>20} {:>20}  (median % busy during the load runs)",
        "scenario", "tool", "nginx server/load", "zyphos server/load"
    );
    for s in &r.summaries {
        println!(
            "{:<21} {:<12} {:>20} {:>20}  {}",
            s.scenario,
            s.tool.name(),
            cores_text(&s.nginx),
            cores_text(&s.zyphos),
            pace_note(&s.nginx, &s.zyphos)
        );
    }
    if r.syscalls.is_empty() {
        println!("syscalls per request: {}", r.syscalls_note);
    }
}

fn cores_text(side: &SideMedians) -> String {
    match (side.median_server_core_pct, side.median_load_core_pct) {
        (Some(s), Some(l)) => format!("{s:.0}% / {l:.0}%"),
        _ => "-".to_string(),
    }
}

/// Above this % busy a core is taken as saturated (the rest is the scheduler's slack).
pub(crate) const SATURATED_PCT: f64 = 95.0;

/// Which side set the pace of zyphos's runs, when the cores say so (and nginx's, when its
/// server core was saturated).
pub(crate) fn pace_note(nginx: &SideMedians, zyphos: &SideMedians) -> &'static str {
    let saturated = |v: Option<f64>| v.map(|p| p >= SATURATED_PCT);
    let nginx_server_bound = saturated(nginx.median_server_core_pct) == Some(true);
    match (
        saturated(zyphos.median_server_core_pct),
        saturated(zyphos.median_load_core_pct),
    ) {
        (Some(false), Some(true)) if nginx_server_bound => {
            "zyphos: load-generator bound (its core saturated, zyphos's not); nginx: server bound"
        }
        (Some(false), Some(true)) => {
            "zyphos: load-generator bound (its core saturated, zyphos's not)"
        }
        (Some(true), Some(true)) => "zyphos: both cores saturated",
        (Some(true), Some(false)) => "zyphos: server bound",
        _ => "",
    }
}

/// Grouped bars: per (scenario, tool), nginx's and zyphos's median requests per second.
pub(crate) fn chart(r: &RaceResults) -> Result<String> {
    let groups: Vec<&Summary> = r
        .summaries
        .iter()
        .filter(|s| s.nginx.median_rps.is_finite() && s.zyphos.median_rps.is_finite())
        .collect();
    let n = groups.len().max(1);
    let max = groups
        .iter()
        .flat_map(|s| [s.nginx.median_rps, s.zyphos.median_rps])
        .fold(0.0_f64, f64::max);
    let y_top = if max > 0.0 { max * 1.2 } else { 1.0 };
    let width = u32::try_from(200 * n + 160).unwrap_or(u32::MAX).max(720);
    let labels: Vec<String> = groups
        .iter()
        .map(|s| format!("{} · {}", s.scenario, s.tool.name()))
        .collect();
    let title = format!(
        "zyphos vs nginx: median requests/s ({} rounds × {} s, zyphos {})",
        r.rounds,
        r.duration_s,
        r.zyphos_args.join(" ")
    );
    let nginx_color = RGBColor(0x1f, 0x77, 0xb4);
    let zyphos_color = RGBColor(0xd6, 0x27, 0x28);
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (width, 480)).into_drawing_area();
        area.fill(&WHITE).context("drawing the chart")?;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n as f64, 0f64..y_top)
            .context("drawing the chart")?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc("scenario · load generator")
            .y_desc("requests per second (median)")
            .y_label_formatter(&|v| format_number(*v))
            .draw()
            .context("drawing the chart axes")?;
        // Group names under the axis, centred on each pair of bars.
        let label_style = TextStyle::from(("sans-serif", 13).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            area.draw(&Text::new(label.clone(), (x, y + 8), label_style.clone()))
                .context("drawing a group label")?;
        }
        for (server, color, offset) in [
            (Server::Nginx, nginx_color, 0.1),
            (Server::Zyphos, zyphos_color, 0.5),
        ] {
            let bars = groups.iter().enumerate().map(|(i, s)| {
                let v = match server {
                    Server::Nginx => s.nginx.median_rps,
                    Server::Zyphos => s.zyphos.median_rps,
                };
                let x = i as f64 + offset;
                Rectangle::new([(x, 0.0), (x + 0.4, v)], color.filled())
            });
            chart
                .draw_series(bars)
                .context("drawing bars")?
                .label(server.name())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        let ratios = groups.iter().enumerate().map(|(i, s)| {
            let top = s.nginx.median_rps.max(s.zyphos.median_rps);
            Text::new(
                format!("zyphos/nginx {}", ratio_text(s.ratio_rps)),
                (i as f64 + 0.12, top + y_top * 0.04),
                ("sans-serif", 13),
            )
        });
        chart.draw_series(ratios).context("drawing ratios")?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .context("drawing the legend")?;
        area.present().context("finishing the chart")?;
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn names(scenarios: &[Scenario]) -> Vec<&'static str> {
        scenarios.iter().map(|s| s.name).collect()
    }

    fn scenario(name: &str) -> Scenario {
        *SCENARIOS.iter().find(|s| s.name == name).expect("known")
    }

    fn run(scenario: &str, tool: Tool, server: Server, rps: f64, p99: f64, errors: u64) -> RaceRun {
        RaceRun {
            scenario: scenario.into(),
            tool,
            server,
            round: 1,
            server_command: String::new(),
            load_command: String::new(),
            errors,
            report: Report {
                rps,
                requests: (rps * 10.0) as u64,
                errors: BTreeMap::new(),
                latency: zyphos_load::Latency {
                    p99_us: p99,
                    ..Default::default()
                },
                ..Default::default()
            },
            cores: None,
        }
    }

    const STAT_BEFORE: &str = "cpu  300 0 300 1000 0 0 100 0 0 0\n\
        cpu0 100 0 200 500 0 0 50 0 0 0\n\
        cpu1 200 0 100 500 0 0 50 0 0 0\n\
        intr 1 2 3\n";
    const STAT_AFTER: &str = "cpu  400 0 450 1050 0 0 150 0 0 0\n\
        cpu0 120 0 260 510 10 0 60 0 0 0\n\
        cpu1 280 0 190 540 0 0 90 0 0 0\n\
        intr 1 2 3\n";

    #[test]
    fn test_cpu_jiffies_reads_one_cpu_line_and_not_the_total() {
        // cpu0: busy = user+system+softirq = 350, total = 850.
        assert_eq!(cpu_jiffies(STAT_BEFORE, 0), Some((350, 850)));
        assert_eq!(cpu_jiffies(STAT_BEFORE, 1), Some((350, 850)));
        assert_eq!(cpu_jiffies(STAT_BEFORE, 2), None);
        assert_eq!(cpu_jiffies("cpu0 1 2 x\n", 0), None);
    }

    #[test]
    fn test_busy_pct_counts_iowait_as_idle() {
        // cpu0: busy +90 (20 user, 60 system, 10 softirq), idle +10, iowait +10: 90/110.
        let p = busy_pct(STAT_BEFORE, STAT_AFTER, 0).expect("cpu0");
        assert!((p - 100.0 * 90.0 / 110.0).abs() < 1e-9, "{p}");
        // cpu1: busy +210, idle +40: 210/250.
        let p = busy_pct(STAT_BEFORE, STAT_AFTER, 1).expect("cpu1");
        assert!((p - 84.0).abs() < 1e-9, "{p}");
        // No time passed: no figure rather than a division by zero.
        assert_eq!(busy_pct(STAT_BEFORE, STAT_BEFORE, 0), None);
    }

    fn with_cores(mut r: RaceRun, server_pct: f64, load_pct: f64) -> RaceRun {
        r.cores = Some(CoreBusy {
            server_pct,
            load_pct,
        });
        r
    }

    #[test]
    fn test_pace_note_names_the_saturated_core() {
        let t = Tool::Wrk;
        let runs = vec![
            with_cores(run("p", t, Server::Nginx, 80_000.0, 900.0, 0), 97.0, 90.0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 86.0, 99.0),
        ];
        let sums = summarize(&runs, 1.3);
        assert_eq!(sums[0].nginx.median_server_core_pct, Some(97.0));
        assert_eq!(sums[0].zyphos.median_load_core_pct, Some(99.0));
        assert_eq!(
            pace_note(&sums[0].nginx, &sums[0].zyphos),
            "zyphos: load-generator bound (its core saturated, zyphos's not); nginx: server bound"
        );
        let runs = vec![
            with_cores(run("p", t, Server::Nginx, 80_000.0, 900.0, 0), 97.0, 90.0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 99.0, 90.0),
        ];
        let sums = summarize(&runs, 1.3);
        assert_eq!(
            pace_note(&sums[0].nginx, &sums[0].zyphos),
            "zyphos: server bound"
        );
        // A run without core figures leaves the medians (and the note) empty.
        let runs = vec![
            run("p", t, Server::Nginx, 80_000.0, 900.0, 0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 99.0, 90.0),
        ];
        let sums = summarize(&runs, 1.3);
        assert_eq!(sums[0].nginx.median_server_core_pct, None);
    }

    #[test]
    fn test_http10_args_select_close_scenarios_and_skip_keepalive() {
        let sel = select_scenarios(&SCENARIOS, "http1.0");
        assert_eq!(names(&sel.run), ["plaintext-close", "static1k-close"]);
        let skipped: Vec<&str> = sel.skipped.iter().map(|s| s.scenario.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "plaintext-keepalive",
                "plaintext-pipeline16",
                "static1k-keepalive"
            ]
        );
        assert!(
            sel.skipped[0].reason.contains("--proto http1.1"),
            "{:?}",
            sel.skipped
        );
    }

    #[test]
    fn test_http11_args_select_every_scenario() {
        let sel = select_scenarios(&SCENARIOS, "http1.1");
        assert_eq!(names(&sel.run), names(&SCENARIOS));
        assert!(sel.skipped.is_empty());
    }

    #[test]
    fn test_requested_scenarios_keep_order_and_skip_with_reason() {
        let asked = strings(&["static1k-close", "plaintext-pipeline16", "static1k-close"]);
        let wanted = lookup_scenarios(Some(&asked)).expect("known names");
        assert_eq!(names(&wanted), ["static1k-close", "plaintext-pipeline16"]);
        let sel = select_scenarios(&wanted, "http1.0");
        assert_eq!(names(&sel.run), ["static1k-close"]);
        assert_eq!(sel.skipped.len(), 1);
        assert_eq!(sel.skipped[0].scenario, "plaintext-pipeline16");
        let echo = select_scenarios(&SCENARIOS, "echo");
        assert!(echo.run.is_empty());
        assert!(echo.skipped[0].reason.contains("speaks echo"));
    }

    #[test]
    fn test_unknown_scenario_is_a_usage_error() {
        let err = lookup_scenarios(Some(&strings(&["plaintext"]))).expect_err("unknown");
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("plaintext-close"), "{err}");
        assert_eq!(lookup_scenarios(None).expect("all").len(), SCENARIOS.len());
    }

    #[test]
    fn test_proto_comes_from_args_or_help_default() {
        assert_eq!(
            proto_in_args(&strings(&["serve", "--io", "epoll", "--proto", "http1.1"])),
            Some("http1.1".into())
        );
        assert_eq!(
            proto_in_args(&strings(&["serve", "--proto=http1.0"])),
            Some("http1.0".into())
        );
        assert_eq!(proto_in_args(&strings(&["serve", "--io", "pool"])), None);
        let help = "      --workers <WORKERS>  Worker count [default: 4]\n      \
                    --proto <PROTO>  Protocol stack spoken on the listener [default: http1.0] \
                    [possible values: echo, http1.0, http1.1, h2c]\n";
        assert_eq!(default_proto_in_help(help), Some("http1.0".into()));
        assert_eq!(default_proto_in_help("no such option"), None);
    }

    #[test]
    fn test_tools_and_out_names_are_checked() {
        assert_eq!(
            parse_tools(&strings(&["wrk", "zyphos-load", "wrk"])).expect("ok"),
            [Tool::Wrk, Tool::ZyphosLoad]
        );
        assert!(parse_tools(&strings(&["ab"])).is_err());
        assert!(parse_tools(&[]).is_err());
        assert!(check_out_name("race").is_ok());
        assert!(check_out_name("race-epoll-http1.1").is_ok());
        assert!(check_out_name("m09").is_err());
        assert!(check_out_name("race/../../x").is_err());
        assert_eq!(
            output_paths("race"),
            (
                PathBuf::from("docs/results/race.json"),
                PathBuf::from("docs/charts/race.svg")
            )
        );
    }

    #[test]
    fn test_zyphos_command_gets_a_listen_address() {
        let bin = Path::new("/t/zyphos");
        assert_eq!(
            zyphos_argv(bin, &strings(&["serve", "--io", "threads"]), 4242),
            [
                "/t/zyphos",
                "serve",
                "--io",
                "threads",
                "--listen",
                "127.0.0.1:4242"
            ]
        );
        assert_eq!(
            zyphos_argv(bin, &strings(&["serve", "--listen", "{listen}"]), 7),
            ["/t/zyphos", "serve", "--listen", "127.0.0.1:7"]
        );
    }

    #[test]
    fn test_load_commands_render_each_scenario() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let load = Path::new("zyphos-load");
        assert_eq!(
            zyphos_load_argv(load, &scenario("plaintext-close"), addr, 3, Some(1)).join(" "),
            "zyphos-load --json --scenario http1.0 --connections 64 --duration 3 --path \
             /plaintext --cpu 1 127.0.0.1:9"
        );
        assert_eq!(
            zyphos_load_argv(load, &scenario("plaintext-pipeline16"), addr, 3, None).join(" "),
            "zyphos-load --json --scenario http1.1 --connections 64 --duration 3 --path \
             /plaintext --pipeline 16 --pipeline-mode batch 127.0.0.1:9"
        );
        let script = Path::new("benches/peers/pipeline.lua");
        let wrk = Path::new("wrk");
        let close = wrk_argv(
            wrk,
            &wrk_options(&scenario("static1k-close"), addr, 3),
            script,
        );
        assert_eq!(
            close,
            [
                "wrk",
                "-t1",
                "-c64",
                "-d3s",
                "--latency",
                "-H",
                "Connection: close",
                "http://127.0.0.1:9/static/1k.bin"
            ]
        );
        let piped = wrk_argv(
            wrk,
            &wrk_options(&scenario("plaintext-pipeline16"), addr, 3),
            script,
        );
        assert_eq!(
            piped[5..].join(" "),
            "-s benches/peers/pipeline.lua http://127.0.0.1:9/plaintext -- 16"
        );
        let keep = wrk_argv(
            wrk,
            &wrk_options(&scenario("static1k-keepalive"), addr, 3),
            script,
        );
        assert!(!keep.contains(&"-H".to_string()), "{keep:?}");
    }

    #[test]
    fn test_medians_ratios_and_verdicts() {
        let runs = vec![
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Nginx,
                100.0,
                900.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Zyphos,
                150.0,
                500.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Nginx,
                120.0,
                1000.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Zyphos,
                130.0,
                700.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Nginx,
                110.0,
                800.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Zyphos,
                160.0,
                600.0,
                0,
            ),
            run("plaintext-close", Tool::Wrk, Server::Nginx, 100.0, 900.0, 0),
            run(
                "plaintext-close",
                Tool::Wrk,
                Server::Zyphos,
                200.0,
                1200.0,
                0,
            ),
        ];
        let s = summarize(&runs, ISSUE6_BAR);
        assert_eq!(s.len(), 2);
        let z = &s[0];
        assert_eq!(
            (z.scenario.as_str(), z.tool),
            ("plaintext-close", Tool::ZyphosLoad)
        );
        assert_eq!((z.nginx.runs, z.zyphos.runs), (3, 3));
        assert_eq!(z.nginx.median_rps, 110.0);
        assert_eq!(z.zyphos.median_rps, 150.0);
        assert!((z.ratio_rps - 150.0 / 110.0).abs() < 1e-12);
        assert!((z.ratio_p99 - 600.0 / 900.0).abs() < 1e-12);
        assert!(z.beats_bar, "1.36x with a lower p99");
        // Twice the throughput but a longer tail: not a win.
        assert_eq!(s[1].ratio_rps, 2.0);
        assert!(!s[1].beats_bar);
        // Below the bar.
        assert!(!summarize(&runs, 1.4)[0].beats_bar);
    }

    #[test]
    fn test_errors_or_missing_data_never_win() {
        let runs = vec![
            run("static1k-close", Tool::Wrk, Server::Nginx, 100.0, 900.0, 0),
            run(
                "static1k-close",
                Tool::Wrk,
                Server::Zyphos,
                200.0,
                100.0,
                50,
            ),
        ];
        let s = summarize(&runs, ISSUE6_BAR);
        assert_eq!(s[0].zyphos.errors, 50);
        assert!(!s[0].beats_bar, "50 errors in 2000 requests is over 1 %");
        let only_nginx = vec![run(
            "static1k-close",
            Tool::Wrk,
            Server::Nginx,
            100.0,
            900.0,
            0,
        )];
        let s = summarize(&only_nginx, ISSUE6_BAR);
        assert!(s[0].ratio_rps.is_nan());
        assert!(!s[0].beats_bar);
        assert_eq!(ratio_text(s[0].ratio_rps), "n/a");
    }

    #[test]
    fn test_strace_summary_and_proc_stat_parse() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n \
                    68.39    0.001843         921         2         1 wait4\n  \
                    9.91    0.000267           7        37        13 openat\n  \
                    5.83    0.000157           4        38           mmap\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.002695          12        77        14 total\n";
        let (total, rows) = parse_strace_summary(text).expect("parses");
        assert_eq!(total, 77);
        assert_eq!(
            rows,
            [
                ("mmap".to_string(), 38),
                ("openat".to_string(), 37),
                ("wait4".to_string(), 2)
            ]
        );
        assert_eq!(
            parse_strace_summary("strace: attach: ptrace(PTRACE_SEIZE, 1): EPERM"),
            None
        );
        assert_eq!(
            ppid_in_stat("4242 (nginx: worker (x)) S 4241 4241 4241 0 -1"),
            Some(4241)
        );
        assert_eq!(ppid_in_stat("garbage"), None);
    }

    #[test]
    fn test_command_line_reproduces_the_options() {
        let opts = RaceOptions {
            zyphos_args: DEFAULT_ZYPHOS_ARGS.into(),
            scenarios: Some(strings(&["plaintext-close"])),
            rounds: 2,
            duration_s: 3,
            tools: strings(&["zyphos-load", "wrk"]),
            out: "race".into(),
            require: Some(1.3),
            syscall_seconds: 2,
        };
        assert_eq!(
            command_line(&opts),
            "cargo xtask race --zyphos-args 'serve --io epoll --workers 1 --proto http1.1 \
             --keepalive-requests 100000000' --scenarios plaintext-close --rounds 2 --duration 3 --tools zyphos-load,wrk --out race \
             --require 1.3 --syscall-seconds 2"
        );
    }

    #[test]
    fn test_chart_draws_both_servers_per_group() {
        let runs = vec![
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Nginx,
                10000.0,
                900.0,
                0,
            ),
            run(
                "plaintext-close",
                Tool::ZyphosLoad,
                Server::Zyphos,
                8000.0,
                700.0,
                0,
            ),
        ];
        let record = RaceResults {
            command: String::new(),
            zyphos_args: strings(&["serve", "--proto", "http1.0"]),
            zyphos_proto: "http1.0".into(),
            rounds: 1,
            duration_s: 3,
            tools: vec![Tool::ZyphosLoad],
            pinning: String::new(),
            order: String::new(),
            machine: Machine::current(),
            git: GitInfo {
                revision: "none".into(),
                dirty: false,
            },
            timestamp: String::new(),
            nginx_version: String::new(),
            wrk_version: None,
            bar: ISSUE6_BAR,
            require: None,
            scenarios: vec![scenario("plaintext-close")],
            skipped: Vec::new(),
            summaries: summarize(&runs, ISSUE6_BAR),
            syscalls: Vec::new(),
            syscalls_note: String::new(),
            runs,
        };
        let svg = chart(&record).expect("renders");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("plaintext-close · zyphos-load"), "group label");
        assert!(svg.contains("zyphos/nginx 0.80x"), "ratio label");
        assert!(
            svg.contains("\nnginx\n") && svg.contains("\nzyphos\n"),
            "legend"
        );
        assert!(
            svg.matches("<rect").count() >= 3,
            "two bars and a background"
        );
    }
}
