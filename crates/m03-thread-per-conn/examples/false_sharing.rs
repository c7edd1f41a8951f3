//! Experiment `false_sharing`: two threads each incrementing their own counter, with the two
//! counters in one cache line (adjacent) or on separate lines (padded to 128 bytes).
//! Prints one JSON table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use m03_thread_per_conn::lab::{self, Table, round};
use serde_json::json;

#[derive(Default)]
struct Adjacent {
    a: AtomicU64,
    b: AtomicU64,
}

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

#[derive(Default)]
struct Separate {
    a: Padded,
    b: Padded,
}

fn run<C: Send + Sync + 'static>(
    counters: Arc<C>,
    ops: u64,
    op: &'static str,
    get: fn(&C, usize) -> &AtomicU64,
) -> f64 {
    let barrier = Arc::new(Barrier::new(2));
    let hs: Vec<_> = (0..2)
        .map(|i| {
            let (c, b) = (Arc::clone(&counters), Arc::clone(&barrier));
            thread::spawn(move || {
                b.wait();
                let started = Instant::now();
                let x = get(&c, i);
                for _ in 0..ops {
                    if op == "fetch_add" {
                        x.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Single-writer update (what the thread-local slots do).
                        x.store(x.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    }
                }
                started.elapsed().as_secs_f64() * 1e9 / ops as f64
            })
        })
        .collect();
    // Per-update time of the slower thread.
    hs.into_iter()
        .map(|h| h.join().unwrap_or(0.0))
        .fold(0.0f64, f64::max)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let ops: u64 = if lab::quick() { 2_000_000 } else { 20_000_000 };
        let mut t = Table::new(
            "False sharing: two threads, two counters, same cache line or not",
            &["layout", "update", "ns_per_op", "slowdown_vs_padded"],
        );
        for op in ["fetch_add", "load_store"] {
            let padded = run(Arc::new(Separate::default()), ops, op, |c, i| {
                if i == 0 { &c.a.0 } else { &c.b.0 }
            });
            let shared = run(Arc::new(Adjacent::default()), ops, op, |c, i| {
                if i == 0 { &c.a } else { &c.b }
            });
            t.rows.push(vec![
                json!("padded_128B"),
                json!(op),
                json!(round(padded, 2)),
                json!(1.0),
            ]);
            t.rows.push(vec![
                json!("adjacent_same_line"),
                json!(op),
                json!(round(shared, 2)),
                json!(round(shared / padded, 2)),
            ]);
        }
        t.notes = format!(
            "{ops} updates per thread, two threads on two cores. The threads never touch each \
             other's counter, yet adjacent counters share a 64-byte cache line that bounces \
             between the cores' caches on every write (MESI invalidations). Padding each \
             counter to 128 bytes (adjacent-line prefetch included) removes it: why ThreadSlot \
             is #[repr(align(128))]. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
