//! Experiment `strace_crosscheck`: runs the echo_server under `strace -f -c`, drives K connection
//! lifecycles, and compares strace's per-syscall counts with the server's own accounting table.
//!
//! Two runs (0 and K lifecycles) so that the program's startup (dynamic loader, Rust runtime)
//! cancels out: per lifecycle = (run K − run 0) / K, for strace and for us. For the socket
//! syscalls the whole-process totals must be equal too (nobody else makes them). Exits non-zero
//! when a count disagrees.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::Duration;

use m01_raw_sockets::accounting::SyscallKind;
use m01_raw_sockets::lab::{self, ServerProcess, Table, echo_round_trip, round};

/// Kernel names of the syscalls nobody but our wrappers makes in the echo_server: the socket
/// calls, plus fcntl, pipe2 and getrusage.
const SOCKET_CALLS: [&str; 14] = [
    "socket",
    "setsockopt",
    "getsockopt",
    "bind",
    "listen",
    "accept4",
    "getsockname",
    "recvfrom",
    "sendto",
    "shutdown",
    "ioctl",
    "fcntl",
    "pipe2",
    "getrusage",
];

/// Kinds that the process also makes outside our wrappers on purpose: `read` (the dynamic
/// loader reading libraries), `write` (std's stderr logging; the signal handler's async-signal-
/// safe write to the self-pipe).
const NOT_COMPARED: [&str; 2] = ["read", "write"];

struct Run {
    strace: BTreeMap<String, (u64, u64)>,
    ours: BTreeMap<String, (u64, u64)>,
}

/// Parses `strace -c` output: `% time seconds usecs/call calls [errors] syscall`.
fn parse_strace(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        let name = cols[cols.len() - 1];
        if name == "total" {
            continue;
        }
        let calls = cols[3].parse().unwrap_or(0);
        let errors = if cols.len() >= 6 {
            cols[4].parse().unwrap_or(0)
        } else {
            0
        };
        map.insert(name.to_owned(), (calls, errors));
    }
    map
}

fn one_run(lifecycles: usize, dir: &std::path::Path) -> io::Result<Run> {
    let out = dir.join(format!("strace-{lifecycles}.txt"));
    let wrapper: Vec<String> = ["strace", "-f", "-c", "-o"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([out.display().to_string(), "--".into()])
        .collect();
    let server = ServerProcess::spawn(
        &wrapper,
        &["--quiet", "--json-report"],
        Duration::from_secs(30),
    )?;
    for i in 0..lifecycles {
        let mut c = lab::connect(server.addr, Duration::from_secs(10))?;
        echo_round_trip(&mut c, &lab::pattern(64, i as u8))?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)?; // the server has closed its side
    }
    let (status, _, lines) = server.terminate(Duration::from_secs(30))?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "strace/echo_server exited with {status}"
        )));
    }
    let report: serde_json::Value = serde_json::from_str(lines.last().map_or("{}", String::as_str))
        .map_err(|e| io::Error::other(format!("no JSON report from echo_server: {e}")))?;
    let mut ours = BTreeMap::new();
    if let Some(obj) = report["process_syscalls"].as_object() {
        for (name, row) in obj {
            let errors: u64 = row["errors"]
                .as_object()
                .map_or(0, |e| e.values().filter_map(|v| v.as_u64()).sum());
            ours.insert(name.clone(), (row["count"].as_u64().unwrap_or(0), errors));
        }
    }
    let text = std::fs::read_to_string(&out)?;
    Ok(Run {
        strace: parse_strace(&text),
        ours,
    })
}

fn main() -> std::process::ExitCode {
    if !lab::have_tool("strace") {
        eprintln!("strace is missing: run `cargo xtask setup` (apt-get install -y strace)");
        return std::process::ExitCode::FAILURE;
    }
    lab::run_main(|| {
        let k = if lab::quick() { 20 } else { 200 };
        let dir = std::env::temp_dir().join(format!("m01-strace-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let base = one_run(0, &dir)?;
        let full = one_run(k, &dir)?;
        let _ = std::fs::remove_dir_all(&dir);
        let mut t = Table::new(
            "strace -f -c vs built-in accounting (echo_server, K connection lifecycles)",
            &[
                "syscall",
                "strace calls (K run)",
                "our calls (K run)",
                "strace per lifecycle",
                "ours per lifecycle",
                "strace errors (K run)",
                "our errors (K run)",
                "agree",
            ],
        );
        let mut disagreements = Vec::new();
        for kind in SyscallKind::ALL {
            let name = kind.name();
            let get = |m: &BTreeMap<String, (u64, u64)>| m.get(name).copied().unwrap_or((0, 0));
            let (s_k, se_k) = get(&full.strace);
            let (o_k, oe_k) = get(&full.ours);
            let (s_0, _) = get(&base.strace);
            let (o_0, _) = get(&base.ours);
            if s_k == 0 && o_k == 0 {
                continue;
            }
            let s_per = (s_k as f64 - s_0 as f64) / k as f64;
            let o_per = (o_k as f64 - o_0 as f64) / k as f64;
            if NOT_COMPARED.contains(&name) {
                t.rows.push(vec![
                    name.into(),
                    s_k.into(),
                    o_k.into(),
                    round((s_k as f64 - s_0 as f64) / k as f64, 2).into(),
                    round((o_k as f64 - o_0 as f64) / k as f64, 2).into(),
                    se_k.into(),
                    oe_k.into(),
                    "not compared (std's stderr, the loader, the signal handler)".into(),
                ]);
                continue;
            }
            let socket_call = SOCKET_CALLS.contains(&name);
            let agree = if socket_call {
                s_k == o_k && se_k == oe_k
            } else {
                (s_per - o_per).abs() < 1e-9
            };
            let verdict = match (agree, socket_call) {
                (true, true) => "yes (totals equal)".to_owned(),
                (true, false) => "yes (per lifecycle; startup differs)".to_owned(),
                (false, _) => {
                    disagreements.push(name);
                    "NO".to_owned()
                }
            };
            t.rows.push(vec![
                name.into(),
                s_k.into(),
                o_k.into(),
                round(s_per, 2).into(),
                round(o_per, 2).into(),
                se_k.into(),
                oe_k.into(),
                verdict.into(),
            ]);
        }
        t.notes = format!(
            "K = {k}. Each lifecycle: connect, one 64-byte echo, client FIN, wait for the server's FIN. \
             The echo_server runs under `strace -f -c -o FILE` and prints its whole-process accounting \
             table (--json-report, process_syscalls) after a SIGTERM shutdown. Socket syscalls (and fcntl, \
             pipe2, getrusage) are made only through our wrappers, so their totals must be equal; for \
             close, poll, openat, rt_sigaction and prlimit64 the dynamic loader and the Rust runtime add calls at \
             startup, so the comparison is per lifecycle: (run with K − run with 0) / K. \
             read and write are shown but not compared: the loader reads the libraries, std writes the log lines to stderr and the signal handler writes its byte to the self-pipe with raw libc (no accounting inside a signal handler). Syscalls only strace sees (mmap, brk, munmap…) are not listed. {} Machine: {}.",
            if disagreements.is_empty() {
                "Every listed count agrees.".to_owned()
            } else {
                format!("DISAGREEMENT on: {}.", disagreements.join(", "))
            },
            lab::machine()
        );
        t.print();
        if disagreements.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "strace and accounting disagree on {}",
                disagreements.join(", ")
            )))
        }
    })
}
