//! Exit check `hot_path_lock_acquisitions`: the request path of the loops takes no lock.
//!
//! Two measurements, added together:
//! 1. **Runtime**: `zyphos serve --io epoll --workers 2` (release build) runs under
//!    `strace -f --seccomp-bpf -e trace=futex` (only futex calls stop the tracee, so the server
//!    runs at nearly full speed) while `zyphos-load` sends 1,000,000 keep-alive
//!    `GET /plaintext` requests. A contended mutex, rwlock or condvar in Rust's std (and a
//!    parked thread) ends in `futex(2)`; an uncontended one does not, which is why (2) exists.
//!    Counted: futex calls made by the loop threads (the main thread, which runs loop 0, and
//!    `loop-N`) between the first and the last request of the load (strace's output file
//!    length is noted before and after; start-up and shutdown futexes are outside).
//! 2. **Source**: occurrences of `Mutex`, `RwLock`, `Condvar`, `.lock()` outside comments in
//!    `crates/m09-event-loop/src` and `crates/m10-multi-loop/src`, except each crate's hidden
//!    test/experiment helpers `lab.rs` (the same lint as the
//!    `lint` test): an uncontended lock costs no syscall, so only the source shows it.
//!
//! **Measured** = loop-thread futex calls during the load + lock mentions in the loop code.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use m10_multi_loop::lab::{
    Zyphos, children_of, load, num, print_measured, process_threads, release_binary, run_main,
    signal_term, wait_until,
};

const REQUESTS: u64 = 1_000_000;

fn lock_mentions(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        // lab.rs: hidden helpers for tests and experiments, never called by a server.
        let lab = p.file_name().is_some_and(|n| n == "lab.rs");
        if p.extension().is_some_and(|x| x == "rs") && !lab {
            for line in std::fs::read_to_string(&p)?.lines() {
                let code = line.split("//").next().unwrap_or("");
                if ["Mutex", "RwLock", "Condvar", ".lock()"]
                    .iter()
                    .any(|w| code.contains(w))
                {
                    eprintln!("lock in source: {}: {}", p.display(), line.trim());
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let in_source = lock_mentions(&root.join("crates/m09-event-loop/src"))?
            + lock_mentions(&root.join("crates/m10-multi-loop/src"))?;
        let bin = release_binary("zyphos", "zyphos")?;
        let trace = std::env::temp_dir().join(format!("m10-futex-{}.txt", std::process::id()));
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "--seccomp-bpf", "-e", "trace=futex", "-o"])
            .arg(&trace)
            .arg(&bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--io",
                "epoll",
                "--workers",
                "2",
            ])
            .args(["--proto", "http1.1"]);
        let z = Zyphos::start(cmd)?;
        let strace_pid = z.pid();
        let mut server_pid = None;
        wait_until(Duration::from_secs(5), || {
            server_pid = children_of(strace_pid).first().copied();
            server_pid.is_some()
        });
        let pid = server_pid.ok_or_else(|| io::Error::other("no zyphos under strace"))?;
        let mut threads: HashMap<u64, String> = HashMap::new();
        wait_until(Duration::from_secs(5), || {
            threads = process_threads(pid).into_iter().collect();
            threads.values().any(|n| n == "loop-1")
        });
        let loop_tids: Vec<u64> = threads
            .iter()
            .filter(|(tid, name)| **tid == u64::from(pid) || name.starts_with("loop-"))
            .map(|(tid, _)| *tid)
            .collect();
        // Warm-up outside the window (first connections, lazy initialisation).
        let warm: Vec<String> = [
            "--scenario",
            "http1.1",
            "--connections",
            "64",
            "--duration",
            "1",
            "--path",
            "/plaintext",
            &z.addr.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        load(&warm)?;
        let start = std::fs::metadata(&trace)?.len();
        let args: Vec<String> = [
            "--scenario",
            "http1.1",
            "--connections",
            "64",
            "--duration",
            "120",
            "--requests",
            &REQUESTS.to_string(),
            "--path",
            "/plaintext",
            &z.addr.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let report = load(&args)?;
        let end = std::fs::metadata(&trace)?.len();
        // Threads that appeared during the run count as loop threads only if named so.
        for (tid, name) in process_threads(pid) {
            threads.entry(tid).or_insert(name);
        }
        // SIGTERM to the server itself: strace, the process we started, would detach on it and
        // leave the server running.
        signal_term(pid);
        z.stop()?;
        let text = std::fs::read(&trace)?;
        let _ = std::fs::remove_file(&trace);
        let window = String::from_utf8_lossy(&text[start as usize..(end as usize).min(text.len())])
            .into_owned();
        let mut by_thread: HashMap<u64, usize> = HashMap::new();
        for line in window.lines() {
            let mut parts = line.splitn(2, ' ');
            let (Some(tid), Some(rest)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(tid) = tid.trim().parse::<u64>() else {
                continue;
            };
            if rest.trim_start().starts_with("futex(") {
                if loop_tids.contains(&tid) {
                    eprintln!("loop thread futex: {line}");
                }
                *by_thread.entry(tid).or_default() += 1;
            }
        }
        let on_loops: usize = loop_tids
            .iter()
            .map(|t| by_thread.get(t).copied().unwrap_or(0))
            .sum();
        let elsewhere: usize = by_thread
            .iter()
            .filter(|(t, _)| !loop_tids.contains(t))
            .map(|(_, n)| n)
            .sum();
        let requests = num(&report, &["requests"]);
        if requests < REQUESTS as f64 {
            return Err(io::Error::other(format!(
                "only {requests} requests answered"
            )));
        }
        let names: Vec<String> = loop_tids
            .iter()
            .map(|t| format!("{t}={}", threads.get(t).map(String::as_str).unwrap_or("?")))
            .collect();
        let detail = format!(
            "{on_loops} futex calls on the loop threads [{}] during {requests:.0} keep-alive GET /plaintext ({:.0} req/s under strace --seccomp-bpf -e trace=futex); {elsewhere} on other threads; {in_source} lock mentions (Mutex/RwLock/Condvar/.lock()) in m09+m10 sources (lab.rs helpers excluded)",
            names.join(", "),
            num(&report, &["rps"]),
        );
        eprintln!("{detail}");
        print_measured((on_loops + in_source) as f64, "lock acquisitions", &detail);
        Ok(())
    })
}
