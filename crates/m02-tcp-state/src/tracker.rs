//! The driver side: [`Tracker`] turns what a server sees on its sockets into [`Event`]s for the
//! [`ConnTable`], checks the table against the kernel, and carries the table's decisions back
//! to the server.
//!
//! It implements milestone 1's [`ConnectionObserver`], so the m01 echo server runs with a
//! connection table by `EchoServer::run_with_observer(&mut tracker)`; no second accept loop.
//! It can also track sockets we open ourselves ([`Tracker::open_active`]), which is how the
//! experiments follow SYN-SENT.
//!
//! ## Observation → event
//!
//! | hook / call | table event |
//! |---|---|
//! | `accepted` | insert ([`Event::Accepted`]); sets keepalive and `TCP_LINGER2` |
//! | `read_eof`, or `POLLRDHUP` while data is still queued | [`Event::PeerFin`] |
//! | `shutdown_write` | [`Event::ShutdownWrite`] |
//! | `io_error` `ECONNRESET`/`EPIPE`/`ECONNREFUSED` | [`Event::Reset`] |
//! | `io_error` `ETIMEDOUT` | [`Event::TimedOut`] (keepalive or retransmissions gave up) |
//! | `closing` | [`Event::Close`] or [`Event::Abort`], then release |
//! | `inspect` (asked for every [`INSPECT_EVERY`] while our FIN is unacknowledged) | [`Event::FinAcked`] when `SIOCOUTQ` = 0 |
//! | `SIOCOUTQ` = 0 while our FIN is out | [`Event::FinAcked`] (checked at every hook) |
//!
//! ## Checking against the kernel
//!
//! With [`TrackerConfig::verify`], every hook ends with a *sample*: our state, then
//! `getsockopt(TCP_INFO)` `tcpi_state`, then our state again. The kernel moves between two
//! syscalls (an ACK of our FIN can arrive at any moment), so the sample agrees when the
//! kernel's state is the one we had just before or just after reading it, under
//! [`agrees_with_fd`] (which knows that a TIME-WAIT connection's descriptor reads `CLOSE`).
//! A sample that disagrees is read again up to [`SAMPLE_REREADS`] times, microseconds apart:
//! the kernel updates a connection in several steps (on loopback, on the other CPU, in the
//! middle of our two reads) and `tcpi_state` is read without the socket lock. Samples that
//! needed a re-read are counted as *transient*; only one that still disagrees is a mismatch.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use m01_raw_sockets::CloseReason;
use m01_raw_sockets::observe::{Action, Admission, ConnectionObserver};
use m01_raw_sockets::sys;
use serde::Serialize;

use crate::kernel::{self, Keepalive, TcpInfo};
use crate::state::{Event, KernelState, TcpState, agrees_with_fd};
use crate::table::{ConnId, ConnTable, Decision, Lifecycle, Origin, TableConfig, TableFull};
use crate::view::{ConnRow, Snapshot};

/// Where and how often the live view's snapshot is written.
#[derive(Clone, Debug)]
pub struct SnapshotConfig {
    /// The JSON file (`zyphos conns` reads it); written to `PATH.tmp` then renamed. `None`:
    /// [`default_conns_file`] of the listening port.
    pub path: Option<PathBuf>,
    /// How often.
    pub every: Duration,
}

/// Where a server on `port` writes its snapshot when no path is given:
/// `$TMPDIR/zyphos-conns-PORT.json`.
pub fn default_conns_file(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("zyphos-conns-{port}.json"))
}

/// Tracker settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TrackerConfig {
    /// The table's.
    pub table: TableConfig,
    /// Keepalive to set on every accepted connection (`None`: leave the kernel's default, off).
    pub keepalive: Option<Keepalive>,
    /// `TCP_LINGER2` for accepted connections: the kernel's own FIN-WAIT-2 limit once we have
    /// closed the descriptor. Default: the table's `fin_wait_timeout`.
    pub linger2: Option<Duration>,
    /// Sample the kernel's state at every hook and count disagreements. Default off.
    pub verify: bool,
    /// Write the live view's snapshot periodically.
    pub snapshot: Option<SnapshotConfig>,
}

impl Default for TrackerConfig {
    fn default() -> TrackerConfig {
        let table = TableConfig::default();
        TrackerConfig {
            linger2: table.fin_wait_timeout,
            table,
            keepalive: None,
            verify: false,
            snapshot: None,
        }
    }
}

/// One comparison with the kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Our state just before reading the kernel's.
    pub before: TcpState,
    /// The kernel's (`tcpi_state`).
    pub kernel: KernelState,
    /// Our state just after.
    pub after: TcpState,
    /// Whether they agree.
    pub agreed: bool,
}

/// How many times a disagreeing sample is read again before it counts (see
/// [`Tracker::sample`]).
pub const SAMPLE_REREADS: u32 = 3;

/// Connection table + the glue to a real server. See the module docs.
#[derive(Debug)]
pub struct Tracker {
    table: ConnTable,
    /// Descriptor → connection, indexed by descriptor number (descriptors are small dense
    /// integers, like the kernel's own fd table).
    fds: Vec<Option<ConnId>>,
    keepalive: Option<Keepalive>,
    linger2: Option<Duration>,
    verify: bool,
    snapshot: Option<SnapshotConfig>,
    next_snapshot: Option<Instant>,
    local: Option<SocketAddr>,
    option_errors: u64,
    /// When to next look at connections waiting for the ACK of our FIN.
    inspect_due: Option<Instant>,
    /// Descriptors to hand back as [`Action::Inspect`].
    inspections: std::collections::VecDeque<RawFd>,
}

/// How often connections whose FIN is unacknowledged are looked at between events: the ACK of
/// our FIN wakes nobody (it often comes late, after the peer's delayed-ACK timer), so without
/// a look the model would see FIN-WAIT-2 or CLOSED only at the next event. This is the
/// resolution of FIN-WAIT-1 and LAST-ACK dwell times.
pub const INSPECT_EVERY: Duration = Duration::from_millis(5);

fn event_of_errno(err: &io::Error) -> Event {
    match err.raw_os_error() {
        Some(libc::ETIMEDOUT) => Event::TimedOut,
        // ECONNRESET, EPIPE (after a reset or our own shutdown), ECONNREFUSED, EHOSTUNREACH…:
        // the connection is gone.
        _ => Event::Reset,
    }
}

/// A short name for a close reason (kept in each [`Lifecycle`]).
pub fn reason_name(r: CloseReason) -> &'static str {
    match r {
        CloseReason::PeerClosed => "peer_closed",
        CloseReason::Reset => "reset",
        CloseReason::BrokenPipe => "broken_pipe",
        CloseReason::ReadTimeout => "read_timeout",
        CloseReason::WriteTimeout => "write_timeout",
        CloseReason::Shutdown => "shutdown",
        CloseReason::Requested => "requested",
        CloseReason::Aborted => "aborted",
        _ => "error",
    }
}

impl Tracker {
    /// A tracker whose table's clock starts at `now`. All memory is allocated here.
    pub fn new(config: TrackerConfig, now: Instant) -> Tracker {
        let cap = config.table.capacity;
        let next_snapshot = config.snapshot.as_ref().map(|_| now);
        Tracker {
            table: ConnTable::new(config.table, now),
            // Room for descriptors up to a little above the capacity without reallocating.
            fds: Vec::with_capacity(cap + 64),
            keepalive: config.keepalive,
            linger2: config.linger2,
            verify: config.verify,
            snapshot: config.snapshot,
            next_snapshot,
            local: None,
            option_errors: 0,
            inspect_due: None,
            inspections: std::collections::VecDeque::with_capacity(cap),
        }
    }

    /// The table.
    pub fn table(&self) -> &ConnTable {
        &self.table
    }

    /// The table, mutably (to drain lifecycles, for instance).
    pub fn table_mut(&mut self) -> &mut ConnTable {
        &mut self.table
    }

    /// The connection behind descriptor `fd`.
    pub fn id_of(&self, fd: RawFd) -> Option<ConnId> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i).copied().flatten())
    }

    /// The server's listening address (shown by the live view).
    pub fn set_local(&mut self, addr: SocketAddr) {
        self.local = Some(addr);
    }

    /// Option calls (keepalive, `TCP_LINGER2`) that failed.
    pub fn option_errors(&self) -> u64 {
        self.option_errors
    }

    /// Bytes per live connection in this process as the tracker accounts them: one table
    /// slot plus one entry of the descriptor index.
    pub fn bytes_per_connection(&self) -> usize {
        self.table.memory().per_connection_bytes + std::mem::size_of::<Option<ConnId>>()
    }

    fn open(
        &mut self,
        fd: BorrowedFd<'_>,
        peer: SocketAddr,
        origin: Origin,
        now: Instant,
    ) -> Result<ConnId, TableFull> {
        let local = sys::getsockname(fd).ok();
        let id = self
            .table
            .insert(fd.as_raw_fd(), local, peer, origin, now)?;
        let i = usize::try_from(fd.as_raw_fd()).unwrap_or(0);
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        self.fds[i] = Some(id);
        Ok(id)
    }

    /// Tracks a connection `accept4` returned: ESTABLISHED. Sets keepalive and
    /// `TCP_LINGER2` as configured.
    pub fn open_passive(
        &mut self,
        fd: BorrowedFd<'_>,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<ConnId, TableFull> {
        let id = self.open(fd, peer, Origin::Passive, now)?;
        if let Some(k) = &self.keepalive {
            if kernel::set_keepalive(fd, k).is_err() {
                self.option_errors += 1;
            }
        }
        if let Some(l) = self.linger2 {
            if kernel::set_linger2(fd, l).is_err() {
                self.option_errors += 1;
            }
        }
        self.maybe_sample(id, fd, now);
        Ok(id)
    }

    /// Tracks a socket on which we just called a non-blocking `connect` (SYN-SENT).
    pub fn open_active(
        &mut self,
        fd: BorrowedFd<'_>,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<ConnId, TableFull> {
        let id = self.open(fd, peer, Origin::Active, now)?;
        self.maybe_sample(id, fd, now);
        Ok(id)
    }

    /// Applies `event` observed on `fd`, then looks for what happened since
    /// ([`refresh`](Self::refresh)) and samples the kernel if verifying. Returns the state
    /// after it.
    ///
    /// Order matters: the event happened at its syscall, before anything `refresh` can see
    /// now. One exception: before applying the peer's FIN we check whether our own FIN was
    /// acknowledged already, as its ACK normally arrives first (FIN-WAIT-2 → TIME-WAIT rather
    /// than CLOSING).
    pub fn observe(&mut self, fd: BorrowedFd<'_>, event: Event, now: Instant) -> Option<TcpState> {
        let id = self.id_of(fd.as_raw_fd())?;
        if event == Event::PeerFin {
            self.check_fin_acked(id, fd, now);
        }
        let _ = self.table.apply(id, event, now);
        self.refresh(id, fd, now);
        self.maybe_sample(id, fd, now);
        let state = self.table.get(id).map(|c| c.state());
        if state.is_some_and(TcpState::awaits_fin_ack) && self.inspect_due.is_none() {
            self.inspect_due = Some(now + INSPECT_EVERY);
        }
        state
    }

    /// A look between events ([`Action::Inspect`]): did our FIN get acknowledged? Samples the
    /// kernel when the state changed.
    pub fn inspect(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        let Some(id) = self.id_of(fd.as_raw_fd()) else {
            return;
        };
        let before = self.table.get(id).map(|c| c.state());
        self.refresh(id, fd, now);
        if self.table.get(id).map(|c| c.state()) != before {
            self.maybe_sample(id, fd, now);
        }
    }

    /// Looks for what no hook reports: our FIN acknowledged ([`check_fin_acked`]), the
    /// peer's FIN arrived behind unread data (`POLLRDHUP`), a connect finished (`POLLOUT` and
    /// `SO_ERROR`).
    ///
    /// [`check_fin_acked`]: Self::check_fin_acked
    pub fn refresh(&mut self, id: ConnId, fd: BorrowedFd<'_>, now: Instant) {
        self.check_fin_acked(id, fd, now);
        let Some(state) = self.table.get(id).map(|c| c.state()) else {
            return;
        };
        match state {
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2 => {
                // The peer's FIN may have arrived behind data we have not read yet: POLLRDHUP
                // says so before `recv` can. POLLERR (an RST or a timeout) is left for the
                // driver's `recv` to report, so that its errno is not lost.
                let mut p = [sys::PollFd::new(fd, sys::POLLRDHUP)];
                if sys::poll(&mut p, Some(Duration::ZERO)).is_ok_and(|n| n == 1)
                    && p[0].has(sys::POLLRDHUP)
                    && !p[0].has(sys::POLLERR)
                {
                    // Our FIN may have been acknowledged since the check above, by the very
                    // segment that carried the peer's FIN or just before it: TCP takes a
                    // segment's ACK before its FIN, so count the acknowledgement first
                    // (FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT, not the simultaneous close's
                    // FIN-WAIT-1 → CLOSING, which a FIN that does not acknowledge ours makes:
                    // then SIOCOUTQ is still above 0 here).
                    self.check_fin_acked(id, fd, now);
                    let _ = self.table.apply(id, Event::PeerFin, now);
                    self.check_fin_acked(id, fd, now);
                }
            }
            TcpState::SynSent => {
                let mut p = [sys::PollFd::new(fd, sys::POLLOUT)];
                if sys::poll(&mut p, Some(Duration::ZERO)).is_ok_and(|n| n == 1) {
                    let event = match sys::take_error(fd) {
                        Ok(None) => Event::Connected,
                        Ok(Some(e)) => event_of_errno(&e),
                        Err(_) => return,
                    };
                    let _ = self.table.apply(id, event, now);
                }
            }
            _ => {}
        }
    }

    /// If our FIN is out and `SIOCOUTQ` (bytes sent and not acknowledged, the FIN counting
    /// one) is 0, the FIN was acknowledged: [`Event::FinAcked`].
    pub fn check_fin_acked(&mut self, id: ConnId, fd: BorrowedFd<'_>, now: Instant) {
        let awaits = self
            .table
            .get(id)
            .is_some_and(|c| c.state().awaits_fin_ack());
        if awaits && sys::outq(fd).is_ok_and(|q| q == 0) {
            let _ = self.table.apply(id, Event::FinAcked, now);
        }
    }

    /// One bracketed comparison of our state with `tcpi_state` (see the module docs).
    pub fn sample(&mut self, fd: BorrowedFd<'_>, now: Instant) -> Option<(Sample, TcpInfo)> {
        let id = self.id_of(fd.as_raw_fd())?;
        self.sample_id(id, fd, now)
    }

    fn sample_id(
        &mut self,
        id: ConnId,
        fd: BorrowedFd<'_>,
        now: Instant,
    ) -> Option<(Sample, TcpInfo)> {
        let mut rereads = 0;
        loop {
            self.refresh(id, fd, now);
            let before = self.table.get(id)?.state();
            let info = kernel::tcp_info(fd).ok()?;
            self.refresh(id, fd, now);
            let after = self.table.get(id)?.state();
            let kernel = info.kernel_state();
            let agreed = agrees_with_fd(before, kernel) || agrees_with_fd(after, kernel);
            if !agreed && rereads < SAMPLE_REREADS {
                // The kernel may be half-way through a transition on another CPU (it updates
                // snd_una, then the state; tcpi_state is read without the socket lock).
                // Look again a few microseconds later before calling it a disagreement.
                rereads += 1;
                std::thread::sleep(Duration::from_micros(20 << rereads));
                continue;
            }
            self.table
                .record_sample(id, after, kernel, agreed, rereads > 0);
            return Some((
                Sample {
                    before,
                    kernel,
                    after,
                    agreed,
                },
                info,
            ));
        }
    }

    fn maybe_sample(&mut self, id: ConnId, fd: BorrowedFd<'_>, now: Instant) {
        if self.verify {
            let _ = self.sample_id(id, fd, now);
        }
    }

    /// The descriptor is about to be closed: final refresh and sample, then [`Event::Close`]
    /// (or [`Event::Abort`]) and release. Returns the finished lifecycle.
    pub fn close(
        &mut self,
        fd: BorrowedFd<'_>,
        abort: bool,
        note: &'static str,
        now: Instant,
    ) -> Option<Lifecycle> {
        let id = usize::try_from(fd.as_raw_fd())
            .ok()
            .and_then(|i| self.fds.get_mut(i))
            .and_then(Option::take)?;
        self.refresh(id, fd, now);
        self.maybe_sample(id, fd, now);
        let event = if abort { Event::Abort } else { Event::Close };
        let _ = self.table.apply(id, event, now);
        self.table.release(id, now, note)
    }

    /// The rows of the live view at `now`.
    pub fn rows(&self, now: Instant) -> Vec<ConnRow> {
        let now_ns = self.table.ns_at(now);
        self.table.iter().map(|c| ConnRow::of(c, now_ns)).collect()
    }

    /// The live view's snapshot at `now` (rows, recent lifecycles, stats).
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let now_ns = self.table.ns_at(now);
        Snapshot {
            pid: std::process::id(),
            listen: self.local,
            unix_ms,
            rows: self.rows(now),
            recent: self
                .table
                .lifecycles()
                .iter()
                .rev()
                .take(64)
                .map(|l| crate::view::RecentRow::of(l, now_ns))
                .collect(),
            stats: self.table.stats(now),
        }
    }

    fn write_snapshot(&mut self, now: Instant) {
        let Some(cfg) = &self.snapshot else { return };
        let Some(path) = cfg.path.clone() else { return };
        let every = cfg.every;
        let snap = self.snapshot(now);
        if let Ok(text) = serde_json::to_vec(&snap) {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        self.next_snapshot = Some(now + every);
    }
}

impl ConnectionObserver for Tracker {
    fn started(&mut self, local: SocketAddr, now: Instant) {
        self.local = Some(local);
        if let Some(cfg) = &mut self.snapshot {
            cfg.path
                .get_or_insert_with(|| default_conns_file(local.port()));
            self.next_snapshot = Some(now);
        }
    }

    fn accepted(&mut self, fd: BorrowedFd<'_>, peer: SocketAddr, now: Instant) -> Admission {
        match self.open_passive(fd, peer, now) {
            Ok(_) => Admission::Admit,
            Err(TableFull { .. }) => Admission::Refuse,
        }
    }

    fn bytes_read(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        if let Some(id) = self.id_of(fd.as_raw_fd()) {
            self.table.record_read(id, n, now);
            // Data after our FIN usually carries the ACK of it.
            self.check_fin_acked(id, fd, now);
        }
    }

    fn bytes_written(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        if let Some(id) = self.id_of(fd.as_raw_fd()) {
            self.table.record_write(id, n, now);
        }
    }

    fn read_eof(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        self.observe(fd, Event::PeerFin, now);
    }

    fn shutdown_write(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        self.observe(fd, Event::ShutdownWrite, now);
    }

    fn io_error(&mut self, fd: BorrowedFd<'_>, err: &io::Error, now: Instant) {
        self.observe(fd, event_of_errno(err), now);
    }

    fn closing(&mut self, fd: BorrowedFd<'_>, reason: CloseReason, now: Instant) {
        let abort = reason == CloseReason::Aborted;
        self.close(fd, abort, reason_name(reason), now);
    }

    fn inspect(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        Tracker::inspect(self, fd, now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.table.poll_timeout(),
            self.next_snapshot,
            self.inspect_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll_action(&mut self, now: Instant) -> Option<(RawFd, Action)> {
        if self.next_snapshot.is_some_and(|t| now >= t) {
            self.write_snapshot(now);
        }
        if self.inspect_due.is_some_and(|t| now >= t) && self.inspections.is_empty() {
            self.inspections.extend(
                self.table
                    .iter()
                    .filter(|c| c.state().awaits_fin_ack())
                    .map(|c| c.fd()),
            );
            self.inspect_due = (!self.inspections.is_empty()).then(|| now + INSPECT_EVERY);
        }
        self.table.handle_timeout(now);
        let Some((_, fd, decision, _)) = self.table.poll_decision() else {
            return self.inspections.pop_front().map(|fd| (fd, Action::Inspect));
        };
        let action = match decision {
            Decision::HalfClose => Action::ShutdownWrite,
            Decision::Close => Action::Close,
            Decision::Abort => Action::Abort,
        };
        Some((fd, action))
    }
}

/// A [`Tracker`] shared between the server thread (which runs it as its observer) and anyone
/// who wants to look at the table while it runs (tests, a live view). Each hook locks once.
#[derive(Clone, Debug)]
pub struct Shared(pub std::sync::Arc<std::sync::Mutex<Tracker>>);

impl Shared {
    /// Wraps a tracker.
    pub fn new(t: Tracker) -> Shared {
        Shared(std::sync::Arc::new(std::sync::Mutex::new(t)))
    }

    /// Runs `f` with the tracker locked (a poisoned lock is taken over: the table stays
    /// readable after a panic elsewhere).
    pub fn with<R>(&self, f: impl FnOnce(&mut Tracker) -> R) -> R {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }
}

impl ConnectionObserver for Shared {
    fn started(&mut self, local: SocketAddr, now: Instant) {
        self.with(|t| t.started(local, now));
    }
    fn accepted(&mut self, fd: BorrowedFd<'_>, peer: SocketAddr, now: Instant) -> Admission {
        self.with(|t| t.accepted(fd, peer, now))
    }
    fn bytes_read(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        self.with(|t| t.bytes_read(fd, n, now));
    }
    fn bytes_written(&mut self, fd: BorrowedFd<'_>, n: usize, now: Instant) {
        self.with(|t| t.bytes_written(fd, n, now));
    }
    fn read_eof(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        self.with(|t| t.read_eof(fd, now));
    }
    fn shutdown_write(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        self.with(|t| t.shutdown_write(fd, now));
    }
    fn io_error(&mut self, fd: BorrowedFd<'_>, err: &io::Error, now: Instant) {
        self.with(|t| t.io_error(fd, err, now));
    }
    fn closing(&mut self, fd: BorrowedFd<'_>, reason: CloseReason, now: Instant) {
        self.with(|t| t.closing(fd, reason, now));
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.with(|t| t.next_deadline())
    }
    fn inspect(&mut self, fd: BorrowedFd<'_>, now: Instant) {
        self.with(|t| t.inspect(fd, now));
    }
    fn poll_action(&mut self, now: Instant) -> Option<(RawFd, Action)> {
        self.with(|t| t.poll_action(now))
    }
}
