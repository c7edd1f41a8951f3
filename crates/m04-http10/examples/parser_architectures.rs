//! Experiment `parser_architectures`: the same request through different parser
//! architectures — one-shot zero-copy (m04, httparse), re-parse-from-start as bytes trickle in
//! (what a sans-IO session does when a peer sends 1, 16 or 256 bytes at a time), and parse then
//! copy into owned Strings (what a non-borrowing API costs: allocations per request).

use std::hint::black_box;
use std::time::Instant;

use m04_http10::lab::{self, CountingAlloc, Table, cost, generate};
use m04_http10::{Parser, Status};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn owned(buf: &[u8]) -> usize {
    match Parser::default().parse(buf) {
        Ok(Status::Complete(r)) => {
            let headers: Vec<(String, Vec<u8>)> = r
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect();
            let target = r.target().to_owned();
            black_box((&headers, &target));
            r.head_len()
        }
        _ => 0,
    }
}

/// Feeds `buf` in `chunk`-byte steps, re-parsing from the start each time (as a session does).
fn trickle(f: cost::ParseFn, buf: &[u8], chunk: usize) -> usize {
    let mut have = 0;
    loop {
        have = (have + chunk).min(buf.len());
        let n = f(&buf[..have]);
        if n > 0 || have == buf.len() {
            return n;
        }
    }
}

fn time(iters: u32, mut f: impl FnMut() -> usize) -> (f64, f64) {
    let (a0, _) = CountingAlloc::thread_counts();
    let t = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
    let (a1, _) = CountingAlloc::thread_counts();
    (ns, (a1 - a0) as f64 / f64::from(iters))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let iters = if lab::quick() { 2_000 } else { 20_000 };
        let input = generate::browser();
        let mut t = Table::new(
            "Parser architectures on the browser-like request (860 B, 15 headers)",
            &[
                "architecture",
                "ns/request",
                "allocations/request",
                "vs one-shot m04",
            ],
        );
        let (base, _) = time(iters, || cost::ours(&input));
        let mut row = |name: &str, (ns, allocs): (f64, f64)| {
            t.rows.push(vec![
                name.into(),
                lab::round(ns, 0).into(),
                lab::round(allocs, 2).into(),
                lab::round(ns / base, 2).into(),
            ]);
        };
        row(
            "m04 one-shot, zero-copy views",
            time(iters, || cost::ours(&input)),
        );
        row(
            "httparse one-shot, zero-copy",
            time(iters, || cost::httparse(&input)),
        );
        row(
            "m04 + copy into owned Strings",
            time(iters, || owned(&input)),
        );
        for chunk in [256usize, 16, 1] {
            let n = if chunk == 1 { iters / 20 } else { iters / 4 };
            row(
                &format!("m04 re-parse from start, {chunk}-byte arrivals"),
                time(n.max(10), || trickle(cost::ours, &input, chunk)),
            );
            row(
                &format!("httparse re-parse from start, {chunk}-byte arrivals"),
                time(n.max(10), || trickle(cost::httparse, &input, chunk)),
            );
        }
        t.notes = format!(
            "{iters} iterations per row (fewer for trickled input), release build, one thread, allocations counted by a global allocator. \
             Re-parsing from the start costs O(n^2/chunk) for a trickling peer: bounded by max_head and by the header timeout. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
