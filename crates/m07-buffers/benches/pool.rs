//! Alloc+free pairs at 4, 16 and 64 KiB: the m07 pool (single-threaded, and behind a mutex)
//! against the system allocator (glibc malloc) and mimalloc, one criterion run.
//!
//! Pattern (same for all four): 256 buffers live; each iteration frees a pseudo-randomly chosen
//! live buffer and allocates a replacement in its place; the new address escapes through
//! `black_box` (the pointer only: spilling the whole handle through `black_box` costs more
//! than the pool itself and would measure the harness). This keeps malloc off its tcache fast path (tcache stops at 1,032 bytes) and
//! reflects a server with many connections holding buffers. Buffers' bytes are not touched.

// criterion_group! generates an undocumented `pub fn benches()`.
#![allow(missing_docs)]

use std::alloc::Layout;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use m07_buffers::{BufferPool, PoolConfig, SharedPool};

const LIVE: usize = 256;
const SIZES: [usize; 3] = [4 * 1024, 16 * 1024, 64 * 1024];

fn victims() -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % LIVE as u64) as usize
        })
        .collect()
}

/// mimalloc called directly (not installed as the global allocator, so `Box` stays on glibc).
#[allow(unsafe_code)]
mod mi {
    use std::alloc::{GlobalAlloc, Layout};

    /// One mimalloc block, freed on drop.
    pub(crate) struct Block(*mut u8, Layout);

    impl Block {
        pub(crate) fn ptr(&self) -> *mut u8 {
            self.0
        }

        pub(crate) fn new(layout: Layout) -> Option<Block> {
            // SAFETY: `layout` has a non-zero size (the sizes benchmarked are ≥ 4 KiB).
            let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
            (!p.is_null()).then_some(Block(p, layout))
        }
    }

    impl Drop for Block {
        fn drop(&mut self) {
            // SAFETY: allocated by MiMalloc with this layout in `new`, freed once.
            unsafe { mimalloc::MiMalloc.dealloc(self.0, self.1) }
        }
    }
}

fn bench(c: &mut Criterion) {
    let idx = victims();
    let mut g = c.benchmark_group("alloc_free_pair");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let kib = size / 1024;
        g.bench_with_input(BenchmarkId::new("pool", kib), &size, |b, &size| {
            let pool = BufferPool::new(PoolConfig::new(size, LIVE).with_debug(false)).unwrap();
            let mut live: Vec<Option<_>> = (0..LIVE).map(|_| pool.alloc().ok()).collect();
            let mut k = 0;
            b.iter(|| {
                let i = idx[k % idx.len()];
                k += 1;
                drop(live[i].take());
                let b = pool.alloc().ok();
                black_box(b.as_ref().map(|b| b.as_ptr()));
                live[i] = b;
            });
        });
        g.bench_with_input(BenchmarkId::new("shared_pool", kib), &size, |b, &size| {
            let pool = SharedPool::new(PoolConfig::new(size, LIVE).with_debug(false)).unwrap();
            let mut live: Vec<Option<_>> = (0..LIVE).map(|_| pool.alloc().ok()).collect();
            let mut k = 0;
            b.iter(|| {
                let i = idx[k % idx.len()];
                k += 1;
                drop(live[i].take());
                let b = pool.alloc().ok();
                black_box(b.as_ref().map(|b| b.as_ptr()));
                live[i] = b;
            });
        });
        g.bench_with_input(BenchmarkId::new("malloc", kib), &size, |b, &size| {
            let mut live: Vec<Option<Box<[MaybeUninit<u8>]>>> = (0..LIVE)
                .map(|_| Some(Box::new_uninit_slice(size)))
                .collect();
            let mut k = 0;
            b.iter(|| {
                let i = idx[k % idx.len()];
                k += 1;
                drop(live[i].take());
                let b = Box::<[u8]>::new_uninit_slice(size);
                black_box(b.as_ptr());
                live[i] = Some(b);
            });
        });
        g.bench_with_input(BenchmarkId::new("mimalloc", kib), &size, |b, &size| {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let mut live: Vec<Option<mi::Block>> =
                (0..LIVE).map(|_| mi::Block::new(layout)).collect();
            let mut k = 0;
            b.iter(|| {
                let i = idx[k % idx.len()];
                k += 1;
                drop(live[i].take());
                let b = mi::Block::new(layout);
                black_box(b.as_ref().map(|b| b.ptr()));
                live[i] = b;
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
