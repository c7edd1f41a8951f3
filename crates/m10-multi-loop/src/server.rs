//! The multi-loop server: one m09 [`EventLoop`] per core, each on its own pinned thread with
//! its own `SO_REUSEPORT` listener, connection table and mailbox.
//!
//! ```text
//!            kernel: SO_REUSEPORT hash(4-tuple) ─┬─▶ listener 0 ─▶ loop 0 (CPU a) ─┐ mailbox 0 ◀─┐
//!                                                └─▶ listener 1 ─▶ loop 1 (CPU b) ─┘ mailbox 1 ◀─┤
//!  every 100 ms a loop compares its connection count with the others' (relaxed loads of    │
//!  their single-writer gauges); below the mean by > threshold, it sends Steal{n} to the    │
//!  busiest, which detaches n connections (socket + session + unconsumed input) and sends   │
//!  each back as Adopt ───────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The request path touches only the loop's own memory: its epoll set, connection slab, timer
//! wheel, read buffer and counters. Shared state is read (other loops' gauges, every balancing
//! interval) or written through the mailboxes (migrations, tasks, shutdown); no mutex exists
//! in this crate or in m09.
//!
//! [`Distribution::Acceptor`] replaces the per-loop listeners by one acceptor thread that
//! hands each new connection to the least loaded loop (the comparison the milestone asks for).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use m03_thread_per_conn::{Session, SessionFactory, ShutdownHandle};
use m09_event_loop::server::listener;
use m09_event_loop::{Detached, EventLoop, LoopConfig, LoopSnapshot, LoopStats, sys};

use crate::affinity;
use crate::balance::{BalanceConfig, plan_steal};
use crate::mailbox::{Mailbox, SendError};
use crate::stats::{LoopPlace, MultiSnapshot, MultiStats};

/// How new connections reach the loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// One `SO_REUSEPORT` listener per loop: the kernel spreads connections.
    ReusePort,
    /// One listener, one acceptor thread handing connections to the least loaded loop.
    Acceptor,
}

/// Configuration of a [`MultiLoopServer`].
#[derive(Debug, Clone)]
pub struct MultiConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `listen(2)` backlog (per listener).
    pub backlog: i32,
    /// Event loops (one per core is the point).
    pub loops: usize,
    /// Pin loop *i* to the *i*-th CPU the process may use.
    pub pin: bool,
    /// How connections are spread.
    pub distribution: Distribution,
    /// Per-loop behaviour (m09).
    pub loop_config: LoopConfig,
    /// Migration policy.
    pub balance: BalanceConfig,
    /// Undelivered messages a mailbox holds at most.
    pub mailbox_capacity: usize,
    /// After a shutdown request, how long sessions get to finish.
    pub shutdown_grace: Duration,
}

impl MultiConfig {
    /// One loop per allowed CPU, pinned, `SO_REUSEPORT`, balancing on.
    pub fn new(listen: SocketAddr) -> MultiConfig {
        let loops = affinity::allowed_cpus().map_or(1, |c| c.len().max(1));
        MultiConfig {
            listen,
            backlog: 4096,
            loops,
            pin: true,
            distribution: Distribution::ReusePort,
            loop_config: LoopConfig::default(),
            balance: BalanceConfig::default(),
            mailbox_capacity: 4096,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// What a loop can do for a cross-thread task.
pub trait LoopControl {
    /// This loop's index.
    fn index(&self) -> usize;
    /// Connections it holds now.
    fn connections(&self) -> usize;
    /// Hands up to `count` connections to loop `target`; returns how many left.
    fn migrate_to(&mut self, target: usize, count: usize) -> usize;
}

/// A closure run on a loop's thread (the cross-thread task queue).
pub type Task = Box<dyn FnOnce(&mut dyn LoopControl) + Send>;

/// What travels between loops.
enum Message<S> {
    /// Take over this connection.
    Adopt { conn: Detached<S>, sent: Instant },
    /// Give loop `thief` up to `count` connections.
    Steal {
        thief: usize,
        count: u64,
        sent: Instant,
    },
    /// Run this.
    Task { task: Task, sent: Instant },
    /// Test hook: stop this loop as if it had failed.
    Fail,
}

/// Per-loop state every thread may read. Each loop's block is cache-padded
/// ([`CachePadded`] in [`Shared::loops`]), so what one loop writes on its request path never
/// shares a cache line with another loop's; `adopting`, the one field other threads write
/// (per migration, never per request), has a padded line of its own.
#[derive(Debug, Default)]
struct LoopShared {
    stats: Arc<LoopStats>,
    multi: MultiStats,
    place: LoopPlace,
    /// Adopt messages sent to this loop that it has not yet handled: counted up by the sender
    /// before the send, down by this loop only once `adopt` has registered the connection (so
    /// it already counts in `stats.open`). Open plus adopting therefore never misses a
    /// connection on its way here (it may count one twice for a moment), which is what the
    /// acceptor's least-loaded choice needs: a count that dropped when the loop took its
    /// messages out of the mailbox, before registering them, sent the rest of a burst to it.
    adopting: CachePadded<AtomicUsize>,
}

/// The non-generic shared part (statistics, liveness, switches).
#[derive(Debug)]
struct Shared {
    loops: Vec<CachePadded<LoopShared>>,
    balancing: AtomicBool,
}

impl Shared {
    /// Adopt messages sent and not yet handled, over all loops (shutdown waits for them).
    fn in_flight(&self) -> usize {
        // Acquire: pairs with the AcqRel decrements, so a loop that reads 0 sees the adopted
        // connections in its own table.
        self.loops
            .iter()
            .map(|l| l.adopting.load(Ordering::Acquire))
            .sum()
    }

    /// Hands `conn` to loop `target` (through `mailboxes[target]`), counting it as adopting
    /// there until that loop has registered it; gives the connection back if the mailbox
    /// refuses it.
    fn send_adopt<S>(
        &self,
        mailboxes: &[Mailbox<Message<S>>],
        target: usize,
        conn: Detached<S>,
        now: Instant,
    ) -> Result<(), Detached<S>> {
        let adopting = &self.loops[target].adopting;
        // AcqRel: the count is up before the message can be seen (and handled) by the target.
        adopting.fetch_add(1, Ordering::AcqRel);
        match mailboxes[target].send(Message::Adopt { conn, sent: now }) {
            Ok(()) => Ok(()),
            Err(refused) => {
                adopting.fetch_sub(1, Ordering::AcqRel);
                match refused.into_inner() {
                    Message::Adopt { conn, .. } => Err(conn),
                    _ => unreachable!("the mailbox hands back the message it refused"),
                }
            }
        }
    }
}

/// Reads every loop's statistics: `Clone + Send + Sync`.
#[derive(Debug, Clone)]
pub struct MultiStatsHandle {
    shared: Arc<Shared>,
}

/// One loop in a report or a snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoopReport {
    /// Loop index.
    pub index: usize,
    /// Pinned CPU (−1: not pinned).
    pub cpu: i64,
    /// Whether it is running.
    pub alive: bool,
    /// Event-loop counters (m09).
    #[serde(flatten)]
    pub event_loop: LoopSnapshot,
    /// Cross-thread counters.
    pub multi: MultiSnapshot,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
}

impl MultiStatsHandle {
    /// Every loop now.
    pub fn per_loop(&self) -> Vec<LoopReport> {
        self.shared
            .loops
            .iter()
            .enumerate()
            .map(|(index, l)| LoopReport {
                index,
                cpu: l.place.cpu.load(Ordering::Relaxed),
                alive: l.place.is_alive(),
                event_loop: l.stats.snapshot(),
                multi: l.multi.snapshot(),
                error: None,
            })
            .collect()
    }

    /// The m09 counters of all loops merged.
    pub fn merged(&self) -> LoopSnapshot {
        let parts: Vec<_> = self
            .shared
            .loops
            .iter()
            .map(|l| l.stats.snapshot())
            .collect();
        LoopSnapshot::merged(&parts)
    }

    /// Open connections per loop.
    pub fn connections(&self) -> Vec<u64> {
        self.shared
            .loops
            .iter()
            .map(|l| l.stats.open.get())
            .collect()
    }

    /// The address range of each loop's cache-padded shared block (tests of the layout: no
    /// two loops' blocks may share a cache line).
    #[doc(hidden)]
    pub fn loop_blocks(&self) -> Vec<std::ops::Range<usize>> {
        self.shared
            .loops
            .iter()
            .map(|l| {
                let start = std::ptr::from_ref::<CachePadded<LoopShared>>(l) as usize;
                start..start + std::mem::size_of_val(l)
            })
            .collect()
    }

    /// Turns balancing (stealing) on or off while running.
    pub fn set_balancing(&self, on: bool) {
        self.shared.balancing.store(on, Ordering::Relaxed);
    }
}

/// What [`MultiLoopServer::run`] returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultiReport {
    /// Each loop's final counters (and error, if it failed).
    pub loops: Vec<LoopReport>,
    /// Seconds from the shutdown request to the last loop's end.
    pub shutdown_s: f64,
    /// Connections closed by force at the end of the grace period.
    pub forced: usize,
}

/// A running server's control surface (tasks, failures) — from [`MultiLoopServer::start`].
pub struct Running<S: Session + Send + 'static> {
    mailboxes: Arc<Vec<Mailbox<Message<S>>>>,
    stats: MultiStatsHandle,
    handle: ShutdownHandle,
    threads: Vec<thread::JoinHandle<LoopOutcome>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl<S: Session + Send + 'static> std::fmt::Debug for Running<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("loops", &self.mailboxes.len())
            .finish()
    }
}

impl<S: Session + Send + 'static> Running<S> {
    /// Runs `task` on loop `index`'s thread (the cross-thread task queue).
    pub fn submit(&self, index: usize, task: Task) -> Result<(), &'static str> {
        let mailbox = self.mailboxes.get(index).ok_or("no such loop")?;
        mailbox
            .send(Message::Task {
                task,
                sent: Instant::now(),
            })
            .map_err(|e| match e {
                SendError::Full(_) => "mailbox full",
                SendError::Closed(_) => "loop stopped",
            })
    }

    /// Makes loop `index` stop as if it had failed (tests of crash isolation).
    #[doc(hidden)]
    pub fn inject_failure(&self, index: usize) -> bool {
        self.mailboxes
            .get(index)
            .is_some_and(|m| m.send(Message::Fail).is_ok())
    }

    /// Statistics.
    pub fn stats(&self) -> MultiStatsHandle {
        self.stats.clone()
    }

    /// Stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Waits for every loop (after a shutdown request).
    pub fn join(self) -> MultiReport {
        let Running {
            stats,
            threads,
            acceptor,
            ..
        } = self;
        let outcomes: Vec<LoopOutcome> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| LoopOutcome::panicked()))
            .collect();
        if let Some(a) = acceptor {
            let _ = a.join();
        }
        report(&stats, outcomes)
    }
}

struct LoopOutcome {
    error: Option<String>,
    shutdown_s: f64,
    forced: usize,
}

impl LoopOutcome {
    fn panicked() -> LoopOutcome {
        LoopOutcome {
            error: Some("loop thread panicked".into()),
            shutdown_s: 0.0,
            forced: 0,
        }
    }
}

fn report(stats: &MultiStatsHandle, outcomes: Vec<LoopOutcome>) -> MultiReport {
    let mut loops = stats.per_loop();
    let mut shutdown_s: f64 = 0.0;
    let mut forced = 0;
    for (l, o) in loops.iter_mut().zip(outcomes) {
        l.error = o.error;
        shutdown_s = shutdown_s.max(o.shutdown_s);
        forced += o.forced;
    }
    MultiReport {
        loops,
        shutdown_s,
        forced,
    }
}

/// Bound listeners, ready to run. See the [module docs](self).
#[derive(Debug)]
pub struct MultiLoopServer {
    config: MultiConfig,
    listeners: Vec<OwnedFd>,
    local_addr: SocketAddr,
    handle: ShutdownHandle,
    wake_read: OwnedFd,
    shared: Arc<Shared>,
}

impl MultiLoopServer {
    /// Binds one `SO_REUSEPORT` listener per loop (or one for the acceptor).
    pub fn bind(mut config: MultiConfig) -> io::Result<MultiLoopServer> {
        config.loops = config.loops.max(1);
        let reuseport = config.distribution == Distribution::ReusePort;
        let first = listener(config.listen, config.backlog, true)?;
        let local_addr = socket_addr(&first)?;
        let mut listeners = vec![first];
        if reuseport {
            for _ in 1..config.loops {
                listeners.push(listener(local_addr, config.backlog, true)?);
            }
        }
        let (handle, wake_read) = ShutdownHandle::with_wake_pipe()?;
        let shared = Arc::new(Shared {
            loops: (0..config.loops)
                .map(|_| CachePadded::new(LoopShared::default()))
                .collect(),
            balancing: AtomicBool::new(config.balance.enabled),
        });
        Ok(MultiLoopServer {
            config,
            listeners,
            local_addr,
            handle,
            wake_read,
            shared,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server (also from SIGINT/SIGTERM once installed).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Statistics (valid before and while running).
    pub fn stats(&self) -> MultiStatsHandle {
        MultiStatsHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Starts every loop on its own thread and returns the control surface.
    pub fn start<F: SessionFactory>(self, factory: Arc<F>) -> io::Result<Running<F::Session>> {
        self.launch(factory, false).map(|(running, _)| running)
    }

    /// Runs until shutdown; loop 0 runs on the calling thread (one loop = one thread).
    pub fn run<F: SessionFactory>(self, factory: Arc<F>) -> io::Result<MultiReport> {
        let (running, first) = self.launch(factory, true)?;
        let outcome0 = match first {
            Some(run0) => run0(),
            None => LoopOutcome::panicked(),
        };
        let Running {
            stats,
            threads,
            acceptor,
            ..
        } = running;
        let mut outcomes = vec![outcome0];
        outcomes.extend(
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|_| LoopOutcome::panicked())),
        );
        if let Some(a) = acceptor {
            let _ = a.join();
        }
        Ok(report(&stats, outcomes))
    }

    #[allow(clippy::type_complexity)]
    fn launch<F: SessionFactory>(
        self,
        factory: Arc<F>,
        loop0_here: bool,
    ) -> io::Result<(
        Running<F::Session>,
        Option<Box<dyn FnOnce() -> LoopOutcome>>,
    )> {
        let MultiLoopServer {
            config,
            mut listeners,
            handle,
            wake_read,
            shared,
            ..
        } = self;
        let mailboxes: Arc<Vec<Mailbox<Message<F::Session>>>> = Arc::new(
            (0..config.loops)
                .map(|_| Mailbox::new(config.mailbox_capacity))
                .collect::<io::Result<_>>()?,
        );
        let allowed = affinity::allowed_cpus().unwrap_or_default();
        let acceptor_listener = match config.distribution {
            Distribution::Acceptor => Some(listeners.remove(0)),
            Distribution::ReusePort => None,
        };
        let mut loop_listeners: Vec<Option<OwnedFd>> = listeners.into_iter().map(Some).collect();
        loop_listeners.resize_with(config.loops, || None);
        let mut first = None;
        let mut threads = Vec::new();
        for (index, listener) in loop_listeners.into_iter().enumerate() {
            let ctx = LoopContext {
                index,
                config: config.clone(),
                cpu: if config.pin {
                    affinity::cpu_for_loop(&allowed, index)
                } else {
                    None
                },
                shared: Arc::clone(&shared),
                mailboxes: Arc::clone(&mailboxes),
                factory: Arc::clone(&factory),
                handle: handle.clone(),
                wake: wake_read.try_clone()?,
                listener,
            };
            if index == 0 && loop0_here {
                first = Some(Box::new(move || ctx.run()) as Box<dyn FnOnce() -> LoopOutcome>);
            } else {
                threads.push(
                    thread::Builder::new()
                        .name(format!("loop-{index}"))
                        .spawn(move || ctx.run())?,
                );
            }
        }
        let acceptor = match acceptor_listener {
            Some(l) => {
                let acceptor = Acceptor {
                    listener: l,
                    wake: wake_read.try_clone()?,
                    handle: handle.clone(),
                    factory: Arc::clone(&factory),
                    shared: Arc::clone(&shared),
                    mailboxes: Arc::clone(&mailboxes),
                    nodelay: config.loop_config.nodelay,
                };
                Some(
                    thread::Builder::new()
                        .name("acceptor".into())
                        .spawn(move || acceptor.run())?,
                )
            }
            None => None,
        };
        Ok((
            Running {
                mailboxes,
                stats: MultiStatsHandle { shared },
                handle,
                threads,
                acceptor,
            },
            first,
        ))
    }
}

fn socket_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(fd);
    sock.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))
}

/// User ids of the descriptors a loop watches besides its sockets.
const MAILBOX: u64 = 1;
const WAKE: u64 = 2;

struct LoopContext<F: SessionFactory> {
    index: usize,
    config: MultiConfig,
    cpu: Option<usize>,
    shared: Arc<Shared>,
    mailboxes: Arc<Vec<Mailbox<Message<F::Session>>>>,
    factory: Arc<F>,
    handle: ShutdownHandle,
    wake: OwnedFd,
    listener: Option<OwnedFd>,
}

impl<F: SessionFactory> LoopContext<F> {
    fn run(self) -> LoopOutcome {
        let me = &self.shared.loops[self.index];
        let result = catch_unwind(AssertUnwindSafe(|| self.serve()));
        // Release: pairs with `LoopPlace::is_alive`'s acquire.
        me.place.alive.store(false, Ordering::Release);
        // Whatever is still queued for this loop can no longer be served: close it (the
        // sockets close when the sessions drop) and account for the in-flight migrations.
        self.mailboxes[self.index].close(|m| {
            if let Message::Adopt { .. } = m {
                me.adopting.fetch_sub(1, Ordering::AcqRel);
                me.multi.migration_failures.incr();
            }
        });
        match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => LoopOutcome {
                error: Some(e.to_string()),
                shutdown_s: 0.0,
                forced: 0,
            },
            Err(_) => LoopOutcome::panicked(),
        }
    }

    fn serve(&self) -> io::Result<LoopOutcome> {
        let me = &self.shared.loops[self.index];
        // HTTP/1.1 sessions made or dropped on this thread record into this loop's own shard
        // of their factory's registry (m08: per-thread shards, summed on read).
        m08_http11::stats::set_thread_shard(self.index);
        if let Some(cpu) = self.cpu {
            affinity::pin_current_thread(cpu)?;
            me.place.cpu.store(cpu as i64, Ordering::Relaxed);
        }
        let mut lp = EventLoop::new(self.config.loop_config, Arc::clone(&self.factory))?;
        lp.set_stats(Arc::clone(&me.stats));
        if let Some(l) = &self.listener {
            lp.add_listener(l.try_clone()?, false)?;
        }
        let mailbox = &self.mailboxes[self.index];
        lp.add_user_fd(mailbox.fd(), MAILBOX)?;
        lp.add_user_fd(self.wake.as_fd(), WAKE)?;
        lp.sample_cpu(Instant::now());
        me.place.alive.store(true, Ordering::Release);

        let interval = Duration::from_millis(self.config.balance.interval_ms.max(1));
        let mut next_balance = Instant::now() + interval;
        let mut steal_pending_until: Option<Instant> = None;
        let mut user = Vec::new();
        let mut inbox = Vec::new();
        let mut shutdown_at: Option<Instant> = None;
        loop {
            lp.turn(Some(interval))?;
            user.extend(lp.take_user_events());
            for id in user.drain(..) {
                if id == MAILBOX {
                    mailbox.drain(|m| inbox.push(m));
                }
            }
            let now = Instant::now();
            for m in inbox.drain(..) {
                me.multi.messages.incr();
                match m {
                    Message::Adopt { mut conn, sent } => {
                        me.multi.message_ns.record(nanos(now, sent));
                        if shutdown_at.is_some() {
                            conn.session.begin_shutdown(now);
                        }
                        match lp.adopt(conn, now) {
                            Ok(_) => me.multi.migrated_in.incr(),
                            Err(_closed_on_drop) => me.multi.migration_failures.incr(),
                        }
                        // Only now: the connection is in `open` (see `LoopShared::adopting`).
                        me.adopting.fetch_sub(1, Ordering::AcqRel);
                        steal_pending_until = None;
                    }
                    Message::Steal { thief, count, sent } => {
                        me.multi.message_ns.record(nanos(now, sent));
                        if shutdown_at.is_none() {
                            me.multi.steals_served.incr();
                            migrate(&mut lp, self, thief, count as usize, now);
                        }
                    }
                    Message::Task { task, sent } => {
                        me.multi.message_ns.record(nanos(now, sent));
                        let mut control = Control {
                            lp: &mut lp,
                            ctx: self,
                        };
                        match catch_unwind(AssertUnwindSafe(|| task(&mut control))) {
                            Ok(()) => me.multi.tasks.incr(),
                            Err(_) => me.multi.task_panics.incr(),
                        }
                    }
                    Message::Fail => return Err(io::Error::other("injected loop failure")),
                }
            }
            match shutdown_at {
                None if self.handle.is_shutdown() => {
                    shutdown_at = Some(now);
                    lp.remove_user_fd(self.wake.as_fd())?;
                    lp.begin_shutdown(now);
                }
                None => {
                    if now >= next_balance {
                        next_balance = now + interval;
                        if steal_pending_until.is_none_or(|t| now >= t) {
                            steal_pending_until = self.balance(now);
                        }
                    }
                }
                Some(t) => {
                    let drained = lp.connections() == 0 && self.shared.in_flight() == 0;
                    if drained || now - t >= self.config.shutdown_grace {
                        let forced = lp.force_close();
                        lp.sample_cpu(Instant::now());
                        return Ok(LoopOutcome {
                            error: None,
                            shutdown_s: t.elapsed().as_secs_f64(),
                            forced,
                        });
                    }
                }
            }
        }
    }

    /// Asks the busiest loop for connections if this one is underloaded; returns until when
    /// a request is outstanding.
    fn balance(&self, now: Instant) -> Option<Instant> {
        if !self.shared.balancing.load(Ordering::Relaxed) {
            return None;
        }
        // Relaxed loads of other loops' gauges: a slightly stale count only delays a decision.
        let counts: Vec<u64> = self
            .shared
            .loops
            .iter()
            .map(|l| {
                if l.place.is_alive() {
                    l.stats.open.get()
                } else {
                    0
                }
            })
            .collect();
        let alive: Vec<usize> = (0..counts.len())
            .filter(|&i| self.shared.loops[i].place.is_alive())
            .collect();
        let live_counts: Vec<u64> = alive.iter().map(|&i| counts[i]).collect();
        let me = alive.iter().position(|&i| i == self.index)?;
        // The shared switch decides whether to balance (it starts as `balance.enabled` and
        // `MultiStatsHandle::set_balancing` flips it at run time); the rest is the policy.
        let policy = BalanceConfig {
            enabled: true,
            ..self.config.balance
        };
        let (victim, count) = plan_steal(me, &live_counts, &policy)?;
        let victim = alive[victim];
        let sent = self.mailboxes[victim].send(Message::Steal {
            thief: self.index,
            count,
            sent: now,
        });
        if sent.is_ok() {
            self.shared.loops[self.index].multi.steals_sent.incr();
            Some(now + Duration::from_millis(self.config.balance.interval_ms.max(1) * 5))
        } else {
            None
        }
    }
}

/// Detaches up to `count` connections and sends them to loop `target`; a connection that
/// cannot be delivered is adopted back (it never leaves without a home). Returns how many left.
fn migrate<F: SessionFactory, R: m09_event_loop::Reactor>(
    lp: &mut EventLoop<F, R>,
    ctx: &LoopContext<F>,
    target: usize,
    count: usize,
    now: Instant,
) -> usize {
    if target == ctx.index || target >= ctx.mailboxes.len() {
        return 0;
    }
    let me = &ctx.shared.loops[ctx.index];
    let mut moved = 0;
    for token in lp.tokens().into_iter().take(count) {
        let Some(conn) = lp.detach(token) else {
            continue;
        };
        match ctx.shared.send_adopt(&ctx.mailboxes, target, conn, now) {
            Ok(()) => {
                me.multi.migrated_out.incr();
                moved += 1;
            }
            Err(conn) => {
                me.multi.migration_failures.incr();
                let _ = lp.adopt(conn, now);
                break;
            }
        }
    }
    moved
}

fn nanos(now: Instant, sent: Instant) -> u64 {
    now.saturating_duration_since(sent).as_nanos() as u64
}

struct Control<'a, F: SessionFactory> {
    lp: &'a mut EventLoop<F>,
    ctx: &'a LoopContext<F>,
}

impl<F: SessionFactory> LoopControl for Control<'_, F> {
    fn index(&self) -> usize {
        self.ctx.index
    }

    fn connections(&self) -> usize {
        self.lp.connections()
    }

    fn migrate_to(&mut self, target: usize, count: usize) -> usize {
        migrate(self.lp, self.ctx, target, count, Instant::now())
    }
}

/// The single acceptor of [`Distribution::Acceptor`].
struct Acceptor<F: SessionFactory> {
    listener: OwnedFd,
    wake: OwnedFd,
    handle: ShutdownHandle,
    factory: Arc<F>,
    shared: Arc<Shared>,
    mailboxes: Arc<Vec<Mailbox<Message<F::Session>>>>,
    nodelay: bool,
}

impl<F: SessionFactory> Acceptor<F> {
    fn run(self) {
        let Ok(epoll) = m09_event_loop::EpollReactor::new() else {
            return;
        };
        let mut reactor = epoll;
        use m09_event_loop::{Interest, Mode, Reactor};
        use std::os::fd::AsRawFd;
        if reactor
            .register(self.listener.as_raw_fd(), 0, Interest::READ, Mode::LEVEL)
            .is_err()
            || reactor
                .register(self.wake.as_raw_fd(), 1, Interest::READ, Mode::LEVEL)
                .is_err()
        {
            return;
        }
        // Accepted sockets inherit the listener's TCP_NODELAY: one setsockopt here instead of
        // one per connection (per connection only if this fails).
        let nodelay_inherited = self.nodelay && sys::set_nodelay(self.listener.as_fd()).is_ok();
        let mut events = Vec::new();
        while !self.handle.is_shutdown() {
            if reactor
                .wait(&mut events, 8, Some(Duration::from_millis(100)))
                .is_err()
            {
                continue;
            }
            if !events.iter().any(|e| e.token == 0) {
                continue;
            }
            for _ in 0..64 {
                let Ok((fd, peer)) = sys::accept_nonblocking(self.listener.as_fd()) else {
                    break;
                };
                if self.nodelay && !nodelay_inherited {
                    let _ = sys::set_nodelay(fd.as_fd());
                }
                let now = Instant::now();
                let session = self.factory.new_session(peer, now);
                // Least loaded loop (its open connections plus those on their way to it) among
                // those whose mailbox is open: a loop that has not started yet takes its
                // messages when it does, only a stopped one has closed its mailbox.
                // Relaxed: a heuristic; a stale value only makes one choice less even.
                let target = (0..self.mailboxes.len())
                    .filter(|&i| !self.mailboxes[i].is_closed())
                    .min_by_key(|&i| {
                        let l = &self.shared.loops[i];
                        l.stats.open.get() + l.adopting.load(Ordering::Relaxed) as u64
                    });
                let Some(target) = target else {
                    let _ = sys::send(fd.as_fd(), self.factory.refusal());
                    continue;
                };
                let conn = Detached {
                    fd,
                    peer,
                    session,
                    stash: Vec::new(),
                    eof: false,
                };
                if let Err(conn) = self.shared.send_adopt(&self.mailboxes, target, conn, now) {
                    let _ = sys::send(conn.fd.as_fd(), self.factory.refusal());
                }
            }
        }
    }
}
