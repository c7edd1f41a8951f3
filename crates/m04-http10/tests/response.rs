//! Response writer tests: status line, generated headers, CRLF, HEAD, injection refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use m04_http10::{ResponseWriter, reason_phrase};

fn wall() -> SystemTime {
    // RFC 1945 §3.3's example instant: Sun, 06 Nov 1994 08:49:37 GMT.
    UNIX_EPOCH + Duration::from_secs(784_111_777)
}

fn write(head: bool, f: impl FnOnce(&mut ResponseWriter<'_>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(&mut out, head, wall());
    f(&mut w);
    out
}

/// Every line ends with CRLF and there is no bare CR or LF in the head.
fn assert_crlf_only(head: &[u8]) {
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && head[i - 1] == b'\r', "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
}

fn split(resp: &[u8]) -> (&[u8], &[u8]) {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("blank line")
        + 4;
    (&resp[..end], &resp[end..])
}

#[test]
fn test_response_generates_valid_http10_response() {
    let out = write(false, |w| {
        w.send(200, Some("text/html"), &[("X-Test", b"1")], b"<h1>hi</h1>")
    });
    let text = String::from_utf8(out.clone()).unwrap();
    assert_eq!(
        text,
        "HTTP/1.0 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: zyphos\r\nContent-Type: text/html\r\nX-Test: 1\r\nContent-Length: 11\r\n\r\n<h1>hi</h1>"
    );
    // httparse reads it back as a valid response.
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let n = resp.parse(&out).unwrap().unwrap();
    assert_eq!(resp.code, Some(200));
    assert_eq!(resp.version, Some(0));
    assert_eq!(&out[n..], b"<h1>hi</h1>");
}

#[test]
fn test_response_required_headers_present() {
    // RFC 1945 §10.6 Date, §10.14 Server, §10.4 Content-Length, §10.5 Content-Type.
    let out = write(false, |w| w.send(404, Some("text/plain"), &[], b"nope"));
    let (head, body) = split(&out);
    let head = String::from_utf8(head.to_vec()).unwrap();
    assert!(head.starts_with("HTTP/1.0 404 Not Found\r\n"));
    for h in [
        "Date: ",
        "Server: zyphos",
        "Content-Length: 4",
        "Content-Type: text/plain",
    ] {
        assert!(head.contains(h), "{h} missing in {head}");
    }
    assert_eq!(body, b"nope");
}

#[test]
fn test_response_date_is_rfc822_family_imf_fixdate() {
    let out = write(false, |w| w.send(200, None, &[], b""));
    let text = String::from_utf8(out).unwrap();
    let date = text.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap();
    assert_eq!(date, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(date.len(), 29);
}

#[test]
fn test_response_crlf_everywhere() {
    let out = write(false, |w| {
        w.send(
            500,
            Some("text/plain"),
            &[("A", b"b"), ("C", b"d e")],
            b"line1\nline2\n",
        )
    });
    let (head, body) = split(&out);
    assert_crlf_only(head);
    // The body is the handler's bytes, untouched.
    assert_eq!(body, b"line1\nline2\n");
}

#[test]
fn test_response_head_keeps_content_length_omits_body() {
    let out = write(true, |w| {
        w.send(200, Some("text/plain"), &[], b"0123456789");
        assert!(w.is_head());
        assert_eq!(w.body_len(), 10);
        assert_eq!(w.status(), Some(200));
    });
    let (head, body) = split(&out);
    assert!(String::from_utf8_lossy(head).contains("Content-Length: 10\r\n"));
    assert!(body.is_empty());
}

#[test]
fn test_response_injection_refused_and_counted() {
    let mut refused = 0;
    let out = write(false, |w| {
        w.send(
            200,
            Some("text/plain\r\nSet-Cookie: evil=1"),
            &[
                ("X-Ok", b"fine"),
                ("X-Bad", b"a\r\nSet-Cookie: evil=1"),
                ("X-Lf", b"a\nb"),
                ("X-Cr", b"a\rb"),
                ("X-Nul", b"a\0b"),
                ("Bad\r\nName", b"x"),
                ("Bad Name", b"x"),
                ("", b"x"),
                ("Content-Length", b"0"),
            ],
            b"body",
        );
        refused = w.refused_headers();
    });
    assert_eq!(refused, 9);
    let (head, body) = split(&out);
    assert_crlf_only(head);
    let text = String::from_utf8_lossy(head);
    assert!(!text.contains("evil"), "{text}");
    assert!(text.contains("X-Ok: fine\r\n"));
    assert_eq!(text.matches("Content-Length").count(), 1);
    assert_eq!(body, b"body");
}

#[test]
fn test_response_send_parts_writes_total_length_then_pieces() {
    let out = write(false, |w| {
        w.send_parts(200, None, &[], &[b"ab", b"", b"cde"])
    });
    let (head, body) = split(&out);
    assert!(String::from_utf8_lossy(head).contains("Content-Length: 5\r\n"));
    assert_eq!(body, b"abcde");
}

#[test]
fn test_response_bodyless_statuses_have_no_body() {
    let out = write(false, |w| w.send(304, None, &[], b"ignored"));
    let (head, body) = split(&out);
    assert!(body.is_empty());
    assert!(!String::from_utf8_lossy(head).contains("Content-Length"));
}

#[test]
fn test_response_reason_phrases() {
    assert_eq!(reason_phrase(200), "OK");
    assert_eq!(reason_phrase(400), "Bad Request");
    assert_eq!(reason_phrase(414), "URI Too Long");
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(501), "Not Implemented");
    assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
    assert_eq!(reason_phrase(299), "Unknown");
}
