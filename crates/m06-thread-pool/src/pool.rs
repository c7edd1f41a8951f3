//! The pool: workers, the two queue designs, submission, parking, shutdown.
//!
//! ## Invariants (what the shutdown accounting rests on)
//!
//! - `pending` counts job entries sitting in queues (including husks of tasks cancelled or run
//!   by a joiner). It is raised *before* an entry becomes visible and lowered only *after* a
//!   worker has raised `active` for the entry it took, so `pending + active > 0` whenever any
//!   accepted task could still run or submit more work.
//! - Every entry is popped exactly once and counted exactly once: completed (per worker),
//!   panicked, or cancelled; a husk of a task a joiner ran is skipped (the joiner counted it).
//! - A worker exits only when the pool is shutting down and `pending == 0 && active == 0`.
//!   Outside submitters are fenced by `submitting` (they announce themselves before checking
//!   the state; `shutdown` waits for the announcements to clear), so nothing can be pushed after
//!   the last worker left.
//!
//! ## Work-stealing scheduling policy
//!
//! A worker looks for work in this order: every 61st turn the global injector first (so work
//! from outside is not starved by tasks that keep submitting locally), then its own deque (FIFO),
//! then a batch from the injector (one contended operation moves up to 32 tasks), then the other
//! workers' deques, starting with its right-hand neighbour, taking half of what it finds. With
//! nothing found it parks on a condvar; submitters wake one parked worker only when the sleeper
//! count says someone is parked (no syscall on the hot path).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};
use serde::Serialize;

use crate::config::{PoolConfig, QueueDesign, ShutdownMode};
use crate::error::SubmitError;
use crate::metrics::{Metrics, PoolSnapshot};
use crate::task::{Claim, Job, TaskCell, TaskFn, TaskHandle};

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const CANCELLING: u8 = 2;

/// Every this many turns a work-stealing worker checks the injector before its own deque.
const INJECTOR_FAIRNESS_TICKS: u32 = 61;
/// One global-queue lock operation in this many (per thread) is timed.
const LOCK_SAMPLE_EVERY: u32 = 16;

static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// Set on worker threads: which pool, which worker, and its local deque.
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    static LOCK_SAMPLE: Cell<u32> = const { Cell::new(0) };
}

struct Local {
    pool: usize,
    index: usize,
    deque: Option<Deque<Job>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sample_lock() -> bool {
    LOCK_SAMPLE.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % LOCK_SAMPLE_EVERY == 0
    })
}

struct GlobalQueue {
    jobs: VecDeque<Job>,
    waiters: usize,
}

// One per pool, built once and never moved: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Queue {
    Global {
        q: Mutex<GlobalQueue>,
        cv: Condvar,
    },
    Stealing {
        injector: Injector<Job>,
        stealers: Vec<Stealer<Job>>,
        idle: Mutex<()>,
        idle_cv: Condvar,
        sleepers: CachePadded<AtomicUsize>,
    },
}

/// State shared by the pool, its workers, spawners and task handles.
pub(crate) struct Shared {
    id: usize,
    config: PoolConfig,
    state: AtomicU8,
    pending: CachePadded<AtomicUsize>,
    active: CachePadded<AtomicUsize>,
    submitting: CachePadded<AtomicUsize>,
    /// Queue wait of the most recently started task, ns (only with `max_queue_delay`).
    recent_wait_ns: CachePadded<AtomicU64>,
    queue: Queue,
    pub(crate) metrics: Metrics,
    sampler_stop: Mutex<bool>,
    sampler_cv: Condvar,
}

/// Decrements `active` when a task ends, even by unwinding, and wakes workers while shutting
/// down so the last one sees `active == 0`.
struct ActiveGuard<'a>(&'a Shared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
        if self.0.state.load(SeqCst) != RUNNING {
            self.0.wake_all();
        }
    }
}

impl Shared {
    /// This thread's worker index, if it is a worker of this pool.
    fn current_worker(&self) -> Option<usize> {
        LOCAL.with(|l| {
            l.try_borrow()
                .ok()
                .and_then(|l| l.as_ref().filter(|x| x.pool == self.id).map(|x| x.index))
        })
    }

    fn accepting(&self, from_worker: bool) -> Result<(), SubmitError> {
        match self.state.load(SeqCst) {
            RUNNING => Ok(()),
            DRAINING if from_worker => Ok(()),
            _ => Err(SubmitError::ShuttingDown),
        }
    }

    /// Delay-based admission (see `PoolConfig::max_queue_delay`).
    fn admit_delay(&self) -> Result<(), SubmitError> {
        let Some(budget) = self.config.max_queue_delay else {
            return Ok(());
        };
        let observed = Duration::from_nanos(self.recent_wait_ns.load(Relaxed));
        // The signal is only as fresh as the last start. With fewer queued tasks than workers a
        // new task starts within about one task time whatever the signal says, and refusing
        // would only let the workers run dry between bursts.
        if observed > budget && self.pending.load(Relaxed) >= self.config.workers {
            return Err(SubmitError::QueueDelay { observed, budget });
        }
        Ok(())
    }

    fn reject(&self, e: SubmitError) -> SubmitError {
        match e {
            SubmitError::QueueFull { .. } => self.metrics.rejected_full.fetch_add(1, Relaxed),
            SubmitError::QueueDelay { .. } => self.metrics.rejected_delay.fetch_add(1, Relaxed),
            SubmitError::ShuttingDown => self.metrics.rejected_shutdown.fetch_add(1, Relaxed),
        };
        e
    }

    /// Reserves `n` queue slots (work-stealing design), all or none.
    fn reserve(&self, n: usize) -> Result<(), SubmitError> {
        let cap = self.config.queue_capacity;
        let mut cur = self.pending.load(SeqCst);
        loop {
            if cur + n > cap {
                return Err(SubmitError::QueueFull { capacity: cap });
            }
            match self
                .pending
                .compare_exchange_weak(cur, cur + n, SeqCst, SeqCst)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Queues `jobs` (all or none).
    pub(crate) fn push(&self, jobs: Vec<Job>) -> Result<(), SubmitError> {
        let n = jobs.len();
        if n == 0 {
            return Ok(());
        }
        let worker = self.current_worker();
        match &self.queue {
            Queue::Global { q, cv } => {
                let timed = sample_lock();
                let t0 = timed.then(Instant::now);
                let mut g = lock(q);
                let t1 = t0.map(|t0| (t0, Instant::now()));
                if let Err(e) = self
                    .accepting(worker.is_some())
                    .and_then(|()| self.admit_delay())
                {
                    return Err(self.reject(e));
                }
                if g.jobs.len() + n > self.config.queue_capacity {
                    return Err(self.reject(SubmitError::QueueFull {
                        capacity: self.config.queue_capacity,
                    }));
                }
                g.jobs.extend(jobs);
                self.pending.fetch_add(n, SeqCst);
                let waiters = g.waiters;
                drop(g);
                if let Some((t0, t1)) = t1 {
                    self.metrics.lock_wait.record(t1 - t0);
                    self.metrics.lock_hold.record(t1.elapsed());
                }
                if waiters > 0 {
                    if n > 1 {
                        cv.notify_all();
                    } else {
                        cv.notify_one();
                    }
                }
            }
            Queue::Stealing {
                injector,
                idle,
                idle_cv,
                sleepers,
                ..
            } => {
                let outside = worker.is_none();
                if outside {
                    self.submitting.fetch_add(1, SeqCst);
                }
                let res = self
                    .accepting(!outside)
                    .and_then(|()| self.admit_delay())
                    .and_then(|()| self.reserve(n));
                if res.is_ok() {
                    let mut jobs = Some(jobs);
                    if !outside {
                        LOCAL.with(|l| {
                            if let Ok(l) = l.try_borrow()
                                && let Some(deque) = l.as_ref().and_then(|l| l.deque.as_ref())
                            {
                                for j in jobs.take().into_iter().flatten() {
                                    deque.push(j);
                                }
                            }
                        });
                    }
                    for j in jobs.into_iter().flatten() {
                        injector.push(j);
                    }
                }
                if outside {
                    self.submitting.fetch_sub(1, SeqCst);
                }
                if let Err(e) = res {
                    return Err(self.reject(e));
                }
                if sleepers.load(SeqCst) > 0 {
                    let _g = lock(idle);
                    if n > 1 {
                        idle_cv.notify_all();
                    } else {
                        idle_cv.notify_one();
                    }
                }
            }
        }
        self.metrics.submitted.fetch_add(n as u64, Relaxed);
        Ok(())
    }

    fn wake_all(&self) {
        match &self.queue {
            Queue::Global { q, cv } => {
                let _g = lock(q);
                cv.notify_all();
            }
            Queue::Stealing { idle, idle_cv, .. } => {
                let _g = lock(idle);
                idle_cv.notify_all();
            }
        }
    }

    /// Runs a task on the calling thread (a joiner helping, or caller-runs on overflow).
    pub(crate) fn run_inline(&self, f: TaskFn, cell: Option<&Arc<TaskCell>>) {
        self.active.fetch_add(1, SeqCst);
        let _active = ActiveGuard(self);
        self.metrics.run_inline.fetch_add(1, Relaxed);
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(f));
        let helper = self.metrics.latency.len() - 1;
        self.metrics.latency[helper].run.record(start.elapsed());
        let panicked = result.is_err();
        if panicked {
            self.metrics.panicked.fetch_add(1, Relaxed);
        } else {
            self.metrics.helper_completed.fetch_add(1, Relaxed);
        }
        if let Some(cell) = cell {
            cell.finish(panicked);
        }
        if let Err(payload) = result {
            // A payload whose Drop panics must not take the caller down with it.
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workers

    fn worker_loop(&self, index: usize) {
        let mut tick = 0u32;
        while let Some(job) = self.next_job(index, &mut tick) {
            let _active = ActiveGuard(self);
            self.execute(job, index);
        }
    }

    fn execute(&self, job: Job, index: usize) {
        if self.state.load(Relaxed) == CANCELLING {
            if job.cancel() {
                self.metrics.cancelled.fetch_add(1, Relaxed);
            }
            return;
        }
        let submitted = job.submitted;
        match job.claim() {
            Claim::WasCancelled => {
                self.metrics.cancelled.fetch_add(1, Relaxed);
            }
            Claim::TakenByJoiner => {}
            Claim::Run(f, cell) => {
                let w = self.metrics.workers.get(index);
                let lat = &self.metrics.latency[index];
                let start = Instant::now();
                let waited = start.saturating_duration_since(submitted);
                lat.queue_wait.record(waited);
                if self.config.max_queue_delay.is_some() {
                    self.recent_wait_ns.store(waited.as_nanos() as u64, Relaxed);
                }
                let result = catch_unwind(AssertUnwindSafe(f));
                let ran = start.elapsed();
                lat.run.record(ran);
                w.busy_ns.fetch_add(ran.as_nanos() as u64, Relaxed);
                let panicked = result.is_err();
                if panicked {
                    self.metrics.panicked.fetch_add(1, Relaxed);
                } else {
                    w.tasks.fetch_add(1, Relaxed);
                }
                if let Some(cell) = cell {
                    cell.finish(panicked);
                }
                // Dropping a panic payload runs arbitrary code; if that panics too, the worker
                // loop unwinds and its supervisor restarts it (counted as a worker restart).
                drop(result);
            }
        }
    }

    fn next_job(&self, index: usize, tick: &mut u32) -> Option<Job> {
        match &self.queue {
            Queue::Global { q, cv } => {
                let timed = sample_lock();
                let t0 = timed.then(Instant::now);
                let mut g = lock(q);
                let mut t1 = t0.map(|t0| (t0, Instant::now()));
                loop {
                    if let Some(job) = g.jobs.pop_front() {
                        self.active.fetch_add(1, SeqCst);
                        self.pending.fetch_sub(1, SeqCst);
                        drop(g);
                        if let Some((t0, t1)) = t1 {
                            self.metrics.lock_wait.record(t1 - t0);
                            self.metrics.lock_hold.record(t1.elapsed());
                        }
                        return Some(job);
                    }
                    if self.state.load(SeqCst) != RUNNING && self.active.load(SeqCst) == 0 {
                        drop(g);
                        cv.notify_all();
                        return None;
                    }
                    g.waiters += 1;
                    let parked = Instant::now();
                    g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                    g.waiters -= 1;
                    self.metrics
                        .workers
                        .get(index)
                        .idle_ns
                        .fetch_add(parked.elapsed().as_nanos() as u64, Relaxed);
                    // A hold that included a condvar wait is not a hold: time only direct pops.
                    t1 = None;
                }
            }
            Queue::Stealing {
                idle,
                idle_cv,
                sleepers,
                ..
            } => loop {
                if let Some(job) = self.find_work(index, tick) {
                    self.active.fetch_add(1, SeqCst);
                    self.pending.fetch_sub(1, SeqCst);
                    return Some(job);
                }
                let stopping = self.state.load(SeqCst) != RUNNING;
                if stopping && self.pending.load(SeqCst) == 0 && self.active.load(SeqCst) == 0 {
                    self.wake_all();
                    return None;
                }
                let parked = Instant::now();
                let mut g = lock(idle);
                sleepers.fetch_add(1, SeqCst);
                let finished = self.state.load(SeqCst) != RUNNING
                    && self.active.load(SeqCst) == 0
                    && self.pending.load(SeqCst) == 0;
                if self.pending.load(SeqCst) == 0 && !finished {
                    g = idle_cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                } else if !self.config.steal && !finished {
                    // Stealing off: the pending work may all sit in other workers' deques,
                    // out of reach; nap instead of spinning (a submit still wakes us).
                    g = idle_cv
                        .wait_timeout(g, Duration::from_millis(1))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                sleepers.fetch_sub(1, SeqCst);
                drop(g);
                self.metrics
                    .workers
                    .get(index)
                    .idle_ns
                    .fetch_add(parked.elapsed().as_nanos() as u64, Relaxed);
            },
        }
    }

    fn find_work(&self, index: usize, tick: &mut u32) -> Option<Job> {
        let Queue::Stealing {
            injector, stealers, ..
        } = &self.queue
        else {
            return None;
        };
        LOCAL.with(|l| {
            let l = l.try_borrow().ok()?;
            let deque = l.as_ref()?.deque.as_ref()?;
            *tick = tick.wrapping_add(1);
            let from_injector = || loop {
                match injector.steal_batch_and_pop(deque) {
                    Steal::Success(j) => return Some(j),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            };
            if *tick % INJECTOR_FAIRNESS_TICKS == 0
                && let Some(j) = from_injector()
            {
                return Some(j);
            }
            if let Some(j) = deque.pop() {
                return Some(j);
            }
            if let Some(j) = from_injector() {
                return Some(j);
            }
            let n = if self.config.steal { stealers.len() } else { 0 };
            for k in 1..n {
                let victim = &stealers[(index + k) % n];
                loop {
                    match victim.steal_batch_and_pop(deque) {
                        Steal::Success(j) => {
                            let w = self.metrics.workers.get(index);
                            w.steals.fetch_add(1, Relaxed);
                            w.stolen_tasks.fetch_add(1 + deque.len() as u64, Relaxed);
                            return Some(j);
                        }
                        Steal::Empty => break,
                        Steal::Retry => std::hint::spin_loop(),
                    }
                }
            }
            None
        })
    }

    /// Takes every entry still queued (after the workers left): nothing, if the invariants hold.
    fn sweep(&self) -> Vec<Job> {
        let mut left = Vec::new();
        match &self.queue {
            Queue::Global { q, .. } => left.extend(lock(q).jobs.drain(..)),
            Queue::Stealing { injector, .. } => loop {
                match injector.steal() {
                    Steal::Success(j) => left.push(j),
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            },
        }
        left
    }

    fn snapshot(&self) -> PoolSnapshot {
        self.metrics
            .snapshot(self.config.design.name(), self.pending.load(Relaxed) as u64)
    }
}

fn worker_main(shared: Arc<Shared>, index: usize, deque: Option<Deque<Job>>) {
    LOCAL.with(|l| {
        *l.borrow_mut() = Some(Local {
            pool: shared.id,
            index,
            deque,
        })
    });
    // The supervisor: a crash of the worker loop itself (not of a task: those are caught
    // per task) restarts the loop on the same thread, with the same local deque.
    loop {
        match catch_unwind(AssertUnwindSafe(|| shared.worker_loop(index))) {
            Ok(()) => break,
            Err(payload) => {
                shared.metrics.worker_restarts.fetch_add(1, Relaxed);
                std::mem::forget(payload);
            }
        }
    }
    LOCAL.with(|l| drop(l.borrow_mut().take()));
}

fn sampler_main(shared: Arc<Shared>, every: Duration) {
    let mut stop = lock(&shared.sampler_stop);
    loop {
        stop = shared
            .sampler_cv
            .wait_timeout(stop, every)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *stop {
            return;
        }
        shared
            .metrics
            .record_depth(shared.pending.load(Relaxed) as u64);
    }
}

/// Submits work to a pool; cheap to clone, usable from any thread (including tasks).
#[derive(Clone)]
pub struct Spawner {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner")
            .field("design", &self.shared.config.design)
            .field("queued", &self.queued())
            .finish()
    }
}

impl Spawner {
    /// Queues `f` without a handle (the fast path). Never blocks.
    pub fn execute<F>(&self, f: F) -> Result<(), SubmitError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared.push(vec![Job::plain(Box::new(f))])
    }

    /// Queues `f` and returns a handle to cancel it or wait for it. Never blocks.
    pub fn submit<F>(&self, f: F) -> Result<TaskHandle, SubmitError>
    where
        F: FnOnce() + Send + 'static,
    {
        let (job, cell) = Job::handled(Box::new(f));
        self.shared.push(vec![job])?;
        Ok(TaskHandle::new(cell, Arc::clone(&self.shared)))
    }

    /// Queues every task of `tasks` in one operation (one lock, one capacity reservation, one
    /// wake-up), or none of them. Returns how many were queued.
    pub fn execute_batch<I, F>(&self, tasks: I) -> Result<usize, SubmitError>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() + Send + 'static,
    {
        let jobs: Vec<Job> = tasks.into_iter().map(|f| Job::plain(Box::new(f))).collect();
        let n = jobs.len();
        self.shared.push(jobs).map(|()| n)
    }

    /// As [`execute_batch`](Self::execute_batch), with a handle per task.
    pub fn submit_batch<I, F>(&self, tasks: I) -> Result<Vec<TaskHandle>, SubmitError>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() + Send + 'static,
    {
        let (jobs, cells): (Vec<Job>, Vec<Arc<TaskCell>>) =
            tasks.into_iter().map(|f| Job::handled(Box::new(f))).unzip();
        self.shared.push(jobs)?;
        Ok(cells
            .into_iter()
            .map(|c| TaskHandle::new(c, Arc::clone(&self.shared)))
            .collect())
    }

    /// Queues `f`, or, when the queue is full, runs it on the calling thread (the caller-runs
    /// policy). A task that fans out through this can never wait on a full queue, so recursive
    /// submission cannot deadlock, and a flooding submitter slows itself down. Returns `true`
    /// if it ran inline. Still fails with [`SubmitError::ShuttingDown`].
    pub fn execute_or_run<F>(&self, f: F) -> Result<bool, SubmitError>
    where
        F: FnOnce() + Send + 'static,
    {
        let (job, cell) = Job::handled(Box::new(f));
        match self.shared.push(vec![job]) {
            Ok(()) => Ok(false),
            Err(SubmitError::QueueFull { .. } | SubmitError::QueueDelay { .. }) => {
                // The job was dropped with the failed push, but its closure lives in the cell.
                match cell.claim() {
                    Some(f) => {
                        self.shared.metrics.submitted.fetch_add(1, Relaxed);
                        self.shared.run_inline(f, Some(&cell));
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Tasks queued and not started, now.
    pub fn queued(&self) -> usize {
        self.shared.pending.load(Relaxed)
    }

    /// Whether the calling thread is one of this pool's workers.
    pub fn is_worker_thread(&self) -> bool {
        self.shared.current_worker().is_some()
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// A copy of the pool's metrics.
    pub fn snapshot(&self) -> PoolSnapshot {
        self.shared.snapshot()
    }

    /// The metrics in Prometheus text, labelled with the pool's name.
    pub fn prometheus(&self) -> String {
        self.snapshot().prometheus(&self.shared.config.name)
    }
}

/// What [`ThreadPool::shutdown`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReport {
    /// Drain or cancel.
    pub mode: ShutdownMode,
    /// From the call to the last worker joined.
    pub took: Duration,
    /// Worker threads joined (all of them, unless one could not be joined).
    pub workers_joined: usize,
    /// Worker threads the pool had.
    pub workers: usize,
    /// Entries found queued after the workers left (0 when the invariants hold); cancelled.
    pub swept: u64,
    /// The final metrics.
    pub snapshot: PoolSnapshot,
}

impl ShutdownReport {
    /// Accepted tasks neither completed, panicked nor cancelled.
    pub fn unaccounted(&self) -> u64 {
        self.snapshot.unaccounted()
    }
}

/// A fixed-size pool of worker threads. See the [crate docs](crate).
///
/// Dereferences to its [`Spawner`] for submitting. Dropping it without
/// [`shutdown`](Self::shutdown) cancels what is queued and joins the workers.
pub struct ThreadPool {
    spawner: Spawner,
    workers: Vec<JoinHandle<()>>,
    sampler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers.len())
            .field("spawner", &self.spawner)
            .finish()
    }
}

impl std::ops::Deref for ThreadPool {
    type Target = Spawner;

    fn deref(&self) -> &Spawner {
        &self.spawner
    }
}

impl ThreadPool {
    /// Starts `config.workers` threads (at least one).
    pub fn new(mut config: PoolConfig) -> std::io::Result<ThreadPool> {
        config.workers = config.workers.max(1);
        config.queue_capacity = config.queue_capacity.max(1);
        let n = config.workers;
        let mut deques: Vec<Option<Deque<Job>>> = Vec::with_capacity(n);
        let queue = match config.design {
            QueueDesign::GlobalMutex => {
                deques.resize_with(n, || None);
                Queue::Global {
                    q: Mutex::new(GlobalQueue {
                        jobs: VecDeque::with_capacity(config.queue_capacity.min(1 << 16)),
                        waiters: 0,
                    }),
                    cv: Condvar::new(),
                }
            }
            QueueDesign::WorkStealing => {
                let locals: Vec<Deque<Job>> = (0..n).map(|_| Deque::new_fifo()).collect();
                let stealers = locals.iter().map(Deque::stealer).collect();
                deques.extend(locals.into_iter().map(Some));
                Queue::Stealing {
                    injector: Injector::new(),
                    stealers,
                    idle: Mutex::new(()),
                    idle_cv: Condvar::new(),
                    sleepers: CachePadded::new(AtomicUsize::new(0)),
                }
            }
        };
        let shared = Arc::new(Shared {
            id: NEXT_POOL_ID.fetch_add(1, Relaxed),
            metrics: Metrics::new(n, config.pad_counters, config.depth_samples),
            config,
            state: AtomicU8::new(RUNNING),
            pending: CachePadded::new(AtomicUsize::new(0)),
            active: CachePadded::new(AtomicUsize::new(0)),
            submitting: CachePadded::new(AtomicUsize::new(0)),
            recent_wait_ns: CachePadded::new(AtomicU64::new(0)),
            queue,
            sampler_stop: Mutex::new(false),
            sampler_cv: Condvar::new(),
        });
        let mut pool = ThreadPool {
            spawner: Spawner {
                shared: Arc::clone(&shared),
            },
            workers: Vec::with_capacity(n),
            sampler: None,
        };
        for (index, deque) in deques.into_iter().enumerate() {
            let s = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("{}-{index}", shared.config.name))
                .stack_size(shared.config.stack_size)
                .spawn(move || worker_main(s, index, deque))?;
            pool.workers.push(handle);
        }
        if let Some(every) = shared.config.depth_sample_interval {
            let s = Arc::clone(&shared);
            pool.sampler = Some(
                std::thread::Builder::new()
                    .name(format!("{}-depth", shared.config.name))
                    .spawn(move || sampler_main(s, every))?,
            );
        }
        Ok(pool)
    }

    /// A submitter for this pool (for tasks, or other threads).
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Stops the pool: [`ShutdownMode::Drain`] runs everything queued (and what those tasks
    /// submit), [`ShutdownMode::Cancel`] reports everything queued as cancelled. Either way
    /// outside submissions fail with [`SubmitError::ShuttingDown`] from now on, running tasks
    /// finish, every worker is joined, and every accepted task ends completed, panicked or
    /// cancelled ([`ShutdownReport::unaccounted`] is 0).
    pub fn shutdown(mut self, mode: ShutdownMode) -> ShutdownReport {
        self.stop(mode)
    }

    fn stop(&mut self, mode: ShutdownMode) -> ShutdownReport {
        let t = Instant::now();
        let shared = Arc::clone(&self.spawner.shared);
        let target = match mode {
            ShutdownMode::Drain => DRAINING,
            ShutdownMode::Cancel => CANCELLING,
        };
        match &shared.queue {
            Queue::Global { q, .. } => {
                let _g = lock(q);
                shared.state.store(target, SeqCst);
            }
            Queue::Stealing { .. } => {
                shared.state.store(target, SeqCst);
                // Outside submitters that saw RUNNING finish their push before we go on.
                while shared.submitting.load(SeqCst) > 0 {
                    std::thread::yield_now();
                }
            }
        }
        shared.wake_all();
        let workers = self.workers.len();
        let mut joined = 0;
        for w in self.workers.drain(..) {
            if w.join().is_ok() {
                joined += 1;
            }
        }
        *lock(&shared.sampler_stop) = true;
        shared.sampler_cv.notify_all();
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        let mut swept = 0;
        for job in shared.sweep() {
            shared.pending.fetch_sub(1, SeqCst);
            if job.cancel() {
                shared.metrics.cancelled.fetch_add(1, Relaxed);
            }
            swept += 1;
        }
        ShutdownReport {
            mode,
            took: t.elapsed(),
            workers_joined: joined,
            workers,
            swept,
            snapshot: shared.snapshot(),
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop(ShutdownMode::Cancel);
        }
    }
}
