//! Milestone 8's additive options: caller framing in the parser, connection management and
//! chunked responses in the writer. The HTTP/1.0 defaults are unchanged (other test files).

use std::time::SystemTime;

use m04_http10::{Limits, Mode, ParseError, Parser, ResponseWriter, Status, Version};

fn caller() -> Parser {
    Parser::new(Limits::default(), Mode::Strict).with_caller_framing()
}

#[test]
fn test_caller_framing_stops_after_head() {
    let buf = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel";
    let Ok(Status::Complete(r)) = caller().parse(buf) else {
        panic!("head complete")
    };
    assert_eq!(r.head_len(), buf.len() - 3);
    assert!(r.body().is_empty());
    assert_eq!(r.declared_length(), Some(5));
    assert!(!r.has_transfer_encoding());
    let with = r.with_body(b"hello");
    assert_eq!(with.body(), b"hello");
    assert_eq!(with.head_len(), r.head_len());
    // The default parser still waits for the body.
    assert!(matches!(Parser::default().parse(buf), Ok(Status::Partial)));
}

#[test]
fn test_caller_framing_transfer_encoding_handed_over_but_cl_te_still_rejected() {
    let buf = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let Ok(Status::Complete(r)) = caller().parse(buf) else {
        panic!("head complete")
    };
    assert!(r.has_transfer_encoding());
    assert_eq!(r.declared_length(), None);
    assert_eq!(
        Parser::default().parse(buf).unwrap_err(),
        ParseError::TransferEncodingNotImplemented
    );
    let both = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        caller().parse(both).unwrap_err(),
        ParseError::ConflictingFraming
    );
}

#[test]
fn test_caller_framing_content_length_lists() {
    let ok = b"POST / HTTP/1.1\r\nContent-Length: 5 , 5\r\n\r\n";
    let Ok(Status::Complete(r)) = caller().parse(ok) else {
        panic!("identical list accepted")
    };
    assert_eq!(r.declared_length(), Some(5));
    for bad in [&b"5, 6"[..], b"5,", b",", b"5,,5x"] {
        let mut req = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            caller().parse(&req).unwrap_err(),
            ParseError::InvalidContentLength
        );
    }
    // Default parser: lists are not numbers.
    assert_eq!(
        Parser::default().parse(ok).unwrap_err(),
        ParseError::InvalidContentLength
    );
}

#[test]
fn test_writer_managed_connection_and_chunked() {
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
    w.manage_connection(Version::Http11, Some("close"), Some((5, 9)), true);
    w.send_chunked(
        200,
        None,
        &[("Connection", b"keep-alive"), ("X", b"y")],
        &[b"ab", b"", b"cde"],
    );
    assert!(w.is_chunked());
    assert_eq!(w.refused_headers(), 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("X: y\r\nConnection: close\r\nKeep-Alive: timeout=5, max=9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"), "{text}");
    // Without permission (an HTTP/1.0 peer) it falls back to Content-Length.
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
    w.send_chunked(200, None, &[], &[b"ab", b"cd"]);
    assert!(!w.is_chunked());
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 200 OK\r\n") && text.ends_with("Content-Length: 4\r\n\r\nabcd")
    );
}

#[test]
fn test_writer_close_after_overrides_keep_alive_for_listed_statuses() {
    const CLOSE: &[u16] = &[400, 413];
    for (status, closes) in [(400, true), (413, true), (404, false), (200, false)] {
        let mut out = Vec::new();
        let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
        w.manage_connection(Version::Http11, None, Some((5, 9)), true);
        w.close_after(CLOSE);
        assert!(!w.closes_connection(), "nothing sent yet");
        w.send(status, None, &[], b"x");
        assert_eq!(w.closes_connection(), closes, "{status}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.contains("\r\nConnection: close\r\n"), closes, "{text}");
        assert_eq!(!text.contains("Keep-Alive"), closes, "{text}");
    }
    // An HTTP/1.0 keep-alive response turns into a close as well.
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
    w.manage_connection(Version::Http11, Some("keep-alive"), Some((5, 9)), false);
    w.close_after(CLOSE);
    w.send(400, None, &[], b"x");
    assert!(w.closes_connection());
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\r\nConnection: close\r\n") && !text.contains("keep-alive"),
        "{text}"
    );
    // Unmanaged (m04's own HTTP/1.0 session), it changes nothing: that session always closes.
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
    w.close_after(CLOSE);
    w.send(400, None, &[], b"x");
    assert!(!w.closes_connection());
    assert!(!String::from_utf8(out).unwrap().contains("Connection"));
}
