//! `sink`: the cheapest server we can write — one thread, one mio loop, canned responses — so
//! a run against it measures the load generator's own ceiling rather than a server's.
//!
//! HTTP mode counts request heads (each `\r\n\r\n`, found with memchr's `memmem`) and answers
//! each with the same keep-alive response, [`SINK_RESPONSE`] (13-byte body `Hello, World!`).
//! Request bodies are not supported (it is a sink, not a server). Echo mode writes back every
//! byte it reads. Counters are shared atomics so tests can compare them with the client's.

use memchr::memmem;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The response the sink sends for every request head.
pub const SINK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: zyphos-sink\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
const READ_BUF: usize = 256 * 1024;
/// Responses per pre-built write buffer.
const BATCH: usize = 128;

/// What the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkMode {
    /// One canned HTTP/1.1 response per request head.
    Http,
    /// Every byte read is written back.
    Echo,
}

/// How to start a sink.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SinkOptions {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// HTTP or echo.
    pub mode: SinkMode,
    /// Pin the sink thread to this CPU.
    pub cpu: Option<usize>,
    /// Upper bound on the sink's life: it stops by itself after this long.
    pub max_lifetime: Duration,
}

impl SinkOptions {
    /// HTTP mode on `listen`, unpinned, living at most an hour.
    pub fn new(listen: SocketAddr) -> SinkOptions {
        SinkOptions {
            listen,
            mode: SinkMode::Http,
            cpu: None,
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Counters kept by a sink (updated once per read or write, not per byte).
#[derive(Debug, Default)]
pub struct SinkStats {
    requests: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    connections: AtomicU64,
    peers: Mutex<BTreeSet<IpAddr>>,
}

impl SinkStats {
    /// Request heads seen (HTTP) or messages echoed (echo: reads served).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Bytes read from clients.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
    /// Bytes written to clients.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }
    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
    /// Distinct client source addresses seen.
    pub fn peers(&self) -> Vec<IpAddr> {
        match self.peers.lock() {
            Ok(p) => p.iter().copied().collect(),
            Err(poisoned) => poisoned.into_inner().iter().copied().collect(),
        }
    }
}

/// A sink running on its own thread; stopped (and joined) on drop.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Sink {
    /// Bind and start serving on a new thread. Binding errors (e.g. port in use) are returned
    /// here, not later.
    pub fn spawn(opts: SinkOptions) -> io::Result<Sink> {
        let mut core = SinkLoop::bind(&opts)?;
        let addr = core.listener.local_addr()?;
        let stats = Arc::clone(&core.stats);
        let stop = Arc::clone(&core.stop);
        let waker = Arc::clone(&core.waker);
        let cpu = opts.cpu;
        let thread = std::thread::Builder::new()
            .name("zyphos-sink".to_owned())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    crate::sys::pin_current_thread(&[cpu])?;
                }
                core.run()
            })?;
        Ok(Sink {
            addr,
            stats,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Live counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// Stop the thread and report how its loop ended.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("sink thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Serve in the calling thread until `max_lifetime` has passed (the `sink` subcommand).
/// `on_ready` is called with the bound address once the socket listens.
pub fn serve(opts: &SinkOptions, on_ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    if let Some(cpu) = opts.cpu {
        crate::sys::pin_current_thread(&[cpu])?;
    }
    let mut core = SinkLoop::bind(opts)?;
    on_ready(core.listener.local_addr()?);
    core.run()
}

#[derive(Debug)]
struct SinkConn {
    stream: TcpStream,
    /// HTTP: how much of `\r\n\r\n` the bytes read so far end with.
    matched: u8,
    /// HTTP: response bytes owed.
    owed: u64,
    /// Echo: bytes read but not yet written back (reading pauses while non-empty).
    pending: Vec<u8>,
}

struct SinkLoop {
    poll: Poll,
    listener: TcpListener,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    stats: Arc<SinkStats>,
    mode: SinkMode,
    deadline: Instant,
    conns: Vec<Option<SinkConn>>,
    free: Vec<usize>,
    rbuf: Box<[u8]>,
    batch: Vec<u8>,
    finder: memmem::Finder<'static>,
}

impl SinkLoop {
    fn bind(opts: &SinkOptions) -> io::Result<SinkLoop> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(opts.listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(SinkLoop {
            poll,
            listener,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(SinkStats::default()),
            mode: opts.mode,
            deadline: Instant::now() + opts.max_lifetime,
            conns: Vec::new(),
            free: Vec::new(),
            rbuf: vec![0u8; READ_BUF].into_boxed_slice(),
            batch: SINK_RESPONSE.repeat(BATCH),
            finder: memmem::Finder::new(b"\r\n\r\n"),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if self.stop.load(Ordering::Relaxed) || now >= self.deadline {
                return Ok(());
            }
            let timeout = self.deadline.saturating_duration_since(now);
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let i = t - FIRST_CONN;
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(i);
                        }
                        if ev.is_writable() {
                            self.on_writable(i);
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let i = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    if self
                        .poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(i + FIRST_CONN),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        self.free.push(i);
                        continue;
                    }
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut peers) = self.stats.peers.lock() {
                        peers.insert(peer.ip());
                    }
                    self.conns[i] = Some(SinkConn {
                        stream,
                        matched: 0,
                        owed: 0,
                        pending: Vec::new(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // EMFILE and friends: leave the connection in the backlog.
                Err(_) => return,
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(slot) = self.conns.get_mut(i) {
            if slot.take().is_some() {
                self.free.push(i);
            }
        }
    }

    fn on_readable(&mut self, i: usize) {
        let mut requests = 0u64;
        let mut read = 0u64;
        let mut written = 0u64;
        let mut closed = false;
        {
            let Some(Some(c)) = self.conns.get_mut(i) else {
                return;
            };
            loop {
                if !c.pending.is_empty() {
                    // Echo back-pressure: wait until the pending bytes are written.
                    break;
                }
                match c.stream.read(&mut self.rbuf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        read += n as u64;
                        let data = &self.rbuf[..n];
                        match self.mode {
                            SinkMode::Http => {
                                let k = count_heads(&self.finder, &mut c.matched, data);
                                requests += k;
                                c.owed += k * SINK_RESPONSE.len() as u64;
                            }
                            SinkMode::Echo => {
                                requests += 1;
                                let (sent, failed) = write_some(&mut c.stream, data);
                                written += sent as u64;
                                if failed {
                                    closed = true;
                                    break;
                                }
                                c.pending.extend_from_slice(&data[sent..]);
                            }
                        }
                        if n < self.rbuf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            // Count before answering, so a client that has its answer sees the count.
            self.stats.requests.fetch_add(requests, Ordering::Relaxed);
            self.stats.bytes_read.fetch_add(read, Ordering::Relaxed);
            if !closed && self.mode == SinkMode::Http {
                let (sent, failed) = flush_owed(&mut c.stream, &mut c.owed, &self.batch);
                written += sent;
                closed = failed;
            }
        }
        self.stats
            .bytes_written
            .fetch_add(written, Ordering::Relaxed);
        if closed {
            self.close(i);
        }
    }

    fn on_writable(&mut self, i: usize) {
        let (written, failed, resume_read) = {
            let Some(Some(c)) = self.conns.get_mut(i) else {
                return;
            };
            match self.mode {
                SinkMode::Http => {
                    let (sent, failed) = flush_owed(&mut c.stream, &mut c.owed, &self.batch);
                    (sent, failed, false)
                }
                SinkMode::Echo => {
                    let had = !c.pending.is_empty();
                    let (sent, failed) = write_some(&mut c.stream, &c.pending);
                    c.pending.drain(..sent);
                    (sent as u64, failed, had && c.pending.is_empty())
                }
            }
        };
        self.stats
            .bytes_written
            .fetch_add(written, Ordering::Relaxed);
        if failed {
            self.close(i);
        } else if resume_read {
            // Reading paused while bytes were pending; the socket may hold more already.
            self.on_readable(i);
        }
    }
}

/// Write as much of `data` as the socket takes; returns (bytes written, connection failed).
fn write_some(stream: &mut TcpStream, data: &[u8]) -> (usize, bool) {
    let mut sent = 0;
    while sent < data.len() {
        match stream.write(&data[sent..]) {
            Ok(0) => return (sent, true),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (sent, true),
        }
    }
    (sent, false)
}

/// Write owed response bytes from the pre-built batch; returns (bytes written, failed).
fn flush_owed(stream: &mut TcpStream, owed: &mut u64, batch: &[u8]) -> (u64, bool) {
    let period = SINK_RESPONSE.len() as u64;
    let mut written = 0;
    while *owed > 0 {
        // Bytes owed are the tail of an endless repetition of the response.
        let off = ((period - *owed % period) % period) as usize;
        let len = (batch.len() - off).min(usize::try_from(*owed).unwrap_or(usize::MAX));
        let (sent, failed) = write_some(stream, &batch[off..off + len]);
        *owed -= sent as u64;
        written += sent as u64;
        if failed {
            return (written, true);
        }
        if sent < len {
            break;
        }
    }
    (written, false)
}

/// Count `\r\n\r\n` in `data`, including one that straddles the previous read (`matched`
/// says how much of it the previous bytes ended with); update `matched` for the next read.
fn count_heads(finder: &memmem::Finder<'_>, matched: &mut u8, data: &[u8]) -> u64 {
    const PAT: &[u8; 4] = b"\r\n\r\n";
    let mut count = 0;
    let mut start = 0;
    let m = usize::from(*matched).min(3);
    if m > 0 {
        let need = 4 - m;
        if data.len() >= need && data[..need] == PAT[m..] {
            count += 1;
            start = need;
        } else if data.len() < need && data == &PAT[m..m + data.len()] {
            *matched = (m + data.len()) as u8;
            return 0;
        }
    }
    let rest = &data[start..];
    let mut tail_from = 0;
    for pos in finder.find_iter(rest) {
        count += 1;
        tail_from = pos + 4;
    }
    let tail = &rest[tail_from..];
    *matched = (1..=3)
        .rev()
        .find(|&k| tail.len() >= k && tail[tail.len() - k..] == PAT[..k])
        .unwrap_or(0) as u8;
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_count_heads_across_every_split() {
        let stream = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nA: b\r\n\r\n";
        let finder = memmem::Finder::new(b"\r\n\r\n");
        for split in 0..=stream.len() {
            for split2 in split..=stream.len() {
                let mut m = 0;
                let n = count_heads(&finder, &mut m, &stream[..split])
                    + count_heads(&finder, &mut m, &stream[split..split2])
                    + count_heads(&finder, &mut m, &stream[split2..]);
                assert_eq!(n, 3, "splits {split} {split2}");
            }
        }
    }

    #[test]
    fn test_sink_answers_each_request_head() {
        let sink =
            Sink::spawn(SinkOptions::new("127.0.0.1:0".parse().expect("addr"))).expect("sink");
        let mut s = std::net::TcpStream::connect(sink.local_addr()).expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            .expect("write");
        let mut buf = vec![0u8; 2 * SINK_RESPONSE.len()];
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.read_exact(&mut buf).expect("read");
        assert_eq!(&buf[..SINK_RESPONSE.len()], SINK_RESPONSE);
        assert_eq!(sink.stats().requests(), 2);
        sink.stop().expect("stop");
    }
}
