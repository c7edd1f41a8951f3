//! RFC 3986 vectors (shared with the `rfc3986_conformance` check): §2 character classes and
//! percent-encoding, §5.2.4 dot-segment removal, §5.4 reference resolution, request-path
//! refusals. Plus the same through a whole HTTP/1.0 session: bad escapes are answered 400.

use std::sync::Arc;

use m05_routing::lab::{exchange, get, rfc3986};
use m05_routing::{RequestContext, Response, Router};

#[test]
fn test_rfc3986_section2_percent_encoding_and_classes() {
    let mut r = rfc3986::Report::default();
    rfc3986::characters(&mut r);
    assert!(r.failures.is_empty(), "{:#?}", r.failures);
    assert!(r.cases > 1000);
}

#[test]
fn test_rfc3986_section5_dot_segments_and_resolution() {
    let mut r = rfc3986::Report::default();
    rfc3986::dot_segments(&mut r);
    assert!(r.failures.is_empty(), "{:#?}", r.failures);
    assert!(r.cases >= 45);
}

#[test]
fn test_request_paths_never_escape_root() {
    let mut r = rfc3986::Report::default();
    rfc3986::request_paths(&mut r);
    assert!(r.failures.is_empty(), "{:#?}", r.failures);
    assert!(r.cases > 5000);
}

#[test]
fn test_session_bad_escape_answers_400() {
    let router = Arc::new(
        Router::builder()
            .get("/*any", |c: &mut RequestContext<'_>| {
                Response::text(200, c.path().to_owned())
            })
            .build()
            .unwrap(),
    );
    for bad in ["/a%4", "/a%zz", "/%C3%28", "/a%2Fb", "/../x", "/%2e%2e/x"] {
        assert_eq!(exchange(&router, &get(bad)).status, 400, "{bad}");
    }
    assert_eq!(exchange(&router, &get("/a/%7Eb/./c")).text(), "/a/~b/c");
}
