//! # Milestone 10: one event loop per core
//!
//! Milestone 9's loop uses one core. This one runs a loop per core and keeps them out of each
//! other's way: each loop has its own listening socket (`SO_REUSEPORT`: the kernel spreads
//! new connections by a hash of their addresses), its own thread pinned to its own CPU, its
//! own connection table, timer wheel, buffers and counters. Nothing on the request path is
//! shared, so nothing needs a lock — the loops talk only through mailboxes (a lock-free queue
//! and an `eventfd` that wakes the receiver), to move connections when one loop has too many
//! and to run tasks on each other's threads.
//!
//! ```text
//!   CPU 0: loop 0 [listener 0 | epoll | conns | wheel | stats] ◀─ mailbox 0 (eventfd) ─┐
//!   CPU 1: loop 1 [listener 1 | epoll | conns | wheel | stats] ◀─ mailbox 1 (eventfd) ─┤
//!          steal: underloaded loop ─Steal{n}─▶ busiest ─Adopt(fd, session, input)×n─▶ ┘
//! ```
//!
//! ## The public interface
//!
//! - [`server`]: [`MultiLoopServer`] / [`MultiConfig`] ([`Distribution`]: `SO_REUSEPORT` or
//!   one acceptor), [`Running`] (cross-thread [`Task`]s through [`LoopControl`]),
//!   [`MultiStatsHandle`], [`MultiReport`].
//! - [`mailbox`]: [`Mailbox`], bounded lock-free queue + eventfd, with a close protocol that
//!   loses nothing.
//! - [`balance`]: [`BalanceConfig`], [`plan_steal`], [`imbalance_pct`]: when and how much to
//!   migrate.
//! - [`affinity`]: pinning within the process's allowed CPUs.
//! - [`stats`]: per-loop migration and message counters (single writer).
//!
//! ```no_run
//! use std::sync::Arc;
//! use m03_thread_per_conn::EchoFactory;
//! use m10_multi_loop::{MultiConfig, MultiLoopServer};
//!
//! let server = MultiLoopServer::bind(MultiConfig::new("127.0.0.1:0".parse()?))?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown_handle().install_signal_handlers()?;
//! let report = server.run(Arc::new(EchoFactory::default()))?;
//! for l in &report.loops {
//!     eprintln!("loop {} on CPU {}: {} accepted", l.index, l.cpu, l.event_loop.accepted);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod affinity;
pub mod balance;
pub mod mailbox;
pub mod server;
pub mod stats;

#[doc(hidden)]
pub mod lab;

pub use balance::{BalanceConfig, imbalance_pct, plan_steal};
pub use mailbox::{Mailbox, SendError};
pub use server::{
    Distribution, LoopControl, LoopReport, MultiConfig, MultiLoopServer, MultiReport,
    MultiStatsHandle, Running, Task,
};
pub use stats::{MultiSnapshot, MultiStats};
