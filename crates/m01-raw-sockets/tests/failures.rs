//! Failure scenarios: descriptor exhaustion, resets, broken pipes, partial writes, interrupted
//! syscalls, timeouts. Each provokes the failure for real on loopback and checks the server
//! survives it, counts it, and keeps serving.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use m01_raw_sockets::lab::{
    self, ServerProcess, ThreadServer, echo_round_trip, pattern, test_config, wait_until,
};
use m01_raw_sockets::sys::{self, signal};
use m01_raw_sockets::{CloseReason, Mode};

const WAIT: Duration = Duration::from_secs(5);

fn client(addr: SocketAddr) -> TcpStream {
    lab::connect(addr, WAIT).expect("connect")
}

/// A client socket with a small receive buffer, set before `connect` so the window is small.
fn small_window_client(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    let fd: OwnedFd = sys::tcp_socket(&addr, false).unwrap();
    sys::set_recv_buffer_size(fd.as_fd(), rcvbuf).unwrap();
    sys::connect(fd.as_fd(), &addr).unwrap();
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

#[test]
fn test_emfile_sheds_then_recovers() {
    // A child echo_server whose soft RLIMIT_NOFILE is 24: 0-2 stdio, listener, self-pipe (2),
    // reserve descriptor = 7, so at most 17 connections fit.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_echo_server"));
    let server = ServerProcess::spawn_binary(
        bin,
        &[],
        &["--nofile", "24", "--quiet", "--json-report"],
        WAIT,
    )
    .unwrap();
    let clients: Vec<TcpStream> = (0..30).map(|_| client(server.addr)).collect();
    let mut served = Vec::new();
    let mut shed = 0;
    for mut c in clients {
        let _ = c.write_all(b"ping");
        let mut back = [0u8; 4];
        match c.read(&mut back) {
            Ok(4) if &back == b"ping" => served.push(c),
            // Shed: accepted into the reserve slot and closed at once (EOF or RST).
            Ok(0) => shed += 1,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                shed += 1
            }
            other => panic!("unexpected client outcome {other:?}"),
        }
    }
    assert!(shed >= 1, "some connections hit EMFILE and were shed");
    assert!(
        !served.is_empty() && served.len() <= 17,
        "served {}",
        served.len()
    );
    // Still running: every served connection still echoes.
    for c in &mut served {
        echo_round_trip(c, b"still here").unwrap();
    }
    // Free the descriptors; new connections are served again.
    let n_served = served.len();
    drop(served);
    let recovered = wait_until(WAIT, || {
        let Ok(mut c) = lab::connect(server.addr, Duration::from_millis(500)) else {
            return false;
        };
        echo_round_trip(&mut c, b"back").is_ok()
    });
    assert!(recovered, "server recovered after clients closed");
    let (status, _, out) = server.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    let report: serde_json::Value = serde_json::from_str(out.last().expect("json report")).unwrap();
    assert!(report["counters"]["fd_limit_hits"].as_u64().unwrap() >= 1);
    assert_eq!(report["counters"]["shed"].as_u64().unwrap(), shed as u64);
    assert!(report["counters"]["accepted"].as_u64().unwrap() > n_served as u64);
}

#[test]
fn test_peer_reset_mid_echo_is_counted() {
    let server = ThreadServer::start(test_config()).unwrap();
    let mut c = client(server.addr);
    c.write_all(&pattern(64 * 1024, 1)).unwrap();
    let mut part = [0u8; 1024];
    c.read_exact(&mut part).unwrap();
    // SO_LINGER 0: close() discards everything and sends RST.
    sys::set_linger(c.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(c);
    assert!(
        wait_until(WAIT, || server.counters.snapshot().resets == 1),
        "{:?}",
        server.counters.snapshot()
    );
    // The server is fine: another client is served.
    let mut d = client(server.addr);
    echo_round_trip(&mut d, b"after the reset").unwrap();
    drop(d);
    let report = server.stop().unwrap();
    assert_eq!(report.connections[0].reason, CloseReason::Reset);
}

#[test]
fn test_closed_peer_write_gives_epipe_not_sigpipe() {
    // Put SIGPIPE back to "terminate": if the server wrote without MSG_NOSIGNAL, this whole test
    // process would die here.
    signal::default_sigpipe().unwrap();
    let mut config = test_config();
    config.buffer_size = 128 * 1024;
    config.send_buffer = Some(4096);
    let server = ThreadServer::start(config).unwrap();
    let mut c = small_window_client(server.addr, 4096);
    c.write_all(&pattern(64 * 1024, 2)).unwrap();
    // FIN: the server reads everything, then EOF, and is left in CLOSE_WAIT with output pending
    // because we do not read.
    c.shutdown(Shutdown::Write).unwrap();
    let stalled = wait_until(WAIT, || {
        let s = server.counters.snapshot();
        s.eofs == 1 && (s.send_would_block + s.partial_writes) >= 1
    });
    assert!(stalled, "{:?}", server.counters.snapshot());
    assert!(wait_until(WAIT, || sys::inq(c.as_fd()).unwrap_or(0) > 0));
    // Closing with unread data sends RST; a socket in CLOSE_WAIT that gets RST reports EPIPE.
    drop(c);
    let piped = wait_until(WAIT, || server.counters.snapshot().broken_pipes == 1);
    assert!(piped, "{:?}", server.counters.snapshot());
    let mut d = client(server.addr);
    echo_round_trip(&mut d, b"alive").unwrap();
    drop(d);
    let report = server.stop().unwrap();
    assert_eq!(report.connections[0].reason, CloseReason::BrokenPipe);
    let sendto = report
        .syscalls
        .get(m01_raw_sockets::accounting::SyscallKind::Sendto);
    assert!(
        sendto.errors_of(m01_raw_sockets::accounting::ErrnoClass::BrokenPipe) >= 1,
        "EPIPE counted"
    );
}

#[test]
fn test_slow_reader_partial_writes_keep_tail() {
    let mut config = test_config();
    config.buffer_size = 16 * 1024;
    config.send_buffer = Some(4096);
    let server = ThreadServer::start(config).unwrap();
    let mut c = small_window_client(server.addr, 4096);
    let payload = pattern(1 << 20, 9);
    let mut writer = c.try_clone().unwrap();
    let sent = payload.clone();
    let t = thread::spawn(move || writer.write_all(&sent));
    // We do not read: the server's send buffer fills, sends go partial / EAGAIN, its buffer
    // fills and it stops reading.
    let backpressure = wait_until(WAIT, || {
        let s = server.counters.snapshot();
        s.read_pauses >= 1 && (s.partial_writes + s.send_would_block) >= 1
    });
    assert!(backpressure, "{:?}", server.counters.snapshot());
    // Now read: every byte comes back, in order: nothing was lost on partial writes.
    let mut back = vec![0u8; payload.len()];
    c.read_exact(&mut back).unwrap();
    t.join().unwrap().unwrap();
    assert!(back == payload);
    drop(c);
    assert!(wait_until(WAIT, || server.counters.snapshot().closed == 1));
    let report = server.stop().unwrap();
    let rec = &report.connections[0];
    assert_eq!(rec.reason, CloseReason::PeerClosed);
    assert!(rec.read_pauses >= 1 && rec.partial_writes >= 1, "{rec:?}");
    assert!(rec.max_outq > 0, "SIOCOUTQ sampled while paused: {rec:?}");
}

#[test]
fn test_blocked_accept_interrupted_retries() {
    signal::install_interrupt_handler(signal::SIGUSR1).unwrap();
    let mut config = test_config();
    config.mode = Mode::Blocking;
    config.tick = Duration::from_secs(2); // accept4 blocks for up to 2 s at a time
    let server = ThreadServer::start(config).unwrap();
    let interrupted = wait_until(WAIT, || {
        let _ = signal::signal_thread(server.tid(), signal::SIGUSR1);
        thread::sleep(Duration::from_millis(5));
        server.counters.snapshot().eintr_retries >= 1
    });
    assert!(interrupted, "EINTR seen and retried");
    let mut c = client(server.addr);
    echo_round_trip(&mut c, b"after EINTR").unwrap();
    drop(c);
    let report = server.stop().unwrap();
    let accept = report
        .syscalls
        .get(m01_raw_sockets::accounting::SyscallKind::Accept4);
    assert!(accept.errors_of(m01_raw_sockets::accounting::ErrnoClass::Interrupted) >= 1);
}

#[test]
fn test_blocked_poll_interrupted_retries() {
    signal::install_interrupt_handler(signal::SIGUSR2).unwrap();
    let server = ThreadServer::start(test_config()).unwrap();
    let interrupted = wait_until(WAIT, || {
        let _ = signal::signal_thread(server.tid(), signal::SIGUSR2);
        thread::sleep(Duration::from_millis(5));
        server.counters.snapshot().eintr_retries >= 1
    });
    assert!(interrupted);
    let mut c = client(server.addr);
    echo_round_trip(&mut c, b"after EINTR").unwrap();
    drop(c);
    let report = server.stop().unwrap();
    let poll = report
        .syscalls
        .get(m01_raw_sockets::accounting::SyscallKind::Poll);
    assert!(poll.errors_of(m01_raw_sockets::accounting::ErrnoClass::Interrupted) >= 1);
}

#[test]
fn test_full_backlog_connect_times_out() {
    // A listener nobody accepts from, backlog 1: once its accept queue is full the kernel drops
    // new SYNs, and connect() would wait through SYN retries for minutes.
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = sys::tcp_socket(&any, false).unwrap();
    sys::bind(listener.as_fd(), &any).unwrap();
    sys::listen(listener.as_fd(), 1).unwrap();
    let addr = sys::getsockname(listener.as_fd()).unwrap();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..16 {
        let t = Instant::now();
        match sys::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(fd) => held.push(fd),
            Err(e) => {
                timed_out = Some((e, t.elapsed()));
                break;
            }
        }
    }
    let (err, took) = timed_out.expect("a connect timed out once the queue was full");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(!held.is_empty());
}

#[test]
fn test_idle_client_read_timeout_closes() {
    let mut config = test_config();
    config.read_timeout = Some(Duration::from_millis(50));
    let server = ThreadServer::start(config).unwrap();
    // Taken before connecting: the server's read timer starts after it (once it accepts),
    // however late this thread then gets to run.
    let t = Instant::now();
    let mut c = client(server.addr);
    let mut buf = [0u8; 1];
    assert_eq!(
        c.read(&mut buf).unwrap(),
        0,
        "server closed the silent connection"
    );
    assert!(t.elapsed() >= Duration::from_millis(45));
    let mut d = client(server.addr);
    echo_round_trip(&mut d, b"still serving").unwrap();
    drop(d);
    let report = server.stop().unwrap();
    assert_eq!(report.counters.read_timeouts, 1);
    assert_eq!(report.connections[0].reason, CloseReason::ReadTimeout);
}

#[test]
fn test_client_recv_timeout_returns_would_block() {
    // The client side of a read timeout: SO_RCVTIMEO makes a blocking recv give up with EAGAIN.
    let server = ThreadServer::start(test_config()).unwrap();
    let fd = sys::connect_timeout(&server.addr, WAIT).unwrap();
    sys::set_read_timeout(fd.as_fd(), Some(Duration::from_millis(30))).unwrap();
    let mut buf = [0u8; 8];
    let t = Instant::now();
    let err = sys::recv(fd.as_fd(), &mut buf, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(25));
    sys::close(fd).unwrap();
    let mut d = client(server.addr);
    echo_round_trip(&mut d, b"still serving").unwrap();
    drop(d);
    server.stop().unwrap();
}

#[test]
fn test_stalled_reader_write_timeout_closes() {
    let mut config = test_config();
    config.write_timeout = Some(Duration::from_millis(100));
    config.send_buffer = Some(4096);
    let server = ThreadServer::start(config).unwrap();
    let mut c = small_window_client(server.addr, 4096);
    c.set_nonblocking(true).unwrap();
    // Write until our own send buffer is full; never read.
    let chunk = pattern(64 * 1024, 4);
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match c.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let closed = wait_until(WAIT, || server.counters.snapshot().write_timeouts == 1);
    assert!(closed, "{:?}", server.counters.snapshot());
    drop(c);
    let mut d = client(server.addr);
    echo_round_trip(&mut d, b"still serving").unwrap();
    drop(d);
    let report = server.stop().unwrap();
    assert_eq!(report.connections[0].reason, CloseReason::WriteTimeout);
}
