//! Static files from a root directory, with traversal blocked at three levels:
//!
//! 1. **Decoding** ([`crate::decode::decode_path`]): `%2F` and `%00` are refused, `..` may not
//!    climb above `/`, and dot-segments are gone before routing, so `/static/../x` is `/x` and
//!    never reaches this module.
//! 2. **Segments**: the wildcard value is checked again here (no `.`/`..`, no NUL, no
//!    backslash), in case a caller builds a context by hand.
//! 3. **Symlinks**: the candidate is `canonicalize`d (every symlink resolved) and must still start
//!    with the canonical root; a link pointing outside is refused with 403 and counted.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::response::{Body, FileBody, Response};

/// Largest file served (files are read into memory until milestone 16's `sendfile`).
pub const MAX_STATIC_FILE: u64 = 16 * 1024 * 1024;

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

/// A directory served read-only.
#[derive(Debug, Clone)]
pub struct StaticDir {
    root: PathBuf,
}

impl StaticDir {
    /// Opens `root` (must exist and be a directory; stored canonical).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<StaticDir> {
        let root = root.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "static root is not a directory",
            ));
        }
        Ok(StaticDir { root })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `rel` (a decoded wildcard value like `css/site.css`) to a canonical file path
    /// inside the root.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, StaticError> {
        let mut candidate = self.root.clone();
        for seg in rel.split('/') {
            if seg == "." || seg == ".." || seg.contains(['\0', '\\']) {
                return Err(StaticError::Traversal);
            }
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
    pub fn serve(&self, rel: &str) -> Result<Response, StaticError> {
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
