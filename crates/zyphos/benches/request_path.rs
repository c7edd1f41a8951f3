//! Per-request CPU cost of the sans-IO HTTP/1.1 path the servers run: the real lab site
//! (`crates/zyphos/src/site.rs`, compiled in here) behind the real `Http11Factory`, as
//! `zyphos serve --proto http1.1` builds them, with no socket and no driver.
//!
//! One "request" is what a driver does for it: `handle_input` with the bytes wrk sends,
//! `pending_output`, `consume_output` of everything, and draining `poll_event`.
//!
//! - `plaintext_keepalive`: one `GET /plaintext` per `handle_input`.
//! - `plaintext_pipelined16`: 16 requests in one `handle_input`, answered into one output buffer
//!   (reported per request).
//! - `static_1k`: one `GET /static/1k.bin` per `handle_input`.
//!
//! The server answers at most `max_requests` (1,000) per connection, like nginx's
//! `keepalive_requests`; the bench opens a fresh session before that, outside the timed part.
//!
//! `REQUEST_PATH_COUNT=N cargo bench -p zyphos --bench request_path` runs N requests of each
//! scenario without criterion and exits: for instruction counts under
//! `valgrind --tool=callgrind` (the difference between two N is the per-request cost);
//! `REQUEST_PATH_SCENARIO=static_1k` runs only that one.
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, read once per batch of up to 960
//! requests), not wall time: the machine is shared, and time spent descheduled is not the
//! request path's cost.

// criterion_group! generates an undocumented `pub fn benches()`.
#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "../src/site.rs"]
mod site;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use m03_thread_per_conn::{Session, SessionFactory};
use m05_routing::sys::thread_cpu_ns;
use m05_routing::{Router, RouterKind};
use m08_http11::{Http11Config, Http11Factory, Http11Session};

/// What wrk sends for `GET /plaintext` (no `Connection` header: HTTP/1.1 keep-alive).
const PLAINTEXT_REQ: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
/// What wrk sends for the 1 KiB static file.
const STATIC_REQ: &[u8] = b"GET /static/1k.bin HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
/// Requests per pipelined batch.
const DEPTH: usize = 16;
/// Requests on one session before a fresh one (below the server's 1,000 per connection).
const PER_SESSION: u64 = 960;

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

/// One driver turn: input in, all output written, events drained. Returns bytes written.
fn turn(s: &mut Http11Session<Router>, now: Instant, input: &[u8]) -> usize {
    let took = s.handle_input(now, input);
    debug_assert_eq!(took, input.len());
    let n = s.pending_output().len();
    black_box(s.pending_output());
    s.consume_output(n);
    while let Some(e) = s.poll_event() {
        black_box(e);
    }
    n
}

/// Times `iters` turns with `input` (carrying `per_turn` requests), on fresh sessions as needed.
fn run(f: &Http11Factory<Router>, input: &[u8], per_turn: u64, iters: u64) -> Duration {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("literal address");
    let turns_per_session = (PER_SESSION / per_turn).max(1);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let now = Instant::now();
        let mut s = f.new_session(peer, now);
        let batch = left.min(turns_per_session);
        let start = thread_cpu_ns();
        for _ in 0..batch {
            black_box(turn(&mut s, now, black_box(input)));
        }
        total += Duration::from_nanos(thread_cpu_ns().saturating_sub(start));
        left -= batch;
    }
    total
}

fn bench(c: &mut Criterion) {
    let f = factory();
    let pipelined = PLAINTEXT_REQ.repeat(DEPTH);
    // Sanity: the answers are the site's (a bench of 404s would be fast and meaningless).
    {
        let mut s = f.new_session("127.0.0.1:40000".parse().expect("addr"), Instant::now());
        s.handle_input(Instant::now(), PLAINTEXT_REQ);
        assert!(s.pending_output().starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(s.pending_output().ends_with(b"\r\n\r\nHello, World!"));
        let n = s.pending_output().len();
        s.consume_output(n);
        s.handle_input(Instant::now(), STATIC_REQ);
        assert!(s.pending_output().starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(s.pending_output().len() > 1024);
    }
    let mut g = c.benchmark_group("request_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("plaintext_keepalive", |b| {
        b.iter_custom(|iters| run(&f, PLAINTEXT_REQ, 1, iters))
    });
    g.throughput(Throughput::Elements(DEPTH as u64));
    g.bench_function("plaintext_pipelined16", |b| {
        b.iter_custom(|iters| run(&f, &pipelined, DEPTH as u64, iters))
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("static_1k", |b| {
        b.iter_custom(|iters| run(&f, STATIC_REQ, 1, iters))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}

/// `REQUEST_PATH_COUNT=N`: N requests of each scenario, no criterion (for callgrind).
fn count_only(n: u64) {
    let f = factory();
    let pipelined = PLAINTEXT_REQ.repeat(DEPTH);
    for (name, input, per_turn) in [
        ("plaintext_keepalive", PLAINTEXT_REQ, 1),
        ("plaintext_pipelined16", &pipelined[..], DEPTH as u64),
        ("static_1k", STATIC_REQ, 1),
    ] {
        if std::env::var("REQUEST_PATH_SCENARIO").is_ok_and(|only| only != name) {
            continue;
        }
        let t = run(&f, input, per_turn, n / per_turn);
        eprintln!(
            "{name}: {n} requests, {:.0} ns CPU each",
            t.as_nanos() as f64 / n as f64
        );
    }
}

fn main() {
    match std::env::var("REQUEST_PATH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => count_only(n),
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
