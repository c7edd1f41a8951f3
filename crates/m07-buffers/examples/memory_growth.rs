//! Experiment `memory_growth`: resident memory (`VmRSS`), heap allocations (counting global
//! allocator) and pool high-water over rounds of keep-alive requests on the m07 request path.
//! A pool-backed server's memory is fixed at start-up: RSS should stay flat after warm-up.

use std::net::Shutdown;

use m07_buffers::PoolConfig;
use m07_buffers::lab::{self, Client, GET_DYN, Table, spawn_local_server};
use m07_buffers::serve::ServeConfig;
use m07_buffers::sys::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (rounds, per_round) = if lab::quick() {
            (5, 1_000)
        } else {
            (10, 10_000)
        };
        let (addr, server) = spawn_local_server(PoolConfig::default(), ServeConfig::default(), 1)?;
        let mut c = Client::connect(addr, 4096)?;
        let mut t = Table::new(
            "Memory over time on the pooled request path",
            &[
                "round",
                "requests so far",
                "VmRSS KiB",
                "heap allocations in round",
            ],
        );
        let mut total = 0;
        for r in 0..=rounds {
            let a0 = CountingAlloc::allocations();
            for _ in 0..per_round {
                c.request(GET_DYN)?;
            }
            total += per_round;
            let allocs = CountingAlloc::allocations() - a0;
            let rss = rss_kib();
            eprintln!("round {r}: {total} requests, RSS {rss} KiB, {allocs} allocations");
            t.rows.push(vec![
                if r == 0 { "warm-up".into() } else { r.into() },
                total.into(),
                rss.into(),
                allocs.into(),
            ]);
        }
        c.stream().shutdown(Shutdown::Both)?;
        let (stats, _) = server
            .join()
            .map_err(|_| std::io::Error::other("server panicked"))??;
        t.notes = format!(
            "{per_round} keep-alive GET /dyn per round on one connection. Pool: {} buffers of {} \
             KiB ({} KiB mapped, touched only as used), high-water {}. {}",
            stats.capacity,
            stats.buf_size / 1024,
            stats.slab_bytes / 1024,
            stats.high_water,
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
