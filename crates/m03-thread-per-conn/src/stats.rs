//! Counters: shared atomics for lifecycle events, thread-local slots for the hot path.
//!
//! Two kinds of statistics, two designs:
//!
//! - **Lifecycle counters** ([`Counters`]: spawned, started, exited, joined, panicked,
//!   refused…) change a few times per connection; they are plain shared atomics.
//! - **Traffic counters** (bytes in/out, reads, writes, session events) change on every
//!   syscall. Sharing one atomic between a thousand threads would bounce its cache line between
//!   cores on every update (see the `false_sharing` experiment). Instead each connection thread
//!   owns a [`ThreadSlot`] — reached through a `thread_local!` — that only it writes (a plain
//!   load + store, no locked instruction), registered in a [`SlotRegistry`]. A reader *merges*:
//!   the sum of every live slot plus the totals of slots whose threads have exited
//!   ([`SlotRegistry::merged`]).
//!
//! ```text
//!   conn-1 ─ TLS ─▶ slot 1 ─┐
//!   conn-2 ─ TLS ─▶ slot 2 ─┼─ registry (Mutex<Vec<Arc<ThreadSlot>>>) ─▶ snapshot() = retired + Σ live
//!   conn-3 ─ TLS ─▶ slot 3 ─┘        exit: add to `retired`, unregister (under the lock)
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::log::{LogStats, lock_timed};
use crate::procfs::{self, MemoryBreakdown, RunQueue};
use crate::session::CloseReason;

/// One thread's traffic counters, written only by their owner thread; padded to its own
/// cache line pair so that neighbouring slots never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ThreadSlot {
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Successful receive calls.
    pub reads: AtomicU64,
    /// Successful send calls.
    pub writes: AtomicU64,
    /// Events the sessions reported.
    pub events: AtomicU64,
}

/// Plain totals of [`ThreadSlot`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TrafficTotals {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Successful receive calls.
    pub reads: u64,
    /// Successful send calls.
    pub writes: u64,
    /// Session events.
    pub events: u64,
}

impl ThreadSlot {
    fn totals(&self) -> TrafficTotals {
        TrafficTotals {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }
}

impl TrafficTotals {
    fn add(&mut self, o: TrafficTotals) {
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.reads += o.reads;
        self.writes += o.writes;
        self.events += o.events;
    }
}

/// Single-writer add: only the owning thread writes `a`, so load + store cannot lose an update
/// and needs no locked read-modify-write instruction; readers see a value at most one update old.
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Every live thread's slot, plus the totals of exited ones.
#[derive(Debug, Default)]
pub struct SlotRegistry {
    inner: Mutex<RegistryInner>,
    /// Time threads spent waiting for the registry lock, ns.
    pub lock_wait_ns: AtomicU64,
    /// Times the registry lock was found taken.
    pub lock_contended: AtomicU64,
}

#[derive(Debug, Default)]
struct RegistryInner {
    live: Vec<Arc<ThreadSlot>>,
    retired: TrafficTotals,
}

impl SlotRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryInner> {
        lock_timed(&self.inner, &self.lock_wait_ns, &self.lock_contended)
    }

    /// The merged view: exited threads' totals plus every live slot, read under the lock (so a
    /// thread retiring meanwhile is counted exactly once).
    pub fn merged(&self) -> (TrafficTotals, usize) {
        let g = self.lock();
        let mut t = g.retired;
        for s in &g.live {
            t.add(s.totals());
        }
        (t, g.live.len())
    }
}

thread_local! {
    /// The calling thread's slot, when it is a connection thread.
    static SLOT: RefCell<Option<Arc<ThreadSlot>>> = const { RefCell::new(None) };
}

/// Registration of the current thread's slot; dropping it retires the slot.
#[derive(Debug)]
pub struct LocalStats {
    registry: Arc<SlotRegistry>,
    slot: Arc<ThreadSlot>,
}

impl LocalStats {
    /// Gives the calling thread a fresh slot registered in `registry`, reachable through
    /// the thread-local functions ([`local_bytes_in`] …) until the guard is dropped.
    pub fn enter(registry: &Arc<SlotRegistry>) -> LocalStats {
        let slot = Arc::new(ThreadSlot::default());
        registry.lock().live.push(Arc::clone(&slot));
        SLOT.with(|s| *s.borrow_mut() = Some(Arc::clone(&slot)));
        LocalStats {
            registry: Arc::clone(registry),
            slot,
        }
    }
}

impl Drop for LocalStats {
    fn drop(&mut self) {
        SLOT.with(|s| *s.borrow_mut() = None);
        let mut g = self.registry.lock();
        let totals = self.slot.totals();
        g.retired.add(totals);
        g.live.retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

fn with_slot(f: impl FnOnce(&ThreadSlot)) {
    SLOT.with(|s| {
        if let Some(slot) = &*s.borrow() {
            f(slot);
        }
    });
}

/// Counts `n` bytes received by the calling thread (no-op outside a registered thread).
pub fn local_bytes_in(n: usize) {
    with_slot(|s| {
        bump(&s.bytes_in, n as u64);
        bump(&s.reads, 1);
    });
}

/// Counts `n` bytes sent by the calling thread.
pub fn local_bytes_out(n: usize) {
    with_slot(|s| {
        bump(&s.bytes_out, n as u64);
        bump(&s.writes, 1);
    });
}

/// Counts one session event on the calling thread.
pub fn local_event() {
    with_slot(|s| bump(&s.events, 1));
}

/// Lifecycle counters shared by the acceptor and every connection thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now (accepted, not yet closed).
    pub connections_live: AtomicU64,
    /// Most connections open at once.
    pub connections_peak: AtomicU64,
    /// Connection threads alive now (spawned, not yet exited).
    pub threads_live: AtomicU64,
    /// Most connection threads alive at once.
    pub threads_peak: AtomicU64,
    /// Threads successfully spawned.
    pub spawned: AtomicU64,
    /// Threads that began running.
    pub started: AtomicU64,
    /// Threads that finished (normally or after a caught panic).
    pub exited: AtomicU64,
    /// Threads joined by the acceptor.
    pub joined: AtomicU64,
    /// Panics caught in connection threads.
    pub panics: AtomicU64,
    /// Connections refused because `max_threads` threads were alive (or the pool's queue was full).
    pub refused_cap: AtomicU64,
    /// Connections refused because the OS would not create a thread.
    pub spawn_failures: AtomicU64,
    /// Total time spent in `thread::Builder::spawn`, ns.
    pub spawn_ns: AtomicU64,
    /// Errors from `accept4` (EMFILE…).
    pub accept_errors: AtomicU64,
    /// Closed connections by [`CloseReason`] (index: [`CloseReason::index`]).
    pub closes: [AtomicU64; CloseReason::ALL.len()],
    /// Sockets forced shut (`SHUT_RDWR`) when the grace period ran out.
    pub forced_shutdowns: AtomicU64,
    /// Voluntary context switches of exited connection threads.
    pub ctx_voluntary: AtomicU64,
    /// Non-voluntary context switches of exited connection threads.
    pub ctx_nonvoluntary: AtomicU64,
    /// User CPU of exited connection threads, µs.
    pub cpu_user_us: AtomicU64,
    /// System CPU of exited connection threads, µs.
    pub cpu_system_us: AtomicU64,
    /// Time threads spent waiting for the socket-registry lock, ns.
    pub sockets_lock_wait_ns: AtomicU64,
    /// Times the socket-registry lock was found taken.
    pub sockets_lock_contended: AtomicU64,
}

/// Raises `peak` to at least `v`.
pub(crate) fn raise(peak: &AtomicU64, v: u64) {
    peak.fetch_max(v, Ordering::Relaxed);
}

/// A point-in-time copy of the server's statistics, with the thread-local slots merged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThreadStats {
    /// Seconds since the server was bound.
    pub uptime_s: f64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub connections_live: u64,
    /// Most connections open at once.
    pub connections_peak: u64,
    /// Connection threads alive now.
    pub threads_live: u64,
    /// Most connection threads alive at once.
    pub threads_peak: u64,
    /// Threads spawned.
    pub spawned: u64,
    /// Threads started.
    pub started: u64,
    /// Threads exited.
    pub exited: u64,
    /// Threads joined.
    pub joined: u64,
    /// Panics caught.
    pub panics: u64,
    /// Refused for the thread cap (or full pool queue).
    pub refused_cap: u64,
    /// Refused because thread creation failed.
    pub spawn_failures: u64,
    /// Mean `spawn` call time, µs.
    pub spawn_mean_us: f64,
    /// Threads spawned per second of uptime.
    pub spawn_rate_per_s: f64,
    /// `accept4` errors.
    pub accept_errors: u64,
    /// Closes by reason name.
    pub closes: Vec<(String, u64)>,
    /// Sockets forced shut at the end of the grace period.
    pub forced_shutdowns: u64,
    /// Traffic merged from the thread-local slots.
    pub traffic: TrafficTotals,
    /// Slots registered now (live connection/worker threads).
    pub live_slots: usize,
    /// Context switches of exited connection threads: (voluntary, non-voluntary).
    pub ctx_switches: (u64, u64),
    /// CPU of exited connection threads, µs: (user, system).
    pub cpu_us: (u64, u64),
    /// Lock waits, ns: (slot registry, socket registry, log ring).
    pub lock_wait_ns: (u64, u64, u64),
    /// The logger's counters.
    pub log: LogStats,
    /// OS threads of the whole process (`/proc/self/status`).
    pub os_threads: u64,
    /// Machine run queue (`/proc/loadavg`).
    pub run_queue: RunQueue,
    /// Memory breakdown (`/proc/self/status`, `/proc/self/smaps`).
    pub memory: MemoryBreakdown,
}

impl ThreadStats {
    /// Closes with `reason` so far.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closes
            .iter()
            .find(|(n, _)| n == reason.name())
            .map_or(0, |(_, v)| *v)
    }

    /// Prometheus text exposition of every figure.
    pub fn prometheus(&self) -> String {
        let mut o = String::with_capacity(4096);
        let mut m = |name: &str, kind: &str, help: &str, v: f64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        m(
            "zyphos_connections_live",
            "gauge",
            "Connections open now.",
            self.connections_live as f64,
        );
        m(
            "zyphos_connections_accepted_total",
            "counter",
            "Connections accepted.",
            self.accepted as f64,
        );
        m(
            "zyphos_threads_live",
            "gauge",
            "Connection threads alive now.",
            self.threads_live as f64,
        );
        m(
            "zyphos_threads_peak",
            "gauge",
            "Most connection threads alive at once.",
            self.threads_peak as f64,
        );
        m(
            "zyphos_thread_spawns_total",
            "counter",
            "Connection threads spawned.",
            self.spawned as f64,
        );
        m(
            "zyphos_thread_starts_total",
            "counter",
            "Connection threads that began running.",
            self.started as f64,
        );
        m(
            "zyphos_thread_exits_total",
            "counter",
            "Connection threads that finished.",
            self.exited as f64,
        );
        m(
            "zyphos_thread_joins_total",
            "counter",
            "Connection threads joined.",
            self.joined as f64,
        );
        m(
            "zyphos_thread_panics_total",
            "counter",
            "Panics caught in connection threads.",
            self.panics as f64,
        );
        m(
            "zyphos_thread_refusals_total",
            "counter",
            "Connections refused: thread cap reached or thread creation failed.",
            (self.refused_cap + self.spawn_failures) as f64,
        );
        m(
            "zyphos_thread_spawn_failures_total",
            "counter",
            "Thread creations the OS refused.",
            self.spawn_failures as f64,
        );
        m(
            "zyphos_thread_spawn_seconds_mean",
            "gauge",
            "Mean time in thread spawn.",
            self.spawn_mean_us / 1e6,
        );
        m(
            "zyphos_thread_ctx_switches_voluntary_total",
            "counter",
            "Voluntary context switches of exited connection threads.",
            self.ctx_switches.0 as f64,
        );
        m(
            "zyphos_thread_ctx_switches_nonvoluntary_total",
            "counter",
            "Non-voluntary context switches of exited connection threads.",
            self.ctx_switches.1 as f64,
        );
        m(
            "zyphos_thread_cpu_seconds_total",
            "counter",
            "CPU time (user + system) of exited connection threads.",
            (self.cpu_us.0 + self.cpu_us.1) as f64 / 1e6,
        );
        m(
            "zyphos_lock_wait_seconds_total",
            "counter",
            "Time spent waiting for the server's locks (slot registry, socket registry, log ring).",
            (self.lock_wait_ns.0 + self.lock_wait_ns.1 + self.lock_wait_ns.2) as f64 / 1e9,
        );
        m(
            "zyphos_log_lines_total",
            "counter",
            "Log lines queued.",
            self.log.queued as f64,
        );
        m(
            "zyphos_log_dropped_total",
            "counter",
            "Log lines dropped (ring full).",
            self.log.dropped as f64,
        );
        m(
            "zyphos_bytes_received_total",
            "counter",
            "Bytes received (merged thread-local counters).",
            self.traffic.bytes_in as f64,
        );
        m(
            "zyphos_bytes_sent_total",
            "counter",
            "Bytes sent (merged thread-local counters).",
            self.traffic.bytes_out as f64,
        );
        m(
            "zyphos_os_threads",
            "gauge",
            "OS threads of the process.",
            self.os_threads as f64,
        );
        m(
            "zyphos_run_queue_running",
            "gauge",
            "Runnable tasks on the machine (/proc/loadavg).",
            self.run_queue.running as f64,
        );
        m(
            "zyphos_memory_rss_bytes",
            "gauge",
            "Resident memory.",
            (self.memory.rss_kib * 1024) as f64,
        );
        m(
            "zyphos_memory_thread_stacks_rss_bytes",
            "gauge",
            "Resident memory of thread stacks (smaps).",
            (self.memory.stack_rss_kib * 1024) as f64,
        );
        m(
            "zyphos_memory_thread_stacks_mapped_bytes",
            "gauge",
            "Address space reserved for thread stacks (smaps).",
            (self.memory.stack_mapped_kib * 1024) as f64,
        );
        let _ = writeln!(
            o,
            "# HELP zyphos_connections_closed_total Closed connections by reason.\n# TYPE zyphos_connections_closed_total counter"
        );
        for (reason, v) in &self.closes {
            let _ = writeln!(
                o,
                "zyphos_connections_closed_total{{reason=\"{reason}\"}} {v}"
            );
        }
        o
    }
}

/// Builds a [`ThreadStats`] from the shared state.
pub(crate) fn snapshot(
    c: &Counters,
    registry: &SlotRegistry,
    log: LogStats,
    uptime_s: f64,
) -> ThreadStats {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (traffic, live_slots) = registry.merged();
    let spawned = l(&c.spawned);
    ThreadStats {
        uptime_s,
        accepted: l(&c.accepted),
        connections_live: l(&c.connections_live),
        connections_peak: l(&c.connections_peak),
        threads_live: l(&c.threads_live),
        threads_peak: l(&c.threads_peak),
        spawned,
        started: l(&c.started),
        exited: l(&c.exited),
        joined: l(&c.joined),
        panics: l(&c.panics),
        refused_cap: l(&c.refused_cap),
        spawn_failures: l(&c.spawn_failures),
        spawn_mean_us: if spawned == 0 {
            0.0
        } else {
            l(&c.spawn_ns) as f64 / spawned as f64 / 1e3
        },
        spawn_rate_per_s: if uptime_s > 0.0 {
            spawned as f64 / uptime_s
        } else {
            0.0
        },
        accept_errors: l(&c.accept_errors),
        closes: CloseReason::ALL
            .iter()
            .map(|r| (r.name().to_owned(), l(&c.closes[r.index()])))
            .collect(),
        forced_shutdowns: l(&c.forced_shutdowns),
        traffic,
        live_slots,
        ctx_switches: (l(&c.ctx_voluntary), l(&c.ctx_nonvoluntary)),
        cpu_us: (l(&c.cpu_user_us), l(&c.cpu_system_us)),
        lock_wait_ns: (
            l(&registry.lock_wait_ns),
            l(&c.sockets_lock_wait_ns),
            log.lock_wait_ns,
        ),
        log,
        os_threads: procfs::os_threads().unwrap_or(0),
        run_queue: procfs::run_queue().unwrap_or_default(),
        memory: procfs::memory().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn test_registry_merge_sums_live_and_retired_slots() {
        let registry = Arc::new(SlotRegistry::default());
        let barrier = Arc::new(Barrier::new(5));
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                let r = Arc::clone(&registry);
                let b = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut guard = Some(LocalStats::enter(&r));
                    for _ in 0..1000 {
                        local_bytes_in(i as usize + 1);
                        local_bytes_out(1);
                    }
                    b.wait(); // live: the reader merges four slots
                    b.wait();
                    if i % 2 == 0 {
                        guard.take(); // two threads retire before the second read
                    }
                    b.wait();
                    drop(guard);
                })
            })
            .collect();
        barrier.wait();
        let (live, n) = registry.merged();
        assert_eq!(n, 4);
        assert_eq!(live.bytes_in, 1000 * (1 + 2 + 3 + 4));
        assert_eq!(live.bytes_out, 4000);
        assert_eq!(live.reads, 4000);
        barrier.wait();
        // Wait for the two retirements, then merge again: same totals, two live slots.
        while registry.merged().1 != 2 {
            std::thread::yield_now();
        }
        let (mixed, n) = registry.merged();
        assert_eq!(n, 2);
        assert_eq!(mixed, live);
        barrier.wait();
        for h in handles {
            h.join().unwrap();
        }
        let (done, n) = registry.merged();
        assert_eq!((done, n), (live, 0));
    }

    #[test]
    fn test_local_counters_outside_registered_thread_ignored() {
        local_bytes_in(5); // no slot: nothing to count, nothing to panic about
        let registry = Arc::new(SlotRegistry::default());
        assert_eq!(registry.merged(), (TrafficTotals::default(), 0));
    }
}
