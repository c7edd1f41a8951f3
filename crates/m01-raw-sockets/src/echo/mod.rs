//! The echo server: one listening socket, bytes back to whoever sent them.
//!
//! Two I/O models behind one API:
//!
//! - [`Mode::Poll`] (default): every socket non-blocking, one thread, `poll(2)` tells which ones
//!   are ready. `poll` is the simplest readiness API (an array in, an array out, O(n) per call);
//!   m09 replaces it with epoll. Each connection owns a fixed buffer
//!   ([`EchoConfig::buffer_size`]); a partial `send` keeps the unsent tail; a full buffer stops
//!   reading (backpressure).
//! - [`Mode::Blocking`]: blocking calls, one connection at a time. While one client is slow,
//!   everyone else waits in the accept queue: the `slow_client` experiment measures it.
//!
//! Startup (`EchoServer::bind`): `socket` → `setsockopt(SO_REUSEADDR)` → `bind` → `listen(backlog)`
//! → `getsockname` → `fcntl(O_NONBLOCK)` → `pipe2` (self-pipe) → `open("/dev/null")` (reserve fd).
//! Per connection: `accept4` (client address logged) → `setsockopt(TCP_NODELAY)` → `getsockopt`
//! ×3 (read back `TCP_NODELAY`, `SO_SNDBUF`, `SO_RCVBUF`) → `recvfrom`/`sendto` … → `recvfrom`
//! returning 0 (EOF) → `close`.
//! Shutdown (SIGINT/SIGTERM or [`ShutdownHandle::shutdown`]): stop accepting (close the
//! listener), keep echoing what has already arrived for at most [`EchoConfig::drain_timeout`]
//! (a connection is done once nothing is pending and `SIOCINQ` says nothing is unread), then
//! `shutdown(SHUT_WR)` and `close` every connection.

mod blocking;
pub(crate) mod buffer;
mod poll_loop;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::accounting::{self, SyscallTable};
use crate::error::{CloseReason, Error};
use crate::observe::{ConnectionObserver, NoopObserver};
use crate::stats::{ConnRecord, CountersSnapshot, FdUsage, ServerCounters};
use crate::sys::process::{self, Rusage, Who};
use crate::sys::{self, signal};

/// Which I/O model serves the connections.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Non-blocking sockets multiplexed with `poll(2)` in one thread.
    #[default]
    Poll,
    /// Blocking sockets, one connection at a time.
    Blocking,
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode, Error> {
        match s {
            "poll" => Ok(Mode::Poll),
            "blocking" => Ok(Mode::Blocking),
            other => Err(Error::Config(format!(
                "unknown mode {other:?} (expected poll or blocking)"
            ))),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Poll => "poll",
            Mode::Blocking => "blocking",
        })
    }
}

/// How the echo server is set up. Start from [`EchoConfig::default`] (or [`EchoConfig::new`])
/// and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EchoConfig {
    /// Where to listen; default `127.0.0.1:3000`. Port 0 lets the kernel pick (tests).
    pub listen: SocketAddr,
    /// `listen(2)` backlog: finished handshakes the kernel queues for `accept4`. Default 128.
    pub backlog: i32,
    /// I/O model. Default [`Mode::Poll`].
    pub mode: Mode,
    /// Bytes of echo buffer per connection. Default 16 KiB.
    pub buffer_size: usize,
    /// Connections served at once; more are accepted and closed at once (counted as `shed`).
    /// Default 10,000.
    pub max_connections: usize,
    /// `SO_REUSEADDR` on the listener (default on): rebinding works while old connections sit
    /// in TIME_WAIT.
    pub reuse_addr: bool,
    /// `TCP_NODELAY` on each connection (default on).
    pub nodelay: bool,
    /// `SO_SNDBUF` for each connection (`None`: the kernel's default and autotuning).
    pub send_buffer: Option<usize>,
    /// `SO_RCVBUF` for each connection.
    pub recv_buffer: Option<usize>,
    /// Close a connection that sends nothing for this long (`None`: never). Default 60 s.
    pub read_timeout: Option<Duration>,
    /// Close a connection whose pending output does not move for this long. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// During shutdown, how long to keep echoing input that already arrived and flushing
    /// pending output. Default 50 ms.
    pub drain_timeout: Duration,
    /// First pause after `accept4` fails with `EMFILE`/`ENFILE` (doubles up to 1 s while it
    /// keeps failing). Default 10 ms.
    pub accept_backoff: Duration,
    /// Blocking mode: `SO_RCVTIMEO`/`SO_SNDTIMEO` tick at which blocked calls come back to check
    /// for shutdown and timeouts. Default 20 ms.
    pub tick: Duration,
    /// Read back `TCP_NODELAY`, `SO_SNDBUF`, `SO_RCVBUF` after accepting (3 `getsockopt` per
    /// connection), and sample `SIOCINQ`/`SIOCOUTQ` when reading pauses. Default on.
    pub inspect_sockets: bool,
    /// Log each accepted client address and each close to stderr. Default on.
    pub log_connections: bool,
    /// How many [`ConnRecord`]s the report keeps (the most recent ones). Default 1,024.
    pub record_limit: usize,
    /// Call `shutdown(SHUT_WR)` before every `close`, not only during server shutdown, so that
    /// the FIN leaves while the descriptor is still open and an observer can still see the
    /// socket's state in its `shutdown_write`/`closing` hooks (`LAST_ACK`, `FIN_WAIT_1`…).
    /// Default off.
    pub fin_before_close: bool,
}

impl Default for EchoConfig {
    fn default() -> EchoConfig {
        EchoConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            backlog: 128,
            mode: Mode::Poll,
            buffer_size: 16 * 1024,
            max_connections: 10_000,
            reuse_addr: true,
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
            read_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(10)),
            drain_timeout: Duration::from_millis(50),
            accept_backoff: Duration::from_millis(10),
            tick: Duration::from_millis(20),
            inspect_sockets: true,
            log_connections: true,
            record_limit: 1024,
            fin_before_close: false,
        }
    }
}

impl EchoConfig {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> EchoConfig {
        EchoConfig {
            listen,
            ..EchoConfig::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.buffer_size == 0 {
            return Err(Error::Config("buffer_size must be at least 1".into()));
        }
        if self.backlog < 1 {
            return Err(Error::Config("backlog must be at least 1".into()));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        if self.tick.is_zero() {
            return Err(Error::Config("tick must be positive".into()));
        }
        Ok(())
    }
}

/// Asks a running server to shut down gracefully. Cheap to clone, usable from any thread, and
/// wired to `SIGINT`/`SIGTERM` by [`install_signal_handlers`](Self::install_signal_handlers).
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    inner: Arc<Wake>,
}

#[derive(Debug)]
struct Wake {
    requested: AtomicBool,
    /// Write end of the self-pipe; `None` only while dropping.
    write: Option<OwnedFd>,
    /// `shutdown_signal_count()` when this handle took the signals (`u64::MAX`: it did not).
    signal_base: AtomicU64,
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(fd) = self.write.take() {
            signal::clear_wake_fd(fd.as_raw_fd());
            let _ = sys::close(fd);
        }
    }
}

impl ShutdownHandle {
    fn new(write: OwnedFd) -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::new(Wake {
                requested: AtomicBool::new(false),
                write: Some(write),
                signal_base: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// Requests shutdown: sets the flag and writes one byte to the self-pipe, which wakes `poll`.
    pub fn shutdown(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        if let Some(fd) = &self.inner.write {
            // A full pipe (EAGAIN) already holds a wake-up byte: nothing to do.
            let _ = sys::write(fd.as_fd(), &[1]);
        }
    }

    /// Whether shutdown was requested, by [`shutdown`](Self::shutdown) or by a signal after
    /// [`install_signal_handlers`](Self::install_signal_handlers).
    pub fn is_shutdown(&self) -> bool {
        if self.inner.requested.load(Ordering::SeqCst) {
            return true;
        }
        let base = self.inner.signal_base.load(Ordering::SeqCst);
        base != u64::MAX && signal::shutdown_signal_count() > base
    }

    /// Routes `SIGINT` and `SIGTERM` to this server: the handler writes one byte to the
    /// self-pipe (async-signal-safe) and the server shuts down gracefully. One server per
    /// process can own the signals; the last one to call this wins.
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        let Some(fd) = &self.inner.write else {
            return Ok(());
        };
        self.inner
            .signal_base
            .store(signal::shutdown_signal_count(), Ordering::SeqCst);
        signal::install_shutdown_handler(fd.as_fd())
    }
}

/// What shutting down took.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownStats {
    /// From noticing the request to the last descriptor closed, µs.
    pub took_us: u64,
    /// Connections open at the request and closed by the sequence.
    pub connections_closed: u64,
    /// Bytes echoed during the drain.
    pub bytes_flushed: u64,
    /// Bytes dropped when the drain bound ran out (pending output plus unread input).
    pub bytes_abandoned: u64,
}

/// Everything a finished run measured.
#[derive(Clone, Debug, Serialize)]
pub struct EchoReport {
    /// The address it listened on.
    pub local_addr: SocketAddr,
    /// The I/O model.
    pub mode: Mode,
    /// How long `run` ran, µs.
    pub elapsed_us: u64,
    /// Final counters.
    pub counters: CountersSnapshot,
    /// The most recent connections (at most [`EchoConfig::record_limit`]).
    pub connections: Vec<ConnRecord>,
    /// Records dropped to respect the limit.
    pub records_dropped: u64,
    /// Syscalls made by the whole process during `run` (this server's, if it is alone).
    pub syscalls: SyscallTable,
    /// `getrusage(RUSAGE_SELF)` difference over `run`: user vs system CPU, context switches.
    pub cpu: Rusage,
    /// Descriptors held against `RLIMIT_NOFILE`.
    pub fds: FdUsage,
    /// The shutdown sequence, when one ran.
    pub shutdown: Option<ShutdownStats>,
}

/// A bound echo server, ready to [`run`](EchoServer::run).
#[derive(Debug)]
pub struct EchoServer {
    core: Core,
    listener: OwnedFd,
    wake_read: OwnedFd,
    reserve: Option<OwnedFd>,
}

impl EchoServer {
    /// Creates, configures, binds and listens; creates the self-pipe and the reserve descriptor.
    pub fn bind(config: EchoConfig) -> Result<EchoServer, Error> {
        config.validate()?;
        let listener = sys::tcp_socket(&config.listen, false).map_err(Error::Socket)?;
        if config.reuse_addr {
            sys::set_reuseaddr(listener.as_fd(), true).map_err(|source| Error::SocketOption {
                option: "SO_REUSEADDR",
                source,
            })?;
        }
        sys::bind(listener.as_fd(), &config.listen).map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        sys::listen(listener.as_fd(), config.backlog).map_err(|source| Error::Listen {
            backlog: config.backlog,
            source,
        })?;
        let local_addr = sys::getsockname(listener.as_fd()).map_err(|source| Error::Setup {
            what: "the listener's address",
            source,
        })?;
        match config.mode {
            Mode::Poll => sys::set_nonblocking(listener.as_fd(), true).map_err(|source| {
                Error::SocketOption {
                    option: "O_NONBLOCK",
                    source,
                }
            })?,
            // Blocking accept4 comes back every tick with EAGAIN to check for shutdown.
            Mode::Blocking => {
                sys::set_read_timeout(listener.as_fd(), Some(config.tick)).map_err(|source| {
                    Error::SocketOption {
                        option: "SO_RCVTIMEO",
                        source,
                    }
                })?
            }
        }
        let (wake_read, wake_write) = sys::pipe_nonblocking().map_err(|source| Error::Setup {
            what: "the self-pipe",
            source,
        })?;
        let reserve = sys::open_dev_null().map_err(|source| Error::Setup {
            what: "the reserve descriptor",
            source,
        })?;
        let (soft_limit, hard_limit) = process::nofile_limit().unwrap_or((0, 0));
        let core = Core {
            handle: ShutdownHandle::new(wake_write),
            counters: Arc::new(ServerCounters::default()),
            records: VecDeque::new(),
            records_dropped: 0,
            started: Instant::now(),
            local_addr,
            // listener + two pipe ends + reserve
            fds_open: 4,
            fds_peak: 4,
            limits: (soft_limit, hard_limit),
            config,
        };
        Ok(EchoServer {
            core,
            listener,
            wake_read,
            reserve: Some(reserve),
        })
    }

    /// The address actually bound (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local_addr
    }

    /// A handle that stops [`run`](Self::run) gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.core.handle.clone()
    }

    /// Live counters, readable while the server runs.
    pub fn counters(&self) -> Arc<ServerCounters> {
        Arc::clone(&self.core.counters)
    }

    /// Serves until shut down, then closes everything and reports.
    pub fn run(self) -> Result<EchoReport, Error> {
        self.run_with_observer(&mut NoopObserver)
    }

    /// As [`run`](Self::run), calling `observer` at each step of each connection's life and
    /// applying the actions it asks for (see [`crate::observe`]).
    pub fn run_with_observer(
        self,
        observer: &mut dyn ConnectionObserver,
    ) -> Result<EchoReport, Error> {
        let EchoServer {
            mut core,
            listener,
            wake_read,
            reserve,
        } = self;
        let before = accounting::snapshot();
        let cpu_before = process::getrusage(Who::Process).unwrap_or_default();
        core.started = Instant::now();
        observer.started(core.local_addr, core.started);
        core.counters
            .server_tid
            .store(signal::current_tid(), Ordering::SeqCst);
        let outcome = match core.config.mode {
            Mode::Poll => poll_loop::run(&mut core, listener, wake_read, reserve, observer),
            Mode::Blocking => blocking::run(&mut core, listener, wake_read, reserve, observer),
        };
        let shutdown = outcome?;
        let cpu = process::getrusage(Who::Process)
            .unwrap_or_default()
            .since(&cpu_before);
        core.counters.server_tid.store(0, Ordering::SeqCst);
        // The write end of the self-pipe stays open while any ShutdownHandle lives; it is not the
        // server's to close, so it is not counted as open at exit.
        let fds = FdUsage {
            open_at_exit: core.fds_open.saturating_sub(1),
            peak_open: core.fds_peak,
            soft_limit: core.limits.0,
            hard_limit: core.limits.1,
        };
        Ok(EchoReport {
            local_addr: core.local_addr,
            mode: core.config.mode,
            elapsed_us: micros(core.started.elapsed()),
            counters: core.counters.snapshot(),
            connections: core.records.into_iter().collect(),
            records_dropped: core.records_dropped,
            syscalls: accounting::snapshot().since(&before),
            cpu,
            fds,
            shutdown,
        })
    }
}

/// State both I/O models share: configuration, counters, records, descriptor bookkeeping.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: EchoConfig,
    pub(crate) handle: ShutdownHandle,
    pub(crate) counters: Arc<ServerCounters>,
    records: VecDeque<ConnRecord>,
    records_dropped: u64,
    pub(crate) started: Instant,
    local_addr: SocketAddr,
    fds_open: u64,
    fds_peak: u64,
    limits: (u64, u64),
}

/// A freshly accepted connection's bookkeeping.
#[derive(Debug)]
pub(crate) struct ConnMeta {
    pub(crate) peer: SocketAddr,
    pub(crate) fd: i32,
    pub(crate) accepted_at: Instant,
    pub(crate) setup_ns: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) sndbuf: u64,
    pub(crate) rcvbuf: u64,
    pub(crate) nodelay: bool,
    pub(crate) max_outq: u64,
    pub(crate) max_inq: u64,
    pub(crate) read_pauses: u64,
    pub(crate) partial_writes: u64,
}

impl Core {
    pub(crate) fn fd_opened(&mut self) {
        self.fds_open += 1;
        self.fds_peak = self.fds_peak.max(self.fds_open);
    }

    pub(crate) fn fd_closed(&mut self) {
        self.fds_open = self.fds_open.saturating_sub(1);
    }

    /// Configures a just-accepted socket and starts its record. `accepted_at` is when `accept4`
    /// returned.
    pub(crate) fn setup_connection(
        &mut self,
        fd: &OwnedFd,
        peer: SocketAddr,
        accepted_at: Instant,
    ) -> ConnMeta {
        self.fd_opened();
        self.counters.opened();
        let cfg = &self.config;
        if cfg.nodelay {
            let _ = sys::set_nodelay(fd.as_fd(), true);
        }
        if let Some(n) = cfg.send_buffer {
            let _ = sys::set_send_buffer_size(fd.as_fd(), n);
        }
        if let Some(n) = cfg.recv_buffer {
            let _ = sys::set_recv_buffer_size(fd.as_fd(), n);
        }
        let (nodelay, sndbuf, rcvbuf) = if cfg.inspect_sockets {
            (
                sys::nodelay(fd.as_fd()).unwrap_or(false),
                sys::send_buffer_size(fd.as_fd()).unwrap_or(0) as u64,
                sys::recv_buffer_size(fd.as_fd()).unwrap_or(0) as u64,
            )
        } else {
            (cfg.nodelay, 0, 0)
        };
        if cfg.log_connections {
            let line = format!("[m01] accepted {peer} (fd {})\n", fd.as_raw_fd());
            eprint!("{line}");
        }
        ConnMeta {
            peer,
            fd: fd.as_raw_fd(),
            accepted_at,
            setup_ns: nanos(accepted_at.elapsed()),
            bytes_in: 0,
            bytes_out: 0,
            sndbuf,
            rcvbuf,
            nodelay,
            max_outq: 0,
            max_inq: 0,
            read_pauses: 0,
            partial_writes: 0,
        }
    }

    /// Samples the kernel queues at the moment reading pauses.
    pub(crate) fn sample_queues(&self, fd: &OwnedFd, meta: &mut ConnMeta) {
        if self.config.inspect_sockets {
            meta.max_outq = meta.max_outq.max(sys::outq(fd.as_fd()).unwrap_or(0) as u64);
            meta.max_inq = meta.max_inq.max(sys::inq(fd.as_fd()).unwrap_or(0) as u64);
        }
    }

    /// Closes a connection (`shutdown(SHUT_WR)` first when `graceful` or
    /// [`EchoConfig::fin_before_close`], unless `write_shut` says it was already done), counts
    /// and records it. The observer hears `shutdown_write` and `closing` before the `close`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn close_connection(
        &mut self,
        fd: OwnedFd,
        meta: ConnMeta,
        reason: CloseReason,
        graceful: bool,
        write_shut: bool,
        observer: &mut dyn ConnectionObserver,
    ) {
        let t = Instant::now();
        if (graceful || self.config.fin_before_close)
            && !write_shut
            && reason != CloseReason::Aborted
        {
            // FIN after whatever is queued. ENOTCONN if the peer is already gone: ignore.
            if sys::shutdown(fd.as_fd(), Shutdown::Write).is_ok() {
                observer.shutdown_write(fd.as_fd(), Instant::now());
            }
        }
        if reason == CloseReason::Aborted {
            // SO_LINGER {on, 0}: close discards the queues and sends RST.
            let _ = sys::set_linger(fd.as_fd(), Some(Duration::ZERO));
        }
        observer.closing(fd.as_fd(), reason, Instant::now());
        let _ = sys::close(fd);
        let teardown_ns = nanos(t.elapsed());
        self.fd_closed();
        self.counters.closed_one(reason);
        if self.config.log_connections {
            let line = format!(
                "[m01] closed {} ({reason:?}, {} bytes in, {} out)\n",
                meta.peer, meta.bytes_in, meta.bytes_out
            );
            eprint!("{line}");
        }
        let record = ConnRecord {
            peer: meta.peer,
            fd: meta.fd,
            accepted_at_us: micros(meta.accepted_at.saturating_duration_since(self.started)),
            setup_ns: meta.setup_ns,
            teardown_ns,
            lifetime_us: micros(meta.accepted_at.elapsed()),
            bytes_in: meta.bytes_in,
            bytes_out: meta.bytes_out,
            sndbuf: meta.sndbuf,
            rcvbuf: meta.rcvbuf,
            nodelay: meta.nodelay,
            max_outq: meta.max_outq,
            max_inq: meta.max_inq,
            read_pauses: meta.read_pauses,
            partial_writes: meta.partial_writes,
            reason,
        };
        if self.config.record_limit == 0 {
            self.records_dropped += 1;
            return;
        }
        if self.records.len() == self.config.record_limit {
            self.records.pop_front();
            self.records_dropped += 1;
        }
        self.records.push_back(record);
    }

    /// Closes a server-owned descriptor (listener, pipe, reserve), counted.
    pub(crate) fn close_own(&mut self, fd: OwnedFd) {
        let _ = sys::close(fd);
        self.fd_closed();
    }

    /// `accept4` hit `EMFILE`/`ENFILE`: the reserve-descriptor trick. Frees the reserve, accepts
    /// the pending connection into the freed slot, closes it (the client gets EOF instead of
    /// waiting in the queue forever), takes the reserve back.
    ///
    /// `Some(true)`: one connection shed, try accepting again; `Some(false)`: the queue was
    /// empty; `None`: the trick did not help (no reserve, or still out of descriptors, as with a
    /// system-wide `ENFILE`): back off.
    pub(crate) fn shed_with_reserve(
        &mut self,
        listener: &OwnedFd,
        reserve: &mut Option<OwnedFd>,
        nonblocking: bool,
    ) -> Option<bool> {
        self.counters.inc(&self.counters.fd_limit_hits);
        let spare = reserve.take()?;
        self.close_own(spare);
        let outcome = match sys::accept4(listener.as_fd(), nonblocking) {
            Ok((fd, peer)) => {
                if self.config.log_connections {
                    eprintln!("[m01] out of descriptors: shed {peer}");
                }
                let _ = sys::close(fd);
                self.counters.inc(&self.counters.shed);
                Some(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(false),
            Err(_) => None,
        };
        match sys::open_dev_null() {
            Ok(fd) => {
                self.fd_opened();
                *reserve = Some(fd);
                outcome
            }
            Err(_) => None,
        }
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
