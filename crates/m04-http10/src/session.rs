//! The HTTP/1.0 core as an m03 [`Session`]: one request, one response, close.
//!
//! ```text
//!  Open ──complete request──▶ Service::call ──▶ Closing(Done)          (flush, close)
//!   │  ──parse error────────▶ error response (400/411/413/414/431/501/505) ─▶ Closing(ProtocolError)
//!   │  ──deadline, bytes seen▶ 408 ─▶ Closing(Timeout)
//!   │  ──deadline, silent───▶ Closed(Timeout)
//!   │  ──EOF mid-request────▶ 400 ─▶ Closing(ProtocolError)
//!   │  ──EOF before a byte──▶ Closed(PeerClosed)
//!   └─ ──shutdown───────────▶ Closed(Shutdown), or 503 + Closing(Shutdown) if a request is half in
//! ```
//!
//! The session reads no clock: the wall time for `Date` is derived from the `now` instants it
//! is given and an anchor (`Instant`, `SystemTime`) pair taken once by the factory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use m03_thread_per_conn::{CloseReason, Outbox, Session, SessionFactory, SessionState};

use crate::error::{ParseError, disposition};
use crate::limits::{Limits, Mode};
use crate::method::{Method, Version};
use crate::parse::{Parser, Status, unfold_in_place};
use crate::request::Request;
use crate::response::{ResponseWriter, write_error_response};

/// What a server does with a request: implemented by m05's router/app.
pub trait Service: Send + Sync + 'static {
    /// Answers `request` through `response` (call `send` once; not calling it yields a 500).
    fn call(&self, request: &Request<'_>, ctx: &ConnInfo, response: &mut ResponseWriter<'_>);
}

/// Per-connection facts given to the service.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The driver's clock at this request.
    pub now: Instant,
    /// Wall-clock time at this request (for dates).
    pub wall: SystemTime,
}

/// What [`Http10Session`] reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Http10Event {
    /// A request was answered by the service.
    Request {
        /// Its method.
        method: Method,
        /// Its version.
        version: Version,
        /// The status sent.
        status: u16,
        /// Head bytes received.
        head_len: usize,
        /// Body bytes received.
        body_len: usize,
        /// Response headers refused (injection attempts).
        refused_headers: usize,
    },
    /// A request was rejected by the parser.
    Rejected {
        /// Why.
        error: ParseError,
        /// The status sent.
        status: u16,
    },
    /// The request did not arrive within `header_timeout`; `answered` = a 408 was sent.
    Timeout {
        /// Whether a 408 went out (bytes had arrived) or the connection was silently closed.
        answered: bool,
    },
}

/// The complete response a refused connection gets (no Date: it is prebuilt).
pub const REFUSAL_503: &[u8] = b"HTTP/1.0 503 Service Unavailable\r\nServer: zyphos\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\n\r\n503 Service Unavailable\n";

/// The HTTP/1.0 core. See the [module docs](self).
pub struct Http10Session<S: Service> {
    service: Arc<S>,
    parser: Parser,
    peer: SocketAddr,
    anchor: (Instant, SystemTime),
    deadline: Instant,
    seen_input: bool,
    output: Outbox,
    state: SessionState,
    events: Vec<Http10Event>,
    /// Scratch copy of a head with obs-folds, unfolded before the service sees it.
    unfold: Vec<u8>,
}

impl<S: Service> std::fmt::Debug for Http10Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http10Session")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("pending", &self.output.len())
            .finish()
    }
}

impl<S: Service> Http10Session<S> {
    /// A session for `peer`, accepted at `now`; `anchor` pairs an `Instant` with the wall time.
    pub fn new(
        service: Arc<S>,
        limits: Limits,
        mode: Mode,
        peer: SocketAddr,
        now: Instant,
        anchor: (Instant, SystemTime),
    ) -> Self {
        Http10Session {
            service,
            parser: Parser::new(limits, mode),
            peer,
            anchor,
            deadline: now + limits.header_timeout,
            seen_input: false,
            output: Outbox::new(),
            state: SessionState::Open,
            events: Vec::new(),
            unfold: Vec::new(),
        }
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor.1 + now.saturating_duration_since(self.anchor.0)
    }

    fn reject(&mut self, now: Instant, error: ParseError) {
        let d = disposition(error);
        let wall = self.wall(now);
        write_error_response(self.output.buffer(), d.status, false, wall);
        self.events.push(Http10Event::Rejected {
            error,
            status: d.status,
        });
        self.state = SessionState::Closing(CloseReason::ProtocolError);
    }

    fn respond(&mut self, now: Instant, request: &Request<'_>) {
        let ctx = ConnInfo {
            peer: self.peer,
            now,
            wall: self.wall(now),
        };
        let mut out = std::mem::take(self.output.buffer());
        let (status, refused, body_len) = {
            let mut w = ResponseWriter::new(&mut out, request.method() == Method::Head, ctx.wall);
            self.service.call(request, &ctx, &mut w);
            (w.finish(), w.refused_headers(), request.body().len())
        };
        *self.output.buffer() = out;
        self.events.push(Http10Event::Request {
            method: request.method(),
            version: request.version(),
            status,
            head_len: request.head_len(),
            body_len,
            refused_headers: refused,
        });
        self.state = SessionState::Closing(CloseReason::Done);
    }

    /// Parses `input`; answers if it holds a whole request or an error. Returns bytes consumed.
    fn process(&mut self, now: Instant, input: &[u8]) -> usize {
        match self.parser.parse(input) {
            Ok(Status::Partial) => 0,
            Ok(Status::Complete(req)) if req.has_obs_fold() => {
                // RFC 7230 §3.2.4: replace each obs-fold with SP before interpreting the value.
                let used = req.len();
                let mut copy = std::mem::take(&mut self.unfold);
                copy.clear();
                copy.extend_from_slice(&input[..used]);
                let head_len = req.head_len();
                unfold_in_place(&mut copy[..head_len]);
                match self.parser.parse(&copy) {
                    Ok(Status::Complete(unfolded)) => self.respond(now, &unfolded),
                    Ok(Status::Partial) => self.reject(now, ParseError::ObsFold),
                    Err(e) => self.reject(now, e),
                }
                self.unfold = copy;
                used
            }
            Ok(Status::Complete(req)) => {
                self.respond(now, &req);
                req.len()
            }
            Err(e) => {
                self.reject(now, e);
                input.len()
            }
        }
    }
}

impl<S: Service> Session for Http10Session<S> {
    type Event = Http10Event;

    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        if self.state != SessionState::Open || input.is_empty() {
            return 0;
        }
        self.seen_input = true;
        self.process(now, input)
    }

    fn handle_eof(&mut self, now: Instant, unconsumed: &[u8]) {
        if self.state != SessionState::Open {
            return;
        }
        if unconsumed.is_empty() {
            if self.seen_input {
                // Some bytes were seen but never made a request: a truncated request.
                self.reject(now, ParseError::Truncated);
            } else {
                self.state = SessionState::Closed(CloseReason::PeerClosed);
            }
            return;
        }
        self.seen_input = true;
        if self.process(now, unconsumed) == 0 && self.state == SessionState::Open {
            self.reject(now, ParseError::Truncated);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Open => Some(self.deadline),
            _ => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state != SessionState::Open || now < self.deadline {
            return;
        }
        if self.seen_input {
            let wall = self.wall(now);
            write_error_response(self.output.buffer(), 408, false, wall);
            self.events.push(Http10Event::Timeout { answered: true });
            self.state = SessionState::Closing(CloseReason::Timeout);
        } else {
            self.events.push(Http10Event::Timeout { answered: false });
            self.state = SessionState::Closed(CloseReason::Timeout);
        }
    }

    fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    fn consume_output(&mut self, n: usize) {
        self.output.consume(n);
    }

    fn poll_event(&mut self) -> Option<Http10Event> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    fn state(&self) -> SessionState {
        self.state
    }

    fn input_limit(&self) -> usize {
        let l = self.parser.limits();
        l.max_head
            .max(l.max_request_line)
            .saturating_add(l.max_body)
            .max(1)
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if self.state != SessionState::Open {
            return;
        }
        if self.seen_input {
            let wall = self.wall(now);
            write_error_response(self.output.buffer(), 503, false, wall);
            self.state = SessionState::Closing(CloseReason::Shutdown);
        } else {
            self.state = SessionState::Closed(CloseReason::Shutdown);
        }
    }
}

/// Makes [`Http10Session`]s for a driver.
pub struct Http10Factory<S: Service> {
    service: Arc<S>,
    limits: Limits,
    mode: Mode,
    anchor: (Instant, SystemTime),
}

impl<S: Service> std::fmt::Debug for Http10Factory<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http10Factory")
            .field("limits", &self.limits)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S: Service> Http10Factory<S> {
    /// A factory answering with `service` under `limits`, strict mode. Takes the wall-clock
    /// anchor once, here (sessions read no clock).
    pub fn new(service: Arc<S>, limits: Limits) -> Self {
        Http10Factory {
            service,
            limits,
            mode: Mode::Strict,
            anchor: (Instant::now(), SystemTime::now()),
        }
    }

    /// The same factory with another parser mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The same factory with an explicit clock anchor (tests with fixed dates).
    pub fn with_anchor(mut self, instant: Instant, wall: SystemTime) -> Self {
        self.anchor = (instant, wall);
        self
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl<S: Service> SessionFactory for Http10Factory<S> {
    type Session = Http10Session<S>;

    fn new_session(&self, peer: SocketAddr, now: Instant) -> Http10Session<S> {
        Http10Session::new(
            Arc::clone(&self.service),
            self.limits,
            self.mode,
            peer,
            now,
            self.anchor,
        )
    }

    fn refusal(&self) -> &[u8] {
        REFUSAL_503
    }

    fn protocol(&self) -> &'static str {
        "http1.0"
    }
}
