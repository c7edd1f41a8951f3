//! Route patterns (`/users/:id/posts/*rest`), the parameters a match extracts, and method sets.
//!
//! A pattern is a list of segments, each one of three kinds:
//!
//! | kind | written | matches |
//! |---|---|---|
//! | literal | `users` | exactly that (decoded) segment |
//! | parameter | `:id` | any one non-empty segment |
//! | wildcard | `*rest` (last only) | one or more remaining segments, joined with `/` (may be empty: `/static/` gives `""`) |
//!
//! **Priority** is by specificity, segment by segment from the left: literal beats parameter
//! beats wildcard; routes of equal shape go in registration order. [`Pattern::rank`] is that
//! order's key, and every lookup algorithm returns the first route, in that order, that matches
//! the path and accepts the method.
//!
//! **Parameters never allocate:** [`Params`] is an inline array of up to [`MAX_PARAMS`]
//! `(name, value)` pairs, names borrowed from the route table and values slices of the request
//! path.

use std::fmt;

use m04_http10::Method;

use crate::error::PatternError;

/// The most parameters a pattern may have (the size of [`Params`]' inline array).
pub const MAX_PARAMS: usize = 8;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `:name`: one non-empty segment.
    Param(Box<str>),
    /// `*name`: the rest of the path.
    Wildcard(Box<str>),
}

impl Segment {
    /// Specificity rank: literal 0, parameter 1, wildcard 2.
    pub fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Wildcard(_) => 2,
        }
    }
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: Box<str>,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses `/a/:b/*c`. Patterns are written decoded (no `%`).
    pub fn parse(raw: &str) -> Result<Pattern, PatternError> {
        let Some(body) = raw.strip_prefix('/') else {
            return Err(PatternError::NotAbsolute(raw.into()));
        };
        if raw.contains(['?', '#', '%']) {
            return Err(PatternError::Forbidden(raw.into()));
        }
        let parts: Vec<&str> = body.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(name) = part.strip_prefix(':') {
                Segment::Param(name.into())
            } else if let Some(name) = part.strip_prefix('*') {
                if i != parts.len() - 1 {
                    return Err(PatternError::WildcardNotLast(raw.into()));
                }
                Segment::Wildcard(name.into())
            } else {
                if *part == "." || *part == ".." {
                    return Err(PatternError::Forbidden(raw.into()));
                }
                Segment::Literal((*part).into())
            };
            if let Segment::Param(n) | Segment::Wildcard(n) = &seg {
                if n.is_empty() {
                    return Err(PatternError::EmptyName(raw.into()));
                }
                let n = &part[1..];
                if names.contains(&n) {
                    return Err(PatternError::DuplicateName(raw.into(), n.into()));
                }
                names.push(n);
                if names.len() > MAX_PARAMS {
                    return Err(PatternError::TooManyParams(raw.into()));
                }
            }
            segments.push(seg);
        }
        Ok(Pattern {
            raw: raw.into(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Its segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether every segment is a literal (an exact path).
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Parameter names in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) | Segment::Wildcard(n) => Some(&**n),
            Segment::Literal(_) => None,
        })
    }

    /// The specificity key (compare lexicographically; smaller wins).
    pub fn rank(&self) -> Vec<u8> {
        self.segments.iter().map(Segment::rank).collect()
    }

    /// Whether two patterns match exactly the same paths (same literals, same kinds).
    pub fn same_shape(&self, other: &Pattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    (Segment::Wildcard(_), Segment::Wildcard(_)) => true,
                    _ => false,
                })
    }

    /// Whether a path of `segments` segments (`1 + number of '/' after the first`) can match:
    /// a cheap pre-check for linear scans.
    pub fn fits(&self, segments: usize) -> bool {
        match self.segments.last() {
            Some(Segment::Wildcard(_)) => segments >= self.segments.len(),
            _ => segments == self.segments.len(),
        }
    }

    /// Matches a decoded path (starting with `/`), filling `params`. No allocation.
    pub fn matches<'a>(&'a self, path: &'a str, params: &mut Params<'a>) -> bool {
        params.clear();
        let Some(mut rest) = path.strip_prefix('/').map(Some) else {
            return false;
        };
        for seg in &self.segments {
            let Some(r) = rest else { return false };
            if let Segment::Wildcard(name) = seg {
                params.push(name, r);
                return true;
            }
            let (head, tail) = match r.split_once('/') {
                Some((h, t)) => (h, Some(t)),
                None => (r, None),
            };
            match seg {
                Segment::Literal(lit) if **lit == *head => {}
                Segment::Param(name) if !head.is_empty() => params.push(name, head),
                _ => return false,
            }
            rest = tail;
        }
        rest.is_none()
    }

    /// A path this pattern matches, with parameters filled from `values` (or `p0`, `p1`…).
    pub fn instantiate(&self, values: &[&str]) -> String {
        let mut out = String::new();
        let mut k = 0;
        for seg in &self.segments {
            out.push('/');
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) | Segment::Wildcard(_) => {
                    match values.get(k) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("p{k}")),
                    }
                    k += 1;
                }
            }
        }
        out
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parameters extracted by a match: an inline array, no heap.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    len: usize,
    items: [(&'a str, &'a str); MAX_PARAMS],
}

impl<'a> Params<'a> {
    /// No parameters.
    pub const fn new() -> Self {
        Params {
            len: 0,
            items: [("", ""); MAX_PARAMS],
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends (silently ignored beyond [`MAX_PARAMS`], which patterns cannot exceed).
    pub(crate) fn push(&mut self, name: &'a str, value: &'a str) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (name, value);
            self.len += 1;
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.items[..self.len].iter().copied()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Params<'_> {
    fn default() -> Self {
        Params::new()
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Params<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A set of methods, one bit per entry of `Method::ALL`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MethodSet(u16);

impl MethodSet {
    /// No method.
    pub const EMPTY: MethodSet = MethodSet(0);

    fn bit(m: Method) -> u16 {
        let i = Method::ALL.iter().position(|x| *x == m).unwrap_or(15);
        1 << i
    }

    /// Every method.
    pub fn all() -> MethodSet {
        MethodSet::from_slice(&Method::ALL)
    }

    /// The methods in `ms`.
    pub fn from_slice(ms: &[Method]) -> MethodSet {
        MethodSet(ms.iter().fold(0, |acc, m| acc | MethodSet::bit(*m)))
    }

    /// Adds `m`.
    pub fn insert(&mut self, m: Method) {
        self.0 |= MethodSet::bit(m);
    }

    /// Whether `m` is in the set.
    pub fn contains(self, m: Method) -> bool {
        self.0 & MethodSet::bit(m) != 0
    }

    /// Whether a route with these methods serves a request with method `m` (a GET route serves
    /// HEAD; the writer drops the body).
    pub fn accepts(self, m: Method) -> bool {
        self.contains(m) || (m == Method::Head && self.contains(Method::Get))
    }

    /// Union.
    pub fn union(self, o: MethodSet) -> MethodSet {
        MethodSet(self.0 | o.0)
    }

    /// Intersection.
    pub fn intersection(self, o: MethodSet) -> MethodSet {
        MethodSet(self.0 & o.0)
    }

    /// Whether every method of `o` is in `self`.
    pub fn is_superset(self, o: MethodSet) -> bool {
        self.0 & o.0 == o.0
    }

    /// Whether empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The methods, in `Method::ALL` order.
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// The `Allow` header value (RFC 9110 §10.2.1): adds HEAD when GET is present.
    pub fn allow_header(self) -> String {
        let mut set = self;
        if set.contains(Method::Get) {
            set.insert(Method::Head);
        }
        set.iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Debug for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Method::as_str))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> Option<Vec<(String, String)>> {
        let pat = Pattern::parse(p).unwrap();
        let mut params = Params::new();
        pat.matches(path, &mut params).then(|| {
            params
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
    }

    #[test]
    fn test_literal_pattern_matches_exact_path_only() {
        assert_eq!(m("/users", "/users"), Some(vec![]));
        assert_eq!(m("/users", "/users/"), None);
        assert_eq!(m("/users/", "/users/"), Some(vec![]));
        assert_eq!(m("/", "/"), Some(vec![]));
        assert_eq!(m("/", "/a"), None);
    }

    #[test]
    fn test_param_pattern_extracts_segments() {
        assert_eq!(
            m("/u/:id/p/:post", "/u/42/p/7"),
            Some(vec![
                ("id".into(), "42".into()),
                ("post".into(), "7".into())
            ])
        );
        assert_eq!(m("/u/:id", "/u/"), None, "a parameter is never empty");
        assert_eq!(m("/u/:id", "/u/1/2"), None);
    }

    #[test]
    fn test_wildcard_pattern_takes_the_rest() {
        assert_eq!(
            m("/s/*path", "/s/a/b.css"),
            Some(vec![("path".into(), "a/b.css".into())])
        );
        assert_eq!(m("/s/*path", "/s/"), Some(vec![("path".into(), "".into())]));
        assert_eq!(m("/s/*path", "/s"), None);
    }

    #[test]
    fn test_bad_patterns_are_rejected() {
        assert!(matches!(
            Pattern::parse("x"),
            Err(PatternError::NotAbsolute(_))
        ));
        assert!(matches!(
            Pattern::parse("/a/:"),
            Err(PatternError::EmptyName(_))
        ));
        assert!(matches!(
            Pattern::parse("/*a/b"),
            Err(PatternError::WildcardNotLast(_))
        ));
        assert!(matches!(
            Pattern::parse("/:a/:a"),
            Err(PatternError::DuplicateName(..))
        ));
        assert!(matches!(
            Pattern::parse("/a/../b"),
            Err(PatternError::Forbidden(_))
        ));
        assert!(matches!(
            Pattern::parse("/:a/:b/:c/:d/:e/:f/:g/:h/:i"),
            Err(PatternError::TooManyParams(_))
        ));
    }

    #[test]
    fn test_allow_header_adds_head_to_get() {
        let s = MethodSet::from_slice(&[Method::Get, Method::Post]);
        assert_eq!(s.allow_header(), "GET, HEAD, POST");
        assert!(s.accepts(Method::Head));
        assert!(!s.accepts(Method::Put));
    }
}
