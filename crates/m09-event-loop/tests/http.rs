//! The event loop driving m08's HTTP/1.1 session over real loopback sockets: partial reads,
//! pipelining, non-blocking accepted sockets, fairness, graceful shutdown, moving a live
//! connection between loops, and the loop's metrics. Every socket operation has a timeout.

// Some tests exercise epoll modes or /proc and are Linux-only; their imports are unused elsewhere.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports))]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{EchoConfig, EchoFactory};
use m08_http11::lab::{LabService, filler};
use m08_http11::{Http11Config, Http11Factory};
use m09_event_loop::lab::{InProcess, connect, read_http, wait_until};
use m09_event_loop::{EventLoop, LoopConfig, ServerConfig, Trigger};

const T: Duration = Duration::from_secs(5);

fn factory() -> Http11Factory<LabService> {
    Http11Factory::new(
        Arc::new(LabService::new().expect("lab service")),
        Http11Config::default(),
    )
}

fn config() -> ServerConfig {
    let mut c = ServerConfig::new("127.0.0.1:0".parse().expect("literal address"));
    c.loop_config.log_blocked = false;
    c
}

#[test]
fn test_request_one_byte_per_write_answered() {
    let server = InProcess::start(config(), factory()).expect("start");
    let mut s = connect(server.addr, T).expect("connect");
    for b in b"GET /bytes/10 HTTP/1.1\r\nHost: lab\r\n\r\n" {
        s.write_all(&[*b]).expect("write one byte");
        thread::sleep(Duration::from_millis(1));
    }
    let (status, body) = read_http(&mut s, &mut Vec::new()).expect("response");
    assert_eq!(status, 200);
    assert_eq!(body, filler(10));
    let st = server.snapshot();
    assert!(
        st.reads >= 10,
        "the request arrived in many reads: {}",
        st.reads
    );
    server.stop().expect("stop");
}

#[test]
fn test_hundred_pipelined_in_one_write_answered_in_order() {
    let server = InProcess::start(config(), factory()).expect("start");
    let mut s = connect(server.addr, T).expect("connect");
    let mut batch = Vec::new();
    for i in 1..=100 {
        batch.extend_from_slice(format!("GET /bytes/{i} HTTP/1.1\r\nHost: lab\r\n\r\n").as_bytes());
    }
    s.write_all(&batch).expect("one write");
    let mut buf = Vec::new();
    for i in 1..=100 {
        let (status, body) = read_http(&mut s, &mut buf).expect("response");
        assert_eq!(status, 200, "response {i}");
        assert_eq!(body, filler(i), "response {i} is the answer to request {i}");
    }
    assert!(buf.is_empty(), "no extra bytes");
    assert!(
        wait_until(T, || server.snapshot().session_events == 100),
        "100 answered"
    );
    server.stop().expect("stop");
}

/// The descriptors of this process that are TCP sockets whose local port is `port` and that
/// are established (accepted connections), from /proc/self/fd and /proc/net/tcp.
#[cfg(target_os = "linux")]
fn accepted_fds(port: u16) -> Vec<(String, u32)> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            let established = *f.get(3)? == "01";
            (u16::from_str_radix(local_port, 16).ok()? == port && established)
                .then(|| f.get(9).map(|s| (*s).to_owned()))?
        })
        .collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")
        .expect("fd dir")
        .flatten()
    {
        let Ok(link) = std::fs::read_link(e.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        let Some(inode) = link
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        else {
            continue;
        };
        if inodes.iter().any(|i| i == inode) {
            let name = e.file_name().to_string_lossy().into_owned();
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{name}")).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                .unwrap_or(0);
            out.push((name, flags));
        }
    }
    out
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_accepted_sockets_nonblocking_clients_blocking() {
    let server = InProcess::start(config(), factory()).expect("start");
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| connect(server.addr, T).expect("connect"))
        .collect();
    assert!(wait_until(T, || server.snapshot().open == 5));
    let fds = accepted_fds(server.addr.port());
    assert_eq!(
        fds.len(),
        5,
        "the server's 5 accepted sockets found: {fds:?}"
    );
    let nonblock = libc::O_NONBLOCK as u32;
    for (fd, flags) in &fds {
        assert!(
            flags & nonblock != 0,
            "accepted fd {fd} flags {flags:o} lack O_NONBLOCK"
        );
    }
    // The same reading on the clients' blocking sockets says "blocking": the probe can fail.
    for c in &clients {
        assert!(!m09_event_loop::sys::is_nonblocking(c.as_fd()).expect("fcntl"));
    }
    server.stop().expect("stop");
}

#[test]
fn test_pipelined_flood_probes_answered_within_bound() {
    let server = InProcess::start(config(), factory()).expect("start");
    let flood = connect(server.addr, T).expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let (mut fw, mut fr) = (flood.try_clone().expect("clone"), flood);
    let s1 = stop.clone();
    let writer = thread::spawn(move || {
        let batch = b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n".repeat(64);
        while !s1.load(Ordering::Relaxed) {
            if fw.write_all(&batch).is_err() {
                break;
            }
        }
    });
    let s2 = stop.clone();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !s2.load(Ordering::Relaxed) {
            if matches!(fr.read(&mut buf), Ok(0) | Err(_)) {
                break;
            }
        }
    });
    assert!(
        wait_until(T, || server.snapshot().session_events > 1000),
        "the flood is served"
    );
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let mut p = connect(server.addr, T).expect("probe connect");
        let t = Instant::now();
        p.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")
            .expect("write");
        let (status, _) = read_http(&mut p, &mut Vec::new()).expect("probe answered");
        worst = worst.max(t.elapsed());
        assert_eq!(status, 200);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    reader.join().expect("reader");
    assert!(
        worst < Duration::from_millis(200),
        "worst probe {worst:?} during the flood"
    );
    server.stop().expect("stop");
}

#[test]
fn test_shutdown_during_slow_request_completes_unforced() {
    let server = InProcess::start(config(), factory()).expect("start");
    let mut s = connect(server.addr, T).expect("connect");
    s.write_all(b"GET /slow/300 HTTP/1.1\r\nHost: lab\r\n\r\n")
        .expect("write");
    thread::sleep(Duration::from_millis(50));
    let handle = server.handle.clone();
    let reader = thread::spawn(move || {
        let r = read_http(&mut s, &mut Vec::new());
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        r
    });
    handle.shutdown();
    let started = Instant::now();
    let report = server.stop_within(T).expect("run() returned");
    let (status, body) = reader
        .join()
        .expect("reader")
        .expect("the slow response arrived");
    assert_eq!(status, 200);
    assert_eq!(body, b"slow");
    assert_eq!(report.forced, 0, "nothing forced");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn test_keepalive_connection_detached_adopted_second_loop_answers() {
    let f = Arc::new(factory());
    let mut a = EventLoop::new(LoopConfig::default(), Arc::clone(&f)).expect("loop a");
    let mut b = EventLoop::new(LoopConfig::default(), Arc::clone(&f)).expect("loop b");
    let listener =
        m09_event_loop::server::listener("127.0.0.1:0".parse().expect("addr"), 16, false)
            .expect("listener");
    let addr = socket2::SockRef::from(&listener)
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    a.add_listener(listener, false).expect("listen");
    let mut c = connect(addr, T).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut ask = |lp: &mut dyn FnMut(), c: &mut TcpStream, path: &str| -> (u16, Vec<u8>) {
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n").as_bytes())
            .expect("write");
        let deadline = Instant::now() + T;
        loop {
            lp();
            match read_http(c, &mut buf) {
                Ok(r) => return r,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
            assert!(Instant::now() < deadline, "no response");
        }
    };
    let (s1, b1) = ask(
        &mut || drop(a.turn(Some(Duration::from_millis(5)))),
        &mut c,
        "/bytes/7",
    );
    assert_eq!((s1, b1), (200, filler(7)));
    assert_eq!(a.connections(), 1);
    let token = a.tokens()[0];
    let detached = a.detach(token).expect("detach");
    assert_eq!(a.connections(), 0);
    b.adopt(detached, Instant::now()).expect("adopt");
    assert_eq!(b.connections(), 1);
    let (s2, b2) = ask(
        &mut || drop(b.turn(Some(Duration::from_millis(5)))),
        &mut c,
        "/bytes/9",
    );
    assert_eq!((s2, b2), (200, filler(9)));
    assert_eq!(
        a.stats().snapshot().session_events,
        1,
        "loop a answered the first"
    );
    assert_eq!(
        b.stats().snapshot().session_events,
        1,
        "loop b answered the second"
    );
}

#[test]
#[cfg(target_os = "linux")] // epoll modes (level/edge/oneshot, EPOLLEXCLUSIVE) or /proc
fn test_load_applied_metrics_move() {
    let mut cfg = config();
    cfg.loop_config.trigger = Trigger::Edge;
    cfg.loop_config.read_budget = 1;
    cfg.loop_config.read_buffer = 16;
    let factory = EchoFactory {
        config: EchoConfig {
            idle_timeout: Duration::from_millis(100),
            ..EchoConfig::default()
        },
    };
    let server = InProcess::start(cfg, factory).expect("start");
    let before = server.snapshot();
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..10)
        .map(|_| connect(server.addr, T).expect("connect"))
        .collect();
    assert!(
        wait_until(T, || server.snapshot().open == 10),
        "connections gauge up"
    );
    let mut back = [0u8; 16];
    for _ in 0..200 {
        for c in conns.iter_mut() {
            // Exactly one read buffer: the budgeted read fills it, the next read finds nothing.
            c.write_all(&[7u8; 16]).expect("write");
            c.read_exact(&mut back).expect("echo");
        }
    }
    let mid = server.snapshot();
    let secs = t0.elapsed().as_secs_f64();
    let events_per_s = (mid.events - before.events) as f64 / secs;
    eprintln!(
        "{events_per_s:.0} events/s, iteration p50 {} ns p99 {} ns",
        mid.iteration_p50_ns, mid.iteration_p99_ns
    );
    assert!(events_per_s > 100.0, "events/s {events_per_s}");
    assert!(
        mid.iteration_hist.count() > before.iteration_hist.count(),
        "iteration histogram fills"
    );
    assert!(mid.iteration_p99_ns > 0);
    assert!(
        mid.spurious_reads > before.spurious_reads,
        "EAGAIN after a budgeted read counted"
    );
    assert!(
        mid.timers_armed >= 10,
        "idle timers armed: {}",
        mid.timers_armed
    );
    // Idle for 100 ms: every connection's timer fires and closes it.
    assert!(
        wait_until(T, || server.snapshot().open == 0),
        "gauge back to 0 after idle timeouts"
    );
    let end = server.snapshot();
    assert!(end.timers_fired >= 10, "timers fired: {}", end.timers_fired);
    assert_eq!(end.closed["timeout"], 10);
    assert!(
        wait_until(T, || server.snapshot().cpu_s > 0.0),
        "loop CPU sampled"
    );
    let text = server.snapshot().prometheus("zyphos_loop");
    for name in [
        "zyphos_loop_events_total",
        "zyphos_loop_spurious_reads_total",
        "zyphos_loop_connections",
        "zyphos_loop_timers_fired_total",
        "zyphos_loop_iteration_seconds",
        "zyphos_loop_cpu_seconds_total",
    ] {
        assert!(text.contains(name), "{name} exposed");
    }
    server.stop().expect("stop");
}
