//! The invariants of the fuzz targets `http11_session` and `chunked_body` (in `fuzz/`), shared
//! with the seed-corpus replay test so that `cargo test` runs the same functions on stable.
//!
//! Both targets check the property a sans-IO core lives by: **how the bytes are cut does not
//! matter**. The same input delivered whole and delivered in pieces (sizes derived from the
//! input itself, and one byte at a time for short inputs) must give the same result, byte for
//! byte. On top of that, each target checks what must hold whatever the input: no panic, no
//! hang (the in-memory driver has a round bound), consumption within what was given, output
//! bounded by the requests dispatched, every refusal answered with the status its reason maps
//! to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use m03_thread_per_conn::CloseReason;
use m03_thread_per_conn::testing::{Faults, PipeDriver, PipeOutcome};

use crate::chunked::{ChunkError, ChunkLimits, ChunkedDecoder, encode};
use crate::conformance::{Recorder, Seen};
use crate::session::{CONTINUE_100, Http11Config, Http11Event, Http11Session};

/// Inputs up to this length are also replayed one byte at a time (longer ones only in
/// input-derived pieces: re-parsing a growing head byte by byte is quadratic).
const BYTEWISE_MAX: usize = 512;

/// FNV-1a: piece sizes and seeds derived from the input, so a crash reproduces from the input
/// alone.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The limits under test: the shipped ones, and tiny ones so that every limit is reachable
/// from short inputs.
fn configs() -> [Http11Config; 2] {
    let mut tiny = Http11Config::default();
    tiny.limits.max_request_line = 40;
    tiny.limits.max_headers = 4;
    tiny.limits.max_header_line = 48;
    tiny.limits.max_head = 160;
    tiny.limits.max_body = 32;
    tiny.chunk = ChunkLimits {
        max_chunk_size: 16,
        max_chunks: 4,
        max_line: 12,
        max_trailer_bytes: 32,
        max_trailers: 2,
        max_body: 32,
    };
    tiny.max_requests = 3;
    tiny.max_pipeline_depth = 2;
    tiny.max_pending_output = 256;
    [Http11Config::default(), tiny]
}

/// What one delivery of the script produced.
struct Run {
    outcome: PipeOutcome<Http11Event>,
    seen: Vec<Seen>,
}

fn run_session(config: Http11Config, script: &[u8], faults: Faults) -> Run {
    let recorder = Recorder::default();
    let now = Instant::now();
    let mut session = Http11Session::new(
        Arc::new(recorder.clone()),
        config,
        SocketAddr::from(([127, 0, 0, 1], 1)),
        now,
        (now, SystemTime::UNIX_EPOCH),
    );
    let mut driver = PipeDriver::new(faults);
    // A bound far above any legitimate run of a fuzz-sized input (a round moves at least
    // one byte or one timeout), so a stuck session panics instead of hanging.
    driver.max_rounds = 16 * script.len() + 10_000;
    let outcome = driver.run(&mut session, script);
    drop(session);
    let seen = recorder.seen.lock().map(|v| v.clone()).unwrap_or_default();
    Run { outcome, seen }
}

/// Output with interim `100 Continue` responses removed: whether one is sent depends on
/// whether the body had already arrived with the head, which is exactly what splitting
/// changes. (The recorder answers `ok`, and error bodies are fixed text, so the interim
/// bytes cannot occur inside a final response.)
fn without_interim(output: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(output.len());
    let mut rest = output;
    while !rest.is_empty() {
        if rest.starts_with(CONTINUE_100) {
            rest = &rest[CONTINUE_100.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Checks what must hold for one run whatever the input.
fn check_run(script: &[u8], run: &Run) {
    let o = &run.outcome;
    assert!(o.consumed <= script.len(), "consumed more than the script");
    let finals = without_interim(&o.output);
    if !finals.is_empty() {
        assert!(
            finals.starts_with(b"HTTP/1.1 ") || finals.starts_with(b"HTTP/1.0 "),
            "output does not start with a status line: {:?}",
            String::from_utf8_lossy(&finals[..finals.len().min(64)])
        );
    }
    let mut refusals = Vec::new();
    let mut timeouts = 0;
    for e in &o.events {
        match e {
            Http11Event::Rejected { reason, status } => {
                assert_eq!(*status, reason.status(), "{reason:?} answered {status}");
                assert!((400..600).contains(status), "refusal with status {status}");
                refusals.push(*status);
            }
            Http11Event::Timeout { .. } => timeouts += 1,
            _ => {}
        }
    }
    // One response per dispatched request, refusal or timeout; none is anywhere near 1 KiB
    // (the recorder answers `ok`, refusals and 408s carry a one-line body).
    let responses = run.seen.len() + refusals.len() + timeouts;
    assert!(
        finals.len() <= responses * 1024,
        "{} output bytes for {} requests, {} refusals, {timeouts} timeouts",
        finals.len(),
        run.seen.len(),
        refusals.len()
    );
    let hay = String::from_utf8_lossy(&finals);
    for status in &refusals {
        assert!(
            hay.contains(&format!("HTTP/1.1 {status} "))
                || hay.contains(&format!("HTTP/1.0 {status} ")),
            "refusal {status} not on the wire"
        );
    }
    if o.close == CloseReason::ProtocolError {
        assert!(
            !refusals.is_empty(),
            "closed for a protocol error nobody saw"
        );
    }
}

/// The `http11_session` target: the script through an [`Http11Session`] (shipped and tiny
/// limits), whole, in input-derived pieces with short writes, and byte by byte when short;
/// every delivery must dispatch the same requests, send the same bytes (interim `100
/// Continue` aside) and close for the same reason.
pub fn check_session(script: &[u8]) {
    let h = fnv(script);
    for config in configs() {
        let zero = Duration::ZERO;
        let whole = run_session(
            config,
            script,
            Faults {
                tick: zero,
                ..Faults::default()
            },
        );
        check_run(script, &whole);
        let mut cuts = vec![Faults {
            max_read: 1 + (h % 61) as usize,
            max_write: 1 + ((h >> 8) % 97) as usize,
            seed: (h >> 16) | 1,
            tick: zero,
            ..Faults::default()
        }];
        if script.len() <= BYTEWISE_MAX {
            cuts.push(Faults {
                max_read: 1,
                tick: zero,
                ..Faults::default()
            });
        }
        for faults in cuts {
            let cut = run_session(config, script, faults);
            check_run(script, &cut);
            assert_eq!(
                cut.seen, whole.seen,
                "dispatched requests differ with reads of at most {} bytes",
                faults.max_read
            );
            assert_eq!(
                String::from_utf8_lossy(&without_interim(&cut.outcome.output)),
                String::from_utf8_lossy(&without_interim(&whole.outcome.output)),
                "output differs with reads of at most {} bytes, writes of at most {}",
                faults.max_read,
                faults.max_write
            );
            assert_eq!(
                cut.outcome.close, whole.outcome.close,
                "close reason differs"
            );
        }
    }
}

/// The decoder's verdict on a body delivered in pieces of at most `piece` bytes (the caller
/// keeps what was not consumed, as the session does).
fn decode_in_pieces(
    limits: ChunkLimits,
    body: &[u8],
    piece: usize,
) -> (Vec<u8>, Result<usize, ChunkError>) {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut out = Vec::new();
    let mut held: Vec<u8> = Vec::new();
    let mut consumed = 0;
    let mut delivered = 0;
    loop {
        let n = piece.min(body.len() - delivered);
        held.extend_from_slice(&body[delivered..delivered + n]);
        delivered += n;
        let p = match decoder.feed(&held, &mut out) {
            Ok(p) => p,
            Err(e) => return (out, Err(e)),
        };
        assert!(p.consumed <= held.len(), "decoder consumed more than given");
        held.drain(..p.consumed);
        consumed += p.consumed;
        assert_eq!(decoder.wire_len(), consumed, "wire length disagrees");
        assert_eq!(decoder.decoded_len(), out.len(), "decoded length disagrees");
        assert!(out.len() <= limits.max_body, "decoded past max_body");
        assert!(
            decoder.chunks() <= limits.max_chunks,
            "more chunks than max_chunks"
        );
        assert!(
            decoder.trailers() <= limits.max_trailers,
            "more trailers than max_trailers"
        );
        if p.done {
            assert!(decoder.is_done());
            return (out, Ok(consumed));
        }
        if delivered == body.len() {
            // Incomplete: everything not consumed must be a prefix the decoder may still
            // need, never more than a size or trailer line.
            let held_max = limits.max_line.max(limits.max_trailer_bytes) + 2;
            assert!(
                held.len() <= held_max,
                "{} bytes held unconsumed at the end",
                held.len()
            );
            return (out, Ok(usize::MAX));
        }
    }
}

/// The `chunked_body` target: the input as a chunked body (shipped and tiny limits), whole,
/// in input-derived pieces and byte by byte when short: same decoded bytes, same verdict, same
/// bytes consumed; errors map to 400/413/431. Then the input as *data*: encoding it with the
/// chunk size its first byte picks and decoding it back must return it unchanged.
pub fn check_chunked(data: &[u8]) {
    let h = fnv(data);
    let tiny = configs()[1].chunk;
    for limits in [ChunkLimits::default(), tiny] {
        let whole = decode_in_pieces(limits, data, usize::MAX);
        if let Err(e) = whole.1 {
            assert!(
                matches!(e.status(), 400 | 413 | 431),
                "{e:?} -> {}",
                e.status()
            );
        }
        let mut pieces = vec![1 + (h % 37) as usize];
        if data.len() <= BYTEWISE_MAX {
            pieces.push(1);
        }
        for piece in pieces {
            let cut = decode_in_pieces(limits, data, piece);
            assert_eq!(cut.1, whole.1, "verdict differs with {piece}-byte pieces");
            if whole.1.is_ok() {
                assert_eq!(
                    cut.0, whole.0,
                    "decoded bytes differ with {piece}-byte pieces"
                );
            }
        }
    }
    // A chunk size from the first byte, raised if needed so that the body fits the chunk
    // count limit (the last chunk counts too).
    let limits = ChunkLimits::default();
    let body = &data[..data.len().min(limits.max_body)];
    let chunk = (1 + data.first().map_or(0, |&b| usize::from(b) % 64))
        .max(body.len().div_ceil(limits.max_chunks - 1));
    let wire = encode(body, chunk);
    let (decoded, verdict) = decode_in_pieces(limits, &wire, 1 + (h % 29) as usize);
    assert_eq!(
        verdict,
        Ok(wire.len()),
        "our own encoding was not decoded whole"
    );
    assert_eq!(decoded, body, "round trip changed the body");
}
