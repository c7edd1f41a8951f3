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

/// The workspace's counting allocator (milestone 3): the "parsing allocates nothing" test and
/// the allocation-pattern experiment read its per-thread counts.
pub use m03_thread_per_conn::sys::CountingAlloc;
