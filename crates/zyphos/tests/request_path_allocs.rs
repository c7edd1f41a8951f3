//! Zero heap allocations per request in steady state on the HTTP/1.1 request path the servers
//! run: the real lab site (`src/site.rs`, compiled in here) behind the real `Http11Factory`, fed
//! the bytes wrk sends, drained like a driver does (output written, events polled).
//!
//! The counting global allocator counts per thread, so the tests in this binary do not disturb
//! each other. Each connection answers at most 1,000 requests (`max_requests`); every test runs
//! 12 connections, warms each up, then counts allocations over the next ~900 requests, so more
//! than 10,000 requests are counted per test. The simulated clock advances 1 ms per request
//! (the `Date` header changes, cached files are revalidated every second).

#[allow(dead_code)]
#[path = "../src/site.rs"]
mod site;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m03_thread_per_conn::sys::{self, CountingAlloc};
use m03_thread_per_conn::{Session, SessionFactory, SessionState};
use m05_routing::{Router, RouterKind};
use m08_http11::{Http11Config, Http11Event, Http11Factory, Http11Session};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PLAINTEXT_REQ: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
const STATIC_REQ: &[u8] = b"GET /static/1k.bin HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
const CONNECTIONS: usize = 12;
const WARM_UP_REQUESTS: usize = 64;
const COUNTED_REQUESTS: usize = 896;

fn factory() -> Http11Factory<Router> {
    let router = site::router(site::SiteOptions {
        io: "epoll",
        proto: "http1.1",
        router: RouterKind::Prefix,
        root: site::default_root(),
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        access_log: false,
        stats: Arc::new(|| serde_json::json!({})),
    })
    .expect("the lab site builds");
    Http11Factory::new(Arc::new(router), Http11Config::default())
}

/// One driver turn; returns (status-200 responses seen, response bytes).
fn turn(s: &mut Http11Session<Router>, now: Instant, input: &[u8]) -> (usize, usize) {
    assert_eq!(s.handle_input(now, input), input.len());
    let n = s.pending_output().len();
    s.consume_output(n);
    let mut ok = 0;
    while let Some(e) = s.poll_event() {
        if let Http11Event::Request {
            status: 200,
            keep_alive: true,
            ..
        } = e
        {
            ok += 1;
        }
    }
    assert_eq!(s.state(), SessionState::Open);
    (ok, n)
}

/// Runs the scenario; returns (requests counted, allocations during them, bytes answered).
fn steady_state(input: &[u8], per_turn: usize) -> (usize, u64, usize) {
    let f = factory();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut now = Instant::now();
    let step = Duration::from_millis(per_turn as u64);
    let (mut counted, mut allocs, mut bytes) = (0, 0, 0);
    for _ in 0..CONNECTIONS {
        let mut s = f.new_session(peer, now);
        for _ in 0..WARM_UP_REQUESTS / per_turn {
            now += step;
            assert_eq!(turn(&mut s, now, input).0, per_turn);
        }
        let before = sys::thread_allocations();
        for _ in 0..COUNTED_REQUESTS / per_turn {
            now += step;
            let (ok, n) = turn(&mut s, now, input);
            counted += ok;
            bytes += n;
        }
        allocs += sys::thread_allocations() - before;
    }
    assert!(sys::is_installed());
    (counted, allocs, bytes)
}

#[test]
fn test_plaintext_keep_alive_steady_state_zero_allocations() {
    let (counted, allocs, bytes) = steady_state(PLAINTEXT_REQ, 1);
    assert_eq!(counted, CONNECTIONS * COUNTED_REQUESTS);
    assert!(bytes > counted * 13);
    assert_eq!(allocs, 0, "{allocs} allocations over {counted} requests");
}

#[test]
fn test_plaintext_pipelined_16_steady_state_zero_allocations() {
    let input = PLAINTEXT_REQ.repeat(16);
    let (counted, allocs, bytes) = steady_state(&input, 16);
    assert_eq!(counted, CONNECTIONS * COUNTED_REQUESTS);
    assert!(bytes > counted * 13);
    assert_eq!(allocs, 0, "{allocs} allocations over {counted} requests");
}

#[test]
fn test_static_1k_steady_state_zero_allocations() {
    let (counted, allocs, bytes) = steady_state(STATIC_REQ, 1);
    assert_eq!(counted, CONNECTIONS * COUNTED_REQUESTS);
    assert!(bytes > counted * 1024);
    assert_eq!(allocs, 0, "{allocs} allocations over {counted} requests");
}

/// The control: the counter sees this path's allocations when there are some (`POST /echo`
/// copies the body into a new `Vec`), so the zeros above are not a counter that never moves.
#[test]
fn test_echo_allocates_per_request_control() {
    let input = b"POST /echo HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 5\r\n\r\nhello";
    let (counted, allocs, _) = steady_state(input, 1);
    assert_eq!(counted, CONNECTIONS * COUNTED_REQUESTS);
    assert!(
        allocs >= counted as u64,
        "{allocs} allocations over {counted} echo requests"
    );
}

/// A pipelined batch is answered into one output buffer: after one `handle_input` of 16
/// requests, `pending_output` holds all 16 responses, in order, for one write.
#[test]
fn test_pipelined_16_answered_in_one_output_buffer() {
    let f = factory();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let now = Instant::now();
    let mut one = f.new_session(peer, now);
    assert_eq!(one.handle_input(now, PLAINTEXT_REQ), PLAINTEXT_REQ.len());
    let single = one.pending_output().to_vec();
    let mut s = f.new_session(peer, now);
    let input = PLAINTEXT_REQ.repeat(16);
    assert_eq!(s.handle_input(now, &input), input.len());
    let out = s.pending_output();
    assert_eq!(s.depth(), 16);
    // Same date, and `Keep-Alive: max=999…984` keeps three digits: 16 equal lengths.
    assert_eq!(out.len(), 16 * single.len());
    let starts = out
        .windows(b"HTTP/1.1 200 OK\r\n".len())
        .filter(|w| *w == b"HTTP/1.1 200 OK\r\n")
        .count();
    assert_eq!(starts, 16);
    assert!(out.ends_with(b"Hello, World!"));
}
