//! The operating-system edge: anonymous memory regions (`mmap`, huge pages, `madvise`),
//! `sendfile`, `splice` through a [`Pipe`], `getrusage` with page-fault counts, a counting
//! global allocator, and a per-thread seccomp filter that forbids every user-space data path
//! ([`forbid_user_space_data_path`], the zero-copy evidence).
//!
//! One of the crate's three modules allowed `unsafe` (with `pool` and `arena`). Every block
//! carries a `// SAFETY:` note.
//!
//! Under Miri (`cfg(miri)`), which cannot `mmap`, [`Region`] takes its memory from
//! `std::alloc::alloc_zeroed` with the same alignment, so the pool, ring and arena logic above it
//! runs unchanged under the interpreter.

#[cfg(miri)]
use std::alloc::Layout;
use std::io;
#[cfg_attr(not(target_os = "linux"), allow(unused_imports))] // the raw calls are Linux's
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

/// 4 KiB: the base page size on x86-64 (regions are rounded up to it).
pub const PAGE_SIZE: usize = 4096;
/// 2 MiB: the x86-64 huge page size (`MAP_HUGETLB` regions are rounded up to it).
pub const HUGE_PAGE_SIZE: usize = 2 * 1024 * 1024;

/// Which pages back a region: the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HugePages {
    /// Base 4 KiB pages.
    #[default]
    Off,
    /// `madvise(MADV_HUGEPAGE)`: ask transparent huge pages (THP) to back the region when the
    /// kernel can (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise` or `always`).
    Transparent,
    /// `MAP_HUGETLB`: reserved 2 MiB pages from `vm.nr_hugepages`; when the reservation is empty
    /// the `mmap` fails with `ENOMEM` and the region falls back to base pages (recorded).
    Explicit,
}

/// What actually backs a region: the outcome.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backing {
    /// `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`, base pages.
    Mmap,
    /// `mmap` + `madvise(MADV_HUGEPAGE)` accepted (whether THP really backs it is the kernel's
    /// choice: see `AnonHugePages` in `/proc/self/smaps`).
    MmapThp,
    /// `mmap(MAP_HUGETLB)`: reserved 2 MiB pages.
    MmapHugeTlb,
    /// Huge pages were asked for and refused (`errno`); the region uses base pages.
    MmapFallback {
        /// The `errno` of the refused `mmap(MAP_HUGETLB)` or `madvise`.
        errno: i32,
    },
    /// `std::alloc` (Miri, which cannot `mmap`).
    Heap,
}

impl Backing {
    /// A short label for tables and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Backing::Mmap => "mmap",
            Backing::MmapThp => "mmap+thp",
            Backing::MmapHugeTlb => "mmap+hugetlb",
            Backing::MmapFallback { .. } => "mmap (huge pages refused)",
            Backing::Heap => "heap",
        }
    }
}

/// An anonymous, zero-filled, page-aligned memory region, unmapped on drop.
///
/// Invariant: `ptr` points to `len` bytes, readable and writable, initialised (zero-filled at
/// creation), aligned to [`PAGE_SIZE`], owned by this value alone until it is dropped.
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

// SAFETY: the region is plain memory owned by this value; nothing in it is tied to a thread.
unsafe impl Send for Region {}
// SAFETY: `&Region` only exposes the base pointer and length; writes through the pointer are
// the callers' business (the pool and arena enforce exclusivity above this layer).
unsafe impl Sync for Region {}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Region {
    /// Maps `len` bytes (rounded up to a page, or to 2 MiB for [`HugePages::Explicit`]).
    /// `populate` pre-faults every page (`MAP_POPULATE`), so first touches cost no page fault.
    pub fn new(len: usize, huge: HugePages, populate: bool) -> io::Result<Region> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a region needs at least one byte",
            ));
        }
        Region::map(len, huge, populate)
    }

    #[cfg(miri)]
    fn map(len: usize, _huge: HugePages, _populate: bool) -> io::Result<Region> {
        let len = round_up(len, PAGE_SIZE);
        let layout = Layout::from_size_align(len, PAGE_SIZE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (len >= 1 rounded up to a page).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(Region {
            ptr,
            len,
            backing: Backing::Heap,
        })
    }

    #[cfg(not(miri))]
    fn map(len: usize, huge: HugePages, populate: bool) -> io::Result<Region> {
        #[cfg(target_os = "linux")]
        let populate_flag = if populate { libc::MAP_POPULATE } else { 0 };
        // No MAP_POPULATE elsewhere: the pages are touched once mapped (below).
        #[cfg(not(target_os = "linux"))]
        let populate_flag = 0;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate_flag;
        #[cfg(not(target_os = "linux"))]
        if huge != HugePages::Off {
            // MAP_HUGETLB and MADV_HUGEPAGE are Linux's: report the fallback, as Linux does
            // when the kernel refuses them.
            let len = round_up(len, PAGE_SIZE);
            let ptr = mmap_anon(len, flags)?;
            if populate {
                prefault(ptr, len);
            }
            return Ok(Region {
                ptr,
                len,
                backing: Backing::MmapFallback {
                    errno: libc::EOPNOTSUPP,
                },
            });
        }
        #[cfg(target_os = "linux")]
        if huge == HugePages::Explicit {
            let huge_len = round_up(len, HUGE_PAGE_SIZE);
            match mmap_anon(huge_len, flags | libc::MAP_HUGETLB) {
                Ok(ptr) => {
                    return Ok(Region {
                        ptr,
                        len: huge_len,
                        backing: Backing::MmapHugeTlb,
                    });
                }
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    let len = round_up(len, PAGE_SIZE);
                    let ptr = mmap_anon(len, flags)?;
                    return Ok(Region {
                        ptr,
                        len,
                        backing: Backing::MmapFallback { errno },
                    });
                }
            }
        }
        let len = round_up(len, PAGE_SIZE);
        let ptr = mmap_anon(len, flags)?;
        #[cfg(not(target_os = "linux"))]
        if populate {
            prefault(ptr, len);
        }
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))] // THP is Linux's
        let mut backing = Backing::Mmap;
        #[cfg(target_os = "linux")]
        if huge == HugePages::Transparent {
            // SAFETY: [ptr, ptr+len) is the mapping just created; madvise only changes how the
            // kernel backs it.
            let rc = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) };
            backing = if rc == 0 {
                Backing::MmapThp
            } else {
                Backing::MmapFallback {
                    errno: io::Error::last_os_error().raw_os_error().unwrap_or(0),
                }
            };
        }
        Ok(Region { ptr, len, backing })
    }

    /// The base address (page-aligned).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Its length in bytes (after rounding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (a region has at least one page); for the `len`/`is_empty` pair.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What backs it.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Writes one byte at `offset` (volatile: a real memory access, e.g. to fault a page in).
    /// Returns false if `offset` is outside the region. The region hands out no references
    /// to its bytes, so a write through `&self` cannot alias one.
    pub fn write_byte(&self, offset: usize, byte: u8) -> bool {
        if offset >= self.len {
            return false;
        }
        // SAFETY: offset < len: inside the mapping, which `self` owns; u8 has no alignment.
        unsafe { self.ptr.as_ptr().add(offset).write_volatile(byte) };
        true
    }

    /// Reads the 8 bytes at `offset` (volatile), or `None` past the end.
    pub fn read_u64(&self, offset: usize) -> Option<u64> {
        if offset.checked_add(8)? > self.len {
            return None;
        }
        // SAFETY: [offset, offset+8) is inside the mapping, initialised; unaligned read.
        Some(unsafe { self.ptr.as_ptr().add(offset).cast::<u64>().read_unaligned() })
    }
}

#[cfg(not(miri))]
/// Touches every page of a fresh mapping (what `MAP_POPULATE` does on Linux).
#[cfg(all(not(miri), not(target_os = "linux")))]
fn prefault(ptr: NonNull<u8>, len: usize) {
    for offset in (0..len).step_by(PAGE_SIZE) {
        // SAFETY: offset < len: inside the mapping just created, which nothing else uses yet;
        // writing the zero it already holds only makes the kernel back the page.
        unsafe { ptr.as_ptr().add(offset).write_volatile(0) };
    }
}

fn mmap_anon(len: usize, flags: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

impl Drop for Region {
    fn drop(&mut self) {
        #[cfg(miri)]
        {
            if let Ok(layout) = Layout::from_size_align(self.len, PAGE_SIZE) {
                // SAFETY: allocated in `map` with this very layout; dropped once.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
            }
        }
        #[cfg(not(miri))]
        {
            // SAFETY: [ptr, ptr+len) is exactly the mapping made in `map`, unmapped once; the
            // borrow checker guarantees no slice into it outlives `self`.
            let _ = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

/// `sendfile(out, in, &offset, count)`: the kernel moves up to `count` bytes of the file from
/// `offset` to the socket without a copy through user space. Returns bytes sent (advancing
/// `offset`); `Ok(0)` at end of file.
pub fn sendfile(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        let mut off = libc::off_t::try_from(*offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond off_t"))?;
        // SAFETY: both descriptors are borrowed (open for the call); `off` is a valid off_t
        // the kernel reads and updates.
        let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        *offset = off as u64;
        Ok(n as usize)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (out, file, offset, count);
        Err(linux_only("sendfile(2) with Linux's signature"))
    }
}

/// The error of a Linux-only call on another system.
#[cfg(not(target_os = "linux"))]
fn linux_only(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{what} is Linux-only"))
}

/// Bytes a [`Pipe`] asks the kernel for by default (`F_SETPIPE_SZ`): 1 MiB, the unprivileged
/// ceiling (`/proc/sys/fs/pipe-max-size`). A default pipe holds 64 KiB (16 pages), so a
/// file → pipe → socket round moves at most that much per pair of `splice` calls.
pub const PIPE_BYTES: usize = 1 << 20;

/// An anonymous pipe (`pipe2(O_CLOEXEC)`), the in-kernel buffer `splice` needs between a file
/// and a socket: page references move file → pipe → socket, no byte is copied through user
/// space. Both ends close on drop.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe with the default capacity (64 KiB).
    pub fn new() -> io::Result<Pipe> {
        #[cfg(target_os = "linux")]
        {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: `fds` is valid for writes of two ints.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            Ok(Pipe {
                read,
                write,
                capacity: 64 * 1024,
            })
        }
        // splice needs Linux; so does the pipe it is for.
        #[cfg(not(target_os = "linux"))]
        Err(linux_only("splice's pipe (pipe2)"))
    }

    /// A pipe asked to hold `bytes` (`F_SETPIPE_SZ`; the kernel rounds up to a power-of-two
    /// number of pages). If the kernel refuses (above `pipe-max-size` without privilege), the
    /// pipe keeps its default size: [`capacity`](Self::capacity) says what it got.
    pub fn with_capacity(bytes: usize) -> io::Result<Pipe> {
        #[allow(unused_mut)] // only Linux resizes it
        let mut pipe = Pipe::new()?;
        #[cfg(target_os = "linux")]
        {
            let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; the argument is an int.
            let got = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
            if got > 0 {
                pipe.capacity = got as usize;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = bytes;
        Ok(pipe)
    }

    /// Bytes the pipe holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The read end.
    pub fn reader(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The write end.
    pub fn writer(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

/// `splice(in, off_in, out, NULL, len, flags)`: moves up to `len` bytes from `from` to `to`
/// inside the kernel; one of the two must be a pipe. With `offset` (a file), reads from there
/// and advances it, leaving the file position alone; `None` reads at the current position (a
/// pipe or socket). `more` sets `SPLICE_F_MORE` (more data follows: the socket may hold a
/// partial segment). `SPLICE_F_MOVE` is always set. Returns bytes moved; `Ok(0)` at end of
/// input.
pub fn splice(
    from: BorrowedFd<'_>,
    offset: Option<&mut u64>,
    to: BorrowedFd<'_>,
    len: usize,
    more: bool,
) -> io::Result<usize> {
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (from, offset, to, len, more);
        Err(linux_only("splice(2)"))
    }
    #[cfg(target_os = "linux")]
    splice_linux(from, offset, to, len, more)
}

#[cfg(target_os = "linux")]
fn splice_linux(
    from: BorrowedFd<'_>,
    offset: Option<&mut u64>,
    to: BorrowedFd<'_>,
    len: usize,
    more: bool,
) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | if more { libc::SPLICE_F_MORE } else { 0 };
    let mut off: libc::loff_t = 0;
    let off_ptr = match &offset {
        Some(o) => {
            off = libc::loff_t::try_from(**o)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond loff_t"))?;
            &mut off as *mut libc::loff_t
        }
        None => std::ptr::null_mut(),
    };
    // SAFETY: both descriptors are borrowed (open for the call); `off_ptr` is null or points
    // at `off`, a valid loff_t the kernel reads and updates; no user memory is passed.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            off_ptr,
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(o) = offset {
        *o = off as u64;
    }
    Ok(n as usize)
}

/// What [`rusage`] reports: CPU time and page faults.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// User CPU time.
    pub user: Duration,
    /// System CPU time.
    pub system: Duration,
    /// Minor page faults (a page mapped without I/O: first touch of anonymous memory).
    pub minor_faults: u64,
    /// Major page faults (I/O needed).
    pub major_faults: u64,
}

impl Usage {
    /// `self - earlier`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
        }
    }

    /// User + system.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// `getrusage`: the calling thread's (`thread = true`, `RUSAGE_THREAD`) or the process's usage.
pub fn rusage(thread: bool) -> io::Result<Usage> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    let who = if thread {
        libc::RUSAGE_THREAD
    } else {
        libc::RUSAGE_SELF
    };
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    let who = if thread {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "per-thread getrusage (RUSAGE_THREAD) is not available on this system",
        ));
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes of one rusage.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok(Usage {
        user: tv(ru.ru_utime),
        system: tv(ru.ru_stime),
        minor_faults: ru.ru_minflt.max(0) as u64,
        major_faults: ru.ru_majflt.max(0) as u64,
    })
}

// ---------------------------------------------------------------------------------------------
// No user-space data path: a per-thread seccomp filter

/// Installs on the **calling thread only** (no `SECCOMP_FILTER_FLAG_TSYNC`; the filter dies
/// with the thread) a seccomp filter under which every system call that moves data between a
/// descriptor and user memory fails with `EPERM`: `read`, `write`, `pread64`, `pwrite64`,
/// `readv`, `writev`, `preadv`, `pwritev`, `preadv2`, `pwritev2`, `recvfrom`, `sendto`,
/// `recvmsg`, `sendmsg`, `recvmmsg`, `sendmmsg`, `vmsplice`, `process_vm_readv`,
/// `process_vm_writev`, `io_setup`/`io_submit` (AIO), `io_uring_setup`/`io_uring_enter`, and
/// `mmap` of a descriptor (anonymous `mmap`, fd = -1, stays allowed for the allocator). A
/// foreign architecture or the x32 ABI is refused outright. Everything else (`sendfile`,
/// `splice`, `pipe2`, `fcntl`, `close`, …) is allowed.
///
/// With it, a file body that still arrives byte-exact at the peer cannot have passed through
/// this thread's memory: the evidence that `sendfile` and `splice` are zero-copy, with
/// `read` + `write` (which must fail with `EPERM` under it) as the control that shows the
/// filter bites. Irreversible for the thread (it also sets `PR_SET_NO_NEW_PRIVS`): call it
/// on a thread made for the purpose. Linux on x86-64 or aarch64 only.
pub fn forbid_user_space_data_path() -> io::Result<()> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        seccomp_forbid_user_space_data_path()
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the seccomp data-path filter is for Linux on x86-64 or aarch64",
        ))
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn seccomp_forbid_user_space_data_path() -> io::Result<()> {
    use libc::{
        BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO, sock_filter, sock_fprog,
    };
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
    // struct seccomp_data: nr at 0, arch at 4, ip at 8, args[6] (u64) from 16.
    const NR: u32 = 0;
    const ARCH_OFF: u32 = 4;
    const ARG4_LO: u32 = 16 + 4 * 8; // mmap's fd, low word (little-endian)
    let deny = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let denied: Vec<u32> = [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_preadv,
        libc::SYS_pwritev,
        libc::SYS_preadv2,
        libc::SYS_pwritev2,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_recvmmsg,
        libc::SYS_sendmmsg,
        libc::SYS_vmsplice,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_io_setup,
        libc::SYS_io_submit,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
    ]
    .into_iter()
    .map(|n| n as u32)
    .collect();
    let mut prog = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
        jeq(ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, deny),
        stmt(BPF_LD | BPF_W | BPF_ABS, NR),
        // x32 system calls (bit 30 set) on x86-64: refused.
        sock_filter {
            code: (BPF_JMP | BPF_JGE | BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        stmt(BPF_RET | BPF_K, deny),
    ];
    for &nr in &denied {
        prog.push(jeq(nr, 0, 1));
        prog.push(stmt(BPF_RET | BPF_K, deny));
    }
    // mmap: allowed only anonymous (fd == -1; low word 0xffff_ffff).
    prog.push(jeq(libc::SYS_mmap as u32, 0, 3));
    prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, ARG4_LO));
    prog.push(jeq(u32::MAX, 1, 0));
    prog.push(stmt(BPF_RET | BPF_K, deny));
    prog.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    let fprog = sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::other("filter too long"))?,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, a live array of `len` sock_filter instructions, for
    // the duration of the call (the kernel copies the program); no flags, so only the calling
    // thread is filtered.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Counting allocator

/// The workspace's counting global allocator (milestone 3's), behind the zero-allocation
/// checks: `CountingAlloc::allocations()`, `allocated_bytes()`, `thread_allocations()`.
pub use m03_thread_per_conn::sys::CountingAlloc;

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn test_region_mapped_zeroed_and_page_aligned() {
        let r = Region::new(10_000, HugePages::Off, false).unwrap();
        assert_eq!(r.len(), 12_288);
        assert_eq!(r.as_ptr().as_ptr() as usize % PAGE_SIZE, 0);
        assert_eq!(r.backing(), Backing::Mmap);
        // SAFETY: the region is 12,288 initialised bytes owned by `r`.
        let bytes = unsafe { std::slice::from_raw_parts(r.as_ptr().as_ptr(), r.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn test_hugetlb_refused_falls_back_to_base_pages() {
        // Whether the machine has reserved huge pages or not, the region must be usable and
        // say what backs it.
        let r = Region::new(HUGE_PAGE_SIZE, HugePages::Explicit, false).unwrap();
        match r.backing() {
            Backing::MmapHugeTlb => assert_eq!(r.len() % HUGE_PAGE_SIZE, 0),
            Backing::MmapFallback { errno } => assert_ne!(errno, 0),
            other => panic!("unexpected backing {other:?}"),
        }
        let t = Region::new(HUGE_PAGE_SIZE, HugePages::Transparent, false).unwrap();
        assert!(matches!(
            t.backing(),
            Backing::MmapThp | Backing::MmapFallback { .. }
        ));
    }

    #[test]
    fn test_populated_region_touch_costs_no_faults() {
        let len = 8 * 1024 * 1024;
        let lazy = Region::new(len, HugePages::Off, false).unwrap();
        let before = rusage(true).unwrap();
        touch(&lazy);
        let lazy_faults = rusage(true).unwrap().since(&before).minor_faults;
        let eager = Region::new(len, HugePages::Off, true).unwrap();
        let before = rusage(true).unwrap();
        touch(&eager);
        let eager_faults = rusage(true).unwrap().since(&before).minor_faults;
        // 2,048 pages touched: lazily at least one fault per 4 KiB page unless THP is "always"
        // (then one per 2 MiB); pre-faulted, (nearly) none.
        assert!(lazy_faults >= 4, "lazy {lazy_faults}");
        assert!(
            eager_faults < lazy_faults,
            "{eager_faults} vs {lazy_faults}"
        );
    }

    fn touch(r: &Region) {
        let mut i = 0;
        while i < r.len() {
            // SAFETY: i < len, inside the region, which `r` owns.
            unsafe { r.as_ptr().as_ptr().add(i).write_volatile(1) };
            i += PAGE_SIZE;
        }
    }

    #[test]
    fn test_sendfile_file_to_socket_round_trip() {
        let dir = std::env::temp_dir().join(format!("m07-sendfile-{}", std::process::id()));
        std::fs::write(&dir, vec![7u8; 300_000]).unwrap();
        let file = std::fs::File::open(&dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let mut out = TcpStream::connect(addr).unwrap();
        out.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut off = 0u64;
        while off < 300_000 {
            let n = sendfile(out.as_fd(), file.as_fd(), &mut off, 300_000).unwrap();
            assert!(n > 0);
        }
        out.flush().unwrap();
        drop(out);
        let got = reader.join().unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(got.len(), 300_000);
        assert!(got.iter().all(|&b| b == 7));
    }

    #[test]
    fn test_splice_file_to_socket_round_trip() {
        let path = std::env::temp_dir().join(format!("m07-splice-{}", std::process::id()));
        // An odd length and a pattern that is not page-periodic: every byte is checked.
        let content: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let out = TcpStream::connect(addr).unwrap();
        out.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let pipe = Pipe::with_capacity(PIPE_BYTES).unwrap();
        assert!(pipe.capacity() >= 64 * 1024);
        let len = content.len() as u64;
        let mut off = 0u64;
        while off < len {
            let want = (len - off) as usize;
            let n = splice(file.as_fd(), Some(&mut off), pipe.writer(), want, true).unwrap();
            assert!(n > 0, "file ended early at {off}");
            let mut left = n;
            while left > 0 {
                let m = splice(pipe.reader(), None, out.as_fd(), left, off < len).unwrap();
                assert!(m > 0);
                left -= m;
            }
        }
        assert_eq!(off, len);
        drop(out);
        let got = reader.join().unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(got.len(), content.len());
        assert!(got == content, "spliced bytes differ");
    }
}
