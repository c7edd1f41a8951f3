//! The router through m04's parser and writer (`dispatch_bytes`) and through a whole
//! `Http10Session` (`exchange`): registration, matching, context, responses, HEAD, logging,
//! statistics, and every failure path.

use std::sync::Arc;
use std::time::Duration;

use m04_http10::Method;
use m05_routing::lab::{dispatch_bytes, exchange, get, request};
use m05_routing::{
    Body, Lookup, MemorySink, RequestContext, Response, RouteError, RouteWarning, Router,
    RouterKind, RouterLimits,
};

type Ctx<'a> = RequestContext<'a>;

fn app(kind: RouterKind) -> Router {
    Router::builder()
        .kind(kind)
        .get("/", |_: &mut Ctx<'_>| Response::text(200, "root"))
        .get("/users", |_: &mut Ctx<'_>| Response::text(200, "list"))
        .post("/users", |c: &mut Ctx<'_>| {
            Response::text(201, format!("created {}", String::from_utf8_lossy(c.body())))
        })
        .get("/users/me", |_: &mut Ctx<'_>| Response::text(200, "me"))
        .get("/users/:id", |c: &mut Ctx<'_>| {
            Response::text(200, format!("user {}", c.param("id").unwrap_or("?")))
        })
        .delete("/users/:id", |c: &mut Ctx<'_>| {
            Response::text(200, format!("deleted {}", c.param("id").unwrap_or("?")))
        })
        .get("/users/:id/posts/:post", |c: &mut Ctx<'_>| {
            Response::text(
                200,
                format!("{}/{}", c.param("id").unwrap_or("?"), c.param("post").unwrap_or("?")),
            )
        })
        .get("/files/*path", |c: &mut Ctx<'_>| {
            Response::text(200, format!("file [{}]", c.param("path").unwrap_or("?")))
        })
        .get("/search", |c: &mut Ctx<'_>| match c.query_param("q") {
            Ok(q) => Response::text(200, format!("q=[{}]", q.unwrap_or_default())),
            Err(_) => Response::error(400),
        })
        .get("/ctx", |c: &mut Ctx<'_>| {
            Response::json(
                200,
                &serde_json::json!({
                    "method": c.method().as_str(),
                    "path": c.path(),
                    "raw": c.raw_target(),
                    "route": c.route(),
                    "agent": c.header("user-agent").map(|v| String::from_utf8_lossy(v).into_owned()),
                    "peer": c.peer().to_string(),
                    "version": c.version().as_str(),
                    "pairs": c.query().to_vec().unwrap_or_default().len(),
                }),
            )
        })
        .get("/static-body", |_: &mut Ctx<'_>| {
            Response::new(200)
                .with_content_type("text/plain")
                .with_header("X-Kind", "static")
                .with_body(Body::Static(b"forever"))
        })
        .get("/shared-body", |_: &mut Ctx<'_>| {
            let shared: Arc<[u8]> = Arc::from(&b"shared"[..]);
            Response::new(200).with_body(shared)
        })
        .get("/panic", |_: &mut Ctx<'_>| -> Response { panic!("handler bug") })
        .build()
        .expect("valid routes")
}

#[test]
fn test_registration_builds_every_kind() {
    for kind in RouterKind::ALL {
        let r = app(kind);
        assert_eq!(r.kind(), kind);
        assert_eq!(r.table().len(), 13);
        assert!(r.warnings().is_empty());
        assert_eq!("prefix".parse::<RouterKind>(), Ok(RouterKind::Prefix));
        assert!("nope".parse::<RouterKind>().is_err());
    }
}

#[test]
fn test_exact_path_matches_only_itself() {
    for kind in RouterKind::ALL {
        let r = app(kind);
        assert_eq!(dispatch_bytes(&r, &get("/users")).unwrap().text(), "list");
        assert_eq!(dispatch_bytes(&r, &get("/")).unwrap().text(), "root");
        assert_eq!(dispatch_bytes(&r, &get("/users/")).unwrap().status, 404);
        assert_eq!(dispatch_bytes(&r, &get("/Users")).unwrap().status, 404);
        assert_eq!(dispatch_bytes(&r, &get("/users/me")).unwrap().text(), "me");
    }
}

#[test]
fn test_method_specific_routes_and_405_allow() {
    for kind in RouterKind::ALL {
        let r = app(kind);
        let post = b"POST /users HTTP/1.0\r\nContent-Length: 3\r\n\r\nbob";
        let p = dispatch_bytes(&r, post).unwrap();
        assert_eq!((p.status, p.text().as_str()), (201, "created bob"));
        let d = dispatch_bytes(&r, &request("DELETE", "/users/7")).unwrap();
        assert_eq!(d.text(), "deleted 7");
        // DELETE /users/me: the literal GET route does not take DELETE; the parameter route does.
        let d = dispatch_bytes(&r, &request("DELETE", "/users/me")).unwrap();
        assert_eq!(d.text(), "deleted me");
        let n = dispatch_bytes(&r, &request("PUT", "/users")).unwrap();
        assert_eq!(n.status, 405);
        assert_eq!(n.header("Allow"), Some("GET, HEAD, POST"));
        assert_eq!(r.stats().method_not_allowed, 1);
    }
}

#[test]
fn test_path_params_are_extracted_and_decoded() {
    for kind in RouterKind::ALL {
        let r = app(kind);
        assert_eq!(
            dispatch_bytes(&r, &get("/users/42")).unwrap().text(),
            "user 42"
        );
        assert_eq!(
            dispatch_bytes(&r, &get("/users/42/posts/7"))
                .unwrap()
                .text(),
            "42/7"
        );
        assert_eq!(
            dispatch_bytes(&r, &get("/users/caf%C3%A9%20x"))
                .unwrap()
                .text(),
            "user café x"
        );
        match r.lookup(Method::Get, "/users/9/posts/3") {
            Lookup::Found { params, .. } => {
                assert_eq!(
                    params.iter().collect::<Vec<_>>(),
                    [("id", "9"), ("post", "3")]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn test_wildcard_route_takes_rest_of_path() {
    for kind in RouterKind::ALL {
        let r = app(kind);
        assert_eq!(
            dispatch_bytes(&r, &get("/files/a/b/c.txt")).unwrap().text(),
            "file [a/b/c.txt]"
        );
        assert_eq!(
            dispatch_bytes(&r, &get("/files/")).unwrap().text(),
            "file []"
        );
        assert_eq!(dispatch_bytes(&r, &get("/files")).unwrap().status, 404);
    }
}

#[test]
fn test_query_string_parsed_into_params() {
    let r = app(RouterKind::Prefix);
    assert_eq!(
        dispatch_bytes(&r, &get("/search?q=a+b%21&x=1"))
            .unwrap()
            .text(),
        "q=[a b!]"
    );
    assert_eq!(
        dispatch_bytes(&r, &get("/search?x=1")).unwrap().text(),
        "q=[]"
    );
    // A malformed escape in the query: m04's parser already refuses it with 400.
    assert_eq!(exchange(&Arc::new(r), &get("/search?q=%zz")).status, 400);
}

#[test]
fn test_request_context_exposes_request() {
    let r = app(RouterKind::Hash);
    let p = dispatch_bytes(
        &r,
        b"GET /./ctx?a=1&b=2 HTTP/1.0\r\nUser-Agent: probe/1\r\n\r\n",
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/ctx");
    assert_eq!(v["raw"], "/./ctx?a=1&b=2");
    assert_eq!(v["route"], "/ctx");
    assert_eq!(v["agent"], "probe/1");
    assert_eq!(v["peer"], "127.0.0.1:40000");
    assert_eq!(v["version"], "HTTP/1.0");
    assert_eq!(v["pairs"], 2);
}

#[test]
fn test_response_builder_bodies_and_headers() {
    let r = app(RouterKind::Linear);
    let p = dispatch_bytes(&r, &get("/static-body")).unwrap();
    assert_eq!(p.text(), "forever");
    assert_eq!(p.header("X-Kind"), Some("static"));
    assert_eq!(p.header("Content-Type"), Some("text/plain"));
    assert_eq!(p.header("Content-Length"), Some("7"));
    assert_eq!(
        dispatch_bytes(&r, &get("/shared-body")).unwrap().text(),
        "shared"
    );
    let resp = Response::redirect(302, "/a b").with_header("X", "y");
    assert_eq!(resp.header("location"), Some(&b"/a%20b"[..]));
    assert_eq!(resp.status(), 302);
}

#[test]
fn test_unknown_path_404_recorded() {
    let r = app(RouterKind::Prefix);
    for p in ["/nope", "/users/1/2/3", "/missing/x"] {
        let resp = dispatch_bytes(&r, &get(p)).unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.text(), "404 Not Found\n");
    }
    dispatch_bytes(&r, &get("/users")).unwrap();
    let s = r.stats();
    assert_eq!(s.not_found, 3);
    assert_eq!(s.recent_404, ["/nope", "/users/1/2/3", "/missing/x"]);
    assert!((s.not_found_rate - 0.75).abs() < 1e-9);
}

#[test]
fn test_404_history_is_bounded() {
    let r = app(RouterKind::Prefix);
    for i in 0..100 {
        dispatch_bytes(&r, &get(&format!("/gone/{i}"))).unwrap();
    }
    let s = r.stats();
    assert_eq!(s.not_found, 100);
    assert_eq!(s.recent_404.len(), m05_routing::stats::NOT_FOUND_HISTORY);
    assert_eq!(s.recent_404.last().map(String::as_str), Some("/gone/99"));
}

#[test]
fn test_head_served_by_get_route_without_body() {
    for kind in RouterKind::ALL {
        let r = Arc::new(app(kind));
        let h = exchange(&r, &request("HEAD", "/users/42"));
        assert_eq!(h.status, 200);
        assert_eq!(h.header("Content-Length"), Some("7"), "length of 'user 42'");
        assert!(h.body.is_empty());
        let g = exchange(&r, &get("/users/42"));
        assert_eq!(g.text(), "user 42");
    }
}

#[test]
fn test_request_log_common_log_format() {
    let sink = Arc::new(MemorySink::new(10));
    let r = Router::builder()
        .get("/a/:x", |_: &mut Ctx<'_>| Response::text(200, "hello"))
        .log_to(sink.clone())
        .build()
        .unwrap();
    dispatch_bytes(&r, &get("/a/1?z=2")).unwrap();
    dispatch_bytes(&r, &get("/b")).unwrap();
    let lines = sink.lines();
    assert_eq!(lines.len(), 2);
    let re = regex::Regex::new(
        r#"^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET /a/1\?z=2 HTTP/1\.0" 200 5$"#,
    )
    .unwrap();
    assert!(re.is_match(&lines[0]), "{}", lines[0]);
    assert!(
        lines[1].ends_with("\"GET /b HTTP/1.0\" 404 14"),
        "{}",
        lines[1]
    );
}

#[test]
fn test_requests_counted_per_route() {
    let r = app(RouterKind::Hash);
    for _ in 0..3 {
        dispatch_bytes(&r, &get("/users/1")).unwrap();
    }
    dispatch_bytes(&r, &get("/users")).unwrap();
    let s = r.stats();
    assert_eq!(s.requests, 4);
    let count = |pat: &str| s.per_route.iter().find(|(p, ..)| p == pat).map(|x| x.2);
    assert_eq!(count("/users/:id"), Some(3));
    assert_eq!(count("/users"), Some(1));
    assert_eq!(count("/users/me"), Some(0));
}

#[test]
fn test_lookup_handler_framework_time_recorded() {
    let r = Router::builder()
        .get("/sleep", |_: &mut Ctx<'_>| {
            std::thread::sleep(Duration::from_millis(3));
            Response::text(200, "z")
        })
        .build()
        .unwrap();
    for _ in 0..5 {
        dispatch_bytes(&r, &get("/sleep")).unwrap();
    }
    let s = r.stats();
    assert_eq!(s.lookup.count, 5);
    assert_eq!(s.handler.count, 5);
    assert!(s.handler.mean_ns >= 3_000_000.0, "{:?}", s.handler);
    assert!(
        s.lookup.mean_ns > 0.0 && s.lookup.mean_ns < 1_000_000.0,
        "{:?}",
        s.lookup
    );
    assert!(s.framework.mean_ns > 0.0 && s.framework.mean_ns < s.handler.mean_ns);
}

#[test]
fn test_time_one_in_samples_timing_and_counts_every_request() {
    for (n, timed) in [(1u32, 8u64), (4, 2), (0, 0)] {
        let r = Router::builder()
            .time_one_in(n)
            .get("/x", |_: &mut Ctx<'_>| Response::text(200, "x"))
            .build()
            .unwrap();
        for _ in 0..8 {
            assert_eq!(dispatch_bytes(&r, &get("/x")).unwrap().status, 200);
        }
        let s = r.stats();
        assert_eq!(s.requests, 8, "one in {n}");
        assert_eq!(s.lookup.count, timed, "one in {n}");
        assert_eq!(s.handler.count, timed, "one in {n}");
        assert_eq!(s.framework.count, timed, "one in {n}");
    }
    // A slow threshold needs every request's time: sampling does not apply.
    let r = Router::builder()
        .time_one_in(0)
        .slow_threshold(Duration::from_secs(60))
        .get("/x", |_: &mut Ctx<'_>| Response::text(200, "x"))
        .build()
        .unwrap();
    for _ in 0..3 {
        dispatch_bytes(&r, &get("/x")).unwrap();
    }
    assert_eq!(r.stats().lookup.count, 3);
}

#[test]
fn test_slow_request_logged_over_threshold() {
    let sink = Arc::new(MemorySink::new(10));
    let r = Router::builder()
        .get("/slow", |_: &mut Ctx<'_>| {
            std::thread::sleep(Duration::from_millis(20));
            Response::text(200, "z")
        })
        .get("/fast", |_: &mut Ctx<'_>| Response::text(200, "z"))
        .slow_threshold(Duration::from_millis(10))
        .log_to(sink.clone())
        .build()
        .unwrap();
    dispatch_bytes(&r, &get("/fast")).unwrap();
    dispatch_bytes(&r, &get("/slow")).unwrap();
    let s = r.stats();
    assert_eq!(s.slow_requests, 1);
    assert_eq!(s.recent_slow[0].request, "GET /slow");
    assert_eq!(s.recent_slow[0].route.as_deref(), Some("/slow"));
    assert!(s.recent_slow[0].handler_us >= 20_000);
    assert!(
        sink.lines()
            .iter()
            .any(|l| l.starts_with("slow request: GET /slow route=/slow status=200")),
        "{:?}",
        sink.lines()
    );
}

#[test]
fn test_shadowed_route_is_unreachable_error() {
    let err = Router::builder()
        .get("/users/:id", |_: &mut Ctx<'_>| Response::new(200))
        .get("/users/:name", |_: &mut Ctx<'_>| Response::new(200))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            RouteError::Unreachable {
                route: 1,
                shadowed_by: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = Router::builder()
        .any("/x/*rest", |_: &mut Ctx<'_>| Response::new(200))
        .post("/x/*all", |_: &mut Ctx<'_>| Response::new(200))
        .build()
        .unwrap_err();
    assert!(matches!(err, RouteError::Unreachable { route: 1, .. }));
    // Partly shadowed: a warning, and the route still answers its other method.
    let r = Router::builder()
        .route(&[Method::Get, Method::Post], "/y/:a", |_: &mut Ctx<'_>| {
            Response::text(200, "first")
        })
        .route(&[Method::Post, Method::Put], "/y/:b", |_: &mut Ctx<'_>| {
            Response::text(200, "second")
        })
        .build()
        .unwrap();
    assert!(matches!(
        r.warnings(),
        [RouteWarning::PartlyShadowed {
            route: 1,
            shadowed_by: 0,
            ..
        }]
    ));
    assert_eq!(
        dispatch_bytes(&r, &request("PUT", "/y/1")).unwrap().text(),
        "second"
    );
    assert_eq!(
        dispatch_bytes(&r, &request("POST", "/y/1")).unwrap().text(),
        "first"
    );
}

#[test]
fn test_invalid_patterns_are_errors() {
    for bad in ["users", "/a/:", "/*x/y", "/:a/:a", "/a/%20", "/a/../b"] {
        let e = Router::builder()
            .get(bad, |_: &mut Ctx<'_>| Response::new(200))
            .build();
        assert!(matches!(e, Err(RouteError::Pattern(_))), "{bad}");
    }
}

#[test]
fn test_redirect_cycle_refused_at_registration() {
    let err = Router::builder()
        .redirect("/a", "/b", 301)
        .redirect("/b", "/c", 301)
        .redirect("/c", "/a", 301)
        .build()
        .unwrap_err();
    match err {
        RouteError::RedirectLoop { chain } => assert_eq!(chain, ["/a", "/b", "/c", "/a"]),
        other => panic!("{other}"),
    }
    let err = Router::builder()
        .redirect("/old/:id", "/new/:id", 301)
        .redirect("/new/:id", "/old/:id", 301)
        .build()
        .unwrap_err();
    assert!(matches!(err, RouteError::RedirectLoop { .. }));
    // A relative target is resolved against the request path (RFC 3986 §5.2): `./self` from
    // `/self` is `/self` again.
    let err = Router::builder().redirect("/self", "./self", 302).build();
    assert!(matches!(err, Err(RouteError::RedirectLoop { .. })));
    let err = Router::builder().redirect("/a/:x", "/b/:y", 301).build();
    assert!(matches!(err, Err(RouteError::UnknownTargetParam { .. })));
}

#[test]
fn test_redirect_chain_collapsed_and_runtime_loop_508() {
    // `/w/*rest` strips one `/w` per hop: the chain's length depends on the request, so only
    // the runtime walk can bound it.
    let r = Arc::new(
        Router::builder()
            .redirect("/old/:id", "/users/:id", 301)
            .redirect("/users/:id", "/people/:id", 308)
            .redirect("/w/*rest", "/*rest", 302)
            .redirect("/ext", "https://example.com/x", 302)
            .get("/people/:id", |c: &mut Ctx<'_>| {
                Response::text(200, c.param("id").unwrap_or("").to_owned())
            })
            .build()
            .unwrap(),
    );
    let p = exchange(&r, &get("/old/5"));
    assert_eq!(p.status, 301);
    assert_eq!(
        p.header("Location"),
        Some("/people/5"),
        "the chain is collapsed"
    );
    assert_eq!(
        exchange(&r, &get("/ext")).header("Location"),
        Some("https://example.com/x")
    );
    let short = exchange(&r, &get("/w/w/w/people/1"));
    assert_eq!(
        (short.status, short.header("Location")),
        (302, Some("/people/1"))
    );
    let deep = format!("{}/x", "/w".repeat(20));
    let looped = exchange(&r, &get(&deep));
    assert_eq!(looped.status, 508);
    assert_eq!(r.stats().redirect_loops, 1);
    assert_eq!(r.stats().server_errors, 1);
}

#[test]
fn test_handler_panic_becomes_500_and_is_counted() {
    for kind in RouterKind::ALL {
        let r = Arc::new(app(kind));
        let p = exchange(&r, &get("/panic"));
        assert_eq!(p.status, 500);
        assert_eq!(p.text(), "500 Internal Server Error\n");
        // The router keeps working after the panic.
        assert_eq!(exchange(&r, &get("/users/1")).text(), "user 1");
        let s = r.stats();
        assert_eq!(s.handler_panics, 1);
        assert_eq!(s.server_errors, 1);
    }
}

#[test]
fn test_oversized_query_string_414() {
    let r = Router::builder()
        .get("/q", |_: &mut Ctx<'_>| Response::text(200, "ok"))
        .limits(RouterLimits {
            max_query_bytes: 64,
            max_query_pairs: 4,
            ..RouterLimits::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        dispatch_bytes(&r, &get(&format!("/q?{}", "a".repeat(64))))
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        dispatch_bytes(&r, &get(&format!("/q?{}", "a".repeat(65))))
            .unwrap()
            .status,
        414
    );
    assert_eq!(
        dispatch_bytes(&r, &get("/q?a&b&c&d&e")).unwrap().status,
        414
    );
    assert_eq!(r.stats().uri_too_long, 2);
}

#[test]
fn test_bad_escapes_400_and_counted() {
    let r = Arc::new(app(RouterKind::Prefix));
    // Malformed escapes are refused by m04's parser (400) before the router sees them; escapes
    // that are well-formed but decode to bad bytes (not UTF-8, NUL) are the router's.
    for bad in [
        "/users/%4",
        "/users/%G0",
        "/users/%FF",
        "/users/%C3%28",
        "/users/a%00",
    ] {
        assert_eq!(exchange(&r, &get(bad)).status, 400, "{bad}");
    }
    assert_eq!(r.stats().bad_request, 3);
}

#[test]
fn test_demo_router_serves_its_routes() {
    for kind in RouterKind::ALL {
        let r = Arc::new(m05_routing::demo::router(kind, None, None).unwrap());
        assert_eq!(exchange(&r, &get("/")).text(), "Hello, World!");
        assert_eq!(exchange(&r, &get("/plaintext")).text(), "Hello, World!");
        assert_eq!(exchange(&r, &get("/hello/z%C3%BC")).text(), "Hello, zü!\n");
        assert_eq!(exchange(&r, &get("/search?q=a+b")).text(), "q=a b\n");
        assert_eq!(exchange(&r, &get("/old")).header("Location"), Some("/"));
    }
}
