//! The connection table: pre-allocated slots, one per connection, each holding the connection's
//! state as our model derives it, when it entered each state, how long it stayed, the bytes it
//! moved and how often the kernel agreed with us.
//!
//! Sans-IO: the table never makes a syscall and never reads the clock. The driver (see
//! [`crate::tracker`]) feeds it [`Event`]s with `now`, and asks it what to do when time passes
//! ([`ConnTable::handle_timeout`], [`ConnTable::poll_decision`]). Tests drive it with made-up
//! instants: an hour of inactivity takes no time at all.
//!
//! ## Memory
//!
//! Everything is allocated once, in [`ConnTable::new`]: `capacity` slots, the free list, the
//! transition log ring, the decision queue, the lifecycle ring. Nothing grows afterwards:
//! a full table answers [`TableFull`] and the server sheds the connection. The slot array is
//! reserved up front and filled on first use, so the operating system backs its pages as the
//! high-water mark of connections rises; [`ConnTable::memory`] reports both numbers.
//!
//! ## Slots and ids
//!
//! A [`ConnId`] is a slot index plus the slot's generation: when a slot is freed and reused,
//! the generation changes, so an old id (a late event for a connection already gone) is
//! recognised and rejected instead of touching the newcomer.

use std::fmt;
use std::mem;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::state::{self, Event, InvalidTransition, KernelState, TcpState};
use crate::stats::{Histogram, RateWindow, Summary, TimeWaitLedger};

/// Identifies one connection of one table: slot and generation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The slot index.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// Who opened the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// `accept4` returned it (we are the server).
    Passive,
    /// We called `connect` (we are the client).
    Active,
}

/// What the table wants done to a connection whose timer expired.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// `shutdown(SHUT_WR)`: send FIN, keep reading until the peer's FIN.
    HalfClose,
    /// `close`: FIN, the kernel finishes alone.
    Close,
    /// `SO_LINGER` 0 + `close`: RST, no TIME-WAIT, nothing lingers in the kernel.
    Abort,
}

/// Why the table decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Nothing moved for [`TableConfig::inactivity_timeout`].
    Inactivity,
    /// Stuck in FIN-WAIT-1/FIN-WAIT-2 (the peer never sent its FIN, or never acknowledged
    /// ours) for [`TableConfig::fin_wait_timeout`].
    FinWaitTimeout,
}

/// Table settings. Start from [`TableConfig::default`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TableConfig {
    /// Connections tracked at once; one more is [`TableFull`]. Default 16,384.
    pub capacity: usize,
    /// Transitions kept in the log ring (older ones are dropped and counted). Default 4,096.
    pub log_capacity: usize,
    /// Finished [`Lifecycle`]s kept for inspection. Default 1,024.
    pub lifecycle_capacity: usize,
    /// Close connections (ESTABLISHED or CLOSE-WAIT) with no bytes either way for this long.
    /// Default `None`.
    pub inactivity_timeout: Option<Duration>,
    /// How an inactive connection is closed. Default [`Decision::HalfClose`].
    pub idle_decision: Decision,
    /// Abort connections that stay in FIN-WAIT-1/2 this long after our FIN. Default 10 s.
    pub fin_wait_timeout: Option<Duration>,
    /// TIME-WAIT's length (2×MSL; Linux: 60 s, `TCP_TIMEWAIT_LEN`, not tunable).
    pub time_wait: Duration,
    /// Most TIME-WAIT sockets our side may create: while the ledger holds this many, idle
    /// closes become aborts (RST, no TIME-WAIT). Default `Some(512)`.
    pub time_wait_budget: Option<u64>,
}

impl Default for TableConfig {
    fn default() -> TableConfig {
        TableConfig {
            capacity: 16_384,
            log_capacity: 4_096,
            lifecycle_capacity: 1_024,
            inactivity_timeout: None,
            idle_decision: Decision::HalfClose,
            fin_wait_timeout: Some(Duration::from_secs(10)),
            time_wait: Duration::from_secs(60),
            time_wait_budget: Some(512),
        }
    }
}

/// The table has no free slot (its capacity is reached).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TableFull {
    /// The capacity.
    pub capacity: usize,
}

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection table full ({} slots)", self.capacity)
    }
}

impl std::error::Error for TableFull {}

/// An event the table could not apply.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// No live connection has this id (it was released; the slot may hold another now).
    UnknownConn(ConnId),
    /// The model has no such transition.
    Invalid(InvalidTransition),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::UnknownConn(id) => write!(f, "no connection {id}"),
            EventError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EventError {}

/// One state change, as the log records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// When, ns since the table's epoch.
    pub at_ns: u64,
    /// Which connection.
    pub conn: ConnId,
    /// From.
    pub from: TcpState,
    /// To.
    pub to: TcpState,
    /// Because of.
    pub event: Event,
}

/// The states a connection went through, first to last (at most [`Path::MAX`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Path {
    states: [TcpState; Path::MAX],
    len: u8,
    truncated: bool,
}

impl Path {
    /// States kept.
    pub const MAX: usize = 8;

    fn new(first: TcpState) -> Path {
        let mut p = Path {
            states: [TcpState::Closed; Path::MAX],
            len: 0,
            truncated: false,
        };
        p.push(first);
        p
    }

    fn push(&mut self, s: TcpState) {
        if (self.len as usize) < Path::MAX {
            self.states[self.len as usize] = s;
            self.len += 1;
        } else {
            self.truncated = true;
        }
    }

    /// The states.
    pub fn states(&self) -> &[TcpState] {
        &self.states[..self.len as usize]
    }

    /// Whether more states happened than fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.states().iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            f.write_str(s.rfc_name())?;
        }
        if self.truncated {
            f.write_str(" …")?;
        }
        Ok(())
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.states().iter().map(|st| st.ident()))
    }
}

/// Comparisons of our state with the kernel's for one connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// Samples taken.
    pub samples: u32,
    /// Samples where the kernel disagreed.
    pub mismatches: u32,
    /// Samples that agreed only when read again (the kernel was mid-transition).
    pub transient: u32,
    /// The first disagreement: (ours, the kernel's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mismatch: Option<(TcpState, KernelState)>,
    /// The kernel's state at the last sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_kernel: Option<KernelState>,
}

/// One live connection.
#[derive(Clone, Debug)]
pub struct Conn {
    id: ConnId,
    fd: i32,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    origin: Origin,
    state: TcpState,
    opened_ns: u64,
    entered_ns: u64,
    last_activity_ns: u64,
    dwell_ns: [u64; TcpState::COUNT],
    bytes_in: u64,
    bytes_out: u64,
    path: Path,
    agreement: Agreement,
    pending: Option<Decision>,
}

impl Conn {
    /// Its id.
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// The descriptor the driver holds for it.
    pub fn fd(&self) -> i32 {
        self.fd
    }
    /// Our address (when the driver told us).
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    /// Who opened it.
    pub fn origin(&self) -> Origin {
        self.origin
    }
    /// Our model's state.
    pub fn state(&self) -> TcpState {
        self.state
    }
    /// When it entered the current state, ns since the table's epoch.
    pub fn entered_ns(&self) -> u64 {
        self.entered_ns
    }
    /// When the table first saw it, ns since the epoch.
    pub fn opened_ns(&self) -> u64 {
        self.opened_ns
    }
    /// Bytes received from the peer.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
    /// Bytes sent to the peer.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
    /// The states it went through.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// How its samples compared with the kernel.
    pub fn agreement(&self) -> &Agreement {
        &self.agreement
    }
    /// Time spent in `state` so far, ns (the current state counts up to `now_ns`).
    pub fn time_in_ns(&self, state: TcpState, now_ns: u64) -> u64 {
        let mut t = self.dwell_ns[state.index()];
        if state == self.state {
            t += now_ns.saturating_sub(self.entered_ns);
        }
        t
    }
    /// A decision handed to the driver and not yet carried out.
    pub fn pending(&self) -> Option<Decision> {
        self.pending
    }
}

/// A finished connection, recorded when its slot is released.
#[derive(Clone, Debug, Serialize)]
pub struct Lifecycle {
    /// Its id.
    pub id: ConnId,
    /// Peer.
    pub peer: SocketAddr,
    /// Local address.
    pub local: Option<SocketAddr>,
    /// Who opened it.
    pub origin: Origin,
    /// States, in order.
    pub path: Path,
    /// The state at release (TIME-WAIT, LAST-ACK… continue in the kernel alone).
    pub final_state: TcpState,
    /// ns from first sight to release.
    pub lifetime_ns: u64,
    /// When released, ns since the table's epoch.
    pub released_ns: u64,
    /// Time spent in each state, ns, indexed like [`TcpState::ALL`].
    pub dwell_ns: [u64; TcpState::COUNT],
    /// Bytes in.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
    /// Kernel comparisons.
    pub agreement: Agreement,
    /// Why the driver closed it (`peer_closed`, `reset`, `requested`…), when it said.
    pub note: &'static str,
}

/// A bounded ring that overwrites its oldest entry when full. Its storage is allocated and
/// written (so backed by memory) when the ring is made: using it later costs nothing more.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    buf: Vec<Option<T>>,
    len: usize,
    next: usize,
    dropped: u64,
}

impl<T: Clone> Ring<T> {
    fn new(cap: usize) -> Ring<T> {
        let mut buf = Vec::with_capacity(cap);
        buf.resize_with(cap, || None);
        Ring {
            buf,
            len: 0,
            next: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, v: T) {
        if self.buf.is_empty() {
            self.dropped += 1;
            return;
        }
        if self.len == self.buf.len() {
            self.dropped += 1;
        } else {
            self.len += 1;
        }
        self.buf[self.next] = Some(v);
        self.next = (self.next + 1) % self.buf.len();
    }

    /// Oldest to newest.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        let split = if self.len == self.buf.len() {
            self.next
        } else {
            0
        };
        let (a, b) = self.buf.split_at(split);
        b.iter().chain(a.iter()).filter_map(Option::as_ref)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries overwritten (or refused at capacity 0).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Removes everything (capacity stays).
    pub fn clear(&mut self) {
        self.buf.iter_mut().for_each(|x| *x = None);
        self.len = 0;
        self.next = 0;
    }

    fn reserved_bytes(&self) -> usize {
        self.buf.len() * mem::size_of::<Option<T>>()
    }
}

#[derive(Clone, Debug)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// A snapshot of the table's counters, for JSON and the live view.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct TableStats {
    /// ns since the epoch.
    pub at_ns: u64,
    /// Live connections.
    pub live: usize,
    /// Capacity.
    pub capacity: usize,
    /// Live connections per state (our model), by state ident.
    pub distribution: Vec<(TcpState, u32)>,
    /// Connections ever inserted.
    pub opened: u64,
    /// Connections released.
    pub released: u64,
    /// Inserts refused because the table was full.
    pub refused_full: u64,
    /// Transitions since the start.
    pub transitions: u64,
    /// Transitions per second over the last 10 complete seconds.
    pub transitions_per_sec: f64,
    /// Transitions in the busiest complete second of the last 16.
    pub transitions_peak_second: u64,
    /// Events the model rejected (should stay 0).
    pub invalid_events: u64,
    /// Time spent in each state before leaving it, per state that was left at least once.
    pub dwell: Vec<(TcpState, Summary)>,
    /// Observed transitions (from, to, count).
    pub matrix: Vec<(TcpState, TcpState, u64)>,
    /// Our connections in TIME-WAIT now (the ledger; the kernel holds them after our close).
    pub time_wait_now: u64,
    /// Most TIME-WAIT at once.
    pub time_wait_peak: u64,
    /// TIME-WAIT entered in all.
    pub time_wait_total: u64,
    /// Idle closes turned into aborts by the TIME-WAIT budget.
    pub budget_aborts: u64,
    /// Decisions handed to the driver, by cause.
    pub decisions_inactivity: u64,
    /// FIN-WAIT timeouts acted on.
    pub decisions_fin_wait: u64,
    /// Bytes in over all connections (live and released).
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
    /// Kernel samples taken.
    pub samples: u64,
    /// Samples where the kernel disagreed.
    pub mismatches: u64,
    /// Samples that agreed only when read again.
    pub transient_samples: u64,
    /// Transitions dropped from the log ring.
    pub log_dropped: u64,
}

/// Bytes the table uses, as it accounts them itself.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct MemoryReport {
    /// `size_of` one slot (a live connection's whole record).
    pub slot_bytes: usize,
    /// Slots reserved.
    pub capacity: usize,
    /// Slots used at least once (their pages are backed).
    pub slots_touched: usize,
    /// The slot array's reservation.
    pub slots_reserved_bytes: usize,
    /// Free list, log, lifecycle ring, decision queue, fixed counters.
    pub fixed_bytes: usize,
    /// Everything reserved.
    pub total_reserved_bytes: usize,
    /// What a live connection costs in the table: one slot.
    pub per_connection_bytes: usize,
}

/// The connection table. See the module docs.
#[derive(Debug)]
pub struct ConnTable {
    config: TableConfig,
    epoch: Instant,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    counts: [u32; TcpState::COUNT],
    log: Ring<Transition>,
    lifecycles: Ring<Lifecycle>,
    decisions: std::collections::VecDeque<(ConnId, Decision, Cause)>,
    matrix: [[u64; TcpState::COUNT]; TcpState::COUNT],
    dwell: [Histogram; TcpState::COUNT],
    rate: RateWindow,
    time_wait: TimeWaitLedger,
    next_check_ns: Option<u64>,
    opened: u64,
    released: u64,
    refused_full: u64,
    transitions: u64,
    invalid_events: u64,
    budget_aborts: u64,
    decisions_inactivity: u64,
    decisions_fin_wait: u64,
    bytes_in: u64,
    bytes_out: u64,
    samples: u64,
    mismatches: u64,
    transient_samples: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ConnTable {
    /// A table whose clock starts at `epoch`; all memory is allocated here.
    pub fn new(config: TableConfig, epoch: Instant) -> ConnTable {
        let cap = config.capacity.min(u32::MAX as usize);
        ConnTable {
            slots: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            live: 0,
            counts: [0; TcpState::COUNT],
            log: Ring::new(config.log_capacity),
            lifecycles: Ring::new(config.lifecycle_capacity),
            decisions: std::collections::VecDeque::with_capacity(cap),
            matrix: [[0; TcpState::COUNT]; TcpState::COUNT],
            dwell: Default::default(),
            rate: RateWindow::default(),
            time_wait: TimeWaitLedger::new(config.time_wait.as_secs()),
            next_check_ns: None,
            opened: 0,
            released: 0,
            refused_full: 0,
            transitions: 0,
            invalid_events: 0,
            budget_aborts: 0,
            decisions_inactivity: 0,
            decisions_fin_wait: 0,
            bytes_in: 0,
            bytes_out: 0,
            samples: 0,
            mismatches: 0,
            transient_samples: 0,
            epoch,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// The instant the table's nanosecond timestamps count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// `now` as ns since the epoch.
    pub fn ns_at(&self, now: Instant) -> u64 {
        ns(now.saturating_duration_since(self.epoch))
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no connection is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Starts tracking a connection. Passive (accepted) ones start in ESTABLISHED, active ones
    /// in SYN-SENT. [`TableFull`] when every slot is taken: nothing is allocated to track more.
    pub fn insert(
        &mut self,
        fd: i32,
        local: Option<SocketAddr>,
        peer: SocketAddr,
        origin: Origin,
        now: Instant,
    ) -> Result<ConnId, TableFull> {
        let slot = if let Some(i) = self.free.pop() {
            i
        } else if self.slots.len() < self.config.capacity {
            self.slots.push(Slot {
                generation: 0,
                conn: None,
            });
            (self.slots.len() - 1) as u32
        } else {
            self.refused_full += 1;
            return Err(TableFull {
                capacity: self.config.capacity,
            });
        };
        let now_ns = self.ns_at(now);
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        let id = ConnId {
            slot,
            generation: s.generation,
        };
        let event = match origin {
            Origin::Passive => Event::Accepted,
            Origin::Active => Event::ConnectStarted,
        };
        let first = state::next(TcpState::Closed, event).unwrap_or(TcpState::Established);
        let mut path = Path::new(TcpState::Closed);
        path.push(first);
        s.conn = Some(Conn {
            id,
            fd,
            local,
            peer,
            origin,
            state: first,
            opened_ns: now_ns,
            entered_ns: now_ns,
            last_activity_ns: now_ns,
            dwell_ns: [0; TcpState::COUNT],
            bytes_in: 0,
            bytes_out: 0,
            path,
            agreement: Agreement::default(),
            pending: None,
        });
        self.live += 1;
        self.opened += 1;
        self.counts[first.index()] += 1;
        self.note_transition(now_ns, id, TcpState::Closed, first, event);
        if let Some(t) = self.config.inactivity_timeout {
            let due = now_ns.saturating_add(ns(t));
            self.next_check_ns = Some(self.next_check_ns.map_or(due, |c| c.min(due)));
        }
        Ok(id)
    }

    fn note_transition(
        &mut self,
        at_ns: u64,
        conn: ConnId,
        from: TcpState,
        to: TcpState,
        event: Event,
    ) {
        self.log.push(Transition {
            at_ns,
            conn,
            from,
            to,
            event,
        });
        self.matrix[from.index()][to.index()] += 1;
        self.transitions += 1;
        self.rate.add(at_ns);
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.slot())
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_mut())
    }

    /// The live connection `id`.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.slot())
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_ref())
    }

    /// The connection in slot `slot`, whatever its generation.
    pub fn by_slot(&self, slot: usize) -> Option<&Conn> {
        self.slots.get(slot).and_then(|s| s.conn.as_ref())
    }

    /// Every live connection, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().filter_map(|s| s.conn.as_ref())
    }

    /// Applies one observation. `Ok(Some(t))` when the state changed, `Ok(None)` when the event
    /// changed nothing (closing after our FIN). An invalid event is counted and returned, and
    /// the state stays.
    pub fn apply(
        &mut self,
        id: ConnId,
        event: Event,
        now: Instant,
    ) -> Result<Option<Transition>, EventError> {
        let now_ns = self.ns_at(now);
        let Some(c) = self.conn_mut(id) else {
            return Err(EventError::UnknownConn(id));
        };
        let from = c.state;
        let to = match state::next(from, event) {
            Ok(to) => to,
            Err(e) => {
                self.invalid_events += 1;
                return Err(EventError::Invalid(e));
            }
        };
        if to == from {
            return Ok(None);
        }
        let stayed = now_ns.saturating_sub(c.entered_ns);
        c.dwell_ns[from.index()] += stayed;
        c.state = to;
        c.entered_ns = now_ns;
        c.path.push(to);
        if matches!(event, Event::ShutdownWrite | Event::Close | Event::Abort) {
            // The decision (if any) was carried out.
            c.pending = None;
        }
        self.counts[from.index()] -= 1;
        self.counts[to.index()] += 1;
        self.dwell[from.index()].record(stayed);
        self.note_transition(now_ns, id, from, to, event);
        if to.fin_sent() && to != TcpState::Closed {
            if let Some(t) = self.config.fin_wait_timeout {
                let due = now_ns.saturating_add(ns(t));
                self.next_check_ns = Some(self.next_check_ns.map_or(due, |c| c.min(due)));
            }
        }
        Ok(Some(Transition {
            at_ns: now_ns,
            conn: id,
            from,
            to,
            event,
        }))
    }

    /// `n` bytes arrived on `id` (resets its inactivity clock).
    pub fn record_read(&mut self, id: ConnId, n: usize, now: Instant) {
        let now_ns = self.ns_at(now);
        if let Some(c) = self.conn_mut(id) {
            c.bytes_in += n as u64;
            c.last_activity_ns = now_ns;
            self.bytes_in += n as u64;
        }
    }

    /// `n` bytes left on `id` (resets its inactivity clock).
    pub fn record_write(&mut self, id: ConnId, n: usize, now: Instant) {
        let now_ns = self.ns_at(now);
        if let Some(c) = self.conn_mut(id) {
            c.bytes_out += n as u64;
            c.last_activity_ns = now_ns;
            self.bytes_out += n as u64;
        }
    }

    /// Records one comparison with the kernel's state for `id`.
    pub fn record_sample(
        &mut self,
        id: ConnId,
        ours: TcpState,
        kernel: KernelState,
        agreed: bool,
        transient: bool,
    ) {
        self.samples += 1;
        if !agreed {
            self.mismatches += 1;
        }
        if transient && agreed {
            self.transient_samples += 1;
        }
        if let Some(c) = self.conn_mut(id) {
            let a = &mut c.agreement;
            a.samples += 1;
            if transient && agreed {
                a.transient += 1;
            }
            a.last_kernel = Some(kernel);
            if !agreed {
                a.mismatches += 1;
                a.first_mismatch.get_or_insert((ours, kernel));
            }
        }
    }

    /// Stops tracking `id` (the driver closed its descriptor) and frees the slot; `note` says
    /// why (kept in the [`Lifecycle`]). A connection released in TIME-WAIT goes into the
    /// ledger, which counts it until 2×MSL passes.
    pub fn release(&mut self, id: ConnId, now: Instant, note: &'static str) -> Option<Lifecycle> {
        let now_ns = self.ns_at(now);
        let slot = self
            .slots
            .get_mut(id.slot())
            .filter(|s| s.generation == id.generation)?;
        let mut c = slot.conn.take()?;
        c.dwell_ns[c.state.index()] += now_ns.saturating_sub(c.entered_ns);
        self.free.push(id.slot);
        self.live -= 1;
        self.released += 1;
        self.counts[c.state.index()] -= 1;
        if c.state == TcpState::TimeWait {
            self.time_wait.add(now_ns);
        }
        let life = Lifecycle {
            id,
            peer: c.peer,
            local: c.local,
            origin: c.origin,
            path: c.path,
            final_state: c.state,
            lifetime_ns: now_ns.saturating_sub(c.opened_ns),
            released_ns: now_ns,
            dwell_ns: c.dwell_ns,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            agreement: c.agreement,
            note,
        };
        self.lifecycles.push(life.clone());
        Some(life)
    }

    /// Checks the timers: connections idle past the inactivity timeout get the idle decision
    /// (or an abort, when the TIME-WAIT budget is spent), connections stuck in FIN-WAIT past
    /// their timeout get an abort. Decisions queue for [`poll_decision`](Self::poll_decision).
    /// Cheap when nothing is due: one comparison.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now_ns = self.ns_at(now);
        match self.next_check_ns {
            Some(due) if now_ns >= due => {}
            _ => return,
        }
        let idle = self.config.inactivity_timeout.map(ns);
        let fin_wait = self.config.fin_wait_timeout.map(ns);
        let mut tw_committed = self.time_wait.count(now_ns);
        let budget = self.config.time_wait_budget;
        let mut next: Option<u64> = None;
        let due = |t: u64, next: &mut Option<u64>| *next = Some(next.map_or(t, |n| n.min(t)));
        for s in &mut self.slots {
            let Some(c) = s.conn.as_mut() else { continue };
            // Connections on their way to TIME-WAIT already count against the budget.
            if matches!(
                c.state,
                TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing
            ) {
                tw_committed += 1;
            }
            if c.pending.is_some() {
                continue;
            }
            match c.state {
                TcpState::Established | TcpState::CloseWait => {
                    let Some(idle) = idle else { continue };
                    let expires = c.last_activity_ns.saturating_add(idle);
                    if now_ns < expires {
                        due(expires, &mut next);
                        continue;
                    }
                    let mut decision = if c.state == TcpState::CloseWait {
                        // They already sent FIN: our close leads to LAST-ACK, not TIME-WAIT.
                        Decision::Close
                    } else {
                        self.config.idle_decision
                    };
                    if decision == Decision::HalfClose || decision == Decision::Close {
                        if c.state == TcpState::Established
                            && budget.is_some_and(|b| tw_committed >= b)
                        {
                            decision = Decision::Abort;
                            self.budget_aborts += 1;
                        } else if c.state == TcpState::Established {
                            tw_committed += 1;
                        }
                    }
                    c.pending = Some(decision);
                    self.decisions
                        .push_back((c.id, decision, Cause::Inactivity));
                    self.decisions_inactivity += 1;
                }
                TcpState::FinWait1 | TcpState::FinWait2 => {
                    let Some(limit) = fin_wait else { continue };
                    // entered_ns of FIN-WAIT-2 is later than the FIN; measure from the FIN:
                    // the time spent in FIN-WAIT-1 plus the current stay.
                    let since_fin = c.dwell_ns[TcpState::FinWait1.index()]
                        + now_ns.saturating_sub(c.entered_ns);
                    let fin_at = now_ns.saturating_sub(since_fin);
                    let expires = fin_at.saturating_add(limit);
                    if now_ns < expires {
                        due(expires, &mut next);
                        continue;
                    }
                    c.pending = Some(Decision::Abort);
                    self.decisions
                        .push_back((c.id, Decision::Abort, Cause::FinWaitTimeout));
                    self.decisions_fin_wait += 1;
                }
                _ => {}
            }
        }
        self.next_check_ns = next;
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do (at the
    /// earliest; activity only moves deadlines later).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_check_ns
            .map(|n| self.epoch + Duration::from_nanos(n))
    }

    /// The next decision for the driver: (connection, its descriptor, what, why).
    pub fn poll_decision(&mut self) -> Option<(ConnId, i32, Decision, Cause)> {
        while let Some((id, d, cause)) = self.decisions.pop_front() {
            if let Some(c) = self.get(id) {
                return Some((id, c.fd, d, cause));
            }
        }
        None
    }

    /// A decision could not be carried out (the descriptor was gone): forget it, so the timer
    /// can decide again.
    pub fn clear_pending(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.pending = None;
        }
    }

    /// Live connections in `state`.
    pub fn count(&self, state: TcpState) -> u32 {
        self.counts[state.index()]
    }

    /// How many times `from → to` happened.
    pub fn transitions_between(&self, from: TcpState, to: TcpState) -> u64 {
        self.matrix[from.index()][to.index()]
    }

    /// Every (from, to) pair that happened at least once.
    pub fn observed_transitions(&self) -> Vec<(TcpState, TcpState, u64)> {
        let mut v = Vec::new();
        for from in TcpState::ALL {
            for to in TcpState::ALL {
                let n = self.matrix[from.index()][to.index()];
                if n > 0 {
                    v.push((from, to, n));
                }
            }
        }
        v
    }

    /// The transition log, oldest first.
    pub fn log(&self) -> &Ring<Transition> {
        &self.log
    }

    /// Finished connections, oldest first.
    pub fn lifecycles(&self) -> &Ring<Lifecycle> {
        &self.lifecycles
    }

    /// Empties the lifecycle ring (after reading it).
    pub fn clear_lifecycles(&mut self) {
        self.lifecycles.clear();
    }

    /// How long connections stayed in `state` before leaving it.
    pub fn dwell(&self, state: TcpState) -> &Histogram {
        &self.dwell[state.index()]
    }

    /// TIME-WAIT sockets our side holds in the kernel now (by the ledger).
    pub fn time_wait_count(&self, now: Instant) -> u64 {
        self.time_wait.count(self.ns_at(now))
    }

    /// Transitions per second over the last 10 s.
    pub fn transitions_per_sec(&self, now: Instant) -> f64 {
        self.rate.per_second(self.ns_at(now))
    }

    /// All counters at `now`.
    pub fn stats(&self, now: Instant) -> TableStats {
        let now_ns = self.ns_at(now);
        TableStats {
            at_ns: now_ns,
            live: self.live,
            capacity: self.config.capacity,
            distribution: TcpState::ALL
                .into_iter()
                .map(|s| (s, self.counts[s.index()]))
                .collect(),
            opened: self.opened,
            released: self.released,
            refused_full: self.refused_full,
            transitions: self.transitions,
            transitions_per_sec: self.rate.per_second(now_ns),
            transitions_peak_second: self.rate.peak_second(now_ns),
            invalid_events: self.invalid_events,
            dwell: TcpState::ALL
                .into_iter()
                .filter(|s| self.dwell[s.index()].count() > 0)
                .map(|s| (s, self.dwell[s.index()].summary()))
                .collect(),
            matrix: self.observed_transitions(),
            time_wait_now: self.time_wait.count(now_ns),
            time_wait_peak: self.time_wait.peak(),
            time_wait_total: self.time_wait.total(),
            budget_aborts: self.budget_aborts,
            decisions_inactivity: self.decisions_inactivity,
            decisions_fin_wait: self.decisions_fin_wait,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            samples: self.samples,
            mismatches: self.mismatches,
            transient_samples: self.transient_samples,
            log_dropped: self.log.dropped(),
        }
    }

    /// What the table costs in memory, by its own accounting.
    pub fn memory(&self) -> MemoryReport {
        let slot_bytes = mem::size_of::<Slot>();
        let cap = self.config.capacity;
        let fixed = mem::size_of::<ConnTable>()
            + self.free.capacity() * mem::size_of::<u32>()
            + self.log.reserved_bytes()
            + self.lifecycles.reserved_bytes()
            + self.decisions.capacity() * mem::size_of::<(ConnId, Decision, Cause)>()
            + self.time_wait.len_s() as usize * 16;
        MemoryReport {
            slot_bytes,
            capacity: cap,
            slots_touched: self.slots.len(),
            slots_reserved_bytes: cap * slot_bytes,
            fixed_bytes: fixed,
            total_reserved_bytes: cap * slot_bytes + fixed,
            per_connection_bytes: slot_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn table(cap: usize) -> (ConnTable, Instant) {
        let t0 = Instant::now();
        let config = TableConfig {
            capacity: cap,
            log_capacity: 8,
            ..TableConfig::default()
        };
        (ConnTable::new(config, t0), t0)
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn test_table_full_refuses_then_reuses_freed_slot() {
        let (mut t, t0) = table(2);
        let a = t.insert(3, None, peer(1), Origin::Passive, t0).unwrap();
        let _b = t.insert(4, None, peer(2), Origin::Passive, t0).unwrap();
        let full = t.insert(5, None, peer(3), Origin::Passive, t0).unwrap_err();
        assert_eq!(full, TableFull { capacity: 2 });
        assert_eq!(full.to_string(), "connection table full (2 slots)");
        assert_eq!(t.stats(t0).refused_full, 1);
        t.release(a, t0, "test").unwrap();
        let c = t.insert(5, None, peer(3), Origin::Passive, t0).unwrap();
        assert_eq!(c.slot(), a.slot(), "the freed slot is reused");
        assert_ne!(c, a, "with a new generation");
        assert!(t.get(a).is_none(), "the old id no longer resolves");
        assert_eq!(
            t.apply(a, Event::PeerFin, t0),
            Err(EventError::UnknownConn(a))
        );
        assert_eq!(t.memory().slots_touched, 2, "no slot beyond capacity");
    }

    #[test]
    fn test_slots_preallocated_no_growth() {
        let (mut t, t0) = table(64);
        let reserved = t.slots.capacity();
        assert!(reserved >= 64);
        let ids: Vec<_> = (0..64)
            .map(|i| {
                t.insert(i, None, peer(i as u16), Origin::Passive, t0)
                    .unwrap()
            })
            .collect();
        for id in ids {
            t.release(id, t0, "test");
        }
        for i in 0..64 {
            t.insert(i, None, peer(i as u16), Origin::Passive, t0)
                .unwrap();
        }
        assert_eq!(
            t.slots.capacity(),
            reserved,
            "the slot array never reallocates"
        );
        assert_eq!(t.free.capacity(), 64);
        let m = t.memory();
        assert_eq!(m.per_connection_bytes, mem::size_of::<Slot>());
        assert_eq!(m.slots_reserved_bytes, 64 * m.slot_bytes);
    }

    #[test]
    fn test_passive_close_path_and_time_in_state() {
        let (mut t, t0) = table(4);
        let id = t.insert(3, None, peer(1), Origin::Passive, t0).unwrap();
        t.record_read(id, 100, ms(t0, 1));
        t.record_write(id, 100, ms(t0, 1));
        t.apply(id, Event::PeerFin, ms(t0, 10)).unwrap();
        t.apply(id, Event::Close, ms(t0, 12)).unwrap();
        t.apply(id, Event::FinAcked, ms(t0, 13)).unwrap();
        let c = t.get(id).unwrap();
        assert_eq!(c.state(), TcpState::Closed);
        assert_eq!(
            c.time_in_ns(TcpState::Established, t.ns_at(ms(t0, 20))),
            10_000_000
        );
        assert_eq!(c.time_in_ns(TcpState::CloseWait, 0), 2_000_000);
        assert_eq!(
            c.time_in_ns(TcpState::Closed, t.ns_at(ms(t0, 20))),
            7_000_000
        );
        assert_eq!(
            c.path().to_string(),
            "CLOSED → ESTABLISHED → CLOSE-WAIT → LAST-ACK → CLOSED"
        );
        let life = t.release(id, ms(t0, 20), "test").unwrap();
        assert_eq!((life.bytes_in, life.bytes_out), (100, 100));
        assert_eq!(life.lifetime_ns, 20_000_000);
        assert_eq!(life.dwell_ns.iter().sum::<u64>(), 20_000_000);
        assert_eq!(t.dwell(TcpState::CloseWait).count(), 1);
        assert_eq!(
            t.transitions_between(TcpState::LastAck, TcpState::Closed),
            1
        );
    }

    #[test]
    fn test_transition_log_ring_keeps_newest_with_timestamps() {
        let (mut t, t0) = table(4);
        // 1 (accept) + 3 per cycle, log capacity 8.
        let id = t.insert(3, None, peer(1), Origin::Passive, t0).unwrap();
        t.apply(id, Event::ShutdownWrite, ms(t0, 1)).unwrap();
        t.apply(id, Event::FinAcked, ms(t0, 2)).unwrap();
        t.apply(id, Event::PeerFin, ms(t0, 3)).unwrap();
        t.release(id, ms(t0, 4), "test");
        let id = t
            .insert(3, None, peer(2), Origin::Passive, ms(t0, 5))
            .unwrap();
        t.apply(id, Event::PeerFin, ms(t0, 6)).unwrap();
        t.apply(id, Event::ShutdownWrite, ms(t0, 7)).unwrap();
        t.apply(id, Event::FinAcked, ms(t0, 8)).unwrap();
        t.apply(id, Event::Reset, ms(t0, 9)).unwrap_err(); // CLOSED + reset: invalid
        let log: Vec<_> = t.log().iter().copied().collect();
        assert_eq!(log.len(), 8);
        assert_eq!(t.log().dropped(), 0);
        assert_eq!(log[0].at_ns, 0);
        assert_eq!(log[7].at_ns, 8_000_000);
        assert_eq!(
            (log[7].from, log[7].to),
            (TcpState::LastAck, TcpState::Closed)
        );
        assert!(log.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        let id = t
            .insert(4, None, peer(3), Origin::Passive, ms(t0, 10))
            .unwrap();
        t.apply(id, Event::Reset, ms(t0, 11)).unwrap();
        assert_eq!(t.log().dropped(), 2, "two oldest overwritten");
        assert_eq!(t.log().iter().last().unwrap().event, Event::Reset);
        assert_eq!(t.stats(ms(t0, 11)).invalid_events, 1);
    }

    #[test]
    fn test_established_inactivity_timeout() {
        let t0 = Instant::now();
        let mut t = ConnTable::new(
            TableConfig {
                capacity: 4,
                inactivity_timeout: Some(Duration::from_secs(30)),
                ..TableConfig::default()
            },
            t0,
        );
        let id = t.insert(7, None, peer(1), Origin::Passive, t0).unwrap();
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        t.record_read(id, 1, t0 + Duration::from_secs(20));
        t.handle_timeout(t0 + Duration::from_secs(30));
        assert_eq!(t.poll_decision(), None, "activity moved the deadline");
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(50)));
        t.handle_timeout(t0 + Duration::from_secs(50));
        assert_eq!(
            t.poll_decision(),
            Some((id, 7, Decision::HalfClose, Cause::Inactivity))
        );
        // Not decided twice while pending.
        t.handle_timeout(t0 + Duration::from_secs(3600));
        assert_eq!(t.poll_decision(), None);
    }

    #[test]
    fn test_fin_wait_2_timeout_aborts() {
        let t0 = Instant::now();
        let mut t = ConnTable::new(
            TableConfig {
                capacity: 4,
                fin_wait_timeout: Some(Duration::from_secs(5)),
                ..TableConfig::default()
            },
            t0,
        );
        let id = t.insert(7, None, peer(1), Origin::Passive, t0).unwrap();
        t.apply(id, Event::ShutdownWrite, t0 + Duration::from_secs(1))
            .unwrap();
        t.apply(id, Event::FinAcked, t0 + Duration::from_secs(2))
            .unwrap();
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(6)));
        t.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(t.poll_decision(), None);
        t.handle_timeout(t0 + Duration::from_secs(6));
        assert_eq!(
            t.poll_decision(),
            Some((id, 7, Decision::Abort, Cause::FinWaitTimeout))
        );
        t.apply(id, Event::Abort, t0 + Duration::from_secs(6))
            .unwrap();
        assert_eq!(t.get(id).unwrap().state(), TcpState::Closed);
    }

    #[test]
    fn test_time_wait_budget_turns_idle_closes_into_aborts() {
        let t0 = Instant::now();
        let mut t = ConnTable::new(
            TableConfig {
                capacity: 8,
                inactivity_timeout: Some(Duration::from_secs(1)),
                time_wait_budget: Some(2),
                ..TableConfig::default()
            },
            t0,
        );
        // Two connections already went through TIME-WAIT.
        for fd in 0..2 {
            let id = t.insert(fd, None, peer(1), Origin::Passive, t0).unwrap();
            t.apply(id, Event::ShutdownWrite, t0).unwrap();
            t.apply(id, Event::FinAcked, t0).unwrap();
            t.apply(id, Event::PeerFin, t0).unwrap();
            t.release(id, t0, "test");
        }
        assert_eq!(t.time_wait_count(t0), 2);
        let id = t.insert(9, None, peer(2), Origin::Passive, t0).unwrap();
        t.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(
            t.poll_decision(),
            Some((id, 9, Decision::Abort, Cause::Inactivity))
        );
        assert_eq!(t.stats(t0).budget_aborts, 1);
        // 61 s later the ledger is empty again.
        assert_eq!(t.time_wait_count(t0 + Duration::from_secs(61)), 0);
    }

    #[test]
    fn test_state_distribution_counts() {
        let (mut t, t0) = table(8);
        let a = t.insert(1, None, peer(1), Origin::Passive, t0).unwrap();
        let b = t.insert(2, None, peer(2), Origin::Passive, t0).unwrap();
        let _c = t.insert(3, None, peer(3), Origin::Active, t0).unwrap();
        t.apply(a, Event::PeerFin, t0).unwrap();
        t.apply(b, Event::ShutdownWrite, t0).unwrap();
        let s = t.stats(t0);
        let get = |st: TcpState| s.distribution.iter().find(|(x, _)| *x == st).unwrap().1;
        assert_eq!(get(TcpState::CloseWait), 1);
        assert_eq!(get(TcpState::FinWait1), 1);
        assert_eq!(get(TcpState::SynSent), 1);
        assert_eq!(get(TcpState::Established), 0);
        assert_eq!(s.live, 3);
        assert_eq!(s.distribution.iter().map(|(_, n)| n).sum::<u32>(), 3);
    }

    #[test]
    fn test_transitions_per_second_counted() {
        let (mut t, t0) = table(2048);
        for i in 0..1000u64 {
            let at = t0 + Duration::from_millis(i * 2); // 500 lifecycles per second for 2 s
            let id = t.insert(1, None, peer(1), Origin::Passive, at).unwrap();
            t.apply(id, Event::Reset, at).unwrap();
            t.release(id, at, "test");
        }
        let rate = t.transitions_per_sec(t0 + Duration::from_secs(2));
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
        assert_eq!(t.stats(t0).transitions, 2000);
    }
}
