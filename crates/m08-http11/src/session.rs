//! The HTTP/1.1 connection as an m03 [`Session`]: many requests per connection, in order.
//!
//! ```text
//!          ┌──────────────────────── keep-alive: next request ◀──────────────────────────┐
//!          ▼                                                                             │
//!  ──▶ Idle ─first byte─▶ Head ─head parsed─▶ Body (Content-Length n | chunked) ─▶ dispatch ─┤
//!       │ idle_timeout      │ header_timeout    │ request_timeout       (service → queue)  │
//!       ▼                   ▼                   ▼                                          │
//!     Closed(Timeout)     408, Closing(Timeout)                 Connection: close / 1.0 ──┘─▶ Closing(Done)
//!  any framing/host/syntax error ─▶ 400/413/431/501/505, Connection: close ─▶ Closing(ProtocolError)
//!  the service answers 400/413/414/431 ─▶ sent with Connection: close ─▶ Closing(ProtocolError)
//! ```
//!
//! **Pipelining.** The session copies what it is given into its own inbox (bounded by
//! [`Session::input_limit`]) and answers the requests in it one after the other, appending each
//! response to one output buffer: the queue is ordered by construction. When
//! `max_pipeline_depth` responses are waiting to be written, it stops dispatching and resumes in
//! [`Session::consume_output`], when the driver has written some — so a peer that pipelines
//! without reading stalls itself, and memory stays bounded.
//!
//! **Framing** (RFC 9112 §6): m04's parser stops after the head ([`Parser::with_caller_framing`]).
//! `Content-Length` with `Transfer-Encoding`, conflicting lengths, a non-final or repeated
//! `chunked`, an HTTP/1.0 `Transfer-Encoding`: answered with an error and the connection closed,
//! since the next byte cannot be trusted to start a request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use m03_thread_per_conn::{CloseReason, Session, SessionFactory, SessionState};
use m04_http10::{
    ConnInfo, Limits, Method, Mode, ParseError, Parser, Request, ResponseWriter, Service, Status,
    Version, disposition, reason_phrase,
};

use crate::chunked::{ChunkError, ChunkLimits, ChunkedDecoder};
use crate::headers::{
    Expectation, HeadFields, HostError, TransferEncodingError, check_host_fields,
    check_transfer_encoding,
};
use crate::stats::{ConnStats, Http11Stats};

/// Timeouts shipped by default: chosen by the keep-alive timeout sweep
/// ([`crate::sweep`], rule in `docs/milestones/08-http11.md`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time from a request's first byte to the end of its head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time from a request's first byte to the end of its body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Configuration of the HTTP/1.1 core. Every limit has a name and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http11Config {
    /// m04's head limits (414, 431) and `max_body` for `Content-Length` bodies (413).
    pub limits: Limits,
    /// Chunked request body limits (413, 431, 400).
    pub chunk: ChunkLimits,
    /// Keep-alive: close a connection idle this long between requests (silently).
    pub idle_timeout: Duration,
    /// From a request's first byte until its head is complete (→ 408, close).
    pub header_timeout: Duration,
    /// From a request's first byte until its body is complete (→ 408, close).
    pub request_timeout: Duration,
    /// Requests per connection; the last is answered with `Connection: close`.
    pub max_requests: u64,
    /// Responses queued unsent before the session stops dispatching.
    pub max_pipeline_depth: usize,
    /// Output bytes queued unsent before the session stops dispatching.
    pub max_pending_output: usize,
    /// Send `Keep-Alive: timeout=…, max=…` on persistent responses.
    pub advertise_keep_alive: bool,
}

impl Default for Http11Config {
    fn default() -> Self {
        Http11Config {
            limits: Limits::default(),
            chunk: ChunkLimits::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_requests: 1000,
            max_pipeline_depth: 64,
            max_pending_output: 1024 * 1024,
            advertise_keep_alive: true,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// m04's parser refused the head.
    Parse(ParseError),
    /// The chunked body was malformed or too large.
    Chunk(ChunkError),
    /// `Transfer-Encoding` refused.
    TransferEncoding(TransferEncodingError),
    /// `Host` missing, duplicated or invalid.
    Host(HostError),
    /// An `Expect` other than `100-continue` (417; the connection stays open).
    Expectation,
    /// The HTTP/2 connection preface (`PRI * HTTP/2.0`) on an HTTP/1.1 port (505).
    Http2Preface,
    /// The peer closed in the middle of a request.
    Truncated,
}

impl RejectReason {
    /// The status answered.
    pub fn status(self) -> u16 {
        match self {
            RejectReason::Parse(e) => disposition(e).status,
            RejectReason::Chunk(e) => e.status(),
            RejectReason::TransferEncoding(e) => e.status(),
            RejectReason::Host(_) | RejectReason::Truncated => 400,
            RejectReason::Expectation => 417,
            RejectReason::Http2Preface => 505,
        }
    }
}

/// Which deadline fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Between requests.
    Idle,
    /// The head did not arrive in time.
    Header,
    /// The body did not arrive in time.
    Request,
}

/// What [`Http11Session`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Http11Event {
    /// A request was answered by the service.
    Request {
        /// Its method.
        method: Method,
        /// Its version.
        version: Version,
        /// The status sent.
        status: u16,
        /// Which request on this connection (1 = first).
        nth: u64,
        /// Decoded body bytes.
        body_len: usize,
        /// Whether the body was chunked.
        chunked_body: bool,
        /// Whether the response was chunked.
        chunked_response: bool,
        /// Whether the connection stays open after it.
        keep_alive: bool,
        /// Responses queued unsent after this one (pipeline depth).
        depth: usize,
    },
    /// A request was refused with `status`.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// The status sent.
        status: u16,
    },
    /// `100 Continue` was sent.
    Continue,
    /// A deadline fired.
    Timeout {
        /// Which.
        kind: TimeoutKind,
        /// Whether a 408 was sent.
        answered: bool,
    },
    /// The session decided to close; its statistics.
    Closed(ConnStats),
}

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The response a refused connection gets.
pub const REFUSAL_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: zyphos\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\n\r\n503 Service Unavailable\n";

/// The HTTP/2 prior-knowledge connection preface (RFC 9113 §3.4) is
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`; this much of its request line decides. Until milestone 23
/// serves prior-knowledge h2 on this port, the answer is 505 HTTP Version Not Supported (not
/// 400: the bytes are a well-formed request line, of a version this port does not speak) and
/// a close, as soon as these bytes are in: the rest (`\r\n\r\nSM…`) cannot change the
/// verdict, and a client may send the preface (or less of it) and wait for the server's
/// SETTINGS, so waiting for more bytes ends in a 408 after the header timeout (smug-115 over
/// a socket, when the session waited while its input was a prefix of the whole preface, the
/// whole preface included).
const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0";

/// Statuses from the service after which the connection closes (`Connection: close`, then
/// close), as nginx does (`ngx_http_special_response_handler` drops keep-alive after 400, 413
/// and 414): the request was malformed or too large, so the server cannot trust that it knows
/// where the next one starts. The session's own refusals ([`RejectReason`]) always close.
const CLOSE_AFTER: &[u16] = &[400, 413, 414, 431];

/// Refines m04's verdict where HTTP/1.1 is stricter: the HTTP/2 preface is a 505, and a
/// request line ending in a bare LF or a bare CR is a line-ending error (400), not HTTP/0.9
/// (505). `None`: the verdict depends on a byte that has not arrived yet (a CR last), so wait
/// for it. The verdict must not depend on how far the input reaches beyond the line, or the
/// same bytes would be answered 400 or 505 depending on how the network cut them (the fuzz
/// target `http11_session` found exactly that when this looked for the first LF anywhere).
fn classify(e: ParseError, input: &[u8]) -> Option<RejectReason> {
    Some(match e {
        ParseError::UnknownMethod if input.starts_with(H2_PREFACE_LINE) => {
            RejectReason::Http2Preface
        }
        // m04 reports HTTP/0.9 at the first CR or LF after the target (neither can occur in
        // a method or a target), so that is the line's end.
        ParseError::Http09 => match memchr::memchr2(b'\r', b'\n', input) {
            Some(end) if input[end] == b'\r' => match input.get(end + 1) {
                Some(b'\n') => RejectReason::Parse(e),
                Some(_) => RejectReason::Parse(ParseError::BadLineEnding),
                None => return None,
            },
            Some(_) => RejectReason::Parse(ParseError::BadLineEnding),
            None => RejectReason::Parse(e),
        },
        _ => RejectReason::Parse(e),
    })
}

/// A body being read.
#[derive(Debug)]
struct BodyProgress {
    /// Chunked decoder, or `None` for Content-Length.
    decoder: Option<ChunkedDecoder>,
    /// Wire bytes of body consumed by the decoder (after the head).
    wire: usize,
    decoded: Vec<u8>,
    continue_sent: bool,
}

/// The HTTP/1.1 core. See the [module docs](self).
pub struct Http11Session<S: Service> {
    service: Arc<S>,
    config: Http11Config,
    parser: Parser,
    peer: SocketAddr,
    anchor: (Instant, SystemTime),
    accepted: Instant,
    last_now: Instant,
    inbox: Vec<u8>,
    body: Option<BodyProgress>,
    /// When the first byte of the request in progress arrived.
    request_started: Option<Instant>,
    head_done: bool,
    idle_deadline: Instant,
    /// The idle timeout in force (ours, or shorter if the client's `Keep-Alive` asked).
    idle: Duration,
    output: Vec<u8>,
    sent: usize,
    /// End offsets (in `output`) of responses not yet fully written.
    queue: VecDeque<usize>,
    state: SessionState,
    peer_eof: bool,
    draining: bool,
    events: VecDeque<Http11Event>,
    stats: ConnStats,
    registry: Option<Arc<Http11Stats>>,
    closed_reported: bool,
}

impl<S: Service> std::fmt::Debug for Http11Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http11Session")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("inbox", &self.inbox.len())
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// What the head checks decided about one request.
struct Plan {
    chunked: bool,
    length: usize,
    keep_alive: bool,
    expect: Expectation,
    client_timeout: Option<Duration>,
}

impl<S: Service> Http11Session<S> {
    /// A session for `peer`, accepted at `now`; `anchor` pairs an `Instant` with the wall time.
    pub fn new(
        service: Arc<S>,
        config: Http11Config,
        peer: SocketAddr,
        now: Instant,
        anchor: (Instant, SystemTime),
    ) -> Self {
        Http11Session {
            service,
            config,
            parser: Parser::new(config.limits, Mode::Strict).with_caller_framing(),
            peer,
            anchor,
            accepted: now,
            last_now: now,
            inbox: Vec::new(),
            body: None,
            request_started: None,
            head_done: false,
            idle_deadline: now + config.idle_timeout,
            idle: config.idle_timeout,
            output: Vec::new(),
            sent: 0,
            queue: VecDeque::new(),
            state: SessionState::Open,
            peer_eof: false,
            draining: false,
            events: VecDeque::new(),
            stats: ConnStats::default(),
            registry: None,
            closed_reported: false,
        }
    }

    /// The same session, merging its statistics into `registry` when dropped.
    pub fn with_registry(mut self, registry: Arc<Http11Stats>) -> Self {
        registry.record_open();
        self.registry = Some(registry);
        self
    }

    /// This connection's statistics so far.
    pub fn conn_stats(&self) -> ConnStats {
        let mut s = self.stats;
        s.lifetime = self.last_now.saturating_duration_since(self.accepted);
        s
    }

    /// Responses queued and not completely written (the pipeline depth now).
    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor.1 + now.saturating_duration_since(self.anchor.0)
    }

    fn tick(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    fn set_state(&mut self, state: SessionState) {
        self.state = state;
        if let SessionState::Closing(r) | SessionState::Closed(r) = state {
            self.stats.close = Some(r);
            if !self.closed_reported {
                self.closed_reported = true;
                let s = self.conn_stats();
                self.events.push_back(Http11Event::Closed(s));
            }
        }
    }

    fn push_response_end(&mut self) {
        self.queue.push_back(self.output.len());
        self.stats.max_depth = self.stats.max_depth.max(self.queue.len());
    }

    /// Writes an error response with `Connection: close` (or keep-alive for 417) and closes.
    fn reject(&mut self, now: Instant, reason: RejectReason, head: bool) {
        let status = reason.status();
        let keep = reason == RejectReason::Expectation;
        let wall = self.wall(now);
        {
            let mut w = ResponseWriter::new(&mut self.output, head, wall);
            w.manage_connection(Version::Http11, (!keep).then_some("close"), None, false);
            let body = format!("{status} {}\n", reason_phrase(status));
            w.send(
                status,
                Some("text/plain; charset=utf-8"),
                &[],
                body.as_bytes(),
            );
        }
        self.push_response_end();
        self.stats.rejected += 1;
        self.events
            .push_back(Http11Event::Rejected { reason, status });
        if !keep {
            self.set_state(SessionState::Closing(CloseReason::ProtocolError));
        }
    }

    /// The head checks of RFC 9112 beyond m04's syntax: Host, Transfer-Encoding, Expect,
    /// persistence.
    fn plan(&self, req: &Request<'_>) -> Result<Plan, RejectReason> {
        let fields = HeadFields::scan(req);
        check_host_fields(req, fields.host_count, fields.host).map_err(RejectReason::Host)?;
        let chunked = req.has_transfer_encoding();
        if chunked {
            check_transfer_encoding(req).map_err(RejectReason::TransferEncoding)?;
        }
        let length = usize::try_from(req.declared_length().unwrap_or(0))
            .map_err(|_| RejectReason::Parse(ParseError::BodyTooLarge))?;
        let opts = fields.connection;
        let persistent = match req.version() {
            Version::Http11 => !opts.close,
            _ => opts.keep_alive && !opts.close,
        };
        let last = self.stats.requests + 1 >= self.config.max_requests;
        let client_timeout = fields.keep_alive_timeout;
        Ok(Plan {
            chunked,
            length,
            keep_alive: persistent && !last && !self.draining,
            expect: fields.expect,
            client_timeout,
        })
    }

    /// Answers one complete request (body already framed and decoded).
    fn dispatch(&mut self, now: Instant, req: &Request<'_>, plan: &Plan) {
        let nth = self.stats.requests + 1;
        let wall = self.wall(now);
        let ctx = ConnInfo {
            peer: self.peer,
            now,
            wall,
        };
        let http11 = req.version() == Version::Http11;
        let connection = match (http11, plan.keep_alive) {
            (true, true) => None,
            (_, false) => Some("close"),
            (false, true) => Some("keep-alive"),
        };
        let idle = plan.client_timeout.map_or(self.config.idle_timeout, |t| {
            t.min(self.config.idle_timeout)
        });
        let keep_alive_header = (plan.keep_alive && self.config.advertise_keep_alive)
            .then(|| (idle.as_secs(), self.config.max_requests.saturating_sub(nth)));
        let mut out = std::mem::take(&mut self.output);
        let (status, chunked_response, closes) = {
            let mut w = ResponseWriter::new(&mut out, req.method() == Method::Head, wall);
            w.manage_connection(Version::Http11, connection, keep_alive_header, http11);
            w.close_after(CLOSE_AFTER);
            if plan.expect == Expectation::Unsupported {
                w.send(
                    417,
                    Some("text/plain; charset=utf-8"),
                    &[],
                    b"417 Expectation Failed\n",
                );
            } else {
                self.service.call(req, &ctx, &mut w);
            }
            (w.finish(), w.is_chunked(), w.closes_connection())
        };
        // The service's status may close a connection the plan kept (`CLOSE_AFTER`).
        let closed_by_status = plan.keep_alive && closes;
        let keep_alive = plan.keep_alive && !closes;
        self.output = out;
        self.push_response_end();
        if plan.expect == Expectation::Unsupported {
            self.stats.rejected += 1;
            self.events.push_back(Http11Event::Rejected {
                reason: RejectReason::Expectation,
                status: 417,
            });
        } else {
            self.stats.requests += 1;
            self.stats.chunked_requests += u64::from(plan.chunked);
            self.stats.chunked_responses += u64::from(chunked_response);
            self.events.push_back(Http11Event::Request {
                method: req.method(),
                version: req.version(),
                status,
                nth,
                body_len: req.body().len(),
                chunked_body: plan.chunked,
                chunked_response,
                keep_alive,
                depth: self.queue.len(),
            });
        }
        self.request_started = None;
        self.head_done = false;
        self.idle_deadline = now + idle;
        self.idle = idle;
        if closed_by_status {
            self.set_state(SessionState::Closing(CloseReason::ProtocolError));
        } else if !plan.keep_alive {
            self.set_state(SessionState::Closing(CloseReason::Done));
        }
    }

    /// Answers every complete request in the inbox, up to the pipeline limits.
    fn pump(&mut self, now: Instant) {
        let inbox = std::mem::take(&mut self.inbox);
        let mut start = 0;
        while self.state == SessionState::Open && start < inbox.len() {
            let unsent = self.output.len() - self.sent;
            if self.queue.len() >= self.config.max_pipeline_depth
                || unsent >= self.config.max_pending_output
            {
                break;
            }
            let input = &inbox[start..];
            if self.request_started.is_none() {
                self.request_started = Some(now);
            }
            let req = match self.parser.parse(input) {
                Ok(Status::Partial) => break,
                Ok(Status::Complete(req)) => req,
                Err(ParseError::UnknownMethod)
                    if input.len() < H2_PREFACE_LINE.len()
                        && H2_PREFACE_LINE.starts_with(input) =>
                {
                    // Maybe the HTTP/2 preface: wait for its request line to answer 505, not
                    // 501 (and no longer: see `H2_PREFACE_LINE`).
                    break;
                }
                Err(e) => {
                    let Some(reason) = classify(e, input) else {
                        break;
                    };
                    self.reject(now, reason, false);
                    start = inbox.len();
                    break;
                }
            };
            self.head_done = true;
            let head_len = req.head_len();
            let plan = match self.plan(&req) {
                Ok(p) => p,
                Err(reason) => {
                    self.reject(now, reason, req.method() == Method::Head);
                    start = inbox.len();
                    break;
                }
            };
            let mut progress = self.body.take().unwrap_or_else(|| BodyProgress {
                decoder: plan.chunked.then(|| ChunkedDecoder::new(self.config.chunk)),
                wire: 0,
                decoded: Vec::new(),
                continue_sent: false,
            });
            let body_input = &input[head_len..];
            let complete = match progress.decoder.as_mut() {
                Some(d) => match d.feed(&body_input[progress.wire..], &mut progress.decoded) {
                    Ok(p) => {
                        progress.wire += p.consumed;
                        p.done
                    }
                    Err(e) => {
                        self.reject(now, RejectReason::Chunk(e), false);
                        start = inbox.len();
                        break;
                    }
                },
                None => body_input.len() >= plan.length,
            };
            if !complete {
                if plan.expect == Expectation::Continue && !progress.continue_sent {
                    let received = if plan.chunked {
                        progress.wire
                    } else {
                        body_input.len()
                    };
                    if received == 0 {
                        self.output.extend_from_slice(CONTINUE_100);
                        self.stats.continues += 1;
                        self.events.push_back(Http11Event::Continue);
                    }
                    progress.continue_sent = true;
                }
                self.body = Some(progress);
                break;
            }
            let (body, used): (&[u8], usize) = match progress.decoder {
                Some(_) => (&progress.decoded, head_len + progress.wire),
                None => (&body_input[..plan.length], head_len + plan.length),
            };
            let req = req.with_body(body);
            self.dispatch(now, &req, &plan);
            start += used;
        }
        let mut inbox = inbox;
        inbox.drain(..start.min(inbox.len()));
        if inbox.is_empty() && self.body.is_none() {
            self.request_started = None;
            self.head_done = false;
        }
        if !self.inbox.is_empty() {
            // Cannot happen (nothing appends during a pump), but never lose bytes.
            inbox.extend_from_slice(&self.inbox);
        }
        self.inbox = inbox;
        self.settle_eof(now);
    }

    /// After the peer's FIN: close once everything answerable was answered.
    fn settle_eof(&mut self, now: Instant) {
        if !self.peer_eof || self.state != SessionState::Open {
            return;
        }
        let blocked = self.queue.len() >= self.config.max_pipeline_depth
            || self.output.len() - self.sent >= self.config.max_pending_output;
        if blocked {
            return; // consume_output will pump again
        }
        if self.inbox.is_empty() && self.body.is_none() {
            self.set_state(SessionState::Closing(CloseReason::PeerClosed));
        } else {
            self.body = None;
            self.inbox.clear();
            self.reject(now, RejectReason::Truncated, false);
        }
    }
}

impl<S: Service> Session for Http11Session<S> {
    type Event = Http11Event;

    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        self.tick(now);
        if self.state != SessionState::Open || input.is_empty() {
            return 0;
        }
        let room = self.input_limit().saturating_sub(self.inbox.len());
        let take = input.len().min(room);
        if take == 0 {
            return 0;
        }
        self.inbox.extend_from_slice(&input[..take]);
        self.stats.bytes_in += take as u64;
        self.pump(now);
        take
    }

    fn handle_eof(&mut self, now: Instant, unconsumed: &[u8]) {
        self.tick(now);
        if self.state != SessionState::Open {
            return;
        }
        self.peer_eof = true;
        let room = self.input_limit().saturating_sub(self.inbox.len());
        let take = unconsumed.len().min(room);
        self.inbox.extend_from_slice(&unconsumed[..take]);
        self.stats.bytes_in += take as u64;
        self.pump(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state != SessionState::Open {
            return None;
        }
        Some(match self.request_started {
            Some(t) if !self.head_done => t + self.config.header_timeout,
            Some(t) => t + self.config.request_timeout,
            None => self.idle_deadline,
        })
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.request_started {
            Some(_) => {
                let kind = if self.head_done {
                    TimeoutKind::Request
                } else {
                    TimeoutKind::Header
                };
                let wall = self.wall(now);
                {
                    let mut w = ResponseWriter::new(&mut self.output, false, wall);
                    w.manage_connection(Version::Http11, Some("close"), None, false);
                    w.send(
                        408,
                        Some("text/plain; charset=utf-8"),
                        &[],
                        b"408 Request Timeout\n",
                    );
                }
                self.push_response_end();
                self.stats.rejected += 1;
                self.events.push_back(Http11Event::Timeout {
                    kind,
                    answered: true,
                });
                self.set_state(SessionState::Closing(CloseReason::Timeout));
            }
            None => {
                self.events.push_back(Http11Event::Timeout {
                    kind: TimeoutKind::Idle,
                    answered: false,
                });
                if self.pending_output().is_empty() {
                    self.set_state(SessionState::Closed(CloseReason::Timeout));
                } else {
                    self.set_state(SessionState::Closing(CloseReason::Timeout));
                }
            }
        }
    }

    fn pending_output(&self) -> &[u8] {
        &self.output[self.sent..]
    }

    fn consume_output(&mut self, n: usize) {
        let n = n.min(self.output.len() - self.sent);
        self.sent += n;
        self.stats.bytes_out += n as u64;
        while self.queue.front().is_some_and(|&end| end <= self.sent) {
            self.queue.pop_front();
        }
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
            self.queue.clear();
        }
        if n > 0 && self.request_started.is_none() {
            // Writing is activity: the idle clock starts when the peer has its responses.
            self.idle_deadline = self.idle_deadline.max(self.last_now + self.idle);
        }
        if self.state == SessionState::Open && !self.inbox.is_empty() {
            let now = self.last_now;
            self.pump(now);
        } else {
            let now = self.last_now;
            self.settle_eof(now);
        }
    }

    fn poll_event(&mut self) -> Option<Http11Event> {
        self.events.pop_front()
    }

    fn state(&self) -> SessionState {
        self.state
    }

    fn input_limit(&self) -> usize {
        let l = &self.config.limits;
        l.max_head
            .max(l.max_request_line)
            .saturating_add(l.max_body.max(self.config.chunk.max_wire()))
            .max(1)
    }

    fn begin_shutdown(&mut self, now: Instant) {
        self.tick(now);
        if self.state != SessionState::Open {
            return;
        }
        self.draining = true;
        if self.inbox.is_empty() && self.body.is_none() {
            if self.pending_output().is_empty() {
                self.set_state(SessionState::Closed(CloseReason::Shutdown));
            } else {
                self.set_state(SessionState::Closing(CloseReason::Shutdown));
            }
        } else {
            let wall = self.wall(now);
            {
                let mut w = ResponseWriter::new(&mut self.output, false, wall);
                w.manage_connection(Version::Http11, Some("close"), None, false);
                w.send(
                    503,
                    Some("text/plain; charset=utf-8"),
                    &[],
                    b"503 Service Unavailable\n",
                );
            }
            self.push_response_end();
            self.set_state(SessionState::Closing(CloseReason::Shutdown));
        }
    }
}

impl<S: Service> Drop for Http11Session<S> {
    fn drop(&mut self) {
        if let Some(r) = self.registry.take() {
            let mut s = self.conn_stats();
            if !matches!(
                self.state,
                SessionState::Closing(_) | SessionState::Closed(_)
            ) {
                s.close = None;
            }
            r.record_close(&s);
        }
    }
}

/// Makes [`Http11Session`]s for a driver, sharing one [`Http11Stats`].
pub struct Http11Factory<S: Service> {
    service: Arc<S>,
    config: Http11Config,
    anchor: (Instant, SystemTime),
    stats: Arc<Http11Stats>,
}

impl<S: Service> std::fmt::Debug for Http11Factory<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http11Factory")
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Service> Http11Factory<S> {
    /// A factory answering with `service` under `config`. Takes the wall-clock anchor once,
    /// here (sessions read no clock).
    pub fn new(service: Arc<S>, config: Http11Config) -> Self {
        Http11Factory {
            service,
            config,
            anchor: (Instant::now(), SystemTime::now()),
            stats: Arc::new(Http11Stats::default()),
        }
    }

    /// The same factory with an explicit clock anchor (tests with fixed dates).
    pub fn with_anchor(mut self, instant: Instant, wall: SystemTime) -> Self {
        self.anchor = (instant, wall);
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &Http11Config {
        &self.config
    }

    /// The statistics every session merges into.
    pub fn stats(&self) -> Arc<Http11Stats> {
        Arc::clone(&self.stats)
    }
}

impl<S: Service> SessionFactory for Http11Factory<S> {
    type Session = Http11Session<S>;

    fn new_session(&self, peer: SocketAddr, now: Instant) -> Http11Session<S> {
        Http11Session::new(
            Arc::clone(&self.service),
            self.config,
            peer,
            now,
            self.anchor,
        )
        .with_registry(Arc::clone(&self.stats))
    }

    fn refusal(&self) -> &[u8] {
        REFUSAL_503
    }

    fn protocol(&self) -> &'static str {
        "http1.1"
    }
}
