//! Exit check `pool_size_from_sweep`: re-runs the pool-size sweep at 16, 64 (the standard
//! scenario) and 128 keep-alive connections on one client thread (closed loop, `GET /dyn`,
//! thread-per-connection server over a shared pool; each connection holds a 16 KiB read
//! buffer for its life and borrows a write buffer per response, so the demand is the
//! connections plus however many responses are in flight at once: measured, the high-water)
//! over 16…512 buffers, 24 interleaved repetitions each (order rotated, so each size runs
//! four times in each position; one untimed point first), 16,000 requests per point.
//!
//! **Pick rule, per connection count.** A size is *clean* when it never exhausted the pool and
//! never refused or shed a connection in any repeat (a size that did served a smaller
//! workload; its req/s is not compared). The *best* is the clean size with the highest median
//! over repeats of req/s / mean req/s of the clean sizes in the same repeat. Each size is then
//! compared with the best *paired*: in each repeat, its req/s over the best's in that same
//! repeat. A clean size *qualifies* when the median of those ratios is ≥ 0.95, **or** it was
//! faster than the best in at least a third of the repeats (≥ 8 of 24): sizes the best leads
//! only by noise win about half the pairings, so picking the best by its median alone (a
//! maximum over noisy sizes, biased upwards) cannot push a flat curve to its largest size. The
//! pick is the smallest qualifying size.
//!
//! **Passes** when the crate's `DEFAULT_POOL_BUFFERS` equals the pick at 64 connections, and
//! the picks follow the demand: strictly increasing from 16 to 64 to 128 connections. **Fails**
//! when the default is not the standard pick (a default of 64 exhausts; one of 256 is not the
//! smallest that qualifies), when a size just at the demand really costs throughput (median
//! ratio below 0.95 *and* fewer than 8 wins in 24: the pick moves up), or when the pick
//! does not grow with the connections (a pick that ignores the load).

use m07_buffers::DEFAULT_POOL_BUFFERS;
use m07_buffers::lab::{
    self, SWEEP_CONNECTION_COUNTS, SWEEP_CONNECTIONS, SWEEP_SIZES, print_check, run_sweep,
};

/// A multiple of the six sweep sizes: each size runs four times in each position of the rotation.
const REPEATS: usize = 24;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut sweeps = Vec::new();
        for &c in &SWEEP_CONNECTION_COUNTS {
            sweeps.push(run_sweep(c, None, REPEATS)?);
        }
        let standard = sweeps
            .iter()
            .find(|s| s.connections == SWEEP_CONNECTIONS)
            .and_then(|s| s.pick);
        let picks: Vec<Option<usize>> = sweeps.iter().map(|s| s.pick).collect();
        let follows_demand =
            picks.iter().all(Option::is_some) && picks.windows(2).all(|w| w[0] < w[1]);
        let pass = standard == Some(DEFAULT_POOL_BUFFERS) && follows_demand;
        let mut parts = Vec::new();
        for s in &sweeps {
            let rows: Vec<String> = (0..SWEEP_SIZES.len())
                .map(|i| {
                    let p = &s.points[i];
                    format!(
                        "{} bufs: {:.0} req/s, ratio to best {:.3}, wins {}/{}, exhausted {}, refused/shed {}, high-water {}{}",
                        p.buffers,
                        p.req_per_s,
                        s.ratio_to_best[i],
                        s.wins[i],
                        s.repeats,
                        p.exhausted,
                        p.failed_connections,
                        p.high_water,
                        if s.qualifies(i) { " (qualifies)" } else { "" }
                    )
                })
                .collect();
            parts.push(format!(
                "{} conns x {} rounds: pick {:?}, best {:?} [{}]",
                s.connections,
                s.rounds,
                s.pick,
                s.best,
                rows.join("; ")
            ));
        }
        print_check(
            pass,
            &format!(
                "default {DEFAULT_POOL_BUFFERS} buffers; picks by connections {:?} -> {:?} \
                 (standard {SWEEP_CONNECTIONS} conns: {standard:?}; follows demand: \
                 {follows_demand}). Rule: smallest clean size (no exhaustion, no refused/shed \
                 connection in any repeat) with median paired req/s ratio to the best >= 0.95 \
                 or faster than the best in >= 1/3 of {REPEATS} interleaved repeats. {}; {}",
                SWEEP_CONNECTION_COUNTS,
                picks,
                parts.join(" | "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
