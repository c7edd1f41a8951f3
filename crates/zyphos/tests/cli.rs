//! The binary's command line, run as a user runs it.

use std::process::Command;

fn zyphos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zyphos"))
        .args(args)
        .output()
        .expect("the zyphos binary runs")
}

#[test]
fn test_help_explains_every_serve_switch() {
    let out = zyphos(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for switch in [
        "--listen",
        "--io",
        "--workers",
        "--proto",
        "--router",
        "--root",
        "--access-log",
    ] {
        assert!(
            help.contains(switch),
            "`serve --help` lacks {switch}:\n{help}"
        );
    }
    for io in ["threads", "pool", "epoll", "uring"] {
        assert!(help.contains(io), "`serve --help` lacks the {io} I/O model");
    }
}

#[test]
fn test_serve_unbuilt_stack_names_the_missing_milestones() {
    let out = zyphos(&[
        "serve",
        "--io",
        "uring",
        "--proto",
        "h2c",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        !out.status.success(),
        "an unbuilt stack must not pretend to serve"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().count(),
        1,
        "one-line error expected, got:\n{err}"
    );
    assert!(err.contains("milestone 15 (m15-io-uring)"), "{err}");
    assert!(err.contains("milestone 24 (m24-h2-streams)"), "{err}");
}

#[test]
fn test_bad_listen_address_is_a_usage_error() {
    let out = zyphos(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit with 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn test_echo_serves_milestone_one_and_stops_on_sigterm() {
    let stderr = echo_round_trip_then_sigterm(&[]);
    assert!(
        stderr.contains("accept4"),
        "the syscall table is printed at exit:\n{stderr}"
    );
}

#[test]
fn test_echo_with_conn_table_serves_and_stops_on_sigterm() {
    echo_round_trip_then_sigterm(&["--conn-table"]);
}

/// Starts `zyphos echo` on a free port, checks one echo, stops it with SIGTERM and returns its
/// stderr once it has exited with status 0.
fn echo_round_trip_then_sigterm(extra: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_zyphos"))
        .args(["echo", "--listen", "127.0.0.1:0", "--quiet"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zyphos echo starts");
    // The first stdout line is the bound address.
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut first)
        .expect("address line");
    let addr = first.trim().to_owned();
    let mut conn = TcpStream::connect(&addr).expect("connects to the echo server");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout set");
    conn.write_all(b"zyphos").expect("sends");
    let mut echoed = [0u8; 6];
    conn.read_exact(&mut echoed).expect("echo comes back");
    assert_eq!(&echoed, b"zyphos");
    drop(conn);

    // SIGTERM through kill(1) (util-linux/procps, on every Linux this runs on).
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("zyphos echo exits");
    assert!(
        out.status.success(),
        "graceful shutdown exits 0: {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn test_echo_bad_argument_is_a_usage_error() {
    let out = zyphos(&["echo", "--mode", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}
