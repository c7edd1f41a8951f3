//! The connection table on milestone 1's echo server, real clients on 127.0.0.1:0: every
//! lifecycle's path, and the kernel's agreement at every sample point. Bounded waits only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::Duration;

use m02_tcp_state::TcpState;
use m02_tcp_state::kernel::{self, Keepalive, Timer};
use m02_tcp_state::lab::lifecycle::{self, Kind, Timing};
use m02_tcp_state::lab::{TrackedServer, echo_config, verifying};
use m02_tcp_state::state::KernelState;
use m02_tcp_state::table::{Decision, Lifecycle};

const WAIT: Duration = Duration::from_secs(10);

fn idle_server(timing: &Timing) -> TrackedServer {
    let mut cfg = verifying();
    cfg.table.inactivity_timeout = Some(timing.inactivity);
    cfg.table.fin_wait_timeout = Some(timing.fin_wait);
    cfg.linger2 = Some(Duration::from_secs(1));
    TrackedServer::start(echo_config(), cfg).unwrap()
}

/// Runs one lifecycle and returns the server's record of it.
fn one(server: &TrackedServer, kind: Kind, timing: &Timing) -> Lifecycle {
    let out = lifecycle::run(kind, server.addr, timing, 7).unwrap();
    let mut found = None;
    assert!(
        server.wait_for(WAIT, |t| {
            found = t
                .table()
                .lifecycles()
                .iter()
                .find(|l| l.peer == out.client)
                .cloned();
            found.is_some()
        }),
        "the server never released {}",
        out.client
    );
    let life = found.unwrap();
    if let Err(e) = lifecycle::judge(kind, &life) {
        panic!("{e}");
    }
    life
}

#[test]
fn test_established_accept_agrees_with_kernel() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let mut c = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"hello").unwrap();
    let peer = c.local_addr().unwrap();
    // The echo reached us before the server thread finished counting it: wait for that.
    assert!(server.wait_for(WAIT, |t| {
        t.table().iter().next().is_some_and(|c| c.bytes_out() == 5)
    }));
    server.with(|t| {
        let conn = t.table().iter().next().unwrap();
        assert_eq!(conn.peer(), peer);
        assert_eq!(conn.state(), TcpState::Established);
        let a = conn.agreement();
        assert_eq!((a.samples, a.mismatches), (1, 0), "sampled at accept");
        assert_eq!(a.last_kernel, Some(KernelState::Established));
        assert_eq!((conn.bytes_in(), conn.bytes_out()), (5, 5));
    });
    drop(c);
    server.stop().unwrap();
}

#[test]
fn test_close_wait_peer_fin() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let life = one(&server, Kind::Normal, &Timing::default());
    assert_eq!(life.path.states()[2], TcpState::CloseWait);
    assert!(life.dwell_ns[TcpState::CloseWait.index()] > 0);
    server.stop().unwrap();
}

#[test]
fn test_last_ack_fin_acked() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let life = one(&server, Kind::Normal, &Timing::default());
    assert_eq!(life.path.states()[3], TcpState::LastAck);
    assert_eq!(life.note, "peer_closed");
    // On loopback the ACK of our FIN is normally processed before close.
    server.with(|t| {
        assert_eq!(
            t.table()
                .transitions_between(TcpState::CloseWait, TcpState::LastAck),
            1
        );
    });
    server.stop().unwrap();
}

#[test]
fn test_half_close_client_first_echo_continues() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let life = one(&server, Kind::HalfCloseClient, &Timing::default());
    // All 64 KiB came back although the client had sent FIN: the server kept sending in
    // CLOSE-WAIT.
    assert_eq!((life.bytes_in, life.bytes_out), (65536, 65536));
    assert!(life.dwell_ns[TcpState::CloseWait.index()] > 0);
    server.stop().unwrap();
}

#[test]
fn test_half_close_server_first_time_wait() {
    let timing = Timing::default();
    let server = idle_server(&timing);
    let life = one(&server, Kind::HalfCloseServer, &timing);
    assert_eq!(life.final_state, TcpState::TimeWait);
    // The 1000 bytes the client sent after our FIN were read (and dropped).
    assert_eq!(life.bytes_in, 64 + 1000);
    assert_eq!(life.bytes_out, 64);
    // The kernel holds the server side in TIME-WAIT, and our ledger counts it.
    let local = life.local.unwrap();
    let entries = kernel::proc_net_tcp().unwrap();
    let e = kernel::find_tuple(&entries, local, life.peer).expect("tuple in /proc/net/tcp");
    assert_eq!(e.state, KernelState::TimeWait);
    assert_eq!(e.timer, Timer::TimeWait);
    assert!(server.with(|t| t.table().time_wait_count(std::time::Instant::now())) >= 1);
    server.stop().unwrap();
}

#[test]
fn test_fin_wait_2_timeout_aborts_with_rst() {
    let timing = Timing::default();
    let server = idle_server(&timing);
    let life = one(&server, Kind::FinWait2Timeout, &timing);
    assert_eq!(life.note, "aborted");
    let fw2 = life.dwell_ns[TcpState::FinWait2.index()] + life.dwell_ns[TcpState::FinWait1.index()];
    assert!(
        fw2 >= timing.fin_wait.as_nanos() as u64,
        "aborted after {fw2} ns in FIN-WAIT"
    );
    server.with(|t| {
        assert_eq!(
            t.table()
                .stats(std::time::Instant::now())
                .decisions_fin_wait,
            1
        )
    });
    server.stop().unwrap();
}

#[test]
fn test_established_rst_detected() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let life = one(&server, Kind::Reset, &Timing::default());
    assert_eq!(life.note, "reset");
    assert_eq!(life.agreement.last_kernel, Some(KernelState::Close));
    server.stop().unwrap();
}

#[test]
fn test_keepalive_probe_answered() {
    let timing = Timing::default();
    let mut cfg = verifying();
    cfg.keepalive = Some(Keepalive {
        idle: timing.keepalive_idle,
        interval: Duration::from_secs(1),
        count: 3,
    });
    let server = TrackedServer::start(echo_config(), cfg).unwrap();
    let out = lifecycle::run(Kind::Keepalive, server.addr, &timing, 3).unwrap();
    assert!(
        out.probes_seen >= 1,
        "the client received no keepalive probe while idle"
    );
    server.stop().unwrap();
}

#[test]
fn test_keepalive_timer_armed_on_accepted_connection() {
    let mut cfg = verifying();
    cfg.keepalive = Some(Keepalive {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(5),
        count: 4,
    });
    let server = TrackedServer::start(echo_config(), cfg).unwrap();
    let mut c = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"ka").unwrap();
    let peer = c.local_addr().unwrap();
    let entries = kernel::proc_net_tcp().unwrap();
    let e = kernel::find_tuple(&entries, server.addr, peer).expect("server side listed");
    assert_eq!(e.state, KernelState::Established);
    assert_eq!(e.timer, Timer::Keepalive, "{e:?}");
    assert!(e.timer_ms > 20_000 && e.timer_ms <= 30_000, "{e:?}");
    assert_eq!(server.with(|t| t.option_errors()), 0);
    drop(c);
    server.stop().unwrap();
}

#[test]
fn test_established_inactivity_timeout_closes_idle_connection() {
    let mut cfg = verifying();
    cfg.table.inactivity_timeout = Some(Duration::from_millis(100));
    cfg.table.idle_decision = Decision::Close;
    let server = TrackedServer::start(echo_config(), cfg).unwrap();
    let mut c = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    // Taken before the round trip: the server's last activity (and so the start of its idle
    // timer) is after it, however late this thread then sees the echo.
    let t0 = std::time::Instant::now();
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"idle soon").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "the server closed us");
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(server.wait_for(WAIT, |t| t.table().is_empty()));
    server.with(|t| {
        let l = t.table().lifecycles().iter().last().unwrap().clone();
        assert_eq!(l.note, "requested");
        assert_eq!(
            l.path.states()[..3],
            [TcpState::Closed, TcpState::Established, TcpState::FinWait1]
        );
        assert_eq!(l.agreement.mismatches, 0);
        assert_eq!(
            t.table()
                .stats(std::time::Instant::now())
                .decisions_inactivity,
            1
        );
    });
    server.stop().unwrap();
}

#[test]
fn test_table_full_sheds_connection() {
    let mut cfg = verifying();
    cfg.table.capacity = 2;
    let server = TrackedServer::start(echo_config(), cfg).unwrap();
    let mut a = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    let mut b = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut a, b"a").unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut b, b"b").unwrap();
    // The third is accepted by the kernel, refused by the table, closed at once.
    let mut c = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    let mut buf = [0u8; 4];
    let _ = c.write_all(b"c");
    let n = c.read(&mut buf);
    assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
    server.with(|t| {
        let s = t.table().stats(std::time::Instant::now());
        assert_eq!((s.live, s.refused_full), (2, 1));
    });
    drop((a, b));
    let report = server.stop().unwrap();
    assert_eq!(report.counters.shed, 1);
}

#[test]
fn test_bytes_per_connection_counted() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    let mut c = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    for i in 0..10u8 {
        m01_raw_sockets::lab::echo_round_trip(&mut c, &m01_raw_sockets::lab::pattern(1000, i))
            .unwrap();
    }
    let peer = c.local_addr().unwrap();
    // The client's view of the same connection.
    let info = kernel::tcp_info(c.as_fd()).unwrap();
    // The client's bytes_acked counts its SYN too (one sequence number).
    assert_eq!((info.bytes_acked, info.bytes_received), (10_001, 10_000));
    assert!(server.wait_for(WAIT, |t| {
        t.table()
            .iter()
            .any(|x| x.peer() == peer && x.bytes_out() == 10_000)
    }));
    server.with(|t| {
        let conn = t.table().iter().find(|x| x.peer() == peer).unwrap();
        assert_eq!((conn.bytes_in(), conn.bytes_out()), (10_000, 10_000));
    });
    drop(c);
    server.stop().unwrap();
}

#[test]
fn test_transition_log_timestamps_every_lifecycle() {
    let server = TrackedServer::start(echo_config(), verifying()).unwrap();
    for kind in [Kind::Normal, Kind::Reset, Kind::Normal] {
        one(&server, kind, &Timing::default());
    }
    server.with(|t| {
        let log: Vec<_> = t.table().log().iter().copied().collect();
        // normal: 4 transitions (3 if LAST-ACK outlived the descriptor), reset: 2.
        assert!((8..=10).contains(&log.len()), "{}", log.len());
        assert!(log.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert_eq!(log[0].from, TcpState::Closed);
        assert_eq!(log[0].to, TcpState::Established);
        let s = t.table().stats(std::time::Instant::now());
        assert_eq!(s.transitions as usize, log.len());
        // Rates count complete seconds: ask about a moment once this second is over.
        let later = t.table().epoch() + std::time::Duration::from_secs(1 + s.at_ns / 1_000_000_000);
        assert!(t.table().transitions_per_sec(later) > 0.0);
        assert!(
            s.dwell
                .iter()
                .any(|(st, d)| *st == TcpState::Established && d.count == 3)
        );
    });
    server.stop().unwrap();
}

#[test]
fn test_client_reads_everything_before_our_fin() {
    // Half-close from our side while the client still sends: the client's bytes after our
    // FIN are read (and counted), the client sees EOF, its own direction stays open.
    let timing = Timing::default();
    let server = idle_server(&timing);
    let mut c: TcpStream = m01_raw_sockets::lab::connect(server.addr, WAIT).unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"x").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "server FIN after inactivity");
    let peer = c.local_addr().unwrap();
    c.write_all(&[9u8; 300]).unwrap();
    assert!(server.wait_for(WAIT, |t| {
        t.table()
            .iter()
            .any(|x| x.peer() == peer && x.bytes_in() == 301)
    }));
    server.with(|t| {
        let conn = t.table().iter().find(|x| x.peer() == peer).unwrap();
        assert_eq!(conn.state(), TcpState::FinWait2);
    });
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(server.wait_for(WAIT, |t| t.table().is_empty()));
    server.stop().unwrap();
}
