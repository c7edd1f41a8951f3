//! A loop's mailbox: a bounded lock-free queue plus an eventfd that wakes the loop.
//!
//! ```text
//!  any thread ── send(msg) ──▶ ArrayQueue (lock-free, bounded) ──┐
//!                       └─▶ eventfd += 1 ──▶ owner's epoll wakes ─┴─▶ drain(): read eventfd, pop all
//! ```
//!
//! **Memory orderings.** The queue itself publishes each message with release/acquire (a pop
//! sees everything the pusher wrote before its push). The eventfd `write`/`read` pair is a
//! system call on each side, which orders further. Closing is a Dekker-style handshake
//! ([`CloseGate`]): a sender *increments `senders`, then (after a `SeqCst` fence) loads
//! `open`*; the closer *stores `open = false`, then (after a `SeqCst` fence) loads `senders`*.
//! The two fences are totally ordered, so at least one side sees the other's write: either the
//! sender backs off, or the closer waits for its push to finish (the sender's `Release`
//! decrement, the closer's `Acquire` load) before the final drain: no message is ever left
//! behind in a closed mailbox. The fences, not `SeqCst` accesses, carry the guarantee because
//! that is what the model checker can verify: `tests/loom.rs` runs this very code over loom's
//! atomics and finds the lost message as soon as a fence or the release/acquire pair is
//! weakened (loom does not model the total order of `SeqCst` loads and stores, so a
//! `SeqCst`-accesses-only version could not be checked there).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

use crossbeam::queue::ArrayQueue;
use m09_event_loop::sys;

/// Why a message came back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<M> {
    /// The queue is full (the receiver is behind): the message is returned.
    Full(M),
    /// The receiver is gone (its loop stopped).
    Closed(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::Closed(m) => m,
        }
    }
}

/// The atomics a [`CloseGate`] runs on: std's ([`StdAtomics`]) in the mailbox, loom's in the
/// model check (`tests/loom.rs`), so the model checks this very code.
#[doc(hidden)]
pub trait GateAtomics {
    /// An atomic `bool`.
    type Flag;
    /// An atomic `usize`.
    type Count;
    /// A new flag.
    fn flag(v: bool) -> Self::Flag;
    /// A new count.
    fn count(v: usize) -> Self::Count;
    /// `flag.load(order)`.
    fn load_flag(f: &Self::Flag, order: Ordering) -> bool;
    /// `flag.store(v, order)`.
    fn store_flag(f: &Self::Flag, v: bool, order: Ordering);
    /// `count.fetch_add(1, order)`.
    fn incr(c: &Self::Count, order: Ordering);
    /// `count.fetch_sub(1, order)`.
    fn decr(c: &Self::Count, order: Ordering);
    /// `count.load(order)`.
    fn load_count(c: &Self::Count, order: Ordering) -> usize;
    /// `fence(order)`.
    fn fence(order: Ordering);
    /// One turn of a wait loop.
    fn spin();
}

/// `std::sync::atomic`.
#[doc(hidden)]
#[derive(Debug)]
pub struct StdAtomics;

impl GateAtomics for StdAtomics {
    type Flag = AtomicBool;
    type Count = AtomicUsize;
    fn flag(v: bool) -> AtomicBool {
        AtomicBool::new(v)
    }
    fn count(v: usize) -> AtomicUsize {
        AtomicUsize::new(v)
    }
    fn load_flag(f: &AtomicBool, order: Ordering) -> bool {
        f.load(order)
    }
    fn store_flag(f: &AtomicBool, v: bool, order: Ordering) {
        f.store(v, order);
    }
    fn incr(c: &AtomicUsize, order: Ordering) {
        c.fetch_add(1, order);
    }
    fn decr(c: &AtomicUsize, order: Ordering) {
        c.fetch_sub(1, order);
    }
    fn load_count(c: &AtomicUsize, order: Ordering) -> usize {
        c.load(order)
    }
    fn fence(order: Ordering) {
        fence(order);
    }
    fn spin() {
        std::hint::spin_loop();
    }
}

/// The mailbox's close protocol (see the [module docs](self)): senders [`enter`](Self::enter)
/// and [`leave`](Self::leave) around their push; [`close`](Self::close) returns once no
/// sender is inside and every later `enter` fails. Generic over its atomics for the model
/// check only.
#[doc(hidden)]
pub struct CloseGate<A: GateAtomics = StdAtomics> {
    open: A::Flag,
    senders: A::Count,
}

impl<A: GateAtomics> std::fmt::Debug for CloseGate<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseGate")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<A: GateAtomics> Default for CloseGate<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: GateAtomics> CloseGate<A> {
    /// An open gate.
    pub fn new() -> Self {
        CloseGate {
            open: A::flag(true),
            senders: A::count(0),
        }
    }

    /// Starts a send: `false` (and nothing to undo) if the gate is closed; after `true`, push,
    /// then call [`leave`](Self::leave).
    pub fn enter(&self) -> bool {
        A::incr(&self.senders, Ordering::Relaxed);
        // Dekker: our increment, then this fence, then our load of `open`; `close` does the
        // mirror image. The fences are totally ordered: whichever comes second sees the
        // other side's write.
        A::fence(Ordering::SeqCst);
        if !A::load_flag(&self.open, Ordering::Relaxed) {
            A::decr(&self.senders, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Ends a send. Release: publishes the push to the closer's acquire load in `close`.
    pub fn leave(&self) {
        A::decr(&self.senders, Ordering::Release);
    }

    /// Makes every later [`enter`](Self::enter) fail and waits for the senders inside.
    pub fn close(&self) {
        A::store_flag(&self.open, false, Ordering::Relaxed);
        A::fence(Ordering::SeqCst);
        // Acquire: pairs with `leave`'s release, so the caller's drain sees their pushes.
        while A::load_count(&self.senders, Ordering::Acquire) != 0 {
            A::spin();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        !A::load_flag(&self.open, Ordering::Acquire)
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct Mailbox<M> {
    queue: ArrayQueue<M>,
    eventfd: OwnedFd,
    gate: CloseGate,
}

impl<M> Mailbox<M> {
    /// A mailbox holding at most `capacity` undelivered messages.
    pub fn new(capacity: usize) -> io::Result<Mailbox<M>> {
        Ok(Mailbox {
            queue: ArrayQueue::new(capacity.max(1)),
            eventfd: sys::eventfd()?,
            gate: CloseGate::new(),
        })
    }

    /// The eventfd to register with the receiving loop.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }

    /// Queues `msg` and wakes the receiver.
    pub fn send(&self, msg: M) -> Result<(), SendError<M>> {
        if !self.gate.enter() {
            return Err(SendError::Closed(msg));
        }
        let pushed = self.queue.push(msg);
        self.gate.leave();
        match pushed {
            Ok(()) => {
                // A failed wake-up (impossible for a live eventfd) would only delay delivery
                // to the receiver's next turn, which polls at least every 100 ms.
                let _ = sys::eventfd_signal(self.eventfd.as_fd());
                Ok(())
            }
            Err(msg) => Err(SendError::Full(msg)),
        }
    }

    /// Resets the eventfd and hands every queued message to `deliver`, oldest first; returns
    /// how many.
    pub fn drain(&self, mut deliver: impl FnMut(M)) -> usize {
        let _ = sys::eventfd_drain(self.eventfd.as_fd());
        let mut n = 0;
        while let Some(m) = self.queue.pop() {
            deliver(m);
            n += 1;
        }
        n
    }

    /// Closes the mailbox: later sends fail with [`SendError::Closed`]; waits for sends in
    /// progress, then hands over what is still queued.
    pub fn close(&self, deliver: impl FnMut(M)) -> usize {
        self.gate.close();
        self.drain(deliver)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn test_open_send_then_drain_in_order() {
        let m = Mailbox::new(8).unwrap();
        for i in 0..5 {
            m.send(i).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(m.drain(|x| got.push(x)), 5);
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    /// Whether `fd` is readable right now (`poll` with a zero timeout): what the receiving
    /// loop's epoll would report for the mailbox's eventfd.
    fn readable(fd: BorrowedFd<'_>) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::ZERO).expect("poll");
        n == 1
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
    }

    /// The wake-up itself, apart from the loop's 100 ms fallback poll (which would hide a dead
    /// eventfd from every end-to-end test): a send makes the eventfd readable, a drain makes it
    /// quiet again (else the loop would spin), and a refused send does not signal. Fails if
    /// `send` stops signalling or `drain` stops resetting the counter.
    #[test]
    fn test_send_makes_eventfd_readable_and_drain_resets_it() {
        let m = Mailbox::new(1).unwrap();
        assert!(!readable(m.fd()), "a new mailbox must not be readable");
        m.send(1).unwrap();
        assert!(readable(m.fd()), "a send must make the eventfd readable");
        assert!(matches!(m.send(2), Err(SendError::Full(2))));
        assert_eq!(m.drain(|_| ()), 1);
        assert!(!readable(m.fd()), "a drain must reset the eventfd");
        let closed = Mailbox::new(1).unwrap();
        closed.close(|_: i32| ());
        assert!(matches!(closed.send(3), Err(SendError::Closed(3))));
        assert!(!readable(closed.fd()), "a refused send must not signal");
    }

    #[test]
    fn test_full_returns_message() {
        let m = Mailbox::new(2).unwrap();
        m.send(1).unwrap();
        m.send(2).unwrap();
        assert_eq!(m.send(3), Err(SendError::Full(3)));
    }

    #[test]
    fn test_closed_refuses_and_hands_back_queued() {
        let m = Mailbox::new(4).unwrap();
        m.send(1).unwrap();
        let mut got = Vec::new();
        assert_eq!(m.close(|x| got.push(x)), 1);
        assert_eq!(got, vec![1]);
        assert_eq!(m.send(2), Err(SendError::Closed(2)));
        assert!(m.is_closed());
    }

    #[test]
    fn test_concurrent_senders_nothing_lost_across_close() {
        for _ in 0..20 {
            let m = Arc::new(Mailbox::new(100_000).unwrap());
            let senders: Vec<_> = (0..4)
                .map(|t| {
                    let m = Arc::clone(&m);
                    std::thread::spawn(move || {
                        let mut refused = 0u64;
                        for i in 0..2_000u64 {
                            if m.send(t * 1_000_000 + i).is_err() {
                                refused += 1;
                            }
                        }
                        refused
                    })
                })
                .collect();
            let mut delivered = 0u64;
            for _ in 0..50 {
                delivered += m.drain(|_| ()) as u64;
            }
            delivered += m.close(|_| ()) as u64;
            let refused: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(
                delivered + refused,
                8_000,
                "a message was lost or duplicated"
            );
            assert_eq!(m.len(), 0);
        }
    }
}
