//! # Milestone 7: memory pools and zero-copy buffers
//!
//! Until now every connection's buffers came from `malloc`: a `Vec` per read, a `Vec` per
//! response. This milestone takes the allocator off the request path. Memory is mapped once at
//! start-up, cut into fixed-size, cache-line-aligned buffers, and handed out and taken back in
//! O(1) through a stack of free slot indices kept beside the slab (never inside the buffers).
//! Per-request scratch comes from a bump arena reset after each response; responses leave with
//! one `writev` (head + body slices, nothing copied together), files with `sendfile` (no copy
//! through user space).
//!
//! ```text
//!  start-up:  mmap(slab) ─► BufferPool [slot|slot|slot|…]   mmap(arena) per connection
//!  request:   pool.alloc() ─► RingBuffer ◄─readv─ socket
//!             m04 Parser (borrows the ring) ─► handler(&Arena, &mut pooled write buffer)
//!             m04 ResponseWriter ─► head ──writev [head | body]──► socket
//!             arena.reset(), buffers back on the free stack         (0 mallocs)
//!  files:     head ──write──► socket; sendfile(file → socket)      (0 user-space copies)
//! ```
//!
//! ## The public interface
//!
//! - [`BufferPool`], [`PoolConfig`], [`PoolBuf`], [`BufId`]: the single-threaded pool (no lock
//!   on the fast path; one per thread or core). [`SharedPool`] / [`SharedBuf`]: the same behind a
//!   mutex, with [`SharedPool::global`] for drivers (`zyphos --buffers pool`).
//!   [`BufferSource`] abstracts over both.
//! - [`PoolError`]: exhaustion (backpressure, never a hidden `malloc`) and the debug detectors
//!   (double free, use after free, overflow); [`SetupError`]: the slab could not be mapped.
//! - [`RingBuffer`]: a byte ring over any `[u8]` storage with `readv`/`writev` of both halves.
//! - [`Arena`]: a per-request bump allocator, freed all at once by `reset(&mut self)`.
//! - [`serve`]: the request loop ([`serve::serve_connection`]), scatter-gather writes
//!   ([`serve::write_all_vectored`]) and file bodies ([`serve::send_file`], `sendfile` vs
//!   `read`+`write`).
//! - [`PoolStats`], [`ArenaStats`]: in use, high-water mark, exhaustion, alloc/free counts,
//!   faults, fragmentation, with Prometheus rendering; [`CachePadded`] against false sharing.
//! - [`sys`]: `mmap` regions (huge pages with fallback), `sendfile`, `getrusage` with page
//!   faults, and [`sys::CountingAlloc`], the counting global allocator behind the zero-allocation
//!   check.
//!
//! ```
//! use m07_buffers::{BufferPool, PoolConfig, PoolError, RingBuffer};
//!
//! let pool = BufferPool::new(PoolConfig::new(4096, 2))?;
//! let mut ring = RingBuffer::new(pool.alloc()?);
//! ring.push(b"GET / HTTP/1.0\r\n\r\n");
//! let _write_buf = pool.alloc()?;
//! assert!(matches!(pool.alloc(), Err(PoolError::Exhausted { capacity: 2 })));
//! drop(ring); // the buffer goes back on the free stack
//! assert_eq!(pool.stats().in_use, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `unsafe` lives in three modules only (`sys`, `pool`, `arena`), each block with a
//! `// SAFETY:` note; under Miri the slab comes from `std::alloc` so their tests run there.
//! Start reading at `pool.rs`.

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

#[allow(unsafe_code)]
mod arena;
mod error;
#[doc(hidden)]
pub mod lab;
#[allow(unsafe_code)]
mod pool;
mod ring;
pub mod serve;
mod stats;
#[allow(unsafe_code)]
pub mod sys;

pub use arena::{Arena, DEFAULT_ARENA_BYTES};
pub use error::{PoolError, SetupError};
pub use pool::{
    BufId, BufferPool, BufferSource, CACHE_LINE, CANARY, DEFAULT_BUF_SIZE, DEFAULT_POOL_BUFFERS,
    POISON, PoolBuf, PoolConfig, SharedBuf, SharedPool,
};
pub use ring::RingBuffer;
pub use stats::{ArenaStats, CachePadded, PoolStats};
pub use sys::{Backing, HugePages};
