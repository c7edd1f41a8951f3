//! The server: `workers` event loops on threads, sharing one listener (milestone 9) or each
//! with its own `SO_REUSEPORT` listener (what milestone 10 builds on).
//!
//! ```text
//!  shared listener:  listen(fd) ─▶ loop 0 ┐ every loop registers the same fd with
//!                                  loop 1 ┘ EPOLLEXCLUSIVE: one is woken per connection
//!  reuseport:        listen(fd0) ─▶ loop 0;  listen(fd1) ─▶ loop 1   (the kernel hashes
//!                                                                     connections to sockets)
//!  shutdown:         ShutdownHandle (signal or call) ─▶ wake pipe ─▶ every loop: close listeners,
//!                    begin_shutdown on its sessions, keep turning until empty or grace expired
//! ```
//!
//! Loop 0 runs on the thread that calls [`EpollServer::run`]: with one worker the whole
//! server is one thread.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{SessionFactory, ShutdownHandle};
use socket2::{Domain, Protocol, Socket, Type};

use crate::event_loop::{EventLoop, LoopConfig};
use crate::reactor::{EpollReactor, MioReactor, Reactor};
use crate::stats::{LoopSnapshot, LoopStats};

/// Which reactor the loops use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactorKind {
    /// Raw epoll (this milestone's lesson).
    Epoll,
    /// mio (epoll here, kqueue on macOS/BSD); edge-triggered.
    Mio,
}

impl ReactorKind {
    /// Raw epoll on Linux (the lesson), mio elsewhere (where epoll does not exist).
    pub const PLATFORM_DEFAULT: ReactorKind = if cfg!(target_os = "linux") {
        ReactorKind::Epoll
    } else {
        ReactorKind::Mio
    };
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: the kernel picks).
    pub listen: SocketAddr,
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// Event loops (threads).
    pub workers: usize,
    /// One `SO_REUSEPORT` listener per loop instead of one shared listener.
    pub reuseport: bool,
    /// Per-loop behaviour.
    pub loop_config: LoopConfig,
    /// Reactor implementation.
    pub reactor: ReactorKind,
    /// After a shutdown request, how long sessions get to finish before being closed.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// One loop, shared listener, the platform's reactor (epoll on Linux), defaults.
    pub fn new(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            backlog: 4096,
            workers: 1,
            reuseport: false,
            loop_config: LoopConfig::default(),
            reactor: ReactorKind::PLATFORM_DEFAULT,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Reads the loops' statistics while they run: `Clone + Send + Sync`.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    loops: Arc<Vec<Arc<LoopStats>>>,
}

impl StatsHandle {
    /// One snapshot per loop.
    pub fn per_loop(&self) -> Vec<LoopSnapshot> {
        self.loops.iter().map(|s| s.snapshot()).collect()
    }

    /// All loops merged.
    pub fn snapshot(&self) -> LoopSnapshot {
        LoopSnapshot::merged(&self.per_loop())
    }
}

/// What [`EpollServer::run`] returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerReport {
    /// Final statistics per loop.
    pub loops: Vec<LoopSnapshot>,
    /// Seconds from the shutdown request until the last loop finished.
    pub shutdown_s: f64,
    /// Connections closed by force when the grace period ran out.
    pub forced: usize,
}

/// Bound listeners and loop statistics, ready to [`run`](EpollServer::run).
#[derive(Debug)]
pub struct EpollServer {
    config: ServerConfig,
    listeners: Vec<OwnedFd>,
    local_addr: SocketAddr,
    handle: ShutdownHandle,
    wake_read: OwnedFd,
    stats: Vec<Arc<LoopStats>>,
}

/// A listening TCP socket: `SO_REUSEADDR`, optionally `SO_REUSEPORT`, non-blocking.
pub fn listener(addr: SocketAddr, backlog: i32, reuseport: bool) -> io::Result<OwnedFd> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(OwnedFd::from(socket))
}

fn local_addr_of(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let socket = Socket::from(fd.try_clone()?);
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))
}

impl EpollServer {
    /// Binds the listener(s). With `reuseport`, the first socket picks the port (if 0) and the
    /// others join it.
    pub fn bind(config: ServerConfig) -> io::Result<EpollServer> {
        let workers = config.workers.max(1);
        let first = listener(config.listen, config.backlog, config.reuseport)?;
        let local_addr = local_addr_of(&first)?;
        let mut listeners = vec![first];
        if config.reuseport {
            for _ in 1..workers {
                listeners.push(listener(local_addr, config.backlog, true)?);
            }
        }
        let (handle, wake_read) = ShutdownHandle::with_wake_pipe()?;
        Ok(EpollServer {
            stats: (0..workers)
                .map(|_| Arc::new(LoopStats::default()))
                .collect(),
            config: ServerConfig { workers, ..config },
            listeners,
            local_addr,
            handle,
            wake_read,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops [`run`](Self::run) (also from a signal, once installed).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// The loops' live statistics (valid before and during `run`).
    pub fn stats(&self) -> StatsHandle {
        StatsHandle {
            loops: Arc::new(self.stats.clone()),
        }
    }

    /// Runs the loops until shutdown; loop 0 on this thread.
    pub fn run<F: SessionFactory>(self, factory: Arc<F>) -> io::Result<ServerReport> {
        let EpollServer {
            config,
            listeners,
            handle,
            wake_read,
            stats,
            ..
        } = self;
        let shared = listeners.len() == 1 && config.workers > 1;
        let mut plans = Vec::new();
        for (i, stat) in stats.iter().enumerate() {
            let listener = if config.reuseport {
                listeners[i].try_clone()?
            } else {
                listeners[0].try_clone()?
            };
            plans.push(LoopPlan {
                index: i,
                listener,
                exclusive: shared,
                wake: wake_read.try_clone()?,
                stats: Arc::clone(stat),
            });
        }
        drop(listeners);
        let mut plans = plans.into_iter();
        let first = plans.next().ok_or_else(|| io::Error::other("no loop"))?;
        let mut threads = Vec::new();
        for plan in plans {
            let factory = Arc::clone(&factory);
            let handle = handle.clone();
            let config = config.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("loop-{}", plan.index))
                    .spawn(move || run_loop(&config, plan, factory, &handle))?,
            );
        }
        let mut results = vec![run_loop(&config, first, Arc::clone(&factory), &handle)];
        for t in threads {
            results.push(
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("event loop thread panicked"))),
            );
        }
        let mut report = ServerReport {
            loops: Vec::new(),
            shutdown_s: 0.0,
            forced: 0,
        };
        for r in results {
            let (snapshot, shutdown_s, forced) = r?;
            report.loops.push(snapshot);
            report.shutdown_s = report.shutdown_s.max(shutdown_s);
            report.forced += forced;
        }
        Ok(report)
    }
}

struct LoopPlan {
    index: usize,
    listener: OwnedFd,
    exclusive: bool,
    wake: OwnedFd,
    stats: Arc<LoopStats>,
}

/// The wake pipe's user id.
const WAKE: u64 = 0;

fn run_loop<F: SessionFactory>(
    config: &ServerConfig,
    plan: LoopPlan,
    factory: Arc<F>,
    handle: &ShutdownHandle,
) -> io::Result<(LoopSnapshot, f64, usize)> {
    match config.reactor {
        ReactorKind::Epoll => {
            let lp = EventLoop::with_reactor(config.loop_config, factory, EpollReactor::new()?)?;
            drive(config, plan, lp, handle)
        }
        ReactorKind::Mio => {
            let lp = EventLoop::with_reactor(config.loop_config, factory, MioReactor::new()?)?;
            drive(config, plan, lp, handle)
        }
    }
}

fn drive<F: SessionFactory, R: Reactor>(
    config: &ServerConfig,
    plan: LoopPlan,
    mut lp: EventLoop<F, R>,
    handle: &ShutdownHandle,
) -> io::Result<(LoopSnapshot, f64, usize)> {
    lp.set_stats(plan.stats);
    lp.add_listener(plan.listener, plan.exclusive)?;
    lp.add_user_fd(plan.wake.as_fd(), WAKE)?;
    lp.sample_cpu(Instant::now());
    while !handle.is_shutdown() {
        lp.turn(Some(Duration::from_secs(1)))?;
        // The wake pipe is not drained: shutdown is final, and every loop must see it.
        lp.take_user_events().for_each(drop);
    }
    let requested = Instant::now();
    lp.remove_user_fd(plan.wake.as_fd())?;
    lp.begin_shutdown(requested);
    while lp.connections() > 0 && requested.elapsed() < config.shutdown_grace {
        lp.turn(Some(Duration::from_millis(20)))?;
    }
    let forced = lp.force_close();
    lp.sample_cpu(Instant::now());
    Ok((
        lp.stats().snapshot(),
        requested.elapsed().as_secs_f64(),
        forced,
    ))
}
