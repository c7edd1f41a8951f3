//! File-descriptor exhaustion, in its own test binary (it lowers this process's
//! `RLIMIT_NOFILE`, which would break any test running beside it).
//!
//! The clients' sockets are created *before* the limit is lowered (connecting needs no new
//! descriptor), so it is the server's `accept4` that meets `EMFILE`: the loop must survive it
//! (the reserve-descriptor trick), refuse the excess, and serve again once descriptors free up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use m03_thread_per_conn::EchoFactory;
use m09_event_loop::lab::{InProcess, connect, wait_until};
use m09_event_loop::{ServerConfig, sys};

const T: Duration = Duration::from_secs(5);

#[test]
fn test_fd_table_full_accept_survives_and_recovers() {
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("literal"));
    cfg.loop_config.log_blocked = false;
    let server = InProcess::start(cfg, EchoFactory::default()).expect("start");
    let (soft, _) = sys::nofile_limit().expect("getrlimit");
    let clients = 40;
    let sockets: Vec<socket2::Socket> = (0..clients)
        .map(|_| {
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket")
        })
        .collect();
    let highest = sockets.iter().map(|s| s.as_raw_fd()).max().expect("some") as u64;
    // Room for about 8 more descriptors above everything open now.
    sys::set_nofile_soft(highest + 1 + 8).expect("lower soft limit");
    let addr: SocketAddr = server.addr;
    let mut streams: Vec<TcpStream> = Vec::new();
    for s in sockets {
        s.connect_timeout(&addr.into(), T)
            .expect("connect (backlog)");
        let t: TcpStream = s.into();
        t.set_read_timeout(Some(T)).expect("timeout");
        t.set_write_timeout(Some(T)).expect("timeout");
        streams.push(t);
    }
    assert!(
        wait_until(T, || {
            let s = server.snapshot();
            s.accepted + s.refused >= clients as u64
        }),
        "every connection accepted or refused: {:?}",
        server.snapshot()
    );
    let snap = server.snapshot();
    assert!(snap.fd_exhausted > 0, "EMFILE met: {snap:?}");
    assert!(snap.refused > 0);
    let (mut served, mut refused) = (0, 0);
    for s in streams.iter_mut() {
        let mut b = [0u8; 4];
        // A refused client reads EOF (or a reset); an accepted one gets its echo.
        if s.write_all(b"ping").is_ok() && s.read_exact(&mut b).is_ok() && &b == b"ping" {
            served += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!(
        "limit {}: {served} served, {refused} refused, {snap:?}",
        highest + 9
    );
    assert!(served >= 1, "some were served");
    assert!(refused >= 1, "the excess was refused");
    assert_eq!(served + refused, clients);
    drop(streams);
    assert!(wait_until(T, || server.snapshot().open == 0), "all closed");
    // Still under the low limit: the loop serves new connections.
    for _ in 0..3 {
        let mut c = connect(addr, T).expect("connect after recovery");
        c.write_all(b"again").expect("write");
        let mut b = [0u8; 5];
        c.read_exact(&mut b).expect("served after recovery");
        assert_eq!(&b, b"again");
    }
    sys::set_nofile_soft(soft).expect("restore");
    server.stop().expect("stop");
}
