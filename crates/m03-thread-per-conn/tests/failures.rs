//! Thread creation failure for real: root ignores `RLIMIT_NPROC`, so the test re-runs itself in
//! a child process that becomes an unprivileged user, lowers `RLIMIT_NPROC` to just above the
//! tasks it already has, and opens more connections than it may have threads.
//!
//! `RLIMIT_NPROC` counts every task of the user on the machine, so the user is one no other
//! process runs as (not `nobody`: another copy of this test, or any daemon running as `nobody`,
//! would take or free "our" task slots meanwhile): a uid in 60000–64999 (Debian's range for
//! dynamically allocated system users, inside any 16-bit uid map) picked by process id.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m03_thread_per_conn::lab::{
    PanicFactory, RunningServer, connect, echo_round_trip, read_to_close, test_config, wait_until,
};
use m03_thread_per_conn::{CloseReason, procfs, sys};

const CHILD_ENV: &str = "M03_NPROC_CHILD";
const NAME: &str = "test_thread_creation_fails_refused_server_lives";
const T: Duration = Duration::from_secs(5);

/// A uid no other process runs as (see the module doc).
fn lone_uid() -> u32 {
    60_000 + std::process::id() % 5_000
}

#[test]
fn test_thread_creation_fails_refused_server_lives() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("CHILD-OK"),
        "child did not report:\n{stdout}\n{stderr}"
    );
}

/// Runs as an unprivileged user of its own with a tiny `RLIMIT_NPROC`.
fn child() {
    let (config, _) = test_config();
    let server = RunningServer::start(config, PanicFactory).unwrap();
    let uid = lone_uid();
    sys::drop_privileges(uid, uid).expect("setuid(unprivileged)");
    // Every task of the user counts, ours included: allow two more.
    let tasks = procfs::tasks_of_user(uid);
    sys::set_nproc_limit(tasks + 2).unwrap();
    println!("uid {uid} owns {tasks} tasks; RLIMIT_NPROC = {}", tasks + 2);
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..6u8 {
        let mut c = connect(server.addr, T).unwrap();
        match echo_round_trip(&mut c, &[b'a' + i]) {
            Ok(_) => served.push(c),
            Err(_) => {
                // Refusal bytes are PanicFactory's "BUSY\n"; the first byte may have been read.
                let (_, eof) = read_to_close(&mut c, T);
                assert!(eof, "a refused connection is closed");
                refused += 1;
            }
        }
    }
    let s = server.stats.snapshot();
    println!("served {} refused {refused}: {s:?}", served.len());
    assert!(s.spawn_failures >= 1, "no spawn failed: {s:?}");
    assert_eq!(s.spawn_failures as usize, refused);
    assert_eq!(s.closed(CloseReason::Refused) as usize, refused);
    assert!(served.len() <= 2, "more threads than RLIMIT_NPROC allows");
    // The server lives on: once threads exit, connections are served again.
    drop(served);
    assert!(wait_until(T, || server.stats.snapshot().threads_live == 0));
    let mut again = connect(server.addr, T).unwrap();
    echo_round_trip(&mut again, b"after").unwrap();
    drop(again);
    let report = server.stop().unwrap();
    assert_eq!(report.unjoined, 0);
    println!("CHILD-OK");
}
