//! One test per row of the RFC 9112 (HTTP/1.1, successor of RFC 2616) table in
//! docs/milestones/08-http11.md. `check_rfc9112` runs exactly these names.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use m03_thread_per_conn::CloseReason;
use m03_thread_per_conn::testing::{Faults, PipeDriver};
use m08_http11::conformance::{Recorder, Seen, statuses};
use m08_http11::{Http11Config, Http11Session};

struct Outcome {
    statuses: Vec<u16>,
    close: CloseReason,
    seen: Vec<Seen>,
    text: String,
}

fn answer(script: &[u8]) -> Outcome {
    let r = Recorder::default();
    let now = Instant::now();
    let mut s = Http11Session::new(
        Arc::new(r.clone()),
        Http11Config::default(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        now,
        (now, SystemTime::UNIX_EPOCH),
    );
    let out = PipeDriver::new(Faults {
        max_read: 7,
        ..Faults::default()
    })
    .run(&mut s, script);
    let seen = r.seen.lock().map(|v| v.clone()).unwrap_or_default();
    Outcome {
        statuses: statuses(&out.output),
        close: out.close,
        seen,
        text: String::from_utf8_lossy(&out.output).into_owned(),
    }
}

fn rejected(script: &[u8], status: u16) {
    let o = answer(script);
    assert_eq!(
        o.statuses,
        vec![status],
        "{}",
        String::from_utf8_lossy(script)
    );
    assert!(o.seen.is_empty());
    assert_eq!(o.close, CloseReason::ProtocolError);
}

#[test]
fn rfc9112_2_2_bare_cr_rejected() {
    rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400);
}

#[test]
fn rfc9112_2_2_bare_lf_rejected_strict() {
    rejected(b"GET / HTTP/1.1\nHost: h\n\n", 400);
}

#[test]
fn rfc9112_2_2_leading_empty_lines_ignored() {
    let o = answer(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![200]);
}

#[test]
fn rfc9112_2_3_unsupported_major_version_505() {
    rejected(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
}

#[test]
fn rfc9112_3_request_line_single_spaces() {
    rejected(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

#[test]
fn rfc9112_3_2_host_required_for_http11() {
    rejected(b"GET / HTTP/1.1\r\n\r\n", 400);
}

#[test]
fn rfc9112_3_2_duplicate_host_rejected() {
    rejected(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn rfc9112_3_2_2_absolute_form_needs_authority() {
    rejected(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    let o = answer(b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert_eq!(o.statuses, vec![200]);
}

#[test]
fn rfc9112_5_1_no_whitespace_before_colon() {
    rejected(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
}

#[test]
fn rfc9112_5_2_obs_fold_rejected() {
    rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400);
}

#[test]
fn rfc9112_6_1_te_and_cl_rejected_and_closed() {
    rejected(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
}

#[test]
fn rfc9112_6_1_te_in_http10_rejected() {
    rejected(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn rfc9112_6_1_unknown_coding_501() {
    rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn rfc9112_6_3_rule4_chunked_not_final_400() {
    rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn rfc9112_6_3_rule5_invalid_content_length_400() {
    rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
    );
    rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
        400,
    );
}

#[test]
fn rfc9112_6_3_rule6_content_length_frames_body() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![200, 200]);
    assert_eq!(o.seen[0].body, b"hello");
    assert_eq!(o.seen[1].target, "/2");
}

#[test]
fn rfc9112_6_3_rule7_no_length_means_empty_body() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![200, 200]);
    assert!(o.seen[0].body.is_empty());
}

#[test]
fn rfc9112_7_1_chunked_body_decoded() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_eq!(o.seen[0].body, b"hello world");
    assert_eq!(o.close, CloseReason::PeerClosed);
}

#[test]
fn rfc9112_7_1_chunk_size_must_be_hex_crlf() {
    rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        400,
    );
    rejected(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", 400);
}

#[test]
fn rfc9112_7_1_1_chunk_extensions_parsed_and_ignored() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d;e\"\r\nhello\r\n0;x\r\n\r\n");
    assert_eq!(o.seen[0].body, b"hello");
}

#[test]
fn rfc9112_7_1_2_trailer_section_consumed() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nZ\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![200, 200]);
    assert_eq!(o.seen[1].target, "/n");
}

#[test]
fn rfc9112_9_3_persistent_by_default() {
    let o = answer(&b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".repeat(3));
    assert_eq!(o.statuses, vec![200, 200, 200]);
    assert_eq!(o.close, CloseReason::PeerClosed);
}

#[test]
fn rfc9112_9_3_http10_keep_alive() {
    let o = answer(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert_eq!(o.statuses, vec![200, 200]);
    assert!(o.text.contains("Connection: keep-alive\r\n"));
    assert_eq!(o.close, CloseReason::Done);
}

#[test]
fn rfc9112_9_3_2_pipelined_responses_in_order() {
    let o = answer(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    let t: Vec<&str> = o.seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(t, ["/1", "/2", "/3"]);
    assert_eq!(o.statuses, vec![200, 200, 200]);
}

#[test]
fn rfc9112_9_6_connection_close_is_last() {
    let o = answer(b"GET /1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![200]);
    assert!(o.text.contains("Connection: close\r\n"));
    assert_eq!(o.close, CloseReason::Done);
}

#[test]
fn rfc9110_8_6_identical_content_length_list_accepted() {
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello");
    assert_eq!(o.seen[0].body, b"hello");
}

#[test]
fn rfc9110_10_1_1_expect_continue_and_417() {
    let o = answer(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(o.statuses, vec![200]);
    let o = answer(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: x\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.statuses, vec![417, 200]);
}
