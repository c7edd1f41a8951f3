//! The fixed-size buffer pool: one `mmap`ed slab cut into equal, cache-line-aligned slots, an
//! intrusive free list threaded through the free slots themselves, O(1) alloc and free.
//!
//! ```text
//!  slab (one mmap, page-aligned)   stride = round_up(buf_size [+ 8], 64) [+ 64 if 4 KiB-multiple]
//!  ┌──────────────┬───┬──────────────┬───┬──────────────┬───┬─────────────── … ───┐
//!  │ slot 0       │ c │ slot 1       │ c │ slot 2       │ c │ never handed out yet │
//!  │ in use       │   │ free: next=∅ │   │ free         │   │ (fresh, untouched)   │
//!  └──────────────┴───┴──────────────┴───┴──────────────┴───┴─────────────── … ───┘
//!   top = 2 (last freed)   head ──► 1 ──► ∅   fresh ──► 3     c = guard canary (debug)
//! ```
//!
//! The free slots form one LIFO stack: its top in a field (`top`), the rest linked through the
//! free slots themselves (`head`, next index in the slot's first 4 bytes: the intrusive list).
//!
//! - **free**: check the handle's generation, bump it; push the old `top` (if any) onto the
//!   list; `top = slot`. No search, no coalescing: every slot has the same size, so there is no
//!   external fragmentation.
//! - **alloc**: take `top`, else pop `head` (read the link), else take the next never-used
//!   slot (`fresh`), else [`PoolError::Exhausted`].
//! - The release-mode fast path keeps **no counters**: every hand-out and return bumps the
//!   slot's generation, so allocations, frees and buffers in use are read off the slot table
//!   when [`BufferPool::stats`] is called (a scrape), not paid for on every operation.
//!   A free-then-alloc, the rhythm of a server, touches neither the list nor the slab: a
//!   handful of loads and stores in the pool struct and the slot's table entry.
//! - Slots never handed out are never touched, so an idle pool costs address space, not RAM
//!   (page faults happen on first use, or up front with `populate`).
//!
//! Debug features (on when [`PoolConfig::debug`] is set, the default in debug builds):
//! freed buffers are **poisoned** (filled with `0xDD`) and checked when handed out again (a
//! write through a stale pointer shows as [`PoolError::UseAfterFree`]); a **guard canary** after
//! each buffer is checked on free ([`PoolError::Overflow`]); damaged slots are quarantined.
//! They live on out-of-line cold paths, so a pool with them off pays one flag test.
//! Always on, because they are one compare each: a per-slot **generation** catches double
//! frees and stale handles ([`PoolError::DoubleFree`], [`PoolError::UseAfterFree`]).
//!
//! This module is one of the three allowed `unsafe` (with `sys` and `arena`).

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{PoolError, SetupError};
use crate::stats::PoolStats;
use crate::sys::{Backing, HugePages, Region};

/// Bytes per buffer by default: 16 KiB holds a typical request head and a TLS record.
pub const DEFAULT_BUF_SIZE: usize = 16 * 1024;
/// Buffers per pool by default. Chosen by the `pool_size_sweep` experiment: the smallest pool
/// with zero exhaustion and at least 95 % of peak throughput in the standard scenario (64
/// keep-alive connections, each holding a read buffer and borrowing a write buffer per
/// response; the `pool_size_from_sweep` check re-runs it).
pub const DEFAULT_POOL_BUFFERS: usize = 128;
/// The cache line size on x86-64: slots start on a line, so two buffers never share one.
pub const CACHE_LINE: usize = 64;

const NIL: u32 = u32::MAX;
/// Strides that are multiples of this map every slot start to the same L1 cache set
/// (64 sets × 64-byte lines).
const COLOUR_PERIOD: usize = 4096;
const LINK_LEN: usize = 4;
/// The byte freed buffers are filled with in debug mode.
pub const POISON: u8 = 0xDD;
/// The guard value written after each buffer in debug mode.
pub const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;
const CANARY_LEN: usize = 8;

/// How to build a [`BufferPool`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Usable bytes per buffer.
    pub buf_size: usize,
    /// How many buffers (the pool never grows).
    pub buffers: usize,
    /// Huge pages for the slab (falls back to base pages, recorded in [`PoolStats::backing`]).
    pub huge_pages: HugePages,
    /// Pre-fault the slab at creation (`MAP_POPULATE`).
    pub populate: bool,
    /// Poisoning and guard canaries (see the module docs). Default: on in debug builds.
    pub debug: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            buf_size: DEFAULT_BUF_SIZE,
            buffers: DEFAULT_POOL_BUFFERS,
            huge_pages: HugePages::Off,
            populate: false,
            debug: cfg!(debug_assertions),
        }
    }
}

impl PoolConfig {
    /// `buffers` buffers of `buf_size` bytes, other settings default.
    pub fn new(buf_size: usize, buffers: usize) -> PoolConfig {
        PoolConfig {
            buf_size,
            buffers,
            ..PoolConfig::default()
        }
    }

    /// The same with debug features set to `on`.
    pub fn with_debug(mut self, on: bool) -> PoolConfig {
        self.debug = on;
        self
    }
}

/// A raw handle to one buffer: slot index + generation. `Copy`, so it can be freed twice or
/// used after free, and the pool detects both.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BufId {
    index: u32,
    generation: u64,
}

impl BufId {
    /// The slot index.
    pub fn slot(&self) -> usize {
        self.index as usize
    }
}

/// Per-slot bookkeeping, kept apart from the slab (16 bytes a slot: a 256-buffer pool's whole
/// table is 4 KiB and stays in L1).
#[derive(Debug)]
struct SlotMeta {
    /// Bumped on every hand-out and every return: odd while the slot is in use, even while it
    /// is free (or quarantined). A [`BufId`] carries the odd value it was handed out with, so a
    /// stale handle never matches again (64 bits do not wrap). Summed over the slots it also *is* the pool's alloc/free count (see
    /// [`BufferPool::stats`]): the fast path keeps no separate counters.
    generation: Cell<u64>,
    /// `buf_size − bytes requested` of the current hand-out (0 for a whole-buffer `alloc`): the
    /// internal fragmentation this slot adds while in use.
    short: Cell<u32>,
}

/// Counters of the cold paths only (fresh slots, exhaustion, detected faults). Allocations,
/// frees, buffers in use and requested bytes are derived from the slot table in
/// [`BufferPool::stats`], so the fast path updates no counter at all.
#[derive(Debug, Default)]
struct Counters {
    exhausted: Cell<u64>,
    double_free: Cell<u64>,
    use_after_free: Cell<u64>,
    overflow: Cell<u64>,
    quarantined: Cell<u64>,
    /// Updated only when a never-used slot is taken: the in-use count can only reach a new
    /// maximum then (with no free slot, every slot below `fresh` is in use or quarantined, so
    /// in use = `fresh − quarantined`), so the fast path never needs the compare.
    high_water: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// A single-threaded pool (`!Sync`: no locks, no atomics on the fast path). One per thread or
/// per core; [`SharedPool`] puts one behind a mutex for drivers that move connections between
/// threads.
///
/// The free slots form one LIFO stack: its top in the `top` field, the rest linked through
/// the slots themselves from `head` (the intrusive list). Release-mode fast path (debug
/// features off): **free** = check and bump the slot's generation; if `top` is taken, push it
/// on the list (store `head` into its first 4 bytes, `head = top`); `top = slot`. **alloc** =
/// take `top` if set (else pop the list: load the link, `head = link`), bump the generation.
/// A free followed by an alloc, the usual rhythm of a server, therefore touches neither the
/// list nor the slab; no counters are updated (they are derived from the generations).
/// Fresh slots, exhaustion, poisoning, canaries and misuse are on out-of-line cold paths.
///
/// Invariants (what the `unsafe` blocks rely on):
/// - slot `i` occupies `[base + i·stride, base + (i+1)·stride)` of `region`, `i < count`;
///   `stride ≥ buf_size (+ CANARY_LEN in debug)`, a multiple of [`CACHE_LINE`];
/// - a slot whose generation is odd is owned by exactly one handle, which alone touches
///   `[0, buf_size)`; the pool touches only free slots and canaries;
/// - slots `≥ fresh` have never been handed out; `top` and the list hold only free (even
///   generation) slots below `fresh`, each exactly once; quarantined slots (even generation)
///   are on no list and never handed out again; in debug mode `top` stays empty (every free
///   goes through the poisoning path onto the list).
#[derive(Debug)]
pub struct BufferPool {
    region: Region,
    stride: usize,
    buf_size: usize,
    count: usize,
    debug: bool,
    top: Cell<u32>,
    /// The generation of the `top` slot (a copy of its table entry).
    top_generation: Cell<u64>,
    head: Cell<u32>,
    fresh: Cell<u32>,
    meta: Box<[SlotMeta]>,
    c: Counters,
}

impl BufferPool {
    /// Maps the slab. The only allocation failure a pool can meet, and it happens here.
    pub fn new(config: PoolConfig) -> Result<BufferPool, SetupError> {
        if config.buffers == 0 || config.buf_size < LINK_LEN {
            return Err(SetupError::Config(
                "a pool needs at least one buffer of at least 4 bytes",
            ));
        }
        if config.buffers >= NIL as usize || config.buf_size > u32::MAX as usize {
            return Err(SetupError::Config(
                "too many buffers or buffers too large for 32-bit slot bookkeeping",
            ));
        }
        let guard = if config.debug { CANARY_LEN } else { 0 };
        let mut stride = (config.buf_size + guard).div_ceil(CACHE_LINE) * CACHE_LINE;
        if stride % COLOUR_PERIOD == 0 {
            // Slab colouring (Bonwick's slab allocator): with a stride that is a multiple of
            // 4 KiB every slot's first line falls in the same L1 set, and a few hundred free-list
            // links fight over that set's 8 ways. One extra line per slot spreads them.
            stride += CACHE_LINE;
        }
        let total = stride
            .checked_mul(config.buffers)
            .ok_or(SetupError::Config("slab size overflows"))?;
        let region = Region::new(total, config.huge_pages, config.populate)?;
        let meta = (0..config.buffers)
            .map(|_| SlotMeta {
                generation: Cell::new(0),
                short: Cell::new(0),
            })
            .collect();
        Ok(BufferPool {
            region,
            stride,
            buf_size: config.buf_size,
            count: config.buffers,
            debug: config.debug,
            top: Cell::new(NIL),
            top_generation: Cell::new(0),
            head: Cell::new(NIL),
            fresh: Cell::new(0),
            meta,
            c: Counters::default(),
        })
    }

    /// Usable bytes per buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// How many buffers the pool has.
    pub fn capacity(&self) -> usize {
        self.count
    }

    /// Bytes between consecutive slots (a multiple of [`CACHE_LINE`]).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Whether poisoning and canaries are on.
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// What backs the slab.
    pub fn backing(&self) -> Backing {
        self.region.backing()
    }

    #[inline]
    fn slot_ptr(&self, index: usize) -> NonNull<u8> {
        debug_assert!(index < self.count);
        // SAFETY: index < count, so index·stride + stride ≤ region.len(): inside the mapping.
        unsafe { self.region.as_ptr().add(index * self.stride) }
    }

    /// Takes a buffer (its whole `buf_size`). O(1). `Err(Exhausted)` when none is free.
    #[inline]
    pub fn alloc(&self) -> Result<PoolBuf<'_>, PoolError> {
        let id = self.take(0)?;
        Ok(PoolBuf {
            pool: self,
            id,
            ptr: self.slot_ptr(id.slot()),
        })
    }

    /// Takes a buffer for `len` bytes (recorded for the fragmentation figure; the buffer is
    /// still `buf_size` long).
    pub fn alloc_sized(&self, len: usize) -> Result<PoolBuf<'_>, PoolError> {
        if len > self.buf_size {
            return Err(PoolError::TooLarge {
                requested: len,
                buf_size: self.buf_size,
            });
        }
        // len ≤ buf_size ≤ u32::MAX (checked in `new`): the difference fits.
        let id = self.take((self.buf_size - len) as u32)?;
        Ok(PoolBuf {
            pool: self,
            id,
            ptr: self.slot_ptr(id.slot()),
        })
    }

    /// Takes a buffer and returns its raw handle; give it back with [`free_raw`](Self::free_raw)
    /// and reach its bytes with [`ptr`](Self::ptr).
    #[inline]
    pub fn alloc_raw(&self) -> Result<BufId, PoolError> {
        self.take(0)
    }

    /// The fast path: the top of the free stack, else the list, else the cold path (fresh
    /// slots, exhaustion, and everything in debug mode).
    #[inline]
    fn take(&self, short: u32) -> Result<BufId, PoolError> {
        let top = self.top.get();
        if top != NIL {
            // `top` is only ever set with debug features off (see `give_back`). Its generation
            // is cached next to it, so this path does not wait for the table.
            self.top.set(NIL);
            let index = top as usize;
            // SAFETY: `top` is a slot of this pool (invariants above); `meta` has `count`
            // entries.
            let m = unsafe { self.meta.get_unchecked(index) };
            return Ok(self.hand_out_as(m, index, short, self.top_generation.get() + 1));
        }
        let head = self.head.get();
        if head == NIL || self.debug {
            return self.take_slow(short);
        }
        let index = head as usize;
        self.head.set(self.link(index));
        Ok(self.hand_out(index, short))
    }

    /// The next-slot link stored in free slot `index`.
    #[inline]
    fn link(&self, index: usize) -> u32 {
        // SAFETY: `index` is on the free list, so the slot is free and the pool owns it; its
        // first LINK_LEN bytes hold the link written by `push`.
        unsafe { self.slot_ptr(index).as_ptr().cast::<u32>().read_unaligned() }
    }

    /// Puts free slot `index` on the list.
    #[inline]
    fn push(&self, index: usize) {
        // SAFETY: the slot is free: the pool alone touches its bytes; the first LINK_LEN bytes
        // now hold the link.
        unsafe {
            self.slot_ptr(index)
                .as_ptr()
                .cast::<u32>()
                .write_unaligned(self.head.get())
        };
        self.head.set(index as u32);
    }

    #[inline]
    fn hand_out(&self, index: usize, short: u32) -> BufId {
        debug_assert!(index < self.count);
        // SAFETY: `index` comes from `top`, the list or `fresh < count`: always a slot of this
        // pool (invariants above), and `meta` has `count` entries.
        let m = unsafe { self.meta.get_unchecked(index) };
        self.hand_out_as(m, index, short, m.generation.get().wrapping_add(1))
    }

    #[inline]
    fn hand_out_as(&self, m: &SlotMeta, index: usize, short: u32, generation: u64) -> BufId {
        m.generation.set(generation);
        m.short.set(short);
        BufId {
            index: index as u32,
            generation,
        }
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self, short: u32) -> Result<BufId, PoolError> {
        let head = self.head.get();
        if head == NIL {
            let fresh = self.fresh.get();
            if fresh as usize >= self.count {
                bump(&self.c.exhausted);
                return Err(PoolError::Exhausted {
                    capacity: self.count,
                });
            }
            self.fresh.set(fresh + 1);
            let id = self.hand_out(fresh as usize, short);
            self.write_canary(fresh as usize);
            let in_use = u64::from(fresh) + 1 - self.c.quarantined.get();
            if in_use > self.c.high_water.get() {
                self.c.high_water.set(in_use);
            }
            return Ok(id);
        }
        let index = head as usize;
        self.head.set(self.link(index));
        if self.debug && !self.poison_intact(index) {
            // Someone wrote into this buffer while it was free: keep it out of use (its
            // generation stays even and it is on no list).
            bump(&self.c.use_after_free);
            bump(&self.c.quarantined);
            return Err(PoolError::UseAfterFree { slot: index });
        }
        let id = self.hand_out(index, short);
        self.write_canary(index);
        Ok(id)
    }

    fn write_canary(&self, index: usize) {
        if self.debug {
            let p = self.slot_ptr(index);
            // SAFETY: buf_size + CANARY_LEN ≤ stride in debug mode: the canary lies inside
            // this slot, past the bytes the handle may touch.
            unsafe {
                p.as_ptr()
                    .add(self.buf_size)
                    .cast::<u64>()
                    .write_unaligned(CANARY)
            };
        }
    }

    fn poison_intact(&self, index: usize) -> bool {
        let p = self.slot_ptr(index);
        // SAFETY: the slot is free (owned by the pool, no handle refers to it); its buf_size
        // bytes are initialised (zeroed at map time, written since).
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), self.buf_size) };
        bytes[LINK_LEN..].iter().all(|&b| b == POISON)
    }

    /// The slot's bookkeeping if `id` is its live handle.
    #[inline]
    fn live(&self, id: BufId) -> Result<&SlotMeta, PoolError> {
        let slot = id.slot();
        let m = self
            .meta
            .get(slot)
            .ok_or(PoolError::InvalidHandle { slot })?;
        // Handles carry the (odd) generation they were handed out with: equal means in use by
        // this very handle.
        if m.generation.get() == id.generation {
            Ok(m)
        } else {
            Err(PoolError::UseAfterFree { slot })
        }
    }

    /// The address of a live buffer's first byte (`buf_size` bytes are valid from it while the
    /// handle is live). A stale or freed handle is [`PoolError::UseAfterFree`].
    pub fn ptr(&self, id: BufId) -> Result<NonNull<u8>, PoolError> {
        match self.live(id) {
            Ok(_) => Ok(self.slot_ptr(id.slot())),
            Err(e) => {
                if matches!(e, PoolError::UseAfterFree { .. }) {
                    bump(&self.c.use_after_free);
                }
                Err(e)
            }
        }
    }

    /// The bytes of a live buffer held by raw id (drivers that keep ids in their connection
    /// tables, like milestone 9's event loop). `&mut self` makes this the only view of the
    /// pool's memory for as long as the slice lives: no [`PoolBuf`] (which borrows the pool)
    /// can exist meanwhile, and a second `slice_mut` cannot overlap it.
    pub fn slice_mut(&mut self, id: BufId) -> Result<&mut [u8], PoolError> {
        let p = self.ptr(id)?;
        // SAFETY: `ptr` checked that the slot is in use under this very id (generation), so
        // its `buf_size` bytes lie inside the live slab and belong to the id's holder; the
        // exclusive borrow of the pool rules out any other reference into the slab (PoolBufs
        // borrow the pool; SharedBufs never give out a `&mut BufferPool`).
        Ok(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), self.buf_size) })
    }

    /// Gives a buffer back. O(1). Freeing twice is [`PoolError::DoubleFree`] (nothing changes);
    /// a damaged canary is [`PoolError::Overflow`] (the slot is quarantined).
    #[inline]
    pub fn free_raw(&self, id: BufId) -> Result<(), PoolError> {
        let m = match self.live(id) {
            Ok(m) => m,
            Err(e) => return Err(self.refused_free(e)),
        };
        // From the handle, not the table: equal after the check, and the store need not wait
        // for the table load.
        m.generation.set(id.generation.wrapping_add(1));
        if self.debug {
            return self.give_back_debug(id.slot());
        }
        self.give_back(id.slot(), id.generation.wrapping_add(1));
        Ok(())
    }

    /// Release mode: the slot becomes the top of the free stack; the old top goes on the list.
    #[inline]
    fn give_back(&self, slot: usize, generation: u64) {
        let top = self.top.get();
        if top != NIL {
            self.push(top as usize);
        }
        self.top.set(slot as u32);
        self.top_generation.set(generation);
    }

    #[cold]
    #[inline(never)]
    fn refused_free(&self, e: PoolError) -> PoolError {
        match e {
            PoolError::UseAfterFree { slot } => {
                bump(&self.c.double_free);
                PoolError::DoubleFree { slot }
            }
            other => other,
        }
    }

    #[cold]
    #[inline(never)]
    fn give_back_debug(&self, slot: usize) -> Result<(), PoolError> {
        let p = self.slot_ptr(slot);
        // SAFETY: the canary lies inside this slot (see `write_canary`).
        let canary = unsafe { p.as_ptr().add(self.buf_size).cast::<u64>().read_unaligned() };
        if canary != CANARY {
            bump(&self.c.overflow);
            bump(&self.c.quarantined);
            return Err(PoolError::Overflow { slot });
        }
        // SAFETY: the handle is being consumed: the slot returns to the pool, which alone
        // touches its buf_size bytes from now on.
        unsafe { p.as_ptr().write_bytes(POISON, self.buf_size) };
        // Straight onto the list (never `top`), so every hand-out passes the poison check.
        self.push(slot);
        Ok(())
    }

    /// Slots handed out and not given back: the leak report (call it at shutdown).
    pub fn outstanding(&self) -> Vec<usize> {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, m)| m.generation.get() & 1 == 1)
            .map(|(i, _)| i)
            .collect()
    }

    /// A snapshot of the counters. O(capacity): allocations and frees are not counted on the
    /// fast path but read off the slot table: each hand-out and each return bumps one slot's
    /// generation by one, so `Σ generation = allocs + returns` and the odd slots are the ones in
    /// use (`allocs − returns`); a return is a free or an overflow quarantine.
    pub fn stats(&self) -> PoolStats {
        let (mut total, mut in_use, mut short) = (0u64, 0u64, 0u64);
        for m in self.meta.iter() {
            let g = m.generation.get();
            total = total.wrapping_add(g);
            if g & 1 == 1 {
                in_use += 1;
                short += u64::from(m.short.get());
            }
        }
        let allocs = total.wrapping_add(in_use) / 2;
        let returns = total.wrapping_sub(in_use) / 2;
        let held = in_use * self.buf_size as u64;
        PoolStats {
            capacity: self.count as u64,
            buf_size: self.buf_size as u64,
            slab_bytes: self.region.len() as u64,
            in_use,
            high_water: self.c.high_water.get(),
            allocs,
            frees: returns - self.c.overflow.get(),
            exhausted: self.c.exhausted.get(),
            double_free: self.c.double_free.get(),
            use_after_free: self.c.use_after_free.get(),
            overflow: self.c.overflow.get(),
            quarantined: self.c.quarantined.get(),
            requested_bytes_in_use: held - short,
            fragmentation: if held == 0 {
                0.0
            } else {
                short as f64 / held as f64
            },
            backing: self.region.backing().label(),
        }
    }

    /// Test and lab hook: writes `byte` at `offset` into slot `slot` through the slab pointer,
    /// whatever the slot's state, the way a stale raw pointer (a kernel DMA, an io_uring read
    /// into a recycled buffer, FFI) would. `offset` may reach into the guard area
    /// (`< stride`); anything else is refused.
    #[doc(hidden)]
    pub fn scribble(&self, slot: usize, offset: usize, byte: u8) -> bool {
        if slot >= self.count || offset >= self.stride {
            return false;
        }
        let p = self.slot_ptr(slot);
        // SAFETY: slot < count and offset < stride: inside the mapping. The bytes are plain
        // u8; a concurrent handle's view of them is what this hook exists to corrupt, and it is
        // only reachable through `&self` of a !Sync pool, so no other thread can be reading.
        unsafe { p.as_ptr().add(offset).write_volatile(byte) };
        true
    }
}

/// A buffer from a [`BufferPool`], given back on drop. Dereferences to `[u8]` (`buf_size`
/// bytes, contents unspecified: whatever the last user or the poison left).
#[derive(Debug)]
pub struct PoolBuf<'a> {
    pool: &'a BufferPool,
    id: BufId,
    ptr: NonNull<u8>,
}

impl PoolBuf<'_> {
    /// Its raw handle.
    pub fn id(&self) -> BufId {
        self.id
    }

    /// Gives up the RAII guard: the caller must call [`BufferPool::free_raw`] (or leak it;
    /// [`BufferPool::outstanding`] will show it).
    pub fn into_raw(self) -> BufId {
        let id = self.id;
        std::mem::forget(self);
        id
    }
}

impl std::ops::Deref for PoolBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is in use and owned by this handle (pool invariant); buf_size
        // initialised bytes inside the slab, which outlives `'a`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.pool.buf_size) }
    }
}

impl std::ops::DerefMut for PoolBuf<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only live view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.pool.buf_size) }
    }
}

impl AsRef<[u8]> for PoolBuf<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for PoolBuf<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for PoolBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        // Errors (overflow detected) are counted in the pool's stats.
        let _ = self.pool.free_raw(self.id);
    }
}

/// A [`BufferPool`] behind a mutex, for drivers whose connections move between threads.
/// Buffers ([`SharedBuf`]) are owned and `Send`. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct SharedPool {
    inner: Arc<Mutex<BufferPool>>,
}

impl SharedPool {
    /// A new shared pool.
    pub fn new(config: PoolConfig) -> Result<SharedPool, SetupError> {
        Ok(SharedPool {
            inner: Arc::new(Mutex::new(BufferPool::new(config)?)),
        })
    }

    /// The process-wide pool with [`PoolConfig::default`] (what `zyphos --buffers pool` uses),
    /// created on first use.
    pub fn global() -> Result<&'static SharedPool, &'static SetupError> {
        static GLOBAL: OnceLock<Result<SharedPool, SetupError>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| SharedPool::new(PoolConfig::default()))
            .as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, BufferPool> {
        // A panic while holding the lock cannot leave the free list half-updated (every
        // update is a few stores with no panicking call between them), so poisoning is moot.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a buffer. O(1) plus an uncontended lock.
    pub fn alloc(&self) -> Result<SharedBuf, PoolError> {
        let pool = self.lock();
        let id = pool.alloc_raw()?;
        let ptr = pool.slot_ptr(id.slot());
        let len = pool.buf_size;
        drop(pool);
        Ok(SharedBuf {
            pool: Arc::clone(&self.inner),
            id,
            ptr,
            len,
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats()
    }

    /// Leak report, as [`BufferPool::outstanding`].
    pub fn outstanding(&self) -> Vec<usize> {
        self.lock().outstanding()
    }
}

/// A buffer from a [`SharedPool`], given back on drop (from any thread).
#[derive(Debug)]
pub struct SharedBuf {
    pool: Arc<Mutex<BufferPool>>,
    id: BufId,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the handle exclusively owns an InUse slot (pool invariant); the slab it points into
// is kept alive by the Arc; the pool's bookkeeping is touched only under the mutex (in drop).
unsafe impl Send for SharedBuf {}
// SAFETY: `&SharedBuf` gives only `&[u8]` to the slot, which nobody else writes.
unsafe impl Sync for SharedBuf {}

impl std::ops::Deref for SharedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: as for PoolBuf: an InUse slot owned by this handle, inside a slab the Arc
        // keeps mapped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for SharedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for SharedBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for SharedBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for SharedBuf {
    fn drop(&mut self) {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let _ = pool.free_raw(self.id);
    }
}

/// Where a driver gets its buffers: a thread's own [`BufferPool`] or a [`SharedPool`].
pub trait BufferSource {
    /// The buffer handle (given back on drop).
    type Buf: AsRef<[u8]> + AsMut<[u8]>;
    /// Takes one buffer, or says the pool is exhausted.
    fn acquire(&self) -> Result<Self::Buf, PoolError>;
    /// The pool's counters.
    fn pool_stats(&self) -> PoolStats;
}

impl<'a> BufferSource for &'a BufferPool {
    type Buf = PoolBuf<'a>;
    fn acquire(&self) -> Result<PoolBuf<'a>, PoolError> {
        BufferPool::alloc(self)
    }
    fn pool_stats(&self) -> PoolStats {
        self.stats()
    }
}

impl BufferSource for SharedPool {
    type Buf = SharedBuf;
    fn acquire(&self) -> Result<SharedBuf, PoolError> {
        self.alloc()
    }
    fn pool_stats(&self) -> PoolStats {
        self.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(buf: usize, n: usize, debug: bool) -> BufferPool {
        BufferPool::new(PoolConfig::new(buf, n).with_debug(debug)).unwrap()
    }

    #[test]
    fn test_raw_id_slice_mut_round_trip_and_stale_id_refused() {
        let mut p = pool(64, 2, false);
        let id = p.alloc_raw().unwrap();
        p.slice_mut(id).unwrap()[..5].copy_from_slice(b"hello");
        assert_eq!(&p.slice_mut(id).unwrap()[..5], b"hello");
        assert_eq!(p.slice_mut(id).unwrap().len(), 64);
        p.free_raw(id).unwrap();
        assert!(matches!(
            p.slice_mut(id),
            Err(PoolError::UseAfterFree { .. })
        ));
    }

    #[test]
    fn test_fresh_pool_alloc_all_then_exhausted() {
        let p = pool(256, 4, false);
        let bufs: Vec<_> = (0..4).map(|_| p.alloc().unwrap()).collect();
        assert_eq!(p.alloc().unwrap_err(), PoolError::Exhausted { capacity: 4 });
        assert_eq!(p.stats().exhausted, 1);
        assert_eq!(p.stats().in_use, 4);
        drop(bufs);
        assert_eq!(p.stats().in_use, 0);
        assert!(p.alloc().is_ok(), "freed buffers are reusable");
    }

    #[test]
    fn test_free_list_lifo_reuses_last_freed() {
        let p = pool(128, 8, false);
        let a = p.alloc_raw().unwrap();
        let b = p.alloc_raw().unwrap();
        let c = p.alloc_raw().unwrap();
        p.free_raw(a).unwrap();
        p.free_raw(c).unwrap();
        // Intrusive LIFO: c (last freed) first, then a; then a fresh slot.
        assert_eq!(p.alloc_raw().unwrap().slot(), c.slot());
        assert_eq!(p.alloc_raw().unwrap().slot(), a.slot());
        assert_eq!(p.alloc_raw().unwrap().slot(), 3);
        p.free_raw(b).unwrap();
    }

    #[test]
    fn test_buffers_disjoint_and_cache_line_aligned() {
        let p = pool(100, 6, false);
        assert_eq!(p.stride() % CACHE_LINE, 0);
        assert!(p.stride() >= 100);
        let mut bufs: Vec<_> = (0..6).map(|_| p.alloc().unwrap()).collect();
        for (i, b) in bufs.iter_mut().enumerate() {
            assert_eq!(b.as_ptr() as usize % CACHE_LINE, 0);
            assert_eq!(b.len(), 100);
            b.fill(i as u8);
        }
        for (i, b) in bufs.iter().enumerate() {
            assert!(
                b.iter().all(|&x| x == i as u8),
                "buffer {i} was overwritten"
            );
        }
    }

    #[test]
    fn test_alloc_free_steady_state_constant_work() {
        // O(1): the free list never grows beyond the pool and alloc/free never scan. Churn a
        // pool far more times than it has slots; the counters must balance exactly.
        let p = pool(64, 16, true);
        let mut live = Vec::new();
        for round in 0..200usize {
            if round % 3 == 2 || live.len() == 16 {
                live.swap_remove(round % live.len().max(1));
            } else {
                live.push(p.alloc().unwrap());
            }
        }
        let s = p.stats();
        assert_eq!(s.allocs - s.frees, live.len() as u64);
        assert!(s.high_water <= 16);
        drop(live);
        assert_eq!(p.stats().in_use, 0);
        assert!(p.outstanding().is_empty());
    }

    #[test]
    fn test_freed_twice_double_free_detected() {
        let p = pool(64, 2, false);
        let id = p.alloc_raw().unwrap();
        p.free_raw(id).unwrap();
        assert_eq!(
            p.free_raw(id),
            Err(PoolError::DoubleFree { slot: id.slot() })
        );
        // Even after the slot is reused, the stale handle cannot free the new owner's buffer.
        let again = p.alloc_raw().unwrap();
        assert_eq!(again.slot(), id.slot());
        assert_eq!(
            p.free_raw(id),
            Err(PoolError::DoubleFree { slot: id.slot() })
        );
        assert_eq!(p.stats().double_free, 2);
        p.free_raw(again).unwrap();
        assert_eq!(p.stats().in_use, 0);
    }

    #[test]
    fn test_stale_handle_use_after_free_detected() {
        let p = pool(64, 2, false);
        let id = p.alloc_raw().unwrap();
        assert!(p.ptr(id).is_ok());
        p.free_raw(id).unwrap();
        assert_eq!(p.ptr(id), Err(PoolError::UseAfterFree { slot: id.slot() }));
        assert_eq!(p.stats().use_after_free, 1);
    }

    #[test]
    fn test_debug_freed_buffer_poisoned() {
        let p = pool(64, 1, true);
        let mut b = p.alloc().unwrap();
        b.fill(0x11);
        let id = b.into_raw();
        p.free_raw(id).unwrap();
        let b = p.alloc().unwrap();
        // Everything after the 4-byte free-list link is poison: old data never leaks out.
        assert!(b[LINK_LEN..].iter().all(|&x| x == POISON));
    }

    #[test]
    fn test_debug_write_after_free_detected_and_quarantined() {
        let p = pool(64, 2, true);
        let id = p.alloc_raw().unwrap();
        p.free_raw(id).unwrap();
        // A stale pointer writes into the freed buffer.
        assert!(p.scribble(id.slot(), 20, 0x42));
        assert_eq!(
            p.alloc().unwrap_err(),
            PoolError::UseAfterFree { slot: id.slot() }
        );
        let s = p.stats();
        assert_eq!((s.use_after_free, s.quarantined), (1, 1));
        // The damaged slot is never handed out again; the other one still is.
        let b = p.alloc().unwrap();
        assert_ne!(b.id().slot(), id.slot());
        assert!(p.alloc().is_err());
    }

    #[test]
    fn test_debug_write_past_end_canary_detects_overflow() {
        let p = pool(64, 2, true);
        let id = p.alloc_raw().unwrap();
        // One byte past the end lands on the guard canary.
        assert!(p.scribble(id.slot(), 64, 0));
        assert_eq!(p.free_raw(id), Err(PoolError::Overflow { slot: id.slot() }));
        let s = p.stats();
        assert_eq!((s.overflow, s.quarantined, s.in_use), (1, 1, 0));
    }

    #[test]
    fn test_page_multiple_stride_coloured_by_one_line() {
        let p = pool(4096, 4, false);
        assert_eq!(p.stride(), 4096 + CACHE_LINE);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        // Consecutive slots start in different L1 sets (set = address / 64 mod 64).
        let set = |x: &[u8]| (x.as_ptr() as usize / 64) % 64;
        assert_ne!(set(&a), set(&b));
    }

    #[test]
    fn test_release_mode_no_canary_no_poison_cost() {
        let p = pool(64, 1, false);
        assert_eq!(p.stride(), 64, "no guard bytes without debug");
        let mut b = p.alloc().unwrap();
        b.fill(9);
        drop(b);
        let b = p.alloc().unwrap();
        assert!(b[LINK_LEN..].iter().all(|&x| x == 9), "no poisoning");
    }

    #[test]
    fn test_unreturned_buffer_leak_reported() {
        let p = pool(64, 4, false);
        let kept = p.alloc().unwrap().into_raw();
        drop(p.alloc().unwrap());
        assert_eq!(p.outstanding(), vec![kept.slot()]);
        p.free_raw(kept).unwrap();
        assert!(p.outstanding().is_empty());
    }

    #[test]
    fn test_oversized_request_too_large() {
        let p = pool(64, 1, false);
        assert_eq!(
            p.alloc_sized(65).unwrap_err(),
            PoolError::TooLarge {
                requested: 65,
                buf_size: 64
            }
        );
        let b = p.alloc_sized(16).unwrap();
        assert!((p.stats().fragmentation - 0.75).abs() < 1e-9);
        drop(b);
        assert_eq!(p.stats().fragmentation, 0.0);
    }

    #[test]
    fn test_foreign_handle_invalid() {
        let small = pool(64, 1, false);
        let big = pool(64, 8, false);
        let mut ids = Vec::new();
        for _ in 0..8 {
            ids.push(big.alloc_raw().unwrap());
        }
        assert_eq!(
            small.free_raw(ids[7]),
            Err(PoolError::InvalidHandle { slot: 7 })
        );
        for id in ids {
            big.free_raw(id).unwrap();
        }
    }

    #[test]
    fn test_shared_pool_buffers_cross_threads() {
        let p = SharedPool::new(PoolConfig::new(128, 8).with_debug(true)).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..20u8 {
                        let mut b = p.alloc().unwrap();
                        b.fill(t * 100 + i);
                        assert!(b.iter().all(|&x| x == t * 100 + i));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut all: Vec<_> = (0..8).map(|_| p.alloc().unwrap()).collect();
        assert!(matches!(p.alloc(), Err(PoolError::Exhausted { .. })));
        // A buffer freed on another thread returns to the same pool.
        let moved = all.pop().unwrap();
        std::thread::spawn(move || drop(moved)).join().unwrap();
        assert!(p.alloc().is_ok());
        let s = p.stats();
        assert_eq!(s.allocs, 49);
        assert_eq!(s.exhausted, 1);
    }

    #[test]
    fn test_churned_pool_stats_match_operation_counts() {
        // No counter is updated on the fast path: allocs, frees, in use and requested bytes are
        // derived from the slot generations. They must equal an explicit tally.
        for debug in [false, true] {
            let p = pool(100, 8, debug);
            let mut live: Vec<(PoolBuf<'_>, u64)> = Vec::new();
            let (mut allocs, mut frees, mut peak) = (0u64, 0u64, 0u64);
            for step in 0..500usize {
                let free = (step * 7919) % 3 == 0 || live.len() == 8;
                if free && !live.is_empty() {
                    live.swap_remove((step * 31) % live.len());
                    frees += 1;
                } else {
                    let len = 10 + step % 91;
                    live.push((p.alloc_sized(len).unwrap(), len as u64));
                    allocs += 1;
                }
                peak = peak.max(live.len() as u64);
                let s = p.stats();
                assert_eq!(
                    (s.allocs, s.frees, s.in_use),
                    (allocs, frees, live.len() as u64)
                );
                let requested: u64 = live.iter().map(|(_, len)| len).sum();
                assert_eq!(
                    s.requested_bytes_in_use, requested,
                    "step {step}, debug={debug}"
                );
            }
            assert_eq!(p.stats().high_water, peak, "debug={debug}");
            drop(live);
            let s = p.stats();
            assert_eq!((s.in_use, s.requested_bytes_in_use), (0, 0));
            assert_eq!(s.frees, s.allocs);
        }
    }

    #[test]
    fn test_empty_config_rejected() {
        assert!(BufferPool::new(PoolConfig::new(0, 4)).is_err());
        assert!(BufferPool::new(PoolConfig::new(64, 0)).is_err());
    }
}
