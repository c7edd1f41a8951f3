//! Experiment `alloc_constant_time`, a gate: does one alloc+free cost the same at 16 and at
//! 65,536 slots? Exits non-zero (the evidence fails) when the large pool's time per
//! alloc+free pair exceeds the small pool's by more than 1.5x.
//!
//! Occupancy is random and equal in free slots: each pool is filled completely, then 8 slots
//! chosen at random are freed in random order (so the free stack holds them in random order):
//! the 16-slot pool is half occupied, the 65,536-slot pool 99.99 %, its 8 free slots scattered
//! over the whole slab. The timed loop churns 8 other randomly chosen live slots: each step
//! frees 1 to 4 of them (random count and start) and allocates as many back, so both the
//! one-slot `top` cache and the index stack are exercised. Only the churn set's metadata and
//! the stack top are touched, in both pools alike: the memory hierarchy is equal on both
//! sides (the cost of metadata scattered over a large slab is the `cache_misses` experiment's
//! subject), and what differs is the capacity and the occupancy, which is what an O(1)
//! allocator must not feel.
//!
//! Measured: per round, the fastest of 5 passes of 100,000 steps for each pool (order
//! alternating), ratio = large / small time per pair (gross: the loop included, identical on
//! both sides); 9 rounds, the median ratio. Threshold: ≤ 1.5. A free list that *searches*
//! (scan a bitmap or the slot table for a free slot, first-fit or next-fit) walks ~65,536 / 9
//! slots per allocation in the large pool and ~1 in the small one: hundreds of times slower,
//! far past 1.5; so would a free that searches for its slot. `--quick`: 3 rounds.

use std::hint::black_box;
use std::time::Instant;

use m07_buffers::lab::{self, Table};
use m07_buffers::{BufId, BufferPool, PoolConfig};

const SMALL: usize = 16;
const LARGE: usize = 65_536;
const FREE: usize = 8;
const CHURN: usize = 8;
const STEPS: usize = 100_000;
const PASSES: usize = 5;
const THRESHOLD: f64 = 1.5;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A pool of `slots` 64-byte buffers, full but for `FREE` random slots (freed in random order),
/// and `CHURN` other random live handles for the loop.
struct Setup {
    pool: BufferPool,
    churn: Vec<BufId>,
    _held: Vec<BufId>,
}

fn setup(slots: usize, rng: &mut Rng) -> std::io::Result<Setup> {
    let pool = BufferPool::new(PoolConfig::new(64, slots).with_debug(false))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut all: Vec<BufId> = (0..slots)
        .map(|_| pool.alloc_raw())
        .collect::<Result<_, _>>()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Fisher-Yates: random positions, random order.
    for i in (1..all.len()).rev() {
        let j = rng.below(i + 1);
        all.swap(i, j);
    }
    for id in all.drain(..FREE) {
        pool.free_raw(id)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    let churn = all.drain(..CHURN).collect();
    Ok(Setup {
        pool,
        churn,
        _held: all,
    })
}

/// The step plan, identical for both pools: (start in the churn set, how many to free).
fn plan(rng: &mut Rng) -> (Vec<(usize, usize)>, usize) {
    let steps: Vec<(usize, usize)> = (0..STEPS)
        .map(|_| (rng.below(CHURN), 1 + rng.below(4)))
        .collect();
    let pairs = steps.iter().map(|&(_, k)| k).sum();
    (steps, pairs)
}

/// One pass: ns per alloc+free pair.
fn pass(s: &mut Setup, steps: &[(usize, usize)], pairs: usize) -> f64 {
    let t = Instant::now();
    for &(start, k) in steps {
        for j in 0..k {
            let slot = (start + j) % CHURN;
            let _ = s.pool.free_raw(s.churn[slot]);
        }
        for j in 0..k {
            let slot = (start + j) % CHURN;
            if let Ok(id) = s.pool.alloc_raw() {
                s.churn[slot] = black_box(id);
            }
        }
    }
    t.elapsed().as_nanos() as f64 / pairs as f64
}

fn fastest(s: &mut Setup, steps: &[(usize, usize)], pairs: usize) -> f64 {
    pass(s, steps, pairs); // untimed: first touches
    (0..PASSES)
        .map(|_| pass(s, steps, pairs))
        .fold(f64::MAX, f64::min)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let rounds = if lab::quick() { 3 } else { 9 };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (steps, pairs) = plan(&mut rng);
        let mut small = setup(SMALL, &mut rng)?;
        let mut large = setup(LARGE, &mut rng)?;
        let (mut ts, mut tl, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..rounds {
            let (a, b) = if r % 2 == 0 {
                let a = fastest(&mut small, &steps, pairs);
                (a, fastest(&mut large, &steps, pairs))
            } else {
                let b = fastest(&mut large, &steps, pairs);
                (fastest(&mut small, &steps, pairs), b)
            };
            eprintln!(
                "  round {r}: {SMALL} slots {a:.2} ns/pair, {LARGE} slots {b:.2} ns/pair, ratio {:.3}",
                b / a
            );
            ts.push(a);
            tl.push(b);
            ratios.push(b / a);
        }
        // Both pools must still be consistent: every churn handle live, nothing lost.
        for s in [&small, &large] {
            let st = s.pool.stats();
            if st.allocs - st.frees != st.in_use || st.in_use as usize != s.pool.capacity() - FREE {
                return Err(std::io::Error::other(format!(
                    "pool bookkeeping broken after the loop: {st:?}"
                )));
            }
        }
        let ratio = lab::quantile(&mut ratios, 0.5);
        let mut t = Table::new(
            "Constant-time alloc/free: 16 vs 65,536 slots, random occupancy, same churn",
            &[
                "slots",
                "occupied %",
                "ns per alloc+free pair (median of rounds)",
                "ratio to 16 slots (median of paired rounds)",
            ],
        );
        t.rows.push(vec![
            SMALL.into(),
            lab::round(100.0 * (SMALL - FREE) as f64 / SMALL as f64, 2).into(),
            lab::round(lab::quantile(&mut ts, 0.5), 2).into(),
            1.0.into(),
        ]);
        t.rows.push(vec![
            LARGE.into(),
            lab::round(100.0 * (LARGE - FREE) as f64 / LARGE as f64, 2).into(),
            lab::round(lab::quantile(&mut tl, 0.5), 2).into(),
            lab::round(ratio, 3).into(),
        ]);
        t.notes = format!(
            "{pairs} alloc+free pairs per pass ({STEPS} steps of 1-4 frees then as many allocs \
             over {CHURN} churned live slots), fastest of {PASSES} passes, {rounds} rounds \
             (order alternating), median per-round ratio {ratio:.3}; gate: ratio <= \
             {THRESHOLD} (a searching free list fails it). {}",
            lab::machine()
        );
        t.print();
        if ratio > THRESHOLD {
            return Err(std::io::Error::other(format!(
                "alloc/free is not constant-time: {LARGE} slots cost {ratio:.2}x of {SMALL} \
                 slots per pair (limit {THRESHOLD}x)"
            )));
        }
        Ok(())
    })
}
