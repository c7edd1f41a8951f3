//! The one place with `unsafe`: reading the CPU's time-stamp counter.

#![allow(unsafe_code)]

/// The time-stamp counter ("TSC cycles": constant-rate on modern x86, not core cycles), or
/// `None` on other architectures.
#[inline]
pub(crate) fn rdtsc() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `_rdtsc` has no preconditions; RDTSC exists on every x86_64 CPU and only
        // reads a counter.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that counts this thread's allocations (for the "parsing allocates
/// nothing" test and the allocation-pattern experiment). Install with `#[global_allocator]`.
#[derive(Debug, Default)]
pub struct CountingAlloc;

impl CountingAlloc {
    /// Allocations and bytes allocated by the calling thread so far.
    pub fn thread_counts() -> (u64, u64) {
        (
            ALLOCS.try_with(Cell::get).unwrap_or(0),
            ALLOC_BYTES.try_with(Cell::get).unwrap_or(0),
        )
    }
}

fn count(size: usize) {
    // try_with: the thread-local may be gone while a thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = ALLOC_BYTES.try_with(|c| c.set(c.get() + size as u64));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches only
// const-initialised thread-locals (no allocation, no re-entry).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout the caller gave us, forwarded to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (we forward every allocation).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr`/`layout` come from `System` via this allocator; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
