//! The response builder: what a handler returns, rendered by the router through m04's
//! [`ResponseWriter`].
//!
//! A [`Response`] is a status, a content type, extra headers and a [`Body`]. Bodies are bytes
//! (owned, `'static`, or shared) or a file. Files are read here and sent with
//! `ResponseWriter::send_parts` in chunks of [`FILE_CHUNK`] bytes; milestone 16 replaces the copy
//! with `sendfile(2)`. HEAD needs nothing special: the writer keeps `Content-Length` and drops the
//! body.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use m04_http10::ResponseWriter;

/// Bytes read from a file per `send_parts` piece.
pub const FILE_CHUNK: usize = 64 * 1024;

/// A file to send: opened by the handler, read by the renderer.
#[derive(Debug)]
pub struct FileBody {
    /// The open file.
    pub file: File,
    /// Its length when opened (what `Content-Length` will say).
    pub len: u64,
    /// Where it is (for logs).
    pub path: PathBuf,
}

/// A response body.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Body {
    /// No body (`Content-Length: 0`).
    #[default]
    Empty,
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes that live forever (no copy, no allocation).
    Static(&'static [u8]),
    /// Bytes shared between responses.
    Shared(Arc<[u8]>),
    /// A file.
    File(FileBody),
}

impl Body {
    /// The entity length.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Static(b) => b.len() as u64,
            Body::Shared(b) => b.len() as u64,
            Body::File(f) => f.len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::Bytes(v)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::Bytes(s.into_bytes())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::Static(s.as_bytes())
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::Static(s)
    }
}

impl From<Arc<[u8]>> for Body {
    fn from(s: Arc<[u8]>) -> Self {
        Body::Shared(s)
    }
}

/// What a handler returns.
#[derive(Debug)]
pub struct Response {
    status: u16,
    content_type: Option<Cow<'static, str>>,
    headers: Vec<(Cow<'static, str>, Vec<u8>)>,
    body: Body,
}

impl Response {
    /// `status` with no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<Body>) -> Response {
        Response::new(status)
            .with_content_type("text/plain; charset=utf-8")
            .with_body(body)
    }

    /// `text/html; charset=utf-8`.
    pub fn html(status: u16, body: impl Into<Body>) -> Response {
        Response::new(status)
            .with_content_type("text/html; charset=utf-8")
            .with_body(body)
    }

    /// `application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status)
            .with_content_type("application/json")
            .with_body(value.to_string())
    }

    /// The standard error page for `status`: `"404 Not Found\n"`.
    pub fn error(status: u16) -> Response {
        Response::text(
            status,
            format!("{status} {}\n", m04_http10::reason_phrase(status)),
        )
    }

    /// A redirect (`301`, `302`, `303`, `307`, `308`) to `location` (percent-encoded as needed).
    pub fn redirect(status: u16, location: &str) -> Response {
        Response::error(status).with_header("Location", crate::decode::encode_path(location))
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, ct: impl Into<Cow<'static, str>>) -> Response {
        self.content_type = Some(ct.into());
        self
    }

    /// Adds a header (values with CR or LF are dropped by the writer and counted there).
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Vec<u8>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The content type.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Writes the response. Returns the entity length sent, or the error response to send
    /// instead when a file cannot be read completely (then nothing was written yet).
    pub(crate) fn render(self, w: &mut ResponseWriter<'_>) -> Result<u64, Response> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (&**n, v.as_slice()))
            .collect();
        let ct = self.content_type.as_deref();
        match &self.body {
            Body::Empty => w.send(self.status, ct, &headers, &[]),
            Body::Bytes(b) => w.send(self.status, ct, &headers, b),
            Body::Static(b) => w.send(self.status, ct, &headers, b),
            Body::Shared(b) => w.send(self.status, ct, &headers, b),
            Body::File(f) => {
                let chunks = read_chunks(f).map_err(|_| Response::error(500))?;
                let parts: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
                w.send_parts(self.status, ct, &headers, &parts);
            }
        }
        Ok(self.body.len())
    }
}

/// Reads exactly `len` bytes in [`FILE_CHUNK`] pieces (a file that shrank is an error: the
/// `Content-Length` would lie).
fn read_chunks(f: &FileBody) -> std::io::Result<Vec<Vec<u8>>> {
    let mut file = &f.file;
    let mut left = f.len;
    let mut chunks = Vec::new();
    while left > 0 {
        let n = left.min(FILE_CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        file.read_exact(&mut buf)?;
        chunks.push(buf);
        left -= n as u64;
    }
    Ok(chunks)
}
