//! Replays the fuzz seed corpus (`fuzz/corpus/http10_request/`) through the fuzz target's own
//! invariant checks, on stable, in `cargo test`.

use std::path::Path;

#[test]
fn test_fuzz_seed_corpus_replays_without_violations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http10_request");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed file");
        m04_http10::lab::fuzz::check_request(&data);
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds in {}", dir.display());
}
