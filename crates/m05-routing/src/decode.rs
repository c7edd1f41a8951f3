//! RFC 3986 for request paths: character classes (§2.2, §2.3), percent-decoding (§2.1),
//! dot-segment removal (§5.2.4) and reference resolution (§5.2.2, §5.2.3) for paths.
//!
//! The router decodes a request path in one pass ([`decode_path`]):
//!
//! ```text
//! raw target path ──▶ every byte a pchar or '/'? ──▶ %XX → byte (%2F and %00 refused)
//!                 ──▶ UTF-8? ──▶ remove "." and ".." segments, refusing any climb above "/"
//!                 ──▶ Cow::Borrowed(raw) when nothing changed (no allocation: the common case)
//! ```
//!
//! Why refuse `%2F`: a decoded `/` inside a segment is indistinguishable from a separator after
//! decoding, which is how `..%2F..%2Fetc/passwd` walks out of a static root. Why refuse instead of
//! clamping `..` at the root (what RFC 3986 §5.2.4 does for references): a request that tries to
//! climb is an attack or a bug, never a resource; it gets 400 and is counted.

use std::borrow::Cow;

use crate::error::DecodeError;

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"` (RFC 3986 §2.3).
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `gen-delims = ":" / "/" / "?" / "#" / "[" / "]" / "@"` (RFC 3986 §2.2).
pub fn is_gen_delim(b: u8) -> bool {
    matches!(b, b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@')
}

/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="` (§2.2).
pub fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// `reserved = gen-delims / sub-delims` (§2.2).
pub fn is_reserved(b: u8) -> bool {
    is_gen_delim(b) || is_sub_delim(b)
}

/// `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"` (§3.3); `%` counts (the escape
/// itself is checked by the decoder).
pub fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || matches!(b, b':' | b'@' | b'%')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by `%XX` at `i`, or [`DecodeError::InvalidEscape`].
fn escape_at(bytes: &[u8], i: usize) -> Result<u8, DecodeError> {
    match (
        bytes.get(i + 1).copied().and_then(hex),
        bytes.get(i + 2).copied().and_then(hex),
    ) {
        (Some(h), Some(l)) => Ok(h << 4 | l),
        _ => Err(DecodeError::InvalidEscape { offset: i }),
    }
}

/// Decodes every `%XX` (RFC 3986 §2.1; hex digits in either case). Borrowed when there is none.
///
/// `plus_as_space` applies the `application/x-www-form-urlencoded` rule used by query strings.
pub fn percent_decode(input: &str, plus_as_space: bool) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = input.as_bytes();
    let needs = bytes
        .iter()
        .any(|&b| b == b'%' || (plus_as_space && b == b'+'));
    if !needs {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(escape_at(bytes, i)?);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::InvalidUtf8)
}

/// Checks every escape in `input` without decoding (no allocation).
pub fn validate_escapes(input: &str) -> Result<(), DecodeError> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            escape_at(bytes, i)?;
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Percent-encodes every byte that is not unreserved (RFC 3986 §2.1, uppercase hex; §2.4: the
/// result decodes back to `input`).
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Percent-encodes a path for a `Location` header: like [`percent_encode`] but keeps `/` and the
/// other pchar delimiters, so `/a b/c` becomes `/a%20b/c`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b == b'/' || (is_pchar(b) && b != b'%') {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// RFC 3986 §5.2.4 `remove_dot_segments`, exactly as specified (a `..` at the root is dropped,
/// not refused). Used for reference resolution; request paths go through [`normalize_path`].
pub fn remove_dot_segments(input: &str) -> String {
    let mut input = input;
    let mut output = String::with_capacity(input.len());
    while !input.is_empty() {
        // A. prefixes "../" or "./"
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        }
        // B. "/./" or "/." complete segment
        else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        }
        // C. "/../" or "/.." complete segment: pop the last output segment
        else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        }
        // D. "." or ".."
        else if input == "." || input == ".." {
            input = "";
        }
        // E. move the first segment (with its leading "/", if any) to the output
        else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Whether `path` has a `.` or `..` segment.
fn has_dot_segment(path: &str) -> bool {
    // Most paths have no `.` at all: one byte scan, no per-segment splitting.
    if !path.as_bytes().contains(&b'.') {
        return false;
    }
    path.split('/').any(|s| s == "." || s == "..")
}

/// Removes `.` and `..` segments from an absolute, decoded path, refusing any `..` that would
/// climb above `/` ([`DecodeError::AboveRoot`]). Borrowed when there is nothing to remove.
///
/// A trailing `.` or `..` leaves a trailing `/` (`/a/b/..` → `/a/`), as in RFC 3986 §5.2.4.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, DecodeError> {
    if !path.starts_with('/') {
        return Err(DecodeError::NotAbsolute);
    }
    if !has_dot_segment(path) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                if out.pop().is_none() {
                    return Err(DecodeError::AboveRoot);
                }
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    for s in &out {
        result.push('/');
        result.push_str(s);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    Ok(Cow::Owned(result))
}

/// Decodes and normalises a request path (the part of the target before `?`): see the
/// [module docs](self). No allocation unless the path has an escape or a dot-segment.
pub fn decode_path(raw: &str) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(DecodeError::NotAbsolute);
    }
    let mut escapes = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            match escape_at(bytes, i)? {
                b'/' => return Err(DecodeError::EncodedSlash { offset: i }),
                0 => return Err(DecodeError::EncodedNul),
                _ => {}
            }
            escapes = true;
            i += 3;
            continue;
        }
        if b != b'/' && !is_pchar(b) {
            return Err(DecodeError::ForbiddenByte { byte: b, offset: i });
        }
        i += 1;
    }
    if !escapes {
        return normalize_path(raw);
    }
    let decoded = percent_decode(raw, false)?;
    match normalize_path(&decoded)? {
        Cow::Borrowed(_) => Ok(Cow::Owned(decoded.into_owned())),
        Cow::Owned(s) => Ok(Cow::Owned(s)),
    }
}

/// Splits `path?query#fragment`.
fn split_reference(r: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, fragment) = match r.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (r, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    (path, query, fragment)
}

/// RFC 3986 §5.2.2 / §5.2.3 for references without scheme or authority: resolves `reference`
/// (a relative path, an absolute path, `?query`, `#fragment`, or empty) against `base` (an
/// absolute path with an optional query). Returns `path[?query][#fragment]`.
///
/// With base `/b/c/d;p?q`: `g` → `/b/c/g`, `../g` → `/b/g`, `?y` → `/b/c/d;p?y`, `` → `/b/c/d;p?q`.
pub fn resolve_path(base: &str, reference: &str) -> String {
    let (base_path, base_query, _) = split_reference(base);
    let (r_path, r_query, r_fragment) = split_reference(reference);
    let (path, query) = if r_path.is_empty() {
        (base_path.to_owned(), r_query.or(base_query))
    } else if r_path.starts_with('/') {
        (remove_dot_segments(r_path), r_query)
    } else {
        // §5.2.3 merge: base path up to and including its last '/', then the reference.
        let merged = match base_path.rfind('/') {
            Some(i) => format!("{}{}", &base_path[..=i], r_path),
            None => format!("/{r_path}"),
        };
        (remove_dot_segments(&merged), r_query)
    };
    let mut out = path;
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = r_fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_plain_path_decodes_borrowed() {
        assert!(matches!(
            decode_path("/users/42"),
            Ok(Cow::Borrowed("/users/42"))
        ));
    }

    #[test]
    fn test_escaped_path_decodes_owned() {
        assert_eq!(decode_path("/caf%C3%A9/a%20b").unwrap(), "/café/a b");
        assert_eq!(decode_path("/%7euser").unwrap(), "/~user");
    }

    #[test]
    fn test_bad_escape_is_error() {
        assert_eq!(
            decode_path("/a%2"),
            Err(DecodeError::InvalidEscape { offset: 2 })
        );
        assert_eq!(
            decode_path("/a%zz"),
            Err(DecodeError::InvalidEscape { offset: 2 })
        );
        assert_eq!(
            decode_path("/a%"),
            Err(DecodeError::InvalidEscape { offset: 2 })
        );
        assert_eq!(decode_path("/%FF"), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn test_traversal_is_refused() {
        assert_eq!(decode_path("/../etc/passwd"), Err(DecodeError::AboveRoot));
        assert_eq!(decode_path("/a/../../b"), Err(DecodeError::AboveRoot));
        assert_eq!(decode_path("/%2e%2e/etc"), Err(DecodeError::AboveRoot));
        assert_eq!(
            decode_path("/a/%2E%2E/%2e%2e/x"),
            Err(DecodeError::AboveRoot)
        );
        assert_eq!(
            decode_path("/a/..%2f..%2fetc"),
            Err(DecodeError::EncodedSlash { offset: 5 })
        );
        assert_eq!(decode_path("/a%00"), Err(DecodeError::EncodedNul));
        assert_eq!(decode_path("/a/b/../c").unwrap(), "/a/c");
        assert_eq!(decode_path("/a/./b/.").unwrap(), "/a/b/");
    }

    #[test]
    fn test_forbidden_byte_is_error() {
        assert!(matches!(
            decode_path("/a b"),
            Err(DecodeError::ForbiddenByte { byte: b' ', .. })
        ));
        assert_eq!(decode_path("a/b"), Err(DecodeError::NotAbsolute));
    }
}
