//! Exit check `steady_state_allocs`: heap allocations, counted by a counting global allocator
//! (process-wide: server thread and client thread), over 10,000 keep-alive requests after a
//! 1,000-request warm-up, on one real loopback connection.
//!
//! The server is the m07 request path: `readv` into a ring over a pooled read buffer, the m04
//! `Parser` over the ring's bytes, the handler (`GET /dyn`: a copy of the target in the
//! per-request arena, a body formatted into a pooled write buffer), the m04 `ResponseWriter`
//! rendering the head into a reused buffer, one `writev` of head + body. The client reuses one
//! fixed buffer. Measured: allocations in the window (threshold == 0).

use std::net::Shutdown;

use m07_buffers::PoolConfig;
use m07_buffers::lab::{self, Client, GET_DYN, print_measured, spawn_local_server};
use m07_buffers::serve::ServeConfig;
use m07_buffers::sys::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const WARM_UP: usize = 1_000;
const REQUESTS: usize = 10_000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (addr, server) = spawn_local_server(PoolConfig::default(), ServeConfig::default(), 1)?;
        let mut c = Client::connect(addr, 4096)?;
        for _ in 0..WARM_UP {
            c.request(GET_DYN)?;
        }
        let (a0, b0) = (
            CountingAlloc::allocations(),
            CountingAlloc::allocated_bytes(),
        );
        let mut ok = 0u64;
        for _ in 0..REQUESTS {
            let r = c.request(GET_DYN)?;
            ok += u64::from(r.status == 200 && r.keep_alive);
        }
        let (allocs, bytes) = (
            CountingAlloc::allocations() - a0,
            CountingAlloc::allocated_bytes() - b0,
        );
        c.stream().shutdown(Shutdown::Both)?;
        let (stats, reports) = server
            .join()
            .map_err(|_| std::io::Error::other("server thread panicked"))??;
        if ok != REQUESTS as u64 {
            return Err(std::io::Error::other(format!(
                "only {ok} of {REQUESTS} requests answered 200 keep-alive"
            )));
        }
        eprintln!("{allocs} allocations ({bytes} bytes) over {REQUESTS} requests");
        print_measured(
            allocs as f64,
            "allocations",
            &format!(
                "heap allocations (process-wide counting allocator) over {REQUESTS} keep-alive \
                 GET /dyn requests on one loopback connection after {WARM_UP} warm-up; {bytes} \
                 bytes; server answered {} requests; pool: {} allocs / {} frees, high-water {}, \
                 exhausted {}; {}",
                reports.first().map_or(0, |r| r.requests),
                stats.allocs,
                stats.frees,
                stats.high_water,
                stats.exhausted,
                lab::machine()
            ),
        );
        Ok(())
    })
}
