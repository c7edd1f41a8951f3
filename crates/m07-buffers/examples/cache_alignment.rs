//! Experiment `cache_alignment`: (1) false sharing: two threads each increment their own
//! counter, packed next to each other (one cache line) or each on its own line
//! ([`CachePadded`]); (2) alignment: copying 4 KiB into a pooled buffer at a cache-line-aligned
//! offset vs misaligned offsets.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use m07_buffers::lab::{self, Table};
use m07_buffers::{BufferPool, CachePadded, PoolConfig};

fn two_threads(a: &AtomicU64, b: &AtomicU64, n: u64) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..n {
                a.fetch_add(1, Ordering::Relaxed);
            }
        });
        s.spawn(|| {
            for _ in 0..n {
                b.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let n: u64 = if quick { 2_000_000 } else { 20_000_000 };
        let mut t = Table::new(
            "Cache-line effects: false sharing and buffer alignment",
            &["case", "layout", "ns per op", "relative"],
        );
        let packed = [AtomicU64::new(0), AtomicU64::new(0)];
        let padded = [
            CachePadded(AtomicU64::new(0)),
            CachePadded(AtomicU64::new(0)),
        ];
        let (mut p, mut q) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            p.push(two_threads(&packed[0], &packed[1], n));
            q.push(two_threads(&padded[0], &padded[1], n));
        }
        let (p, q) = (lab::quantile(&mut p, 0.5), lab::quantile(&mut q, 0.5));
        eprintln!("false sharing: packed {p:.2} ns/inc, padded {q:.2} ns/inc");
        t.rows.push(vec![
            "2 threads, 1 counter each".into(),
            "packed (same line)".into(),
            lab::round(p, 2).into(),
            lab::round(p / q, 2).into(),
        ]);
        t.rows.push(vec![
            "2 threads, 1 counter each".into(),
            "CachePadded (own line)".into(),
            lab::round(q, 2).into(),
            1.0.into(),
        ]);
        let pool = BufferPool::new(PoolConfig::new(16 * 1024, 2).with_debug(false))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let src = pool
            .alloc()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut dst = pool
            .alloc()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let copies = if quick { 100_000 } else { 1_000_000 };
        let mut base = 0.0;
        for off in [0usize, 1, 8, 60] {
            let mut v = Vec::new();
            for _ in 0..3 {
                let tm = Instant::now();
                for _ in 0..copies {
                    dst[off..off + 4096].copy_from_slice(black_box(&src[64..64 + 4096]));
                    black_box(&mut dst[..]);
                }
                v.push(tm.elapsed().as_nanos() as f64 / copies as f64);
            }
            let ns = lab::quantile(&mut v, 0.5);
            if off == 0 {
                base = ns;
            }
            eprintln!("copy 4 KiB to offset {off}: {ns:.1} ns");
            t.rows.push(vec![
                "copy 4 KiB into a pooled buffer".into(),
                format!("destination offset {off} (line-aligned: {})", off % 64 == 0).into(),
                lab::round(ns, 1).into(),
                lab::round(ns / base.max(1e-9), 2).into(),
            ]);
        }
        t.notes = format!(
            "False sharing: {n} relaxed fetch_add per thread, median of 3. Packed counters share \
             a 64-byte line, so every increment steals the line from the other core; CachePadded \
             (repr(align(64))) gives each its own line. The pool's slots start on a line for the \
             same reason: two connections' buffers never share one. Alignment: median of 3 x \
             {copies} copies; modern x86 copies (rep movsb/AVX) absorb most misalignment, so \
             expect a small difference. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
