//! "Zero locks on the hot path", checked in the source: no mutex, read-write lock, condition
//! variable or `.lock()` call in the code of milestone 9's loop or milestone 10's multi-loop
//! server (comments excluded; `lab.rs`, the hidden test/experiment helpers, excluded). The runtime side (futex calls on loop threads) is the exit check
//! `hot_path_lock_acquisitions`.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 4] = ["Mutex", "RwLock", "Condvar", ".lock()"];

/// Every `file:line: text` in `dir` mentioning a forbidden word outside a comment.
fn lock_mentions(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        // `lab.rs`: hidden helpers for tests and experiments, never called by a server.
        .filter(|p| p.file_name().is_none_or(|n| n != "lab.rs"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if FORBIDDEN.iter().any(|w| code.contains(w)) {
                hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn test_loop_sources_mention_no_lock() {
    let mut hits = lock_mentions(&src("m09-event-loop"));
    hits.extend(lock_mentions(&src("m10-multi-loop")));
    assert!(
        hits.is_empty(),
        "locks in the event-loop code:\n{}",
        hits.join("\n")
    );
}

#[test]
fn test_lint_catches_a_lock() {
    let dir = std::env::temp_dir().join(format!("m10-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("bad.rs"),
        "// a Mutex in a comment is fine\nstatic M: std::sync::Mutex<u8> = std::sync::Mutex::new(0);\nfn f() { let _g = M.lock(); } // .lock()\n",
    )
    .expect("write");
    let hits = lock_mentions(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits[0].contains(":2:") && hits[1].contains(":3:"));
}
