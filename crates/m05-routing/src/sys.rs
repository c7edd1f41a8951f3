//! The crate's only `unsafe` code: a counting global allocator, and the thread CPU clock.
//!
//! [`CountingAlloc`] wraps the system allocator and counts, per thread, every allocation
//! (`alloc`, `alloc_zeroed`, `realloc`), plus the bytes live process-wide. A program opts in:
//!
//! ```text
//! #[global_allocator]
//! static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;
//! ```
//!
//! The router then records allocations per request ([`crate::StatsSnapshot::allocs_per_request`]),
//! the `param_extract_allocs` check proves lookups allocate nothing, and the memory experiment
//! measures bytes per route.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

thread_local! {
    // `const` initialisers and no destructor: touching these never allocates or registers a
    // destructor, so the allocator may use them.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

/// The counting allocator. See the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn count(bytes: usize) {
    INSTALLED.store(true, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(bytes as i64, Ordering::Relaxed);
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System` upholds the `GlobalAlloc` contract; the counting around the calls
// touches only atomics and a const-initialised thread-local (no allocation, no reentrancy).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout the caller gave us; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` was returned by `System` (through us) with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        count(new_size);
        // SAFETY: `ptr`/`layout` came from `System` through us; the caller guarantees
        // `new_size` is valid for `layout.align()`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far (0 if [`CountingAlloc`] is not the global allocator).
pub fn thread_allocations() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

/// Bytes currently allocated, process-wide (meaningful only when installed).
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Whether [`CountingAlloc`] has seen an allocation (i.e. is the global allocator).
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// CPU time consumed by the calling thread, ns (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
///
/// Measurements on a shared machine use it instead of wall time: time the thread spends
/// descheduled (other processes on the same cores) does not count.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always available on
    // Linux; the call writes only `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
