//! Syscall accounting: a global, lock-free table of counters and latency histograms.
//!
//! Every wrapper in [`crate::sys`] goes through the [`syscall!`](crate::syscall) macro, which
//! calls [`Timer::start`] before the raw libc call and [`record`] after it. `record` adds one to
//! the call count of that [`SyscallKind`], one to the error count of the errno's [`ErrnoClass`]
//! when the call returned -1, and the elapsed nanoseconds to a log2-bucket histogram.
//!
//! The table is a `static` array of atomics: no allocation, no lock, `Relaxed` ordering
//! (counters need no ordering with other memory). Recording costs two `clock_gettime` calls
//! through the vDSO (no kernel entry) and a handful of uncontended atomic adds; the
//! `accounting_overhead` bench measures it against [`set_enabled(false)`](set_enabled), where
//! the wrapper does a single relaxed load and nothing else.
//!
//! Read it with [`snapshot`], which returns a plain [`SyscallTable`]; subtract two snapshots
//! with [`SyscallTable::since`] to get the calls of one run, and render it for Prometheus with
//! [`SyscallTable::to_prometheus`].

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// The syscalls the wrappers in [`crate::sys`] make, one counter set each.
///
/// The names are the kernel's (what `strace` prints): `send(2)` is the libc name, but on
/// Linux x86-64 it enters the kernel as `sendto`, so the row is called `sendto`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyscallKind {
    /// `socket(2)`: create an endpoint.
    Socket,
    /// `setsockopt(2)`.
    Setsockopt,
    /// `getsockopt(2)`.
    Getsockopt,
    /// `bind(2)`: give the socket its local address.
    Bind,
    /// `listen(2)`: mark it passive, with a backlog.
    Listen,
    /// `accept4(2)`: take one connection off the accept queue.
    Accept4,
    /// `connect(2)`.
    Connect,
    /// `getsockname(2)`.
    Getsockname,
    /// `getpeername(2)`.
    Getpeername,
    /// `read(2)`.
    Read,
    /// `recv(2)`, which is the `recvfrom` syscall.
    Recvfrom,
    /// `write(2)`.
    Write,
    /// `send(2)`, which is the `sendto` syscall.
    Sendto,
    /// `writev(2)`: gather write.
    Writev,
    /// `shutdown(2)`: half-close.
    Shutdown,
    /// `close(2)`.
    Close,
    /// `poll(2)`: wait for readiness.
    Poll,
    /// `fcntl(2)`: file status flags (`O_NONBLOCK`).
    Fcntl,
    /// `ioctl(2)`: `SIOCINQ` / `SIOCOUTQ` queue sizes.
    Ioctl,
    /// `pipe2(2)`: the self-pipe.
    Pipe2,
    /// `open(2)` (the reserve descriptor on `/dev/null`).
    Openat,
    /// `getrusage(2)`: user/system CPU time, context switches.
    Getrusage,
    /// `prlimit64(2)` (`getrlimit`/`setrlimit`).
    Prlimit64,
    /// `rt_sigaction(2)`: install a signal handler.
    RtSigaction,
    /// `epoll_create1(2)` (reserved for the m09 event loop).
    EpollCreate1,
    /// `epoll_ctl(2)` (reserved for the m09 event loop).
    EpollCtl,
    /// `epoll_wait(2)` (reserved for the m09 event loop).
    EpollWait,
}

impl SyscallKind {
    /// Every kind, in table order.
    pub const ALL: [SyscallKind; 27] = [
        SyscallKind::Socket,
        SyscallKind::Setsockopt,
        SyscallKind::Getsockopt,
        SyscallKind::Bind,
        SyscallKind::Listen,
        SyscallKind::Accept4,
        SyscallKind::Connect,
        SyscallKind::Getsockname,
        SyscallKind::Getpeername,
        SyscallKind::Read,
        SyscallKind::Recvfrom,
        SyscallKind::Write,
        SyscallKind::Sendto,
        SyscallKind::Writev,
        SyscallKind::Shutdown,
        SyscallKind::Close,
        SyscallKind::Poll,
        SyscallKind::Fcntl,
        SyscallKind::Ioctl,
        SyscallKind::Pipe2,
        SyscallKind::Openat,
        SyscallKind::Getrusage,
        SyscallKind::Prlimit64,
        SyscallKind::RtSigaction,
        SyscallKind::EpollCreate1,
        SyscallKind::EpollCtl,
        SyscallKind::EpollWait,
    ];

    /// The kernel's name for it, as `strace -c` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            SyscallKind::Socket => "socket",
            SyscallKind::Setsockopt => "setsockopt",
            SyscallKind::Getsockopt => "getsockopt",
            SyscallKind::Bind => "bind",
            SyscallKind::Listen => "listen",
            SyscallKind::Accept4 => "accept4",
            SyscallKind::Connect => "connect",
            SyscallKind::Getsockname => "getsockname",
            SyscallKind::Getpeername => "getpeername",
            SyscallKind::Read => "read",
            SyscallKind::Recvfrom => "recvfrom",
            SyscallKind::Write => "write",
            SyscallKind::Sendto => "sendto",
            SyscallKind::Writev => "writev",
            SyscallKind::Shutdown => "shutdown",
            SyscallKind::Close => "close",
            SyscallKind::Poll => "poll",
            SyscallKind::Fcntl => "fcntl",
            SyscallKind::Ioctl => "ioctl",
            SyscallKind::Pipe2 => "pipe2",
            SyscallKind::Openat => "openat",
            SyscallKind::Getrusage => "getrusage",
            SyscallKind::Prlimit64 => "prlimit64",
            SyscallKind::RtSigaction => "rt_sigaction",
            SyscallKind::EpollCreate1 => "epoll_create1",
            SyscallKind::EpollCtl => "epoll_ctl",
            SyscallKind::EpollWait => "epoll_wait",
        }
    }

    /// Looks a kind up by its kernel name.
    pub fn from_name(name: &str) -> Option<SyscallKind> {
        SyscallKind::ALL.into_iter().find(|k| k.name() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SyscallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a failed call's errno says, grouped by what the caller does about it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrnoClass {
    /// `EAGAIN`/`EWOULDBLOCK`: a non-blocking call that would have blocked; wait for readiness.
    WouldBlock,
    /// `EINTR`: a signal interrupted a blocking call; retry it.
    Interrupted,
    /// `ECONNRESET`: the peer sent RST.
    ConnReset,
    /// `EPIPE`: writing to a connection whose write side is gone.
    BrokenPipe,
    /// `EMFILE`/`ENFILE`: out of file descriptors (per process / system-wide).
    FdLimit,
    /// `ETIMEDOUT`.
    TimedOut,
    /// `EINPROGRESS`: a non-blocking `connect` has started.
    InProgress,
    /// `ECONNREFUSED`: nobody listens there.
    ConnRefused,
    /// Anything else.
    Other,
}

impl ErrnoClass {
    /// Every class, in table order.
    pub const ALL: [ErrnoClass; 9] = [
        ErrnoClass::WouldBlock,
        ErrnoClass::Interrupted,
        ErrnoClass::ConnReset,
        ErrnoClass::BrokenPipe,
        ErrnoClass::FdLimit,
        ErrnoClass::TimedOut,
        ErrnoClass::InProgress,
        ErrnoClass::ConnRefused,
        ErrnoClass::Other,
    ];

    /// Classifies a raw errno value.
    pub fn of_errno(errno: i32) -> ErrnoClass {
        match errno {
            libc::EAGAIN => ErrnoClass::WouldBlock,
            libc::EINTR => ErrnoClass::Interrupted,
            libc::ECONNRESET => ErrnoClass::ConnReset,
            libc::EPIPE => ErrnoClass::BrokenPipe,
            libc::EMFILE | libc::ENFILE => ErrnoClass::FdLimit,
            libc::ETIMEDOUT => ErrnoClass::TimedOut,
            libc::EINPROGRESS => ErrnoClass::InProgress,
            libc::ECONNREFUSED => ErrnoClass::ConnRefused,
            _ => ErrnoClass::Other,
        }
    }

    /// Classifies an [`io::Error`] (one without an errno is [`ErrnoClass::Other`]).
    pub fn of(err: &io::Error) -> ErrnoClass {
        err.raw_os_error()
            .map_or(ErrnoClass::Other, ErrnoClass::of_errno)
    }

    /// The label used in tables and Prometheus (`EAGAIN`, `EINTR`, …).
    pub const fn label(self) -> &'static str {
        match self {
            ErrnoClass::WouldBlock => "EAGAIN",
            ErrnoClass::Interrupted => "EINTR",
            ErrnoClass::ConnReset => "ECONNRESET",
            ErrnoClass::BrokenPipe => "EPIPE",
            ErrnoClass::FdLimit => "EMFILE",
            ErrnoClass::TimedOut => "ETIMEDOUT",
            ErrnoClass::InProgress => "EINPROGRESS",
            ErrnoClass::ConnRefused => "ECONNREFUSED",
            ErrnoClass::Other => "other",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Number of log2 latency buckets: bucket `i` holds calls that took `[2^i, 2^(i+1))` ns
/// (bucket 0 also holds 0 ns); the last one holds everything from 2^39 ns (~9 min) up.
pub const BUCKETS: usize = 40;
const KINDS: usize = SyscallKind::ALL.len();
const CLASSES: usize = ErrnoClass::ALL.len();

struct Slot {
    count: AtomicU64,
    errors: [AtomicU64; CLASSES],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            count: AtomicU64::new(0),
            errors: [const { AtomicU64::new(0) }; CLASSES],
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

static TABLE: [Slot; KINDS] = [const { Slot::new() }; KINDS];
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns accounting on or off for the whole process (it starts on).
///
/// Off, a wrapper skips both clock reads and every counter: the table stops moving.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether accounting is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The start of one timed call: `None` when accounting is off.
#[derive(Copy, Clone, Debug)]
pub struct Timer(Option<Instant>);

impl Timer {
    /// Reads the clock if accounting is on.
    #[inline]
    pub fn start() -> Timer {
        if is_enabled() {
            Timer(Some(Instant::now()))
        } else {
            Timer(None)
        }
    }
}

/// Records one finished call of `kind`: its latency, and its errno class if it failed.
#[inline]
pub fn record<T>(kind: SyscallKind, timer: Timer, result: &io::Result<T>) {
    let Some(started) = timer.0 else { return };
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let slot = &TABLE[kind.index()];
    slot.count.fetch_add(1, Ordering::Relaxed);
    if let Err(err) = result {
        slot.errors[ErrnoClass::of(err).index()].fetch_add(1, Ordering::Relaxed);
    }
    slot.sum_ns.fetch_add(ns, Ordering::Relaxed);
    slot.max_ns.fetch_max(ns, Ordering::Relaxed);
    slot.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
}

/// The log2 bucket of a latency in nanoseconds.
pub fn bucket_of(ns: u64) -> usize {
    let log = 63 - (ns | 1).leading_zeros() as usize;
    log.min(BUCKETS - 1)
}

/// The upper bound of bucket `i` in nanoseconds (`2^(i+1)`).
pub fn bucket_upper_ns(i: usize) -> u64 {
    1u64 << (i + 1).min(63)
}

/// Copies the whole table out (each counter read once; the copy is not an atomic cut across
/// counters, which does not matter for counts that only grow).
pub fn snapshot() -> SyscallTable {
    let rows = SyscallKind::ALL
        .iter()
        .map(|&kind| {
            let slot = &TABLE[kind.index()];
            let mut errors = [0u64; CLASSES];
            for (dst, src) in errors.iter_mut().zip(slot.errors.iter()) {
                *dst = src.load(Ordering::Relaxed);
            }
            let mut buckets = [0u64; BUCKETS];
            for (dst, src) in buckets.iter_mut().zip(slot.buckets.iter()) {
                *dst = src.load(Ordering::Relaxed);
            }
            SyscallStats {
                kind,
                count: slot.count.load(Ordering::Relaxed),
                errors,
                sum_ns: slot.sum_ns.load(Ordering::Relaxed),
                max_ns: slot.max_ns.load(Ordering::Relaxed),
                buckets,
            }
        })
        .collect();
    SyscallTable { rows }
}

/// The counters of one syscall kind at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallStats {
    /// Which syscall.
    pub kind: SyscallKind,
    /// Calls made (successful and failed).
    pub count: u64,
    /// Failed calls per [`ErrnoClass`], indexed in [`ErrnoClass::ALL`] order.
    pub errors: [u64; ErrnoClass::ALL.len()],
    /// Total time inside the call, ns.
    pub sum_ns: u64,
    /// Slowest call, ns (for a delta between snapshots: the maximum since the process began).
    pub max_ns: u64,
    /// Log2 latency histogram (see [`BUCKETS`]).
    pub buckets: [u64; BUCKETS],
}

impl SyscallStats {
    /// Failed calls of every class.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Failed calls of one class.
    pub fn errors_of(&self, class: ErrnoClass) -> u64 {
        self.errors[class.index()]
    }

    /// Successful calls.
    pub fn ok(&self) -> u64 {
        self.count.saturating_sub(self.error_total())
    }

    /// Mean latency in ns (0 without calls).
    pub fn mean_ns(&self) -> u64 {
        self.sum_ns.checked_div(self.count).unwrap_or(0)
    }

    /// The `q` quantile (0.0..=1.0) in ns, as the upper bound of its log2 bucket (so at most
    /// 2x above the true value), never above the observed maximum.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0;
        }
        // Rank of the quantile, 1-based: ceil(q * total), at least 1.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper_ns(i).min(self.max_ns.max(1));
            }
        }
        self.max_ns
    }

    fn since(&self, earlier: &SyscallStats) -> SyscallStats {
        let mut errors = self.errors;
        for (e, b) in errors.iter_mut().zip(earlier.errors.iter()) {
            *e = e.saturating_sub(*b);
        }
        let mut buckets = self.buckets;
        for (e, b) in buckets.iter_mut().zip(earlier.buckets.iter()) {
            *e = e.saturating_sub(*b);
        }
        SyscallStats {
            kind: self.kind,
            count: self.count.saturating_sub(earlier.count),
            errors,
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
            max_ns: self.max_ns,
            buckets,
        }
    }
}

/// A copy of the accounting table: one [`SyscallStats`] per [`SyscallKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallTable {
    rows: Vec<SyscallStats>,
}

impl SyscallTable {
    /// All rows, including kinds never called.
    pub fn rows(&self) -> &[SyscallStats] {
        &self.rows
    }

    /// The rows of kinds called at least once.
    pub fn called(&self) -> impl Iterator<Item = &SyscallStats> {
        self.rows.iter().filter(|r| r.count > 0)
    }

    /// The row of one kind.
    pub fn get(&self, kind: SyscallKind) -> &SyscallStats {
        // `rows` is built from `SyscallKind::ALL`, so every kind has its row at its index.
        &self.rows[kind.index()]
    }

    /// Calls of one kind (shorthand for `get(kind).count`).
    pub fn count(&self, kind: SyscallKind) -> u64 {
        self.get(kind).count
    }

    /// Calls of every kind.
    pub fn total_calls(&self) -> u64 {
        self.rows.iter().map(|r| r.count).sum()
    }

    /// What happened between `earlier` and `self` (counts, errors, histograms subtracted).
    pub fn since(&self, earlier: &SyscallTable) -> SyscallTable {
        let rows = self
            .rows
            .iter()
            .zip(earlier.rows.iter())
            .map(|(a, b)| a.since(b))
            .collect();
        SyscallTable { rows }
    }

    /// Prometheus text exposition (version 0.0.4) of the table.
    ///
    /// ```text
    /// zyphos_syscalls_total{kind="accept4"} 12
    /// zyphos_syscall_errors_total{kind="accept4",errno="EAGAIN"} 11
    /// zyphos_syscall_latency_seconds{kind="accept4",quantile="0.99"} 0.000016384
    /// ```
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP zyphos_syscalls_total Syscalls made, by kind.");
        let _ = writeln!(out, "# TYPE zyphos_syscalls_total counter");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "zyphos_syscalls_total{{kind=\"{}\"}} {}",
                r.kind, r.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP zyphos_syscall_errors_total Failed syscalls, by kind and errno class."
        );
        let _ = writeln!(out, "# TYPE zyphos_syscall_errors_total counter");
        for r in self.called() {
            for class in ErrnoClass::ALL {
                let n = r.errors_of(class);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "zyphos_syscall_errors_total{{kind=\"{}\",errno=\"{}\"}} {}",
                        r.kind,
                        class.label(),
                        n
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP zyphos_syscall_latency_seconds Time inside the syscall (log2-bucket quantiles)."
        );
        let _ = writeln!(out, "# TYPE zyphos_syscall_latency_seconds summary");
        for r in self.called() {
            for q in [0.5, 0.99] {
                let _ = writeln!(
                    out,
                    "zyphos_syscall_latency_seconds{{kind=\"{}\",quantile=\"{}\"}} {:e}",
                    r.kind,
                    q,
                    r.quantile_ns(q) as f64 / 1e9
                );
            }
            let _ = writeln!(
                out,
                "zyphos_syscall_latency_seconds_sum{{kind=\"{}\"}} {:e}",
                r.kind,
                r.sum_ns as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "zyphos_syscall_latency_seconds_count{{kind=\"{}\"}} {}",
                r.kind, r.count
            );
        }
        out
    }

    /// The table as JSON: `{"accept4": {"count": 2, "errors": {"EAGAIN": 1}, "p50_ns": …}, …}`
    /// (only kinds called at least once).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for r in self.called() {
            let mut errors = serde_json::Map::new();
            for class in ErrnoClass::ALL {
                let n = r.errors_of(class);
                if n > 0 {
                    errors.insert(class.label().to_owned(), n.into());
                }
            }
            map.insert(
                r.kind.name().to_owned(),
                serde_json::json!({
                    "count": r.count,
                    "errors": errors,
                    "mean_ns": r.mean_ns(),
                    "p50_ns": r.quantile_ns(0.5),
                    "p99_ns": r.quantile_ns(0.99),
                    "max_ns": r.max_ns,
                }),
            );
        }
        serde_json::Value::Object(map)
    }
}

impl Serialize for SyscallTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for SyscallTable {
    /// A fixed-width table for humans (stderr), one line per kind called.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>9} {:>7} {:>10} {:>10} {:>10}  errors",
            "syscall", "calls", "failed", "p50", "p99", "max"
        )?;
        for r in self.called() {
            let mut errs = String::new();
            for class in ErrnoClass::ALL {
                let n = r.errors_of(class);
                if n > 0 {
                    errs.push_str(&format!("{}={} ", class.label(), n));
                }
            }
            writeln!(
                f,
                "{:<12} {:>9} {:>7} {:>10} {:>10} {:>10}  {}",
                r.kind.name(),
                r.count,
                r.error_total(),
                fmt_ns(r.quantile_ns(0.5)),
                fmt_ns(r.quantile_ns(0.99)),
                fmt_ns(r.max_ns),
                errs.trim_end()
            )?;
        }
        Ok(())
    }
}

/// Formats nanoseconds as `850ns`, `12.3µs`, `4.1ms`.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        _ => format!("{:.1}ms", ns as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bucket_of_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 1);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn test_quantile_of_known_histogram() {
        let mut s = SyscallStats {
            kind: SyscallKind::Read,
            count: 100,
            errors: [0; CLASSES],
            sum_ns: 0,
            max_ns: 5000,
            buckets: [0; BUCKETS],
        };
        s.buckets[bucket_of(100)] = 90; // 90 calls in [64, 128)
        s.buckets[bucket_of(3000)] = 10; // 10 calls in [2048, 4096)
        assert_eq!(s.quantile_ns(0.5), 128);
        assert_eq!(s.quantile_ns(0.9), 128);
        assert_eq!(s.quantile_ns(0.99), 4096);
        assert_eq!(s.quantile_ns(1.0), 4096);
    }

    #[test]
    fn test_errno_class_of_common_errors() {
        assert_eq!(
            ErrnoClass::of_errno(libc::EWOULDBLOCK),
            ErrnoClass::WouldBlock
        );
        assert_eq!(ErrnoClass::of_errno(libc::ENFILE), ErrnoClass::FdLimit);
        assert_eq!(ErrnoClass::of(&io::Error::other("x")), ErrnoClass::Other);
    }

    #[test]
    fn test_kind_names_round_trip() {
        for kind in SyscallKind::ALL {
            assert_eq!(SyscallKind::from_name(kind.name()), Some(kind));
            assert_eq!(SyscallKind::ALL[kind.index()], kind);
        }
    }

    #[test]
    fn test_table_since_subtracts() {
        let a = snapshot();
        let b = snapshot();
        let d = b.since(&a);
        assert_eq!(d.rows().len(), SyscallKind::ALL.len());
        assert!(d.prometheus_lines_ok());
    }

    impl SyscallTable {
        fn prometheus_lines_ok(&self) -> bool {
            self.to_prometheus()
                .lines()
                .all(|l| l.starts_with('#') || l.starts_with("zyphos_syscall"))
        }
    }
}
