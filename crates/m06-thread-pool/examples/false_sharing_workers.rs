//! Experiment `false_sharing`: per-worker counters packed side by side vs one cache line each.
//! (a) two threads incrementing their own counter, adjacent vs padded; (b) the pool's own
//! per-worker counters with `pad_counters` on and off, tiny tasks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use m06_thread_pool::{PoolConfig, QueueDesign, lab};

fn hammer<C: Sync>(counters: &[C], get: impl Fn(&C) -> &AtomicU64 + Sync, iters: u64) -> f64 {
    let t = Instant::now();
    thread::scope(|s| {
        for c in counters {
            let get = &get;
            s.spawn(move || {
                let a = get(c);
                for _ in 0..iters {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    t.elapsed().as_secs_f64() * 1e9 / iters as f64
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let (iters, tasks, rounds) = if quick {
            (2_000_000, 100_000, 1)
        } else {
            (20_000_000, 1_000_000, 3)
        };
        let mut t = lab::Table::new(
            "False sharing: per-worker counters packed vs padded",
            &["case", "layout", "median", "unit", "rounds"],
        );
        let (mut packed, mut padded) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let p: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
            packed.push(hammer(&p, |c| c, iters));
            let q: [CachePadded<AtomicU64>; 2] = [
                CachePadded::new(AtomicU64::new(0)),
                CachePadded::new(AtomicU64::new(0)),
            ];
            padded.push(hammer(&q, |c| c, iters));
        }
        for (layout, v) in [
            ("packed (same line)", &packed),
            ("padded (own line)", &padded),
        ] {
            t.rows.push(vec![
                "2 threads, own counter each".into(),
                layout.into(),
                lab::round(lab::median(v), 2).into(),
                "ns per increment".into(),
                (rounds as u64).into(),
            ]);
        }
        let units = lab::units_for(Duration::from_nanos(100));
        for pad in [false, true] {
            let mut v = Vec::new();
            for _ in 0..rounds {
                let mut c = PoolConfig::with(2, QueueDesign::WorkStealing);
                c.pad_counters = pad;
                v.push(lab::prefilled_run(c, tasks, units)?.0);
            }
            t.rows.push(vec![
                "pool, 2 workers, 0.1 µs tasks".into(),
                (if pad {
                    "pad_counters = true"
                } else {
                    "pad_counters = false"
                })
                .into(),
                lab::round(lab::median(&v), 0).into(),
                "tasks/s".into(),
                (rounds as u64).into(),
            ]);
        }
        t.notes = format!(
            "Packed: two AtomicU64 in one 64-byte line, each written by one thread only; the line ping-pongs between the cores on every write. Padded: CachePadded puts each on its own line. The pool's per-worker counters (tasks, busy/idle ns, steals: 40 bytes) are written once or twice per task, so the effect on the pool is diluted by the task itself. {iters} increments per thread, {tasks} pool tasks. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
