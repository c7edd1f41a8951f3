//! The tracker on sockets this test holds itself, so that states which are fleeting on a
//! server (SYN-SENT, CLOSE-WAIT, FIN-WAIT-2, TIME-WAIT) can be held still and compared with
//! the kernel three ways: our table, `TCP_INFO` and `/proc/net/tcp`.

use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::kernel::{self, Keepalive};
use m02_tcp_state::state::{KernelState, agrees_with_fd};
use m02_tcp_state::{Event, TcpState, Tracker, TrackerConfig};

const WAIT: Duration = Duration::from_secs(5);

fn listener(backlog: i32) -> (OwnedFd, SocketAddr) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let l = sys::tcp_socket(&any, false).unwrap();
    sys::bind(l.as_fd(), &any).unwrap();
    sys::listen(l.as_fd(), backlog).unwrap();
    let addr = sys::getsockname(l.as_fd()).unwrap();
    (l, addr)
}

/// (client, server side) of one loopback connection; the server side is tracked.
fn tracked_pair(t: &mut Tracker) -> (OwnedFd, OwnedFd, SocketAddr) {
    let (l, addr) = listener(8);
    let client = sys::connect_timeout(&addr, WAIT).unwrap();
    let (server, peer) = sys::accept4(l.as_fd(), false).unwrap();
    t.open_passive(server.as_fd(), peer, Instant::now())
        .unwrap();
    (client, server, peer)
}

fn verifying() -> Tracker {
    let mut c = TrackerConfig::default();
    c.verify = true;
    Tracker::new(c, Instant::now())
}

/// Waits until `fd` is readable (bounded).
fn readable(fd: &OwnedFd) {
    let mut p = [sys::PollFd::new(fd.as_fd(), sys::POLLIN)];
    assert_eq!(
        sys::poll(&mut p, Some(WAIT)).unwrap(),
        1,
        "not readable in time"
    );
}

fn proc_state(local: SocketAddr, remote: SocketAddr) -> Option<KernelState> {
    let e = kernel::proc_net_tcp().unwrap();
    kernel::find_tuple(&e, local, remote).map(|e| e.state)
}

fn state_of(t: &Tracker, fd: &OwnedFd) -> TcpState {
    use std::os::fd::AsRawFd;
    let id = t.id_of(fd.as_raw_fd()).unwrap();
    t.table().get(id).unwrap().state()
}

#[test]
fn test_kernel_state_agrees_at_sample_points() {
    let mut t = verifying();
    let (client, server, peer) = tracked_pair(&mut t);
    let local = sys::getsockname(server.as_fd()).unwrap();
    // ESTABLISHED: three views.
    let (s, info) = t.sample(server.as_fd(), Instant::now()).unwrap();
    assert!(s.agreed);
    assert_eq!(info.kernel_state(), KernelState::Established);
    assert_eq!(proc_state(local, peer), Some(KernelState::Established));
    // The peer's FIN: CLOSE-WAIT, held as long as we do not close.
    sys::shutdown(client.as_fd(), Shutdown::Write).unwrap();
    readable(&server);
    let mut buf = [0u8; 8];
    assert_eq!(sys::recv(server.as_fd(), &mut buf, 0).unwrap(), 0);
    assert_eq!(
        t.observe(server.as_fd(), Event::PeerFin, Instant::now()),
        Some(TcpState::CloseWait)
    );
    assert_eq!(proc_state(local, peer), Some(KernelState::CloseWait));
    // The client side of the same connection sits in FIN-WAIT-2.
    assert_eq!(proc_state(peer, local), Some(KernelState::FinWait2));
    // Our FIN: LAST-ACK, then CLOSED once acknowledged (SIOCOUTQ = 0).
    sys::shutdown(server.as_fd(), Shutdown::Write).unwrap();
    let after = t
        .observe(server.as_fd(), Event::ShutdownWrite, Instant::now())
        .unwrap();
    assert!(
        matches!(after, TcpState::LastAck | TcpState::Closed),
        "{after}"
    );
    assert!(m02_tcp_state::lab::wait_until(WAIT, || {
        t.sample(server.as_fd(), Instant::now());
        state_of(&t, &server) == TcpState::Closed
    }));
    // The client, which closed first, holds the TIME-WAIT.
    assert_eq!(proc_state(peer, local), Some(KernelState::TimeWait));
    let life = t
        .close(server.as_fd(), false, "test", Instant::now())
        .unwrap();
    assert_eq!(life.agreement.mismatches, 0, "{:?}", life.agreement);
    assert!(life.agreement.samples >= 5);
    assert_eq!(
        life.path.states(),
        [
            TcpState::Closed,
            TcpState::Established,
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closed
        ]
    );
    sys::close(client).unwrap();
    sys::close(server).unwrap();
}

#[test]
fn test_fin_wait_2_peer_fin_time_wait_fd_reads_close() {
    let mut t = verifying();
    let (client, server, peer) = tracked_pair(&mut t);
    let local = sys::getsockname(server.as_fd()).unwrap();
    // We close first: FIN-WAIT-1, and FIN-WAIT-2 as soon as the ACK is in.
    sys::shutdown(server.as_fd(), Shutdown::Write).unwrap();
    t.observe(server.as_fd(), Event::ShutdownWrite, Instant::now());
    assert!(m02_tcp_state::lab::wait_until(WAIT, || {
        t.sample(server.as_fd(), Instant::now());
        state_of(&t, &server) == TcpState::FinWait2
    }));
    assert_eq!(proc_state(local, peer), Some(KernelState::FinWait2));
    assert_eq!(proc_state(peer, local), Some(KernelState::CloseWait));
    // Their FIN: TIME-WAIT. Our descriptor now reads CLOSE (the connection moved to a
    // timewait sock), /proc/net/tcp lists the tuple as TIME-WAIT.
    sys::shutdown(client.as_fd(), Shutdown::Write).unwrap();
    readable(&server);
    let mut buf = [0u8; 8];
    assert_eq!(sys::recv(server.as_fd(), &mut buf, 0).unwrap(), 0);
    assert_eq!(
        t.observe(server.as_fd(), Event::PeerFin, Instant::now()),
        Some(TcpState::TimeWait)
    );
    let info = kernel::tcp_info(server.as_fd()).unwrap();
    assert_eq!(info.kernel_state(), KernelState::Close);
    assert!(agrees_with_fd(TcpState::TimeWait, info.kernel_state()));
    assert_eq!(proc_state(local, peer), Some(KernelState::TimeWait));
    let life = t
        .close(server.as_fd(), false, "test", Instant::now())
        .unwrap();
    assert_eq!(life.final_state, TcpState::TimeWait);
    assert_eq!(life.agreement.mismatches, 0);
    assert_eq!(t.table().time_wait_count(Instant::now()), 1);
    sys::close(client).unwrap();
    sys::close(server).unwrap();
}

#[test]
fn test_syn_sent_connect_started() {
    // A listener whose accept queue is full drops new SYNs: the connect stays in SYN-SENT,
    // retransmitting.
    let (l, addr) = listener(0);
    let mut held = Vec::new();
    let mut t = verifying();
    let mut pending = None;
    for _ in 0..8 {
        let fd = sys::tcp_socket(&addr, true).unwrap();
        match sys::connect(fd.as_fd(), &addr) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            other => panic!("{other:?}"),
        }
        t.open_active(fd.as_fd(), addr, Instant::now()).unwrap();
        if state_of(&t, &fd) == TcpState::SynSent {
            pending = Some(fd);
            break;
        }
        held.push(fd);
    }
    let fd = pending.expect("a SYN was dropped (accept queue full)");
    let (s, info) = t.sample(fd.as_fd(), Instant::now()).unwrap();
    assert!(s.agreed, "{s:?}");
    assert_eq!(info.kernel_state(), KernelState::SynSent);
    let local = sys::getsockname(fd.as_fd()).unwrap();
    assert_eq!(proc_state(local, addr), Some(KernelState::SynSent));
    // The connections that got through went SYN-SENT → ESTABLISHED.
    assert!(
        t.table()
            .transitions_between(TcpState::SynSent, TcpState::Established)
            >= 1
    );
    let life = t.close(fd.as_fd(), false, "test", Instant::now()).unwrap();
    assert_eq!(
        life.path.states(),
        [TcpState::Closed, TcpState::SynSent, TcpState::Closed]
    );
    assert_eq!(life.agreement.mismatches, 0);
    drop(held);
    drop(l);
}

#[test]
fn test_keepalive_options_set_and_read_back() {
    let k = Keepalive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(3),
        count: 5,
    };
    let mut c = TrackerConfig::default();
    c.keepalive = Some(k);
    c.linger2 = Some(Duration::from_secs(4));
    let mut t = Tracker::new(c, Instant::now());
    let (_client, server, _) = tracked_pair(&mut t);
    assert_eq!(kernel::keepalive(server.as_fd()).unwrap(), Some(k));
    assert_eq!(k.detection_time(), Duration::from_secs(22));
    assert_eq!(
        kernel::linger2(server.as_fd()).unwrap(),
        Duration::from_secs(4)
    );
    let (plain, _) = listener(1);
    assert_eq!(
        kernel::keepalive(plain.as_fd()).unwrap(),
        None,
        "off by default"
    );
}

#[test]
fn test_bytes_agree_with_tcp_info() {
    let mut t = verifying();
    let (client, server, _) = tracked_pair(&mut t);
    use std::os::fd::AsRawFd;
    let id = t.id_of(server.as_raw_fd()).unwrap();
    let msg = vec![5u8; 3000];
    let mut sent = 0;
    while sent < msg.len() {
        sent += sys::send(client.as_fd(), &msg[sent..], sys::MSG_NOSIGNAL).unwrap();
    }
    let mut got = 0;
    let mut buf = [0u8; 1024];
    while got < msg.len() {
        readable(&server);
        let n = sys::recv(server.as_fd(), &mut buf, 0).unwrap();
        t.table_mut().record_read(id, n, Instant::now());
        let w = sys::send(server.as_fd(), &buf[..n], sys::MSG_NOSIGNAL).unwrap();
        t.table_mut().record_write(id, w, Instant::now());
        got += n;
    }
    assert!(m02_tcp_state::lab::wait_until(WAIT, || {
        kernel::tcp_info(server.as_fd()).is_ok_and(|i| i.bytes_acked == 3000)
    }));
    let info = kernel::tcp_info(server.as_fd()).unwrap();
    let c = t.table().get(id).unwrap();
    assert_eq!((c.bytes_in(), info.bytes_received), (3000, 3000));
    assert_eq!((c.bytes_out(), info.bytes_acked), (3000, 3000));
    let mem = kernel::sk_meminfo(server.as_fd()).unwrap();
    assert!(mem.sndbuf > 0 && mem.rcvbuf > 0, "{mem:?}");
    drop(client);
}

#[test]
fn test_table_full_outcome_is_explicit() {
    let mut c = TrackerConfig::default();
    c.table.capacity = 1;
    let mut t = Tracker::new(c, Instant::now());
    let (_c1, _s1, _) = tracked_pair(&mut t);
    let (l, addr) = listener(1);
    let _c2 = sys::connect_timeout(&addr, WAIT).unwrap();
    let (s2, peer) = sys::accept4(l.as_fd(), false).unwrap();
    let err = t
        .open_passive(s2.as_fd(), peer, Instant::now())
        .unwrap_err();
    assert_eq!(err.capacity, 1);
    assert_eq!(t.table().stats(Instant::now()).refused_full, 1);
}
