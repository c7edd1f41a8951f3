//! Static files from a root directory, with traversal blocked at three levels:
//!
//! 1. **Decoding** ([`crate::decode::decode_path`]): `%2F` and `%00` are refused, `..` may not
//!    climb above `/`, and dot-segments are gone before routing, so `/static/../x` is `/x` and
//!    never reaches this module.
//! 2. **Segments**: the wildcard value is checked again here (no `.`/`..`, no NUL, no
//!    backslash), in case a caller builds a context by hand.
//! 3. **Symlinks**: the candidate is `canonicalize`d (every symlink resolved) and must still start
//!    with the canonical root; a link pointing outside is refused with 403 and counted.
//!
//! **The small-file cache** ([`StaticCache`], like nginx's `open_file_cache`). Resolving costs
//! a `canonicalize` (one `readlink` per path component) plus `open`, `fstat`, `read`, `close`:
//! tens of microseconds, far more than the rest of a request. So files up to
//! [`CacheLimits::max_file`] that resolved successfully are kept in memory, keyed by the
//! wildcard value, with their canonical path and identity (device, inode, length, mtime). A hit
//! younger than [`CacheLimits::valid_for`] costs no syscall at all; an older one is revalidated
//! with one `stat` of the canonical path and dropped if the file changed (the next request takes
//! the full path above, so all three defences apply again). Only answers that passed the
//! defences are ever cached, so the cache cannot widen what is reachable; the price is that a
//! changed or deleted file may be served as it was for up to `valid_for`. Entries and bytes are
//! bounded; the least recently used entry is evicted first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::response::{Body, FileBody, Response};

/// Largest file served (files are read into memory until milestone 16's `sendfile`).
pub const MAX_STATIC_FILE: u64 = 16 * 1024 * 1024;
/// Largest file the cache keeps.
pub const CACHE_MAX_FILE: u64 = 64 * 1024;
/// Most files the cache keeps.
pub const CACHE_MAX_ENTRIES: usize = 1024;
/// Most file bytes the cache keeps, all entries together.
pub const CACHE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long a cached file is served without looking at the disk (nginx's
/// `open_file_cache_valid` default is 60 s; one second keeps edits visible almost at once).
pub const CACHE_VALID_FOR: Duration = Duration::from_secs(1);

/// Why a static lookup did not produce a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaticError {
    /// No such file (or a directory without `index.html`): 404.
    NotFound,
    /// The path tried to leave the root: 403, counted as traversal.
    Traversal,
    /// Larger than [`MAX_STATIC_FILE`]: 500.
    TooLarge,
    /// The file exists but could not be opened: 403.
    Unreadable,
}

impl StaticError {
    /// The status to answer.
    pub fn status(self) -> u16 {
        match self {
            StaticError::NotFound => 404,
            StaticError::Traversal | StaticError::Unreadable => 403,
            StaticError::TooLarge => 500,
        }
    }
}

/// Bounds of the small-file cache ([`StaticCache`]). Every limit is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Files larger than this are never cached (read from disk on every request).
    pub max_file: u64,
    /// Most entries; `0` disables the cache.
    pub max_entries: usize,
    /// Most bytes of file contents, all entries together.
    pub max_bytes: usize,
    /// A hit younger than this is served without a syscall; older ones cost one `stat`.
    pub valid_for: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_file: CACHE_MAX_FILE,
            max_entries: CACHE_MAX_ENTRIES,
            max_bytes: CACHE_MAX_BYTES,
            valid_for: CACHE_VALID_FOR,
        }
    }
}

impl CacheLimits {
    /// No cache: every request resolves and reads the file.
    pub const DISABLED: CacheLimits = CacheLimits {
        max_file: 0,
        max_entries: 0,
        max_bytes: 0,
        valid_for: Duration::ZERO,
    };
}

/// What the cache did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from memory (with or without a revalidating `stat`).
    pub hits: u64,
    /// Hits older than `valid_for` whose `stat` showed the same file.
    pub revalidations: u64,
    /// Entries dropped because their `stat` failed or showed another file.
    pub invalidations: u64,
    /// Requests that went to the disk (not cached, or not cacheable).
    pub misses: u64,
    /// Files added.
    pub inserts: u64,
    /// Entries evicted to stay within the bounds.
    pub evictions: u64,
    /// Entries now.
    pub entries: usize,
    /// Bytes of file contents now.
    pub bytes: usize,
}

/// Which file an entry holds: if any of these changed, it is another file (or an edited one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(m: &Metadata) -> Identity {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

#[derive(Debug)]
struct CachedFile {
    /// Canonical path (inside the root when cached), what revalidation `stat`s.
    path: PathBuf,
    body: Arc<[u8]>,
    content_type: &'static str,
    identity: Identity,
    validated: Instant,
    last_used: u64,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<Box<str>, CachedFile>,
    bytes: usize,
    clock: u64,
    stats: CacheStats,
}

thread_local! {
    /// Each thread's caches, by [`StaticCache`] id: the event loops (milestones 9–10) serve a
    /// hit without a lock or any shared write.
    static CACHES: RefCell<HashMap<u64, CacheInner>> = RefCell::new(HashMap::new());
}

/// Ids of [`StaticCache`]s (a key into each thread's caches).
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// The bounded in-memory cache of small files behind a [`StaticDir`]. See the
/// [module docs](self).
///
/// **One cache per thread.** The entries live in thread-local storage keyed by this cache's
/// id, so a hit takes no lock and writes nothing another thread reads: every event loop keeps
/// its own copy of the hot files. The bounds apply per thread (memory ≤ threads ×
/// `max_bytes`), and [`StaticCache::stats`] reports the calling thread's cache.
#[derive(Debug)]
pub struct StaticCache {
    limits: CacheLimits,
    id: u64,
}

impl StaticCache {
    fn new(limits: CacheLimits) -> StaticCache {
        StaticCache {
            limits,
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Runs `f` on this thread's part of the cache (`None` while the thread is exiting).
    fn with_inner<T>(&self, f: impl FnOnce(&mut CacheInner) -> T) -> Option<T> {
        CACHES
            .try_with(|caches| {
                let mut caches = caches.try_borrow_mut().ok()?;
                Some(f(caches.entry(self.id).or_default()))
            })
            .ok()
            .flatten()
    }

    fn enabled(&self) -> bool {
        self.limits.max_entries > 0 && self.limits.max_bytes > 0
    }

    /// A hit for `rel` at `now` (revalidating with one `stat` when old), or `None`.
    fn lookup(&self, rel: &str, now: Instant) -> Option<(Arc<[u8]>, &'static str)> {
        self.with_inner(|inner| self.lookup_in(inner, rel, now))
            .flatten()
    }

    fn lookup_in(
        &self,
        inner: &mut CacheInner,
        rel: &str,
        now: Instant,
    ) -> Option<(Arc<[u8]>, &'static str)> {
        inner.clock += 1;
        let clock = inner.clock;
        let entry = inner.map.get_mut(rel)?;
        if now.saturating_duration_since(entry.validated) >= self.limits.valid_for {
            let same = std::fs::metadata(&entry.path)
                .is_ok_and(|m| m.is_file() && Identity::of(&m) == entry.identity);
            if !same {
                let len = entry.body.len();
                inner.map.remove(rel);
                inner.bytes -= len;
                inner.stats.invalidations += 1;
                return None;
            }
            entry.validated = now;
            inner.stats.revalidations += 1;
        }
        entry.last_used = clock;
        inner.stats.hits += 1;
        Some((Arc::clone(&entry.body), entry.content_type))
    }

    fn record_miss(&self) {
        self.with_inner(|inner| inner.stats.misses += 1);
    }

    /// Adds a file, evicting the least recently used entries to stay within the bounds.
    fn insert(&self, rel: &str, file: CachedFile) {
        let len = file.body.len();
        if len as u64 > self.limits.max_file || len > self.limits.max_bytes {
            return;
        }
        self.with_inner(|inner| self.insert_in(inner, rel, file, len));
    }

    fn insert_in(&self, inner: &mut CacheInner, rel: &str, file: CachedFile, len: usize) {
        if let Some(old) = inner.map.remove(rel) {
            inner.bytes -= old.body.len();
        }
        while !inner.map.is_empty()
            && (inner.map.len() >= self.limits.max_entries
                || inner.bytes + len > self.limits.max_bytes)
        {
            let Some(victim) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = inner.map.remove(&victim) {
                inner.bytes -= old.body.len();
                inner.stats.evictions += 1;
            }
        }
        inner.clock += 1;
        let file = CachedFile {
            last_used: inner.clock,
            ..file
        };
        inner.bytes += len;
        inner.map.insert(rel.into(), file);
        inner.stats.inserts += 1;
    }

    /// A copy of the calling thread's counters.
    pub fn stats(&self) -> CacheStats {
        self.with_inner(|inner| CacheStats {
            entries: inner.map.len(),
            bytes: inner.bytes,
            ..inner.stats
        })
        .unwrap_or_default()
    }

    /// The bounds.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }
}

/// A directory served read-only, with a [`StaticCache`] of its small files.
#[derive(Debug)]
pub struct StaticDir {
    root: PathBuf,
    cache: StaticCache,
}

impl Clone for StaticDir {
    /// The same root, with an empty cache of the same bounds.
    fn clone(&self) -> Self {
        StaticDir {
            root: self.root.clone(),
            cache: StaticCache::new(self.cache.limits),
        }
    }
}

/// Layer 2: the wildcard value's segments (no `.`/`..`, no NUL, no backslash).
fn check_segments(rel: &str) -> Result<(), StaticError> {
    if rel
        .split('/')
        .any(|seg| seg == "." || seg == ".." || seg.contains(['\0', '\\']))
    {
        return Err(StaticError::Traversal);
    }
    Ok(())
}

impl StaticDir {
    /// Opens `root` (must exist and be a directory; stored canonical), with the default cache.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<StaticDir> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "static root is not a directory",
            ));
        }
        Ok(StaticDir {
            root,
            cache: StaticCache::new(CacheLimits::default()),
        })
    }

    /// The same directory with other cache bounds ([`CacheLimits::DISABLED`]: no cache).
    pub fn with_cache_limits(mut self, limits: CacheLimits) -> StaticDir {
        self.cache = StaticCache::new(limits);
        self
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The small-file cache (its counters and bounds).
    pub fn cache(&self) -> &StaticCache {
        &self.cache
    }

    /// Resolves `rel` (a decoded wildcard value like `css/site.css`) to a canonical file path
    /// inside the root.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, StaticError> {
        check_segments(rel)?;
        let mut candidate = self.root.clone();
        for seg in rel.split('/') {
            if !seg.is_empty() {
                candidate.push(seg);
            }
        }
        let canon = candidate
            .canonicalize()
            .map_err(|_| StaticError::NotFound)?;
        if !canon.starts_with(&self.root) {
            return Err(StaticError::Traversal);
        }
        if canon.is_dir() {
            let index = canon
                .join("index.html")
                .canonicalize()
                .map_err(|_| StaticError::NotFound)?;
            if !index.starts_with(&self.root) {
                return Err(StaticError::Traversal);
            }
            return Ok(index);
        }
        Ok(canon)
    }

    /// The response for `rel`: the file with a content type guessed from its extension.
    /// Same as [`StaticDir::serve_at`] with the current time.
    pub fn serve(&self, rel: &str) -> Result<Response, StaticError> {
        self.serve_at(rel, Instant::now())
    }

    /// The response for `rel` at `now` (the driver's clock, which ages cache entries): from
    /// the cache when it holds a valid copy, else resolved, opened and (when small) cached.
    pub fn serve_at(&self, rel: &str, now: Instant) -> Result<Response, StaticError> {
        check_segments(rel)?;
        let cached = self.cache.enabled();
        if cached {
            if let Some((body, ct)) = self.cache.lookup(rel, now) {
                return Ok(Response::new(200)
                    .with_content_type(ct)
                    .with_body(Body::Shared(body)));
            }
            self.cache.record_miss();
        }
        let path = self.resolve(rel)?;
        let file = File::open(&path).map_err(|_| StaticError::Unreadable)?;
        let meta = file.metadata().map_err(|_| StaticError::Unreadable)?;
        if !meta.is_file() {
            return Err(StaticError::NotFound);
        }
        if meta.len() > MAX_STATIC_FILE {
            return Err(StaticError::TooLarge);
        }
        let ct = content_type(&path);
        if cached && meta.len() <= self.cache.limits.max_file {
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            (&file)
                .take(meta.len())
                .read_to_end(&mut bytes)
                .map_err(|_| StaticError::Unreadable)?;
            if bytes.len() as u64 != meta.len() {
                // It shrank while being read: the identity would lie. Do not cache it.
                return Err(StaticError::Unreadable);
            }
            let body: Arc<[u8]> = bytes.into();
            self.cache.insert(
                rel,
                CachedFile {
                    path,
                    body: Arc::clone(&body),
                    content_type: ct,
                    identity: Identity::of(&meta),
                    validated: now,
                    last_used: 0,
                },
            );
            return Ok(Response::new(200)
                .with_content_type(ct)
                .with_body(Body::Shared(body)));
        }
        Ok(Response::new(200)
            .with_content_type(ct)
            .with_body(Body::File(FileBody {
                file,
                len: meta.len(),
                path,
            })))
    }
}

/// A content type from the file extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}
