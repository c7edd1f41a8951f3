//! Experiment `pool_size_sweep`: the pool-size sweep (closed loop, `GET /dyn`,
//! thread-per-connection server over a shared pool of 16 KiB buffers; each connection holds a
//! read buffer and borrows a write buffer per response) at 16…512 buffers, for 16, 64 (the
//! standard scenario) and 128 keep-alive connections. Utilisation (high-water), exhaustion,
//! shed connections, paired throughput against the best size, and the pick (the rule of the
//! `pool_size_from_sweep` check: smallest clean size with median ratio ≥ 0.95 to the best or
//! faster than it in ≥ 1/3 of the repeats). `--quick`: 64 connections only, one repeat.

use m07_buffers::DEFAULT_POOL_BUFFERS;
use m07_buffers::lab::{self, SWEEP_CONNECTION_COUNTS, SWEEP_CONNECTIONS, Table, run_sweep};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (counts, rounds, repeats): (Vec<usize>, Option<usize>, usize) = if lab::quick() {
            (vec![SWEEP_CONNECTIONS], Some(40), 1)
        } else {
            (SWEEP_CONNECTION_COUNTS.to_vec(), None, 24)
        };
        let counts_label = counts
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("/");
        let mut t = Table::new(
            &format!(
                "Pool size sweep: {counts_label} keep-alive connections, read buffer held + write buffer per response"
            ),
            &[
                "connections",
                "buffers",
                "req/s (median)",
                "ratio to best (paired median)",
                "wins vs best",
                "exhaustion events",
                "refused/shed connections",
                "high-water",
                "utilisation at peak %",
                "picked",
            ],
        );
        let mut picks = Vec::new();
        for &c in &counts {
            let sweep = run_sweep(c, rounds, repeats)?;
            picks.push((c, sweep.pick));
            for (i, p) in sweep.points.iter().enumerate() {
                t.rows.push(vec![
                    c.into(),
                    p.buffers.into(),
                    lab::round(p.req_per_s, 0).into(),
                    lab::round(sweep.ratio_to_best[i], 3).into(),
                    format!("{}/{}", sweep.wins[i], sweep.repeats).into(),
                    p.exhausted.into(),
                    p.failed_connections.into(),
                    p.high_water.into(),
                    lab::round(100.0 * p.high_water as f64 / p.buffers as f64, 1).into(),
                    if sweep.pick == Some(p.buffers) {
                        "yes"
                    } else {
                        ""
                    }
                    .into(),
                ]);
            }
        }
        t.notes = format!(
            "{repeats} interleaved repeats per connection count (order rotated), 16,000 requests \
             per point; median throughput, worst-repeat exhaustion; ratio to best = median over \
             repeats of req/s / the best clean size's req/s in the same repeat. A pool smaller \
             than the connections refuses some at accept (503); one equal to them leaves no \
             write buffers, so connections are shed until buffers come free. Picks (connections, \
             buffers): {picks:?}; the crate default is {DEFAULT_POOL_BUFFERS}. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
