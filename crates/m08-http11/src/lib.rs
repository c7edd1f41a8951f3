//! # Milestone 8: HTTP/1.1 — persistent connections, pipelining, chunked coding, pooling
//!
//! A sans-IO HTTP/1.1 core over milestone 4's parser, run by any m03 driver, plus the client
//! side: a connection pool that reuses keep-alive connections.
//!
//! ```text
//!  bytes ─▶ Http11Session ─ inbox ─▶ m04 Parser (head only) ─▶ plan: Host, TE, Expect, Connection
//!                                         │                         │
//!                                         ▼                         ▼
//!                         Content-Length n │ ChunkedDecoder ──▶ Service::call ─▶ ordered output
//!  Client ─▶ Pool (idle LIFO, evict by idle time / size) ─▶ TcpStream ─▶ response reader
//! ```
//!
//! The public interface:
//!
//! - [`session`]: [`Http11Session`], [`Http11Factory`], [`Http11Config`] (every timeout and
//!   limit), [`Http11Event`], [`RejectReason`].
//! - [`headers`]: `Connection`, `Keep-Alive`, `Transfer-Encoding`, `Host`, `Expect`.
//! - [`chunked`]: [`ChunkedDecoder`] (resumable, bounded by [`ChunkLimits`]) and the encoder.
//! - [`stats`]: per-connection [`ConnStats`] and the shared [`Http11Stats`] (close reasons,
//!   requests per connection, lifetimes, pipeline depths, reuse).
//! - [`pool`]: [`Pool`], the sans-IO keep-alive pool (eviction by idle time and size), and
//!   [`client`]: a blocking HTTP/1.1 client over it.
//! - [`sweep`]: the keep-alive timeout sweep that picks the shipped timeouts.
//! - [`conformance`]: the RFC 9112 section → test table and the smuggling corpus runner.
//!
//! Start reading at `session.rs` (state diagram at the top), then `chunked.rs`.

#![warn(missing_docs, unreachable_pub)]

pub mod chunked;
pub mod client;
pub mod conformance;
pub mod headers;
pub mod pool;
pub mod session;
pub mod stats;
pub mod sweep;

#[doc(hidden)]
pub mod fuzz;
#[doc(hidden)]
pub mod lab;

pub use chunked::{ChunkError, ChunkLimits, ChunkedDecoder};
pub use pool::{Pool, PoolConfig, PoolStats};
pub use session::{
    Http11Config, Http11Event, Http11Factory, Http11Session, RejectReason, TimeoutKind,
};
pub use stats::{ConnStats, Http11Stats};
