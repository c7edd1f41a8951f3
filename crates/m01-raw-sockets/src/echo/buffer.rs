//! The per-connection echo buffer: fixed capacity, explicit read and write cursors.
//!
//! ```text
//!  0        start            end              capacity
//!  |  sent   |  unsent (pending)|  free space    |
//! ```
//!
//! `recv` writes into the free space (`end..capacity`), `send` takes from the pending bytes
//! (`start..end`). A partial `send` only moves `start`: the unsent tail stays where it is. When
//! the buffer is full the connection stops asking `poll` for `POLLIN` (backpressure: the kernel's
//! receive queue fills, the TCP window closes, and the peer's `send` blocks). The buffer never
//! grows; memory per connection is exactly `capacity`.

/// A fixed-size byte queue with one contiguous pending region.
#[derive(Debug)]
pub(crate) struct EchoBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl EchoBuffer {
    /// A buffer of `capacity` bytes (at least 1).
    pub(crate) fn new(capacity: usize) -> EchoBuffer {
        EchoBuffer {
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Bytes received and not yet sent.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of pending bytes.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// No room left to read into: time to stop reading.
    pub(crate) fn is_full(&self) -> bool {
        self.len() == self.buf.len()
    }

    /// Room to `recv` into. Moves the pending bytes to the front first if that makes room
    /// (a `memmove` of at most `capacity` bytes, only when the tail is exhausted).
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were received into [`space`](Self::space).
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// `n` bytes of [`pending`](Self::pending) were sent.
    pub(crate) fn consumed(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_empty_buffer_fill_then_consume() {
        let mut b = EchoBuffer::new(8);
        assert_eq!(b.space().len(), 8);
        b.space()[..5].copy_from_slice(b"hello");
        b.filled(5);
        assert_eq!(b.pending(), b"hello");
        b.consumed(5);
        assert_eq!(b.len(), 0);
        assert_eq!(b.space().len(), 8);
    }

    #[test]
    fn test_partial_write_keeps_unsent_tail() {
        let mut b = EchoBuffer::new(8);
        b.space()[..6].copy_from_slice(b"abcdef");
        b.filled(6);
        b.consumed(2); // the kernel took only "ab"
        assert_eq!(b.pending(), b"cdef");
        assert_eq!(
            b.space().len(),
            2,
            "no compaction while the tail still has room"
        );
        b.space()[..2].copy_from_slice(b"gh");
        b.filled(2);
        assert!(!b.is_full());
        // Tail exhausted: the pending bytes move to the front to make room.
        assert_eq!(b.space().len(), 2);
        assert_eq!(b.pending(), b"cdefgh");
    }

    #[test]
    fn test_full_buffer_reports_full() {
        let mut b = EchoBuffer::new(4);
        b.space().copy_from_slice(b"wxyz");
        b.filled(4);
        assert!(b.is_full());
        assert!(b.space().is_empty());
        b.consumed(1);
        assert!(!b.is_full());
        assert_eq!(b.space().len(), 1);
        assert_eq!(b.pending(), b"xyz");
    }

    #[test]
    fn test_overlong_counts_are_clamped() {
        let mut b = EchoBuffer::new(4);
        b.filled(100);
        assert_eq!(b.len(), 4);
        b.consumed(100);
        assert_eq!(b.len(), 0);
    }
}
