//! Experiment `stack_memory`: memory per thread for several stack sizes: resident (RSS), the
//! stack mappings' size and resident part (smaps), and VmStk. Prints one JSON table.

use std::sync::Arc;
use std::thread;

use m03_thread_per_conn::lab::{self, Table, experiments::Gate, round};
use m03_thread_per_conn::procfs;
use serde_json::json;

/// Touches about `kib` KiB of stack (4 KiB per frame), then parks.
fn touch(kib: usize, gate: &Gate) {
    let mut frame = [0u8; 4096];
    frame[0] = kib as u8;
    std::hint::black_box(&mut frame);
    if kib > 4 {
        touch(kib - 4, gate);
    } else {
        gate.wait();
    }
    std::hint::black_box(&frame);
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let threads = if quick { 100 } else { 1000 };
        let touched_kib = 16;
        let mut t = Table::new(
            "Stack memory per thread by stack size",
            &[
                "stack_kib",
                "threads",
                "touched_kib",
                "rss_per_thread_kib",
                "stack_mapped_per_thread_kib",
                "stack_rss_per_thread_kib",
                "vm_data_per_thread_kib",
                "vm_stk_kib",
            ],
        );
        for stack_kib in [64usize, 128, 512, 2048, 8192] {
            let before = procfs::memory()?;
            let gate = Arc::new(Gate::default());
            let mut hs = Vec::new();
            for _ in 0..threads {
                let g = Arc::clone(&gate);
                hs.push(
                    thread::Builder::new()
                        .stack_size(stack_kib * 1024)
                        .spawn(move || touch(touched_kib, &g))?,
                );
            }
            // Wait until every thread is parked (its pages touched).
            lab::wait_until(std::time::Duration::from_secs(10), || {
                procfs::os_threads().unwrap_or(0) >= before.threads + threads as u64
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            let during = procfs::memory()?;
            gate.open();
            for h in hs {
                let _ = h.join();
            }
            let per = |a: u64, b: u64| round(a.saturating_sub(b) as f64 / threads as f64, 1);
            t.rows.push(vec![
                json!(stack_kib),
                json!(threads),
                json!(touched_kib),
                json!(per(during.rss_kib, before.rss_kib)),
                json!(per(during.stack_mapped_kib, before.stack_mapped_kib)),
                json!(per(during.stack_rss_kib, before.stack_rss_kib)),
                json!(per(during.vm_data_kib, before.vm_data_kib)),
                json!(during.vm_stk_kib),
            ]);
        }
        t.notes = format!(
            "{threads} threads per row, each touching ~{touched_kib} KiB of stack then parking. \
             Reserved address space (stack_mapped, VmData) grows with the configured size; \
             resident memory (RSS, stack_rss) follows the pages touched, not the size. VmStk is \
             the main thread's stack only: thread stacks are anonymous mmaps counted in VmData. \
             The default 128 KiB (ThreadConfig::stack_size) keeps 10,000 threads at 1.25 GiB \
             reserved. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
