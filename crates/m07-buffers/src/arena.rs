//! A bump arena for per-request allocations: carve bytes off one `mmap`ed region with a moving
//! offset, never free one, reset them all at once between requests.
//!
//! ```text
//!  region ┌─────────┬──┬───────────┬─────────────────────────────┐
//!         │ alloc 1 │▒▒│ alloc 2   │ free                        │
//!         └─────────┴──┴───────────┴─────────────────────────────┘
//!                    ▲ alignment padding      ▲ offset        reset(): offset = 0
//! ```
//!
//! Allocation is an add and a compare; freeing is [`Arena::reset`], which takes `&mut self`, so
//! the borrow checker proves no slice handed out earlier is still alive. A full arena returns
//! `None` (counted): the caller decides (e.g. answer 431), nothing falls back to `malloc`.
//!
//! One of the three modules allowed `unsafe` (with `sys` and `pool`).

use std::cell::Cell;

use crate::error::SetupError;
use crate::stats::ArenaStats;
use crate::sys::{HugePages, Region};

/// Default arena size per connection: 8 KiB of per-request scratch.
pub const DEFAULT_ARENA_BYTES: usize = 8 * 1024;

/// A bump allocator over one region. `!Sync`: one per connection or thread.
///
/// Invariant: `offset ≤ region.len()`; bytes `[0, offset)` are handed out as disjoint slices
/// that live at most as long as a shared borrow of the arena; bytes `[offset, len)` are
/// referenced by nobody. All bytes are initialised (zero-filled at map time).
#[derive(Debug)]
pub struct Arena {
    region: Region,
    offset: Cell<usize>,
    padding: Cell<u64>,
    high_water: Cell<u64>,
    allocs: Cell<u64>,
    failures: Cell<u64>,
    resets: Cell<u64>,
    poison_on_reset: bool,
}

impl Arena {
    /// An arena of at least `bytes` bytes (rounded up to a page). With `poison_on_reset`,
    /// [`reset`](Self::reset) fills the used part with `0xDD` (debug: stale data cannot be
    /// mistaken for fresh).
    pub fn new(bytes: usize, poison_on_reset: bool) -> Result<Arena, SetupError> {
        let region = Region::new(bytes, HugePages::Off, false)?;
        Ok(Arena {
            region,
            offset: Cell::new(0),
            padding: Cell::new(0),
            high_water: Cell::new(0),
            allocs: Cell::new(0),
            failures: Cell::new(0),
            resets: Cell::new(0),
            poison_on_reset,
        })
    }

    /// Bytes it can hand out between resets.
    pub fn capacity(&self) -> usize {
        self.region.len()
    }

    /// `len` bytes aligned to `align` (a power of two), contents unspecified; `None` when the
    /// arena is full or `align` is not a power of two.
    // Handing out `&mut` from `&self` is the point of an arena (bumpalo does the same): the
    // slices are disjoint, and `reset` needs `&mut self`.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_bytes(&self, len: usize, align: usize) -> Option<&mut [u8]> {
        if !align.is_power_of_two() {
            self.failures.set(self.failures.get() + 1);
            return None;
        }
        let base = self.region.as_ptr().as_ptr() as usize;
        let offset = self.offset.get();
        let start = (base + offset).next_multiple_of(align) - base;
        let end = match start.checked_add(len) {
            Some(end) if end <= self.region.len() => end,
            _ => {
                self.failures.set(self.failures.get() + 1);
                return None;
            }
        };
        self.offset.set(end);
        self.padding
            .set(self.padding.get() + (start - offset) as u64);
        self.allocs.set(self.allocs.get() + 1);
        if end as u64 > self.high_water.get() {
            self.high_water.set(end as u64);
        }
        // SAFETY: [start, end) ⊂ [old offset, len): inside the region, initialised, and
        // referenced by nobody (invariant); moving `offset` past it hands it to this slice
        // alone. The slice borrows `self`, and `reset` needs `&mut self`, so it cannot outlive
        // the bytes' ownership.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.region.as_ptr().as_ptr().add(start), len)
        })
    }

    /// A copy of `src` in the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn copy_bytes(&self, src: &[u8]) -> Option<&mut [u8]> {
        let dst = self.alloc_bytes(src.len(), 1)?;
        dst.copy_from_slice(src);
        Some(dst)
    }

    /// A copy of `s` in the arena.
    pub fn copy_str(&self, s: &str) -> Option<&str> {
        let bytes = self.copy_bytes(s.as_bytes())?;
        // A byte-for-byte copy of a str is valid UTF-8.
        std::str::from_utf8(bytes).ok()
    }

    /// Frees everything at once. O(1) (O(used) with poisoning).
    pub fn reset(&mut self) {
        let used = self.offset.get();
        if self.poison_on_reset && used > 0 {
            // SAFETY: `&mut self`: no slice from this arena is alive; [0, used) is inside.
            unsafe {
                self.region
                    .as_ptr()
                    .as_ptr()
                    .write_bytes(crate::pool::POISON, used)
            };
        }
        self.offset.set(0);
        self.padding.set(0);
        self.resets.set(self.resets.get() + 1);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ArenaStats {
        ArenaStats {
            capacity: self.region.len() as u64,
            bytes_in_use: self.offset.get() as u64,
            high_water: self.high_water.get(),
            padding_bytes: self.padding.get(),
            allocs: self.allocs.get(),
            failures: self.failures.get(),
            resets: self.resets.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bump_allocations_disjoint_and_aligned() {
        let arena = Arena::new(4096, false).unwrap();
        let a = arena.copy_bytes(b"hello").unwrap();
        let b = arena.alloc_bytes(16, 8).unwrap();
        b.fill(0xAB);
        let c = arena.copy_str("world").unwrap();
        assert_eq!(b.as_ptr() as usize % 8, 0);
        assert_eq!(a, b"hello");
        assert_eq!(c, "world");
        assert!(b.iter().all(|&x| x == 0xAB));
        let s = arena.stats();
        assert_eq!(s.allocs, 3);
        assert_eq!(s.padding_bytes, 3, "5 bytes, then padding to 8");
        assert_eq!(s.bytes_in_use, 5 + 3 + 16 + 5);
    }

    #[test]
    fn test_full_arena_returns_none_then_reset_recovers() {
        let mut arena = Arena::new(4096, true).unwrap();
        assert!(arena.alloc_bytes(4000, 1).is_some());
        assert!(arena.alloc_bytes(200, 1).is_none());
        assert!(arena.alloc_bytes(8, 3).is_none(), "non power-of-two align");
        assert_eq!(arena.stats().failures, 2);
        arena.reset();
        let again = arena.alloc_bytes(4096, 1).unwrap();
        assert!(
            again[..4000].iter().all(|&x| x == crate::pool::POISON),
            "reset poisons what was used"
        );
        let s = arena.stats();
        assert_eq!((s.resets, s.high_water), (1, 4096));
    }

    #[test]
    fn test_huge_len_overflow_refused() {
        let arena = Arena::new(64, false).unwrap();
        assert!(arena.alloc_bytes(usize::MAX, 1).is_none());
        assert!(arena.alloc_bytes(usize::MAX - 2, 8).is_none());
    }

    #[test]
    fn test_per_request_reset_reuses_same_memory() {
        let mut arena = Arena::new(4096, false).unwrap();
        let mut first = 0;
        for req in 0..100u32 {
            let line = arena.copy_str("GET /index.html").unwrap();
            let p = line.as_ptr() as usize;
            if req == 0 {
                first = p;
            }
            assert_eq!(p, first, "every request starts at the arena's base");
            arena.reset();
        }
        assert_eq!(arena.stats().high_water, 15);
    }
}
