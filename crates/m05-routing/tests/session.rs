//! The error-handling suite through a real `Http10Session` (bytes in → response bytes out, with
//! short reads and writes), plus static files and their traversal defences one by one.

use std::sync::Arc;

use m05_routing::lab::suite::{self, Fixture, SECRET};
use m05_routing::lab::{exchange, get, request};

#[test]
fn test_error_handling_suite_all_cases_pass() {
    let cases = suite::error_handling().unwrap();
    let failed: Vec<_> = cases.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(cases.len() >= 28);
}

#[test]
fn test_static_traversal_attempts_blocked() {
    let fx = Fixture::new().unwrap();
    let r = Arc::new(suite::suite_router(&fx.root).unwrap());
    for (path, status) in [
        ("/static/../../secret.txt", 400),
        ("/static/%2e%2e/%2e%2e/secret.txt", 400),
        ("/static/..%2f..%2fsecret.txt", 400),
        ("/static/out", 403),
        ("/static/outdir/secret.txt", 403),
        ("/static/../secret.txt", 404),
        ("/static/missing.txt", 404),
        ("/static/empty/", 404),
    ] {
        let p = exchange(&r, &get(path));
        assert_eq!(p.status, status, "{path}");
        assert!(!p.text().contains(SECRET), "{path} leaked the secret");
    }
    assert_eq!(r.stats().traversal_blocked, 5);
}

#[test]
fn test_static_file_served_with_type_and_head() {
    let fx = Fixture::new().unwrap();
    let r = Arc::new(suite::suite_router(&fx.root).unwrap());
    let p = exchange(&r, &get("/static/css/site.css"));
    assert_eq!(p.status, 200);
    assert_eq!(p.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(p.text(), "body { color: black }\n");
    let h = exchange(&r, &request("HEAD", "/static/css/site.css"));
    assert_eq!(h.header("Content-Length"), Some("22"));
    assert!(h.body.is_empty());
}

#[test]
fn test_static_large_file_sent_in_chunks() {
    let fx = Fixture::new().unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(fx.root.join("big.bin"), &big).unwrap();
    let r = Arc::new(suite::suite_router(&fx.root).unwrap());
    let p = exchange(&r, &get("/static/big.bin"));
    assert_eq!(p.status, 200);
    assert_eq!(p.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(p.body, big);
}
