//! Experiment `transition_stats`: what the connection table measures about itself under a mixed
//! load (the six lifecycle kinds of the exit check, many clients at once): per state, how many
//! connections entered it, the most that were in it at once (the state distribution, sampled
//! every 10 ms), how long they stayed before the next transition (the transition latency), and
//! the transitions per second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use m02_tcp_state::TcpState;
use m02_tcp_state::lab::lifecycle::{self, Kind, Timing};
use m02_tcp_state::lab::{self, Table, TrackedServer, echo_config};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (per_kind, workers) = if lab::quick() { (40, 20) } else { (200, 50) };
        let timing = Timing::default();
        let mut cfg = lab::verifying();
        cfg.keepalive = Some(m02_tcp_state::kernel::Keepalive {
            idle: timing.keepalive_idle,
            interval: Duration::from_secs(1),
            count: 3,
        });
        cfg.table.inactivity_timeout = Some(Duration::from_millis(1500));
        cfg.table.fin_wait_timeout = Some(timing.fin_wait);
        let server = TrackedServer::start(echo_config(), cfg)?;
        // The idle kinds wait for the server's inactivity timeout (1.5 s here).
        let timing = Timing {
            inactivity: Duration::from_millis(1500),
            ..timing
        };
        let kinds: Vec<Kind> = (0..per_kind).flat_map(|_| Kind::ALL).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = AtomicBool::new(false);
        let mut peak = [0u32; TcpState::COUNT];
        let mut peak_rate = 0.0f64;
        let t0 = Instant::now();
        let failures = std::sync::atomic::AtomicUsize::new(0);
        let (addr, shared) = (server.addr, server.tracker.clone());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&k) = kinds.get(i) else { break };
                        if lifecycle::run(k, addr, &timing, i as u8).is_err() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    shared.with(|t| {
                        let st = t.table().stats(Instant::now());
                        for (state, n) in &st.distribution {
                            peak[state.index()] = peak[state.index()].max(*n);
                        }
                        peak_rate = peak_rate.max(st.transitions_peak_second as f64);
                    });
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            while next.load(Ordering::SeqCst) < kinds.len() + workers {
                std::thread::sleep(Duration::from_millis(20));
            }
            lab::wait_until(Duration::from_secs(10), || {
                shared.with(|t| t.table().is_empty())
            });
            done.store(true, Ordering::Relaxed);
        });
        let elapsed = t0.elapsed();
        let stats = server.with(|t| t.table().stats(Instant::now()));
        server.stop()?;
        let mut t = Table::new(
            &format!(
                "Per-state counts, peaks and dwell times under a mixed load ({} lifecycles)",
                kinds.len()
            ),
            &[
                "state",
                "entered",
                "most at once",
                "left after p50 (ms)",
                "p99 (ms)",
                "max (ms)",
                "went to",
            ],
        );
        for s in TcpState::ALL {
            let entered: u64 = stats
                .matrix
                .iter()
                .filter(|(_, to, _)| *to == s)
                .map(|(_, _, n)| n)
                .sum();
            if entered == 0 && peak[s.index()] == 0 {
                continue;
            }
            let d = stats.dwell.iter().find(|(st, _)| *st == s).map(|(_, d)| *d);
            let went: Vec<String> = stats
                .matrix
                .iter()
                .filter(|(from, _, _)| *from == s)
                .map(|(_, to, n)| format!("{} ×{n}", to.rfc_name()))
                .collect();
            let ms = |us: f64| lab::round(us / 1e3, 3);
            t.rows.push(vec![
                s.rfc_name().into(),
                entered.into(),
                peak[s.index()].into(),
                d.map_or("-".into(), |d| ms(d.p50_us).into()),
                d.map_or("-".into(), |d| ms(d.p99_us).into()),
                d.map_or("-".into(), |d| ms(d.max_us).into()),
                went.join(", ").into(),
            ]);
        }
        t.notes = format!(
            "{} lifecycles ({} of each of the six kinds, {workers} clients at a time) against the echo server with a verifying \
             table (keepalive 1 s, inactivity 1.5 s, FIN-WAIT timeout 300 ms) in {:.1} s: {} transitions, peak {:.0} \
             transitions in the busiest second, {:.0}/s on average; {} kernel samples, {} disagreed; {} client \
             errors. Dwell times are the table's log2 histograms (a quantile is the upper bound of its bucket, within a factor \
             of 2), recorded when a connection leaves the state; the final state at release (CLOSED, TIME-WAIT, LAST-ACK) has \
             no exit. CLOSED is the starting point of every path and where most end. Machine: {}.",
            kinds.len(),
            per_kind,
            elapsed.as_secs_f64(),
            stats.transitions,
            peak_rate,
            stats.transitions as f64 / elapsed.as_secs_f64(),
            stats.samples,
            stats.mismatches,
            failures.load(Ordering::Relaxed),
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
