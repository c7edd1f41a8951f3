//! What the server measures about itself, and readers for the kernel's own views in `/proc`.
//!
//! - [`ServerCounters`]: live atomics (accepted, bytes, EINTR retries, resets, `EMFILE` hits…),
//!   readable from another thread while the server runs.
//! - [`ConnRecord`]: one finished connection: peer address, setup and teardown times, bytes each
//!   way, kernel buffer sizes and queue depths, why it closed.
//! - [`FdUsage`]: descriptors the server holds against `RLIMIT_NOFILE`.
//! - `/proc` readers: descriptor count and memory of any process, `TIME_WAIT` sockets per port.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use serde::Serialize;

use crate::error::CloseReason;

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Live counters of one server, updated with `Relaxed` atomics by the server thread.
        #[derive(Debug, Default)]
        pub struct ServerCounters {
            $( $(#[$doc])* pub $name: AtomicU64, )*
            /// Kernel thread id of the thread inside [`crate::EchoServer::run`] (0 before it starts).
            pub server_tid: AtomicI32,
        }

        /// A copy of [`ServerCounters`].
        #[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct CountersSnapshot {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl ServerCounters {
            /// Reads every counter.
            pub fn snapshot(&self) -> CountersSnapshot {
                CountersSnapshot { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Connections accepted and served.
    accepted,
    /// Connections closed (for any reason).
    closed,
    /// Connections open right now.
    active,
    /// Most connections open at once.
    peak_active,
    /// Bytes received from clients.
    bytes_in,
    /// Bytes echoed back.
    bytes_out,
    /// Calls that returned `EINTR` and were retried.
    eintr_retries,
    /// `recv` that returned `EAGAIN` (spurious wake-up, or a blocking-mode timeout tick).
    recv_would_block,
    /// `send` that returned `EAGAIN`: the kernel send buffer was full.
    send_would_block,
    /// `send` that took fewer bytes than offered; the tail stayed in our buffer.
    partial_writes,
    /// Times a connection's buffer filled up and reading was paused (backpressure).
    read_pauses,
    /// Connections ended by `ECONNRESET`.
    resets,
    /// Connections ended by `EPIPE`.
    broken_pipes,
    /// Connections that reached EOF (the peer's FIN).
    eofs,
    /// `accept4` failures with `EMFILE`/`ENFILE`.
    fd_limit_hits,
    /// Connections accepted into the reserve slot (or over `max_connections`) and closed at once.
    shed,
    /// Times the listener was taken out of the poll set to back off.
    accept_backoffs,
    /// `accept4` failures with `ECONNABORTED` (the client gave up while queued).
    accept_aborted,
    /// Connections closed for silence past the read timeout.
    read_timeouts,
    /// Connections closed because their output did not move past the write timeout.
    write_timeouts,
    /// Connections closed by some other errno.
    other_errors,
    /// `poll` wake-ups (or blocking-mode loop turns).
    wakeups,
}

impl ServerCounters {
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        let _ = self;
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(&self, counter: &AtomicU64) {
        self.add(counter, 1);
    }

    pub(crate) fn opened(&self) {
        self.inc(&self.accepted);
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_active.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn closed_one(&self, reason: CloseReason) {
        self.inc(&self.closed);
        self.active.fetch_sub(1, Ordering::Relaxed);
        match reason {
            CloseReason::PeerClosed => {}
            CloseReason::Reset => self.inc(&self.resets),
            CloseReason::BrokenPipe => self.inc(&self.broken_pipes),
            CloseReason::ReadTimeout => self.inc(&self.read_timeouts),
            CloseReason::WriteTimeout => self.inc(&self.write_timeouts),
            CloseReason::Shutdown | CloseReason::Requested | CloseReason::Aborted => {}
            CloseReason::Error { .. } => self.inc(&self.other_errors),
        }
    }
}

/// One connection's life, recorded when it closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnRecord {
    /// The client's address, as `accept4` returned it.
    pub peer: SocketAddr,
    /// The descriptor number it had.
    pub fd: i32,
    /// When `accept4` returned, µs since the server started running.
    pub accepted_at_us: u64,
    /// Setup cost: from `accept4` returning to the socket being ready for `poll` (options set and
    /// read back), ns.
    pub setup_ns: u64,
    /// Teardown cost: the `shutdown`/`close` calls, ns.
    pub teardown_ns: u64,
    /// Accept to close, µs.
    pub lifetime_us: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes echoed.
    pub bytes_out: u64,
    /// `SO_SNDBUF` after setup (0 when not inspected).
    pub sndbuf: u64,
    /// `SO_RCVBUF` after setup (0 when not inspected).
    pub rcvbuf: u64,
    /// `TCP_NODELAY` read back with `getsockopt` after setting it.
    pub nodelay: bool,
    /// Largest `SIOCOUTQ` (unacknowledged bytes in the kernel send queue) seen when reading paused.
    pub max_outq: u64,
    /// Largest `SIOCINQ` (received, unread bytes in the kernel receive queue) seen when reading paused.
    pub max_inq: u64,
    /// Times reading was paused because our buffer was full.
    pub read_pauses: u64,
    /// Partial `send`s.
    pub partial_writes: u64,
    /// Why it ended.
    pub reason: CloseReason,
}

/// Descriptors the server holds, against the process limit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FdUsage {
    /// Descriptors the server still held when `run` returned (0 after a clean exit).
    pub open_at_exit: u64,
    /// Most descriptors held at once (listener, self-pipe, reserve, connections).
    pub peak_open: u64,
    /// `RLIMIT_NOFILE` soft limit.
    pub soft_limit: u64,
    /// `RLIMIT_NOFILE` hard limit.
    pub hard_limit: u64,
}

/// Open descriptors of process `pid` (`"self"` for this one), counted in `/proc/PID/fd`, not
/// counting the directory descriptor used to read it.
pub fn proc_fd_count(pid: &str) -> io::Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    let mut n = 0;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        // The descriptor read_dir itself holds shows up as a link to this very directory.
        if pid == "self" {
            if let Ok(target) = fs::read_link(entry.path()) {
                if target.to_string_lossy().starts_with("/proc/")
                    && target.to_string_lossy().ends_with("/fd")
                {
                    continue;
                }
            }
        }
        n += 1;
    }
    Ok(n)
}

/// A field of `/proc/PID/status` in its first unit (`VmRSS` → KiB, `voluntary_ctxt_switches`).
pub fn proc_status_field(pid: &str, field: &str) -> io::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let value = rest.split_whitespace().next().unwrap_or("0");
            return value
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, line.to_owned()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{field} not in /proc/{pid}/status"),
    ))
}

/// TCP sockets in `/proc/net/tcp` and `/proc/net/tcp6` in `state` (hex, `06` = TIME_WAIT) whose
/// local port is `port` (server side) and whose remote port is `port` (client side).
pub fn tcp_sockets_in_state(port: u16, state: &str) -> io::Result<(usize, usize)> {
    let mut local = 0;
    let mut remote = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match fs::read_to_string(table) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || !cols[3].eq_ignore_ascii_case(state) {
                continue;
            }
            let port_of = |col: &str| {
                col.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if port_of(cols[1]) == Some(port) {
                local += 1;
            }
            if port_of(cols[2]) == Some(port) {
                remote += 1;
            }
        }
    }
    Ok((local, remote))
}

/// `/proc/net/tcp` state code of TIME_WAIT.
pub const TCP_TIME_WAIT: &str = "06";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_proc_fd_count_self_sees_new_descriptor() {
        let before = proc_fd_count("self").unwrap();
        let f = fs::File::open("/dev/null").unwrap();
        let during = proc_fd_count("self").unwrap();
        drop(f);
        // Other tests run in parallel and open descriptors too: only plausibility here.
        assert!(before >= 3 && during >= 3, "stdin, stdout, stderr at least");
    }

    #[test]
    fn test_proc_status_rss_is_positive() {
        assert!(proc_status_field("self", "VmRSS").unwrap() > 0);
        assert!(proc_status_field("self", "NoSuchField").is_err());
    }

    #[test]
    fn test_counters_snapshot_tracks_active_and_peak() {
        let c = ServerCounters::default();
        c.opened();
        c.opened();
        c.closed_one(CloseReason::Reset);
        let s = c.snapshot();
        assert_eq!(
            (s.accepted, s.active, s.peak_active, s.closed, s.resets),
            (2, 1, 2, 1, 1)
        );
    }
}
