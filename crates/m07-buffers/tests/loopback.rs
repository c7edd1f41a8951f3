//! The m07 request loop over real loopback sockets: keep-alive, split and pipelined requests,
//! writev of head + body, backpressure on pool exhaustion, error responses, file bodies.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::Ordering;
use std::time::Duration;

use m07_buffers::lab::{self, Client, GET_DYN, GET_ROOT, HELLO, ThreadServer, spawn_local_server};
use m07_buffers::serve::{ConnEnd, FileMethod, ServeConfig, send_file, send_file_response};
use m07_buffers::{PoolConfig, SharedPool};

fn debug_pool(buf: usize, n: usize) -> PoolConfig {
    PoolConfig::new(buf, n).with_debug(true)
}

#[test]
fn test_keep_alive_requests_share_one_connection() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    for _ in 0..50 {
        let r = c.request(GET_DYN).unwrap();
        assert_eq!((r.status, r.keep_alive), (200, true));
        assert!(c.last(&r).ends_with(b"you asked for /dyn (4 bytes)\n"));
    }
    c.stream().shutdown(Shutdown::Both).unwrap();
    let (stats, reports) = server.join().unwrap().unwrap();
    assert_eq!(reports[0].requests, 50);
    assert_eq!(reports[0].end, ConnEnd::PeerClosed);
    // One read buffer for the connection + one write buffer per response, all given back.
    assert_eq!(stats.allocs, 51);
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.high_water, 2);
}

#[test]
fn test_writev_head_and_body_slices_arrive_in_order() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    let r = c.request(GET_ROOT).unwrap();
    assert_eq!(r.body_len, HELLO.len());
    let bytes = c.last(&r);
    assert!(bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert_eq!(&bytes[r.head_len..], HELLO);
    drop(c);
    server.join().unwrap().unwrap();
}

#[test]
fn test_split_request_across_reads_parsed_once_complete() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    for piece in GET_DYN.chunks(7) {
        c.send(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.recv(false).unwrap().status, 200);
    drop(c);
    let (_, reports) = server.join().unwrap().unwrap();
    assert_eq!(reports[0].requests, 1);
}

#[test]
fn test_pipelined_requests_answered_in_order() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    let mut three = Vec::new();
    three.extend_from_slice(GET_ROOT);
    three.extend_from_slice(GET_DYN);
    three.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    c.send(&three).unwrap();
    let a = c.recv(false).unwrap();
    assert_eq!(a.body_len, HELLO.len());
    let b = c.recv(false).unwrap();
    assert!(c.last(&b).ends_with(b"(4 bytes)\n"));
    let last = c.recv(false).unwrap();
    assert!(!last.keep_alive, "no keep-alive asked: the server closes");
    let (_, reports) = server.join().unwrap().unwrap();
    assert_eq!((reports[0].requests, reports[0].end), (3, ConnEnd::Done));
}

#[test]
fn test_head_request_gets_length_without_body() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    c.send(b"HEAD / HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.stream().read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains(&format!("Content-Length: {}\r\n", HELLO.len())));
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body after the head: {text:?}"
    );
    server.join().unwrap().unwrap();
}

#[test]
fn test_head_larger_than_read_buffer_gets_431() {
    let (addr, server) =
        spawn_local_server(debug_pool(1024, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    let mut req = b"GET / HTTP/1.0\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 2000));
    req.extend_from_slice(b"\r\n\r\n");
    let _ = c.send(&req);
    assert_eq!(c.recv(false).unwrap().status, 431);
    let (stats, reports) = server.join().unwrap().unwrap();
    assert_eq!(reports[0].end, ConnEnd::HeadTooLarge);
    assert_eq!(stats.in_use, 0);
}

#[test]
fn test_malformed_request_gets_400_and_close() {
    let (addr, server) =
        spawn_local_server(debug_pool(4096, 4), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    c.send(b"GET / HTTP/1.0\r\nBad Header\r\n\r\n").unwrap();
    assert_eq!(c.recv(false).unwrap().status, 400);
    let (_, reports) = server.join().unwrap().unwrap();
    assert_eq!(reports[0].end, ConnEnd::BadRequest(400));
}

#[test]
fn test_exhausted_pool_write_buffer_503_then_close() {
    // One buffer: the connection's read buffer takes it, so no write buffer is ever free.
    let cfg = ServeConfig {
        acquire_timeout: Duration::from_millis(20),
        ..ServeConfig::default()
    };
    let (addr, server) = spawn_local_server(debug_pool(4096, 1), cfg, 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    let r = c.request(GET_DYN).unwrap();
    assert_eq!((r.status, r.keep_alive), (503, false));
    let (stats, reports) = server.join().unwrap().unwrap();
    assert_eq!(reports[0].end, ConnEnd::PoolExhausted);
    assert!(reports[0].exhausted_waits >= 1);
    assert_eq!(stats.exhausted, reports[0].exhausted_waits);
    assert_eq!(stats.in_use, 0, "nothing leaked, nothing malloc'd instead");
}

#[test]
fn test_exhausted_pool_at_accept_rejects_with_503() {
    // Three buffers: a's and b's read buffers, and one to lend for each response.
    let pool = SharedPool::new(debug_pool(4096, 3)).unwrap();
    let server = ThreadServer::start(pool.clone(), ServeConfig::default()).unwrap();
    let mut a = Client::connect(server.addr, 4096).unwrap();
    assert_eq!(a.request(GET_DYN).unwrap().status, 200);
    let mut b = Client::connect(server.addr, 4096).unwrap();
    assert_eq!(b.request(GET_DYN).unwrap().status, 200);
    // b's thread gives its write buffer back just after the response leaves.
    assert!(lab::wait_until(Duration::from_secs(5), || pool
        .stats()
        .in_use
        == 2));
    // a and b hold two read buffers; c takes the last one at accept; d is refused.
    let _c = Client::connect(server.addr, 4096).unwrap();
    assert!(lab::wait_until(Duration::from_secs(5), || server
        .totals
        .accepted
        .load(Ordering::Relaxed)
        == 3));
    let mut c = Client::connect(server.addr, 4096).unwrap();
    let r = c.request(GET_DYN).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(server.totals.rejected.load(Ordering::Relaxed), 1);
    assert!(pool.stats().exhausted >= 1);
    drop((a, b, c, _c));
    server.stop().unwrap();
    assert!(pool.outstanding().is_empty());
}

/// The common setup of the file-serving tests: `content` written to a temporary file (named by
/// `tag`, the process and `method`) and opened, and a loopback connection whose peer thread
/// reads everything until EOF. Returns the file's path (remove it when done), the open file,
/// the sending socket and the peer's join handle.
fn file_and_sink(
    content: &[u8],
    tag: &str,
    method: FileMethod,
) -> (
    std::path::PathBuf,
    std::fs::File,
    std::net::TcpStream,
    std::thread::JoinHandle<Vec<u8>>,
) {
    let path = std::env::temp_dir().join(format!("m07-{tag}-{}-{method:?}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let sock = lab::connect(addr).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();
    (path, file, sock, reader)
}

/// Serves `content` (written to a temporary file) as a `200 OK` response with `method` over a
/// loopback socket; returns the bytes sent and the body the peer received, after checking
/// that the head announces the right length.
fn serve_file_over_loopback(content: &[u8], method: FileMethod) -> (u64, Vec<u8>) {
    let (path, mut file, mut sock, reader) = file_and_sink(content, "file", method);
    let mut head = Vec::new();
    let mut buf = vec![0u8; 65536];
    let len = content.len() as u64;
    let sent = send_file_response(&mut sock, &mut head, &mut file, len, method, &mut buf).unwrap();
    sock.flush().unwrap();
    drop(sock);
    let got = reader.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(sent as usize, got.len());
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = std::str::from_utf8(&got[..head_end]).unwrap();
    assert!(
        head.contains(&format!("Content-Length: {len}\r\n")),
        "{method:?}: {head}"
    );
    (sent, got[head_end..].to_vec())
}

#[test]
fn test_file_body_sendfile_and_read_write_identical() {
    let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    for method in [FileMethod::Sendfile, FileMethod::ReadWrite] {
        let (_, body) = serve_file_over_loopback(&content, method);
        assert!(body == content, "{method:?} body differs");
    }
}

#[test]
fn test_file_body_splice_arrives_byte_exact() {
    // Larger than the 1 MiB pipe (several file -> pipe -> socket rounds) and an odd length.
    let content: Vec<u8> = (0..2_500_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (sent, body) = serve_file_over_loopback(&content, FileMethod::Splice);
    assert!(sent > content.len() as u64);
    assert_eq!(body.len(), content.len());
    assert!(body == content, "spliced body differs");
}

/// Serves `content`'s body with `method` from a thread that has first installed
/// `sys::forbid_user_space_data_path` (every read/write-family system call and file `mmap`
/// fails with `EPERM` on that thread only). Returns the serving thread's result and the bytes
/// the (unfiltered) peer received.
fn serve_body_without_user_space_path(
    content: &[u8],
    method: FileMethod,
) -> (std::io::Result<u64>, Vec<u8>) {
    let (path, mut file, mut sock, reader) = file_and_sink(content, "nocopy", method);
    let len = content.len() as u64;
    let sent = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        m07_buffers::sys::forbid_user_space_data_path().expect("seccomp filter installed");
        let r = send_file(&mut sock, &mut file, len, method, &mut buf);
        drop(sock); // close(2): allowed
        r
    })
    .join()
    .unwrap();
    let got = reader.join().unwrap();
    let _ = std::fs::remove_file(&path);
    (sent, got)
}

/// Zero-copy, shown rather than assumed: the serving thread cannot move a byte between a
/// descriptor and its own memory (seccomp, `sys::forbid_user_space_data_path`), yet the whole
/// body arrives byte-exact with `sendfile` and with `splice`; `read` + `write` under the same
/// filter fails with `EPERM` and delivers nothing (the control: the filter bites). On this
/// kernel `/proc/thread-self/io` cannot tell it: `sendfile` adds its bytes to both `rchar` and
/// `wchar` (do_sendfile's accounting), so the syscall filter is the evidence.
#[test]
fn test_file_body_zero_copy_no_user_space_data_path() {
    // Several sendfile calls' worth and several 1 MiB pipe-fulls; an odd length.
    let content: Vec<u8> = (0..3_000_007u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for method in [FileMethod::Sendfile, FileMethod::Splice] {
        let (sent, got) = serve_body_without_user_space_path(&content, method);
        assert_eq!(sent.unwrap() as usize, content.len(), "{method:?}");
        assert!(got == content, "{method:?}: body differs");
    }
    let (sent, got) = serve_body_without_user_space_path(&content, FileMethod::ReadWrite);
    let err = sent.expect_err("read+write must be refused under the filter");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert!(got.is_empty(), "read+write delivered {} bytes", got.len());
}
