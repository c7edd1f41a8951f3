//! [`Mode::Poll`](super::Mode::Poll): non-blocking sockets multiplexed with `poll(2)`.
//!
//! One turn of the loop:
//!
//! 1. build the `pollfd` array: the self-pipe (`POLLIN`), the listener (`POLLIN`, unless backing
//!    off after `EMFILE`), and every connection with `POLLIN` while its buffer has room and
//!    `POLLOUT` while it has pending bytes;
//! 2. `poll` with the nearest deadline (timeouts, backoff) as timeout; `EINTR` → next turn;
//! 3. a byte on the self-pipe means shutdown;
//! 4. each ready connection gets at most one `recv` and one `send` (level-triggered `poll` will
//!    report it again if more is waiting, which keeps one busy client from starving the rest);
//!    `EAGAIN` just means "not now";
//! 5. closed connections leave the array, the observer's actions are applied (half-close,
//!    close, abort: see [`crate::observe`]), then up to 64 new ones are accepted.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::buffer::EchoBuffer;
use super::{ConnMeta, Core, ShutdownStats, micros};
use crate::error::{CloseReason, Error};
use crate::observe::{Action, Admission, ConnectionObserver};
use crate::sys::{self, MSG_NOSIGNAL, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollFd};

/// Connections accepted per wake-up at most (fairness between accepting and serving).
const ACCEPT_BATCH: usize = 64;
/// Longest pause of the listener after repeated `EMFILE`.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

struct Conn {
    fd: OwnedFd,
    buf: EchoBuffer,
    meta: ConnMeta,
    /// False once `recv` returned 0 (the peer's FIN).
    reading: bool,
    /// Reading is paused because the buffer is full.
    paused: bool,
    /// We called `shutdown(SHUT_WR)` (an observer's [`Action::ShutdownWrite`]): input is read
    /// and discarded until the peer's FIN.
    write_shut: bool,
    /// Last time a byte moved either way.
    last_progress: Instant,
}

impl Conn {
    fn wants_read(&self) -> bool {
        self.reading && !self.buf.is_full()
    }

    fn interest(&self) -> i16 {
        let mut events = 0;
        if self.wants_read() {
            events |= POLLIN;
        }
        if self.buf.len() > 0 {
            events |= POLLOUT;
        }
        events
    }

    /// When this connection times out, if ever.
    fn deadline(&self, core: &Core) -> Option<Instant> {
        let timeout = if self.buf.len() > 0 {
            core.config.write_timeout
        } else if self.reading {
            core.config.read_timeout
        } else {
            None
        };
        timeout.map(|t| self.last_progress + t)
    }
}

struct Backoff {
    until: Option<Instant>,
    next: Duration,
}

pub(super) fn run(
    core: &mut Core,
    listener: OwnedFd,
    wake: OwnedFd,
    mut reserve: Option<OwnedFd>,
    obs: &mut dyn ConnectionObserver,
) -> Result<Option<ShutdownStats>, Error> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<PollFd> = Vec::new();
    let mut closing: Vec<(usize, CloseReason)> = Vec::new();
    let mut backoff = Backoff {
        until: None,
        next: core.config.accept_backoff,
    };

    let failure = loop {
        if core.handle.is_shutdown() {
            break None;
        }
        // 1. The interest set.
        let now = Instant::now();
        fds.clear();
        fds.push(PollFd::new(wake.as_fd(), POLLIN));
        if backoff.until.is_some_and(|t| now >= t) {
            backoff.until = None;
        }
        let listening = backoff.until.is_none();
        if listening {
            fds.push(PollFd::new(listener.as_fd(), POLLIN));
        }
        let base = fds.len();
        let mut deadline = match (backoff.until, obs.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for c in &conns {
            fds.push(PollFd::new(c.fd.as_fd(), c.interest()));
            if let Some(d) = c.deadline(core) {
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        }
        // 2. Wait.
        let timeout = deadline.map(|d| d.saturating_duration_since(now));
        match sys::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                // A signal arrived while we slept. If it was SIGTERM, its byte is in the pipe.
                core.counters.inc(&core.counters.eintr_retries);
                continue;
            }
            Err(e) => break Some(Error::Poll(e)),
        }
        core.counters.inc(&core.counters.wakeups);
        // 3. Shutdown requested?
        if fds[0].revents() != 0 {
            break None;
        }
        // 4. Serve the connections that are ready.
        let now = Instant::now();
        closing.clear();
        for (i, c) in conns.iter_mut().enumerate() {
            let revents = fds[base + i].revents();
            let outcome = if revents != 0 {
                service(core, c, revents, now, obs)
            } else {
                None
            };
            let outcome = outcome.or_else(|| timed_out(core, c, now));
            if let Some(reason) = outcome {
                closing.push((i, reason));
            }
        }
        // 5. Remove the closed ones (highest index first so swap_remove keeps the rest valid).
        for &(i, reason) in closing.iter().rev() {
            let c = conns.swap_remove(i);
            core.close_connection(c.fd, c.meta, reason, false, c.write_shut, obs);
        }
        apply_actions(core, &mut conns, obs);
        if listening && fds[1].has(POLLIN | POLLERR) {
            accept_batch(core, &listener, &mut reserve, &mut conns, &mut backoff, obs);
        }
    };

    let stats = graceful_shutdown(core, listener, wake, reserve, conns, obs);
    match failure {
        Some(err) => Err(err),
        None => Ok(Some(stats)),
    }
}

/// Applies what the observer asks for, until it has nothing more to ask.
fn apply_actions(core: &mut Core, conns: &mut Vec<Conn>, obs: &mut dyn ConnectionObserver) {
    while let Some((fd, action)) = obs.poll_action(Instant::now()) {
        let Some(i) = conns.iter().position(|c| c.fd.as_raw_fd() == fd) else {
            continue;
        };
        match action {
            Action::ShutdownWrite => {
                let c = &mut conns[i];
                if c.write_shut {
                    continue;
                }
                // Our echo buffer's unsent bytes can never leave now.
                let pending = c.buf.len();
                c.buf.consumed(pending);
                c.write_shut = true;
                match sys::shutdown(c.fd.as_fd(), std::net::Shutdown::Write) {
                    Ok(()) => obs.shutdown_write(c.fd.as_fd(), Instant::now()),
                    Err(e) => {
                        obs.io_error(c.fd.as_fd(), &e, Instant::now());
                        let c = conns.swap_remove(i);
                        let reason = CloseReason::of(&e);
                        core.close_connection(c.fd, c.meta, reason, false, true, obs);
                    }
                }
            }
            Action::Inspect => obs.inspect(conns[i].fd.as_fd(), Instant::now()),
            Action::Close | Action::Abort => {
                let reason = if action == Action::Abort {
                    CloseReason::Aborted
                } else {
                    CloseReason::Requested
                };
                let c = conns.swap_remove(i);
                core.close_connection(c.fd, c.meta, reason, false, c.write_shut, obs);
            }
        }
    }
}

/// One readiness event on one connection: at most one `recv` and one `send`.
fn service(
    core: &mut Core,
    c: &mut Conn,
    revents: i16,
    now: Instant,
    obs: &mut dyn ConnectionObserver,
) -> Option<CloseReason> {
    if revents & POLLNVAL != 0 {
        return Some(CloseReason::Error { errno: libc::EBADF });
    }
    if c.wants_read() && revents & (POLLIN | POLLHUP | POLLERR) != 0 {
        if let Err(reason) = read_once(core, c, now, obs) {
            return Some(reason);
        }
    }
    // Write if poll said so, or optimistically right after reading: the send buffer is usually
    // not full, and this saves a poll turn.
    if c.buf.len() > 0 {
        if let Err(reason) = write_once(core, c, now, obs) {
            return Some(reason);
        }
    }
    if !c.reading && c.buf.len() == 0 {
        return Some(CloseReason::PeerClosed);
    }
    // Backpressure bookkeeping.
    if c.reading && c.buf.is_full() {
        if !c.paused {
            c.paused = true;
            c.meta.read_pauses += 1;
            core.counters.inc(&core.counters.read_pauses);
            core.sample_queues(&c.fd, &mut c.meta);
        }
    } else {
        c.paused = false;
    }
    None
}

fn read_once(
    core: &mut Core,
    c: &mut Conn,
    now: Instant,
    obs: &mut dyn ConnectionObserver,
) -> Result<(), CloseReason> {
    loop {
        match sys::recv(c.fd.as_fd(), c.buf.space(), 0) {
            Ok(0) => {
                c.reading = false;
                core.counters.inc(&core.counters.eofs);
                obs.read_eof(c.fd.as_fd(), now);
                return Ok(());
            }
            Ok(n) => {
                c.buf.filled(n);
                if c.write_shut {
                    // Half-closed by us: nothing can be echoed any more.
                    c.buf.consumed(n);
                }
                c.meta.bytes_in += n as u64;
                core.counters.add(&core.counters.bytes_in, n as u64);
                c.last_progress = now;
                obs.bytes_read(c.fd.as_fd(), n, now);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                core.counters.inc(&core.counters.eintr_retries);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.counters.inc(&core.counters.recv_would_block);
                return Ok(());
            }
            Err(e) => {
                obs.io_error(c.fd.as_fd(), &e, now);
                return Err(CloseReason::of(&e));
            }
        }
    }
}

fn write_once(
    core: &mut Core,
    c: &mut Conn,
    now: Instant,
    obs: &mut dyn ConnectionObserver,
) -> Result<(), CloseReason> {
    loop {
        let pending = c.buf.pending();
        match sys::send(c.fd.as_fd(), pending, MSG_NOSIGNAL) {
            Ok(n) => {
                if n < pending.len() {
                    // The kernel send buffer took only part: keep the tail, wait for POLLOUT.
                    c.meta.partial_writes += 1;
                    core.counters.inc(&core.counters.partial_writes);
                }
                c.buf.consumed(n);
                c.meta.bytes_out += n as u64;
                core.counters.add(&core.counters.bytes_out, n as u64);
                c.last_progress = now;
                obs.bytes_written(c.fd.as_fd(), n, now);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                core.counters.inc(&core.counters.eintr_retries);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.counters.inc(&core.counters.send_would_block);
                return Ok(());
            }
            Err(e) => {
                obs.io_error(c.fd.as_fd(), &e, now);
                return Err(CloseReason::of(&e));
            }
        }
    }
}

fn timed_out(core: &Core, c: &Conn, now: Instant) -> Option<CloseReason> {
    let deadline = c.deadline(core)?;
    if now < deadline {
        return None;
    }
    Some(if c.buf.len() > 0 {
        CloseReason::WriteTimeout
    } else {
        CloseReason::ReadTimeout
    })
}

fn accept_batch(
    core: &mut Core,
    listener: &OwnedFd,
    reserve: &mut Option<OwnedFd>,
    conns: &mut Vec<Conn>,
    backoff: &mut Backoff,
    obs: &mut dyn ConnectionObserver,
) {
    for _ in 0..ACCEPT_BATCH {
        match sys::accept4(listener.as_fd(), true) {
            Ok((fd, peer)) => {
                let accepted_at = Instant::now();
                backoff.next = core.config.accept_backoff;
                if conns.len() >= core.config.max_connections {
                    let _ = sys::close(fd);
                    core.counters.inc(&core.counters.shed);
                    continue;
                }
                if obs.accepted(fd.as_fd(), peer, accepted_at) == Admission::Refuse {
                    // The observer has no room for it (a full connection table): shed it.
                    let _ = sys::close(fd);
                    core.counters.inc(&core.counters.shed);
                    continue;
                }
                let meta = core.setup_connection(&fd, peer, accepted_at);
                conns.push(Conn {
                    fd,
                    buf: EchoBuffer::new(core.config.buffer_size),
                    meta,
                    reading: true,
                    paused: false,
                    write_shut: false,
                    last_progress: accepted_at,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                core.counters.inc(&core.counters.eintr_retries);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
                core.counters.inc(&core.counters.accept_aborted);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                match core.shed_with_reserve(listener, reserve, true) {
                    Some(true) => continue,
                    Some(false) => return,
                    None => {
                        start_backoff(core, backoff);
                        return;
                    }
                }
            }
            Err(e) => {
                // ENOBUFS, ENOMEM, EPERM (firewall)…: keep running, try again later.
                if core.config.log_connections {
                    eprintln!("[m01] accept4 failed: {e}; backing off");
                }
                start_backoff(core, backoff);
                return;
            }
        }
    }
}

fn start_backoff(core: &Core, backoff: &mut Backoff) {
    backoff.until = Some(Instant::now() + backoff.next);
    backoff.next = (backoff.next * 2).min(MAX_BACKOFF);
    core.counters.inc(&core.counters.accept_backoffs);
}

/// Stop accepting; keep serving what is already here for at most `drain_timeout`: a connection
/// is finished once it has nothing pending and nothing unread in its kernel receive queue
/// (`SIOCINQ` = 0), then it gets `shutdown(SHUT_WR)` (FIN) and `close`. Whatever is left at the
/// deadline is abandoned (and, with unread input, the kernel answers the close with RST).
fn graceful_shutdown(
    core: &mut Core,
    listener: OwnedFd,
    wake: OwnedFd,
    reserve: Option<OwnedFd>,
    mut conns: Vec<Conn>,
    obs: &mut dyn ConnectionObserver,
) -> ShutdownStats {
    let started = Instant::now();
    // Stop accepting: from here a connect gets ECONNREFUSED (and queued ones get RST).
    core.close_own(listener);
    let mut stats = ShutdownStats {
        connections_closed: conns.len() as u64,
        ..ShutdownStats::default()
    };
    let out_before = core
        .counters
        .bytes_out
        .load(std::sync::atomic::Ordering::Relaxed);
    let deadline = started + core.config.drain_timeout;
    let mut fds: Vec<PollFd> = Vec::new();
    loop {
        // Retire the connections that are done.
        let mut i = 0;
        while i < conns.len() {
            let c = &conns[i];
            let unread = if c.reading {
                sys::inq(c.fd.as_fd()).unwrap_or(0)
            } else {
                0
            };
            if c.buf.len() == 0 && unread == 0 {
                let c = conns.swap_remove(i);
                core.close_connection(c.fd, c.meta, CloseReason::Shutdown, true, c.write_shut, obs);
            } else {
                i += 1;
            }
        }
        let now = Instant::now();
        if conns.is_empty() || now >= deadline {
            break;
        }
        fds.clear();
        fds.extend(
            conns
                .iter()
                .map(|c| PollFd::new(c.fd.as_fd(), c.interest())),
        );
        match sys::poll(&mut fds, Some(deadline - now)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let now = Instant::now();
        let mut i = 0;
        while i < conns.len() {
            let revents = fds[i].revents();
            let outcome = if revents != 0 {
                service(core, &mut conns[i], revents, now, obs)
            } else {
                None
            };
            match outcome {
                None => i += 1,
                Some(reason) => {
                    let c = conns.swap_remove(i);
                    fds.swap_remove(i);
                    core.close_connection(c.fd, c.meta, reason, false, c.write_shut, obs);
                }
            }
        }
    }
    for c in conns {
        let unread = if c.reading {
            sys::inq(c.fd.as_fd()).unwrap_or(0)
        } else {
            0
        };
        stats.bytes_abandoned += (c.buf.len() + unread) as u64;
        core.close_connection(c.fd, c.meta, CloseReason::Shutdown, true, c.write_shut, obs);
    }
    stats.bytes_flushed = core
        .counters
        .bytes_out
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(out_before);
    core.close_own(wake);
    if let Some(fd) = reserve {
        core.close_own(fd);
    }
    stats.took_us = micros(started.elapsed());
    stats
}
