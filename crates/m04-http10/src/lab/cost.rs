//! Timing both parsers in the same run: ns/request, bytes/s, TSC cycles/byte.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::lab::generate;
use crate::{Parser, Status};

/// A parser under test: returns bytes of head parsed (0 = not complete).
pub type ParseFn = fn(&[u8]) -> usize;

/// Ours, default limits, strict.
pub fn ours(buf: &[u8]) -> usize {
    match Parser::default().parse(buf) {
        Ok(Status::Complete(r)) => r.head_len(),
        _ => 0,
    }
}

/// httparse with a 64-header array (its documented use).
pub fn httparse(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => 0,
    }
}

/// Line splitting with memchr, then per-line validation: the "split first" strategy.
pub fn memchr_lines(buf: &[u8]) -> usize {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return 0;
    };
    let head = &buf[..end + 2];
    let mut lines = head.split(|&b| b == b'\n');
    let Some(first) = lines.next() else { return 0 };
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let mut parts = first.split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return 0;
    };
    if crate::Method::from_bytes(m).is_none()
        || !t.iter().all(|&b| b > 0x20 && b < 0x7f)
        || !(v == b"HTTP/1.0" || v == b"HTTP/1.1")
    {
        return 0;
    }
    for line in lines {
        let Some(line) = line.strip_suffix(b"\r") else {
            continue;
        };
        if line.is_empty() {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return 0;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty()
            || !name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        {
            return 0;
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        {
            return 0;
        }
    }
    end + 4
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Nanoseconds per parse (median of rounds).
    pub ns_per_request: f64,
    /// Input bytes parsed per second.
    pub bytes_per_sec: f64,
    /// TSC cycles per input byte (`None` off x86_64).
    pub tsc_cycles_per_byte: Option<f64>,
}

/// Times `f` on `input`: `rounds` rounds of at least `min_round` each; median round.
pub fn measure(f: ParseFn, input: &[u8], rounds: usize, min_round: Duration) -> Cost {
    assert!(f(input) > 0, "parser did not accept the benchmark input");
    // Calibrate iterations per round.
    let mut iters = 64u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f(black_box(input)));
        }
        if t.elapsed() >= min_round / 4 || iters > 1 << 30 {
            break;
        }
        iters *= 2;
    }
    iters *= 4;
    let mut ns = Vec::with_capacity(rounds);
    let mut cyc = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let c0 = crate::sys::rdtsc();
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f(black_box(input)));
        }
        let el = t.elapsed();
        let c1 = crate::sys::rdtsc();
        ns.push(el.as_nanos() as f64 / iters as f64);
        if let (Some(a), Some(b)) = (c0, c1) {
            cyc.push(b.wrapping_sub(a) as f64 / iters as f64 / input.len() as f64);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ns_per_request = med(&mut ns);
    Cost {
        ns_per_request,
        bytes_per_sec: input.len() as f64 / (ns_per_request * 1e-9),
        tsc_cycles_per_byte: if cyc.is_empty() {
            None
        } else {
            Some(med(&mut cyc))
        },
    }
}

/// The three benchmark inputs, by name.
pub fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small_get", generate::small_get()),
        ("browser_15_headers", generate::browser()),
        ("large_headers", generate::large_headers()),
    ]
}
