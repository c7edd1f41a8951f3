//! Fuzz target for milestone 8's HTTP/1.1 connection core. The invariants live in
//! `m08_http11::fuzz::check_session` (no panic or hang; the same requests dispatched, the
//! same bytes answered and the same close reason whether the input arrives whole, in
//! input-derived pieces with short writes, or byte by byte; refusals answered with the status
//! their reason maps to; output bounded by what was dispatched), shared with a `cargo test`
//! replay of the seed corpus.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    m08_http11::fuzz::check_session(data);
});
