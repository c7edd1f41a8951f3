//! The task abstraction: a boxed closure, its submit time, and (when the caller wants one) a
//! shared cell that a [`TaskHandle`] uses to cancel it, wait for it, or run it.
//!
//! ```text
//!            submit                 worker claims (CAS)           closure returns
//!  Queued ───────────▶ in a queue ─────────────────────▶ Running ─────────────────▶ Completed
//!    │                                                     │  panics (caught)
//!    │ cancel() (CAS) / shutdown(Cancel)                   └─────────────────────▶ Panicked
//!    ▼
//!  Cancelled   (the closure is dropped unrun; the worker that pops the husk counts it)
//! ```
//!
//! Exactly one party wins the `Queued → …` compare-and-swap, so a task runs at most once, and
//! every accepted task ends in exactly one of `Completed`, `Panicked` or `Cancelled`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::pool::Shared;

/// A unit of work: runs once, on some worker, with no result (send results through the closure's
/// captures).
pub(crate) type TaskFn = Box<dyn FnOnce() + Send + 'static>;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Accepted, waiting in a queue.
    Queued,
    /// A worker (or a joining thread) is running it.
    Running,
    /// Ran to the end.
    Completed,
    /// Ran and panicked; the panic was caught and counted, the worker lives on.
    Panicked,
    /// Will never run: cancelled through its handle or by a cancelling shutdown.
    Cancelled,
}

impl TaskStatus {
    fn from_u8(v: u8) -> TaskStatus {
        match v {
            QUEUED => TaskStatus::Queued,
            RUNNING => TaskStatus::Running,
            COMPLETED => TaskStatus::Completed,
            PANICKED => TaskStatus::Panicked,
            _ => TaskStatus::Cancelled,
        }
    }

    /// Whether the task is over (completed, panicked or cancelled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Panicked | TaskStatus::Cancelled
        )
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETED: u8 = 2;
const PANICKED: u8 = 3;
const CANCELLED: u8 = 4;

/// The state a handle shares with the queued job.
pub(crate) struct TaskCell {
    status: AtomicU8,
    /// The closure until someone claims it; also the mutex paired with `done`.
    func: Mutex<Option<TaskFn>>,
    done: Condvar,
}

impl TaskCell {
    fn status(&self) -> TaskStatus {
        TaskStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    /// `Queued → Running`: the caller now owns the closure.
    pub(crate) fn claim(&self) -> Option<TaskFn> {
        self.status
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.func
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// `Queued → Cancelled`; drops the closure. False if someone else got there first.
    fn cancel(&self) -> bool {
        if self
            .status
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let f = self
            .func
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(f);
        self.done.notify_all();
        true
    }

    /// `Running → Completed | Panicked`, waking joiners.
    pub(crate) fn finish(&self, panicked: bool) {
        let end = if panicked { PANICKED } else { COMPLETED };
        self.status.store(end, Ordering::Release);
        // Taking the lock orders this store before any joiner's re-check.
        drop(self.func.lock().unwrap_or_else(PoisonError::into_inner));
        self.done.notify_all();
    }

    fn wait(&self, timeout: Duration) -> TaskStatus {
        let deadline = Instant::now() + timeout;
        let mut guard = self.func.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let s = self.status();
            if s.is_final() {
                return s;
            }
            let now = Instant::now();
            if now >= deadline {
                return s;
            }
            guard = self
                .done
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// What sits in a queue.
pub(crate) enum JobKind {
    /// Fire and forget: no handle, no cell (the fast path).
    Plain(TaskFn),
    /// Submitted with a handle.
    Handled(Arc<TaskCell>),
}

/// A queued task and when it was submitted.
pub(crate) struct Job {
    pub(crate) kind: JobKind,
    pub(crate) submitted: Instant,
}

/// What a worker got when it popped a job.
pub(crate) enum Claim {
    /// Run this; call `cell.finish` afterwards if there is a cell.
    Run(TaskFn, Option<Arc<TaskCell>>),
    /// Cancelled through its handle while queued: count it as cancelled.
    WasCancelled,
    /// A joining thread already ran it (and counted it): skip the husk.
    TakenByJoiner,
}

impl Job {
    pub(crate) fn plain(f: TaskFn) -> Job {
        Job {
            kind: JobKind::Plain(f),
            submitted: Instant::now(),
        }
    }

    pub(crate) fn handled(f: TaskFn) -> (Job, Arc<TaskCell>) {
        let cell = Arc::new(TaskCell {
            status: AtomicU8::new(QUEUED),
            func: Mutex::new(Some(f)),
            done: Condvar::new(),
        });
        let job = Job {
            kind: JobKind::Handled(Arc::clone(&cell)),
            submitted: Instant::now(),
        };
        (job, cell)
    }

    /// Takes the closure if the task is still queued.
    pub(crate) fn claim(self) -> Claim {
        match self.kind {
            JobKind::Plain(f) => Claim::Run(f, None),
            JobKind::Handled(cell) => match cell.claim() {
                Some(f) => Claim::Run(f, Some(cell)),
                None if cell.status() == TaskStatus::Cancelled => Claim::WasCancelled,
                None => Claim::TakenByJoiner,
            },
        }
    }

    /// Cancels the job (a cancelling shutdown). True when this call cancelled it, false when it
    /// had already ended elsewhere (cancelled through its handle also returns true: the husk is
    /// counted exactly once, here).
    pub(crate) fn cancel(self) -> bool {
        match self.kind {
            JobKind::Plain(f) => {
                drop(f);
                true
            }
            JobKind::Handled(cell) => cell.cancel() || cell.status() == TaskStatus::Cancelled,
        }
    }
}

/// A submitted task: ask where it is, cancel it before it starts, or wait for it.
///
/// [`TaskHandle::join`] *helps*: if the task is still queued, the joining thread claims it and runs
/// it itself instead of sleeping behind the queue. A task that waits on a task it submitted can
/// therefore never deadlock the pool (even with one worker), and a waiter of any importance is
/// never stuck behind a backlog of unrelated work: the priority-inversion case of a pool.
#[derive(Clone)]
pub struct TaskHandle {
    cell: Arc<TaskCell>,
    pool: Arc<Shared>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("status", &self.status())
            .finish()
    }
}

impl TaskHandle {
    pub(crate) fn new(cell: Arc<TaskCell>, pool: Arc<Shared>) -> TaskHandle {
        TaskHandle { cell, pool }
    }

    /// Where the task is now.
    pub fn status(&self) -> TaskStatus {
        self.cell.status()
    }

    /// Prevents the task from running if it has not started. Returns true if this call
    /// cancelled it; false if it is already running or over.
    pub fn cancel(&self) -> bool {
        self.cell.cancel()
    }

    /// Waits up to `timeout` for the task to end, without helping; returns its status then.
    pub fn wait_timeout(&self, timeout: Duration) -> TaskStatus {
        self.cell.wait(timeout)
    }

    /// Runs the task here if it is still queued, otherwise waits (up to `timeout`) for the worker
    /// running it. Returns the status at the end.
    pub fn join(&self, timeout: Duration) -> TaskStatus {
        if let Some(f) = self.cell.claim() {
            self.pool.run_inline(f, Some(&self.cell));
        }
        self.cell.wait(timeout)
    }
}
