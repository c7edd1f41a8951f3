//! The invariants the fuzz target `http10_request` checks, shared with the seed-corpus replay
//! test so `cargo test` runs the same function on stable.

use crate::{Limits, Mode, ParseError, Parser, Request, Status, disposition};

fn inside(data: &[u8], part: &[u8]) -> bool {
    let (d, p) = (data.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= d && p + part.len() <= d + data.len())
}

fn check_fields(data: &[u8], r: &Request<'_>) {
    assert!(r.len() <= data.len(), "consumed more than given");
    assert!(r.head_len() <= r.len());
    assert!(inside(data, r.target().as_bytes()), "target outside input");
    assert!(inside(data, r.body()), "body outside input");
    assert!(inside(data, r.path().as_bytes()));
    let mut count = 0;
    for (name, value) in r.headers() {
        assert!(inside(data, name.as_bytes()), "header name outside input");
        assert!(inside(data, value), "header value outside input");
        assert!(!name.is_empty());
        count += 1;
    }
    assert_eq!(
        count,
        r.header_count(),
        "header iterator disagrees with count"
    );
}

/// Parses `data` with `parser` and checks every invariant; panics on a violation.
pub fn check_one(parser: &Parser, data: &[u8]) -> Result<usize, ParseError> {
    let full = parser.parse(data);
    match &full {
        Ok(Status::Complete(r)) => check_fields(data, r),
        Ok(Status::Partial) => {}
        Err(e) => {
            let d = disposition(*e);
            assert!(matches!(
                d.status,
                400 | 408 | 411 | 413 | 414 | 431 | 501 | 505
            ));
        }
    }
    // Prefixes: Partial or the same error; a complete request's own prefix is complete.
    let cuts: Vec<usize> = if data.len() <= 200 {
        (0..data.len()).collect()
    } else {
        (0..64).map(|i| i * data.len() / 64).collect()
    };
    for n in cuts {
        let prefix = parser.parse(&data[..n]);
        match (&full, prefix) {
            (_, Ok(Status::Partial)) => {}
            (Err(e), Err(e2)) => assert_eq!(*e, e2, "prefix {n} gave another error"),
            (Ok(Status::Complete(r)), Ok(Status::Complete(p))) => {
                assert!(n >= r.len(), "prefix {n} complete before the request ends");
                assert_eq!(p.len(), r.len());
            }
            (full, prefix) => panic!("prefix {n}: {prefix:?} but full input: {full:?}"),
        }
    }
    full.map(|s| match s {
        Status::Complete(r) => r.len(),
        Status::Partial => 0,
    })
}

/// The fuzz target's body: default and tiny limits, both modes; strict acceptance implies
/// tolerant acceptance of the same request.
pub fn check_request(data: &[u8]) {
    let strict = Parser::default();
    let lenient = Parser::new(Limits::default(), Mode::Rfc1945);
    let tiny = Parser::new(
        Limits {
            max_request_line: 32,
            max_headers: 3,
            max_header_line: 24,
            max_head: 96,
            max_body: 16,
            ..Limits::default()
        },
        Mode::Strict,
    );
    let s = check_one(&strict, data);
    let l = check_one(&lenient, data);
    let _ = check_one(&tiny, data);
    if let Ok(n) = s {
        if n > 0 {
            assert_eq!(l, Ok(n), "strict accepted what RFC 1945 mode did not");
        }
    }
}
