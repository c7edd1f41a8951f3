//! The small-file cache behind `StaticDir`: hits without the disk, revalidation once per
//! `valid_for` with one `stat`, bounds on entries and bytes, and no way around the traversal
//! defences through it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use m05_routing::static_files::{CACHE_MAX_FILE, StaticError};
use m05_routing::{Body, CacheLimits, Response, StaticDir};

/// A scratch directory `…/m05-cache-<pid>-<nanos>-<tag>/{www/, outside/}`, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("m05-cache-{}-{nanos}-{tag}", std::process::id()));
        std::fs::create_dir_all(dir.join("www/sub")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        Scratch { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("www")
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join(rel), bytes).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn body(r: &Response) -> Vec<u8> {
    match r.body() {
        Body::Shared(b) => b.to_vec(),
        Body::Bytes(b) => b.clone(),
        Body::Static(b) => b.to_vec(),
        Body::File(f) => std::fs::read(&f.path).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn serve(dir: &StaticDir, rel: &str, now: Instant) -> Result<Vec<u8>, StaticError> {
    dir.serve_at(rel, now).map(|r| body(&r))
}

fn dir_with(root: &Path, limits: CacheLimits) -> StaticDir {
    StaticDir::new(root).unwrap().with_cache_limits(limits)
}

#[test]
fn test_cache_repeated_request_hits_without_disk() {
    let s = Scratch::new("hit");
    s.write("www/a.txt", b"alpha");
    let d = StaticDir::new(s.root()).unwrap();
    let t = Instant::now();
    assert_eq!(serve(&d, "a.txt", t).unwrap(), b"alpha");
    let r = d.serve_at("a.txt", t).unwrap();
    assert!(matches!(r.body(), Body::Shared(_)));
    assert_eq!(r.content_type(), Some("text/plain; charset=utf-8"));
    // Gone from the disk: a hit inside `valid_for` does not look, so it is still served.
    std::fs::remove_file(s.dir.join("www/a.txt")).unwrap();
    assert_eq!(
        serve(&d, "a.txt", t + Duration::from_millis(900)).unwrap(),
        b"alpha"
    );
    let st = d.cache().stats();
    assert_eq!((st.misses, st.inserts, st.hits), (1, 1, 2));
    assert_eq!((st.entries, st.bytes), (1, 5));
    // Past `valid_for` the one `stat` finds it gone: dropped, and the disk says 404.
    assert_eq!(
        serve(&d, "a.txt", t + Duration::from_millis(1100)),
        Err(StaticError::NotFound)
    );
    let st = d.cache().stats();
    assert_eq!((st.invalidations, st.entries, st.bytes), (1, 0, 0));
}

#[test]
fn test_cached_file_changed_served_anew_after_revalidation() {
    let s = Scratch::new("change");
    s.write("www/f.css", b"old");
    let d = StaticDir::new(s.root()).unwrap();
    let t = Instant::now();
    assert_eq!(serve(&d, "f.css", t).unwrap(), b"old");
    s.write("www/f.css", b"newer");
    // Inside the second: the cached copy (at most `valid_for` stale, by design).
    assert_eq!(
        serve(&d, "f.css", t + Duration::from_millis(500)).unwrap(),
        b"old"
    );
    // After it: the stat sees another length/ctime, the entry is dropped and re-read.
    assert_eq!(
        serve(&d, "f.css", t + Duration::from_millis(1500)).unwrap(),
        b"newer"
    );
    // Unchanged after that: revalidated by one stat, kept.
    assert_eq!(
        serve(&d, "f.css", t + Duration::from_millis(3000)).unwrap(),
        b"newer"
    );
    let st = d.cache().stats();
    assert_eq!(st.invalidations, 1);
    assert_eq!(st.revalidations, 1);
    assert_eq!(st.inserts, 2);
    assert_eq!(st.entries, 1);
}

#[test]
fn test_cache_full_entries_evicts_least_recently_used() {
    let s = Scratch::new("entries");
    for name in ["a", "b", "c"] {
        s.write(&format!("www/{name}.txt"), name.as_bytes());
    }
    let limits = CacheLimits {
        max_entries: 2,
        ..CacheLimits::default()
    };
    let d = dir_with(&s.root(), limits);
    let t = Instant::now();
    serve(&d, "a.txt", t).unwrap();
    serve(&d, "b.txt", t).unwrap();
    serve(&d, "a.txt", t).unwrap(); // a is now more recent than b
    serve(&d, "c.txt", t).unwrap(); // evicts b
    let st = d.cache().stats();
    assert_eq!((st.entries, st.evictions, st.hits), (2, 1, 1));
    serve(&d, "a.txt", t).unwrap();
    assert_eq!(d.cache().stats().hits, 2, "a stayed");
    serve(&d, "b.txt", t).unwrap();
    let st = d.cache().stats();
    assert_eq!((st.hits, st.misses, st.entries), (2, 4, 2), "b was evicted");
}

#[test]
fn test_cache_full_bytes_bounded_and_large_files_not_cached() {
    let s = Scratch::new("bytes");
    s.write("www/x.bin", &[b'x'; 60]);
    s.write("www/y.bin", &[b'y'; 60]);
    s.write("www/big.bin", &vec![b'z'; CACHE_MAX_FILE as usize + 1]);
    let limits = CacheLimits {
        max_bytes: 100,
        ..CacheLimits::default()
    };
    let d = dir_with(&s.root(), limits);
    let t = Instant::now();
    serve(&d, "x.bin", t).unwrap();
    serve(&d, "y.bin", t).unwrap();
    let st = d.cache().stats();
    assert_eq!((st.entries, st.bytes, st.evictions), (1, 60, 1));
    // Over max_file: served from the disk, every time, never cached.
    let d = StaticDir::new(s.root()).unwrap();
    for _ in 0..3 {
        let r = d.serve_at("big.bin", t).unwrap();
        assert!(matches!(r.body(), Body::File(_)));
        assert_eq!(r.body().len(), CACHE_MAX_FILE + 1);
    }
    let st = d.cache().stats();
    assert_eq!((st.entries, st.misses, st.hits), (0, 3, 0));
}

#[test]
fn test_cache_traversal_attempts_still_refused() {
    let s = Scratch::new("traversal");
    s.write("outside/secret.txt", b"SECRET");
    s.write("www/sub/f.txt", b"inside");
    std::os::unix::fs::symlink(s.dir.join("outside/secret.txt"), s.dir.join("www/out")).unwrap();
    let d = StaticDir::new(s.root()).unwrap();
    let t = Instant::now();
    for _ in 0..2 {
        assert_eq!(
            serve(&d, "../outside/secret.txt", t),
            Err(StaticError::Traversal)
        );
        assert_eq!(
            serve(&d, "sub/../../outside/secret.txt", t),
            Err(StaticError::Traversal)
        );
        assert_eq!(serve(&d, "out", t), Err(StaticError::Traversal));
    }
    assert_eq!(d.cache().stats().entries, 0, "refusals are never cached");
    // A cached file whose directory is then swapped for a link out of the root: the
    // revalidating stat sees another file, and the full resolution refuses it.
    s.write("outside/f.txt", b"SECRET");
    assert_eq!(serve(&d, "sub/f.txt", t).unwrap(), b"inside");
    std::fs::remove_dir_all(s.dir.join("www/sub")).unwrap();
    std::os::unix::fs::symlink(s.dir.join("outside"), s.dir.join("www/sub")).unwrap();
    assert_eq!(
        serve(&d, "sub/f.txt", t + Duration::from_secs(2)),
        Err(StaticError::Traversal)
    );
    assert_eq!(d.cache().stats().invalidations, 1);
}

#[test]
fn test_cache_disabled_reads_disk_every_request() {
    let s = Scratch::new("disabled");
    s.write("www/a.txt", b"one");
    let d = dir_with(&s.root(), CacheLimits::DISABLED);
    let t = Instant::now();
    assert_eq!(serve(&d, "a.txt", t).unwrap(), b"one");
    s.write("www/a.txt", b"two");
    assert_eq!(serve(&d, "a.txt", t).unwrap(), b"two");
    let st = d.cache().stats();
    assert_eq!((st.entries, st.hits, st.misses), (0, 0, 0));
}
