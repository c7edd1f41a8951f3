//! Parse errors, and the one place where an error becomes a status code and a close decision
//! ([`disposition`], STYLE.md §3).

use std::fmt;

/// Why a request was rejected. Every variant is a peer error: the parser never fails on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The method is not a token (RFC 1945 §5.1.1) or is empty.
    InvalidMethod,
    /// A well-formed method token this server does not implement (→ 501).
    UnknownMethod,
    /// The request-target has a byte outside RFC 3986's set, a bad `%XX`, or the wrong form.
    InvalidTarget,
    /// The version is not `HTTP/d.d` (→ 400).
    InvalidVersion,
    /// A well-formed version other than 1.0 and 1.1 (→ 505).
    UnsupportedVersion,
    /// An HTTP/0.9 simple request (`GET /path` and no version) (→ 505).
    Http09,
    /// A line ended with LF alone in strict mode, or a CR was not followed by LF.
    BadLineEnding,
    /// More than one SP, or a TAB, between request-line parts.
    InvalidRequestLine,
    /// A header name that is not a token, is empty, or has whitespace before the colon.
    InvalidHeaderName,
    /// A header value with NUL, a control character or DEL.
    InvalidHeaderValue,
    /// A continuation line (obs-fold) in strict mode, before the first header, or continuing a
    /// framing header (Content-Length, Transfer-Encoding).
    ObsFold,
    /// Content-Length is not 1*DIGIT, overflows, or two of them disagree.
    InvalidContentLength,
    /// Transfer-Encoding together with Content-Length (a smuggling vector, RFC 7230 §3.3.3).
    ConflictingFraming,
    /// Transfer-Encoding: this HTTP/1.0 core does not decode transfer codings (→ 501).
    TransferEncodingNotImplemented,
    /// An HTTP/1.0 POST/PUT/PATCH without Content-Length (RFC 1945 §7.2.2) (→ 411). An HTTP/1.1
    /// request without one has an empty body (RFC 7230 §3.3.3 rule 6).
    LengthRequired,
    /// The request line exceeds [`crate::Limits::max_request_line`] (→ 414).
    RequestLineTooLong,
    /// More than [`crate::Limits::max_headers`] header fields (→ 431).
    TooManyHeaders,
    /// A header line exceeds [`crate::Limits::max_header_line`] (→ 431).
    HeaderLineTooLong,
    /// The head exceeds [`crate::Limits::max_head`] (→ 431).
    HeadTooLarge,
    /// Content-Length exceeds [`crate::Limits::max_body`] (→ 413).
    BodyTooLarge,
    /// The peer closed its side in the middle of a request.
    Truncated,
}

impl ParseError {
    /// Every variant, in a stable order (tables, counters).
    pub const ALL: [ParseError; 21] = [
        ParseError::InvalidMethod,
        ParseError::UnknownMethod,
        ParseError::InvalidTarget,
        ParseError::InvalidVersion,
        ParseError::UnsupportedVersion,
        ParseError::Http09,
        ParseError::BadLineEnding,
        ParseError::InvalidRequestLine,
        ParseError::InvalidHeaderName,
        ParseError::InvalidHeaderValue,
        ParseError::ObsFold,
        ParseError::InvalidContentLength,
        ParseError::ConflictingFraming,
        ParseError::TransferEncodingNotImplemented,
        ParseError::LengthRequired,
        ParseError::RequestLineTooLong,
        ParseError::TooManyHeaders,
        ParseError::HeaderLineTooLong,
        ParseError::HeadTooLarge,
        ParseError::BodyTooLarge,
        ParseError::Truncated,
    ];

    /// A short snake_case name (logs, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            ParseError::InvalidMethod => "invalid_method",
            ParseError::UnknownMethod => "unknown_method",
            ParseError::InvalidTarget => "invalid_target",
            ParseError::InvalidVersion => "invalid_version",
            ParseError::UnsupportedVersion => "unsupported_version",
            ParseError::Http09 => "http09",
            ParseError::BadLineEnding => "bad_line_ending",
            ParseError::InvalidRequestLine => "invalid_request_line",
            ParseError::InvalidHeaderName => "invalid_header_name",
            ParseError::InvalidHeaderValue => "invalid_header_value",
            ParseError::ObsFold => "obs_fold",
            ParseError::InvalidContentLength => "invalid_content_length",
            ParseError::ConflictingFraming => "conflicting_framing",
            ParseError::TransferEncodingNotImplemented => "transfer_encoding",
            ParseError::LengthRequired => "length_required",
            ParseError::RequestLineTooLong => "request_line_too_long",
            ParseError::TooManyHeaders => "too_many_headers",
            ParseError::HeaderLineTooLong => "header_line_too_long",
            ParseError::HeadTooLarge => "head_too_large",
            ParseError::BodyTooLarge => "body_too_large",
            ParseError::Truncated => "truncated",
        }
    }

    /// The status this error is answered with (shorthand for [`disposition`]`(self).status`).
    pub fn status(self) -> u16 {
        disposition(self).status
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for ParseError {}

/// What to do about a rejected request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disposition {
    /// The status of the error response.
    pub status: u16,
    /// Whether to close after the response. Always true for HTTP/1.0 (one request per
    /// connection); kept explicit so milestone 8 (keep-alive) reuses the mapping.
    pub close: bool,
}

/// The one mapping from [`ParseError`] to a response status and a close decision.
///
/// Framing errors (anything that leaves the end of the request unknown) must close: the next
/// byte cannot be trusted to start a request.
pub fn disposition(err: ParseError) -> Disposition {
    let status = match err {
        ParseError::UnknownMethod | ParseError::TransferEncodingNotImplemented => 501,
        ParseError::UnsupportedVersion | ParseError::Http09 => 505,
        ParseError::RequestLineTooLong => 414,
        ParseError::TooManyHeaders | ParseError::HeaderLineTooLong | ParseError::HeadTooLarge => {
            431
        }
        ParseError::BodyTooLarge => 413,
        ParseError::LengthRequired => 411,
        ParseError::InvalidMethod
        | ParseError::InvalidTarget
        | ParseError::InvalidVersion
        | ParseError::BadLineEnding
        | ParseError::InvalidRequestLine
        | ParseError::InvalidHeaderName
        | ParseError::InvalidHeaderValue
        | ParseError::ObsFold
        | ParseError::InvalidContentLength
        | ParseError::ConflictingFraming
        | ParseError::Truncated => 400,
    };
    Disposition {
        status,
        close: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_disposition_maps_every_error_to_a_4xx_or_5xx_and_closes() {
        for e in ParseError::ALL {
            let d = disposition(e);
            assert!((400..=505).contains(&d.status), "{e}: {}", d.status);
            assert!(d.close, "{e}");
        }
        assert_eq!(disposition(ParseError::RequestLineTooLong).status, 414);
        assert_eq!(disposition(ParseError::TooManyHeaders).status, 431);
        assert_eq!(disposition(ParseError::BodyTooLarge).status, 413);
        assert_eq!(disposition(ParseError::UnknownMethod).status, 501);
        assert_eq!(disposition(ParseError::UnsupportedVersion).status, 505);
        assert_eq!(disposition(ParseError::InvalidHeaderValue).status, 400);
    }
}
