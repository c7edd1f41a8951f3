//! Experiment `stack_overflow`: a connection-thread-sized stack overflowed by deep recursion,
//! in a child process (this program re-run with `--child STACK_KIB DEPTH`). Shows that the
//! guard page turns the overflow into SIGSEGV, which Rust reports ("has overflowed its stack")
//! and turns into an abort of the *whole process*: catch_unwind cannot save the server.
//! Prints one JSON table.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use m03_thread_per_conn::lab::{self, Table};
use serde_json::json;

/// Each frame holds 1 KiB.
fn recurse(depth: usize) -> u64 {
    let mut frame = [0u8; 1024];
    frame[depth % 1024] = depth as u8;
    std::hint::black_box(&mut frame);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    recurse(depth - 1) + u64::from(std::hint::black_box(frame[1]))
}

fn child(stack_kib: usize, depth: usize) -> ! {
    let h = std::thread::Builder::new()
        .name("deep".into())
        .stack_size(stack_kib * 1024)
        .spawn(move || {
            // A panic would be caught here; a stack overflow is not a panic.
            std::panic::catch_unwind(|| recurse(depth)).is_ok()
        })
        .expect("spawn");
    let ok = h.join().unwrap_or(false);
    println!("survived {ok}");
    std::process::exit(0);
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kib = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(128);
        let depth = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(10);
        child(kib, depth);
    }
    lab::run_main(|| {
        let exe = std::env::current_exe()?;
        let mut t = Table::new(
            "Stack overflow in a thread: what happens to the process",
            &[
                "stack_kib",
                "recursion_kib",
                "outcome",
                "exit_signal",
                "rust_message",
            ],
        );
        for (kib, depth) in [
            (64usize, 32usize),
            (64, 256),
            (128, 64),
            (128, 1024),
            (2048, 1024),
            (2048, 8192),
        ] {
            let out = Command::new(&exe)
                .args(["--child", &kib.to_string(), &depth.to_string()])
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let outcome = if out.status.success() && stdout.contains("survived true") {
                "completed"
            } else {
                "process killed"
            };
            t.rows.push(vec![
                json!(kib),
                json!(depth),
                json!(outcome),
                json!(out.status.signal().map_or("none".to_owned(), |s| match s {
                    6 => "SIGABRT".to_owned(),
                    11 => "SIGSEGV".to_owned(),
                    n => format!("signal {n}"),
                })),
                json!(if stderr.contains("has overflowed its stack") {
                    "yes"
                } else {
                    "no"
                }),
            ]);
        }
        t.notes = format!(
            "A child process spawns one thread with the given stack and recurses with 1 KiB \
             frames inside catch_unwind. Below the stack sits a guard page (PROT_NONE); touching \
             it raises SIGSEGV. Rust's handler recognises the guard page, prints \"thread 'deep' \
             has overflowed its stack\" and aborts: SIGABRT for the whole process, every \
             connection with it. Lesson: bound recursion on peer input (parsers), size stacks \
             from measurement (stack_memory), and isolate untrusted work in processes. \
             Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
