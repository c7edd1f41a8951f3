//! [`Request`]: zero-copy views into the caller's buffer.
//!
//! The parser validates the header block once; the request keeps the block and walks it again
//! on lookup (no header array to size, nothing allocated). A lookup costs one pass over the
//! block, which for the ~15 headers of a browser request is a few hundred bytes.

use crate::method::{Method, Version};
use crate::parse::trim_ows;

/// A parsed request: zero-copy views into the caller's buffer.
#[derive(Clone)]
pub struct Request<'a> {
    method: Method,
    target: &'a str,
    version: Version,
    /// Header lines, each with its terminator, without the blank line.
    headers: &'a [u8],
    header_count: usize,
    obs_fold: bool,
    body: &'a [u8],
    head_len: usize,
    declared_length: Option<u64>,
    transfer_encoding: bool,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("headers", &self.header_count)
            .field("body", &self.body.len())
            .field("head_len", &self.head_len)
            .finish()
    }
}

impl<'a> Request<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        method: Method,
        target: &'a str,
        version: Version,
        headers: &'a [u8],
        header_count: usize,
        obs_fold: bool,
        body: &'a [u8],
        head_len: usize,
    ) -> Request<'a> {
        Request {
            method,
            target,
            version,
            headers,
            header_count,
            obs_fold,
            body,
            head_len,
            declared_length: None,
            transfer_encoding: false,
        }
    }

    pub(crate) fn set_framing(&mut self, declared_length: Option<u64>, transfer_encoding: bool) {
        self.declared_length = declared_length;
        self.transfer_encoding = transfer_encoding;
    }

    /// The same request with another body (milestone 8: a body the caller framed and decoded,
    /// e.g. from chunked). Everything else, `head_len` included, is unchanged.
    pub fn with_body<'b>(&self, body: &'b [u8]) -> Request<'b>
    where
        'a: 'b,
    {
        Request {
            body,
            ..self.clone()
        }
    }

    /// The `Content-Length` value received, if any (a list of identical values counts once).
    pub fn declared_length(&self) -> Option<u64> {
        self.declared_length
    }

    /// Whether a `Transfer-Encoding` header was received (only possible in a complete request
    /// from a parser [`with_caller_framing`](crate::Parser::with_caller_framing)).
    pub fn has_transfer_encoding(&self) -> bool {
        self.transfer_encoding
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request-target exactly as received (validated ASCII).
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The target up to `?` (still percent-encoded).
    pub fn path(&self) -> &'a str {
        match self.target.find('?') {
            Some(q) => &self.target[..q],
            None => self.target,
        }
    }

    /// After `?`, without it (still encoded).
    pub fn query(&self) -> Option<&'a str> {
        self.target.find('?').map(|q| &self.target[q + 1..])
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The first header named `name` (ASCII case-insensitive), its value without surrounding
    /// whitespace.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        HeaderIter { rest: self.headers }
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header in order, `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        HeaderIter { rest: self.headers }
            .map(|(n, v)| (std::str::from_utf8(n).unwrap_or_default(), v))
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// Whether the head had continuation lines (only possible in [`crate::Mode::Rfc1945`]);
    /// such values still contain the line breaks until [`crate::unfold_in_place`] ran.
    pub fn has_obs_fold(&self) -> bool {
        self.obs_fold
    }

    /// Exactly Content-Length bytes (empty if none).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The Content-Length (the body's length).
    pub fn content_length(&self) -> usize {
        self.body.len()
    }

    /// Bytes of request line + headers + blank line.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Bytes the request used: head and body.
    pub fn len(&self) -> usize {
        self.head_len + self.body.len()
    }

    /// Never true (a request has at least a request line); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Walks a validated header block.
struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let block = self.rest;
        let colon = memchr::memchr(b':', block)?;
        let name = &block[..colon];
        // The value runs to the end of the line, plus any continuation lines.
        let mut end = colon + 1;
        let next = loop {
            match memchr::memchr(b'\n', &block[end..]) {
                Some(lf) => {
                    let after = end + lf + 1;
                    if matches!(block.get(after), Some(b' ' | b'\t')) {
                        end = after;
                        continue;
                    }
                    break after;
                }
                None => break block.len(),
            }
        };
        let mut value_end = next;
        while value_end > colon + 1 && matches!(block[value_end - 1], b'\r' | b'\n') {
            value_end -= 1;
        }
        self.rest = &block[next..];
        Some((name, trim_ows(&block[colon + 1..value_end])))
    }
}
