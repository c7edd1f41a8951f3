//! Assertions behind two failure scenarios whose experiments only print tables:
//!
//! - "Test stack overflow conditions" (experiment `stack_overflow`): a session that recurses
//!   deeper than its connection thread's stack kills the *whole server process* (Rust's guard
//!   page handler: "has overflowed its stack", SIGABRT; the driver's `catch_unwind` cannot save
//!   it), and the thread's stack size is what decides: the same depth completes on a larger
//!   stack. Each case runs in a child process (this test binary re-run with an env var), since
//!   the failing one must die.
//! - "Handle thundering herd problem" (experiment `thundering_herd`): threads parked in
//!   `epoll_wait` on one shared listener; one connection wakes every one of them without
//!   `EPOLLEXCLUSIVE` (the herd, the control) and one (at most two) with it.
//!
//! Both synchronise on events (a reply, a child's exit, every waiter seen asleep in the kernel),
//! not on sleeps; the one fixed window is stated where it is used.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::lab::{RunningServer, connect, test_config, wait_until};
use m03_thread_per_conn::session::{
    EchoConfig, EchoSession, Session, SessionFactory, SessionState,
};
use m03_thread_per_conn::sys::Epoll;

const T: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Stack overflow

const STACK_CHILD_ENV: &str = "M03_STACK_OVERFLOW_CHILD";
const STACK_TEST: &str = "test_session_deeper_than_stack_kills_process_larger_stack_survives";
/// The trigger: a session that reads it recurses [`DeepFactory::depth_kib`] KiB deep.
const DEEP: &[u8] = b"DEEP";
/// Recursion asked of the session: 1 MiB of 1 KiB frames.
const DEPTH_KIB: usize = 1024;
/// A connection thread too small for it.
const SMALL_STACK_KIB: usize = 256;
/// One with room to spare even for unoptimised (debug) frames, which can be twice the size.
const LARGE_STACK_KIB: usize = 8 * 1024;

/// Each frame holds 1 KiB; not a tail call (the addition after the call), not elided.
fn recurse(depth: usize) -> u64 {
    let mut frame = [0u8; 1024];
    frame[depth % 1024] = depth as u8;
    std::hint::black_box(&mut frame);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    recurse(depth - 1) + u64::from(std::hint::black_box(frame[1]))
}

/// Echo, except that input containing [`DEEP`] first recurses `depth_kib` KiB deep (a parser
/// recursing on peer input).
#[derive(Debug, Clone, Copy)]
struct DeepFactory {
    depth_kib: usize,
}

#[derive(Debug)]
struct DeepSession {
    echo: EchoSession,
    depth_kib: usize,
}

impl Session for DeepSession {
    type Event = <EchoSession as Session>::Event;
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        if input.windows(DEEP.len()).any(|w| w == DEEP) {
            std::hint::black_box(recurse(self.depth_kib));
        }
        self.echo.handle_input(now, input)
    }
    fn handle_eof(&mut self, now: Instant, unconsumed: &[u8]) {
        self.echo.handle_eof(now, unconsumed);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.echo.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.echo.handle_timeout(now);
    }
    fn pending_output(&self) -> &[u8] {
        self.echo.pending_output()
    }
    fn consume_output(&mut self, n: usize) {
        self.echo.consume_output(n);
    }
    fn poll_event(&mut self) -> Option<Self::Event> {
        self.echo.poll_event()
    }
    fn state(&self) -> SessionState {
        self.echo.state()
    }
    fn input_limit(&self) -> usize {
        self.echo.input_limit()
    }
    fn begin_shutdown(&mut self, now: Instant) {
        self.echo.begin_shutdown(now);
    }
}

impl SessionFactory for DeepFactory {
    type Session = DeepSession;
    fn new_session(&self, _peer: SocketAddr, now: Instant) -> DeepSession {
        DeepSession {
            echo: EchoSession::new(EchoConfig::default(), now),
            depth_kib: self.depth_kib,
        }
    }
    fn refusal(&self) -> &[u8] {
        b"BUSY\n"
    }
    fn protocol(&self) -> &'static str {
        "deep-echo"
    }
}

/// The child: a server whose connection threads have `stack_kib`, one connection sending the
/// trigger; prints `CHILD-SURVIVED` once the echo came back and the server stopped cleanly.
fn stack_child(stack_kib: usize) {
    let (mut config, _) = test_config();
    config.stack_size = stack_kib * 1024;
    let server = RunningServer::start(
        config,
        DeepFactory {
            depth_kib: DEPTH_KIB,
        },
    )
    .unwrap();
    let mut c = connect(server.addr, T).unwrap();
    c.write_all(b"DEEP hello").unwrap();
    let mut back = [0u8; 10];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"DEEP hello");
    drop(c);
    let report = server.stop().unwrap();
    assert_eq!(report.unjoined, 0);
    println!("CHILD-SURVIVED");
}

/// Runs [`stack_child`] with `stack_kib` in a child process; waits at most 60 s for it.
fn run_stack_child(stack_kib: usize) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", STACK_TEST, "--nocapture", "--test-threads=1"])
        .env(STACK_CHILD_ENV, stack_kib.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child with a {stack_kib} KiB stack did not finish in 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn test_session_deeper_than_stack_kills_process_larger_stack_survives() {
    if let Some(kib) = std::env::var_os(STACK_CHILD_ENV) {
        stack_child(kib.to_str().unwrap().parse().unwrap());
        return;
    }
    // Too small a stack: the guard page turns the overflow into SIGSEGV, Rust's handler names
    // the connection thread and aborts the process. Nothing of the server survives.
    let out = run_stack_child(SMALL_STACK_KIB);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let signal = out.status.signal();
    assert!(
        matches!(signal, Some(libc::SIGABRT | libc::SIGSEGV)),
        "a {SMALL_STACK_KIB} KiB connection thread recursing {DEPTH_KIB} KiB should kill the \
         process by SIGABRT/SIGSEGV; status {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("thread 'conn-") && stderr.contains("has overflowed its stack"),
        "Rust's overflow message naming the connection thread:\n{stderr}"
    );
    assert!(!stdout.contains("CHILD-SURVIVED"), "{stdout}");

    // The same depth on a larger stack completes: the thread's stack size is what decides.
    let out = run_stack_child(LARGE_STACK_KIB);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("CHILD-SURVIVED"),
        "a {LARGE_STACK_KIB} KiB stack should hold {DEPTH_KIB} KiB of recursion; status {:?}\n\
         {stdout}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("has overflowed its stack"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Thundering herd

/// Waiting threads.
const WAITERS: usize = 8;
/// With `EPOLLEXCLUSIVE` the kernel promises "one or more" wake-ups; with every waiter parked
/// in `epoll_wait` it wakes exactly one. Allow two.
const EXCLUSIVE_MAX_WOKEN: usize = 2;
/// After the first wake-up, how long any further (herd) wake-ups get to show. A woken thread
/// only has to be scheduled to count itself; on the shared (control) run all eight do so well
/// within this on a loaded two-core machine.
const HERD_WINDOW: Duration = Duration::from_millis(500);

/// `/proc/self/task/TID/stat`'s state letter.
fn task_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": comm may contain anything, so split after the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// `WAITERS` threads, each with its own epoll instance watching `listener` (exclusive or not),
/// all parked in `epoll_wait` before one connection arrives. Returns how many woke within
/// [`HERD_WINDOW`] of the first. Unblocks and joins every thread before returning.
fn woken_by_one_connection(exclusive: bool) -> io::Result<usize> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let woken = Arc::new(AtomicUsize::new(0));
    let mut tids = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..WAITERS {
        let tid = Arc::new(AtomicI32::new(0));
        let (l, w, t) = (Arc::clone(&listener), Arc::clone(&woken), Arc::clone(&tid));
        handles.push(thread::spawn(move || -> io::Result<()> {
            let epoll = Epoll::new()?;
            epoll.add_readable(l.as_fd(), exclusive)?;
            let me = m01_raw_sockets::sys::signal::current_tid();
            // Published just before the wait: from here on the only way to sleep is in it.
            t.store(me, Ordering::SeqCst);
            loop {
                match epoll.wait(Duration::from_secs(120)) {
                    Ok(0) => continue,
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            // Woken by the listener; deliberately do not accept (the connection stays queued).
            w.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        tids.push(tid);
    }
    // Every waiter parked: its tid published and its task asleep (state S) in epoll_wait.
    let parked = wait_until(T, || {
        tids.iter().all(|t| {
            let tid = t.load(Ordering::SeqCst);
            tid != 0 && task_state(tid) == Some('S')
        })
    });
    assert!(
        parked,
        "the {WAITERS} waiters did not all park in epoll_wait"
    );
    assert_eq!(
        woken.load(Ordering::SeqCst),
        0,
        "woken before any connection"
    );

    let mut clients = vec![TcpStream::connect(addr)?];
    assert!(
        wait_until(T, || woken.load(Ordering::SeqCst) >= 1),
        "one connection woke no waiter"
    );
    let deadline = Instant::now() + HERD_WINDOW;
    while Instant::now() < deadline && woken.load(Ordering::SeqCst) < WAITERS {
        thread::sleep(Duration::from_millis(5));
    }
    let n = woken.load(Ordering::SeqCst);

    // Release the rest: each further connection wakes at least one more waiter.
    while woken.load(Ordering::SeqCst) < WAITERS {
        let before = woken.load(Ordering::SeqCst);
        clients.push(TcpStream::connect(addr)?);
        assert!(
            wait_until(T, || woken.load(Ordering::SeqCst) > before),
            "a connection woke none of the remaining waiters"
        );
    }
    for h in handles {
        h.join().expect("waiter panicked")?;
    }
    drop(clients);
    Ok(n)
}

#[test]
fn test_thundering_herd_epoll_exclusive_wakes_one_shared_wakes_all() {
    // Control: without EPOLLEXCLUSIVE every parked waiter wakes for one connection (the herd;
    // all but one would then fail accept with EAGAIN).
    let shared = woken_by_one_connection(false).unwrap();
    assert_eq!(
        shared, WAITERS,
        "without EPOLLEXCLUSIVE one connection should wake all {WAITERS} waiters"
    );
    // The fix: EPOLLEXCLUSIVE wakes one (the kernel allows "one or more").
    let exclusive = woken_by_one_connection(true).unwrap();
    assert!(
        (1..=EXCLUSIVE_MAX_WOKEN).contains(&exclusive),
        "with EPOLLEXCLUSIVE one connection woke {exclusive} of {WAITERS} waiters \
         (at most {EXCLUSIVE_MAX_WOKEN} allowed)"
    );
}
