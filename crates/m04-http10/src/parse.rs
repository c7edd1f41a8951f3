//! The request parser: an explicit state machine over borrowed bytes.
//!
//! ```text
//!            CRLF (skipped, RFC 7230 §3.5)
//!            ┌──┐
//!            ▼  │
//!  ──▶ Start ───┴─▶ Method ─SP─▶ Target ─SP─▶ Version ─CR─▶ RequestLineEnd ─LF─┐
//!                     │ unknown     │ CRLF (HTTP/0.9)                          │
//!                     ▼ token: 501  ▼ 505                                      ▼
//!                                      ┌─────────── HeaderLineEnd ◀─CR── HeaderStart ◀──┐
//!                                      │                ▲    ▲           │  │  │        │
//!                                      │  LF            │    │ CR        │  │  │ SP/HT  │
//!                                      └────────────────┼────┼───────────┘  │  ▼        │
//!                                            HeaderValue ◀:─ HeaderName ◀───┘ ObsFold   │
//!                                                 (Rfc1945 mode only; strict: 400)      │
//!                                                                                       │
//!  HeaderStart ─CR─▶ HeadEnd ─LF─▶ Body ─(Content-Length bytes)─▶ Complete              │
//!  (LF after every *LineEnd goes back to HeaderStart) ──────────────────────────────────┘
//! ```
//!
//! Each call parses the whole buffer from its first byte (like httparse): the caller keeps the
//! unconsumed bytes and calls again when more arrive. The result is
//!
//! - `Ok(Status::Complete(request))`: the request, with `head_len + body.len()` bytes used;
//! - `Ok(Status::Partial)`: need more bytes — never an error for a prefix of a valid request;
//! - `Err(ParseError)`: the first violation, in byte order. A prefix of an input yields
//!   `Partial` or the same error (the fuzz target checks this).
//!
//! Limits are checked by position, so a limit violation is reported as soon as the byte past
//! the limit arrives, without waiting for a line end. Parsing allocates nothing; the
//! [`Trace`] observer sees every state transition (the default, [`NoTrace`], compiles away).

use crate::error::ParseError;
use crate::limits::{Limits, Mode};
use crate::method::{Method, Version};
use crate::request::Request;

/// The parser's states, named for what they await.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum State {
    /// Before the request line: skipping empty lines.
    Start,
    /// Reading the method token.
    Method,
    /// Reading the request-target.
    Target,
    /// Reading `HTTP/x.y`.
    Version,
    /// Awaiting the LF that ends the request line.
    RequestLineEnd,
    /// At the start of a line in the header section.
    HeaderStart,
    /// Reading a field name.
    HeaderName,
    /// Reading a field value (after the colon).
    HeaderValue,
    /// Reading a continuation line (obs-fold).
    ObsFold,
    /// Awaiting the LF that ends a header line.
    HeaderLineEnd,
    /// Awaiting the LF of the blank line that ends the head.
    HeadEnd,
    /// Reading Content-Length body bytes.
    Body,
    /// A whole request was parsed.
    Complete,
    /// The request was rejected.
    Failed,
}

impl State {
    /// Number of states.
    pub const COUNT: usize = 14;
    /// Every state, in declaration order.
    pub const ALL: [State; State::COUNT] = [
        State::Start,
        State::Method,
        State::Target,
        State::Version,
        State::RequestLineEnd,
        State::HeaderStart,
        State::HeaderName,
        State::HeaderValue,
        State::ObsFold,
        State::HeaderLineEnd,
        State::HeadEnd,
        State::Body,
        State::Complete,
        State::Failed,
    ];

    /// Position in [`State::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Start => "Start",
            State::Method => "Method",
            State::Target => "Target",
            State::Version => "Version",
            State::RequestLineEnd => "RequestLineEnd",
            State::HeaderStart => "HeaderStart",
            State::HeaderName => "HeaderName",
            State::HeaderValue => "HeaderValue",
            State::ObsFold => "ObsFold",
            State::HeaderLineEnd => "HeaderLineEnd",
            State::HeadEnd => "HeadEnd",
            State::Body => "Body",
            State::Complete => "Complete",
            State::Failed => "Failed",
        }
    }
}

/// Observes the parser. Every method has an empty default, so an observer implements only what
/// it needs and [`NoTrace`] costs nothing (the parser is generic over it).
pub trait Trace {
    /// The parser moved from `from` to `to` at byte `offset`.
    #[inline(always)]
    fn transition(&mut self, from: State, to: State, offset: usize) {
        let _ = (from, to, offset);
    }
}

/// The no-op observer of the fast path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Trace for NoTrace {}

/// Counts transitions: one counter per (from, to) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionCounts {
    counts: [[u64; State::COUNT]; State::COUNT],
}

impl Default for TransitionCounts {
    fn default() -> Self {
        TransitionCounts {
            counts: [[0; State::COUNT]; State::COUNT],
        }
    }
}

impl TransitionCounts {
    /// How many times `from → to` happened.
    pub fn get(&self, from: State, to: State) -> u64 {
        self.counts[from.index()][to.index()]
    }

    /// Every non-zero counter, `(from, to, count)`, in state order.
    pub fn nonzero(&self) -> Vec<(State, State, u64)> {
        let mut v = Vec::new();
        for from in State::ALL {
            for to in State::ALL {
                let n = self.get(from, to);
                if n > 0 {
                    v.push((from, to, n));
                }
            }
        }
        v
    }

    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }
}

impl Trace for TransitionCounts {
    #[inline]
    fn transition(&mut self, from: State, to: State, _offset: usize) {
        self.counts[from.index()][to.index()] += 1;
    }
}

/// Records every transition in order: the parser's state change log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionLog {
    /// `(from, to, offset)` in order.
    pub entries: Vec<(State, State, usize)>,
}

impl Trace for TransitionLog {
    fn transition(&mut self, from: State, to: State, offset: usize) {
        self.entries.push((from, to, offset));
    }
}

/// The outcome of a parse that did not fail.
#[derive(Debug, Clone)]
pub enum Status<'a> {
    /// A whole request; it used `request.len()` bytes.
    Complete(Request<'a>),
    /// Need more bytes.
    Partial,
}

impl<'a> Status<'a> {
    /// The request, if complete.
    pub fn complete(self) -> Option<Request<'a>> {
        match self {
            Status::Complete(r) => Some(r),
            Status::Partial => None,
        }
    }

    /// Whether more bytes are needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}

/// A configured parser: limits and mode. Cheap to copy; holds no buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parser {
    limits: Limits,
    mode: Mode,
    /// Milestone 8: stop after the head and let the caller frame the body
    /// ([`Parser::with_caller_framing`]).
    caller_framing: bool,
}

/// Parses `buf` with the default limits in strict mode.
pub fn parse(buf: &[u8]) -> Result<Status<'_>, ParseError> {
    Parser::default().parse(buf)
}

// Byte classes, one table per class (a lookup per byte, no branches on ranges).
macro_rules! class_table {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// RFC 3986 characters allowed in a request-target (pchar, "/", "?", and "%" checked later),
/// plus "[" "]" (IP literals in absolute and authority forms, checked later).
const fn is_target_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        | b':' | b'@' | b'/' | b'?' | b'%' | b'[' | b']')
}

/// field-vchar / SP / HTAB (RFC 7230 §3.2): VCHAR, obs-text; no CTL, no DEL.
const fn is_value_char(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

const fn is_version_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.')
}

static TCHAR: [bool; 256] = class_table!(is_tchar);

/// Whether `b` may appear in a token (RFC 9110 §5.6.2 `tchar`: header names, methods,
/// transfer codings, chunk-extension names): the one token table of the HTTP/1 crates.
#[inline]
pub fn is_token_byte(b: u8) -> bool {
    TCHAR[b as usize]
}
static TARGET: [bool; 256] = class_table!(is_target_char);
static VALUE: [bool; 256] = class_table!(is_value_char);
static VERSION: [bool; 256] = class_table!(is_version_char);

/// First index `>= pos` whose byte is not in `class` (or `buf.len()`).
#[inline(always)]
fn scan(buf: &[u8], mut pos: usize, class: &[bool; 256]) -> usize {
    // Unrolled by 4: the hot loop of every state.
    while pos + 4 <= buf.len() {
        if !class[buf[pos] as usize] {
            return pos;
        }
        if !class[buf[pos + 1] as usize] {
            return pos + 1;
        }
        if !class[buf[pos + 2] as usize] {
            return pos + 2;
        }
        if !class[buf[pos + 3] as usize] {
            return pos + 3;
        }
        pos += 4;
    }
    while pos < buf.len() && class[buf[pos] as usize] {
        pos += 1;
    }
    pos
}

/// [`scan`] specialised for field values: eight bytes at a time (SWAR) while none is a
/// control byte or DEL, then the table for the rest. Same result as `scan(buf, pos, &VALUE)`.
#[inline(always)]
fn scan_value(buf: &[u8], mut pos: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = buf.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte < 0x20 (only for bytes < 0x80: obs-text is allowed) ...
        let ctl = x.wrapping_sub(LO * 0x20) & !x & HI;
        // ... or equal to 0x7f.
        let y = x ^ (LO * 0x7f);
        let del = y.wrapping_sub(LO) & !y & HI;
        if ctl | del != 0 {
            break;
        }
        pos += 8;
    }
    scan(buf, pos, &VALUE)
}

/// A Content-Length value that may be a list (RFC 9110 §8.6: a recipient MAY accept
/// `5, 5` when every member is the same valid number); `None` if any member is invalid or
/// two members disagree.
fn parse_content_length_list(v: &[u8]) -> Option<u64> {
    let mut value = None;
    for member in v.split(|&b| b == b',') {
        let n = parse_content_length(trim_ows(member))?;
        if value.is_some_and(|old| old != n) {
            return None;
        }
        value = Some(n);
    }
    value
}

/// Parses `1*DIGIT` with overflow checks; `None` if empty, not digits, or too large.
fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// Checks `%XX` escapes and the target's form (RFC 7230 §5.3).
fn validate_target(method: Method, t: &[u8]) -> Result<(), ParseError> {
    // Percent-encoding: every '%' followed by two hex digits.
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'%', &t[i..]) {
        let p = i + off;
        match (t.get(p + 1), t.get(p + 2)) {
            (Some(&a), Some(&b)) if hex(a) && hex(b) => i = p + 3,
            _ => return Err(ParseError::InvalidTarget),
        }
    }
    let has_brackets = t.iter().any(|&b| b == b'[' || b == b']');
    if method == Method::Connect {
        // authority-form: host ":" port, no path, no query, no userinfo.
        if t.contains(&b'/') || t.contains(&b'?') || t.contains(&b'@') {
            return Err(ParseError::InvalidTarget);
        }
        return match t.iter().rposition(|&b| b == b':') {
            Some(c) if c > 0 && c + 1 < t.len() && t[c + 1..].iter().all(u8::is_ascii_digit) => {
                Ok(())
            }
            _ => Err(ParseError::InvalidTarget),
        };
    }
    match t.first() {
        // origin-form: absolute-path [ "?" query ]
        Some(b'/') if !has_brackets => Ok(()),
        Some(b'/') => Err(ParseError::InvalidTarget),
        // asterisk-form: only OPTIONS.
        Some(b'*') if t.len() == 1 && method == Method::Options => Ok(()),
        Some(b) if b.is_ascii_alphabetic() => {
            // absolute-form: scheme ":" hier-part
            let colon = t
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
                .ok_or(ParseError::InvalidTarget)?;
            if t[colon] != b':' || colon + 1 >= t.len() {
                return Err(ParseError::InvalidTarget);
            }
            Ok(())
        }
        _ => Err(ParseError::InvalidTarget),
    }
}

/// Strict mode's version check, byte by byte, so that a bad version is reported as soon as
/// its bytes arrive (a prefix gives `Ok(None)`): `HTTP/` DIGIT `.` DIGIT, exactly.
/// The version is decided after its eighth byte; any byte after it is a 400.
fn strict_version(v: &[u8]) -> Result<Option<Version>, ParseError> {
    const PATTERN: &[u8; 8] = b"HTTP/d.d";
    for (&b, &p) in v.iter().zip(PATTERN.iter()) {
        let ok = if p == b'd' {
            b.is_ascii_digit()
        } else {
            b == p
        };
        if !ok {
            return Err(ParseError::InvalidVersion);
        }
    }
    if v.len() < PATTERN.len() {
        return Ok(None);
    }
    let version = match (v[5], v[7]) {
        (b'1', b'0') => Version::Http10,
        (b'1', b'1') => Version::Http11,
        _ => return Err(ParseError::UnsupportedVersion),
    };
    if v.len() > PATTERN.len() {
        return Err(ParseError::InvalidVersion);
    }
    Ok(Some(version))
}

/// Parses a whole `HTTP/x.y` token (already restricted to version chars).
fn parse_version(v: &[u8], mode: Mode) -> Result<Version, ParseError> {
    if mode == Mode::Strict {
        return strict_version(v)?.ok_or(ParseError::InvalidVersion);
    }
    let (name, rest) = v.split_at(v.len().min(5));
    if !name.eq_ignore_ascii_case(b"HTTP/") {
        return Err(ParseError::InvalidVersion);
    }
    let dot = rest
        .iter()
        .position(|&b| b == b'.')
        .ok_or(ParseError::InvalidVersion)?;
    let (major, minor) = (&rest[..dot], &rest[dot + 1..]);
    // RFC 1945 §3.1: leading zeros are ignored; at most three digits each here.
    let number = |d: &[u8]| -> Result<u32, ParseError> {
        if d.is_empty() || d.len() > 3 || !d.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::InvalidVersion);
        }
        Ok(d.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
    };
    match (number(major)?, number(minor)?) {
        (1, 0) => Ok(Version::Http10),
        (1, 1) => Ok(Version::Http11),
        _ => Err(ParseError::UnsupportedVersion),
    }
}

/// What a line terminator at `pos` looks like.
enum LineEnd {
    /// CRLF or (lenient) LF; the next line starts at this index.
    Next(usize),
    /// The buffer ends inside the terminator.
    Partial,
}

impl Parser {
    /// A parser with these limits and mode.
    pub fn new(limits: Limits, mode: Mode) -> Parser {
        Parser {
            limits,
            mode,
            caller_framing: false,
        }
    }

    /// The same parser, handing body framing to the caller (milestone 8's HTTP/1.1 core).
    ///
    /// The parser then stops after the head: a complete request has an empty
    /// [`Request::body`], and [`Request::declared_length`] / [`Request::has_transfer_encoding`]
    /// say how the body is framed. `Transfer-Encoding` without `Content-Length` is no longer an
    /// error (the caller decodes chunked), `Content-Length` may be a list of identical values
    /// (`5, 5`, RFC 9110 §8.6), and `Content-Length` with `Transfer-Encoding` is still
    /// [`ParseError::ConflictingFraming`]. The other checks (413 on a too-large
    /// `Content-Length`, 411) are unchanged.
    pub fn with_caller_framing(mut self) -> Parser {
        self.caller_framing = true;
        self
    }

    /// Whether the caller frames the body ([`Parser::with_caller_framing`]).
    pub fn caller_framing(&self) -> bool {
        self.caller_framing
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Parses one request from the front of `buf`. See the [module docs](self).
    #[inline]
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Status<'a>, ParseError> {
        self.parse_traced(buf, &mut NoTrace)
    }

    /// [`Parser::parse`], reporting every state transition to `trace`.
    pub fn parse_traced<'a, T: Trace>(
        &self,
        buf: &'a [u8],
        trace: &mut T,
    ) -> Result<Status<'a>, ParseError> {
        let mut state = State::Start;
        let result = self.parse_inner(buf, trace, &mut state);
        if result.is_err() {
            trace.transition(state, State::Failed, 0);
        }
        result
    }

    #[inline(always)]
    fn line_end(&self, head: &[u8], pos: usize) -> Result<LineEnd, ParseError> {
        match head.get(pos) {
            Some(b'\r') => match head.get(pos + 1) {
                Some(b'\n') => Ok(LineEnd::Next(pos + 2)),
                Some(_) => Err(ParseError::BadLineEnding),
                None => Ok(LineEnd::Partial),
            },
            Some(b'\n') if self.mode == Mode::Rfc1945 => Ok(LineEnd::Next(pos + 1)),
            Some(_) => Err(ParseError::BadLineEnding),
            None => Ok(LineEnd::Partial),
        }
    }

    #[inline(always)]
    fn parse_inner<'a, T: Trace>(
        &self,
        buf: &'a [u8],
        trace: &mut T,
        state: &mut State,
    ) -> Result<Status<'a>, ParseError> {
        let lim = &self.limits;
        // The head is parsed in a view cut at max_head: running past it means 431, in byte order.
        let head = &buf[..buf.len().min(lim.max_head)];
        let head_partial = || {
            if buf.len() > lim.max_head {
                Err(ParseError::HeadTooLarge)
            } else {
                Ok(Status::Partial)
            }
        };
        macro_rules! goto {
            ($to:expr, $at:expr) => {{
                trace.transition(*state, $to, $at);
                *state = $to;
            }};
        }
        macro_rules! need_more {
            () => {
                return head_partial()
            };
        }

        // Start: skip empty lines (RFC 7230 §3.5), counted against the request-line limit.
        let mut pos = 0;
        loop {
            match head.get(pos) {
                None => need_more!(),
                Some(b'\r' | b'\n') => match self.line_end(head, pos)? {
                    LineEnd::Next(n) => pos = n,
                    LineEnd::Partial => need_more!(),
                },
                Some(_) => break,
            }
            if pos > lim.max_request_line {
                return Err(ParseError::RequestLineTooLong);
            }
        }
        let line_start = pos;
        let line_max = line_start.saturating_add(lim.max_request_line);
        // Checks the request line's length at `end`, then whether the buffer ran out there.
        macro_rules! line_check {
            ($end:expr) => {
                if $end > line_max {
                    return Err(ParseError::RequestLineTooLong);
                }
                if $end >= head.len() {
                    need_more!();
                }
            };
        }

        // Method
        goto!(State::Method, pos);
        let end = scan(head, pos, &TCHAR);
        line_check!(end);
        if end == pos {
            return Err(ParseError::InvalidMethod);
        }
        match head[end] {
            b' ' => {}
            b'\t' => return Err(ParseError::InvalidRequestLine),
            _ => return Err(ParseError::InvalidMethod),
        }
        let method = Method::from_bytes(&head[pos..end]).ok_or(ParseError::UnknownMethod)?;
        pos = end + 1;

        // Target
        goto!(State::Target, pos);
        let end = scan(head, pos, &TARGET);
        line_check!(end);
        let target = &head[pos..end];
        match head[end] {
            b' ' if !target.is_empty() => {}
            b' ' | b'\t' => return Err(ParseError::InvalidRequestLine),
            b'\r' | b'\n' if method == Method::Get && !target.is_empty() => {
                return Err(ParseError::Http09);
            }
            b'\r' | b'\n' => return Err(ParseError::InvalidRequestLine),
            _ => return Err(ParseError::InvalidTarget),
        }
        validate_target(method, target)?;
        pos = end + 1;

        // Version
        goto!(State::Version, pos);
        let end = scan(head, pos, &VERSION);
        if self.mode == Mode::Strict {
            // Reject a bad version as soon as its bytes are here, in byte order.
            // Only bytes within the line limit: beyond it, 414 comes first.
            let upto = end.min(pos + 9).min(line_max.max(pos));
            strict_version(&head[pos..upto])?;
        }
        line_check!(end);
        let version = match head[end] {
            b'\r' | b'\n' => parse_version(&head[pos..end], self.mode)?,
            b' ' | b'\t' => return Err(ParseError::InvalidRequestLine),
            _ => return Err(ParseError::InvalidVersion),
        };
        goto!(State::RequestLineEnd, end);
        pos = match self.line_end(head, end)? {
            LineEnd::Next(n) => n,
            LineEnd::Partial => need_more!(),
        };
        goto!(State::HeaderStart, pos);

        // Header section.
        let headers_start = pos;
        let mut count = 0usize;
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding = false;
        let mut obs_fold = false;
        // Kind of the last header, for continuation lines: 0 none, 1 ordinary, 2 framing.
        let mut last_kind = 0u8;
        let headers_end;
        loop {
            let line = pos;
            let line_max = line.saturating_add(lim.max_header_line);
            match head.get(pos) {
                None => need_more!(),
                Some(b'\r' | b'\n') => {
                    headers_end = pos;
                    goto!(State::HeadEnd, pos);
                    pos = match self.line_end(head, pos)? {
                        LineEnd::Next(n) => n,
                        LineEnd::Partial => need_more!(),
                    };
                    break;
                }
                Some(b' ' | b'\t') => {
                    // obs-fold: a continuation of the previous field value.
                    goto!(State::ObsFold, pos);
                    match (self.mode, last_kind) {
                        (Mode::Strict, _) | (_, 0) | (_, 2) => return Err(ParseError::ObsFold),
                        _ => {}
                    }
                    obs_fold = true;
                    let end = scan_value(head, pos);
                    if end > line_max {
                        return Err(ParseError::HeaderLineTooLong);
                    }
                    if end >= head.len() {
                        need_more!();
                    }
                    if !matches!(head[end], b'\r' | b'\n') {
                        return Err(ParseError::InvalidHeaderValue);
                    }
                    pos = end;
                }
                Some(_) => {
                    count += 1;
                    if count > lim.max_headers {
                        return Err(ParseError::TooManyHeaders);
                    }
                    goto!(State::HeaderName, pos);
                    let end = scan(head, pos, &TCHAR);
                    if end > line_max {
                        return Err(ParseError::HeaderLineTooLong);
                    }
                    if end >= head.len() {
                        need_more!();
                    }
                    if end == pos || head[end] != b':' {
                        return Err(ParseError::InvalidHeaderName);
                    }
                    let name = &head[pos..end];
                    goto!(State::HeaderValue, end + 1);
                    let vstart = end + 1;
                    let vend = scan_value(head, vstart);
                    if vend > line_max {
                        return Err(ParseError::HeaderLineTooLong);
                    }
                    if vend >= head.len() {
                        need_more!();
                    }
                    if !matches!(head[vend], b'\r' | b'\n') {
                        return Err(ParseError::InvalidHeaderValue);
                    }
                    last_kind = 1;
                    if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") {
                        last_kind = 2;
                        let v = trim_ows(&head[vstart..vend]);
                        let n = if self.caller_framing {
                            parse_content_length_list(v)
                        } else {
                            parse_content_length(v)
                        }
                        .ok_or(ParseError::InvalidContentLength)?;
                        if content_length.is_some_and(|old| old != n) {
                            return Err(ParseError::InvalidContentLength);
                        }
                        content_length = Some(n);
                    } else if name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding") {
                        last_kind = 2;
                        transfer_encoding = true;
                    }
                    pos = vend;
                }
            }
            goto!(State::HeaderLineEnd, pos);
            pos = match self.line_end(head, pos)? {
                LineEnd::Next(n) => n,
                LineEnd::Partial => need_more!(),
            };
            goto!(State::HeaderStart, pos);
        }
        let head_len = pos;

        // Framing (RFC 1945 §7.2.2, RFC 7230 §3.3.3).
        if transfer_encoding && (content_length.is_some() || !self.caller_framing) {
            return Err(if content_length.is_some() {
                ParseError::ConflictingFraming
            } else {
                ParseError::TransferEncodingNotImplemented
            });
        }
        if content_length.is_none()
            && !transfer_encoding
            && method.requires_length()
            && version == Version::Http10
        {
            return Err(ParseError::LengthRequired);
        }
        let body_len = content_length.unwrap_or(0);
        if body_len > lim.max_body as u64 {
            return Err(ParseError::BodyTooLarge);
        }
        let text = |b: &'a [u8]| std::str::from_utf8(b).unwrap_or_default();
        if self.caller_framing {
            // The head is complete: the caller frames the body.
            goto!(State::Complete, head_len);
            let mut request = Request::new(
                method,
                text(target),
                version,
                &buf[headers_start..headers_end],
                count,
                obs_fold,
                &buf[head_len..head_len],
                head_len,
            );
            request.set_framing(content_length, transfer_encoding);
            return Ok(Status::Complete(request));
        }
        // Bounded by max_body (a usize) just above.
        let body_len = body_len as usize;
        goto!(State::Body, head_len);
        let total = head_len + body_len;
        if buf.len() < total {
            return Ok(Status::Partial);
        }
        goto!(State::Complete, total);
        let mut request = Request::new(
            method,
            text(target),
            version,
            &buf[headers_start..headers_end],
            count,
            obs_fold,
            &buf[head_len..total],
            head_len,
        );
        request.set_framing(content_length, false);
        Ok(Status::Complete(request))
    }
}

/// `value` without leading and trailing SP/HTAB.
#[inline]
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Replaces every obs-fold (CRLF or LF followed by SP/HTAB) in a header block with spaces, in
/// place (RFC 7230 §3.2.4: "replace each received obs-fold with one or more SP octets").
/// Returns how many folds were replaced. Lengths do not change, so a reparse of the unfolded
/// bytes gives the same `head_len`.
pub fn unfold_in_place(head: &mut [u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + 1 < head.len() {
        if head[i] == b'\n' && matches!(head[i + 1], b' ' | b'\t') && i > 0 {
            // Not the LF ending the request line: the preceding line must be a header line,
            // which the parser has verified (it rejects a fold before the first header).
            head[i] = b' ';
            if head[i - 1] == b'\r' {
                head[i - 1] = b' ';
            }
            n += 1;
        }
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_scan_value_swar_matches_table_for_every_byte() {
        // Every byte value at every position of a 24-byte window.
        for b in 0..=255u8 {
            for at in 0..24 {
                let mut buf = [b'a'; 24];
                buf[at] = b;
                assert_eq!(
                    scan_value(&buf, 0),
                    scan(&buf, 0, &VALUE),
                    "byte {b:#x} at {at}"
                );
                assert_eq!(
                    scan_value(&buf, 3),
                    scan(&buf, 3, &VALUE),
                    "byte {b:#x} at {at}"
                );
            }
        }
    }
}
