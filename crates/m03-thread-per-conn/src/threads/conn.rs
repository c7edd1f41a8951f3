//! One connection's life on its own thread: the blocking session driver.
//!
//! It follows the rules of [`crate::session`] the way [`crate::testing::PipeDriver`] does,
//! with blocking syscalls: `send` until the pending output is gone (`SO_SNDTIMEO` bounds each
//! call so deadlines and shutdown are noticed), then `recv` with `SO_RCVTIMEO` set from
//! [`Session::poll_timeout`], into a buffer that never holds more than
//! [`Session::input_limit`] unconsumed bytes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys::{self, signal};

use super::{ConnContext, Shared};
use crate::procfs;
use crate::session::{CloseReason, Session, SessionFactory, SessionState};
use crate::stats::{self, LocalStats};

/// Body of a spawned connection thread.
pub(super) fn conn_thread<F: SessionFactory>(shared: &Shared, factory: &F, ctx: ConnContext) {
    let c = &shared.counters;
    c.started.fetch_add(1, Ordering::Relaxed);
    let local = LocalStats::enter(&shared.slots);
    let id = ctx.id;
    serve_one(shared, factory, ctx);
    if shared.config.sample_threads {
        sample_self(shared);
    }
    drop(local);
    shared.logger.debug(format_args!("exiting"));
    // Order matters: the thread is counted out, then announced for joining.
    c.threads_live.fetch_sub(1, Ordering::SeqCst);
    c.exited.fetch_add(1, Ordering::Relaxed);
    shared
        .finished
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(id);
}

/// Body of a pre-spawned worker: serve connections from the channel until it closes.
pub(super) fn worker_thread<F: SessionFactory>(
    shared: &Shared,
    factory: &F,
    rx: &Mutex<Receiver<ConnContext>>,
) {
    let c = &shared.counters;
    c.started.fetch_add(1, Ordering::Relaxed);
    let local = LocalStats::enter(&shared.slots);
    loop {
        let next = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        match next {
            Ok(ctx) => serve_one(shared, factory, ctx),
            Err(_) => break,
        }
    }
    if shared.config.sample_threads {
        sample_self(shared);
    }
    drop(local);
    c.threads_live.fetch_sub(1, Ordering::SeqCst);
    c.exited.fetch_add(1, Ordering::Relaxed);
}

/// Body of a [`super::ConnectionJob`] run by an executor's thread (milestone 6's pool).
pub(super) fn executor_job<F: SessionFactory>(shared: &Shared, factory: &F, ctx: ConnContext) {
    let local = LocalStats::enter(&shared.slots);
    serve_one(shared, factory, ctx);
    drop(local);
}

/// Best-effort refusal: the factory's bytes without blocking, then close; counted as refused.
pub(super) fn refuse<F: SessionFactory>(shared: &Shared, factory: &F, fd: Arc<OwnedFd>) {
    let msg = factory.refusal();
    if !msg.is_empty() {
        let _ = sys::send(fd.as_fd(), msg, sys::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
    }
    // Counted before the close, so a peer that sees EOF also sees the count.
    shared.closed(CloseReason::Refused);
    close(fd);
}

/// A job dropped without running: refuse its connection (refusal bytes, close, count).
pub(super) fn abandon<F: SessionFactory>(shared: &Shared, factory: &F, ctx: ConnContext) {
    let ConnContext { id, peer, fd } = ctx;
    shared.unregister(id);
    shared.counters.refused_cap.fetch_add(1, Ordering::Relaxed);
    refuse(shared, factory, fd);
    shared.logger.warn(format_args!(
        "conn {id} from {peer}: no capacity to serve it, refused"
    ));
}

/// Drives one connection, catching a panic of the session (or of the driver), then closes it.
fn serve_one<F: SessionFactory>(shared: &Shared, factory: &F, ctx: ConnContext) {
    let ConnContext { id, peer, fd } = ctx;
    shared
        .logger
        .debug(format_args!("conn {id} from {peer}: started"));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        drive(shared, factory, fd.as_fd(), peer)
    }));
    let reason = match result {
        Ok(reason) => reason,
        Err(payload) => {
            shared.counters.panics.fetch_add(1, Ordering::Relaxed);
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            shared
                .logger
                .error(format_args!("conn {id} from {peer}: panic caught: {msg}"));
            CloseReason::Panic
        }
    };
    shared.unregister(id);
    // Counted before the close, so a peer that sees EOF also sees the count.
    shared.closed(reason);
    close(fd);
    shared
        .logger
        .debug(format_args!("conn {id} from {peer}: closed ({reason})"));
}

fn close(fd: Arc<OwnedFd>) {
    // The registry's clone is gone; a shutdown pass may hold one for a moment, in which case
    // the last holder closes it on drop.
    if let Ok(fd) = Arc::try_unwrap(fd) {
        let _ = sys::close(fd);
    }
}

/// Adds this thread's context switches and CPU time (from `/proc/self/task/TID`) to the totals.
fn sample_self(shared: &Shared) {
    if let Ok(s) = procfs::thread_sample(signal::current_tid()) {
        let c = &shared.counters;
        c.ctx_voluntary
            .fetch_add(s.voluntary_ctxt_switches, Ordering::Relaxed);
        c.ctx_nonvoluntary
            .fetch_add(s.nonvoluntary_ctxt_switches, Ordering::Relaxed);
        c.cpu_user_us.fetch_add(s.utime_us, Ordering::Relaxed);
        c.cpu_system_us.fetch_add(s.stime_us, Ordering::Relaxed);
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The driver loop. Returns why the connection ended.
fn drive<F: SessionFactory>(
    shared: &Shared,
    factory: &F,
    fd: BorrowedFd<'_>,
    peer: std::net::SocketAddr,
) -> CloseReason {
    let config = &shared.config;
    let mut session = factory.new_session(peer, Instant::now());
    if sys::set_write_timeout(fd, Some(config.write_tick)).is_err() {
        return CloseReason::IoError;
    }
    let _ = sys::set_nodelay(fd, true);
    let limit = session.input_limit().max(1);
    let chunk = config.read_buffer.clamp(1, limit);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk);
    // The SO_RCVTIMEO currently set (None = block forever).
    let mut rcv_timeout: Option<Duration> = None;
    let mut shutdown_begun = false;
    let mut eof = false;
    let io_error = || {
        if shared.forced.load(Ordering::Relaxed) {
            CloseReason::Shutdown
        } else {
            CloseReason::IoError
        }
    };
    loop {
        // Rule 3: write everything pending, in order; a partial send consumes what it took.
        let mut wrote = false;
        while !session.pending_output().is_empty() {
            match sys::send(fd, session.pending_output(), sys::MSG_NOSIGNAL) {
                Ok(n) => {
                    stats::local_bytes_out(n);
                    session.consume_output(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    // The peer is not reading. Deadlines still apply (rule 4 via `now`).
                    let now = Instant::now();
                    if session.poll_timeout().is_some_and(|d| now >= d) {
                        session.handle_timeout(now);
                    }
                    if shared.forced.load(Ordering::Relaxed) {
                        return CloseReason::Shutdown;
                    }
                    if matches!(session.state(), SessionState::Closed(_)) {
                        break;
                    }
                }
                Err(_) => return io_error(),
            }
        }
        while session.poll_event().is_some() {
            stats::local_event();
        }
        // Rule 5.
        match session.state() {
            SessionState::Closed(reason) => return reason,
            SessionState::Closing(reason) => {
                if session.pending_output().is_empty() {
                    return reason;
                }
                continue;
            }
            _ => {}
        }
        let now = Instant::now();
        if !shutdown_begun && shared.draining.load(Ordering::SeqCst) {
            shutdown_begun = true;
            session.begin_shutdown(now);
            continue;
        }
        let deadline = session.poll_timeout();
        if let Some(d) = deadline {
            if now >= d {
                session.handle_timeout(now);
                continue;
            }
        }
        // Rule 1: bytes left unconsumed (a session applying backpressure, e.g. a full
        // pipeline) are offered again once its output drained, before waiting for more.
        if wrote && !buf.is_empty() && session.state() == SessionState::Open {
            let used = session.handle_input(now, &buf).min(buf.len());
            if used > 0 {
                buf.drain(..used);
                continue;
            }
        }
        if eof {
            // The peer is gone and the session stays open: only time can move it.
            match deadline {
                Some(d) => {
                    std::thread::sleep(d.saturating_duration_since(now).min(config.write_tick));
                    continue;
                }
                None => return CloseReason::PeerClosed,
            }
        }
        // Rule 2: never more than input_limit unconsumed bytes; a full buffer with nothing
        // pending will never be consumed.
        if buf.len() >= limit {
            return CloseReason::InputOverflow;
        }
        // SO_RCVTIMEO from the session's deadline. Waking early is harmless (the loop re-checks),
        // so the socket option is only changed when the deadline is nearer than the setting.
        if let Some(d) = deadline {
            let want = d
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            if rcv_timeout.is_none_or(|cur| want < cur) {
                if sys::set_read_timeout(fd, Some(want)).is_err() {
                    return io_error();
                }
                rcv_timeout = Some(want);
            }
        }
        let old = buf.len();
        let room = (limit - old).min(chunk);
        buf.resize(old + room, 0);
        match sys::recv(fd, &mut buf[old..], 0) {
            Ok(0) => {
                buf.truncate(old);
                if shared.draining.load(Ordering::SeqCst) {
                    // shutdown(SHUT_RD) woke us, not the peer.
                    if !shutdown_begun {
                        shutdown_begun = true;
                        session.begin_shutdown(Instant::now());
                    }
                    if session.state() == SessionState::Open {
                        return CloseReason::Shutdown;
                    }
                } else {
                    session.handle_eof(Instant::now(), &buf);
                    buf.clear();
                    eof = true;
                }
            }
            Ok(n) => {
                buf.truncate(old + n);
                stats::local_bytes_in(n);
                if session.state() == SessionState::Open {
                    let used = session.handle_input(Instant::now(), &buf).min(buf.len());
                    buf.drain(..used);
                }
            }
            Err(e) => {
                buf.truncate(old);
                if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) {
                    // After a timeout, the next round re-reads the deadline.
                    rcv_timeout = rcv_timeout.filter(|_| !is_timeout(&e));
                    continue;
                }
                return io_error();
            }
        }
    }
}
