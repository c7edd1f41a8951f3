//! Hooks into the echo server's connection lifecycle, for code that watches connections without
//! owning the loop (milestone 2's connection table is the first user).
//!
//! [`EchoServer::run_with_observer`](crate::EchoServer::run_with_observer) calls a
//! [`ConnectionObserver`] at every point where the server learns something about a connection
//! from the kernel (`accept4` returned it, `recv` returned bytes, 0 = the peer's FIN, or an
//! errno such as `ECONNRESET`) or changes it (`shutdown(SHUT_WR)`, `close`). Every hook gets the
//! descriptor as a [`BorrowedFd`], so the observer may query the socket (`getsockopt(TCP_INFO)`,
//! `SIOCOUTQ`) or set options on it, but never owns or closes it. Every method has a no-op
//! default; [`NoopObserver`] is what plain [`EchoServer::run`](crate::EchoServer::run) uses.
//!
//! The observer can also steer (in [`Mode::Poll`](crate::Mode::Poll)): after each turn of the
//! loop the server drains [`ConnectionObserver::poll_action`] and applies each [`Action`]
//! (half-close, close, abort), and it wakes up by [`ConnectionObserver::next_deadline`] at the
//! latest, so an observer can implement its own timeouts with time passed in. In
//! [`Mode::Blocking`](crate::Mode::Blocking) the events are reported but actions and deadlines
//! are not applied.
//!
//! Order of calls for one connection:
//!
//! ```text
//! accepted ─► (bytes_read | bytes_written)* ─► [read_eof] ─► [io_error] ─► [shutdown_write] ─► closing
//! ```
//!
//! (`started` is called once, before any connection, with the listening address.)
//!
//! `shutdown_write` comes either from an [`Action::ShutdownWrite`] (after which the connection
//! keeps reading, and discards what it reads, until the peer's FIN) or from a graceful close
//! (server shutdown, or [`EchoConfig::fin_before_close`](crate::EchoConfig::fin_before_close)),
//! in which case `closing` follows at once. `closing` is always the last call, made while the
//! descriptor is still open.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Instant;

use crate::error::CloseReason;

/// What the observer says about a connection `accept4` just returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Serve it.
    Admit,
    /// Close it at once (a full connection table, say); counted as `shed`. No further hook is
    /// called for it.
    Refuse,
}

/// Something the observer asks the server to do to one connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `shutdown(SHUT_WR)`: send our FIN, keep reading until the peer's FIN (half-close). Bytes
    /// still in our echo buffer are dropped, and later input is read and discarded (there is
    /// no way left to echo it).
    ShutdownWrite,
    /// `close`: FIN after whatever the kernel still has queued ([`CloseReason::Requested`]).
    Close,
    /// `SO_LINGER {on, 0}` then `close`: the kernel discards its queues and sends RST; no
    /// TIME_WAIT ([`CloseReason::Aborted`]).
    Abort,
    /// Nothing to the socket: call [`ConnectionObserver::inspect`] with it, so the observer can
    /// look at what the kernel changed without waking the server (the ACK of our FIN).
    Inspect,
}

/// Hooks called by the echo server; every method defaults to doing nothing.
pub trait ConnectionObserver {
    /// The server starts serving on `local` (called once, first).
    fn started(&mut self, local: SocketAddr, now: Instant) {
        let _ = (local, now);
    }

    /// `accept4` returned `fd` for `peer` (before the server sets `TCP_NODELAY` and buffer
    /// sizes on it). `now` is when `accept4` returned.
    fn accepted(&mut self, fd: BorrowedFd<'_>, peer: SocketAddr, now: Instant) -> Admission {
        let _ = (fd, peer, now);
        Admission::Admit
    }

    /// `recv` returned `n > 0` bytes.
    fn bytes_read(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        let _ = (fd, n, now);
    }

    /// `send` took `n > 0` bytes.
    fn bytes_written(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        let _ = (fd, n, now);
    }

    /// `recv` returned 0: the peer's FIN (it will send nothing more).
    fn read_eof(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        let _ = (fd, now);
    }

    /// The server called `shutdown(SHUT_WR)`: our FIN is queued.
    fn shutdown_write(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        let _ = (fd, now);
    }

    /// `recv` or `send` failed with something other than `EAGAIN`/`EINTR` (`ECONNRESET` = the
    /// peer's RST, `ETIMEDOUT` = retransmissions or keepalive probes gave up, `EPIPE`). The
    /// connection is closed next.
    fn io_error(&mut self, fd: BorrowedFd<'_>, err: &io::Error, now: Instant) {
        let _ = (fd, err, now);
    }

    /// The server is about to `close` the descriptor, for `reason`.
    fn closing(&mut self, fd: BorrowedFd<'_>, reason: CloseReason, now: Instant) {
        let _ = (fd, reason, now);
    }

    /// The server hands the descriptor over because the observer asked ([`Action::Inspect`]).
    fn inspect(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        let _ = (fd, now);
    }

    /// The latest time the server should call [`poll_action`](Self::poll_action) again.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The next action to apply, if any. Called repeatedly after each turn of the loop until it
    /// returns `None`; an action for a descriptor the server no longer holds is ignored.
    fn poll_action(&mut self, now: Instant) -> Option<(RawFd, Action)> {
        let _ = now;
        None
    }
}

/// The observer that observes nothing.
#[derive(Copy, Clone, Debug, Default)]
pub struct NoopObserver;

impl ConnectionObserver for NoopObserver {}
