//! Query strings (`?a=1&b=x%20y`): checked once by the router, parsed lazily by handlers.
//!
//! The router calls [`check`] before routing: length and pair count against
//! [`RouterLimits`](crate::RouterLimits) (414 URI Too Long) and every escape well-formed (400),
//! without allocating. Handlers then read pairs through [`Query`]: raw pairs are slices of the
//! target; decoding (`%XX`, and `+` as space per `application/x-www-form-urlencoded`) allocates
//! only for values that contain an escape.

use std::borrow::Cow;

use crate::decode::{percent_decode, validate_escapes};
use crate::error::{DecodeError, QueryError};

/// Checks a raw query string against the limits; returns the number of pairs.
pub fn check(raw: &str, max_bytes: usize, max_pairs: usize) -> Result<usize, QueryError> {
    if raw.len() > max_bytes {
        return Err(QueryError::TooLong {
            len: raw.len(),
            max: max_bytes,
        });
    }
    validate_escapes(raw).map_err(QueryError::Decode)?;
    let pairs = Query::new(raw).pairs().count();
    if pairs > max_pairs {
        return Err(QueryError::TooManyPairs { max: max_pairs });
    }
    Ok(pairs)
}

/// Decoded `(key, value)` pairs.
pub type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A query string (without the `?`), still encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<'a> {
    raw: &'a str,
}

impl<'a> Query<'a> {
    /// Wraps `raw` (no work done).
    pub fn new(raw: &'a str) -> Self {
        Query { raw }
    }

    /// The raw string.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Raw `(key, value)` pairs in order; empty pieces (`a=1&&b=2`) are skipped, a piece without
    /// `=` has an empty value.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    /// Decoded pairs in order.
    pub fn decoded(
        &self,
    ) -> impl Iterator<Item = Result<(Cow<'a, str>, Cow<'a, str>), DecodeError>> + 'a {
        self.pairs()
            .map(|(k, v)| Ok((percent_decode(k, true)?, percent_decode(v, true)?)))
    }

    /// The first value for `key` (compared after decoding the key), decoded.
    pub fn get(&self, key: &str) -> Result<Option<Cow<'a, str>>, DecodeError> {
        for (k, v) in self.pairs() {
            if percent_decode(k, true)? == key {
                return percent_decode(v, true).map(Some);
            }
        }
        Ok(None)
    }

    /// Every value for `key`, decoded.
    pub fn get_all(&self, key: &str) -> Result<Vec<Cow<'a, str>>, DecodeError> {
        let mut out = Vec::new();
        for (k, v) in self.pairs() {
            if percent_decode(k, true)? == key {
                out.push(percent_decode(v, true)?);
            }
        }
        Ok(out)
    }

    /// All pairs decoded into a vector.
    pub fn to_vec(&self) -> Result<Pairs<'a>, DecodeError> {
        self.decoded().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pairs_split_and_decode() {
        let q = Query::new("a=1&b=x%20y&c&&d=a+b&a=2");
        let v = q.to_vec().unwrap();
        assert_eq!(
            v,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into()),
                ("d".into(), "a b".into()),
                ("a".into(), "2".into()),
            ]
        );
        assert_eq!(q.get("a").unwrap().as_deref(), Some("1"));
        assert_eq!(q.get_all("a").unwrap(), vec!["1", "2"]);
        assert_eq!(q.get("zz").unwrap(), None);
    }

    #[test]
    fn test_encoded_key_matches_decoded_name() {
        let q = Query::new("na%6De=v&x%3Dy=1");
        assert_eq!(q.get("name").unwrap().as_deref(), Some("v"));
        assert_eq!(q.get("x=y").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn test_check_limits_and_escapes() {
        assert_eq!(check("a=1&b=2", 100, 10), Ok(2));
        assert_eq!(
            check(&"x".repeat(101), 100, 10),
            Err(QueryError::TooLong { len: 101, max: 100 })
        );
        assert_eq!(
            check("a&b&c", 100, 2),
            Err(QueryError::TooManyPairs { max: 2 })
        );
        assert_eq!(check("a=%G1", 100, 2).map_err(|e| e.status()), Err(400));
        assert_eq!(
            check(&"x".repeat(101), 100, 10).map_err(|e| e.status()),
            Err(414)
        );
    }
}
