//! Allocation accounting with the counting global allocator: lookups and parameter extraction
//! allocate nothing; the router records allocations per request.

use std::sync::Arc;

use m04_http10::Method;
use m05_routing::lab::{dispatch_bytes, get, path_for, route_set};
use m05_routing::sys::{self, CountingAlloc};
use m05_routing::{
    Lookup, MethodSet, Pattern, RequestContext, Response, RouteTable, Router, RouterKind,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn test_three_param_lookup_allocates_nothing_with_1000_routes() {
    let routes: Vec<(Pattern, MethodSet)> = route_set(1000)
        .iter()
        .map(|p| {
            (
                Pattern::parse(p).unwrap(),
                MethodSet::from_slice(&[Method::Get]),
            )
        })
        .collect();
    // Route 2 of each group of four has three parameters; pick one in the middle.
    let target = 502;
    let path = path_for(target);
    for kind in RouterKind::ALL {
        let (table, _) = RouteTable::build(kind, routes.clone()).unwrap();
        let before = sys::thread_allocations();
        let mut ok = 0;
        for _ in 0..1000 {
            if let Lookup::Found { route, params } = table.lookup(Method::Get, &path) {
                if route == target && params.len() == 3 && params.get("num") == Some("502") {
                    ok += 1;
                }
            }
        }
        let allocs = sys::thread_allocations() - before;
        assert!(sys::is_installed());
        assert_eq!(ok, 1000, "{kind}");
        assert_eq!(allocs, 0, "{kind}: {allocs} allocations in 1000 lookups");
    }
}

#[test]
fn test_plain_path_decode_allocates_nothing() {
    let before = sys::thread_allocations();
    for _ in 0..100 {
        let p = m05_routing::decode::decode_path("/api/r1/orgs/acme/repos/z/issues/9").unwrap();
        assert!(matches!(p, std::borrow::Cow::Borrowed(_)));
    }
    assert_eq!(sys::thread_allocations() - before, 0);
    let before = sys::thread_allocations();
    let _ = m05_routing::decode::decode_path("/a%20b").unwrap();
    assert!(
        sys::thread_allocations() - before >= 1,
        "decoding an escape allocates"
    );
}

#[test]
fn test_router_records_allocations_per_request() {
    let r = Arc::new(
        Router::builder()
            .get("/n/:x", |c: &mut RequestContext<'_>| {
                Response::text(200, c.param("x").unwrap_or("").to_string())
            })
            .build()
            .unwrap(),
    );
    for i in 0..10 {
        dispatch_bytes(&r, &get(&format!("/n/{i}"))).unwrap();
    }
    let s = r.stats();
    assert_eq!(s.alloc_requests, 10);
    // At least the handler's body String and the writer's header list.
    assert!(s.allocs_per_request >= 1.0, "{}", s.allocs_per_request);
    assert!(s.allocs_max >= 1 && (s.allocs_max as f64) >= s.allocs_per_request);
}
