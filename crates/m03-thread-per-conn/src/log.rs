//! A thread-safe logger of our own, with bounded memory: this milestone's synchronisation lesson.
//!
//! ```text
//!  conn-17 ─┐  format (no lock) → lock ring ─ full? drop + count ─┐
//!  conn-18 ─┼─────────────────────────────────────────────────────┼─▶ ring (capacity N) ─▶ writer thread ─▶ sink
//!  accept  ─┘        time spent waiting for the lock is measured   │       (condvar wake)      (stderr, memory, null)
//! ```
//!
//! - **Bounded**: the ring holds at most [`LogConfig::capacity`] records, each at most
//!   [`LogConfig::max_line`] bytes. A producer never waits for the sink: when the ring is full
//!   the record is dropped and [`LogStats::dropped`] counts it. A slow terminal cannot stall a
//!   connection thread, and a log flood cannot grow memory.
//! - **One writer**: only the writer thread touches the sink, so lines never interleave.
//! - **Levels** ([`Level`]) filter before formatting costs anything.
//! - **Thread names** in every line (`[conn-17]`): set by the driver when it spawns.
//! - **Lock contention**: producers first `try_lock`; when that fails they time the blocking
//!   `lock` and add the wait to [`LogStats::lock_wait_ns`].

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use serde::Serialize;

/// How important a line is; a logger keeps lines at or above its configured level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// Something failed that should not have.
    Error,
    /// Something failed that may (panics caught, refusals).
    Warn,
    /// Lifecycle: server start/stop, shutdown phases.
    Info,
    /// Per-thread lifecycle: spawned, started, exited, joined.
    Debug,
}

impl Level {
    /// Upper-case name used in lines.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

/// A bounded in-memory sink for tests: keeps the newest `capacity` lines.
#[derive(Debug, Clone)]
pub struct MemorySink {
    lines: Arc<Mutex<VecDeque<String>>>,
    capacity: usize,
}

impl MemorySink {
    /// A sink keeping at most `capacity` lines.
    pub fn new(capacity: usize) -> MemorySink {
        MemorySink {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(4096)))),
            capacity: capacity.max(1),
        }
    }

    /// The lines kept so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() >= self.capacity {
                l.pop_front();
            }
            l.push_back(line);
        }
    }
}

/// Where the writer thread puts lines.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LogSink {
    /// Standard error, one write per batch.
    Stderr,
    /// Discard (the ring, levels and counters still work).
    Null,
    /// Keep lines in memory (tests).
    Memory(MemorySink),
}

/// The logger's limits.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Lines below this level are not even formatted.
    pub level: Level,
    /// Records the ring holds before producers start dropping.
    pub capacity: usize,
    /// Longest line kept, in bytes (longer ones are cut at a character boundary).
    pub max_line: usize,
    /// Where lines go.
    pub sink: LogSink,
}

/// Default ring capacity: 4,096 records (≈ 1 MiB worst case at [`DEFAULT_MAX_LINE`]).
pub const DEFAULT_LOG_CAPACITY: usize = 4096;
/// Default longest line: 256 bytes.
pub const DEFAULT_MAX_LINE: usize = 256;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: Level::Info,
            capacity: DEFAULT_LOG_CAPACITY,
            max_line: DEFAULT_MAX_LINE,
            sink: LogSink::Stderr,
        }
    }
}

impl LogConfig {
    /// Quiet: warnings and errors only, discarded (for benchmarks and checks).
    pub fn quiet() -> LogConfig {
        LogConfig {
            level: Level::Warn,
            sink: LogSink::Null,
            ..LogConfig::default()
        }
    }
}

/// The logger's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogStats {
    /// Records queued.
    pub queued: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    /// Records the writer handed to the sink.
    pub written: u64,
    /// Records filtered out by level.
    pub filtered: u64,
    /// Total time producers waited for the ring's lock, ns.
    pub lock_wait_ns: u64,
    /// Times a producer found the lock taken.
    pub lock_contended: u64,
}

#[derive(Debug)]
struct Record {
    at: f64,
    level: Level,
    text: String,
}

#[derive(Debug)]
struct Inner {
    config: LogConfig,
    ring: Mutex<VecDeque<Record>>,
    wake: Condvar,
    closed: AtomicBool,
    started: Instant,
    queued: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    filtered: AtomicU64,
    lock_wait_ns: AtomicU64,
    lock_contended: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A cloneable handle to one logger (one ring, one writer thread).
#[derive(Debug, Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

/// Locks `m`, adding the time spent waiting (if it was contended) to `wait_ns`/`contended`.
/// A poisoned lock is taken anyway: the data (counters, a queue) stays consistent.
pub(crate) fn lock_timed<'a, T>(
    m: &'a Mutex<T>,
    wait_ns: &AtomicU64,
    contended: &AtomicU64,
) -> MutexGuard<'a, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            let t = Instant::now();
            // Counted before blocking, so "a producer found the lock taken" is visible while
            // the producer still waits (tests synchronise on it).
            contended.fetch_add(1, Ordering::Relaxed);
            let g = m.lock().unwrap_or_else(|p| p.into_inner());
            wait_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            g
        }
    }
}

impl Logger {
    /// Starts a logger and its writer thread (`zy-log`).
    pub fn start(config: LogConfig) -> std::io::Result<Logger> {
        let capacity = config.capacity.max(1);
        let inner = Arc::new(Inner {
            ring: Mutex::new(VecDeque::with_capacity(capacity)),
            config: LogConfig { capacity, ..config },
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            started: Instant::now(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            lock_wait_ns: AtomicU64::new(0),
            lock_contended: AtomicU64::new(0),
            writer: Mutex::new(None),
        });
        let w = Arc::clone(&inner);
        let handle = thread::Builder::new()
            .name("zy-log".into())
            .stack_size(64 * 1024)
            .spawn(move || writer_loop(&w))?;
        if let Ok(mut slot) = inner.writer.lock() {
            *slot = Some(handle);
        }
        Ok(Logger { inner })
    }

    /// Whether a line at `level` would be kept.
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.inner.config.level
    }

    /// Queues one line (dropped and counted if the ring is full). Never blocks on the sink.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let inner = &*self.inner;
        if !self.enabled(level) {
            inner.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if inner.closed.load(Ordering::Acquire) {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let max = inner.config.max_line;
        let mut text = String::with_capacity(64.min(max));
        {
            let name = thread::current();
            let _ = write!(text, "[{}] ", name.name().unwrap_or("unnamed"));
        }
        let _ = text.write_fmt(args);
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let record = Record {
            at: inner.started.elapsed().as_secs_f64(),
            level,
            text,
        };
        let mut ring = lock_timed(&inner.ring, &inner.lock_wait_ns, &inner.lock_contended);
        if ring.len() >= inner.config.capacity {
            drop(ring);
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        ring.push_back(record);
        drop(ring);
        inner.queued.fetch_add(1, Ordering::Relaxed);
        inner.wake.notify_one();
    }

    /// `log(Level::Error, …)`.
    pub fn error(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Error, args);
    }

    /// `log(Level::Warn, …)`.
    pub fn warn(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Warn, args);
    }

    /// `log(Level::Info, …)`.
    pub fn info(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Info, args);
    }

    /// `log(Level::Debug, …)`.
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.log(Level::Debug, args);
    }

    /// Counters so far.
    pub fn stats(&self) -> LogStats {
        let i = &*self.inner;
        LogStats {
            queued: i.queued.load(Ordering::Relaxed),
            dropped: i.dropped.load(Ordering::Relaxed),
            written: i.written.load(Ordering::Relaxed),
            filtered: i.filtered.load(Ordering::Relaxed),
            lock_wait_ns: i.lock_wait_ns.load(Ordering::Relaxed),
            lock_contended: i.lock_contended.load(Ordering::Relaxed),
        }
    }

    /// Flushes what is queued, stops and joins the writer thread. Later lines are dropped
    /// (counted). Idempotent.
    pub fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        {
            // Take the lock so the writer is either waiting (and gets the notify) or will see
            // `closed` before it waits.
            let _g = self.inner.ring.lock();
            self.inner.wake.notify_all();
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn writer_loop(inner: &Inner) {
    let mut batch: VecDeque<Record> = VecDeque::with_capacity(inner.config.capacity);
    let mut out = String::with_capacity(4096);
    loop {
        {
            let mut ring = inner.ring.lock().unwrap_or_else(|p| p.into_inner());
            while ring.is_empty() && !inner.closed.load(Ordering::Acquire) {
                ring = inner.wake.wait(ring).unwrap_or_else(|p| p.into_inner());
            }
            if ring.is_empty() {
                return; // closed and drained
            }
            // Swap the whole queue out: producers wait only for a pointer swap.
            std::mem::swap(&mut *ring, &mut batch);
        }
        out.clear();
        let n = batch.len() as u64;
        for r in batch.drain(..) {
            match &inner.config.sink {
                LogSink::Memory(m) => {
                    m.push(format!("{:.6} {:<5} {}", r.at, r.level.name(), r.text));
                }
                LogSink::Stderr => {
                    let _ = writeln!(out, "{:.6} {:<5} {}", r.at, r.level.name(), r.text);
                }
                LogSink::Null => {}
            }
        }
        if !out.is_empty() {
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
        }
        inner.written.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn memory_logger(capacity: usize, level: Level) -> (Logger, MemorySink) {
        let sink = MemorySink::new(100_000);
        let logger = Logger::start(LogConfig {
            level,
            capacity,
            max_line: 64,
            sink: LogSink::Memory(sink.clone()),
        })
        .unwrap();
        (logger, sink)
    }

    #[test]
    fn test_logger_many_threads_lines_whole_and_named() {
        let (logger, sink) = memory_logger(100_000, Level::Debug);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let l = logger.clone();
                thread::Builder::new()
                    .name(format!("writer-{t}"))
                    .spawn(move || {
                        for i in 0..500 {
                            l.info(format_args!("line {i} of {t}"));
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        logger.shutdown();
        let lines = sink.lines();
        let s = logger.stats();
        assert_eq!(s.queued + s.dropped, 4000);
        assert_eq!(s.written, s.queued);
        assert_eq!(lines.len() as u64, s.written);
        // Each line is whole: one thread's name and that thread's text, never interleaved.
        for line in &lines {
            let name = line
                .split('[')
                .nth(1)
                .and_then(|r| r.split(']').next())
                .unwrap();
            let t = name.strip_prefix("writer-").unwrap();
            assert!(line.ends_with(&format!(" of {t}")), "{line}");
            assert!(line.contains(" INFO "), "{line}");
        }
        // Per thread, lines keep their order.
        for t in 0..8 {
            let seq: Vec<usize> = lines
                .iter()
                .filter(|l| l.ends_with(&format!(" of {t}")))
                .map(|l| {
                    l.split("line ")
                        .nth(1)
                        .and_then(|r| r.split(' ').next())
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]), "thread {t} reordered");
        }
    }

    #[test]
    fn test_logger_full_ring_drops_and_counts() {
        const CAPACITY: usize = 4;
        const FLOOD: u64 = 100;
        let (logger, sink) = memory_logger(CAPACITY, Level::Debug);
        // Hold the sink so the writer, once it has swapped out at most one batch (≤ CAPACITY
        // records), blocks delivering it: the ring then fills and stays full, whatever the
        // scheduler does.
        let sink_guard = sink.lines.lock().unwrap();
        // Hold the ring lock so the flooding thread must find it taken.
        let ring_guard = logger.inner.ring.lock().unwrap();
        let l2 = logger.clone();
        let t = thread::spawn(move || {
            for i in 0..FLOOD {
                l2.warn(format_args!("flood {i}"));
            }
        });
        // Event, not a sleep: the producer counts the contention before it blocks.
        let deadline = Instant::now() + Duration::from_secs(30);
        while logger.stats().lock_contended == 0 {
            assert!(
                Instant::now() < deadline,
                "producer never reached the ring lock"
            );
            thread::yield_now();
        }
        drop(ring_guard);
        // The producer never waits for the sink, so it finishes while the writer is stuck.
        t.join().unwrap();
        let s = logger.stats();
        assert_eq!(s.queued + s.dropped, FLOOD, "{s:?}");
        // At most one batch in the writer's hands plus one full ring.
        assert!(s.queued <= 2 * CAPACITY as u64, "{s:?}");
        assert!(s.lock_contended > 0 && s.lock_wait_ns > 0, "{s:?}");
        drop(sink_guard);
        logger.shutdown();
        let s = logger.stats();
        assert_eq!(s.queued + s.dropped, FLOOD, "{s:?}");
        assert_eq!(s.written, s.queued, "{s:?}");
        assert_eq!(sink.lines().len() as u64, s.written);
    }

    #[test]
    fn test_logger_level_filters_and_long_line_truncated() {
        let (logger, sink) = memory_logger(16, Level::Warn);
        logger.debug(format_args!("hidden"));
        logger.info(format_args!("hidden"));
        logger.error(format_args!("{}", "é".repeat(100)));
        logger.shutdown();
        let s = logger.stats();
        assert_eq!(s.filtered, 2);
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("ERROR"));
        // 64-byte cap on the text (thread name included), cut at a char boundary.
        let text = lines[0].split_once("ERROR ").unwrap().1;
        assert!(text.len() <= 64, "{}", text.len());
        // After shutdown, lines are dropped, not queued.
        logger.error(format_args!("late"));
        assert_eq!(logger.stats().dropped, 1);
    }
}
