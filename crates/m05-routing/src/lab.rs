//! Harness for tests, experiments and exit checks (hidden from the docs): requests through the
//! router or the whole HTTP/1.0 session, response parsing, generated route sets, timing loops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use m03_thread_per_conn::testing::{Faults, PipeDriver};
use m03_thread_per_conn::{Session, SessionFactory};
use m04_http10::{ConnInfo, Http10Factory, Limits, ResponseWriter};

pub use m01_raw_sockets::lab::{
    Table, machine, print_check, print_json, print_measured, quantile, quick, round, run_main,
};

use crate::router::Router;

/// A response split into parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The status code (0 if the bytes were not a response).
    pub status: u16,
    /// Header lines in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Parsed {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses response bytes (`HTTP/1.x NNN reason`, headers, blank line, body).
pub fn parse_response(bytes: &[u8]) -> Parsed {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Parsed::default();
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Parsed {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

/// The peer address used by the harness.
pub fn test_peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

/// Parses `request` with m04's parser and dispatches it straight into `router` (no session).
/// `None` if the bytes are not one complete request.
pub fn dispatch_bytes(router: &Router, request: &[u8]) -> Option<Parsed> {
    let req = m04_http10::parse(request).ok()?.complete()?;
    let conn = ConnInfo {
        peer: test_peer(),
        now: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut out = Vec::new();
    let mut w = ResponseWriter::new(
        &mut out,
        req.method() == m04_http10::Method::Head,
        conn.wall,
    );
    router.dispatch(&req, &conn, &mut w);
    Some(parse_response(&out))
}

/// Runs `request` through a real [`m04_http10::Http10Session`] serving `router`, driven by m03's
/// [`PipeDriver`] with `faults` (bytes in, response bytes out).
pub fn exchange_with(router: &Arc<Router>, request: &[u8], faults: Faults) -> Vec<u8> {
    let factory = Http10Factory::new(Arc::clone(router), Limits::default());
    let mut session = factory.new_session(test_peer(), Instant::now());
    PipeDriver::new(faults).run(&mut session, request).output
}

/// [`exchange_with`] without faults, parsed.
pub fn exchange(router: &Arc<Router>, request: &[u8]) -> Parsed {
    parse_response(&exchange_with(router, request, Faults::default()))
}

/// `GET path HTTP/1.0` bytes.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").into_bytes()
}

/// Request bytes for any method.
pub fn request(method: &str, path: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.0\r\nHost: t\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// One HTTP/1.0 request through a fresh session, without a driver: feed, take the output.
/// Returns the number of response bytes (0 = nothing came back). Used by the throughput check.
pub fn one_session_request<S: m04_http10::Service>(
    factory: &Http10Factory<S>,
    request: &[u8],
    now: Instant,
) -> usize {
    let mut session = factory.new_session(test_peer(), now);
    let used = session.handle_input(now, request);
    let n = session.pending_output().len();
    session.consume_output(n);
    if used == request.len() { n } else { 0 }
}

/// A xorshift generator (deterministic inputs).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is replaced by 1).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The kinds of generated routes.
pub const ROUTE_SHAPES: [&str; 4] = ["literal", "one-param", "three-param", "wildcard"];

/// `n` route patterns shaped like a REST API: per resource `r`, a literal collection
/// (`/api/rN/items`), an item (`/api/rN/items/:id`), a three-parameter nested route
/// (`/api/rN/orgs/:org/repos/:repo/issues/:num`) and a wildcard (`/api/rN/files/*path`).
pub fn route_set(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let r = i / 4;
            match i % 4 {
                0 => format!("/api/r{r}/items"),
                1 => format!("/api/r{r}/items/:id"),
                2 => format!("/api/r{r}/orgs/:org/repos/:repo/issues/:num"),
                _ => format!("/api/r{r}/files/*path"),
            }
        })
        .collect()
}

/// A path that matches route `i` of [`route_set`].
pub fn path_for(i: usize) -> String {
    let r = i / 4;
    match i % 4 {
        0 => format!("/api/r{r}/items"),
        1 => format!("/api/r{r}/items/{}", 1000 + i),
        2 => format!("/api/r{r}/orgs/acme/repos/zyphos/issues/{i}"),
        _ => format!("/api/r{r}/files/css/site{i}.css"),
    }
}

/// `count` request paths over routes `0..n` of [`route_set`] (uniform), deterministic.
pub fn paths_for(n: usize, count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| path_for(rng.below(n))).collect()
}

/// Calls `f` repeatedly for about `budget` of this thread's CPU time (at least `min_iters`
/// times); returns CPU ns per call. CPU time, not wall time: on a shared 2-core machine the
/// time this thread spends descheduled would otherwise be charged to `f`.
pub fn ns_per_call(budget: Duration, min_iters: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..min_iters.min(1000) {
        f();
    }
    // Batches long enough (>= 100 µs) that reading the thread clock (a real syscall, unlike
    // the vDSO wall clock) is noise.
    let mut batch = 16u64;
    loop {
        let t = crate::sys::thread_cpu_ns();
        for _ in 0..batch {
            f();
        }
        if crate::sys::thread_cpu_ns() - t >= 100_000 || batch >= 1 << 24 {
            break;
        }
        batch *= 2;
    }
    let budget = budget.as_nanos() as u64;
    let start = crate::sys::thread_cpu_ns();
    let mut iters = 0u64;
    loop {
        for _ in 0..batch {
            f();
        }
        iters += batch;
        if iters >= min_iters && crate::sys::thread_cpu_ns() - start >= budget {
            break;
        }
    }
    (crate::sys::thread_cpu_ns() - start) as f64 / iters as f64
}

pub mod experiments;
pub mod rfc3986;
pub mod suite;
