//! Exit check `pool_vs_malloc_speedup`: time of one alloc+free pair with the system allocator
//! (glibc malloc) divided by the same with a [`BufferPool`], same process, same run.
//!
//! The pattern is chosen so that malloc's fastest path is not what is measured: 256 buffers
//! live at once, and each step frees a pseudo-randomly chosen live buffer and allocates a new
//! one in its place (varying order), at 4, 16 and 64 KiB (beyond glibc's tcache, which stops
//! at 1,032 bytes). Both sides run the identical loop (same index sequence; the new buffer's
//! address escapes through `black_box`, so neither call can be optimised away; the buffers'
//! bytes are not touched, so the figure is allocator bookkeeping, not memory latency); the
//! pool is the single-threaded one (no lock), release build, debug features off. Nine
//! interleaved rounds per size (malloc and pool back to back, order alternating), the ratio
//! taken per round, median kept. Measured: the smallest of the three per-size
//! ratios of the gross times (loop included: the most conservative figure); the ratio net of
//! the loop's own cost (the same loop with no allocator, `floor`), the mutex-guarded
//! SharedPool and the absolute times are in the detail. Each timed loop follows one untimed
//! pass of the same pattern (page faults of first touches are not steady state).
//!
//! The detail also carries a yardstick, the same loop over a bare stack of free indices with
//! no checks at all (`BareStack`): malloc's time over its time is the most any pool could
//! score in this loop on this machine, so a shortfall can be told apart from slack.

use std::cell::Cell;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Instant;

use m07_buffers::lab::{self, print_measured};
use m07_buffers::{BufferPool, PoolBuf, PoolConfig, SharedBuf, SharedPool};

const LIVE: usize = 256;
const STEPS: usize = 300_000;
const ROUNDS: usize = 9;
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

/// The loop both sides run: free the victim's buffer, allocate a replacement, let its address
/// escape (`black_box` of the pointer: the allocation is observable, so it can be neither
/// elided nor hoisted), store it. One untimed pass first (first touches fault pages in: not
/// steady state), then the timed pass; ns per step. A macro, not a generic function over a
/// closure, so that every side compiles to the same straight loop (a closure's captured
/// `&pool` is reloaded from memory after each `black_box`, which charges the pool for the
/// harness). The `take()` + pointer-escape form keeps the loop's own cost small and equal
/// for both sides (`live[i] = Some(black_box(buf))` spills the whole handle through the stack
/// and costs more than the pool itself); `floor_ns` is the loop with no allocator at all.
macro_rules! churn {
    ($live:expr, $idx:expr, $make:expr, $addr:expr) => {{
        let live = &mut $live;
        for &i in $idx {
            drop(live[i].take());
            let b = $make;
            black_box($addr(&b));
            live[i] = Some(b);
        }
        let t = Instant::now();
        for &i in $idx {
            drop(live[i].take());
            let b = $make;
            black_box($addr(&b));
            live[i] = Some(b);
        }
        t.elapsed().as_nanos() as f64 / $idx.len() as f64
    }};
}

fn malloc_ns(size: usize, idx: &[usize]) -> f64 {
    let mut live: Vec<Option<Box<[MaybeUninit<u8>]>>> = (0..LIVE)
        .map(|_| Some(Box::new_uninit_slice(size)))
        .collect();
    let ns = churn!(
        live,
        idx,
        Box::<[u8]>::new_uninit_slice(size),
        |b: &[MaybeUninit<u8>]| b.as_ptr()
    );
    drop(black_box(live));
    ns
}

fn pool_ns(size: usize, idx: &[usize]) -> f64 {
    let pool = BufferPool::new(PoolConfig::new(size, LIVE).with_debug(false)).expect("pool");
    let mut live: Vec<Option<_>> = (0..LIVE)
        .map(|_| Some(pool.alloc().expect("buf")))
        .collect();
    let ns = churn!(
        live,
        idx,
        match pool.alloc() {
            Ok(b) => b,
            Err(_) => unreachable!("a slot was just freed"),
        },
        |b: &PoolBuf<'_>| b.as_ptr()
    );
    drop(black_box(live));
    ns
}

fn shared_ns(size: usize, idx: &[usize]) -> f64 {
    let pool = SharedPool::new(PoolConfig::new(size, LIVE).with_debug(false)).expect("pool");
    let mut live: Vec<Option<_>> = (0..LIVE)
        .map(|_| Some(pool.alloc().expect("buf")))
        .collect();
    let ns = churn!(
        live,
        idx,
        match pool.alloc() {
            Ok(b) => b,
            Err(_) => unreachable!("a slot was just freed"),
        },
        |b: &SharedBuf| b.as_ptr()
    );
    drop(black_box(live));
    ns
}

/// The yardstick: the least a pool can do. A stack of free slot indices, no generation, no
/// checks, no statistics, no debug features; the handle (pool, index, address) gives its slot
/// back on drop. Not a usable pool (its addresses are computed, never dereferenced, and
/// nothing stops a slot being pushed twice): it answers "how fast could any pool be in this
/// loop", so the gap to [`BufferPool`] is the price of its guarantees and the gap to malloc
/// is the ceiling of the 10x criterion on this machine.
struct BareStack {
    base: *const u8,
    stride: usize,
    free: Box<[Cell<u32>]>,
    len: Cell<usize>,
}

struct BareBuf<'a> {
    stack: &'a BareStack,
    index: u32,
    addr: *const u8,
}

impl BareStack {
    fn new(slab: &[u8], stride: usize, count: usize) -> BareStack {
        BareStack {
            base: slab.as_ptr(),
            stride,
            free: (0..count as u32).rev().map(Cell::new).collect(),
            len: Cell::new(count),
        }
    }

    #[inline]
    fn alloc(&self) -> Option<BareBuf<'_>> {
        let n = self.len.get().checked_sub(1)?;
        self.len.set(n);
        let index = self.free[n].get();
        Some(BareBuf {
            stack: self,
            index,
            addr: self.base.wrapping_add(index as usize * self.stride),
        })
    }
}

impl Drop for BareBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        let n = self.stack.len.get();
        self.stack.free[n].set(self.index);
        self.stack.len.set(n + 1);
    }
}

fn bare_ns(size: usize, idx: &[usize]) -> f64 {
    // The slab is never touched (the loop only lets addresses escape); it exists so that the
    // addresses are real ones.
    let stride = size.div_ceil(64) * 64;
    let slab = vec![0u8; stride * LIVE];
    let stack = BareStack::new(&slab, stride, LIVE);
    let mut live: Vec<Option<_>> = (0..LIVE)
        .map(|_| Some(stack.alloc().expect("slot")))
        .collect();
    let ns = churn!(
        live,
        idx,
        match stack.alloc() {
            Some(b) => b,
            None => unreachable!("a slot was just freed"),
        },
        |b: &BareBuf<'_>| b.addr
    );
    drop(live);
    drop(black_box(slab));
    ns
}

/// A handle-sized value that is not `Copy` (so the loop drops it like the real handles).
struct Token([usize; 3]);

/// The same loop with no allocator: a handle-sized value is made from the index.
#[allow(clippy::drop_non_drop)] // the loop is shared: dropping a handle is a no-op here
fn floor_ns(idx: &[usize]) -> f64 {
    let mut live: Vec<Option<Token>> = (0..LIVE).map(|i| Some(Token([i; 3]))).collect();
    let ns = churn!(live, idx, Token([idx.len(), 1, 2]), |b: &Token| b.0[0]);
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
        let mut floors = Vec::new();
        for size in SIZES {
            // Interleaved rounds: each round measures all four back to back (the order
            // alternates), so a burst of load from elsewhere hits a round's pair together; the
            // ratio is taken per round, then the median over rounds.
            let (mut m, mut p, mut s, mut f) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut r, mut net, mut bare) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                let (mr, pr) = if round % 2 == 0 {
                    let mr = malloc_ns(size, &idx);
                    (mr, pool_ns(size, &idx))
                } else {
                    let pr = pool_ns(size, &idx);
                    (malloc_ns(size, &idx), pr)
                };
                let fr = floor_ns(&idx);
                s.push(shared_ns(size, &idx));
                bare.push(mr / bare_ns(size, &idx));
                r.push(mr / pr);
                net.push((mr - fr) / (pr - fr).max(0.05));
                m.push(mr);
                p.push(pr);
                f.push(fr);
            }
            let (m, p, s, f) = (median(m), median(p), median(s), median(f));
            let (ratio, net, bare) = (median(r), median(net), median(bare));
            eprintln!(
                "{:>2} KiB: malloc {m:.1} ns/pair, pool {p:.1} ns, shared pool {s:.1} ns, \
                 loop alone {f:.1} ns -> {ratio:.1}x ({net:.1}x net of the loop; a bare \
                 index stack with no checks: {bare:.1}x)",
                size / 1024
            );
            detail.push(format!(
                "{} KiB: malloc {m:.1} ns, pool {p:.1} ns ({ratio:.1}x; {net:.1}x net of the \
                 loop), mutex pool {s:.1} ns ({:.1}x), bare index stack {bare:.1}x",
                size / 1024,
                m / s
            ));
            ratios.push(ratio);
            floors.push(f);
        }
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        print_measured(
            lab::round(min, 2),
            "x (vs malloc, same run)",
            &format!(
                "min over sizes of the median over {ROUNDS} interleaved rounds of malloc/pool \
                 time per alloc+free pair (loop included); {LIVE} live buffers, {STEPS} \
                 random-victim free+alloc steps per round; loop alone (no allocator) {:.1} ns; \
                 {}; {}",
                median(floors),
                detail.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
