//! Unconsumed input between reads: the only per-connection buffer the loop keeps.
//!
//! Every connection reads into the loop's one shared read buffer. Usually the session consumes
//! all of it (a whole request) and nothing stays behind, so an idle connection owns no buffer
//! at all. When bytes remain (half a request, or input held back by backpressure), they move
//! into a buffer from the loop's m07 [`BufferPool`] (O(1), no `malloc`), and go back to the
//! pool as soon as they are consumed. Input larger than one pool buffer, or a pool that is
//! exhausted, falls back to a heap vector bounded by the session's input limit (counted).

use m07_buffers::{BufId, BufferPool};

use crate::stats::LoopStats;

/// See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) enum Stash {
    /// Nothing held (no memory).
    #[default]
    Empty,
    /// `len` bytes at the start of pool buffer `id`.
    Pooled { id: BufId, len: usize },
    /// More than a pool buffer holds, or the pool was exhausted.
    Heap(Vec<u8>),
}

impl Stash {
    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Stash::Empty => 0,
            Stash::Pooled { len, .. } => *len,
            Stash::Heap(v) => v.len(),
        }
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes held, oldest first.
    pub(crate) fn bytes<'a>(&'a self, pool: &'a mut BufferPool) -> &'a [u8] {
        match self {
            Stash::Empty => &[],
            Stash::Pooled { id, len } => match pool.slice_mut(*id) {
                Ok(buf) => &buf[..*len],
                // Unreachable while the loop owns the id; an empty view is the safe answer.
                Err(_) => &[],
            },
            Stash::Heap(v) => v,
        }
    }

    /// Appends `data`.
    pub(crate) fn append(&mut self, pool: &mut BufferPool, data: &[u8], stats: &LoopStats) {
        if data.is_empty() {
            return;
        }
        match self {
            Stash::Empty => {
                if data.len() <= pool.buf_size() {
                    if let Ok(id) = pool.alloc_raw() {
                        if let Ok(buf) = pool.slice_mut(id) {
                            buf[..data.len()].copy_from_slice(data);
                            *self = Stash::Pooled {
                                id,
                                len: data.len(),
                            };
                            stats.stash_pooled.incr();
                            return;
                        }
                        let _ = pool.free_raw(id);
                    }
                }
                stats.stash_heap.incr();
                *self = Stash::Heap(data.to_vec());
            }
            Stash::Pooled { id, len } => {
                let (id, len) = (*id, *len);
                if len + data.len() <= pool.buf_size() {
                    if let Ok(buf) = pool.slice_mut(id) {
                        buf[len..len + data.len()].copy_from_slice(data);
                        *self = Stash::Pooled {
                            id,
                            len: len + data.len(),
                        };
                        return;
                    }
                }
                let mut v = Vec::with_capacity(len + data.len());
                v.extend_from_slice(self.bytes(pool));
                v.extend_from_slice(data);
                let _ = pool.free_raw(id);
                stats.stash_heap.incr();
                *self = Stash::Heap(v);
            }
            Stash::Heap(v) => v.extend_from_slice(data),
        }
    }

    /// Forgets the first `n` bytes (the session consumed them).
    pub(crate) fn consume(&mut self, pool: &mut BufferPool, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        if n == self.len() {
            self.release(pool);
            return;
        }
        match self {
            Stash::Empty => {}
            Stash::Pooled { id, len } => {
                if let Ok(buf) = pool.slice_mut(*id) {
                    buf.copy_within(n..*len, 0);
                }
                *len -= n;
            }
            Stash::Heap(v) => {
                v.drain(..n);
            }
        }
    }

    /// Gives any pool buffer back; holds nothing afterwards.
    pub(crate) fn release(&mut self, pool: &mut BufferPool) {
        if let Stash::Pooled { id, .. } = std::mem::take(self) {
            let _ = pool.free_raw(id);
        }
    }

    /// The bytes as an owned vector (for a connection leaving this loop); holds nothing after.
    pub(crate) fn take_vec(&mut self, pool: &mut BufferPool) -> Vec<u8> {
        let v = match self {
            Stash::Heap(v) => std::mem::take(v),
            _ => self.bytes(pool).to_vec(),
        };
        self.release(pool);
        *self = Stash::Empty;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m07_buffers::PoolConfig;

    fn pool(n: usize) -> BufferPool {
        BufferPool::new(PoolConfig::new(16, n)).expect("pool")
    }

    #[test]
    fn test_empty_append_small_goes_to_pool_and_back() {
        let mut p = pool(1);
        let stats = LoopStats::default();
        let mut s = Stash::default();
        s.append(&mut p, b"GET /", &stats);
        assert!(matches!(s, Stash::Pooled { len: 5, .. }));
        s.append(&mut p, b" HTTP", &stats);
        assert_eq!(s.bytes(&mut p), b"GET / HTTP");
        s.consume(&mut p, 4);
        assert_eq!(s.bytes(&mut p), b"/ HTTP");
        assert_eq!(p.stats().in_use, 1);
        s.consume(&mut p, 6);
        assert!(matches!(s, Stash::Empty));
        assert_eq!(p.stats().in_use, 0, "the buffer went back to the pool");
        assert_eq!(stats.stash_pooled.get(), 1);
    }

    #[test]
    fn test_pooled_overflow_moves_to_heap_and_frees_buffer() {
        let mut p = pool(1);
        let stats = LoopStats::default();
        let mut s = Stash::default();
        s.append(&mut p, b"0123456789", &stats);
        s.append(&mut p, b"abcdefghij", &stats);
        assert!(matches!(s, Stash::Heap(_)));
        assert_eq!(s.bytes(&mut p), b"0123456789abcdefghij");
        assert_eq!(p.stats().in_use, 0);
        assert_eq!(stats.stash_heap.get(), 1);
    }

    #[test]
    fn test_exhausted_pool_falls_back_to_heap() {
        let mut p = pool(1);
        let stats = LoopStats::default();
        let mut a = Stash::default();
        let mut b = Stash::default();
        a.append(&mut p, b"aaa", &stats);
        b.append(&mut p, b"bbb", &stats);
        assert!(matches!(a, Stash::Pooled { .. }));
        assert!(matches!(b, Stash::Heap(_)));
        assert_eq!(b.bytes(&mut p), b"bbb");
        assert_eq!(a.take_vec(&mut p), b"aaa".to_vec());
        assert_eq!(p.stats().in_use, 0);
    }
}
