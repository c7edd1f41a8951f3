//! Errors of the echo server.
//!
//! Two layers, classified by origin:
//!
//! - [`Error`] is what stops the *server*: a local setup failure (cannot bind, cannot create the
//!   self-pipe) or a broken invariant of the event loop (`poll` itself failing). Peers cannot cause
//!   one.
//! - [`CloseReason`] is what ends one *connection*: the peer's doing (EOF, RST, a broken pipe,
//!   silence past the timeout) or a local decision (shutdown, shedding under `EMFILE`). These are
//!   recorded and counted, never returned, never a panic.

use std::io;
use std::net::SocketAddr;

use serde::Serialize;

/// A failure that stops the server (or keeps it from starting).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `socket(2)` failed for the listener.
    #[error("socket(2) for the listener failed: {0}")]
    Socket(#[source] io::Error),
    /// A `setsockopt`/`fcntl` on the listener failed.
    #[error("cannot set {option} on the listener: {source}")]
    SocketOption {
        /// Which option (`SO_REUSEADDR`, `O_NONBLOCK`…).
        option: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// `bind(2)` failed (`EADDRINUSE` without `SO_REUSEADDR`, `EACCES` below port 1024…).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// `listen(2)` failed.
    #[error("listen(backlog = {backlog}) failed: {source}")]
    Listen {
        /// The backlog asked for.
        backlog: i32,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The self-pipe or the reserve descriptor could not be created.
    #[error("cannot create {what}: {source}")]
    Setup {
        /// What was being created.
        what: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// `poll(2)` failed with something other than `EINTR` (a bug or memory exhaustion).
    #[error("poll(2) failed: {0}")]
    Poll(#[source] io::Error),
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Why a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer sent FIN (`recv` returned 0) and everything it sent was echoed.
    PeerClosed,
    /// `ECONNRESET`: the peer sent RST (closed with unread data, or `SO_LINGER` 0).
    Reset,
    /// `EPIPE`: we wrote after the peer was gone; `MSG_NOSIGNAL` turned the signal into this error.
    BrokenPipe,
    /// Nothing arrived for longer than the read timeout.
    ReadTimeout,
    /// Pending output did not move for longer than the write timeout.
    WriteTimeout,
    /// The server shut down (graceful sequence).
    Shutdown,
    /// An observer asked for the close ([`Action::Close`](crate::observe::Action::Close)).
    Requested,
    /// An observer asked for an abortive close: `SO_LINGER` 0, RST
    /// ([`Action::Abort`](crate::observe::Action::Abort)).
    Aborted,
    /// Some other errno.
    Error {
        /// The raw errno.
        errno: i32,
    },
}

impl CloseReason {
    /// The reason an I/O error implies.
    pub fn of(err: &io::Error) -> CloseReason {
        match err.raw_os_error() {
            Some(libc::ECONNRESET) => CloseReason::Reset,
            Some(libc::EPIPE) => CloseReason::BrokenPipe,
            Some(libc::ETIMEDOUT) => CloseReason::WriteTimeout,
            Some(errno) => CloseReason::Error { errno },
            None => CloseReason::Error { errno: 0 },
        }
    }
}
