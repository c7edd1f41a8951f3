//! Experiment: what moving a connection between loops costs. (1) Batches of idle keep-alive
//! HTTP connections moved from loop 1 to loop 0 by a task: wall time from the task's start
//! to the last adoption on loop 0, per connection. (2) Request latency seen by clients while
//! their connections are being moved back and forth vs while they stay put.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use m10_multi_loop::LoopControl;
use m10_multi_loop::lab::{
    MultiInProcess, Table, config, connect, http_factory, machine, quick, read_http, round,
    run_main, wait_until,
};

/// Connections each loop hands to the other every 5 ms in the "while migrating" row.
const MOVE_EVERY_5MS: usize = 100;

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let q = quick();
        let total = if q { 400 } else { 2000 };
        let mut t = Table::new(
            "Migration overhead: moving connections between loops",
            &[
                "measurement",
                "connections",
                "total µs",
                "µs per connection",
                "p50 µs",
                "p99 µs",
            ],
        );
        let mut c = config(2);
        c.balance.enabled = false;
        let server = Arc::new(MultiInProcess::start(
            c,
            http_factory(Duration::from_secs(60))?,
        )?);
        let mut conns = Vec::new();
        for _ in 0..total {
            let mut s = connect(server.addr, Duration::from_secs(5))?;
            s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")?;
            read_http(&mut s, &mut Vec::new())?;
            conns.push(s);
        }
        // (1) Batches: gather everything on loop 1 first, then move batches to loop 0.
        let all_to = |from: usize, to: usize| -> std::io::Result<()> {
            server.submit(
                from,
                Box::new(move |c: &mut dyn LoopControl| {
                    let n = c.connections();
                    c.migrate_to(to, n);
                }),
            )?;
            wait_until(Duration::from_secs(10), || {
                server.stats.connections()[from] == 0
            });
            Ok(())
        };
        for batch in [1usize, 10, 100, 1000].into_iter().filter(|&b| b <= total) {
            all_to(0, 1)?;
            let before = server.stats.per_loop()[0].multi.migrated_in;
            let (tx, rx) = mpsc::channel();
            server.submit(
                1,
                Box::new(move |c: &mut dyn LoopControl| {
                    let start = Instant::now();
                    let moved = c.migrate_to(0, batch);
                    let _ = tx.send((start, moved));
                }),
            )?;
            let (start, moved) = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(std::io::Error::other)?;
            wait_until(Duration::from_secs(10), || {
                server.stats.per_loop()[0].multi.migrated_in >= before + moved as u64
            });
            let us = start.elapsed().as_secs_f64() * 1e6;
            t.rows.push(vec![
                format!("batch of {batch} moved loop 1 -> loop 0 (detach, mailbox, adopt)").into(),
                moved.into(),
                round(us, 1).into(),
                round(us / moved.max(1) as f64, 2).into(),
                "".into(),
                "".into(),
            ]);
        }
        // (2) Request latency with and without migrations going on.
        let clients = 32.min(conns.len());
        for moving in [false, true] {
            let stop = Arc::new(AtomicBool::new(false));
            let mover = moving.then(|| {
                let server = Arc::clone(&server);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for from in 0..2 {
                            let _ = server.submit(
                                from,
                                Box::new(move |c: &mut dyn LoopControl| {
                                    let n = (c.connections() / 2).min(MOVE_EVERY_5MS);
                                    c.migrate_to(1 - from, n);
                                }),
                            );
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            });
            // Both phases use the same connections, and m08 closes a keep-alive connection
            // after its 1,000th request: 1 + 2 x 400 stays below.
            let per_client = if q { 200 } else { 400 };
            let mut lat = Vec::new();
            for _ in 0..per_client {
                for s in conns.iter_mut().take(clients) {
                    let t0 = Instant::now();
                    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")?;
                    read_http(s, &mut Vec::new()).map_err(|e| {
                        std::io::Error::other(format!(
                            "request {} (migrating: {moving}): {e}",
                            lat.len()
                        ))
                    })?;
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                }
            }
            stop.store(true, Ordering::Relaxed);
            if let Some(m) = mover {
                let _ = m.join();
            }
            let n = lat.len();
            let p50 = quantile(&mut lat, 0.5);
            let p99 = quantile(&mut lat, 0.99);
            let label = if moving {
                "request latency while connections migrate every 5 ms"
            } else {
                "request latency, no migration"
            };
            t.rows.push(vec![
                label.into(),
                clients.into(),
                "".into(),
                "".into(),
                round(p50, 1).into(),
                round(p99, 1).into(),
            ]);
            eprintln!("{label}: {n} requests p50 {p50:.1} p99 {p99:.1}");
        }
        let loops = server.stats.per_loop();
        drop(conns);
        let server =
            Arc::try_unwrap(server).map_err(|_| std::io::Error::other("server still shared"))?;
        server.stop()?;
        t.notes = format!(
            "In-process MultiLoopServer, 2 pinned loops, balancing off, {total} idle keep-alive HTTP/1.1 connections. A migration detaches the socket and session from loop 1's epoll set and table, sends them through loop 0's mailbox (lock-free queue + eventfd), and loop 0 registers them again: two epoll_ctl calls, a queue slot and a wake-up per connection; the per-connection cost falls with the batch size because one wake-up carries many. Latency rows: one client thread, sequential requests over {clients} connections; while migrating, every 5 ms a task on each loop moves half its connections (at most {MOVE_EVERY_5MS}) to the other, so the 32 measured connections keep changing loops. Counters after the run: migrated_in {:?}, failures {:?}. {}",
            loops
                .iter()
                .map(|l| l.multi.migrated_in)
                .collect::<Vec<_>>(),
            loops
                .iter()
                .map(|l| l.multi.migration_failures)
                .collect::<Vec<_>>(),
            machine()
        );
        t.print();
        Ok(())
    })
}
