//! The router: route registration ([`RouterBuilder`]), the handler interface ([`Handler`]),
//! redirects with loop detection, static directories, and [`Router`], which implements m04's
//! [`Service`] so `Http10Factory::new(Arc::new(router), limits)` serves it.
//!
//! One request through [`Router`]:
//!
//! ```text
//! query length/pairs/escapes ──▶ 414 / 400
//! decode + normalise path     ──▶ 400 (bad escape, %2F, %00, ".." above root: traversal counted)
//! lookup (timed, one in N)    ──▶ 404 (path kept in the recent-404 ring) / 405 + Allow
//! target: handler             ──▶ catch_unwind(handler(&mut ctx)) ── panic ──▶ 500, counted
//!         redirect            ──▶ follow the table (cycle or > max hops ──▶ 508, counted) ──▶ 30x
//!         static directory    ──▶ small-file cache hit, or resolve inside the root
//!                                 (symlink out ──▶ 403, counted)
//! render through ResponseWriter (HEAD: m04 drops the body, keeps Content-Length)
//! stats (per route, times, allocations) ──▶ slow log ──▶ Common Log Format line
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use m04_http10::{ConnInfo, Method, Request, ResponseWriter, Service};

use crate::context::RequestContext;
use crate::decode::{decode_path, resolve_path};
use crate::error::{RouteError, RouteWarning};
use crate::log::{LogSink, clf_line};
use crate::lookup::{Lookup, RouteTable, RouterKind};
use crate::pattern::{MethodSet, Params, Pattern, Segment};
use crate::query::{self, Query};
use crate::response::Response;
use crate::static_files::{StaticDir, StaticError};
use crate::stats::{MAX_LOGGED_PATH, RouterStats, SlowRequest, StatsSnapshot};
use crate::sys;

/// Default longest query string, bytes (beyond: 414).
pub const MAX_QUERY_BYTES: usize = 2048;
/// Default most query pairs (beyond: 414).
pub const MAX_QUERY_PAIRS: usize = 64;
/// Default most redirects followed inside one request before answering 508.
pub const MAX_REDIRECT_HOPS: usize = 8;
/// Default timing sample: every request ([`RouterBuilder::time_one_in`]).
pub const DEFAULT_TIME_ONE_IN: u32 = 1;

/// The time between two optional clock readings (zero when the request is not timed).
fn span(from: Option<Instant>, to: Option<Instant>) -> Duration {
    match (from, to) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    }
}

/// The router's per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterLimits {
    /// Longest query string (414 beyond).
    pub max_query_bytes: usize,
    /// Most `&`-separated pairs (414 beyond).
    pub max_query_pairs: usize,
    /// Most redirect hops followed (508 beyond).
    pub max_redirect_hops: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        RouterLimits {
            max_query_bytes: MAX_QUERY_BYTES,
            max_query_pairs: MAX_QUERY_PAIRS,
            max_redirect_hops: MAX_REDIRECT_HOPS,
        }
    }
}

/// A request handler: synchronous, given the context, returns a response.
///
/// Any `Fn(&mut RequestContext<'_>) -> Response + Send + Sync + 'static` is one.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, ctx: &mut RequestContext<'_>) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&mut RequestContext<'_>) -> Response + Send + Sync + 'static,
{
    fn handle(&self, ctx: &mut RequestContext<'_>) -> Response {
        self(ctx)
    }
}

enum Target {
    Handler(Arc<dyn Handler>),
    Redirect { status: u16, to: String },
    Static(Arc<StaticDir>),
}

/// Collects routes; [`RouterBuilder::build`] checks them and builds the index.
pub struct RouterBuilder {
    kind: RouterKind,
    limits: RouterLimits,
    routes: Vec<(String, MethodSet, Target)>,
    log: Option<Arc<dyn LogSink>>,
    slow: Option<Duration>,
    time_one_in: u32,
    errors: Vec<RouteError>,
}

impl Default for RouterBuilder {
    fn default() -> Self {
        RouterBuilder::new()
    }
}

impl RouterBuilder {
    /// An empty builder: prefix trie, default limits, no logging, no slow threshold.
    pub fn new() -> RouterBuilder {
        RouterBuilder {
            kind: RouterKind::default(),
            limits: RouterLimits::default(),
            routes: Vec::new(),
            log: None,
            slow: None,
            time_one_in: DEFAULT_TIME_ONE_IN,
            errors: Vec::new(),
        }
    }

    /// The lookup algorithm.
    pub fn kind(mut self, kind: RouterKind) -> Self {
        self.kind = kind;
        self
    }

    /// Per-request limits.
    pub fn limits(mut self, limits: RouterLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Writes one Common Log Format line per request to `sink`.
    pub fn log_to(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log = Some(sink);
        self
    }

    /// Requests slower than `threshold` are counted, kept, and logged (to the log sink).
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// Times one request in `n` (lookup, handler, framework: three histograms and up to six
    /// clock reads per timed request). `1` (the default) times every request, `0` none; with a
    /// slow threshold set, every request is timed anyway (it must be, to be caught).
    pub fn time_one_in(mut self, n: u32) -> Self {
        self.time_one_in = n;
        self
    }

    /// Registers `handler` for `methods` on `pattern`.
    pub fn route(mut self, methods: &[Method], pattern: &str, handler: impl Handler) -> Self {
        self.routes.push((
            pattern.to_owned(),
            MethodSet::from_slice(methods),
            Target::Handler(Arc::new(handler)),
        ));
        self
    }

    /// `GET` (and so `HEAD`) route.
    pub fn get(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&[Method::Get], pattern, handler)
    }

    /// `POST` route.
    pub fn post(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&[Method::Post], pattern, handler)
    }

    /// `PUT` route.
    pub fn put(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&[Method::Put], pattern, handler)
    }

    /// `DELETE` route.
    pub fn delete(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&[Method::Delete], pattern, handler)
    }

    /// A route for every method.
    pub fn any(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&Method::ALL, pattern, handler)
    }

    /// Redirects `from` (a pattern) to `to` with `status` (301, 302, 303, 307, 308), for every
    /// method. `to` may use `from`'s parameters (`/old/:id` → `/new/:id`), may be relative
    /// (resolved against the request path, RFC 3986 §5.2), or absolute `http(s)://` (not
    /// followed). Chains are followed inside the server; loops are refused at build time and
    /// answered 508 at run time.
    pub fn redirect(mut self, from: &str, to: &str, status: u16) -> Self {
        self.routes.push((
            from.to_owned(),
            MethodSet::all(),
            Target::Redirect {
                status,
                to: to.to_owned(),
            },
        ));
        self
    }

    /// Serves files under `root` on `pattern`, which must end with a wildcard
    /// (`/static/*path`). `GET` and `HEAD`.
    pub fn static_dir(mut self, pattern: &str, root: impl AsRef<Path>) -> Self {
        match StaticDir::new(root.as_ref()) {
            Ok(dir) => self.routes.push((
                pattern.to_owned(),
                MethodSet::from_slice(&[Method::Get]),
                Target::Static(Arc::new(dir)),
            )),
            Err(e) => self.errors.push(RouteError::StaticRoot {
                root: root.as_ref().display().to_string(),
                reason: e.to_string(),
            }),
        }
        self
    }

    /// Checks everything and builds the index: bad patterns, unreachable routes, static routes
    /// without a wildcard, redirect targets with unknown parameters, redirect loops.
    pub fn build(self) -> Result<Router, RouteError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let mut table_routes = Vec::with_capacity(self.routes.len());
        let mut targets = Vec::with_capacity(self.routes.len());
        for (raw, methods, target) in self.routes {
            let pattern = Pattern::parse(&raw)?;
            match &target {
                Target::Static(_)
                    if !matches!(pattern.segments().last(), Some(Segment::Wildcard(_))) =>
                {
                    return Err(RouteError::StaticNeedsWildcard(raw));
                }
                Target::Redirect { to, .. } => {
                    let names: Vec<&str> = pattern.param_names().collect();
                    let unknown = to.split('/').any(|s| {
                        s.strip_prefix(':')
                            .or_else(|| s.strip_prefix('*'))
                            .is_some_and(|n| !names.contains(&n))
                    });
                    if unknown {
                        return Err(RouteError::UnknownTargetParam {
                            from: raw,
                            target: to.clone(),
                        });
                    }
                }
                _ => {}
            }
            table_routes.push((pattern, methods));
            targets.push(target);
        }
        let (table, warnings) = RouteTable::build(self.kind, table_routes)?;
        let router = Router {
            stats: RouterStats::new(table.len()),
            table,
            targets,
            warnings,
            limits: self.limits,
            log: self.log,
            slow: self.slow,
            time_one_in: self.time_one_in,
        };
        // Registration-time loop detection: walk the chain from a sample path of every redirect.
        for i in 0..router.table.len() {
            if matches!(router.targets[i], Target::Redirect { .. }) {
                let start = router.table.pattern(i).instantiate(&[]);
                if let Err(chain) = router.follow_redirects(&start) {
                    return Err(RouteError::RedirectLoop { chain });
                }
            }
        }
        Ok(router)
    }
}

/// The router. See the [module docs](self).
pub struct Router {
    table: RouteTable,
    targets: Vec<Target>,
    warnings: Vec<RouteWarning>,
    limits: RouterLimits,
    log: Option<Arc<dyn LogSink>>,
    slow: Option<Duration>,
    time_one_in: u32,
    stats: RouterStats,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("kind", &self.table.kind())
            .field("routes", &self.table.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Substitutes `:name`/`*name` segments of `template` with `params`.
fn fill_template(template: &str, params: &Params<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    for (i, seg) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match seg.strip_prefix(':').or_else(|| seg.strip_prefix('*')) {
            Some(name) => out.push_str(params.get(name).unwrap_or("")),
            None => out.push_str(seg),
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://")
}

impl Router {
    /// A builder.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::new()
    }

    /// The route table (lookup without dispatch, for experiments).
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The lookup algorithm.
    pub fn kind(&self) -> RouterKind {
        self.table.kind()
    }

    /// Partial-shadowing warnings found at build time.
    pub fn warnings(&self) -> &[RouteWarning] {
        &self.warnings
    }

    /// The limits.
    pub fn limits(&self) -> RouterLimits {
        self.limits
    }

    /// Finds the route for `method` and a decoded path (no allocation).
    pub fn lookup<'a>(&'a self, method: Method, path: &'a str) -> Lookup<'a> {
        self.table.lookup(method, path)
    }

    /// Follows redirects from `start`: `Ok(None)` when `start` is not a redirect,
    /// `Ok(Some(location))` for the final target, `Err(chain)` for a loop or a chain longer
    /// than [`RouterLimits::max_redirect_hops`].
    pub fn follow_redirects(&self, start: &str) -> Result<Option<String>, Vec<String>> {
        let mut chain: Vec<String> = vec![start.to_owned()];
        let mut location: Option<String> = None;
        loop {
            let next = {
                let Some(current) = chain.last() else {
                    return Ok(location);
                };
                match self.table.lookup(Method::Get, current) {
                    Lookup::Found { route, params } => match &self.targets[route] {
                        Target::Redirect { to, .. } => {
                            let filled = fill_template(to, &params);
                            Some(if is_external(&filled) {
                                filled
                            } else {
                                resolve_path(current, &filled)
                            })
                        }
                        _ => None,
                    },
                    _ => None,
                }
            };
            let Some(next) = next else {
                return Ok(location);
            };
            if is_external(&next) {
                return Ok(Some(next));
            }
            let next_path = next.split(['?', '#']).next().unwrap_or("").to_owned();
            let looped = chain.contains(&next_path);
            chain.push(next_path);
            if looped || chain.len() > self.limits.max_redirect_hops + 1 {
                return Err(chain);
            }
            location = Some(next);
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        let requests = s.requests.load(Ordering::Relaxed);
        let not_found = s.not_found.load(Ordering::Relaxed);
        let alloc_requests = s.alloc_requests.load(Ordering::Relaxed);
        StatsSnapshot {
            requests,
            per_route: (0..self.table.len())
                .map(|i| {
                    (
                        self.table.pattern(i).as_str().to_owned(),
                        self.table.methods(i).allow_header(),
                        s.per_route[i].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            not_found,
            not_found_rate: if requests == 0 {
                0.0
            } else {
                not_found as f64 / requests as f64
            },
            recent_404: s
                .recent_404
                .lock()
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            method_not_allowed: s.method_not_allowed.load(Ordering::Relaxed),
            bad_request: s.bad_request.load(Ordering::Relaxed),
            uri_too_long: s.uri_too_long.load(Ordering::Relaxed),
            traversal_blocked: s.traversal_blocked.load(Ordering::Relaxed),
            handler_panics: s.handler_panics.load(Ordering::Relaxed),
            redirect_loops: s.redirect_loops.load(Ordering::Relaxed),
            server_errors: s.server_errors.load(Ordering::Relaxed),
            slow_requests: s.slow_requests.load(Ordering::Relaxed),
            recent_slow: s
                .recent_slow
                .lock()
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            lookup: s.lookup_ns.summary(),
            handler: s.handler_ns.summary(),
            framework: s.framework_ns.summary(),
            alloc_requests,
            allocs_per_request: if alloc_requests == 0 {
                0.0
            } else {
                s.allocs_total.load(Ordering::Relaxed) as f64 / alloc_requests as f64
            },
            allocs_max: s.allocs_max.load(Ordering::Relaxed),
        }
    }

    /// Routes, decides and answers one request (what [`Service::call`] does).
    pub fn dispatch(&self, req: &Request<'_>, conn: &ConnInfo, w: &mut ResponseWriter<'_>) {
        let allocs_before = sys::thread_allocations();
        let s = &self.stats;
        let nth = s.requests.fetch_add(1, Ordering::Relaxed);
        let timed =
            self.slow.is_some() || (self.time_one_in > 0 && nth % u64::from(self.time_one_in) == 0);
        let clock = || timed.then(Instant::now);
        let start = clock();
        let method = req.method();
        let mut lookup_time = Duration::ZERO;
        let mut handler_time = Duration::ZERO;
        let mut matched: Option<usize> = None;
        // The target split once at `?` (what `req.path()` and `req.query()` each search for).
        let target = req.target();
        let (raw_path, raw_query) = match target.bytes().position(|b| b == b'?') {
            Some(q) => (&target[..q], Some(&target[q + 1..])),
            None => (target, None),
        };
        let response = 'respond: {
            if let Some(q) = raw_query {
                if let Err(e) =
                    query::check(q, self.limits.max_query_bytes, self.limits.max_query_pairs)
                {
                    if e.status() == 414 {
                        s.uri_too_long.fetch_add(1, Ordering::Relaxed);
                    } else {
                        s.bad_request.fetch_add(1, Ordering::Relaxed);
                    }
                    break 'respond Response::error(e.status());
                }
            }
            let path = match decode_path(raw_path) {
                Ok(p) => p,
                Err(e) => {
                    s.bad_request.fetch_add(1, Ordering::Relaxed);
                    if e.is_traversal() {
                        s.traversal_blocked.fetch_add(1, Ordering::Relaxed);
                    }
                    break 'respond Response::error(e.status());
                }
            };
            let t = clock();
            let found = self.table.lookup(method, &path);
            lookup_time = span(t, clock());
            match found {
                Lookup::NotFound => Response::error(404),
                Lookup::MethodNotAllowed(allow) => {
                    s.method_not_allowed.fetch_add(1, Ordering::Relaxed);
                    Response::error(405).with_header("Allow", allow.allow_header())
                }
                Lookup::Found { route, params } => {
                    matched = Some(route);
                    s.per_route[route].fetch_add(1, Ordering::Relaxed);
                    match &self.targets[route] {
                        Target::Handler(h) => {
                            let mut ctx = RequestContext {
                                request: req,
                                conn,
                                path: &path,
                                params,
                                route: Some(self.table.pattern(route).as_str()),
                                query: Query::new(raw_query.unwrap_or("")),
                            };
                            let t = clock();
                            let result = catch_unwind(AssertUnwindSafe(|| h.handle(&mut ctx)));
                            handler_time = span(t, clock());
                            match result {
                                Ok(r) => r,
                                Err(_) => {
                                    s.handler_panics.fetch_add(1, Ordering::Relaxed);
                                    Response::error(500)
                                }
                            }
                        }
                        Target::Redirect { status, .. } => match self.follow_redirects(&path) {
                            Ok(Some(location)) => Response::redirect(*status, &location),
                            Ok(None) => Response::error(500),
                            Err(_) => {
                                s.redirect_loops.fetch_add(1, Ordering::Relaxed);
                                Response::error(508)
                            }
                        },
                        Target::Static(dir) => {
                            let rel = params.iter().last().map_or("", |(_, v)| v);
                            match dir.serve_at(rel, conn.now) {
                                Ok(r) => r,
                                Err(e) => {
                                    if e == StaticError::Traversal {
                                        s.traversal_blocked.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Response::error(e.status())
                                }
                            }
                        }
                    }
                }
            }
        };
        let mut status = response.status();
        let bytes = match response.render(w) {
            Ok(n) => n,
            Err(fallback) => {
                status = fallback.status();
                fallback.render(w).unwrap_or(0)
            }
        };
        match status {
            404 => s.record_404(raw_path),
            500..=599 => {
                s.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        let total = span(start, clock());
        if timed {
            s.record_times(lookup_time, handler_time, total);
        }
        if timed && self.slow.is_some_and(|limit| total >= limit) {
            let mut target = req.target().to_owned();
            target.truncate(MAX_LOGGED_PATH);
            let slow = SlowRequest {
                request: format!("{} {target}", method.as_str()),
                route: matched.map(|i| self.table.pattern(i).as_str().to_owned()),
                status,
                total_us: total.as_micros() as u64,
                handler_us: handler_time.as_micros() as u64,
            };
            if let Some(log) = &self.log {
                log.write_line(&format!(
                    "slow request: {} route={} status={} total={}us handler={}us",
                    slow.request,
                    slow.route.as_deref().unwrap_or("-"),
                    status,
                    slow.total_us,
                    slow.handler_us
                ));
            }
            s.record_slow(slow);
        }
        if let Some(log) = &self.log {
            log.write_line(&clf_line(
                conn.peer.ip(),
                conn.wall,
                method.as_str(),
                req.target(),
                req.version().as_str(),
                status,
                bytes,
            ));
        }
        if sys::is_installed() {
            s.record_allocs(sys::thread_allocations().saturating_sub(allocs_before));
        }
    }
}

impl Service for Router {
    fn call(&self, request: &Request<'_>, ctx: &ConnInfo, response: &mut ResponseWriter<'_>) {
        self.dispatch(request, ctx, response);
    }
}
