//! Signals: the self-pipe shutdown handler, EINTR demonstrations, `SIGPIPE`, `kill`.
//!
//! A signal handler may only call async-signal-safe functions (no allocation, no locks, no
//! `println!`). The classic way out is the **self-pipe trick**: the handler writes one byte into a
//! non-blocking pipe whose read end is in the server's `poll` set, and the server does the real
//! work in its own loop. [`install_shutdown_handler`] installs such a handler for `SIGINT` and
//! `SIGTERM`; the write end it writes to is a plain atomic integer, swapped to `-1` before the
//! pipe is closed.
//!
//! Handlers are installed **without `SA_RESTART`**, so a blocking call that a signal interrupts
//! returns `EINTR` and the caller decides (retry, or notice the shutdown request).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use libc::c_int;

use crate::accounting::SyscallKind;

pub use libc::{SIGINT, SIGKILL, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2};

/// The descriptor the shutdown handler writes to (`-1`: none).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// How many shutdown signals have arrived since the process started.
static SHUTDOWN_SIGNALS: AtomicU64 = AtomicU64::new(0);
/// How many signals the no-op interrupt handler has caught.
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// This thread's `errno` slot (glibc and the BSDs name the accessor differently).
fn errno_slot() -> *mut c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location takes nothing and returns this thread's errno slot.
    let slot = unsafe { libc::__errno_location() };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: __error takes nothing and returns this thread's errno slot.
    let slot = unsafe { libc::__error() };
    slot
}

extern "C" fn on_shutdown_signal(sig: c_int) {
    // Only async-signal-safe work here: atomics, write(2), errno save/restore.
    // SAFETY: the errno slot of this thread, always valid.
    let saved = unsafe { *errno_slot() };
    SHUTDOWN_SIGNALS.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` is valid for one byte. If `fd` was closed
        // concurrently the call fails with EBADF, which is ignored.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *errno_slot() = saved };
}

extern "C" fn on_interrupt_signal(_sig: c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

fn sigaction(sig: c_int, handler: libc::sighandler_t, flags: c_int) -> io::Result<()> {
    // SAFETY: sigaction is plain data; all-zero is a valid starting value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised; the old action is not requested (null). The
    // handlers installed here only touch atomics and call write(2).
    crate::syscall!(SyscallKind::RtSigaction, unsafe {
        libc::sigaction(sig, &action, std::ptr::null_mut())
    })?;
    Ok(())
}

/// Installs the self-pipe handler for `SIGINT` and `SIGTERM`: each signal writes one byte to
/// `wake` (the write end of a non-blocking pipe) and bumps [`shutdown_signal_count`].
///
/// There is one handler per process; installing again redirects it to the new pipe. Call
/// [`clear_wake_fd`] before closing `wake`.
pub fn install_shutdown_handler(wake: BorrowedFd<'_>) -> io::Result<()> {
    WAKE_FD.store(wake.as_raw_fd(), Ordering::SeqCst);
    let handler = on_shutdown_signal as extern "C" fn(c_int) as libc::sighandler_t;
    sigaction(SIGINT, handler, 0)?;
    sigaction(SIGTERM, handler, 0)?;
    Ok(())
}

/// Stops the shutdown handler from writing to `fd` (if it is the one installed).
pub fn clear_wake_fd(fd: RawFd) {
    let _ = WAKE_FD.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
}

/// Shutdown signals received so far by this process.
pub fn shutdown_signal_count() -> u64 {
    SHUTDOWN_SIGNALS.load(Ordering::SeqCst)
}

/// Installs a handler for `sig` that does nothing but count, without `SA_RESTART`: a blocking
/// syscall the signal lands in returns `EINTR`. Used to demonstrate and test EINTR handling.
pub fn install_interrupt_handler(sig: c_int) -> io::Result<()> {
    sigaction(
        sig,
        on_interrupt_signal as extern "C" fn(c_int) as libc::sighandler_t,
        0,
    )
}

/// Signals caught by the interrupt handler so far.
pub fn interrupt_count() -> u64 {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Restores the default action for `SIGPIPE` (terminate the process). Rust's runtime ignores
/// `SIGPIPE` before `main`; the echo server puts the default back so that only `MSG_NOSIGNAL`
/// protects it, as it would in a C program.
pub fn default_sigpipe() -> io::Result<()> {
    sigaction(SIGPIPE, libc::SIG_DFL, 0)
}

/// `kill(pid, sig)`.
pub fn kill(pid: u32, sig: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill takes no pointers.
    let r = unsafe { libc::kill(pid, sig) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The kernel id of the calling thread (`gettid`). Linux only: elsewhere `-1`, and
/// [`signal_thread`] refuses it.
pub fn current_tid() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    #[cfg(not(target_os = "linux"))]
    let tid = -1;
    tid
}

/// `tgkill(getpid(), tid, sig)`: delivers `sig` to one thread of this process. A `tid` that has
/// exited gives `ESRCH`; the thread-group id keeps the signal inside this process. Linux only
/// (elsewhere [`io::ErrorKind::Unsupported`]).
pub fn signal_thread(tid: i32, sig: c_int) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid takes no arguments; tgkill takes three integers.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tid, sig);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "signalling one thread by kernel id (tgkill) is Linux-only",
        ))
    }
}
