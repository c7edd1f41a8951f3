//! Loopback integration tests: the load generator against the in-process `sink` and small
//! scripted servers on `127.0.0.1:0`. Every run is bounded by a short duration.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zyphos_load::{
    ConfigError, LoadConfig, Report, RunError, Scenario, Sink, SinkMode, SinkOptions, run,
};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

fn config(addr: SocketAddr) -> LoadConfig {
    let mut c = LoadConfig::new(addr);
    c.connections = 4;
    c.duration = Duration::from_secs(2);
    c.timeout = Duration::from_secs(2);
    c
}

fn sink(mode: SinkMode) -> Sink {
    let mut o = SinkOptions::new("127.0.0.1:0".parse().expect("addr"));
    o.mode = mode;
    o.max_lifetime = Duration::from_secs(60);
    Sink::spawn(o).expect("sink")
}

fn errors(r: &Report, kind: &str) -> u64 {
    r.errors.get(kind).copied().unwrap_or(0)
}

/// Wait (bounded) until `f` holds; the sink updates its counters just after it writes.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// A scripted server: one thread per connection running `handler`; stops accepting on drop.
struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start<F>(handler: F) -> TestServer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handler = Arc::new(handler);
        let accept = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let h = Arc::clone(&handler);
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        std::thread::spawn(move || h(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        TestServer {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Read from `s`, calling `on_heads(count)` for the request heads completed by each read;
/// stops at EOF, error or timeout.
fn for_each_read(mut s: &TcpStream, mut on_heads: impl FnMut(usize) -> bool) {
    let mut buf = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        let mut heads = 0;
        while let Some(i) = tail.windows(4).position(|w| w == b"\r\n\r\n") {
            heads += 1;
            tail.drain(..i + 4);
        }
        if heads > 0 && !on_heads(heads) {
            return;
        }
    }
}

#[test]
fn test_sink_counts_match_client_counts() {
    let sink = sink(SinkMode::Http);
    let mut c = config(sink.local_addr());
    c.connections = 8;
    c.threads = 2;
    c.requests = Some(2000);
    c.duration = Duration::from_secs(10);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 2000, "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        eventually(|| sink.stats().requests() == 2000),
        "sink saw {}",
        sink.stats().requests()
    );
    assert!(eventually(|| sink.stats().bytes_written() == r.bytes_read));
    assert_eq!(sink.stats().bytes_read(), r.bytes_written);
    assert_eq!(
        r.bytes_read,
        2000 * zyphos_load::sink::SINK_RESPONSE.len() as u64
    );
    assert!(r.latency.p50_us > 0.0 && r.latency.max_us >= r.latency.p99_us);
    assert!(
        r.duration_s < 10.0,
        "the cap ends the run early: {}",
        r.duration_s
    );
}

#[test]
fn test_echo_counts_match_sink_bytes() {
    let sink = sink(SinkMode::Echo);
    let mut c = config(sink.local_addr());
    c.scenario = Scenario::Echo;
    c.message_size = 100;
    c.pipeline = 4;
    c.requests = Some(1000);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 1000, "{r:?}");
    assert_eq!(r.bytes_written, 100_000);
    assert_eq!(r.bytes_read, 100_000);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(eventually(|| sink.stats().bytes_written() == 100_000));
    assert_eq!(sink.stats().bytes_read(), 100_000);
}

#[test]
fn test_http10_opens_one_connection_per_request() {
    let sink = sink(SinkMode::Http);
    let mut c = config(sink.local_addr());
    c.scenario = Scenario::Http10;
    c.requests = Some(300);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 300, "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        eventually(|| sink.stats().connections() == 300),
        "sink accepted {}",
        sink.stats().connections()
    );
}

#[test]
fn test_pipeline_depth_keeps_n_in_flight() {
    const DEPTH: usize = 8;
    let max_seen = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&max_seen);
    // Answers only once DEPTH requests are outstanding: a client with fewer in flight stalls.
    let server = TestServer::start(move |s| {
        let mut out = &s;
        let mut outstanding = 0;
        for_each_read(&s, |heads| {
            outstanding += heads;
            seen.fetch_max(outstanding as u64, Ordering::Relaxed);
            if outstanding >= DEPTH {
                let all = OK.repeat(outstanding);
                outstanding = 0;
                return out.write_all(&all).is_ok();
            }
            true
        });
    });
    let mut c = config(server.addr);
    c.connections = 2;
    c.pipeline = DEPTH;
    c.duration = Duration::from_secs(1);
    let r = run(&c).expect("run");
    assert!(r.requests >= 100, "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(max_seen.load(Ordering::Relaxed), DEPTH as u64);
}

/// A server answering one request per millisecond that counts reads which brought new
/// requests while earlier ones were still unanswered.
fn slow_server(interleaved: Arc<AtomicU64>) -> TestServer {
    TestServer::start(move |s| {
        let _ = s.set_nonblocking(true);
        let mut out = &s;
        let mut buf = [0u8; 4096];
        let mut tail = Vec::new();
        let mut outstanding = 0usize;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match (&s).read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    let mut heads = 0;
                    while let Some(i) = tail.windows(4).position(|w| w == b"\r\n\r\n") {
                        heads += 1;
                        tail.drain(..i + 4);
                    }
                    if heads > 0 && outstanding > 0 {
                        interleaved.fetch_add(1, Ordering::Relaxed);
                    }
                    outstanding += heads;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            std::thread::sleep(Duration::from_millis(1));
            if outstanding > 0 {
                let mut written = 0;
                while written < OK.len() {
                    match out.write(&OK[written..]) {
                        Ok(n) => written += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(_) => return,
                    }
                }
                outstanding -= 1;
            }
        }
    })
}

#[test]
fn test_pipeline_batch_mode_waits_window_mode_refills() {
    for (mode, expect_interleaved) in [
        (zyphos_load::PipelineMode::Batch, false),
        (zyphos_load::PipelineMode::Window, true),
    ] {
        let interleaved = Arc::new(AtomicU64::new(0));
        let server = slow_server(Arc::clone(&interleaved));
        let mut c = config(server.addr);
        c.connections = 1;
        c.pipeline = 4;
        c.pipeline_mode = mode;
        c.duration = Duration::from_millis(400);
        let r = run(&c).expect("run");
        assert!(r.requests >= 8, "{mode:?}: {r:?}");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let n = interleaved.load(Ordering::Relaxed);
        assert_eq!(n > 0, expect_interleaved, "{mode:?}: {n} interleaved reads");
    }
}

#[test]
fn test_chunked_and_content_length_responses_parse() {
    let server = TestServer::start(|s| {
        let mut out = &s;
        let mut n = 0u64;
        for_each_read(&s, |heads| {
            for _ in 0..heads {
                n += 1;
                let ok = if n % 2 == 0 {
                    out.write_all(OK).is_ok()
                } else {
                    // A chunked body written in pieces, so reads split it anywhere.
                    let parts: [&[u8]; 4] = [
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"5;x=y\r\nHello\r\n",
                        b"8\r\n, World!\r\n0\r\n",
                        b"Trailer: t\r\n\r\n",
                    ];
                    parts.iter().all(|p| out.write_all(p).is_ok())
                };
                if !ok {
                    return false;
                }
            }
            true
        });
    });
    let mut c = config(server.addr);
    c.pipeline = 4;
    c.requests = Some(500);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 500, "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn test_garbage_response_counts_parse_errors() {
    let server = TestServer::start(|s| {
        let mut out = &s;
        for_each_read(&s, |_| out.write_all(b"HTTP/1.1 2x0 Nope\r\n\r\n").is_ok());
    });
    let mut c = config(server.addr);
    c.duration = Duration::from_millis(500);
    let r = run(&c).expect("run");
    assert!(errors(&r, "parse") > 0, "{:?}", r.errors);
    assert_eq!(r.requests, 0);
}

#[test]
fn test_bad_status_is_counted_but_completes() {
    let server = TestServer::start(|s| {
        let mut out = &s;
        for_each_read(&s, |heads| {
            let r = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".repeat(heads);
            out.write_all(&r).is_ok()
        });
    });
    let mut c = config(server.addr);
    c.requests = Some(50);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 50);
    assert_eq!(errors(&r, "bad_status"), 50, "{:?}", r.errors);
}

#[test]
fn test_connection_refused_counts_connect_errors() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c = config(SocketAddr::from(([127, 0, 0, 1], port)));
    c.duration = Duration::from_millis(500);
    let t0 = Instant::now();
    let r = run(&c).expect("run");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "no hang: {:?}",
        t0.elapsed()
    );
    assert!(errors(&r, "connect") > 0, "{:?}", r.errors);
    assert_eq!(r.requests, 0);
}

#[test]
fn test_timeout_resets_silent_connection() {
    let server = TestServer::start(|s| for_each_read(&s, |_| true));
    let mut c = config(server.addr);
    c.connections = 2;
    c.timeout = Duration::from_millis(200);
    c.duration = Duration::from_secs(1);
    let r = run(&c).expect("run");
    assert!(errors(&r, "timeout") >= 2, "{:?}", r.errors);
    assert_eq!(r.requests, 0);
}

#[test]
fn test_server_close_reconnects_and_resends() {
    // Three responses per connection, the third with `Connection: close`, then a lingering
    // close (shut down writes, drain reads) so no pipelined request is lost to a reset.
    let server = TestServer::start(|s| {
        let mut out = &s;
        let mut n = 0;
        for_each_read(&s, |heads| {
            for _ in 0..heads {
                n += 1;
                if n == 3 {
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    );
                    let _ = s.shutdown(Shutdown::Write);
                    return true;
                }
                if out.write_all(OK).is_err() {
                    return false;
                }
            }
            n < 3
        });
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut sink = [0u8; 4096];
        while matches!((&s).read(&mut sink), Ok(n) if n > 0) {}
    });
    let mut c = config(server.addr);
    c.pipeline = 4;
    c.requests = Some(100);
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 100, "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn test_open_loop_stall_shows_in_p99() {
    // Answers every request, except that once 300 have been answered the whole server stalls
    // for 300 ms (every connection waits).
    let answered = Arc::new(AtomicU64::new(0));
    let stall_until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let server = {
        let answered = Arc::clone(&answered);
        let stall_until = Arc::clone(&stall_until);
        TestServer::start(move |s| {
            let mut out = &s;
            for_each_read(&s, |heads| {
                let until = {
                    let mut g = stall_until.lock().expect("lock");
                    if g.is_none() && answered.load(Ordering::Relaxed) >= 300 {
                        *g = Some(Instant::now() + Duration::from_millis(300));
                    }
                    *g
                };
                if let Some(until) = until {
                    let now = Instant::now();
                    if until > now {
                        std::thread::sleep(until - now);
                    }
                }
                answered.fetch_add(heads as u64, Ordering::Relaxed);
                out.write_all(&OK.repeat(heads)).is_ok()
            });
        })
    };
    let mut c = config(server.addr);
    c.connections = 8;
    c.rate = Some(1000.0);
    c.duration = Duration::from_secs(2);
    let t0 = Instant::now();
    let r = run(&c).expect("run");
    let wall = t0.elapsed();
    assert!(
        stall_until.lock().expect("lock").is_some(),
        "the stall happened"
    );
    assert!(
        r.latency.p99_us >= 250_000.0,
        "p99 hides the stall: {:?}",
        r.latency
    );
    assert!(r.latency.max_us >= 250_000.0, "{:?}", r.latency);
    assert!(r.duration_s <= 2.2, "duration bound: {}", r.duration_s);
    assert!(wall < Duration::from_secs(4), "run finished in {wall:?}");
    assert!(r.requests > 1000, "{r:?}");
    assert_eq!(r.mode, "open");
}

#[test]
fn test_open_loop_achieves_target_rate() {
    let sink = sink(SinkMode::Http);
    let mut c = config(sink.local_addr());
    c.rate = Some(2000.0);
    c.duration = Duration::from_millis(1500);
    let r = run(&c).expect("run");
    let ratio = r.rps / 2000.0;
    assert!((0.85..=1.1).contains(&ratio), "achieved {} rps", r.rps);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // An unloaded sink answers quickly even measured from the intended time.
    assert!(r.latency.p50_us < 20_000.0, "{:?}", r.latency);
}

#[test]
fn test_source_ips_spread_over_addresses() {
    let sink = sink(SinkMode::Http);
    let mut c = config(sink.local_addr());
    c.connections = 8;
    c.requests = Some(100);
    c.source_ips = zyphos_load::config::parse_source_ips("127.0.0.1-127.0.0.4").expect("ips");
    let r = run(&c).expect("run");
    assert_eq!(r.requests, 100, "{r:?}");
    let peers = sink.stats().peers();
    let want: Vec<IpAddr> = (1..=4).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    assert_eq!(peers, want);
}

#[test]
fn test_warmup_is_not_recorded() {
    let sink = sink(SinkMode::Http);
    let mut c = config(sink.local_addr());
    c.warmup = Duration::from_millis(300);
    c.duration = Duration::from_millis(500);
    let r = run(&c).expect("run");
    assert!((r.duration_s - 0.5).abs() < 0.05, "{}", r.duration_s);
    assert!(r.requests > 0);
    assert!(eventually(|| sink.stats().requests() > r.requests));
    assert!((r.warmup_s - 0.3).abs() < 1e-9);
}

#[test]
fn test_connections_over_fd_limit_are_refused() {
    let mut c = config("127.0.0.1:9".parse().expect("addr"));
    c.connections = 1_000_000;
    match run(&c) {
        Err(RunError::Config(ConfigError::TooManyConnections { .. })) => {}
        other => panic!("expected a TooManyConnections error, got {other:?}"),
    }
}

#[test]
fn test_cli_json_prints_one_report() {
    let sink = sink(SinkMode::Http);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zyphos-load"))
        .args([
            &format!("http://{}/plaintext", sink.local_addr()),
            "-c",
            "2",
            "-d",
            "300ms",
            "--json",
        ])
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(text.lines().count(), 1, "{text}");
    let r: Report = serde_json::from_str(&text).expect("one Report");
    assert!(r.requests > 0 && r.scenario == "http1.1");
}

#[test]
fn test_cli_bad_input_is_one_line_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zyphos-load"))
        .args(["127.0.0.1:9", "-c", "1000000", "-d", "1"])
        .output()
        .expect("run binary");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--connections 1000000"), "{err}");
}
