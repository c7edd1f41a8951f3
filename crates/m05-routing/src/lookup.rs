//! Route lookup, three ways, one answer.
//!
//! A [`RouteTable`] holds `(pattern, methods)` entries and one of three indexes, chosen by
//! [`RouterKind`]:
//!
//! | kind | index | lookup cost |
//! |---|---|---|
//! | `linear` | every route, sorted by priority | O(routes): try each pattern in turn |
//! | `hash` | exact paths in a `HashMap`, patterns in a sorted list | O(1) for exact paths, O(patterns) otherwise |
//! | `prefix` | a segment trie: literal children in a map, one parameter child, one wildcard child | O(segments), with backtracking |
//!
//! All three return the same thing for every `(method, path)` (the `differential` test checks it
//! on random tables): the first route in priority order (see [`crate::pattern`]) whose pattern
//! matches and whose methods accept the method; otherwise 405 with the union of the methods of
//! every matching route, otherwise 404. No lookup allocates.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use m04_http10::Method;

use crate::error::{RouteError, RouteWarning};
use crate::pattern::{MAX_PARAMS, MethodSet, Params, Pattern, Segment};

/// Which lookup algorithm a table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RouterKind {
    /// Try every route in priority order.
    Linear,
    /// Exact paths in a hash map, then patterns in priority order.
    Hash,
    /// A segment trie (the default).
    #[default]
    Prefix,
}

impl RouterKind {
    /// All kinds, for experiments.
    pub const ALL: [RouterKind; 3] = [RouterKind::Linear, RouterKind::Hash, RouterKind::Prefix];

    /// `linear`, `hash` or `prefix` (the `--router` values).
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Linear => "linear",
            RouterKind::Hash => "hash",
            RouterKind::Prefix => "prefix",
        }
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RouterKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RouterKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown router {s:?} (linear, hash, prefix)"))
    }
}

/// What a lookup found.
///
/// `Found` is large on purpose: the parameters live inline, so a lookup never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Lookup<'a> {
    /// Route `route` (registration index) matched and accepts the method.
    Found {
        /// Registration index.
        route: usize,
        /// Extracted parameters.
        params: Params<'a>,
    },
    /// Some routes match the path, none accepts the method: 405 with `Allow`.
    MethodNotAllowed(MethodSet),
    /// No route matches the path: 404.
    NotFound,
}

/// FNV-1a (64-bit), the route maps' hash. Their keys are fixed when the table is built and a
/// peer can only look keys up, never add one, so an unseeded hash cannot be flooded; it is
/// several times cheaper than the default SipHash on the short segments of a path.
#[derive(Debug, Clone, Copy)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A `HashMap` with [`Fnv1a`].
type RouteMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv1a>>;

#[derive(Debug)]
struct Entry {
    pattern: Pattern,
    methods: MethodSet,
}

#[derive(Debug, Default)]
struct Node {
    literal: RouteMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    wildcard: Option<Box<Node>>,
    routes: Vec<usize>,
}

#[derive(Debug)]
enum Index {
    Linear,
    Hash {
        exact: RouteMap<Box<str>, Vec<usize>>,
        patterns: Vec<usize>,
    },
    Prefix(Node),
}

/// Routes plus an index. See the [module docs](self).
#[derive(Debug)]
pub struct RouteTable {
    kind: RouterKind,
    entries: Vec<Entry>,
    /// Registration indexes in priority order.
    order: Vec<usize>,
    index: Index,
}

/// The shape of a pattern as a string: literals kept, parameters `:`, wildcards `*`.
fn shape(p: &Pattern) -> String {
    let mut s = String::new();
    for seg in p.segments() {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(_) => s.push(':'),
            Segment::Wildcard(_) => s.push('*'),
        }
    }
    s
}

impl RouteTable {
    /// Builds a table. Fails when a route can never be chosen ([`RouteError::Unreachable`]);
    /// partial method overlaps come back as warnings.
    pub fn build(
        kind: RouterKind,
        routes: Vec<(Pattern, MethodSet)>,
    ) -> Result<(RouteTable, Vec<RouteWarning>), RouteError> {
        let entries: Vec<Entry> = routes
            .into_iter()
            .map(|(pattern, methods)| Entry { pattern, methods })
            .collect();
        let warnings = check_shadowing(&entries)?;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        let ranks: Vec<Vec<u8>> = entries.iter().map(|e| e.pattern.rank()).collect();
        // Priority: specificity key, then registration order (a stable sort keeps it).
        order.sort_by(|a, b| ranks[*a].cmp(&ranks[*b]));
        let index = match kind {
            RouterKind::Linear => Index::Linear,
            RouterKind::Hash => {
                let mut exact: RouteMap<Box<str>, Vec<usize>> = RouteMap::default();
                let mut patterns = Vec::new();
                for &i in &order {
                    let p = &entries[i].pattern;
                    if p.is_exact() {
                        exact.entry(p.as_str().into()).or_default().push(i);
                    } else {
                        patterns.push(i);
                    }
                }
                Index::Hash { exact, patterns }
            }
            RouterKind::Prefix => {
                let mut root = Node::default();
                for &i in &order {
                    let mut node = &mut root;
                    for seg in entries[i].pattern.segments() {
                        node = match seg {
                            Segment::Literal(l) => node.literal.entry(l.clone()).or_default(),
                            Segment::Param(_) => node.param.get_or_insert_with(Box::default),
                            Segment::Wildcard(_) => node.wildcard.get_or_insert_with(Box::default),
                        };
                    }
                    node.routes.push(i);
                }
                Index::Prefix(root)
            }
        };
        Ok((
            RouteTable {
                kind,
                entries,
                order,
                index,
            },
            warnings,
        ))
    }

    /// The algorithm.
    pub fn kind(&self) -> RouterKind {
        self.kind
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Route `i`'s pattern.
    pub fn pattern(&self, i: usize) -> &Pattern {
        &self.entries[i].pattern
    }

    /// Route `i`'s methods.
    pub fn methods(&self, i: usize) -> MethodSet {
        self.entries[i].methods
    }

    /// Registration indexes in priority order.
    pub fn priority_order(&self) -> &[usize] {
        &self.order
    }

    /// Finds the route for `method` and a decoded, normalised `path`. No allocation.
    pub fn lookup<'a>(&'a self, method: Method, path: &'a str) -> Lookup<'a> {
        let mut allow = MethodSet::EMPTY;
        let found = match &self.index {
            Index::Linear => self.scan(&self.order, method, path, &mut allow),
            Index::Hash { exact, patterns } => {
                let mut hit = None;
                if let Some(ids) = exact.get(path) {
                    for &i in ids {
                        allow = allow.union(self.entries[i].methods);
                        if self.entries[i].methods.accepts(method) {
                            hit = Some((i, Params::new()));
                            break;
                        }
                    }
                }
                hit.or_else(|| self.scan(patterns, method, path, &mut allow))
            }
            Index::Prefix(root) => {
                let mut values = [""; MAX_PARAMS];
                let rest = path.strip_prefix('/');
                self.descend(root, rest, &mut values, 0, method, &mut allow)
                    .map(|(i, n)| {
                        let mut params = Params::new();
                        for (name, value) in self.entries[i].pattern.param_names().zip(&values[..n])
                        {
                            params.push(name, value);
                        }
                        (i, params)
                    })
            }
        };
        match found {
            Some((route, params)) => Lookup::Found { route, params },
            None if allow.is_empty() => Lookup::NotFound,
            None => Lookup::MethodNotAllowed(allow),
        }
    }

    fn scan<'a>(
        &'a self,
        ids: &[usize],
        method: Method,
        path: &'a str,
        allow: &mut MethodSet,
    ) -> Option<(usize, Params<'a>)> {
        let mut params = Params::new();
        // Count segments once, so most patterns are rejected without looking at the text.
        let segments = path.bytes().filter(|b| *b == b'/').count();
        for &i in ids {
            let e = &self.entries[i];
            if e.pattern.fits(segments) && e.pattern.matches(path, &mut params) {
                *allow = allow.union(e.methods);
                if e.methods.accepts(method) {
                    return Some((i, params));
                }
            }
        }
        None
    }

    /// Depth-first over the trie in priority order: literal child, parameter child, wildcard.
    fn descend<'a>(
        &'a self,
        node: &'a Node,
        rest: Option<&'a str>,
        values: &mut [&'a str; MAX_PARAMS],
        n: usize,
        method: Method,
        allow: &mut MethodSet,
    ) -> Option<(usize, usize)> {
        let Some(r) = rest else {
            return self.pick(&node.routes, method, allow).map(|i| (i, n));
        };
        let (head, tail) = match r.bytes().position(|b| b == b'/') {
            Some(slash) => (&r[..slash], Some(&r[slash + 1..])),
            None => (r, None),
        };
        if let Some(child) = node.literal.get(head) {
            if let Some(hit) = self.descend(child, tail, values, n, method, allow) {
                return Some(hit);
            }
        }
        if n < MAX_PARAMS {
            if let Some(child) = node.param.as_deref().filter(|_| !head.is_empty()) {
                values[n] = head;
                if let Some(hit) = self.descend(child, tail, values, n + 1, method, allow) {
                    return Some(hit);
                }
            }
            if let Some(child) = node.wildcard.as_deref() {
                values[n] = r;
                if let Some(i) = self.pick(&child.routes, method, allow) {
                    return Some((i, n + 1));
                }
            }
        }
        None
    }

    fn pick(&self, ids: &[usize], method: Method, allow: &mut MethodSet) -> Option<usize> {
        for &i in ids {
            let e = &self.entries[i];
            *allow = allow.union(e.methods);
            if e.methods.accepts(method) {
                return Some(i);
            }
        }
        None
    }
}

/// Same-shape routes: a later one whose methods an earlier one fully covers is unreachable.
fn check_shadowing(entries: &[Entry]) -> Result<Vec<RouteWarning>, RouteError> {
    let mut by_shape: HashMap<String, Vec<usize>> = HashMap::new();
    let mut warnings = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let earlier = by_shape.entry(shape(&e.pattern)).or_default();
        let mut taken = MethodSet::EMPTY;
        for &j in earlier.iter() {
            let overlap = entries[j].methods.intersection(e.methods);
            if entries[j].methods.is_superset(e.methods) {
                return Err(RouteError::Unreachable {
                    route: i,
                    pattern: e.pattern.as_str().into(),
                    shadowed_by: j,
                    by: entries[j].pattern.as_str().into(),
                });
            }
            if !overlap.is_empty() {
                warnings.push(RouteWarning::PartlyShadowed {
                    route: i,
                    pattern: e.pattern.as_str().into(),
                    methods: overlap.iter().map(Method::as_str).collect(),
                    shadowed_by: j,
                });
            }
            taken = taken.union(entries[j].methods);
        }
        if !e.methods.is_empty() && taken.is_superset(e.methods) {
            return Err(RouteError::Unreachable {
                route: i,
                pattern: e.pattern.as_str().into(),
                shadowed_by: earlier.first().copied().unwrap_or(0),
                by: earlier
                    .first()
                    .map(|j| entries[*j].pattern.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
        earlier.push(i);
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: RouterKind, routes: &[(&[Method], &str)]) -> RouteTable {
        let routes = routes
            .iter()
            .map(|(m, p)| (Pattern::parse(p).unwrap(), MethodSet::from_slice(m)))
            .collect();
        RouteTable::build(kind, routes).unwrap().0
    }

    const G: &[Method] = &[Method::Get];
    const P: &[Method] = &[Method::Post];

    #[test]
    fn test_literal_beats_param_beats_wildcard_in_every_kind() {
        for kind in RouterKind::ALL {
            let t = table(kind, &[(G, "/u/*rest"), (G, "/u/:id"), (G, "/u/me")]);
            let hit = |p: &'static str| match t.lookup(Method::Get, p) {
                Lookup::Found { route, .. } => Some(route),
                _ => None,
            };
            assert_eq!(hit("/u/me"), Some(2), "{kind}");
            assert_eq!(hit("/u/42"), Some(1), "{kind}");
            assert_eq!(hit("/u/42/x"), Some(0), "{kind}");
            assert_eq!(hit("/v"), None, "{kind}");
        }
    }

    #[test]
    fn test_method_mismatch_falls_back_then_405() {
        for kind in RouterKind::ALL {
            let t = table(kind, &[(G, "/u/me"), (P, "/u/:id")]);
            assert!(
                matches!(
                    t.lookup(Method::Post, "/u/me"),
                    Lookup::Found { route: 1, .. }
                ),
                "{kind}: POST /u/me falls through to POST /u/:id"
            );
            match t.lookup(Method::Delete, "/u/me") {
                Lookup::MethodNotAllowed(allow) => {
                    assert_eq!(allow.allow_header(), "GET, HEAD, POST")
                }
                other => panic!("{kind}: {other:?}"),
            }
            assert!(matches!(
                t.lookup(Method::Head, "/u/me"),
                Lookup::Found { route: 0, .. }
            ));
        }
    }

    #[test]
    fn test_duplicate_shape_is_unreachable() {
        let routes = vec![
            (Pattern::parse("/u/:id").unwrap(), MethodSet::from_slice(G)),
            (
                Pattern::parse("/u/:name").unwrap(),
                MethodSet::from_slice(G),
            ),
        ];
        assert!(matches!(
            RouteTable::build(RouterKind::Prefix, routes),
            Err(RouteError::Unreachable {
                route: 1,
                shadowed_by: 0,
                ..
            })
        ));
        let routes = vec![
            (
                Pattern::parse("/u/:id").unwrap(),
                MethodSet::from_slice(&[Method::Get, Method::Post]),
            ),
            (
                Pattern::parse("/u/:name").unwrap(),
                MethodSet::from_slice(&[Method::Post, Method::Put]),
            ),
        ];
        let (_, warnings) = RouteTable::build(RouterKind::Prefix, routes).unwrap();
        assert_eq!(warnings.len(), 1);
    }
}
