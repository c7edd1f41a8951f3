//! `zyphos-load calibrate`: the evidence that the load generator is fit to measure servers.
//!
//! With the server pinned to one CPU and the client to the other, it alternates runs
//! (zyphos-load, wrk, zyphos-load, wrk, …) for `rounds` rounds and records:
//!
//! * **agreement** — zyphos-load and wrk against the same nginx `/plaintext`, keep-alive with 64
//!   connections and pipelined to depth 16: medians and the ratio zyphos-load / wrk;
//! * **ceiling** — zyphos-load against `sink` (a canned-response server far cheaper than
//!   nginx), keep-alive and pipelined: the ratio ceiling / nginx shows how much faster the
//!   generator is than the server it measures.
//!
//! Each run also records how busy each CPU was (`/proc/stat`), and a sampler thread notes
//! which other processes used CPU during the whole calibration (`/proc/*/stat`), so the
//! generated `docs/benchmarks.md` says honestly what else was running.

use crate::config::{LoadConfig, PipelineMode};
use crate::peers::{self, Nginx, NginxOptions, PeerError, WrkOptions};
use crate::sink::{Sink, SinkMode, SinkOptions};
use crate::{RunError, run};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The line after which `docs/benchmarks.md` is written by hand: `calibrate --out` regenerates
/// everything above it and keeps it and everything below it (e.g. the `cargo xtask race` notes).
pub const HAND_WRITTEN_MARKER: &str =
    "<!-- Hand-written below: kept by `zyphos-load calibrate`. -->";

/// The new page `generated` followed by the hand-written tail of `old` (from
/// [`HAND_WRITTEN_MARKER`] on), if `old` has one.
pub fn keep_hand_written(old: &str, generated: &str) -> String {
    match old.find(HAND_WRITTEN_MARKER) {
        Some(at) => {
            let mut page = generated.trim_end().to_owned();
            page.push_str("\n\n");
            page.push_str(&old[at..]);
            page
        }
        None => generated.to_owned(),
    }
}

/// Why calibration stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// nginx or wrk is missing or failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A zyphos-load run could not be carried out.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The sink could not start.
    #[error("sink: {0}")]
    Sink(std::io::Error),
    /// Fewer than two CPUs: server and client cannot be separated.
    #[error("calibrate needs two CPUs to pin server and client apart; this machine has {0}")]
    TooFewCpus(usize),
}

/// How to calibrate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CalibrateOptions {
    /// Rounds; each round runs every (tool, server, pattern) once.
    pub rounds: usize,
    /// Length of each run.
    pub duration: Duration,
    /// Connections (wrk `-c`).
    pub connections: usize,
    /// Pipelining depth of the pipelined runs.
    pub depth: usize,
    /// CPU for nginx and sink.
    pub server_cpu: usize,
    /// CPU for zyphos-load and wrk.
    pub client_cpu: usize,
    /// `full` or `quick`, as written in the report.
    pub profile: &'static str,
    /// The command line, as written in the report.
    pub command: String,
    /// Pause between runs.
    pub pause: Duration,
    /// Before each run, wait up to this long for the machine to be quiet (under
    /// [`QUIET_BUSY_PERCENT`] busy over half a second); zero disables the wait.
    pub quiet_wait: Duration,
}

/// The machine counts as quiet when all CPUs together are at most this busy (0–100).
pub const QUIET_BUSY_PERCENT: f64 = 10.0;

/// Wait (at most `max`) until the whole machine is under [`QUIET_BUSY_PERCENT`] busy over a
/// half-second window; returns how long it waited.
fn wait_for_quiet(max: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < max {
        let a = cpu_times();
        std::thread::sleep(Duration::from_millis(500));
        let b = cpu_times();
        let (busy, total) = a.iter().zip(&b).fold((0u64, 0u64), |acc, (x, y)| {
            (
                acc.0 + y.0.saturating_sub(x.0),
                acc.1 + y.1.saturating_sub(x.1),
            )
        });
        if total == 0 || 100.0 * busy as f64 / total as f64 <= QUIET_BUSY_PERCENT {
            break;
        }
    }
    start.elapsed()
}

impl CalibrateOptions {
    /// 3 rounds × 10 s runs.
    pub fn full() -> CalibrateOptions {
        CalibrateOptions {
            rounds: 3,
            duration: Duration::from_secs(10),
            connections: 64,
            depth: 16,
            server_cpu: 0,
            client_cpu: 1,
            profile: "full",
            command: "zyphos-load calibrate".to_owned(),
            pause: Duration::from_secs(1),
            quiet_wait: Duration::from_secs(30),
        }
    }

    /// 1 round × 3 s runs (for CI).
    pub fn quick() -> CalibrateOptions {
        CalibrateOptions {
            rounds: 1,
            duration: Duration::from_secs(3),
            profile: "quick",
            pause: Duration::from_millis(300),
            quiet_wait: Duration::from_secs(5),
            ..CalibrateOptions::full()
        }
    }
}

/// Which load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// Ours.
    ZyphosLoad,
    /// wrk 4.
    Wrk,
}

impl Tool {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::ZyphosLoad => "zyphos-load",
            Tool::Wrk => "wrk",
        }
    }
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// nginx, one worker.
    Nginx,
    /// zyphos-load's own canned-response sink.
    Sink,
}

impl Server {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Sink => "sink",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Round number (1-based).
    pub round: usize,
    /// Position in the whole sequence (1-based).
    pub seq: usize,
    /// Load generator.
    pub tool: Tool,
    /// Server.
    pub server: Server,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// How the window is refilled (wrk always works in batches).
    pub pipeline_mode: PipelineMode,
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency (µs).
    pub p50_us: f64,
    /// 99th percentile (µs; wrk's own figure for wrk).
    pub p99_us: f64,
    /// Max latency (µs).
    pub max_us: f64,
    /// Errors of any kind.
    pub errors: u64,
    /// Seconds spent waiting for a quiet machine before the run.
    pub waited_s: f64,
    /// Busy share of the server CPU during the run (0–100).
    pub server_cpu_busy: f64,
    /// Busy share of the client CPU during the run (0–100).
    pub client_cpu_busy: f64,
    /// CPU seconds other processes used during the run (nginx, wrk, ourselves excluded).
    pub others_cpu_s: f64,
}

impl Record {
    /// The cell this run belongs to.
    pub fn cell(&self) -> Cell {
        Cell {
            tool: self.tool,
            server: self.server,
            pipeline: self.pipeline,
            mode: self.pipeline_mode,
        }
    }
}

/// The runs of one round, in order: each zyphos-load run right before the wrk run it is
/// compared with, then the informational sliding-window run, then the ceiling runs on sink.
pub fn run_plan(depth: usize) -> [Cell; 7] {
    [
        Cell::new(Tool::ZyphosLoad, Server::Nginx, 1),
        Cell::new(Tool::Wrk, Server::Nginx, 1),
        Cell::new(Tool::ZyphosLoad, Server::Nginx, depth),
        Cell::new(Tool::Wrk, Server::Nginx, depth),
        Cell::new(Tool::ZyphosLoad, Server::Nginx, depth).window(),
        Cell::new(Tool::ZyphosLoad, Server::Sink, 1),
        Cell::new(Tool::ZyphosLoad, Server::Sink, depth),
    ]
}

/// One (generator, server, depth, refill mode) combination; its runs are one median.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Load generator.
    pub tool: Tool,
    /// Server.
    pub server: Server,
    /// Pipelining depth.
    pub pipeline: usize,
    /// Refill mode (ignored at depth 1).
    pub mode: PipelineMode,
}

impl Cell {
    /// A cell in batch mode (the mode wrk uses, and the one the ratios compare).
    pub fn new(tool: Tool, server: Server, pipeline: usize) -> Cell {
        Cell {
            tool,
            server,
            pipeline,
            mode: PipelineMode::Batch,
        }
    }

    /// The same cell in sliding-window mode.
    pub fn window(self) -> Cell {
        Cell {
            mode: PipelineMode::Window,
            ..self
        }
    }

    fn label(&self) -> String {
        if self.pipeline == 1 {
            "keep-alive".to_owned()
        } else {
            format!("×{} {}", self.pipeline, self.mode.name())
        }
    }
}

/// Facts about the machine and the checkout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    /// `/proc/cpuinfo` model name.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `git rev-parse HEAD`, with `-dirty` if the tree has changes.
    pub git_revision: String,
    /// UTC time the calibration started (`YYYY-MM-DD HH:MM:SS UTC`).
    pub date_utc: String,
}

impl Machine {
    /// Read the facts from `/proc` and git.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            cpu_model,
            cores,
            kernel,
            git_revision: git_revision(),
            date_utc: utc_now(),
        }
    }
}

fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev} (with uncommitted changes)")
            } else {
                rev
            }
        }
        None => "none (no commit yet, or not a git checkout)".to_owned(),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` without a date library (Howard Hinnant's civil-from-days).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Per-CPU (busy, total) jiffies from `/proc/stat`.
fn cpu_times() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle.min(total), total)
        })
        .collect()
}

/// Busy percentage of `cpu` between two `/proc/stat` snapshots.
fn busy_between(a: &[(u64, u64)], b: &[(u64, u64)], cpu: usize) -> f64 {
    match (a.get(cpu), b.get(cpu)) {
        (Some(&(b0, t0)), Some(&(b1, t1))) if t1 > t0 => {
            100.0 * (b1.saturating_sub(b0)) as f64 / (t1 - t0) as f64
        }
        _ => 0.0,
    }
}

/// CPU used by other processes while calibration ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Background {
    /// Other processes by command name: (name, CPU seconds, process count), largest first.
    pub others: Vec<(String, f64, usize)>,
    /// Each CPU's busy share over the whole calibration (0–100).
    pub cpu_busy: Vec<f64>,
    /// `/proc/loadavg` at the start and at the end.
    pub loadavg: (String, String),
    /// Seconds the calibration took.
    pub elapsed_s: f64,
}

/// pid -> (command name, CPU ticks at first sight (0 if born later), last CPU ticks).
type SeenProcesses = HashMap<u32, (String, u64, u64)>;

/// Samples `/proc/*/stat` every second: CPU ticks per process.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<SeenProcesses>>,
}

/// (comm, utime+stime ticks, starttime ticks) of every process.
fn snapshot_processes() -> Vec<(u32, String, u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat.get(open + 1..close)?.to_owned();
            // Fields after the command: state is field 3, utime 14, stime 15, starttime 22.
            let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
            let utime: u64 = rest.get(11)?.parse().ok()?;
            let stime: u64 = rest.get(12)?.parse().ok()?;
            let start: u64 = rest.get(19)?.parse().ok()?;
            Some((pid, comm, utime + stime, start))
        })
        .collect()
}

/// CPU seconds used between two snapshots by processes other than ours, nginx and wrk.
fn others_cpu_between(
    before: &[(u32, String, u64, u64)],
    after: &[(u32, String, u64, u64)],
    nginx_pid: u32,
) -> f64 {
    let me = std::process::id();
    let old: HashMap<u32, u64> = before.iter().map(|(p, _, t, _)| (*p, *t)).collect();
    let ticks: u64 = after
        .iter()
        .filter(|(pid, comm, _, _)| {
            *pid != me && *pid != nginx_pid && !matches!(comm.as_str(), "nginx" | "wrk")
        })
        .map(|(pid, _, t, _)| t.saturating_sub(old.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / crate::sys::clock_ticks_per_sec() as f64
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("zyphos-sampler".to_owned())
            .spawn(move || {
                let mut seen = SeenProcesses::new();
                for (pid, comm, ticks, _) in snapshot_processes() {
                    seen.insert(pid, (comm, ticks, ticks));
                }
                while !flag.load(Ordering::Relaxed) {
                    for _ in 0..10 {
                        if flag.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    for (pid, comm, ticks, _) in snapshot_processes() {
                        seen.entry(pid)
                            .and_modify(|e| e.2 = e.2.max(ticks))
                            .or_insert((comm, 0, ticks));
                    }
                }
                seen
            })
            .ok();
        Sampler { stop, thread }
    }

    /// Stop and return CPU seconds by command name, excluding `exclude_pids` and `exclude_comms`.
    fn finish(mut self, exclude_pids: &[u32], exclude_comms: &[&str]) -> Vec<(String, f64, usize)> {
        self.stop.store(true, Ordering::Relaxed);
        let Some(seen) = self.thread.take().and_then(|t| t.join().ok()) else {
            return Vec::new();
        };
        let hz = crate::sys::clock_ticks_per_sec() as f64;
        let mut by_comm: HashMap<String, (f64, usize)> = HashMap::new();
        for (pid, (comm, first, last)) in seen {
            if exclude_pids.contains(&pid) || exclude_comms.contains(&comm.as_str()) {
                continue;
            }
            let secs = last.saturating_sub(first) as f64 / hz;
            if secs > 0.0 {
                let e = by_comm.entry(comm).or_insert((0.0, 0));
                e.0 += secs;
                e.1 += 1;
            }
        }
        let mut v: Vec<(String, f64, usize)> =
            by_comm.into_iter().map(|(c, (s, n))| (c, s, n)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}

/// Everything a calibration measured.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// How it ran.
    pub options: CalibrateOptions,
    /// Machine and checkout.
    pub machine: Machine,
    /// `nginx -v`.
    pub nginx_version: String,
    /// `wrk -v`, first line.
    pub wrk_version: String,
    /// Every run in order.
    pub records: Vec<Record>,
    /// What else used the CPUs.
    pub background: Background,
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Calibration {
    fn cell(&self, cell: Cell) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| {
            r.tool == cell.tool
                && r.server == cell.server
                && r.pipeline == cell.pipeline
                && (r.pipeline == 1 || r.pipeline_mode == cell.mode)
        })
    }

    /// Median requests/s of one cell (depth 1 ignores the pipeline mode).
    pub fn median_rps(&self, cell: Cell) -> Option<f64> {
        median(&self.cell(cell).map(|r| r.rps).collect::<Vec<_>>())
    }

    fn median_of(&self, cell: Cell, f: fn(&Record) -> f64) -> f64 {
        median(&self.cell(cell).map(f).collect::<Vec<_>>()).unwrap_or(0.0)
    }

    /// zyphos-load / wrk on nginx at `pipeline` (batches, as wrk pipelines).
    pub fn agreement(&self, pipeline: usize) -> Option<f64> {
        let z = self.median_rps(Cell::new(Tool::ZyphosLoad, Server::Nginx, pipeline))?;
        let w = self.median_rps(Cell::new(Tool::Wrk, Server::Nginx, pipeline))?;
        (w > 0.0).then(|| z / w)
    }

    /// zyphos-load on sink / zyphos-load on nginx at `pipeline` (batches).
    pub fn headroom(&self, pipeline: usize) -> Option<f64> {
        let c = self.median_rps(Cell::new(Tool::ZyphosLoad, Server::Sink, pipeline))?;
        let n = self.median_rps(Cell::new(Tool::ZyphosLoad, Server::Nginx, pipeline))?;
        (n > 0.0).then(|| c / n)
    }

    /// The `docs/benchmarks.md` page.
    pub fn to_markdown(&self) -> String {
        let o = &self.options;
        let m = &self.machine;
        let d = o.depth;
        let mut s = String::new();
        let fmt_ratio = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.2}"));
        let k = |c: Cell| {
            self.median_rps(c)
                .map_or("n/a".to_owned(), |v| format!("{:.1}k", v / 1000.0))
        };
        let z_nginx = |p| Cell::new(Tool::ZyphosLoad, Server::Nginx, p);
        let w_nginx = |p| Cell::new(Tool::Wrk, Server::Nginx, p);
        let z_sink = |p| Cell::new(Tool::ZyphosLoad, Server::Sink, p);
        let _ = writeln!(s, "# Load generator calibration\n");
        let _ = writeln!(
            s,
            "_Generated by `zyphos-load calibrate` ({} profile) on {}. Do not edit by hand \
             (except below the hand-written marker at the end): re-run the command below._\n",
            o.profile, m.date_utc
        );
        let _ = writeln!(
            s,
            "The load generator must be faster than the servers it measures, and must agree \
             with an established tool when both measure the same server. Each figure below is \
             the median of {} alternating runs of {} s.\n",
            o.rounds,
            o.duration.as_secs_f64()
        );
        let _ = writeln!(s, "## Summary\n");
        let _ = writeln!(s, "| question | zyphos-load | reference | ratio |");
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        let rows = [
            (
                format!(
                    "agreement, keep-alive {} conns: nginx `/plaintext`, zyphos-load vs wrk",
                    o.connections
                ),
                z_nginx(1),
                w_nginx(1),
                self.agreement(1),
            ),
            (
                format!(
                    "agreement, pipelined ×{d} (batches): nginx `/plaintext`, zyphos-load vs wrk"
                ),
                z_nginx(d),
                w_nginx(d),
                self.agreement(d),
            ),
            (
                "ceiling, keep-alive: zyphos-load on sink vs on nginx".to_owned(),
                z_sink(1),
                z_nginx(1),
                self.headroom(1),
            ),
            (
                format!("ceiling, pipelined ×{d} (batches): zyphos-load on sink vs on nginx"),
                z_sink(d),
                z_nginx(d),
                self.headroom(d),
            ),
        ];
        for (q, a, b, r) in rows {
            let _ = writeln!(
                s,
                "| {q} | {} rps | {} rps | {} |",
                k(a),
                k(b),
                fmt_ratio(r)
            );
        }
        let _ = writeln!(
            s,
            "\n**Agreement** is zyphos-load's median divided by wrk's against the same nginx \
             (1.00 = the same throughput). **Ceiling** is what zyphos-load reaches against \
             `sink` (a one-thread canned-response server, much cheaper per request than nginx) \
             divided by what it reaches against nginx: above 1 means the generator, on its one \
             CPU, drives more than nginx serves on its CPU, so in the nginx runs nginx — not the \
             generator — is the bottleneck. The ceiling is itself bounded by the sink's CPU as \
             much as by the generator's; the CPU columns below show which side was saturated.\n"
        );
        let _ = writeln!(s, "## Setup\n");
        let _ = writeln!(
            s,
            "- Machine: {} ({} CPUs), Linux {}",
            m.cpu_model, m.cores, m.kernel
        );
        let _ = writeln!(s, "- Git revision: {}", m.git_revision);
        let _ = writeln!(s, "- Date: {}", m.date_utc);
        let _ = writeln!(
            s,
            "- nginx: `{}` — 1 worker, access log off, unlimited keep-alive requests, pinned to CPU {}",
            self.nginx_version, o.server_cpu
        );
        let _ = writeln!(
            s,
            "- wrk: `{}` — `-t1 -c{} --latency`; pipelined with `benches/peers/pipeline.lua -- {d}`; pinned to CPU {}",
            self.wrk_version, o.connections, o.client_cpu
        );
        let _ = writeln!(
            s,
            "- zyphos-load: 1 thread, {} connections, closed loop, HTTP/1.1 `GET /plaintext`, pinned to CPU {}; `sink` (one thread) pinned to CPU {}",
            o.connections, o.client_cpu, o.server_cpu
        );
        let order: Vec<String> = run_plan(d)
            .iter()
            .map(|c| format!("{} → {} {}", c.tool.name(), c.server.name(), c.label()))
            .collect();
        let _ = writeln!(
            s,
            "- Order within each round: {}; an unrecorded 1 s warm-up against each server \
             first\n- Before each run: a {} s pause, then a wait of up to {} s for the machine to \
             be quiet (all CPUs together at most {QUIET_BUSY_PERCENT} % busy over half a second); \
             the runs waited {:.1} s in all, and a run that starts after the full wait starts on \
             a busy machine\n",
            order.join(", "),
            o.pause.as_secs_f64(),
            o.quiet_wait.as_secs_f64(),
            self.records.iter().map(|r| r.waited_s).sum::<f64>()
        );
        let _ = writeln!(
            s,
            "Command (from the workspace root, after `cargo build --release -p zyphos-load`):\n\n```sh\n{}\n```\n",
            o.command
        );
        let _ = writeln!(s, "## Every run\n");
        let _ = writeln!(
            s,
            "| # | round | generator | server | load | requests/s | p50 µs | p99 µs | max µs | errors | server CPU % | client CPU % | others CPU-s |"
        );
        let _ = writeln!(
            s,
            "| ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for r in &self.records {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.1} |",
                r.seq,
                r.round,
                r.tool.name(),
                r.server.name(),
                r.cell().label(),
                r.rps,
                r.p50_us,
                r.p99_us,
                r.max_us,
                r.errors,
                r.server_cpu_busy,
                r.client_cpu_busy,
                r.others_cpu_s
            );
        }
        let _ = writeln!(
            s,
            "\n*server/client CPU %*: how busy the server's and the client's CPU were during the \
             run (`/proc/stat`, everything on that CPU). *others CPU-s*: CPU seconds used during \
             the run by processes other than nginx, wrk and zyphos-load (`/proc/*/stat` before \
             and after); a run with several seconds there shared its CPUs with other work."
        );
        let _ = writeln!(s, "\n## Medians\n");
        let _ = writeln!(
            s,
            "| generator | server | load | runs | requests/s | p50 µs | p99 µs | server CPU % | client CPU % |"
        );
        let _ = writeln!(
            s,
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for cell in run_plan(d) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                cell.tool.name(),
                cell.server.name(),
                cell.label(),
                self.cell(cell).count(),
                self.median_of(cell, |r| r.rps),
                self.median_of(cell, |r| r.p50_us),
                self.median_of(cell, |r| r.p99_us),
                self.median_of(cell, |r| r.server_cpu_busy),
                self.median_of(cell, |r| r.client_cpu_busy)
            );
        }
        let b = &self.background;
        let _ = writeln!(s, "\n## What else was running\n");
        let _ = writeln!(
            s,
            "Over the {:.0} s of the calibration, measured from `/proc`:\n",
            b.elapsed_s
        );
        let busy: Vec<String> = b
            .cpu_busy
            .iter()
            .enumerate()
            .map(|(i, v)| format!("CPU {i} {v:.0} %"))
            .collect();
        let _ = writeln!(
            s,
            "- CPU busy over the whole window (pauses included): {}",
            busy.join(", ")
        );
        let _ = writeln!(
            s,
            "- Load average at start: `{}`; at end: `{}`",
            b.loadavg.0, b.loadavg.1
        );
        let shown: Vec<&(String, f64, usize)> =
            b.others.iter().filter(|o| o.1 >= 0.05).take(12).collect();
        if shown.is_empty() {
            let _ = writeln!(s, "- No other process used measurable CPU (≥ 0.05 s).");
        } else {
            let total: f64 = b.others.iter().map(|o| o.1).sum();
            let _ = writeln!(
                s,
                "- Other processes used {total:.1} CPU-seconds in all (nginx, wrk and \
                 zyphos-load excluded); the largest, by command name:"
            );
            for (name, secs, n) in shown {
                let procs = if *n == 1 { "process" } else { "processes" };
                let _ = writeln!(s, "  - `{name}`: {secs:.1} s ({n} {procs})");
            }
        }
        let _ = writeln!(
            s,
            "\nProcesses are sampled once a second, so one that started and ended between two \
             samples is missed; the per-CPU busy figures include everything. Work from other \
             processes moves absolute numbers by 20–30 % on this machine; the alternating order \
             lets it hit both generators alike, which is why the ratios, not the absolute \
             figures, are what to quote.\n"
        );
        let _ = writeln!(s, "## Notes\n");
        let _ = writeln!(
            s,
            "- Latencies: zyphos-load's come from an HdrHistogram of every response (3 \
             significant digits); wrk's percentiles are its own estimate (it is known to \
             misreport high percentiles), so compare throughput across tools, not p99.\n\
             - Pipelining: wrk's script writes {d} requests and waits for all {d} responses \
             before writing again; the agreement and ceiling rows run zyphos-load the same way \
             (`--pipeline {d} --pipeline-mode batch`). zyphos-load's default, `window`, refills \
             after every read so {d} stay in flight; its row above shows how that pattern \
             changes what nginx serves.\n\
             - In these closed-loop runs latency counts from each request's send time; \
             open-loop runs (`--rate`) count from the intended send time instead."
        );
        s
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Run the calibration. `progress` gets one line per run.
pub fn calibrate(
    opts: &CalibrateOptions,
    mut progress: impl FnMut(&str),
) -> Result<Calibration, CalibrateError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return Err(CalibrateError::TooFewCpus(cores));
    }
    let machine = Machine::detect();
    let nginx_version = peers::tool_version("nginx", "-v").unwrap_or_default();
    let wrk_version = peers::tool_version("wrk", "-v").unwrap_or_default();
    // Fail early, before any run, if wrk is missing.
    if peers::find_tool("wrk").is_none() {
        return Err(PeerError::Missing {
            tool: "wrk",
            install: "apt-get install -y wrk",
        }
        .into());
    }
    let started = Instant::now();
    let load_start = loadavg();
    let cpu_start = cpu_times();
    let sampler = Sampler::start();

    let nginx = Nginx::start(&NginxOptions {
        cpu: Some(opts.server_cpu),
        ..NginxOptions::default()
    })?;
    let runs_per_round = run_plan(opts.depth).len();
    let lifetime = (opts.duration + opts.pause + Duration::from_secs(20))
        * (opts.rounds * runs_per_round + 2) as u32;
    let mut sink_opts = SinkOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    sink_opts.mode = SinkMode::Http;
    sink_opts.cpu = Some(opts.server_cpu);
    sink_opts.max_lifetime = lifetime;
    let sink = Sink::spawn(sink_opts).map_err(CalibrateError::Sink)?;

    let zyphos = |target: SocketAddr, pipeline: usize, mode: PipelineMode, duration: Duration| {
        let mut c = LoadConfig::new(target);
        c.path = "/plaintext".to_owned();
        c.connections = opts.connections;
        c.threads = 1;
        c.pipeline = pipeline;
        c.pipeline_mode = mode;
        c.duration = duration;
        c.cpus = vec![opts.client_cpu];
        run(&c)
    };

    // Unrecorded warm-up of both servers.
    progress("warm-up: 1 s against nginx and sink (not recorded)");
    zyphos(
        nginx.addr(),
        1,
        PipelineMode::Window,
        Duration::from_secs(1),
    )?;
    zyphos(
        sink.local_addr(),
        1,
        PipelineMode::Window,
        Duration::from_secs(1),
    )?;

    let mut records = Vec::new();
    let plan = run_plan(opts.depth);
    let total = opts.rounds * plan.len();
    for round in 1..=opts.rounds {
        for cell in plan {
            let Cell {
                tool,
                server,
                pipeline,
                mode,
            } = cell;
            std::thread::sleep(opts.pause);
            let waited = wait_for_quiet(opts.quiet_wait);
            let seq = records.len() + 1;
            let procs_before = snapshot_processes();
            let before = cpu_times();
            let mut rec = Record {
                round,
                seq,
                tool,
                server,
                pipeline,
                pipeline_mode: mode,
                waited_s: waited.as_secs_f64(),
                rps: 0.0,
                p50_us: 0.0,
                p99_us: 0.0,
                max_us: 0.0,
                errors: 0,
                server_cpu_busy: 0.0,
                client_cpu_busy: 0.0,
                others_cpu_s: 0.0,
            };
            let addr = match server {
                Server::Nginx => nginx.addr(),
                Server::Sink => sink.local_addr(),
            };
            match tool {
                Tool::ZyphosLoad => {
                    let r = zyphos(addr, pipeline, mode, opts.duration)?;
                    rec.rps = r.rps;
                    rec.p50_us = r.latency.p50_us;
                    rec.p99_us = r.latency.p99_us;
                    rec.max_us = r.latency.max_us;
                    rec.errors = r.errors.values().sum();
                }
                Tool::Wrk => {
                    let mut w = WrkOptions::new(format!("http://{addr}/plaintext"));
                    w.connections = opts.connections;
                    w.duration = opts.duration;
                    w.pipeline = pipeline;
                    w.cpu = Some(opts.client_cpu);
                    let r = peers::run_wrk(&w)?;
                    rec.rps = r.rps;
                    rec.p50_us = r.percentile(50.0).unwrap_or(0.0);
                    rec.p99_us = r.percentile(99.0).unwrap_or(0.0);
                    rec.max_us = r.latency_max_us;
                    rec.errors = r.socket_errors + r.non_2xx;
                }
            }
            let after = cpu_times();
            rec.server_cpu_busy = busy_between(&before, &after, opts.server_cpu);
            rec.client_cpu_busy = busy_between(&before, &after, opts.client_cpu);
            rec.others_cpu_s =
                others_cpu_between(&procs_before, &snapshot_processes(), nginx.pid());
            progress(&format!(
                "[{seq}/{total}] round {round}: {:<11} -> {:<5} {:<12} {:>9.0} rps  p50 {:>6.0} us  p99 {:>6.0} us  errors {}  CPU server {:.0}% client {:.0}%  others {:.1} CPU-s  (waited {:.1} s for quiet)",
                tool.name(),
                server.name(),
                cell.label(),
                rec.rps,
                rec.p50_us,
                rec.p99_us,
                rec.errors,
                rec.server_cpu_busy,
                rec.client_cpu_busy,
                rec.others_cpu_s,
                rec.waited_s
            ));
            records.push(rec);
        }
    }
    let nginx_pid = nginx.pid();
    drop(sink);
    drop(nginx);
    let cpu_end = cpu_times();
    let others = sampler.finish(
        &[std::process::id(), nginx_pid],
        &["nginx", "wrk", "zyphos-load", "zyphos-sampler"],
    );
    let background = Background {
        others,
        cpu_busy: (0..cpu_end.len())
            .map(|c| busy_between(&cpu_start, &cpu_end, c))
            .collect(),
        loadavg: (load_start, loadavg()),
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    Ok(Calibration {
        options: opts.clone(),
        machine,
        nginx_version,
        wrk_version,
        records,
        background,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tool: Tool, server: Server, pipeline: usize, rps: f64) -> Record {
        Record {
            round: 1,
            seq: 1,
            tool,
            server,
            pipeline,
            pipeline_mode: PipelineMode::Batch,
            waited_s: 0.0,
            rps,
            p50_us: 1.0,
            p99_us: 2.0,
            max_us: 3.0,
            errors: 0,
            server_cpu_busy: 100.0,
            client_cpu_busy: 50.0,
            others_cpu_s: 0.0,
        }
    }

    #[test]
    fn test_median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn test_utc_now_shape() {
        let s = utc_now();
        assert_eq!(s.len(), "2026-01-01 00:00:00 UTC".len(), "{s}");
        assert!(s.starts_with("20") && s.ends_with(" UTC"));
    }

    #[test]
    fn test_calibration_ratios_and_markdown() {
        let c = Calibration {
            options: CalibrateOptions::quick(),
            machine: Machine::default(),
            nginx_version: "nginx/x".into(),
            wrk_version: "wrk x".into(),
            records: vec![
                rec(Tool::ZyphosLoad, Server::Nginx, 1, 100.0),
                rec(Tool::Wrk, Server::Nginx, 1, 50.0),
                rec(Tool::ZyphosLoad, Server::Sink, 1, 400.0),
                rec(Tool::ZyphosLoad, Server::Nginx, 16, 200.0),
                rec(Tool::Wrk, Server::Nginx, 16, 200.0),
                rec(Tool::ZyphosLoad, Server::Sink, 16, 1000.0),
            ],
            background: Background::default(),
        };
        assert_eq!(c.agreement(1), Some(2.0));
        assert_eq!(c.headroom(1), Some(4.0));
        assert_eq!(c.headroom(16), Some(5.0));
        let md = c.to_markdown();
        assert!(md.contains("| agreement, keep-alive"), "{md}");
        assert!(md.contains("| 4.00 |") && md.contains("| 5.00 |"));
    }

    #[test]
    fn test_regenerated_page_keeps_hand_written_tail() {
        let old = format!("# old\n\nold table\n\n{HAND_WRITTEN_MARKER}\n\n## Race\n\nnotes\n");
        assert_eq!(
            keep_hand_written(&old, "# new\n\nnew table\n"),
            format!("# new\n\nnew table\n\n{HAND_WRITTEN_MARKER}\n\n## Race\n\nnotes\n")
        );
        assert_eq!(
            keep_hand_written("# old, no marker\n", "# new\n"),
            "# new\n"
        );
    }

    #[test]
    fn test_cpu_times_reads_each_cpu() {
        let t = cpu_times();
        assert!(!t.is_empty());
        assert!(t.iter().all(|&(busy, total)| busy <= total));
    }
}
