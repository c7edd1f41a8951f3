//! Syscall accounting, checked against what one connection lifecycle must cost.
//!
//! The accounting table is global to the process, so the tests in this file take a lock and
//! run one at a time; their clients use std's `TcpStream`, which does not go through the
//! accounted wrappers, so only the server's calls move the table.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use m01_raw_sockets::accounting::{self, ErrnoClass, SyscallKind as K, SyscallTable};
use m01_raw_sockets::lab::{self, ThreadServer, echo_round_trip, test_config, wait_until};

const WAIT: Duration = Duration::from_secs(5);
static SERIAL: Mutex<()> = Mutex::new(());

/// connect → "hello" → echo → close → the server sees EOF and closes. Returns the table delta
/// over exactly that lifecycle.
fn one_lifecycle(server: &ThreadServer) -> SyscallTable {
    assert!(wait_until(WAIT, || server.counters.snapshot().active == 0));
    let closed_before = server.counters.snapshot().closed;
    let before = accounting::snapshot();
    let mut c = lab::connect(server.addr, WAIT).unwrap();
    echo_round_trip(&mut c, b"hello").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap(); // the server's close arrives as EOF
    assert!(wait_until(WAIT, || server.counters.snapshot().closed
        == closed_before + 1));
    accounting::snapshot().since(&before)
}

#[test]
fn test_lifecycle_syscall_counts_exact() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    accounting::set_enabled(true);
    let server = ThreadServer::start(test_config()).unwrap();
    let d = one_lifecycle(&server);
    eprintln!("{d}");
    // accept4: one connection, then EAGAIN ends the accept loop.
    assert_eq!(d.get(K::Accept4).ok(), 1);
    assert_eq!(d.get(K::Accept4).errors_of(ErrnoClass::WouldBlock), 1);
    // TCP_NODELAY set, then read back with SO_SNDBUF and SO_RCVBUF.
    assert_eq!(d.count(K::Setsockopt), 1);
    assert_eq!(d.count(K::Getsockopt), 3);
    // recv: "hello", then 0 (EOF). send: the echo.
    assert_eq!(d.get(K::Recvfrom).ok(), 2);
    assert_eq!(d.get(K::Sendto).ok(), 1);
    assert_eq!(d.count(K::Close), 1);
    // Nothing the lifecycle should not need.
    for k in [
        K::Socket,
        K::Bind,
        K::Listen,
        K::Read,
        K::Write,
        K::Writev,
        K::Shutdown,
        K::Fcntl,
        K::Ioctl,
    ] {
        assert_eq!(d.count(k), 0, "{k}");
    }
    // One poll wake-up at least per event: connection, data, EOF.
    assert!(d.count(K::Poll) >= 3, "{}", d.count(K::Poll));
    let report = server.stop().unwrap();
    assert_eq!(report.counters.accepted, 1);
}

#[test]
fn test_latency_histogram_has_every_call() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    accounting::set_enabled(true);
    let server = ThreadServer::start(test_config()).unwrap();
    let d = one_lifecycle(&server);
    for row in d.called() {
        assert_eq!(row.buckets.iter().sum::<u64>(), row.count, "{}", row.kind);
        assert!(
            row.quantile_ns(0.5) <= row.quantile_ns(0.99),
            "{}",
            row.kind
        );
        assert!(row.quantile_ns(0.99) <= row.max_ns.max(1), "{}", row.kind);
    }
    // poll sleeps until the client acts, so its slowest call dwarfs a recv.
    assert!(d.get(K::Poll).max_ns > d.get(K::Recvfrom).quantile_ns(0.5));
    server.stop().unwrap();
}

#[test]
fn test_accounting_disabled_counts_stay() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = ThreadServer::start(test_config()).unwrap();
    accounting::set_enabled(false);
    // The poll the server is sleeping in started while accounting was on and is recorded when
    // it returns; a first lifecycle flushes it out.
    let _ = one_lifecycle(&server);
    let d = one_lifecycle(&server);
    accounting::set_enabled(true);
    assert_eq!(d.total_calls(), 0, "nothing counted while off:\n{d}");
    let d = one_lifecycle(&server);
    assert_eq!(d.get(K::Accept4).ok(), 1, "counting again once back on");
    server.stop().unwrap();
}
