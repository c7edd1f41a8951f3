//! Harness for tests, experiments and exit checks: servers that run the m07 request loop, an
//! allocation-free keep-alive client, the pool-size sweep, and the JSON shapes xtask reads
//! (re-exported from m01's lab).
//!
//! Hidden from the docs: scaffolding around the lesson, not the lesson.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use m01_raw_sockets::lab::{
    Table, have_tool, machine, print_check, print_check_measured, print_json, print_measured,
    print_measured_with_yardstick, quantile, quick, round, run_main, wait_until,
};
use m04_http10::Request;

use crate::arena::Arena;
use crate::pool::{BufferPool, BufferSource, DEFAULT_BUF_SIZE, PoolConfig, SharedPool};
use crate::serve::{ConnReport, ConnScratch, Reply, ReplyBody, ServeConfig, serve_connection};
use crate::stats::PoolStats;

/// The static page.
pub static HELLO: &[u8] = b"Hello from zyphos m07: pooled buffers\n";

/// Socket timeout for every lab socket (nothing can hang).
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The demo application: `/metrics` renders the pool and arena statistics into the pooled
/// write buffer, `/dyn` copies the target into the arena and formats a body into the write
/// buffer, anything else gets the static page.
pub fn demo_reply<B: BufferSource>(
    source: &B,
    req: &Request<'_>,
    arena: &Arena,
    scratch: &mut [u8],
) -> Reply {
    match req.path() {
        "/metrics" => {
            let cap = scratch.len();
            let mut w: &mut [u8] = scratch;
            let ok = source.pool_stats().write_prometheus("conn", &mut w).is_ok()
                && arena.stats().write_prometheus("request", &mut w).is_ok();
            let n = cap - w.len();
            Reply {
                status: if ok { 200 } else { 500 },
                content_type: Some("text/plain; version=0.0.4"),
                body: ReplyBody::Scratch(n),
            }
        }
        "/dyn" => {
            // Per-request scratch in the arena (a decoded copy of the target, say).
            let target = arena.copy_str(req.target()).unwrap_or("");
            let cap = scratch.len();
            let mut w: &mut [u8] = scratch;
            let _ = writeln!(w, "you asked for {target} ({} bytes)", target.len());
            Reply {
                status: 200,
                content_type: Some("text/plain"),
                body: ReplyBody::Scratch(cap - w.len()),
            }
        }
        _ => Reply {
            status: 200,
            content_type: Some("text/plain"),
            body: ReplyBody::Static(HELLO),
        },
    }
}

/// Connects with timeouts and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// A keep-alive HTTP/1.0 client that allocates nothing per request (one fixed buffer).
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// End of the last response in `buf`, and bytes read past it (the next response's start).
    last_end: usize,
    extra: usize,
}

/// One response as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head's length.
    pub head_len: usize,
    /// The body's length (Content-Length).
    pub body_len: usize,
    /// Whether the server said `Connection: keep-alive`.
    pub keep_alive: bool,
}

impl Client {
    /// Connects to `addr`; responses up to `max_response` bytes.
    pub fn connect(addr: SocketAddr, max_response: usize) -> io::Result<Client> {
        Ok(Client {
            stream: connect(addr)?,
            buf: vec![0; max_response],
            last_end: 0,
            extra: 0,
        })
    }

    /// The socket.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The last response's bytes (head and body).
    pub fn last(&self, resp: &Response) -> &[u8] {
        &self.buf[..resp.head_len + resp.body_len]
    }

    /// Sends `request` (whole, as bytes).
    pub fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request)
    }

    /// Reads one response (`head_only` for a HEAD request: no body follows).
    pub fn recv(&mut self, head_only: bool) -> io::Result<Response> {
        // Pipelined responses: what was read past the previous one starts this one.
        self.buf
            .copy_within(self.last_end..self.last_end + self.extra, 0);
        let mut have = self.extra;
        self.last_end = 0;
        self.extra = 0;
        let head_len = loop {
            if let Some(p) = memchr::memmem::find(&self.buf[..have], b"\r\n\r\n") {
                break p + 4;
            }
            if have == self.buf.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            let n = self.stream.read(&mut self.buf[have..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            have += n;
        };
        let head = &self.buf[..head_len];
        let status = head
            .get(9..12)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        let body_len = header_value(head, b"Content-Length: ")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let keep_alive = header_value(head, b"Connection: ").is_some_and(|v| v == b"keep-alive");
        let body_len = if head_only { 0 } else { body_len };
        let total = head_len + body_len;
        if total > self.buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
        while have < total {
            let n = self.stream.read(&mut self.buf[have..total])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            have += n;
        }
        self.last_end = total;
        self.extra = have - total;
        Ok(Response {
            status,
            head_len,
            body_len,
            keep_alive,
        })
    }

    /// `send` then `recv`.
    pub fn request(&mut self, request: &[u8]) -> io::Result<Response> {
        self.send(request)?;
        self.recv(request.starts_with(b"HEAD "))
    }
}

fn header_value<'a>(head: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let start = memchr::memmem::find(head, prefix)? + prefix.len();
    let end = memchr::memmem::find(&head[start..], b"\r\n")? + start;
    Some(&head[start..end])
}

/// A keep-alive `GET` of `path`.
pub const GET_DYN: &[u8] = b"GET /dyn HTTP/1.0\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n";
/// A keep-alive `GET /`.
pub const GET_ROOT: &[u8] = b"GET / HTTP/1.0\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n";
/// A keep-alive `GET /metrics`.
pub const GET_METRICS: &[u8] = b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

/// Server-wide counters of a [`ThreadServer`].
#[derive(Debug, Default)]
pub struct Totals {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused at accept (no read buffer): 503 and close.
    pub rejected: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Failed write-buffer acquisitions (pool exhaustion while serving).
    pub exhausted_waits: AtomicU64,
    /// Connections that ended with a 503 for lack of a write buffer.
    pub shed: AtomicU64,
}

/// The m07 request loop under a thread-per-connection driver (m03's model) with a
/// [`SharedPool`]: each connection takes its read buffer at accept (503 + close when the pool
/// has none) and borrows a write buffer per response.
#[derive(Debug)]
pub struct ThreadServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its pool.
    pub pool: SharedPool,
    /// Its counters.
    pub totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl ThreadServer {
    /// Binds `127.0.0.1:0` and starts accepting.
    pub fn start(pool: SharedPool, cfg: ServeConfig) -> io::Result<ThreadServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let totals = Arc::new(Totals::default());
        let (p, s, t) = (pool.clone(), Arc::clone(&stop), Arc::clone(&totals));
        let accept = thread::Builder::new()
            .name("m07-accept".into())
            .spawn(move || accept_loop(listener, p, cfg, s, t))?;
        Ok(ThreadServer {
            addr,
            pool,
            totals,
            stop,
            accept: Some(accept),
        })
    }

    /// Stops accepting and waits for every connection thread (clients must have closed).
    pub fn stop(mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(h) = self.accept.take() {
            let conns = h
                .join()
                .map_err(|_| io::Error::other("accept thread panicked"))?;
            for c in conns {
                c.join()
                    .map_err(|_| io::Error::other("connection thread panicked"))?;
            }
        }
        Ok(())
    }
}

fn accept_loop(
    listener: TcpListener,
    pool: SharedPool,
    cfg: ServeConfig,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
) -> Vec<JoinHandle<()>> {
    let mut conns = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        totals.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let read_buf = match pool.alloc() {
            Ok(b) => b,
            Err(_) => {
                totals.rejected.fetch_add(1, Ordering::Relaxed);
                let _ = stream.write_all(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = stream.shutdown(Shutdown::Write);
                continue;
            }
        };
        let (p, t) = (pool.clone(), Arc::clone(&totals));
        let spawned = thread::Builder::new()
            .name("m07-conn".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let Ok(mut scratch) = ConnScratch::new(1024, crate::arena::DEFAULT_ARENA_BYTES)
                else {
                    return;
                };
                let handler = |req: &Request<'_>, arena: &Arena, buf: &mut [u8]| {
                    demo_reply(&p, req, arena, buf)
                };
                if let Ok(r) =
                    serve_connection(&mut stream, read_buf, &p, &handler, &mut scratch, &cfg)
                {
                    t.requests.fetch_add(r.requests, Ordering::Relaxed);
                    t.exhausted_waits
                        .fetch_add(r.exhausted_waits, Ordering::Relaxed);
                    if r.end == crate::serve::ConnEnd::PoolExhausted {
                        t.shed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = stream.shutdown(Shutdown::Both);
            });
        if let Ok(h) = spawned {
            conns.push(h);
        }
    }
    conns
}

/// What [`spawn_local_server`]'s thread returns: the pool's statistics and each connection's
/// report.
pub type LocalServerHandle = JoinHandle<io::Result<(PoolStats, Vec<ConnReport>)>>;

/// The request loop on one thread with that thread's own [`BufferPool`] (no lock), serving
/// the connections it accepts one after another; `connections` of them, then it returns the
/// pool's statistics and each connection's report.
pub fn spawn_local_server(
    pool_config: PoolConfig,
    cfg: ServeConfig,
    connections: usize,
) -> io::Result<(SocketAddr, LocalServerHandle)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let h = thread::Builder::new()
        .name("m07-local".into())
        .spawn(move || {
            let pool = BufferPool::new(pool_config).map_err(|e| io::Error::other(e.to_string()))?;
            let mut scratch = ConnScratch::new(1024, crate::arena::DEFAULT_ARENA_BYTES)?;
            let mut reports = Vec::with_capacity(connections);
            let source = &pool;
            for _ in 0..connections {
                let (mut stream, _) = listener.accept()?;
                stream.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                stream.set_nodelay(true)?;
                let read_buf = pool.alloc().map_err(|e| io::Error::other(e.to_string()))?;
                let handler = |req: &Request<'_>, arena: &Arena, buf: &mut [u8]| {
                    demo_reply(&source, req, arena, buf)
                };
                let r =
                    serve_connection(&mut stream, read_buf, &source, &handler, &mut scratch, &cfg)?;
                reports.push(r);
            }
            Ok((pool.stats(), reports))
        })?;
    Ok((addr, h))
}

// ---------------------------------------------------------------------------------------------
// The pool-size sweep

/// The standard scenario: concurrent keep-alive connections (the load generator's default).
pub const SWEEP_CONNECTIONS: usize = 64;
/// Connection counts swept, the standard one among them: the pick must follow the demand (a
/// pool sized by measurement, not by `2 x connections` written into the sweep).
pub const SWEEP_CONNECTION_COUNTS: [usize; 3] = [16, SWEEP_CONNECTIONS, 128];
/// Pool sizes swept (powers of two, as slabs are sized).
pub const SWEEP_SIZES: [usize; 6] = [16, 32, 64, 128, 256, 512];
/// Requests per sweep point: `rounds = SWEEP_REQUESTS / connections`, so every connection
/// count is timed over the same amount of work.
pub const SWEEP_REQUESTS: usize = 16_000;
/// A size qualifies when its median paired throughput ratio to the best size is at least
/// this (or when it beat the best in [`SWEEP_WIN_FRACTION`] of the paired repeats).
pub const SWEEP_THROUGHPUT_FRACTION: f64 = 0.95;
/// A size qualifies when it was faster than the best size in at least this fraction of the
/// paired repeats: a size the best beats only by noise wins about half of them (somewhat fewer,
/// as the best is itself picked as the maximum of noisy sizes); a really slower one wins fewer.
pub const SWEEP_WIN_FRACTION: f64 = 1.0 / 3.0;

/// One run of the standard scenario at one pool size.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepPoint {
    /// Buffers in the pool.
    pub buffers: usize,
    /// Successful responses per second of wall-clock time.
    pub req_per_s: f64,
    /// Successful responses per second of CPU time used by the whole process (server and
    /// client threads; `getrusage(RUSAGE_SELF)`): throughput that other tenants of a shared
    /// machine do not move.
    pub req_per_cpu_s: f64,
    /// Successful responses.
    pub ok: u64,
    /// Connections that got a 503 (at accept or for lack of a write buffer).
    pub failed_connections: u64,
    /// Pool exhaustion events (allocations refused).
    pub exhausted: u64,
    /// Most buffers in use at once.
    pub high_water: u64,
}

/// Runs the scenario once: `connections` keep-alive clients on one thread (the standard
/// scenario is [`SWEEP_CONNECTIONS`]), `rounds` closed-loop rounds of `GET /dyn` (each client
/// sends, then each reads its answer), against a [`ThreadServer`] whose pool has `buffers`
/// 16 KiB buffers.
pub fn sweep_point(connections: usize, buffers: usize, rounds: usize) -> io::Result<SweepPoint> {
    let pool = SharedPool::new(PoolConfig::new(DEFAULT_BUF_SIZE, buffers).with_debug(false))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let cfg = ServeConfig {
        acquire_timeout: Duration::from_millis(20),
        ..ServeConfig::default()
    };
    let server = ThreadServer::start(pool, cfg)?;
    let mut clients = (0..connections)
        .map(|_| Client::connect(server.addr, 4096))
        .collect::<io::Result<Vec<_>>>()?;
    // Every connection accepted (and given its read buffer, or refused) before timing.
    wait_until(Duration::from_secs(10), || {
        server.totals.accepted.load(Ordering::Relaxed) >= connections as u64
    });
    let mut alive = vec![true; clients.len()];
    let mut ok = 0u64;
    let u0 = crate::sys::rusage(false)?;
    let t = Instant::now();
    for _ in 0..rounds {
        for (c, a) in clients.iter_mut().zip(alive.iter_mut()) {
            if *a && c.send(GET_DYN).is_err() {
                *a = false;
            }
        }
        for (c, a) in clients.iter_mut().zip(alive.iter_mut()) {
            if !*a {
                continue;
            }
            match c.recv(false) {
                Ok(r) if r.status == 200 && r.keep_alive => ok += 1,
                _ => *a = false,
            }
        }
        if !alive.iter().any(|&a| a) {
            break;
        }
    }
    let elapsed = t.elapsed();
    let cpu = crate::sys::rusage(false)?.since(&u0).cpu().as_secs_f64();
    let failed = alive.iter().filter(|&&a| !a).count() as u64;
    for c in &mut clients {
        let _ = c.stream().shutdown(Shutdown::Both);
    }
    drop(clients);
    let pool = server.pool.clone();
    server.stop()?;
    let s = pool.stats();
    Ok(SweepPoint {
        buffers,
        req_per_s: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        req_per_cpu_s: ok as f64 / cpu.max(1e-9),
        ok,
        failed_connections: failed,
        exhausted: s.exhausted,
        high_water: s.high_water,
    })
}

/// The sweep's verdict for one connection count.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Closed-loop rounds per point.
    pub rounds: usize,
    /// Paired repeats.
    pub repeats: usize,
    /// Per size: the median wall-clock throughput, the worst repetition's exhaustion and
    /// refused connections, the largest high-water mark.
    pub points: Vec<SweepPoint>,
    /// Per size: whether it served the whole scenario in every repeat (no exhaustion, no
    /// refused or shed connection). Only these are compared on throughput: a size that refused
    /// connections served a smaller workload.
    pub clean: Vec<bool>,
    /// The best clean size: the highest median over repeats of its req/s over the mean req/s
    /// of the clean sizes in the same repeat.
    pub best: Option<usize>,
    /// Per size: the median over repeats of its req/s over the best size's req/s in the same
    /// repeat (paired: load drifting between repeats on a shared machine cancels out).
    pub ratio_to_best: Vec<f64>,
    /// Per size: in how many repeats it was faster than the best size.
    pub wins: Vec<usize>,
    /// The smallest clean size whose median ratio to the best is at least
    /// [`SWEEP_THROUGHPUT_FRACTION`] or that beat the best in at least [`SWEEP_WIN_FRACTION`]
    /// of the repeats.
    pub pick: Option<usize>,
}

impl Sweep {
    /// Whether the size at index `i` qualifies (see [`Sweep::pick`]).
    pub fn qualifies(&self, i: usize) -> bool {
        self.clean[i]
            && (self.ratio_to_best[i] >= SWEEP_THROUGHPUT_FRACTION
                || self.wins[i] as f64 >= SWEEP_WIN_FRACTION * self.repeats as f64)
    }
}

/// Runs every size `repeats` times with `connections` connections, interleaved (A B C D E F,
/// then B C D E F A, …; a multiple of the size count as `repeats` puts every size equally
/// often in every position), `SWEEP_REQUESTS / connections` rounds per point (`rounds`
/// overrides), and picks.
pub fn run_sweep(connections: usize, rounds: Option<usize>, repeats: usize) -> io::Result<Sweep> {
    let rounds = rounds.unwrap_or(SWEEP_REQUESTS / connections.max(1)).max(1);
    let n = SWEEP_SIZES.len();
    let mut runs: Vec<Vec<SweepPoint>> = vec![Vec::new(); n];
    // One untimed point first: the first server and client of the run pay for cold caches
    // and first-touch page faults, which would count against whichever size ran first.
    sweep_point(connections, SWEEP_SIZES[n - 1], rounds.min(100))?;
    for r in 0..repeats {
        for k in 0..n {
            let i = (k + r) % n;
            let size = SWEEP_SIZES[i];
            let p = sweep_point(connections, size, rounds)?;
            eprintln!(
                "  {connections:>3} conns, pool {size:>4}: {:>8.0} req/s, exhausted {}, failed conns {}, high-water {}",
                p.req_per_s, p.exhausted, p.failed_connections, p.high_water
            );
            runs[i].push(p);
        }
    }
    let clean: Vec<bool> = runs
        .iter()
        .map(|v| {
            v.iter()
                .all(|p| p.exhausted == 0 && p.failed_connections == 0)
        })
        .collect();
    // The best: highest median of req/s over the mean of the clean sizes in the same repeat.
    let mut best_i = None;
    let mut best_rel = f64::MIN;
    for i in (0..n).filter(|&i| clean[i]) {
        let mut rel: Vec<f64> = (0..repeats)
            .map(|r| {
                let mean = (0..n)
                    .filter(|&j| clean[j])
                    .map(|j| runs[j][r].req_per_s)
                    .sum::<f64>()
                    / clean.iter().filter(|&&c| c).count() as f64;
                runs[i][r].req_per_s / mean.max(1e-9)
            })
            .collect();
        let m = quantile(&mut rel, 0.5);
        if m > best_rel {
            best_rel = m;
            best_i = Some(i);
        }
    }
    let mut ratio_to_best = vec![0.0; n];
    let mut wins = vec![0; n];
    if let Some(b) = best_i {
        for i in 0..n {
            let mut ratios: Vec<f64> = (0..repeats)
                .map(|r| runs[i][r].req_per_s / runs[b][r].req_per_s.max(1e-9))
                .collect();
            wins[i] = ratios.iter().filter(|&&x| x > 1.0).count();
            ratio_to_best[i] = quantile(&mut ratios, 0.5);
        }
    }
    let points: Vec<SweepPoint> = runs
        .into_iter()
        .map(|mut v| {
            v.sort_by(|a, b| a.req_per_s.total_cmp(&b.req_per_s));
            // Exhaustion and failures: the worst run counts (a size must never exhaust).
            let worst_exhausted = v.iter().map(|p| p.exhausted).max().unwrap_or(0);
            let worst_failed = v.iter().map(|p| p.failed_connections).max().unwrap_or(0);
            let hw = v.iter().map(|p| p.high_water).max().unwrap_or(0);
            let mut m = v.get(v.len() / 2).copied().unwrap_or_default();
            m.exhausted = worst_exhausted;
            m.failed_connections = worst_failed;
            m.high_water = hw;
            m
        })
        .collect();
    let mut sweep = Sweep {
        connections,
        rounds,
        repeats,
        points,
        clean,
        best: best_i.map(|b| SWEEP_SIZES[b]),
        ratio_to_best,
        wins,
        pick: None,
    };
    sweep.pick = (0..n).find(|&i| sweep.qualifies(i)).map(|i| SWEEP_SIZES[i]);
    Ok(sweep)
}
