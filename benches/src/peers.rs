//! Real peers: nginx (the baseline server) and wrk (the baseline load generator).
//!
//! [`Nginx::start`] renders `benches/peers/nginx.conf` into a private temp dir, starts nginx in
//! the foreground (one worker, access log off, loopback only), optionally pinned to a CPU,
//! waits (bounded) until its port accepts, and stops it on drop. [`run_wrk`] runs wrk pinned
//! to a CPU, with `benches/peers/pipeline.lua` for pipelining, and parses its summary.
//!
//! Pinning works by inheritance: the child is spawned from a short-lived thread that first pins
//! itself with `sched_setaffinity`, so nginx's master and worker (and wrk's threads) start with
//! that mask. A missing tool is a [`PeerError::Missing`] naming the install command.

use crate::report::{Latency, Report};
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The nginx configuration template (placeholders `@PREFIX@`, `@PORT@`, `@STATIC@`, `@USER@`).
pub const NGINX_CONF_TEMPLATE: &str = include_str!("../peers/nginx.conf");
/// The wrk pipelining script (`-- DEPTH` after the URL).
pub const PIPELINE_LUA: &str = include_str!("../peers/pipeline.lua");
/// Body of nginx's `/plaintext`.
pub const PLAINTEXT_BODY: &str = "Hello, World!";

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The tool is not installed.
    #[error("{tool} not found in PATH (or /usr/sbin); install it with `{install}`")]
    Missing {
        /// Program name.
        tool: &'static str,
        /// The command that installs it.
        install: &'static str,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The peer exited before it was ready.
    #[error("{tool} exited ({status}) before accepting on {addr}: {detail}")]
    Exited {
        /// Program name.
        tool: &'static str,
        /// Address waited on.
        addr: SocketAddr,
        /// Exit status.
        status: String,
        /// Its error log or stderr, last lines.
        detail: String,
    },
    /// The peer did not accept connections in time.
    #[error("{tool} did not accept connections on {addr} within {secs} s")]
    NotReady {
        /// Program name.
        tool: &'static str,
        /// Address waited on.
        addr: SocketAddr,
        /// Seconds waited.
        secs: u64,
    },
    /// wrk ran but failed or printed something we cannot read.
    #[error("wrk: {0}")]
    Wrk(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PeerError {
    let what = what.into();
    move |source| PeerError::Io { what, source }
}

/// Find an executable in `PATH`, then in `/usr/sbin` and `/sbin` (where nginx lives).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A directory removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create `$TMPDIR/zyphos-<prefix>-<pid>-<n>` (mode 0755, so an unprivileged nginx worker
    /// can read it).
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("zyphos-{prefix}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Spawn `cmd`, pinned to `cpu` if given: the spawn happens on a helper thread that pins
/// itself first, so the child inherits the affinity mask from its first instruction.
pub fn spawn_pinned(cmd: &mut Command, cpu: Option<usize>) -> io::Result<Child> {
    match cpu {
        None => cmd.spawn(),
        Some(cpu) => std::thread::scope(|s| {
            s.spawn(|| {
                crate::sys::pin_current_thread(&[cpu])?;
                cmd.spawn()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("spawn thread panicked")))
        }),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Wait until `addr` accepts a TCP connection, `child` exits, or `timeout` passes.
fn wait_ready(
    tool: &'static str,
    addr: SocketAddr,
    child: &mut Child,
    timeout: Duration,
    log: &dyn Fn() -> String,
) -> Result<(), PeerError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(PeerError::Exited {
                tool,
                addr,
                status: status.to_string(),
                detail: log(),
            });
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(PeerError::NotReady {
                tool,
                addr,
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `n` lines of a text file (empty if unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Stop a process group: SIGTERM, wait up to `grace`, then SIGKILL.
fn stop_group(child: &mut Child, grace: Duration) {
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    if let Ok(None) = child.try_wait() {
        let _ = crate::sys::kill(-pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Whatever is left of the group (e.g. an orphaned worker) goes too.
    let _ = crate::sys::kill(-pid, libc::SIGKILL);
    let _ = child.wait();
}

/// How to start nginx.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NginxOptions {
    /// Loopback port; 0 picks a free one.
    pub port: u16,
    /// Pin master and worker to this CPU.
    pub cpu: Option<usize>,
    /// How long to wait for the port to accept.
    pub ready_timeout: Duration,
}

impl Default for NginxOptions {
    fn default() -> NginxOptions {
        NginxOptions {
            port: 0,
            cpu: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// A running nginx (foreground, own process group), stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    /// Render the config into a temp dir (with `static/1k.bin`), start nginx, wait until it
    /// accepts.
    pub fn start(opts: &NginxOptions) -> Result<Nginx, PeerError> {
        let bin = find_tool("nginx").ok_or(PeerError::Missing {
            tool: "nginx",
            install: "apt-get install -y nginx-light",
        })?;
        let dir = TempDir::new("nginx").map_err(io_err("creating nginx temp dir"))?;
        let port = if opts.port == 0 {
            free_port().map_err(io_err("finding a free port"))?
        } else {
            opts.port
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let static_dir = dir.path().join("static");
        std::fs::create_dir_all(&static_dir).map_err(io_err("creating static dir"))?;
        std::fs::set_permissions(&static_dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod static dir"))?;
        let kib: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(static_dir.join("1k.bin"), &kib).map_err(io_err("writing 1k.bin"))?;
        let conf = render_nginx_conf(dir.path(), port, &static_dir);
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(io_err("writing nginx.conf"))?;
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).map_err(io_err("creating stderr.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let mut child = spawn_pinned(&mut cmd, opts.cpu)
            .map_err(io_err(format!("starting {}", bin.display())))?;
        let log_dir = dir.path().to_path_buf();
        let log = move || {
            format!(
                "{} {}",
                tail(&log_dir.join("error.log"), 5),
                tail(&log_dir.join("stderr.log"), 5)
            )
        };
        if let Err(e) = wait_ready("nginx", addr, &mut child, opts.ready_timeout, &log) {
            stop_group(&mut child, Duration::from_secs(1));
            return Err(e);
        }
        Ok(Nginx { child, addr, dir })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its private directory (config, logs, static files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(3));
    }
}

/// Fill the nginx template.
pub fn render_nginx_conf(prefix: &Path, port: u16, static_dir: &Path) -> String {
    // As root, the worker would otherwise switch to `nobody`; keep it simple and readable.
    let user = if is_root() { "user root;" } else { "" };
    NGINX_CONF_TEMPLATE
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@STATIC@", &static_dir.display().to_string())
        .replace("@USER@", user)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// First line a tool prints for its version flag (nginx `-v`, wrk `-v`), if it runs.
pub fn tool_version(tool: &str, flag: &str) -> Option<String> {
    let bin = find_tool(tool)?;
    let out = Command::new(bin)
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if out.stderr.is_empty() {
        out.stdout
    } else {
        out.stderr
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// How to run wrk.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WrkOptions {
    /// URL to load.
    pub url: String,
    /// `-t`.
    pub threads: usize,
    /// `-c`.
    pub connections: usize,
    /// `-d`.
    pub duration: Duration,
    /// Requests written at a time (1 = no pipelining; more uses `pipeline.lua`).
    pub pipeline: usize,
    /// Pin wrk to this CPU.
    pub cpu: Option<usize>,
    /// Extra request headers, `Name: value` each (wrk `-H`), e.g. `Connection: close`.
    pub headers: Vec<String>,
}

impl WrkOptions {
    /// `wrk -t1 -c64 -d10s --latency URL`.
    pub fn new(url: impl Into<String>) -> WrkOptions {
        WrkOptions {
            url: url.into(),
            threads: 1,
            connections: 64,
            duration: Duration::from_secs(10),
            pipeline: 1,
            cpu: None,
            headers: Vec::new(),
        }
    }
}

/// wrk's arguments for `opts` (without the program name). `script` is where `pipeline.lua` is
/// (used only when `opts.pipeline > 1`).
pub fn wrk_args(opts: &WrkOptions, script: &Path) -> Vec<String> {
    let secs = opts.duration.as_secs().max(1);
    let mut args = vec![
        format!("-t{}", opts.threads),
        format!("-c{}", opts.connections),
        format!("-d{secs}s"),
        "--latency".to_owned(),
    ];
    for h in &opts.headers {
        args.push("-H".to_owned());
        args.push(h.clone());
    }
    if opts.pipeline > 1 {
        args.push("-s".to_owned());
        args.push(script.display().to_string());
        args.push(opts.url.clone());
        args.push("--".to_owned());
        args.push(opts.pipeline.to_string());
    } else {
        args.push(opts.url.clone());
    }
    args
}

/// What wrk printed, in our units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkResult {
    /// Completed requests.
    pub requests: u64,
    /// Run time wrk reported, in seconds.
    pub duration_s: f64,
    /// `Requests/sec`.
    pub rps: f64,
    /// Mean latency (µs).
    pub latency_avg_us: f64,
    /// Max latency (µs).
    pub latency_max_us: f64,
    /// `--latency` distribution: (percentile, µs), e.g. (50.0, 592.0).
    pub percentiles: Vec<(f64, f64)>,
    /// Sum of `Socket errors` (connect, read, write, timeout).
    pub socket_errors: u64,
    /// `Non-2xx or 3xx responses`.
    pub non_2xx: u64,
    /// The full text wrk printed.
    pub raw: String,
}

impl WrkResult {
    /// A percentile from the distribution (wrk prints 50, 75, 90, 99).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|&(_, v)| v)
    }

    /// The same figures as a [`Report`] (p90/p99 from wrk's distribution; wrk has no p99.9, so
    /// that field carries the max).
    pub fn to_report(&self, opts: &WrkOptions) -> Report {
        let mut errors = std::collections::BTreeMap::new();
        if self.socket_errors > 0 {
            errors.insert("socket".to_owned(), self.socket_errors);
        }
        if self.non_2xx > 0 {
            errors.insert("bad_status".to_owned(), self.non_2xx);
        }
        Report {
            scenario: "http1.1".to_owned(),
            target: opts.url.clone(),
            connections: opts.connections as u64,
            threads: opts.threads as u64,
            pipeline: opts.pipeline as u64,
            pipeline_mode: "batch".to_owned(),
            mode: "closed".to_owned(),
            target_rate: None,
            warmup_s: 0.0,
            duration_s: self.duration_s,
            requests: self.requests,
            rps: self.rps,
            bytes_read: 0,
            bytes_written: 0,
            errors,
            latency: Latency {
                p50_us: self.percentile(50.0).unwrap_or(0.0),
                p90_us: self.percentile(90.0).unwrap_or(0.0),
                p99_us: self.percentile(99.0).unwrap_or(0.0),
                p999_us: self.latency_max_us,
                max_us: self.latency_max_us,
                mean_us: self.latency_avg_us,
            },
        }
    }
}

/// Run wrk once (bounded: killed if it outlives its duration by 15 s) and parse its output.
pub fn run_wrk(opts: &WrkOptions) -> Result<WrkResult, PeerError> {
    let bin = find_tool("wrk").ok_or(PeerError::Missing {
        tool: "wrk",
        install: "apt-get install -y wrk",
    })?;
    let secs = opts.duration.as_secs().max(1);
    // Keep the script dir alive until wrk is done.
    let script_dir;
    let script = if opts.pipeline > 1 {
        script_dir = TempDir::new("wrk").map_err(io_err("creating wrk temp dir"))?;
        let script = script_dir.path().join("pipeline.lua");
        std::fs::write(&script, PIPELINE_LUA).map_err(io_err("writing pipeline.lua"))?;
        script
    } else {
        PathBuf::from("pipeline.lua")
    };
    let mut cmd = Command::new(&bin);
    cmd.args(wrk_args(opts, &script));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn_pinned(&mut cmd, opts.cpu).map_err(io_err("starting wrk"))?;
    let deadline = Instant::now() + Duration::from_secs(secs + 15);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                stop_group(&mut child, Duration::from_secs(1));
                return Err(PeerError::Wrk(format!(
                    "still running {} s after its {secs} s duration; killed",
                    15
                )));
            }
            Err(e) => return Err(io_err("waiting for wrk")(e)),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    check_wrk_status(status, &out, &err)?;
    parse_wrk_output(&out)
}

fn check_wrk_status(status: ExitStatus, out: &str, err: &str) -> Result<(), PeerError> {
    if status.success() {
        return Ok(());
    }
    let mut msg = format!("exited with {status}");
    for line in err.lines().chain(out.lines()).take(3) {
        let _ = write!(msg, " | {line}");
    }
    Err(PeerError::Wrk(msg))
}

/// Parse a wrk time like `602.53us`, `3.23ms`, `1.01s`, `1.00m` into microseconds.
fn parse_wrk_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-3,
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * scale)
}

/// Parse wrk's summary (`--latency` output).
pub fn parse_wrk_output(text: &str) -> Result<WrkResult, PeerError> {
    let bad = |what: &str| PeerError::Wrk(format!("cannot read {what} from its output: {text:?}"));
    let mut r = WrkResult {
        raw: text.to_owned(),
        ..WrkResult::default()
    };
    let mut in_distribution = false;
    let mut saw_rps = false;
    for line in text.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        if t.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let [p, v] = words[..] {
                if let (Some(p), Some(v)) = (p.strip_suffix('%'), parse_wrk_time(v)) {
                    if let Ok(p) = p.parse::<f64>() {
                        r.percentiles.push((p, v));
                        continue;
                    }
                }
            }
            in_distribution = false;
        }
        if words.first() == Some(&"Latency") && words.len() >= 4 {
            r.latency_avg_us = parse_wrk_time(words[1]).ok_or_else(|| bad("average latency"))?;
            r.latency_max_us = parse_wrk_time(words[3]).ok_or_else(|| bad("max latency"))?;
        } else if words.len() >= 4 && words[1] == "requests" && words[2] == "in" {
            r.requests = words[0].parse().map_err(|_| bad("request count"))?;
            let d = words[3].trim_end_matches(',');
            r.duration_s = parse_wrk_time(d).ok_or_else(|| bad("duration"))? / 1e6;
        } else if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().map_err(|_| bad("Requests/sec"))?;
            saw_rps = true;
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            r.socket_errors = v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().map_err(|_| bad("Non-2xx count"))?;
        }
    }
    if !saw_rps {
        return Err(bad("Requests/sec"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   602.53us   74.19us   3.23ms   89.00%
    Req/Sec   106.36k     3.05k  110.53k    82.00%
  Latency Distribution
     50%  592.00us
     75%  620.00us
     90%  668.00us
     99%    0.89ms
  1058421 requests in 10.00s, 166.55MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec: 105822.34
Transfer/sec:     16.65MB
";

    #[test]
    fn test_wrk_output_parses_all_figures() {
        let r = parse_wrk_output(SAMPLE).expect("parse");
        assert_eq!(r.requests, 1_058_421);
        assert!((r.rps - 105_822.34).abs() < 1e-6);
        assert!((r.duration_s - 10.0).abs() < 1e-9);
        assert!((r.latency_avg_us - 602.53).abs() < 1e-9);
        assert!((r.latency_max_us - 3230.0).abs() < 1e-6);
        assert_eq!(r.percentile(50.0), Some(592.0));
        assert_eq!(r.percentile(99.0), Some(890.0));
        assert_eq!(r.socket_errors, 5);
        assert_eq!(r.non_2xx, 7);
    }

    #[test]
    fn test_wrk_output_without_rps_is_an_error() {
        assert!(parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn test_wrk_time_units() {
        assert_eq!(parse_wrk_time("1.50ms"), Some(1500.0));
        assert_eq!(parse_wrk_time("2.00s"), Some(2e6));
        assert_eq!(parse_wrk_time("1.00m"), Some(60e6));
        assert_eq!(parse_wrk_time("7"), None);
    }

    #[test]
    fn test_nginx_conf_renders_every_placeholder() {
        let conf = render_nginx_conf(Path::new("/tmp/x"), 8081, Path::new("/tmp/x/static"));
        assert!(!conf.contains('@'), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:8081"));
        assert!(conf.contains("return 200 \"Hello, World!\""));
        assert!(conf.contains("worker_processes 1;") && conf.contains("daemon off;"));
    }

    #[test]
    fn test_wrk_args_carry_headers_and_pipeline_script() {
        let mut o = WrkOptions::new("http://127.0.0.1:1/plaintext");
        o.headers.push("Connection: close".to_owned());
        o.duration = Duration::from_secs(3);
        assert_eq!(
            wrk_args(&o, Path::new("/s/pipeline.lua")),
            [
                "-t1",
                "-c64",
                "-d3s",
                "--latency",
                "-H",
                "Connection: close",
                "http://127.0.0.1:1/plaintext"
            ]
        );
        o.headers.clear();
        o.pipeline = 16;
        let args = wrk_args(&o, Path::new("/s/pipeline.lua"));
        assert_eq!(
            args[4..],
            [
                "-s",
                "/s/pipeline.lua",
                "http://127.0.0.1:1/plaintext",
                "--",
                "16"
            ]
        );
    }

    #[test]
    fn test_missing_tool_error_names_install_command() {
        let e = PeerError::Missing {
            tool: "wrk",
            install: "apt-get install -y wrk",
        };
        assert!(e.to_string().contains("apt-get install -y wrk"));
        assert!(find_tool("definitely-not-a-tool-zyphos").is_none());
    }
}
