//! Criterion benchmark: m04's parser vs httparse on a small GET, a browser-like request
//! (15 headers) and a large-header request, `Throughput::Bytes`.

// criterion_group! generates an undocumented `pub fn benches()`.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use m04_http10::lab::cost;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, input) in cost::inputs() {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("m04", name), &input, |b, i| {
            b.iter(|| cost::ours(black_box(i)))
        });
        group.bench_with_input(BenchmarkId::new("httparse", name), &input, |b, i| {
            b.iter(|| cost::httparse(black_box(i)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
