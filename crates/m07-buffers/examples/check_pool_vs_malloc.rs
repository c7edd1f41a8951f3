//! Exit check `pool_vs_malloc_speedup`: time of one alloc+free pair with the system allocator
//! (glibc malloc) divided by the same with a [`BufferPool`], same process, same run.
//!
//! The pattern is chosen so that malloc's fastest path is not what is measured: 256 buffers
//! live at once, and each step frees a pseudo-randomly chosen live buffer and allocates a new
//! one in its place (varying order), at 4, 16 and 64 KiB (beyond glibc's tcache, which stops
//! at 1,032 bytes). Both sides run the identical loop (same index sequence; the new buffer's
//! address escapes through `black_box`, so neither call can be optimised away; the buffers'
//! bytes are not touched, so the figure is allocator bookkeeping, not memory latency); the
//! pool is the single-threaded one (no lock), release build, debug features off. Five alternating repetitions per size, median kept. Measured: the smallest
//! of the three per-size ratios (the most conservative figure); the others, the mutex-guarded
//! SharedPool and the absolute times are in the detail. Each timed loop follows one untimed
//! pass of the same pattern (page faults of first touches are not steady state).

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Instant;

use m07_buffers::lab::{self, print_measured};
use m07_buffers::{BufferPool, PoolConfig, SharedPool};

const LIVE: usize = 256;
const STEPS: usize = 1_000_000;
const REPEATS: usize = 5;
const SIZES: [usize; 3] = [4 * 1024, 16 * 1024, 64 * 1024];

fn indices() -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..STEPS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % LIVE as u64) as usize
        })
        .collect()
}

/// One untimed pass of the same pattern: first touches (page faults) are not steady state.
fn warm<T>(live: &mut [Option<T>], idx: &[usize], mut make: impl FnMut() -> T) {
    for &i in idx {
        live[i] = None;
        live[i] = Some(black_box(make()));
    }
}

fn malloc_ns(size: usize, idx: &[usize]) -> f64 {
    let mut live: Vec<Option<Box<[MaybeUninit<u8>]>>> = (0..LIVE)
        .map(|_| Some(Box::new_uninit_slice(size)))
        .collect();
    warm(&mut live, idx, || Box::new_uninit_slice(size));
    let t = Instant::now();
    for &i in idx {
        live[i] = None;
        let b: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
        live[i] = Some(black_box(b));
    }
    let ns = t.elapsed().as_nanos() as f64 / idx.len() as f64;
    drop(black_box(live));
    ns
}

fn pool_ns(size: usize, idx: &[usize]) -> f64 {
    let pool = BufferPool::new(PoolConfig::new(size, LIVE).with_debug(false)).expect("pool");
    let mut live: Vec<Option<_>> = (0..LIVE)
        .map(|_| Some(pool.alloc().expect("buf")))
        .collect();
    warm(&mut live, idx, || {
        pool.alloc().expect("a slot was just freed")
    });
    let t = Instant::now();
    for &i in idx {
        live[i] = None;
        let Ok(b) = pool.alloc() else {
            unreachable!("a slot was just freed")
        };
        live[i] = Some(black_box(b));
    }
    let ns = t.elapsed().as_nanos() as f64 / idx.len() as f64;
    drop(black_box(live));
    ns
}

fn shared_ns(size: usize, idx: &[usize]) -> f64 {
    let pool = SharedPool::new(PoolConfig::new(size, LIVE).with_debug(false)).expect("pool");
    let mut live: Vec<Option<_>> = (0..LIVE)
        .map(|_| Some(pool.alloc().expect("buf")))
        .collect();
    warm(&mut live, idx, || {
        pool.alloc().expect("a slot was just freed")
    });
    let t = Instant::now();
    for &i in idx {
        live[i] = None;
        let Ok(b) = pool.alloc() else {
            unreachable!("a slot was just freed")
        };
        live[i] = Some(black_box(b));
    }
    let ns = t.elapsed().as_nanos() as f64 / idx.len() as f64;
    drop(black_box(live));
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    lab::quantile(&mut v, 0.5)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let idx = indices();
        let mut ratios = Vec::new();
        let mut detail = Vec::new();
        for size in SIZES {
            let (mut m, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                m.push(malloc_ns(size, &idx));
                p.push(pool_ns(size, &idx));
                s.push(shared_ns(size, &idx));
            }
            let (m, p, s) = (median(m), median(p), median(s));
            let ratio = m / p;
            eprintln!(
                "{:>2} KiB: malloc {m:.1} ns/pair, pool {p:.1} ns, shared pool {s:.1} ns -> {ratio:.1}x",
                size / 1024
            );
            detail.push(format!(
                "{} KiB: malloc {m:.1} ns, pool {p:.1} ns ({ratio:.1}x), mutex pool {s:.1} ns ({:.1}x)",
                size / 1024,
                m / s
            ));
            ratios.push(ratio);
        }
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        print_measured(
            lab::round(min, 2),
            "x (vs malloc, same run)",
            &format!(
                "min over sizes of malloc/pool time per alloc+free pair; {LIVE} live buffers, \
                 {STEPS} random-victim free+alloc steps, median of {REPEATS}; {}; {}",
                detail.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
