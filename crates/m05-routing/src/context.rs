//! The request context: everything a handler may look at, borrowed for the length of one call.
//!
//! Built by the router after routing; the path is already decoded and normalised, the parameters
//! are slices of it, and the query string was checked (length, pairs, escapes).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use m04_http10::{ConnInfo, Method, Request, Version};

use crate::error::DecodeError;
use crate::pattern::Params;
use crate::query::Query;

/// One request as a handler sees it.
pub struct RequestContext<'a> {
    pub(crate) request: &'a Request<'a>,
    pub(crate) conn: &'a ConnInfo,
    pub(crate) path: &'a str,
    pub(crate) params: Params<'a>,
    pub(crate) route: Option<&'a str>,
    pub(crate) query: Query<'a>,
}

impl<'a> RequestContext<'a> {
    /// The method.
    pub fn method(&self) -> Method {
        self.request.method()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.request.version()
    }

    /// The decoded, normalised path.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The request-target exactly as received.
    pub fn raw_target(&self) -> &'a str {
        self.request.target()
    }

    /// The route pattern that matched (`None` for the router's own responses).
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// All path parameters.
    pub fn params(&self) -> &Params<'a> {
        &self.params
    }

    /// Path parameter `name` (decoded).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }

    /// The query string.
    pub fn query(&self) -> &Query<'a> {
        &self.query
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Result<Option<Cow<'a, str>>, DecodeError> {
        self.query.get(name)
    }

    /// Header `name` (case-insensitive, first match).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.request.header(name)
    }

    /// The request body.
    pub fn body(&self) -> &'a [u8] {
        self.request.body()
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// When the driver handed the request over (monotonic).
    pub fn now(&self) -> Instant {
        self.conn.now
    }

    /// Wall-clock time of the request.
    pub fn wall(&self) -> SystemTime {
        self.conn.wall
    }
}
