//! Errors, one enum per concern: what a request did wrong ([`DecodeError`], [`QueryError`]) and
//! what a route table did wrong at registration ([`RouteError`], [`RouteWarning`]).
//!
//! Request errors map to a status in one place ([`DecodeError::status`], [`QueryError::status`]);
//! registration errors never reach the wire: they stop [`crate::RouterBuilder::build`].

use thiserror::Error;

/// A request path or query that is not a valid RFC 3986 string, or that would leave the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// `%` not followed by two hex digits (RFC 3986 §2.1).
    #[error(
        "invalid percent-encoding at byte {offset} (RFC 3986 §2.1: pct-encoded = \"%\" HEXDIG HEXDIG)"
    )]
    InvalidEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("percent-decoded bytes are not UTF-8")]
    InvalidUtf8,
    /// `%2F` inside a path segment: a decoded `/` would change the segment structure.
    #[error("encoded '/' (%2F) inside a path segment at byte {offset}")]
    EncodedSlash {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// `%00` in a path.
    #[error("encoded NUL (%00) in a path")]
    EncodedNul,
    /// A byte that may not appear in a path (control, space, `#`, non-ASCII…).
    #[error("byte 0x{byte:02x} not allowed in a path at offset {offset}")]
    ForbiddenByte {
        /// The byte.
        byte: u8,
        /// Where.
        offset: usize,
    },
    /// The path does not start with `/` (origin-form, RFC 9112 §3.2.1).
    #[error("path is not absolute (must start with '/')")]
    NotAbsolute,
    /// A `..` segment would climb above the root (RFC 3986 §5.2.4 clamps; a server refuses).
    #[error("dot-segments climb above the root")]
    AboveRoot,
}

impl DecodeError {
    /// The response status: always 400 Bad Request.
    pub fn status(&self) -> u16 {
        400
    }

    /// Whether the error is a directory traversal attempt (counted separately).
    pub fn is_traversal(&self) -> bool {
        matches!(
            self,
            DecodeError::AboveRoot | DecodeError::EncodedSlash { .. } | DecodeError::EncodedNul
        )
    }
}

/// A query string the router refuses before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Longer than [`crate::RouterLimits::max_query_bytes`]: 414 URI Too Long.
    #[error("query string of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More pairs than [`crate::RouterLimits::max_query_pairs`]: 414 URI Too Long.
    #[error("query string has more than {max} parameters")]
    TooManyPairs {
        /// The limit.
        max: usize,
    },
    /// A bad escape in a key or value: 400.
    #[error("query string: {0}")]
    Decode(DecodeError),
}

impl QueryError {
    /// The response status: 414 for size, 400 for syntax.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::TooLong { .. } | QueryError::TooManyPairs { .. } => 414,
            QueryError::Decode(_) => 400,
        }
    }
}

/// A route pattern that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Patterns start with `/`.
    #[error("pattern {0:?} does not start with '/'")]
    NotAbsolute(String),
    /// `:` or `*` without a name.
    #[error("pattern {0:?} has a parameter without a name")]
    EmptyName(String),
    /// `*name` is only allowed as the last segment.
    #[error("pattern {0:?}: a wildcard must be the last segment")]
    WildcardNotLast(String),
    /// The same parameter name twice.
    #[error("pattern {0:?} repeats parameter {1:?}")]
    DuplicateName(String, String),
    /// More than [`crate::MAX_PARAMS`] parameters.
    #[error("pattern {0:?} has more than {max} parameters", max = crate::MAX_PARAMS)]
    TooManyParams(String),
    /// `.`/`..` segments, `?`, `#` or `%` in a pattern (patterns are written decoded).
    #[error("pattern {0:?} contains a dot-segment, '?', '#' or '%'")]
    Forbidden(String),
}

/// A route table that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A pattern did not parse.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// A route can never be chosen: an earlier route with the same shape takes every method it has.
    #[error(
        "route #{route} {pattern:?} is unreachable: route #{shadowed_by} {by:?} takes all of its methods"
    )]
    Unreachable {
        /// Registration index of the dead route.
        route: usize,
        /// Its pattern.
        pattern: String,
        /// The route that wins instead.
        shadowed_by: usize,
        /// Its pattern.
        by: String,
    },
    /// Following the redirect table from a route comes back to a path already visited.
    #[error("redirect loop: {}", chain.join(" -> "))]
    RedirectLoop {
        /// The paths visited, ending with the repeated one.
        chain: Vec<String>,
    },
    /// A redirect target names a parameter its source pattern does not have.
    #[error("redirect target {target:?} uses a parameter that {from:?} does not define")]
    UnknownTargetParam {
        /// Source pattern.
        from: String,
        /// Target template.
        target: String,
    },
    /// A static directory could not be opened.
    #[error("static root {root:?}: {reason}")]
    StaticRoot {
        /// The path given.
        root: String,
        /// Why.
        reason: String,
    },
    /// A static route pattern must end with a wildcard (`/static/*path`).
    #[error("static route {0:?} must end with a *wildcard")]
    StaticNeedsWildcard(String),
}

/// A registration problem that does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteWarning {
    /// Some (not all) of a route's methods are taken by an earlier route of the same shape.
    PartlyShadowed {
        /// Registration index of the route.
        route: usize,
        /// Its pattern.
        pattern: String,
        /// The methods it never gets.
        methods: Vec<&'static str>,
        /// The earlier route.
        shadowed_by: usize,
    },
}
