//! The fixed-size buffer pool: one `mmap`ed slab cut into equal, cache-line-aligned slots, the
//! free slots' indices kept *out of band* (a `u32` stack next to the slot table, plus a one-slot
//! cache on top), O(1) alloc and free. The pool's bookkeeping never touches buffer memory.
//!
//! ```text
//!  slab (one mmap, page-aligned)   stride = round_up(buf_size [+ 8], 64) [+ 64 if 4 KiB-multiple]
//!  ┌──────────────┬───┬──────────────┬───┬──────────────┬───┬──────────────┬── … ──────┐
//!  │ slot 0       │ c │ slot 1       │ c │ slot 2       │ c │ slot 3       │ never     │
//!  │ in use       │   │ free         │   │ free         │   │ free         │ used yet  │
//!  └──────────────┴───┴──────────────┴───┴──────────────┴───┴──────────────┴── … ──────┘
//!   pool struct:  top = 2 (last freed)   stack = [3, 1]  len = 2   fresh = 4    c = canary (debug)
//!                 slot table meta[0..count], 16 B a slot: raw-handle generation, shortfall, quarantine
//! ```
//!
//! The free slots form one LIFO stack: its top in a field (`top`), the rest in `stack[..len]`, a
//! boxed `[u32]` of `capacity` entries allocated with the pool. Nothing is ever written into a
//! free buffer (release mode), so handing a buffer out or taking it back costs no cache miss on
//! the slab, whatever the pattern.
//!
//! - **free** (dropping a [`PoolBuf`]): if `top` holds a slot, push it (`stack[len] = top`,
//!   `len += 1`); `top = slot`. No check: the type already guarantees that a `PoolBuf` is given
//!   back once, to the pool it came from, while the pool is alive.
//! - **alloc**: take `top` if it holds a slot (one compare: `top < capacity`), else pop the
//!   stack, else take the next never-used slot (`fresh`), else [`PoolError::Exhausted`]; bump
//!   the `allocs` counter.
//! - A free followed by an alloc, the rhythm of a server (and of the `pool_vs_malloc` check),
//!   goes through `top` alone: the slot just freed is handed straight back. The stack is touched
//!   only when two frees or two allocs follow each other. `top` exists because of how CPUs run
//!   this: with a bare stack, free writes `len` and the next alloc must read it back (and the
//!   next free reads the alloc's write), a chain of store-to-load forwards through memory from
//!   step to step; `top` is read by a branch only, so consecutive steps do not wait on each
//!   other (see the milestone write-up for the measurements).
//! - **Statistics** are plain single-writer `Cell<u64>` counters of the pool itself, updated
//!   only where something happens: `allocs` on every hand-out (one increment), the rest on cold
//!   paths. Buffers in use are read off the free structure (`fresh − quarantined − free`), frees
//!   are `allocs − in use − overflows`, and requested bytes are tracked only for
//!   [`BufferPool::alloc_sized`]: it records the shortfall in the slot table and tags the
//!   handle's slot index (`SIZED`, the top bit); the tag travels into `top` on free and is
//!   settled by whichever cold path meets it next (`top` ≥ capacity fails the fast compare).
//!   A whole-buffer free therefore tests and counts nothing.
//! - Slots never handed out are never touched, so an idle pool costs address space, not RAM
//!   (page faults happen on first use, or up front with `populate`).
//!
//! Checks where the types do not already give the guarantee. The safe [`PoolBuf`] borrows the
//! pool and is consumed by its drop, so it cannot be freed twice or outlive the pool: its path
//! carries no check at all. The raw API ([`BufferPool::alloc_raw`], [`BufferPool::free_raw`],
//! [`BufferPool::ptr`], [`BufferPool::slice_mut`], [`PoolBuf::into_raw`]) hands out `Copy`
//! handles, [`BufId`]s, which can be freed twice or used after free: each slot carries a
//! **generation**, odd while a raw handle holds the slot, so [`PoolError::DoubleFree`] and
//! [`PoolError::UseAfterFree`] are detected there (one compare).
//!
//! Debug features (on when [`PoolConfig::debug`] is set, the default in debug builds):
//! freed buffers are **poisoned** (filled with `0xDD`) and checked when handed out again (a
//! write through a stale pointer shows as [`PoolError::UseAfterFree`]); a **guard canary** after
//! each buffer is checked on free ([`PoolError::Overflow`]); damaged slots are quarantined.
//! They live on out-of-line cold paths, and a pool with them off does not even test a flag: a
//! debug pool's `top` is a sentinel (`DEBUG_TOP`) that is never a slot, so the compare on `top`
//! that alloc and free make anyway sends every operation of a debug pool to the cold paths
//! (where frees are poisoned and go on the stack, and every hand-out passes the poison check).
//!
//! This module is one of the three allowed `unsafe` (with `sys` and `arena`): slot pointers,
//! the buffer views, the canary and poison accesses. The free structure is safe code.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{PoolError, SetupError};
use crate::stats::PoolStats;
use crate::sys::{Backing, HugePages, Region};

/// Bytes per buffer by default: 16 KiB holds a typical request head and a TLS record.
pub const DEFAULT_BUF_SIZE: usize = 16 * 1024;
/// Buffers per pool by default. Chosen by the `pool_size_sweep` experiment: in the standard
/// scenario (64 keep-alive connections, each holding a read buffer and borrowing a write buffer
/// per response), the smallest pool with zero exhaustion whose throughput, paired against the
/// best size's, is within noise (median ratio ≥ 0.95, or faster in ≥ 1/3 of the repeats); the
/// `pool_size_from_sweep` check re-runs it at 16, 64 and 128 connections.
pub const DEFAULT_POOL_BUFFERS: usize = 128;
/// The cache line size on x86-64: slots start on a line, so two buffers never share one.
pub const CACHE_LINE: usize = 64;

const NIL: u32 = u32::MAX;
/// `top` of a pool with debug features on, for its whole life: never a slot, so the fast paths'
/// one compare on `top` sends every alloc and free of a debug pool to the cold paths, and a
/// release-mode pool pays no test of the debug flag.
const DEBUG_TOP: u32 = u32::MAX - 1;
/// Set in a [`PoolBuf`]'s slot index (and so in `top` after it is freed) when the buffer came
/// from `alloc_sized`: its shortfall, recorded in the slot table, is settled on the cold path
/// that next meets the index, so a whole-buffer free tests nothing.
const SIZED: u32 = 1 << 31;
/// Strides that are multiples of this map every slot start to the same L1 cache set
/// (64 sets × 64-byte lines).
const COLOUR_PERIOD: usize = 4096;
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

/// Per-slot bookkeeping of the raw API and the cold paths, kept apart from the slab (16 bytes a
/// slot). The `PoolBuf` fast path reads and writes none of it.
#[derive(Debug)]
struct SlotMeta {
    /// Odd while a raw handle ([`BufId`]) holds the slot, even otherwise (free, held by a
    /// `PoolBuf`, quarantined). Bumped when a raw handle is made (`alloc_raw`, `into_raw`) and
    /// when it is freed, so a stale handle never matches again (64 bits do not wrap).
    generation: Cell<u64>,
    /// `buf_size − bytes requested` while a raw handle holds a sized buffer (`into_raw` of an
    /// `alloc_sized` buffer), 0 otherwise: `free_raw` gives it back to the requested-bytes
    /// figure.
    short: Cell<u32>,
    /// Damaged (write after free, overflow) and kept out of use for good.
    quarantined: Cell<bool>,
}

/// The pool's statistics: plain single-writer counters (`Cell`, the pool is `!Sync`).
/// `allocs` is the only one the fast path updates; buffers in use and frees are derived in
/// [`BufferPool::stats`].
#[derive(Debug, Default)]
struct Counters {
    allocs: Cell<u64>,
    exhausted: Cell<u64>,
    double_free: Cell<u64>,
    use_after_free: Cell<u64>,
    overflow: Cell<u64>,
    quarantined: Cell<u64>,
    /// Updated only when a never-used slot is taken: the in-use count can only reach a new
    /// maximum then (with no free slot, every slot below `fresh` is in use or quarantined, so
    /// in use = `fresh − quarantined`), so the fast path never needs the compare.
    high_water: Cell<u64>,
    /// Σ (buf_size − requested) over the sized buffers in use (only `alloc_sized` adds to it).
    short_in_use: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// A single-threaded pool (`!Sync`: no locks, no atomics on the fast path). One per thread or
/// per core; [`SharedPool`] puts one behind a mutex for drivers that move connections between
/// threads.
///
/// Release-mode fast path (debug features off): **free** of a [`PoolBuf`] = if `top` is taken,
/// push it on the index stack; `top = slot` (no check, no counter). **alloc** = take `top` if
/// it holds a slot, else pop the stack; `allocs += 1`. No buffer byte is read or written by
/// either. Fresh slots, exhaustion, sized buffers' shortfalls, poisoning, canaries and misuse
/// are on out-of-line cold paths.
///
/// Invariants (what the `unsafe` blocks rely on):
/// - slot `i` occupies `[base + i·stride, base + (i+1)·stride)` of `region`, `i < count`;
///   `stride ≥ buf_size (+ CANARY_LEN in debug)`, a multiple of [`CACHE_LINE`];
/// - every slot below `fresh` is in exactly one state: free (in `top` or `stack[..len]`,
///   exactly once), held by exactly one handle (a `PoolBuf`, or a raw `BufId` whose generation
///   equals the slot's odd generation), or quarantined (on no list, never handed out again);
///   the holder alone touches `[0, buf_size)`, the pool touches only free slots and canaries;
/// - slots `≥ fresh` have never been handed out; free slots number at most `count`, so a push
///   always has room; the stack holds plain indices, `top` a plain or `SIZED`-tagged one or
///   `NIL`; in debug mode `top` is `DEBUG_TOP` for good (every free goes through the
///   poisoning path onto the stack);
/// - a slot's `short` is non-zero only while a sized buffer holds it, or while its tagged index
///   is in `top`.
#[derive(Debug)]
pub struct BufferPool {
    region: Region,
    stride: usize,
    buf_size: usize,
    count: usize,
    debug: bool,
    /// The last slot freed, not yet on the stack (`NIL` if none, [`DEBUG_TOP`] in debug mode;
    /// tagged [`SIZED`] if it was a sized buffer's).
    top: Cell<u32>,
    /// How many entries of `stack` hold free slots.
    len: Cell<u32>,
    /// Free slot indices below the top (`count` entries, the first `len` meaningful).
    stack: Box<[Cell<u32>]>,
    fresh: Cell<u32>,
    meta: Box<[SlotMeta]>,
    c: Counters,
}

impl BufferPool {
    /// Maps the slab. The only allocation failure a pool can meet, and it happens here.
    pub fn new(config: PoolConfig) -> Result<BufferPool, SetupError> {
        if config.buffers == 0 || config.buf_size == 0 {
            return Err(SetupError::Config(
                "a pool needs at least one buffer of at least one byte",
            ));
        }
        if config.buffers >= (SIZED - 2) as usize || config.buf_size > u32::MAX as usize {
            return Err(SetupError::Config(
                "too many buffers or buffers too large for 32-bit slot bookkeeping",
            ));
        }
        let guard = if config.debug { CANARY_LEN } else { 0 };
        let mut stride = (config.buf_size + guard).div_ceil(CACHE_LINE) * CACHE_LINE;
        if stride % COLOUR_PERIOD == 0 {
            // Slab colouring (Bonwick's slab allocator): with a stride that is a multiple of
            // 4 KiB every slot's first line falls in the same L1 set, and the first lines of a
            // few hundred buffers (where every request head starts) fight over that set's 8
            // ways. One extra line per slot spreads them.
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
                quarantined: Cell::new(false),
            })
            .collect();
        Ok(BufferPool {
            region,
            stride,
            buf_size: config.buf_size,
            count: config.buffers,
            debug: config.debug,
            top: Cell::new(if config.debug { DEBUG_TOP } else { NIL }),
            len: Cell::new(0),
            stack: (0..config.buffers).map(|_| Cell::new(NIL)).collect(),
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
        // SAFETY: every caller passes a slot of this pool (from `take`, or checked against
        // `count` / the slot table), so index < count and index·stride + stride ≤
        // region.len(): inside the mapping.
        unsafe { self.region.as_ptr().add(index * self.stride) }
    }

    /// Takes a buffer (its whole `buf_size`). O(1). `Err(Exhausted)` when none is free.
    #[inline]
    pub fn alloc(&self) -> Result<PoolBuf<'_>, PoolError> {
        let index = self.take()?;
        Ok(PoolBuf {
            pool: self,
            ptr: self.slot_ptr(index as usize),
            index,
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
        let index = self.take()?;
        // len ≤ buf_size ≤ u32::MAX (checked in `new`): the difference fits.
        let short = (self.buf_size - len) as u32;
        self.meta[index as usize].short.set(short);
        let c = &self.c.short_in_use;
        c.set(c.get() + u64::from(short));
        Ok(PoolBuf {
            pool: self,
            ptr: self.slot_ptr(index as usize),
            index: index | SIZED,
        })
    }

    /// Takes a buffer and returns its raw handle; give it back with [`free_raw`](Self::free_raw)
    /// and reach its bytes with [`ptr`](Self::ptr) or [`slice_mut`](Self::slice_mut).
    #[inline]
    pub fn alloc_raw(&self) -> Result<BufId, PoolError> {
        let index = self.take()?;
        Ok(self.make_raw(index))
    }

    /// Records a raw holder for slot `index`: the generation turns odd. (The slot's `short`
    /// stays: 0, or the shortfall of the sized buffer the handle came from.)
    #[inline]
    fn make_raw(&self, index: u32) -> BufId {
        let m = &self.meta[index as usize];
        let generation = m.generation.get().wrapping_add(1);
        m.generation.set(generation);
        BufId { index, generation }
    }

    /// The fast path: the top of the free stack, else the stack, else the cold path (fresh
    /// slots, exhaustion, a sized buffer's slot in `top`, and everything in debug mode, whose
    /// `top` is [`DEBUG_TOP`]). Returns the slot index only, so the handle is built in
    /// registers by the inlined caller.
    #[inline]
    fn take(&self) -> Result<u32, PoolError> {
        let top = self.top.get();
        let index = if (top as usize) < self.count {
            self.top.set(NIL);
            top
        } else {
            let len = self.len.get();
            if top != NIL || len == 0 {
                return self.take_slow();
            }
            self.len.set(len - 1);
            self.stack[len as usize - 1].get()
        };
        bump(&self.c.allocs);
        Ok(index)
    }

    /// Pops the index stack (the caller checked it is not empty).
    fn pop(&self) -> u32 {
        let len = self.len.get() - 1;
        self.len.set(len);
        self.stack[len as usize].get()
    }

    /// Pushes free slot `index` on the index stack.
    #[inline]
    fn push(&self, index: u32) {
        let len = self.len.get();
        // Room: at most `count` slots are free (invariants); the bounds check turns a broken
        // invariant into a panic, never a wild write.
        self.stack[len as usize].set(index);
        self.len.set(len + 1);
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self) -> Result<u32, PoolError> {
        let top = self.top.get();
        if top != NIL && top != DEBUG_TOP {
            // The slot of a sized buffer, freed last (release mode).
            self.top.set(NIL);
            let index = self.settle(top);
            bump(&self.c.allocs);
            return Ok(index);
        }
        if self.len.get() == 0 {
            let fresh = self.fresh.get();
            if fresh as usize >= self.count {
                bump(&self.c.exhausted);
                return Err(PoolError::Exhausted {
                    capacity: self.count,
                });
            }
            self.fresh.set(fresh + 1);
            self.write_canary(fresh as usize);
            let in_use = u64::from(fresh) + 1 - self.c.quarantined.get();
            if in_use > self.c.high_water.get() {
                self.c.high_water.set(in_use);
            }
            bump(&self.c.allocs);
            return Ok(fresh);
        }
        let index = self.pop();
        if self.debug && !self.poison_intact(index as usize) {
            // Someone wrote into this buffer while it was free: keep it out of use for good.
            self.quarantine(index as usize);
            bump(&self.c.use_after_free);
            return Err(PoolError::UseAfterFree {
                slot: index as usize,
            });
        }
        self.write_canary(index as usize);
        bump(&self.c.allocs);
        Ok(index)
    }

    /// A slot index as freed (maybe tagged [`SIZED`]) → the plain index, the shortfall of a
    /// sized buffer given back to the requested-bytes figure.
    #[inline]
    fn settle(&self, index: u32) -> u32 {
        if index & SIZED == 0 {
            return index;
        }
        let index = index & !SIZED;
        self.unshort(self.meta[index as usize].short.replace(0));
        index
    }

    fn quarantine(&self, index: usize) {
        self.meta[index].quarantined.set(true);
        bump(&self.c.quarantined);
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
        bytes.iter().all(|&b| b == POISON)
    }

    /// The slot's bookkeeping if `id` is its live raw handle.
    #[inline]
    fn live(&self, id: BufId) -> Result<&SlotMeta, PoolError> {
        let slot = id.slot();
        let m = self
            .meta
            .get(slot)
            .ok_or(PoolError::InvalidHandle { slot })?;
        // Raw handles carry the (odd) generation they were made with: equal means held by
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
        // SAFETY: `ptr` checked that the slot is held under this very id (generation), so
        // its `buf_size` bytes lie inside the live slab and belong to the id's holder; the
        // exclusive borrow of the pool rules out any other reference into the slab (PoolBufs
        // borrow the pool; SharedBufs never give out a `&mut BufferPool`).
        Ok(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), self.buf_size) })
    }

    /// Gives a raw buffer back. O(1). Freeing twice, or with a handle whose slot has since
    /// been handed out again, is [`PoolError::DoubleFree`] (nothing changes); a damaged
    /// canary is [`PoolError::Overflow`] (the slot is quarantined).
    #[inline]
    pub fn free_raw(&self, id: BufId) -> Result<(), PoolError> {
        let m = match self.live(id) {
            Ok(m) => m,
            Err(e) => return Err(self.refused_free(e)),
        };
        // From the handle, not the table: equal after the check, and the store need not wait
        // for the table load.
        m.generation.set(id.generation.wrapping_add(1));
        let short = m.short.replace(0);
        if short != 0 {
            self.unshort(short);
        }
        self.release(id.index)
    }

    /// Takes back a slot whose holder is gone (a dropped `PoolBuf`, whose index may be tagged
    /// [`SIZED`], or a freed raw handle). Release mode: the slot becomes `top`; the old top, if
    /// any, is settled and goes on the stack (which holds plain indices only). Debug mode
    /// (`top` is [`DEBUG_TOP`]): the poisoning path.
    #[inline]
    fn release(&self, index: u32) -> Result<(), PoolError> {
        let top = self.top.get();
        if top != NIL {
            if top == DEBUG_TOP {
                return self.give_back_debug(self.settle(index));
            }
            self.push(self.settle(top));
        }
        self.top.set(index);
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn unshort(&self, short: u32) {
        debug_assert!(u64::from(short) <= self.c.short_in_use.get());
        let c = &self.c.short_in_use;
        c.set(c.get() - u64::from(short));
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
    fn give_back_debug(&self, index: u32) -> Result<(), PoolError> {
        let slot = index as usize;
        let p = self.slot_ptr(slot);
        // SAFETY: the canary lies inside this slot (see `write_canary`).
        let canary = unsafe { p.as_ptr().add(self.buf_size).cast::<u64>().read_unaligned() };
        if canary != CANARY {
            bump(&self.c.overflow);
            self.quarantine(slot);
            return Err(PoolError::Overflow { slot });
        }
        // SAFETY: the holder is gone: the slot returns to the pool, which alone touches its
        // buf_size bytes from now on.
        unsafe { p.as_ptr().write_bytes(POISON, self.buf_size) };
        // Straight onto the stack (never `top`), so every hand-out passes the poison check.
        self.push(index);
        Ok(())
    }

    /// The slot in `top` (plain index), if any.
    fn top_slot(&self) -> Option<u32> {
        let top = self.top.get();
        (top != NIL && top != DEBUG_TOP).then_some(top & !SIZED)
    }

    /// Free slots: `top` and the stack.
    fn free_count(&self) -> u64 {
        u64::from(self.len.get()) + u64::from(self.top_slot().is_some())
    }

    /// Slots handed out and not given back: the leak report (call it at shutdown). O(capacity).
    pub fn outstanding(&self) -> Vec<usize> {
        let fresh = self.fresh.get() as usize;
        let mut held: Vec<bool> = self.meta[..fresh]
            .iter()
            .map(|m| !m.quarantined.get())
            .collect();
        if let Some(top) = self.top_slot() {
            held[top as usize] = false;
        }
        for s in &self.stack[..self.len.get() as usize] {
            held[s.get() as usize] = false;
        }
        held.iter()
            .enumerate()
            .filter(|&(_, &h)| h)
            .map(|(i, _)| i)
            .collect()
    }

    /// A snapshot of the counters. O(1): buffers in use are the slots ever handed out minus
    /// the free and quarantined ones; every return is a free or an overflow quarantine, so
    /// `frees = allocs − in use − overflows`.
    pub fn stats(&self) -> PoolStats {
        let in_use = u64::from(self.fresh.get()) - self.c.quarantined.get() - self.free_count();
        let allocs = self.c.allocs.get();
        let held = in_use * self.buf_size as u64;
        // A sized buffer freed last is still counted short until its index is settled.
        let pending = match self.top.get() {
            t if t != NIL && t != DEBUG_TOP && t & SIZED != 0 => {
                u64::from(self.meta[(t & !SIZED) as usize].short.get())
            }
            _ => 0,
        };
        let short = self.c.short_in_use.get() - pending;
        PoolStats {
            capacity: self.count as u64,
            buf_size: self.buf_size as u64,
            slab_bytes: self.region.len() as u64,
            in_use,
            high_water: self.c.high_water.get(),
            allocs,
            frees: allocs - in_use - self.c.overflow.get(),
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
/// bytes, contents unspecified: whatever the last user or the poison left). Three words, like
/// the yardstick's handle in the `pool_vs_malloc` check: the pool, the buffer's address, the
/// slot.
#[derive(Debug)]
pub struct PoolBuf<'a> {
    pool: &'a BufferPool,
    ptr: NonNull<u8>,
    /// The slot, tagged [`SIZED`] for an `alloc_sized` buffer.
    index: u32,
}

impl PoolBuf<'_> {
    /// The slot index (the same as the [`BufId::slot`] of [`into_raw`](Self::into_raw)).
    pub fn slot(&self) -> usize {
        (self.index & !SIZED) as usize
    }

    /// Gives up the RAII guard for a raw handle: the caller must call
    /// [`BufferPool::free_raw`] (or leak it; [`BufferPool::outstanding`] will show it).
    pub fn into_raw(self) -> BufId {
        let id = self.pool.make_raw(self.index & !SIZED);
        std::mem::forget(self);
        id
    }
}

impl std::ops::Deref for PoolBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is held by this handle alone (pool invariant); buf_size
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
        // No generation check: this handle came from this pool (the borrow) and is dropped
        // once (the move). Errors (overflow detected in debug mode) are counted in the stats.
        let _ = self.pool.release(self.index);
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
        // A panic while holding the lock cannot leave the free structure half-updated (every
        // update is a few stores; the only panic between them is a push's bounds check, which
        // a correct pool never fails), so poisoning is moot.
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
        // LIFO: c (last freed, in `top`) first, then a (from the index stack); then a fresh
        // slot.
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
        // O(1): the free stack never grows beyond the pool and alloc/free never scan. Churn a
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
        // Every byte is poison (no free-list link lives in the buffer): old data never leaks
        // out.
        assert!(b.iter().all(|&x| x == POISON));
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
        assert_ne!(b.slot(), id.slot());
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
        assert!(b.iter().all(|&x| x == 9), "no poisoning");
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
        // Only `allocs` is counted on the fast path: frees and buffers in use are derived from
        // the free structure, requested bytes from the sized hand-outs. They must equal an
        // explicit tally.
        for debug in [false, true] {
            let p = pool(100, 8, debug);
            let mut live: Vec<(PoolBuf<'_>, u64)> = Vec::new();
            let (mut allocs, mut frees, mut peak) = (0u64, 0u64, 0u64);
            for step in 0..500usize {
                let free = (step * 7919) % 3 == 0 || live.len() == 8;
                if free && !live.is_empty() {
                    let (b, _) = live.swap_remove((step * 31) % live.len());
                    if step % 5 == 0 {
                        // Through the raw API: the handle keeps the shortfall.
                        let id = b.into_raw();
                        p.free_raw(id).unwrap();
                    }
                    frees += 1;
                } else if step % 4 == 0 {
                    live.push((p.alloc().unwrap(), 100));
                    allocs += 1;
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
    fn test_release_mode_free_structure_touches_no_buffer_byte() {
        // The free slot indices live out of band: freeing and re-allocating, in any order
        // (through `top` and through the index stack), never writes into a buffer.
        let p = pool(64, 4, false);
        let mut bufs: Vec<_> = (0..4).map(|_| p.alloc().unwrap()).collect();
        for b in &mut bufs {
            let fill = 0xA0 + b.slot() as u8;
            b.fill(fill);
        }
        // Free all four (three go through the stack), then take them all back.
        for b in bufs.drain(..).rev() {
            drop(b);
        }
        let again: Vec<_> = (0..4).map(|_| p.alloc().unwrap()).collect();
        for b in &again {
            let fill = 0xA0 + b.slot() as u8;
            assert!(
                b.iter().all(|&x| x == fill),
                "slot {} was written",
                b.slot()
            );
        }
        assert_eq!(p.stats().in_use, 4);
    }

    #[test]
    fn test_into_raw_handle_checked_like_alloc_raw() {
        let p = pool(64, 2, false);
        let sized = p.alloc_sized(16).unwrap();
        let slot = sized.slot();
        let id = sized.into_raw();
        assert_eq!(id.slot(), slot);
        assert!(p.ptr(id).is_ok());
        assert_eq!(p.stats().requested_bytes_in_use, 16);
        p.free_raw(id).unwrap();
        assert_eq!((p.stats().in_use, p.stats().requested_bytes_in_use), (0, 0));
        // The slot goes to a safe handle next: the stale raw id can neither free nor reach it.
        let b = p.alloc().unwrap();
        assert_eq!(b.slot(), slot);
        assert_eq!(p.free_raw(id), Err(PoolError::DoubleFree { slot }));
        assert_eq!(p.ptr(id), Err(PoolError::UseAfterFree { slot }));
        assert_eq!(p.stats().in_use, 1);
        drop(b);
        assert!(p.outstanding().is_empty());
    }

    #[test]
    fn test_sized_shortfall_settled_through_top_and_stack() {
        // A freed sized buffer's slot sits tagged in `top` until the next alloc or free meets
        // it; the figures must not see the difference.
        let p = pool(100, 4, false);
        let a = p.alloc_sized(10).unwrap();
        let b = p.alloc_sized(20).unwrap();
        let c = p.alloc().unwrap();
        assert_eq!(p.stats().requested_bytes_in_use, 130);
        drop(a); // tagged in `top`
        assert_eq!(
            (p.stats().in_use, p.stats().requested_bytes_in_use),
            (2, 120)
        );
        drop(b); // a's slot settled onto the stack, b's tagged in `top`
        assert_eq!(
            (p.stats().in_use, p.stats().requested_bytes_in_use),
            (1, 100)
        );
        let d = p.alloc().unwrap(); // takes b's slot from `top`
        let e = p.alloc_sized(50).unwrap(); // a's slot from the stack
        let s = p.stats();
        assert_eq!((s.in_use, s.requested_bytes_in_use), (3, 250));
        assert_eq!((s.allocs, s.frees), (5, 2));
        drop((c, d, e));
        let s = p.stats();
        assert_eq!((s.in_use, s.requested_bytes_in_use, s.frees), (0, 0, 5));
        assert!(p.outstanding().is_empty());
    }

    #[test]
    fn test_empty_config_rejected() {
        assert!(BufferPool::new(PoolConfig::new(0, 4)).is_err());
        assert!(BufferPool::new(PoolConfig::new(64, 0)).is_err());
    }
}
