//! The session contract: one protocol connection as a sans-IO state machine.
//!
//! A *session* owns no socket and reads no clock. A driver (threads here, a pool in milestone 6,
//! epoll in 9, io_uring in 15) moves bytes between a socket and the session:
//!
//! ```text
//!            ┌──────────── driver (owns the socket, the clock, the read buffer) ───────────┐
//!  socket ──▶│ read into buffer ─▶ handle_input(now, &buffer) → bytes consumed            │
//!            │                    handle_eof(now)            (peer sent FIN)              │
//!            │ poll_timeout() → next deadline ─▶ wait ─▶ handle_timeout(now)              │
//!  socket ◀──│ pending_output() → bytes ─▶ write ─▶ consume_output(n)                      │
//!            │ poll_event() → events for logs and statistics                              │
//!            │ state(): Open → Closing (flush what is pending, then close) → Closed        │
//!            └─────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The rules a driver follows (and [`crate::testing::PipeDriver`] checks, with injected faults):
//!
//! 1. Bytes the session did not consume stay at the front of the driver's buffer and are passed
//!    again, with any new bytes appended, on the next [`Session::handle_input`]. A session may
//!    consume nothing ("need more"); it never sees the same byte after consuming it.
//! 2. The driver never holds more than [`Session::input_limit`] unconsumed bytes. While the
//!    buffer is full and the session has output pending, the driver stops reading (backpressure:
//!    the peer stalls in the kernel's buffers). A full buffer with nothing pending means the
//!    session will never consume it: the driver closes with [`CloseReason::InputOverflow`].
//! 3. Output is written in order. A partial write consumes only what the socket took.
//! 4. Time only moves forward, and only through `now` arguments.
//! 5. When [`Session::state`] is [`SessionState::Closing`], the driver stops reading, flushes the
//!    pending output, then closes. [`SessionState::Closed`] means close now.
//!
//! Echo ([`EchoSession`]) is the first implementation; milestone 4's HTTP/1.0 and milestone 8's
//! HTTP/1.1 cores are the next ones.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a session is in its life, as far as its driver is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// Reading and writing.
    Open,
    /// Stop reading; flush [`Session::pending_output`], then close.
    Closing(CloseReason),
    /// Close now (nothing left worth sending).
    Closed(CloseReason),
}

/// Why a connection ended: counted by every driver, one counter per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (FIN) and everything owed was sent.
    PeerClosed,
    /// The protocol finished the conversation (an HTTP/1.0 response was sent).
    Done,
    /// A deadline passed with the peer silent.
    Timeout,
    /// The peer broke the protocol; the session queued an error response if it has one.
    ProtocolError,
    /// The server is shutting down.
    Shutdown,
    /// The session neither consumed nor failed before its input reached [`Session::input_limit`].
    InputOverflow,
    /// The socket failed (reset, broken pipe…): a driver-side reason.
    IoError,
    /// A panic inside the session was caught: a driver-side reason.
    Panic,
    /// The server had no capacity for this connection and refused it.
    Refused,
}

impl CloseReason {
    /// Every reason, in a stable order (for tables and metrics).
    pub const ALL: [CloseReason; 9] = [
        CloseReason::PeerClosed,
        CloseReason::Done,
        CloseReason::Timeout,
        CloseReason::ProtocolError,
        CloseReason::Shutdown,
        CloseReason::InputOverflow,
        CloseReason::IoError,
        CloseReason::Panic,
        CloseReason::Refused,
    ];

    /// A short snake_case name (metric label).
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Done => "done",
            CloseReason::Timeout => "timeout",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::InputOverflow => "input_overflow",
            CloseReason::IoError => "io_error",
            CloseReason::Panic => "panic",
            CloseReason::Refused => "refused",
        }
    }

    /// Position in [`CloseReason::ALL`].
    pub fn index(self) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One protocol connection, sans IO. See the [module docs](self) for the driver's rules.
pub trait Session {
    /// What the session reports to its driver's observers (requests completed, errors…).
    type Event: fmt::Debug;

    /// Feeds received bytes (everything unconsumed so far, oldest first). Returns how many
    /// bytes, from the front, the session consumed; `0` means "need more".
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize;

    /// The peer closed its sending side. `unconsumed` is what the driver still holds; the session
    /// takes from it what it wants (echo sends it back, HTTP judges a truncated request) and the
    /// driver discards it afterwards.
    fn handle_eof(&mut self, now: Instant, unconsumed: &[u8]);

    /// The earliest instant at which [`Session::handle_timeout`] must be called, if any.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Time has reached (or passed) [`Session::poll_timeout`].
    fn handle_timeout(&mut self, now: Instant);

    /// Bytes waiting to be sent, oldest first (empty when none).
    fn pending_output(&self) -> &[u8];

    /// The driver wrote the first `n` bytes of [`Session::pending_output`].
    fn consume_output(&mut self, n: usize);

    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// Open, closing (flush then close) or closed.
    fn state(&self) -> SessionState;

    /// The largest number of unconsumed input bytes this session may be handed.
    fn input_limit(&self) -> usize;

    /// The server is shutting down: finish politely (the session decides what that means:
    /// echo closes at once, HTTP finishes the response in flight).
    fn begin_shutdown(&mut self, now: Instant);
}

/// Makes sessions for accepted connections: what a driver is generic over.
pub trait SessionFactory: Send + Sync + 'static {
    /// The session type.
    type Session: Session + Send + 'static;

    /// A session for a connection from `peer`, accepted at `now`.
    fn new_session(&self, peer: SocketAddr, now: Instant) -> Self::Session;

    /// Bytes to write, best effort, to a connection the server refuses for lack of capacity
    /// (HTTP answers `503 Service Unavailable`; echo sends nothing).
    fn refusal(&self) -> &[u8] {
        &[]
    }

    /// Protocol name for logs and metrics.
    fn protocol(&self) -> &'static str;
}

/// Bytes a session has produced and its driver has not yet written: the usual backing for
/// [`Session::pending_output`] / [`Session::consume_output`].
///
/// Appending goes through [`Outbox::buffer`] (a `Vec<u8>` the writers of later milestones render
/// into); written bytes are forgotten by [`Outbox::consume`], and the storage is reused once
/// everything was written, so a steady request/response stream stops allocating.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// Start of the unsent part of `bytes`.
    sent: usize,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// The unsent bytes, oldest first.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[self.sent..]
    }

    /// How many bytes are unsent.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.sent
    }

    /// Whether everything was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The driver wrote the first `n` unsent bytes.
    pub fn consume(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.bytes.len());
        if self.sent == self.bytes.len() {
            self.bytes.clear();
            self.sent = 0;
        }
    }

    /// The storage to append to (sent bytes may still sit at its front; only append).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Appends `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }
}

/// What [`EchoSession`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EchoEvent {
    /// `n` bytes were queued to be echoed.
    Echoed(usize),
}

/// Limits of the echo core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoConfig {
    /// Close after this long without input (milestone 1's idle timeout).
    pub idle_timeout: Duration,
    /// Stop consuming while this many bytes wait to be sent (backpressure).
    pub max_pending_output: usize,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            idle_timeout: Duration::from_secs(30),
            max_pending_output: 64 * 1024,
        }
    }
}

/// Milestone 1's protocol as a session: every byte received is sent back, in order.
///
/// Backpressure: when `max_pending_output` bytes are waiting to be sent it consumes nothing,
/// so a peer that sends without reading stalls in the kernel's buffers, not in our memory.
#[derive(Debug)]
pub struct EchoSession {
    config: EchoConfig,
    output: Outbox,
    deadline: Instant,
    state: SessionState,
    events: Option<EchoEvent>,
}

impl EchoSession {
    /// A new echo session at `now`.
    pub fn new(config: EchoConfig, now: Instant) -> Self {
        EchoSession {
            config,
            output: Outbox::new(),
            deadline: now + config.idle_timeout,
            state: SessionState::Open,
            events: None,
        }
    }

    fn unsent(&self) -> usize {
        self.output.len()
    }
}

impl Session for EchoSession {
    type Event = EchoEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        if self.state != SessionState::Open {
            return 0;
        }
        let room = self.config.max_pending_output.saturating_sub(self.unsent());
        let take = input.len().min(room);
        if take == 0 {
            return 0;
        }
        self.output.push(&input[..take]);
        self.deadline = now + self.config.idle_timeout;
        self.events = Some(match self.events.take() {
            Some(EchoEvent::Echoed(n)) => EchoEvent::Echoed(n + take),
            None => EchoEvent::Echoed(take),
        });
        take
    }

    fn handle_eof(&mut self, _now: Instant, unconsumed: &[u8]) {
        if self.state == SessionState::Open {
            // Bounded by the driver's input limit: at most one buffer beyond the output cap.
            self.output.push(unconsumed);
            self.state = SessionState::Closing(CloseReason::PeerClosed);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Open => Some(self.deadline),
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state == SessionState::Open && now >= self.deadline {
            self.state = SessionState::Closed(CloseReason::Timeout);
        }
    }

    fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    fn consume_output(&mut self, n: usize) {
        self.output.consume(n);
    }

    fn poll_event(&mut self) -> Option<EchoEvent> {
        self.events.take()
    }

    fn state(&self) -> SessionState {
        self.state
    }

    fn input_limit(&self) -> usize {
        // Echo consumes whatever fits; the driver's buffer need not exceed the output cap.
        self.config.max_pending_output.max(1)
    }

    fn begin_shutdown(&mut self, _now: Instant) {
        if self.state == SessionState::Open {
            self.state = SessionState::Closing(CloseReason::Shutdown);
        }
    }
}

/// Makes [`EchoSession`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoFactory {
    /// Limits for every session.
    pub config: EchoConfig,
}

impl SessionFactory for EchoFactory {
    type Session = EchoSession;

    fn new_session(&self, _peer: SocketAddr, now: Instant) -> EchoSession {
        EchoSession::new(self.config, now)
    }

    fn protocol(&self) -> &'static str {
        "echo"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_open_input_is_echoed_in_order() {
        let now = Instant::now();
        let mut s = EchoSession::new(EchoConfig::default(), now);
        assert_eq!(s.handle_input(now, b"hello "), 6);
        assert_eq!(s.handle_input(now, b"world"), 5);
        assert_eq!(s.pending_output(), b"hello world");
        s.consume_output(3);
        assert_eq!(s.pending_output(), b"lo world");
        assert_eq!(s.poll_event(), Some(EchoEvent::Echoed(11)));
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn test_open_backpressure_consumes_nothing_when_output_full() {
        let now = Instant::now();
        let config = EchoConfig {
            max_pending_output: 4,
            ..EchoConfig::default()
        };
        let mut s = EchoSession::new(config, now);
        assert_eq!(s.handle_input(now, b"abcdef"), 4);
        assert_eq!(s.handle_input(now, b"ef"), 0);
        s.consume_output(2);
        assert_eq!(s.handle_input(now, b"ef"), 2);
        assert_eq!(s.pending_output(), b"cdef");
    }

    #[test]
    fn test_open_idle_timeout_closes() {
        let now = Instant::now();
        let mut s = EchoSession::new(EchoConfig::default(), now);
        let deadline = s.poll_timeout().expect("open sessions have a deadline");
        s.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(s.state(), SessionState::Open);
        s.handle_timeout(deadline);
        assert_eq!(s.state(), SessionState::Closed(CloseReason::Timeout));
    }

    #[test]
    fn test_open_eof_flushes_then_closes() {
        let now = Instant::now();
        let mut s = EchoSession::new(EchoConfig::default(), now);
        s.handle_input(now, b"x");
        s.handle_eof(now, &[]);
        assert_eq!(s.state(), SessionState::Closing(CloseReason::PeerClosed));
        assert_eq!(s.pending_output(), b"x");
        assert_eq!(s.handle_input(now, b"y"), 0);
    }
}
