//! The event loop over real loopback sockets, driving m03's echo session: triggering modes,
//! partial writes, timers, closes, accept batching, interest changes, limits, blocked loops,
//! panics and starvation under edge triggering. Every socket operation has a timeout.

// Some tests exercise epoll modes or /proc and are Linux-only; their imports are unused elsewhere.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports))]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::lab::PanicFactory;
use m03_thread_per_conn::{
    EchoConfig, EchoFactory, EchoSession, Session, SessionFactory, SessionState,
};
use m09_event_loop::lab::{InProcess, connect, raise_nofile, wait_until};
use m09_event_loop::{ReactorKind, ServerConfig, Trigger};

const T: Duration = Duration::from_secs(5);

fn config() -> ServerConfig {
    ServerConfig::new("127.0.0.1:0".parse().expect("literal address"))
}

fn echo(idle: Duration, max_pending_output: usize) -> EchoFactory {
    EchoFactory {
        config: EchoConfig {
            idle_timeout: idle,
            max_pending_output,
        },
    }
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 251) as u8)
        .collect()
}

/// Opens `n` connections, sends each a distinct 4 KiB message, reads every echo back and
/// compares it byte for byte; returns how many matched.
fn echo_many(addr: SocketAddr, n: usize) -> usize {
    let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(addr, T).expect("connect")).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(&pattern(4096, i)).expect("write");
    }
    let mut ok = 0;
    let mut back = vec![0u8; 4096];
    for (i, s) in conns.iter_mut().enumerate() {
        s.read_exact(&mut back).expect("read echo");
        if back == pattern(4096, i) {
            ok += 1;
        }
    }
    ok
}

fn round_trip_200(mut cfg: ServerConfig) {
    raise_nofile().expect("raise nofile");
    cfg.loop_config.log_blocked = false;
    let server = InProcess::start(cfg, EchoFactory::default()).expect("start");
    assert_eq!(echo_many(server.addr, 200), 200, "every echo identical");
    let s = server.snapshot();
    assert_eq!(s.accepted, 200);
    assert_eq!(s.open_peak, 200, "all 200 held at once");
    server.stop().expect("stop");
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_level_triggered_200_conns_echo_identical() {
    round_trip_200(config());
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_edge_triggered_200_conns_echo_identical() {
    let mut cfg = config();
    cfg.loop_config.trigger = Trigger::Edge;
    round_trip_200(cfg);
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_level_oneshot_200_conns_echo_identical() {
    let mut cfg = config();
    cfg.loop_config.oneshot = true;
    raise_nofile().expect("raise nofile");
    let server = InProcess::start(cfg, EchoFactory::default()).expect("start");
    assert_eq!(echo_many(server.addr, 200), 200);
    let s = server.snapshot();
    // Oneshot: every handled event re-arms with one epoll_ctl(MOD).
    assert!(
        s.modifications >= 200,
        "oneshot re-arms: {} MODs",
        s.modifications
    );
    server.stop().expect("stop");
}

#[test]
fn test_mio_reactor_200_conns_echo_identical() {
    let mut cfg = config();
    cfg.reactor = ReactorKind::Mio;
    round_trip_200(cfg);
}

#[test]
fn test_large_echo_small_client_buffer_arrives_in_order() {
    let server = InProcess::start(config(), echo(T, 256 * 1024)).expect("start");
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect_timeout(&server.addr.into(), T)
        .expect("connect");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(T)).expect("timeout");
    s.set_write_timeout(Some(T)).expect("timeout");
    // More than the server's send buffer can grow to (tcp_wmem max 4 MiB) plus the echo's
    // 256 KiB: the server's sends must come up short and wait for EPOLLOUT.
    let total = 16 * 1024 * 1024;
    let data = pattern(total, 3);
    let mut writer = s.try_clone().expect("clone");
    let sent = data.clone();
    let w = thread::spawn(move || writer.write_all(&sent).map(|_| ()));
    thread::sleep(Duration::from_millis(200)); // not reading yet
    let mut got = Vec::with_capacity(total);
    let mut buf = [0u8; 8192];
    while got.len() < total {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        if got.len() % (1024 * 1024) < n {
            thread::sleep(Duration::from_millis(5)); // a slow reader
        }
    }
    w.join().expect("writer").expect("write");
    assert!(got == data, "echo complete and in order");
    let st = server.snapshot();
    assert!(st.writes > 1, "partial writes: {} sends", st.writes);
    assert!(
        st.modifications > 0,
        "EPOLLOUT interest registered: {} MODs",
        st.modifications
    );
    server.stop().expect("stop");
}

#[test]
fn test_idle_connection_timer_fires_closes_with_timeout() {
    let server =
        InProcess::start(config(), echo(Duration::from_millis(200), 64 * 1024)).expect("start");
    let mut idle = connect(server.addr, T).expect("connect");
    let mut busy = connect(server.addr, T).expect("connect");
    let start = Instant::now();
    // The busy one talks every 50 ms for 600 ms: never idle for 200 ms.
    let mut back = [0u8; 4];
    while start.elapsed() < Duration::from_millis(600) {
        busy.write_all(b"ping").expect("write");
        busy.read_exact(&mut back).expect("echo");
        thread::sleep(Duration::from_millis(50));
    }
    let mut buf = [0u8; 16];
    let n = idle
        .read(&mut buf)
        .expect("idle side reads EOF, not a timeout");
    assert_eq!(n, 0, "EOF on the idle connection");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "idle close took {took:?}"
    );
    busy.write_all(b"pong").expect("busy still open");
    busy.read_exact(&mut back).expect("busy still echoes");
    assert_eq!(&back, b"pong");
    let s = server.snapshot();
    assert_eq!(s.closed["timeout"], 1, "exactly the idle one timed out");
    assert!(s.timers_armed >= 2 && s.timers_fired >= 1, "{s:?}");
    server.stop().expect("stop");
}

#[test]
fn test_peer_fin_and_rst_counted_open_returns_to_zero() {
    let server = InProcess::start(config(), EchoFactory::default()).expect("start");
    let fin = connect(server.addr, T).expect("connect");
    let rst = connect(server.addr, T).expect("connect");
    assert!(wait_until(T, || server.snapshot().open == 2));
    fin.shutdown(Shutdown::Write).expect("FIN");
    assert!(
        wait_until(T, || server.snapshot().closed["peer_closed"] == 1),
        "FIN → peer_closed"
    );
    let sock = socket2::Socket::from(rst);
    sock.set_linger(Some(Duration::ZERO)).expect("linger 0");
    drop(sock); // RST
    assert!(
        wait_until(T, || server.snapshot().closed["io_error"] == 1),
        "RST → io_error"
    );
    drop(fin);
    assert!(
        wait_until(T, || server.snapshot().open == 0),
        "open gauge back to 0"
    );
    server.stop().expect("stop");
}

#[test]
fn test_thousand_connects_at_once_accepted_in_batches() {
    raise_nofile().expect("raise nofile");
    let server = InProcess::start(config(), EchoFactory::default()).expect("start");
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|_| connect(server.addr, T).expect("connect"))
        .collect();
    for s in conns.iter_mut() {
        s.write_all(b"hello").expect("write");
    }
    let mut back = [0u8; 5];
    for s in conns.iter_mut() {
        s.read_exact(&mut back).expect("served");
        assert_eq!(&back, b"hello");
    }
    let s = server.snapshot();
    assert_eq!(s.accepted, 1000);
    assert!(
        s.accept_batches < s.accepted,
        "{} batches for {} accepts",
        s.accept_batches,
        s.accepted
    );
    server.stop().expect("stop");
}

#[test]
fn test_backpressure_drops_read_interest_then_resumes() {
    let server = InProcess::start(config(), echo(T, 4096)).expect("start");
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect_timeout(&server.addr.into(), T)
        .expect("connect");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(T)).expect("timeout");
    s.set_write_timeout(Some(T)).expect("timeout");
    // Beyond the server's send buffer (at most 4 MiB): its output blocks, the echo stops
    // consuming at 4 KiB pending, and the loop must stop reading.
    let total = 12 * 1024 * 1024;
    let data = pattern(total, 9);
    let mut writer = s.try_clone().expect("clone");
    let sent = data.clone();
    let w = thread::spawn(move || writer.write_all(&sent).map(|_| ()));
    assert!(
        wait_until(T, || server.snapshot().modifications >= 1),
        "read interest dropped (an epoll_ctl MOD)"
    );
    thread::sleep(Duration::from_millis(50));
    let paused = server.snapshot();
    thread::sleep(Duration::from_millis(150));
    let later = server.snapshot();
    assert_eq!(later.bytes_in, paused.bytes_in, "nothing read while paused");
    assert_eq!(
        later.modifications, paused.modifications,
        "no churn while paused"
    );
    let mut got = Vec::with_capacity(total);
    let mut buf = [0u8; 64 * 1024];
    while got.len() < total {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    w.join().expect("writer").expect("write");
    assert!(got == data, "every byte echoed in order");
    assert!(
        server.snapshot().modifications > paused.modifications,
        "interest restored after the pause"
    );
    server.stop().expect("stop");
}

#[test]
fn test_max_connections_reached_connection_refused_counted() {
    let mut cfg = config();
    cfg.loop_config.max_connections = 3;
    let service = std::sync::Arc::new(m08_http11::lab::LabService::new().expect("service"));
    let factory = m08_http11::Http11Factory::new(service, m08_http11::Http11Config::default());
    let server = InProcess::start(cfg, factory).expect("start");
    let held: Vec<TcpStream> = (0..3)
        .map(|_| connect(server.addr, T).expect("connect"))
        .collect();
    assert!(wait_until(T, || server.snapshot().open == 3));
    let mut extra = connect(server.addr, T).expect("connect");
    let mut got = Vec::new();
    extra.read_to_end(&mut got).expect("refusal then EOF");
    assert!(
        got.starts_with(b"HTTP/1.1 503"),
        "refusal: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(server.snapshot().refused, 1);
    drop(held);
    // fs.epoll.max_user_watches: the per-user registration limit (ENOSPC past it).
    let watches = std::fs::read_to_string("/proc/sys/fs/epoll/max_user_watches").expect("sysctl");
    let watches: u64 = watches.trim().parse().expect("number");
    assert!(watches > 0);
    eprintln!("fs.epoll.max_user_watches = {watches}");
    server.stop().expect("stop");
}

/// Echo whose `handle_input` sleeps: a session that blocks its loop.
#[derive(Debug, Clone, Copy)]
struct SleepyFactory(Duration);

#[derive(Debug)]
struct SleepySession(EchoSession, Duration);

impl Session for SleepySession {
    type Event = <EchoSession as Session>::Event;
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        thread::sleep(self.1);
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

impl SessionFactory for SleepyFactory {
    type Session = SleepySession;
    fn new_session(&self, _peer: SocketAddr, now: Instant) -> SleepySession {
        SleepySession(EchoSession::new(EchoConfig::default(), now), self.0)
    }
    fn protocol(&self) -> &'static str {
        "sleepy-echo"
    }
}

#[test]
fn test_session_sleeps_30ms_blocked_iteration_counted() {
    let mut cfg = config();
    cfg.loop_config.log_blocked = false;
    let server = InProcess::start(cfg, SleepyFactory(Duration::from_millis(30))).expect("start");
    let mut s = connect(server.addr, T).expect("connect");
    s.write_all(b"zz").expect("write");
    let mut back = [0u8; 2];
    s.read_exact(&mut back).expect("echo");
    // The iteration is recorded after the echo left: wait for it.
    assert!(
        wait_until(T, || server.snapshot().blocked_iterations >= 1),
        "blocked iteration counted"
    );
    let snap = server.snapshot();
    assert!(
        snap.iteration_max_ns >= 30_000_000,
        "max iteration {} ns",
        snap.iteration_max_ns
    );
    server.stop().expect("stop");
}

#[test]
fn test_session_panics_connection_closed_others_served() {
    let server = InProcess::start(config(), PanicFactory).expect("start");
    let mut good = connect(server.addr, T).expect("connect");
    let mut bad = connect(server.addr, T).expect("connect");
    bad.write_all(PanicFactory::MAGIC).expect("write");
    let mut buf = [0u8; 16];
    let n = bad.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the panicking connection is closed");
    assert!(wait_until(T, || server.snapshot().panics == 1));
    good.write_all(b"still here").expect("write");
    let mut back = [0u8; 10];
    good.read_exact(&mut back)
        .expect("the other connection still served");
    assert_eq!(&back, b"still here");
    let mut fresh = connect(server.addr, T).expect("a new connection after the panic");
    fresh.write_all(b"new").expect("write");
    let mut b3 = [0u8; 3];
    fresh.read_exact(&mut b3).expect("echo");
    let s = server.snapshot();
    assert_eq!(s.closed["panic"], 1);
    assert_eq!(s.panics, 1);
    server.stop().expect("stop");
}

/// Echo that discards the flood byte `x` (a flooding peer needs no reader, so nothing but the
/// loop's own reading decides when its input stops) and echoes everything else.
#[derive(Debug, Clone, Copy)]
struct SinkFactory;

#[derive(Debug)]
struct SinkSession(EchoSession);

impl Session for SinkSession {
    type Event = <EchoSession as Session>::Event;
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let kept: Vec<u8> = input.iter().copied().filter(|&b| b != b'x').collect();
        if kept.is_empty() || self.0.handle_input(now, &kept) == kept.len() {
            input.len()
        } else {
            0 // the echo is backed up: offer it all again later
        }
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

impl SessionFactory for SinkFactory {
    type Session = SinkSession;
    fn new_session(&self, _peer: SocketAddr, now: Instant) -> SinkSession {
        SinkSession(EchoSession::new(
            EchoConfig {
                idle_timeout: T,
                max_pending_output: 1 << 20,
            },
            now,
        ))
    }
    fn protocol(&self) -> &'static str {
        "sink-echo"
    }
}

/// What a probe connection saw while another connection flooded an edge-triggered loop.
#[derive(Debug)]
struct FloodProbe {
    /// Slowest of the probe's round trips; `None`: one was not answered within the deadline.
    worst: Option<Duration>,
    /// Round trips answered.
    answered: usize,
    /// The loop's `read_budget_hits` at the end.
    budget_hits: u64,
}

/// One connection floods an edge-triggered loop (16-byte read buffer, so that the loop reads
/// far slower than the peer writes and the socket never runs dry; `read_budget` reads per
/// connection per turn) with 64 KiB writes of `x`, which the session discards; once 4 MiB have
/// been read, a probe connection makes `rounds` 5-byte echo round trips, each allowed
/// `deadline`.
fn edge_flood_probe(read_budget: usize, rounds: usize, deadline: Duration) -> FloodProbe {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut cfg = config();
    cfg.loop_config.trigger = Trigger::Edge;
    cfg.loop_config.read_budget = read_budget;
    cfg.loop_config.read_buffer = 16;
    cfg.loop_config.log_blocked = false;
    let server = InProcess::start(cfg, SinkFactory).expect("start");
    let mut fw = connect(server.addr, T).expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let s1 = stop.clone();
    let writer = thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        while !s1.load(Ordering::Relaxed) {
            if fw.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    assert!(
        wait_until(T, || server.snapshot().bytes_in > 4 << 20),
        "the flood is being read"
    );
    let mut probe = connect(server.addr, deadline).expect("connect");
    let mut worst = Some(Duration::ZERO);
    let mut answered = 0;
    let mut back = [0u8; 5];
    for _ in 0..rounds {
        let t = Instant::now();
        probe.write_all(b"probe").expect("write");
        if probe.read_exact(&mut back).is_err() {
            worst = None;
            break;
        }
        answered += 1;
        worst = worst.map(|w| w.max(t.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    drop(probe);
    writer.join().expect("writer");
    let budget_hits = server.snapshot().read_budget_hits;
    server.stop().expect("stop");
    FloodProbe {
        worst,
        answered,
        budget_hits,
    }
}

/// Edge-triggered starvation and its cure, with a control. The same flood twice: with the read
/// budget off (`usize::MAX`: read the flood until the socket is empty, which it never is) the
/// probe's first round trip is not answered within 2 s (the loop never leaves the flood's
/// read loop); with a budget of 1 read per turn (then the ready list) every one of 20 round
/// trips is answered within 200 ms (typically under 1 ms; the bound is for a shared, noisy
/// 2-core machine), at least 10 times under the control's deadline.
#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_edge_flood_read_budget_other_connection_answered() {
    let control = edge_flood_probe(usize::MAX, 5, Duration::from_secs(2));
    eprintln!("read budget off: {control:?}");
    let budgeted = edge_flood_probe(1, 20, T);
    eprintln!("read budget 1: {budgeted:?}");
    assert_eq!(
        control.worst, None,
        "control: without a read budget the flood starves the probe past 2 s ({control:?})"
    );
    assert_eq!(control.budget_hits, 0);
    assert_eq!(
        budgeted.answered, 20,
        "every probe answered during the flood"
    );
    let worst = budgeted.worst.expect("answered");
    assert!(
        worst < Duration::from_millis(200),
        "budgeted: probe worst {worst:?}"
    );
    assert!(budgeted.budget_hits > 0, "the flood used its budget");
    assert!(worst * 10 <= Duration::from_secs(2));
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_two_loops_shared_and_reuseport_both_serve() {
    raise_nofile().expect("raise nofile");
    for reuseport in [false, true] {
        let mut cfg = config();
        cfg.workers = 2;
        cfg.reuseport = reuseport;
        let server = InProcess::start(cfg, EchoFactory::default()).expect("start");
        assert_eq!(echo_many(server.addr, 200), 200);
        let per: Vec<u64> = server.stats.per_loop().iter().map(|s| s.accepted).collect();
        eprintln!("reuseport {reuseport}: accepted per loop {per:?}");
        assert_eq!(per.len(), 2);
        assert_eq!(per.iter().sum::<u64>(), 200);
        if reuseport {
            // The kernel hashes the 4-tuple over the two sockets: both get some of 200.
            assert!(per.iter().all(|&n| n > 0), "reuseport spread {per:?}");
        }
        server.stop().expect("stop");
    }
}

#[test]
fn test_mio_edge_listener_backlog_beyond_accept_batch_all_served() {
    // mio is edge-triggered: a listener whose backlog outlasts one accept batch gets no new
    // edge, so the loop must come back to it by itself.
    let mut cfg = config();
    cfg.reactor = ReactorKind::Mio;
    cfg.loop_config.accept_batch = 4;
    cfg.loop_config.log_blocked = false;
    let server = InProcess::start(cfg, EchoFactory::default()).expect("start");
    assert_eq!(
        echo_many(server.addr, 50),
        50,
        "every queued connection served"
    );
    let s = server.snapshot();
    assert_eq!(s.accepted, 50);
    server.stop().expect("stop");
}
