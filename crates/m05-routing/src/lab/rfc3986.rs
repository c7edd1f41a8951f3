//! RFC 3986 conformance vectors, shared by `tests/rfc3986.rs` and the `rfc3986_conformance`
//! exit check. Each function returns the failures it found (empty = conformant) and counts the
//! cases it ran.

use crate::decode::{
    decode_path, is_gen_delim, is_reserved, is_sub_delim, is_unreserved, percent_decode,
    percent_encode, remove_dot_segments, resolve_path,
};
use crate::error::DecodeError;
use crate::lab::Rng;

/// Failures and the number of cases run.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// One line per failed case.
    pub failures: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.cases += 1;
        if !ok {
            self.failures.push(what());
        }
    }
}

/// §2.1–§2.4: percent-encoding, reserved and unreserved characters.
pub fn characters(r: &mut Report) {
    const UNRESERVED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    const GEN: &str = ":/?#[]@";
    const SUB: &str = "!$&'()*+,;=";
    for b in 0..=255u8 {
        let c = b as char;
        r.check(
            is_unreserved(b) == (b.is_ascii() && UNRESERVED.contains(c)),
            || format!("§2.3 unreserved({b:#04x})"),
        );
        r.check(is_gen_delim(b) == (b.is_ascii() && GEN.contains(c)), || {
            format!("§2.2 gen-delims({b:#04x})")
        });
        r.check(is_sub_delim(b) == (b.is_ascii() && SUB.contains(c)), || {
            format!("§2.2 sub-delims({b:#04x})")
        });
        r.check(
            is_reserved(b) == (is_gen_delim(b) || is_sub_delim(b)),
            || format!("§2.2 reserved({b:#04x})"),
        );
        r.check(!(is_reserved(b) && is_unreserved(b)), || {
            format!("§2 reserved and unreserved are disjoint ({b:#04x})")
        });
    }
    // §2.1: pct-encoded = "%" HEXDIG HEXDIG, either case.
    for (input, want) in [
        ("%41", "A"),
        ("%7e", "~"),
        ("%7E", "~"),
        ("a%20b", "a b"),
        ("%25", "%"),
        ("%2F", "/"),
        ("%C3%A9", "é"),
        ("plain", "plain"),
    ] {
        let got = percent_decode(input, false);
        r.check(got.as_deref() == Ok(want), || {
            format!("§2.1 decode({input:?}) = {got:?}, want {want:?}")
        });
    }
    for bad in ["%", "%4", "%G1", "%%", "a%2", "%zz", "%-1"] {
        let got = percent_decode(bad, false);
        r.check(
            matches!(got, Err(DecodeError::InvalidEscape { .. })),
            || format!("§2.1 invalid escape {bad:?} accepted: {got:?}"),
        );
    }
    // §2.1: producers use uppercase hex; §2.3: unreserved characters are not encoded;
    // §2.4: decoding an encoding gives back the original.
    r.check(percent_encode("a b/~é%") == "a%20b%2F~%C3%A9%25", || {
        format!("§2.1 encode = {}", percent_encode("a b/~é%"))
    });
    let mut rng = Rng::new(3986);
    let alphabet: Vec<char> = "aZ09-._~ !$&'()*+,;=:/?#[]@%éж\u{1F600}".chars().collect();
    for _ in 0..500 {
        let s: String = (0..rng.below(24))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let enc = percent_encode(&s);
        r.check(
            enc.bytes().all(|b| is_unreserved(b) || b == b'%')
                && percent_decode(&enc, false).as_deref() == Ok(s.as_str()),
            || format!("§2.4 round trip of {s:?} via {enc:?}"),
        );
    }
    // §6.2.2.2: percent-encoded unreserved characters are equivalent to the characters.
    r.check(
        decode_path("/%7Euser/%61") == decode_path("/~user/a"),
        || "§6.2.2.2 /%7Euser/%61 == /~user/a".into(),
    );
}

/// §5.2.4 examples and §5.4 reference resolution (normal and abnormal) against
/// `http://a/b/c/d;p?q`, path part.
pub fn dot_segments(r: &mut Report) {
    for (input, want) in [
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/./a", "/a"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/..", "/"),
    ] {
        let got = remove_dot_segments(input);
        r.check(got == want, || {
            format!("§5.2.4 remove_dot_segments({input:?}) = {got:?}, want {want:?}")
        });
    }
    const BASE: &str = "/b/c/d;p?q";
    for (reference, want) in [
        // §5.4.1 normal examples
        ("g", "/b/c/g"),
        ("./g", "/b/c/g"),
        ("g/", "/b/c/g/"),
        ("/g", "/g"),
        ("?y", "/b/c/d;p?y"),
        ("g?y", "/b/c/g?y"),
        ("#s", "/b/c/d;p?q#s"),
        ("g#s", "/b/c/g#s"),
        ("g?y#s", "/b/c/g?y#s"),
        (";x", "/b/c/;x"),
        ("g;x", "/b/c/g;x"),
        ("g;x?y#s", "/b/c/g;x?y#s"),
        ("", "/b/c/d;p?q"),
        (".", "/b/c/"),
        ("./", "/b/c/"),
        ("..", "/b/"),
        ("../", "/b/"),
        ("../g", "/b/g"),
        ("../..", "/"),
        ("../../", "/"),
        ("../../g", "/g"),
        // §5.4.2 abnormal examples
        ("../../../g", "/g"),
        ("../../../../g", "/g"),
        ("/./g", "/g"),
        ("/../g", "/g"),
        ("g.", "/b/c/g."),
        (".g", "/b/c/.g"),
        ("g..", "/b/c/g.."),
        ("..g", "/b/c/..g"),
        ("./../g", "/b/g"),
        ("./g/.", "/b/c/g/"),
        ("g/./h", "/b/c/g/h"),
        ("g/../h", "/b/c/h"),
        ("g;x=1/./y", "/b/c/g;x=1/y"),
        ("g;x=1/../y", "/b/c/y"),
        ("g?y/./x", "/b/c/g?y/./x"),
        ("g?y/../x", "/b/c/g?y/../x"),
        ("g#s/./x", "/b/c/g#s/./x"),
        ("g#s/../x", "/b/c/g#s/../x"),
    ] {
        let got = resolve_path(BASE, reference);
        r.check(got == want, || {
            format!("§5.4 resolve({reference:?}) = {got:?}, want {want:?}")
        });
    }
}

/// Request paths: invalid escapes are errors (→ 400), nothing decodes to a path above the root,
/// encoded dots are dots, `%2F` is refused.
pub fn request_paths(r: &mut Report) {
    for (path, want) in [
        ("/..", DecodeError::AboveRoot),
        ("/../g", DecodeError::AboveRoot),
        ("/a/../../g", DecodeError::AboveRoot),
        ("/%2e%2e/g", DecodeError::AboveRoot),
        ("/%2E%2e/", DecodeError::AboveRoot),
        ("/.%2e", DecodeError::AboveRoot),
        ("/a/.%2e/%2E./g", DecodeError::AboveRoot),
        ("/static/../../etc/passwd", DecodeError::AboveRoot),
        ("/a%2fb", DecodeError::EncodedSlash { offset: 2 }),
        ("/..%2F..%2Fetc", DecodeError::EncodedSlash { offset: 3 }),
        ("/a%00", DecodeError::EncodedNul),
        ("/a%4", DecodeError::InvalidEscape { offset: 2 }),
        ("/a%g0", DecodeError::InvalidEscape { offset: 2 }),
        ("/%C3", DecodeError::InvalidUtf8),
        ("a/b", DecodeError::NotAbsolute),
    ] {
        let got = decode_path(path);
        r.check(got == Err(want), || {
            format!("request path {path:?} = {got:?}, want {want:?}")
        });
        r.check(want.status() == 400, || format!("{want:?} must map to 400"));
    }
    for (path, want) in [
        ("/a/b/../c", "/a/c"),
        ("/a/%2e/b", "/a/b"),
        ("/a/b/%2E%2E/c", "/a/c"),
        ("/static/../index.html", "/index.html"),
        ("/a/./b/.", "/a/b/"),
        ("/", "/"),
    ] {
        let got = decode_path(path);
        r.check(got.as_deref() == Ok(want), || {
            format!("request path {path:?} = {got:?}, want {want:?}")
        });
    }
    // Property: whatever the input, a decoded path is absolute, has no dot-segment, and is
    // already normal (remove_dot_segments leaves it alone): it cannot name anything above "/".
    let pieces = [
        "a", "b", ".", "..", "%2e", "%2E%2e", ".%2e", "%2e.", "x%2Fy", "", "%41", "c%20d",
    ];
    let mut rng = Rng::new(5);
    for _ in 0..5000 {
        let path: String = (0..1 + rng.below(7))
            .map(|_| format!("/{}", pieces[rng.below(pieces.len())]))
            .collect();
        match decode_path(&path) {
            Ok(p) => r.check(
                p.starts_with('/')
                    && !p.split('/').any(|s| s == "." || s == "..")
                    && remove_dot_segments(&p) == p,
                || format!("{path:?} decoded to {p:?}, which is not normal"),
            ),
            Err(e) => r.check(e.status() == 400, || format!("{path:?}: {e:?}")),
        }
    }
}

/// Everything above.
pub fn run_all() -> Report {
    let mut r = Report::default();
    characters(&mut r);
    dot_segments(&mut r);
    request_paths(&mut r);
    r
}
