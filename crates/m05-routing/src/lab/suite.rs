//! The error-handling suite (tests and the `error_handling_suite` exit check): every failure
//! path, bytes in → response bytes out, through a real `Http10Session` driven by m03's
//! `PipeDriver` (with short reads and writes on every other case).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use m03_thread_per_conn::testing::Faults;

use crate::context::RequestContext;
use crate::error::RouteError;
use crate::lab::{Parsed, get, parse_response, request};
use crate::response::Response;
use crate::router::{Router, RouterLimits};

/// One case's verdict.
#[derive(Debug, Clone)]
pub struct Case {
    /// What was tried.
    pub name: String,
    /// Whether the server did the right thing.
    pub pass: bool,
    /// What it did.
    pub detail: String,
}

/// A scratch directory with a static root, a file outside it, and a symlink pointing out.
#[derive(Debug)]
pub struct Fixture {
    /// The scratch directory (removed on drop).
    pub dir: PathBuf,
    /// The static root inside it.
    pub root: PathBuf,
}

/// What the secret file outside the root contains (must never appear in a response).
pub const SECRET: &str = "TOP-SECRET-OUTSIDE-ROOT";

impl Fixture {
    /// Creates `…/m05-<pid>-<nanos>/{secret.txt, www/{index.html, css/site.css, empty/, out → ../secret.txt, outdir → ..}}`.
    pub fn new() -> std::io::Result<Fixture> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("m05-{}-{nanos}", std::process::id()));
        let root = dir.join("www");
        std::fs::create_dir_all(root.join("css"))?;
        std::fs::create_dir_all(root.join("empty"))?;
        std::fs::write(dir.join("secret.txt"), SECRET)?;
        std::fs::write(root.join("index.html"), "<h1>index</h1>\n")?;
        std::fs::write(root.join("css/site.css"), "body { color: black }\n")?;
        std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("out"))?;
        std::os::unix::fs::symlink(&dir, root.join("outdir"))?;
        std::os::unix::fs::symlink(root.join("css/site.css"), root.join("inside"))?;
        Ok(Fixture { dir, root })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Ctx<'a> = RequestContext<'a>;

/// The router under test: a few routes, a static root, redirects, a panicking handler.
pub fn suite_router(root: &Path) -> Result<Router, RouteError> {
    Router::builder()
        .get("/users/:id", |c: &mut Ctx<'_>| {
            Response::text(200, format!("user {}", c.param("id").unwrap_or("")))
        })
        .post("/users", |_: &mut Ctx<'_>| Response::text(201, "created"))
        .get("/users", |_: &mut Ctx<'_>| Response::text(200, "list"))
        .get("/search", |_: &mut Ctx<'_>| Response::text(200, "ok"))
        .get("/panic", |_: &mut Ctx<'_>| -> Response {
            panic!("deliberate handler panic (error_handling_suite)")
        })
        .static_dir("/static/*path", root)
        .redirect("/old/:id", "/users/:id", 301)
        .redirect("/w/*rest", "/*rest", 302)
        .limits(RouterLimits {
            max_query_bytes: 1024,
            ..RouterLimits::default()
        })
        .build()
}

fn run(router: &Arc<Router>, req: &[u8], i: usize) -> Parsed {
    let faults = if i % 2 == 0 {
        Faults::default()
    } else {
        Faults {
            max_read: 3,
            max_write: 7,
            seed: i as u64 + 1,
            ..Faults::default()
        }
    };
    parse_response(&crate::lab::exchange_with(router, req, faults))
}

/// Runs every case. Needs a fixture (static files) and a fresh router.
pub fn error_handling() -> std::io::Result<Vec<Case>> {
    let fx = Fixture::new()?;
    let router = Arc::new(suite_router(&fx.root).map_err(std::io::Error::other)?);
    let mut cases = Vec::new();
    let mut n = 0usize;
    let mut expect = |name: &str, req: Vec<u8>, ok: &dyn Fn(&Parsed) -> bool| {
        n += 1;
        let p = run(&router, &req, n);
        let leaked = p.text().contains(SECRET);
        cases.push(Case {
            name: name.to_owned(),
            pass: ok(&p) && !leaked,
            detail: format!(
                "{} {}{}",
                p.status,
                p.header("Allow")
                    .map(|a| format!("Allow: {a} "))
                    .unwrap_or_default(),
                if leaked { "LEAKED THE SECRET" } else { "" }
            ),
        });
    };
    expect("404 for an unknown path", get("/nope"), &|p| {
        p.status == 404
    });
    expect(
        "405 with Allow for a known path, wrong method",
        request("DELETE", "/users"),
        &|p| p.status == 405 && p.header("Allow") == Some("GET, HEAD, POST"),
    );
    expect("400 for a malformed escape (%4)", get("/users/%4"), &|p| {
        p.status == 400
    });
    expect(
        "400 for an escape that is not UTF-8 (%FF)",
        get("/users/%FF"),
        &|p| p.status == 400,
    );
    expect("400 for an encoded NUL (%00)", get("/users/a%00"), &|p| {
        p.status == 400
    });
    expect(
        "414 for an oversized query string",
        get(&format!("/search?q={}", "x".repeat(2000))),
        &|p| p.status == 414,
    );
    expect(
        "200 for a query string at the limit",
        get(&format!("/search?{}", "x".repeat(1024))),
        &|p| p.status == 200,
    );
    expect("static file served", get("/static/css/site.css"), &|p| {
        p.status == 200 && p.text() == "body { color: black }\n"
    });
    expect("static directory → index.html", get("/static/"), &|p| {
        p.text() == "<h1>index</h1>\n"
    });
    expect(
        "static HEAD: length, no body",
        request("HEAD", "/static/index.html"),
        &|p| p.status == 200 && p.header("Content-Length") == Some("15") && p.body.is_empty(),
    );
    expect(
        "symlink inside the root is served",
        get("/static/inside"),
        &|p| p.status == 200,
    );
    expect(
        "traversal: /static/../../secret.txt",
        get("/static/../../secret.txt"),
        &|p| p.status == 400,
    );
    expect(
        "traversal: /static/../secret.txt leaves the mount, not the root",
        get("/static/../secret.txt"),
        &|p| p.status == 404,
    );
    expect(
        "traversal: %2e%2e",
        get("/static/%2e%2e/%2e%2e/secret.txt"),
        &|p| p.status == 400,
    );
    expect(
        "traversal: %2E%2e mixed case",
        get("/static/css/%2E%2e/%2e%2E/%2e%2e/secret.txt"),
        &|p| p.status == 400,
    );
    expect(
        "traversal: %2f inside a segment",
        get("/static/..%2f..%2fsecret.txt"),
        &|p| p.status == 400,
    );
    expect(
        "traversal: %2F inside a segment",
        get("/static/css%2F..%2F..%2Fsecret.txt"),
        &|p| p.status == 400,
    );
    expect(
        "traversal: symlink to a file out of the root",
        get("/static/out"),
        &|p| p.status == 403,
    );
    expect(
        "traversal: symlink to a directory out of the root",
        get("/static/outdir/secret.txt"),
        &|p| p.status == 403,
    );
    expect("redirect followed and collapsed", get("/old/7"), &|p| {
        p.status == 301 && p.header("Location") == Some("/users/7")
    });
    expect(
        "runtime redirect loop → 508",
        get(&format!("{}/users", "/w".repeat(12))),
        &|p| p.status == 508,
    );
    expect("handler panic → 500", get("/panic"), &|p| p.status == 500);
    expect(
        "router still serves after the panic",
        get("/users/9"),
        &|p| p.text() == "user 9",
    );
    let s = router.stats();
    let mut counted = |name: &str, pass: bool, detail: String| {
        cases.push(Case {
            name: name.to_owned(),
            pass,
            detail,
        })
    };
    counted(
        "panic counted",
        s.handler_panics == 1,
        format!("handler_panics = {}", s.handler_panics),
    );
    counted(
        "traversal attempts counted",
        s.traversal_blocked == 8,
        format!(
            "traversal_blocked = {} (want 8: 3 above root, 2 %2F, 2 symlinks, 1 %00)",
            s.traversal_blocked
        ),
    );
    counted(
        "414 counted",
        s.uri_too_long == 1,
        format!("uri_too_long = {}", s.uri_too_long),
    );
    counted(
        "404s counted with paths",
        s.not_found == 2 && s.recent_404.contains(&"/nope".to_owned()),
        format!("not_found = {}, recent = {:?}", s.not_found, s.recent_404),
    );
    counted(
        "redirect loop counted",
        s.redirect_loops == 1,
        format!("redirect_loops = {}", s.redirect_loops),
    );
    // Registration-time loop detection.
    let cyc = Router::builder()
        .redirect("/a", "/b", 301)
        .redirect("/b", "/a", 301)
        .build();
    counted(
        "redirect cycle refused at registration",
        matches!(cyc, Err(RouteError::RedirectLoop { .. })),
        match cyc {
            Err(e) => e.to_string(),
            Ok(_) => "built".into(),
        },
    );
    Ok(cases)
}
