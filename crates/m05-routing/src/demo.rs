//! The application `zyphos serve --proto http1.0` runs at this milestone: a few routes that show
//! each feature, and the paths the load generator asks for (`/`, `/plaintext`).
//!
//! | route | answers |
//! |---|---|
//! | `GET /`, `GET /plaintext` | `Hello, World!` |
//! | `GET /hello/:name` | `Hello, NAME!` (decoded parameter) |
//! | `GET /users/:id/posts/:post` | the two parameters as JSON |
//! | `GET /search?q=…` | the decoded query parameter |
//! | `POST /echo` | the request body |
//! | `GET /files/*path` | the wildcard value |
//! | `GET /old` | 301 to `/` |
//! | `GET /static/*path` | files under `static_root`, when given |

use std::path::Path;
use std::sync::Arc;

use crate::error::RouteError;
use crate::log::LogSink;
use crate::lookup::RouterKind;
use crate::response::Response;
use crate::router::{Router, RouterBuilder};

/// The body of `/` and `/plaintext`.
pub const HELLO: &[u8] = b"Hello, World!";

/// The demo routes on a builder (so callers can add their own before building).
pub fn routes(kind: RouterKind) -> RouterBuilder {
    Router::builder()
        .kind(kind)
        .get("/", |_ctx: &mut crate::RequestContext<'_>| {
            Response::text(200, HELLO)
        })
        .get("/plaintext", |_ctx: &mut crate::RequestContext<'_>| {
            Response::text(200, HELLO)
        })
        .get("/hello/:name", |ctx: &mut crate::RequestContext<'_>| {
            Response::text(
                200,
                format!("Hello, {}!\n", ctx.param("name").unwrap_or("")),
            )
        })
        .get(
            "/users/:id/posts/:post",
            |ctx: &mut crate::RequestContext<'_>| {
                Response::json(
                    200,
                    &serde_json::json!({
                        "user": ctx.param("id"),
                        "post": ctx.param("post"),
                    }),
                )
            },
        )
        .get("/search", |ctx: &mut crate::RequestContext<'_>| {
            match ctx.query_param("q") {
                Ok(q) => Response::text(200, format!("q={}\n", q.unwrap_or_default())),
                Err(_) => Response::error(400),
            }
        })
        .post("/echo", |ctx: &mut crate::RequestContext<'_>| {
            Response::new(200)
                .with_content_type("application/octet-stream")
                .with_body(ctx.body().to_vec())
        })
        .get("/files/*path", |ctx: &mut crate::RequestContext<'_>| {
            Response::text(200, format!("path={}\n", ctx.param("path").unwrap_or("")))
        })
        .redirect("/old", "/", 301)
}

/// The demo router, logging to `log` and serving `static_root` on `/static/*path` if given.
pub fn router(
    kind: RouterKind,
    static_root: Option<&Path>,
    log: Option<Arc<dyn LogSink>>,
) -> Result<Router, RouteError> {
    let mut b = routes(kind);
    if let Some(root) = static_root {
        b = b.static_dir("/static/*path", root);
    }
    if let Some(log) = log {
        b = b.log_to(log);
    }
    b.build()
}
