//! # Milestone 3: one thread per connection, and the session contract
//!
//! The simplest concurrent server: an acceptor hands every connection to a new OS thread,
//! which runs blocking `recv`/`send` until the connection ends. Each connection is straight-line
//! code with its own stack. This crate builds that server carefully and measures its costs
//! (see `docs/milestones/03-thread-per-conn.md`).
//!
//! ```text
//!  acceptor ── poll(wake pipe, listener) ── accept4 ── cap? ── spawn("conn-N", 128 KiB) ──┐
//!                                                                                        ▼
//!  conn-N:  catch_unwind { session = factory.new_session(); loop { send pending; recv → handle_input } }
//!           thread-local stats slot ─▶ registry (merged on read)      log ring ─▶ writer thread
//! ```
//!
//! ## The public interface
//!
//! - [`session`]: the sans-IO contract every driver in Zyphos runs ([`Session`],
//!   [`SessionFactory`]), with milestone 1's echo as its first core ([`EchoSession`]).
//! - [`testing`]: [`testing::PipeDriver`], an in-memory driver that injects short reads, short
//!   writes, resets and virtual time. It is the reference for the driver rules.
//! - [`threads`]: the driver. [`ThreadServer`], [`ThreadConfig`] (stack size, thread cap,
//!   grace period, [`ThreadMode`] including the pre-spawned pool precursor), [`ShutdownHandle`],
//!   [`StatsHandle`], [`ThreadReport`].
//! - [`stats`]: lifecycle counters (atomics) and per-thread traffic slots reached through
//!   `thread_local!` and merged on read ([`ThreadStats`], Prometheus text).
//! - [`log`]: the bounded, thread-safe logger ([`Logger`], [`LogConfig`], [`Level`]).
//! - [`procfs`]: what the kernel says about our threads: count, per-thread context switches and
//!   CPU, run queue, memory breakdown.
//! - [`lockorder`]: deadlock detection (bounded waits) and prevention (ranked locks).
//! - [`sys`]: the only `unsafe` code: a counting allocator, privilege drop and `RLIMIT_NPROC`
//!   for the spawn-failure test, `epoll` for the thundering-herd experiment.
//!
//! ```no_run
//! use std::sync::Arc;
//! use m03_thread_per_conn::{EchoFactory, ThreadConfig, ThreadServer};
//!
//! let server = ThreadServer::bind(ThreadConfig::new("127.0.0.1:0".parse()?))?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown_handle().install_signal_handlers()?;
//! let report = server.run(Arc::new(EchoFactory::default()))?;
//! eprintln!("{}", report.stats.prometheus());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

#[doc(hidden)]
pub mod lab;
pub mod lockorder;
pub mod log;
pub mod procfs;
pub mod session;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod testing;
pub mod threads;

pub use log::{Level, LogConfig, LogSink, Logger};
pub use session::{
    CloseReason, EchoConfig, EchoEvent, EchoFactory, EchoSession, Outbox, Session, SessionFactory,
    SessionState,
};
pub use stats::ThreadStats;
pub use threads::{
    ConnectionExecutor, ConnectionJob, ShutdownHandle, StatsHandle, ThreadConfig, ThreadMode,
    ThreadReport, ThreadServer,
};
