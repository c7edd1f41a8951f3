//! Helpers for the integration tests, experiments and exit checks (hidden from the docs):
//! an in-process [`EpollServer`] on a thread, the `zyphos` server and `zyphos-load` client as
//! child processes (release builds of this workspace), and `/proc` readings.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{SessionFactory, ShutdownHandle};

use crate::server::{EpollServer, ServerConfig, ServerReport, StatsHandle};
use crate::stats::LoopSnapshot;

/// An [`EpollServer`] running on its own thread (loop 0 there, more loops on theirs).
#[derive(Debug)]
pub struct InProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its loops' live counters.
    pub stats: StatsHandle,
    /// Stops it.
    pub handle: ShutdownHandle,
    join: Option<JoinHandle<io::Result<ServerReport>>>,
}

impl InProcess {
    /// Binds `config` and runs `factory` on a new thread.
    pub fn start<F: SessionFactory>(config: ServerConfig, factory: F) -> io::Result<InProcess> {
        let server = EpollServer::bind(config)?;
        let addr = server.local_addr();
        let stats = server.stats();
        let handle = server.shutdown_handle();
        let factory = Arc::new(factory);
        let join = std::thread::Builder::new()
            .name("m09-server".into())
            .spawn(move || server.run(factory))?;
        Ok(InProcess {
            addr,
            stats,
            handle,
            join: Some(join),
        })
    }

    /// All loops merged, now.
    pub fn snapshot(&self) -> LoopSnapshot {
        self.stats.snapshot()
    }

    /// Requests shutdown and waits for `run` to return (at most `timeout`).
    pub fn stop_within(mut self, timeout: Duration) -> io::Result<ServerReport> {
        self.handle.shutdown();
        let join = self
            .join
            .take()
            .ok_or_else(|| io::Error::other("already stopped"))?;
        let deadline = Instant::now() + timeout;
        while !join.is_finished() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "server did not stop in time",
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        join.join()
            .map_err(|_| io::Error::other("server thread panicked"))?
    }

    /// [`InProcess::stop_within`] 10 s.
    pub fn stop(self) -> io::Result<ServerReport> {
        self.stop_within(Duration::from_secs(10))
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Polls `cond` every 2 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A blocking client socket with read/write timeouts of `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// As [`connect`], from source address `src` (127.0.0.x: more ephemeral ports).
pub fn connect_from(addr: SocketAddr, src: [u8; 4], timeout: Duration) -> io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::from((src, 0)).into())?;
    sock.connect_timeout(&addr.into(), timeout)?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns it.
pub fn raise_nofile() -> io::Result<u64> {
    let (_, hard) = crate::sys::nofile_limit()?;
    crate::sys::set_nofile_soft(hard)?;
    Ok(hard)
}

/// Reads one HTTP/1.1 response with a `Content-Length` from `s` (`buf` keeps bytes read past
/// it); returns (status, body).
pub fn read_http(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<(u16, Vec<u8>)> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .get(9..12)
                .and_then(|d| d.parse::<u16>().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `GET path` on a new connection; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut s = connect(addr, Duration::from_secs(10))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n")?;
    read_http(&mut s, &mut Vec::new())
}

/// A release binary of this workspace, built now if needed (`cargo build --release -p PACKAGE
/// --bin NAME`); `$ZYPHOS_BIN_<NAME>` overrides.
pub fn release_binary(package: &str, name: &str) -> io::Result<PathBuf> {
    let var = format!("ZYPHOS_BIN_{}", name.replace('-', "_").to_ascii_uppercase());
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    // Built once per process: a `cargo build` that finds nothing to do still costs ~0.5 s.
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    if let Ok(built) = BUILT.lock()
        && let Some((_, path)) = built.iter().find(|(n, _)| n == name)
    {
        return Ok(path.clone());
    }
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            package,
            "--bin",
            name,
        ])
        .current_dir(&root)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "building {name} failed: {status}"
        )));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join(name);
    if bin.exists() {
        if let Ok(mut built) = BUILT.lock() {
            built.push((name.to_owned(), bin.clone()));
        }
        Ok(bin)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} missing after build", bin.display()),
        ))
    }
}

/// A server in a child process that prints its address as its first stdout line
/// (`zyphos serve`, or an example's `--server` mode).
#[derive(Debug)]
pub struct ServerChild {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerChild {
    /// Starts `zyphos serve --listen 127.0.0.1:0 ARGS…` (release build of this workspace).
    pub fn spawn(args: &[&str]) -> io::Result<ServerChild> {
        let bin = release_binary("zyphos", "zyphos")?;
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        ServerChild::start(cmd)
    }

    /// Starts `cmd` (stdout piped: first line is the address; stderr discarded).
    pub fn start(mut cmd: Command) -> io::Result<ServerChild> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line.trim().parse().map_err(|_| {
            let _ = child.kill();
            io::Error::new(io::ErrorKind::InvalidData, format!("bad address {line:?}"))
        })?;
        Ok(ServerChild { child, addr })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `/stats` document.
    pub fn stats(&self) -> io::Result<serde_json::Value> {
        let (status, body) = http_get(self.addr, "/stats")?;
        if status != 200 {
            return Err(io::Error::other(format!("/stats answered {status}")));
        }
        serde_json::from_slice(&body).map_err(io::Error::other)
    }

    /// Its CPU time (user + system), seconds.
    pub fn cpu_s(&self) -> io::Result<f64> {
        proc_cpu_s(self.pid())
    }

    /// Its thread count.
    pub fn threads(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/task", self.pid()))?.count())
    }

    /// Its resident set, KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// SIGTERM, then wait (SIGKILL after 15 s).
    pub fn stop(mut self) -> io::Result<()> {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        self.child.wait().map(drop)
    }
}

impl Drop for ServerChild {
    /// SIGTERM first (a `zyphos serve --processes N` stops its copies on that path), SIGKILL
    /// after 5 s.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `utime + stime` of a process, seconds.
pub fn proc_cpu_s(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is [0], utime [11], stime [12].
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((ticks(11) + ticks(12)) as f64 / clock_ticks())
}

/// CPU time of process `pid` in seconds at nanosecond resolution: the sum over its live
/// threads of the scheduler's run time (`/proc/PID/task/TID/schedstat`, first field, ns).
/// `proc_cpu_s` counts clock ticks (10 ms): at a few tenths of a CPU-second per run that is a
/// 5 % step, too coarse to compare two configurations. Threads that already exited are not
/// counted, so use it on servers whose threads live for the whole run.
pub fn proc_cpu_s_precise(pid: u32) -> io::Result<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread can exit between the listing and the read: it is skipped.
        let Ok(line) = std::fs::read_to_string(&path) else {
            continue;
        };
        ns += line
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other(format!("bad {}", path.display())))?;
    }
    Ok(ns as f64 / 1e9)
}

fn clock_ticks() -> f64 {
    crate::sys::clock_ticks_per_second() as f64
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
}

/// Runs `zyphos-load ARGS… --json` and returns its report.
pub fn load(args: &[String]) -> io::Result<serde_json::Value> {
    let bin = release_binary("zyphos-load", "zyphos-load")?;
    let out = Command::new(bin)
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "zyphos-load {args:?} failed: {}",
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(io::Error::other)
}

/// A number in a JSON document by path (`["latency", "p99_us"]`), or 0.
pub fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0.0,
        }
    }
    cur.as_f64().unwrap_or(0.0)
}
