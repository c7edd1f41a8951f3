//! Experiment: cache coherence. (1) False sharing, measured on this machine: two threads on
//! two CPUs each increment *their own* single-writer counter, the two counters either in one
//! 64-byte cache line or padded apart (crossbeam's CachePadded, what per-loop state should
//! look like), vs both on one shared atomic. (2) Cache misses of the server's request path,
//! **simulated** by valgrind's cachegrind (`--cache-sim=yes --branch-sim=yes`) on this
//! example serving echo round trips through 2 loops (`--serve N`): cachegrind models one cache
//! hierarchy and runs threads one at a time, so it counts capacity/conflict misses per
//! request but cannot show coherence traffic — that is what (1) measures.

use std::hint::black_box;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use m03_thread_per_conn::EchoFactory;
use m10_multi_loop::affinity::{allowed_cpus, cpu_for_loop, pin_current_thread};
use m10_multi_loop::lab::{
    MultiInProcess, Table, config, connect, machine, quick, round, run_main,
};

struct Unpadded {
    a: AtomicU64,
    b: AtomicU64,
}

fn two_writers(n: u64, a: &'static AtomicU64, b: &'static AtomicU64) -> f64 {
    let allowed = allowed_cpus().unwrap_or_default();
    let start = Instant::now();
    let hs: Vec<_> = [a, b]
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let cpu = cpu_for_loop(&allowed, i);
            std::thread::spawn(move || {
                if let Some(cpu) = cpu {
                    let _ = pin_current_thread(cpu);
                }
                for _ in 0..n {
                    // Single writer: load + store, as m09's Counter.
                    let v = c.load(Ordering::Relaxed);
                    c.store(black_box(v + 1), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn serve(n: usize) -> std::io::Result<()> {
    let mut c = config(2);
    c.balance.enabled = false;
    let server = MultiInProcess::start(c, EchoFactory::default())?;
    let mut conns: Vec<_> = (0..8)
        .map(|_| connect(server.addr, Duration::from_secs(60)))
        .collect::<Result<_, _>>()?;
    let mut buf = [0u8; 64];
    for i in 0..n {
        let s = &mut conns[i % 8];
        s.write_all(&[b'x'; 64])?;
        s.read_exact(&mut buf)?;
    }
    drop(conns);
    server.stop()?;
    Ok(())
}

/// Runs this example under cachegrind; returns (D1 misses, LL misses, instructions).
fn cachegrind(n: usize) -> std::io::Result<Option<(f64, f64, f64)>> {
    let out = std::env::temp_dir().join(format!("m10-cg-{}.out", std::process::id()));
    let run = Command::new("valgrind")
        .args(["--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes"])
        .arg(format!("--cachegrind-out-file={}", out.display()))
        .arg(std::env::current_exe()?)
        .args(["--serve", &n.to_string()])
        .output();
    let _ = std::fs::remove_file(&out);
    let Ok(run) = run else { return Ok(None) };
    if !run.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&run.stderr);
    let field = |key: &str| -> f64 {
        text.lines()
            .find(|l| l.contains(key))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.replace(',', "").parse().ok())
            .unwrap_or(0.0)
    };
    Ok(Some((
        field("D1  misses"),
        field("LLd misses"),
        field("I   refs"),
    )))
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("--serve") {
            let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
            return serve(n);
        }
        let q = quick();
        let n: u64 = if q { 5_000_000 } else { 50_000_000 };
        let mut t = Table::new(
            "Cache coherence: false sharing (measured) and request-path cache misses (simulated)",
            &["case", "how", "value", "unit"],
        );
        let unpadded: &'static Unpadded = Box::leak(Box::new(Unpadded {
            a: AtomicU64::new(0),
            b: AtomicU64::new(0),
        }));
        let pa: &'static CachePadded<AtomicU64> =
            Box::leak(Box::new(CachePadded::new(AtomicU64::new(0))));
        let pb: &'static CachePadded<AtomicU64> =
            Box::leak(Box::new(CachePadded::new(AtomicU64::new(0))));
        let shared: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        let same_line = two_writers(n, &unpadded.a, &unpadded.b);
        let padded = two_writers(n, pa, pb);
        let start = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let allowed = allowed_cpus().unwrap_or_default();
                std::thread::spawn(move || {
                    if let Some(cpu) = cpu_for_loop(&allowed, i) {
                        let _ = pin_current_thread(cpu);
                    }
                    for _ in 0..n {
                        shared.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
        let one_atomic = start.elapsed().as_nanos() as f64 / n as f64;
        t.rows.push(vec![
            "2 single-writer counters in one cache line (false sharing)".into(),
            "measured, 2 threads on 2 CPUs".into(),
            round(same_line, 2).into(),
            "ns per update".into(),
        ]);
        t.rows.push(vec![
            "2 single-writer counters padded to separate lines (CachePadded)".into(),
            "measured, 2 threads on 2 CPUs".into(),
            round(padded, 2).into(),
            "ns per update".into(),
        ]);
        t.rows.push(vec![
            "1 shared counter, fetch_add from both threads".into(),
            "measured, 2 threads on 2 CPUs".into(),
            round(one_atomic, 2).into(),
            "ns per update".into(),
        ]);
        let requests = if q { 300 } else { 3000 };
        let cg = cachegrind(requests)?;
        let mut note_cg = String::new();
        match cg {
            Some((d1, lld, ir)) => {
                let per = |x: f64| round(x / requests as f64, 1);
                t.rows.push(vec![format!("echo round trip through 2 loops, {requests} requests (whole process incl. start-up)").into(), "simulated (cachegrind)".into(), per(d1).into(), "D1 misses per request".into()]);
                t.rows.push(vec!["same".into(), "simulated (cachegrind)".into(), per(lld).into(), "LL data misses per request".into()]);
                t.rows.push(vec!["same".into(), "simulated (cachegrind)".into(), per(ir).into(), "instructions per request".into()]);
            }
            None => note_cg = " valgrind was not available or failed: no simulated rows (install it with `cargo xtask setup`).".into(),
        }
        t.notes = format!(
            "Rows 1-3: {n} updates per thread, timed on this machine; the only difference between rows 1 and 2 is the 64 bytes between the two counters: in one line, every store invalidates the other CPU's copy (coherence misses), padded each CPU keeps its line. Per-loop state in m10 is per-loop allocations (each loop's LoopStats/MultiStats live in their own Arc/Vec entry), written by one thread only. Rows 4-6: valgrind cachegrind on this example's --serve mode (in-process 2-loop echo server + one client thread, 64-byte messages); counts are for the whole process, start-up included, divided by requests: simulated, not hardware counters (perf here has cpu-clock only).{note_cg} {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
