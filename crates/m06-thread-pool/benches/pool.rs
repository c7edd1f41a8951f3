//! Submit-and-drain cost of 10,000 tiny tasks: our pool (both designs) against a
//! crossbeam-channel pool and `rayon::spawn`, 2 workers each, one group.
//! `cargo bench -p m06-thread-pool --bench pool`.

// criterion_group! generates an undocumented `pub fn benches()`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use m06_thread_pool::lab::{self, ChannelPool};
use m06_thread_pool::{PoolConfig, QueueDesign, ShutdownMode, SubmitError, ThreadPool};

const TASKS: u64 = 10_000;

fn wait_for(done: &AtomicU64, n: u64) {
    while done.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
}

fn pools(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_10k_tiny_tasks");
    group.throughput(Throughput::Elements(TASKS));
    for design in QueueDesign::ALL {
        let pool = ThreadPool::new(PoolConfig::with(2, design)).expect("pool");
        let done = Arc::new(AtomicU64::new(0));
        group.bench_function(format!("m06_{}", design.name()), |b| {
            b.iter(|| {
                let start = done.load(Ordering::Acquire);
                let mut left = TASKS;
                while left > 0 {
                    let n = left.min(64);
                    let d = Arc::clone(&done);
                    match pool.execute_batch((0..n).map(|_| {
                        let d = Arc::clone(&d);
                        move || {
                            black_box(lab::work(16));
                            d.fetch_add(1, Ordering::Release);
                        }
                    })) {
                        Ok(_) => left -= n,
                        Err(SubmitError::QueueFull { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
                wait_for(&done, start + TASKS);
            })
        });
        pool.shutdown(ShutdownMode::Drain);
    }
    {
        let pool = ChannelPool::new(2, 1024);
        let done = Arc::new(AtomicU64::new(0));
        group.bench_function("crossbeam_channel_pool", |b| {
            b.iter(|| {
                let start = done.load(Ordering::Acquire);
                for _ in 0..TASKS {
                    let d = Arc::clone(&done);
                    pool.run(Box::new(move || {
                        black_box(lab::work(16));
                        d.fetch_add(1, Ordering::Release);
                    }));
                }
                wait_for(&done, start + TASKS);
            })
        });
        pool.join();
    }
    {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("rayon pool");
        let done = Arc::new(AtomicU64::new(0));
        group.bench_function("rayon_spawn", |b| {
            b.iter(|| {
                let start = done.load(Ordering::Acquire);
                for _ in 0..TASKS {
                    let d = Arc::clone(&done);
                    pool.spawn(move || {
                        black_box(lab::work(16));
                        d.fetch_add(1, Ordering::Release);
                    });
                }
                wait_for(&done, start + TASKS);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pools);
criterion_main!(benches);
