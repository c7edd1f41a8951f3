//! The experiments' measurements, one function per table, shared by the example binaries and
//! the `routing_analysis_table` check. Tables whose cells count bytes or allocations need
//! [`crate::sys::CountingAlloc`] as the program's global allocator (the examples install it).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m04_http10::{Http10Factory, Limits, Method};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::decode::decode_path;
use crate::lab::{
    Rng, Table, machine, ns_per_call, one_session_request, path_for, round, route_set,
};
use crate::lookup::{Lookup, RouteTable, RouterKind};
use crate::pattern::{MethodSet, Params, Pattern, Segment};
use crate::query::{self, Query};
use crate::response::Response;
use crate::router::Router;
use crate::sys;

fn need_counting_alloc() -> std::io::Result<()> {
    if sys::is_installed() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "this measurement needs m05_routing::sys::CountingAlloc as the global allocator",
        ))
    }
}

/// Route counts measured: 10 … 10,000 (quick: up to 1,000).
pub fn sizes(quick: bool) -> Vec<usize> {
    if quick {
        vec![10, 100, 1000]
    } else {
        vec![10, 100, 1000, 10_000]
    }
}

fn budget(quick: bool) -> Duration {
    Duration::from_millis(if quick { 10 } else { 60 })
}

/// `(pattern, GET)` for every route of [`route_set`]`(n)`.
pub fn table_routes(n: usize) -> Vec<(Pattern, MethodSet)> {
    route_set(n)
        .iter()
        .filter_map(|p| Pattern::parse(p).ok())
        .map(|p| (p, MethodSet::from_slice(&[Method::Get])))
        .collect()
}

fn cycle_lookup<'a>(table: &'a RouteTable, paths: &'a [String]) -> impl FnMut() + 'a {
    let mut i = 0;
    move || {
        let p = &paths[i % paths.len()];
        i += 1;
        black_box(table.lookup(Method::Get, black_box(p)));
    }
}

/// Paths of one shape (`0` literal, `1` one parameter, `2` three parameters, `3` wildcard)
/// spread over all `n` routes.
fn shaped_paths(n: usize, shape: usize, count: usize) -> Vec<String> {
    let groups = (n / 4).max(1);
    let mut rng = Rng::new(shape as u64 + 7);
    (0..count)
        .map(|_| path_for(rng.below(groups) * 4 + shape))
        .collect()
}

/// Experiment `route_lookup_algorithms`: ns per lookup for linear, hash and prefix as the table
/// grows, per request shape, plus build time.
pub fn lookup_algorithms(quick: bool) -> std::io::Result<Table> {
    let mut t = Table::new(
        "Route lookup: linear vs hash vs prefix trie as the table grows (ns per lookup)",
        &[
            "routes",
            "kind",
            "build ms",
            "literal ns",
            "1-param ns",
            "3-param ns",
            "wildcard ns",
            "miss ns",
            "mixed ns",
        ],
    );
    for n in sizes(quick) {
        let routes = table_routes(n);
        let classes: Vec<Vec<String>> = (0..4).map(|s| shaped_paths(n, s, 512)).collect();
        let misses: Vec<String> = (0..512)
            .map(|i| format!("/api/r{}/nothing/{i}", i % (n / 4).max(1)))
            .collect();
        let mixed = crate::lab::paths_for(n, 1024, 11);
        let mut agree: Option<Vec<Option<usize>>> = None;
        for kind in RouterKind::ALL {
            let start = Instant::now();
            let (table, _) =
                RouteTable::build(kind, routes.clone()).map_err(std::io::Error::other)?;
            let build_ms = start.elapsed().as_secs_f64() * 1e3;
            // Every kind must route the mixed set identically (else the timing compares nothing).
            let hits: Vec<Option<usize>> = mixed
                .iter()
                .map(|p| match table.lookup(Method::Get, p) {
                    Lookup::Found { route, .. } => Some(route),
                    _ => None,
                })
                .collect();
            if hits.iter().any(Option::is_none) {
                return Err(std::io::Error::other(format!(
                    "{kind}: a generated path did not route"
                )));
            }
            match &agree {
                None => agree = Some(hits),
                Some(a) if *a != hits => {
                    return Err(std::io::Error::other(format!(
                        "{kind} routes differently from linear"
                    )));
                }
                _ => {}
            }
            let mut row = vec![json!(n), json!(kind.name()), json!(round(build_ms, 3))];
            for paths in classes.iter().chain([&misses, &mixed]) {
                let ns = ns_per_call(budget(quick), 50, cycle_lookup(&table, paths));
                row.push(json!(round(ns, 1)));
            }
            t.rows.push(row);
        }
    }
    t.notes = format!(
        "One thread, GET lookups on decoded paths, no I/O. Routes from lab::route_set: per resource a literal \
         (/api/rN/items), one-parameter (/api/rN/items/:id), three-parameter \
         (/api/rN/orgs/:org/repos/:repo/issues/:num) and wildcard (/api/rN/files/*path) route. Each cell cycles \
         through 512 paths of that shape spread over the whole table (misses: /api/rN/nothing/i; mixed: 1,024 \
         uniform over all routes); all three kinds were checked to route the mixed set identically. Linear tries \
         routes in priority order, so its cost grows with the table; hash answers literal paths from a HashMap and \
         falls back to a scan; the prefix trie descends one segment at a time. Machine: {}",
        machine()
    );
    Ok(t)
}

/// Experiment `routing_memory_overhead`: heap bytes per route for each kind (counting allocator:
/// live bytes after building minus before), for the bare table and for a whole router.
pub fn memory_overhead(quick: bool) -> std::io::Result<Table> {
    need_counting_alloc()?;
    let mut t = Table::new(
        "Routing memory overhead: heap bytes per route (counting allocator)",
        &[
            "routes",
            "kind",
            "table KiB",
            "table B/route",
            "router KiB",
            "router B/route",
        ],
    );
    for n in sizes(quick) {
        let patterns = route_set(n);
        for kind in RouterKind::ALL {
            let before = sys::live_bytes();
            let table = RouteTable::build(kind, table_routes(n)).map_err(std::io::Error::other)?;
            let table_bytes = sys::live_bytes() - before;
            drop(table);
            let before = sys::live_bytes();
            let mut b = Router::builder().kind(kind);
            for p in &patterns {
                b = b.get(p, |_: &mut RequestContext<'_>| Response::text(200, "ok"));
            }
            let router = b.build().map_err(std::io::Error::other)?;
            let router_bytes = sys::live_bytes() - before;
            drop(router);
            t.rows.push(vec![
                json!(n),
                json!(kind.name()),
                json!(round(table_bytes as f64 / 1024.0, 1)),
                json!(round(table_bytes as f64 / n as f64, 1)),
                json!(round(router_bytes as f64 / 1024.0, 1)),
                json!(round(router_bytes as f64 / n as f64, 1)),
            ]);
        }
    }
    t.notes = format!(
        "Live heap bytes (CountingAlloc: allocations minus frees) held by a RouteTable built from lab::route_set(n) \
         (parsed patterns, method sets, priority order, index) and by a whole Router (plus one boxed handler, a \
         per-route counter and the statistics). Linear keeps only the sorted order; hash adds a HashMap entry and \
         key copy per literal route; the trie adds a node per distinct segment (a HashMap per node with literal \
         children), which is why it costs the most per route. Machine: {}",
        machine()
    );
    Ok(t)
}

/// The routes of the priority experiment.
pub const PRIORITY_ROUTES: &[(&str, &[Method])] = &[
    ("/", &[Method::Get]),
    ("/users/me", &[Method::Get]),
    ("/users/:id", &[Method::Get, Method::Post]),
    ("/users/:id/posts", &[Method::Get]),
    ("/users/*rest", &[Method::Get]),
    ("/:section/posts", &[Method::Get]),
    ("/files/readme.txt", &[Method::Get]),
    ("/files/*path", &[Method::Get]),
    ("/*all", &[Method::Get]),
];

/// The requests of the priority experiment.
pub const PRIORITY_REQUESTS: &[(Method, &str)] = &[
    (Method::Get, "/users/me"),
    (Method::Get, "/users/42"),
    (Method::Post, "/users/me"),
    (Method::Get, "/users/posts"),
    (Method::Get, "/users/42/posts"),
    (Method::Get, "/users/42/likes"),
    (Method::Get, "/blog/posts"),
    (Method::Get, "/files/readme.txt"),
    (Method::Get, "/files/a/b.txt"),
    (Method::Head, "/files/readme.txt"),
    (Method::Get, "/"),
    (Method::Get, "/about/team/x"),
    (Method::Delete, "/users/42"),
    (Method::Put, "/nowhere"),
];

const KIND_NAMES: [&str; 3] = ["literal", "parameter", "wildcard"];

/// Why `winner` beats `other` (both match the same path).
fn why(winner: &Pattern, other: &Pattern) -> String {
    for (i, (a, b)) in winner.segments().iter().zip(other.segments()).enumerate() {
        if a.rank() != b.rank() {
            return format!(
                "{} beats {} at segment {}",
                KIND_NAMES[a.rank() as usize],
                KIND_NAMES[b.rank() as usize],
                i + 1
            );
        }
    }
    "same shape: registered earlier".into()
}

/// Experiment `route_priority_ordering`: which route wins each ambiguous request, and why
/// (derived from the patterns, not written by hand), checked identical for all three kinds.
pub fn priority_table() -> std::io::Result<Table> {
    let routes: Vec<(Pattern, MethodSet)> = PRIORITY_ROUTES
        .iter()
        .map(|(p, m)| Pattern::parse(p).map(|p| (p, MethodSet::from_slice(m))))
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let tables: Vec<RouteTable> = RouterKind::ALL
        .iter()
        .map(|k| RouteTable::build(*k, routes.clone()).map(|x| x.0))
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let mut t = Table::new(
        "Route priority: which route wins an ambiguous request, and why",
        &[
            "request",
            "winner",
            "params",
            "other matches (priority order)",
            "reason",
            "linear = hash = prefix",
        ],
    );
    for (method, path) in PRIORITY_REQUESTS {
        let table = &tables[0];
        let mut matching = Vec::new();
        for &i in table.priority_order() {
            let mut params = Params::new();
            if table.pattern(i).matches(path, &mut params) {
                matching.push(i);
            }
        }
        let results: Vec<String> = tables
            .iter()
            .map(|t| match t.lookup(*method, path) {
                Lookup::Found { route, params } => format!("{route}:{params:?}"),
                Lookup::MethodNotAllowed(a) => format!("405 {}", a.allow_header()),
                _ => "404".into(),
            })
            .collect();
        let agree = results.iter().all(|r| *r == results[0]);
        let (winner, params, reason) = match table.lookup(*method, path) {
            Lookup::Found { route, params } => {
                let wp = table.pattern(route);
                let skipped: Vec<&str> = matching
                    .iter()
                    .take_while(|i| **i != route)
                    .map(|i| table.pattern(*i).as_str())
                    .collect();
                let reason = if !skipped.is_empty() {
                    format!(
                        "{} ranks higher but does not take {}",
                        skipped.join(", "),
                        method.as_str()
                    )
                } else if let Some(next) = matching.iter().find(|i| **i != route) {
                    format!(
                        "{} (vs {})",
                        why(wp, table.pattern(*next)),
                        table.pattern(*next)
                    )
                } else {
                    "the only matching route".into()
                };
                let reason =
                    if *method == Method::Head && !table.methods(route).contains(Method::Head) {
                        format!("{reason}; a GET route serves HEAD")
                    } else {
                        reason
                    };
                (wp.as_str().to_owned(), format!("{params:?}"), reason)
            }
            Lookup::MethodNotAllowed(a) => (
                format!("405, Allow: {}", a.allow_header()),
                "{}".into(),
                "routes match the path, none takes the method".into(),
            ),
            _ => ("404".into(), "{}".into(), "no route matches".into()),
        };
        let others: Vec<&str> = matching
            .iter()
            .map(|i| table.pattern(*i).as_str())
            .filter(|p| *p != winner)
            .collect();
        t.rows.push(vec![
            json!(format!("{} {path}", method.as_str())),
            json!(winner),
            json!(params),
            json!(others.join(", ")),
            json!(reason),
            json!(if agree { "yes" } else { "NO" }),
        ]);
    }
    t.notes = format!(
        "Routes: {}. Priority is specificity, segment by segment from the left: literal > parameter > wildcard, \
         then registration order; among the matching routes, the first that accepts the method wins (so POST \
         /users/me falls through to /users/:id), and a path that matches only routes without the method gets 405 \
         with Allow. 'reason' is computed by comparing the winner with the next matching route. Machine: {}",
        PRIORITY_ROUTES
            .iter()
            .map(|(p, m)| format!(
                "{} {p}",
                MethodSet::from_slice(m)
                    .allow_header()
                    .replace(", HEAD", "")
            ))
            .collect::<Vec<_>>()
            .join("; "),
        machine()
    );
    Ok(t)
}

/// A regex equivalent of a pattern: `^/lit/([^/]+)/(.*)$`.
pub fn pattern_regex(p: &Pattern) -> String {
    let mut re = String::from("^");
    for seg in p.segments() {
        re.push('/');
        match seg {
            Segment::Literal(l) => re.push_str(&regex::escape(l)),
            Segment::Param(_) => re.push_str("([^/]+)"),
            Segment::Wildcard(_) => re.push_str("(.*)"),
        }
    }
    re.push('$');
    re
}

/// Experiment `regex_routing_cost`: the trie and linear scan vs routing with the `regex` crate
/// (one `Regex` per route tried in order, or one `RegexSet` plus captures on the winner).
pub fn regex_routing(quick: bool) -> std::io::Result<Table> {
    need_counting_alloc()?;
    let mut t = Table::new(
        "Regex routing vs segment matching: build time, ns per lookup (with captures), heap per route",
        &[
            "routes",
            "router",
            "build ms",
            "mixed ns",
            "3-param ns",
            "miss ns",
            "heap B/route",
        ],
    );
    let sizes = if quick {
        vec![10, 100]
    } else {
        vec![10, 100, 1000]
    };
    for n in sizes {
        let routes = table_routes(n);
        let mixed = crate::lab::paths_for(n, 512, 3);
        let three = shaped_paths(n, 2, 256);
        let misses: Vec<String> = (0..256)
            .map(|i| format!("/api/r{}/nothing/{i}", i % (n / 4).max(1)))
            .collect();
        for kind in [RouterKind::Prefix, RouterKind::Linear] {
            let before = sys::live_bytes();
            let start = Instant::now();
            let (table, _) =
                RouteTable::build(kind, routes.clone()).map_err(std::io::Error::other)?;
            let build = start.elapsed();
            let bytes = sys::live_bytes() - before;
            let mut row = vec![
                json!(n),
                json!(kind.name()),
                json!(round(build.as_secs_f64() * 1e3, 3)),
            ];
            for paths in [&mixed, &three, &misses] {
                row.push(json!(round(
                    ns_per_call(budget(quick), 50, cycle_lookup(&table, paths)),
                    1
                )));
            }
            row.push(json!(round(bytes as f64 / n as f64, 1)));
            t.rows.push(row);
        }
        // Priority order, as the table uses it.
        let (table, _) =
            RouteTable::build(RouterKind::Linear, routes.clone()).map_err(std::io::Error::other)?;
        let ordered: Vec<String> = table
            .priority_order()
            .iter()
            .map(|i| pattern_regex(table.pattern(*i)))
            .collect();
        // (a) one Regex per route, tried in order; captures from the first match.
        let before = sys::live_bytes();
        let start = Instant::now();
        let regexes: Vec<regex::Regex> = ordered
            .iter()
            .map(|r| regex::Regex::new(r))
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        let build = start.elapsed();
        let bytes = sys::live_bytes() - before;
        let linear_regex = |paths: &Vec<String>| {
            let mut i = 0;
            ns_per_call(budget(quick), 20, || {
                let p = &paths[i % paths.len()];
                i += 1;
                for re in &regexes {
                    if let Some(c) = re.captures(black_box(p)) {
                        black_box(c.len());
                        break;
                    }
                }
            })
        };
        let mut row = vec![
            json!(n),
            json!("regex, one per route"),
            json!(round(build.as_secs_f64() * 1e3, 3)),
        ];
        for paths in [&mixed, &three, &misses] {
            row.push(json!(round(linear_regex(paths), 1)));
        }
        row.push(json!(round(bytes as f64 / n as f64, 1)));
        t.rows.push(row);
        // (b) RegexSet: one automaton answers "which patterns match", then captures on the winner.
        let before = sys::live_bytes();
        let start = Instant::now();
        let set = regex::RegexSet::new(&ordered).map_err(std::io::Error::other)?;
        let build = start.elapsed() + build;
        let bytes = sys::live_bytes() - before + bytes;
        let set_lookup = |paths: &Vec<String>| {
            let mut i = 0;
            ns_per_call(budget(quick), 20, || {
                let p = &paths[i % paths.len()];
                i += 1;
                if let Some(first) = set.matches(black_box(p)).iter().next() {
                    if let Some(c) = regexes[first].captures(p) {
                        black_box(c.len());
                    }
                }
            })
        };
        let mut row = vec![
            json!(n),
            json!("regex, RegexSet + captures"),
            json!(round(build.as_secs_f64() * 1e3, 3)),
        ];
        for paths in [&mixed, &three, &misses] {
            row.push(json!(round(set_lookup(paths), 1)));
        }
        row.push(json!(round(bytes as f64 / n as f64, 1)));
        t.rows.push(row);
    }
    t.notes = format!(
        "Same routes and paths as route_lookup_algorithms (lab::route_set). Each pattern becomes \
         ^/lit/([^/]+)/(.*)$ (literals escaped), sorted in the router's priority order. 'one per route' tries each \
         Regex's captures in order (what a naive regex router does); 'RegexSet' asks one set automaton which \
         patterns match, takes the first in priority order and runs that pattern's captures (its heap includes the \
         per-route Regexes it needs for captures). Heap from CountingAlloc live bytes. 10,000 routes are left out: \
         RegexSet construction at that size takes seconds and hundreds of MB. regex {}; machine: {}",
        "1.x",
        machine()
    );
    Ok(t)
}

fn make_query(pairs: usize, escaped: bool) -> String {
    (0..pairs)
        .map(|i| {
            if escaped {
                format!("k%C3%A9y{i}=v%20al+ue%2F{i}")
            } else {
                format!("key{i}=value{i}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Experiment `query_parsing_cost`: the router's check, a lazy `get`, and decoding every pair,
/// for queries from 1 to 64 pairs, with and without escapes.
pub fn query_parsing(quick: bool) -> std::io::Result<Table> {
    need_counting_alloc()?;
    let mut t = Table::new(
        "Query string parsing cost (ns per query string)",
        &[
            "pairs",
            "escapes",
            "bytes",
            "check ns",
            "get(last) ns",
            "decode all ns",
            "ns per pair",
            "allocs (decode all)",
        ],
    );
    for pairs in [1usize, 4, 16, 64] {
        for escaped in [false, true] {
            let q = make_query(pairs, escaped);
            let last_key = if escaped {
                format!("kéy{}", pairs - 1)
            } else {
                format!("key{}", pairs - 1)
            };
            let check = ns_per_call(budget(quick), 100, || {
                black_box(query::check(black_box(&q), 1 << 20, 1 << 10).ok());
            });
            let get = ns_per_call(budget(quick), 100, || {
                black_box(Query::new(black_box(&q)).get(&last_key).ok());
            });
            let all = ns_per_call(budget(quick), 100, || {
                black_box(Query::new(black_box(&q)).to_vec().ok());
            });
            let before = sys::thread_allocations();
            let v = Query::new(&q).to_vec().map_err(std::io::Error::other)?;
            let allocs = sys::thread_allocations() - before;
            if v.len() != pairs {
                return Err(std::io::Error::other(
                    "query decoded to the wrong number of pairs",
                ));
            }
            t.rows.push(vec![
                json!(pairs),
                json!(if escaped { "yes" } else { "no" }),
                json!(q.len()),
                json!(round(check, 1)),
                json!(round(get, 1)),
                json!(round(all, 1)),
                json!(round(all / pairs as f64, 1)),
                json!(allocs),
            ]);
        }
    }
    t.notes = format!(
        "check = what the router does for every request (length, escapes well-formed, pair count; no \
         allocation); get(last) = a handler asking for the last key (decodes keys until it matches); decode all = \
         every pair into a Vec of Cow (an allocation per escaped key or value, plus the Vec). Plain pairs are \
         keyN=valueN; escaped ones k%C3%A9yN=v%20al+ue%2FN. Machine: {}",
        machine()
    );
    Ok(t)
}

/// The inputs of the URL decoding experiment.
pub fn decoding_inputs() -> Vec<(&'static str, String)> {
    let long_plain = format!("/api/{}", "segment/".repeat(25));
    let every: String = "/api/r1/files/"
        .chars()
        .chain("every-char-escaped-path-name.txt".chars().map(|_| '\0'))
        .collect::<String>();
    let every = every.replace('\0', "%61");
    vec![
        ("root", "/".to_owned()),
        ("short, no escapes", "/api/r1/items/42".to_owned()),
        (
            "3 params, no escapes",
            "/api/r1/orgs/acme/repos/zyphos/issues/7".to_owned(),
        ),
        ("long (206 B), no escapes", long_plain),
        ("dot-segments", "/api/r1/x/../items/./42".to_owned()),
        ("2 escapes", "/api/r1/items/caf%C3%A9".to_owned()),
        (
            "%2e%2e (encoded dots)",
            "/api/r1/x/%2e%2e/items/42".to_owned(),
        ),
        ("every char escaped", every),
    ]
}

/// Experiment `url_decoding_cost`: ns and allocations to decode + normalise a path, the same plus
/// the lookup, and a whole request (parse + decode + route + handle + render) for each input.
pub fn url_decoding(quick: bool) -> std::io::Result<Table> {
    need_counting_alloc()?;
    let mut t = Table::new(
        "URL decoding cost: decode + normalise vs lookup vs a whole request",
        &[
            "input",
            "bytes",
            "escapes",
            "decode ns",
            "allocs/decode",
            "decode+lookup ns",
            "whole request ns",
            "decode share %",
        ],
    );
    let mut b = Router::builder();
    for p in route_set(1000) {
        b = b.get(&p, |_: &mut RequestContext<'_>| Response::text(200, "ok"));
    }
    let router = Arc::new(
        b.get("/*any", |_: &mut RequestContext<'_>| {
            Response::text(200, "any")
        })
        .build()
        .map_err(std::io::Error::other)?,
    );
    let factory = Http10Factory::new(Arc::clone(&router), Limits::default());
    for (name, path) in decoding_inputs() {
        let decoded =
            decode_path(&path).map_err(|e| std::io::Error::other(format!("{path}: {e}")))?;
        drop(decoded);
        let escapes = path.matches('%').count();
        let decode = ns_per_call(budget(quick), 100, || {
            black_box(decode_path(black_box(&path)).ok());
        });
        let before = sys::thread_allocations();
        for _ in 0..100 {
            black_box(decode_path(&path).ok());
        }
        let allocs = (sys::thread_allocations() - before) as f64 / 100.0;
        let lookup = ns_per_call(budget(quick), 100, || {
            if let Ok(p) = decode_path(black_box(&path)) {
                black_box(matches!(
                    router.lookup(Method::Get, &p),
                    Lookup::Found { .. }
                ));
            }
        });
        let req = crate::lab::get(&path);
        let now = Instant::now();
        if one_session_request(&factory, &req, now) == 0 {
            return Err(std::io::Error::other(format!("{path}: no response")));
        }
        let whole = ns_per_call(budget(quick), 100, || {
            black_box(one_session_request(&factory, black_box(&req), now));
        });
        t.rows.push(vec![
            json!(name),
            json!(path.len()),
            json!(escapes),
            json!(round(decode, 1)),
            json!(round(allocs, 2)),
            json!(round(lookup, 1)),
            json!(round(whole, 1)),
            json!(round(100.0 * decode / whole, 2)),
        ]);
    }
    t.notes = format!(
        "decode = decode_path (validate pchars, %XX, refuse %2F/%00, UTF-8, remove dot-segments). Paths without \
         escapes or dot-segments are returned borrowed: no allocation. decode+lookup uses a prefix router with \
         lab::route_set(1000) plus a /*any fallback; whole request = a fresh Http10Session fed the GET bytes (parse, \
         decode, route, handler, render; Date cached), no socket. Machine: {}",
        machine()
    );
    Ok(t)
}

/// Problems with a table (empty = well-formed): right columns, rows present, numeric cells
/// finite and non-negative, notes with the machine.
pub fn validate(t: &Table, min_rows: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if t.rows.len() < min_rows {
        problems.push(format!(
            "{}: {} rows, want at least {min_rows}",
            t.title,
            t.rows.len()
        ));
    }
    for row in &t.rows {
        if row.len() != t.columns.len() {
            problems.push(format!("{}: row {row:?} has {} cells", t.title, row.len()));
        }
        for c in row {
            if let Value::Number(n) = c {
                if !n.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0) {
                    problems.push(format!("{}: bad number {n}", t.title));
                }
            }
        }
    }
    if !t.notes.contains(&machine()) {
        problems.push(format!("{}: notes lack the machine", t.title));
    }
    problems
}

/// A numeric cell.
pub fn cell(t: &Table, row: usize, col: &str) -> f64 {
    let Some(c) = t.columns.iter().position(|x| x == col) else {
        return f64::NAN;
    };
    t.rows
        .get(row)
        .and_then(|r| r.get(c))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// The row index where the first column is `n` and the second is `name`.
pub fn find_row(t: &Table, n: usize, name: &str) -> Option<usize> {
    t.rows.iter().position(|r| {
        r.first().and_then(Value::as_u64) == Some(n as u64)
            && r.get(1).and_then(Value::as_str) == Some(name)
    })
}
