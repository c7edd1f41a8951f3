//! The thread-per-connection driver on real sockets (127.0.0.1, port 0), every wait bounded.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::lab::{
    self, HoardFactory, PanicFactory, ProbeFactory, RunningServer, connect, echo_round_trip,
    pattern, read_to_close, test_config, wait_until,
};
use m03_thread_per_conn::{CloseReason, EchoFactory, ThreadMode, procfs};

const T: Duration = Duration::from_secs(5);

#[test]
fn test_connections_accepted_each_served_by_own_named_thread() {
    let (config, sink) = test_config();
    let (factory, probes) = ProbeFactory::new(EchoFactory::default());
    let server = RunningServer::start(config, factory).unwrap();
    let mut clients: Vec<_> = (0..20).map(|_| connect(server.addr, T).unwrap()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        echo_round_trip(c, &pattern(100, i as u8)).unwrap();
    }
    let s = server.stats.snapshot();
    assert_eq!(
        (s.spawned, s.threads_live, s.connections_live),
        (20, 20, 20)
    );
    // The kernel sees one thread per connection, named conn-N: ask it about the threads that
    // created this server's sessions (other tests' servers also have conn-N threads).
    let mut tids: Vec<i32> = probes.get().iter().map(|p| p.tid).collect();
    tids.sort_unstable();
    tids.dedup();
    assert_eq!(tids.len(), 20, "one thread per connection: {tids:?}");
    let mut names: Vec<String> = tids
        .iter()
        .map(|&tid| procfs::thread_sample(tid).unwrap().name)
        .collect();
    names.sort_unstable();
    let mut expected: Vec<String> = (1..=20).map(|id| format!("conn-{id}")).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    drop(clients);
    assert!(wait_until(T, || server.stats.snapshot().joined == 20));
    let report = server.stop().unwrap();
    assert_eq!(report.stats.closed(CloseReason::PeerClosed), 20);
    assert_eq!(report.stats.traffic.bytes_in, 2000);
    assert_eq!(report.stats.traffic.bytes_out, 2000);
    assert_eq!(report.unjoined, 0);
    // Lifecycle lines carry the thread's name.
    let lines = sink.lines();
    for needle in [
        "spawned conn-7",
        "[conn-7] conn 7 from",
        "[conn-7] exiting",
        "joined conn-7",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no {needle:?} in {lines:#?}"
        );
    }
}

#[test]
fn test_concurrent_clients_receive_only_their_own_bytes() {
    let (config, _) = test_config();
    let server = RunningServer::start(config, EchoFactory::default()).unwrap();
    let barrier = Arc::new(Barrier::new(100));
    let addr = server.addr;
    let handles: Vec<_> = (0..100u8)
        .map(|i| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut c = connect(addr, T).unwrap();
                b.wait();
                for round in 0..10u8 {
                    let msg = pattern(1000, i.wrapping_mul(7).wrapping_add(round));
                    echo_round_trip(&mut c, &msg).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let report = server.stop().unwrap();
    assert_eq!(report.stats.spawned, 100);
    assert_eq!(report.stats.traffic.bytes_out, 100 * 10 * 1000);
    assert_eq!(report.stats.connections_live, 0);
    assert_eq!(report.stats.live_slots, 0);
}

#[test]
fn test_session_panic_caught_connection_closed_server_lives() {
    let (config, sink) = test_config();
    let server = RunningServer::start(config, PanicFactory).unwrap();
    let mut bad = connect(server.addr, T).unwrap();
    bad.write_all(PanicFactory::MAGIC).unwrap();
    let (_, eof) = read_to_close(&mut bad, T);
    assert!(eof, "the panicking connection is closed");
    // Another connection, before and after, is served.
    let mut good = connect(server.addr, T).unwrap();
    echo_round_trip(&mut good, b"still here").unwrap();
    assert!(wait_until(T, || server.stats.snapshot().panics == 1));
    drop(good);
    let report = server.stop().unwrap();
    assert_eq!(report.stats.panics, 1);
    assert_eq!(report.stats.closed(CloseReason::Panic), 1);
    assert_eq!(report.stats.exited, report.stats.spawned);
    assert!(
        sink.lines()
            .iter()
            .any(|l| l.contains("panic caught: magic input"))
    );
}

#[test]
fn test_session_never_consuming_closed_with_input_overflow() {
    let (config, _) = test_config();
    let server = RunningServer::start(config, HoardFactory { limit: 1024 }).unwrap();
    let mut c = connect(server.addr, T).unwrap();
    let _ = c.write_all(&[b'x'; 4096]);
    let (_, eof) = read_to_close(&mut c, T);
    assert!(eof);
    let report = server.stop().unwrap();
    assert_eq!(report.stats.closed(CloseReason::InputOverflow), 1);
    // Never more than the limit was read.
    assert!(
        report.stats.traffic.bytes_in <= 1024,
        "{:?}",
        report.stats.traffic
    );
}

#[test]
fn test_silent_client_idle_timeout_closes() {
    let (config, _) = test_config();
    let server =
        RunningServer::start(config, lab::short_timeout_echo(Duration::from_millis(200))).unwrap();
    let mut c = connect(server.addr, T).unwrap();
    // Taken before the round trip: the session's last activity (and so the start of its idle
    // timer) is after it, however late this thread then sees the echo.
    let t = Instant::now();
    echo_round_trip(&mut c, b"hi").unwrap();
    let (_, eof) = read_to_close(&mut c, T);
    assert!(eof);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let report = server.stop().unwrap();
    assert_eq!(report.stats.closed(CloseReason::Timeout), 1);
}

#[test]
fn test_thread_cap_reached_refusal_sent_and_counted() {
    let (mut config, _) = test_config();
    config.max_threads = 2;
    let server = RunningServer::start(config, PanicFactory).unwrap();
    let mut a = connect(server.addr, T).unwrap();
    let mut b = connect(server.addr, T).unwrap();
    echo_round_trip(&mut a, b"a").unwrap();
    echo_round_trip(&mut b, b"b").unwrap();
    let mut c = connect(server.addr, T).unwrap();
    let (got, eof) = read_to_close(&mut c, T);
    assert_eq!((got.as_slice(), eof), (&b"BUSY\n"[..], true));
    drop(a);
    assert!(wait_until(T, || server.stats.snapshot().threads_live == 1));
    let mut d = connect(server.addr, T).unwrap();
    echo_round_trip(&mut d, b"served again").unwrap();
    drop((b, d));
    let report = server.stop().unwrap();
    assert_eq!(report.stats.refused_cap, 1);
    assert_eq!(report.stats.closed(CloseReason::Refused), 1);
    assert_eq!(report.stats.spawned, 3);
}

#[test]
fn test_shutdown_blocked_readers_woken_all_joined() {
    let (config, sink) = test_config();
    let server = RunningServer::start(config, EchoFactory::default()).unwrap();
    let mut clients: Vec<_> = (0..50).map(|_| connect(server.addr, T).unwrap()).collect();
    for c in &mut clients {
        echo_round_trip(c, b"x").unwrap();
    }
    // Every thread is now blocked in recv with a 30 s idle deadline.
    let t = Instant::now();
    let report = server.stop().unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(!report.forced);
    assert_eq!(report.unjoined, 0);
    assert_eq!(report.stats.joined, 50);
    assert_eq!(report.stats.threads_live, 0);
    assert_eq!(report.stats.closed(CloseReason::Shutdown), 50);
    for c in &mut clients {
        let (_, eof) = read_to_close(c, T);
        assert!(eof, "client sees the server's FIN");
    }
    assert!(sink.lines().iter().any(|l| l.contains("shutdown complete")));
}

#[test]
fn test_shutdown_stuck_writer_forced_after_grace() {
    let (mut config, _) = test_config();
    config.shutdown_grace = Duration::from_millis(300);
    let server = RunningServer::start(config, EchoFactory::default()).unwrap();
    let mut c = connect(server.addr, T).unwrap();
    c.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Send without reading: the echo fills our receive buffer, then the server blocks in send.
    let chunk = vec![7u8; 64 * 1024];
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        if c.write(&chunk).is_err() {
            break;
        }
    }
    let report = server.stop().unwrap();
    assert!(report.forced, "{report:?}");
    assert_eq!(report.unjoined, 0);
    assert_eq!(report.stats.threads_live, 0);
    assert!(report.stats.forced_shutdowns >= 1);
    assert_eq!(report.stats.closed(CloseReason::Shutdown), 1);
    let _ = c.shutdown(Shutdown::Both);
}

#[test]
fn test_prespawned_pool_queue_full_refused() {
    let (mut config, _) = test_config();
    config.mode = ThreadMode::Prespawned {
        workers: 2,
        queue: 1,
    };
    let server = RunningServer::start(config, PanicFactory).unwrap();
    // Both workers parked on the channel before the first connection.
    assert!(wait_until(T, || server.stats.snapshot().started == 2));
    let mut a = connect(server.addr, T).unwrap();
    echo_round_trip(&mut a, b"a").unwrap();
    let mut b = connect(server.addr, T).unwrap();
    echo_round_trip(&mut b, b"b").unwrap();
    let mut queued = connect(server.addr, T).unwrap();
    queued.write_all(b"waiting").unwrap();
    let mut refused = connect(server.addr, T).unwrap();
    let (got, eof) = read_to_close(&mut refused, T);
    assert_eq!((got.as_slice(), eof), (&b"BUSY\n"[..], true));
    // A worker frees up and takes the queued connection.
    drop(a);
    let mut back = [0u8; 7];
    queued.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"waiting");
    drop((b, queued));
    let report = server.stop().unwrap();
    assert_eq!(report.stats.spawned, 2, "no thread per connection");
    assert_eq!(report.stats.refused_cap, 1);
    assert_eq!(report.stats.joined, 2);
}

/// Answers one line at a time, and only once its previous answer was written: a session that
/// applies backpressure the way a pipelining HTTP core with depth 1 does.
struct OneLineAtATime {
    out: m03_thread_per_conn::Outbox,
    state: m03_thread_per_conn::SessionState,
}

impl m03_thread_per_conn::Session for OneLineAtATime {
    type Event = ();

    fn handle_input(&mut self, _now: Instant, input: &[u8]) -> usize {
        if !self.out.is_empty() {
            return 0; // busy until the answer is written
        }
        match input.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.out.push(&input[..=end]);
                end + 1
            }
            None => 0,
        }
    }

    fn handle_eof(&mut self, _now: Instant, _unconsumed: &[u8]) {
        self.state = m03_thread_per_conn::SessionState::Closing(CloseReason::PeerClosed);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn pending_output(&self) -> &[u8] {
        self.out.pending()
    }

    fn consume_output(&mut self, n: usize) {
        self.out.consume(n);
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }

    fn state(&self) -> m03_thread_per_conn::SessionState {
        self.state
    }

    fn input_limit(&self) -> usize {
        4096
    }

    fn begin_shutdown(&mut self, _now: Instant) {
        self.state = m03_thread_per_conn::SessionState::Closing(CloseReason::Shutdown);
    }
}

struct OneLineFactory;

impl m03_thread_per_conn::SessionFactory for OneLineFactory {
    type Session = OneLineAtATime;

    fn new_session(&self, _peer: std::net::SocketAddr, _now: Instant) -> OneLineAtATime {
        OneLineAtATime {
            out: m03_thread_per_conn::Outbox::new(),
            state: m03_thread_per_conn::SessionState::Open,
        }
    }

    fn protocol(&self) -> &'static str {
        "one-line"
    }
}

#[test]
fn test_unconsumed_input_offered_again_after_output_drains() {
    let (config, _) = test_config();
    let server = RunningServer::start(config, OneLineFactory).unwrap();
    let mut c = connect(server.addr, T).unwrap();
    // Three lines in one write; the session takes the second only after the first answer left.
    c.write_all(b"one\ntwo\nthree\n").unwrap();
    let mut got = vec![0u8; 14];
    c.read_exact(&mut got)
        .expect("all three answers arrive without the client sending more");
    assert_eq!(got, b"one\ntwo\nthree\n");
    drop(c);
    server.stop().unwrap();
}
