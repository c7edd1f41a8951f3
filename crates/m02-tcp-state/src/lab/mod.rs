//! Harness for tests, experiments and exit checks: the m01 echo server running with a tracker
//! in a thread, scripted client lifecycles, network namespaces, raw packets, and milestone 1's
//! JSON helpers. Hidden from the docs: scaffolding around the lesson.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use m01_raw_sockets::{EchoConfig, EchoReport, EchoServer, Error, ShutdownHandle};

use crate::tracker::{Shared, Tracker, TrackerConfig};

pub use m01_raw_sockets::lab::{
    Table, machine, print_check, print_check_measured, print_json, print_measured, quantile, quick,
    round, run_main, wait_until,
};

pub mod lifecycle;
pub mod netns;
pub mod packet;
pub mod roles;

/// A quiet echo configuration on `127.0.0.1:0` that sends FIN before close (so the tracker
/// sees LAST-ACK) and has no m01 timeouts (the table decides).
pub fn echo_config() -> EchoConfig {
    let mut c = m01_raw_sockets::lab::test_config();
    c.fin_before_close = true;
    c.read_timeout = None;
    c.write_timeout = None;
    c
}

/// A tracker configuration that samples the kernel at every hook.
pub fn verifying() -> TrackerConfig {
    TrackerConfig {
        verify: true,
        ..TrackerConfig::default()
    }
}

/// The m01 echo server with a [`Tracker`] as its observer, in a thread of this process.
pub struct TrackedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shutdown handle.
    pub handle: ShutdownHandle,
    /// The tracker, lockable while the server runs.
    pub tracker: Shared,
    done: mpsc::Receiver<Result<EchoReport, Error>>,
}

impl TrackedServer {
    /// Binds `echo` and runs it with a tracker made from `tracker`.
    pub fn start(echo: EchoConfig, tracker: TrackerConfig) -> io::Result<TrackedServer> {
        let server = EchoServer::bind(echo).map_err(io::Error::other)?;
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let shared = Shared::new(Tracker::new(tracker, Instant::now()));
        let mut observer = shared.clone();
        let (tx, done) = mpsc::channel();
        let counters = server.counters();
        thread::Builder::new()
            .name("m02-echo".into())
            .spawn(move || {
                let _ = tx.send(server.run_with_observer(&mut observer));
            })?;
        wait_until(Duration::from_secs(5), || {
            counters
                .server_tid
                .load(std::sync::atomic::Ordering::SeqCst)
                != 0
        });
        Ok(TrackedServer {
            addr,
            handle,
            tracker: shared,
            done,
        })
    }

    /// Runs `f` on the locked tracker.
    pub fn with<R>(&self, f: impl FnOnce(&mut Tracker) -> R) -> R {
        self.tracker.with(f)
    }

    /// Waits (polling every ms, at most `timeout`) until `cond` holds on the tracker.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut(&Tracker) -> bool) -> bool {
        wait_until(timeout, || self.with(|t| cond(t)))
    }

    /// Stops the server (graceful shutdown) and returns its report.
    pub fn stop(self) -> io::Result<EchoReport> {
        self.handle.shutdown();
        match self.done.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(io::Error::other(e.to_string())),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "server did not stop within 10 s",
            )),
        }
    }
}

/// Descriptors open in this process (`/proc/self/fd`).
pub fn fd_count() -> io::Result<usize> {
    m01_raw_sockets::stats::proc_fd_count("self")
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> io::Result<u64> {
    m01_raw_sockets::stats::proc_status_field("self", "VmRSS")
}

/// Whether we run as root (namespaces, raw sockets and `/proc/slabinfo` need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// A JSON path of states (`["CLOSED","FIN_WAIT_1"]`) as `CLOSED → FIN-WAIT-1`.
pub fn path_text(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .map(|s| crate::TcpState::from_name(s).map_or(s, |st| st.rfc_name()))
                .collect::<Vec<_>>()
                .join(" → ")
        })
        .unwrap_or_default()
}

/// `after[name] - before[name]` for nstat counters in two role `stats` answers.
pub fn counter_delta(before: &serde_json::Value, after: &serde_json::Value, name: &str) -> u64 {
    let get = |v: &serde_json::Value| v["kernel"]["counters"][name].as_u64().unwrap_or(0);
    get(after).saturating_sub(get(before))
}
