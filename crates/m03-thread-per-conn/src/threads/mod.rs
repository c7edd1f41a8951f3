//! The thread-per-connection driver: an acceptor thread and one named OS thread per connection.
//!
//! ```text
//!  run() (the acceptor)                                    conn-N thread (stack: stack_size)
//!  ───────────────────                                     ──────────────────────────────────
//!  poll([wake pipe, listener])                             catch_unwind {
//!  accept4 → OwnedFd (blocking socket)                       session = factory.new_session()
//!  live threads ≥ max_threads? → refusal, close              loop: send pending (SO_SNDTIMEO)
//!  Arc<OwnedFd> → socket registry (for shutdown wake-ups)          state? Closing/Closed → stop
//!  Builder::new().name("conn-N").stack_size(..).spawn ──▶          SO_RCVTIMEO ← poll_timeout()
//!      spawn failed (EAGAIN) → refusal, close, counted             recv → handle_input / eof
//!  reap: join threads that announced their exit          }  panic → counted, connection closed
//! ```
//!
//! **Passing the connection safely**: the thread receives a [`ConnContext`] *by move*: its id, the
//! peer address and an `Arc<OwnedFd>` (one more clone of which sits in the socket registry so that
//! shutdown can wake a thread blocked in `recv`). The descriptor is closed exactly once, when the
//! last `Arc` goes — never while another thread might still use the number. Shared state (counters,
//! logger, flags) is one `Arc<Shared>`; nothing is passed as a raw integer.
//!
//! **Graceful shutdown** ([`ShutdownHandle::shutdown`] or SIGINT/SIGTERM): the acceptor stops
//! accepting and closes the listener, sets the *draining* flag (each thread then calls
//! [`Session::begin_shutdown`](crate::Session::begin_shutdown)), wakes every thread blocked in
//! `recv` with `shutdown(SHUT_RD)` (the recv returns 0), waits up to
//! [`ThreadConfig::shutdown_grace`] for threads to finish, then forces the rest with
//! `shutdown(SHUT_RDWR)` (a blocked `send` fails with `EPIPE`) and joins every thread.
//!
//! **Thread pool precursor**: [`ThreadMode::Prespawned`] starts N parked workers that take
//! connections from a bounded channel instead of spawning per connection (compared in the
//! `pool_vs_spawn` experiment); milestone 6 grows this into a real pool.

mod conn;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys::{self, PollFd, signal};
use serde::Serialize;

use crate::log::{LogConfig, LogStats, Logger, lock_timed};
use crate::session::{CloseReason, SessionFactory};
use crate::stats::{self, Counters, SlotRegistry, ThreadStats, raise};

/// Default stack size for connection threads: 128 KiB.
///
/// The `stack_memory` experiment shows a thread that serves echo touches ~10–20 KiB of its
/// stack; only touched pages are resident, but the reservation is address space, and the
/// `stack_overflow` experiment shows what happens when it is too small (guard page → SIGSEGV →
/// the whole process dies). 128 KiB leaves a wide margin for protocol cores with deeper call
/// chains (HTTP) while 10,000 threads reserve only 1.25 GiB instead of std's default 2 MiB ×
/// 10,000 = 20 GiB.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;
/// Default cap on live connection threads.
pub const DEFAULT_MAX_THREADS: usize = 10_000;
/// Default listen backlog.
pub const DEFAULT_BACKLOG: i32 = 1024;
/// Default initial read buffer.
pub const DEFAULT_READ_BUFFER: usize = 16 * 1024;
/// Default grace period before shutdown forces sockets shut.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Default `SO_SNDTIMEO`: how long one blocked `send` waits before the thread re-checks
/// deadlines and the shutdown flag.
pub const DEFAULT_WRITE_TICK: Duration = Duration::from_millis(200);
/// How often the acceptor wakes to reap finished threads when idle.
const REAP_INTERVAL: Duration = Duration::from_millis(50);
/// Most connections accepted per wake-up before the acceptor reaps again.
const ACCEPT_BATCH: usize = 64;

/// How connections get a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ThreadMode {
    /// Spawn one thread per accepted connection (this milestone's model).
    PerConnection,
    /// The thread-pool precursor: `workers` threads spawned up front take connections from a
    /// channel holding at most `queue` waiting connections; a full queue means refusal.
    Prespawned {
        /// Worker threads.
        workers: usize,
        /// Accepted connections that may wait for a worker.
        queue: usize,
    },
}

/// Configuration of a [`ThreadServer`].
#[derive(Debug, Clone)]
pub struct ThreadConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// Stack size of each connection thread ([`DEFAULT_STACK_SIZE`]).
    pub stack_size: usize,
    /// Cap on live connection threads: connection number `max_threads + 1` is refused.
    pub max_threads: usize,
    /// Initial read buffer; it grows up to the session's `input_limit`.
    pub read_buffer: usize,
    /// How long graceful shutdown waits before forcing sockets shut.
    pub shutdown_grace: Duration,
    /// The crate's own bounded logger.
    pub log: LogConfig,
    /// Spawn per connection, or a pre-spawned set of workers.
    pub mode: ThreadMode,
    /// `SO_SNDTIMEO` on connection sockets ([`DEFAULT_WRITE_TICK`]).
    pub write_tick: Duration,
    /// Read each exiting thread's `/proc/thread-self` context switches and CPU into the stats.
    pub sample_threads: bool,
    /// Run connections on someone else's threads (milestone 6's pool) instead of [`mode`]'s.
    ///
    /// [`mode`]: ThreadConfig::mode
    pub executor: Option<Arc<dyn ConnectionExecutor>>,
}

/// Runs connection jobs on threads a [`ThreadServer`] does not own: the seam through which
/// milestone 6's thread pool drives the same accept loop, the same session driver and the same
/// statistics as this milestone's threads.
pub trait ConnectionExecutor: Send + Sync + std::fmt::Debug + 'static {
    /// Runs `job` soon on some thread, or drops it when there is no capacity: a dropped job
    /// refuses its connection (`SessionFactory::refusal`, counted).
    fn execute(&self, job: ConnectionJob);

    /// A short name for logs (`pool`).
    fn name(&self) -> &'static str;
}

/// One accepted connection, to be served to completion by [`ConnectionJob::run`].
///
/// Dropping a job without running it (no capacity, or an executor cancelling queued work at
/// shutdown) refuses the connection: the factory's refusal bytes (HTTP: 503) best effort, close,
/// counted as refused. No connection is ever lost track of.
pub struct ConnectionJob(Box<dyn FnOnce(bool) + Send>);

impl ConnectionJob {
    /// Serves the connection on the calling thread; returns when it is closed.
    pub fn run(mut self) {
        let f = std::mem::replace(&mut self.0, Box::new(|_| {}));
        f(true);
    }
}

impl Drop for ConnectionJob {
    fn drop(&mut self) {
        let f = std::mem::replace(&mut self.0, Box::new(|_| {}));
        f(false);
    }
}

impl std::fmt::Debug for ConnectionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionJob")
    }
}

impl ThreadConfig {
    /// Defaults for everything but the address.
    pub fn new(listen: SocketAddr) -> Self {
        ThreadConfig {
            listen,
            backlog: DEFAULT_BACKLOG,
            stack_size: DEFAULT_STACK_SIZE,
            max_threads: DEFAULT_MAX_THREADS,
            read_buffer: DEFAULT_READ_BUFFER,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            log: LogConfig::default(),
            mode: ThreadMode::PerConnection,
            write_tick: DEFAULT_WRITE_TICK,
            sample_threads: true,
            executor: None,
        }
    }
}

/// State shared by the acceptor and every connection thread (one `Arc`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ThreadConfig,
    pub(crate) counters: Counters,
    pub(crate) slots: Arc<SlotRegistry>,
    /// Connection sockets by id: the shutdown path's way to wake blocked threads.
    pub(crate) sockets: Mutex<HashMap<u64, Arc<OwnedFd>>>,
    /// Set once shutdown began: threads finish their sessions politely.
    pub(crate) draining: AtomicBool,
    /// Set when the grace period ran out.
    pub(crate) forced: AtomicBool,
    /// Ids of threads that have exited and wait to be joined.
    pub(crate) finished: Mutex<Vec<u64>>,
    pub(crate) logger: Logger,
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn register(&self, id: u64, fd: Arc<OwnedFd>) {
        let c = &self.counters;
        lock_timed(
            &self.sockets,
            &c.sockets_lock_wait_ns,
            &c.sockets_lock_contended,
        )
        .insert(id, fd);
    }

    pub(crate) fn unregister(&self, id: u64) -> Option<Arc<OwnedFd>> {
        let c = &self.counters;
        lock_timed(
            &self.sockets,
            &c.sockets_lock_wait_ns,
            &c.sockets_lock_contended,
        )
        .remove(&id)
    }

    fn shutdown_all(&self, how: Shutdown) -> usize {
        let c = &self.counters;
        let socks: Vec<Arc<OwnedFd>> = lock_timed(
            &self.sockets,
            &c.sockets_lock_wait_ns,
            &c.sockets_lock_contended,
        )
        .values()
        .cloned()
        .collect();
        for s in &socks {
            let _ = sys::shutdown(s.as_fd(), how);
        }
        socks.len()
    }

    fn snapshot(&self) -> ThreadStats {
        stats::snapshot(
            &self.counters,
            &self.slots,
            self.logger.stats(),
            self.started.elapsed().as_secs_f64(),
        )
    }

    /// Counts a closed connection.
    pub(crate) fn closed(&self, reason: CloseReason) {
        self.counters.closes[reason.index()].fetch_add(1, Ordering::Relaxed);
        self.counters
            .connections_live
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Stops a [`ThreadServer`]: `Clone + Send + Sync`.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    inner: Arc<Wake>,
}

#[derive(Debug)]
struct Wake {
    requested: AtomicBool,
    write: OwnedFd,
    /// `shutdown_signal_count()` when this handle took the signals (`u64::MAX`: it did not).
    signal_base: AtomicU64,
}

impl Drop for Wake {
    fn drop(&mut self) {
        signal::clear_wake_fd(self.write.as_raw_fd());
    }
}

impl ShutdownHandle {
    /// A fresh handle and the read end of its wake pipe (non-blocking), for drivers that wait
    /// on the pipe themselves (milestone 9's event loops register it with epoll).
    pub fn with_wake_pipe() -> io::Result<(ShutdownHandle, OwnedFd)> {
        let (wake_read, wake_write) = sys::pipe_nonblocking()?;
        Ok((
            ShutdownHandle {
                inner: Arc::new(Wake {
                    requested: AtomicBool::new(false),
                    write: wake_write,
                    signal_base: AtomicU64::new(u64::MAX),
                }),
            },
            wake_read,
        ))
    }

    /// Requests a graceful shutdown (wakes the acceptor through its self-pipe).
    pub fn shutdown(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        let _ = sys::write(self.inner.write.as_fd(), &[1]);
    }

    /// Whether shutdown was requested (by [`shutdown`](Self::shutdown) or a signal).
    pub fn is_shutdown(&self) -> bool {
        if self.inner.requested.load(Ordering::SeqCst) {
            return true;
        }
        let base = self.inner.signal_base.load(Ordering::SeqCst);
        base != u64::MAX && signal::shutdown_signal_count() > base
    }

    /// Routes SIGINT and SIGTERM to this server (self-pipe handler from milestone 1).
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        self.inner
            .signal_base
            .store(signal::shutdown_signal_count(), Ordering::SeqCst);
        signal::install_shutdown_handler(self.inner.write.as_fd())
    }
}

/// Reads the server's statistics while it runs: `Clone + Send + Sync`.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    shared: Arc<Shared>,
}

impl StatsHandle {
    /// Counters now, thread-local slots merged, `/proc` figures read.
    pub fn snapshot(&self) -> ThreadStats {
        self.shared.snapshot()
    }

    /// [`snapshot`](Self::snapshot) in Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.snapshot().prometheus()
    }
}

/// What [`ThreadServer::run`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// Final statistics.
    pub stats: ThreadStats,
    /// Seconds from the shutdown request to the last join.
    pub shutdown_s: f64,
    /// Whether the grace period ran out and sockets were forced shut.
    pub forced: bool,
    /// Threads that could not be joined (0 unless a thread is stuck outside any socket call).
    pub unjoined: usize,
    /// Log counters after the logger was flushed.
    pub log: LogStats,
}

/// The thread-per-connection server. See the [module docs](self).
#[derive(Debug)]
pub struct ThreadServer {
    listener: OwnedFd,
    wake_read: OwnedFd,
    handle: ShutdownHandle,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    _log_guard: LogGuard,
}

impl ThreadServer {
    /// Creates the listening socket (blocking accept is not used: the acceptor polls the
    /// listener and its wake pipe) and starts the logger.
    pub fn bind(config: ThreadConfig) -> io::Result<ThreadServer> {
        let listener = sys::tcp_socket(&config.listen, true)?;
        sys::set_reuseaddr(listener.as_fd(), true)?;
        sys::bind(listener.as_fd(), &config.listen)?;
        sys::listen(listener.as_fd(), config.backlog)?;
        let local_addr = sys::getsockname(listener.as_fd())?;
        let (handle, wake_read) = ShutdownHandle::with_wake_pipe()?;
        let logger = Logger::start(config.log.clone())?;
        let logger_guard = logger.clone();
        logger.info(format_args!(
            "listening on {local_addr} ({:?}, stack {} KiB, max {} threads)",
            config.mode,
            config.stack_size / 1024,
            config.max_threads
        ));
        Ok(ThreadServer {
            listener,
            wake_read,
            handle,
            shared: Arc::new(Shared {
                config,
                counters: Counters::default(),
                slots: Arc::new(SlotRegistry::default()),
                sockets: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
                forced: AtomicBool::new(false),
                finished: Mutex::new(Vec::new()),
                logger,
                started: Instant::now(),
            }),
            local_addr,
            _log_guard: LogGuard(logger_guard),
        })
    }

    /// The bound address (the kernel's choice for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`run`](Self::run).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// A handle on the live statistics.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The server's logger (to add lines of one's own).
    pub fn logger(&self) -> Logger {
        self.shared.logger.clone()
    }

    /// Accepts until shutdown; one named thread per connection driving a session from
    /// `factory`; returns after every connection thread was joined (or the grace period forced
    /// them).
    pub fn run<F: SessionFactory>(self, factory: Arc<F>) -> io::Result<ThreadReport> {
        let ThreadServer {
            listener,
            wake_read,
            handle,
            shared,
            local_addr: _,
            _log_guard,
        } = self;
        let mut acceptor = Acceptor {
            shared: Arc::clone(&shared),
            factory,
            handles: HashMap::new(),
            next_id: 1,
            pool: None,
        };
        if let ThreadMode::Prespawned { workers, queue } = shared.config.mode {
            acceptor.start_pool(workers, queue)?;
        }
        let mut buf = [0u8; 64];
        while !handle.is_shutdown() {
            acceptor.reap();
            let mut fds = [
                PollFd::new(wake_read.as_fd(), sys::POLLIN),
                PollFd::new(listener.as_fd(), sys::POLLIN),
            ];
            match sys::poll(&mut fds, Some(REAP_INTERVAL)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if fds[0].revents() != 0 {
                while matches!(sys::read(wake_read.as_fd(), &mut buf), Ok(n) if n > 0) {}
            }
            if fds[1].revents() != 0 {
                for _ in 0..ACCEPT_BATCH {
                    match sys::accept4(listener.as_fd(), false) {
                        Ok((fd, peer)) => acceptor.dispatch(fd, peer),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            shared
                                .counters
                                .accept_errors
                                .fetch_add(1, Ordering::Relaxed);
                            shared.logger.warn(format_args!("accept4: {e}"));
                            // EMFILE/ENFILE: back off instead of spinning on a full table.
                            thread::sleep(Duration::from_millis(5));
                            break;
                        }
                    }
                }
            }
        }
        let t = Instant::now();
        drop(listener);
        Ok(acceptor.shutdown(t))
    }
}

/// Stops the logger's writer thread when a server is dropped without running.
#[derive(Debug)]
struct LogGuard(Logger);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// Everything a connection thread receives, by move.
#[derive(Debug)]
pub(crate) struct ConnContext {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) fd: Arc<OwnedFd>,
}

struct Acceptor<F> {
    shared: Arc<Shared>,
    factory: Arc<F>,
    handles: HashMap<u64, JoinHandle<()>>,
    next_id: u64,
    pool: Option<Pool>,
}

struct Pool {
    tx: Option<SyncSender<ConnContext>>,
    workers: Vec<JoinHandle<()>>,
}

impl<F: SessionFactory> Acceptor<F> {
    fn start_pool(&mut self, workers: usize, queue: usize) -> io::Result<()> {
        let (tx, rx) = mpsc::sync_channel::<ConnContext>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers.max(1) {
            let shared = Arc::clone(&self.shared);
            let factory = Arc::clone(&self.factory);
            let rx = Arc::clone(&rx);
            let h = thread::Builder::new()
                .name(format!("pool-{w}"))
                .stack_size(self.shared.config.stack_size)
                .spawn(move || conn::worker_thread(&shared, &*factory, &rx))?;
            let c = &self.shared.counters;
            c.spawned.fetch_add(1, Ordering::Relaxed);
            let live = c.threads_live.fetch_add(1, Ordering::Relaxed) + 1;
            raise(&c.threads_peak, live);
            handles.push(h);
        }
        self.pool = Some(Pool {
            tx: Some(tx),
            workers: handles,
        });
        Ok(())
    }

    /// Hands a new connection to a thread, or refuses it.
    fn dispatch(&mut self, fd: OwnedFd, peer: SocketAddr) {
        let shared = &*self.shared;
        let c = &shared.counters;
        c.accepted.fetch_add(1, Ordering::Relaxed);
        let live = c.connections_live.fetch_add(1, Ordering::Relaxed) + 1;
        raise(&c.connections_peak, live);
        let id = self.next_id;
        self.next_id += 1;
        let fd = Arc::new(fd);
        if let Some(executor) = &shared.config.executor {
            shared.register(id, Arc::clone(&fd));
            let ctx = ConnContext {
                id,
                peer,
                fd: Arc::clone(&fd),
            };
            drop(fd);
            let job_shared = Arc::clone(&self.shared);
            let factory = Arc::clone(&self.factory);
            let job = ConnectionJob(Box::new(move |run: bool| {
                if run {
                    conn::executor_job(&job_shared, &*factory, ctx);
                } else {
                    conn::abandon(&job_shared, &*factory, ctx);
                }
            }));
            executor.execute(job); // or drops it: a refusal (see `ConnectionJob`)
            return;
        }
        if let Some(pool) = &self.pool {
            let Some(tx) = &pool.tx else { return };
            shared.register(id, Arc::clone(&fd));
            let ctx = ConnContext {
                id,
                peer,
                fd: Arc::clone(&fd),
            };
            match tx.try_send(ctx) {
                Ok(()) => {}
                Err(TrySendError::Full(ctx) | TrySendError::Disconnected(ctx)) => {
                    drop(ctx);
                    shared.unregister(id);
                    c.refused_cap.fetch_add(1, Ordering::Relaxed);
                    shared.logger.warn(format_args!(
                        "conn {id} from {peer}: pool queue full, refused"
                    ));
                    self.refuse(fd);
                }
            }
            return;
        }
        if c.threads_live.load(Ordering::Relaxed) >= shared.config.max_threads as u64 {
            c.refused_cap.fetch_add(1, Ordering::Relaxed);
            shared.logger.warn(format_args!(
                "conn {id} from {peer}: {} threads alive (cap), refused",
                shared.config.max_threads
            ));
            self.refuse(fd);
            return;
        }
        shared.register(id, Arc::clone(&fd));
        let ctx = ConnContext {
            id,
            peer,
            fd: Arc::clone(&fd),
        };
        let live = c.threads_live.fetch_add(1, Ordering::Relaxed) + 1;
        let t = Instant::now();
        let thread_shared = Arc::clone(&self.shared);
        let factory = Arc::clone(&self.factory);
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(shared.config.stack_size)
            .spawn(move || conn::conn_thread(&thread_shared, &*factory, ctx));
        match spawned {
            Ok(h) => {
                c.spawn_ns
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                c.spawned.fetch_add(1, Ordering::Relaxed);
                raise(&c.threads_peak, live);
                shared
                    .logger
                    .debug(format_args!("spawned conn-{id} for {peer}"));
                self.handles.insert(id, h);
            }
            Err(e) => {
                // The closure (and its clone of the Arc) was dropped; ours is still open.
                c.threads_live.fetch_sub(1, Ordering::Relaxed);
                c.spawn_failures.fetch_add(1, Ordering::Relaxed);
                shared.unregister(id);
                shared.logger.warn(format_args!(
                    "conn {id} from {peer}: thread creation failed ({e}), refused"
                ));
                self.refuse(fd);
            }
        }
    }

    /// Best-effort refusal: the factory's bytes without blocking, then close.
    fn refuse(&self, fd: Arc<OwnedFd>) {
        conn::refuse(&self.shared, &*self.factory, fd);
    }

    /// Joins the threads that announced their exit.
    fn reap(&mut self) {
        let done: Vec<u64> = {
            let mut f = self
                .shared
                .finished
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *f)
        };
        for id in done {
            if let Some(h) = self.handles.remove(&id) {
                let _ = h.join();
                self.shared.counters.joined.fetch_add(1, Ordering::Relaxed);
                self.shared.logger.debug(format_args!("joined conn-{id}"));
            }
        }
    }

    fn shutdown(mut self, t: Instant) -> ThreadReport {
        let shared = Arc::clone(&self.shared);
        let c = &shared.counters;
        shared.draining.store(true, Ordering::SeqCst);
        if let Some(pool) = &mut self.pool {
            pool.tx = None; // workers exit once the queue is empty
        }
        let woken = shared.shutdown_all(Shutdown::Read);
        shared.logger.info(format_args!(
            "shutdown: listener closed, {woken} connections woken, {} threads alive",
            c.threads_live.load(Ordering::Relaxed)
        ));
        let deadline = t + shared.config.shutdown_grace;
        // Threads we own, or, under an executor, connections its threads still serve.
        let busy = || {
            c.threads_live.load(Ordering::SeqCst) > 0
                || (shared.config.executor.is_some()
                    && c.connections_live.load(Ordering::SeqCst) > 0)
        };
        while busy() && Instant::now() < deadline {
            self.reap();
            thread::sleep(Duration::from_millis(1));
        }
        let mut forced = false;
        if busy() {
            forced = true;
            shared.forced.store(true, Ordering::SeqCst);
            let n = shared.shutdown_all(Shutdown::Both);
            c.forced_shutdowns.fetch_add(n as u64, Ordering::Relaxed);
            shared.logger.warn(format_args!(
                "shutdown: grace period over, {n} sockets forced shut"
            ));
        }
        let mut unjoined = 0;
        for (_, h) in self.handles.drain() {
            if h.join().is_ok() {
                c.joined.fetch_add(1, Ordering::Relaxed);
            } else {
                unjoined += 1;
            }
        }
        if let Some(pool) = self.pool.take() {
            for h in pool.workers {
                if h.join().is_ok() {
                    c.joined.fetch_add(1, Ordering::Relaxed);
                } else {
                    unjoined += 1;
                }
            }
        }
        shared.finished.lock().map(|mut f| f.clear()).unwrap_or(());
        shared.logger.info(format_args!(
            "shutdown complete in {:.1} ms: {} threads joined",
            t.elapsed().as_secs_f64() * 1e3,
            c.joined.load(Ordering::Relaxed)
        ));
        shared.logger.shutdown();
        let stats = shared.snapshot();
        ThreadReport {
            log: stats.log,
            stats,
            shutdown_s: t.elapsed().as_secs_f64(),
            forced,
            unjoined,
        }
    }
}
