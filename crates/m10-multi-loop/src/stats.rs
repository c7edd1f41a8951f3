//! What milestone 10 adds to each loop's counters: migration, stealing, messages. Single
//! writer (the loop) per counter, as in m09's [`LoopStats`](m09_event_loop::LoopStats).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use m09_event_loop::stats::{Counter, Histogram};

/// One loop's cross-thread counters.
#[derive(Debug, Default)]
pub struct MultiStats {
    /// Connections adopted from other loops.
    pub migrated_in: Counter,
    /// Connections handed to other loops.
    pub migrated_out: Counter,
    /// Migrations that failed (target full or gone: the connection stayed, or was closed).
    pub migration_failures: Counter,
    /// Steal requests this loop sent.
    pub steals_sent: Counter,
    /// Steal requests this loop answered.
    pub steals_served: Counter,
    /// Messages received.
    pub messages: Counter,
    /// Cross-thread tasks run.
    pub tasks: Counter,
    /// Tasks that panicked (caught; the loop lives on).
    pub task_panics: Counter,
    /// Message latency: sent on one thread → handled on this loop, ns.
    pub message_ns: Histogram,
}

/// A copy of [`MultiStats`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MultiSnapshot {
    /// See [`MultiStats::migrated_in`].
    pub migrated_in: u64,
    /// See [`MultiStats::migrated_out`].
    pub migrated_out: u64,
    /// See [`MultiStats::migration_failures`].
    pub migration_failures: u64,
    /// See [`MultiStats::steals_sent`].
    pub steals_sent: u64,
    /// See [`MultiStats::steals_served`].
    pub steals_served: u64,
    /// See [`MultiStats::messages`].
    pub messages: u64,
    /// See [`MultiStats::tasks`].
    pub tasks: u64,
    /// See [`MultiStats::task_panics`].
    pub task_panics: u64,
    /// Message latency p50, ns.
    pub message_p50_ns: u64,
    /// Message latency p99, ns.
    pub message_p99_ns: u64,
}

impl MultiStats {
    /// Copies the counters.
    pub fn snapshot(&self) -> MultiSnapshot {
        let h = self.message_ns.snapshot();
        MultiSnapshot {
            migrated_in: self.migrated_in.get(),
            migrated_out: self.migrated_out.get(),
            migration_failures: self.migration_failures.get(),
            steals_sent: self.steals_sent.get(),
            steals_served: self.steals_served.get(),
            messages: self.messages.get(),
            tasks: self.tasks.get(),
            task_panics: self.task_panics.get(),
            message_p50_ns: h.quantile(0.5),
            message_p99_ns: h.quantile(0.99),
        }
    }
}

/// Liveness and placement of a loop (written by its thread, read by all).
#[derive(Debug)]
pub struct LoopPlace {
    /// The loop is running (false before start, after it stopped or failed).
    pub alive: AtomicBool,
    /// The CPU it is pinned to (−1: not pinned).
    pub cpu: AtomicI64,
}

impl Default for LoopPlace {
    fn default() -> Self {
        LoopPlace {
            alive: AtomicBool::new(false),
            cpu: AtomicI64::new(-1),
        }
    }
}

impl LoopPlace {
    /// Whether the loop runs (acquire: pairs with the loop's release store, so a reader that
    /// sees `true` also sees the loop's registrations made before it).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}
