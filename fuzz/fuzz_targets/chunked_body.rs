//! Fuzz target for milestone 8's chunked request-body decoder. The invariants live in
//! `m08_http11::fuzz::check_chunked` (the same verdict, decoded bytes and consumption
//! whether the body arrives whole or in pieces; every limit holds at every step; errors map
//! to 400/413/431; encode-then-decode returns the input), shared with a `cargo test` replay
//! of the seed corpus.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m08_http11::fuzz::check_chunked(data);
});
