//! # Milestone 5: routing and request handling
//!
//! Milestone 4 turned bytes into a [`Request`](m04_http10::Request) and a
//! [`ResponseWriter`](m04_http10::ResponseWriter) back into bytes. This crate is what sits
//! between: the [`Service`](m04_http10::Service) that decides *what* to answer.
//!
//! ```text
//!  Http10Session (m04) ──Request──▶ Router::dispatch ──▶ RequestContext ──▶ Handler ──▶ Response
//!        ▲                              │ decode · normalise · lookup · stats · log       │
//!        └──────────── ResponseWriter ◀─┴───────────────── render ◀───────────────────────┘
//! ```
//!
//! ## The public interface
//!
//! - [`Router`], [`RouterBuilder`], [`Handler`], [`RouterLimits`]: register routes (`get`, `post`,
//!   `route`, `any`, `redirect`, `static_dir`), build (typed [`RouteError`]s for bad patterns,
//!   unreachable routes and redirect loops; [`RouteWarning`]s for partial shadowing), serve
//!   (`impl Service for Router`).
//! - [`RequestContext`]: method, decoded path, [`Params`], [`Query`], headers, body, peer.
//! - [`Response`], [`Body`]: the response builder (bytes, `'static`, shared, or a file).
//! - [`RouteTable`], [`RouterKind`], [`Lookup`]: the lookup algorithms (`linear`, `hash`,
//!   `prefix`) behind one interface, usable without a router (experiments).
//! - [`pattern`]: [`Pattern`] syntax (`/users/:id`, `/static/*path`) and priority rules,
//!   [`MethodSet`].
//! - [`decode`]: RFC 3986 percent-decoding, dot-segment removal, reference resolution.
//! - [`query`]: query-string checks and lazy decoding.
//! - [`log`]: Common Log Format and the sinks ([`StderrSink`], [`MemorySink`]).
//! - [`stats`]: [`StatsSnapshot`]: per-route counts, 404s, timings, slow requests, allocations.
//! - [`static_files`]: [`StaticDir`], files from a root with traversal blocked, and its
//!   bounded [`StaticCache`] of small files (revalidated once a second, [`CacheLimits`]).
//! - [`sys`]: [`sys::CountingAlloc`], the counting global allocator (the only `unsafe`).
//! - [`demo`]: the routes `zyphos serve` runs at this milestone.
//!
//! ```no_run
//! use std::sync::Arc;
//! use m05_routing::{Response, Router, RouterKind};
//!
//! let router = Router::builder()
//!     .kind(RouterKind::Prefix)
//!     .get("/users/:id", |ctx: &mut m05_routing::RequestContext<'_>| {
//!         Response::text(200, format!("user {}\n", ctx.param("id").unwrap_or("")))
//!     })
//!     .static_dir("/static/*path", "./public")
//!     .redirect("/old", "/", 301)
//!     .build()?;
//! let factory = m04_http10::Http10Factory::new(Arc::new(router), Default::default());
//! # drop(factory);
//! # Ok::<(), m05_routing::RouteError>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod context;
pub mod decode;
pub mod demo;
mod error;
#[doc(hidden)]
pub mod lab;
pub mod log;
mod lookup;
pub mod pattern;
pub mod query;
mod response;
mod router;
pub mod static_files;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;

pub use context::RequestContext;
pub use error::{DecodeError, PatternError, QueryError, RouteError, RouteWarning};
pub use log::{LogSink, MemorySink, NullSink, StderrSink};
pub use lookup::{Lookup, RouteTable, RouterKind};
pub use pattern::{MAX_PARAMS, MethodSet, Params, Pattern};
pub use query::Query;
pub use response::{Body, FILE_CHUNK, FileBody, Response};
pub use router::{
    DEFAULT_TIME_ONE_IN, Handler, MAX_QUERY_BYTES, MAX_QUERY_PAIRS, MAX_REDIRECT_HOPS, Router,
    RouterBuilder, RouterLimits,
};
pub use static_files::{CacheLimits, CacheStats, StaticCache, StaticDir};
pub use stats::StatsSnapshot;
pub use sys::CountingAlloc;
