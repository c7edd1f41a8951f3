//! Experiment: work stealing after a skewed start. All connections are gathered on loop 0
//! (a task on loop 1 migrates its share away), then the per-loop connection counts are
//! sampled every 50 ms with balancing on and, separately, off.

use std::io::Write;
use std::time::{Duration, Instant};

use m10_multi_loop::lab::{
    MultiInProcess, Table, config, connect, http_factory, machine, quick, read_http, round,
    run_main, wait_until,
};
use m10_multi_loop::{LoopControl, imbalance_pct};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let q = quick();
        let total = if q { 400 } else { 3000 };
        let samples = if q { 10 } else { 20 };
        let mut t = Table::new(
            "Work stealing: imbalance over time after a skewed start (all connections on loop 0)",
            &[
                "balancing",
                "t ms",
                "loop 0",
                "loop 1",
                "imbalance %",
                "steals sent",
                "migrated",
            ],
        );
        for balancing in [true, false] {
            let mut c = config(2);
            c.balance.enabled = false;
            let server = MultiInProcess::start(c, http_factory(Duration::from_secs(60))?)?;
            let mut conns = Vec::new();
            for _ in 0..total {
                let mut s = connect(server.addr, Duration::from_secs(5))?;
                s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")?;
                read_http(&mut s, &mut Vec::new())?;
                conns.push(s);
            }
            server.submit(
                1,
                Box::new(|c: &mut dyn LoopControl| {
                    let n = c.connections();
                    c.migrate_to(0, n);
                }),
            )?;
            wait_until(Duration::from_secs(10), || {
                server.stats.connections()[1] == 0
            });
            server.stats.set_balancing(balancing);
            let start = Instant::now();
            for i in 0..=samples {
                let counts = server.stats.connections();
                let loops = server.stats.per_loop();
                t.rows.push(vec![
                    (if balancing { "on" } else { "off" }).into(),
                    round(start.elapsed().as_secs_f64() * 1000.0, 0).into(),
                    counts[0].into(),
                    counts[1].into(),
                    round(imbalance_pct(&counts), 1).into(),
                    loops[1].multi.steals_sent.into(),
                    loops[1].multi.migrated_in.into(),
                ]);
                if i < samples {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            // The moved connections still answer.
            for s in conns.iter_mut().take(50) {
                s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: lab\r\n\r\n")?;
                read_http(s, &mut Vec::new())?;
            }
            drop(conns);
            server.stop()?;
        }
        t.notes = format!(
            "In-process MultiLoopServer, 2 pinned loops, {total} idle keep-alive HTTP/1.1 connections all moved to loop 0 first. Policy (BalanceConfig::default): every 100 ms a loop below mean x (1 - 10%) asks the busiest loop for half the gap, at most 256 per request, never taking it below the mean; one request outstanding at a time (then a 500 ms pause unless connections arrive). Stealing is pull: the busy loop spends nothing until asked. 'migrated' is loop 1's migrated_in. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
