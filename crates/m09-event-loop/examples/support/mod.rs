//! Shared by the m09 examples (each includes it with `#[path]`): the lab server mode, the
//! idle-connection holder mode, and the load helpers.
//!
//! **Server mode** (`EXAMPLE --server [--trigger level|edge] [--oneshot] [--max-events N]
//! [--workers N] [--reuseport] [--read-budget N] [--max-requests N]`): an [`EpollServer`] on this process's
//! main thread (one worker = one thread in the whole process) running m08's HTTP/1.1 session
//! over m08's lab service, with the idle timeout raised to 300 s so that held connections stay
//! open; `/stats` answers the loops' counters as JSON, `/mark` starts a measurement window
//! (`window_*` fields of `/stats` cover the iterations since the last mark). It prints its
//! address, then serves until SIGTERM.
//!
//! **Holder mode** (`EXAMPLE --hold ADDR SRC COUNT`): opens COUNT connections from 127.0.0.SRC,
//! asks each `GET /plaintext` once, prints `READY n` (n answered 200), holds them until stdin
//! closes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use m04_http10::{ConnInfo, Request, ResponseWriter, Service};
use m08_http11::lab::LabService;
use m08_http11::{Http11Config, Http11Factory};
use m09_event_loop::lab::{ServerChild, connect_from, num, raise_nofile, read_http};
use m09_event_loop::{EpollServer, HistogramSnapshot, ServerConfig, StatsHandle, Trigger};

/// The idle timeout of the lab server mode (held connections must not expire).
pub(crate) const HELD_IDLE: Duration = Duration::from_secs(300);

struct StatsService {
    lab: LabService,
    stats: StatsHandle,
    mark: Mutex<HistogramSnapshot>,
}

impl Service for StatsService {
    fn call(&self, request: &Request<'_>, ctx: &ConnInfo, response: &mut ResponseWriter<'_>) {
        match request.path() {
            "/stats" => {
                let snap = self.stats.snapshot();
                let window = self
                    .mark
                    .lock()
                    .map(|m| snap.iteration_hist.since(&m))
                    .unwrap_or_default();
                let doc = serde_json::json!({
                    "driver": snap,
                    "loops": self.stats.per_loop(),
                    "window_iterations": window.count(),
                    "window_p50_ns": window.quantile(0.5),
                    "window_p99_ns": window.quantile(0.99),
                    "window_p999_ns": window.quantile(0.999),
                });
                let body = doc.to_string();
                response.send(200, Some("application/json"), &[], body.as_bytes());
            }
            "/mark" => {
                if let Ok(mut m) = self.mark.lock() {
                    *m = self.stats.snapshot().iteration_hist;
                }
                response.send(200, Some("text/plain"), &[], b"marked");
            }
            _ => self.lab.call(request, ctx, response),
        }
    }
}

fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Runs the server mode if asked (`--server` first); returns whether it did.
pub(crate) fn maybe_server() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("--server") {
        return false;
    }
    if let Err(e) = serve(&args) {
        eprintln!("server: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn serve(args: &[String]) -> std::io::Result<()> {
    raise_nofile()?;
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().map_err(std::io::Error::other)?);
    cfg.loop_config.log_blocked = false;
    if flag_value(args, "--trigger") == Some("edge") {
        cfg.loop_config.trigger = Trigger::Edge;
    }
    cfg.loop_config.oneshot = args.iter().any(|a| a == "--oneshot");
    if let Some(n) = flag_value(args, "--max-events").and_then(|v| v.parse().ok()) {
        cfg.loop_config.max_events = n;
    }
    if let Some(n) = flag_value(args, "--read-budget").and_then(|v| v.parse().ok()) {
        cfg.loop_config.read_budget = n;
    }
    if let Some(n) = flag_value(args, "--workers").and_then(|v| v.parse().ok()) {
        cfg.workers = n;
    }
    cfg.reuseport = args.iter().any(|a| a == "--reuseport");
    let server = EpollServer::bind(cfg)?;
    let service = StatsService {
        lab: LabService::new()?,
        stats: server.stats(),
        mark: Mutex::new(HistogramSnapshot::default()),
    };
    let mut config = Http11Config {
        idle_timeout: HELD_IDLE,
        ..Http11Config::default()
    };
    // Requests per keep-alive connection (m08's default: 1,000, as nginx's).
    if let Some(n) = flag_value(args, "--max-requests").and_then(|v| v.parse().ok()) {
        config.max_requests = n;
    }
    let factory = Arc::new(Http11Factory::new(Arc::new(service), config));
    println!("{}", server.local_addr());
    std::io::stdout().flush()?;
    server.shutdown_handle().install_signal_handlers()?;
    server.run(factory)?;
    Ok(())
}

/// Starts this example in server mode as a child process with `extra` flags.
pub(crate) fn spawn_server(extra: &[&str]) -> std::io::Result<ServerChild> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--server").args(extra);
    ServerChild::start(cmd)
}

/// Runs the holder mode if asked (`--hold` first); returns whether it did.
pub(crate) fn maybe_holder() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("--hold") {
        return false;
    }
    let run = || -> std::io::Result<()> {
        raise_nofile()?;
        let addr: SocketAddr = args
            .get(2)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| std::io::Error::other("--hold ADDR SRC COUNT"))?;
        let src: u8 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
        let count: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
        let mut held = Vec::with_capacity(count);
        for _ in 0..count {
            let Ok(mut s) = connect_from(addr, [127, 0, 0, src], Duration::from_secs(20)) else {
                continue;
            };
            if s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")
                .is_ok()
                && matches!(read_http(&mut s, &mut Vec::new()), Ok((200, _)))
            {
                held.push(s);
            }
        }
        println!("READY {}", held.len());
        std::io::stdout().flush()?;
        let mut sink = String::new();
        let _ = std::io::stdin().read_to_string(&mut sink);
        drop(held);
        Ok(())
    };
    let code = i32::from(run().is_err());
    std::process::exit(code);
}

/// Idle connections held by child processes of this example.
pub(crate) struct Holders {
    children: Vec<Child>,
    /// Connections that answered their request and are held.
    pub(crate) ready: usize,
}

impl Holders {
    /// Opens `total` connections to `addr` from `procs` child processes (sources 127.0.0.2…).
    pub(crate) fn open(addr: SocketAddr, total: usize, procs: usize) -> std::io::Result<Holders> {
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        let per = total.div_ceil(procs.max(1));
        let mut left = total;
        for p in 0..procs.max(1) {
            let n = per.min(left);
            left -= n;
            children.push(
                Command::new(&exe)
                    .args([
                        "--hold",
                        &addr.to_string(),
                        &(2 + p).to_string(),
                        &n.to_string(),
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()?,
            );
        }
        let mut ready = 0;
        for c in &mut children {
            let out = c
                .stdout
                .take()
                .ok_or_else(|| std::io::Error::other("no holder stdout"))?;
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line)?;
            ready += line
                .trim()
                .strip_prefix("READY ")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
        }
        Ok(Holders { children, ready })
    }

    /// Closes every held connection (the children exit).
    pub(crate) fn release(mut self) {
        for c in &mut self.children {
            drop(c.stdin.take());
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for c in &mut self.children {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

/// `zyphos-load` HTTP/1.1 against `addr` + `path` with `extra` arguments.
pub(crate) fn load_http(
    addr: SocketAddr,
    path: &str,
    extra: &[&str],
) -> std::io::Result<serde_json::Value> {
    raise_nofile()?; // zyphos-load inherits the soft limit
    let mut args = vec![format!("http://{addr}{path}")];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    m09_event_loop::lab::load(&args)
}

/// Requests per second, p50/p99/p99.9 (µs) and errors of a zyphos-load report.
pub(crate) fn summary(r: &serde_json::Value) -> (f64, f64, f64, f64, f64) {
    let errors: f64 = r
        .get("errors")
        .and_then(|e| e.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_f64())
                .fold(0.0, |a, b| a + b)
        })
        .unwrap_or(0.0);
    (
        num(r, &["rps"]),
        num(r, &["latency", "p50_us"]),
        num(r, &["latency", "p99_us"]),
        num(r, &["latency", "p999_us"]),
        errors,
    )
}

/// A driver counter of a `/stats` document.
pub(crate) fn driver(stats: &serde_json::Value, name: &str) -> f64 {
    num(stats, &["driver", name])
}

/// What one load run against a lab server measured, with the server's counter deltas.
pub(crate) struct Run {
    /// The zyphos-load report.
    pub(crate) report: serde_json::Value,
    /// Server counters before and after.
    pub(crate) before: serde_json::Value,
    pub(crate) after: serde_json::Value,
    /// Server CPU seconds during the run.
    pub(crate) cpu_s: f64,
}

impl Run {
    /// Runs `zyphos-load http://ADDR/plaintext ARGS` against `server`, marking a window first.
    pub(crate) fn plaintext(server: &ServerChild, args: &[&str]) -> std::io::Result<Run> {
        m09_event_loop::lab::http_get(server.addr, "/mark")?;
        let before = server.stats()?;
        let cpu0 = server.cpu_s()?;
        let report = load_http(server.addr, "/plaintext", args)?;
        let cpu_s = server.cpu_s()? - cpu0;
        let after = server.stats()?;
        Ok(Run {
            report,
            before,
            after,
            cpu_s,
        })
    }

    /// Requests answered by the load generator.
    pub(crate) fn requests(&self) -> f64 {
        num(&self.report, &["requests"]).max(1.0)
    }

    /// A driver counter's growth during the run, per request.
    pub(crate) fn per_request(&self, name: &str) -> f64 {
        (driver(&self.after, name) - driver(&self.before, name)) / self.requests()
    }

    /// A driver counter's growth during the run.
    pub(crate) fn delta(&self, name: &str) -> f64 {
        driver(&self.after, name) - driver(&self.before, name)
    }

    /// A window field of the after-stats (`window_p99_ns`), µs.
    pub(crate) fn window_us(&self, name: &str) -> f64 {
        num(&self.after, &[name]) / 1e3
    }
}

/// Rounds for a table cell.
pub(crate) fn r(x: f64, digits: i32) -> serde_json::Value {
    serde_json::json!(m08_http11::lab::round(x, digits))
}
