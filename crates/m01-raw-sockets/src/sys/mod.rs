//! The syscall boundary: every call this crate makes into the kernel, one thin wrapper each.
//!
//! This is the only module allowed to write `unsafe` (the crate root denies it). Each wrapper
//!
//! 1. converts Rust types to what the C ABI wants (`&[u8]` → pointer + length, [`SocketAddr`] →
//!    `sockaddr_in`/`sockaddr_in6` + `socklen_t`),
//! 2. makes exactly one libc call inside the [`syscall!`](crate::syscall) macro, which times it,
//!    maps the C convention "returns -1 and sets `errno`" to `Err(io::Error)` and records the call
//!    in [`crate::accounting`],
//! 3. converts the result back: a new descriptor becomes an [`OwnedFd`] (closed exactly once),
//!    a descriptor argument is a [`BorrowedFd`] (the caller keeps ownership).
//!
//! libc's `send`, `recv`, `getrlimit` are not the kernel's names: on Linux x86-64 they enter as
//! `sendto`, `recvfrom`, `prlimit64`, and the accounting rows use the kernel's names so that they
//! can be compared line by line with `strace -c`.
//!
//! Dropping an [`OwnedFd`] closes it without accounting; code that wants every `close` counted
//! (the echo server does) hands the descriptor to [`close`].

use std::io::{self, IoSlice};
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::{c_int, c_void, socklen_t};

use crate::accounting::SyscallKind;

pub mod process;
pub mod signal;

/// Makes one raw libc call, accounted.
///
/// `syscall!(Kind, unsafe { libc::f(args) })` reads the clock, evaluates the call, maps a return
/// value of `-1` to `Err(io::Error::last_os_error())` (reading `errno` right away, before anything
/// else can overwrite it), records kind, latency and errno class in [`crate::accounting`] and
/// evaluates to `io::Result<R>` where `R` is the call's return type. The `unsafe` block stays at
/// the call site so that its `// SAFETY:` comment sits next to the arguments it justifies.
#[macro_export]
macro_rules! syscall {
    ($kind:expr, $call:expr) => {{
        let timer = $crate::accounting::Timer::start();
        let ret = $call;
        #[allow(clippy::unnecessary_cast)]
        let result = if ret as i64 == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(ret)
        };
        $crate::accounting::record($kind, timer, &result);
        result
    }};
}

// ---------------------------------------------------------------------------------------------
// Addresses

/// A socket address in the C layout the kernel reads (`sockaddr_in` or `sockaddr_in6`).
#[derive(Copy, Clone)]
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: &SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain integers; all-zero is valid (and fills the
                // fields some systems have and others lack: sin_zero, the BSDs' sin_len).
                let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                // Network byte order (big endian) for port and address.
                sa.sin_port = a.port().to_be();
                sa.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                RawAddr::V4(sa)
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sa.sin6_scope_id = a.scope_id();
                RawAddr::V6(sa)
            }
        }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawAddr::V4(a) => (a as *const libc::sockaddr_in).cast(),
            RawAddr::V6(a) => (a as *const libc::sockaddr_in6).cast(),
        }
    }

    fn len(&self) -> socklen_t {
        match self {
            RawAddr::V4(_) => mem::size_of::<libc::sockaddr_in>() as socklen_t,
            RawAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>() as socklen_t,
        }
    }
}

/// Reads the address the kernel wrote into a `sockaddr_storage`.
fn from_storage(storage: &libc::sockaddr_storage, len: socklen_t) -> io::Result<SocketAddr> {
    match c_int::from(storage.ss_family) {
        libc::AF_INET if len as usize >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in (length checked above);
            // sockaddr_storage is larger than and at least as aligned as sockaddr_in.
            let a: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected address family {family}"),
        )),
    }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers and byte arrays; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

/// Takes ownership of a descriptor a syscall just returned.
fn owned(fd: c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful socket/accept4/pipe2/open: it is open and
    // nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---------------------------------------------------------------------------------------------
// Creating, naming, connecting

/// `socket(domain, ty, protocol)`: a new endpoint. `ty` may carry `SOCK_NONBLOCK | SOCK_CLOEXEC`.
pub fn socket(domain: c_int, ty: c_int, protocol: c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers.
    let fd = crate::syscall!(SyscallKind::Socket, unsafe {
        libc::socket(domain, ty, protocol)
    })?;
    Ok(owned(fd))
}

/// A TCP socket of `addr`'s family, close-on-exec, optionally non-blocking (flags in the
/// `socket` call on Linux; one `fcntl` each elsewhere).
pub fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    #[cfg(target_os = "linux")]
    {
        let mut ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        socket(domain, ty, libc::IPPROTO_TCP)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let fd = socket(domain, libc::SOCK_STREAM, libc::IPPROTO_TCP)?;
        set_fd_flags(fd.as_fd(), nonblocking)?;
        Ok(fd)
    }
}

/// `FD_CLOEXEC`, and `O_NONBLOCK` if asked: what Linux sets in `socket`/`accept4`/`pipe2`
/// flags, for systems that lack those flags.
#[cfg(not(target_os = "linux"))]
fn set_fd_flags(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_SETFD takes an integer.
    crate::syscall!(SyscallKind::Fcntl, unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC)
    })?;
    if nonblocking {
        set_nonblocking(fd, true)?;
    }
    Ok(())
}

/// `bind(fd, addr)`: give the socket its local address (port 0 = let the kernel pick).
pub fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    // SAFETY: `raw` is a valid sockaddr of `raw.len()` bytes that outlives the call.
    crate::syscall!(SyscallKind::Bind, unsafe {
        libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len())
    })?;
    Ok(())
}

/// `listen(fd, backlog)`: make the socket passive. The kernel caps `backlog` at
/// `net.core.somaxconn`; the accept queue holds up to `backlog + 1` finished handshakes.
pub fn listen(fd: BorrowedFd<'_>, backlog: c_int) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    crate::syscall!(SyscallKind::Listen, unsafe {
        libc::listen(fd.as_raw_fd(), backlog)
    })?;
    Ok(())
}

/// `accept4(fd, &addr, &len, SOCK_CLOEXEC [| SOCK_NONBLOCK])`: take one connection off the accept
/// queue, with the client's address. Setting the flags here saves an `fcntl` per connection
/// (systems without `accept4` get `accept` and the `fcntl`s).
pub fn accept4(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut storage = zeroed_storage();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    #[cfg(target_os = "linux")]
    let new = {
        let mut flags = libc::SOCK_CLOEXEC;
        if nonblocking {
            flags |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: `storage` and `len` are valid for writes and describe a buffer of `len` bytes.
        owned(crate::syscall!(SyscallKind::Accept4, unsafe {
            libc::accept4(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len, flags)
        })?)
    };
    #[cfg(not(target_os = "linux"))]
    let new = {
        // SAFETY: as above.
        let new = owned(crate::syscall!(SyscallKind::Accept4, unsafe {
            libc::accept(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len)
        })?);
        set_fd_flags(new.as_fd(), nonblocking)?;
        new
    };
    let peer = from_storage(&storage, len)?;
    Ok((new, peer))
}

/// `connect(fd, addr)`. On a non-blocking socket this returns `EINPROGRESS` at once; wait for
/// `POLLOUT` and read `SO_ERROR` ([`take_error`]) to learn the outcome.
pub fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let raw = RawAddr::new(addr);
    // SAFETY: `raw` is a valid sockaddr of `raw.len()` bytes that outlives the call.
    crate::syscall!(SyscallKind::Connect, unsafe {
        libc::connect(fd.as_raw_fd(), raw.as_ptr(), raw.len())
    })?;
    Ok(())
}

/// Connects with a deadline: a non-blocking `connect`, `poll(POLLOUT, timeout)`, `SO_ERROR`,
/// then back to blocking mode. Fails with [`io::ErrorKind::TimedOut`] when the handshake has
/// not finished in time (a listener whose accept queue is full drops the SYN, for instance).
pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<OwnedFd> {
    let fd = tcp_socket(addr, true)?;
    match connect(fd.as_fd(), addr) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let mut fds = [PollFd::new(fd.as_fd(), POLLOUT)];
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match poll(&mut fds, Some(left)) {
                    Ok(0) => {
                        close(fd)?;
                        return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                    }
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if let Some(err) = take_error(fd.as_fd())? {
                close(fd)?;
                return Err(err);
            }
        }
        Err(e) => {
            close(fd)?;
            return Err(e);
        }
    }
    set_nonblocking(fd.as_fd(), false)?;
    Ok(fd)
}

/// `getsockname(fd)`: the local address (the port the kernel picked for port 0).
pub fn getsockname(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let mut storage = zeroed_storage();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and describe a buffer of `len` bytes.
    crate::syscall!(SyscallKind::Getsockname, unsafe {
        libc::getsockname(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len)
    })?;
    from_storage(&storage, len)
}

/// `getpeername(fd)`: the remote address.
pub fn getpeername(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let mut storage = zeroed_storage();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and describe a buffer of `len` bytes.
    crate::syscall!(SyscallKind::Getpeername, unsafe {
        libc::getpeername(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len)
    })?;
    from_storage(&storage, len)
}

// ---------------------------------------------------------------------------------------------
// Socket options

/// `setsockopt(fd, level, name, &value, sizeof(int))` for the many options that are an `int`.
pub fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    setsockopt_raw(fd, level, name, &value)
}

/// `getsockopt(fd, level, name)` for an `int` option.
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    getsockopt_raw(fd, level, name, &mut value)?;
    Ok(value)
}

/// `getsockopt(fd, level, name, buf, &len)` for options the kernel returns as a structure
/// (`TCP_INFO`, `SO_MEMINFO`): fills the front of `buf` and returns how many bytes it wrote. A
/// newer kernel than the caller knows is cut to `buf.len()`; an older one writes fewer bytes,
/// which tells the caller which fields are missing.
pub fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = socklen_t::try_from(buf.len()).unwrap_or(socklen_t::MAX);
    // SAFETY: `buf` is valid for writes of `len` bytes (len ≤ buf.len()), and any byte pattern
    // is a valid u8.
    crate::syscall!(SyscallKind::Getsockopt, unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((len as usize).min(buf.len()))
}

/// Marker for the plain-old-data option values this module passes to the kernel.
trait OptionValue: Copy {}
impl OptionValue for c_int {}
impl OptionValue for libc::linger {}
impl OptionValue for libc::timeval {}

fn setsockopt_raw<T: OptionValue>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T of `size_of::<T>()` bytes (T is one of the
    // padding-free C structs above) for the duration of the call.
    crate::syscall!(SyscallKind::Setsockopt, unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            mem::size_of::<T>() as socklen_t,
        )
    })?;
    Ok(())
}

fn getsockopt_raw<T: OptionValue>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: &mut T,
) -> io::Result<()> {
    let mut len = mem::size_of::<T>() as socklen_t;
    // SAFETY: `value` is valid for writes of `len` bytes, and every bit pattern the kernel may
    // write is a valid T (integers only).
    crate::syscall!(SyscallKind::Getsockopt, unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *mut T).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok(())
}

/// `SO_REUSEADDR`: allow `bind` to a port that still has connections in TIME_WAIT.
pub fn set_reuseaddr(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, c_int::from(on))
}

/// Reads `SO_REUSEADDR`.
pub fn reuseaddr(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)? != 0)
}

/// `TCP_NODELAY`: turn Nagle's algorithm off, so small writes leave at once instead of waiting
/// for the previous segment's ACK.
pub fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, c_int::from(on))
}

/// Reads `TCP_NODELAY`.
pub fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
}

/// `SO_LINGER`: `None` = off (close returns at once, the kernel sends what is queued, then FIN);
/// `Some(d)` = close blocks up to `d` until the queue is acknowledged; `Some(ZERO)` = close
/// discards the queue and sends RST (no TIME_WAIT, the peer reads `ECONNRESET`).
pub fn set_linger(fd: BorrowedFd<'_>, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: c_int::from(linger.is_some()),
        l_linger: linger.map_or(0, |d| c_int::try_from(d.as_secs()).unwrap_or(c_int::MAX)),
    };
    setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_LINGER, &value)
}

/// Reads `SO_LINGER`.
pub fn linger(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    let mut value = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    getsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_LINGER, &mut value)?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

/// `SO_SNDBUF` (the kernel doubles the value to leave room for its bookkeeping).
pub fn set_send_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        c_int::try_from(bytes).unwrap_or(c_int::MAX),
    )
}

/// Reads `SO_SNDBUF`: the kernel's send buffer size in bytes.
pub fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?.max(0) as usize)
}

/// `SO_RCVBUF` (doubled by the kernel like `SO_SNDBUF`; set it before `connect`/`listen` to
/// change the window scale).
pub fn set_recv_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        c_int::try_from(bytes).unwrap_or(c_int::MAX),
    )
}

/// Reads `SO_RCVBUF`.
pub fn recv_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize)
}

#[allow(clippy::unnecessary_fallible_conversions)] // infallible on Linux (i64), not on macOS (i32)
fn timeval(d: Option<Duration>) -> libc::timeval {
    let d = d.unwrap_or(Duration::ZERO);
    libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^6: fits every system's suseconds_t (i64 on Linux, i32 on macOS).
        tv_usec: libc::suseconds_t::try_from(d.subsec_micros()).unwrap_or(0),
    }
}

/// `SO_RCVTIMEO`: a blocking `recv`/`read`/`accept` returns `EAGAIN` after this long
/// (`None` = wait forever). With a timeout set, a signal makes these calls return `EINTR` even
/// when the handler has `SA_RESTART`.
pub fn set_read_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeval(timeout))
}

/// `SO_SNDTIMEO`: a blocking `send`/`write` returns `EAGAIN` (or a short count) after this long.
pub fn set_write_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &timeval(timeout))
}

/// Reads `SO_RCVTIMEO`.
pub fn read_timeout(fd: BorrowedFd<'_>) -> io::Result<Option<Duration>> {
    let mut tv = timeval(None);
    getsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &mut tv)?;
    let d = Duration::from_secs(tv.tv_sec.max(0) as u64)
        + Duration::from_micros(tv.tv_usec.max(0) as u64);
    Ok((!d.is_zero()).then_some(d))
}

/// `SO_ERROR`: the pending asynchronous error (reading it clears it).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let errno = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((errno != 0).then(|| io::Error::from_raw_os_error(errno)))
}

// ---------------------------------------------------------------------------------------------
// Moving bytes

/// `MSG_NOSIGNAL`: a `send` to a connection whose write side is gone returns `EPIPE` instead of
/// killing the process with `SIGPIPE`.
pub const MSG_NOSIGNAL: c_int = libc::MSG_NOSIGNAL;

/// `read(fd, buf)`: `Ok(0)` is end of stream.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = crate::syscall!(SyscallKind::Read, unsafe {
        libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    Ok(n as usize)
}

/// `recv(fd, buf, flags)` (the `recvfrom` syscall): `Ok(0)` is end of stream.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = crate::syscall!(SyscallKind::Recvfrom, unsafe {
        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags)
    })?;
    Ok(n as usize)
}

/// `write(fd, buf)`: may write fewer bytes than asked (a *partial write*).
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = crate::syscall!(SyscallKind::Write, unsafe {
        libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len())
    })?;
    Ok(n as usize)
}

/// `send(fd, buf, flags)` (the `sendto` syscall); pass [`MSG_NOSIGNAL`] on sockets.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = crate::syscall!(SyscallKind::Sendto, unsafe {
        libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags)
    })?;
    Ok(n as usize)
}

/// `writev(fd, iov)`: one syscall for several buffers (header + body without copying them
/// together). Like `write`, it may be partial.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = c_int::try_from(bufs.len()).unwrap_or(c_int::MAX);
    // SAFETY: on Unix `IoSlice` is guaranteed ABI-compatible with `struct iovec`, and every
    // slice is valid for reads for the duration of the call.
    let n = crate::syscall!(SyscallKind::Writev, unsafe {
        libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast::<libc::iovec>(), count)
    })?;
    Ok(n as usize)
}

/// `shutdown(fd, how)`: half-close. `Write` sends FIN after the queued data; the socket stays
/// open for reading until [`close`].
pub fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers.
    crate::syscall!(SyscallKind::Shutdown, unsafe {
        libc::shutdown(fd.as_raw_fd(), how)
    })?;
    Ok(())
}

/// `close(fd)`, accounted. The descriptor is gone whatever the result: on Linux, `close` must
/// not be retried after `EINTR` (the number may already belong to another open).
pub fn close(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` came from an OwnedFd we consumed: it is open and owned by nobody else, and it
    // is never used again after this call.
    crate::syscall!(SyscallKind::Close, unsafe { libc::close(raw) })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Readiness: poll(2)

/// Readable (or a pending connection on a listener, or EOF).
pub const POLLIN: i16 = libc::POLLIN;
/// Writable: room in the send buffer.
pub const POLLOUT: i16 = libc::POLLOUT;
/// Error pending (always reported).
pub const POLLERR: i16 = libc::POLLERR;
/// Hang-up: both directions closed (always reported).
pub const POLLHUP: i16 = libc::POLLHUP;
/// Not an open descriptor (always reported).
pub const POLLNVAL: i16 = libc::POLLNVAL;
/// The peer shut its write side (half-close), Linux-specific.
#[cfg(target_os = "linux")]
pub const POLLRDHUP: i16 = libc::POLLRDHUP;
/// Elsewhere there is no half-close event: never reported (a read of 0 bytes tells).
#[cfg(not(target_os = "linux"))]
pub const POLLRDHUP: i16 = 0;

/// One `struct pollfd`: which descriptor, which events we want, which ones happened.
#[derive(Copy, Clone, Debug)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// Interest in `events` (`POLLIN | POLLOUT`…) on `fd`. Only the number is stored: polling a
    /// descriptor that has since been closed is not unsafe, it reports `POLLNVAL`.
    pub fn new(fd: BorrowedFd<'_>, events: i16) -> PollFd {
        PollFd(libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
    }

    /// The descriptor number.
    pub fn fd(&self) -> RawFd {
        self.0.fd
    }

    /// What poll reported.
    pub fn revents(&self) -> i16 {
        self.0.revents
    }

    /// Whether any of `mask` was reported.
    pub fn has(&self, mask: i16) -> bool {
        self.0.revents & mask != 0
    }
}

/// `poll(fds, timeout)`: sleep until one of `fds` is ready or `timeout` passes (`None` = no
/// limit). Returns how many entries have events. `poll` is never restarted after a signal: it
/// returns `EINTR`. The kernel walks the whole array on every call: O(n) per wake-up, which is
/// why m09 moves to epoll.
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so a 0.3 ms deadline does not become a busy 0 ms poll.
        Some(d) => c_int::try_from(d.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX),
    };
    // SAFETY: `PollFd` is `repr(transparent)` over `pollfd`, so the slice is a valid array of
    // `fds.len()` pollfd structs that the kernel may write `revents` into.
    let n = crate::syscall!(SyscallKind::Poll, unsafe {
        libc::poll(
            fds.as_mut_ptr().cast::<libc::pollfd>(),
            fds.len() as libc::nfds_t,
            ms,
        )
    })?;
    Ok(n as usize)
}

// ---------------------------------------------------------------------------------------------
// Descriptor flags, queue sizes, pipes

/// `fcntl(F_GETFL)` then `fcntl(F_SETFL, flags ± O_NONBLOCK)` (two calls: the flags are a
/// read-modify-write).
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = crate::syscall!(SyscallKind::Fcntl, unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_GETFL)
    })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL takes an int argument.
        crate::syscall!(SyscallKind::Fcntl, unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new)
        })?;
    }
    Ok(())
}

/// Whether `O_NONBLOCK` is set (`fcntl(F_GETFL)`).
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = crate::syscall!(SyscallKind::Fcntl, unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_GETFL)
    })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// The type of `ioctl`'s request argument (an int on Linux/glibc, an unsigned long on the
/// BSDs and macOS).
#[cfg(target_os = "linux")]
type IoctlRequest = libc::Ioctl;
#[cfg(not(target_os = "linux"))]
type IoctlRequest = libc::c_ulong;

fn ioctl_int(fd: BorrowedFd<'_>, request: IoctlRequest) -> io::Result<usize> {
    let mut value: c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int through the pointer, which is valid for writes.
    crate::syscall!(SyscallKind::Ioctl, unsafe {
        libc::ioctl(fd.as_raw_fd(), request, &mut value as *mut c_int)
    })?;
    Ok(value.max(0) as usize)
}

/// `ioctl(SIOCINQ)`: bytes received by the kernel and not yet read by us.
pub fn inq(fd: BorrowedFd<'_>) -> io::Result<usize> {
    ioctl_int(fd, libc::FIONREAD)
}

/// `ioctl(SIOCOUTQ)`: bytes we wrote that the peer has not acknowledged yet (still in the
/// kernel's send queue).
pub fn outq(fd: BorrowedFd<'_>) -> io::Result<usize> {
    ioctl_int(fd, libc::TIOCOUTQ)
}

/// `pipe2(O_NONBLOCK | O_CLOEXEC)`: (read end, write end). Used as the self-pipe that a signal
/// handler writes one byte into to wake `poll`.
pub fn pipe_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [c_int; 2] = [-1, -1];
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `fds` is valid for writes of two ints.
        crate::syscall!(SyscallKind::Pipe2, unsafe {
            libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC)
        })?;
        Ok((owned(fds[0]), owned(fds[1])))
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: `fds` is valid for writes of two ints.
        crate::syscall!(SyscallKind::Pipe2, unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        let (read, write) = (owned(fds[0]), owned(fds[1]));
        set_fd_flags(read.as_fd(), true)?;
        set_fd_flags(write.as_fd(), true)?;
        Ok((read, write))
    }
}

/// `open("/dev/null", O_RDONLY | O_CLOEXEC)`: the *reserve descriptor*. When `accept4` fails with
/// `EMFILE`, the server closes it, accepts the pending connection into the freed slot, closes
/// that connection (the client sees EOF instead of hanging in the queue) and opens the reserve
/// again.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    const PATH: &[u8] = b"/dev/null\0";
    // SAFETY: PATH is a NUL-terminated string that outlives the call.
    let fd = crate::syscall!(SyscallKind::Openat, unsafe {
        libc::open(PATH.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC)
    })?;
    Ok(owned(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_pair() -> (OwnedFd, OwnedFd) {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listener = tcp_socket(&any, false).unwrap();
        bind(listener.as_fd(), &any).unwrap();
        listen(listener.as_fd(), 8).unwrap();
        let addr = getsockname(listener.as_fd()).unwrap();
        let client = tcp_socket(&addr, false).unwrap();
        connect(client.as_fd(), &addr).unwrap();
        let (server, peer) = accept4(listener.as_fd(), false).unwrap();
        assert_eq!(peer, getsockname(client.as_fd()).unwrap());
        close(listener).unwrap();
        (client, server)
    }

    #[test]
    fn test_addr_round_trip_v4_v6() {
        for text in ["127.0.0.1:3000", "[::1]:8080"] {
            let addr: SocketAddr = text.parse().unwrap();
            let raw = RawAddr::new(&addr);
            let mut storage = zeroed_storage();
            let bytes = raw.len() as usize;
            // Copy through safe byte views to emulate what the kernel writes.
            let src: Vec<u8> = match raw {
                RawAddr::V4(a) => struct_bytes(&a),
                RawAddr::V6(a) => struct_bytes(&a),
            };
            storage_bytes_mut(&mut storage)[..bytes].copy_from_slice(&src);
            assert_eq!(from_storage(&storage, raw.len()).unwrap(), addr);
        }
    }

    fn struct_bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a padding-free C sockaddr struct; reading its bytes is defined.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), mem::size_of::<T>()) }
            .to_vec()
    }

    fn storage_bytes_mut(s: &mut libc::sockaddr_storage) -> &mut [u8] {
        // SAFETY: sockaddr_storage is plain bytes; any byte pattern is valid.
        unsafe {
            std::slice::from_raw_parts_mut(
                (s as *mut libc::sockaddr_storage).cast::<u8>(),
                mem::size_of_val(s),
            )
        }
    }

    #[test]
    fn test_socket_options_set_then_get() {
        let (client, server) = loopback_pair();
        set_nodelay(server.as_fd(), true).unwrap();
        assert!(nodelay(server.as_fd()).unwrap());
        set_reuseaddr(server.as_fd(), true).unwrap();
        assert!(reuseaddr(server.as_fd()).unwrap());
        set_linger(server.as_fd(), Some(Duration::from_secs(2))).unwrap();
        assert_eq!(
            linger(server.as_fd()).unwrap(),
            Some(Duration::from_secs(2))
        );
        set_read_timeout(server.as_fd(), Some(Duration::from_millis(250))).unwrap();
        // The kernel stores it in jiffies: read back within one tick (at most 10 ms at HZ=100).
        let back = read_timeout(server.as_fd()).unwrap().unwrap();
        assert!(
            back.abs_diff(Duration::from_millis(250)) <= Duration::from_millis(10),
            "{back:?}"
        );
        set_send_buffer_size(server.as_fd(), 8192).unwrap();
        // The kernel doubles the requested size for its own bookkeeping.
        assert_eq!(send_buffer_size(server.as_fd()).unwrap(), 16384);
        close(client).unwrap();
        close(server).unwrap();
    }

    #[test]
    fn test_send_recv_writev_round_trip() {
        let (client, server) = loopback_pair();
        assert_eq!(send(client.as_fd(), b"hello ", MSG_NOSIGNAL).unwrap(), 6);
        assert_eq!(
            writev(client.as_fd(), &[IoSlice::new(b"wor"), IoSlice::new(b"ld")]).unwrap(),
            5
        );
        assert_eq!(write(client.as_fd(), b"!").unwrap(), 1);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 12 {
            let n = recv(server.as_fd(), &mut buf, 0).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&got, b"hello world!");
        shutdown(client.as_fd(), Shutdown::Write).unwrap();
        assert_eq!(
            read(server.as_fd(), &mut buf).unwrap(),
            0,
            "EOF after the peer's FIN"
        );
        close(client).unwrap();
        close(server).unwrap();
    }

    #[test]
    fn test_nonblocking_recv_would_block() {
        let (client, server) = loopback_pair();
        set_nonblocking(server.as_fd(), true).unwrap();
        assert!(is_nonblocking(server.as_fd()).unwrap());
        let mut buf = [0u8; 8];
        let err = recv(server.as_fd(), &mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let mut fds = [PollFd::new(server.as_fd(), POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
        send(client.as_fd(), b"x", MSG_NOSIGNAL).unwrap();
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(5))).unwrap(), 1);
        assert!(fds[0].has(POLLIN));
        assert_eq!(inq(server.as_fd()).unwrap(), 1);
        close(client).unwrap();
        close(server).unwrap();
    }

    #[test]
    fn test_closed_peer_send_gives_epipe_not_sigpipe() {
        let (client, server) = loopback_pair();
        close(client).unwrap();
        // The first send is accepted (the peer answers it with RST); a later one fails with
        // EPIPE or ECONNRESET. MSG_NOSIGNAL means no SIGPIPE either way.
        let mut last = Ok(0);
        for _ in 0..100 {
            last = send(server.as_fd(), b"data", MSG_NOSIGNAL);
            if last.is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let err = last.unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
            "unexpected error {err}"
        );
        close(server).unwrap();
    }

    #[test]
    fn test_pipe_and_dev_null_open_close() {
        let (r, w) = pipe_nonblocking().unwrap();
        assert_eq!(write(w.as_fd(), b"!").unwrap(), 1);
        let mut b = [0u8; 4];
        assert_eq!(read(r.as_fd(), &mut b).unwrap(), 1);
        assert_eq!(
            read(r.as_fd(), &mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        close(r).unwrap();
        close(w).unwrap();
        close(open_dev_null().unwrap()).unwrap();
    }
}
