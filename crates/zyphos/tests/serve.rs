//! `zyphos serve` as a user runs it: the default stack (event loops, HTTP/1.1, the
//! lab site) on a free port, spoken to over real sockets, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `zyphos serve`, stopped (and checked to exit 0) on drop.
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zyphos"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zyphos serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("the first stdout line is the address");
        Server {
            child: Some(child),
            addr: first.trim().to_owned(),
        }
    }

    /// Sends `request` on a new connection and reads the whole response (HTTP/1.0: the server
    /// closes after it).
    fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let mut conn = TcpStream::connect(&self.addr).expect("connects");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        conn.write_all(request).expect("sends");
        let mut response = Vec::new();
        conn.read_to_end(&mut response).expect("reads to EOF");
        response
    }

    fn stop(mut self) -> String {
        let child = self.child.take().expect("running");
        stop_child(child)
    }
}

fn stop_child(child: Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("zyphos serve exits");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "graceful exit 0: {:?}\n{stderr}",
        out.status
    );
    stderr
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn split(response: &[u8]) -> (String, Vec<u8>) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block ending in CRLF CRLF");
    (
        String::from_utf8_lossy(&response[..end]).into_owned(),
        response[end + 4..].to_vec(),
    )
}

#[test]
fn test_http10_serve_answers_the_lab_site() {
    let server = Server::start(&["--proto", "http1.0"]);

    let (head, body) = split(&server.exchange(b"GET /plaintext HTTP/1.0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: 13"), "{head}");
    assert!(head.contains("\r\nDate: "), "{head}");
    assert_eq!(body, b"Hello, World!");

    let (head, body) = split(&server.exchange(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(head.contains("text/html"), "{head}");
    let page = String::from_utf8_lossy(&body);
    for link in ["/plaintext", "/static/", "/echo", "/stats"] {
        assert!(page.contains(link), "the index links {link}");
    }

    let (head, body) = split(&server.exchange(b"GET /static/1k.bin HTTP/1.0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let expected: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(body, expected, "the shipped 1 KiB file, byte for byte");

    let (head, body) =
        split(&server.exchange(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"));
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(body, b"hello");

    let (head, body) = split(&server.exchange(b"HEAD /plaintext HTTP/1.0\r\n\r\n"));
    assert!(head.contains("Content-Length: 13"), "{head}");
    assert!(body.is_empty(), "HEAD has no body");

    let (head, _) = split(&server.exchange(b"GET /static/../Cargo.toml HTTP/1.0\r\n\r\n"));
    assert!(
        !head.starts_with("HTTP/1.0 200"),
        "traversal must not succeed: {head}"
    );
    let (head, _) =
        split(&server.exchange(b"GET /static/%2e%2e/%2e%2e/Cargo.toml HTTP/1.0\r\n\r\n"));
    assert!(
        !head.starts_with("HTTP/1.0 200"),
        "encoded traversal must not succeed: {head}"
    );

    let (head, _) = split(&server.exchange(b"GET /nowhere HTTP/1.0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.0 404"), "{head}");
    let (head, _) = split(&server.exchange(b"DELETE /plaintext HTTP/1.0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.0 405"), "{head}");
    assert!(head.contains("Allow: "), "{head}");
    let (head, _) = split(&server.exchange(b"GET /plaintext HTTP/3.0\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.0 505"), "{head}");

    let (head, body) = split(&server.exchange(b"GET /stats HTTP/1.0\r\n\r\n"));
    assert!(head.contains("application/json"), "{head}");
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("/stats is JSON");
    // The default driver is the event loops: their counters, loop by loop.
    assert!(
        stats.get("driver").is_some() && stats.get("loops").is_some(),
        "{stats}"
    );

    server.stop();
}

#[test]
fn test_serve_echo_protocol_on_threads() {
    let server = Server::start(&["--io", "threads", "--proto", "echo"]);
    let mut conn = TcpStream::connect(&server.addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(b"zyphos").expect("sends");
    let mut echoed = [0u8; 6];
    conn.read_exact(&mut echoed).expect("echo comes back");
    assert_eq!(&echoed, b"zyphos");
    drop(conn);
    server.stop();
}

#[test]
fn test_serve_missing_root_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_zyphos"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root",
            "/nonexistent/zyphos-root",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/zyphos-root"), "{err}");
}

#[test]
fn test_serve_pool_runs_the_same_site_on_a_thread_pool() {
    let server = Server::start(&["--io", "pool", "--workers", "4", "--proto", "http1.0"]);
    for _ in 0..10 {
        let (head, body) = split(&server.exchange(b"GET /plaintext HTTP/1.0\r\n\r\n"));
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert_eq!(body, b"Hello, World!");
    }
    let (_, body) = split(&server.exchange(b"GET /stats HTTP/1.0\r\n\r\n"));
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("/stats is JSON");
    let completed = stats["pool"]["completed"]
        .as_u64()
        .expect("pool counters in /stats");
    assert!(
        completed >= 10,
        "each connection ran as a pool task: {stats}"
    );
    server.stop();
}

#[test]
fn test_serve_threads_rejects_workers() {
    let out = Command::new(env!("CARGO_BIN_EXE_zyphos"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--io",
            "threads",
            "--workers",
            "2",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}

/// Reads one response with a `Content-Length` body from a keep-alive connection.
fn read_response(conn: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .expect("a number");
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).expect("the body");
    (head, body)
}

#[test]
fn test_default_serve_is_http11_keep_alive_pipelined_and_chunked() {
    let server = Server::start(&[]);
    let mut conn = TcpStream::connect(&server.addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // Two requests pipelined in one write, answered in order on the same connection.
    conn.write_all(
        b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /static/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .expect("sends");
    let (head, body) = read_response(&mut conn);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, b"Hello, World!");
    let (_, body) = read_response(&mut conn);
    assert_eq!(body, b"Hello from the Zyphos lab site.\n");
    // A chunked upload echoed back, still on the same connection.
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .expect("sends");
    let (head, body) = read_response(&mut conn);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"hello world");
    // HTTP/1.1 without Host is refused (RFC 9112 §3.2).
    conn.write_all(b"GET /plaintext HTTP/1.1\r\n\r\n")
        .expect("sends");
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    server.stop();
}

#[test]
fn test_browser_like_requests_get_the_page_its_stylesheet_and_a_404() {
    let server = Server::start(&[]);
    let mut conn = TcpStream::connect(&server.addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // What a browser sends for a page, then its stylesheet and a favicon, on one connection.
    let browser_headers = "Host: 127.0.0.1\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0\r\n\
        Accept-Language: en-GB,en;q=0.5\r\n\
        Accept-Encoding: gzip, deflate, br, zstd\r\n\
        Connection: keep-alive\r\n\
        Upgrade-Insecure-Requests: 1\r\n\
        Sec-Fetch-Dest: document\r\n\
        Sec-Fetch-Mode: navigate\r\n\
        Sec-Fetch-Site: none\r\n\
        Sec-Fetch-User: ?1\r\n\
        Priority: u=0, i\r\n\
        Cookie: theme=dark; session=abc123\r\n";
    for (path, accept, status, kind) in [
        (
            "/",
            "text/html,application/xhtml+xml,*/*;q=0.8",
            "200",
            "text/html",
        ),
        ("/static/style.css", "text/css,*/*;q=0.1", "200", "text/css"),
        ("/favicon.ico", "image/avif,image/webp,*/*", "404", ""),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\n{browser_headers}Accept: {accept}\r\n\r\n");
        conn.write_all(request.as_bytes()).expect("sends");
        let (head, body) = read_response(&mut conn);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {head}"
        );
        assert!(head.contains(kind), "{path}: {head}");
        if status == "200" {
            assert!(!body.is_empty(), "{path} has a body");
        }
    }
    server.stop();
}

/// `GET /stats` on a new connection, parsed.
fn stats(addr: &str) -> serde_json::Value {
    let mut conn = TcpStream::connect(addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("sends");
    let (_, body) = read_response(&mut conn);
    serde_json::from_slice(&body).expect("/stats is JSON")
}

#[test]
fn test_default_serve_runs_event_loops_one_per_allowed_cpu() {
    let server = Server::start(&[]);
    // The address is printed once the listeners are bound; loops pin themselves as they start.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut s = stats(&server.addr);
    while s["loops"]
        .as_array()
        .is_some_and(|l| l.iter().any(|l| l["alive"] != true))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
        s = stats(&server.addr);
    }
    let loops = s["loops"].as_array().expect("per-loop statistics");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(loops.len(), cpus, "one loop per CPU by default: {s}");
    for l in loops {
        assert!(
            l["cpu"].as_i64().unwrap_or(-1) >= 0,
            "pinned by default: {l}"
        );
    }
    assert!(s["driver"]["accepted"].as_u64().unwrap_or(0) >= 1, "{s}");
    let stderr = server.stop();
    assert!(stderr.contains("--io epoll"), "{stderr}");
}

#[test]
fn test_serve_processes_share_the_port_and_stop_together() {
    let server = Server::start(&["--io", "epoll", "--workers", "1", "--processes", "2"]);
    // SO_REUSEPORT spreads connections by their source port: both processes answer soon.
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..200 {
        pids.insert(stats(&server.addr)["pid"].as_u64().expect("pid"));
        if pids.len() == 2 {
            break;
        }
    }
    assert_eq!(pids.len(), 2, "two server processes answered: {pids:?}");
    let stderr = server.stop();
    assert_eq!(
        stderr.matches("stopped after").count(),
        2,
        "both processes stop gracefully:\n{stderr}"
    );
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still running"
        );
    }
}

#[test]
fn test_serve_epoll_no_pin_leaves_loops_unpinned() {
    let server = Server::start(&["--io", "epoll", "--workers", "2", "--no-pin"]);
    let s = stats(&server.addr);
    for l in s["loops"].as_array().expect("loops") {
        assert_eq!(l["cpu"].as_i64(), Some(-1), "{l}");
    }
    server.stop();
}

#[test]
fn test_index_page_shows_the_listening_address_in_its_curl_example() {
    // Port 0: the page must show the port actually bound, not the one asked for.
    let server = Server::start(&[]);
    let (head, body) = split(
        &server.exchange(b"GET / HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let page = String::from_utf8_lossy(&body);
    let example = format!("curl --data hi http://{}/echo", server.addr);
    assert!(page.contains(&example), "no `{example}` in:\n{page}");
    assert!(
        !page.contains("{addr}") && !page.contains("{{"),
        "an unfilled placeholder:\n{page}"
    );
    server.stop();
}

/// Reads until the server closes, failing if that takes longer than `limit`.
fn read_until_close(conn: &mut TcpStream, limit: Duration) -> Vec<u8> {
    conn.set_read_timeout(Some(limit)).expect("timeout");
    let mut response = Vec::new();
    if let Err(e) = conn.read_to_end(&mut response) {
        panic!(
            "no close within {limit:?} ({e}); got {:?}",
            String::from_utf8_lossy(&response)
        );
    }
    response
}

#[test]
fn test_bad_request_target_closes_and_skips_the_pipelined_request() {
    let server = Server::start(&[]);
    let mut conn = TcpStream::connect(&server.addr).expect("connects");
    // `h:80` is not a path the site can route (the router answers 400); a valid request is
    // pipelined behind it in the same write.
    conn.write_all(
        b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .expect("sends");
    // 2 s: far below the 5 s idle timeout, so only a close after the 400 ends the read.
    let response = read_until_close(&mut conn, Duration::from_secs(2));
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(!text.contains("Keep-Alive"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "the pipelined request was answered: {text}"
    );
    server.stop();
}

#[test]
fn test_http2_preface_is_answered_505_at_once() {
    let server = Server::start(&[]);
    let mut conn = TcpStream::connect(&server.addr).expect("connects");
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("sends");
    // 2 s: well below the 5 s header timeout whose 408 the preface used to wait for.
    let response = read_until_close(&mut conn, Duration::from_secs(2));
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 505 "), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    server.stop();
}
