//! [`Mode::Blocking`](super::Mode::Blocking): blocking calls, one connection at a time.
//!
//! `accept4` → (`recv` → `send` until all sent)* → `close` → next `accept4`. Simple, and it
//! shows the cost: while one client is connected, even an idle one, every other client waits in
//! the kernel's accept queue (their `connect` succeeded, nobody reads them).
//!
//! The blocking calls come back every [`EchoConfig::tick`](super::EchoConfig::tick)
//! (`SO_RCVTIMEO`/`SO_SNDTIMEO` → `EAGAIN`) so that shutdown requests and timeouts are noticed;
//! a shutdown signal interrupts them at once (`EINTR`, handlers have no `SA_RESTART`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::buffer::EchoBuffer;
use super::{ConnMeta, Core, ShutdownStats, micros};
use crate::error::{CloseReason, Error};
use crate::observe::{Admission, ConnectionObserver};
use crate::sys::{self, MSG_NOSIGNAL, POLLIN, PollFd};

pub(super) fn run(
    core: &mut Core,
    listener: OwnedFd,
    wake: OwnedFd,
    mut reserve: Option<OwnedFd>,
    obs: &mut dyn ConnectionObserver,
) -> Result<Option<ShutdownStats>, Error> {
    let mut backoff = core.config.accept_backoff;
    let mut stats = ShutdownStats::default();
    while !core.handle.is_shutdown() {
        core.counters.inc(&core.counters.wakeups);
        match sys::accept4(listener.as_fd(), false) {
            Ok((fd, peer)) => {
                let accepted_at = Instant::now();
                backoff = core.config.accept_backoff;
                if obs.accepted(fd.as_fd(), peer, accepted_at) == Admission::Refuse {
                    let _ = sys::close(fd);
                    core.counters.inc(&core.counters.shed);
                    continue;
                }
                let meta = core.setup_connection(&fd, peer, accepted_at);
                if let Some(s) = serve(core, fd, meta, obs) {
                    stats = s;
                }
            }
            // SO_RCVTIMEO tick: nobody connected; loop to check for shutdown.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                core.counters.inc(&core.counters.eintr_retries);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
                core.counters.inc(&core.counters.accept_aborted);
            }
            Err(e) => {
                let fd_limit = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                if !(fd_limit
                    && core
                        .shed_with_reserve(&listener, &mut reserve, false)
                        .is_some())
                {
                    if !fd_limit && core.config.log_connections {
                        eprintln!("[m01] accept4 failed: {e}; backing off");
                    }
                    core.counters.inc(&core.counters.accept_backoffs);
                    // Sleep on the self-pipe so that a shutdown request still wakes us.
                    let mut fds = [PollFd::new(wake.as_fd(), POLLIN)];
                    let _ = sys::poll(&mut fds, Some(backoff));
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                }
            }
        }
    }
    let started = Instant::now();
    core.close_own(listener);
    core.close_own(wake);
    if let Some(fd) = reserve {
        core.close_own(fd);
    }
    stats.took_us += micros(started.elapsed());
    Ok(Some(stats))
}

/// Serves one connection until it ends or shutdown is requested. Returns the shutdown stats
/// when it was shutdown that ended it.
fn serve(
    core: &mut Core,
    fd: OwnedFd,
    mut meta: ConnMeta,
    obs: &mut dyn ConnectionObserver,
) -> Option<ShutdownStats> {
    let tick = Some(core.config.tick);
    let _ = sys::set_read_timeout(fd.as_fd(), tick);
    let _ = sys::set_write_timeout(fd.as_fd(), tick);
    let mut buf = EchoBuffer::new(core.config.buffer_size);
    let mut reading = true;
    let mut last_progress = Instant::now();
    let reason = loop {
        if core.handle.is_shutdown() {
            return Some(drain_and_close(core, fd, meta, buf, obs));
        }
        let now = Instant::now();
        if buf.len() > 0 {
            // Blocks until the kernel took something, or one tick passed.
            let pending = buf.pending();
            match sys::send(fd.as_fd(), pending, MSG_NOSIGNAL) {
                Ok(n) => {
                    if n < pending.len() {
                        meta.partial_writes += 1;
                        core.counters.inc(&core.counters.partial_writes);
                    }
                    buf.consumed(n);
                    meta.bytes_out += n as u64;
                    core.counters.add(&core.counters.bytes_out, n as u64);
                    last_progress = now;
                    obs.bytes_written(fd.as_fd(), n, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    core.counters.inc(&core.counters.send_would_block);
                    if core
                        .config
                        .write_timeout
                        .is_some_and(|t| now.duration_since(last_progress) > t)
                    {
                        break CloseReason::WriteTimeout;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    core.counters.inc(&core.counters.eintr_retries);
                }
                Err(e) => {
                    obs.io_error(fd.as_fd(), &e, now);
                    break CloseReason::of(&e);
                }
            }
        } else if reading {
            // Blocks until bytes arrive, EOF, or one tick passed.
            match sys::recv(fd.as_fd(), buf.space(), 0) {
                Ok(0) => {
                    reading = false;
                    core.counters.inc(&core.counters.eofs);
                    obs.read_eof(fd.as_fd(), now);
                }
                Ok(n) => {
                    buf.filled(n);
                    meta.bytes_in += n as u64;
                    core.counters.add(&core.counters.bytes_in, n as u64);
                    last_progress = now;
                    obs.bytes_read(fd.as_fd(), n, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    core.counters.inc(&core.counters.recv_would_block);
                    if core
                        .config
                        .read_timeout
                        .is_some_and(|t| now.duration_since(last_progress) > t)
                    {
                        break CloseReason::ReadTimeout;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    core.counters.inc(&core.counters.eintr_retries);
                }
                Err(e) => {
                    obs.io_error(fd.as_fd(), &e, now);
                    break CloseReason::of(&e);
                }
            }
        } else {
            break CloseReason::PeerClosed;
        }
    };
    core.close_connection(fd, meta, reason, false, false, obs);
    None
}

fn drain_and_close(
    core: &mut Core,
    fd: OwnedFd,
    mut meta: ConnMeta,
    mut buf: EchoBuffer,
    obs: &mut dyn ConnectionObserver,
) -> ShutdownStats {
    let started = Instant::now();
    let deadline = started + core.config.drain_timeout;
    let mut stats = ShutdownStats {
        connections_closed: 1,
        ..ShutdownStats::default()
    };
    let mut reason = CloseReason::Shutdown;
    // Echo what has already arrived (SIOCINQ > 0) and flush, until done or the deadline.
    while Instant::now() < deadline {
        let result = if buf.len() > 0 {
            sys::send(fd.as_fd(), buf.pending(), MSG_NOSIGNAL).map(|n| {
                buf.consumed(n);
                meta.bytes_out += n as u64;
                stats.bytes_flushed += n as u64;
            })
        } else if sys::inq(fd.as_fd()).unwrap_or(0) > 0 {
            sys::recv(fd.as_fd(), buf.space(), 0).map(|n| {
                buf.filled(n);
                meta.bytes_in += n as u64;
            })
        } else {
            break;
        };
        match result {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                reason = CloseReason::of(&e);
                break;
            }
        }
    }
    stats.bytes_abandoned = (buf.len() + sys::inq(fd.as_fd()).unwrap_or(0)) as u64;
    core.close_connection(
        fd,
        meta,
        reason,
        reason == CloseReason::Shutdown,
        false,
        obs,
    );
    stats.took_us = micros(started.elapsed());
    stats
}
