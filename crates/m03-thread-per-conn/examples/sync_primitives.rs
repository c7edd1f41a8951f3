//! Experiment `sync_primitives`: the cost of a shared counter update with Mutex, RwLock,
//! an atomic, and a thread-local single-writer slot merged on read, at 1, 2 and 4 threads.
//! Prints one JSON table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::Instant;

use m03_thread_per_conn::lab::{self, Table, round};
use m03_thread_per_conn::stats::{LocalStats, SlotRegistry, local_event};
use serde_json::json;

fn run(threads: usize, ops: u64, kind: &'static str) -> (f64, u64, u64) {
    let mutex = Arc::new(Mutex::new(0u64));
    let rw = Arc::new(RwLock::new(0u64));
    let atomic = Arc::new(AtomicU64::new(0));
    let registry = Arc::new(SlotRegistry::default());
    let wait_ns = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (m, r, a, reg, b, w) = (
                Arc::clone(&mutex),
                Arc::clone(&rw),
                Arc::clone(&atomic),
                Arc::clone(&registry),
                Arc::clone(&barrier),
                Arc::clone(&wait_ns),
            );
            thread::spawn(move || {
                let _slot = LocalStats::enter(&reg);
                b.wait();
                let started = Instant::now();
                let mut waited = 0u64;
                for _ in 0..ops {
                    match kind {
                        "mutex" => {
                            let g = match m.try_lock() {
                                Ok(g) => g,
                                Err(_) => {
                                    let t = Instant::now();
                                    let g = m.lock().unwrap();
                                    waited += t.elapsed().as_nanos() as u64;
                                    g
                                }
                            };
                            let mut g = g;
                            *g += 1;
                        }
                        "rwlock_write" => *r.write().unwrap() += 1,
                        "atomic_fetch_add" => {
                            a.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => local_event(),
                    }
                }
                let took = started.elapsed().as_secs_f64();
                w.fetch_add(waited, Ordering::Relaxed);
                took
            })
        })
        .collect();
    barrier.wait();
    // Wall time: the slowest thread, each timing itself from the common start.
    let secs = hs
        .into_iter()
        .map(|h| h.join().unwrap_or(0.0))
        .fold(0.0f64, f64::max);
    let total = match kind {
        "mutex" => *mutex.lock().unwrap(),
        "rwlock_write" => *rw.read().unwrap(),
        "atomic_fetch_add" => atomic.load(Ordering::Relaxed),
        _ => registry.merged().0.events,
    };
    (
        secs * 1e9 / (ops * threads as u64) as f64,
        total,
        wait_ns.load(Ordering::Relaxed),
    )
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let ops: u64 = if lab::quick() { 200_000 } else { 2_000_000 };
        let mut t = Table::new(
            "Synchronisation primitives: one shared counter, N threads incrementing",
            &[
                "primitive",
                "threads",
                "ns_per_op",
                "mops_per_s",
                "total_ok",
                "lock_wait_ms",
            ],
        );
        for kind in [
            "mutex",
            "rwlock_write",
            "atomic_fetch_add",
            "thread_local_slot",
        ] {
            for threads in [1usize, 2, 4] {
                let (ns, total, wait) = run(threads, ops, kind);
                t.rows.push(vec![
                    json!(kind),
                    json!(threads),
                    json!(round(ns, 2)),
                    json!(round(1e3 / ns, 1)),
                    json!(if total == ops * threads as u64 {
                        "yes"
                    } else {
                        "no"
                    }),
                    json!(round(wait as f64 / 1e6, 1)),
                ]);
            }
        }
        t.notes = format!(
            "{ops} increments per thread. ns_per_op = wall time / all increments (lower is better; \
             with 1 thread it is the uncontended cost). total_ok: the final count equals the \
             increments (no lost updates). lock_wait_ms: time threads spent blocked in \
             Mutex::lock after a failed try_lock (measured for the mutex only). thread_local_slot \
             is the server's design: each thread writes its own padded slot without a locked \
             instruction, and a reader merges the slots. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
