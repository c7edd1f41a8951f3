//! # Milestone 2: the TCP state machine, seen from user space
//!
//! A connection table that follows every connection of milestone 1's echo server through the
//! states of TCP, timestamps every transition, counts the time spent in each state and the
//! bytes moved, and **checks itself against the kernel's own view** (`getsockopt(TCP_INFO)`
//! `tcpi_state`, `/proc/net/tcp`).
//!
//! ## The state machine (RFC 9293 §3.3.2, Figure 5)
//!
//! ```text
//!                             +---------+ ---------\      active OPEN
//!                             |  CLOSED |            \    -----------
//!                             +---------+<---------\   \   create TCB
//!                               |     ^              \   \  snd SYN
//!                  passive OPEN |     |   CLOSE        \   \
//!                  ------------ |     | ----------       \   \
//!                   create TCB  |     | delete TCB         \   \
//!                               V     |                      \   \
//!           rcv RST (note 1)  +---------+            CLOSE    |    \
//!        -------------------->|  LISTEN |          ---------- |     |
//!       /                     +---------+          delete TCB |     |
//!      /           rcv SYN      |     |     SEND              |     |
//!     /           -----------   |     |    -------            |     V
//! +--------+      snd SYN,ACK  /       \   snd SYN          +--------+
//! |        |<-----------------           ------------------>|        |
//! |  SYN   |                    rcv SYN                     |  SYN   |
//! |  RCVD  |<-----------------------------------------------|  SENT  |
//! |        |                  snd SYN,ACK                   |        |
//! |        |------------------           -------------------|        |
//! +--------+   rcv ACK of SYN  \       /  rcv SYN,ACK       +--------+
//!    |         --------------   |     |   -----------
//!    |                x         |     |     snd ACK
//!    |                          V     V
//!    |  CLOSE                 +---------+
//!    | -------                |  ESTAB  |
//!    | snd FIN                +---------+
//!    |                 CLOSE    |     |    rcv FIN
//!    V                -------   |     |    -------
//! +---------+         snd FIN  /       \   snd ACK         +---------+
//! |  FIN    |<----------------          ------------------>|  CLOSE  |
//! | WAIT-1  |------------------                            |   WAIT  |
//! +---------+          rcv FIN  \                          +---------+
//!   | rcv ACK of FIN   -------   |                          CLOSE  |
//!   | --------------   snd ACK   |                         ------- |
//!   V        x                   V                         snd FIN V
//! +---------+               +---------+                    +---------+
//! |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
//! +---------+               +---------+                    +---------+
//!   |              rcv ACK of FIN |                 rcv ACK of FIN |
//!   |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
//!   |  -------            x       V    ------------        x       V
//!    \ snd ACK              +---------+delete TCB          +---------+
//!      -------------------->|TIME-WAIT|------------------->| CLOSED  |
//!                           +---------+                    +---------+
//! ```
//!
//! A server never sees the top half: the kernel answers SYNs, keeps half-open connections in
//! its SYN queue (SYN-RECEIVED) and finished ones in the accept queue; `accept4` hands over an
//! ESTABLISHED connection. From there on, every arrow is something a system call reveals:
//! `recv` returning 0 is the peer's FIN (ESTABLISHED → CLOSE-WAIT), `shutdown(SHUT_WR)` sends
//! ours (→ FIN-WAIT-1 or LAST-ACK), `SIOCOUTQ` dropping to 0 means our FIN was acknowledged
//! (→ FIN-WAIT-2, or CLOSED from LAST-ACK), `ECONNRESET` is an RST, `ETIMEDOUT` is the kernel
//! giving up (retransmissions or keepalive probes). [`state`] has the table of observations
//! and the transition function; the write-up (`docs/milestones/02-tcp-state.md`) has the
//! diagram of what our table actually observed.
//!
//! Whoever sends the first FIN ends in TIME-WAIT for 2×MSL (60 s on Linux). A server that lets
//! its clients close first never holds TIME-WAIT; when it must close first (idle connections),
//! [`table::TableConfig::time_wait_budget`] caps how many it creates (aborting with RST beyond).
//!
//! ## The public interface
//!
//! - [`state`]: [`TcpState`] (RFC names), [`Event`], [`state::next`], [`KernelState`]
//!   (`tcpi_state` numbering) and [`state::agrees_with_fd`].
//! - [`table`]: [`ConnTable`], sans-IO: pre-allocated slots with a free list and an explicit
//!   [`TableFull`], a ring log of [`Transition`]s, time per state, bytes, state distribution,
//!   transitions per second, inactivity / FIN-WAIT timeouts, the TIME-WAIT ledger.
//! - [`tracker`]: [`Tracker`], the driver glue: implements m01's
//!   [`ConnectionObserver`](m01_raw_sockets::observe::ConnectionObserver), samples the kernel,
//!   sets keepalive; [`tracker::Shared`] to look at the table while the server runs.
//! - [`kernel`]: `TCP_INFO`, `SO_MEMINFO`, keepalive / `TCP_LINGER2` / `TCP_SYNCNT` options,
//!   `/proc/net/tcp`, nstat counters, sockstat, slabinfo.
//! - [`view`]: the `ss`-like live view ([`view::render`]) and the snapshot the server writes.
//! - [`cli`]: `zyphos echo --conn-table …` and `zyphos conns`.
//!
//! ```no_run
//! use std::time::Instant;
//! use m01_raw_sockets::{EchoConfig, EchoServer};
//! use m02_tcp_state::{Tracker, TrackerConfig};
//!
//! let mut config = EchoConfig::new("127.0.0.1:0".parse()?);
//! config.fin_before_close = true; // our FIN leaves while we can still watch the state
//! let server = EchoServer::bind(config)?;
//! let mut tracker = Tracker::new(TrackerConfig::default(), Instant::now());
//! let report = server.run_with_observer(&mut tracker)?;
//! println!("{:?}", tracker.table().stats(Instant::now()));
//! # let _ = report;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod kernel;
#[doc(hidden)]
pub mod lab;
pub mod state;
pub mod stats;
pub mod table;
pub mod tracker;
pub mod view;

pub use state::{Event, KernelState, TcpState};
pub use table::{ConnId, ConnTable, TableConfig, TableFull, Transition};
pub use tracker::{Tracker, TrackerConfig};
