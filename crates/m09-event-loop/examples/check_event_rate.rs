//! Exit check `max_event_rate`: the highest rate of readiness events one event loop sustains,
//! found by raising an open-loop offered load step by step until the achieved rate stops rising
//! while the loop's core is full.
//!
//! **Placement.** The server is pinned to CPU 0 (`taskset -c 0`), the load generator to CPU 1
//! (`zyphos-load -t 1 --cpu 1`). The m09 server is this example's `--server` mode: one
//! [`m09_event_loop::EpollServer`] loop (level-triggered) on the process's only thread, m08's
//! HTTP/1.1 session; m03 and m06 are `zyphos serve --io threads` and `--io pool --workers C`
//! (two pool workers more than connections: a keep-alive connection holds a worker, and the
//! `/stats` reads must find one free), every thread of them on CPU 0 too. Connections are kept
//! for the whole run (`--max-requests` / `--keepalive-requests 100000000`).
//!
//! **Sweep**, per server and per mode (non-pipelined: 64 connections, 1 request in flight each;
//! pipelined: 16 connections, up to 16 in flight each), `GET /plaintext`: a 1 s closed-loop
//! probe gives C, the rate the steps are placed around; then open-loop steps at
//! 0.6, 0.85, 1.0, 1.15, 1.35, 1.6, 1.9 and 2.3 × C (`zyphos-load -r R --warmup 0.5 -d 1.5`,
//! latency from each request's intended send time), and up to 3 more, each 1.6 × the one
//! before, while the top step still keeps up (a probe that came out low). Every figure of a step is taken over the
//! same 1 s window inside the measured run: the server's CPU time (user + system, as the
//! scheduler's run time at nanosecond resolution, `/proc/PID/task/*/schedstat`, instead of
//! 10 ms ticks) and the load generator's, over wall time; the busy
//! share of CPUs 0 and 1 (`/proc/stat`, which includes anything else running there); for m09
//! the loop's own counters (`/stats`): readiness events handled (`events`, what
//! `zyphos_loop_events_total` exports), requests answered (`session_events`) and system calls
//! made (`epoll_wait` iterations + `recv` + `send` + `epoll_ctl(MOD)`); for m03 and m06 the
//! server's system-call table (milestone 1's accounting, every call). Achieved rate and p99:
//! the load generator's report. A sweep stops after two steps in a row that fall short of their
//! offered rate (3 % tolerance) without raising the best achieved rate by 2 %, when the load
//! generator's core is full at a step that fell short, or after the last step.
//!
//! **Knee and verdict.** The knee is the step with the highest achieved rate. A sweep is
//! *server-bound* when the achieved rate stopped rising (from the knee on, some step fell short
//! of its offered rate), the server used ≥ 95 % of its core at the knee (the busiest of the knee
//! and the steps past it: the knee may be the last step that still kept up), and the load
//! generator did not reach 95 % of its core at a lower offered rate than the server did (it
//! "saturated first"). Otherwise the sweep is *client-bound* (load generator's core full first), *not saturated*
//! (the top offered rate was still achieved) or *neither core full* (something else took the
//! CPU: a busy machine), and the figure is no maximum of the loop.
//!
//! **Measured**: the loop's events/s at the knee of the m09 sweep (plain or pipelined) with the
//! most events/s among those found **server-bound** with no failed request. **Pass** when at
//! least one m09 sweep found a server-bound knee. **Fails** when none did: every sweep ended
//! client-bound (the figure is then the load generator's plateau, a lower bound of the loop's
//! maximum), unsaturated, with neither core full, invalid (a window ran past the load run: a
//! starved machine), or with failed requests. A sweep that did not end server-bound is named in
//! the detail with its figure as a lower bound, never as the measurement (on this 2-core machine
//! the non-pipelined sweep ends client-bound: zyphos-load's core spends about what the loop's
//! does per request, so it fills first). m03's and m06's sweeps run the same way in the same
//! run and are reported for comparison; they do not decide the check.

#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m08_http11::lab::{machine, run_main};
use m09_event_loop::lab::{ServerChild, num, proc_cpu_s_precise, raise_nofile, release_binary};

/// Busy share the server's (or the generator's) core must reach to count as full.
const FULL: f64 = 0.95;
/// A step "achieved" its offered rate within this share.
const MET: f64 = 0.97;
/// Offered rates, as multiples of the closed-loop probe.
const FACTORS: [f64; 8] = [0.6, 0.85, 1.0, 1.15, 1.35, 1.6, 1.9, 2.3];
/// Steps added past the planned ones while the top step still kept up, and their growth.
const EXTRA: usize = 3;
const EXTRA_FACTOR: f64 = 1.6;
/// Warm-up and measured run of each step, s; the window starts `LEAD` s into the measured run
/// and lasts `WINDOW` s.
const WARMUP: f64 = 0.5;
const DURATION: f64 = 1.5;
const LEAD: f64 = 0.25;
const WINDOW: f64 = 1.0;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// This example's `--server` mode (m09's loop and its counters).
    Loop,
    /// `zyphos serve` (m03 threads, m06 pool; milestone 1's syscall table).
    Zyphos,
}

struct Mode {
    name: &'static str,
    conns: usize,
    pipeline: usize,
}

const MODES: [Mode; 2] = [
    Mode {
        name: "non-pipelined (64 conns)",
        conns: 64,
        pipeline: 1,
    },
    Mode {
        name: "pipelined (16 conns x 16)",
        conns: 16,
        pipeline: 16,
    },
];

/// One open-loop step, figures over the window.
#[derive(Default, Clone)]
struct Step {
    offered: f64,
    achieved: f64,
    p99_us: f64,
    errors: f64,
    server_cpu: f64,
    client_cpu: f64,
    core0: f64,
    core1: f64,
    /// m09 only: loop events/s, loop requests/s; both: syscalls per request.
    events_s: f64,
    loop_rps: f64,
    syscalls_per_req: f64,
    /// The window lay inside the load run (the generator was running at both ends).
    valid: bool,
}

/// `(busy, total)` jiffies of every CPU, from `/proc/stat`.
fn cpu_jiffies() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            // idle + iowait are not busy.
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

fn busy(a: &[(u64, u64)], b: &[(u64, u64)], cpu: usize) -> f64 {
    match (a.get(cpu), b.get(cpu)) {
        (Some(x), Some(y)) if y.1 > x.1 => (y.0 - x.0) as f64 / (y.1 - x.1) as f64,
        _ => 0.0,
    }
}

/// The server-side counters a step needs: (events, requests, syscalls); requests 0 when the
/// server does not count them (m03, m06: the client's figure is used).
fn counters(kind: Kind, stats: &serde_json::Value) -> (f64, f64, f64) {
    match kind {
        Kind::Loop => {
            let d = |n: &str| support::driver(stats, n);
            (
                d("events"),
                d("session_events"),
                d("iterations") + d("reads") + d("writes") + d("modifications"),
            )
        }
        Kind::Zyphos => {
            let calls = stats
                .get("syscalls")
                .and_then(|s| s.as_object())
                .map(|m| m.values().map(|v| num(v, &["count"])).sum())
                .unwrap_or(0.0);
            (0.0, 0.0, calls)
        }
    }
}

struct Snap {
    /// The load generator was still running when this was read.
    client_running: bool,
    at: Instant,
    server_cpu: f64,
    client_cpu: f64,
    cores: Vec<(u64, u64)>,
    counters: (f64, f64, f64),
}

fn snap(server: &ServerChild, kind: Kind, client: u32) -> std::io::Result<Snap> {
    let stats = server.stats()?;
    // The window must lie inside the load run: the generator still running at both ends.
    let state = std::fs::read_to_string(format!("/proc/{client}/stat")).unwrap_or_default();
    let running = state
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next())
        .is_some_and(|st| st != "Z" && st != "X");
    Ok(Snap {
        client_running: running,
        at: Instant::now(),
        server_cpu: proc_cpu_s_precise(server.pid())?,
        client_cpu: proc_cpu_s_precise(client)?,
        cores: cpu_jiffies(),
        counters: counters(kind, &stats),
    })
}

/// `zyphos-load` on CPU 1 against `addr`, with `extra` arguments; runs `during(pid)` while it
/// runs; returns its report and `during`'s result.
fn load<T>(
    addr: SocketAddr,
    mode: &Mode,
    extra: &[String],
    during: impl FnOnce(u32) -> std::io::Result<T>,
) -> std::io::Result<(serde_json::Value, T)> {
    let bin = release_binary("zyphos-load", "zyphos-load")?;
    let mut child = Command::new(bin)
        .arg(format!("http://{addr}/plaintext"))
        .args(["-t", "1", "--cpu", "1", "--timeout", "5", "--json"])
        .args(["-c", &mode.conns.to_string()])
        .args(["--pipeline", &mode.pipeline.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let got = during(child.id());
    let mut out = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut out)?;
    }
    let status = child.wait()?;
    let got = got?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "zyphos-load {extra:?} failed: {status}"
        )));
    }
    let report = serde_json::from_slice(&out).map_err(std::io::Error::other)?;
    Ok((report, got))
}

fn step(server: &ServerChild, kind: Kind, mode: &Mode, rate: f64) -> std::io::Result<Step> {
    let args: Vec<String> = [
        "-r".to_string(),
        format!("{rate:.0}"),
        "--warmup".into(),
        WARMUP.to_string(),
        "-d".into(),
        DURATION.to_string(),
    ]
    .into();
    let (report, (a, b)) = load(server.addr, mode, &args, |pid| {
        std::thread::sleep(Duration::from_secs_f64(WARMUP + LEAD));
        let a = snap(server, kind, pid)?;
        std::thread::sleep(Duration::from_secs_f64(WINDOW));
        let b = snap(server, kind, pid)?;
        Ok((a, b))
    })?;
    let (rps, _, p99, _, errors) = support::summary(&report);
    let wall = (b.at - a.at).as_secs_f64();
    let (events, reqs, calls) = (
        b.counters.0 - a.counters.0,
        b.counters.1 - a.counters.1,
        b.counters.2 - a.counters.2,
    );
    // Requests in the window: the loop's own count, else the client's rate over the window.
    let window_reqs = if kind == Kind::Loop { reqs } else { rps * wall };
    Ok(Step {
        offered: rate,
        achieved: rps,
        p99_us: p99,
        errors,
        server_cpu: (b.server_cpu - a.server_cpu) / wall,
        client_cpu: (b.client_cpu - a.client_cpu) / wall,
        core0: busy(&a.cores, &b.cores, 0),
        core1: busy(&a.cores, &b.cores, 1),
        events_s: events / wall,
        loop_rps: reqs / wall,
        syscalls_per_req: calls / window_reqs.max(1.0),
        valid: a.client_running && b.client_running,
    })
}

#[derive(PartialEq, Clone, Copy)]
enum Verdict {
    ServerBound,
    ClientBound,
    NotSaturated,
    NeitherFull,
    Invalid,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::ServerBound => "server-bound",
            Verdict::ClientBound => "CLIENT-BOUND (load generator's core full first)",
            Verdict::NotSaturated => "NOT SATURATED (top offered rate still achieved)",
            Verdict::NeitherFull => "NEITHER CORE FULL at the knee (CPU taken by something else)",
            Verdict::Invalid => {
                "INVALID (a window ran past the load run: the machine is starved, no honest step)"
            }
        }
    }
}

struct Sweep {
    probe: f64,
    /// The server's busiest share of its core from the knee on.
    plateau_cpu: f64,
    steps: Vec<Step>,
    knee: usize,
    verdict: Verdict,
}

fn sweep(server: &ServerChild, kind: Kind, mode: &Mode) -> std::io::Result<Sweep> {
    let (probe, ()) = load(
        server.addr,
        mode,
        &["-d".into(), "1".into(), "--warmup".into(), "0.2".into()],
        |_| Ok(()),
    )?;
    let probe = num(&probe, &["rps"]);
    if probe <= 0.0 {
        return Err(std::io::Error::other("closed-loop probe answered nothing"));
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut flat = 0;
    // The planned steps, then (only while the last step still kept up: the probe placed them too
    // low) up to `EXTRA` more, each `EXTRA_FACTOR` times the one before.
    let mut factors = FACTORS.to_vec();
    let mut extra = 0;
    let mut i = 0;
    while let Some(&f) = factors.get(i) {
        i += 1;
        let s = step(server, kind, mode, probe * f)?;
        if i == factors.len() && s.valid && s.achieved >= MET * s.offered && extra < EXTRA {
            extra += 1;
            factors.push(f * EXTRA_FACTOR);
        }
        if !s.valid {
            eprintln!(
                "  offered {:>8.0}: the window ran past the load run (starved machine)",
                s.offered
            );
            steps.push(s);
            break;
        }
        eprintln!(
            "  offered {:>8.0} achieved {:>8.0} p99 {:>9.0} us  server {:>3.0}% client {:>3.0}%  cpu0 {:>3.0}% cpu1 {:>3.0}%  events/s {:>8.0} syscalls/req {:.2}",
            s.offered,
            s.achieved,
            s.p99_us,
            s.server_cpu * 100.0,
            s.client_cpu * 100.0,
            s.core0 * 100.0,
            s.core1 * 100.0,
            s.events_s,
            s.syscalls_per_req
        );
        let best = steps.iter().map(|s| s.achieved).fold(0.0, f64::max);
        let short = s.achieved < MET * s.offered;
        flat = if short && s.achieved < 1.02 * best {
            flat + 1
        } else {
            0
        };
        let client_full = short && s.client_cpu >= FULL;
        steps.push(s);
        if flat >= 2 || client_full {
            break;
        }
    }
    let knee = (0..steps.len())
        .max_by(|&a, &b| steps[a].achieved.total_cmp(&steps[b].achieved))
        .unwrap_or(0);
    let first = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f);
    let server_full_at = first(&|s| s.server_cpu >= FULL);
    let client_full_at = first(&|s| s.client_cpu >= FULL);
    // From the knee on, some step fell short of its offered rate (the top step of a sweep that
    // kept up at every rate is no knee).
    let stopped_rising = steps[knee..].iter().any(|s| s.achieved < MET * s.offered);
    // The loop's core at the knee: the busiest step of the plateau (the knee and the steps past
    // it), since the knee itself may be the last step that still kept up.
    let plateau_cpu = steps[knee..]
        .iter()
        .map(|s| s.server_cpu)
        .fold(0.0, f64::max);
    let verdict = if steps.iter().any(|s| !s.valid) {
        Verdict::Invalid
    } else if !stopped_rising {
        Verdict::NotSaturated
    } else if matches!((client_full_at, server_full_at), (Some(c), Some(s)) if c < s)
        || (client_full_at.is_some() && server_full_at.is_none())
    {
        Verdict::ClientBound
    } else if plateau_cpu >= FULL {
        Verdict::ServerBound
    } else {
        Verdict::NeitherFull
    };
    Ok(Sweep {
        probe,
        plateau_cpu,
        steps,
        knee,
        verdict,
    })
}

fn main() -> std::process::ExitCode {
    if support::maybe_server() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        raise_nofile()?;
        let started = Instant::now();
        let exe = std::env::current_exe()?;
        let zyphos = release_binary("zyphos", "zyphos")?;
        let servers: [(&str, Kind); 3] = [
            ("m09 epoll loop", Kind::Loop),
            ("m03 threads", Kind::Zyphos),
            ("m06 pool", Kind::Zyphos),
        ];
        let mut parts = Vec::new();
        // m09's sweeps: (mode, knee events/s, knee loop req/s, verdict, errors).
        let mut m09: Vec<(&str, f64, f64, Verdict, f64)> = Vec::new();
        for (name, kind) in servers {
            for mode in &MODES {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", "0"]);
                match name {
                    "m09 epoll loop" => {
                        cmd.arg(&exe)
                            .args(["--server", "--max-requests", "100000000"]);
                    }
                    _ => {
                        cmd.arg(&zyphos).args([
                            "serve",
                            "--listen",
                            "127.0.0.1:0",
                            "--proto",
                            "http1.1",
                            "--keepalive-requests",
                            "100000000",
                        ]);
                        if name == "m03 threads" {
                            cmd.args(["--io", "threads"]);
                        } else {
                            cmd.args(["--io", "pool", "--workers", &(mode.conns + 2).to_string()]);
                        }
                    }
                }
                eprintln!("{name}, {}:", mode.name);
                let server = ServerChild::start(cmd)?;
                let result = sweep(&server, kind, mode);
                server.stop()?;
                let sw = result?;
                let k = &sw.steps[sw.knee];
                let errors: f64 = sw.steps.iter().map(|s| s.errors).sum();
                let sustained = sw
                    .steps
                    .iter()
                    .rfind(|s| s.achieved >= MET * s.offered && s.offered <= k.offered);
                let events = if kind == Kind::Loop {
                    format!(
                        "{:.0} events/s ({:.0} loop requests/s, {:.3} events/request), ",
                        k.events_s,
                        k.loop_rps,
                        k.events_s / k.loop_rps.max(1.0)
                    )
                } else {
                    String::new()
                };
                let verdict = sw.verdict.name();
                eprintln!("  -> {verdict}");
                parts.push(format!(
                    "{name}, {}: {verdict}; knee at step {}/{} (offered {:.0}/s, probe {:.0}/s): {events}{:.0} req/s, {:.2} syscalls/request, p99 {:.0} us, server CPU {:.0} % (busiest from the knee on {:.0} %) / load generator {:.0} % of a core (CPU0/CPU1 busy {:.0}/{:.0} %){}; {errors:.0} errors",
                    mode.name,
                    sw.knee + 1,
                    sw.steps.len(),
                    k.offered,
                    sw.probe,
                    k.achieved,
                    k.syscalls_per_req,
                    k.p99_us,
                    k.server_cpu * 100.0,
                    sw.plateau_cpu * 100.0,
                    k.client_cpu * 100.0,
                    k.core0 * 100.0,
                    k.core1 * 100.0,
                    match sustained {
                        Some(s) => format!(
                            "; highest step that met its offered rate: {:.0} req/s, p99 {:.0} us",
                            s.achieved, s.p99_us
                        ),
                        None => "; no step met its offered rate".into(),
                    },
                ));
                if kind == Kind::Loop {
                    m09.push((mode.name, k.events_s, k.loop_rps, sw.verdict, errors));
                }
            }
        }
        // A knee found server-bound decides: the most events/s among the m09 sweeps whose knee
        // is the loop's own limit (error-free). A client-bound sweep's figure is a lower bound
        // of the loop's maximum, reported as such, never the measurement.
        let bound = m09
            .iter()
            .filter(|m| m.3 == Verdict::ServerBound && m.4 == 0.0 && m.1 > 0.0 && m.2 > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let lower_bounds: Vec<String> = m09
            .iter()
            .filter(|m| m.3 != Verdict::ServerBound && m.3 != Verdict::Invalid && m.1 > 0.0)
            .map(|m| {
                format!(
                    "{}: {:.0} events/s ({:.0} req/s) from a sweep that is {}, a lower bound of \
                     the loop's maximum, not the maximum",
                    m.0,
                    m.1,
                    m.2,
                    m.3.name()
                )
            })
            .collect();
        let (pass, measured, mut why) = match bound {
            Some(&(mode, events, rps, _, _)) => (
                true,
                events,
                format!(
                    "pass: the loop's maximum found at a server-bound knee, {mode}: {events:.0} \
                     events/s, {rps:.0} requests/s"
                ),
            ),
            None => (
                false,
                0.0,
                match m09.iter().find(|m| m.4 > 0.0) {
                    Some(m) => format!(
                        "FAIL: no m09 sweep found a server-bound knee ({} had {:.0} failed \
                         requests)",
                        m.0, m.4
                    ),
                    None => "FAIL: no m09 sweep found a server-bound knee (each ended \
                             client-bound, unsaturated, with neither core full, or invalid)"
                        .to_string(),
                },
            ),
        };
        if !lower_bounds.is_empty() {
            why = format!("{why}; {}", lower_bounds.join("; "));
        }
        let detail = format!(
            "{why}. Highest events/s one m09 loop handled at a knee (open-loop sweeps, server on CPU 0, zyphos-load on CPU 1, GET /plaintext): {measured:.0}. {}. Server-bound = achieved rate stopped rising, server >= 95 % of its core at the knee, load generator not full first. {:.0} s. {}",
            parts.join(". "),
            started.elapsed().as_secs_f64(),
            machine()
        );
        eprintln!("{detail}");
        m01_raw_sockets::lab::print_check_measured(pass, measured, "events/s", &detail);
        Ok(())
    })
}
