//! Parser tests, named `test_<state>_<event>`: grammar, limits, modes, and the RFC 1945 examples.

use m04_http10::{
    Limits, Method, Mode, ParseError, Parser, State, Status, TransitionCounts, TransitionLog,
    Version, disposition, parse, unfold_in_place,
};

fn ok(buf: &[u8]) -> m04_http10::Request<'_> {
    match parse(buf) {
        Ok(Status::Complete(r)) => r,
        other => panic!(
            "expected a complete request from {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn err(buf: &[u8]) -> ParseError {
    match parse(buf) {
        Err(e) => e,
        other => panic!(
            "expected an error from {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn lenient(buf: &[u8]) -> Result<Status<'_>, ParseError> {
    Parser::new(Limits::default(), Mode::Rfc1945).parse(buf)
}

fn small(limits: Limits) -> Parser {
    Parser::new(limits, Mode::Strict)
}

// ---- Methods (RFC 1945 §5.1.1) ----

#[test]
fn test_method_every_known_method_parses() {
    for m in Method::ALL {
        let target = match m {
            Method::Connect => "example.com:443",
            Method::Options => "*",
            _ => "/",
        };
        let text = format!(
            "{} {target} HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            m.as_str()
        );
        let r = ok(text.as_bytes());
        assert_eq!(r.method(), m);
        assert_eq!(r.target(), target);
    }
}

#[test]
fn test_method_unknown_token_is_501() {
    assert_eq!(
        err(b"BREW /pot HTTP/1.0\r\n\r\n"),
        ParseError::UnknownMethod
    );
    assert_eq!(disposition(ParseError::UnknownMethod).status, 501);
    // Methods are case-sensitive: "get" is a well-formed token this server does not implement.
    assert_eq!(err(b"get / HTTP/1.0\r\n\r\n"), ParseError::UnknownMethod);
}

#[test]
fn test_method_invalid_token_is_400() {
    assert_eq!(err(b"G@T / HTTP/1.0\r\n\r\n"), ParseError::InvalidMethod);
    assert_eq!(err(b" GET / HTTP/1.0\r\n\r\n"), ParseError::InvalidMethod);
    assert_eq!(
        err(b"GET\t/ HTTP/1.0\r\n\r\n"),
        ParseError::InvalidRequestLine
    );
    assert_eq!(
        err(b"GET  / HTTP/1.0\r\n\r\n"),
        ParseError::InvalidRequestLine
    );
}

// ---- Request-target (RFC 1945 §5.1.2, RFC 3986) ----

#[test]
fn test_target_rfc1945_example_absolute_and_abs_path() {
    // RFC 1945 §5.1.2's two examples.
    let r = ok(b"GET http://www.w3.org/pub/WWW/TheProject.html HTTP/1.0\r\n\r\n");
    assert_eq!(r.target(), "http://www.w3.org/pub/WWW/TheProject.html");
    let r = ok(b"GET /pub/WWW/TheProject.html HTTP/1.0\r\n\r\n");
    assert_eq!(r.path(), "/pub/WWW/TheProject.html");
    assert_eq!(r.query(), None);
}

#[test]
fn test_target_path_and_query_split() {
    let r = ok(b"GET /a%20b/c?x=1&y=%2F HTTP/1.0\r\n\r\n");
    assert_eq!(r.path(), "/a%20b/c");
    assert_eq!(r.query(), Some("x=1&y=%2F"));
    let r = ok(b"GET /? HTTP/1.0\r\n\r\n");
    assert_eq!(r.query(), Some(""));
}

#[test]
fn test_target_invalid_bytes_rejected() {
    for bad in [
        &b"GET /a b HTTP/1.0\r\n\r\n"[..],
        b"GET /a\x00b HTTP/1.0\r\n\r\n",
        b"GET /a\x7fb HTTP/1.0\r\n\r\n",
        b"GET /a\"b HTTP/1.0\r\n\r\n",
        b"GET /a<b> HTTP/1.0\r\n\r\n",
        b"GET /a#frag HTTP/1.0\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.0\r\n\r\n",
        b"GET /%zz HTTP/1.0\r\n\r\n",
        b"GET /%4 HTTP/1.0\r\n\r\n",
        b"GET relative HTTP/1.0\r\n\r\n",
        b"GET * HTTP/1.0\r\n\r\n",
        b"CONNECT /x HTTP/1.0\r\n\r\n",
        b"CONNECT host HTTP/1.0\r\n\r\n",
    ] {
        let e = err(bad);
        assert_eq!(
            disposition(e).status,
            400,
            "{:?} → {e:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn test_target_asterisk_and_authority_forms() {
    assert_eq!(ok(b"OPTIONS * HTTP/1.0\r\n\r\n").target(), "*");
    assert_eq!(
        ok(b"CONNECT [::1]:443 HTTP/1.0\r\n\r\n").target(),
        "[::1]:443"
    );
}

// ---- Version (RFC 1945 §3.1) ----

#[test]
fn test_version_http10_and_http11() {
    assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").version(), Version::Http10);
    assert_eq!(ok(b"GET / HTTP/1.1\r\n\r\n").version(), Version::Http11);
}

#[test]
fn test_version_other_versions_are_505_malformed_are_400() {
    for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0", "HTTP/9.9"] {
        let text = format!("GET / {v}\r\n\r\n");
        assert_eq!(err(text.as_bytes()), ParseError::UnsupportedVersion, "{v}");
    }
    for v in [
        "HTTP/1.",
        "HTTP/1",
        "HTTP/",
        "HTTX/1.0",
        "http/1.0",
        "HTTP/1.0a",
        "HTTP/01.0",
        "HTTP/1.00",
        "1.0",
        "HTTP/1.0 ",
        "HTTP/1..0",
    ] {
        let text = format!("GET / {v}\r\n\r\n");
        let e = err(text.as_bytes());
        assert_eq!(disposition(e).status, 400, "{v}: {e:?}");
    }
    assert_eq!(disposition(ParseError::UnsupportedVersion).status, 505);
}

#[test]
fn test_version_http09_simple_request_is_505() {
    // RFC 1945 §4.1 Simple-Request = "GET" SP Request-URI CRLF: recognised, not served.
    assert_eq!(err(b"GET /\r\n"), ParseError::Http09);
    assert_eq!(disposition(ParseError::Http09).status, 505);
    assert_eq!(err(b"POST /\r\n"), ParseError::InvalidRequestLine);
}

#[test]
fn test_version_rfc1945_mode_is_case_insensitive_and_ignores_leading_zeros() {
    for v in ["http/1.0", "HTTP/01.00", "Http/001.000"] {
        let text = format!("GET / {v}\r\n\r\n");
        let r = lenient(text.as_bytes()).expect(v).complete().expect(v);
        assert_eq!(r.version(), Version::Http10);
    }
}

// ---- Headers (RFC 1945 §4.2) ----

#[test]
fn test_header_fields_parse_in_order() {
    let r =
        ok(b"GET / HTTP/1.0\r\nHost: a\r\nUser-Agent: x/1 (y)\r\nAccept:*/*\r\nX-Empty:\r\n\r\n");
    let all: Vec<_> = r.headers().collect();
    assert_eq!(
        all,
        vec![
            ("Host", &b"a"[..]),
            ("User-Agent", &b"x/1 (y)"[..]),
            ("Accept", &b"*/*"[..]),
            ("X-Empty", &b""[..]),
        ]
    );
    assert_eq!(r.header_count(), 4);
}

#[test]
fn test_header_lookup_is_case_insensitive_first_match() {
    let r = ok(b"GET / HTTP/1.0\r\ncOnTeNt-TyPe: text/html\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
    assert_eq!(r.header("Content-Type"), Some(&b"text/html"[..]));
    assert_eq!(r.header("CONTENT-TYPE"), Some(&b"text/html"[..]));
    assert_eq!(r.header("x-A"), Some(&b"1"[..]));
    assert_eq!(r.header("Content"), None);
}

#[test]
fn test_header_value_ows_trimmed_obs_text_kept() {
    let r = ok(b"GET / HTTP/1.0\r\nX:  \t v a l \t \r\nY: caf\xe9\r\n\r\n");
    assert_eq!(r.header("x"), Some(&b"v a l"[..]));
    assert_eq!(r.header("y"), Some(&b"caf\xe9"[..]));
}

#[test]
fn test_header_invalid_names_rejected() {
    for bad in [
        &b"GET / HTTP/1.0\r\nHost : a\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nHo st: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost\r\n\r\n",
        b"GET / HTTP/1.0\r\nH\x00st: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nH(st: a\r\n\r\n",
        b"GET / HTTP/1.0\r\n\xc3\xa9: a\r\n\r\n",
    ] {
        let e = err(bad);
        assert_eq!(
            disposition(e).status,
            400,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn test_header_invalid_values_rejected() {
    for bad in [
        &b"GET / HTTP/1.0\r\nX: a\x00b\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\nX: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.0\r\nX: a\x01b\r\n\r\n",
        b"GET / HTTP/1.0\r\nX: a\rb\r\n\r\n",
    ] {
        let e = err(bad);
        assert!(
            matches!(
                e,
                ParseError::InvalidHeaderValue | ParseError::BadLineEnding
            ),
            "{:?}: {e:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

// ---- Continuation lines (obs-fold, RFC 1945 §4.2 / RFC 7230 §3.2.4) ----

#[test]
fn test_obsfold_strict_mode_rejects() {
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n"),
        ParseError::ObsFold
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nX: a\r\n\tb\r\n\r\n"),
        ParseError::ObsFold
    );
}

#[test]
fn test_obsfold_rfc1945_mode_accepts_and_unfolds_to_sp() {
    let mut buf = b"GET / HTTP/1.0\r\nX-Long: part one,\r\n  part two\r\nY: z\r\n\r\n".to_vec();
    let head_len = {
        let r = lenient(&buf).unwrap().complete().unwrap();
        assert!(r.has_obs_fold());
        assert_eq!(r.header("y"), Some(&b"z"[..]));
        r.head_len()
    };
    assert_eq!(unfold_in_place(&mut buf[..head_len]), 1);
    let r = lenient(&buf).unwrap().complete().unwrap();
    assert_eq!(r.header("x-long"), Some(&b"part one,    part two"[..]));
    assert_eq!(r.head_len(), head_len);
}

#[test]
fn test_obsfold_before_first_header_or_on_framing_header_rejected_in_both_modes() {
    let first = b"GET / HTTP/1.0\r\n X: a\r\n\r\n";
    assert_eq!(err(first), ParseError::ObsFold);
    assert_eq!(lenient(first).unwrap_err(), ParseError::ObsFold);
    let cl = b"POST / HTTP/1.0\r\nContent-Length: 1\r\n 0\r\n\r\n0123456789";
    assert_eq!(lenient(cl).unwrap_err(), ParseError::ObsFold);
}

// ---- Line endings (RFC 1945 §2.2) ----

#[test]
fn test_lineend_bare_lf_strict_rejects_rfc1945_accepts() {
    let text = b"GET / HTTP/1.0\nHost: a\n\n";
    assert_eq!(err(text), ParseError::BadLineEnding);
    let r = lenient(text).unwrap().complete().unwrap();
    assert_eq!(r.header("host"), Some(&b"a"[..]));
    assert_eq!(r.head_len(), text.len());
}

#[test]
fn test_lineend_bare_cr_rejected_in_both_modes() {
    for bad in [
        &b"GET / HTTP/1.0\rHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\nHost: a\r\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\n\rX",
        b"\rGET / HTTP/1.0\r\n\r\n",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        assert!(lenient(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn test_start_leading_empty_lines_skipped() {
    let r = ok(b"\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.head_len(), 22);
}

// ---- Content-Length and body (RFC 1945 §7.2, §10.4) ----

#[test]
fn test_body_read_exactly_content_length_bytes() {
    let buf = b"POST /f HTTP/1.0\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    let r = ok(buf);
    assert_eq!(r.body(), b"hello");
    assert_eq!(r.len(), buf.len() - 5);
    assert_eq!(r.head_len() + 5, r.len());
}

#[test]
fn test_body_incomplete_is_partial() {
    let buf = b"POST /f HTTP/1.0\r\nContent-Length: 5\r\n\r\nhel";
    assert!(parse(buf).unwrap().is_partial());
}

#[test]
fn test_contentlength_rfc1945_example() {
    // RFC 1945 §10.4: "Content-Length: 3495"
    let mut buf = b"POST /x HTTP/1.0\r\nContent-Length: 3495\r\n\r\n".to_vec();
    buf.extend(std::iter::repeat_n(b'x', 3495));
    assert_eq!(ok(&buf).body().len(), 3495);
}

#[test]
fn test_contentlength_invalid_values_rejected() {
    for v in [
        "-1",
        "+1",
        "1.0",
        "0x10",
        "",
        " ",
        "1 2",
        "1,1",
        "abc",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        let text = format!("POST / HTTP/1.0\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(
            err(text.as_bytes()),
            ParseError::InvalidContentLength,
            "{v:?}"
        );
    }
}

#[test]
fn test_contentlength_duplicates_must_agree() {
    let same = b"POST / HTTP/1.0\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok";
    assert_eq!(ok(same).body(), b"ok");
    let differ = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!";
    assert_eq!(err(differ), ParseError::InvalidContentLength);
}

#[test]
fn test_contentlength_leading_zeros_and_max_value() {
    assert_eq!(
        ok(b"POST / HTTP/1.0\r\nContent-Length: 0003\r\n\r\nabc").body(),
        b"abc"
    );
    let max = b"POST / HTTP/1.0\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(err(max), ParseError::BodyTooLarge);
}

#[test]
fn test_contentlength_required_for_http10_post() {
    // RFC 1945 §7.2.2: "A valid Content-Length is required on all HTTP/1.0 POST requests."
    assert_eq!(err(b"POST / HTTP/1.0\r\n\r\n"), ParseError::LengthRequired);
    assert_eq!(disposition(ParseError::LengthRequired).status, 411);
    // HTTP/1.1 without framing headers: empty body (RFC 7230 §3.3.3 rule 6).
    assert_eq!(ok(b"POST / HTTP/1.1\r\n\r\n").body(), b"");
}

#[test]
fn test_transferencoding_rejected() {
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ParseError::TransferEncodingNotImplemented
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc"),
        ParseError::ConflictingFraming
    );
}

// ---- Limits ----

#[test]
fn test_limits_request_line_too_long_is_414_without_waiting_for_the_line_end() {
    let p = small(Limits {
        max_request_line: 64,
        ..Limits::default()
    });
    let long = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(100));
    assert_eq!(
        p.parse(long.as_bytes()).unwrap_err(),
        ParseError::RequestLineTooLong
    );
    // 70 bytes of target, no line end yet: already 414.
    let prefix = format!("GET /{}", "a".repeat(70));
    assert_eq!(
        p.parse(prefix.as_bytes()).unwrap_err(),
        ParseError::RequestLineTooLong
    );
    // Exactly at the limit: fine.
    let exact = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(64 - 4 - 9 - 1));
    assert!(p.parse(exact.as_bytes()).unwrap().complete().is_some());
    assert_eq!(disposition(ParseError::RequestLineTooLong).status, 414);
}

#[test]
fn test_limits_header_count_bomb_is_431() {
    let p = small(Limits {
        max_headers: 10,
        ..Limits::default()
    });
    let mut text = String::from("GET / HTTP/1.0\r\n");
    for i in 0..10 {
        text.push_str(&format!("X-{i}: v\r\n"));
    }
    let ok_text = format!("{text}\r\n");
    assert!(p.parse(ok_text.as_bytes()).unwrap().complete().is_some());
    text.push_str("X-10: v\r\n\r\n");
    assert_eq!(
        p.parse(text.as_bytes()).unwrap_err(),
        ParseError::TooManyHeaders
    );
    assert_eq!(disposition(ParseError::TooManyHeaders).status, 431);
}

#[test]
fn test_limits_header_line_too_long_is_431() {
    let p = small(Limits {
        max_header_line: 100,
        ..Limits::default()
    });
    let text = format!("GET / HTTP/1.0\r\nX: {}\r\n\r\n", "v".repeat(200));
    assert_eq!(
        p.parse(text.as_bytes()).unwrap_err(),
        ParseError::HeaderLineTooLong
    );
    let name = format!("GET / HTTP/1.0\r\n{}: v\r\n\r\n", "N".repeat(200));
    assert_eq!(
        p.parse(name.as_bytes()).unwrap_err(),
        ParseError::HeaderLineTooLong
    );
}

#[test]
fn test_limits_head_too_large_is_431() {
    let p = small(Limits {
        max_head: 256,
        ..Limits::default()
    });
    let mut text = String::from("GET / HTTP/1.0\r\n");
    while text.len() < 300 {
        text.push_str("X-Filler: 0123456789\r\n");
    }
    assert_eq!(
        p.parse(text.as_bytes()).unwrap_err(),
        ParseError::HeadTooLarge
    );
}

#[test]
fn test_limits_body_too_large_is_413_before_the_body_arrives() {
    let p = small(Limits {
        max_body: 1000,
        ..Limits::default()
    });
    let text = b"POST / HTTP/1.0\r\nContent-Length: 1001\r\n\r\n";
    assert_eq!(p.parse(text).unwrap_err(), ParseError::BodyTooLarge);
    assert_eq!(disposition(ParseError::BodyTooLarge).status, 413);
}

// ---- Incomplete input ----

#[test]
fn test_partial_every_prefix_of_a_valid_request_needs_more() {
    let full = b"POST /upload?x=1 HTTP/1.0\r\nHost: example.com\r\nContent-Length: 4\r\nX-Y:  z \r\n\r\nbody";
    for n in 0..full.len() {
        assert!(
            parse(&full[..n]).unwrap().is_partial(),
            "prefix of {n} bytes: {:?}",
            String::from_utf8_lossy(&full[..n])
        );
    }
    assert_eq!(ok(full).body(), b"body");
}

#[test]
fn test_partial_prefix_of_invalid_request_is_partial_or_same_error() {
    let full = b"GET /ok HTTP/1.0\r\nGood: yes\r\nBad\x01: no\r\n\r\n";
    let e = err(full);
    for n in 0..full.len() {
        match parse(&full[..n]) {
            Ok(Status::Partial) => {}
            Err(e2) => assert_eq!(e2, e, "prefix {n}"),
            Ok(Status::Complete(_)) => panic!("prefix {n} complete"),
        }
    }
}

// ---- State machine observability ----

#[test]
fn test_trace_logs_state_sequence_for_sample_request() {
    let mut log = TransitionLog::default();
    let buf = b"POST /a HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
    let r = Parser::default().parse_traced(buf, &mut log).unwrap();
    assert!(r.complete().is_some());
    let states: Vec<(State, State)> = log.entries.iter().map(|&(f, t, _)| (f, t)).collect();
    use State::*;
    assert_eq!(
        states,
        vec![
            (Start, Method),
            (Method, Target),
            (Target, Version),
            (Version, RequestLineEnd),
            (RequestLineEnd, HeaderStart),
            (HeaderStart, HeaderName),
            (HeaderName, HeaderValue),
            (HeaderValue, HeaderLineEnd),
            (HeaderLineEnd, HeaderStart),
            (HeaderStart, HeaderName),
            (HeaderName, HeaderValue),
            (HeaderValue, HeaderLineEnd),
            (HeaderLineEnd, HeaderStart),
            (HeaderStart, HeadEnd),
            (HeadEnd, Body),
            (Body, Complete),
        ]
    );
    // Offsets are byte positions in the input.
    assert_eq!(log.entries[1].2, 5); // Target starts after "POST "
    assert_eq!(log.entries.last().unwrap().2, buf.len());
    for (f, t, off) in &log.entries {
        eprintln!("{:>4} {} -> {}", off, f.name(), t.name());
    }
}

#[test]
fn test_trace_counts_transitions_and_failures() {
    let mut counts = TransitionCounts::default();
    let p = Parser::default();
    for _ in 0..3 {
        p.parse_traced(b"GET / HTTP/1.0\r\nA: b\r\n\r\n", &mut counts)
            .unwrap();
    }
    p.parse_traced(b"GET / HTTP/1.0\r\nA b\r\n\r\n", &mut counts)
        .unwrap_err();
    assert_eq!(counts.get(State::Start, State::Method), 4);
    assert_eq!(counts.get(State::Body, State::Complete), 3);
    assert_eq!(counts.get(State::HeaderName, State::Failed), 1);
    assert_eq!(counts.get(State::HeaderStart, State::HeaderName), 4);
    assert!(counts.total() > 40);
}
