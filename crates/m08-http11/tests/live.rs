//! Over real sockets: m03's ThreadServer running the HTTP/1.1 factory, the pooled client.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use m08_http11::client::Client;
use m08_http11::lab::{LabServer, connect, exchange_until_close};
use m08_http11::{Http11Config, PoolConfig};

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

#[test]
fn test_pool_reuses_keep_alive_connections_live() {
    let server = LabServer::start(Http11Config::default()).expect("server");
    let mut client = Client::new(PoolConfig::default(), Duration::from_secs(5));
    for i in 0..50 {
        let r = client
            .get(server.addr, &format!("/hello/n{i}"))
            .expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("Hello, n{i}!\n").as_bytes());
    }
    let chunked = client
        .get(server.addr, "/chunked/10000/1000")
        .expect("chunked");
    assert!(chunked.chunked);
    assert_eq!(chunked.body.len(), 10000);
    let s = client.stats();
    assert_eq!(s.requests, 51);
    assert_eq!(s.connections, 1, "one connection for everything");
    assert!(client.stats().reuse_percent() > 98.0);
}

#[test]
fn test_pool_evicts_before_server_idle_timeout_live() {
    let config = Http11Config {
        idle_timeout: Duration::from_secs(1),
        ..Http11Config::default()
    };
    let server = LabServer::start(config).expect("server");
    let pool = PoolConfig {
        safety_margin: Duration::from_millis(300),
        ..PoolConfig::default()
    };
    let mut client = Client::new(pool, Duration::from_secs(5));
    assert_eq!(client.get(server.addr, "/").expect("first").status, 200);
    // Past the pool's deadline (1 s − 0.3 s) but before the server's: evicted, a new one opened.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(client.get(server.addr, "/").expect("second").status, 200);
    assert_eq!(client.pool_stats().evicted_idle, 1);
    assert_eq!(client.stats().connections, 2);
    assert_eq!(client.stats().stale, 0, "never raced the server's close");
}

#[test]
fn test_no_connection_leak_after_churn_and_resets() {
    let server = LabServer::start(Http11Config::default()).expect("server");
    for i in 0..40 {
        let mut s = connect(server.addr).expect("connect");
        match i % 4 {
            0 => {
                s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                    .expect("write");
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
            }
            1 => {
                s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HT")
                    .expect("write");
            } // dropped mid-request
            2 => {
                s.write_all(b"BAD\r\n\r\n").expect("write");
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
            }
            _ => {} // connect and leave
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || server
            .stats
            .sum()
            .opened
            .load(Ordering::Relaxed)
            == 40
            && server.stats.live() == 0),
        "live sessions: {}",
        server.stats.live()
    );
    assert_eq!(server.stats.sum().opened.load(Ordering::Relaxed), 40);
    assert_eq!(server.stats.sum().closed.load(Ordering::Relaxed), 40);
}

#[test]
fn test_connection_limit_refuses_with_503() {
    let server =
        LabServer::start_with(Http11Config::default(), |tc| tc.max_threads = 2).expect("server");
    let mut held: Vec<_> = (0..2)
        .map(|_| connect(server.addr).expect("connect"))
        .collect();
    for s in &mut held {
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .expect("write");
        let mut buf = [0u8; 512];
        assert!(s.read(&mut buf).expect("read") > 0);
    }
    let refused =
        exchange_until_close(server.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").expect("third");
    assert!(
        refused.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
}

#[test]
fn test_fragmented_pipeline_over_socket() {
    let server = LabServer::start(Http11Config::default()).expect("server");
    let mut s = connect(server.addr).expect("connect");
    let mut script = Vec::new();
    for i in 0..20 {
        script.extend_from_slice(format!("GET /hello/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
    }
    for piece in script.chunks(7) {
        s.write_all(piece).expect("write");
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut buf = Vec::new();
    for i in 0..20 {
        let (r, keep, _) =
            m08_http11::client::read_response(&mut s, &mut buf, false).expect("response");
        assert_eq!(r.body, format!("Hello, {i}!\n").as_bytes());
        assert!(keep);
    }
}

/// Writes `pieces` (pausing between them, so they arrive as separate reads), then reads to
/// EOF and returns what came back and how long the close took after the last write. The read
/// timeout (2 s) is well below the 5 s header and idle timeouts, so a server that waits for
/// more bytes instead of answering and closing fails here rather than passing late with a 408
/// or a silent idle close.
fn answered_and_closed(addr: std::net::SocketAddr, pieces: &[&[u8]]) -> (String, Duration) {
    let mut s = connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        s.write_all(piece).expect("write");
    }
    let sent = Instant::now();
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        panic!(
            "no close within 2 s ({e}); got {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    (String::from_utf8_lossy(&out).into_owned(), sent.elapsed())
}

#[test]
fn test_h2_preface_gets_505_and_close_at_once_live() {
    let config = Http11Config::default();
    assert!(config.header_timeout >= Duration::from_secs(5));
    let server = LabServer::start(config).expect("server");
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // The client writes no further than the point where the server decides: bytes written
    // after its close draw an RST, which may discard the unread answer on the client side
    // (the session-level test `test_h2_preface_answered_505_at_once_however_cut` delivers
    // every cut of the whole preface).
    for pieces in [
        vec![PREFACE],
        // The request line and its blank line, `SM\r\n\r\n` not sent (yet): already enough.
        vec![&PREFACE[..18]],
        // One byte at a time, up to `PRI * HTTP/2.0`.
        PREFACE[..14].chunks(1).collect(),
    ] {
        let (text, took) = answered_and_closed(server.addr, &pieces);
        assert!(
            text.starts_with("HTTP/1.1 505 "),
            "{} pieces: {text}",
            pieces.len()
        );
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}

#[test]
fn test_bad_target_400_closes_and_skips_pipelined_request_live() {
    let server = LabServer::start(Http11Config::default()).expect("server");
    let (text, _) = answered_and_closed(
        server.addr,
        &[b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"],
    );
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(!text.contains("Keep-Alive"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "the pipelined request was answered: {text}"
    );
}
