//! A byte ring buffer over fixed storage (a pooled buffer, or any `[u8]`), for connection I/O.
//!
//! ```text
//!   storage  ┌──────────┬───────────────────────┬──────────┐
//!            │ data (2) │ free                  │ data (1) │   readable = (1) then (2)
//!            └──────────┴───────────────────────┴──────────┘
//!                       ▲ head + len (mod cap)   ▲ head
//! ```
//!
//! The free space and the data are each at most two slices, so one `readv` fills both free
//! pieces ([`RingBuffer::read_from`]) and one `writev` drains both data pieces
//! ([`RingBuffer::write_to`]) — scatter-gather I/O with no copy to straighten the ring. A parser
//! that needs the data contiguous calls [`RingBuffer::make_contiguous`], which rotates in place
//! (no allocation) and is needed only when a message straddles the end.
//!
//! No `unsafe` here: the ring is index arithmetic over a safe slice.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};

/// A ring buffer over `S`. It never grows: when full, [`read_from`](Self::read_from) reads
/// nothing and the caller applies backpressure.
#[derive(Debug)]
pub struct RingBuffer<S> {
    storage: S,
    head: usize,
    len: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> RingBuffer<S> {
    /// An empty ring over `storage` (its whole length is the capacity).
    pub fn new(storage: S) -> RingBuffer<S> {
        RingBuffer {
            storage,
            head: 0,
            len: 0,
        }
    }

    /// Bytes it can hold.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is full.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    /// Free bytes.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// The data, in order, as at most two slices.
    pub fn readable(&self) -> (&[u8], &[u8]) {
        let cap = self.capacity();
        let s = self.storage.as_ref();
        let first_len = self.len.min(cap - self.head);
        (
            &s[self.head..self.head + first_len],
            &s[..self.len - first_len],
        )
    }

    /// The free space, in order, as at most two slices.
    pub fn writable(&mut self) -> (&mut [u8], &mut [u8]) {
        let cap = self.capacity();
        let tail = if cap == 0 {
            0
        } else {
            (self.head + self.len) % cap
        };
        let free = cap - self.len;
        let s = self.storage.as_mut();
        if tail >= self.head && self.len < cap {
            // Free space is [tail, cap) then [0, head).
            let (front, back) = s.split_at_mut(tail);
            let first = back.len().min(free);
            (&mut back[..first], &mut front[..free - first])
        } else {
            // Free space is [tail, head).
            (&mut s[tail..tail + free], &mut [])
        }
    }

    /// Marks `n` bytes of [`writable`](Self::writable) as filled (clamped to the free space).
    pub fn commit(&mut self, n: usize) {
        self.len += n.min(self.free());
    }

    /// Drops `n` bytes from the front (clamped to `len`).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        let cap = self.capacity();
        if cap > 0 {
            self.head = (self.head + n) % cap;
        }
        self.len -= n;
        if self.len == 0 {
            // Start again at the base: the next message is contiguous as long as possible.
            self.head = 0;
        }
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let (a, b) = self.writable();
        let n1 = a.len().min(data.len());
        a[..n1].copy_from_slice(&data[..n1]);
        let n2 = b.len().min(data.len() - n1);
        b[..n2].copy_from_slice(&data[n1..n1 + n2]);
        self.commit(n1 + n2);
        n1 + n2
    }

    /// Moves up to `out.len()` bytes from the front into `out`; returns how many.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.readable();
        let n1 = a.len().min(out.len());
        out[..n1].copy_from_slice(&a[..n1]);
        let n2 = b.len().min(out.len() - n1);
        out[n1..n1 + n2].copy_from_slice(&b[..n2]);
        self.consume(n1 + n2);
        n1 + n2
    }

    /// The data as one slice, rotating the storage in place if it wraps (no allocation).
    pub fn make_contiguous(&mut self) -> &[u8] {
        let cap = self.capacity();
        if self.head + self.len > cap {
            self.storage.as_mut().rotate_left(self.head);
            self.head = 0;
        }
        &self.storage.as_ref()[self.head..self.head + self.len]
    }

    /// One `readv` into the free space (both pieces). `Ok(0)` means end of stream, unless the
    /// ring was full (check [`is_full`](Self::is_full) first: a full ring reads nothing).
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        let (a, b) = self.writable();
        let mut bufs = [IoSliceMut::new(a), IoSliceMut::new(b)];
        let n = r.read_vectored(&mut bufs)?;
        self.commit(n);
        Ok(n)
    }

    /// One `writev` of the data (both pieces); consumes what was written.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let (a, b) = self.readable();
        let bufs = [IoSlice::new(a), IoSlice::new(b)];
        let n = w.write_vectored(&bufs)?;
        self.consume(n);
        Ok(n)
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// The storage back.
    pub fn into_inner(self) -> S {
        self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{BufferPool, PoolConfig};

    #[test]
    fn test_empty_ring_push_pop_in_order() {
        let mut r = RingBuffer::new([0u8; 8]);
        assert!(r.is_empty());
        assert_eq!(r.push(b"abcde"), 5);
        let mut out = [0u8; 3];
        assert_eq!(r.pop(&mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn test_wrapped_ring_readable_two_slices() {
        let mut r = RingBuffer::new([0u8; 8]);
        r.push(b"123456");
        let mut out = [0u8; 4];
        r.pop(&mut out);
        assert_eq!(r.push(b"abcdef"), 6); // wraps: "56" at 4..6, "abcdef" at 6..8 + 0..4
        assert!(r.is_full());
        let (a, b) = r.readable();
        assert_eq!((a, b), (&b"56ab"[..], &b"cdef"[..]));
        assert_eq!(r.push(b"x"), 0, "full ring takes nothing");
        assert_eq!(r.make_contiguous(), b"56abcdef");
    }

    #[test]
    fn test_full_ring_reads_nothing() {
        let mut r = RingBuffer::new([0u8; 4]);
        r.push(b"full");
        let mut src: &[u8] = b"more";
        assert_eq!(r.read_from(&mut src).unwrap(), 0);
        assert_eq!(src, b"more");
    }

    #[test]
    fn test_wrapped_free_space_filled_by_one_readv() {
        let mut r = RingBuffer::new([0u8; 8]);
        r.push(b"abcdef");
        r.consume(5); // head = 5, len = 1; free = [6,8) + [0,5)
        let mut src: &[u8] = b"0123456";
        assert_eq!(r.read_from(&mut src).unwrap(), 7);
        assert_eq!(r.make_contiguous(), b"f0123456");
    }

    #[test]
    fn test_wrapped_data_drained_by_one_writev() {
        let mut r = RingBuffer::new([0u8; 8]);
        r.push(b"abcdefgh");
        r.consume(6);
        r.push(b"123");
        let mut sink = Vec::new();
        assert_eq!(r.write_to(&mut sink).unwrap(), 5);
        assert_eq!(sink, b"gh123");
        assert!(r.is_empty());
    }

    #[test]
    fn test_partial_write_keeps_tail() {
        struct Two(Vec<u8>);
        impl Write for Two {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let n = b.len().min(2);
                self.0.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut r = RingBuffer::new([0u8; 8]);
        r.push(b"hello");
        let mut w = Two(Vec::new());
        while !r.is_empty() {
            r.write_to(&mut w).unwrap();
        }
        assert_eq!(w.0, b"hello");
    }

    #[test]
    fn test_ring_over_pool_buffer_round_trip() {
        let pool = BufferPool::new(PoolConfig::new(64, 1).with_debug(true)).unwrap();
        let mut r = RingBuffer::new(pool.alloc().unwrap());
        assert_eq!(r.capacity(), 64);
        for i in 0..50u8 {
            let chunk = [i; 7];
            assert_eq!(r.push(&chunk), 7);
            let mut out = [0u8; 7];
            assert_eq!(r.pop(&mut out), 7);
            assert_eq!(out, chunk);
        }
        drop(r);
        assert_eq!(pool.stats().in_use, 0);
    }
}
