//! The only module with `unsafe`: thin wrappers over the Linux calls that neither `std`, `mio` nor
//! `socket2` expose — `IP_BIND_ADDRESS_NO_PORT`, `sched_setaffinity`, `getrlimit`, a `timerfd` for
//! microsecond-precise open-loop wake-ups, and `kill` for stopping peer processes.
//!
//! Every call goes through [`syscall!`], which maps `-1` to [`io::Error::last_os_error`] (mio's
//! `sys/unix/mod.rs` pattern). File descriptors are held in [`OwnedFd`].
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Call a libc function and turn a `-1` result into the thread's last OS error.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: each call site documents why its arguments are valid for `$fn`.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 { Err(io::Error::last_os_error()) } else { Ok(res) }
    }};
}

/// Set `IP_BIND_ADDRESS_NO_PORT` on a socket so that `bind(ip:0)` picks no ephemeral port yet:
/// the port is chosen at `connect` time and only the 4-tuple must be unique, so many client
/// source addresses each get the whole port range.
pub(crate) fn set_bind_address_no_port(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // `fd` is a socket owned by the caller for the duration of the call; `&one` points to a live
    // c_int and the length passed is exactly its size.
    syscall!(setsockopt(
        fd,
        libc::IPPROTO_IP,
        libc::IP_BIND_ADDRESS_NO_PORT,
        (&one as *const libc::c_int).cast::<libc::c_void>(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    ))?;
    Ok(())
}

/// Pin the calling thread to the given CPUs (`sched_setaffinity(0, …)`).
///
/// Children spawned afterwards from this thread inherit the mask, which is how peers (nginx,
/// wrk) are pinned without `pre_exec`.
pub(crate) fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zeroes is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus {
        if cpu >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range (max {})", max - 1),
            ));
        }
        // SAFETY: `cpu < CPU_SETSIZE` was checked above, so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // pid 0 means the calling thread; `&set` is a valid cpu_set_t of the size passed.
    syscall!(sched_setaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &set
    ))?;
    Ok(())
}

/// The calling thread's CPU affinity mask as a list of CPU numbers.
#[cfg(test)]
pub(crate) fn current_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: all-zeroes is a valid (empty) `cpu_set_t`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // pid 0 is the calling thread; `&mut set` is writable and of the size passed.
    syscall!(sched_getaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))?;
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: every index is `< CPU_SETSIZE`, and CPU_ISSET only reads `set`.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The soft `RLIMIT_NOFILE` of this process (open file descriptors).
pub(crate) fn nofile_soft_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // `&mut lim` points to a writable rlimit struct.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok(lim.rlim_cur)
}

/// Send `signal` to process `pid` (or, with a negative `pid`, to its process group).
pub(crate) fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // kill(2) takes plain integers and touches no memory of ours.
    syscall!(kill(pid, signal))?;
    Ok(())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/*/stat` CPU times.
pub(crate) fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd, registered with mio by its raw fd.
#[derive(Debug)]
pub(crate) struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// Create a disarmed, non-blocking, close-on-exec timer.
    pub(crate) fn new() -> io::Result<TimerFd> {
        // Plain integer flags; the result is a new fd we take ownership of below.
        let raw = syscall!(timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC
        ))?;
        // SAFETY: `raw` was just returned by timerfd_create, is valid and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(TimerFd { fd })
    }

    /// Arm the timer to fire once, `after` from now (a zero duration fires after 1 ns, since a
    /// zero `it_value` would disarm it).
    pub(crate) fn arm(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // `self.fd` is a live timerfd, `&spec` a valid itimerspec, and a null old-value pointer
        // is allowed by timerfd_settime(2).
        syscall!(timerfd_settime(
            self.fd.as_raw_fd(),
            0,
            &spec,
            std::ptr::null_mut()
        ))?;
        Ok(())
    }

    /// Consume pending expirations so the next one is reported as a fresh readiness edge.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 8];
        // `buf` is 8 writable bytes, the size timerfd reads require; EAGAIN just means no
        // expiration was pending, which is fine to ignore.
        let _ = syscall!(read(
            self.fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len()
        ));
    }

    /// The raw fd, for `mio::unix::SourceFd`.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_nofile_limit_is_positive() {
        assert!(nofile_soft_limit().is_ok_and(|n| n > 0));
    }

    #[test]
    fn test_affinity_roundtrip_keeps_current_mask() {
        let cpus = current_affinity().expect("sched_getaffinity");
        assert!(!cpus.is_empty());
        pin_current_thread(&cpus).expect("sched_setaffinity");
        assert_eq!(current_affinity().expect("sched_getaffinity"), cpus);
    }

    #[test]
    fn test_affinity_rejects_out_of_range_cpu() {
        assert!(pin_current_thread(&[1 << 20]).is_err());
    }
}
