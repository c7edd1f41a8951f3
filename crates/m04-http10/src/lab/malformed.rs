//! The malformed-request suite of exit check `malformed_misrejections`: the roadmap's failure
//! list, the corpora's reject cases, and targeted grammar mutations of valid requests, each with
//! the status it must get.

use crate::lab::generate::{self, Rng};
use crate::{Limits, Parser, Status};

/// One malformed input and the status it must be answered with (`None`: any 4xx/5xx).
#[derive(Debug, Clone)]
pub struct Case {
    /// Where it comes from.
    pub source: &'static str,
    /// A short name.
    pub name: String,
    /// The bytes (a complete input: the peer sent all of it and closed).
    pub input: Vec<u8>,
    /// The required status.
    pub status: Option<u16>,
}

fn case(source: &'static str, name: &str, input: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        source,
        name: name.into(),
        input: input.into(),
        status: Some(status),
    }
}

/// Limits the suite runs under (small, so the limit cases stay small).
pub fn limits() -> Limits {
    Limits {
        max_request_line: 1024,
        max_headers: 32,
        max_header_line: 1024,
        max_head: 8192,
        max_body: 4096,
        ..Limits::default()
    }
}

/// The roadmap's failure list, each scenario as concrete inputs.
pub fn roadmap() -> Vec<Case> {
    let r = "roadmap";
    let mut v = vec![
        // Reject oversized request lines.
        case(
            r,
            "request line 2 KiB",
            format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(2048)),
            414,
        ),
        case(
            r,
            "request line never ends",
            format!("GET /{}", "a".repeat(2000)),
            414,
        ),
        // Missing or malformed CRLFs.
        case(r, "bare LF", &b"GET / HTTP/1.0\nHost: a\n\n"[..], 400),
        case(
            r,
            "bare CR in request line",
            &b"GET / HTTP/1.0\rHost: a\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "bare CR in header",
            &b"GET / HTTP/1.0\r\nHost: a\rX: b\r\n\r\n"[..],
            400,
        ),
        case(r, "CR CR LF", &b"GET / HTTP/1.0\r\r\n\r\n"[..], 400),
        case(r, "LF CR", &b"GET / HTTP/1.0\n\r\n\r"[..], 400),
        // Invalid headers.
        case(
            r,
            "space before colon",
            &b"GET / HTTP/1.0\r\nHost : a\r\n\r\n"[..],
            400,
        ),
        case(r, "no colon", &b"GET / HTTP/1.0\r\nHost a\r\n\r\n"[..], 400),
        case(r, "empty name", &b"GET / HTTP/1.0\r\n: a\r\n\r\n"[..], 400),
        case(
            r,
            "NUL in value",
            &b"GET / HTTP/1.0\r\nX: a\0b\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "DEL in value",
            &b"GET / HTTP/1.0\r\nX: a\x7fb\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "non-token name",
            &b"GET / HTTP/1.0\r\nX{}: a\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "obs-fold (strict)",
            &b"GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "fold before first header",
            &b"GET / HTTP/1.0\r\n X: a\r\n\r\n"[..],
            400,
        ),
        // Invalid Content-Length.
        case(
            r,
            "CL negative",
            &b"POST / HTTP/1.0\r\nContent-Length: -1\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "CL plus sign",
            &b"POST / HTTP/1.0\r\nContent-Length: +5\r\n\r\nhello"[..],
            400,
        ),
        case(
            r,
            "CL hex",
            &b"POST / HTTP/1.0\r\nContent-Length: 0x5\r\n\r\nhello"[..],
            400,
        ),
        case(
            r,
            "CL empty",
            &b"POST / HTTP/1.0\r\nContent-Length: \r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "CL list",
            &b"POST / HTTP/1.0\r\nContent-Length: 5, 5\r\n\r\nhello"[..],
            400,
        ),
        case(
            r,
            "CL overflow u64",
            &b"POST / HTTP/1.0\r\nContent-Length: 18446744073709551616\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "CL duplicates disagree",
            &b"POST / HTTP/1.0\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
            400,
        ),
        case(
            r,
            "CL with TE",
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                [..],
            400,
        ),
        case(
            r,
            "CL too large",
            &b"POST / HTTP/1.0\r\nContent-Length: 4097\r\n\r\n"[..],
            413,
        ),
        case(r, "POST without CL", &b"POST / HTTP/1.0\r\n\r\n"[..], 411),
        // Header bombs.
        case(
            r,
            "too many headers",
            format!("GET / HTTP/1.0\r\n{}\r\n", "X: y\r\n".repeat(33)),
            431,
        ),
        case(
            r,
            "head too large",
            format!(
                "GET / HTTP/1.0\r\n{}\r\n",
                format!("X: {}\r\n", "v".repeat(1000)).repeat(9)
            ),
            431,
        ),
        // Oversized header values.
        case(
            r,
            "header value 2 KiB",
            format!("GET / HTTP/1.0\r\nX: {}\r\n\r\n", "v".repeat(2048)),
            431,
        ),
        case(
            r,
            "header name 2 KiB",
            format!("GET / HTTP/1.0\r\n{}: v\r\n\r\n", "N".repeat(2048)),
            431,
        ),
        // Incomplete requests (the peer closes).
        case(r, "EOF in request line", &b"GET / HT"[..], 400),
        case(r, "EOF in headers", &b"GET / HTTP/1.0\r\nHost: a"[..], 400),
        case(
            r,
            "EOF before blank line",
            &b"GET / HTTP/1.0\r\nHost: a\r\n"[..],
            400,
        ),
        case(
            r,
            "EOF in body",
            &b"POST / HTTP/1.0\r\nContent-Length: 10\r\n\r\nabc"[..],
            400,
        ),
        // Appropriate error responses.
        case(r, "unknown method", &b"BREW /pot HTTP/1.0\r\n\r\n"[..], 501),
        case(r, "HTTP/2.0", &b"GET / HTTP/2.0\r\n\r\n"[..], 505),
        case(r, "HTTP/0.9 simple request", &b"GET /\r\n"[..], 505),
        case(r, "garbage version", &b"GET / HTTX/1.0\r\n\r\n"[..], 400),
        case(
            r,
            "transfer-encoding",
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            501,
        ),
        case(r, "invalid target", &b"GET /a\"b HTTP/1.0\r\n\r\n"[..], 400),
        case(
            r,
            "fragment in target",
            &b"GET /a#b HTTP/1.0\r\n\r\n"[..],
            400,
        ),
        case(
            r,
            "bad percent escape",
            &b"GET /%G0 HTTP/1.0\r\n\r\n"[..],
            400,
        ),
        case(r, "two spaces", &b"GET  / HTTP/1.0\r\n\r\n"[..], 400),
        case(r, "empty input line only", &b"\r\n"[..], 400),
    ];
    v.push(case(
        r,
        "binary garbage",
        (0..64u8).map(|i| i.wrapping_mul(37)).collect::<Vec<u8>>(),
        400,
    ));
    v
}

/// Targeted mutations of generated valid requests: each breaks one grammar rule whose status
/// is known.
pub fn mutations(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    let m = "mutation";
    while out.len() < count {
        let headers = 1 + rng.below(10);
        let req = generate::request(&mut rng, headers, 0);
        let text = req.clone();
        let head_end = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(text.len());
        let first_sp = text.iter().position(|&b| b == b' ').unwrap_or(0);
        let line_end = text.iter().position(|&b| b == b'\r').unwrap_or(0);
        // A position inside some header value (after a ':' in the header section).
        let colon = text[line_end..head_end]
            .iter()
            .position(|&b| b == b':')
            .map(|p| p + line_end + 1);
        let kind = rng.below(9);
        let (name, bytes, status) = match kind {
            0 => {
                let mut b = text.clone();
                let bad = *rng.pick(&[0u8, 1, 0x7f, b'\r', b'\n', 0x1b]);
                let Some(c) = colon else { continue };
                b.insert(c + 1, bad);
                ("control byte in a header value", b, 400)
            }
            1 => {
                let mut b = text.clone();
                let bad = *rng.pick(&[
                    b'"', b'<', b'>', b'\\', b'^', b'`', b'{', b'|', b'}', b'#', 0x80, 0xff,
                ]);
                b.insert(first_sp + 2, bad);
                ("non-RFC 3986 byte in the target", b, 400)
            }
            2 => {
                let mut b = text.clone();
                b.insert(first_sp, b' ');
                ("double space in the request line", b, 400)
            }
            3 => {
                let v = *rng.pick(&["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"]);
                let mut b = text[..line_end - 8].to_vec();
                b.extend_from_slice(v.as_bytes());
                b.extend_from_slice(&text[line_end..]);
                ("unsupported version", b, 505)
            }
            4 => {
                let v = *rng.pick(&["HTTP/1.x", "HTTX/1.0", "http/1.0", "HTTP/10", "HTTP/1.0.0"]);
                let mut b = text[..line_end - 8].to_vec();
                b.extend_from_slice(v.as_bytes());
                b.extend_from_slice(&text[line_end..]);
                ("malformed version", b, 400)
            }
            5 => {
                let mut b = text.clone();
                b.insert(line_end + 2, b' ');
                (
                    "obs-fold / leading whitespace in the header section",
                    b,
                    400,
                )
            }
            6 => {
                let mut b = text.clone();
                let Some(c) = colon else { continue };
                b.insert(c - 1, *rng.pick(b" \t(@\""));
                ("bad byte before the colon", b, 400)
            }
            7 => {
                let v = *rng.pick(&[
                    "-1",
                    "+3",
                    "1e3",
                    "0x10",
                    "3 3",
                    "99999999999999999999",
                    "3,4",
                    "",
                ]);
                let mut b = text[..head_end + 2].to_vec();
                b.extend_from_slice(format!("Content-Length: {v}\r\n\r\n").as_bytes());
                ("invalid Content-Length", b, 400)
            }
            _ => {
                let mut b = text.clone();
                let Some(lf) = b[line_end + 2..].iter().position(|&c| c == b'\r') else {
                    continue;
                };
                b.remove(line_end + 2 + lf);
                ("missing CR", b, 400)
            }
        };
        out.push(Case {
            source: m,
            name: name.into(),
            input: bytes,
            status: Some(status),
        });
    }
    out
}

/// What the server answers to `input` when the peer sends it and closes: the status, or
/// `None` if it would be accepted (a misrejection for this suite).
pub fn answer(parser: &Parser, input: &[u8]) -> Option<u16> {
    match parser.parse(input) {
        Ok(Status::Complete(_)) => None,
        Ok(Status::Partial) => Some(crate::ParseError::Truncated.status()),
        Err(e) => Some(e.status()),
    }
}
