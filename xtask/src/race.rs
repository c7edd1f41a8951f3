//! `cargo xtask race`: zyphos against nginx and h2o, side by side, with the same load generators.
//!
//! For each scenario (a row of [`SCENARIOS`]: a path, connection handling, connection count and
//! pipeline depth), for `rounds` rounds, with each load tool (`zyphos-load`, `wrk`), it runs
//! each server of `--servers` in turn (default nginx, h2o, zyphos — A B C A B C), each a fresh
//! server on a free loopback port, pinned to the first allowed CPU while the load generator is
//! pinned to the second. Then it takes medians per (scenario, tool, server), the ratios zyphos /
//! nginx and zyphos / h2o (requests per second, p99 latency) and a verdict against issue 6's bar
//! (zyphos at least 1.3x nginx's throughput *and* a lower p99).
//!
//! **Server CPU per request.** When the load generator saturates its core first, requests per
//! second measure the client, not the server. So every run also samples the CPU time (user +
//! system, `/proc/PID/stat` utime + stime, which covers every thread of a process) of the
//! server's process tree (zyphos; nginx's master and worker; h2o and its helper) just before
//! and just after the load, and divides it by the requests the run completed: CPU µs per
//! request. Its ratios baseline_us / zyphos_us are "requests per server CPU-second, zyphos over
//! the baseline", judged against the project's goal [`CPU_GOAL`] (reported, never enforced).
//!
//! Optionally (`--syscall-seconds`, on by default when strace is installed) a separate short run
//! per scenario and server under `strace -c -f` gives system calls per request. Every run also
//! records how busy the server's and the load generator's CPUs were (`/proc/stat`), so the table
//! says which side set the pace: a ratio measured with the generator's core saturated and the
//! server's not is the generator's ceiling, not the server's.
//!
//! All servers serve the same bytes from the same files: a private site directory (written per
//! race) holds `static/1k.bin`, `static/64k.bin` and, for h2o (which has no `return`-style
//! handler in C), `plaintext.txt` with the 13-byte `Hello, World!` that nginx (`return 200`)
//! and zyphos produce in code. A parity check fetches every scenario's path from every server
//! before the timed runs and fails on any difference in status or body.
//!
//! Writes `docs/results/<out>.json` (machine, git revision, every command and run, medians,
//! ratios, verdicts, syscall counts) and `docs/charts/<out>.svg` (grouped bars: requests/s and
//! CPU µs/request), and prints tables. Verdicts are reported, not enforced, unless
//! `--require RATIO` is given.
//!
//! Which scenarios run depends on what the zyphos arguments speak: keep-alive needs
//! `--proto http1.1`; a scenario that cannot run is skipped with its reason printed.

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// The project's goal for server CPU per request: zyphos serves at least this many times the
/// requests per server CPU-second of each baseline (nginx, h2o), i.e. baseline_us / zyphos_us
/// is at least this. Reported in the table and the JSON; no exit check depends on it.
pub(crate) const CPU_GOAL: f64 = 1.3;

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

/// The servers, in the order they run within a round (A B C).
pub(crate) const DEFAULT_SERVERS: &str = "nginx,h2o,zyphos";

/// The h2o configuration template (`@PREFIX@`, `@PORT@`, `@STATIC@`, `@PLAINTEXT@`, `@USER@`).
const H2O_CONF_TEMPLATE: &str = include_str!("../../benches/peers/h2o.conf");

/// The bytes behind `/plaintext` on every server.
pub(crate) const PLAINTEXT_BODY: &[u8] = b"Hello, World!";

/// The static files every server serves under `/static/` (name, size in bytes). Their bytes
/// are [`static_bytes`]; `1k.bin` is the file `zyphos_load::peers::Nginx` writes and
/// `crates/zyphos/site/static/1k.bin` holds.
pub(crate) const STATIC_FILES: [(&str, usize); 2] = [("1k.bin", 1024), ("64k.bin", 64 * 1024)];

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
pub(crate) const SCENARIOS: [Scenario; 6] = [
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
    Scenario {
        name: "static64k-keepalive",
        path: "/static/64k.bin",
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
    /// The second baseline (`benches/peers/h2o.conf`: `num-threads: 1`, no access log).
    H2o,
    /// `target/release/zyphos` with the `--zyphos-args`.
    Zyphos,
}

impl Server {
    /// Every server, in the default order.
    pub(crate) const ALL: [Server; 3] = [Server::Nginx, Server::H2o, Server::Zyphos];

    /// Its name in tables and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::H2o => "h2o",
            Server::Zyphos => "zyphos",
        }
    }
}

/// Parses `--servers` names (duplicates dropped, order kept): zyphos and at least one baseline.
pub(crate) fn parse_servers(names: &[String]) -> Result<Vec<Server>> {
    let mut servers = Vec::new();
    for name in names {
        let server = Server::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| {
                UsageError(format!(
                    "unknown server `{name}`; known: nginx, h2o, zyphos"
                ))
            })?;
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    if !servers.contains(&Server::Zyphos) || servers.len() < 2 {
        return Err(
            UsageError("--servers must name zyphos and at least one of nginx, h2o".into()).into(),
        );
    }
    Ok(servers)
}

/// The bytes of static file `name` of `size` bytes: byte i is `i % 251` (so a misplaced range
/// shows), the same for every server.
pub(crate) fn static_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The body every server must send for `path`, if the race knows it.
pub(crate) fn expected_body(path: &str) -> Option<Vec<u8>> {
    if path == "/plaintext" {
        return Some(PLAINTEXT_BODY.to_vec());
    }
    let name = path.strip_prefix("/static/")?;
    STATIC_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, size)| static_bytes(size))
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
    /// Server names, in run order within a round.
    pub(crate) servers: Vec<String>,
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
    /// The server's process ids sampled for CPU time (the process and its descendants).
    pub(crate) server_pids: Vec<u32>,
    /// CPU time (user + system, all threads) of those processes during the load run, µs.
    pub(crate) server_cpu_us: f64,
    /// `server_cpu_us` / requests completed (NaN, written as null, when none completed).
    pub(crate) cpu_us_per_request: f64,
}

/// utime + stime (clock ticks) in a `/proc/PID/stat` line: the 14th and 15th fields, counted
/// after the parenthesised command name (which may itself hold spaces and parentheses). For a
/// process these cover all of its threads, exited ones included.
pub(crate) fn cpu_ticks_in_stat(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `pid` and its descendants (breadth first), from `(pid, ppid)` pairs.
pub(crate) fn tree_of(pid: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(child, ppid) in parents {
            if ppid == parent && !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    tree
}

/// `pid` and its descendants, found by scanning `/proc`.
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    Some((p, ppid_in_stat(&stat)?))
                })
                .collect()
        })
        .unwrap_or_default();
    tree_of(pid, &parents)
}

/// Summed utime + stime (clock ticks) of `pids` now; an error when one cannot be read (a
/// server process that went away would silently lower the figure).
fn cpu_ticks(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        total += cpu_ticks_in_stat(&stat).with_context(|| format!("parsing {path}: {stat:?}"))?;
    }
    Ok(total)
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second(root: &Path) -> Result<u64> {
    let out = Cmd::new(["getconf", "CLK_TCK"], root)
        .timeout(Duration::from_secs(10))
        .run()?;
    out.stdout
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&t| t > 0)
        .with_context(|| format!("`getconf CLK_TCK` printed {:?}", out.stdout))
}

/// CPU µs per request from a tick delta; NaN when no request completed.
pub(crate) fn us_per_request(ticks: u64, ticks_per_s: u64, requests: u64) -> (f64, f64) {
    let us = ticks as f64 * 1e6 / ticks_per_s as f64;
    let per = if requests == 0 {
        f64::NAN
    } else {
        us / requests as f64
    };
    (us, per)
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
    /// Median server CPU µs per request over its runs.
    pub(crate) median_cpu_us_per_request: f64,
    /// 1e6 / `median_cpu_us_per_request`: requests per server CPU-second.
    pub(crate) requests_per_cpu_second: f64,
}

/// The result of one (scenario, tool) pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Scenario name.
    pub(crate) scenario: String,
    /// Load generator.
    pub(crate) tool: Tool,
    /// nginx's medians (null when nginx did not run).
    pub(crate) nginx: Option<SideMedians>,
    /// h2o's medians (null when h2o did not run).
    pub(crate) h2o: Option<SideMedians>,
    /// zyphos's medians.
    pub(crate) zyphos: SideMedians,
    /// zyphos median rps / nginx median rps.
    pub(crate) ratio_rps: f64,
    /// zyphos median p99 / nginx median p99 (below 1 = zyphos's tail is shorter).
    pub(crate) ratio_p99: f64,
    /// zyphos median rps / h2o median rps.
    pub(crate) ratio_rps_h2o: f64,
    /// zyphos median p99 / h2o median p99.
    pub(crate) ratio_p99_h2o: f64,
    /// ratio_rps ≥ the bar, a lower p99, and errors under 1 % on both sides (against nginx:
    /// issue 6's verdict).
    pub(crate) beats_bar: bool,
    /// nginx CPU µs/request / zyphos CPU µs/request: zyphos's requests per server CPU-second
    /// over nginx's.
    pub(crate) cpu_nginx_over_zyphos: f64,
    /// h2o CPU µs/request / zyphos CPU µs/request.
    pub(crate) cpu_h2o_over_zyphos: f64,
    /// Every baseline that ran has a CPU ratio ≥ [`CPU_GOAL`], and errors stay under 1 % on
    /// every side.
    pub(crate) meets_cpu_goal: bool,
}

/// Medians of the runs of `server` in `runs`.
pub(crate) fn side_medians(runs: &[&RaceRun], server: Server) -> SideMedians {
    let mine: Vec<&&RaceRun> = runs.iter().filter(|r| r.server == server).collect();
    let cpu = median(
        &mine
            .iter()
            .map(|r| r.cpu_us_per_request)
            .collect::<Vec<_>>(),
    );
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
        median_cpu_us_per_request: cpu,
        requests_per_cpu_second: 1e6 / cpu,
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

/// baseline CPU µs/request over zyphos's (NaN without a baseline or data).
fn cpu_ratio(baseline: Option<&SideMedians>, zyphos: &SideMedians) -> f64 {
    baseline.map_or(f64::NAN, |b| {
        b.median_cpu_us_per_request / zyphos.median_cpu_us_per_request
    })
}

/// The CPU goal: every baseline present is beaten by `goal` per server CPU-second, cleanly.
pub(crate) fn meets_cpu_goal(
    baselines: &[Option<&SideMedians>],
    zyphos: &SideMedians,
    goal: f64,
) -> bool {
    let present: Vec<&SideMedians> = baselines.iter().flatten().copied().collect();
    !present.is_empty()
        && clean(zyphos)
        && present
            .iter()
            .all(|b| clean(b) && cpu_ratio(Some(b), zyphos) >= goal)
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
            let side = |server: Server| {
                mine.iter()
                    .any(|r| r.server == server)
                    .then(|| side_medians(&mine, server))
            };
            let nginx = side(Server::Nginx);
            let h2o = side(Server::H2o);
            let zyphos = side_medians(&mine, Server::Zyphos);
            let ratio = |b: &Option<SideMedians>, f: fn(&SideMedians) -> f64| {
                b.as_ref().map_or(f64::NAN, |b| f(&zyphos) / f(b))
            };
            Summary {
                ratio_rps: ratio(&nginx, |s| s.median_rps),
                ratio_p99: ratio(&nginx, |s| s.median_p99_us),
                ratio_rps_h2o: ratio(&h2o, |s| s.median_rps),
                ratio_p99_h2o: ratio(&h2o, |s| s.median_p99_us),
                beats_bar: nginx.as_ref().is_some_and(|n| beats(n, &zyphos, bar)),
                cpu_nginx_over_zyphos: cpu_ratio(nginx.as_ref(), &zyphos),
                cpu_h2o_over_zyphos: cpu_ratio(h2o.as_ref(), &zyphos),
                meets_cpu_goal: meets_cpu_goal(&[nginx.as_ref(), h2o.as_ref()], &zyphos, CPU_GOAL),
                scenario,
                tool,
                nginx,
                h2o,
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

/// The process whose command line is exactly `argv` (found by scanning `/proc`).
fn pid_by_cmdline(argv: &[String]) -> Option<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
}

/// Longest response the parity check reads.
const PARITY_MAX_BYTES: usize = 1 << 20;

/// One `GET path` with `Connection: close` to `addr`; the raw response (bounded in size and
/// time).
fn http_get(addr: SocketAddr, path: &str) -> Result<Vec<u8>> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .take(PARITY_MAX_BYTES as u64)
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to GET {path} from {addr}"))?;
    Ok(raw)
}

/// (status, body) of a raw HTTP/1.x response: the body is `Content-Length` bytes when the
/// header is there, else everything after the head. None when it is not a complete response.
pub(crate) fn split_response(raw: &[u8]) -> Option<(u16, &[u8])> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let length = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if n <= body.len() => Some((status, &body[..n])),
        Some(_) => None,
        None => Some((status, body)),
    }
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
    /// Servers, in run order within a round.
    pub(crate) servers: Vec<Server>,
    /// `nginx -v` (when nginx ran).
    pub(crate) nginx_version: String,
    /// `h2o -v` (when h2o ran).
    pub(crate) h2o_version: Option<String>,
    /// `wrk -v` (when wrk ran).
    pub(crate) wrk_version: Option<String>,
    /// The ratio a verdict needs.
    pub(crate) bar: f64,
    /// The goal for baseline CPU µs/request over zyphos's ([`CPU_GOAL`]).
    pub(crate) cpu_goal: f64,
    /// How server CPU per request is measured.
    pub(crate) cpu_note: String,
    /// How each server produces each response, and what the parity check saw.
    pub(crate) notes: Vec<String>,
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
        let how = crate::setup::install_command(name)
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        anyhow!(
            "{name} is missing (not on PATH, /usr/sbin or /sbin): run `cargo xtask setup` to \
             install it{how}"
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
    nginx: Option<PathBuf>,
    h2o: Option<PathBuf>,
    wrk: Option<PathBuf>,
    zyphos_args: Vec<String>,
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    duration_s: u64,
    /// The files every server serves ([`write_site`]).
    site: Site,
    /// `getconf CLK_TCK`.
    ticks_per_s: u64,
}

/// The race's private site directory: `static/` (every server's `/static/`) and
/// `plaintext.txt` (h2o's `/plaintext`); removed on drop.
struct Site {
    dir: peers::TempDir,
}

impl Site {
    fn static_dir(&self) -> PathBuf {
        self.dir.path().join("static")
    }

    fn plaintext(&self) -> PathBuf {
        self.dir.path().join("plaintext.txt")
    }
}

/// Writes the site directory (world-readable, like nginx's temp dir).
fn write_site() -> Result<Site> {
    let dir = peers::TempDir::new("race-site").context("creating the race's site dir")?;
    let site = Site { dir };
    let static_dir = site.static_dir();
    std::fs::create_dir_all(&static_dir)?;
    std::fs::set_permissions(&static_dir, std::fs::Permissions::from_mode(0o755))?;
    for (name, size) in STATIC_FILES {
        std::fs::write(static_dir.join(name), static_bytes(size))
            .with_context(|| format!("writing {name}"))?;
    }
    std::fs::write(site.plaintext(), PLAINTEXT_BODY).context("writing plaintext.txt")?;
    Ok(site)
}

/// Fills the h2o template.
pub(crate) fn render_h2o_conf(
    prefix: &Path,
    port: u16,
    static_dir: &Path,
    plaintext: &Path,
    root_user: bool,
) -> String {
    H2O_CONF_TEMPLATE
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@STATIC@", &static_dir.display().to_string())
        .replace("@PLAINTEXT@", &plaintext.display().to_string())
        // As root, h2o would otherwise switch to `nobody`.
        .replace("@USER@", if root_user { "user: root" } else { "" })
}

/// zyphos arguments with `--root STATIC` appended unless they name a root already.
pub(crate) fn with_static_root(args: &[String], static_dir: &Path) -> Vec<String> {
    let mut args = args.to_vec();
    if !args
        .iter()
        .any(|a| a == "--root" || a.starts_with("--root="))
    {
        args.extend(["--root".to_string(), static_dir.display().to_string()]);
    }
    args
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A running server of any kind; stopped on drop.
enum Running {
    Nginx(Nginx),
    /// zyphos or h2o: the guard, and the server's pid when `/proc` showed it.
    Process {
        /// Kills the server's process group when dropped.
        _guard: Background,
        /// Its pid.
        pid: Option<u32>,
        /// Its config dir (h2o), removed after the server stops.
        _dir: Option<peers::TempDir>,
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
    /// Its top process id, or an error when `/proc` did not show it.
    fn pid(&self) -> Result<u32> {
        match self {
            Running::Nginx(n) => Ok(n.pid()),
            Running::Process { pid, .. } => {
                pid.context("cannot find the server's process id in /proc (by its command line)")
            }
        }
    }
}

impl Setup {
    /// Starts `server` pinned to the server CPU; returns it, its address and its command.
    fn start(&self, server: Server) -> Result<(Running, SocketAddr, String)> {
        match server {
            Server::Nginx => {
                let bin = self.nginx.as_deref().context("nginx was not looked up")?;
                let mut o = NginxOptions::default();
                o.cpu = self.server_cpu;
                let nginx = Nginx::start(&o).context("starting nginx")?;
                // Its own process group: make sure an interrupted xtask kills it too.
                sys::register_group(nginx.pid());
                let addr = nginx.addr();
                let command = format!(
                    "{bin} -p {dir} -c {dir}/nginx.conf -e {dir}/error.log (the config is \
                     benches/peers/nginx.conf rendered: 1 worker, access log off)",
                    bin = bin.display(),
                    dir = nginx.dir().display()
                );
                let static_dir = nginx.dir().join("static");
                let running = Running::Nginx(nginx);
                // Nginx::start writes 1k.bin; the race's files replace and join it (nginx opens
                // files per request, so files added after start are served).
                for (name, _) in STATIC_FILES {
                    std::fs::copy(self.site.static_dir().join(name), static_dir.join(name))
                        .with_context(|| format!("copying {name} into {}", static_dir.display()))?;
                }
                Ok((running, addr, command))
            }
            Server::H2o => {
                let bin = self.h2o.as_deref().context("h2o was not looked up")?;
                let port = peers::free_port().context("finding a free port")?;
                let dir = peers::TempDir::new("h2o").context("creating h2o's temp dir")?;
                let conf = render_h2o_conf(
                    dir.path(),
                    port,
                    &self.site.static_dir(),
                    &self.site.plaintext(),
                    is_root(),
                );
                let conf_path = dir.path().join("h2o.conf");
                std::fs::write(&conf_path, conf).context("writing h2o.conf")?;
                let argv = vec![
                    bin.display().to_string(),
                    "-c".to_string(),
                    conf_path.display().to_string(),
                ];
                let (guard, addr) = self.spawn_and_wait("h2o", &argv, port)?;
                let command = format!(
                    "{} (the config is benches/peers/h2o.conf rendered: num-threads 1, no \
                     access log)",
                    guard.command()
                );
                Ok((
                    Running::Process {
                        pid: pid_by_cmdline(&argv),
                        _guard: guard,
                        _dir: Some(dir),
                    },
                    addr,
                    command,
                ))
            }
            Server::Zyphos => {
                let port = peers::free_port().context("finding a free port")?;
                let args = with_static_root(&self.zyphos_args, &self.site.static_dir());
                let argv = zyphos_argv(&self.zyphos, &args, port);
                let (guard, addr) = self.spawn_and_wait("zyphos", &argv, port)?;
                let command = guard.command().to_string();
                Ok((
                    Running::Process {
                        pid: pid_by_cmdline(&argv),
                        _guard: guard,
                        _dir: None,
                    },
                    addr,
                    command,
                ))
            }
        }
    }

    /// Spawns `argv` pinned to the server CPU and waits (bounded) until `port` accepts.
    fn spawn_and_wait(
        &self,
        name: &str,
        argv: &[String],
        port: u16,
    ) -> Result<(Background, SocketAddr)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Cmd::new(argv.to_vec(), &self.root);
        if let Some(cpu) = self.server_cpu {
            cmd = cmd.pin_cpu(cpu);
        }
        let mut bg = cmd.spawn_background()?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = bg.exited() {
                bail!(
                    "{name} exited before accepting on {addr} ({status}): `{}`: {}",
                    bg.command(),
                    bg.stderr_tail(3)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok((bg, addr));
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} did not accept on {addr} within {} s: `{}`: {}",
                    STARTUP_TIMEOUT.as_secs(),
                    bg.command(),
                    bg.stderr_tail(3)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fetches every path once from `server` and compares status and body with what the race
    /// expects; returns one line per path.
    fn parity(&self, server: Server, paths: &[&str]) -> Result<Vec<String>> {
        let (running, addr, _) = self.start(server)?;
        let mut lines = Vec::new();
        for path in paths {
            let want = expected_body(path)
                .with_context(|| format!("the race does not know what {path} should hold"))?;
            let raw = http_get(addr, path)?;
            let (status, body) = split_response(&raw)
                .with_context(|| format!("{} sent no HTTP response for {path}", server.name()))?;
            if status != 200 || body != want.as_slice() {
                bail!(
                    "{} answers GET {path} with status {status} and a {}-byte body that is {}the \
                     expected {} bytes: the servers would not be serving the same thing",
                    server.name(),
                    body.len(),
                    if body == want.as_slice() { "" } else { "not " },
                    want.len()
                );
            }
            lines.push(format!(
                "{} GET {path}: 200, {} bytes, identical to the other servers'",
                server.name(),
                body.len()
            ));
        }
        drop(running);
        Ok(lines)
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
        let pids = process_tree(running.pid()?);
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

/// What starting and stopping a server adds to each run, ms (measured: about 0.15 s).
const RUN_OVERHEAD_MS: u64 = 250;

/// Seconds a race with these sizes takes, roughly (the build aside): every timed run plus
/// [`RUN_OVERHEAD_MS`], and every traced run (attach pause, load, detach margin, overhead).
pub(crate) fn estimate_seconds(
    scenarios: usize,
    rounds: u32,
    tools: usize,
    servers: usize,
    duration_s: u64,
    syscall_seconds: u64,
) -> u64 {
    let timed = scenarios as u64 * u64::from(rounds) * tools as u64 * servers as u64;
    let traced_ms = if syscall_seconds == 0 {
        0
    } else {
        scenarios as u64
            * servers as u64
            * ((syscall_seconds + STRACE_ATTACH_PAUSE.as_secs() + STRACE_DETACH_MARGIN_S) * 1000
                + RUN_OVERHEAD_MS)
    };
    (timed * (duration_s * 1000 + RUN_OVERHEAD_MS) + traced_ms).div_ceil(1000)
}

/// Runs the race: checks, builds, measures, prints, records.
pub(crate) fn run(root: &Path, opts: &RaceOptions) -> Result<()> {
    if opts.rounds == 0 || opts.duration_s == 0 {
        return Err(UsageError("--rounds and --duration must be at least 1".into()).into());
    }
    check_out_name(&opts.out)?;
    let tools = parse_tools(&opts.tools)?;
    let servers = parse_servers(&opts.servers)?;
    let wanted = lookup_scenarios(opts.scenarios.as_deref())?;
    let zyphos_args: Vec<String> = opts
        .zyphos_args
        .split_whitespace()
        .map(String::from)
        .collect();
    if zyphos_args.is_empty() {
        return Err(UsageError("--zyphos-args is empty".into()).into());
    }
    let nginx = if servers.contains(&Server::Nginx) {
        Some(require_peer("nginx")?)
    } else {
        None
    };
    let h2o = if servers.contains(&Server::H2o) {
        Some(require_peer("h2o")?)
    } else {
        None
    };
    let wrk = if tools.contains(&Tool::Wrk) {
        Some(require_peer("wrk")?)
    } else {
        None
    };
    let ticks_per_s = clock_ticks_per_second(root)?;
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
            "server (nginx master+worker, h2o, or zyphos) pinned to CPU {s}, load generator \
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
        h2o: h2o.clone(),
        wrk,
        zyphos_args: zyphos_args.clone(),
        server_cpu,
        load_cpu,
        duration_s: opts.duration_s,
        site: write_site()?,
        ticks_per_s,
    };
    let bar = opts.require.unwrap_or(ISSUE6_BAR);

    // Same bytes everywhere, before anything is timed.
    let mut paths: Vec<&str> = Vec::new();
    for s in &selection.run {
        if !paths.contains(&s.path) {
            paths.push(s.path);
        }
    }
    let mut parity = Vec::new();
    for &server in &servers {
        parity.extend(setup.parity(server, &paths)?);
    }
    println!(
        "parity: {} and {} serve identical status and bodies for {}",
        servers[..servers.len() - 1]
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        servers[servers.len() - 1].name(),
        paths.join(", ")
    );
    let estimate = estimate_seconds(
        selection.run.len(),
        opts.rounds,
        tools.len(),
        servers.len(),
        opts.duration_s,
        if peers::find_tool("strace").is_some() {
            opts.syscall_seconds
        } else {
            0
        },
    );
    println!(
        "running {} scenarios x {} rounds x {} tools x {} servers of {} s: about {} min {} s",
        selection.run.len(),
        opts.rounds,
        tools.len(),
        servers.len(),
        opts.duration_s,
        estimate / 60,
        estimate % 60
    );

    let mut runs = Vec::new();
    for s in &selection.run {
        for round in 1..=opts.rounds {
            for &tool in &tools {
                for &server in &servers {
                    let run = race_one(&setup, s, tool, server, round)?;
                    println!(
                        "{:<20} round {round}/{} {:<11} {:<6} {:>10} rps  p99 {:>9} us  \
                         cpu {:>7.2} us/req  errors {}",
                        s.name,
                        opts.rounds,
                        tool.name(),
                        server.name(),
                        format_number(run.report.rps.round()),
                        format_number(run.report.latency.p99_us.round()),
                        run.cpu_us_per_request,
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
            for &server in &servers {
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

    let mut notes = Vec::new();
    if servers.contains(&Server::H2o) {
        notes.push(
            "/plaintext: nginx answers from its config (`return 200 \"Hello, World!\"`, \
         text/plain), zyphos from code; h2o 2.2 has no such handler in C (only mruby, a \
         scripting layer the others do not pay for), so it serves the same 13 bytes as a static \
         file (`file.file: plaintext.txt`, text/plain), whose response also carries \
         last-modified, etag and accept-ranges headers"
                .to_string(),
        );
    }
    notes.push(format!(
        "/static/: every server serves the race's own files ({}; byte i is i % 251): nginx \
             from copies in its temp dir, h2o with `file.dir`, zyphos with `--root` (unless the \
             zyphos args name one)",
        STATIC_FILES
            .iter()
            .map(|(n, size)| format!("{n} = {size} bytes"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    notes.extend(parity);
    let record = RaceResults {
        command: command_line(opts),
        zyphos_args,
        zyphos_proto: proto,
        rounds: opts.rounds,
        duration_s: opts.duration_s,
        tools: tools.clone(),
        pinning,
        order: order_text(&servers),
        machine: Machine::current(),
        git: GitInfo::current(root),
        timestamp: machine::timestamp_now(),
        servers: servers.clone(),
        nginx_version: nginx
            .as_ref()
            .and_then(|n| peers::tool_version(&n.display().to_string(), "-v"))
            .unwrap_or_else(|| "not run".into()),
        h2o_version: h2o
            .as_ref()
            .and_then(|h| peers::tool_version(&h.display().to_string(), "-v")),
        wrk_version: setup
            .wrk
            .as_ref()
            .and_then(|_| peers::tool_version("wrk", "-v")),
        bar,
        require: opts.require,
        cpu_goal: CPU_GOAL,
        cpu_note: format!(
            "server CPU = utime + stime from /proc/PID/stat (all threads of each process; \
             clock ticks of 1/{ticks_per_s} s) summed over the server's process tree (zyphos; \
             nginx master and worker; h2o and its backtrace helper), sampled just before and \
             just after each load run; divided by the requests that run completed. Ratios \
             baseline_us / zyphos_us are zyphos's requests per server CPU-second over the \
             baseline's; the goal is {CPU_GOAL}x against every baseline. Loopback packet \
             processing (softirq) is charged to whichever process is on the CPU, so part of \
             each side's network stack work may land on the other side"
        ),
        notes,
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

/// How the runs were ordered: `per scenario, per round, per tool: nginx then h2o then zyphos
/// (A B C A B C); …`.
pub(crate) fn order_text(servers: &[Server]) -> String {
    let letters: Vec<String> = (0..servers.len())
        .map(|i| char::from(b'A' + (i % 26) as u8).to_string())
        .collect();
    let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
    format!(
        "per scenario, per round, per tool: {} ({} {}); a fresh server for every run",
        names.join(" then "),
        letters.join(" "),
        letters.join(" ")
    )
}

/// One run: a fresh server, one load run (its CPU time sampled around it), the server stopped.
fn race_one(
    setup: &Setup,
    s: &Scenario,
    tool: Tool,
    server: Server,
    round: u32,
) -> Result<RaceRun> {
    let (running, addr, server_command) = setup.start(server)?;
    let server_pids = process_tree(running.pid()?);
    let stat_before = std::fs::read_to_string("/proc/stat").ok();
    let ticks_before = cpu_ticks(&server_pids)?;
    let (report, errors, load_command) = match tool {
        Tool::ZyphosLoad => {
            let (report, command) = setup.zyphos_load(s, addr, setup.duration_s)?;
            let errors = report.errors.values().sum();
            (report, errors, command)
        }
        Tool::Wrk => setup.wrk(s, addr)?,
    };
    let ticks_after = cpu_ticks(&server_pids)
        .with_context(|| format!("{} went away during the load run", server.name()))?;
    let stat_after = std::fs::read_to_string("/proc/stat").ok();
    drop(running);
    let cores = (|| {
        let (before, after) = (stat_before?, stat_after?);
        Some(CoreBusy {
            server_pct: busy_pct(&before, &after, setup.server_cpu?)?,
            load_pct: busy_pct(&before, &after, setup.load_cpu?)?,
        })
    })();
    let (server_cpu_us, cpu_us_per_request) = us_per_request(
        ticks_after.saturating_sub(ticks_before),
        setup.ticks_per_s,
        report.requests,
    );
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
        server_pids,
        server_cpu_us,
        cpu_us_per_request,
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
    parts.push(format!("--servers {}", opts.servers.join(",")));
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

/// A median as a whole number with separators, or `-` when the side did not run.
fn side_number(side: Option<&SideMedians>, f: fn(&SideMedians) -> f64) -> String {
    match side.map(f) {
        Some(v) if v.is_finite() => format_number(v.round()),
        _ => "-".into(),
    }
}

/// CPU µs per request with two decimals, or `-`.
fn cpu_text(side: Option<&SideMedians>) -> String {
    match side.map(|s| s.median_cpu_us_per_request) {
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "-".into(),
    }
}

/// Whether a summary meets the CPU goal, as the table says it.
pub(crate) fn cpu_goal_text(s: &Summary) -> String {
    let missing: Vec<&str> = [("nginx", s.nginx.is_none()), ("h2o", s.h2o.is_none())]
        .iter()
        .filter(|(_, absent)| *absent)
        .map(|(n, _)| *n)
        .collect();
    let verdict = if s.meets_cpu_goal { "met" } else { "NOT met" };
    if missing.is_empty() {
        verdict.to_string()
    } else {
        format!("{verdict} ({} not run)", missing.join(", "))
    }
}

fn print_table(r: &RaceResults) {
    println!();
    println!(
        "{:<21} {:<12} {:>10} {:>10} {:>10} {:>7} {:>7} {:>10} {:>10} {:>10}  verdict vs nginx \
         (bar {}x, lower p99)",
        "scenario",
        "tool",
        "nginx rps",
        "h2o rps",
        "zyphos rps",
        "z/nginx",
        "z/h2o",
        "nginx p99",
        "h2o p99",
        "zyphos p99",
        r.bar
    );
    for s in &r.summaries {
        let mut errors: Vec<String> = [
            ("nginx", s.nginx.as_ref()),
            ("h2o", s.h2o.as_ref()),
            ("zyphos", Some(&s.zyphos)),
        ]
        .iter()
        .filter_map(|(n, side)| {
            side.filter(|x| x.errors > 0)
                .map(|x| format!("{n} {}", x.errors))
        })
        .collect();
        if !errors.is_empty() {
            errors = vec![format!(" (errors: {})", errors.join(", "))];
        }
        let us = |side: Option<&SideMedians>| {
            let v = side_number(side, |x| x.median_p99_us);
            if v == "-" { v } else { format!("{v}us") }
        };
        println!(
            "{:<21} {:<12} {:>10} {:>10} {:>10} {:>7} {:>7} {:>10} {:>10} {:>10}  {}{}",
            s.scenario,
            s.tool.name(),
            side_number(s.nginx.as_ref(), |x| x.median_rps),
            side_number(s.h2o.as_ref(), |x| x.median_rps),
            side_number(Some(&s.zyphos), |x| x.median_rps),
            ratio_text(s.ratio_rps),
            ratio_text(s.ratio_rps_h2o),
            us(s.nginx.as_ref()),
            us(s.h2o.as_ref()),
            us(Some(&s.zyphos)),
            if s.beats_bar {
                "zyphos beats nginx"
            } else {
                "not met"
            },
            errors.concat()
        );
    }
    println!(
        "(medians of {} rounds of {} s; z/X = zyphos / X; wrk's p99 is its own estimate)",
        r.rounds, r.duration_s
    );
    println!();
    println!(
        "{:<21} {:<12} {:>11} {:>11} {:>11} {:>12} {:>12}  goal: >= {}x nginx and h2o per \
         server CPU-second",
        "scenario",
        "tool",
        "nginx us/req",
        "h2o us/req",
        "zyphos us/r",
        "nginx/zyphos",
        "h2o/zyphos",
        r.cpu_goal
    );
    for s in &r.summaries {
        println!(
            "{:<21} {:<12} {:>11} {:>11} {:>11} {:>12} {:>12}  {}",
            s.scenario,
            s.tool.name(),
            cpu_text(s.nginx.as_ref()),
            cpu_text(s.h2o.as_ref()),
            cpu_text(Some(&s.zyphos)),
            ratio_text(s.cpu_nginx_over_zyphos),
            ratio_text(s.cpu_h2o_over_zyphos),
            cpu_goal_text(s)
        );
    }
    println!(
        "(median server CPU microseconds per request: utime+stime of the server's processes \
         over each run / its requests; X/zyphos above 1 = zyphos does more per CPU-second)"
    );
    println!();
    println!(
        "{:<21} {:<12} {:>14} {:>14} {:>14}  (median % busy server/load CPU during the runs)",
        "scenario", "tool", "nginx", "h2o", "zyphos"
    );
    for s in &r.summaries {
        println!(
            "{:<21} {:<12} {:>14} {:>14} {:>14}  {}",
            s.scenario,
            s.tool.name(),
            cores_text(s.nginx.as_ref()),
            cores_text(s.h2o.as_ref()),
            cores_text(Some(&s.zyphos)),
            pace_note(s)
        );
    }
    if r.syscalls.is_empty() {
        println!("syscalls per request: {}", r.syscalls_note);
    }
}

fn cores_text(side: Option<&SideMedians>) -> String {
    match side.map(|s| (s.median_server_core_pct, s.median_load_core_pct)) {
        Some((Some(s), Some(l))) => format!("{s:.0}% / {l:.0}%"),
        _ => "-".to_string(),
    }
}

/// Above this % busy a core is taken as saturated (the rest is the scheduler's slack).
pub(crate) const SATURATED_PCT: f64 = 95.0;

/// Which side set the pace of zyphos's runs, when the cores say so, and which baselines had
/// their server core saturated.
pub(crate) fn pace_note(s: &Summary) -> String {
    let saturated = |v: Option<f64>| v.map(|p| p >= SATURATED_PCT);
    let zyphos = match (
        saturated(s.zyphos.median_server_core_pct),
        saturated(s.zyphos.median_load_core_pct),
    ) {
        (Some(false), Some(true)) => {
            "zyphos: load-generator bound (its core saturated, zyphos's not)"
        }
        (Some(true), Some(true)) => "zyphos: both cores saturated",
        (Some(true), Some(false)) => "zyphos: server bound",
        _ => "",
    };
    let mut parts: Vec<String> = Vec::new();
    if !zyphos.is_empty() {
        parts.push(zyphos.to_string());
    }
    for (name, side) in [("nginx", s.nginx.as_ref()), ("h2o", s.h2o.as_ref())] {
        if side.is_some_and(|b| saturated(b.median_server_core_pct) == Some(true)) {
            parts.push(format!("{name}: server bound"));
        }
    }
    if zyphos.is_empty() {
        return String::new();
    }
    parts.join("; ")
}

/// The server's colour in the charts.
fn server_color(server: Server) -> RGBColor {
    match server {
        Server::Nginx => RGBColor(0x1f, 0x77, 0xb4),
        Server::H2o => RGBColor(0x2c, 0xa0, 0x2c),
        Server::Zyphos => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// One server's median of `value` in a summary (None when it did not run or has no data).
fn side_value(s: &Summary, server: Server, value: fn(&SideMedians) -> f64) -> Option<f64> {
    let side = match server {
        Server::Nginx => s.nginx.as_ref(),
        Server::H2o => s.h2o.as_ref(),
        Server::Zyphos => Some(&s.zyphos),
    };
    side.map(value).filter(|v| v.is_finite())
}

/// What one panel of the race chart shows.
struct Panel {
    caption: String,
    y_desc: &'static str,
    /// Each bar's height.
    value: fn(&SideMedians) -> f64,
    /// The text above each group.
    label: fn(&Summary) -> String,
    /// One decimal on the y axis (small values) instead of whole numbers.
    decimals: bool,
}

/// One panel of grouped bars: per (scenario, tool), each server's value, with the label above
/// each group.
fn bar_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: Panel,
    r: &RaceResults,
    groups: &[&Summary],
) -> Result<()> {
    let Panel {
        caption,
        y_desc,
        value,
        label,
        decimals,
    } = p;
    let n = groups.len().max(1);
    let servers = &r.servers;
    let max = groups
        .iter()
        .flat_map(|s| servers.iter().filter_map(|&sv| side_value(s, sv, value)))
        .fold(0.0_f64, f64::max);
    let y_top = if max > 0.0 { max * 1.25 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, 0f64..y_top)
        .map_err(|e| anyhow!("drawing the chart: {e}"))?;
    let formatter = |v: &f64| {
        if decimals {
            format!("{v:.1}")
        } else {
            format_number(*v)
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc("scenario · load generator")
        .y_desc(y_desc)
        .y_label_formatter(&formatter)
        .draw()
        .map_err(|e| anyhow!("drawing the chart axes: {e}"))?;
    // Group names under the axis, centred on each group (drawn on the whole picture, whose
    // coordinates `backend_coord` gives).
    let label_style = TextStyle::from(("sans-serif", 13).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ),
    );
    for (i, s) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            format!("{} · {}", s.scenario, s.tool.name()),
            (x, y + 8),
            label_style.clone(),
        ))
        .map_err(|e| anyhow!("drawing a group label: {e}"))?;
    }
    let width = 0.8 / servers.len().max(1) as f64;
    for (k, &server) in servers.iter().enumerate() {
        let color = server_color(server);
        let bars = groups.iter().enumerate().filter_map(|(i, s)| {
            let v = side_value(s, server, value)?;
            let x = i as f64 + 0.1 + k as f64 * width;
            Some(Rectangle::new(
                [(x, 0.0), (x + width * 0.9, v)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(|e| anyhow!("drawing bars: {e}"))?
            .label(server.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    let texts = groups.iter().enumerate().map(|(i, s)| {
        let top = servers
            .iter()
            .filter_map(|&sv| side_value(s, sv, value))
            .fold(0.0_f64, f64::max);
        Text::new(
            label(s),
            (i as f64 + 0.08, top + y_top * 0.04),
            ("sans-serif", 12),
        )
    });
    chart
        .draw_series(texts)
        .map_err(|e| anyhow!("drawing ratios: {e}"))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("drawing the legend: {e}"))?;
    Ok(())
}

/// Two panels of grouped bars per (scenario, tool): each server's median requests per second
/// (top) and median server CPU µs per request (bottom), with zyphos's ratios above each group.
pub(crate) fn chart(r: &RaceResults) -> Result<String> {
    let groups: Vec<&Summary> = r
        .summaries
        .iter()
        .filter(|s| s.zyphos.median_rps.is_finite())
        .collect();
    let n = groups.len().max(1);
    let width = u32::try_from(220 * n + 160).unwrap_or(u32::MAX).max(720);
    let others: Vec<&str> = r
        .servers
        .iter()
        .filter(|s| **s != Server::Zyphos)
        .map(|s| s.name())
        .collect();
    let rps_title = format!(
        "zyphos vs {}: median requests/s ({} rounds × {} s, zyphos {})",
        others.join(" and "),
        r.rounds,
        r.duration_s,
        r.zyphos_args.join(" ")
    );
    let cpu_title = format!(
        "server CPU µs per request (median; lower is better; goal: nginx and h2o need {}x \
         zyphos's)",
        r.cpu_goal
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 900)).into_drawing_area();
        root.fill(&WHITE).context("drawing the chart")?;
        let panels = root.split_evenly((2, 1));
        let rps = Panel {
            caption: rps_title,
            y_desc: "requests per second (median)",
            value: |s| s.median_rps,
            label: |s| {
                let mut parts = Vec::new();
                if s.nginx.is_some() {
                    parts.push(format!("z/nginx {}", ratio_text(s.ratio_rps)));
                }
                if s.h2o.is_some() {
                    parts.push(format!("z/h2o {}", ratio_text(s.ratio_rps_h2o)));
                }
                parts.join(" · ")
            },
            decimals: false,
        };
        bar_panel(&root, &panels[0], rps, r, &groups)?;
        let cpu = Panel {
            caption: cpu_title,
            y_desc: "server CPU µs / request (median)",
            value: |s| s.median_cpu_us_per_request,
            label: |s| {
                let mut parts = Vec::new();
                if s.nginx.is_some() {
                    parts.push(format!("nginx/z {}", ratio_text(s.cpu_nginx_over_zyphos)));
                }
                if s.h2o.is_some() {
                    parts.push(format!("h2o/z {}", ratio_text(s.cpu_h2o_over_zyphos)));
                }
                parts.join(" · ")
            },
            decimals: true,
        };
        bar_panel(&root, &panels[1], cpu, r, &groups)?;
        root.present().context("finishing the chart")?;
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    Ok(svg)
}

/// The race section of the status board (`docs/README.md`), from `docs/results/race.json`.
/// Read loosely (a JSON value, not [`RaceResults`]), so a record written before a field existed
/// shows a dash there instead of hiding the race.
pub(crate) fn board_section(root: &Path) -> String {
    let (json, svg) = output_paths("race");
    let mut out = String::from("\n## zyphos against nginx and h2o (`cargo xtask race`)\n\n");
    let text = match std::fs::read_to_string(root.join(&json)) {
        Ok(t) => t,
        Err(_) => {
            out.push_str(
                "No race recorded yet: `cargo xtask race` writes `docs/results/race.json`.\n",
            );
            return out;
        }
    };
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            out.push_str(&format!("`{}` is unreadable ({e}).\n", json.display()));
            return out;
        }
    };
    out.push_str(&board_text(&v, &json, &svg));
    out
}

/// [`board_section`]'s body for one parsed record (paths relative to the root).
pub(crate) fn board_text(v: &serde_json::Value, json: &Path, svg: &Path) -> String {
    use serde_json::Value;
    let rel = |p: &Path| p.strip_prefix("docs").unwrap_or(p).display().to_string();
    let get = |v: &Value, path: &[&str]| -> Option<f64> {
        path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let git = v.get("git").map_or("?".to_string(), |g| {
        let rev: String = text(g, "revision").chars().take(12).collect();
        let dirty = g.get("dirty").and_then(Value::as_bool) == Some(true);
        if dirty { format!("{rev}-dirty") } else { rev }
    });
    let goal = get(v, &["cpu_goal"]).unwrap_or(CPU_GOAL);
    let mut out = String::new();
    out.push_str(&format!("![zyphos vs nginx and h2o]({})\n\n", rel(svg)));
    out.push_str(&format!(
        "From `{}`: {} (`{}`), medians of {} rounds of {} s, the server pinned to one CPU and \
         the load generator to the other, servers alternating. zyphos: `{}`. CPU µs/req is the \
         server's own CPU time (utime + stime of its processes and threads) over each run / \
         requests completed; nginx/z and h2o/z are the baseline's µs over zyphos's, i.e. \
         zyphos's requests per server CPU-second over theirs; the goal is {goal}x against both.\n\n",
        rel(json),
        text(v, "timestamp"),
        git,
        get(v, &["rounds"]).map_or("?".into(), |r| r.to_string()),
        get(v, &["duration_s"]).map_or("?".into(), |r| r.to_string()),
        v.get("zyphos_args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
    ));
    out.push_str(
        "| scenario | tool | rps nginx / h2o / zyphos | p99 µs nginx / h2o / zyphos | \
         CPU µs/req nginx / h2o / zyphos | nginx/z | h2o/z | CPU goal |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|:-:|\n");
    let whole = |x: Option<f64>| {
        x.filter(|x| x.is_finite())
            .map_or("—".into(), |x| format_number(x.round()))
    };
    let two = |x: Option<f64>| {
        x.filter(|x| x.is_finite())
            .map_or("—".into(), |x| format!("{x:.2}"))
    };
    let ratio = |x: Option<f64>| {
        x.filter(|x| x.is_finite())
            .map_or("—".into(), |x| format!("{x:.2}x"))
    };
    let sides = ["nginx", "h2o", "zyphos"];
    let summaries = v
        .get("summaries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut old = false;
    for s in &summaries {
        let per = |key: &str, f: &dyn Fn(Option<f64>) -> String| {
            sides
                .iter()
                .map(|side| f(get(s, &[side, key])))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let has_cpu = s.get("meets_cpu_goal").and_then(Value::as_bool);
        old |= has_cpu.is_none();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            text(s, "scenario"),
            text(s, "tool"),
            per("median_rps", &whole),
            per("median_p99_us", &whole),
            per("median_cpu_us_per_request", &two),
            ratio(get(s, &["cpu_nginx_over_zyphos"])),
            ratio(get(s, &["cpu_h2o_over_zyphos"])),
            match has_cpu {
                Some(true) => "met",
                Some(false) => "not met",
                None => "—",
            }
        ));
    }
    if summaries.is_empty() {
        out.push_str("| (no summaries) | | | | | | | |\n");
    }
    if old {
        out.push_str(
            "\nThis record predates the CPU-per-request figures (or h2o): re-run `cargo xtask \
             race`.\n",
        );
    }
    out
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
            server_pids: vec![1],
            // 10 µs per request unless a test says otherwise.
            server_cpu_us: rps * 10.0 * 10.0,
            cpu_us_per_request: 10.0,
        }
    }

    fn with_cpu(mut r: RaceRun, us_per_request: f64) -> RaceRun {
        r.cpu_us_per_request = us_per_request;
        r.server_cpu_us = us_per_request * r.report.requests as f64;
        r
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
        let nginx = sums[0].nginx.as_ref().expect("nginx ran");
        assert_eq!(nginx.median_server_core_pct, Some(97.0));
        assert_eq!(sums[0].zyphos.median_load_core_pct, Some(99.0));
        assert_eq!(
            pace_note(&sums[0]),
            "zyphos: load-generator bound (its core saturated, zyphos's not); nginx: server bound"
        );
        let runs = vec![
            with_cores(run("p", t, Server::Nginx, 80_000.0, 900.0, 0), 97.0, 90.0),
            with_cores(run("p", t, Server::H2o, 80_000.0, 900.0, 0), 99.0, 90.0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 86.0, 99.0),
        ];
        assert_eq!(
            pace_note(&summarize(&runs, 1.3)[0]),
            "zyphos: load-generator bound (its core saturated, zyphos's not); nginx: server \
             bound; h2o: server bound"
        );
        let runs = vec![
            with_cores(run("p", t, Server::Nginx, 80_000.0, 900.0, 0), 97.0, 90.0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 99.0, 90.0),
        ];
        let sums = summarize(&runs, 1.3);
        assert_eq!(
            pace_note(&sums[0]),
            "zyphos: server bound; nginx: server bound"
        );
        // A run without core figures leaves the medians (and the note) empty.
        let runs = vec![
            run("p", t, Server::Nginx, 80_000.0, 900.0, 0),
            with_cores(run("p", t, Server::Zyphos, 95_000.0, 800.0, 0), 99.0, 90.0),
        ];
        let sums = summarize(&runs, 1.3);
        assert_eq!(
            sums[0].nginx.as_ref().expect("ran").median_server_core_pct,
            None
        );
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
                "static1k-keepalive",
                "static64k-keepalive"
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
        let nginx = z.nginx.as_ref().expect("nginx ran");
        assert_eq!((nginx.runs, z.zyphos.runs), (3, 3));
        assert!(z.h2o.is_none(), "h2o did not run");
        assert!(z.ratio_rps_h2o.is_nan() && z.cpu_h2o_over_zyphos.is_nan());
        assert_eq!(nginx.median_rps, 110.0);
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
            servers: strings(&["nginx", "h2o", "zyphos"]),
        };
        assert_eq!(
            command_line(&opts),
            "cargo xtask race --zyphos-args 'serve --io epoll --workers 1 --proto http1.1 \
             --keepalive-requests 100000000' --scenarios plaintext-close --servers \
             nginx,h2o,zyphos --rounds 2 --duration 3 --tools zyphos-load,wrk --out race \
             --require 1.3 --syscall-seconds 2"
        );
    }

    #[test]
    fn test_chart_draws_every_server_per_group() {
        let z = Tool::ZyphosLoad;
        let runs = vec![
            with_cpu(
                run("plaintext-close", z, Server::Nginx, 10000.0, 900.0, 0),
                20.0,
            ),
            with_cpu(
                run("plaintext-close", z, Server::H2o, 9000.0, 900.0, 0),
                15.0,
            ),
            with_cpu(
                run("plaintext-close", z, Server::Zyphos, 8000.0, 700.0, 0),
                10.0,
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
                ..GitInfo::default()
            },
            timestamp: String::new(),
            servers: Server::ALL.to_vec(),
            nginx_version: String::new(),
            h2o_version: None,
            wrk_version: None,
            bar: ISSUE6_BAR,
            require: None,
            cpu_goal: CPU_GOAL,
            cpu_note: String::new(),
            notes: Vec::new(),
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
        assert!(
            svg.contains("z/nginx 0.80x · z/h2o 0.89x"),
            "rps ratio label"
        );
        assert!(
            svg.contains("nginx/z 2.00x · h2o/z 1.50x"),
            "cpu ratio label"
        );
        assert!(svg.contains("server CPU µs per request"), "second panel");
        assert!(
            svg.contains("\nnginx\n") && svg.contains("\nh2o\n") && svg.contains("\nzyphos\n"),
            "legend"
        );
        assert!(
            svg.matches("<rect").count() >= 7,
            "three bars in each panel and a background"
        );
        // Deterministic for the same record.
        assert_eq!(chart(&record).expect("again"), svg);
    }

    #[test]
    fn test_cpu_ticks_come_from_utime_and_stime_after_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime ...
        let stat = "4242 (nginx: worker (x) 1) S 4241 4241 4241 0 -1 4194624 10 0 0 0 \
                    150 75 9 9 20 0 1 0 100 1000 10";
        assert_eq!(cpu_ticks_in_stat(stat), Some(225), "utime 150 + stime 75");
        assert_eq!(ppid_in_stat(stat), Some(4241));
        assert_eq!(cpu_ticks_in_stat("12 (x) S 1 2 3"), None, "too short");
        assert_eq!(cpu_ticks_in_stat("no parenthesis"), None);
        // Our own stat parses, and a process's times only grow.
        let own = std::fs::read_to_string("/proc/self/stat").expect("/proc");
        assert!(cpu_ticks_in_stat(&own).is_some(), "{own}");
        let before = cpu_ticks(&[std::process::id()]).expect("own stat");
        let after = cpu_ticks(&[std::process::id()]).expect("own stat");
        assert!(after >= before);
        assert!(
            cpu_ticks(&[u32::MAX]).is_err(),
            "a vanished process is an error"
        );
    }

    #[test]
    fn test_process_tree_takes_descendants_only() {
        // 10 -> 11 -> 13, 10 -> 12; 20 is unrelated, 21 its child.
        let parents = [(11, 10), (12, 10), (13, 11), (20, 1), (21, 20), (10, 1)];
        assert_eq!(tree_of(10, &parents), [10, 11, 12, 13]);
        assert_eq!(tree_of(13, &parents), [13]);
        assert_eq!(tree_of(99, &parents), [99]);
        assert_eq!(process_tree(std::process::id())[0], std::process::id());
    }

    #[test]
    fn test_us_per_request_arithmetic() {
        // 250 ticks of 1/100 s = 2.5 s of CPU over 500,000 requests = 5 µs each.
        let (us, per) = us_per_request(250, 100, 500_000);
        assert!((us - 2_500_000.0).abs() < 1e-6, "{us}");
        assert!((per - 5.0).abs() < 1e-12, "{per}");
        let (us, per) = us_per_request(3, 1000, 0);
        assert!((us - 3000.0).abs() < 1e-9);
        assert!(per.is_nan(), "no requests: no figure");
    }

    #[test]
    fn test_cpu_ratios_and_goal_against_every_baseline() {
        let t = Tool::Wrk;
        let three = |nginx_us: f64, h2o_us: f64, zyphos_us: f64| {
            vec![
                with_cpu(run("s", t, Server::Nginx, 100_000.0, 900.0, 0), nginx_us),
                with_cpu(run("s", t, Server::H2o, 100_000.0, 900.0, 0), h2o_us),
                with_cpu(run("s", t, Server::Zyphos, 100_000.0, 800.0, 0), zyphos_us),
            ]
        };
        let s = &summarize(&three(13.0, 14.0, 10.0), ISSUE6_BAR)[0];
        assert!((s.cpu_nginx_over_zyphos - 1.3).abs() < 1e-12);
        assert!((s.cpu_h2o_over_zyphos - 1.4).abs() < 1e-12);
        assert!(s.meets_cpu_goal, "1.3x and 1.4x");
        assert!((s.zyphos.requests_per_cpu_second - 100_000.0).abs() < 1e-6);
        assert_eq!(cpu_goal_text(s), "met");
        assert!(
            !s.beats_bar,
            "same rps: issue 6's throughput bar is a separate verdict"
        );
        // h2o is within 1.3x: not met, though nginx is beaten by far.
        let s = &summarize(&three(30.0, 12.0, 10.0), ISSUE6_BAR)[0];
        assert!(!s.meets_cpu_goal);
        assert_eq!(cpu_goal_text(s), "NOT met");
        // Medians over rounds: the middle of three.
        let mut runs = three(13.0, 13.0, 10.0);
        runs.extend(three(26.0, 26.0, 5.0));
        runs.extend(three(14.0, 14.0, 11.0));
        let s = &summarize(&runs, ISSUE6_BAR)[0];
        assert_eq!(
            s.nginx.as_ref().expect("ran").median_cpu_us_per_request,
            14.0
        );
        assert_eq!(s.zyphos.median_cpu_us_per_request, 10.0);
        assert!(s.meets_cpu_goal, "14 / 10 = 1.4x");
        // Without h2o the goal is judged against nginx alone, and says so.
        let runs: Vec<RaceRun> = three(13.0, 13.0, 10.0)
            .into_iter()
            .filter(|r| r.server != Server::H2o)
            .collect();
        let s = &summarize(&runs, ISSUE6_BAR)[0];
        assert!(s.meets_cpu_goal && s.h2o.is_none());
        assert_eq!(cpu_goal_text(s), "met (h2o not run)");
        // Errors over 1 % or missing figures never meet it.
        let mut runs = three(20.0, 20.0, 10.0);
        runs[2].errors = 50_000;
        assert!(!summarize(&runs, ISSUE6_BAR)[0].meets_cpu_goal);
        let runs = three(20.0, 20.0, f64::NAN);
        assert!(!summarize(&runs, ISSUE6_BAR)[0].meets_cpu_goal);
        let only_zyphos = vec![with_cpu(run("s", t, Server::Zyphos, 1.0, 1.0, 0), 1.0)];
        assert!(!summarize(&only_zyphos, ISSUE6_BAR)[0].meets_cpu_goal);
    }

    #[test]
    fn test_order_names_the_alternation() {
        assert_eq!(
            order_text(&Server::ALL),
            "per scenario, per round, per tool: nginx then h2o then zyphos (A B C A B C); a \
             fresh server for every run"
        );
        assert!(
            order_text(&[Server::Zyphos, Server::Nginx]).contains("zyphos then nginx (A B A B)")
        );
    }

    #[test]
    fn test_servers_are_parsed_and_checked() {
        assert_eq!(
            parse_servers(&strings(&["nginx", "h2o", "zyphos", "h2o"])).expect("ok"),
            Server::ALL
        );
        assert_eq!(
            parse_servers(&strings(&["zyphos", "h2o"])).expect("ok"),
            [Server::Zyphos, Server::H2o]
        );
        for bad in [
            &["nginx", "h2o"][..],
            &["zyphos"],
            &["zyphos", "apache"],
            &[],
        ] {
            let err = parse_servers(&strings(bad)).expect_err("rejected");
            assert!(err.downcast_ref::<UsageError>().is_some(), "{bad:?}: {err}");
        }
        assert_eq!(
            parse_servers(&strings(&DEFAULT_SERVERS.split(',').collect::<Vec<_>>()))
                .expect("default"),
            Server::ALL
        );
    }

    #[test]
    fn test_every_scenario_path_has_known_bytes() {
        for s in &SCENARIOS {
            assert!(expected_body(s.path).is_some(), "{}", s.path);
        }
        assert_eq!(
            expected_body("/plaintext").expect("known"),
            b"Hello, World!"
        );
        let k = expected_body("/static/1k.bin").expect("known");
        assert_eq!(k.len(), 1024);
        assert_eq!(
            (k[0], k[250], k[251], k[1023]),
            (0, 250, 0, (1023 % 251) as u8)
        );
        assert_eq!(
            expected_body("/static/64k.bin").expect("known").len(),
            65536
        );
        assert_eq!(expected_body("/static/other"), None);
        // The 1 KiB file is the one zyphos ships and nginx's peer writes.
        let shipped = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/zyphos/site/static/1k.bin"),
        )
        .expect("zyphos's site");
        assert_eq!(shipped, k);
        assert!(SCENARIOS.iter().any(|s| s.path == "/static/64k.bin"));
    }

    #[test]
    fn test_split_response_reads_status_and_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 13\r\n\r\n\
                    Hello, World!";
        assert_eq!(split_response(raw), Some((200, &b"Hello, World!"[..])));
        // Without Content-Length: everything after the head.
        let raw = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnope";
        assert_eq!(split_response(raw), Some((404, &b"nope"[..])));
        // Truncated body or head: not a response.
        assert_eq!(
            split_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort"),
            None
        );
        assert_eq!(split_response(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(split_response(b""), None);
    }

    #[test]
    fn test_h2o_config_and_zyphos_root() {
        let conf = render_h2o_conf(
            Path::new("/tmp/p"),
            8081,
            Path::new("/tmp/site/static"),
            Path::new("/tmp/site/plaintext.txt"),
            true,
        );
        assert!(conf.contains("num-threads: 1\n"), "{conf}");
        assert!(conf.contains("  port: 8081\n"), "{conf}");
        assert!(
            conf.contains("  host: 127.0.0.1\n"),
            "loopback only: {conf}"
        );
        assert!(
            conf.contains("file.file: /tmp/site/plaintext.txt"),
            "{conf}"
        );
        assert!(conf.contains("file.dir: /tmp/site/static"), "{conf}");
        assert!(conf.contains("\nuser: root\n"), "{conf}");
        assert!(!conf.contains("access-log"), "no access log: {conf}");
        assert!(!conf.contains('@'), "every placeholder filled: {conf}");
        let unprivileged =
            render_h2o_conf(Path::new("/p"), 1, Path::new("/s"), Path::new("/t"), false);
        assert!(!unprivileged.contains("user:"), "{unprivileged}");
        let dir = Path::new("/tmp/site/static");
        assert_eq!(
            with_static_root(&strings(&["serve", "--io", "epoll"]), dir),
            strings(&["serve", "--io", "epoll", "--root", "/tmp/site/static"])
        );
        let own = strings(&["serve", "--root=/srv"]);
        assert_eq!(with_static_root(&own, dir), own);
    }

    #[test]
    fn test_board_shows_cpu_figures_and_tolerates_old_records() {
        let t = Tool::Wrk;
        let runs = vec![
            with_cpu(
                run("plaintext-keepalive", t, Server::Nginx, 100_000.0, 900.0, 0),
                13.0,
            ),
            with_cpu(
                run("plaintext-keepalive", t, Server::H2o, 90_000.0, 950.0, 0),
                14.0,
            ),
            with_cpu(
                run(
                    "plaintext-keepalive",
                    t,
                    Server::Zyphos,
                    110_000.0,
                    800.0,
                    0,
                ),
                10.0,
            ),
        ];
        let summaries = serde_json::to_value(summarize(&runs, ISSUE6_BAR)).expect("json");
        let v = serde_json::json!({
            "timestamp": "2026-12-07T00:00:00Z",
            "git": {"revision": "0123456789abcdef", "dirty": true},
            "rounds": 3, "duration_s": 3, "cpu_goal": 1.3,
            "zyphos_args": ["serve", "--io", "epoll"],
            "summaries": summaries,
        });
        let (json, svg) = output_paths("race");
        let text = board_text(&v, &json, &svg);
        assert!(
            text.contains("![zyphos vs nginx and h2o](charts/race.svg)"),
            "{text}"
        );
        assert!(text.contains("`results/race.json`: 2026-12-07T00:00:00Z (`0123456789ab-dirty`)"));
        assert!(
            text.contains(
                "| plaintext-keepalive | wrk | 100000 / 90000 / 110000 | 900 / 950 / 800 | \
                 13.00 / 14.00 / 10.00 | 1.30x | 1.40x | met |"
            ),
            "{text}"
        );
        assert!(!text.contains("predates"));
        // A record from before this change: rps shows, CPU columns are dashes, and it says so.
        let v = serde_json::json!({
            "summaries": [{"scenario": "plaintext-close", "tool": "wrk",
                "nginx": {"median_rps": 1000.0, "median_p99_us": 5.0},
                "zyphos": {"median_rps": 2000.0, "median_p99_us": 4.0}}],
        });
        let text = board_text(&v, &json, &svg);
        assert!(
            text.contains(
                "| plaintext-close | wrk | 1000 / — / 2000 | 5 / — / 4 | — / — / — | — | — | — |"
            ),
            "{text}"
        );
        assert!(text.contains("predates"), "{text}");
        let root = std::env::temp_dir().join(format!("zyphos-board-{}", std::process::id()));
        assert!(board_section(&root).contains("No race recorded yet"));
    }

    #[test]
    fn test_default_full_race_fits_in_eight_minutes() {
        // The defaults of `cargo xtask race` (main.rs): 3 rounds of 3 s, both tools, all three
        // servers, 1 s traced runs.
        let secs = estimate_seconds(SCENARIOS.len(), 3, 2, 3, 3, 1);
        assert!(secs < 8 * 60, "{secs} s");
        // 2 runs of 2 s + 0.25 s each.
        assert_eq!(estimate_seconds(1, 1, 1, 2, 2, 0), 5);
        // Plus 2 traced runs of 1 + 2 + 3 s + 0.25 s: 4.5 + 12.5 s.
        assert_eq!(estimate_seconds(1, 1, 1, 2, 2, 2), 17);
        assert_eq!(estimate_seconds(1, 1, 1, 1, 1, 0), 2, "rounded up");
    }
}
