//! # Milestone 9: the epoll event loop
//!
//! Milestones 3 and 6 gave every connection a thread (of its own, or borrowed from a pool)
//! that blocks in `recv`. Ten thousand connections meant ten thousand stacks and a scheduler
//! juggling them, most of them asleep. An event loop turns this around: **one** thread asks
//! the kernel which of its sockets are ready (`epoll_wait`), does the little work each ready
//! one allows without ever blocking, and asks again. An idle connection costs a table entry
//! and a few hundred bytes, not a thread.
//!
//! ```text
//!  ┌────────────────────────────── one thread ───────────────────────────────┐
//!  │  epoll_wait(timeout = next timer) ─▶ [ready fds] ─▶ for each:            │
//!  │     listener ─▶ accept4(NONBLOCK) × batch ─▶ register(EPOLLIN)            │
//!  │     socket   ─▶ recv ─▶ Session::handle_input ─▶ send ─▶ settle:          │
//!  │                   interest = f(state, input limit, blocked output)        │
//!  │                   deadline = Session::poll_timeout ─▶ timer wheel         │
//!  │  timer wheel.advance(now) ─▶ Session::handle_timeout                     │
//!  └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The protocol is not here: the loop drives any m03 [`Session`](m03_thread_per_conn::Session)
//! — echo, m04's HTTP/1.0, m08's HTTP/1.1 — exactly as the thread and pool drivers do.
//!
//! ## The public interface
//!
//! - [`reactor`]: [`Reactor`] (register / modify / deregister / wait), [`EpollReactor`] (raw
//!   epoll: level- or edge-triggered, `EPOLLONESHOT`, `EPOLLEXCLUSIVE`) and [`MioReactor`]
//!   (the same over mio, so the loop builds on kqueue systems).
//! - [`timer`]: [`TimerWheel`], hierarchical, four levels of 64 slots plus an overflow list.
//! - [`event_loop`]: [`EventLoop`] and [`LoopConfig`]: accept batching, partial reads and
//!   writes, per-connection state, interest changes, close handling, `EMFILE` survival,
//!   blocked-loop detection; [`Detached`] connections for milestone 10's migration. Input a
//!   session has not consumed yet waits in a buffer from the loop's m07 `BufferPool` (idle
//!   connections hold none).
//! - [`server`]: [`EpollServer`]: `workers` loops on threads over a shared listener
//!   (`EPOLLEXCLUSIVE`) or `SO_REUSEPORT` listeners; graceful shutdown through m03's
//!   [`ShutdownHandle`](m03_thread_per_conn::ShutdownHandle).
//! - [`stats`]: [`LoopStats`], single-writer counters and histograms read without locks.
//! - [`sys`]: the system calls (the only `unsafe`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use m03_thread_per_conn::EchoFactory;
//! use m09_event_loop::{EpollServer, ServerConfig};
//!
//! let server = EpollServer::bind(ServerConfig::new("127.0.0.1:0".parse()?))?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown_handle().install_signal_handlers()?;
//! let report = server.run(Arc::new(EchoFactory::default()))?;
//! eprintln!("{}", report.loops[0].prometheus("zyphos_loop"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod event_loop;
#[doc(hidden)]
pub mod lab;
pub mod reactor;
pub mod server;
mod stash;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod timer;

pub use event_loop::{Detached, EventLoop, LoopConfig, Token};
pub use reactor::{
    DefaultReactor, EpollReactor, Event, Interest, MioReactor, Mode, Reactor, Trigger,
};
pub use server::{EpollServer, ReactorKind, ServerConfig, ServerReport, StatsHandle};
pub use stats::{HistogramSnapshot, LoopSnapshot, LoopStats};
pub use timer::TimerWheel;
