//! # Milestone 3: one thread per connection, and the session contract
//!
//! (Crate map written as the milestone is built; see `docs/milestones/03-thread-per-conn.md`.)
//!
//! - [`session`]: the sans-IO contract every driver in Zyphos runs ([`Session`],
//!   [`SessionFactory`]), with milestone 1's echo as its first core ([`EchoSession`]).
//! - [`testing`]: [`testing::PipeDriver`], an in-memory driver that injects short reads, short
//!   writes, resets and virtual time — the reference for the driver rules.

#![warn(missing_docs, unreachable_pub)]

pub mod session;
pub mod testing;

pub use session::{
    CloseReason, EchoConfig, EchoEvent, EchoFactory, EchoSession, Session, SessionFactory,
    SessionState,
};
