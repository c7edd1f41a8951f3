//! An in-memory driver with fault injection: the reference implementation of the driver rules
//! in [`crate::session`], used by every core's tests (echo here, HTTP in milestones 4 and 8).
//!
//! [`PipeDriver`] plays a peer that sends a script of bytes and reads everything back, through a
//! "socket" that can misbehave the way real ones do:
//!
//! - **short reads**: input arrives in chunks of random size (1 byte upward);
//! - **short writes**: each write takes at most a random number of bytes;
//! - **reset**: the connection dies after a given number of input bytes (ECONNRESET);
//! - **virtual time**: the clock advances by a fixed step per round, so deadlines fire
//!   without sleeping.
//!
//! Faults are drawn from a seeded generator: a failing seed reproduces exactly.

use std::time::{Duration, Instant};

use crate::session::{CloseReason, Session, SessionState};

/// Which faults to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Largest read chunk (1 = byte at a time). `usize::MAX` = whole script at once.
    pub max_read: usize,
    /// Largest write (1 = byte at a time). `usize::MAX` = the socket takes everything.
    pub max_write: usize,
    /// Reset the connection after this many input bytes were delivered.
    pub reset_after: Option<usize>,
    /// Seed for chunk sizes.
    pub seed: u64,
    /// Virtual time that passes per driver round.
    pub tick: Duration,
    /// Rounds after the script is delivered before the peer sends FIN (`None`: never).
    pub eof_after_rounds: Option<usize>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            max_read: usize::MAX,
            max_write: usize::MAX,
            reset_after: None,
            seed: 1,
            tick: Duration::from_millis(1),
            eof_after_rounds: Some(0),
        }
    }
}

/// What happened to one connection under [`PipeDriver::run`].
#[derive(Debug)]
pub struct PipeOutcome<E> {
    /// Every byte the session sent, in order.
    pub output: Vec<u8>,
    /// Events polled, in order.
    pub events: Vec<E>,
    /// Why the connection ended.
    pub close: CloseReason,
    /// Script bytes the session consumed.
    pub consumed: usize,
    /// Rounds the driver ran.
    pub rounds: usize,
}

/// The in-memory driver. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PipeDriver {
    faults: Faults,
    rng: u64,
    /// Hard bound on rounds so a broken session cannot hang a test.
    pub max_rounds: usize,
}

impl PipeDriver {
    /// A driver injecting `faults`.
    pub fn new(faults: Faults) -> Self {
        PipeDriver {
            faults,
            rng: faults.seed.max(1),
            max_rounds: 1_000_000,
        }
    }

    fn next(&mut self, max: usize) -> usize {
        if max == usize::MAX {
            return usize::MAX;
        }
        // xorshift64*: deterministic, good enough for chunk sizes.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + (r % max.max(1) as u64) as usize
    }

    /// Runs `session` against a peer that sends `script` and reads everything back.
    pub fn run<S: Session>(&mut self, session: &mut S, script: &[u8]) -> PipeOutcome<S::Event> {
        let mut now = Instant::now();
        let mut delivered = 0usize; // script bytes moved into `buffer`
        let mut buffer: Vec<u8> = Vec::new(); // unconsumed input, as a driver holds it
        let mut consumed = 0usize;
        let mut output = Vec::new();
        let mut events = Vec::new();
        let mut eof_sent = false;
        let mut idle_rounds = 0usize;
        let mut rounds = 0usize;
        let close = loop {
            rounds += 1;
            if rounds > self.max_rounds {
                panic!("session did not finish within {} rounds", self.max_rounds);
            }
            // Write: drain pending output with short writes.
            loop {
                let pending = session.pending_output();
                if pending.is_empty() {
                    break;
                }
                let n = pending.len().min(self.next(self.faults.max_write));
                output.extend_from_slice(&pending[..n]);
                session.consume_output(n);
                if self.faults.max_write != usize::MAX {
                    break; // one short write per round, like a full socket buffer
                }
            }
            while let Some(e) = session.poll_event() {
                events.push(e);
            }
            match session.state() {
                SessionState::Closed(reason) => break reason,
                SessionState::Closing(reason) => {
                    if session.pending_output().is_empty() {
                        break reason;
                    }
                    now += self.faults.tick;
                    continue;
                }
                SessionState::Open => {}
            }
            // Reset?
            if self.faults.reset_after.is_some_and(|r| delivered >= r) {
                break CloseReason::IoError;
            }
            // Read: deliver a chunk of the script.
            let mut progressed = false;
            let buffer_full = buffer.len() >= session.input_limit();
            if buffer_full && session.pending_output().is_empty() {
                break CloseReason::InputOverflow;
            }
            if delivered < script.len() && !buffer_full {
                let mut n = (script.len() - delivered).min(self.next(self.faults.max_read));
                if let Some(r) = self.faults.reset_after {
                    n = n.min(r.saturating_sub(delivered)).max(1);
                }
                let n = n.min(session.input_limit() - buffer.len());
                buffer.extend_from_slice(&script[delivered..delivered + n]);
                delivered += n;
                progressed = true;
            } else if delivered >= script.len() && !eof_sent {
                match self.faults.eof_after_rounds {
                    Some(wait) if idle_rounds >= wait => {
                        session.handle_eof(now, &buffer);
                        consumed += buffer.len();
                        buffer.clear();
                        eof_sent = true;
                        progressed = true;
                    }
                    _ => idle_rounds += 1,
                }
            }
            if !buffer.is_empty() && session.state() == SessionState::Open {
                let used = session.handle_input(now, &buffer);
                assert!(
                    used <= buffer.len(),
                    "session consumed more than it was given"
                );
                if used > 0 {
                    buffer.drain(..used);
                    consumed += used;
                    progressed = true;
                }
            }
            now += self.faults.tick;
            if let Some(deadline) = session.poll_timeout() {
                if now >= deadline {
                    session.handle_timeout(now);
                    progressed = true;
                }
            }
            if !progressed && session.pending_output().is_empty() && eof_sent {
                // Nothing can happen any more except time passing: jump to the deadline.
                match session.poll_timeout() {
                    Some(deadline) => {
                        now = now.max(deadline);
                        session.handle_timeout(now);
                    }
                    None => break CloseReason::PeerClosed,
                }
            }
        };
        while let Some(e) = session.poll_event() {
            events.push(e);
        }
        PipeOutcome {
            output,
            events,
            close,
            consumed,
            rounds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{EchoConfig, EchoSession};

    fn script() -> Vec<u8> {
        (0..20_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn echo_survives_short_reads_and_writes() {
        for seed in 1..20 {
            let faults = Faults {
                max_read: 7,
                max_write: 5,
                seed,
                ..Faults::default()
            };
            let mut s = EchoSession::new(EchoConfig::default(), Instant::now());
            let out = PipeDriver::new(faults).run(&mut s, &script());
            assert_eq!(out.output, script(), "seed {seed}");
            assert_eq!(out.close, CloseReason::PeerClosed);
        }
    }

    #[test]
    fn echo_backpressure_with_tiny_output_cap() {
        let config = EchoConfig {
            max_pending_output: 3,
            ..EchoConfig::default()
        };
        let faults = Faults {
            max_read: 100,
            max_write: 2,
            ..Faults::default()
        };
        let mut s = EchoSession::new(config, Instant::now());
        let out = PipeDriver::new(faults).run(&mut s, &script());
        assert_eq!(out.output, script());
    }

    #[test]
    fn echo_reset_mid_stream_ends_with_io_error() {
        let faults = Faults {
            max_read: 64,
            reset_after: Some(1000),
            ..Faults::default()
        };
        let mut s = EchoSession::new(EchoConfig::default(), Instant::now());
        let out = PipeDriver::new(faults).run(&mut s, &script());
        assert_eq!(out.close, CloseReason::IoError);
        assert!(out.consumed <= 1000);
        assert_eq!(out.output, script()[..out.output.len()].to_vec());
    }

    #[test]
    fn echo_silent_peer_times_out() {
        let faults = Faults {
            eof_after_rounds: None,
            tick: Duration::from_secs(1),
            ..Faults::default()
        };
        let mut s = EchoSession::new(EchoConfig::default(), Instant::now());
        let out = PipeDriver::new(faults).run(&mut s, b"ping");
        assert_eq!(out.output, b"ping");
        assert_eq!(out.close, CloseReason::Timeout);
    }
}
