//! # Milestone 4: an HTTP/1.0 parser and response generator
//!
//! A sans-IO HTTP/1.0 core: bytes in, a parsed [`Request`] out, a response written into a
//! buffer; no socket, no clock. Any m03 driver runs it through [`Http10Factory`].
//!
//! The public interface is:
//!
//! - [`parse`] / [`Parser`]: the request parser, an explicit state machine ([`State`]) over
//!   borrowed bytes. It returns a complete [`Request`], [`Status::Partial`] ("need more", never
//!   an error), or a [`ParseError`]. Hard [`Limits`], two [`Mode`]s (RFC 7230 strict, RFC 1945
//!   tolerant). It allocates nothing; a [`Trace`] observer ([`TransitionCounts`],
//!   [`TransitionLog`]) sees every transition, and the default [`NoTrace`] costs nothing.
//! - [`disposition`]: the one mapping from [`ParseError`] to a status (400, 411, 413, 414,
//!   431, 501, 505) and a close decision.
//! - [`ResponseWriter`]: status line, `Date` (IMF-fixdate, [`date`]), `Server`,
//!   `Content-Length`, CRLF everywhere, HEAD without a body, header injection refused.
//! - [`Service`], [`ConnInfo`], [`Http10Session`], [`Http10Factory`]: the core as an m03
//!   [`m03_thread_per_conn::Session`]: one request, one response, close.
//!
//! Start reading at `parse.rs` (the state diagram is at its top), then `session.rs`.

#![warn(missing_docs, unreachable_pub)]

pub mod date;
pub mod error;
mod limits;
mod method;
pub mod parse;
mod request;
pub mod response;
pub mod session;

#[doc(hidden)]
pub mod lab;
mod sys;

pub use error::{Disposition, ParseError, disposition};
pub use limits::{Limits, Mode};
pub use method::{Method, Version};
pub use parse::{
    NoTrace, Parser, State, Status, Trace, TransitionCounts, TransitionLog, is_token_byte, parse,
    unfold_in_place,
};
pub use request::Request;
pub use response::{ResponseWriter, reason_phrase};
pub use session::{ConnInfo, Http10Event, Http10Factory, Http10Session, Service};
