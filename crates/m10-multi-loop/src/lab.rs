//! Helpers for the integration tests, experiments and exit checks (hidden from the docs): a
//! [`MultiLoopServer`] started on its own threads with its control surface kept, the HTTP/1.1
//! lab factory, and small statistics helpers. Socket and process helpers come from m09's lab.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use m03_thread_per_conn::{Session, SessionFactory, ShutdownHandle};
use m08_http11::{Http11Config, Http11Factory};

use crate::server::{MultiConfig, MultiLoopServer, MultiReport, MultiStatsHandle, Running, Task};

pub use m08_http11::lab::{
    LabService, Table, filler, machine, print_json, print_measured, quick, round, run_main,
};
pub use m09_event_loop::lab::{
    connect, http_get, load, num, proc_cpu_s, proc_cpu_s_precise, proc_status_kib, raise_nofile,
    read_http, release_binary, wait_until,
};

/// m08's HTTP/1.1 session over the lab service (m05's demo router plus `/bytes/N`,
/// `/slow/MS`), with the given idle timeout.
pub fn http_factory(idle: Duration) -> io::Result<Http11Factory<LabService>> {
    let config = Http11Config {
        idle_timeout: idle,
        ..Http11Config::default()
    };
    Ok(Http11Factory::new(Arc::new(LabService::new()?), config))
}

/// `loops` loops on 127.0.0.1:0, pinned, `SO_REUSEPORT`, quiet about blocked iterations.
pub fn config(loops: usize) -> MultiConfig {
    let mut c = MultiConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    c.loops = loops;
    c.loop_config.log_blocked = false;
    c
}

/// A running [`MultiLoopServer`] (every loop on its own thread) with its control surface.
pub struct MultiInProcess<S: Session + Send + 'static> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every loop's counters.
    pub stats: MultiStatsHandle,
    /// Stops it.
    pub handle: ShutdownHandle,
    running: Option<Running<S>>,
}

impl<S: Session + Send + 'static> std::fmt::Debug for MultiInProcess<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiInProcess")
            .field("addr", &self.addr)
            .finish()
    }
}

impl<S: Session + Send + 'static> MultiInProcess<S> {
    /// Binds `config`, starts `factory` and waits (at most 5 s) until every loop runs.
    pub fn start<F: SessionFactory<Session = S>>(
        config: MultiConfig,
        factory: F,
    ) -> io::Result<MultiInProcess<S>> {
        let server = MultiLoopServer::bind(config)?;
        let addr = server.local_addr();
        let stats = server.stats();
        let handle = server.shutdown_handle();
        let running = server.start(Arc::new(factory))?;
        let all_alive = wait_until(Duration::from_secs(5), || {
            stats.per_loop().iter().all(|l| l.alive)
        });
        if !all_alive {
            handle.shutdown();
            return Err(io::Error::other("loops did not start within 5 s"));
        }
        Ok(MultiInProcess {
            addr,
            stats,
            handle,
            running: Some(running),
        })
    }

    /// Runs `task` on loop `index`'s thread.
    pub fn submit(&self, index: usize, task: Task) -> io::Result<()> {
        self.running
            .as_ref()
            .ok_or_else(|| io::Error::other("stopped"))?
            .submit(index, task)
            .map_err(io::Error::other)
    }

    /// Makes loop `index` fail.
    pub fn inject_failure(&self, index: usize) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.inject_failure(index))
    }

    /// Requests shutdown and waits at most `timeout` for every loop.
    pub fn stop_within(mut self, timeout: Duration) -> io::Result<MultiReport> {
        self.handle.shutdown();
        let running = self
            .running
            .take()
            .ok_or_else(|| io::Error::other("already stopped"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lab-join".into())
            .spawn(move || {
                let _ = tx.send(running.join());
            })?;
        rx.recv_timeout(timeout)
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "server did not stop in time"))
    }

    /// [`MultiInProcess::stop_within`] 10 s.
    pub fn stop(self) -> io::Result<MultiReport> {
        self.stop_within(Duration::from_secs(10))
    }
}

impl<S: Session + Send + 'static> Drop for MultiInProcess<S> {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The names of this process's threads (`/proc/self/task/*/comm`), with their ids.
pub fn thread_names() -> Vec<(u64, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        Some((tid, name.trim().to_owned()))
    })
    .collect()
}

/// The threads of process `pid`: (tid, name).
pub fn process_threads(pid: u32) -> Vec<(u64, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        Some((tid, name.trim().to_owned()))
    })
    .collect()
}

/// The median of `xs` (0 for none).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `zyphos serve --listen 127.0.0.1:0 ARGS…` as a child process: m09's [`ServerChild`]
/// (SIGTERM on stop and drop, so the copies a `--processes` server started stop too).
///
/// [`ServerChild`]: m09_event_loop::lab::ServerChild
pub use m09_event_loop::lab::ServerChild as Zyphos;

/// Sends SIGTERM to `pid`.
pub fn signal_term(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// The processes whose parent is `ppid` (from `/proc/*/stat`).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let parent: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (parent == ppid).then_some(pid)
    })
    .collect()
}

/// A blocking client socket from source address `src` (127.0.0.x) with read/write timeouts.
/// `IP_BIND_ADDRESS_NO_PORT` defers the port choice to `connect`, which only needs the whole
/// 4-tuple to be unique: a plain `bind(src:0)` must find a port free for *every* destination
/// and slows to milliseconds per call once tens of thousands are taken.
pub fn connect_from(
    addr: SocketAddr,
    src: [u8; 4],
    timeout: Duration,
) -> io::Result<std::net::TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::IpBindAddressNoPort, &true)
        .map_err(io::Error::from)?;
    sock.bind(&SocketAddr::from((src, 0)).into())?;
    sock.connect_timeout(&addr.into(), timeout)?;
    let s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One closed-loop `zyphos-load` run of keep-alive `GET path` against `addr` (one client
/// thread, `connections` connections, `secs` seconds); its JSON report.
pub fn keepalive_load(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    secs: f64,
) -> io::Result<serde_json::Value> {
    let args: Vec<String> = [
        "--scenario",
        "http1.1",
        "--connections",
        &connections.to_string(),
        "--duration",
        &format!("{secs}"),
        "--path",
        path,
        &addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    load(&args)
}
