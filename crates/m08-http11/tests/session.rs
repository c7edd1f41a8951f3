//! The HTTP/1.1 core under m03's PipeDriver: keep-alive, pipelining, chunked, timeouts, limits.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use m03_thread_per_conn::testing::{Faults, PipeDriver};
use m03_thread_per_conn::{CloseReason, Session, SessionState};
use m04_http10::{ConnInfo, Request, ResponseWriter, Service};
use m08_http11::conformance::{Recorder, statuses};
use m08_http11::{
    ChunkLimits, Http11Config, Http11Event, Http11Session, Http11Stats, RejectReason, TimeoutKind,
};

fn session_with<S: Service>(service: S, config: Http11Config) -> Http11Session<S> {
    let now = Instant::now();
    Http11Session::new(
        Arc::new(service),
        config,
        std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        now,
        (now, SystemTime::UNIX_EPOCH),
    )
}

fn recorder() -> (Recorder, Http11Session<Recorder>) {
    let r = Recorder::default();
    let s = session_with(r.clone(), Http11Config::default());
    (r, s)
}

fn run(
    session: &mut Http11Session<Recorder>,
    script: &[u8],
    faults: Faults,
) -> (Vec<u8>, CloseReason, Vec<Http11Event>) {
    let out = PipeDriver::new(faults).run(session, script);
    (out.output, out.close, out.events)
}

/// Answers `/chunked` with a chunked body, `/big` with 100 KB, else echoes the path.
#[derive(Debug)]
struct Mixed;

impl Service for Mixed {
    fn call(&self, r: &Request<'_>, _c: &ConnInfo, w: &mut ResponseWriter<'_>) {
        match r.path() {
            "/chunked" => w.send_chunked(200, Some("text/plain"), &[], &[b"hello ", b"", b"world"]),
            "/big" => w.send(200, None, &[], &vec![b'x'; 100_000]),
            p => {
                let body = format!("{p}|{}", r.body().len());
                w.send(
                    200,
                    Some("text/plain"),
                    &[("Connection", b"close")],
                    body.as_bytes(),
                )
            }
        }
    }
}

const GET1: &[u8] = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";

#[test]
fn test_http11_keep_alive_is_default() {
    let (r, mut s) = recorder();
    let script = [GET1, GET1, GET1].concat();
    let (out, close, _) = run(&mut s, &script, Faults::default());
    assert_eq!(statuses(&out), vec![200, 200, 200]);
    assert_eq!(r.seen.lock().unwrap().len(), 3);
    assert_eq!(
        close,
        CloseReason::PeerClosed,
        "the server never closed first"
    );
    assert!(!String::from_utf8_lossy(&out).contains("Connection: close"));
    assert!(String::from_utf8_lossy(&out).contains("Keep-Alive: timeout=5, max=999"));
}

#[test]
fn test_connection_close_ends_after_response() {
    let (r, mut s) = recorder();
    let script = [
        &b"GET /1 HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n"[..],
        GET1,
    ]
    .concat();
    let (out, close, _) = run(&mut s, &script, Faults::default());
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(r.seen.lock().unwrap().len(), 1);
    assert_eq!(close, CloseReason::Done);
    assert!(String::from_utf8_lossy(&out).contains("Connection: close\r\n"));
}

#[test]
fn test_http10_closes_unless_keep_alive_requested() {
    let (_, mut s) = recorder();
    let (out, close, _) = run(
        &mut s,
        b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        Faults::default(),
    );
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(close, CloseReason::Done);
    let (_, mut s) = recorder();
    let ka = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let (out, close, _) = run(
        &mut s,
        &[&ka[..], ka, b"GET / HTTP/1.0\r\n\r\n"].concat(),
        Faults::default(),
    );
    assert_eq!(statuses(&out), vec![200, 200, 200]);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("Connection: keep-alive\r\n").count(), 2);
    assert_eq!(close, CloseReason::Done, "the third (no keep-alive) closes");
}

#[test]
fn test_keep_alive_param_from_client_shortens_idle_timeout() {
    let (_, mut s) = recorder();
    let now = Instant::now();
    s.handle_input(
        now,
        b"GET / HTTP/1.1\r\nHost: h\r\nKeep-Alive: timeout=2\r\n\r\n",
    );
    let n = s.pending_output().len();
    assert!(String::from_utf8_lossy(s.pending_output()).contains("Keep-Alive: timeout=2, max=999"));
    s.consume_output(n);
    let deadline = s.poll_timeout().expect("open");
    assert!(deadline <= now + Duration::from_secs(2));
}

#[test]
fn test_max_requests_per_connection_closes_last() {
    let config = Http11Config {
        max_requests: 3,
        ..Http11Config::default()
    };
    let r = Recorder::default();
    let mut s = session_with(r.clone(), config);
    let script = [GET1, GET1, GET1, GET1].concat();
    let out = PipeDriver::new(Faults::default()).run(&mut s, &script);
    assert_eq!(statuses(&out.output), vec![200, 200, 200]);
    assert_eq!(out.close, CloseReason::Done);
}

#[test]
fn test_pipelined_requests_answered_in_order_under_any_split() {
    let mut script = Vec::new();
    for i in 0..30 {
        if i % 3 == 0 {
            script.extend_from_slice(
                format!("POST /p{i} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
                    .as_bytes(),
            );
        } else if i % 3 == 1 {
            script.extend_from_slice(format!("PUT /p{i} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n").as_bytes());
        } else {
            script.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        }
    }
    let mut reference: Option<Vec<u8>> = None;
    for (seed, max_read, max_write) in [
        (1, usize::MAX, usize::MAX),
        (2, 1, 7),
        (3, 13, 1),
        (4, 100, 3),
    ] {
        let (r, mut s) = recorder();
        let faults = Faults {
            max_read,
            max_write,
            seed,
            ..Faults::default()
        };
        let (out, close, _) = run(&mut s, &script, faults);
        assert_eq!(close, CloseReason::PeerClosed);
        let seen = r.seen.lock().unwrap().clone();
        let targets: Vec<String> = seen.iter().map(|x| x.target.clone()).collect();
        let want: Vec<String> = (0..30).map(|i| format!("/p{i}")).collect();
        assert_eq!(targets, want, "seed {seed}");
        for (i, x) in seen.iter().enumerate() {
            let body: &[u8] = match i % 3 {
                0 => b"abc",
                1 => b"xy",
                _ => b"",
            };
            assert_eq!(x.body, body);
        }
        // Virtual time moves differently per split, so the Date values may differ.
        let out = m08_http11::lab::normalize_dates(&out);
        match &reference {
            None => reference = Some(out),
            Some(r) => assert!(&out == r, "output differs for seed {seed}"),
        }
    }
}

#[test]
fn test_pipeline_depth_limit_stops_dispatch_until_output_drains() {
    let config = Http11Config {
        max_pipeline_depth: 4,
        ..Http11Config::default()
    };
    let r = Recorder::default();
    let mut s = session_with(r.clone(), config);
    let now = Instant::now();
    let script = GET1.repeat(10);
    assert_eq!(
        s.handle_input(now, &script),
        script.len(),
        "bytes are taken into the inbox"
    );
    assert_eq!(
        r.seen.lock().unwrap().len(),
        4,
        "only 4 dispatched while none is written"
    );
    assert_eq!(s.depth(), 4);
    // Write one response: one more request is dispatched.
    let first_len = s.pending_output().len() / 4;
    s.consume_output(first_len);
    assert_eq!(r.seen.lock().unwrap().len(), 5);
    // Drain everything: the rest follow, in order.
    while !s.pending_output().is_empty() {
        let n = s.pending_output().len();
        s.consume_output(n);
    }
    assert_eq!(r.seen.lock().unwrap().len(), 10);
    assert!(s.conn_stats().max_depth <= 4);
    assert_eq!(s.conn_stats().max_depth, 4);
}

#[test]
fn test_pipeline_desync_error_midstream_answers_earlier_then_closes() {
    // The third request is malformed: the first two are answered, then 400 and close; the
    // fourth (after the bad one) is never dispatched.
    let (r, mut s) = recorder();
    let script = [
        GET1,
        GET1,
        b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        GET1,
    ]
    .concat();
    let (out, close, _) = run(
        &mut s,
        &script,
        Faults {
            max_read: 5,
            ..Faults::default()
        },
    );
    assert_eq!(statuses(&out), vec![200, 200, 400]);
    assert_eq!(r.seen.lock().unwrap().len(), 2);
    assert_eq!(close, CloseReason::ProtocolError);
}

#[test]
fn test_chunked_request_body_decoded() {
    let (r, mut s) = recorder();
    let script = b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer-X: 1\r\n\r\n";
    let (out, _, events) = run(
        &mut s,
        script,
        Faults {
            max_read: 3,
            ..Faults::default()
        },
    );
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(r.seen.lock().unwrap()[0].body, b"Wikipedia");
    assert!(events.iter().any(|e| matches!(
        e,
        Http11Event::Request {
            chunked_body: true,
            body_len: 9,
            ..
        }
    )));
}

#[test]
fn test_incomplete_chunk_at_eof_is_400_and_nothing_dispatched() {
    let (r, mut s) = recorder();
    let (out, close, events) = run(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        Faults::default(),
    );
    assert_eq!(statuses(&out), vec![400]);
    assert!(r.seen.lock().unwrap().is_empty());
    assert_eq!(close, CloseReason::ProtocolError);
    assert!(events.iter().any(|e| matches!(
        e,
        Http11Event::Rejected {
            reason: RejectReason::Truncated,
            ..
        }
    )));
}

#[test]
fn test_chunk_limits_map_to_413() {
    let config = Http11Config {
        chunk: ChunkLimits {
            max_chunks: 3,
            ..ChunkLimits::default()
        },
        ..Http11Config::default()
    };
    let r = Recorder::default();
    let mut s = session_with(r.clone(), config);
    let script = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n";
    let out = PipeDriver::new(Faults::default()).run(&mut s, script);
    assert_eq!(statuses(&out.output), vec![413]);
    assert!(r.seen.lock().unwrap().is_empty());
}

#[test]
fn test_chunked_response_generated_for_http11_and_not_for_http10() {
    let mut s = session_with(Mixed, Http11Config::default());
    let out =
        PipeDriver::new(Faults::default()).run(&mut s, b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n");
    let text = String::from_utf8_lossy(&out.output);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Transfer-Encoding: chunked\r\n"));
    assert!(!text.contains("Content-Length"));
    assert!(
        text.ends_with("\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
        "{text}"
    );
    let mut s = session_with(Mixed, Http11Config::default());
    let out = PipeDriver::new(Faults::default()).run(&mut s, b"GET /chunked HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&out.output);
    assert!(
        text.contains("Content-Length: 11\r\n") && text.ends_with("hello world"),
        "{text}"
    );
}

#[test]
fn test_handler_connection_header_refused_session_owns_persistence() {
    let mut s = session_with(Mixed, Http11Config::default());
    let out = PipeDriver::new(Faults::default()).run(&mut s, &[GET1, GET1].concat());
    assert_eq!(statuses(&out.output), vec![200, 200]);
    assert!(!String::from_utf8_lossy(&out.output).contains("Connection: close"));
}

#[test]
fn test_expect_100_continue_sent_before_body() {
    let (r, mut s) = recorder();
    let now = Instant::now();
    let head = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    s.handle_input(now, head);
    assert_eq!(s.pending_output(), b"HTTP/1.1 100 Continue\r\n\r\n");
    s.consume_output(25);
    s.handle_input(now, b"hello");
    assert_eq!(statuses(s.pending_output()), vec![200]);
    assert_eq!(r.seen.lock().unwrap()[0].body, b"hello");
    assert_eq!(s.conn_stats().continues, 1);
}

#[test]
fn test_unknown_expectation_417_keeps_connection() {
    let (r, mut s) = recorder();
    let script = [
        &b"POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi"[..],
        GET1,
    ]
    .concat();
    let (out, close, _) = run(&mut s, &script, Faults::default());
    assert_eq!(statuses(&out), vec![417, 200]);
    assert_eq!(r.seen.lock().unwrap().len(), 1);
    assert_eq!(close, CloseReason::PeerClosed);
}

#[test]
fn test_missing_host_400_for_http11_only() {
    let (_, mut s) = recorder();
    let (out, close, _) = run(&mut s, b"GET / HTTP/1.1\r\n\r\n", Faults::default());
    assert_eq!(statuses(&out), vec![400]);
    assert_eq!(close, CloseReason::ProtocolError);
    let (_, mut s) = recorder();
    let (out, _, _) = run(&mut s, b"GET / HTTP/1.0\r\n\r\n", Faults::default());
    assert_eq!(statuses(&out), vec![200]);
}

#[test]
fn test_smuggling_cl_te_rejected_and_closed() {
    let (r, mut s) = recorder();
    let (out, close, _) = run(&mut s, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n", Faults::default());
    assert_eq!(statuses(&out), vec![400]);
    assert!(r.seen.lock().unwrap().is_empty());
    assert_eq!(close, CloseReason::ProtocolError);
}

#[test]
fn test_te_not_final_chunked_400_unknown_coding_501() {
    for (te, status) in [
        ("chunked, gzip", 400),
        ("gzip, chunked", 501),
        ("identity", 400),
        ("chunked, chunked", 400),
        ("\"chunked\"", 400),
    ] {
        let (_, mut s) = recorder();
        let script =
            format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        let (out, close, _) = run(&mut s, script.as_bytes(), Faults::default());
        assert_eq!(statuses(&out), vec![status], "{te}");
        assert_eq!(close, CloseReason::ProtocolError, "{te}");
    }
}

#[test]
fn test_content_length_lists_agreeing_accepted_disagreeing_400() {
    let (r, mut s) = recorder();
    let (out, _, _) = run(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
        Faults::default(),
    );
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(r.seen.lock().unwrap()[0].body, b"abc");
    let (_, mut s) = recorder();
    let (out, _, _) = run(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd",
        Faults::default(),
    );
    assert_eq!(statuses(&out), vec![400]);
}

#[test]
fn test_idle_timeout_closes_silently() {
    let (_, mut s) = recorder();
    let now = Instant::now();
    s.handle_input(now, GET1);
    let n = s.pending_output().len();
    s.consume_output(n);
    let d = s.poll_timeout().expect("idle deadline");
    assert_eq!(d, now + Http11Config::default().idle_timeout);
    s.handle_timeout(d - Duration::from_millis(1));
    assert_eq!(s.state(), SessionState::Open);
    s.handle_timeout(d);
    assert_eq!(s.state(), SessionState::Closed(CloseReason::Timeout));
    assert!(s.pending_output().is_empty());
    assert!(matches!(s.poll_event(), Some(Http11Event::Request { .. })));
    assert_eq!(
        s.poll_event(),
        Some(Http11Event::Timeout {
            kind: TimeoutKind::Idle,
            answered: false
        })
    );
}

#[test]
fn test_header_timeout_408() {
    let (_, mut s) = recorder();
    let now = Instant::now();
    s.handle_input(now, b"GET / HTTP/1.1\r\nHo");
    let d = s.poll_timeout().expect("header deadline");
    assert_eq!(d, now + Http11Config::default().header_timeout);
    s.handle_timeout(d);
    assert_eq!(statuses(s.pending_output()), vec![408]);
    assert_eq!(s.state(), SessionState::Closing(CloseReason::Timeout));
}

#[test]
fn test_request_timeout_408_while_body_trickles() {
    let (_, mut s) = recorder();
    let now = Instant::now();
    s.handle_input(
        now,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab",
    );
    let d = s.poll_timeout().expect("request deadline");
    assert_eq!(d, now + Http11Config::default().request_timeout);
    s.handle_input(d - Duration::from_secs(1), b"c");
    assert_eq!(
        s.poll_timeout(),
        Some(d),
        "trickling bytes do not extend the deadline"
    );
    s.handle_timeout(d);
    assert_eq!(statuses(s.pending_output()), vec![408]);
}

#[test]
fn test_per_connection_stats_and_registry() {
    let registry = Arc::new(Http11Stats::default());
    let now = Instant::now();
    {
        let r = Recorder::default();
        let mut s = Http11Session::new(
            Arc::new(r),
            Http11Config::default(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            now,
            (now, SystemTime::UNIX_EPOCH),
        )
        .with_registry(Arc::clone(&registry));
        s.handle_input(now, &[GET1, GET1].concat());
        let n = s.pending_output().len();
        s.consume_output(n);
        let last = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        s.handle_input(now + Duration::from_secs(2), last);
        let n = s.pending_output().len();
        s.consume_output(n);
        let st = s.conn_stats();
        assert_eq!(st.requests, 3);
        assert_eq!(st.bytes_in, (GET1.len() * 2 + last.len()) as u64);
        assert!(st.bytes_out > n as u64);
        assert_eq!(st.lifetime, Duration::from_secs(2));
        assert_eq!(st.close, Some(CloseReason::Done));
        assert_eq!(registry.live(), 1);
    }
    assert_eq!(registry.live(), 0, "a dropped session is counted closed");
    assert_eq!(
        registry
            .sum()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(registry.close_rows(), vec![("done", 1)]);
    assert!((registry.reuse_percent() - 200.0 / 3.0).abs() < 1e-9);
}

#[test]
fn test_shutdown_idle_closes_partial_gets_503() {
    let (_, mut s) = recorder();
    let now = Instant::now();
    s.begin_shutdown(now);
    assert_eq!(s.state(), SessionState::Closed(CloseReason::Shutdown));
    let (_, mut s) = recorder();
    s.handle_input(now, b"GET / HT");
    s.begin_shutdown(now);
    assert_eq!(statuses(s.pending_output()), vec![503]);
}

#[test]
fn test_large_response_backpressure_bounded_output() {
    let config = Http11Config {
        max_pending_output: 150_000,
        ..Http11Config::default()
    };
    let mut s = session_with(Mixed, config);
    let now = Instant::now();
    let script = b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n".repeat(5);
    s.handle_input(now, &script);
    assert!(
        s.pending_output().len() < 250_000,
        "at most two big responses queued"
    );
    let mut total = 0;
    while !s.pending_output().is_empty() {
        let n = s.pending_output().len().min(30_000);
        total += n;
        s.consume_output(n);
    }
    assert!(total > 500_000, "all five answered: {total}");
}

/// A request line that ends right after its target is HTTP/0.9 (505) only when it ends in
/// CRLF; a bare LF or a bare CR is a line-ending error (400). The verdict must not depend on
/// how the bytes were cut: the fuzz target `http11_session` found `GET t\r<junk>…\n` answered
/// 400 when read whole (the first LF in the buffer was bare) and 505 when read in pieces that
/// ended at the CR.
#[test]
fn test_request_line_ending_verdict_same_however_cut() {
    let cases: [(&[u8], u16); 5] = [
        (b"GET /x\r\n\r\n", 505),
        (b"GET /x\nHost: h\n\n", 400),
        (b"GET /x\rY\r\nHost: h\r\n\r\n", 400),
        (b"GET http:;/a\r\xe0\xe0\xe0\n\r\nHTTP/1.1\r\n\r\n", 400),
        (b"GET /x\r", 400),
    ];
    for (script, status) in cases {
        for max_read in [usize::MAX, 1, 6, 7, 8] {
            let (_, mut s) = recorder();
            let faults = Faults {
                max_read,
                ..Faults::default()
            };
            let (out, close, _) = run(&mut s, script, faults);
            assert_eq!(
                statuses(&out),
                vec![status],
                "{:?} read {max_read} bytes at a time",
                String::from_utf8_lossy(script)
            );
            assert_eq!(close, CloseReason::ProtocolError);
        }
    }
}

/// Feeds `pieces` one `handle_input` each, never the peer's FIN (a real client that sent the
/// preface, or a bad request, waits for the answer with its side open).
fn feed_without_eof<S: Service>(s: &mut Http11Session<S>, pieces: &[&[u8]]) {
    let now = Instant::now();
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() && s.state() == SessionState::Open {
            let n = s.handle_input(now, rest);
            assert!(n > 0, "input refused while open");
            rest = &rest[n..];
        }
    }
}

/// Cuts `script` at `cuts` (offsets, ascending).
fn pieces<'a>(script: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&script.len())) {
        v.push(&script[at..c]);
        at = c;
    }
    v
}

/// The HTTP/2 preface on an HTTP/1.1 port: 505 and close as soon as `PRI * HTTP/2.0` is in,
/// however the bytes are cut, without waiting for the rest of the preface, for the FIN or for
/// the header timeout (a prior-knowledge client sends the preface and waits for SETTINGS).
#[test]
fn test_h2_preface_answered_505_at_once_however_cut() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let line_end = b"PRI * HTTP/2.0\r\n\r\n".len();
    let mut deliveries: Vec<Vec<&[u8]>> = vec![
        vec![PREFACE],
        // The request line and its blank line first, `SM\r\n\r\n` never (or later).
        vec![&PREFACE[..line_end]],
        PREFACE.chunks(1).collect(),
    ];
    for cut in 1..PREFACE.len() {
        deliveries.push(pieces(PREFACE, &[cut]));
    }
    for delivery in deliveries {
        let (r, mut s) = recorder();
        feed_without_eof(&mut s, &delivery);
        assert_eq!(
            statuses(s.pending_output()),
            vec![505],
            "delivered as {delivery:?}"
        );
        let out = String::from_utf8_lossy(s.pending_output()).into_owned();
        assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
        assert_eq!(
            s.state(),
            SessionState::Closing(CloseReason::ProtocolError),
            "delivered as {delivery:?}"
        );
        assert!(s.poll_timeout().is_none(), "no deadline left to wait for");
        assert!(r.seen.lock().unwrap().is_empty());
        let rejected: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                Http11Event::Rejected { reason, status } => Some((reason, status)),
                _ => None,
            })
            .collect();
        assert_eq!(rejected, vec![(RejectReason::Http2Preface, 505)]);
    }
    // Until `PRI * HTTP/2.0` is complete it may still be the preface: no verdict yet.
    for prefix in 1..b"PRI * HTTP/2.0".len() {
        let (_, mut s) = recorder();
        feed_without_eof(&mut s, &[&PREFACE[..prefix]]);
        assert!(s.pending_output().is_empty(), "{prefix} bytes");
        assert_eq!(s.state(), SessionState::Open, "{prefix} bytes");
    }
}

/// Answers 400 to a target that is not a path (what the zyphos site's router does with
/// `h:80`), else `ok`.
#[derive(Debug)]
struct PathsOnly;

impl Service for PathsOnly {
    fn call(&self, r: &Request<'_>, _c: &ConnInfo, w: &mut ResponseWriter<'_>) {
        if r.target().starts_with('/') {
            w.send(200, Some("text/plain"), &[], b"ok");
        } else {
            w.send(400, Some("text/plain"), &[], b"400 Bad Request\n");
        }
    }
}

/// After a 400 for a target the service refuses (`GET h:80`, authority-like), the session
/// sends `Connection: close` and closes, like nginx: the pipelined request behind it is not
/// answered. 404 (a well-formed request for nothing) keeps the connection.
#[test]
fn test_service_400_closes_and_skips_pipelined_request() {
    let script: &[u8] =
        b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    for delivery in [
        vec![script],
        script.chunks(1).collect(),
        script.chunks(7).collect(),
    ] {
        let mut s = session_with(PathsOnly, Http11Config::default());
        feed_without_eof(&mut s, &delivery);
        let out = String::from_utf8_lossy(s.pending_output()).into_owned();
        assert_eq!(statuses(s.pending_output()), vec![400], "{out}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
        assert!(!out.contains("Keep-Alive"), "{out}");
        assert_eq!(s.state(), SessionState::Closing(CloseReason::ProtocolError));
        let keep: Vec<bool> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                Http11Event::Request {
                    status, keep_alive, ..
                } => Some((status, keep_alive)),
                _ => None,
            })
            .map(|(status, keep)| {
                assert_eq!(status, 400);
                keep
            })
            .collect();
        assert_eq!(keep, vec![false], "one request, reported as closing");
    }
    // The same service's 200 keeps the connection open (the close is the 400's).
    let mut s = session_with(PathsOnly, Http11Config::default());
    feed_without_eof(&mut s, &[b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"]);
    assert_eq!(statuses(s.pending_output()), vec![200]);
    assert_eq!(s.state(), SessionState::Open);
}

/// Every refusal of a malformed or oversized head is answered with `Connection: close` (no
/// `Keep-Alive`) and closes; a valid request pipelined behind it is never answered.
#[test]
fn test_every_head_refusal_closes_and_skips_pipelined_request() {
    let mut config = Http11Config::default();
    config.limits.max_request_line = 64;
    config.limits.max_headers = 4;
    config.limits.max_body = 16;
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(80));
    let many_headers = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let cases: [(&[u8], u16); 8] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400), // no Host
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99\r\n\r\n",
            413,
        ),
        (long_target.as_bytes(), 414),
        (many_headers.as_bytes(), 431),
        (b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
        (b"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ];
    for (bad, status) in cases {
        let (r, mut s) = {
            let r = Recorder::default();
            let s = session_with(r.clone(), config);
            (r, s)
        };
        let script = [bad, GET1].concat();
        feed_without_eof(&mut s, &[&script]);
        let out = String::from_utf8_lossy(s.pending_output()).into_owned();
        let what = String::from_utf8_lossy(bad);
        assert_eq!(statuses(s.pending_output()), vec![status], "{what}: {out}");
        assert!(out.contains("\r\nConnection: close\r\n"), "{what}: {out}");
        assert!(!out.contains("Keep-Alive"), "{what}: {out}");
        assert_eq!(
            s.state(),
            SessionState::Closing(CloseReason::ProtocolError),
            "{what}"
        );
        assert!(r.seen.lock().unwrap().is_empty(), "{what}: dispatched");
    }
}
