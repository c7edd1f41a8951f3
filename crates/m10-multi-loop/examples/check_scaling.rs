//! Exit check `scaling_efficiency_2_loops`: does a second loop carry a second loop's worth of
//! work at the same cost?
//!
//! On a 2-core machine the load generator needs a core too, so "saturated throughput with 2
//! loops / with 1" cannot reach 2: the server never gets both cores. The per-CPU form does not
//! depend on how many cores the server got: **requests per server CPU-second** (requests
//! answered / the scheduler's run time of the server's threads over the run, from
//! /proc/PID/task/*/schedstat, in ns: clock ticks are too coarse at 10 ms).
//!
//! Linear scaling is judged the way a capacity plan uses it (weak scaling): **N loops carry N
//! times the load of one loop at the same cost per request**. So each loop is offered the
//! same work in both configurations: an open-loop 20,000 req/s and 32 keep-alive connections
//! per loop (`zyphos-load --rate`, `GET /plaintext`): 1 loop gets 20K req/s over 32
//! connections, 2 loops get 40K req/s over 64. Anything shared between loops (a lock, a
//! contended cache line, cross-core traffic on the request path) shows as a higher cost per
//! request with 2 loops.
//!
//! Above 100 % means a request cost less with 2 loops: with 40K req/s each core is busier (a
//! loop and the client on one, a loop on the other) and each wake-up of a loop finds more
//! requests ready. The check's point is the other direction: a cost that grows with a second
//! loop would show as a figure below 100 %.
//!
//! Why not the same total load for both (strong scaling)? Then each of the 2 loops runs at
//! half the rate of the single loop, wakes up for half as many events per `epoll_wait`, and
//! pays the wake-up over fewer requests: the figure measures batching, not sharing. The
//! previous form of this check (20K req/s for both, the client on loop 0's core) read 86 %; the experiment
//! `architecture_designs` and the write-up keep both views.
//!
//! **Measured**: the median requests/CPU-s with `zyphos serve --io epoll --workers 2` ÷ the
//! median with `--workers 1`, × 100, over rounds of the two back to back (against the release
//! `zyphos` binary), the client pinned to the last allowed CPU (see [`ClientCpu`]). The detail
//! also gives the figure with the client on the single loop's core.

use std::io;

use m10_multi_loop::lab::{
    Zyphos, keepalive_load, load, machine, median, num, print_measured, proc_cpu_s_precise,
    run_main,
};

const ROUNDS: usize = 6;
const SECS: f64 = 3.0;
/// Offered load per loop (open loop): well below what one loop sustains here (~50K req/s with
/// the client on the same 2 cores), so every loop does the same work at the same pace.
const RATE_PER_LOOP: u64 = 20_000;
/// Keep-alive connections per loop.
const CONNS_PER_LOOP: usize = 32;
/// Runs per (round, configuration) at most. A run that answers less than 95 % of the offered
/// requests measured saturation, not the cost of the offered load (this VM has slow phases in
/// which 2 loops sharing a core with the client fall behind 40K req/s): it is retaken, and the
/// retakes are counted in the detail. Three short runs in a row fail the check.
const ATTEMPTS: usize = 3;

/// Where the load generator runs: pinned to the last allowed CPU (the measured figure: with 1
/// loop, pinned to the first CPU, this is the race's placement, a server core and a client
/// core; with 2 loops the second loop shares the client's core) or to the first (the single
/// loop shares the client's core and gets the batching of a shared core for free; reported
/// in the detail). Left to the scheduler, the client sometimes shares a loop's CPU and
/// sometimes not, and the cost per request swings by half between the two.
#[derive(Clone, Copy)]
enum ClientCpu {
    Last,
    First,
}

fn client_cpu(at: ClientCpu) -> usize {
    let cpus = m10_multi_loop::affinity::allowed_cpus().unwrap_or_default();
    let cpu = match at {
        ClientCpu::Last => cpus.last(),
        ClientCpu::First => cpus.first(),
    };
    cpu.copied().unwrap_or(0)
}

/// One run: `Ok((requests/s, requests per server CPU-second))`, or `Err(why)` when it answered
/// less than 95 % of the offered requests (see [`ATTEMPTS`]).
fn run(loops: usize, client: ClientCpu) -> io::Result<Result<(f64, f64), String>> {
    let z = Zyphos::spawn(&[
        "--io",
        "epoll",
        "--workers",
        &loops.to_string(),
        "--proto",
        "http1.1",
    ])?;
    // Warm-up (connections, caches), not measured.
    keepalive_load(z.addr, "/plaintext", 64, 0.5)?;
    let cpu0 = proc_cpu_s_precise(z.pid())?;
    let rate = RATE_PER_LOOP * loops as u64;
    let args: Vec<String> = [
        "--scenario",
        "http1.1",
        "--connections",
        &(CONNS_PER_LOOP * loops).to_string(),
        "--duration",
        &format!("{SECS}"),
        "--rate",
        &rate.to_string(),
        "--path",
        "/plaintext",
        "--cpu",
        &client_cpu(client).to_string(),
        &z.addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let report = load(&args)?;
    let cpu = proc_cpu_s_precise(z.pid())? - cpu0;
    z.stop()?;
    let requests = num(&report, &["requests"]);
    if requests < 0.95 * rate as f64 * SECS || cpu <= 0.0 {
        return Ok(Err(format!(
            "{loops} loop(s) answered {requests} of {} offered requests in {cpu:.3} CPU-s",
            rate as f64 * SECS
        )));
    }
    Ok(Ok((num(&report, &["rps"]), requests / cpu)))
}

/// Rounds of 1 loop then 2 loops, back to back, with the client at `client`: the ratio of the
/// two configurations' median requests per CPU-second, and a line of detail. (The medians, not
/// per-round ratios: the noise is in single runs of the 1-loop configuration, whose idle core
/// is woken for nearly every request and pays the VM's wake-up cost, which varies from run to
/// run by a third; the 2-loop runs vary by a few %.)
fn efficiency(client: ClientCpu) -> io::Result<(f64, String)> {
    let (mut per_cpu, mut rps) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut retaken = Vec::new();
    for round in 0..ROUNDS {
        for (i, loops) in [1usize, 2].into_iter().enumerate() {
            let mut attempt = 1;
            let (r, e) = loop {
                match run(loops, client)? {
                    Ok(measured) => break measured,
                    Err(why) if attempt < ATTEMPTS => {
                        eprintln!("round {round}: retaken: {why}");
                        retaken.push(why);
                        attempt += 1;
                    }
                    Err(why) => {
                        return Err(io::Error::other(format!(
                            "{ATTEMPTS} runs in a row fell short of the offered load: {why}"
                        )));
                    }
                }
            };
            eprintln!("round {round}: {loops} loop(s): {r:.0} req/s, {e:.0} req/CPU-s");
            rps[i].push(r);
            per_cpu[i].push(e);
        }
    }
    let (e1, e2) = (median(&per_cpu[0]), median(&per_cpu[1]));
    let ratio = e2 / e1 * 100.0;
    let rounded = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
    let retakes = if retaken.is_empty() {
        "no run retaken".to_string()
    } else {
        format!(
            "{} run(s) retaken for falling short of the offered load ({})",
            retaken.len(),
            retaken.join("; ")
        )
    };
    let line = format!(
        "client on CPU {}: {ratio:.1} % (median req/CPU-s 1 loop {e1:.0}, 2 loops {e2:.0}; per round 1 loop {:?}, 2 loops {:?}; achieved req/s 1 loop {:.0}, 2 loops {:.0}; {retakes})",
        client_cpu(client),
        rounded(&per_cpu[0]),
        rounded(&per_cpu[1]),
        median(&rps[0]),
        median(&rps[1]),
    );
    eprintln!("{line}");
    Ok((ratio, line))
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let (measured, standard) = efficiency(ClientCpu::Last)?;
        let (_, shared) = efficiency(ClientCpu::First)?;
        let detail = format!(
            "requests per server CPU-second, 2 loops / 1 loop, each loop offered {RATE_PER_LOOP} req/s open loop over {CONNS_PER_LOOP} keep-alive conns (zyphos-load, GET /plaintext), {ROUNDS} rounds of {SECS} s; measured: {standard}; for comparison, the single loop sharing the client's core: {shared}; {}",
            machine()
        );
        print_measured(measured, "% of linear (same run)", &detail);
        Ok(())
    })
}
