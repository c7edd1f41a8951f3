//! The system calls of the event loop: the only module allowed to write `unsafe`.
//!
//! Thin wrappers over `libc` that turn `-1` into [`io::Error`] and nothing else: `epoll_*`,
//! `accept4` (non-blocking, close-on-exec in the same call), `recv`/`send` with
//! `MSG_NOSIGNAL` (a peer that resets never raises `SIGPIPE`), `eventfd`, socket options and
//! thread CPU time. Each `unsafe` block says why it is sound.

use std::io;
#[cfg(target_os = "linux")]
use std::mem::MaybeUninit;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
#[cfg(target_os = "linux")]
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; a non-negative return is a new descriptor we alone own.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `epoll_ctl(epfd, op, fd, {events, data: token})`.
#[cfg(target_os = "linux")]
pub fn epoll_ctl(
    epfd: BorrowedFd<'_>,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: `event` is a valid, initialised epoll_event that outlives the call (the kernel
    // copies it); for EPOLL_CTL_DEL the pointer is ignored but still valid.
    cvt(unsafe { libc::epoll_ctl(epfd.as_raw_fd(), op, fd, &mut event) })?;
    Ok(())
}

/// `epoll_wait` for at most `max` events into `events` (cleared, grown as needed); returns
/// how many were filled. `None` waits forever; `EINTR` is an error of kind `Interrupted`.
#[cfg(target_os = "linux")]
pub fn epoll_wait(
    epfd: BorrowedFd<'_>,
    events: &mut Vec<libc::epoll_event>,
    max: usize,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    events.clear();
    let max = max.clamp(1, i32::MAX as usize / 2);
    events.reserve(max);
    let max = max as libc::c_int;
    let ms = match timeout {
        None => -1,
        // Round up: a timer due in 0.3 ms must not turn into a busy 0 ms poll loop.
        Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: the kernel writes at most `max` events into the vector's allocation, whose
    // capacity is at least `max`; we set the length to what it reports having written.
    let n = cvt(unsafe { libc::epoll_wait(epfd.as_raw_fd(), events.as_mut_ptr(), max, ms) })?;
    // SAFETY: the first `n` elements were initialised by the kernel (n <= max <= capacity).
    unsafe { events.set_len(n as usize) };
    Ok(n as usize)
}

/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`: the connection and its peer address. Where there
/// is no `accept4`, milestone 1's `accept4` (`accept` plus the flags with `fcntl`).
pub fn accept_nonblocking(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SocketAddr)> {
    #[cfg(not(target_os = "linux"))]
    return m01_raw_sockets::sys::accept4(listener, true);
    #[cfg(target_os = "linux")]
    accept4_nonblocking(listener)
}

/// The hot path's `accept4`, without milestone 1's syscall accounting.
#[cfg(target_os = "linux")]
fn accept4_nonblocking(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes and `len` is a valid in/out pointer.
    let fd = cvt(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            storage.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: a new descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zero-initialised storage, partly filled by the kernel: any bit pattern is valid.
    let storage = unsafe { storage.assume_init() };
    let peer = sockaddr_to_std(&storage)
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
    Ok((fd, peer))
}

#[cfg(target_os = "linux")]
fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is larger and
            // suitably aligned for it.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `recv(fd, buf, 0)`.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    cvt_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `send(fd, buf, MSG_NOSIGNAL)`: a reset peer gives `EPIPE`, not `SIGPIPE`.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
    cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    })
}

/// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`: a counter other threads bump to wake a loop.
#[cfg(target_os = "linux")]
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; a new descriptor on success.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: a new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd (wakes its loop). A full counter (`EAGAIN`) already means "woken".
#[cfg(target_os = "linux")]
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    match cvt_size(unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) }) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads and resets an eventfd's counter (0 when it was not signalled).
#[cfg(target_os = "linux")]
pub fn eventfd_drain(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    match cvt_size(unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) }) {
        Ok(_) => Ok(value),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// One `write(2)` to stderr (best effort: a log line, not data).
pub fn write_stderr(buf: &[u8]) {
    // SAFETY: `buf` is valid for reads of its length; fd 2 is the process's stderr.
    let _ = unsafe { libc::write(2, buf.as_ptr().cast(), buf.len()) };
}

/// Drains a non-blocking pipe or socket into a scratch buffer until it would block.
pub fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `TCP_NODELAY`: responses leave when written, not when Nagle allows.
pub fn set_nodelay(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// `SO_REUSEPORT` (milestone 10: one listener per loop, the kernel spreads connections).
pub fn set_reuseport(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
}

/// `SO_LINGER {on, 0}`: close sends RST (tests of forced shutdown and resets).
pub fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: passes a pointer to a live `linger` and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// Whether `O_NONBLOCK` is set (tests).
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no pointer.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The calling thread's kernel id (Linux; 0 elsewhere, where `/proc/PID/task/TID` does not
/// exist either).
pub fn gettid() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    #[cfg(not(target_os = "linux"))]
    let tid = 0;
    tid
}

/// `RLIMIT_NOFILE` (soft, hard): milestone 1's call.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    m01_raw_sockets::sys::process::nofile_limit()
}

/// Sets the soft `RLIMIT_NOFILE` (the hard limit cannot be raised without privilege):
/// milestone 1's call.
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    m01_raw_sockets::sys::process::set_nofile_soft_limit(soft)
}

/// `sysconf(_SC_CLK_TCK)`: the unit of the CPU times in `/proc/PID/stat` (100 when unknown).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes no pointer.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}
