//! "Shared-nothing hot path", checked on a running server: two loops each serve their own
//! keep-alive connection; afterwards every statistic the request path wrote is found in the
//! writing loop's own cache-padded block (m10's per-loop block, m08's per-loop registry
//! shard), nothing moved in any other shard, no cross-loop message was sent, and the sum read
//! by reports still adds up. A registry shared by the loops (one set of atomics), a loop that
//! records into another's shard, or per-loop blocks packed without padding fail it.
//! Every socket operation and every wait is bounded (10 s: generous on 2 noisy cores).

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use m04_http10::{ConnInfo, Request, ResponseWriter, Service};
use m08_http11::stats::SHARDS;
use m08_http11::{Http11Config, Http11Factory};
use m10_multi_loop::lab::{MultiInProcess, config, connect, read_http, wait_until};

const T: Duration = Duration::from_secs(10);
/// crossbeam's `CachePadded` width on x86-64 and aarch64 (covers 64-byte lines too).
const LINE: usize = 128;

/// Answers every request with a constant body and touches no shared state of its own, so
/// the only writes under test are the server's and m08's.
struct Ok200;

impl Service for Ok200 {
    fn call(&self, _r: &Request<'_>, _c: &ConnInfo, w: &mut ResponseWriter<'_>) {
        w.send(200, Some("text/plain"), &[], b"ok");
    }
}

/// The cache lines `r` touches, as a closed range of line numbers.
fn lines(r: &std::ops::Range<usize>) -> (usize, usize) {
    (r.start / LINE, (r.end - 1) / LINE)
}

#[test]
fn test_each_loop_writes_only_its_own_padded_statistics() {
    let factory = Http11Factory::new(
        Arc::new(Ok200),
        Http11Config {
            idle_timeout: Duration::from_secs(30),
            ..Http11Config::default()
        },
    );
    let h11 = factory.stats();
    let mut c = config(2);
    c.balance.enabled = false;
    let server = MultiInProcess::start(c, factory).expect("server");

    // Layout: no two loops' shared blocks share a cache line.
    let blocks = server.stats.loop_blocks();
    assert_eq!(blocks.len(), 2);
    let (a, b) = (lines(&blocks[0]), lines(&blocks[1]));
    assert!(
        a.1 < b.0 || b.1 < a.0,
        "loop blocks share a cache line: {blocks:?}"
    );

    // One connection per loop, attributed by whose `accepted` moved.
    let accepted = || -> Vec<u64> {
        server
            .stats
            .per_loop()
            .iter()
            .map(|l| l.event_loop.accepted)
            .collect()
    };
    let mut on: [Option<TcpStream>; 2] = [None, None];
    let mut extra = Vec::new();
    for _ in 0..64 {
        if on.iter().all(Option::is_some) {
            break;
        }
        let before = accepted();
        let s = connect(server.addr, T).expect("connect");
        let mut now = before.clone();
        assert!(
            wait_until(T, || {
                now = accepted();
                now.iter().sum::<u64>() == before.iter().sum::<u64>() + 1
            }),
            "connection not accepted within {T:?}"
        );
        let i = (0..2).find(|&i| now[i] > before[i]).expect("a loop moved");
        if on[i].is_none() {
            on[i] = Some(s);
        } else {
            extra.push(s);
        }
    }
    let [Some(mut s0), Some(mut s1)] = on else {
        panic!("SO_REUSEPORT put 64 connections on one loop");
    };

    let requests = [40u64, 70];
    for (s, n) in [(&mut s0, requests[0]), (&mut s1, requests[1])] {
        let mut buf = Vec::new();
        for _ in 0..n {
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("send");
            let (status, body) = read_http(s, &mut buf).expect("response");
            assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
        }
    }
    let per_loop_accepted = accepted();
    drop((s0, s1, extra));
    let total: u64 = per_loop_accepted.iter().sum();
    assert!(
        wait_until(T, || {
            let sum = h11.sum();
            sum.closed.load(Ordering::Relaxed) == total && h11.live() == 0
        }),
        "sessions not all closed within {T:?}"
    );

    for shard in 0..SHARDS {
        let s = h11.shard(shard);
        let (opened, reqs) = if shard < 2 {
            (per_loop_accepted[shard], requests[shard])
        } else {
            (0, 0)
        };
        assert_eq!(
            s.opened.load(Ordering::Relaxed),
            opened,
            "sessions opened recorded in shard {shard}"
        );
        assert_eq!(
            s.closed.load(Ordering::Relaxed),
            opened,
            "sessions closed recorded in shard {shard}"
        );
        assert_eq!(
            s.requests.load(Ordering::Relaxed),
            reqs,
            "requests recorded in shard {shard}"
        );
    }
    let sum = h11.sum();
    assert_eq!(sum.requests.load(Ordering::Relaxed), 110, "summed on read");
    for l in server.stats.per_loop() {
        assert_eq!(
            (l.multi.messages, l.multi.migrated_in, l.multi.migrated_out),
            (0, 0, 0),
            "loop {}: the request path sent nothing across loops",
            l.index
        );
    }
    server.stop_within(T).expect("stop");
}
