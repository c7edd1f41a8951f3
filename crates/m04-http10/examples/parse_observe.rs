//! Experiments `parse_time_histogram`, `transition_counts` and `state_log` (first argument
//! picks one): per-request parse time distribution over generated requests, state-machine
//! transition counters over the same workload, and the state change log of one sample request.

use std::time::Instant;

use hdrhistogram::Histogram;
use m04_http10::lab::{self, Table, generate};
use m04_http10::{Parser, TransitionCounts, TransitionLog};

fn workload(n: usize) -> Vec<Vec<u8>> {
    let mut rng = generate::Rng::new(0x0b5e_4e00);
    (0..n)
        .map(|_| {
            let h = rng.below(25);
            let body = if rng.chance(20) { rng.below(512) } else { 0 };
            generate::request(&mut rng, h, body)
        })
        .collect()
}

fn histogram(quick: bool) -> std::io::Result<Table> {
    let reqs = workload(if quick { 2_000 } else { 20_000 });
    let parser = Parser::default();
    let mut by_size: Vec<(usize, usize, Histogram<u64>)> =
        [(0, 256), (256, 512), (512, 1024), (1024, usize::MAX)]
            .into_iter()
            .map(|(a, b)| Ok((a, b, Histogram::new(3).map_err(std::io::Error::other)?)))
            .collect::<std::io::Result<_>>()?;
    let mut all = Histogram::<u64>::new(3).map_err(std::io::Error::other)?;
    for _ in 0..3 {
        for r in &reqs {
            let t = Instant::now();
            let ok = std::hint::black_box(parser.parse(std::hint::black_box(r))).is_ok();
            let ns = t.elapsed().as_nanos() as u64;
            assert!(ok);
            let _ = all.record(ns);
            if let Some(h) = by_size
                .iter_mut()
                .find(|(a, b, _)| r.len() >= *a && r.len() < *b)
            {
                let _ = h.2.record(ns);
            }
        }
    }
    let mut t = Table::new(
        "Parse time per request (ns, Instant around each parse)",
        &["request bytes", "samples", "p50", "p90", "p99", "max"],
    );
    let mut push = |label: String, h: &Histogram<u64>| {
        t.rows.push(vec![
            label.into(),
            h.len().into(),
            h.value_at_quantile(0.5).into(),
            h.value_at_quantile(0.9).into(),
            h.value_at_quantile(0.99).into(),
            h.max().into(),
        ]);
    };
    for (a, b, h) in &by_size {
        let label = if *b == usize::MAX {
            format!("≥{a}")
        } else {
            format!("{a}–{b}")
        };
        push(label, h);
    }
    push("all".into(), &all);
    t.notes = format!(
        "{} generated requests (0–24 headers, 20% with bodies) parsed 3 times each; the ~20–40 ns cost of reading the clock is included. {}",
        reqs.len(),
        lab::machine()
    );
    Ok(t)
}

fn counts(quick: bool) -> Table {
    let reqs = workload(if quick { 2_000 } else { 20_000 });
    let mut rng = generate::Rng::new(7);
    let parser = Parser::default();
    let mut c = TransitionCounts::default();
    let mut failed = 0;
    for r in &reqs {
        // Every fourth request is mutated, so failure transitions show up too.
        let input = if rng.chance(25) {
            generate::mutate(&mut rng, r)
        } else {
            r.clone()
        };
        if parser.parse_traced(&input, &mut c).is_err() {
            failed += 1;
        }
    }
    let mut t = Table::new(
        "State machine transitions",
        &["from", "to", "count", "per request"],
    );
    for (from, to, n) in c.nonzero() {
        t.rows.push(vec![
            from.name().into(),
            to.name().into(),
            n.into(),
            lab::round(n as f64 / reqs.len() as f64, 2).into(),
        ]);
    }
    t.notes = format!(
        "{} requests (25% with one random mutation; {failed} rejected), counted by the TransitionCounts observer; the default NoTrace observer compiles to nothing.",
        reqs.len()
    );
    t
}

fn log() -> Table {
    let sample = b"POST /form?id=7 HTTP/1.0\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let mut l = TransitionLog::default();
    let ok = Parser::default().parse_traced(sample, &mut l).is_ok();
    let mut t = Table::new(
        "Parser state change log for one request",
        &["offset", "from", "to", "next bytes"],
    );
    for (from, to, off) in &l.entries {
        let next: String = String::from_utf8_lossy(
            &sample[(*off).min(sample.len())..(*off + 12).min(sample.len())],
        )
        .escape_debug()
        .to_string();
        t.rows.push(vec![
            (*off).into(),
            from.name().into(),
            to.name().into(),
            next.into(),
        ]);
    }
    t.notes = format!(
        "Sample: {:?}; parsed: {ok}. Offsets are byte positions where the new state begins.",
        String::from_utf8_lossy(sample)
    );
    t
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let which = std::env::args().nth(1).unwrap_or_default();
        let quick = lab::quick();
        let table = match which.as_str() {
            "histogram" => histogram(quick)?,
            "counts" => counts(quick),
            "log" => log(),
            other => {
                return Err(std::io::Error::other(format!(
                    "unknown experiment {other:?}: histogram | counts | log"
                )));
            }
        };
        table.print();
        Ok(())
    })
}
