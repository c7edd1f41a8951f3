//! The event loop driven turn by turn on the test thread (no server thread): what a burst of
//! queued connections costs in wake-ups, and what the loop does when the reactor refuses a
//! registration (`ENOSPC`, the epoll watch limit). Every socket operation has a timeout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use m03_thread_per_conn::EchoFactory;
use m03_thread_per_conn::lab::PanicFactory;
use m09_event_loop::lab::{connect, raise_nofile};
use m09_event_loop::{
    DefaultReactor, Event, EventLoop, Interest, LoopConfig, Mode, Reactor, server,
};

const T: Duration = Duration::from_secs(5);

fn listener(backlog: i32) -> (OwnedFd, SocketAddr) {
    let fd =
        server::listener("127.0.0.1:0".parse().expect("addr"), backlog, false).expect("listener");
    let addr = socket2::SockRef::from(&fd)
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    (fd, addr)
}

/// A burst of `N` connections whose handshakes all completed in the backlog before the loop
/// ran is taken in at most ceil(N / accept_batch) + 1 wake-ups: one `accept4` run of up to
/// `accept_batch` per listener event, not one wake-up per connection. Counted with the loop's
/// own counters (`iterations`, `accept_batches`). Fails if the loop accepted one connection
/// per event (or per turn): that would be N wake-ups, not 4 + 1.
#[test]
fn test_queued_burst_accepted_in_ceil_n_over_batch_wakeups() {
    raise_nofile().expect("raise nofile");
    const N: usize = 500;
    let config = LoopConfig {
        log_blocked: false,
        ..LoopConfig::default()
    };
    let batch = config.accept_batch;
    assert!(batch > 1 && batch < N, "the burst spans several batches");
    let mut lp = EventLoop::new(config, Arc::new(EchoFactory::default())).expect("loop");
    let (fd, addr) = listener(1024);
    lp.add_listener(fd, false).expect("listen");
    // The loop is not running: every handshake completes in the kernel's accept queue.
    let clients: Vec<TcpStream> = (0..N).map(|_| connect(addr, T).expect("connect")).collect();
    let deadline = Instant::now() + T;
    while (lp.stats().snapshot().accepted as usize) < N {
        assert!(Instant::now() < deadline, "burst not accepted in {T:?}");
        lp.turn(Some(Duration::from_millis(50))).expect("turn");
    }
    let s = lp.stats().snapshot();
    let bound = N.div_ceil(batch) as u64 + 1;
    eprintln!(
        "{N} queued connections, accept_batch {batch}: {} wake-ups, {} accept batches (bound {bound})",
        s.iterations, s.accept_batches
    );
    assert_eq!(s.accepted as usize, N);
    assert_eq!(lp.connections(), N);
    assert!(
        s.accept_batches <= bound,
        "{} accept batches for {N} queued connections (batch {batch}, bound {bound})",
        s.accept_batches
    );
    assert!(
        s.iterations <= bound,
        "{} wake-ups for {N} queued connections (batch {batch}, bound {bound})",
        s.iterations
    );
    drop(clients);
}

/// A reactor whose `register` fails with `ENOSPC` (the epoll watch limit,
/// `fs.epoll.max_user_watches`) on the `fail_at`-th call (1-based, the listener's included),
/// and otherwise forwards to the real one.
struct WatchLimitReactor {
    inner: DefaultReactor,
    calls: usize,
    fail_at: usize,
    failed: usize,
}

impl Reactor for WatchLimitReactor {
    fn register(
        &mut self,
        fd: RawFd,
        token: u64,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.calls += 1;
        if self.calls == self.fail_at {
            self.failed += 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.register(fd, token, interest, mode)
    }
    fn modify(&mut self, fd: RawFd, token: u64, interest: Interest, mode: Mode) -> io::Result<()> {
        self.inner.modify(fd, token, interest, mode)
    }
    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.inner.deregister(fd)
    }
    fn wait(
        &mut self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.inner.wait(out, max, timeout)
    }
    fn forces_edge(&self) -> bool {
        self.inner.forces_edge()
    }
    fn name(&self) -> &'static str {
        "watch-limit"
    }
}

/// Turns `lp` until `done`, at most `T`.
fn turn_until<F: m03_thread_per_conn::SessionFactory, R: Reactor>(
    lp: &mut EventLoop<F, R>,
    mut done: impl FnMut(&EventLoop<F, R>) -> bool,
) {
    let deadline = Instant::now() + T;
    while !done(lp) {
        assert!(Instant::now() < deadline, "condition not reached in {T:?}");
        lp.turn(Some(Duration::from_millis(5)))
            .expect("the loop survives");
    }
}

/// Asks `c` to echo `msg`, turning the loop until the answer is back.
fn echo_through<F: m03_thread_per_conn::SessionFactory, R: Reactor>(
    lp: &mut EventLoop<F, R>,
    c: &mut TcpStream,
    msg: &[u8],
) {
    c.write_all(msg).expect("write");
    c.set_nonblocking(true).expect("nonblocking");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + T;
    while got.len() < msg.len() {
        assert!(Instant::now() < deadline, "no echo in {T:?}");
        lp.turn(Some(Duration::from_millis(5))).expect("turn");
        match c.read(&mut buf) {
            Ok(0) => panic!("closed before the echo"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    c.set_nonblocking(false).expect("blocking");
    assert_eq!(got, msg);
}

/// `epoll_ctl(ADD)` fails with `ENOSPC` for the third connection (the watch limit reached):
/// the loop keeps turning, that connection gets the refusal bytes and is closed (EOF), it is
/// counted as refused and not held, and the connections before and after it are served.
#[test]
fn test_epoll_watch_limit_enospc_connection_refused_others_served() {
    let reactor = WatchLimitReactor {
        inner: DefaultReactor::new().expect("reactor"),
        calls: 0,
        // 1: the listener; 2, 3: the first two connections; 4: the third.
        fail_at: 4,
        failed: 0,
    };
    // PanicFactory refuses with "BUSY\n" and otherwise echoes.
    let mut lp = EventLoop::with_reactor(LoopConfig::default(), Arc::new(PanicFactory), reactor)
        .expect("loop");
    let (fd, addr) = listener(16);
    lp.add_listener(fd, false).expect("listen");
    let mut first = connect(addr, T).expect("connect");
    let mut second = connect(addr, T).expect("connect");
    turn_until(&mut lp, |lp| lp.connections() == 2);
    let mut third = connect(addr, T).expect("connect");
    turn_until(&mut lp, |lp| lp.stats().snapshot().refused == 1);
    let mut got = Vec::new();
    third
        .read_to_end(&mut got)
        .expect("refusal, then EOF: the descriptor was closed");
    assert_eq!(got, b"BUSY\n", "the refused connection is told so");
    assert_eq!(lp.connections(), 2, "the refused connection is not held");
    let mut fourth = connect(addr, T).expect("connect after the failure");
    turn_until(&mut lp, |lp| lp.connections() == 3);
    echo_through(&mut lp, &mut first, b"one");
    echo_through(&mut lp, &mut second, b"two");
    echo_through(&mut lp, &mut fourth, b"four");
    let s = lp.stats().snapshot();
    assert_eq!(s.refused, 1);
    assert_eq!(s.open, 3);
}
