//! Harness for tests, experiments and exit checks: a server in a thread, test factories, and
//! the measurements the exit checks share with the experiments.
//!
//! Hidden from the docs: scaffolding around the lesson, not the lesson.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use m01_raw_sockets::lab::{
    Table, connect, echo_round_trip, machine, pattern, print_check, print_check_measured,
    print_json, print_measured, quantile, quick, round, run_main, wait_until,
};

use crate::log::{Level, LogConfig, LogSink, MemorySink};
use crate::session::{EchoConfig, EchoFactory, EchoSession, Session, SessionFactory, SessionState};
use crate::threads::{ShutdownHandle, StatsHandle, ThreadConfig, ThreadReport, ThreadServer};

/// A [`ThreadServer`] running on a thread of this process.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shutdown handle.
    pub handle: ShutdownHandle,
    /// Its statistics.
    pub stats: StatsHandle,
    done: mpsc::Receiver<io::Result<ThreadReport>>,
}

impl RunningServer {
    /// Binds `config` and runs it with `factory` on a new thread (`zy-accept`).
    pub fn start<F: SessionFactory>(config: ThreadConfig, factory: F) -> io::Result<RunningServer> {
        let server = ThreadServer::bind(config)?;
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let stats = server.stats();
        let (tx, done) = mpsc::channel();
        let factory = Arc::new(factory);
        thread::Builder::new()
            .name("zy-accept".into())
            .spawn(move || {
                let _ = tx.send(server.run(factory));
            })?;
        Ok(RunningServer {
            addr,
            handle,
            stats,
            done,
        })
    }

    /// Requests shutdown and waits (at most 20 s) for the report.
    pub fn stop(self) -> io::Result<ThreadReport> {
        self.handle.shutdown();
        self.wait(Duration::from_secs(20))
    }

    /// Waits at most `timeout` for `run` to return.
    pub fn wait(self, timeout: Duration) -> io::Result<ThreadReport> {
        match self.done.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "server did not stop in time",
            )),
        }
    }
}

/// A test configuration on `127.0.0.1:0` with debug lines kept in memory.
pub fn test_config() -> (ThreadConfig, MemorySink) {
    let sink = MemorySink::new(10_000);
    let mut c = ThreadConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    c.log = LogConfig {
        level: Level::Debug,
        sink: LogSink::Memory(sink.clone()),
        ..LogConfig::default()
    };
    (c, sink)
}

/// A quiet configuration for experiments and checks.
pub fn quiet_config() -> ThreadConfig {
    let mut c = ThreadConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    c.log = LogConfig::quiet();
    c
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (experiments with many sockets).
pub fn raise_nofile() -> io::Result<u64> {
    let (_, hard) = m01_raw_sockets::sys::process::nofile_limit()?;
    m01_raw_sockets::sys::process::set_nofile_soft_limit(hard)?;
    Ok(hard)
}

/// Echo whose session panics when its input contains [`PanicFactory::MAGIC`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PanicFactory;

impl PanicFactory {
    /// The input that makes the session panic.
    pub const MAGIC: &'static [u8] = b"PANIC!";
}

/// The session of [`PanicFactory`].
#[derive(Debug)]
pub struct PanicSession(EchoSession);

impl Session for PanicSession {
    type Event = <EchoSession as Session>::Event;
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        if input
            .windows(PanicFactory::MAGIC.len())
            .any(|w| w == PanicFactory::MAGIC)
        {
            panic!("magic input received");
        }
        self.0.handle_input(now, input)
    }
    fn handle_eof(&mut self, now: Instant, unconsumed: &[u8]) {
        self.0.handle_eof(now, unconsumed);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }
    fn pending_output(&self) -> &[u8] {
        self.0.pending_output()
    }
    fn consume_output(&mut self, n: usize) {
        self.0.consume_output(n);
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        self.0.poll_event()
    }
    fn state(&self) -> SessionState {
        self.0.state()
    }
    fn input_limit(&self) -> usize {
        self.0.input_limit()
    }
    fn begin_shutdown(&mut self, now: Instant) {
        self.0.begin_shutdown(now);
    }
}

impl SessionFactory for PanicFactory {
    type Session = PanicSession;
    fn new_session(&self, _peer: SocketAddr, now: Instant) -> PanicSession {
        PanicSession(EchoSession::new(EchoConfig::default(), now))
    }
    fn refusal(&self) -> &[u8] {
        b"BUSY\n"
    }
    fn protocol(&self) -> &'static str {
        "panic-echo"
    }
}

/// A session that never consumes anything (a parser waiting forever for more): the driver
/// must close it with `InputOverflow` once `limit` bytes are buffered.
#[derive(Debug, Clone, Copy)]
pub struct HoardFactory {
    /// Its input limit.
    pub limit: usize,
}

/// The session of [`HoardFactory`].
#[derive(Debug)]
pub struct HoardSession {
    limit: usize,
    state: SessionState,
}

impl Session for HoardSession {
    type Event = ();
    fn handle_input(&mut self, _now: Instant, _input: &[u8]) -> usize {
        0
    }
    fn handle_eof(&mut self, _now: Instant, _unconsumed: &[u8]) {
        self.state = SessionState::Closed(crate::CloseReason::PeerClosed);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn pending_output(&self) -> &[u8] {
        &[]
    }
    fn consume_output(&mut self, _n: usize) {}
    fn poll_event(&mut self) -> Option<()> {
        None
    }
    fn state(&self) -> SessionState {
        self.state
    }
    fn input_limit(&self) -> usize {
        self.limit
    }
    fn begin_shutdown(&mut self, _now: Instant) {
        self.state = SessionState::Closed(crate::CloseReason::Shutdown);
    }
}

impl SessionFactory for HoardFactory {
    type Session = HoardSession;
    fn new_session(&self, _peer: SocketAddr, _now: Instant) -> HoardSession {
        HoardSession {
            limit: self.limit,
            state: SessionState::Open,
        }
    }
    fn protocol(&self) -> &'static str {
        "hoard"
    }
}

/// What a connection thread says about itself when its session is created (in that thread):
/// tests then look at exactly the threads their server spawned, not at the whole process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadProbe {
    /// Kernel thread id (`gettid`).
    pub tid: i32,
    /// The name `std` gave it.
    pub name: Option<String>,
    /// Its stack as the thread library recorded it: (lowest address, size excluding the guard).
    pub stack: Option<(usize, usize)>,
    /// The address of a local variable of the probing function (so: on this thread's stack).
    pub local: usize,
}

impl ThreadProbe {
    /// Probes the calling thread.
    pub fn current() -> ThreadProbe {
        let marker = 0u8;
        ThreadProbe {
            tid: m01_raw_sockets::sys::signal::current_tid(),
            name: thread::current().name().map(str::to_owned),
            stack: crate::sys::current_thread_stack().ok(),
            local: std::hint::black_box(&marker) as *const u8 as usize,
        }
    }
}

/// The probes a [`ProbeFactory`] has collected, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct Probes(Arc<Mutex<Vec<ThreadProbe>>>);

impl Probes {
    /// The probes so far, in session-creation order.
    pub fn get(&self) -> Vec<ThreadProbe> {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// Wraps a factory: every session creation first records a [`ThreadProbe`] of the calling
/// (connection) thread. The sessions are the inner factory's, unchanged.
#[derive(Debug)]
pub struct ProbeFactory<F> {
    inner: F,
    probes: Probes,
}

impl<F: SessionFactory> ProbeFactory<F> {
    /// The factory and the handle its probes are read through.
    pub fn new(inner: F) -> (ProbeFactory<F>, Probes) {
        let probes = Probes::default();
        (
            ProbeFactory {
                inner,
                probes: probes.clone(),
            },
            probes,
        )
    }
}

impl<F: SessionFactory> SessionFactory for ProbeFactory<F> {
    type Session = F::Session;
    fn new_session(&self, peer: SocketAddr, now: Instant) -> F::Session {
        let probe = ThreadProbe::current();
        if let Ok(mut p) = self.probes.0.lock() {
            p.push(probe);
        }
        self.inner.new_session(peer, now)
    }
    fn refusal(&self) -> &[u8] {
        self.inner.refusal()
    }
    fn protocol(&self) -> &'static str {
        self.inner.protocol()
    }
}

/// Echo with an idle timeout of `timeout`.
pub fn short_timeout_echo(timeout: Duration) -> EchoFactory {
    EchoFactory {
        config: EchoConfig {
            idle_timeout: timeout,
            ..EchoConfig::default()
        },
    }
}

/// Reads until EOF or error (at most `timeout`); returns the bytes and whether EOF was seen.
pub fn read_to_close(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    let _ = s.set_read_timeout(Some(timeout));
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Opens `n` clients, each completing one echo exchange, all held open at once; returns the
/// streams and how many exchanges failed.
pub fn open_clients(addr: SocketAddr, n: usize, timeout: Duration) -> (Vec<TcpStream>, usize) {
    let mut streams = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n {
        match connect(addr, timeout) {
            Ok(mut s) => {
                let msg = pattern(32, i as u8);
                if echo_round_trip(&mut s, &msg).is_err() {
                    errors += 1;
                }
                streams.push(s);
            }
            Err(_) => errors += 1,
        }
    }
    (streams, errors)
}

/// Writes `payload` on `s` (ignoring errors).
pub fn send_all(s: &mut TcpStream, payload: &[u8]) {
    let _ = s.write_all(payload);
}

pub mod experiments;
