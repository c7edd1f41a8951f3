//! What can go wrong with a pool buffer: one enum, every variant an explicit, testable outcome.

/// A pool operation that did not succeed. None of these is a crash: exhaustion is backpressure,
/// the others are detected misuse (counted in [`crate::PoolStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Every buffer is in use: the caller must wait, shed the work, or answer 503. The pool never
    /// falls back to `malloc` behind the caller's back.
    #[error("buffer pool exhausted ({capacity} buffers in use)")]
    Exhausted {
        /// How many buffers the pool has.
        capacity: usize,
    },
    /// A handle was freed twice (the slot was already free, or reused since).
    #[error("double free of buffer slot {slot}")]
    DoubleFree {
        /// The slot index.
        slot: usize,
    },
    /// A handle was used after its buffer was freed (its generation is stale), or (debug
    /// poisoning) bytes of a free buffer changed before it was handed out again; that buffer
    /// is quarantined.
    #[error("use after free of buffer slot {slot}")]
    UseAfterFree {
        /// The slot index.
        slot: usize,
    },
    /// The guard canary after the buffer was overwritten: something wrote past its end. The
    /// buffer is quarantined, never reused.
    #[error("buffer overflow past the end of slot {slot} (guard canary damaged)")]
    Overflow {
        /// The slot index.
        slot: usize,
    },
    /// The handle does not belong to this pool (index out of range).
    #[error("buffer handle {slot} is not from this pool")]
    InvalidHandle {
        /// The slot index carried by the handle.
        slot: usize,
    },
    /// The request asked for more bytes than one buffer holds.
    #[error("request for {requested} bytes exceeds the buffer size {buf_size}")]
    TooLarge {
        /// Bytes asked for.
        requested: usize,
        /// Bytes per buffer.
        buf_size: usize,
    },
}

/// The pool could not be created (its backing memory could not be mapped, or the configuration
/// is impossible).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Zero buffers, zero-byte buffers, or a size whose total overflows.
    #[error("invalid pool configuration: {0}")]
    Config(&'static str),
    /// `mmap` failed (this is the only allocation failure a pool can meet, and it meets it at
    /// start-up, never per request).
    #[error("mapping the slab failed: {0}")]
    Map(#[from] std::io::Error),
}
