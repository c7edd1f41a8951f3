//! Cost of syscall accounting: the same syscalls with `accounting::set_enabled(true)` and
//! `(false)`. On, each call adds two vDSO clock reads and a few atomic adds; off, one relaxed
//! load. `cargo bench -p m01-raw-sockets --bench accounting`.

// criterion_group! generates an undocumented `pub fn benches()`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use criterion::{Criterion, criterion_group, criterion_main};
use m01_raw_sockets::{accounting, sys};

fn loopback_pair() -> (OwnedFd, OwnedFd) {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let listener = sys::tcp_socket(&any, false).expect("socket");
    sys::bind(listener.as_fd(), &any).expect("bind");
    sys::listen(listener.as_fd(), 1).expect("listen");
    let addr = sys::getsockname(listener.as_fd()).expect("getsockname");
    let client = sys::tcp_socket(&addr, false).expect("socket");
    sys::connect(client.as_fd(), &addr).expect("connect");
    let (server, _) = sys::accept4(listener.as_fd(), false).expect("accept4");
    (client, server)
}

fn accounting_overhead(c: &mut Criterion) {
    let (client, server) = loopback_pair();
    let mut group = c.benchmark_group("accounting_overhead");
    for on in [true, false] {
        let label = if on { "on" } else { "off" };
        accounting::set_enabled(on);
        // The cheapest syscall we wrap: reads a flag word, no copying.
        group.bench_function(format!("fcntl_getfl/{label}"), |b| {
            b.iter(|| black_box(sys::is_nonblocking(black_box(server.as_fd())).expect("fcntl")))
        });
        // A 64-byte echo step: send on one end, recv on the other (two syscalls).
        let mut buf = [0u8; 64];
        group.bench_function(format!("send_recv_64B/{label}"), |b| {
            b.iter(|| {
                let n = sys::send(client.as_fd(), black_box(&buf[..]), sys::MSG_NOSIGNAL)
                    .expect("send");
                let mut got = 0;
                let mut rbuf = [0u8; 64];
                while got < n {
                    got += sys::recv(server.as_fd(), &mut rbuf[got..], 0).expect("recv");
                }
                buf[0] = buf[0].wrapping_add(rbuf[0]);
            })
        });
        // The bookkeeping alone, without a syscall.
        group.bench_function(format!("record_only/{label}"), |b| {
            b.iter(|| {
                let t = accounting::Timer::start();
                accounting::record(
                    accounting::SyscallKind::Read,
                    t,
                    black_box(&Ok::<usize, std::io::Error>(1)),
                );
            })
        });
    }
    accounting::set_enabled(true);
    group.finish();
}

criterion_group!(benches, accounting_overhead);
criterion_main!(benches);
