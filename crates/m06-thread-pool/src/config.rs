//! Pool configuration: every limit named, defaults chosen from measurement.

use std::time::Duration;

/// How work reaches the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum QueueDesign {
    /// One FIFO `VecDeque` behind a `Mutex`, workers sleep on a `Condvar`: the classic baseline.
    /// Every submit and every pop takes the same lock.
    GlobalMutex,
    /// A global injector plus one local deque per worker; idle workers steal half of a victim's
    /// deque. Tasks submitted by a worker go to its own deque (no shared lock on that path).
    WorkStealing,
}

impl QueueDesign {
    /// Both designs, baseline first.
    pub const ALL: [QueueDesign; 2] = [QueueDesign::GlobalMutex, QueueDesign::WorkStealing];

    /// A short name for tables and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            QueueDesign::GlobalMutex => "global_mutex",
            QueueDesign::WorkStealing => "work_stealing",
        }
    }
}

/// What [`crate::ThreadPool::shutdown`] does with work that has not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ShutdownMode {
    /// Run every queued task, and the tasks those tasks submit, then stop.
    Drain,
    /// Report every queued task as cancelled without running it; running tasks finish.
    Cancel,
}

/// The default worker count: one per CPU the process may use.
///
/// Chosen from the `default_config_vs_best` sweep on the 2-core development VM (1–16 workers ×
/// both designs, 5 µs tasks): two workers on two cores was within noise of the best point; more
/// workers only added context switches, one left a core idle.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The default queue capacity. With the 5 µs tasks of the experiments and two workers a full queue
/// is about 2.5 ms of work: enough to ride out a burst, small enough that a queued task never
/// waits long (the `overload` check shows the bound holding at 2x capacity).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// The default interval between queue-depth samples.
pub const DEFAULT_DEPTH_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// The default number of queue-depth samples kept (a ring: the oldest are dropped).
pub const DEFAULT_DEPTH_SAMPLES: usize = 1024;

/// Every knob of a [`crate::ThreadPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, fixed for the pool's life (at least 1).
    pub workers: usize,
    /// Tasks queued and not yet started, across all queues; beyond it submissions fail with
    /// [`crate::SubmitError::QueueFull`].
    pub queue_capacity: usize,
    /// Delay-based admission: while the most recently started task waited longer than this in
    /// the queue (and at least `workers` tasks are still queued), submissions fail with
    /// [`crate::SubmitError::QueueDelay`]. A count bound assumes a task rate; this one measures
    /// it, so it holds when the workers slow down (CPU stolen by other processes). `None`: off.
    pub max_queue_delay: Option<Duration>,
    /// How tasks reach workers.
    pub design: QueueDesign,
    /// Work-stealing design only: whether an idle worker steals from other workers' deques.
    /// `false` leaves tasks submitted by a worker to that worker alone (the injector is still
    /// shared): the fair-distribution check's control, never a production setting.
    pub steal: bool,
    /// Put each worker's hot counters on its own cache line (`CachePadded`). `false` packs them
    /// side by side: the false-sharing experiment's control.
    pub pad_counters: bool,
    /// Thread name prefix (`NAME-0`, `NAME-1`, …).
    pub name: String,
    /// Worker stack size, bytes.
    pub stack_size: usize,
    /// Sample the queue depth this often (`None`: no sampler thread).
    pub depth_sample_interval: Option<Duration>,
    /// Depth samples kept.
    pub depth_samples: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: default_workers(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_queue_delay: None,
            design: QueueDesign::WorkStealing,
            steal: true,
            pad_counters: true,
            name: "m06-pool".into(),
            stack_size: 256 * 1024,
            depth_sample_interval: Some(DEFAULT_DEPTH_SAMPLE_INTERVAL),
            depth_samples: DEFAULT_DEPTH_SAMPLES,
        }
    }
}

impl PoolConfig {
    /// The default configuration with `workers` threads and the given design.
    pub fn with(workers: usize, design: QueueDesign) -> Self {
        PoolConfig {
            workers,
            design,
            ..PoolConfig::default()
        }
    }

    /// The queue capacity that keeps the worst queueing delay of an accepted task within
    /// `budget`, for tasks of mean duration `mean_task` on `workers` workers (Little's law: a
    /// full queue drains in `capacity × mean_task / workers`). At least 1.
    pub fn capacity_for_latency(workers: usize, mean_task: Duration, budget: Duration) -> usize {
        let task_ns = mean_task.as_nanos().max(1);
        let cap = budget.as_nanos() * workers.max(1) as u128 / task_ns;
        usize::try_from(cap).unwrap_or(usize::MAX).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_latency_budget_sets_capacity() {
        // 2 workers, 50 µs tasks, 10 ms budget: 400 tasks drain in 10 ms.
        let cap = PoolConfig::capacity_for_latency(
            2,
            Duration::from_micros(50),
            Duration::from_millis(10),
        );
        assert_eq!(cap, 400);
        // Never zero, even for a budget shorter than one task.
        assert_eq!(
            PoolConfig::capacity_for_latency(1, Duration::from_secs(1), Duration::from_millis(1)),
            1
        );
        assert!(PoolConfig::default().queue_capacity >= 1);
        assert!(PoolConfig::default().workers >= 1);
    }
}
