//! Experiment: load distribution fairness — SO_REUSEPORT (the kernel hashes each new
//! connection's 4-tuple onto one of the loops' listeners) vs one acceptor thread handing each
//! connection to the least loaded loop. Balancing (stealing) is off, so the table shows the
//! distribution itself. Per loop: connections received; imbalance = (max − mean)/mean; then
//! keep-alive throughput of the same server (zyphos-load, GET /plaintext, 64 connections).

use std::io::{Read, Write};
use std::time::Duration;

use m10_multi_loop::lab::{
    MultiInProcess, Table, config, connect, http_factory, keepalive_load, machine, num, quick,
    round, run_main,
};
use m10_multi_loop::{Distribution, imbalance_pct};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let q = quick();
        let conns = if q { 400 } else { 4000 };
        let secs = if q { 0.5 } else { 2.0 };
        let mut t = Table::new(
            "Load distribution fairness: SO_REUSEPORT vs one acceptor",
            &[
                "distribution",
                "loops",
                "connections",
                "per-loop connections",
                "imbalance %",
                "keep-alive req/s",
            ],
        );
        for loops in [2usize, 4] {
            for dist in [Distribution::ReusePort, Distribution::Acceptor] {
                let mut c = config(loops);
                c.distribution = dist;
                c.balance.enabled = false;
                let server = MultiInProcess::start(c, http_factory(Duration::from_secs(30))?)?;
                let mut held = Vec::with_capacity(conns);
                for _ in 0..conns {
                    let mut s = connect(server.addr, Duration::from_secs(5))?;
                    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")?;
                    held.push(s);
                }
                let mut buf = [0u8; 512];
                for s in &mut held {
                    let _ = s.read(&mut buf)?;
                }
                let counts = server.stats.connections();
                drop(held);
                m10_multi_loop::lab::wait_until(Duration::from_secs(5), || {
                    server.stats.connections().iter().sum::<u64>() == 0
                });
                let report = keepalive_load(server.addr, "/plaintext", 64, secs)?;
                server.stop()?;
                eprintln!("{dist:?} x{loops}: {counts:?}");
                t.rows.push(vec![
                    format!("{dist:?}").into(),
                    loops.into(),
                    conns.into(),
                    format!("{counts:?}").into(),
                    round(imbalance_pct(&counts), 2).into(),
                    round(num(&report, &["rps"]), 0).into(),
                ]);
            }
        }
        t.notes = format!(
            "In-process MultiLoopServer (m08 HTTP/1.1), loops pinned, balancing off. {conns} connections opened one after another from 127.0.0.1 (one source address: ephemeral ports differ, so the SO_REUSEPORT hash differs), each sending one request; counts read while all are open. SO_REUSEPORT is a hash: its imbalance is statistical (about 1/sqrt(connections per loop)) and blind to load; the acceptor is exact (least loaded) but is one thread every connection passes through, and each connection costs a mailbox message and an eventfd wake-up. Throughput: zyphos-load, 64 keep-alive connections, {secs} s. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
