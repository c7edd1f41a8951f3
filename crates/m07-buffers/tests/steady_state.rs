//! Zero steady-state allocations on the request path, counted by a counting global allocator
//! (the only test in this binary, so no other test allocates concurrently).

use std::net::Shutdown;

use m07_buffers::PoolConfig;
use m07_buffers::lab::{Client, GET_DYN, spawn_local_server};
use m07_buffers::serve::ServeConfig;
use m07_buffers::sys::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn test_keep_alive_steady_state_zero_allocations() {
    let (addr, server) =
        spawn_local_server(PoolConfig::default(), ServeConfig::default(), 1).unwrap();
    let mut c = Client::connect(addr, 4096).unwrap();
    for _ in 0..200 {
        assert_eq!(c.request(GET_DYN).unwrap().status, 200);
    }
    let before = CountingAlloc::allocations();
    let mut ok = 0;
    for _ in 0..2000 {
        let r = c.request(GET_DYN).unwrap();
        ok += u32::from(r.status == 200 && r.keep_alive);
    }
    let allocs = CountingAlloc::allocations() - before;
    assert_eq!(ok, 2000);
    assert_eq!(allocs, 0, "heap allocations over 2,000 keep-alive requests");
    c.stream().shutdown(Shutdown::Both).unwrap();
    let (stats, _) = server.join().unwrap().unwrap();
    assert_eq!(
        stats.allocs, 2201,
        "1 read buffer + 2,200 write buffers, all from the pool"
    );
}
