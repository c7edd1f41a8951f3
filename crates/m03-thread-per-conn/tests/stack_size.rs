//! Configured stack sizes, checked on the server's own threads. A binary of its own: glibc keeps
//! the stacks of exited threads in a cache and hands a new thread any cached stack up to four
//! times the size it asked for, so threads of other tests in the same process (other sizes)
//! could otherwise lend theirs.

use std::time::Duration;

use m03_thread_per_conn::lab::{
    ProbeFactory, RunningServer, connect, echo_round_trip, test_config,
};
use m03_thread_per_conn::{EchoFactory, procfs};

const T: Duration = Duration::from_secs(5);

#[test]
fn test_stack_size_configured_thread_stacks_mapped_at_that_size() {
    // An unusual size: no other thread of this process asks for it.
    const STACK: usize = 328 * 1024;
    let (mut config, _) = test_config();
    config.stack_size = STACK;
    let (factory, probes) = ProbeFactory::new(EchoFactory::default());
    let server = RunningServer::start(config, factory).unwrap();
    let mut clients: Vec<_> = (0..5).map(|_| connect(server.addr, T).unwrap()).collect();
    for c in &mut clients {
        echo_round_trip(c, b"s").unwrap();
    }
    // Each session was created (and its thread probed) before it echoed; the threads are
    // alive while the clients stay connected, so their mappings are still there.
    let probes = probes.get();
    assert_eq!(probes.len(), 5, "{probes:#?}");
    let maps = procfs::mappings().unwrap();
    let find = |addr: usize| maps.iter().find(|m| m.contains(addr));
    for p in &probes {
        assert!(
            p.name.as_deref().is_some_and(|n| n.starts_with("conn-")),
            "{p:?}"
        );
        let (lo, size) = p.stack.expect("pthread_getattr_np");
        assert_eq!(size, STACK, "{p:?}");
        let hi = lo + size;
        assert!(
            (lo..hi).contains(&p.local),
            "the probe ran on that stack: {p:?}"
        );
        // The kernel has the whole range mapped read-write (possibly as part of a larger,
        // merged mapping), with the inaccessible guard page right below it.
        let mut at = lo;
        while at < hi {
            let m = find(at).unwrap_or_else(|| panic!("{at:#x} unmapped in {p:?}"));
            assert!(m.perms.starts_with("rw"), "{m:?} in {p:?}");
            at = m.end;
        }
        let guard = find(lo - 1).unwrap_or_else(|| panic!("no guard below {p:?}"));
        assert!(guard.perms.starts_with("---"), "{guard:?} below {p:?}");
    }
    drop(clients);
    server.stop().unwrap();
}
