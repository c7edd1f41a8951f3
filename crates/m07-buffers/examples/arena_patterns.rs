//! Experiment `arena_patterns`: per-request scratch allocations (16 small strings of 20–60
//! bytes, one 512-byte buffer) made with `malloc` (`String`/`Vec`, freed at the end of the
//! request) vs the bump [`Arena`] reset after each request (with and without debug poisoning).
//! Heap allocations per request come from a counting global allocator.

use std::hint::black_box;
use std::time::Instant;

use m07_buffers::Arena;
use m07_buffers::lab::{self, Table};
use m07_buffers::sys::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PIECES: [&str; 16] = [
    "host: example.com",
    "user-agent: Mozilla/5.0 (X11; Linux x86_64) zyphos-lab",
    "accept: text/html,application/xhtml+xml",
    "accept-language: en-GB,en;q=0.9",
    "accept-encoding: gzip, deflate",
    "connection: keep-alive",
    "cookie: session=0123456789abcdef",
    "cache-control: max-age=0",
    "/static/css/site.css",
    "if-none-match: \"5f3e-abc\"",
    "referer: http://example.com/",
    "x-request-id: 7f9d2c",
    "dnt: 1",
    "upgrade-insecure-requests: 1",
    "sec-fetch-mode: navigate",
    "priority: u=0, i",
];

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let requests = if lab::quick() { 20_000 } else { 300_000 };
        let mut t = Table::new(
            "Per-request scratch: malloc vs arena (16 strings + 512 B per request)",
            &[
                "pattern",
                "ns per request",
                "heap allocations per request",
                "arena high-water B",
            ],
        );
        // malloc: each piece its own String, freed when the request ends.
        let a0 = CountingAlloc::allocations();
        let tm = Instant::now();
        for _ in 0..requests {
            let mut owned: Vec<String> = Vec::with_capacity(PIECES.len());
            for p in PIECES {
                owned.push(black_box(p).to_owned());
            }
            let scratch = vec![0u8; 512];
            black_box((&owned, &scratch));
        }
        let ns = tm.elapsed().as_nanos() as f64 / requests as f64;
        let allocs = (CountingAlloc::allocations() - a0) as f64 / requests as f64;
        eprintln!("malloc: {ns:.0} ns/request, {allocs:.1} allocations");
        t.rows.push(vec![
            "malloc (String/Vec per piece)".into(),
            lab::round(ns, 1).into(),
            lab::round(allocs, 2).into(),
            "-".into(),
        ]);
        for poison in [false, true] {
            let mut arena =
                Arena::new(8 * 1024, poison).map_err(|e| std::io::Error::other(e.to_string()))?;
            let a0 = CountingAlloc::allocations();
            let tm = Instant::now();
            for _ in 0..requests {
                {
                    let mut n = 0;
                    for p in PIECES {
                        n += arena.copy_str(black_box(p)).map_or(0, str::len);
                    }
                    let scratch = arena.alloc_bytes(512, 64);
                    black_box((n, scratch));
                }
                arena.reset();
            }
            let ns = tm.elapsed().as_nanos() as f64 / requests as f64;
            let allocs = (CountingAlloc::allocations() - a0) as f64 / requests as f64;
            let hw = arena.stats().high_water;
            eprintln!("arena (poison {poison}): {ns:.0} ns/request, {allocs:.1} allocations");
            t.rows.push(vec![
                if poison {
                    "arena + reset, poison on reset (debug)".into()
                } else {
                    "arena + reset".into()
                },
                lab::round(ns, 1).into(),
                lab::round(allocs, 2).into(),
                hw.into(),
            ]);
        }
        t.notes = format!(
            "{requests} requests per row. The arena's allocation is a pointer bump and its free is \
             one store at reset; malloc pays a call per piece and per free. Fragmentation is \
             impossible inside a request and reset returns everything at once; the cost is that \
             nothing is freed before the request ends (size the arena for the worst request; a \
             full arena returns None). {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
