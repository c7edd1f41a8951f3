//! The live view: the connection table printed the way `ss -tn` prints sockets, with our
//! state and the kernel's side by side.
//!
//! ```text
//! OURS          KERNEL       RECV-Q SEND-Q LOCAL                 PEER                  IN STATE  BYTES IN/OUT  AGREE
//! ESTABLISHED   ESTAB        0      0      127.0.0.1:3000        127.0.0.1:40112       2.4s      12/12         3/3
//! CLOSE-WAIT    CLOSE-WAIT   0      0      127.0.0.1:3000        127.0.0.1:40114       0.2s      5/5           4/4
//! (released)    TIME-WAIT    0      0      127.0.0.1:3000        127.0.0.1:40020       12.1s     64/64         TIME-WAIT at release
//! ```
//!
//! Our columns come from a [`Snapshot`] (the server writes one periodically, see
//! [`crate::tracker::SnapshotConfig`]); the kernel's from `/proc/net/tcp` read when rendering,
//! matched by 4-tuple. Connections we released but the kernel still holds (TIME-WAIT,
//! LAST-ACK, orphaned FIN-WAIT-2) show as `(released)`, other sockets on the port as
//! `(untracked)`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::kernel::ProcTcpEntry;
use crate::table::{Conn, Lifecycle, TableStats};

/// One live connection of the table, for the view.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConnRow {
    /// `#slot.generation`.
    pub id: String,
    /// Descriptor.
    pub fd: i32,
    /// Our address.
    pub local: Option<SocketAddr>,
    /// Peer.
    pub peer: SocketAddr,
    /// Our state (RFC name).
    pub state: String,
    /// Time in the current state, ms.
    pub in_state_ms: u64,
    /// Age, ms.
    pub age_ms: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// The kernel's state at the last sample (`ss` name), if sampled.
    pub kernel_sampled: Option<String>,
    /// Samples that agreed / taken.
    pub agree: (u32, u32),
}

impl ConnRow {
    /// The row for `c` at `now_ns`.
    pub fn of(c: &Conn, now_ns: u64) -> ConnRow {
        let a = c.agreement();
        ConnRow {
            id: c.id().to_string(),
            fd: c.fd(),
            local: c.local(),
            peer: c.peer(),
            state: c.state().rfc_name().to_owned(),
            in_state_ms: now_ns.saturating_sub(c.entered_ns()) / 1_000_000,
            age_ms: now_ns.saturating_sub(c.opened_ns()) / 1_000_000,
            bytes_in: c.bytes_in(),
            bytes_out: c.bytes_out(),
            kernel_sampled: a.last_kernel.map(|k| k.ss_name().to_owned()),
            agree: (a.samples - a.mismatches, a.samples),
        }
    }
}

/// A connection the table released recently.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecentRow {
    /// Our address.
    pub local: Option<SocketAddr>,
    /// Peer.
    pub peer: SocketAddr,
    /// Our state when released.
    pub final_state: String,
    /// How long ago, ms (when the snapshot was taken).
    pub released_ms_ago: u64,
    /// The path, e.g. `CLOSED → ESTABLISHED → CLOSE-WAIT → LAST-ACK → CLOSED`.
    pub path: String,
    /// Bytes in.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
    /// Why it was closed.
    pub note: String,
}

impl RecentRow {
    /// The row for a finished lifecycle, at `now_ns`.
    pub fn of(l: &Lifecycle, now_ns: u64) -> RecentRow {
        RecentRow {
            local: l.local,
            peer: l.peer,
            final_state: l.final_state.rfc_name().to_owned(),
            released_ms_ago: now_ns.saturating_sub(l.released_ns) / 1_000_000,
            path: l.path.to_string(),
            bytes_in: l.bytes_in,
            bytes_out: l.bytes_out,
            note: l.note.to_owned(),
        }
    }
}

/// What the server writes for the live view.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Server process.
    pub pid: u32,
    /// Its listening address.
    pub listen: Option<SocketAddr>,
    /// Wall-clock time of the snapshot, ms since 1970.
    pub unix_ms: u64,
    /// Live connections.
    pub rows: Vec<ConnRow>,
    /// Recently released ones, newest first.
    pub recent: Vec<RecentRow>,
    /// Counters.
    pub stats: TableStats,
}

fn dur(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1e3)
    } else if ms < 3_600_000 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

fn addr(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "*".to_owned(), |a| a.to_string())
}

/// Renders live rows (ours) next to the kernel's entries, then the kernel's sockets on the
/// listening port that the table no longer holds.
pub fn render(snapshot: &Snapshot, kernel: &[ProcTcpEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:<12} {:>6} {:>6} {:<21} {:<21} {:>9} {:>15} {:>7}",
        "OURS", "KERNEL", "RECV-Q", "SEND-Q", "LOCAL", "PEER", "IN STATE", "BYTES IN/OUT", "AGREE"
    );
    let mut shown: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for r in &snapshot.rows {
        let k = r
            .local
            .and_then(|l| kernel.iter().find(|e| e.local == l && e.remote == r.peer));
        if let Some(l) = r.local {
            shown.push((l, r.peer));
        }
        let (kstate, rq, sq) = match k {
            Some(e) => (e.state.ss_name().to_owned(), e.rx_queue, e.tx_queue),
            None => ("-".to_owned(), 0, 0),
        };
        let _ = writeln!(
            out,
            "{:<13} {:<12} {:>6} {:>6} {:<21} {:<21} {:>9} {:>15} {:>7}",
            r.state,
            kstate,
            rq,
            sq,
            addr(r.local),
            r.peer,
            dur(r.in_state_ms),
            format!("{}/{}", r.bytes_in, r.bytes_out),
            format!("{}/{}", r.agree.0, r.agree.1),
        );
    }
    if let Some(listen) = snapshot.listen {
        for e in kernel.iter().filter(|e| {
            e.local.port() == listen.port()
                && e.state != crate::state::KernelState::Listen
                && !shown.contains(&(e.local, e.remote))
        }) {
            let ours = snapshot
                .recent
                .iter()
                .find(|r| r.local == Some(e.local) && r.peer == e.remote);
            let (label, bytes, note) = match ours {
                Some(r) => (
                    "(released)",
                    format!("{}/{}", r.bytes_in, r.bytes_out),
                    format!("{} at release", r.final_state),
                ),
                None => ("(untracked)", "-".into(), String::new()),
            };
            let timer = if e.timer_ms > 0 {
                format!("{} {}", e.timer.ss_name(), dur(e.timer_ms))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<13} {:<12} {:>6} {:>6} {:<21} {:<21} {:>9} {:>15} {} {}",
                label,
                e.state.ss_name(),
                e.rx_queue,
                e.tx_queue,
                e.local,
                e.remote,
                "",
                bytes,
                note,
                timer
            );
        }
    }
    let s = &snapshot.stats;
    let dist: Vec<String> = s
        .distribution
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{} {n}", st.rfc_name()))
        .collect();
    let _ = writeln!(
        out,
        "table: {} live / {} slots [{}]; {} transitions ({:.1}/s); TIME-WAIT ours {} (peak {}); kernel agreed {}/{} samples",
        s.live,
        s.capacity,
        dist.join(", "),
        s.transitions,
        s.transitions_per_sec,
        s.time_wait_now,
        s.time_wait_peak,
        s.samples - s.mismatches,
        s.samples
    );
    out
}
