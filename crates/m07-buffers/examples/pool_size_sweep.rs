//! Experiment `pool_size_sweep`: the standard scenario (64 keep-alive connections, closed loop,
//! `GET /dyn`, thread-per-connection server over a shared pool of 16 KiB buffers; each
//! connection holds a read buffer and borrows a write buffer per response) at 32…512 buffers.
//! Utilisation (high-water), exhaustion, shed connections and throughput per size, and the pick
//! (smallest size with zero exhaustion, no shed connection, ≥ 95 % of the best throughput).

use m07_buffers::DEFAULT_POOL_BUFFERS;
use m07_buffers::lab::{self, SWEEP_CONNECTIONS, Table, run_sweep};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (rounds, repeats) = if lab::quick() { (40, 1) } else { (500, 10) };
        let sweep = run_sweep(rounds, repeats)?;
        let mut t = Table::new(
            "Pool size sweep: 64 keep-alive connections, read buffer held + write buffer per response",
            &[
                "buffers",
                "req/s (median)",
                "relative throughput (paired median)",
                "exhaustion events",
                "refused/shed connections",
                "high-water",
                "utilisation at peak %",
                "picked",
            ],
        );
        for (p, r) in sweep.points.iter().zip(&sweep.relative) {
            t.rows.push(vec![
                p.buffers.into(),
                lab::round(p.req_per_s, 0).into(),
                lab::round(*r, 3).into(),
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
        t.notes = format!(
            "{SWEEP_CONNECTIONS} connections x {rounds} rounds, {repeats} interleaved repeats \
             (order rotated), median throughput, worst-repeat exhaustion; relative throughput = median \
             over repeats of req/s / mean req/s of the non-exhausting sizes in the same repeat \
             (the pick compares these). A pool smaller than \
             the connections refuses some at accept (503); one equal to them leaves no write \
             buffers, so connections are shed until buffers come free. The pick is {:?}; the \
             crate default is {DEFAULT_POOL_BUFFERS}. Throughput above the knee is flat within \
             noise. {}",
            sweep.pick,
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
