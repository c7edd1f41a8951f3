//! Request methods and protocol versions (RFC 1945 §5.1.1, §3.1).

use std::fmt;

/// A request method the parser knows. Unknown but well-formed tokens (extension methods,
/// RFC 1945 §5.1.1) are rejected with `501 Not Implemented`, so the type stays lifetime-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET` (RFC 1945 §8.1).
    Get,
    /// `HEAD` (RFC 1945 §8.2): like GET, the response carries no body.
    Head,
    /// `POST` (RFC 1945 §8.3): needs a Content-Length.
    Post,
    /// `PUT` (RFC 1945 App. D.1.1): needs a Content-Length.
    Put,
    /// `DELETE` (RFC 1945 App. D.1.2).
    Delete,
    /// `OPTIONS` (RFC 7231 §4.3.7).
    Options,
    /// `PATCH` (RFC 5789).
    Patch,
    /// `TRACE` (RFC 7231 §4.3.8).
    Trace,
    /// `CONNECT` (RFC 7231 §4.3.6): authority-form target.
    Connect,
}

impl Method {
    /// Every method, in a stable order (tables, metrics).
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Patch,
        Method::Trace,
        Method::Connect,
    ];

    /// The method's token as sent on the wire (`"GET"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
        }
    }

    /// The method named by `b`, exactly (methods are case-sensitive, RFC 1945 §5.1.1).
    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        Some(match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => return None,
        })
    }

    /// Whether a request with this method must say how long its body is (RFC 1945 §7.2.2:
    /// "A valid Content-Length is required on all HTTP/1.0 POST requests").
    pub fn requires_length(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol versions this parser accepts. Other well-formed versions (`HTTP/0.9` simple
/// requests, `HTTP/2.0`, `HTTP/1.2`) are answered with `505`; malformed ones with `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// `HTTP/1.0` (RFC 1945).
    Http10,
    /// `HTTP/1.1` (RFC 7230); answered as an HTTP/1.0 server would (RFC 7230 §2.6).
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_method_round_trips_through_bytes() {
        for m in Method::ALL {
            assert_eq!(Method::from_bytes(m.as_str().as_bytes()), Some(m));
        }
        assert_eq!(Method::from_bytes(b"get"), None);
        assert_eq!(Method::from_bytes(b"BREW"), None);
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
    }
}
