//! "Zero locks on the hot path", checked in the source: no mutex, read-write lock, condition
//! variable or `.lock()` call in the code of any crate a request goes through when the
//! multi-loop server serves it — m04 (HTTP/1.0 framing, the `Service` trait), m05 (routing),
//! m07 (buffers), m08 (HTTP/1.1 sessions), m09 (the loop), m10 (the multi-loop server) and
//! zyphos's own source (the site) — comments excluded, `lab.rs` files (hidden test/experiment
//! helpers) excluded. The few locks these crates legitimately hold are allow-listed below,
//! line by line, each with the reason it is off the request path; an allow-list entry that
//! no longer matches anything fails the test too, so the list cannot rot. The runtime side
//! (futex calls on loop threads) is the exit check `hot_path_lock_acquisitions`.

use std::path::{Path, PathBuf};

const FORBIDDEN: [&str; 4] = ["Mutex", "RwLock", "Condvar", ".lock()"];

/// The crates on the request path (their `src` directories, searched recursively).
const REQUEST_PATH: [&str; 7] = [
    "m04-http10",
    "m05-routing",
    "m07-buffers",
    "m08-http11",
    "m09-event-loop",
    "m10-multi-loop",
    "zyphos",
];

/// `(file, code line (trimmed, comment removed), why it is allowed)`: the locks that exist in
/// those crates, none taken per request by a loop serving a successful request.
const ALLOWED: &[(&str, &str, &str)] = &[
    // m05: bounded histories of 404 and slow requests (error/slow paths only, and /stats).
    (
        "m05-routing/src/stats.rs",
        "use std::sync::Mutex;",
        "cold: 404 / slow-request history",
    ),
    (
        "m05-routing/src/stats.rs",
        "pub(crate) recent_404: Mutex<VecDeque<String>>,",
        "cold: taken only when a request is answered 404, and by /stats",
    ),
    (
        "m05-routing/src/stats.rs",
        "pub(crate) recent_slow: Mutex<VecDeque<SlowRequest>>,",
        "cold: taken only for a request slower than the slow threshold, and by /stats",
    ),
    (
        "m05-routing/src/stats.rs",
        "recent_404: Mutex::new(VecDeque::with_capacity(NOT_FOUND_HISTORY)),",
        "setup: router construction",
    ),
    (
        "m05-routing/src/stats.rs",
        "recent_slow: Mutex::new(VecDeque::with_capacity(SLOW_HISTORY)),",
        "setup: router construction",
    ),
    (
        "m05-routing/src/stats.rs",
        "if let Ok(mut q) = self.recent_404.lock() {",
        "cold: a 404 response only",
    ),
    (
        "m05-routing/src/stats.rs",
        "if let Ok(mut q) = self.recent_slow.lock() {",
        "cold: a slow request only",
    ),
    (
        "m05-routing/src/router.rs",
        ".lock()",
        "cold: the /stats snapshot reading the two histories",
    ),
    // m05: log sinks (an access log is opt-in, `--access-log`, off by default; a log line is
    // a write to stderr anyway).
    (
        "m05-routing/src/log.rs",
        "use std::sync::Mutex;",
        "MemorySink: the in-memory sink of tests",
    ),
    (
        "m05-routing/src/log.rs",
        "let mut e = std::io::stderr().lock();",
        "opt-in access log only (off by default)",
    ),
    (
        "m05-routing/src/log.rs",
        "lines: Mutex<VecDeque<String>>,",
        "MemorySink: tests' sink",
    ),
    (
        "m05-routing/src/log.rs",
        "lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),",
        "MemorySink: tests' sink",
    ),
    (
        "m05-routing/src/log.rs",
        ".lock()",
        "MemorySink::lines: a test reading its sink",
    ),
    (
        "m05-routing/src/log.rs",
        "if let Ok(mut l) = self.lines.lock() {",
        "MemorySink: tests' sink",
    ),
    // m07: the pool shared by thread-per-connection drivers (m03/m06); every event loop owns
    // an unshared `BufferPool`.
    (
        "m07-buffers/src/pool.rs",
        "use std::sync::{Arc, Mutex, MutexGuard, OnceLock};",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "inner: Arc<Mutex<BufferPool>>,",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "inner: Arc::new(Mutex::new(BufferPool::new(config)?)),",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "fn lock(&self) -> MutexGuard<'_, BufferPool> {",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "self.inner.lock().unwrap_or_else(|e| e.into_inner())",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "let pool = self.lock();",
        "SharedPool: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "self.lock().stats()",
        "SharedPool: thread drivers only (and a stats reader)",
    ),
    (
        "m07-buffers/src/pool.rs",
        "self.lock().outstanding()",
        "SharedPool: thread drivers only (and a stats reader)",
    ),
    (
        "m07-buffers/src/pool.rs",
        "pool: Arc<Mutex<BufferPool>>,",
        "SharedPool's buffers: thread drivers only",
    ),
    (
        "m07-buffers/src/pool.rs",
        "let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());",
        "SharedPool's buffers: thread drivers only",
    ),
    // m08: the recording service of conformance tests and fuzz targets, never a server's.
    (
        "m08-http11/src/conformance.rs",
        "use std::sync::{Arc, Mutex};",
        "test recorder",
    ),
    (
        "m08-http11/src/conformance.rs",
        "pub seen: Arc<Mutex<Vec<Seen>>>,",
        "test recorder",
    ),
    (
        "m08-http11/src/conformance.rs",
        "if let Ok(mut v) = self.seen.lock() {",
        "test recorder",
    ),
    (
        "m08-http11/src/conformance.rs",
        "let seen = recorder.seen.lock().map(|v| v.clone()).unwrap_or_default();",
        "test helper reading the recorder",
    ),
    (
        "m08-http11/src/fuzz.rs",
        "let seen = recorder.seen.lock().map(|v| v.clone()).unwrap_or_default();",
        "fuzz harness reading the test recorder",
    ),
];

/// A forbidden word outside a comment: `(file, line number, trimmed code)`.
type Hit = (PathBuf, usize, String);

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            // `lab.rs`: hidden helpers for tests and experiments, never called by a server.
            && p.file_name().is_none_or(|n| n != "lab.rs")
        {
            out.push(p);
        }
    }
}

/// Every line in `dir` (recursively) mentioning a forbidden word outside a comment.
fn lock_mentions(dir: &Path) -> Vec<Hit> {
    let mut files = Vec::new();
    rs_files(dir, &mut files);
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            if FORBIDDEN.iter().any(|w| code.contains(w)) {
                hits.push((f.clone(), n + 1, code.to_owned()));
            }
        }
    }
    hits
}

/// Whether `hit` is allow-listed; `used` marks the entries that matched.
fn allowed(hit: &Hit, used: &mut [bool]) -> bool {
    let path = hit.0.to_string_lossy().replace('\\', "/");
    let mut ok = false;
    for (i, (file, code, _why)) in ALLOWED.iter().enumerate() {
        if path.ends_with(file) && hit.2 == *code {
            used[i] = true;
            ok = true;
        }
    }
    ok
}

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

fn show(hits: &[Hit]) -> String {
    hits.iter()
        .map(|(f, n, code)| format!("{}:{n}: {code}", f.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn test_loop_sources_mention_no_lock() {
    let mut used = [false; ALLOWED.len()];
    let mut hits = Vec::new();
    for krate in REQUEST_PATH {
        hits.extend(
            lock_mentions(&src(krate))
                .into_iter()
                .filter(|h| !allowed(h, &mut used)),
        );
    }
    assert!(
        hits.is_empty(),
        "locks in the request-path crates (remove them, or allow-list one with its reason):\n{}",
        show(&hits)
    );
    let stale: Vec<_> = ALLOWED
        .iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(a, _)| format!("{} `{}`", a.0, a.1))
        .collect();
    assert!(
        stale.is_empty(),
        "allow-list entries matching nothing (remove them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn test_lint_catches_a_lock() {
    let dir = std::env::temp_dir().join(format!("m10-lint-{}", std::process::id()));
    let sub = dir.join("nested");
    std::fs::create_dir_all(&sub).expect("temp dir");
    std::fs::write(
        dir.join("bad.rs"),
        "// a Mutex in a comment is fine\nstatic M: std::sync::Mutex<u8> = std::sync::Mutex::new(0);\nfn f() { let _g = M.lock(); } // .lock()\n",
    )
    .expect("write");
    // An allow-listed line in a file the allow-list does not name is still caught, and so
    // is a lock in a subdirectory.
    std::fs::write(sub.join("deep.rs"), "use std::sync::Mutex;\n").expect("write");
    let hits = lock_mentions(&dir);
    let mut used = [false; ALLOWED.len()];
    let caught: Vec<_> = hits
        .into_iter()
        .filter(|h| !allowed(h, &mut used))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(caught.len(), 3, "{}", show(&caught));
    assert_eq!((caught[0].1, caught[1].1), (2, 3));
    assert!(caught[2].0.ends_with("nested/deep.rs"));
    assert!(used.iter().all(|u| !u), "no allow-list entry applies there");
}
