//! Deadlocks: how to find them and the rule that prevents them here.
//!
//! Two threads that take two locks in opposite orders can each hold one and wait forever for
//! the other. The server avoids it by construction: **no code path holds two of its locks at
//! once** — the slot registry, the socket registry, the finished list and the log ring are each
//! taken, used and released (the shutdown path copies the socket list out before calling
//! `shutdown(2)`). Where nesting cannot be avoided, the fix is a global *lock order*:
//! [`RankedMutex`] gives every lock a rank and refuses, with an error instead of a hang, to
//! take a lock whose rank is not above every rank the thread already holds.
//!
//! To *identify* a deadlock that already happens, [`RankedMutex::lock_timeout`] waits a bounded
//! time and reports which lock it could not get and which ranks the thread held: a wait-for
//! cycle shows up as two threads each reporting the other's lock. The tests reproduce the
//! classic ABBA deadlock both ways.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

thread_local! {
    /// Ranks of the ranked locks this thread holds, in acquisition order.
    static HELD: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Why a ranked lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// Taking this lock would break the lock order (a potential deadlock, refused at once).
    OrderViolation {
        /// The lock asked for.
        wanted: &'static str,
        /// Its rank.
        rank: u32,
        /// Highest rank held.
        held: u32,
    },
    /// The lock was not free within the timeout: likely a deadlock (or a very long hold).
    Timeout {
        /// The lock asked for.
        wanted: &'static str,
        /// Ranks held while waiting.
        held: Vec<u32>,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OrderViolation { wanted, rank, held } => write!(
                f,
                "lock order violation: {wanted} (rank {rank}) while holding rank {held}"
            ),
            LockError::Timeout { wanted, held } => {
                write!(f, "timed out waiting for {wanted} while holding {held:?}")
            }
        }
    }
}

impl std::error::Error for LockError {}

/// A mutex with a name and a rank in the global lock order.
#[derive(Debug)]
pub struct RankedMutex<T> {
    name: &'static str,
    rank: u32,
    inner: Mutex<T>,
}

/// Guard of a [`RankedMutex`]; releases the rank on drop.
#[derive(Debug)]
pub struct RankedGuard<'a, T> {
    rank: u32,
    guard: MutexGuard<'a, T>,
}

impl<T> RankedMutex<T> {
    /// A lock named `name` at `rank` (locks must be taken in increasing rank).
    pub fn new(name: &'static str, rank: u32, value: T) -> Self {
        RankedMutex {
            name,
            rank,
            inner: Mutex::new(value),
        }
    }

    fn check_order(&self) -> Result<(), LockError> {
        HELD.with(|h| match h.borrow().iter().max() {
            Some(&held) if held >= self.rank => Err(LockError::OrderViolation {
                wanted: self.name,
                rank: self.rank,
                held,
            }),
            _ => Ok(()),
        })
    }

    fn enter<'a>(&'a self, guard: MutexGuard<'a, T>) -> RankedGuard<'a, T> {
        HELD.with(|h| h.borrow_mut().push(self.rank));
        RankedGuard {
            rank: self.rank,
            guard,
        }
    }

    /// Takes the lock if the order allows it (blocks like `Mutex::lock`).
    pub fn lock(&self) -> Result<RankedGuard<'_, T>, LockError> {
        self.check_order()?;
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.enter(g))
    }

    /// Takes the lock without checking the order, giving up after `timeout`: the detector.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RankedGuard<'_, T>, LockError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.inner.try_lock() {
                Ok(g) => return Ok(self.enter(g)),
                Err(TryLockError::Poisoned(p)) => return Ok(self.enter(p.into_inner())),
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(LockError::Timeout {
                            wanted: self.name,
                            held: HELD.with(|h| h.borrow().clone()),
                        });
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

impl<T> Deref for RankedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for RankedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for RankedGuard<'_, T> {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(pos) = h.iter().rposition(|&r| r == self.rank) {
                h.remove(pos);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn test_abba_deadlock_detected_by_timeout() {
        let a = Arc::new(RankedMutex::new("a", 1, 0u32));
        let b = Arc::new(RankedMutex::new("b", 2, 0u32));
        let barrier = Arc::new(Barrier::new(2));
        let spawn = |first: Arc<RankedMutex<u32>>, second: Arc<RankedMutex<u32>>| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let _g1 = first.lock_timeout(Duration::from_secs(5)).unwrap();
                barrier.wait(); // both hold their first lock: the cycle is closed
                let r = second.lock_timeout(Duration::from_millis(200)).map(|_| ());
                barrier.wait(); // neither releases before both gave up
                r
            })
        };
        let t1 = spawn(Arc::clone(&a), Arc::clone(&b));
        let t2 = spawn(Arc::clone(&b), Arc::clone(&a));
        let r1 = t1.join().unwrap();
        let r2 = t2.join().unwrap();
        // Each thread reports the lock it waited for and the rank it held: the wait-for cycle.
        assert_eq!(
            r1,
            Err(LockError::Timeout {
                wanted: "b",
                held: vec![1]
            })
        );
        assert_eq!(
            r2,
            Err(LockError::Timeout {
                wanted: "a",
                held: vec![2]
            })
        );
    }

    #[test]
    fn test_lock_order_violation_refused_instead_of_deadlock() {
        let a = RankedMutex::new("a", 1, ());
        let b = RankedMutex::new("b", 2, ());
        {
            let _ga = a.lock().unwrap();
            let _gb = b.lock().unwrap(); // increasing rank: fine
        }
        let _gb = b.lock().unwrap();
        let err = a.lock().unwrap_err();
        assert_eq!(
            err,
            LockError::OrderViolation {
                wanted: "a",
                rank: 1,
                held: 2
            }
        );
        drop(_gb);
        assert!(a.lock().is_ok(), "the rank is released with the guard");
    }
}
