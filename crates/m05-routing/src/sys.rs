//! The crate's only `unsafe` code: the thread CPU clock; and the workspace's counting global
//! allocator, milestone 3's, re-exported.
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

pub use m03_thread_per_conn::sys::{CountingAlloc, is_installed, live_bytes, thread_allocations};

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
