//! Memory orderings, model-checked: loom explores the interleavings (up to `PREEMPTIONS`
//! pre-emptions per execution) and the values a load may legally return under the C11 model
//! loom implements, of
//!
//! 1. the mailbox's close protocol — the very [`CloseGate`] code the mailbox runs, over loom's
//!    atomics instead of std's: two senders race a closer; every message must be either
//!    refused or seen by the final drain (which, without the release/acquire pair, loom lets
//!    read a value from before the push);
//! 2. the shutdown handshake of the server: a loop migrating a connection to a loop that is
//!    shutting down (the `adopting` in-flight count of `server.rs` around the same gate);
//!    the connection must end adopted, refused (back home) or handed back by the close,
//!    exactly once, and the in-flight count must return to zero (else every other loop's
//!    shutdown waits out its grace period).
//!
//! The same models also run with the gate's orderings weakened and must then FAIL (the close
//! model with its `SeqCst` fences downgraded to `AcqRel`, and with release/acquire downgraded
//! to `Relaxed`; the shutdown model with `AcqRel` fences): the check can fail, and it is the
//! orderings that make it pass. Plain tests (no `cfg(loom)`), so
//! `cargo test -p m10-multi-loop` runs them; each model takes well under a second.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;
use m10_multi_loop::mailbox::{CloseGate, GateAtomics};

/// How an adapter weakens the orderings the gate asks for.
const EXACT: u8 = 0;
/// `SeqCst` fences become `AcqRel` fences (no total order between them).
const FENCE_ACQREL: u8 = 1;
/// `Release`/`Acquire` become `Relaxed` (fences kept).
const NO_RELEASE_ACQUIRE: u8 = 2;

/// Loom's atomics, with the gate's orderings passed through (`EXACT`) or weakened.
struct Loom<const WEAKEN: u8>;

impl<const WEAKEN: u8> Loom<WEAKEN> {
    fn order(o: Ordering) -> Ordering {
        match (WEAKEN, o) {
            (NO_RELEASE_ACQUIRE, Ordering::Release | Ordering::Acquire | Ordering::AcqRel) => {
                Ordering::Relaxed
            }
            _ => o,
        }
    }
}

impl<const WEAKEN: u8> GateAtomics for Loom<WEAKEN> {
    type Flag = AtomicBool;
    type Count = AtomicUsize;
    fn flag(v: bool) -> AtomicBool {
        AtomicBool::new(v)
    }
    fn count(v: usize) -> AtomicUsize {
        AtomicUsize::new(v)
    }
    fn load_flag(f: &AtomicBool, o: Ordering) -> bool {
        f.load(Self::order(o))
    }
    fn store_flag(f: &AtomicBool, v: bool, o: Ordering) {
        f.store(v, Self::order(o));
    }
    fn incr(c: &AtomicUsize, o: Ordering) {
        c.fetch_add(1, Self::order(o));
    }
    fn decr(c: &AtomicUsize, o: Ordering) {
        c.fetch_sub(1, Self::order(o));
    }
    fn load_count(c: &AtomicUsize, o: Ordering) -> usize {
        c.load(Self::order(o))
    }
    fn fence(o: Ordering) {
        match (WEAKEN, o) {
            (FENCE_ACQREL, Ordering::SeqCst) => fence(Ordering::AcqRel),
            _ => fence(o),
        }
    }
    fn spin() {
        thread::yield_now();
    }
}

/// Thread pre-emptions loom explores per execution (loom's README: 2–3 catch most bugs; the
/// weakened models below fail within this bound, so it is enough to see these ones).
const PREEMPTIONS: usize = 3;

/// Whether `model` passes under loom (a failed check panics inside the model; the expected
/// failures' panic messages are captured by the test harness).
fn passes(model: fn()) -> bool {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(PREEMPTIONS);
    catch_unwind(AssertUnwindSafe(|| b.check(model))).is_ok()
}

/// `SENDERS` senders race a closer over the gate. Each sender's push is a `Relaxed` store into its
/// own slot (standing for the queue, whose own synchronisation is not what is checked): the
/// final drain, a `Relaxed` load after `close`, sees it only if the gate ordered push → drain.
fn close_model<const W: u8>() {
    const SENDERS: usize = 2;
    struct Shared<const W: u8> {
        gate: CloseGate<Loom<W>>,
        pushed: [AtomicBool; SENDERS],
    }
    let shared = Arc::new(Shared::<W> {
        gate: CloseGate::new(),
        pushed: std::array::from_fn(|_| AtomicBool::new(false)),
    });
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                if shared.gate.enter() {
                    shared.pushed[i].store(true, Ordering::Relaxed);
                    shared.gate.leave();
                    true
                } else {
                    false
                }
            })
        })
        .collect();
    shared.gate.close();
    let drained: Vec<bool> = (0..SENDERS)
        .map(|i| shared.pushed[i].load(Ordering::Relaxed))
        .collect();
    for (i, s) in senders.into_iter().enumerate() {
        let accepted = s.join().unwrap();
        assert_eq!(
            accepted, drained[i],
            "sender {i}: accepted but left behind by the final drain (or the reverse)"
        );
    }
}

#[test]
fn test_loom_mailbox_close_loses_no_message() {
    assert!(
        passes(close_model::<EXACT>),
        "the close protocol as written"
    );
}

#[test]
fn test_loom_close_model_fails_with_acqrel_fences() {
    assert!(
        !passes(close_model::<FENCE_ACQREL>),
        "with AcqRel fences the Dekker handshake must lose a message"
    );
}

#[test]
fn test_loom_close_model_fails_without_release_acquire() {
    assert!(
        !passes(close_model::<NO_RELEASE_ACQUIRE>),
        "without release/acquire the drain must race the push"
    );
}

/// The shutdown handshake: loop A migrates one connection to loop B while B shuts down. A
/// follows `Shared::send_adopt` in `server.rs` (count it in B's `adopting`, then send through
/// B's mailbox gate; if refused, uncount it and keep the connection); B follows the loop's
/// shutdown turn (take the mailbox's messages, adopt each and only then uncount it; exit once
/// it holds no connection and nothing is in flight) and then `LoopContext::run`'s close
/// (close the gate, hand back what is still queued, uncounting each). The queue is a
/// linearizable stand-in (a loom `Mutex`), the gate is the mailbox's real code.
fn shutdown_model<const W: u8>() {
    struct Shared<const W: u8> {
        gate: CloseGate<Loom<W>>,
        queue: Mutex<VecDeque<u32>>,
        adopting: AtomicUsize,
    }
    let shared = Arc::new(Shared::<W> {
        gate: CloseGate::new(),
        queue: Mutex::new(VecDeque::new()),
        adopting: AtomicUsize::new(0),
    });
    let a = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            shared.adopting.fetch_add(1, Ordering::AcqRel);
            if shared.gate.enter() {
                shared.queue.lock().unwrap().push_back(7);
                shared.gate.leave();
                false
            } else {
                shared.adopting.fetch_sub(1, Ordering::AcqRel);
                true // refused: A adopts it back
            }
        })
    };
    let mut adopted = 0;
    loop {
        while let Some(_conn) = shared.queue.lock().unwrap().pop_front() {
            adopted += 1;
            shared.adopting.fetch_sub(1, Ordering::AcqRel);
        }
        // B's own connections (the adopted one included) finish their requests and close
        // during the shutdown: it holds none, so only the in-flight count keeps it running.
        if shared.adopting.load(Ordering::Acquire) == 0 {
            break;
        }
        thread::yield_now();
    }
    shared.gate.close();
    let mut handed_back = 0;
    while let Some(_conn) = shared.queue.lock().unwrap().pop_front() {
        handed_back += 1;
        shared.adopting.fetch_sub(1, Ordering::AcqRel);
    }
    let kept = u32::from(a.join().unwrap());
    assert_eq!(
        adopted + handed_back + kept,
        1,
        "the connection must end adopted, handed back or kept, exactly once \
         (adopted {adopted}, handed back {handed_back}, kept {kept})"
    );
    assert_eq!(
        shared.adopting.load(Ordering::Relaxed),
        0,
        "in-flight count left over"
    );
}

#[test]
fn test_loom_shutdown_handshake_accounts_for_every_migration() {
    assert!(passes(shutdown_model::<EXACT>), "the handshake as written");
}

#[test]
fn test_loom_shutdown_model_fails_with_acqrel_fences() {
    assert!(
        !passes(shutdown_model::<FENCE_ACQREL>),
        "with AcqRel fences a connection sent during the close must be lost"
    );
}
