//! A small program for profilers: parses `N` generated requests with `m04` or `httparse`.
//! `parse_many m04|httparse N` (used by the `cachegrind` experiment).

use m04_http10::lab::{cost, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "m04".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut rng = generate::Rng::new(42);
    let reqs: Vec<Vec<u8>> = (0..256)
        .map(|_| {
            let h = rng.below(20);
            generate::request(&mut rng, h, 0)
        })
        .collect();
    let f: cost::ParseFn = if which == "httparse" {
        cost::httparse
    } else {
        cost::ours
    };
    let mut total = 0usize;
    for i in 0..n {
        total += f(std::hint::black_box(&reqs[i % reqs.len()]));
    }
    eprintln!("{which}: {n} requests, {total} head bytes");
}
