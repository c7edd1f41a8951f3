//! Loopback integration tests: a real server on 127.0.0.1:0, real clients, bounded waits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use m01_raw_sockets::lab::{self, ThreadServer, echo_round_trip, pattern, test_config, wait_until};
use m01_raw_sockets::stats::{self, TCP_TIME_WAIT};
use m01_raw_sockets::{CloseReason, EchoConfig, EchoServer, Error, Mode};

const WAIT: Duration = Duration::from_secs(5);

fn client(addr: SocketAddr) -> TcpStream {
    lab::connect(addr, WAIT).expect("connect")
}

#[test]
fn test_default_config_binds_localhost_3000() {
    let config = EchoConfig::default();
    assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 3000)));
    assert!(config.reuse_addr && config.nodelay);
    assert_eq!(config.backlog, 128);
    match EchoServer::bind(config) {
        Ok(server) => assert_eq!(server.local_addr().to_string(), "127.0.0.1:3000"),
        // Another process on this machine may legitimately own port 3000 right now.
        Err(Error::Bind { addr, source }) => {
            assert_eq!(addr.port(), 3000);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{source}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn test_idle_server_echo_round_trip() {
    let server = ThreadServer::start(test_config()).unwrap();
    let mut c = client(server.addr);
    echo_round_trip(&mut c, b"hello, kernel").unwrap();
    echo_round_trip(&mut c, b"again").unwrap();
    drop(c);
    assert!(wait_until(WAIT, || server.counters.snapshot().closed == 1));
    let report = server.stop().unwrap();
    assert_eq!(report.counters.bytes_in, 18);
    assert_eq!(report.counters.bytes_out, 18);
    assert_eq!(report.connections[0].reason, CloseReason::PeerClosed);
}

#[test]
fn test_small_buffer_large_payload_echoes_in_order() {
    let mut config = test_config();
    config.buffer_size = 1024;
    let server = ThreadServer::start(config).unwrap();
    let mut c = client(server.addr);
    let payload = pattern(1 << 20, 7);
    let mut writer = c.try_clone().unwrap();
    let sent = payload.clone();
    let t = std::thread::spawn(move || writer.write_all(&sent));
    let mut back = vec![0u8; payload.len()];
    c.read_exact(&mut back).unwrap();
    t.join().unwrap().unwrap();
    assert!(
        back == payload,
        "1 MiB through a 1 KiB buffer arrives intact and in order"
    );
    drop(c);
    let report = server.stop().unwrap();
    assert_eq!(report.counters.bytes_out, 1 << 20);
}

#[test]
fn test_hundred_clients_concurrent_echo() {
    let server = ThreadServer::start(test_config()).unwrap();
    let mut clients: Vec<TcpStream> = (0..100).map(|_| client(server.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&pattern(100, i as u8)).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut back = [0u8; 100];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back.to_vec(), pattern(100, i as u8));
    }
    assert_eq!(server.counters.snapshot().peak_active, 100);
    drop(clients);
    assert!(wait_until(WAIT, || server.counters.snapshot().active == 0));
    let report = server.stop().unwrap();
    assert_eq!(report.counters.accepted, 100);
    assert_eq!(report.counters.closed, 100);
    assert_eq!(report.fds.open_at_exit, 0);
    assert!(
        report.fds.peak_open >= 104,
        "listener + pipe + reserve + 100 connections"
    );
}

#[test]
fn test_accept_records_client_address() {
    let server = ThreadServer::start(test_config()).unwrap();
    let mut c = client(server.addr);
    let me = c.local_addr().unwrap();
    echo_round_trip(&mut c, b"who am i").unwrap();
    drop(c);
    assert!(wait_until(WAIT, || server.counters.snapshot().closed == 1));
    let report = server.stop().unwrap();
    assert_eq!(report.connections.len(), 1);
    assert_eq!(
        report.connections[0].peer, me,
        "accept4 returned the client's address"
    );
}

#[test]
fn test_accept_logs_client_address() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_echo_server"));
    let server = lab::ServerProcess::spawn_binary(bin, &[], &[], WAIT).unwrap();
    let mut c = client(server.addr);
    let me = c.local_addr().unwrap().to_string();
    echo_round_trip(&mut c, b"log me").unwrap();
    let logged = wait_until(WAIT, || {
        server
            .stderr_lines()
            .iter()
            .any(|l| l.contains("accepted") && l.contains(&me))
    });
    assert!(logged, "stderr: {:?}", server.stderr_lines());
    drop(c);
    let (status, _, _) = server.terminate(WAIT).unwrap();
    assert!(status.success());
}

#[test]
fn test_accepted_socket_has_nodelay() {
    for nodelay in [true, false] {
        let mut config = test_config();
        config.nodelay = nodelay;
        let server = ThreadServer::start(config).unwrap();
        let mut c = client(server.addr);
        echo_round_trip(&mut c, b"x").unwrap();
        drop(c);
        assert!(wait_until(WAIT, || server.counters.snapshot().closed == 1));
        let report = server.stop().unwrap();
        // Read back from the kernel with getsockopt(TCP_NODELAY) after setting it.
        assert_eq!(report.connections[0].nodelay, nodelay);
        assert!(report.connections[0].sndbuf > 0 && report.connections[0].rcvbuf > 0);
    }
}

#[test]
fn test_time_wait_port_rebind_with_reuseaddr() {
    // The server closes first (read timeout), so its side of the connection enters TIME_WAIT.
    let mut config = test_config();
    config.read_timeout = Some(Duration::from_millis(20));
    let server = ThreadServer::start(config).unwrap();
    let port = server.addr.port();
    let mut c = client(server.addr);
    let mut buf = [0u8; 1];
    assert_eq!(
        c.read(&mut buf).unwrap(),
        0,
        "the server closed the idle connection"
    );
    drop(c);
    let in_time_wait = wait_until(WAIT, || {
        stats::tcp_sockets_in_state(port, TCP_TIME_WAIT).unwrap().0 >= 1
    });
    assert!(in_time_wait, "server-side TIME_WAIT on port {port}");
    server.stop().unwrap();

    let mut again = test_config();
    again.listen = SocketAddr::from(([127, 0, 0, 1], port));
    again.reuse_addr = false;
    match EchoServer::bind(again.clone()) {
        Err(Error::Bind { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse),
        other => panic!("without SO_REUSEADDR bind should fail with EADDRINUSE, got {other:?}"),
    }
    again.reuse_addr = true;
    let server = EchoServer::bind(again).expect("SO_REUSEADDR allows the rebind");
    assert_eq!(server.local_addr().port(), port);
}

#[test]
fn test_blocking_mode_round_trip() {
    let mut config = test_config();
    config.mode = Mode::Blocking;
    let server = ThreadServer::start(config).unwrap();
    let mut c = client(server.addr);
    echo_round_trip(&mut c, &pattern(100_000, 3)).unwrap();
    drop(c);
    assert!(wait_until(WAIT, || server.counters.snapshot().closed == 1));
    let report = server.stop().unwrap();
    assert_eq!(report.counters.bytes_out, 100_000);
}

#[test]
fn test_blocking_busy_backlog_queues_clients() {
    let mut config = test_config();
    config.mode = Mode::Blocking;
    config.backlog = 4;
    let server = ThreadServer::start(config).unwrap();
    let mut a = client(server.addr);
    echo_round_trip(&mut a, b"a").unwrap();
    // B's handshake completes in the kernel (accept queue), but nobody reads it while A is served.
    let mut b = client(server.addr);
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    b.write_all(b"b").unwrap();
    let mut one = [0u8; 1];
    let err = b.read(&mut one).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    assert_eq!(server.counters.snapshot().accepted, 1);
    drop(a);
    b.set_read_timeout(Some(WAIT)).unwrap();
    b.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"b", "served once A left");
    drop(b);
    server.stop().unwrap();
}

#[test]
fn test_stopped_server_refuses_connections() {
    let server = ThreadServer::start(test_config()).unwrap();
    let addr = server.addr;
    let report = server.stop().unwrap();
    assert!(report.shutdown.is_some());
    assert_eq!(report.fds.open_at_exit, 0);
    assert!(
        TcpStream::connect_timeout(&addr, WAIT).is_err(),
        "listener closed"
    );
}
