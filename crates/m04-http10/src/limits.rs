//! Hard limits and parser modes. Every limit has a name, a default and a status code.

use std::time::Duration;

/// Hard limits on one request, each mapped to the status that reports it
/// (see [`crate::error::disposition`]).
///
/// | limit | default | status when exceeded |
/// |---|---|---|
/// | `max_request_line` | 8 KiB | 414 URI Too Long |
/// | `max_headers` | 100 | 431 Request Header Fields Too Large |
/// | `max_header_line` | 8 KiB | 431 |
/// | `max_head` | 64 KiB | 431 |
/// | `max_body` | 1 MiB | 413 Payload Too Large |
/// | `header_timeout` | 10 s | 408 Request Timeout (or a silent close if nothing arrived) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, without its line terminator (→ 414).
    pub max_request_line: usize,
    /// Most header fields (→ 431): the "header bomb" guard.
    pub max_headers: usize,
    /// Longest header line (name, colon, value; without the terminator; → 431).
    pub max_header_line: usize,
    /// Longest head: request line + headers + blank line (→ 431).
    pub max_head: usize,
    /// Largest Content-Length accepted (→ 413).
    pub max_body: usize,
    /// Time allowed for the whole request to arrive, from accept (→ 408 or close).
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_headers: 100,
            max_header_line: 8 * 1024,
            max_head: 64 * 1024,
            max_body: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How forgiving the parser is where the RFCs let a recipient choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// RFC 7230's strict reading (the default): CRLF only, obs-fold rejected with 400
    /// (RFC 7230 §3.2.4 "MUST either reject ... or replace"), `HTTP` case-sensitive,
    /// one digit per version number.
    #[default]
    Strict,
    /// RFC 1945's tolerant reading: a bare LF ends a line (RFC 1945 §2.2 recommends it),
    /// continuation lines (obs-fold, RFC 1945 §4.2) are accepted and replaced by SP before the
    /// service sees them, `http/1.0` is accepted (§2.1: literals are case-insensitive) and version
    /// numbers may have leading zeros (§3.1).
    Rfc1945,
}
