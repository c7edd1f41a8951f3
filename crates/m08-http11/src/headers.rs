//! Header semantics HTTP/1.1 adds on top of m04's parser: `Connection`, `Keep-Alive`,
//! `Transfer-Encoding`, `Host` and `Expect` (RFC 9110 §5.6.1 lists, §7.2, §7.6.1, §10.1.1;
//! RFC 9112 §6.1, §9.3).
//!
//! Every function here is pure: header values in, a decision out.

use std::time::Duration;

use m04_http10::{Request, is_token_byte};

/// `OWS` trimmed from both ends.
pub(crate) fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Whether `v` is a non-empty token (RFC 9110 §5.6.2).
pub fn is_token(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| is_token_byte(b))
}

/// The members of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed, empty members
/// dropped (a recipient must accept and ignore them).
pub fn list_members(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|m| !m.is_empty())
}

/// What the `Connection` header fields of a message say (RFC 9110 §7.6.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// A `close` token: this is the last request/response on the connection.
    pub close: bool,
    /// A `keep-alive` token (HTTP/1.0 persistence, RFC 2068 §19.7.1).
    pub keep_alive: bool,
    /// An `upgrade` token.
    pub upgrade: bool,
    /// Other tokens (names of hop-by-hop fields).
    pub other: usize,
}

/// Parses every `Connection` field of `request` (tokens are case-insensitive; several fields
/// combine as one list).
pub fn connection_options(request: &Request<'_>) -> ConnectionOptions {
    let mut o = ConnectionOptions::default();
    for (_, value) in request
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        parse_connection_into(value, &mut o);
    }
    o
}

/// Adds the tokens of one `Connection` value to `o`.
pub fn parse_connection_into(value: &[u8], o: &mut ConnectionOptions) {
    for token in list_members(value) {
        if token.eq_ignore_ascii_case(b"close") {
            o.close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            o.keep_alive = true;
        } else if token.eq_ignore_ascii_case(b"upgrade") {
            o.upgrade = true;
        } else {
            o.other += 1;
        }
    }
}

/// `Keep-Alive: timeout=5, max=100` (RFC 2068 §19.7.1.1; advisory, so unknown or malformed
/// parameters are ignored, never an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepAliveParams {
    /// How long the sender will keep an idle connection.
    pub timeout: Option<Duration>,
    /// How many more requests the sender will accept on the connection.
    pub max: Option<u64>,
}

/// Parses one `Keep-Alive` value. Values may be tokens or quoted strings; only digit strings
/// of at most 9 digits are taken.
pub fn parse_keep_alive(value: &[u8]) -> KeepAliveParams {
    let mut p = KeepAliveParams::default();
    for member in list_members(value) {
        let (name, val) = match member.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&member[..eq]), trim(&member[eq + 1..])),
            None => (member, &b""[..]),
        };
        let val = match val {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        let number = if !val.is_empty() && val.len() <= 9 && val.iter().all(u8::is_ascii_digit) {
            Some(val.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
        } else {
            None
        };
        if name.eq_ignore_ascii_case(b"timeout") {
            p.timeout = number.map(Duration::from_secs).or(p.timeout);
        } else if name.eq_ignore_ascii_case(b"max") {
            p.max = number.or(p.max);
        }
    }
    p
}

/// Why a request's `Transfer-Encoding` is refused (RFC 9112 §6.1, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferEncodingError {
    /// `chunked` is not the final coding (or there is no coding): the length is unknowable
    /// (§6.3 rule 4: 400 and close).
    ChunkedNotFinal,
    /// `chunked` applied more than once (§7: MUST NOT).
    ChunkedTwice,
    /// A coding member that is not a token (`"chunked"`, `chunked;x=y`): 400.
    Malformed,
    /// A well-formed coding this server does not implement (`gzip, chunked`): 501.
    Unsupported,
    /// `Transfer-Encoding` in an HTTP/1.0 request: framing is faulty (§6.1): 400.
    Http10,
}

impl TransferEncodingError {
    /// The status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            TransferEncodingError::Unsupported => 501,
            _ => 400,
        }
    }

    /// A short snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            TransferEncodingError::ChunkedNotFinal => "te_chunked_not_final",
            TransferEncodingError::ChunkedTwice => "te_chunked_twice",
            TransferEncodingError::Malformed => "te_malformed",
            TransferEncodingError::Unsupported => "te_unsupported",
            TransferEncodingError::Http10 => "te_in_http10",
        }
    }
}

/// Checks the `Transfer-Encoding` fields of `request` (all of them, combined in order): the
/// only accepted value is `chunked` alone (any case, OWS around it).
pub fn check_transfer_encoding(request: &Request<'_>) -> Result<(), TransferEncodingError> {
    let mut codings: Vec<&[u8]> = Vec::new();
    for (_, value) in request
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        codings.extend(list_members(value));
    }
    if request.version() == m04_http10::Version::Http10 {
        return Err(TransferEncodingError::Http10);
    }
    if codings.iter().any(|c| !is_token(c)) {
        return Err(TransferEncodingError::Malformed);
    }
    match codings.last() {
        Some(last) if last.eq_ignore_ascii_case(b"chunked") => {}
        _ => return Err(TransferEncodingError::ChunkedNotFinal),
    }
    let rest = &codings[..codings.len() - 1];
    if rest.iter().any(|c| c.eq_ignore_ascii_case(b"chunked")) {
        return Err(TransferEncodingError::ChunkedTwice);
    }
    if !rest.is_empty() {
        return Err(TransferEncodingError::Unsupported);
    }
    Ok(())
}

/// Whether `v` is a valid `Host` value: `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986
/// §3.2.2), possibly empty. No userinfo, no path, no whitespace.
pub fn is_valid_host(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let (host, port) = if v.first() == Some(&b'[') {
        match v.iter().position(|&b| b == b']') {
            Some(close) => {
                let inner = &v[1..close];
                if inner.is_empty()
                    || !inner
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
                {
                    return false;
                }
                match &v[close + 1..] {
                    [] => return true,
                    [b':', port @ ..] => (&v[..0], port),
                    _ => return false,
                }
            }
            None => return false,
        }
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(c) => (&v[..c], &v[c + 1..]),
            None => (v, &b""[..]),
        }
    };
    host.iter().all(|&b| REG_NAME[usize::from(b)]) && port.iter().all(u8::is_ascii_digit)
}

/// The bytes of a `reg-name` (RFC 3986 §3.2.2: unreserved, sub-delims, `%`), one lookup each.
const REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    t
};

/// Why a request's `Host` is refused (RFC 9112 §3.2: 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostError {
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// More than one `Host` field.
    Duplicate,
    /// A `Host` value that is not `host[:port]`.
    Invalid,
    /// An absolute-form `http(s)` target without an authority (`http:///x`).
    EmptyAuthority,
}

/// Checks `Host` (and the authority of an absolute-form target).
pub fn check_host(request: &Request<'_>) -> Result<(), HostError> {
    let mut hosts = request
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"));
    let first = hosts.next().map(|(_, v)| v);
    let count = usize::from(first.is_some()) + hosts.count();
    check_host_fields(request, count, first)
}

/// [`check_host`] given the number of `Host` fields and the first one's value (what
/// [`HeadFields::scan`] collected in its single pass).
pub fn check_host_fields(
    request: &Request<'_>,
    count: usize,
    first: Option<&[u8]>,
) -> Result<(), HostError> {
    if count > 1 {
        return Err(HostError::Duplicate);
    }
    match first {
        None if request.version() == m04_http10::Version::Http11 => return Err(HostError::Missing),
        Some(v) if !is_valid_host(v) => return Err(HostError::Invalid),
        _ => {}
    }
    let t = request.target().as_bytes();
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            let end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            if end == 0 || !is_valid_host(&rest[..end]) {
                return Err(HostError::EmptyAuthority);
            }
        }
    }
    Ok(())
}

/// What the session needs from a head's fields, collected in one pass over them (instead of
/// one pass per header name): `Host`, `Connection`, `Keep-Alive`, `Expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFields<'a> {
    /// How many `Host` fields.
    pub host_count: usize,
    /// The first `Host` value.
    pub host: Option<&'a [u8]>,
    /// Every `Connection` field combined ([`connection_options`]).
    pub connection: ConnectionOptions,
    /// The smallest `timeout=` of the `Keep-Alive` fields.
    pub keep_alive_timeout: Option<Duration>,
    /// What `Expect` asks ([`expectation`]).
    pub expect: Expectation,
}

impl<'a> HeadFields<'a> {
    /// One walk over `request`'s fields; same answers as [`check_host`],
    /// [`connection_options`], [`parse_keep_alive`] and [`expectation`] separately.
    pub fn scan(request: &Request<'a>) -> HeadFields<'a> {
        let http11 = request.version() == m04_http10::Version::Http11;
        let mut f = HeadFields {
            host_count: 0,
            host: None,
            connection: ConnectionOptions::default(),
            keep_alive_timeout: None,
            expect: Expectation::None,
        };
        for (name, value) in request.headers() {
            match name.len() {
                4 if name.eq_ignore_ascii_case("host") => {
                    f.host_count += 1;
                    if f.host.is_none() {
                        f.host = Some(value);
                    }
                }
                6 if http11 && name.eq_ignore_ascii_case("expect") => {
                    f.expect = if trim(value).eq_ignore_ascii_case(b"100-continue")
                        && f.expect != Expectation::Unsupported
                    {
                        Expectation::Continue
                    } else {
                        Expectation::Unsupported
                    };
                }
                10 if name.eq_ignore_ascii_case("connection") => {
                    parse_connection_into(value, &mut f.connection);
                }
                10 if name.eq_ignore_ascii_case("keep-alive") => {
                    if let Some(t) = parse_keep_alive(value).timeout {
                        f.keep_alive_timeout = Some(f.keep_alive_timeout.map_or(t, |m| m.min(t)));
                    }
                }
                _ => {}
            }
        }
        f
    }
}

/// What `Expect` asks for (RFC 9110 §10.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// No `Expect` field (or an HTTP/1.0 request, where it is ignored).
    None,
    /// `100-continue`: send `100 Continue` before reading the body.
    Continue,
    /// Anything else: `417 Expectation Failed`.
    Unsupported,
}

/// Reads `Expect` from an HTTP/1.1 request.
pub fn expectation(request: &Request<'_>) -> Expectation {
    if request.version() != m04_http10::Version::Http11 {
        return Expectation::None;
    }
    let mut result = Expectation::None;
    for (_, v) in request
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("expect"))
    {
        if trim(v).eq_ignore_ascii_case(b"100-continue") && result != Expectation::Unsupported {
            result = Expectation::Continue;
        } else {
            result = Expectation::Unsupported;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keep_alive_params_parsed_and_garbage_ignored() {
        let p = parse_keep_alive(b"timeout=5, max=100");
        assert_eq!(p.timeout, Some(Duration::from_secs(5)));
        assert_eq!(p.max, Some(100));
        let p = parse_keep_alive(b" Timeout = \"7\" ,, MAX=x, foo");
        assert_eq!(p.timeout, Some(Duration::from_secs(7)));
        assert_eq!(p.max, None);
        assert_eq!(parse_keep_alive(b""), KeepAliveParams::default());
        assert_eq!(parse_keep_alive(b"timeout=99999999999").timeout, None);
    }

    #[test]
    fn test_connection_tokens_case_insensitive_list() {
        let mut o = ConnectionOptions::default();
        parse_connection_into(b"Keep-Alive, ,  Upgrade", &mut o);
        parse_connection_into(b"CLOSE", &mut o);
        assert!(o.keep_alive && o.upgrade && o.close);
        assert_eq!(o.other, 0);
        let mut o = ConnectionOptions::default();
        parse_connection_into(b"x-foo, te", &mut o);
        assert_eq!(o.other, 2);
        assert!(!o.close);
    }

    #[test]
    fn test_host_values() {
        for ok in [
            &b"h"[..],
            b"example.com:8080",
            b"[::1]:80",
            b"[::1]",
            b"",
            b"a-b.c",
        ] {
            assert!(is_valid_host(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [&b"user@h"[..], b"h/x", b"h h", b"h:8x", b"[::1", b"[zz]"] {
            assert!(!is_valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn test_head_fields_scan_agrees_with_separate_checks() {
        use m04_http10::{Limits, Mode, Parser, Status};
        let parser = Parser::new(Limits::default(), Mode::Strict).with_caller_framing();
        let heads: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=9\r\nkeep-alive: timeout=3, max=2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close, x\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: other\r\nContent-Length: 1\r\n\r\n",
        ];
        for head in heads {
            let Ok(Status::Complete(req)) = parser.parse(head) else {
                panic!("{:?} does not parse", String::from_utf8_lossy(head));
            };
            let f = HeadFields::scan(&req);
            let what = String::from_utf8_lossy(head);
            assert_eq!(
                check_host_fields(&req, f.host_count, f.host),
                check_host(&req),
                "{what}"
            );
            assert_eq!(f.connection, connection_options(&req), "{what}");
            assert_eq!(f.expect, expectation(&req), "{what}");
            let timeout = req
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("keep-alive"))
                .filter_map(|(_, v)| parse_keep_alive(v).timeout)
                .min();
            assert_eq!(f.keep_alive_timeout, timeout, "{what}");
        }
    }
}
