//! The few calls this crate makes that `std` and milestone 1's [`m01_raw_sockets::sys`] do not
//! wrap: the only module allowed to write `unsafe` (the crate root denies it).
//!
//! - [`CountingAlloc`]: a global allocator that counts live heap blocks (leak checks);
//! - [`drop_privileges`], [`set_nproc_limit`]: what the thread-creation-failure test needs
//!   (root ignores `RLIMIT_NPROC`, so the test process becomes `nobody` first);
//! - [`clock_ticks`]: `sysconf(_SC_CLK_TCK)`, the unit of `/proc/…/stat` CPU times;
//! - [`current_thread_stack`]: where the calling thread's stack is (`pthread_getattr_np`);
//! - [`Epoll`]: a minimal `epoll` (with or without `EPOLLEXCLUSIVE`) for the thundering-herd
//!   experiment.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
#[cfg_attr(not(target_os = "linux"), allow(unused_imports))] // epoll is Linux's
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Live heap blocks (allocations minus deallocations) through [`CountingAlloc`].
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
/// Live heap bytes through [`CountingAlloc`].
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
/// Live blocks by log2 of their size (bucket `i`: sizes in `[2^i, 2^(i+1))`).
static LIVE_BY_SIZE: [AtomicI64; 48] = [const { AtomicI64::new(0) }; 48];
/// Allocations ever made through [`CountingAlloc`].
static TOTAL_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes ever requested through [`CountingAlloc`].
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
/// Set by the first allocation: [`CountingAlloc`] is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // `const` initialisers and no destructor: touching these never allocates or registers a
    // destructor, so the allocator may use them.
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static THREAD_ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn size_bucket(size: usize) -> usize {
    (usize::BITS - size.max(1).leading_zeros() - 1).min(47) as usize
}

fn count_alloc(size: usize) {
    INSTALLED.store(true, Ordering::Relaxed);
    LIVE_BY_SIZE[size_bucket(size)].fetch_add(1, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(size as i64, Ordering::Relaxed);
    TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
    TOTAL_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    // try_with: the thread-locals may be gone while a thread shuts down.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = THREAD_ALLOC_BYTES.try_with(|c| c.set(c.get() + size as u64));
}

fn count_free(size: usize) {
    LIVE_BY_SIZE[size_bucket(size)].fetch_sub(1, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(size as i64, Ordering::Relaxed);
}

/// The system allocator, counting: live blocks and bytes (leak checks, memory per object),
/// allocations in total and per thread (allocation-free hot paths). Install it in a program with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`. The one counting allocator of
/// the workspace: later milestones re-export it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

impl CountingAlloc {
    /// Allocations and bytes allocated by the calling thread so far (a `realloc` counts as an
    /// allocation of its new size).
    pub fn thread_counts() -> (u64, u64) {
        (thread_allocations(), thread_allocated_bytes())
    }

    /// Allocations made by the whole process so far ([`total_allocations`]).
    pub fn allocations() -> u64 {
        total_allocations()
    }

    /// Bytes requested by those allocations.
    pub fn allocated_bytes() -> u64 {
        TOTAL_BYTES.load(Ordering::Relaxed)
    }

    /// Allocations made by the calling thread so far ([`thread_allocations`]).
    pub fn thread_allocations() -> u64 {
        thread_allocations()
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are atomics and const-initialised thread-locals, touched only around the forwarded call, and
// they never allocate (no re-entry).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `alloc` above (i.e. by `System`) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        count_free(layout.size());
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract; `ptr`/`layout` came from `System`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

/// Heap blocks live now (meaningful only when [`CountingAlloc`] is the global allocator).
pub fn live_blocks() -> i64 {
    LIVE_BLOCKS.load(Ordering::Relaxed)
}

/// Heap bytes live now, process-wide (meaningful only when installed).
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Live blocks by size class: `(log2 of the smallest size in the class, blocks)`, non-empty
/// classes only.
pub fn live_blocks_by_size() -> Vec<(u32, i64)> {
    LIVE_BY_SIZE
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u32, a.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// Allocations made so far, process-wide (a `realloc` counts as one).
pub fn total_allocations() -> u64 {
    TOTAL_ALLOCS.load(Ordering::Relaxed)
}

/// Allocations made by the calling thread so far (0 when not installed).
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCS.try_with(Cell::get).unwrap_or(0)
}

/// Bytes allocated by the calling thread so far (0 when not installed).
pub fn thread_allocated_bytes() -> u64 {
    THREAD_ALLOC_BYTES.try_with(Cell::get).unwrap_or(0)
}

/// Whether [`CountingAlloc`] has seen an allocation (i.e. is the global allocator).
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `setgroups([])`, `setgid(gid)`, `setuid(uid)`: the process stops being root (for every
/// thread: glibc broadcasts set*id to all threads). Irreversible; use in a child process.
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups with a zero count reads no memory.
    cvt(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: setgid/setuid take plain integers.
    cvt(unsafe { libc::setgid(gid) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::setuid(uid) })?;
    Ok(())
}

/// Sets `RLIMIT_NPROC` (soft and hard) to `limit`: the user may then own at most `limit` tasks
/// (threads count), and `clone` fails with `EAGAIN` beyond it, unless the caller is root.
pub fn set_nproc_limit(limit: u64) -> io::Result<()> {
    let limit = m01_raw_sockets::sys::process::rlim_from_u64(limit);
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &lim) })?;
    Ok(())
}

/// `sysconf(_SC_CLK_TCK)`: clock ticks per second, the unit of `utime`/`stime` in `/proc`.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes an integer and reads no memory.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The calling thread's stack as the thread library recorded it: `(lowest address, size in
/// bytes)`, from `pthread_getattr_np` + `pthread_attr_getstack`. The size excludes the guard
/// page(s), which lie just below the lowest address.
#[cfg(target_os = "linux")]
pub fn current_thread_stack() -> io::Result<(usize, usize)> {
    let pthread_err = |e: libc::c_int| io::Error::from_raw_os_error(e);
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is writable storage for one attribute object, which pthread_getattr_np
    // initialises on success.
    let e = unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) };
    if e != 0 {
        return Err(pthread_err(e));
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` was initialised above; `addr` and `size` are valid out-pointers.
    let e = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) };
    // SAFETY: `attr` was initialised by pthread_getattr_np and is destroyed exactly once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if e != 0 {
        return Err(pthread_err(e));
    }
    Ok((addr as usize, size))
}

/// Off Linux there is no `pthread_getattr_np` for the running thread: `Unsupported`.
#[cfg(not(target_os = "linux"))]
pub fn current_thread_stack() -> io::Result<(usize, usize)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "reading the running thread's stack needs pthread_getattr_np (Linux)",
    ))
}

/// A minimal epoll instance watching descriptors for readability.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

#[cfg(target_os = "linux")]
impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by a successful epoll_create1 and is owned by nobody.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// `epoll_ctl(ADD, fd, EPOLLIN [| EPOLLEXCLUSIVE])`.
    pub fn add_readable(&self, fd: BorrowedFd<'_>, exclusive: bool) -> io::Result<()> {
        let mut events = libc::EPOLLIN as u32;
        if exclusive {
            events |= libc::EPOLLEXCLUSIVE as u32;
        }
        let mut ev = libc::epoll_event {
            events,
            u64: fd.as_raw_fd() as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })?;
        Ok(())
    }

    /// `epoll_wait` for at most `timeout`; returns how many descriptors are ready.
    pub fn wait(&self, timeout: Duration) -> io::Result<usize> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` is valid for writes of `events.len()` entries.
        let n = cvt(unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ms,
            )
        })?;
        Ok(n as usize)
    }
}

/// epoll is Linux's: elsewhere the thundering-herd experiment's epoll modes are refused.
#[cfg(not(target_os = "linux"))]
impl Epoll {
    fn unsupported() -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, "epoll is Linux-only")
    }

    /// Refused: epoll is Linux-only.
    pub fn new() -> io::Result<Epoll> {
        Err(Self::unsupported())
    }

    /// Refused: epoll is Linux-only.
    pub fn add_readable(&self, _fd: BorrowedFd<'_>, _exclusive: bool) -> io::Result<()> {
        let _ = &self.fd;
        Err(Self::unsupported())
    }

    /// Refused: epoll is Linux-only.
    pub fn wait(&self, _timeout: Duration) -> io::Result<usize> {
        Err(Self::unsupported())
    }
}
