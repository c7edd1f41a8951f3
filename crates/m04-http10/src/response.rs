//! The response writer: status line, generated headers, CRLF everywhere, HEAD without a body,
//! and no header injection.

use std::time::SystemTime;

use crate::date::http_date;
use crate::method::Version;

/// The status line's version: this is an HTTP/1.0 server (RFC 7230 §2.6 lets it answer 1.1
/// clients with 1.0).
pub const RESPONSE_VERSION: &str = "HTTP/1.0";
/// The `Server` header value.
pub const SERVER: &str = "zyphos";

/// The reason phrase for `status` (RFC 1945 §6.1.1 and RFC 7231 §6.1), or `"Unknown"`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Whether `name` is a token (RFC 7230 §3.2.6), so it cannot smuggle a line break.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(crate::parse::is_token_byte)
}

/// Whether `value` is safe in a header: no CR, LF, NUL or other control byte except HTAB,
/// no DEL (RFC 7230 §3.2 field-value).
pub fn is_valid_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Writes one response into the session's output buffer. See [`ResponseWriter::send`].
#[derive(Debug)]
pub struct ResponseWriter<'a> {
    out: &'a mut Vec<u8>,
    head: bool,
    wall: SystemTime,
    status: Option<u16>,
    body_len: usize,
    refused_headers: usize,
    /// Milestone 8: the connection management the session chose (`None`: HTTP/1.0 as before).
    managed: Option<Managed>,
    chunked: bool,
}

/// Connection management set by an HTTP/1.1 session ([`ResponseWriter::manage_connection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Managed {
    version: Version,
    connection: Option<&'static str>,
    keep_alive: Option<(u64, u64)>,
    allow_chunked: bool,
    /// Statuses answered with `Connection: close` whatever `connection` says.
    close_after: &'static [u16],
}

impl<'a> ResponseWriter<'a> {
    /// A writer appending to `out`; `head` = the request was HEAD; `wall` dates the response.
    pub fn new(out: &'a mut Vec<u8>, head: bool, wall: SystemTime) -> ResponseWriter<'a> {
        ResponseWriter {
            out,
            head,
            wall,
            status: None,
            body_len: 0,
            refused_headers: 0,
            managed: None,
            chunked: false,
        }
    }

    /// Milestone 8: the session manages the connection. The status line says `version`;
    /// `connection` (`"close"`, `"keep-alive"`) is sent as a `Connection` header and
    /// `keep_alive = Some((timeout_s, max))` as `Keep-Alive: timeout=…, max=…`;
    /// `allow_chunked` lets [`ResponseWriter::send_chunked`] use `Transfer-Encoding: chunked`
    /// (an HTTP/1.1 peer). The handler's own `Connection`, `Keep-Alive` and
    /// `Transfer-Encoding` headers are then refused (the session owns framing and persistence).
    pub fn manage_connection(
        &mut self,
        version: Version,
        connection: Option<&'static str>,
        keep_alive: Option<(u64, u64)>,
        allow_chunked: bool,
    ) {
        self.managed = Some(Managed {
            version,
            connection,
            keep_alive,
            allow_chunked,
            close_after: &[],
        });
    }

    /// Milestone 8: a response whose status is one of `statuses` goes out with
    /// `Connection: close` and no `Keep-Alive`, whatever [`ResponseWriter::manage_connection`]
    /// planned: the session decides persistence before the handler picks its status, and
    /// closes after some statuses (a 400: it cannot know where the next request starts).
    /// [`ResponseWriter::closes_connection`] tells the session which way it went. Call after
    /// `manage_connection`; without it this does nothing.
    pub fn close_after(&mut self, statuses: &'static [u16]) {
        if let Some(m) = self.managed.as_mut() {
            m.close_after = statuses;
        }
    }

    /// Whether the response sent told the peer that the connection closes
    /// (`Connection: close`). `false` before anything is sent or without
    /// [`ResponseWriter::manage_connection`].
    pub fn closes_connection(&self) -> bool {
        self.managed.is_some_and(|m| {
            m.connection == Some("close") || self.status.is_some_and(|s| m.close_after.contains(&s))
        })
    }

    /// Like [`ResponseWriter::send_parts`], but the body goes out with
    /// `Transfer-Encoding: chunked`, one chunk per non-empty part, then the last chunk — when
    /// the session allowed it ([`ResponseWriter::manage_connection`]). Otherwise (an HTTP/1.0
    /// peer, which cannot decode chunked) it falls back to `Content-Length`.
    pub fn send_chunked(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        headers: &[(&str, &[u8])],
        parts: &[&[u8]],
    ) {
        let allowed = self.managed.is_some_and(|m| m.allow_chunked);
        let bodyless = status < 200 || status == 204 || status == 304;
        if !allowed || bodyless {
            self.send_parts(status, content_type, headers, parts);
            return;
        }
        self.chunked = true;
        self.send_parts(status, content_type, headers, parts);
    }

    /// Whether the response went out chunked.
    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Writes status line + given headers + generated headers + body. Call once; a second call
    /// is ignored (and trips a `debug_assert`). Headers whose name is not a token or whose value
    /// has CR/LF/NUL/controls are skipped and counted ([`ResponseWriter::refused_headers`]):
    /// a handler cannot inject a header or a second response. A handler's own
    /// `Content-Length` is skipped too (the writer's is authoritative).
    pub fn send(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) {
        self.send_parts(status, content_type, headers, &[body]);
    }

    /// Same, with the body supplied in pieces (writev-like): the total length goes in
    /// Content-Length, then the pieces in order.
    pub fn send_parts(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        headers: &[(&str, &[u8])],
        body: &[&[u8]],
    ) {
        debug_assert!(self.status.is_none(), "ResponseWriter::send called twice");
        if self.status.is_some() {
            return;
        }
        let status = if (100..=999).contains(&status) {
            status
        } else {
            500
        };
        let total: usize = body.iter().map(|p| p.len()).sum();
        // 1xx, 204 and 304 never carry a body (RFC 7230 §3.3.3).
        let bodyless = status < 200 || status == 204 || status == 304;
        let total = if bodyless { 0 } else { total };
        self.status = Some(status);
        self.body_len = total;

        let out = &mut *self.out;
        out.reserve(128 + total);
        let version = match self.managed {
            Some(m) if m.version == Version::Http11 => "HTTP/1.1",
            _ => RESPONSE_VERSION,
        };
        out.extend_from_slice(version.as_bytes());
        out.push(b' ');
        push_u64(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(status).as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(&http_date(self.wall));
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = content_type {
            if is_valid_header_value(ct.as_bytes()) {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(ct.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                self.refused_headers += 1;
            }
        }
        let managed = self.managed.is_some();
        for &(name, value) in headers {
            if !is_valid_header_name(name)
                || !is_valid_header_value(value)
                || name.eq_ignore_ascii_case("content-length")
                || (managed
                    && (name.eq_ignore_ascii_case("connection")
                        || name.eq_ignore_ascii_case("keep-alive")
                        || name.eq_ignore_ascii_case("transfer-encoding")))
            {
                self.refused_headers += 1;
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(mut m) = self.managed {
            if m.close_after.contains(&status) {
                m.connection = Some("close");
                m.keep_alive = None;
            }
            if let Some(c) = m.connection {
                out.extend_from_slice(b"Connection: ");
                out.extend_from_slice(c.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            if let Some((timeout, max)) = m.keep_alive {
                out.extend_from_slice(b"Keep-Alive: timeout=");
                push_u64(out, timeout);
                out.extend_from_slice(b", max=");
                push_u64(out, max);
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            if !self.head {
                for part in body.iter().filter(|p| !p.is_empty()) {
                    push_hex(out, part.len());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(part);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            return;
        }
        if !bodyless {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, total as u64);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.head && !bodyless {
            for part in body {
                out.extend_from_slice(part);
            }
        }
    }

    /// Whether the request was HEAD (the body is not written).
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// Answers `500 Internal Server Error` if nothing was sent yet (a service that returned
    /// without responding is a server bug, answered as one). Returns the status that went out.
    pub fn finish(&mut self) -> u16 {
        if self.status().is_none() {
            self.send(
                500,
                Some("text/plain; charset=utf-8"),
                &[],
                b"500 Internal Server Error\n",
            );
        }
        self.status().unwrap_or(500)
    }

    /// The status sent, if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The entity length sent (the Content-Length value).
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// Headers refused as injection attempts or duplicates of generated ones.
    pub fn refused_headers(&self) -> usize {
        self.refused_headers
    }
}

/// Appends `n` in lower-case hex (a chunk-size).
fn push_hex(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n as u64;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    // Statuses, lengths and counters are mostly one to three digits: copies of a known length
    // (inlined), not a `memcpy` call of a variable one.
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    if n < 1000 {
        out.extend_from_slice(&[
            b'0' + (n / 100) as u8,
            b'0' + (n / 10 % 10) as u8,
            b'0' + (n % 10) as u8,
        ]);
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A complete error response for `status` (plain-text body naming the status), as the session
/// sends it for a rejected request.
pub fn write_error_response(out: &mut Vec<u8>, status: u16, head: bool, wall: SystemTime) {
    let mut w = ResponseWriter::new(out, head, wall);
    let reason = reason_phrase(status);
    let mut body = Vec::with_capacity(reason.len() + 5);
    push_u64(&mut body, u64::from(status));
    body.push(b' ');
    body.extend_from_slice(reason.as_bytes());
    body.push(b'\n');
    w.send(status, Some("text/plain; charset=utf-8"), &[], &body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_push_u64_every_digit_count() {
        for n in [0, 7, 9, 10, 42, 99, 100, 404, 999, 1000, 65_536, u64::MAX] {
            let mut out = b"x".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }
}
