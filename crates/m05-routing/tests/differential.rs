//! Differential test: `linear`, `hash` and `prefix` give the same answer (route, parameters,
//! allowed methods) for every request, on random route tables, and agree with a brute-force
//! oracle written from the priority rule alone.

use m04_http10::Method;
use m05_routing::lab::Rng;
use m05_routing::{Lookup, MethodSet, Params, Pattern, RouteTable, RouterKind};

/// A found route and its parameters.
type Hit = Option<(usize, Vec<(String, String)>)>;

const LITS: [&str; 4] = ["a", "b", "c", ""];

fn random_pattern(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(4);
    let mut p = String::new();
    let mut n = 0;
    for i in 0..depth {
        p.push('/');
        match rng.below(6) {
            0..=2 => p.push_str(LITS[rng.below(3)]),
            3 | 4 => {
                p.push_str(&format!(":p{n}"));
                n += 1;
            }
            _ if i == depth - 1 => p.push_str(&format!("*w{n}")),
            _ => p.push_str(LITS[rng.below(3)]),
        }
    }
    p
}

fn random_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(5);
    (0..depth)
        .map(|_| match rng.below(8) {
            0 => "x",
            7 => "",
            i => LITS[(i - 1) % 3],
        })
        .fold(String::new(), |mut s, seg| {
            s.push('/');
            s.push_str(seg);
            s
        })
}

const METHODS: [Method; 4] = [Method::Get, Method::Post, Method::Put, Method::Delete];

fn random_methods(rng: &mut Rng) -> MethodSet {
    let mut s = MethodSet::EMPTY;
    while s.is_empty() {
        for m in METHODS {
            if rng.below(3) == 0 {
                s.insert(m);
            }
        }
    }
    s
}

/// Brute force: every route, sorted by (specificity key, registration order).
fn oracle<'a>(
    routes: &'a [(Pattern, MethodSet)],
    method: Method,
    path: &'a str,
) -> (Hit, MethodSet) {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|i| (routes[*i].0.rank(), *i));
    let mut allow = MethodSet::EMPTY;
    for i in order {
        let mut params = Params::new();
        if routes[i].0.matches(path, &mut params) {
            allow = allow.union(routes[i].1);
            if routes[i].1.accepts(method) {
                let ps = params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                return (Some((i, ps)), allow);
            }
        }
    }
    (None, allow)
}

fn summarize(l: Lookup<'_>) -> (Hit, Option<MethodSet>) {
    match l {
        Lookup::Found { route, params } => (
            Some((
                route,
                params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            )),
            None,
        ),
        Lookup::MethodNotAllowed(a) => (None, Some(a)),
        _ => (None, None),
    }
}

#[test]
fn test_random_tables_all_kinds_agree_with_oracle() {
    let mut rng = Rng::new(0x5eed);
    let mut compared = 0;
    let mut found = 0;
    let mut not_allowed = 0;
    for _table in 0..300 {
        let n = 1 + rng.below(24);
        let routes: Vec<(Pattern, MethodSet)> = (0..n)
            .map(|_| {
                (
                    Pattern::parse(&random_pattern(&mut rng)).unwrap(),
                    random_methods(&mut rng),
                )
            })
            .collect();
        let built: Vec<_> = RouterKind::ALL
            .iter()
            .map(|k| RouteTable::build(*k, routes.clone()).map(|(t, _)| t))
            .collect();
        // Registration verdicts agree too (unreachable routes are refused by every kind).
        assert!(built.iter().all(|b| b.is_ok()) || built.iter().all(|b| b.is_err()));
        let Ok(tables) = built.into_iter().collect::<Result<Vec<_>, _>>() else {
            continue;
        };
        for _ in 0..60 {
            let path = random_path(&mut rng);
            let method = METHODS[rng.below(METHODS.len())];
            let (want, allow) = oracle(&routes, method, &path);
            for t in &tables {
                let got = summarize(t.lookup(method, &path));
                match &want {
                    Some(w) => {
                        assert_eq!(got.0.as_ref(), Some(w), "{} {method:?} {path}", t.kind())
                    }
                    None if allow.is_empty() => {
                        assert_eq!(got, (None, None), "{} {path}", t.kind())
                    }
                    None => assert_eq!(got, (None, Some(allow)), "{} {path}", t.kind()),
                }
                compared += 1;
            }
            if want.is_some() {
                found += 1;
            } else if !allow.is_empty() {
                not_allowed += 1;
            }
        }
    }
    // The generator must exercise every outcome, or the comparison proves little.
    assert!(compared > 10_000, "{compared}");
    assert!(
        found > 1_000 && not_allowed > 100,
        "found {found}, 405 {not_allowed}"
    );
}

#[test]
fn test_generated_api_routes_agree_across_kinds() {
    let patterns = m05_routing::lab::route_set(400);
    let routes: Vec<(Pattern, MethodSet)> = patterns
        .iter()
        .map(|p| {
            (
                Pattern::parse(p).unwrap(),
                MethodSet::from_slice(&[Method::Get]),
            )
        })
        .collect();
    let tables: Vec<RouteTable> = RouterKind::ALL
        .iter()
        .map(|k| RouteTable::build(*k, routes.clone()).unwrap().0)
        .collect();
    for i in 0..400 {
        let path = m05_routing::lab::path_for(i);
        for t in &tables {
            match t.lookup(Method::Get, &path) {
                Lookup::Found { route, .. } => assert_eq!(route, i, "{} {path}", t.kind()),
                other => panic!("{} {path}: {other:?}", t.kind()),
            }
        }
    }
}
