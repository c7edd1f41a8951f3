//! The `ss`-like live view: our table next to the kernel's sockets, from the snapshot file a
//! running server writes (what `zyphos conns` prints).

use std::time::Duration;

use m02_tcp_state::cli;
use m02_tcp_state::lab::{TrackedServer, echo_config, verifying};
use m02_tcp_state::tracker::SnapshotConfig;

#[test]
fn test_conns_view_shows_ours_and_kernel_state() {
    let dir = std::env::temp_dir().join(format!("m02-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("conns.json");
    let mut cfg = verifying();
    cfg.snapshot = Some(SnapshotConfig {
        path: Some(file.clone()),
        every: Duration::from_millis(20),
    });
    let server = TrackedServer::start(echo_config(), cfg).unwrap();
    let mut c = m01_raw_sockets::lab::connect(server.addr, Duration::from_secs(5)).unwrap();
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"view me").unwrap();
    let peer = c.local_addr().unwrap().to_string();
    let opts = cli::parse_conns(
        [
            "--port",
            &server.addr.port().to_string(),
            "--file",
            file.to_str().unwrap(),
        ]
        .map(str::to_owned),
    )
    .unwrap();
    let mut text = String::new();
    assert!(
        m02_tcp_state::lab::wait_until(Duration::from_secs(5), || {
            text = cli::conns_once(&opts).unwrap_or_default();
            text.contains(&peer) && text.contains("7/7")
        }),
        "{text}"
    );
    let line = text.lines().find(|l| l.contains(&peer)).unwrap();
    assert!(line.starts_with("ESTABLISHED"), "{line}");
    assert!(line.contains("ESTAB "), "the kernel's column: {line}");
    assert!(text.contains("table: 1 live"), "{text}");
    drop(c);
    server.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_conns_view_without_a_server_lists_kernel_sockets() {
    // A plain listener, no table: the view still shows the kernel's side.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let opts = cli::parse_conns(
        [
            "--port",
            &port.to_string(),
            "--file",
            "/nonexistent/zyphos-conns.json",
        ]
        .map(str::to_owned),
    )
    .unwrap();
    let text = cli::conns_once(&opts).unwrap();
    assert!(text.starts_with("no table snapshot"), "{text}");
    assert!(
        text.contains("(untracked)") && text.contains("ESTAB"),
        "{text}"
    );
    drop(c);
}
