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
    for switch in ["--listen", "--io", "--workers", "--proto"] {
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
        "threads",
        "--proto",
        "http1.0",
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
    assert!(err.contains("milestone 3 (m03-thread-per-conn)"), "{err}");
    assert!(err.contains("milestone 4 (m04-http10)"), "{err}");
}

#[test]
fn test_bad_listen_address_is_a_usage_error() {
    let out = zyphos(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit with 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen"), "{err}");
}
