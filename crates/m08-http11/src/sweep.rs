//! The keep-alive timeout sweep: which idle, header and request timeouts to ship.
//!
//! Each candidate timeout is tried on a real [`Http11Session`] in virtual time (the session
//! reads no clock, so minutes of client behaviour run in milliseconds), against a seeded
//! population of clients:
//!
//! - **idle**: clients send 10 requests with log-normal think times (median 0.5 s, σ = 1) —
//!   the keep-alive *hit rate* is the share of follow-up requests that found their connection
//!   still open; the *cost* is idle connection-seconds held per request.
//! - **header / request**: legitimate clients on slow links (log-normal rate, median 16 KiB/s,
//!   σ = 1.5) send a 200 B–4 KiB head, then a 0–64 KiB body, trickled every 100 ms; the share
//!   that completes without a 408, and the connection-seconds a slowloris holds (it sends one
//!   byte per second and never finishes).
//!
//! **Rule** (stated in the write-up): for each timeout, ship the smallest candidate whose
//! success share is at least [`TARGET_IDLE_HIT`] (idle) or [`TARGET_COMPLETE`]
//! (header, request).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use m03_thread_per_conn::{Session, SessionState};
use m04_http10::{ConnInfo, Request, ResponseWriter, Service};

use crate::session::{Http11Config, Http11Session};

/// Idle timeout rule: smallest candidate with at least this keep-alive hit rate.
pub const TARGET_IDLE_HIT: f64 = 0.95;
/// Header/request timeout rule: smallest candidate letting at least this share of slow
/// legitimate clients finish.
pub const TARGET_COMPLETE: f64 = 0.99;
/// Candidate timeouts, seconds.
pub const CANDIDATES_S: [u64; 8] = [1, 2, 5, 10, 20, 30, 60, 120];
/// Simulated clients per candidate.
pub const CLIENTS: usize = 2000;

/// A seeded generator (splitmix64) with uniform and log-normal draws.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Log-normal with the given median and σ (Box–Muller).
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * z).exp()
    }
}

#[derive(Debug)]
struct Ok200;

impl Service for Ok200 {
    fn call(&self, _r: &Request<'_>, _c: &ConnInfo, w: &mut ResponseWriter<'_>) {
        w.send(200, Some("text/plain"), &[], b"ok");
    }
}

fn session(config: Http11Config, now: Instant) -> Http11Session<Ok200> {
    Http11Session::new(
        Arc::new(Ok200),
        config,
        std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        now,
        (now, SystemTime::UNIX_EPOCH),
    )
}

/// Advances a session to `to`, firing its deadlines on the way; drains its output.
fn advance(s: &mut Http11Session<Ok200>, to: Instant) {
    while s.state() == SessionState::Open {
        match s.poll_timeout() {
            Some(d) if d <= to => s.handle_timeout(d),
            _ => break,
        }
    }
    let n = s.pending_output().len();
    s.consume_output(n);
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";

/// One row of the idle sweep.
#[derive(Debug, Clone, Copy)]
pub struct IdleRow {
    /// Candidate.
    pub timeout: Duration,
    /// Share of follow-up requests that found the connection open.
    pub hit_rate: f64,
    /// `1 − connections / requests`.
    pub reuse: f64,
    /// Idle connection-seconds held per request.
    pub idle_conn_s_per_request: f64,
}

/// The idle-timeout sweep for `timeout`.
pub fn idle_row(timeout: Duration, clients: usize, seed: u64) -> IdleRow {
    let mut rng = Rng::new(seed);
    let config = Http11Config {
        idle_timeout: timeout,
        ..Http11Config::default()
    };
    let (mut requests, mut conns, mut hits, mut followups) = (0u64, 0u64, 0u64, 0u64);
    let mut idle_s = 0.0;
    let t0 = Instant::now();
    for _ in 0..clients {
        let mut now = t0;
        let mut s = session(config, now);
        conns += 1;
        for i in 0..10 {
            if i > 0 {
                let think = Duration::from_secs_f64(rng.lognormal(0.5, 1.0).min(3600.0));
                let next = now + think;
                advance(&mut s, next);
                followups += 1;
                if s.state() == SessionState::Open {
                    hits += 1;
                    idle_s += think.as_secs_f64();
                } else {
                    idle_s += timeout.as_secs_f64();
                    s = session(config, next);
                    conns += 1;
                }
                now = next;
            }
            let used = s.handle_input(now, GET);
            debug_assert_eq!(used, GET.len());
            let n = s.pending_output().len();
            s.consume_output(n);
            requests += 1;
        }
        idle_s += timeout.as_secs_f64(); // the last idle period, until the server gives up
    }
    IdleRow {
        timeout,
        hit_rate: hits as f64 / followups.max(1) as f64,
        reuse: 1.0 - conns as f64 / requests.max(1) as f64,
        idle_conn_s_per_request: idle_s / requests.max(1) as f64,
    }
}

/// One row of the header/request sweep.
#[derive(Debug, Clone, Copy)]
pub struct SlowRow {
    /// Candidate.
    pub timeout: Duration,
    /// Share of slow legitimate clients whose head completed (header timeout = candidate).
    pub heads_complete: f64,
    /// Share whose whole request completed (request timeout = candidate).
    pub requests_complete: f64,
    /// Seconds a slowloris (1 byte/s, never finishing) kept the connection.
    pub slowloris_hold_s: f64,
}

/// Trickles `bytes` at `rate` B/s in 100 ms steps. Returns `(no 408 so far, a request was
/// answered)`.
fn trickle(config: Http11Config, bytes: &[u8], rate: f64) -> (bool, bool) {
    let t0 = Instant::now();
    let mut s = session(config, t0);
    let step = Duration::from_millis(100);
    let per_step = ((rate * 0.1) as usize).max(1);
    let mut now = t0;
    let mut sent = 0;
    while sent < bytes.len() {
        now += step;
        advance(&mut s, now);
        if s.state() != SessionState::Open {
            return (false, false);
        }
        let end = (sent + per_step).min(bytes.len());
        s.handle_input(now, &bytes[sent..end]);
        sent = end;
    }
    let st = s.conn_stats();
    (
        s.state() == SessionState::Open && st.rejected == 0,
        st.requests == 1,
    )
}

/// The header/request sweep for `timeout`.
pub fn slow_row(timeout: Duration, clients: usize, seed: u64) -> SlowRow {
    let mut rng = Rng::new(seed);
    let header_cfg = Http11Config {
        header_timeout: timeout,
        request_timeout: Duration::from_secs(3600),
        ..Http11Config::default()
    };
    let request_cfg = Http11Config {
        header_timeout: Duration::from_secs(3600),
        request_timeout: timeout,
        ..Http11Config::default()
    };
    let (mut heads_ok, mut reqs_ok) = (0usize, 0usize);
    for _ in 0..clients {
        let rate = rng.lognormal(16.0 * 1024.0, 1.5).max(50.0);
        let head_size = 200 + (rng.uniform() * 3900.0) as usize;
        let body_size = (rng.uniform() * 65536.0) as usize;
        let mut head = b"POST / HTTP/1.1\r\nHost: h\r\nX-Pad: ".to_vec();
        head.resize(head_size.max(head.len()), b'p');
        let body = vec![b'b'; body_size];
        head.extend_from_slice(format!("\r\nContent-Length: {body_size}\r\n\r\n").as_bytes());
        // The head alone: the session then waits for the body, which the header timeout
        // does not cover.
        let head_only_ok = trickle(header_cfg, &head, rate).0;
        heads_ok += usize::from(head_only_ok);
        let mut whole = head.clone();
        whole.extend_from_slice(&body);
        reqs_ok += usize::from(trickle(request_cfg, &whole, rate).1);
    }
    // Slowloris: one byte per second of an endless head.
    let t0 = Instant::now();
    let mut s = session(header_cfg, t0);
    let mut held = 0.0;
    for i in 0..10_000u64 {
        let now = t0 + Duration::from_secs(i);
        advance(&mut s, now);
        if s.state() != SessionState::Open {
            break;
        }
        held = i as f64;
        s.handle_input(now, b"G");
    }
    SlowRow {
        timeout,
        heads_complete: heads_ok as f64 / clients.max(1) as f64,
        requests_complete: reqs_ok as f64 / clients.max(1) as f64,
        slowloris_hold_s: held,
    }
}

/// What the sweep picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picks {
    /// Idle (keep-alive) timeout.
    pub idle: Duration,
    /// Header timeout.
    pub header: Duration,
    /// Request timeout.
    pub request: Duration,
}

/// Runs the whole sweep (`clients` per candidate) and applies the rule.
pub fn sweep(clients: usize) -> (Vec<IdleRow>, Vec<SlowRow>, Picks) {
    let idle: Vec<IdleRow> = CANDIDATES_S
        .iter()
        .map(|&s| idle_row(Duration::from_secs(s), clients, 0x1d1e))
        .collect();
    let slow: Vec<SlowRow> = CANDIDATES_S
        .iter()
        .map(|&s| slow_row(Duration::from_secs(s), clients, 0x510e))
        .collect();
    let last = Duration::from_secs(CANDIDATES_S[CANDIDATES_S.len() - 1]);
    let picks = Picks {
        idle: idle
            .iter()
            .find(|r| r.hit_rate >= TARGET_IDLE_HIT)
            .map_or(last, |r| r.timeout),
        header: slow
            .iter()
            .find(|r| r.heads_complete >= TARGET_COMPLETE)
            .map_or(last, |r| r.timeout),
        request: slow
            .iter()
            .find(|r| r.requests_complete >= TARGET_COMPLETE)
            .map_or(last, |r| r.timeout),
    };
    (idle, slow, picks)
}
