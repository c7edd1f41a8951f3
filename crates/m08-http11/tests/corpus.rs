//! The smuggling corpus (tests/data/smuggling-cases.json, copied from shared/corpora) through a
//! real session, whole and one byte at a time.

use m08_http11::conformance::{FRAMING_CATEGORIES, run_corpus};

#[test]
fn test_smuggling_corpus_all_cases_pass() {
    let json = include_str!("data/smuggling-cases.json");
    let results = run_corpus(json).expect("corpus parses");
    assert_eq!(results.len(), 91);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{} [{}]: {}", r.id, r.category, r.detail))
        .collect();
    let framing = results
        .iter()
        .filter(|r| FRAMING_CATEGORIES.contains(&r.category.as_str()))
        .count();
    assert!(framing >= 60, "{framing} framing cases");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
