//! # Milestone 6: a fixed-size thread pool, and connections driven on it
//!
//! A pool keeps a fixed number of threads and feeds them *tasks* (boxed closures) through a
//! bounded queue. This crate builds the classic design first and then the one modern runtimes
//! use, measures both, and runs milestone 3's sessions on top:
//!
//! ```text
//!  submit ──▶ ┌ GlobalMutex: Mutex<VecDeque> + Condvar ┐ ──▶ worker 0..N
//!             └ WorkStealing: injector ─▶ per-worker deques ◀─ steal ┘
//!  bounded: QueueFull (typed error, never unbounded growth) · cancel before start
//!  panics caught and counted · shutdown drains or cancels, every task accounted
//! ```
//!
//! The public interface is:
//!
//! - [`ThreadPool`] (with [`PoolConfig`], [`QueueDesign`]): start workers; submit through it or a
//!   cloned [`Spawner`] with [`Spawner::execute`] (no handle), [`Spawner::submit`] (a
//!   [`TaskHandle`]: [`TaskHandle::cancel`], [`TaskHandle::join`]), batches
//!   ([`Spawner::execute_batch`], [`Spawner::submit_batch`]) and the caller-runs overflow policy
//!   ([`Spawner::execute_or_run`]); stop with [`ThreadPool::shutdown`] and a [`ShutdownMode`].
//! - [`SubmitError`]: the only errors (queue full, shutting down).
//! - [`PoolSnapshot`]: counters, per-worker utilisation and steals, latency histograms
//!   (submit → start, start → end), lock hold times, sampled queue depth; Prometheus text.
//! - [`PoolServer`] (with [`PoolServerConfig`]): milestone 3's accept loop and session driver
//!   with each connection run as one pool task (through m03's `ConnectionExecutor` seam); a
//!   full queue refuses the connection with the factory's refusal (HTTP: 503).
//!
//! Modules: [`config`], [`task`], [`pool`] (the two queue designs and the worker loop — read its
//! docs for the invariants and the stealing policy), [`metrics`].
//!
//! ```
//! use m06_thread_pool::{PoolConfig, QueueDesign, ShutdownMode, ThreadPool};
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let pool = ThreadPool::new(PoolConfig::with(2, QueueDesign::WorkStealing))?;
//! let sum = Arc::new(AtomicU64::new(0));
//! for i in 0..100 {
//!     let sum = Arc::clone(&sum);
//!     pool.execute(move || { sum.fetch_add(i, Ordering::Relaxed); })?;
//! }
//! let report = pool.shutdown(ShutdownMode::Drain);
//! assert_eq!(sum.load(Ordering::Relaxed), 4950);
//! assert_eq!(report.unaccounted(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod error;
#[doc(hidden)]
pub mod lab;
pub mod metrics;
pub mod pool;
mod server;
pub mod task;

pub use config::{PoolConfig, QueueDesign, ShutdownMode};
pub use error::SubmitError;
pub use metrics::{HistogramSnapshot, PoolSnapshot, WorkerSnapshot};
pub use pool::{ShutdownReport, Spawner, ThreadPool};
pub use server::{
    DEFAULT_CONNECTION_QUEUE, DEFAULT_CONNECTION_WORKERS, PoolServer, PoolServerConfig,
    PoolServerReport, PoolStatsHandle,
};
pub use task::{TaskHandle, TaskStatus};
