//! Exit check `pool_size_from_sweep`: re-runs the pool-size sweep (standard scenario: 64
//! keep-alive connections on one client thread, closed loop, `GET /dyn`, thread-per-connection
//! server over a shared pool; each connection holds a 16 KiB read buffer for its life and
//! borrows a write buffer per response) over 32…512 buffers, ten interleaved repetitions
//! (order rotated, so each size runs twice in each position; one untimed point first), and passes when the crate's `DEFAULT_POOL_BUFFERS` equals the sweep's pick:
//! the smallest size with zero exhaustion (worst repetition), no refused connection, and at
//! least 95 % of the best such size's throughput (a size that exhausted refused or shed
//! connections: its req/s is for a smaller workload and is not compared). Throughput is compared paired: in each
//! repetition, a size's req/s over the mean of the sizes that did not exhaust in that same
//! repetition; the median of that ratio over repetitions (load drifting between repetitions
//! on a shared machine cancels out).

use m07_buffers::DEFAULT_POOL_BUFFERS;
use m07_buffers::lab::{self, SWEEP_CONNECTIONS, print_check, run_sweep};

const ROUNDS: usize = 500;
/// A multiple of the five sweep sizes: each size runs twice in each position of the rotation.
const REPEATS: usize = 10;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let sweep = run_sweep(ROUNDS, REPEATS)?;
        let rows: Vec<String> = sweep
            .points
            .iter()
            .zip(&sweep.relative)
            .map(|(p, r)| {
                format!(
                    "{} bufs: {:.0} req/s (relative {:.3}), exhausted {}, refused/shed conns {}, high-water {}",
                    p.buffers, p.req_per_s, r, p.exhausted, p.failed_connections, p.high_water
                )
            })
            .collect();
        let pass = sweep.pick == Some(DEFAULT_POOL_BUFFERS);
        print_check(
            pass,
            &format!(
                "default {DEFAULT_POOL_BUFFERS} buffers, sweep pick {:?} (smallest with zero \
                 exhaustion, no refused connection, relative throughput >= 95% of the best non-exhausting size's (median over repeats of req/s / mean of the non-exhausting sizes in the same repeat); {SWEEP_CONNECTIONS} \
                 keep-alive connections x {ROUNDS} rounds, {REPEATS} interleaved repeats): {}; {}",
                sweep.pick,
                rows.join("; "),
                lab::machine()
            ),
        );
        Ok(())
    })
}
