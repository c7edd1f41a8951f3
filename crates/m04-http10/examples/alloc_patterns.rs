//! Experiment `alloc_patterns`: allocations per request in each phase — parsing (zero), header
//! lookups, the response writer, and a whole HTTP/1.0 session (request in, response out).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use m03_thread_per_conn::{Session, SessionFactory};
use m04_http10::lab::{self, CountingAlloc, Table, generate};
use m04_http10::{ConnInfo, Http10Factory, Limits, Parser, Request, ResponseWriter, Service};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Hello;
impl Service for Hello {
    fn call(&self, req: &Request<'_>, _: &ConnInfo, resp: &mut ResponseWriter<'_>) {
        resp.send(
            200,
            Some("text/plain"),
            &[("X-Path", req.path().as_bytes())],
            b"hello\n",
        );
    }
}

fn per(n: u64, f: impl FnMut()) -> (f64, f64) {
    let mut f = f;
    let (a0, b0) = CountingAlloc::thread_counts();
    for _ in 0..n {
        f();
    }
    let (a1, b1) = CountingAlloc::thread_counts();
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let n = if lab::quick() { 1_000 } else { 10_000 };
        let input = generate::browser();
        let parser = Parser::default();
        let mut t = Table::new(
            "Allocations per request, by phase",
            &["phase", "allocations/request", "bytes/request"],
        );
        let mut row = |name: &str, (a, b): (f64, f64)| {
            t.rows.push(vec![
                name.into(),
                lab::round(a, 2).into(),
                lab::round(b, 0).into(),
            ])
        };
        row(
            "parse (browser request, 860 B)",
            per(n, || {
                std::hint::black_box(parser.parse(&input).is_ok());
            }),
        );
        row(
            "parse + 5 header lookups + iterate headers",
            per(n, || {
                if let Ok(s) = parser.parse(&input) {
                    if let Some(r) = s.complete() {
                        for h in ["host", "cookie", "accept", "referer", "x-none"] {
                            std::hint::black_box(r.header(h));
                        }
                        std::hint::black_box(r.headers().count());
                    }
                }
            }),
        );
        let mut out = Vec::with_capacity(4096);
        row(
            "response writer into a reused buffer",
            per(n, || {
                out.clear();
                let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
                w.send(200, Some("text/plain"), &[("X-A", b"1")], b"hello\n");
            }),
        );
        row(
            "response writer into a fresh Vec",
            per(n, || {
                let mut fresh = Vec::new();
                let mut w = ResponseWriter::new(&mut fresh, false, SystemTime::UNIX_EPOCH);
                w.send(200, Some("text/plain"), &[("X-A", b"1")], b"hello\n");
                std::hint::black_box(fresh.len());
            }),
        );
        let factory = Http10Factory::new(Arc::new(Hello), Limits::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        row(
            "whole session: new, request, response, events",
            per(n, || {
                let now = Instant::now();
                let mut s = factory.new_session(peer, now);
                let used = s.handle_input(now, &input);
                let len = s.pending_output().len();
                s.consume_output(len);
                while s.poll_event().is_some() {}
                std::hint::black_box(used);
            }),
        );
        t.notes = format!(
            "{n} iterations each, counted by a global allocator (this thread only). The session allocates its output buffer and one event per request; the parser allocates nothing."
        );
        t.print();
        Ok(())
    })
}
