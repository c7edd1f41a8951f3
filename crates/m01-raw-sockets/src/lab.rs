//! Harness for tests, experiments and exit checks: servers in a thread or in a child process,
//! bounded waits, clients, and the JSON shapes `cargo xtask milestone 1` reads.
//!
//! Hidden from the docs: it is scaffolding around the lesson, not the lesson.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{self, ServerCounters};
use crate::sys::signal;
use crate::{EchoConfig, EchoReport, EchoServer, Error, ShutdownHandle};

/// Polls `cond` every millisecond until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// An [`EchoServer`] running in a thread of this process.
pub struct ThreadServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shutdown handle.
    pub handle: ShutdownHandle,
    /// Its live counters.
    pub counters: Arc<ServerCounters>,
    done: mpsc::Receiver<Result<EchoReport, Error>>,
}

impl ThreadServer {
    /// Binds `config` and runs it in a new thread.
    pub fn start(config: EchoConfig) -> Result<ThreadServer, Error> {
        let server = EchoServer::bind(config)?;
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let counters = server.counters();
        let (tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("m01-echo".into())
            .spawn(move || {
                let _ = tx.send(server.run());
            })
            .map_err(|source| Error::Setup {
                what: "the server thread",
                source,
            })?;
        // Wait until the thread is inside run() so that signals aimed at it land there.
        wait_until(Duration::from_secs(5), || {
            counters
                .server_tid
                .load(std::sync::atomic::Ordering::SeqCst)
                != 0
        });
        Ok(ThreadServer {
            addr,
            handle,
            counters,
            done,
        })
    }

    /// The server thread's kernel id (0 once it has returned).
    pub fn tid(&self) -> i32 {
        self.counters
            .server_tid
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits at most `timeout` for `run` to return on its own.
    pub fn wait(&self, timeout: Duration) -> Option<Result<EchoReport, Error>> {
        self.done.recv_timeout(timeout).ok()
    }

    /// Requests shutdown and waits (at most 10 s) for the report.
    pub fn stop(self) -> io::Result<EchoReport> {
        self.handle.shutdown();
        match self.done.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(io::Error::other(e.to_string())),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "server did not stop within 10 s",
            )),
        }
    }
}

/// A quiet configuration on `127.0.0.1:0` for tests.
pub fn test_config() -> EchoConfig {
    let mut c = EchoConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    c.log_connections = false;
    c
}

/// Connects with read and write timeouts of `timeout` (so no test can hang on a read).
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes `payload` and reads the same number of bytes back; checks they match.
pub fn echo_round_trip(stream: &mut TcpStream, payload: &[u8]) -> io::Result<Duration> {
    let t = Instant::now();
    stream.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back)?;
    if back != payload {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "echo differs from what was sent",
        ));
    }
    Ok(t.elapsed())
}

/// A deterministic payload of `len` bytes (position-dependent, so reordering would show).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Where the `echo_server` binary is: `$ZYPHOS_ECHO_SERVER`, or built now with the same
/// profile as the running program (`cargo build [--release] -p m01-raw-sockets --bin echo_server`).
pub fn echo_server_binary() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ZYPHOS_ECHO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/<name> or target/<profile>/<name>
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("examples") || dir.ends_with("deps") {
        dir.pop();
    }
    let release = dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "m01-raw-sockets",
        "--bin",
        "echo_server",
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null());
    let status = cmd.status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "building echo_server failed: {status}"
        )));
    }
    let bin = dir.join("echo_server");
    if !bin.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found after build", bin.display()),
        ));
    }
    Ok(bin)
}

/// The `echo_server` running as a child process (optionally under a wrapper such as
/// `strace -f -c -o FILE` or `valgrind`).
pub struct ServerProcess {
    child: Child,
    /// Where it listens (its first stdout line).
    pub addr: SocketAddr,
    stdout_rest: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `wrapper… echo_server --listen 127.0.0.1:0 args…` and reads its address (waiting
    /// at most `startup`).
    pub fn spawn(
        wrapper: &[String],
        args: &[&str],
        startup: Duration,
    ) -> io::Result<ServerProcess> {
        let bin = echo_server_binary()?;
        ServerProcess::spawn_binary(&bin, wrapper, args, startup)
    }

    /// As [`spawn`](Self::spawn), with an explicit binary path (tests pass
    /// `env!("CARGO_BIN_EXE_echo_server")`).
    pub fn spawn_binary(
        bin: &std::path::Path,
        wrapper: &[String],
        args: &[&str],
        startup: Duration,
    ) -> io::Result<ServerProcess> {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let stderr_pipe = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr"))?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = sink.lock() {
                    v.push(line);
                }
            }
        });
        let first = match rx.recv_timeout(startup) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.lock().map(|v| v.join("\n")).unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("echo_server printed no address within {startup:?}; stderr:\n{err}"),
                ));
            }
        };
        let addr = first.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad address line {first:?}"),
            )
        })?;
        Ok(ServerProcess {
            child,
            addr,
            stdout_rest: rx,
            stderr,
        })
    }

    /// The process id of the direct child (the wrapper, when there is one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The echo server's own process id: the child itself, or, under a wrapper that forks
    /// (strace), the wrapper's first child. valgrind runs the program inside its own process,
    /// so there the child is the server.
    pub fn server_pid(&self) -> u32 {
        let me = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(me)
    }

    /// Descriptors open in the process now (`/proc/PID/fd`).
    pub fn fd_count(&self) -> io::Result<usize> {
        stats::proc_fd_count(&self.server_pid().to_string())
    }

    /// Resident memory now, KiB (`VmRSS`).
    pub fn rss_kib(&self) -> io::Result<u64> {
        stats::proc_status_field(&self.server_pid().to_string(), "VmRSS")
    }

    /// Stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Sends `sig` to the server process.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        signal::kill(self.server_pid(), sig)
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// `SIGTERM`, then waits (at most `timeout`): returns the exit status, the time from the
    /// signal to the exit as seen by `waitpid`, and the remaining stdout lines (the JSON report
    /// with `--json-report`). Kills the process if it does not exit in time.
    pub fn terminate(
        mut self,
        timeout: Duration,
    ) -> io::Result<(ExitStatus, Duration, Vec<String>)> {
        let t = Instant::now();
        self.signal(signal::SIGTERM)?;
        let status = match self.wait_timeout(timeout)? {
            Some(s) => s,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no exit within {timeout:?} of SIGTERM"),
                ));
            }
        };
        let took = t.elapsed();
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout_rest.recv_timeout(Duration::from_millis(500)) {
            rest.push(line);
        }
        Ok((status, took, rest))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output for cargo xtask

/// An experiment's table: `{"title", "columns", "rows", "notes"}`.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// One line.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Cells: strings or numbers.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// How it was measured, and what to notice.
    pub notes: String,
}

impl Table {
    /// A table with headers and no rows.
    pub fn new(title: &str, columns: &[&str]) -> Table {
        Table {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
            notes: String::new(),
        }
    }

    /// Prints it as the one JSON document on stdout.
    pub fn print(&self) {
        print_json(self);
    }
}

/// Prints `value` as one JSON document on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    let mut out = io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Prints a pass/fail check result.
pub fn print_check(pass: bool, detail: &str) {
    print_json(&serde_json::json!({ "pass": pass, "detail": detail }));
}

/// Prints a check that is both judged here and measured (for a `pass` or a numeric threshold).
pub fn print_check_measured(pass: bool, measured: f64, unit: &str, detail: &str) {
    print_json(
        &serde_json::json!({ "pass": pass, "measured": measured, "unit": unit, "detail": detail }),
    );
}

/// Prints a measured check result.
pub fn print_measured(measured: f64, unit: &str, detail: &str) {
    print_json(&serde_json::json!({ "measured": measured, "unit": unit, "detail": detail }));
}

/// Prints a measured check result together with a **yardstick** measured in the same run: the
/// same figure for something that does strictly less work than any correct implementation (for
/// example a bare index stack next to a buffer pool). The xtask may then judge a miss as a
/// `ceiling` rather than a plain failure: when the yardstick itself misses the threshold and
/// `measured` reaches at least 85 % of it (`cargo xtask`'s `Verdict::Ceiling`). `yardstick_what`
/// names the yardstick in one phrase ("a bare index stack, no checks").
pub fn print_measured_with_yardstick(
    measured: f64,
    unit: &str,
    yardstick: f64,
    yardstick_what: &str,
    detail: &str,
) {
    print_json(&serde_json::json!({
        "measured": measured,
        "unit": unit,
        "yardstick": { "value": yardstick, "what": yardstick_what },
        "detail": detail,
    }));
}

/// Whether the quick profile is asked for (`--quick` or `ZYPHOS_QUICK=1`).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
        || std::env::var("ZYPHOS_QUICK").is_ok_and(|v| v == "1")
}

/// CPU model, core count and kernel, for notes.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// The value at quantile `q` of `samples` (sorted in place), or 0.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let idx = ((samples.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    samples[idx]
}

/// Rounds to `digits` decimals (for table cells).
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// What [`drive`] measured.
#[derive(Clone, Debug, Default)]
pub struct DriveStats {
    /// Messages echoed (clients × rounds).
    pub messages: u64,
    /// Bytes echoed.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Per-round wall time, µs (one round = every client sends one message and reads it back).
    pub round_us: Vec<f64>,
}

/// Opens `clients` connections to `addr` and runs `rounds` rounds: each client writes one
/// `size`-byte message, then each reads its echo back (checked). Closes them all at the end.
pub fn drive(
    addr: SocketAddr,
    clients: usize,
    rounds: usize,
    size: usize,
) -> io::Result<DriveStats> {
    let mut streams = (0..clients)
        .map(|_| connect(addr, Duration::from_secs(10)))
        .collect::<io::Result<Vec<_>>>()?;
    let msg = pattern(size, 11);
    let mut back = vec![0u8; size];
    let mut stats = DriveStats::default();
    let t = Instant::now();
    for _ in 0..rounds {
        let r = Instant::now();
        for s in &mut streams {
            s.write_all(&msg)?;
        }
        for s in &mut streams {
            s.read_exact(&mut back)?;
            if back != msg {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "echo differs"));
            }
        }
        stats.round_us.push(r.elapsed().as_secs_f64() * 1e6);
        stats.messages += clients as u64;
        stats.bytes += (clients * size) as u64;
    }
    stats.elapsed = t.elapsed();
    for s in &streams {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    // Wait for the server's FIN on each, so the server has closed them when we return.
    for s in &mut streams {
        let mut sink = [0u8; 64];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    }
    Ok(stats)
}

/// Runs `f`, printing its error to stderr and exiting 1 (an experiment that could not measure
/// prints no table).
pub fn run_main(f: impl FnOnce() -> io::Result<()>) -> std::process::ExitCode {
    match f() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether a program is on `PATH`.
pub fn have_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

pub mod cost;
