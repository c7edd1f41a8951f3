//! Differential test against `httparse` on seeded, generated requests (valid ones, truncations,
//! and one-byte grammar mutations). The two parsers must agree on complete / partial / error
//! and on the fields; every disagreement must fall in a documented, deliberate category.

use m04_http10::lab::generate::{Rng, mutate, request};
use m04_http10::{ParseError, Status, Version, parse};

#[derive(Debug, PartialEq)]
enum Outcome {
    Complete(usize),
    Partial,
    Error,
}

struct Theirs {
    outcome: Outcome,
    method: Option<String>,
    path: Option<String>,
    version: Option<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

fn httparse_parse(buf: &[u8]) -> Theirs {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let outcome = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Outcome::Complete(n),
        Ok(httparse::Status::Partial) => Outcome::Partial,
        Err(_) => Outcome::Error,
    };
    Theirs {
        method: req.method.map(str::to_owned),
        path: req.path.map(str::to_owned),
        version: req.version,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        outcome,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

/// The request line of `buf` (up to the first LF), for the explanations below.
fn request_line(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(0);
    let rest = &buf[start..];
    &rest[..memchr_lf(rest)]
}

fn memchr_lf(b: &[u8]) -> usize {
    b.iter().position(|&c| c == b'\n').unwrap_or(b.len())
}

fn is_rfc3986_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

/// Why we may reject what httparse accepts: each rule names a deliberate policy.
fn explain_our_rejection(e: ParseError, buf: &[u8]) -> Option<&'static str> {
    let line = request_line(buf);
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or(b"");
    match e {
        ParseError::UnknownMethod => Some("501 for extension methods (httparse accepts any token)"),
        ParseError::InvalidContentLength
        | ParseError::LengthRequired
        | ParseError::BodyTooLarge
        | ParseError::TransferEncodingNotImplemented
        | ParseError::ConflictingFraming => {
            Some("framing checks (httparse leaves bodies to the caller)")
        }
        ParseError::InvalidTarget
            if !target.iter().all(|&b| is_rfc3986_target_byte(b))
                || target.windows(1).any(|w| w[0] == b'%')
                || !target.starts_with(b"/") =>
        {
            Some("strict RFC 3986 request-target (httparse accepts any visible byte)")
        }
        ParseError::BadLineEnding if buf.contains(&b'\n') => {
            Some("bare LF rejected in strict mode (httparse accepts it)")
        }
        ParseError::InvalidHeaderValue if buf.contains(&b'\r') => Some("bare CR inside a line"),
        _ => None,
    }
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    agree: usize,
    explained: std::collections::BTreeMap<&'static str, usize>,
    unexplained: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.unexplained.len() < 20 {
            self.unexplained.push(what);
        } else {
            self.unexplained.push(String::new());
        }
    }
}

fn compare(buf: &[u8], t: &mut Tally) {
    t.cases += 1;
    let ours = parse(buf);
    let theirs = httparse_parse(buf);
    let show = || String::from_utf8_lossy(buf).into_owned();
    match (&ours, &theirs.outcome) {
        (Ok(Status::Complete(r)), Outcome::Complete(n)) => {
            let mut same = r.head_len() == *n
                && theirs.method.as_deref() == Some(r.method().as_str())
                && theirs.path.as_deref() == Some(r.target())
                && theirs.version == Some(if r.version() == Version::Http10 { 0 } else { 1 });
            let our_headers: Vec<_> = r.headers().collect();
            same &= our_headers.len() == theirs.headers.len();
            for ((n1, v1), (n2, v2)) in our_headers.iter().zip(&theirs.headers) {
                same &= *n1 == n2 && trim(v1) == trim(v2);
            }
            if same {
                t.agree += 1;
            } else {
                t.fail(format!("fields differ: {:?}", show()));
            }
        }
        (Ok(Status::Partial), Outcome::Partial) => t.agree += 1,
        (Err(_), Outcome::Error) => t.agree += 1,
        // Head complete, body still arriving: httparse stops at the head.
        (Ok(Status::Partial), Outcome::Complete(_)) => {
            t.agree += 1;
        }
        (Err(e), Outcome::Complete(_)) | (Err(e), Outcome::Partial) => {
            match explain_our_rejection(*e, buf) {
                Some(why) => *t.explained.entry(why).or_default() += 1,
                None => t.fail(format!(
                    "we reject ({e:?}), httparse {:?}: {:?}",
                    theirs.outcome,
                    show()
                )),
            }
        }
        (Ok(Status::Partial), Outcome::Error) => {
            // httparse validates some tokens byte by byte and fails before the delimiter we
            // wait for (version, target); we report the error once the token ends.
            let line_done = request_line(buf).len() < buf.len();
            if !line_done {
                *t.explained
                    .entry("error found before the delimiter (we wait for it)")
                    .or_default() += 1;
            } else {
                t.fail(format!("we need more, httparse rejects: {:?}", show()));
            }
        }
        (Ok(Status::Complete(_)), Outcome::Error) => {
            if buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()
                > 0
            {
                *t.explained.entry("leading empty lines").or_default() += 1;
            } else {
                t.fail(format!("we accept, httparse rejects: {:?}", show()));
            }
        }
        (Ok(Status::Complete(_)), Outcome::Partial) => {
            t.fail(format!("we complete, httparse needs more: {:?}", show()))
        }
    }
}

#[test]
fn test_differential_generated_requests_agree_with_httparse() {
    let mut rng = Rng::new(0x5eed_0004);
    let mut valid = Tally::default();
    let mut truncated = Tally::default();
    let mut mutated = Tally::default();
    for i in 0..4000 {
        let headers = rng.below(20);
        let body = if rng.chance(30) { rng.below(64) } else { 0 };
        let req = request(&mut rng, headers, body);
        compare(&req, &mut valid);
        // A random truncation.
        let cut = rng.below(req.len());
        compare(&req[..cut], &mut truncated);
        // Mutations (1 to 3 edits).
        let mut m = mutate(&mut rng, &req);
        for _ in 0..i % 3 {
            m = mutate(&mut rng, &m);
        }
        compare(&m, &mut mutated);
    }
    eprintln!("valid: {valid:?}\ntruncated: {truncated:?}\nmutated: {mutated:?}");
    // Valid and truncated requests: full agreement, no exceptions needed.
    assert_eq!(valid.agree, valid.cases, "{:?}", valid.unexplained);
    assert_eq!(
        truncated.agree, truncated.cases,
        "{:?}",
        truncated.unexplained
    );
    // Mutations: every disagreement is a documented policy difference.
    assert!(
        mutated.unexplained.is_empty(),
        "{} unexplained: {:#?}",
        mutated.unexplained.len(),
        mutated.unexplained
    );
    assert!(mutated.agree > mutated.cases / 2, "{mutated:?}");
}
