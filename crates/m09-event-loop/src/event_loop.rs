//! The event loop: one thread, many non-blocking connections, each an m03 [`Session`].
//!
//! ```text
//!  turn():  timeout = min(next timer, caller's cap; 0 if connections wait on the ready list)
//!           wait(reactor) ──▶ events ──┬─ listener: accept4 × accept_batch (LT, so a long
//!                                      │             backlog cannot starve the connections)
//!                                      ├─ user token: queued for the owner (wake-ups, m10)
//!                                      └─ connection: read ─▶ handle_input ─▶ send ─▶ settle
//!           timer wheel.advance(now) ──▶ handle_timeout ─▶ settle
//!           iteration time ─▶ histogram; over budget ─▶ blocked_iterations (+ a log line)
//! ```
//!
//! **Settle** is the per-connection state machine after anything happened: flush the
//! session's output (one `send` for a whole pipelined batch); when it drains, offer the
//! unconsumed input again (contract rule 1); close if the session says so; otherwise derive the
//! interest — read while open and below [`Session::input_limit`], write while output is
//! blocked — change the registration only if it differs, and arm the timer wheel with
//! [`Session::poll_timeout`] (only when the deadline moves *earlier*: a later one is found
//! when the old entry fires). That is all the extension the m03 contract needs: interest and
//! deadlines are derived from what every session already exposes, so m08's HTTP/1.1 core runs
//! unchanged under threads (m03), a pool (m06) and this loop.
//!
//! **Triggering.** Level-triggered: each readable connection gets one `recv` per turn and is
//! reported again while data remains (fair by construction). Edge-triggered: registered once
//! for read and write and never modified; a connection reads until the socket is drained, a
//! short read, or `read_budget` reads — then it goes on the *ready list* and continues next
//! turn (an edge will not come again for data already buffered: that is ET starvation, and
//! the ready list is its cure). `EPOLLONESHOT` re-arms after every event.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{CloseReason, Session, SessionFactory, SessionState};
use m07_buffers::{BufferPool, PoolConfig};

use crate::reactor::{DefaultReactor, Event, Interest, Mode, Reactor, Trigger};
use crate::stash::Stash;
use crate::stats::LoopStats;
use crate::sys;
use crate::timer::TimerWheel;

/// Tokens with this bit are not connections.
const SPECIAL: u64 = 1 << 63;
/// Listener tokens: `SPECIAL | index`.
const LISTENER: u64 = SPECIAL;
/// User tokens: `SPECIAL | USER | id`.
const USER: u64 = 1 << 62;

/// How a loop behaves. Defaults are what `zyphos serve --io epoll` runs; the experiments
/// (`examples/`) sweep them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopConfig {
    /// Level- or edge-triggered connections (listeners are always level-triggered).
    pub trigger: Trigger,
    /// `EPOLLONESHOT` on connections: re-armed after every event.
    pub oneshot: bool,
    /// `maxevents` of each wait.
    pub max_events: usize,
    /// Connections accepted per listener event.
    pub accept_batch: usize,
    /// Size of the loop's read buffer (shared by all its connections).
    pub read_buffer: usize,
    /// Edge-triggered: reads per connection per turn before it yields (ready list).
    pub read_budget: usize,
    /// Connections this loop holds at most; more are refused with the factory's bytes.
    pub max_connections: usize,
    /// An iteration longer than this is counted (and logged) as a blocked loop.
    pub iteration_budget: Duration,
    /// Timer wheel resolution.
    pub timer_tick: Duration,
    /// Size of each buffer that holds a connection's unconsumed input (m07 pool).
    pub stash_buffer: usize,
    /// Buffers in that pool (more input waits on the heap, counted as `stash_heap`).
    pub stash_buffers: usize,
    /// Set `TCP_NODELAY` on accepted sockets.
    pub nodelay: bool,
    /// Print a line to stderr when an iteration is over budget (at most once a second).
    pub log_blocked: bool,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            trigger: Trigger::Level,
            oneshot: false,
            max_events: 256,
            accept_batch: 64,
            read_buffer: 64 * 1024,
            read_budget: 4,
            max_connections: 200_000,
            iteration_budget: Duration::from_millis(10),
            timer_tick: Duration::from_millis(1),
            stash_buffer: 16 * 1024,
            stash_buffers: 1024,
            nodelay: true,
            log_blocked: true,
        }
    }
}

/// A connection's token: slot index and generation (a reused slot gets a new generation, so
/// an event or timer for the previous occupant is recognised as stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

impl Token {
    fn new(index: usize, generation: u32) -> Token {
        Token(((u64::from(generation) & 0x3fff_ffff) << 32) | index as u64)
    }
    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
    fn generation(self) -> u32 {
        ((self.0 >> 32) & 0x3fff_ffff) as u32
    }
    /// The raw value registered with the reactor.
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// A connection taken out of a loop with its state, to be adopted by another (milestone 10).
#[derive(Debug)]
pub struct Detached<S> {
    /// The socket.
    pub fd: OwnedFd,
    /// The peer.
    pub peer: SocketAddr,
    /// The session, mid-conversation.
    pub session: S,
    /// Input received and not yet consumed.
    pub stash: Vec<u8>,
    /// The peer already closed its side.
    pub eof: bool,
}

struct Conn<S> {
    fd: OwnedFd,
    peer: SocketAddr,
    session: S,
    /// Unconsumed input (contract rule 1), at most `input_limit` bytes.
    stash: Stash,
    registered: Interest,
    /// Tick of the live timer-wheel entry.
    armed: Option<u64>,
    eof: bool,
    /// Reading stopped at the input limit (edge-triggered: must retry by itself).
    read_paused: bool,
}

struct Slot<S> {
    generation: u32,
    conn: Option<Conn<S>>,
}

/// What happened to a connection during one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Alive,
    Closed,
}

/// One event loop. See the [module docs](self).
pub struct EventLoop<F: SessionFactory, R: Reactor = DefaultReactor> {
    config: LoopConfig,
    factory: Arc<F>,
    reactor: R,
    mode: Mode,
    listeners: Vec<Option<OwnedFd>>,
    /// Per listener: `TCP_NODELAY` is set on it, so the sockets it accepts inherit it (one
    /// `setsockopt` per listener instead of one per connection).
    listener_nodelay: Vec<bool>,
    slots: Vec<Slot<F::Session>>,
    free: Vec<usize>,
    open: usize,
    wheel: TimerWheel,
    expired: Vec<u64>,
    events: Vec<Event>,
    ready: Vec<Token>,
    ready_next: Vec<Token>,
    /// Listeners whose backlog was not drained (edge-triggered reactors only).
    accept_next: Vec<usize>,
    user_events: Vec<u64>,
    scratch: Box<[u8]>,
    /// Buffers for unconsumed input (milestone 7's pool).
    pool: BufferPool,
    stats: Arc<LoopStats>,
    reserve_fd: Option<OwnedFd>,
    last_cpu_sample: Instant,
    last_blocked_log: Option<Instant>,
    shutting_down: bool,
}

impl<F: SessionFactory, R: Reactor> std::fmt::Debug for EventLoop<F, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("reactor", &self.reactor.name())
            .field("config", &self.config)
            .field("open", &self.open)
            .finish()
    }
}

impl<F: SessionFactory> EventLoop<F, DefaultReactor> {
    /// A loop on the platform's [`DefaultReactor`] (a new epoll instance on Linux).
    pub fn new(config: LoopConfig, factory: Arc<F>) -> io::Result<Self> {
        EventLoop::with_reactor(config, factory, DefaultReactor::new()?)
    }
}

impl<F: SessionFactory, R: Reactor> EventLoop<F, R> {
    /// A loop over any [`Reactor`] (a mio reactor forces edge-triggered mode).
    pub fn with_reactor(mut config: LoopConfig, factory: Arc<F>, reactor: R) -> io::Result<Self> {
        if reactor.forces_edge() {
            config.trigger = Trigger::Edge;
            config.oneshot = false;
        }
        config.max_events = config.max_events.max(1);
        config.read_buffer = config.read_buffer.max(1);
        config.read_budget = config.read_budget.max(1);
        config.accept_batch = config.accept_batch.max(1);
        let now = Instant::now();
        let stats = Arc::new(LoopStats::default());
        Ok(EventLoop {
            mode: Mode {
                trigger: config.trigger,
                oneshot: config.oneshot,
                exclusive: false,
            },
            factory,
            reactor,
            listeners: Vec::new(),
            listener_nodelay: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            wheel: TimerWheel::new(now, config.timer_tick),
            expired: Vec::new(),
            events: Vec::with_capacity(config.max_events),
            ready: Vec::new(),
            ready_next: Vec::new(),
            accept_next: Vec::new(),
            user_events: Vec::new(),
            scratch: vec![0u8; config.read_buffer].into_boxed_slice(),
            pool: BufferPool::new(PoolConfig::new(config.stash_buffer, config.stash_buffers))
                .map_err(|e| io::Error::other(format!("input buffer pool: {e}")))?,
            stats,
            // A spare descriptor, given up to accept-and-close when the table is full.
            reserve_fd: std::fs::File::open("/dev/null").ok().map(OwnedFd::from),
            last_cpu_sample: now,
            last_blocked_log: None,
            config,
            shutting_down: false,
        })
    }

    /// The configuration in force (after the reactor's adjustments).
    pub fn config(&self) -> &LoopConfig {
        &self.config
    }

    /// The live counters (share the `Arc` with readers on other threads).
    pub fn stats(&self) -> Arc<LoopStats> {
        Arc::clone(&self.stats)
    }

    /// Publishes this loop's counters through `stats` instead (a server creates them before
    /// its loops, so readers can hold them from the start). Call before the first turn.
    pub fn set_stats(&mut self, stats: Arc<LoopStats>) {
        self.stats = stats;
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.open
    }

    /// The reactor's name.
    pub fn reactor_name(&self) -> &'static str {
        self.reactor.name()
    }

    /// Tokens of the open connections (for migration and tests).
    pub fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| Token::new(i, s.generation))
            .collect()
    }

    /// Adds a listening socket (made non-blocking; level-triggered; `exclusive` for a
    /// listener several loops share: `EPOLLEXCLUSIVE` wakes one of them, not all).
    pub fn add_listener(&mut self, listener: OwnedFd, exclusive: bool) -> io::Result<()> {
        sys::set_nonblocking(listener.as_fd(), true)?;
        let token = LISTENER | self.listeners.len() as u64;
        let mode = Mode {
            trigger: Trigger::Level,
            oneshot: false,
            exclusive,
        };
        self.reactor
            .register(listener.as_raw_fd(), token, Interest::READ, mode)?;
        // Accepted sockets inherit the listener's TCP_NODELAY (Linux and the BSDs copy it
        // into the child socket), so set it once here; if that fails, each accepted socket
        // gets its own setsockopt.
        let nodelay = self.config.nodelay && sys::set_nodelay(listener.as_fd()).is_ok();
        self.listener_nodelay.push(nodelay);
        self.listeners.push(Some(listener));
        Ok(())
    }

    /// Watches a descriptor of the caller's (an eventfd, a wake pipe): when it is readable,
    /// `id` is queued for [`EventLoop::take_user_events`]. Level-triggered: drain it.
    pub fn add_user_fd(&mut self, fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
        self.reactor.register(
            fd.as_raw_fd(),
            SPECIAL | USER | id,
            Interest::READ,
            Mode::LEVEL,
        )
    }

    /// Stops watching a descriptor added with [`EventLoop::add_user_fd`].
    pub fn remove_user_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.reactor.deregister(fd.as_raw_fd())
    }

    /// User ids whose descriptors were readable in the last turn (the caller drains them).
    pub fn take_user_events(&mut self) -> std::vec::Drain<'_, u64> {
        self.user_events.drain(..)
    }

    /// Waits for events (at most `max_wait`, less if a timer is due) and handles them.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let before = Instant::now();
        // The wheel's next expiry, found once per turn (nothing is armed during the wait).
        let next_timer = self.wheel.next_expiry();
        let timeout = self.wait_timeout(before, next_timer, max_wait);
        let mut events = std::mem::take(&mut self.events);
        let n = match self
            .reactor
            .wait(&mut events, self.config.max_events, timeout)
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                self.events = events;
                return Err(e);
            }
        };
        let start = Instant::now();
        let s = &self.stats;
        s.iterations.incr();
        s.batch_size.record(n as u64);
        s.events.add(n as u64);
        let timer_due = next_timer.is_some_and(|t| t <= self.floor_tick(start));
        if n == 0 && !timer_due && timeout.is_none_or(|t| start - before < t) {
            s.empty_wakeups.incr();
        }

        // Connections that used up their read budget last turn go first.
        std::mem::swap(&mut self.ready, &mut self.ready_next);
        let mut ready = std::mem::take(&mut self.ready);
        for token in ready.drain(..) {
            self.on_connection(token, true, false, start);
        }
        self.ready = ready;

        for index in std::mem::take(&mut self.accept_next) {
            self.accept_batch(index, start);
        }
        for ev in events.iter() {
            self.dispatch(ev, start);
        }
        self.events = events;

        self.run_timers(start);

        let end = Instant::now();
        let took = end - start;
        self.stats.iteration_ns.record(took.as_nanos() as u64);
        if took > self.config.iteration_budget {
            self.stats.blocked_iterations.incr();
            if self.config.log_blocked
                && self
                    .last_blocked_log
                    .is_none_or(|t| end - t >= Duration::from_secs(1))
            {
                self.last_blocked_log = Some(end);
                log_line(format_args!(
                    "zyphos event loop (tid {}): iteration took {:.1} ms (budget {:.1} ms); {} blocked so far",
                    self.stats.tid.get(),
                    took.as_secs_f64() * 1e3,
                    self.config.iteration_budget.as_secs_f64() * 1e3,
                    self.stats.blocked_iterations.get()
                ));
            }
        }
        if end - self.last_cpu_sample >= Duration::from_millis(100) {
            self.sample_cpu(end);
        }
        Ok(())
    }

    /// Records the loop thread's CPU time and id now (call from the loop's thread).
    pub fn sample_cpu(&mut self, now: Instant) {
        self.last_cpu_sample = now;
        self.stats
            .cpu_ns
            .set(sys::thread_cpu_time().as_nanos() as u64);
        self.stats.tid.set(sys::gettid() as u64);
    }

    fn floor_tick(&self, now: Instant) -> u64 {
        let t = self.wheel.tick_of(now);
        if self.wheel.instant_of(t) > now {
            t.saturating_sub(1)
        } else {
            t
        }
    }

    fn wait_timeout(
        &self,
        now: Instant,
        next_timer: Option<u64>,
        cap: Option<Duration>,
    ) -> Option<Duration> {
        if !self.ready_next.is_empty() || !self.accept_next.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = next_timer.map(|t| self.wheel.instant_of(t).saturating_duration_since(now));
        match (timer, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn dispatch(&mut self, ev: &Event, now: Instant) {
        if ev.token & SPECIAL == 0 {
            let readable = ev.readable || ev.read_closed || ev.hangup || ev.error;
            self.on_connection(Token(ev.token), readable, ev.writable, now);
        } else if ev.token & USER != 0 {
            self.user_events.push(ev.token & !(SPECIAL | USER));
        } else {
            self.accept_batch((ev.token & !SPECIAL) as usize, now);
        }
    }

    fn accept_batch(&mut self, index: usize, now: Instant) {
        self.stats.accept_batches.incr();
        for round in 0..self.config.accept_batch {
            let Some(Some(listener)) = self.listeners.get(index) else {
                return;
            };
            match sys::accept_nonblocking(listener.as_fd()) {
                Ok((fd, peer)) => {
                    let inherited = self.listener_nodelay.get(index).copied() == Some(true);
                    self.adopt_accepted(fd, peer, inherited, now);
                    if round + 1 == self.config.accept_batch && self.reactor.forces_edge() {
                        // Edge-triggered listener (mio): the backlog may hold more, and no new
                        // edge will say so. Come back next turn.
                        self.accept_next.push(index);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.raw_os_error() == Some(libc::ECONNABORTED) =>
                {
                    continue;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    self.survive_fd_exhaustion(index);
                    break;
                }
                Err(_) => break,
            }
        }
    }

    /// `EMFILE`: the connection waits in the backlog and the listener stays readable, so a
    /// level-triggered loop would spin. Give up the reserve descriptor, accept the connection,
    /// tell it no, close it, take the reserve back.
    fn survive_fd_exhaustion(&mut self, index: usize) {
        self.stats.fd_exhausted.incr();
        self.reserve_fd = None;
        if let Some(Some(listener)) = self.listeners.get(index) {
            if let Ok((fd, _)) = sys::accept_nonblocking(listener.as_fd()) {
                let _ = sys::send(fd.as_fd(), self.factory.refusal());
                self.stats.refused.incr();
            }
        }
        self.reserve_fd = std::fs::File::open("/dev/null").ok().map(OwnedFd::from);
    }

    /// `nodelay_inherited`: the listener carries `TCP_NODELAY`, so `fd` already has it.
    fn adopt_accepted(
        &mut self,
        fd: OwnedFd,
        peer: SocketAddr,
        nodelay_inherited: bool,
        now: Instant,
    ) {
        if self.shutting_down || self.open >= self.config.max_connections {
            let _ = sys::send(fd.as_fd(), self.factory.refusal());
            self.stats.refused.incr();
            return;
        }
        if self.config.nodelay && !nodelay_inherited {
            let _ = sys::set_nodelay(fd.as_fd());
        }
        let session = self.factory.new_session(peer, now);
        self.stats.accepted.incr();
        let _ = self.insert(fd, peer, session, Vec::new(), false, now);
    }

    /// Takes over a connection (milestone 10's migration): registers it and continues the
    /// session where it was. Returns its token, or gives the connection back if the reactor
    /// refused it.
    pub fn adopt(
        &mut self,
        detached: Detached<F::Session>,
        now: Instant,
    ) -> Result<Token, Detached<F::Session>> {
        let Detached {
            fd,
            peer,
            session,
            stash,
            eof,
        } = detached;
        self.insert(fd, peer, session, stash, eof, now)
    }

    fn insert(
        &mut self,
        fd: OwnedFd,
        peer: SocketAddr,
        session: F::Session,
        stash: Vec<u8>,
        eof: bool,
        now: Instant,
    ) -> Result<Token, Detached<F::Session>> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1) & 0x3fff_ffff;
        let token = Token::new(index, slot.generation);
        let interest = if self.mode.trigger == Trigger::Edge && !self.mode.oneshot {
            Interest::BOTH
        } else {
            Interest::READ
        };
        if let Err(_e) = self
            .reactor
            .register(fd.as_raw_fd(), token.raw(), interest, self.mode)
        {
            // ENOSPC: the user's epoll watch limit (fs.epoll.max_user_watches); ENOMEM.
            self.stats.refused.incr();
            let _ = sys::send(fd.as_fd(), self.factory.refusal());
            self.free.push(index);
            return Err(Detached {
                fd,
                peer,
                session,
                stash,
                eof,
            });
        }
        let mut parked = Stash::Empty;
        parked.append(&mut self.pool, &stash, &self.stats);
        self.slots[index].conn = Some(Conn {
            fd,
            peer,
            session,
            stash: parked,
            registered: interest,
            armed: None,
            eof,
            read_paused: false,
        });
        self.open += 1;
        self.stats.open.set(self.open as u64);
        if self.open as u64 > self.stats.open_peak.get() {
            self.stats.open_peak.set(self.open as u64);
        }
        // A migrated session may have input or output waiting already.
        self.settle(token, now);
        Ok(token)
    }

    /// Removes a connection without closing it (milestone 10 hands it to another loop).
    pub fn detach(&mut self, token: Token) -> Option<Detached<F::Session>> {
        let mut conn = self.take(token)?;
        let _ = self.reactor.deregister(conn.fd.as_raw_fd());
        let stash = conn.stash.take_vec(&mut self.pool);
        Some(Detached {
            fd: conn.fd,
            peer: conn.peer,
            session: conn.session,
            stash,
            eof: conn.eof,
        })
    }

    fn take(&mut self, token: Token) -> Option<Conn<F::Session>> {
        let slot = self.slots.get_mut(token.index())?;
        if slot.generation != token.generation() {
            return None;
        }
        let conn = slot.conn.take()?;
        self.free.push(token.index());
        self.open -= 1;
        self.stats.open.set(self.open as u64);
        Some(conn)
    }

    fn conn_mut(&mut self, token: Token) -> Option<&mut Conn<F::Session>> {
        let slot = self.slots.get_mut(token.index())?;
        if slot.generation != token.generation() {
            return None;
        }
        slot.conn.as_mut()
    }

    fn close(&mut self, token: Token, reason: CloseReason) {
        if let Some(mut conn) = self.take(token) {
            conn.stash.release(&mut self.pool);
            self.stats.closed[reason.index()].incr();
            // Dropping the descriptor removes it from the epoll set (we never dup it). A
            // panicking session destructor must not take the loop down.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(conn)));
        }
    }

    /// Handles readiness for one connection, isolating a panicking session.
    fn on_connection(&mut self, token: Token, readable: bool, writable: bool, now: Instant) {
        if self.conn_mut(token).is_none() {
            self.stats.stale_events.incr();
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if readable && self.read(token, now) == Step::Closed {
                return;
            }
            let _ = writable;
            self.settle(token, now);
        }));
        if outcome.is_err() {
            self.stats.panics.incr();
            self.close(token, CloseReason::Panic);
        }
    }

    /// Reads what the socket has (one `recv` level-triggered; up to `read_budget`
    /// edge-triggered) and feeds the session.
    fn read(&mut self, token: Token, now: Instant) -> Step {
        match self.read_inner(token, now) {
            Ok(()) => Step::Alive,
            Err(()) => {
                self.close(token, CloseReason::IoError);
                Step::Closed
            }
        }
    }

    /// [`EventLoop::read`] without the close: `Err` means the socket failed.
    fn read_inner(&mut self, token: Token, now: Instant) -> Result<(), ()> {
        let edge = self.mode.trigger == Trigger::Edge;
        let budget = if edge { self.config.read_budget } else { 1 };
        let EventLoop {
            slots,
            scratch,
            pool,
            stats,
            ready_next,
            ..
        } = self;
        let Some(conn) = slots[token.index()].conn.as_mut() else {
            return Ok(());
        };
        for round in 0..budget {
            if conn.eof || conn.session.state() != SessionState::Open {
                return Ok(());
            }
            let room = conn.session.input_limit().saturating_sub(conn.stash.len());
            if room == 0 {
                conn.read_paused = true;
                return Ok(());
            }
            let want = room.min(scratch.len());
            stats.reads.incr();
            match sys::recv(conn.fd.as_fd(), &mut scratch[..want]) {
                Ok(0) => {
                    conn.eof = true;
                    conn.session.handle_eof(now, conn.stash.bytes(pool));
                    conn.stash.release(pool);
                    return Ok(());
                }
                Ok(n) => {
                    stats.bytes_in.add(n as u64);
                    feed(conn, pool, stats, now, &scratch[..n]);
                    if !conn.session.pending_output().is_empty() {
                        // Answer before reading more: a pipelined batch leaves in one send.
                        flush(conn, stats).map_err(|_| ())?;
                    }
                    if n < want {
                        return Ok(()); // drained (a short read: the socket is empty)
                    }
                    if edge && round + 1 == budget {
                        stats.read_budget_hits.incr();
                        ready_next.push(token);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if round == 0 {
                        stats.spurious_reads.incr();
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }

    /// After anything happened to a connection: flush, re-offer input, close or re-register,
    /// arm its timer.
    fn settle(&mut self, token: Token, now: Instant) {
        if let Some(reason) = self.settle_inner(token, now) {
            self.close(token, reason);
        }
    }

    /// [`EventLoop::settle`] without the close: returns why to close, if so.
    fn settle_inner(&mut self, token: Token, now: Instant) -> Option<CloseReason> {
        let EventLoop {
            slots,
            stats,
            reactor,
            mode,
            wheel,
            ready_next,
            pool,
            ..
        } = self;
        let conn = slots.get_mut(token.index())?.conn.as_mut()?;
        let mut blocked = false;
        // Flush; whenever the output drains, offer the unconsumed input again (rule 1).
        let mut budget_spent = false;
        for _ in 0..4 {
            match flush(conn, stats) {
                Err(_) => return Some(CloseReason::IoError),
                Ok(Flushed::Blocked) => {
                    blocked = true;
                    break;
                }
                Ok(Flushed::Budget) => {
                    // More output keeps coming (a deep pipeline): give the others a turn and
                    // continue next turn (level: EPOLLOUT reports at once; edge: ready list).
                    blocked = true;
                    budget_spent = true;
                    break;
                }
                Ok(Flushed::Drained) => {}
            }
            if conn.stash.is_empty() || conn.session.state() != SessionState::Open {
                break;
            }
            let consumed = conn.session.handle_input(now, conn.stash.bytes(pool));
            if consumed == 0 {
                break;
            }
            conn.stash.consume(pool, consumed);
        }
        while conn.session.poll_event().is_some() {
            stats.session_events.incr();
        }
        let pending = !conn.session.pending_output().is_empty();
        match conn.session.state() {
            SessionState::Closed(reason) => return Some(reason),
            SessionState::Closing(reason) if !pending => return Some(reason),
            _ => {}
        }
        let limit = conn.session.input_limit();
        if conn.stash.len() >= limit && !pending {
            // Rule 2: a full buffer nobody will consume.
            return Some(CloseReason::InputOverflow);
        }
        let open = conn.session.state() == SessionState::Open;
        let want_read = open && !conn.eof && conn.stash.len() < limit;
        if conn.eof && open && !pending && conn.session.poll_timeout().is_none() {
            // The peer is gone and the session has nothing to do and no deadline.
            return Some(CloseReason::PeerClosed);
        }
        if mode.trigger == Trigger::Edge && !mode.oneshot {
            // Registered once for both: no edge will come for a paused read or for output
            // left by the send budget on a writable socket; come back by ourselves.
            if (want_read && conn.read_paused) || budget_spent {
                conn.read_paused = false;
                ready_next.push(token);
            }
        } else {
            let want = Interest {
                read: want_read,
                write: blocked || (pending && !want_read),
            };
            if want != conn.registered || mode.oneshot {
                stats.modifications.incr();
                if reactor
                    .modify(conn.fd.as_raw_fd(), token.raw(), want, *mode)
                    .is_err()
                {
                    return Some(CloseReason::IoError);
                }
                conn.registered = want;
            }
        }
        if let Some(deadline) = conn.session.poll_timeout() {
            let tick = wheel.tick_of(deadline);
            if conn.armed.is_none_or(|armed| tick < armed) {
                wheel.insert(tick, token.raw());
                conn.armed = Some(tick);
                stats.timers_armed.incr();
            }
        }
        None
    }

    fn run_timers(&mut self, now: Instant) {
        let tick = self.floor_tick(now);
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.advance(tick, &mut expired);
        for raw in expired.drain(..) {
            let token = Token(raw);
            let wheel_now = self.wheel.now();
            let Some(conn) = self.conn_mut(token) else {
                self.stats.timers_stale.incr();
                continue;
            };
            match conn.armed {
                Some(armed) if armed <= wheel_now => conn.armed = None,
                _ => {
                    self.stats.timers_stale.incr();
                    continue;
                }
            }
            let due = conn.session.poll_timeout().is_some_and(|d| d <= now);
            if !due {
                // The deadline moved later since this entry was armed: settle re-arms it.
                self.stats.timers_stale.incr();
                self.settle(token, now);
                continue;
            }
            self.stats.timers_fired.incr();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if let Some(conn) = self.conn_mut(token) {
                    conn.session.handle_timeout(now);
                }
                self.settle(token, now);
            }));
            if outcome.is_err() {
                self.stats.panics.incr();
                self.close(token, CloseReason::Panic);
            }
        }
        self.expired = expired;
    }

    /// Stops accepting (listeners closed) and asks every session to finish politely.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        for l in self.listeners.iter_mut() {
            if let Some(fd) = l.take() {
                let _ = self.reactor.deregister(fd.as_raw_fd());
            }
        }
        for token in self.tokens() {
            if let Some(conn) = self.conn_mut(token) {
                conn.session.begin_shutdown(now);
            }
            self.settle(token, now);
        }
    }

    /// Closes every connection still open (the grace period ran out); returns how many.
    pub fn force_close(&mut self) -> usize {
        let tokens = self.tokens();
        for &token in &tokens {
            self.close(token, CloseReason::Shutdown);
        }
        tokens.len()
    }
}

/// Writes one line to stderr with a single `write(2)` from a stack buffer: no allocation and
/// not std's stderr lock (two loops logging at once must not contend on a mutex).
fn log_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut buf = [0u8; 256];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = cursor.write_fmt(args);
    let _ = cursor.write_all(b"\n");
    let n = cursor.position() as usize;
    sys::write_stderr(&buf[..n]);
}

/// Hands new bytes to the session (after any unconsumed ones) and keeps what it left.
fn feed<S: Session>(
    conn: &mut Conn<S>,
    pool: &mut BufferPool,
    stats: &LoopStats,
    now: Instant,
    data: &[u8],
) {
    if conn.stash.is_empty() {
        let consumed = conn.session.handle_input(now, data).min(data.len());
        conn.stash.append(pool, &data[consumed..], stats);
    } else {
        conn.stash.append(pool, data, stats);
        let consumed = conn.session.handle_input(now, conn.stash.bytes(pool));
        conn.stash.consume(pool, consumed);
    }
}

/// `send` calls one flush may make: the session may produce more output each time some was
/// written (m08 answers the next pipelined requests), and one connection must not hold the loop.
const SENDS_PER_FLUSH: usize = 8;

/// How a flush ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// Nothing left to send.
    Drained,
    /// The socket buffer is full: wait for writability.
    Blocked,
    /// [`SENDS_PER_FLUSH`] sends made and there is still more: continue next turn.
    Budget,
}

/// Writes pending output until it drains, the socket is full, or the send budget is spent.
fn flush<S: Session>(conn: &mut Conn<S>, stats: &LoopStats) -> io::Result<Flushed> {
    for _ in 0..SENDS_PER_FLUSH {
        let out = conn.session.pending_output();
        if out.is_empty() {
            return Ok(Flushed::Drained);
        }
        let len = out.len();
        stats.writes.incr();
        match sys::send(conn.fd.as_fd(), out) {
            Ok(n) => {
                stats.bytes_out.add(n as u64);
                conn.session.consume_output(n);
                if n < len {
                    // The socket buffer is full: wait for writability.
                    return Ok(Flushed::Blocked);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(if conn.session.pending_output().is_empty() {
        Flushed::Drained
    } else {
        Flushed::Budget
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use m03_thread_per_conn::EchoFactory;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A connected pair: (client, server side as an OwnedFd, the server side's peer address).
    fn pair(l: &TcpListener) -> (TcpStream, OwnedFd, SocketAddr) {
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let (s, peer) = l.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        (c, OwnedFd::from(s), peer)
    }

    /// `add_listener` sets `TCP_NODELAY` once on the listener instead of on every accepted
    /// socket: that relies on the kernel copying the option into the sockets it accepts.
    #[test]
    fn test_accepted_socket_inherits_listener_nodelay() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let plain = pair(&l).1;
        assert!(
            !socket2::SockRef::from(&plain)
                .nodelay()
                .expect("getsockopt")
        );
        sys::set_nodelay(l.as_fd()).expect("setsockopt on the listener");
        let accepted = pair(&l).1;
        assert!(
            socket2::SockRef::from(&accepted)
                .nodelay()
                .expect("getsockopt")
        );
    }

    #[test]
    fn test_slot_reused_stale_token_event_ignored() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let factory = Arc::new(EchoFactory::default());
        let mut lp = EventLoop::new(LoopConfig::default(), Arc::clone(&factory)).expect("loop");
        let now = Instant::now();
        let (_c1, fd1, peer1) = pair(&l);
        let old = lp
            .adopt(
                Detached {
                    fd: fd1,
                    peer: peer1,
                    session: factory.new_session(peer1, now),
                    stash: Vec::new(),
                    eof: false,
                },
                now,
            )
            .expect("adopt");
        lp.close(old, CloseReason::PeerClosed);
        let (mut c2, fd2, peer2) = pair(&l);
        let new = lp
            .adopt(
                Detached {
                    fd: fd2,
                    peer: peer2,
                    session: factory.new_session(peer2, now),
                    stash: Vec::new(),
                    eof: false,
                },
                now,
            )
            .expect("adopt");
        assert_eq!(old.index(), new.index(), "the slot was reused");
        assert_ne!(old, new, "with a new generation");
        c2.write_all(b"data").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        // An event queued for the previous occupant: ignored, the new connection untouched.
        let ev = Event {
            token: old.raw(),
            readable: true,
            writable: false,
            read_closed: false,
            hangup: false,
            error: false,
        };
        lp.dispatch(&ev, Instant::now());
        assert_eq!(lp.stats.stale_events.get(), 1);
        assert_eq!(
            lp.stats.reads.get(),
            0,
            "nothing read on the stale token's behalf"
        );
        assert_eq!(lp.connections(), 1);
        // The live token is served normally.
        for _ in 0..10 {
            lp.turn(Some(Duration::from_millis(20))).expect("turn");
            if lp.stats.bytes_out.get() >= 4 {
                break;
            }
        }
        let mut back = [0u8; 4];
        c2.read_exact(&mut back).expect("echo");
        assert_eq!(&back, b"data");
    }
}
