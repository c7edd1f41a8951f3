//! Fuzz target for milestone 4's HTTP/1.0 request parser. The invariants live in
//! `m04_http10::lab::fuzz::check_request` (no panic; consumed <= len; a complete parse's
//! fields lie inside the input; every prefix is Partial or the same error; strict acceptance
//! implies RFC 1945-mode acceptance), shared with a `cargo test` replay of the seed corpus.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m04_http10::lab::fuzz::check_request(data);
});
