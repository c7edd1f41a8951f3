//! Experiment: what a statistics counter costs on the hot path. Timed loops of increments:
//! nothing (a local variable), m09's single-writer `Counter` (relaxed load + store: no locked
//! instruction), a shared `fetch_add` (a `lock xadd`) uncontended, and the same shared
//! `fetch_add` hammered from both CPUs; plus the histogram record each loop iteration does.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use m09_event_loop::stats::{Counter, Histogram};
use m10_multi_loop::affinity::{allowed_cpus, cpu_for_loop, pin_current_thread};
use m10_multi_loop::lab::{Table, machine, quick, round, run_main};

fn ns_per_op(n: u64, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let n: u64 = if quick() { 5_000_000 } else { 100_000_000 };
        let allowed = allowed_cpus()?;
        let mut t = Table::new(
            "Statistics impact: cost of one counter update",
            &["counter", "threads", "ns per update", "relative to none"],
        );
        let none = ns_per_op(n, || {
            let mut x = 0u64;
            for _ in 0..n {
                x = black_box(x + 1);
            }
            black_box(x);
        });
        let c = Counter::default();
        let single = ns_per_op(n, || {
            for _ in 0..n {
                black_box(&c).incr();
            }
        });
        let a = AtomicU64::new(0);
        let shared1 = ns_per_op(n, || {
            for _ in 0..n {
                black_box(&a).fetch_add(1, Ordering::Relaxed);
            }
        });
        let h = Histogram::default();
        let hist = ns_per_op(n / 4, || {
            for i in 0..n / 4 {
                black_box(&h).record(black_box(i & 0xffff));
            }
        });
        // Both CPUs on one atomic: each update must own the cache line exclusively.
        let shared = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let cpu = cpu_for_loop(&allowed, i);
                std::thread::spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = pin_current_thread(cpu);
                    }
                    for _ in 0..n {
                        shared.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| std::io::Error::other("thread panicked"))?;
        }
        let shared2 = start.elapsed().as_nanos() as f64 / n as f64;
        for (name, threads, ns) in [
            ("none (local variable)", 1, none),
            (
                "single-writer Counter (relaxed load + store), m09/m10",
                1,
                single,
            ),
            ("shared AtomicU64::fetch_add, uncontended", 1, shared1),
            ("single-writer Histogram::record (log buckets)", 1, hist),
            (
                "shared AtomicU64::fetch_add, 2 threads on 2 CPUs (per thread's update)",
                2,
                shared2,
            ),
        ] {
            t.rows.push(vec![
                name.into(),
                threads.into(),
                round(ns, 2).into(),
                round(ns / none.max(1e-9), 1).into(),
            ]);
        }
        t.notes = format!(
            "{n} updates per row, timed with Instant around a loop (black_box keeps each update). The single-writer counter is what every loop uses: readers on other threads load it relaxed; only its own loop writes it, so a plain load + store is enough and no locked instruction or cache-line ping-pong happens. A shared fetch_add costs a locked read-modify-write even alone, and with two CPUs the line bounces between their caches on every update. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
