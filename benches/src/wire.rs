//! Bytes on the wire: the request we send (built once per run) and a minimal, strict,
//! incremental HTTP/1.x response parser. No sockets and no clocks here.
//!
//! The parser is sans-IO: [`ResponseParser::feed`] takes whatever bytes arrived and either
//! reports one complete response (and how many input bytes it used) or consumes everything and
//! waits for more. Bodies are counted, never stored; only an incomplete head, chunk-size line or
//! trailer line is buffered, bounded by [`MAX_HEAD`] and [`MAX_CHUNK_LINE`]. Peer bytes never
//! cause a panic: every malformed input is a [`ParseError`].

use memchr::memmem;
use std::sync::LazyLock;

/// The end-of-head searcher, built once per process.
static HEAD_END: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));

/// Largest response head (status line + headers) accepted, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) or trailer line accepted, in bytes.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Why a response was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The status line does not start with `HTTP/1.0` or `HTTP/1.1`.
    #[error("status line does not start with HTTP/1.0 or HTTP/1.1")]
    BadVersion,
    /// The status code is not three ASCII digits (100–999) followed by a space or the line end.
    #[error("status code is not three digits")]
    BadStatusCode,
    /// A line of the head ends in a bare LF or contains a stray CR.
    #[error("line not terminated by CRLF")]
    BadLineEnding,
    /// A header line has no colon, an empty or non-token name, or whitespace before the colon.
    #[error("malformed header line")]
    BadHeader,
    /// `Content-Length` is not a plain decimal number that fits in 64 bits.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Two `Content-Length` headers disagree.
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3: a server must not send both).
    #[error("both Transfer-Encoding and Content-Length present")]
    LengthAndEncoding,
    /// The head is larger than [`MAX_HEAD`].
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// A chunk-size line is not hexadecimal or overflows 64 bits.
    #[error("invalid chunk size")]
    BadChunkSize,
    /// A chunk-size or trailer line is longer than [`MAX_CHUNK_LINE`].
    #[error("chunk-size or trailer line longer than {MAX_CHUNK_LINE} bytes")]
    ChunkLineTooLong,
    /// Chunk data is not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
    /// A response arrived although no request was outstanding.
    #[error("response without an outstanding request")]
    Unsolicited,
}

/// A complete response, as far as the load generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code (100–999).
    pub status: u16,
    /// The server will close the connection after this response (`Connection: close`, an
    /// HTTP/1.0 response without keep-alive, or a body delimited by the connection close).
    pub close: bool,
}

/// What one call to [`ResponseParser::feed`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One response is complete; `used` bytes of the input belonged to it (the rest belongs to
    /// the next response).
    Complete {
        /// Input bytes consumed.
        used: usize,
        /// The response.
        response: Response,
    },
    /// All input was consumed and the response is not complete yet.
    Partial,
}

/// Where the parser is inside the current response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the end of the head (`\r\n\r\n`).
    Head,
    /// `remaining` body bytes announced by Content-Length.
    Body { remaining: u64 },
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside chunk data.
    ChunkData { remaining: u64 },
    /// After chunk data: `seen_cr` tells whether the CR of the closing CRLF was read.
    ChunkDataEnd { seen_cr: bool },
    /// Reading trailer lines until an empty line.
    Trailers,
    /// Body runs until the server closes the connection.
    UntilClose,
}

/// Incremental HTTP/1.x response parser. One per connection; reused across responses.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Partial head or partial chunk-size / trailer line carried between reads.
    buf: Vec<u8>,
    /// Responses to HEAD carry no body.
    head_request: bool,
    /// The response whose body is being read.
    current: Response,
}

/// Head facts needed to frame the body.
struct Head {
    response: Response,
    content_length: Option<u64>,
    chunked: bool,
    transfer_encoding: bool,
}

impl ResponseParser {
    /// A parser for responses to requests with the given method (`HEAD` responses have no body).
    pub fn new(method: &str) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            buf: Vec::new(),
            head_request: method.eq_ignore_ascii_case("HEAD"),
            current: Response {
                status: 0,
                close: false,
            },
        }
    }

    /// Forget any partial response (after the connection was replaced).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.buf.clear();
    }

    /// True when no byte of a response has been seen yet.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.buf.is_empty()
    }

    /// The connection reached end-of-file. Returns the response that EOF completes (a body
    /// delimited by the close), or `None` if a response was cut short or none was under way
    /// (the caller tells those apart with [`is_idle`](Self::is_idle) first).
    pub fn finish(&mut self) -> Option<Response> {
        if self.state == State::UntilClose {
            self.state = State::Head;
            Some(self.current)
        } else {
            None
        }
    }

    /// Feed bytes; see [`Progress`].
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, ParseError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Head => match self.take_head(input, &mut pos)? {
                    None => return Ok(Progress::Partial),
                    Some(head) => {
                        if let Some(done) = self.start_body(head)? {
                            return Ok(Progress::Complete {
                                used: pos,
                                response: done,
                            });
                        }
                    }
                },
                State::Body { remaining } => {
                    let avail = (input.len() - pos) as u64;
                    if avail < remaining {
                        self.state = State::Body {
                            remaining: remaining - avail,
                        };
                        return Ok(Progress::Partial);
                    }
                    // `remaining <= avail <= usize::MAX` here.
                    pos += remaining as usize;
                    self.state = State::Head;
                    return Ok(Progress::Complete {
                        used: pos,
                        response: self.current,
                    });
                }
                State::ChunkSize => {
                    let Some(line) = self.take_line(input, &mut pos)? else {
                        return Ok(Progress::Partial);
                    };
                    let size = {
                        let bytes = match line {
                            Line::Input(a, b) => &input[a..b],
                            Line::Buf => &self.buf[..],
                        };
                        parse_chunk_size(bytes)?
                    };
                    self.buf.clear();
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkData { remaining } => {
                    let avail = (input.len() - pos) as u64;
                    if avail < remaining {
                        self.state = State::ChunkData {
                            remaining: remaining - avail,
                        };
                        return Ok(Progress::Partial);
                    }
                    pos += remaining as usize;
                    self.state = State::ChunkDataEnd { seen_cr: false };
                }
                State::ChunkDataEnd { seen_cr } => {
                    let Some(&b) = input.get(pos) else {
                        return Ok(Progress::Partial);
                    };
                    pos += 1;
                    self.state = match (seen_cr, b) {
                        (false, b'\r') => State::ChunkDataEnd { seen_cr: true },
                        (true, b'\n') => State::ChunkSize,
                        _ => return Err(ParseError::BadChunkEnd),
                    };
                }
                State::Trailers => {
                    let Some(line) = self.take_line(input, &mut pos)? else {
                        return Ok(Progress::Partial);
                    };
                    let empty = {
                        let bytes = match line {
                            Line::Input(a, b) => &input[a..b],
                            Line::Buf => &self.buf[..],
                        };
                        check_crlf_line(bytes)?.is_empty()
                    };
                    self.buf.clear();
                    if empty {
                        self.state = State::Head;
                        return Ok(Progress::Complete {
                            used: pos,
                            response: self.current,
                        });
                    }
                }
                State::UntilClose => return Ok(Progress::Partial),
            }
        }
    }

    /// Find the end of the head, buffering a partial one. On success the head is parsed and
    /// `pos` points just past it.
    fn take_head(&mut self, input: &[u8], pos: &mut usize) -> Result<Option<Head>, ParseError> {
        let rest = &input[*pos..];
        if self.buf.is_empty() {
            if let Some(i) = HEAD_END.find(rest) {
                let head = parse_head(&rest[..i + 4])?;
                *pos += i + 4;
                return Ok(Some(head));
            }
            if rest.len() > MAX_HEAD {
                return Err(ParseError::HeadTooLarge);
            }
            self.buf.extend_from_slice(rest);
            *pos = input.len();
            return Ok(None);
        }
        // Continue a partial head: the terminator may straddle the old and new bytes.
        let old = self.buf.len();
        let take = rest.len().min(MAX_HEAD + 4 - old.min(MAX_HEAD));
        self.buf.extend_from_slice(&rest[..take]);
        let from = old.saturating_sub(3);
        match HEAD_END.find(&self.buf[from..]) {
            Some(i) => {
                let end = from + i + 4;
                let head = parse_head(&self.buf[..end]);
                *pos += end - old;
                self.buf.clear();
                head.map(Some)
            }
            None if self.buf.len() > MAX_HEAD => Err(ParseError::HeadTooLarge),
            None => {
                *pos += take;
                Ok(None)
            }
        }
    }

    /// Decide how the body is framed; returns the response if it is already complete.
    fn start_body(&mut self, head: Head) -> Result<Option<Response>, ParseError> {
        let status = head.response.status;
        if (100..200).contains(&status) && status != 101 {
            // Interim response (100 Continue, 103 Early Hints): the final one follows.
            return Ok(None);
        }
        self.current = head.response;
        if head.transfer_encoding && head.content_length.is_some() {
            return Err(ParseError::LengthAndEncoding);
        }
        if self.head_request || status == 204 || status == 304 || status == 101 {
            if status == 101 {
                self.current.close = true;
            }
            return Ok(Some(self.current));
        }
        if head.chunked {
            self.state = State::ChunkSize;
            return Ok(None);
        }
        if head.transfer_encoding {
            // RFC 9112 §6.3: a non-chunked transfer coding means the body runs until close.
            self.current.close = true;
            self.state = State::UntilClose;
            return Ok(None);
        }
        match head.content_length {
            Some(0) => Ok(Some(self.current)),
            Some(n) => {
                self.state = State::Body { remaining: n };
                Ok(None)
            }
            None => {
                self.current.close = true;
                self.state = State::UntilClose;
                Ok(None)
            }
        }
    }

    /// Take one LF-terminated line, buffering a partial one (bounded by [`MAX_CHUNK_LINE`]).
    fn take_line(&mut self, input: &[u8], pos: &mut usize) -> Result<Option<Line>, ParseError> {
        let rest = &input[*pos..];
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                if self.buf.len() + i + 1 > MAX_CHUNK_LINE {
                    return Err(ParseError::ChunkLineTooLong);
                }
                let start = *pos;
                *pos += i + 1;
                if self.buf.is_empty() {
                    Ok(Some(Line::Input(start, start + i + 1)))
                } else {
                    self.buf.extend_from_slice(&rest[..=i]);
                    Ok(Some(Line::Buf))
                }
            }
            None => {
                if self.buf.len() + rest.len() > MAX_CHUNK_LINE {
                    return Err(ParseError::ChunkLineTooLong);
                }
                self.buf.extend_from_slice(rest);
                *pos = input.len();
                Ok(None)
            }
        }
    }
}

/// Where a complete line lives: a range of the current input, or the carry-over buffer.
#[derive(Debug, Clone, Copy)]
enum Line {
    Input(usize, usize),
    Buf,
}

/// Strip the CRLF of a line that ends in LF; reject bare LF and stray CR.
fn check_crlf_line(line: &[u8]) -> Result<&[u8], ParseError> {
    match line {
        [body @ .., b'\r', b'\n'] if !body.contains(&b'\r') && !body.contains(&b'\n') => Ok(body),
        _ => Err(ParseError::BadLineEnding),
    }
}

/// `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1).
fn parse_chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let line = check_crlf_line(line).map_err(|_| ParseError::BadChunkSize)?;
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits_end == 0 {
        return Err(ParseError::BadChunkSize);
    }
    match line.get(digits_end) {
        None | Some(b';' | b' ' | b'\t') => {}
        Some(_) => return Err(ParseError::BadChunkSize),
    }
    let mut size: u64 = 0;
    for &b in &line[..digits_end] {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(ParseError::BadChunkSize),
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(ParseError::BadChunkSize)?;
    }
    Ok(size)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parse a complete head (ending in `\r\n\r\n`).
fn parse_head(head: &[u8]) -> Result<Head, ParseError> {
    // Lines without the final empty line.
    let body = &head[..head.len() - 2];
    let mut lines = body.split_inclusive(|&b| b == b'\n');
    let status_line = check_crlf_line(lines.next().ok_or(ParseError::BadVersion)?)?;
    let (http10, status) = parse_status_line(status_line)?;
    let mut h = Head {
        response: Response {
            status,
            close: false,
        },
        content_length: None,
        chunked: false,
        transfer_encoding: false,
    };
    let mut keep_alive = false;
    for raw in lines {
        let line = check_crlf_line(raw)?;
        let colon = memchr::memchr(b':', line).ok_or(ParseError::BadHeader)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ParseError::BadHeader);
        }
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::BadContentLength);
            }
            let mut n: u64 = 0;
            for &d in value {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or(ParseError::BadContentLength)?;
            }
            match h.content_length {
                Some(prev) if prev != n => return Err(ParseError::ConflictingContentLength),
                _ => h.content_length = Some(n),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            h.transfer_encoding = true;
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(&[]);
            h.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    h.response.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    if http10 && !keep_alive {
        h.response.close = true;
    }
    Ok(h)
}

/// `HTTP/1.x SP 3DIGIT [SP reason]`; returns (is HTTP/1.0, status).
fn parse_status_line(line: &[u8]) -> Result<(bool, u16), ParseError> {
    let http10 = match line.get(..8) {
        Some(b"HTTP/1.1") => false,
        Some(b"HTTP/1.0") => true,
        _ => return Err(ParseError::BadVersion),
    };
    if line.get(8) != Some(&b' ') {
        return Err(ParseError::BadVersion);
    }
    let code = match line.get(9..12) {
        Some(c) if c.iter().all(u8::is_ascii_digit) && c[0] != b'0' => c,
        _ => return Err(ParseError::BadStatusCode),
    };
    match line.get(12) {
        None | Some(b' ') => {}
        Some(_) => return Err(ParseError::BadStatusCode),
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    Ok((http10, status))
}

/// The request bytes for one HTTP request (built once per run, then repeated).
///
/// `version_10` selects `HTTP/1.0` (one request per connection, the server closes); otherwise
/// `HTTP/1.1` keep-alive. `headers` are complete `Name: value` lines without CRLF; a `Host`
/// header among them replaces the default one.
pub fn build_http_request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[String],
    version_10: bool,
) -> Vec<u8> {
    let mut req = Vec::with_capacity(64 + path.len() + host.len());
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(path.as_bytes());
    req.extend_from_slice(if version_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let has_host = headers.iter().any(|h| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("host"))
    });
    if !has_host {
        req.extend_from_slice(b"Host: ");
        req.extend_from_slice(host.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    for h in headers {
        req.extend_from_slice(h.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// Decoder for the responses of one scenario: HTTP, or echo (exactly `size` bytes back).
#[derive(Debug)]
pub enum Decoder {
    /// HTTP/1.x responses.
    Http(ResponseParser),
    /// TCP echo: each request is answered by `size` bytes; `remaining` are still expected.
    Echo {
        /// Message size.
        size: usize,
        /// Bytes of the current message still expected.
        remaining: usize,
    },
}

impl Decoder {
    /// Feed bytes; see [`Progress`]. Echo messages never ask for a close.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, ParseError> {
        match self {
            Decoder::Http(p) => p.feed(input),
            Decoder::Echo { size, remaining } => {
                if input.len() < *remaining {
                    *remaining -= input.len();
                    Ok(Progress::Partial)
                } else {
                    let used = *remaining;
                    *remaining = *size;
                    Ok(Progress::Complete {
                        used,
                        response: Response {
                            status: 200,
                            close: false,
                        },
                    })
                }
            }
        }
    }

    /// Forget a partial response.
    pub fn reset(&mut self) {
        match self {
            Decoder::Http(p) => p.reset(),
            Decoder::Echo { size, remaining } => *remaining = *size,
        }
    }

    /// True when no byte of a response has been seen yet.
    pub fn is_idle(&self) -> bool {
        match self {
            Decoder::Http(p) => p.is_idle(),
            Decoder::Echo { size, remaining } => size == remaining,
        }
    }

    /// End-of-file: the response it completes, if any.
    pub fn finish(&mut self) -> Option<Response> {
        match self {
            Decoder::Http(p) => p.finish(),
            Decoder::Echo { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

    /// Feed `input` split into pieces of `step` bytes; collect complete responses.
    fn feed_all(
        p: &mut ResponseParser,
        input: &[u8],
        step: usize,
    ) -> Result<Vec<Response>, ParseError> {
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let mut pos = 0;
            while pos < piece.len() {
                match p.feed(&piece[pos..])? {
                    Progress::Complete { used, response } => {
                        pos += used;
                        out.push(response);
                    }
                    Progress::Partial => break,
                }
            }
        }
        Ok(out)
    }

    fn parse_one(input: &[u8]) -> Result<Vec<Response>, ParseError> {
        feed_all(&mut ResponseParser::new("GET"), input, input.len())
    }

    #[test]
    fn test_parser_content_length_complete() {
        let mut p = ResponseParser::new("GET");
        assert_eq!(
            p.feed(OK),
            Ok(Progress::Complete {
                used: OK.len(),
                response: Response {
                    status: 200,
                    close: false
                }
            })
        );
        assert!(p.is_idle());
    }

    #[test]
    fn test_parser_split_at_every_byte() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(OK);
        }
        for step in 1..stream.len() {
            let got = feed_all(&mut ResponseParser::new("GET"), &stream, step).expect("valid");
            assert_eq!(got.len(), 3, "step {step}");
        }
    }

    #[test]
    fn test_parser_pipelined_responses_in_one_buffer() {
        let stream = [OK, OK, OK, OK].concat();
        let got = parse_one(&stream).expect("valid");
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn test_parser_chunked_body_with_extension_and_trailer() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nHello\r\n8\r\n, World!\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in 1..r.len() {
            let got = feed_all(&mut ResponseParser::new("GET"), r, step).expect("valid");
            assert_eq!(got.len(), 1, "step {step}");
        }
    }

    #[test]
    fn test_parser_chunked_followed_by_next_response() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nd\r\nHello, World!\r\n0\r\n\r\n";
        let stream = [&chunked[..], OK].concat();
        assert_eq!(parse_one(&stream).expect("valid").len(), 2);
    }

    #[test]
    fn test_parser_connection_close_and_http10() {
        let got = parse_one(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .expect("valid");
        assert!(got[0].close);
        let got = parse_one(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").expect("valid");
        assert!(got[0].close);
        let got =
            parse_one(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .expect("valid");
        assert!(!got[0].close);
    }

    #[test]
    fn test_parser_body_until_close_completes_on_finish() {
        let mut p = ResponseParser::new("GET");
        assert_eq!(
            p.feed(b"HTTP/1.1 200 OK\r\n\r\nsome body"),
            Ok(Progress::Partial)
        );
        assert!(!p.is_idle());
        assert_eq!(
            p.finish(),
            Some(Response {
                status: 200,
                close: true
            })
        );
    }

    #[test]
    fn test_parser_interim_and_bodiless_statuses() {
        let got = parse_one(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
            .expect("valid");
        assert_eq!(
            got,
            vec![Response {
                status: 204,
                close: false
            }]
        );
        let mut p = ResponseParser::new("HEAD");
        let got = feed_all(
            &mut p,
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
            100,
        )
        .expect("valid");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn test_parser_rejects_bad_version() {
        assert_eq!(
            parse_one(b"HTTP/2.0 200 OK\r\n\r\n"),
            Err(ParseError::BadVersion)
        );
        assert_eq!(
            parse_one(b"garbage garbage\r\n\r\n"),
            Err(ParseError::BadVersion)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1200 OK\r\n\r\n"),
            Err(ParseError::BadVersion)
        );
    }

    #[test]
    fn test_parser_rejects_bad_status_code() {
        assert_eq!(
            parse_one(b"HTTP/1.1 abc OK\r\n\r\n"),
            Err(ParseError::BadStatusCode)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 20 OK\r\n\r\n"),
            Err(ParseError::BadStatusCode)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(ParseError::BadStatusCode)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 099 OK\r\n\r\n"),
            Err(ParseError::BadStatusCode)
        );
    }

    #[test]
    fn test_parser_rejects_bare_lf() {
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
            Err(ParseError::BadLineEnding)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"),
            Err(ParseError::BadLineEnding)
        );
    }

    #[test]
    fn test_parser_rejects_bad_header() {
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"),
            Err(ParseError::BadHeader)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
            Err(ParseError::BadHeader)
        );
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\r\n: empty\r\n\r\n"),
            Err(ParseError::BadHeader)
        );
    }

    #[test]
    fn test_parser_rejects_bad_content_length() {
        for cl in ["-1", "1x", "", "0x10", "99999999999999999999999"] {
            let r = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                parse_one(r.as_bytes()),
                Err(ParseError::BadContentLength),
                "{cl:?}"
            );
        }
    }

    #[test]
    fn test_parser_rejects_conflicting_content_length() {
        assert_eq!(
            parse_one(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            Err(ParseError::ConflictingContentLength)
        );
        // Equal duplicates are tolerated.
        assert!(
            parse_one(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na")
                .is_ok()
        );
    }

    #[test]
    fn test_parser_rejects_length_and_encoding() {
        assert_eq!(
            parse_one(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Err(ParseError::LengthAndEncoding)
        );
    }

    #[test]
    fn test_parser_rejects_head_too_large() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEAD + 10 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse_one(&big), Err(ParseError::HeadTooLarge));
        assert_eq!(
            feed_all(&mut ResponseParser::new("GET"), &big, 1000),
            Err(ParseError::HeadTooLarge)
        );
    }

    #[test]
    fn test_parser_rejects_bad_chunk_size() {
        let pre = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for bad in ["zz\r\n", "\r\n", "5x\r\n", "5\n", "11111111111111111\r\n"] {
            let r = format!("{pre}{bad}");
            assert_eq!(
                parse_one(r.as_bytes()),
                Err(ParseError::BadChunkSize),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn test_parser_rejects_long_chunk_line() {
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
        r.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE + 1));
        assert_eq!(parse_one(&r), Err(ParseError::ChunkLineTooLong));
    }

    #[test]
    fn test_parser_rejects_missing_crlf_after_chunk() {
        assert_eq!(
            parse_one(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHelloX\r\n0\r\n\r\n"
            ),
            Err(ParseError::BadChunkEnd)
        );
    }

    #[test]
    fn test_request_builder_host_and_headers() {
        let r = build_http_request(
            "GET",
            "/plaintext",
            "127.0.0.1:80",
            &["Accept: */*".into()],
            false,
        );
        assert_eq!(
            r,
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:80\r\nAccept: */*\r\n\r\n".to_vec()
        );
        let r = build_http_request("HEAD", "/", "h", &["host: other".into()], true);
        assert_eq!(r, b"HEAD / HTTP/1.0\r\nhost: other\r\n\r\n".to_vec());
    }

    #[test]
    fn test_echo_decoder_counts_bytes() {
        let mut d = Decoder::Echo {
            size: 4,
            remaining: 4,
        };
        assert_eq!(d.feed(b"ab"), Ok(Progress::Partial));
        assert!(matches!(
            d.feed(b"cdef"),
            Ok(Progress::Complete { used: 2, .. })
        ));
        assert!(d.is_idle());
        assert_eq!(d.feed(b"ef"), Ok(Progress::Partial));
        assert!(!d.is_idle());
    }
}
