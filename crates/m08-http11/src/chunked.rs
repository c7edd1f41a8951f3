//! The chunked transfer coding (RFC 9112 §7.1): a resumable, bounded decoder and the encoder.
//!
//! ```text
//!            ┌────────── size > 0 ──────────┐
//!            ▼                              │
//!  ──▶ SizeLine ─ HEX [;ext…] CRLF ─▶ Data(n) ─ n bytes ─▶ DataEnd ─ CRLF ─┘
//!            │ size = 0
//!            ▼
//!         Trailer ─ field CRLF ─▶ Trailer … ─ CRLF ─▶ Done
//! ```
//!
//! [`ChunkedDecoder::feed`] consumes only what it could decide: a size line or trailer line is
//! consumed whole, so a caller keeps the unconsumed tail and feeds it again with more bytes
//! (m03's rule 1). Every quantity is bounded by a named [`ChunkLimits`] field; the strict
//! rules (CRLF only, no whitespace after the size unless an extension follows, quoted
//! extension values checked) are the ones the smuggling corpus asks for.

use m04_http10::is_token_byte;

/// Bounds on a chunked body. Exceeding one is an error with a status ([`ChunkError::status`]).
///
/// | limit | default | status |
/// |---|---|---|
/// | `max_chunk_size` | 1 MiB | 413 |
/// | `max_chunks` | 4096 | 413 |
/// | `max_line` (size line with extensions) | 256 B | 400 |
/// | `max_trailer_bytes` | 8 KiB | 431 |
/// | `max_trailers` | 32 | 431 |
/// | `max_body` (decoded total) | 1 MiB | 413 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest single chunk.
    pub max_chunk_size: u64,
    /// Most chunks, the last chunk included.
    pub max_chunks: usize,
    /// Longest size line (size + extensions), without CRLF.
    pub max_line: usize,
    /// Total bytes of the trailer section.
    pub max_trailer_bytes: usize,
    /// Most trailer fields.
    pub max_trailers: usize,
    /// Most decoded body bytes.
    pub max_body: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: 1024 * 1024,
            max_chunks: 4096,
            max_line: 256,
            max_trailer_bytes: 8 * 1024,
            max_trailers: 32,
            max_body: 1024 * 1024,
        }
    }
}

impl ChunkLimits {
    /// The most wire bytes a body within these limits can take (for input buffers).
    pub fn max_wire(&self) -> usize {
        self.max_body
            .saturating_add(self.max_chunks.saturating_mul(self.max_line + 4))
            .saturating_add(self.max_trailer_bytes + 2)
    }
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChunkError {
    /// The size is not 1*HEXDIG, or is followed by something other than an extension.
    InvalidSize,
    /// The size does not fit in 64 bits.
    SizeOverflow,
    /// A chunk larger than `max_chunk_size`.
    ChunkTooLarge,
    /// More than `max_chunks` chunks.
    TooManyChunks,
    /// A size line longer than `max_line` (long extensions).
    LineTooLong,
    /// An extension that is not `;name[=token|quoted-string]`.
    InvalidExtension,
    /// A line ended by LF alone or a CR not followed by LF.
    BadLineEnding,
    /// The bytes after a chunk's data are not CRLF (the size lied).
    MissingDataCrlf,
    /// A trailer line that is not a header field.
    InvalidTrailer,
    /// Trailer section over `max_trailer_bytes` or `max_trailers`.
    TrailersTooLarge,
    /// Decoded body over `max_body`.
    BodyTooLarge,
}

impl ChunkError {
    /// The status a server answers with.
    pub fn status(self) -> u16 {
        match self {
            ChunkError::ChunkTooLarge | ChunkError::TooManyChunks | ChunkError::BodyTooLarge => 413,
            ChunkError::TrailersTooLarge => 431,
            _ => 400,
        }
    }

    /// A short snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ChunkError::InvalidSize => "chunk_invalid_size",
            ChunkError::SizeOverflow => "chunk_size_overflow",
            ChunkError::ChunkTooLarge => "chunk_too_large",
            ChunkError::TooManyChunks => "too_many_chunks",
            ChunkError::LineTooLong => "chunk_line_too_long",
            ChunkError::InvalidExtension => "chunk_invalid_extension",
            ChunkError::BadLineEnding => "chunk_bad_line_ending",
            ChunkError::MissingDataCrlf => "chunk_missing_crlf",
            ChunkError::InvalidTrailer => "chunk_invalid_trailer",
            ChunkError::TrailersTooLarge => "trailers_too_large",
            ChunkError::BodyTooLarge => "chunked_body_too_large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    SizeLine,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// What one [`ChunkedDecoder::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes consumed from the front of the input.
    pub consumed: usize,
    /// The last chunk and the trailer section were read: the body is complete.
    pub done: bool,
}

/// A resumable chunked decoder. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    limits: ChunkLimits,
    state: DState,
    chunks: usize,
    extensions: usize,
    trailers: usize,
    trailer_bytes: usize,
    decoded: usize,
    wire: usize,
}

/// Checks `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`; returns the
/// number of extensions.
fn check_extensions(mut s: &[u8]) -> Result<usize, ChunkError> {
    let ws = |s: &mut &[u8]| {
        while let [b' ' | b'\t', rest @ ..] = *s {
            *s = rest;
        }
    };
    let token = |s: &mut &[u8]| -> bool {
        let n = s.iter().take_while(|&&b| is_token_byte(b)).count();
        *s = &s[n..];
        n > 0
    };
    let mut n = 0;
    loop {
        if s.is_empty() {
            return Ok(n);
        }
        ws(&mut s);
        // BWS is only allowed before ';' (so "5 " alone is an invalid size line).
        match s {
            [b';', rest @ ..] => s = rest,
            _ => {
                return Err(if n == 0 {
                    ChunkError::InvalidSize
                } else {
                    ChunkError::InvalidExtension
                });
            }
        }
        ws(&mut s);
        if !token(&mut s) {
            return Err(ChunkError::InvalidExtension);
        }
        n += 1;
        let save = s;
        ws(&mut s);
        if let [b'=', rest @ ..] = s {
            s = rest;
            ws(&mut s);
            if let [b'"', rest @ ..] = s {
                // quoted-string: qdtext / quoted-pair, up to the closing quote.
                let mut i = 0;
                loop {
                    match rest.get(i) {
                        None => return Err(ChunkError::InvalidExtension),
                        Some(b'"') => break,
                        Some(b'\\') => match rest.get(i + 1) {
                            Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => i += 2,
                            _ => return Err(ChunkError::InvalidExtension),
                        },
                        Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => i += 1,
                        Some(_) => return Err(ChunkError::InvalidExtension),
                    }
                }
                s = &rest[i + 1..];
            } else if !token(&mut s) {
                return Err(ChunkError::InvalidExtension);
            }
        } else {
            s = save;
        }
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: DState::SizeLine,
            chunks: 0,
            extensions: 0,
            trailers: 0,
            trailer_bytes: 0,
            decoded: 0,
            wire: 0,
        }
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        self.state == DState::Done
    }

    /// Chunks read so far (the last chunk included).
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Chunk extensions seen (parsed, checked, discarded).
    pub fn extensions(&self) -> usize {
        self.extensions
    }

    /// Trailer fields seen (checked and discarded, RFC 9110 §6.5.1 lets a recipient drop them).
    pub fn trailers(&self) -> usize {
        self.trailers
    }

    /// Wire bytes consumed so far.
    pub fn wire_len(&self) -> usize {
        self.wire
    }

    /// Decoded bytes so far.
    pub fn decoded_len(&self) -> usize {
        self.decoded
    }

    /// Finds a CRLF-terminated line at the front of `input`, at most `max` bytes before CRLF.
    /// `Ok(None)`: need more.
    fn line(
        input: &[u8],
        max: usize,
        too_long: ChunkError,
    ) -> Result<Option<(&[u8], usize)>, ChunkError> {
        let window = &input[..input.len().min(max + 2)];
        match memchr::memchr2(b'\r', b'\n', window) {
            Some(i) if i > max => Err(too_long),
            Some(i) if window[i] == b'\n' => Err(ChunkError::BadLineEnding),
            Some(i) => match input.get(i + 1) {
                Some(b'\n') => Ok(Some((&input[..i], i + 2))),
                Some(_) => Err(ChunkError::BadLineEnding),
                None => Ok(None),
            },
            None if input.len() > max => Err(too_long),
            None => Ok(None),
        }
    }

    /// Decodes from the front of `input`, appending data to `out`. See the [module docs](self).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Progress, ChunkError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                DState::Done => break,
                DState::SizeLine => {
                    let Some((line, used)) =
                        Self::line(rest, self.limits.max_line, ChunkError::LineTooLong)?
                    else {
                        break;
                    };
                    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                    if digits == 0 {
                        return Err(ChunkError::InvalidSize);
                    }
                    let mut size: u64 = 0;
                    for &d in &line[..digits] {
                        let v = (d as char).to_digit(16).unwrap_or(0);
                        size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(v)))
                            .ok_or(ChunkError::SizeOverflow)?;
                    }
                    self.extensions += check_extensions(&line[digits..])?;
                    self.chunks += 1;
                    if self.chunks > self.limits.max_chunks {
                        return Err(ChunkError::TooManyChunks);
                    }
                    if size > self.limits.max_chunk_size {
                        return Err(ChunkError::ChunkTooLarge);
                    }
                    if self.decoded as u64 + size > self.limits.max_body as u64 {
                        return Err(ChunkError::BodyTooLarge);
                    }
                    pos += used;
                    self.state = if size == 0 {
                        DState::Trailer
                    } else {
                        DState::Data(size)
                    };
                }
                DState::Data(left) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..take]);
                    self.decoded += take;
                    pos += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        DState::DataEnd
                    } else {
                        DState::Data(left)
                    };
                }
                DState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = DState::SizeLine;
                    }
                    [] | [b'\r'] => break,
                    _ => return Err(ChunkError::MissingDataCrlf),
                },
                DState::Trailer => {
                    let room = self
                        .limits
                        .max_trailer_bytes
                        .saturating_sub(self.trailer_bytes);
                    let Some((line, used)) = Self::line(rest, room, ChunkError::TrailersTooLarge)?
                    else {
                        break;
                    };
                    pos += used;
                    self.trailer_bytes += used;
                    if line.is_empty() {
                        self.state = DState::Done;
                        break;
                    }
                    self.trailers += 1;
                    if self.trailers > self.limits.max_trailers {
                        return Err(ChunkError::TrailersTooLarge);
                    }
                    let colon = line.iter().position(|&b| b == b':');
                    let ok = colon.is_some_and(|c| {
                        crate::headers::is_token(&line[..c])
                            && line[c + 1..]
                                .iter()
                                .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
                    });
                    if !ok {
                        return Err(ChunkError::InvalidTrailer);
                    }
                }
            }
        }
        self.wire += pos;
        Ok(Progress {
            consumed: pos,
            done: self.state == DState::Done,
        })
    }
}

/// Appends one chunk (`size CRLF data CRLF`); an empty `data` writes nothing (the last chunk
/// is [`write_last_chunk`]).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Encodes `body` as chunks of at most `chunk` bytes, last chunk included.
pub fn encode(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    for part in body.chunks(chunk.max(1)) {
        write_chunk(&mut out, part);
    }
    write_last_chunk(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::new(ChunkLimits::default());
        let mut out = Vec::new();
        let p = d.feed(input, &mut out)?;
        Ok((out, p.consumed, p.done))
    }

    #[test]
    fn test_size_line_extensions_and_trailers_decoded() {
        let input =
            b"5;foo=bar;baz\r\nhello\r\n6 ; q=\"a;b\\\"\"\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (out, used, done) = decode_all(input).expect("valid");
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(&input[used..], b"NEXT");
    }

    #[test]
    fn test_any_split_gives_same_result() {
        let input = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        for split in 0..input.len() {
            let mut d = ChunkedDecoder::new(ChunkLimits::default());
            let mut out = Vec::new();
            let mut buf = input[..split].to_vec();
            let p = d.feed(&buf, &mut out).expect("prefix is fine");
            buf.drain(..p.consumed);
            buf.extend_from_slice(&input[split..]);
            let p = d.feed(&buf, &mut out).expect("rest is fine");
            assert!(p.done, "split {split}");
            assert_eq!(p.consumed, buf.len());
            assert_eq!(out, b"abc0123456789abcdef");
        }
    }

    #[test]
    fn test_incomplete_chunk_is_partial_not_done() {
        let (out, _, done) = decode_all(b"5\r\nhel").expect("partial");
        assert_eq!(out, b"hel");
        assert!(!done);
        let (_, _, done) = decode_all(b"5\r\nhello\r\n0\r\n").expect("partial");
        assert!(!done, "the trailer section's CRLF is missing");
    }

    #[test]
    fn test_malformed_sizes_rejected() {
        for bad in [
            &b"0x5\r\n"[..],
            b"-0\r\n",
            b"  5\r\n",
            b"5 \r\n",
            b"\r\n",
            b"5x\r\n",
            b"z\r\n",
            b"5;a\rb\r\n",
            b"5\nhello",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            decode_all(b"100000000000000005\r\n").unwrap_err(),
            ChunkError::SizeOverflow
        );
        assert_eq!(
            decode_all(b"5\r\nhelloXX").unwrap_err(),
            ChunkError::MissingDataCrlf
        );
        assert_eq!(
            decode_all(b"0\r\nX: y\n\r\n").unwrap_err(),
            ChunkError::BadLineEnding
        );
    }

    #[test]
    fn test_limits_enforced() {
        let limits = ChunkLimits {
            max_chunk_size: 4,
            max_chunks: 3,
            max_line: 8,
            max_trailer_bytes: 16,
            max_trailers: 1,
            max_body: 6,
        };
        let run = |input: &[u8]| {
            let mut d = ChunkedDecoder::new(limits);
            d.feed(input, &mut Vec::new())
        };
        assert_eq!(run(b"5\r\n").unwrap_err(), ChunkError::ChunkTooLarge);
        assert_eq!(
            run(b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n").unwrap_err(),
            ChunkError::TooManyChunks
        );
        assert_eq!(
            run(b"4\r\nabcd\r\n4\r\n").unwrap_err(),
            ChunkError::BodyTooLarge
        );
        assert_eq!(run(b"1;aaaaaaaaaaaa").unwrap_err(), ChunkError::LineTooLong);
        assert_eq!(
            run(b"0\r\nA: b\r\nC: d\r\n\r\n").unwrap_err(),
            ChunkError::TrailersTooLarge
        );
        assert_eq!(
            run(b"0\r\nA: bbbbbbbbbbbbbbbbbbbb").unwrap_err(),
            ChunkError::TrailersTooLarge
        );
    }

    #[test]
    fn test_encode_roundtrip() {
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for chunk in [1, 7, 64, 4096] {
            let wire = encode(&body, chunk);
            let (out, used, done) = decode_all(&wire).expect("own encoding decodes");
            assert!(done);
            assert_eq!(used, wire.len());
            assert_eq!(out, body);
        }
    }
}
