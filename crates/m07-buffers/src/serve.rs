//! The request path of this milestone: one keep-alive HTTP/1.0 connection served with no heap
//! allocation per request.
//!
//! ```text
//!  socket ──readv──► RingBuffer<pooled read buffer> ──► m04 Parser (borrowed &[u8])
//!                                                         │ Request<'_> (zero-copy)
//!      handler(request, &Arena, &mut pooled write buffer) ─┘
//!         │ Reply { status, body: Static | Scratch(n) | … }
//!  m04 ResponseWriter ──► head: reused Vec (capacity kept across requests)
//!  socket ◄──writev── [ head | body ]        arena.reset(), write buffer back to the pool
//! ```
//!
//! Per request: one `readv` (or more for a split request), one `writev` (or more if the socket
//! takes part), no `malloc`. The write buffer is borrowed from the pool per response; if the
//! pool stays exhausted for [`ServeConfig::acquire_timeout`] the connection gets a 503 and is
//! closed (backpressure, counted), never a hidden allocation.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime};

use m04_http10::{Method, Parser, Request, ResponseWriter, Status, disposition};

use crate::arena::Arena;
use crate::pool::BufferSource;
use crate::ring::RingBuffer;
use crate::sys;

/// What a handler answers.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<&'static str>,
    /// Where the body is.
    pub body: ReplyBody,
}

/// Where a reply's body lives (never in a fresh allocation).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ReplyBody {
    /// Bytes that outlive the request (a static page, a cached file).
    Static(&'static [u8]),
    /// The first `n` bytes of the pooled write buffer the handler was given.
    Scratch(usize),
}

/// The application: turns a request into a reply, using the per-request arena and the pooled
/// write buffer as scratch.
pub trait Handler {
    /// Answers one request.
    fn handle(&self, req: &Request<'_>, arena: &Arena, scratch: &mut [u8]) -> Reply;
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, &Arena, &mut [u8]) -> Reply,
{
    fn handle(&self, req: &Request<'_>, arena: &Arena, scratch: &mut [u8]) -> Reply {
        self(req, arena, scratch)
    }
}

/// Limits of the request loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// The request parser (its `max_head` should not exceed the read buffer: a head that does
    /// not fit the ring is answered 431).
    pub parser: Parser,
    /// How long to wait for a write buffer when the pool is exhausted before answering 503
    /// and closing.
    pub acquire_timeout: Duration,
    /// Requests served on one connection before it is closed (keep-alive cap).
    pub max_requests: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            parser: Parser::default(),
            acquire_timeout: Duration::from_millis(50),
            max_requests: u64::MAX,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnEnd {
    /// The client closed (FIN) between requests.
    PeerClosed,
    /// The response said `close` (no keep-alive asked, or the cap reached).
    Done,
    /// A request could not be parsed (the status sent).
    BadRequest(u16),
    /// The request head did not fit the read buffer (431 sent).
    HeadTooLarge,
    /// The pool stayed exhausted; 503 sent.
    PoolExhausted,
}

/// What one connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnReport {
    /// Requests answered (including error responses).
    pub requests: u64,
    /// Response bytes written.
    pub bytes_out: u64,
    /// Failed attempts to get a write buffer (each one a pool exhaustion).
    pub exhausted_waits: u64,
    /// How it ended.
    pub end: ConnEnd,
}

/// Per-connection state that is reused across requests.
#[derive(Debug)]
pub struct ConnScratch {
    /// The rendered response head (capacity kept).
    pub head: Vec<u8>,
    /// The per-request arena (reset after each response).
    pub arena: Arena,
}

impl ConnScratch {
    /// A head buffer of `head_capacity` bytes and an arena of `arena_bytes` (both allocated
    /// once, here, per connection).
    pub fn new(head_capacity: usize, arena_bytes: usize) -> io::Result<ConnScratch> {
        let arena = Arena::new(arena_bytes, cfg!(debug_assertions))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(ConnScratch {
            head: Vec::with_capacity(head_capacity),
            arena,
        })
    }
}

const SERVICE_UNAVAILABLE: &[u8] =
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Whether the client asked to keep the connection open (`Connection: keep-alive`,
/// RFC 2068 §19.7.1, the HTTP/1.0 extension).
pub fn wants_keep_alive(req: &Request<'_>) -> bool {
    req.header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"keep-alive"))
}

/// Writes every byte of `bufs` with `writev`, resuming after partial writes.
pub fn write_all_vectored<W: Write>(w: &mut W, bufs: &mut [IoSlice<'_>]) -> io::Result<u64> {
    let mut total = 0u64;
    let mut bufs = bufs;
    // Skip leading empty slices (IoSlice::advance_slices needs a non-empty remainder check).
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                total += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Serves one connection: reads requests into a ring over `read_buf`, answers each with
/// `handler`, writes with `writev`, until the client closes or a response closes. `source`
/// lends the per-response write buffer.
pub fn serve_connection<B, H>(
    stream: &mut TcpStream,
    read_buf: B::Buf,
    source: &B,
    handler: &H,
    scratch: &mut ConnScratch,
    cfg: &ServeConfig,
) -> io::Result<ConnReport>
where
    B: BufferSource,
    H: Handler + ?Sized,
{
    let mut ring = RingBuffer::new(read_buf);
    let mut report = ConnReport {
        requests: 0,
        bytes_out: 0,
        exhausted_waits: 0,
        end: ConnEnd::Done,
    };
    loop {
        let data = ring.make_contiguous();
        let parsed = cfg.parser.parse(data);
        match parsed {
            Ok(Status::Complete(req)) => {
                let used = req.len();
                let keep = wants_keep_alive(&req) && report.requests + 1 < cfg.max_requests;
                let is_head = req.method() == Method::Head;
                let mut wbuf = match acquire(source, cfg.acquire_timeout, &mut report) {
                    Some(b) => b,
                    None => {
                        report.bytes_out +=
                            write_all_vectored(stream, &mut [IoSlice::new(SERVICE_UNAVAILABLE)])?;
                        report.requests += 1;
                        report.end = ConnEnd::PoolExhausted;
                        return Ok(report);
                    }
                };
                let reply = handler.handle(&req, &scratch.arena, wbuf.as_mut());
                let body: &[u8] = match reply.body {
                    ReplyBody::Static(b) => b,
                    ReplyBody::Scratch(n) => {
                        let w = wbuf.as_ref();
                        &w[..n.min(w.len())]
                    }
                };
                render_response_head(&mut scratch.head, &reply, body, keep);
                let body_out = if is_head || bodyless(reply.status) {
                    &[][..]
                } else {
                    body
                };
                report.bytes_out += write_all_vectored(
                    stream,
                    &mut [IoSlice::new(&scratch.head), IoSlice::new(body_out)],
                )?;
                report.requests += 1;
                drop(wbuf);
                scratch.arena.reset();
                ring.consume(used);
                if !keep {
                    report.end = ConnEnd::Done;
                    return Ok(report);
                }
            }
            Ok(Status::Partial) => {
                if ring.is_full() {
                    report.bytes_out +=
                        write_all_vectored(stream, &mut [IoSlice::new(HEAD_TOO_LARGE)])?;
                    report.requests += 1;
                    report.end = ConnEnd::HeadTooLarge;
                    return Ok(report);
                }
                let n = loop {
                    match ring.read_from(stream) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                if n == 0 {
                    report.end = ConnEnd::PeerClosed;
                    return Ok(report);
                }
            }
            Err(e) => {
                let d = disposition(e);
                scratch.head.clear();
                let mut w = ResponseWriter::new(&mut scratch.head, false, SystemTime::now());
                w.send(d.status, None, &[("Connection", b"close")], &[]);
                report.bytes_out += write_all_vectored(stream, &mut [IoSlice::new(&scratch.head)])?;
                report.requests += 1;
                report.end = ConnEnd::BadRequest(d.status);
                return Ok(report);
            }
        }
    }
}

fn bodyless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Renders the head with the body's real length as `Content-Length` (the writer in HEAD mode
/// emits headers only).
fn render_response_head(head: &mut Vec<u8>, reply: &Reply, body: &[u8], keep: bool) {
    head.clear();
    let mut w = ResponseWriter::new(head, true, SystemTime::now());
    let conn: &[(&str, &[u8])] = if keep {
        &[("Connection", b"keep-alive")]
    } else {
        &[("Connection", b"close")]
    };
    w.send(reply.status, reply.content_type, conn, body);
}

fn acquire<B: BufferSource>(
    source: &B,
    timeout: Duration,
    report: &mut ConnReport,
) -> Option<B::Buf> {
    let mut deadline: Option<Instant> = None;
    loop {
        match source.acquire() {
            Ok(b) => return Some(b),
            Err(_) => {
                report.exhausted_waits += 1;
                let d = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                if Instant::now() >= d {
                    return None;
                }
                std::thread::yield_now();
            }
        }
    }
}

/// How a file body is moved to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileMethod {
    /// `read` into a user buffer, then `write` it: two copies through user space.
    ReadWrite,
    /// `sendfile`: the kernel moves page-cache pages to the socket (no user-space copy).
    Sendfile,
    /// `splice` file → pipe → socket: the same zero-copy path built from the general
    /// primitive (page references move through a [`sys::Pipe`] of [`sys::PIPE_BYTES`]); two
    /// system calls per pipe-full instead of one per call.
    Splice,
}

/// Sends `len` bytes of `file` from offset 0 to `sock`. `buf` is the user buffer for
/// [`FileMethod::ReadWrite`] (a pooled buffer; unused by sendfile and splice). Returns bytes
/// sent. [`FileMethod::Splice`] makes its pipe here (two system calls per file: a server
/// would keep one per worker; see [`splice_file`]).
pub fn send_file(
    sock: &mut TcpStream,
    file: &mut File,
    len: u64,
    method: FileMethod,
    buf: &mut [u8],
) -> io::Result<u64> {
    match method {
        FileMethod::Sendfile => {
            let mut off = 0u64;
            while off < len {
                let want = usize::try_from(len - off)
                    .unwrap_or(usize::MAX)
                    .min(1 << 30);
                match sys::sendfile(sock.as_fd(), file.as_fd(), &mut off, want) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(off)
        }
        FileMethod::Splice => {
            splice_file(sock, file, len, &sys::Pipe::with_capacity(sys::PIPE_BYTES)?)
        }
        FileMethod::ReadWrite => {
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(0))?;
            let mut sent = 0u64;
            // An explicit loop, not io::copy: std specialises io::copy to sendfile/splice.
            while sent < len {
                let want = usize::try_from(len - sent)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = match file.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                sock.write_all(&buf[..n])?;
                sent += n as u64;
            }
            Ok(sent)
        }
    }
}

/// Sends `len` bytes of `file` from offset 0 to `sock` with `splice` through `pipe` (which
/// must be empty): file → pipe (up to the pipe's capacity), then pipe → socket until the
/// pipe is drained. Returns bytes sent.
pub fn splice_file(
    sock: &mut TcpStream,
    file: &mut File,
    len: u64,
    pipe: &sys::Pipe,
) -> io::Result<u64> {
    let mut off = 0u64;
    while off < len {
        let want = usize::try_from(len - off)
            .unwrap_or(usize::MAX)
            .min(pipe.capacity());
        let n = match sys::splice(file.as_fd(), Some(&mut off), pipe.writer(), want, true) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            match sys::splice(pipe.reader(), None, sock.as_fd(), left, off < len) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(off)
}

/// Sends a complete `200 OK` response for `file` (`len` bytes): the head with one write, the
/// body with `method`.
pub fn send_file_response(
    sock: &mut TcpStream,
    head: &mut Vec<u8>,
    file: &mut File,
    len: u64,
    method: FileMethod,
    buf: &mut [u8],
) -> io::Result<u64> {
    head.clear();
    // The m04 writer takes the body to count it; a file body is counted by its length, so the
    // head is spelled out here with the same pieces (status line, Date, Server, CRLFs).
    head.extend_from_slice(b"HTTP/1.0 200 OK\r\nDate: ");
    head.extend_from_slice(&m04_http10::date::http_date(SystemTime::now()));
    head.extend_from_slice(b"\r\nServer: ");
    head.extend_from_slice(m04_http10::response::SERVER.as_bytes());
    head.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\nContent-Length: ");
    let mut digits = [0u8; 20];
    head.extend_from_slice(format_u64(len, &mut digits));
    head.extend_from_slice(b"\r\n\r\n");
    let mut total = write_all_vectored(sock, &mut [IoSlice::new(head)])?;
    total += send_file(sock, file, len, method, buf)?;
    Ok(total)
}

fn format_u64(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}
