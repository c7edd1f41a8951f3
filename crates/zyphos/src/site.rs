//! The built-in lab site that `zyphos serve` answers HTTP with.
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | an HTML page: what is running (I/O model, protocol, router) and the endpoints |
//! | `GET /plaintext` | the 13-byte `Hello, World!` of the usual plaintext benchmark |
//! | `GET /static/*path` | files under `--root` (default: this crate's `site/static`) |
//! | `POST /echo` | the request body, back |
//! | `GET /stats` | the server's connection and syscall counters, as JSON |
//!
//! The site is one [`m05_routing::Router`]; every I/O model serves the same one, so comparisons
//! between drivers compare drivers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use m05_routing::{Response, RouteError, Router, RouterKind, StderrSink};

/// The plaintext benchmark body.
pub(crate) const PLAINTEXT: &[u8] = b"Hello, World!";

/// The router times one request in this many (its lookup/handler/framework histograms): the
/// site reports the driver's counters, not those, so it does not pay up to six clock reads and
/// nine atomic adds on every request for them.
pub(crate) const ROUTER_TIME_ONE_IN: u32 = 64;

/// The static files shipped with the binary's crate.
pub(crate) fn default_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/site/static"))
}

/// What the site says about the server it runs in, and how it reads its statistics.
pub(crate) struct SiteOptions {
    /// `threads`, `pool`…
    pub(crate) io: &'static str,
    /// `http1.0`…
    pub(crate) proto: &'static str,
    /// Route lookup algorithm.
    pub(crate) router: RouterKind,
    /// Directory served under `/static/`.
    pub(crate) root: PathBuf,
    /// The bound listening address (port 0 resolved), for the page's `curl` examples.
    pub(crate) addr: SocketAddr,
    /// Request log (Common Log Format) to stderr.
    pub(crate) access_log: bool,
    /// The `/stats` document.
    pub(crate) stats: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
}

/// Builds the site's router.
pub(crate) fn router(options: SiteOptions) -> Result<Router, RouteError> {
    let index: Arc<[u8]> = index_page(&options).into_bytes().into();
    let stats = options.stats.clone();
    let mut builder = Router::builder()
        .kind(options.router)
        .time_one_in(ROUTER_TIME_ONE_IN)
        .get("/", move |_ctx: &mut m05_routing::RequestContext<'_>| {
            Response::html(200, index.clone())
        })
        .get(
            "/plaintext",
            |_ctx: &mut m05_routing::RequestContext<'_>| Response::text(200, PLAINTEXT),
        )
        .post("/echo", |ctx: &mut m05_routing::RequestContext<'_>| {
            Response::new(200)
                .with_content_type("application/octet-stream")
                .with_body(ctx.body().to_vec())
        })
        .get(
            "/stats",
            move |_ctx: &mut m05_routing::RequestContext<'_>| Response::json(200, &stats()),
        )
        .static_dir("/static/*path", &options.root);
    if options.access_log {
        builder = builder.log_to(Arc::new(StderrSink));
    }
    builder.build()
}

fn index_page(options: &SiteOptions) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Zyphos lab</title><link rel="stylesheet" href="/static/style.css"></head>
<body>
<h1>Zyphos</h1>
<p>A network-protocol laboratory that is also a small server. You are talking to
<code>zyphos serve --io {io} --proto {proto} --router {router}</code>, version {version}.</p>
<table>
<tr><th>endpoint</th><th>what it shows</th></tr>
<tr><td><a href="/plaintext"><code>GET /plaintext</code></a></td><td>13 bytes, the plaintext benchmark</td></tr>
<tr><td><a href="/static/hello.txt"><code>GET /static/…</code></a></td><td>files from <code>{root}</code>, traversal blocked</td></tr>
<tr><td><code>POST /echo</code></td><td>your request body, back (<code>curl --data hi http://{addr}/echo</code>)</td></tr>
<tr><td><a href="/stats"><code>GET /stats</code></a></td><td>connections, threads and syscalls, as JSON</td></tr>
</table>
<p>Each switch of <code>zyphos serve --help</code> is one milestone's technique; <code>cargo xtask milestone N</code>
walks them.</p>
</body>
</html>
"#,
        io = options.io,
        proto = options.proto,
        router = router_name(options.router),
        version = env!("CARGO_PKG_VERSION"),
        addr = options.addr,
        root = html_escape(&options.root.display().to_string()),
    )
}

/// The command-line spelling of a router kind.
pub(crate) fn router_name(kind: RouterKind) -> &'static str {
    match kind {
        RouterKind::Linear => "linear",
        RouterKind::Hash => "hash",
        RouterKind::Prefix => "prefix",
        _ => "other",
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
