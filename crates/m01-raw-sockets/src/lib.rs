//! # Milestone 1: raw sockets and the syscall boundary
//!
//! A TCP echo server written against the Berkeley sockets API as the kernel exposes it, one
//! `libc` call at a time, with every call counted and timed.
//!
//! ## The syscall boundary
//!
//! A socket is a kernel object; user space holds only a small integer, the *file descriptor*.
//! Everything we do with it is a request across the boundary: the CPU switches to kernel mode
//! (`syscall` instruction), the kernel validates arguments, copies bytes between our memory and
//! its socket buffers, and returns a number (`-1` and `errno` on failure). That crossing is the
//! cost this milestone measures: a few hundred nanoseconds of fixed cost per call plus the
//! copying, which is why buffer size matters (`syscall_cost` experiment).
//!
//! ```text
//!   user space  │ EchoServer ── sys::accept4 ── sys::recv ── sys::send ── sys::close
//!               │      │  (syscall! macro: clock, call, errno → io::Error, accounting)
//!  ─────────────┼──────┼──────────────────────────────────────────────────────────────
//!   kernel      │  accept queue   receive queue (SIOCINQ)   send queue (SIOCOUTQ)   TCP
//! ```
//!
//! The server's life in syscalls (`strace -f -c` agrees with our own table, see the
//! `strace_crosscheck` experiment):
//!
//! ```text
//! socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)   a descriptor, no address yet
//! setsockopt(SO_REUSEADDR)                     rebind even with old connections in TIME_WAIT
//! bind(127.0.0.1:3000)                         claim the address
//! listen(backlog)                              passive; the kernel completes handshakes for us
//! fcntl(F_GETFL/F_SETFL, O_NONBLOCK)           never block in accept4
//! pipe2, open(/dev/null)                       self-pipe for signals, reserve fd for EMFILE
//! loop: poll([pipe, listener, conns…])         sleep until something is ready
//!   accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)        one connection + the client's address
//!   setsockopt(TCP_NODELAY)                    small echoes leave at once (no Nagle delay)
//!   recvfrom → sendto(MSG_NOSIGNAL)            echo; EAGAIN = not now, partial = keep the tail
//!   recvfrom = 0                               the peer's FIN → close
//! SIGTERM → one byte in the pipe → close(listener), drain, shutdown(SHUT_WR), close all
//! ```
//!
//! ## The public interface
//!
//! - [`sys`]: the wrappers, one per syscall, taking [`BorrowedFd`](std::os::fd::BorrowedFd) and
//!   returning [`OwnedFd`](std::os::fd::OwnedFd); later milestones' drivers (threads, pool,
//!   epoll) make their calls through them. [`sys::signal`] and [`sys::process`] hold signals,
//!   `getrusage` and `RLIMIT_NOFILE`. The only module with `unsafe` code.
//! - [`accounting`]: the global lock-free table behind the wrappers: per syscall kind a count,
//!   errors by errno class and a log2 latency histogram; [`accounting::snapshot`],
//!   [`accounting::set_enabled`], Prometheus text.
//! - [`EchoServer`], [`EchoConfig`], [`Mode`], [`ShutdownHandle`], [`EchoReport`]: the server.
//! - [`stats`]: live counters, per-connection records, `/proc` readers.
//! - [`Error`], [`CloseReason`]: what stops the server vs what ends one connection.
//! - [`cli`]: the `echo_server` command line (also what `zyphos echo` runs).
//! - [`observe`]: [`observe::ConnectionObserver`], hooks into each connection's life for code
//!   that watches connections without owning the loop ([`EchoServer::run_with_observer`]).
//!
//! ```no_run
//! use m01_raw_sockets::{EchoConfig, EchoServer};
//!
//! let server = EchoServer::bind(EchoConfig::new("127.0.0.1:0".parse()?))?;
//! println!("listening on {}", server.local_addr());
//! let stop = server.shutdown_handle();
//! stop.install_signal_handlers()?; // Ctrl-C → graceful shutdown
//! let report = server.run()?;
//! eprintln!("{}", report.syscalls);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod accounting;
pub mod cli;
mod echo;
mod error;
#[doc(hidden)]
pub mod lab;
pub mod observe;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;

pub use echo::{EchoConfig, EchoReport, EchoServer, Mode, ShutdownHandle, ShutdownStats};
pub use error::{CloseReason, Error};
