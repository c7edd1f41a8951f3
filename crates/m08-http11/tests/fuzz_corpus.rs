//! Replays the fuzz seed corpora (`fuzz/corpus/http11_session/`, `fuzz/corpus/chunked_body/`)
//! through the fuzz targets' own invariant checks (`m08_http11::fuzz`), on stable, in
//! `cargo test`.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8]), at_least: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed file");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "seed {} violates an invariant",
            path.display()
        );
        n += 1;
    }
    assert!(n >= at_least, "only {n} seeds in {}", dir.display());
}

#[test]
fn test_fuzz_session_seed_corpus_replays_without_violations() {
    replay("http11_session", m08_http11::fuzz::check_session, 90);
}

#[test]
fn test_fuzz_chunked_seed_corpus_replays_without_violations() {
    replay("chunked_body", m08_http11::fuzz::check_chunked, 40);
}
