//! The HTTP/1.0 core under m03's PipeDriver: short reads, short writes, timeouts, many seeds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use m03_thread_per_conn::testing::{Faults, PipeDriver};
use m03_thread_per_conn::{CloseReason, Session, SessionFactory};
use m04_http10::{
    ConnInfo, Http10Event, Http10Factory, Http10Session, Limits, Mode, Request, ResponseWriter,
    Service,
};

/// Echoes method, target, a header and the body.
struct Echo;

impl Service for Echo {
    fn call(&self, req: &Request<'_>, _ctx: &ConnInfo, resp: &mut ResponseWriter<'_>) {
        let mut body = format!(
            "{} {} {}\n",
            req.method(),
            req.target(),
            String::from_utf8_lossy(req.header("x-fold").unwrap_or(b"-"))
        )
        .into_bytes();
        body.extend_from_slice(req.body());
        resp.send(200, Some("text/plain"), &[], &body);
    }
}

/// Sends nothing (the session answers 500).
struct Silent;

impl Service for Silent {
    fn call(&self, _: &Request<'_>, _: &ConnInfo, _: &mut ResponseWriter<'_>) {}
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

fn factory<S: Service>(s: S, limits: Limits) -> Http10Factory<S> {
    Http10Factory::new(Arc::new(s), limits).with_anchor(
        Instant::now(),
        UNIX_EPOCH + Duration::from_secs(784_111_777),
    )
}

fn session<S: Service>(f: &Http10Factory<S>) -> Http10Session<S> {
    f.new_session(peer(), Instant::now())
}

fn status_of(out: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(out);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body_of(out: &[u8]) -> &[u8] {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end")
        + 4;
    &out[end..]
}

const POST: &[u8] = b"POST /up?x=1 HTTP/1.0\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";

#[test]
fn test_open_request_answered_then_closing_done_under_short_reads_and_writes() {
    let f = factory(Echo, Limits::default());
    for seed in 1..200 {
        let faults = Faults {
            max_read: 1 + (seed as usize % 9),
            max_write: 1 + (seed as usize % 13),
            seed,
            ..Faults::default()
        };
        let mut s = session(&f);
        let out = PipeDriver::new(faults).run(&mut s, POST);
        assert_eq!(out.close, CloseReason::Done, "seed {seed}");
        assert_eq!(status_of(&out.output), 200, "seed {seed}");
        assert_eq!(
            body_of(&out.output),
            b"POST /up?x=1 -\nhello world",
            "seed {seed}"
        );
        assert!(
            matches!(
                out.events.as_slice(),
                [Http10Event::Request {
                    status: 200,
                    body_len: 11,
                    ..
                }]
            ),
            "seed {seed}: {:?}",
            out.events
        );
        assert_eq!(out.consumed, POST.len());
    }
}

#[test]
fn test_open_head_request_gets_no_body() {
    let f = factory(Echo, Limits::default());
    let mut s = session(&f);
    let out = PipeDriver::new(Faults::default()).run(&mut s, b"HEAD / HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&out.output);
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"));
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert!(text.contains("Content-Length: 9\r\n"), "{text}"); // "HEAD / -\n"
}

#[test]
fn test_open_parse_errors_answered_with_mapped_status_then_protocol_error() {
    let limits = Limits {
        max_request_line: 100,
        max_headers: 5,
        max_header_line: 200,
        max_head: 2000,
        max_body: 100,
        ..Limits::default()
    };
    let long_line = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(200));
    let bomb = format!("GET / HTTP/1.0\r\n{}\r\n", "X: y\r\n".repeat(10));
    let big_value = format!("GET / HTTP/1.0\r\nX: {}\r\n\r\n", "v".repeat(300));
    let cases: Vec<(&[u8], u16)> = vec![
        (b"GET / HTTP/1.0\r\nBad Header: x\r\n\r\n", 400),
        (b"BREW / HTTP/1.0\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (long_line.as_bytes(), 414),
        (bomb.as_bytes(), 431),
        (big_value.as_bytes(), 431),
        (b"POST / HTTP/1.0\r\nContent-Length: 101\r\n\r\n", 413),
        (b"POST / HTTP/1.0\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\n\r\n", 411),
        (b"GET / HTTP/1.0\nHost: x\n\n", 400),
    ];
    let f = factory(Echo, limits);
    for (input, want) in cases {
        for seed in 1..30 {
            let faults = Faults {
                max_read: 1 + seed as usize % 17,
                max_write: 1 + seed as usize % 5,
                seed,
                ..Faults::default()
            };
            let mut s = session(&f);
            let out = PipeDriver::new(faults).run(&mut s, input);
            assert_eq!(
                status_of(&out.output),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(out.close, CloseReason::ProtocolError);
            assert!(
                matches!(out.events.as_slice(), [Http10Event::Rejected { status, .. }] if *status == want)
            );
        }
    }
}

#[test]
fn test_open_truncated_request_at_eof_is_400() {
    let f = factory(Echo, Limits::default());
    let mut s = session(&f);
    let out = PipeDriver::new(Faults::default()).run(&mut s, b"GET / HTTP/1.0\r\nHost:");
    assert_eq!(status_of(&out.output), 400);
    assert_eq!(out.close, CloseReason::ProtocolError);
}

#[test]
fn test_open_eof_before_any_byte_closes_quietly() {
    let f = factory(Echo, Limits::default());
    let mut s = session(&f);
    let out = PipeDriver::new(Faults::default()).run(&mut s, b"");
    assert!(out.output.is_empty());
    assert_eq!(out.close, CloseReason::PeerClosed);
}

#[test]
fn test_open_header_timeout_sends_408_when_bytes_arrived() {
    let limits = Limits {
        header_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let f = factory(Echo, limits);
    let mut s = session(&f);
    let faults = Faults {
        eof_after_rounds: None,
        tick: Duration::from_millis(100),
        ..Faults::default()
    };
    let out = PipeDriver::new(faults).run(&mut s, b"GET / HTTP/1.0\r\nHo");
    assert_eq!(status_of(&out.output), 408);
    assert_eq!(out.close, CloseReason::Timeout);
    assert!(
        out.events
            .contains(&Http10Event::Timeout { answered: true })
    );
}

#[test]
fn test_open_header_timeout_silent_peer_closed_without_response() {
    let f = factory(Echo, Limits::default());
    let mut s = session(&f);
    let faults = Faults {
        eof_after_rounds: None,
        tick: Duration::from_secs(1),
        ..Faults::default()
    };
    let out = PipeDriver::new(faults).run(&mut s, b"");
    assert!(out.output.is_empty());
    assert_eq!(out.close, CloseReason::Timeout);
}

#[test]
fn test_open_service_without_response_gets_500() {
    let f = factory(Silent, Limits::default());
    let mut s = session(&f);
    let out = PipeDriver::new(Faults::default()).run(&mut s, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&out.output), 500);
    assert_eq!(out.close, CloseReason::Done);
}

#[test]
fn test_open_rfc1945_mode_unfolds_before_the_service() {
    let f = factory(Echo, Limits::default()).with_mode(Mode::Rfc1945);
    let mut s = session(&f);
    let out = PipeDriver::new(Faults {
        max_read: 3,
        ..Faults::default()
    })
    .run(&mut s, b"GET / HTTP/1.0\r\nX-Fold: a\r\n b\r\n\r\n");
    assert_eq!(status_of(&out.output), 200);
    assert_eq!(body_of(&out.output), b"GET / a   b\n");
}

#[test]
fn test_open_shutdown_midrequest_503_idle_closed() {
    let f = factory(Echo, Limits::default());
    let now = Instant::now();
    let mut s = f.new_session(peer(), now);
    assert_eq!(s.handle_input(now, b"GET / HT"), 0);
    s.begin_shutdown(now);
    assert_eq!(status_of(s.pending_output()), 503);
    let mut idle = f.new_session(peer(), now);
    idle.begin_shutdown(now);
    assert!(idle.pending_output().is_empty());
    assert!(matches!(
        idle.state(),
        m03_thread_per_conn::SessionState::Closed(CloseReason::Shutdown)
    ));
}

#[test]
fn test_factory_refusal_is_a_complete_503() {
    let f = factory(Echo, Limits::default());
    let r = f.refusal();
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut resp = httparse::Response::new(&mut headers);
    let n = resp.parse(r).unwrap().unwrap();
    assert_eq!(resp.code, Some(503));
    let cl: usize = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(r.len() - n, cl);
    assert_eq!(f.protocol(), "http1.0");
}

#[test]
fn test_open_date_follows_virtual_time() {
    let f = factory(Echo, Limits::default());
    let start = Instant::now();
    let mut s = f.new_session(peer(), start);
    let _ = SystemTime::now();
    s.handle_input(start + Duration::from_secs(61), b"GET / HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(s.pending_output()).to_string();
    assert!(
        text.contains("Date: Sun, 06 Nov 1994 08:50:38 GMT\r\n"),
        "{text}"
    );
}
