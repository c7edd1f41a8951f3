//! Process resources: CPU time and context switches (`getrusage`), the descriptor limit
//! (`RLIMIT_NOFILE`).

use std::io;
use std::time::Duration;

use serde::Serialize;

use crate::accounting::SyscallKind;

/// What `getrusage` reports that this milestone looks at.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rusage {
    /// CPU time spent in user space, µs.
    pub user_us: u64,
    /// CPU time spent in the kernel on our behalf (syscalls, the TCP stack), µs.
    pub system_us: u64,
    /// Voluntary context switches: we blocked (poll, a blocking read…) and gave up the CPU.
    pub voluntary_ctx_switches: u64,
    /// Involuntary context switches: the scheduler took the CPU away (time slice over).
    pub involuntary_ctx_switches: u64,
    /// Peak resident set size, KiB.
    pub max_rss_kib: u64,
}

impl Rusage {
    /// `self - earlier` for the counters (the peak RSS is kept as is).
    pub fn since(&self, earlier: &Rusage) -> Rusage {
        Rusage {
            user_us: self.user_us.saturating_sub(earlier.user_us),
            system_us: self.system_us.saturating_sub(earlier.system_us),
            voluntary_ctx_switches: self
                .voluntary_ctx_switches
                .saturating_sub(earlier.voluntary_ctx_switches),
            involuntary_ctx_switches: self
                .involuntary_ctx_switches
                .saturating_sub(earlier.involuntary_ctx_switches),
            max_rss_kib: self.max_rss_kib,
        }
    }

    /// User time as a [`Duration`].
    pub fn user(&self) -> Duration {
        Duration::from_micros(self.user_us)
    }

    /// System time as a [`Duration`].
    pub fn system(&self) -> Duration {
        Duration::from_micros(self.system_us)
    }
}

/// Whose usage to read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Who {
    /// The whole process (`RUSAGE_SELF`).
    Process,
    /// The calling thread only (`RUSAGE_THREAD`).
    Thread,
    /// Waited-for children (`RUSAGE_CHILDREN`).
    Children,
}

fn tv_us(tv: libc::timeval) -> u64 {
    (tv.tv_sec.max(0) as u64) * 1_000_000 + tv.tv_usec.max(0) as u64
}

/// `getrusage(who)`.
pub fn getrusage(who: Who) -> io::Result<Rusage> {
    let who = match who {
        Who::Process => libc::RUSAGE_SELF,
        #[cfg(any(target_os = "linux", target_os = "freebsd"))]
        Who::Thread => libc::RUSAGE_THREAD,
        #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
        Who::Thread => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "per-thread getrusage (RUSAGE_THREAD) is not available on this system",
            ));
        }
        Who::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: rusage is plain integers; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes of one rusage.
    crate::syscall!(SyscallKind::Getrusage, unsafe {
        libc::getrusage(who, &mut ru)
    })?;
    Ok(Rusage {
        user_us: tv_us(ru.ru_utime),
        system_us: tv_us(ru.ru_stime),
        voluntary_ctx_switches: ru.ru_nvcsw.max(0) as u64,
        involuntary_ctx_switches: ru.ru_nivcsw.max(0) as u64,
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
    })
}

/// `RLIMIT_NOFILE`: (soft, hard). The soft limit is what `EMFILE` enforces: a new descriptor
/// must be numbered below it.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    nofile_limit_raw().map(|(soft, hard)| (rlim_to_u64(soft), rlim_to_u64(hard)))
}

/// `rlim_t` is unsigned on Linux and macOS and signed on FreeBSD (where no limit is negative).
#[allow(clippy::unnecessary_cast)] // a no-op where rlim_t is u64
pub fn rlim_to_u64(v: libc::rlim_t) -> u64 {
    v as u64
}

/// The inverse of [`rlim_to_u64`]; a value beyond a signed `rlim_t` is "infinity".
#[allow(clippy::useless_conversion)] // u64 -> u64 where rlim_t is u64
pub fn rlim_from_u64(v: u64) -> libc::rlim_t {
    libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY)
}

fn nofile_limit_raw() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is valid for writes of one rlimit.
    crate::syscall!(SyscallKind::Prlimit64, unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim)
    })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Lowers (or raises, up to the hard limit) the soft `RLIMIT_NOFILE` of this process.
pub fn set_nofile_soft_limit(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit_raw()?;
    let lim = libc::rlimit {
        rlim_cur: rlim_from_u64(soft.min(rlim_to_u64(hard))),
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    crate::syscall!(SyscallKind::Prlimit64, unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim)
    })?;
    Ok(())
}
