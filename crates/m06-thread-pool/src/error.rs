//! Why a submission was refused: the pool's only errors.
//!
//! The pool never grows a queue past its capacity and never blocks a submitter forever: a task it
//! cannot take comes back as a [`SubmitError`], and the caller decides (a connection driver maps
//! [`SubmitError::QueueFull`] and [`SubmitError::QueueDelay`] to the protocol's refusal: HTTP 503).

/// A task the pool did not accept. The task itself is dropped, never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// `capacity` tasks are already queued (not yet started): the overflow policy is to reject.
    #[error("task queue full ({capacity} tasks queued)")]
    QueueFull {
        /// The configured queue capacity.
        capacity: usize,
    },
    /// Tasks starting now waited longer than the configured `max_queue_delay`: the queue is
    /// admitting no more until it catches up (delay-based admission, independent of how fast
    /// the workers currently run).
    #[error("task queue delay {observed:?} over the {budget:?} budget")]
    QueueDelay {
        /// Queue wait of the most recently started task.
        observed: std::time::Duration,
        /// The configured budget.
        budget: std::time::Duration,
    },
    /// The pool is shutting down (or gone) and takes no new work from outside its workers.
    #[error("thread pool is shutting down")]
    ShuttingDown,
}

impl SubmitError {
    /// A short snake_case name (metric label).
    pub fn name(self) -> &'static str {
        match self {
            SubmitError::QueueFull { .. } => "queue_full",
            SubmitError::QueueDelay { .. } => "queue_delay",
            SubmitError::ShuttingDown => "shutting_down",
        }
    }
}
