//! `cargo xtask compare A B`: the same load against "the server as of milestone A" and "as of
//! milestone B", alternating A B A B, with medians and ratios.
//!
//! Each run starts a fresh `target/release/zyphos` with the milestone's `[server] args` on a
//! free loopback port, waits (bounded) until it accepts, runs `zyphos-load --json` against it,
//! and kills the server (a drop guard, so errors and panics kill it too). With two or more CPUs
//! the server is pinned to one and the load generator to another, so they do not share a core.
//! The result goes to `docs/results/compare-A-B-SCENARIO.json`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};
use zyphos_load::Report;

use crate::evidence::cargo;
use crate::exec::{Background, Cmd};
use crate::machine::{self, GitInfo, Machine};
use crate::manifest::{self, Manifest, format_number};
use crate::results;
use crate::sys;

/// How long a server may take to start accepting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Protocols without a TCP listener to probe.
const DATAGRAM_PROTOCOLS: [&str; 4] = ["udp-echo", "rudp", "multicast", "quic"];

/// What the user asked for.
#[derive(Debug, Clone)]
pub(crate) struct CompareOptions {
    /// Milestone A as typed.
    pub(crate) a: String,
    /// Milestone B as typed.
    pub(crate) b: String,
    /// Load scenario (default: the shared `[server] protocol`).
    pub(crate) scenario: Option<String>,
    /// A-B rounds.
    pub(crate) rounds: u32,
    /// Seconds per load run.
    pub(crate) duration_s: u64,
    /// Concurrent connections.
    pub(crate) connections: u64,
}

/// One load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompareRun {
    /// `A` or `B`: which side of the comparison (they may be the same milestone).
    pub(crate) side: String,
    /// Which milestone's server.
    pub(crate) milestone: u32,
    /// Round number (1-based).
    pub(crate) round: u32,
    /// The server command.
    pub(crate) server_command: String,
    /// The load command.
    pub(crate) load_command: String,
    /// What `zyphos-load --json` printed.
    pub(crate) report: Report,
}

/// Medians for one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Side {
    /// Milestone number.
    pub(crate) milestone: u32,
    /// Its title.
    pub(crate) title: String,
    /// Median requests per second over the rounds.
    pub(crate) median_rps: f64,
    /// Median p99 latency over the rounds, in microseconds.
    pub(crate) median_p99_us: f64,
}

/// `docs/results/compare-A-B-S.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompareResults {
    /// The xtask command.
    pub(crate) command: String,
    /// Load scenario.
    pub(crate) scenario: String,
    /// Rounds.
    pub(crate) rounds: u32,
    /// Seconds per run.
    pub(crate) duration_s: u64,
    /// Connections.
    pub(crate) connections: u64,
    /// How server and load generator were placed on CPUs.
    pub(crate) pinning: String,
    /// Where.
    pub(crate) machine: Machine,
    /// Which tree.
    pub(crate) git: GitInfo,
    /// When.
    pub(crate) timestamp: String,
    /// A then B.
    pub(crate) sides: Vec<Side>,
    /// B's median rps / A's.
    pub(crate) ratio_rps: f64,
    /// B's median p99 / A's.
    pub(crate) ratio_p99: f64,
    /// Every run in the order they ran.
    pub(crate) runs: Vec<CompareRun>,
}

/// Whether a server whose manifest says it speaks `protocol` can be loaded with `scenario`:
/// its own protocol, and HTTP/1.0 for an HTTP/1.1 server (RFC 9112 §2.6: a server that speaks
/// 1.1 must answer 1.0 requests, and milestone 8's core does, with 1.0 framing).
fn speaks(protocol: &str, scenario: &str) -> bool {
    protocol == scenario || (protocol == "http1.1" && scenario == "http1.0")
}

/// The scenario both milestones can be measured with: the requested one if both speak it;
/// otherwise their protocol when it is the same, else the one scenario both speak (HTTP/1.0
/// for an HTTP/1.0 server against an HTTP/1.1 one).
pub(crate) fn shared_scenario(
    a: &Manifest,
    b: &Manifest,
    requested: Option<&str>,
) -> Result<String> {
    let (pa, pb) = (a.server.protocol.as_str(), b.server.protocol.as_str());
    if let Some(s) = requested {
        for (m, p) in [(a, pa), (b, pb)] {
            if !speaks(p, s) {
                bail!("milestone {} speaks {p}, not {s}", m.number);
            }
        }
        return Ok(s.to_string());
    }
    if pa == pb {
        return Ok(pa.to_string());
    }
    match [pa, pb]
        .into_iter()
        .find(|&s| speaks(pa, s) && speaks(pb, s))
    {
        Some(s) => Ok(s.to_string()),
        None => bail!(
            "milestone {} speaks {pa}, milestone {} speaks {pb}: no shared scenario",
            a.number,
            b.number
        ),
    }
}

/// `[server] args` with `{listen}` and `{port}` filled in.
pub(crate) fn server_args(args: &[String], port: u16) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.replace("{listen}", &format!("127.0.0.1:{port}"))
                .replace("{port}", &port.to_string())
        })
        .collect()
}

/// The median (mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// `docs/results/compare-A-B-S.json`, relative to the root.
pub(crate) fn results_path(a: u32, b: u32, scenario: &str) -> PathBuf {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new("docs/results").join(format!("compare-{a}-{b}-{safe}.json"))
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Fails when `port` is taken (something accepts there, or it cannot be bound).
fn ensure_port_free(port: u16) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        bail!("port {port} on 127.0.0.1 is already in use: something accepted a connection there");
    }
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) => bail!("port {port} on 127.0.0.1 is not usable: {e}"),
    }
}

/// Starts the server of `m` and waits until it accepts.
fn start_server(
    root: &Path,
    zyphos: &Path,
    m: &Manifest,
    cpu: Option<usize>,
) -> Result<(Background, SocketAddr)> {
    let port = free_port()?;
    ensure_port_free(port)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut argv = vec![zyphos.display().to_string()];
    argv.extend(server_args(&m.server.args, port));
    let mut cmd = Cmd::new(argv, root);
    if let Some(cpu) = cpu {
        cmd = cmd.pin_cpu(cpu);
    }
    let mut server = cmd.spawn_background()?;
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let datagram = DATAGRAM_PROTOCOLS.contains(&m.server.protocol.as_str());
    loop {
        if let Some(status) = server.exited() {
            bail!(
                "the server of milestone {} exited before accepting on {addr} ({status}): `{}`: {}",
                m.number,
                server.command(),
                server.stderr_tail(3)
            );
        }
        if datagram {
            // Nothing to connect to: give it a moment and make sure it is still alive.
            thread::sleep(Duration::from_millis(500));
            if server.exited().is_none() {
                break;
            }
            continue;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the server of milestone {} did not accept on {addr} within {} s: `{}`",
                m.number,
                STARTUP_TIMEOUT.as_secs(),
                server.command()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok((server, addr))
}

/// The binaries a comparison runs.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    /// The server (`target/release/zyphos`).
    pub(crate) server: PathBuf,
    /// The load generator (`target/release/zyphos-load`).
    pub(crate) load: PathBuf,
}

/// Builds `target/release/zyphos` and `target/release/zyphos-load` (release profile) and returns
/// their paths.
pub(crate) fn build_binaries(root: &Path) -> Result<Binaries> {
    let build = Cmd::new(
        [
            cargo().as_str(),
            "build",
            "--release",
            "-p",
            "zyphos",
            "-p",
            "zyphos-load",
        ],
        root,
    )
    .timeout(Duration::from_secs(40 * 60))
    .echo_stderr();
    println!("$ {}", build.display());
    let out = build.run()?;
    if !out.success() {
        bail!("`{}` failed ({})", build.display(), out.describe_status());
    }
    let release = target_dir(root).join("release");
    Ok(Binaries {
        server: release.join("zyphos"),
        load: release.join("zyphos-load"),
    })
}

/// Runs the comparison: checks, builds, measures, prints, records.
pub(crate) fn run(root: &Path, opts: &CompareOptions) -> Result<()> {
    let a = manifest::find(root, &opts.a)?;
    let b = manifest::find(root, &opts.b)?;
    let scenario = shared_scenario(&a, &b, opts.scenario.as_deref())?;
    for m in [&a, &b] {
        if let Some(reason) = m.not_built_reason(root) {
            bail!("{reason}");
        }
    }
    if opts.rounds == 0 || opts.duration_s == 0 || opts.connections == 0 {
        bail!("--rounds, --duration and --connections must be at least 1");
    }
    let bins = build_binaries(root)?;
    let record = measure(root, &bins, &a, &b, &scenario, opts)?;
    print_summary(&record);
    let path = results_path(a.number, b.number, &scenario);
    results::write_json(root, &path, &record)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Alternates A and B for `opts.rounds` rounds and summarises.
pub(crate) fn measure(
    root: &Path,
    bins: &Binaries,
    a: &Manifest,
    b: &Manifest,
    scenario: &str,
    opts: &CompareOptions,
) -> Result<CompareResults> {
    // Placement: server on the first allowed CPU, load generator on the second.
    let cpus = sys::allowed_cpus();
    let (server_cpu, load_cpu) = match cpus.as_slice() {
        [first, second, ..] => (Some(*first), Some(*second)),
        _ => (None, None),
    };
    let pinning = match (server_cpu, load_cpu) {
        (Some(s), Some(l)) => format!(
            "server pinned to CPU {s} (sched_setaffinity), load generator to CPU {l} (zyphos-load --cpu)"
        ),
        _ => "none: fewer than two CPUs available".to_string(),
    };
    println!("placement: {pinning}");

    let mut runs = Vec::new();
    for round in 1..=opts.rounds {
        for (side, m) in [("A", a), ("B", b)] {
            let (server, addr) = start_server(root, &bins.server, m, server_cpu)?;
            let mut argv = vec![
                bins.load.display().to_string(),
                "--json".into(),
                "--scenario".into(),
                scenario.to_string(),
                "--duration".into(),
                opts.duration_s.to_string(),
                "--connections".into(),
                opts.connections.to_string(),
            ];
            if let Some(cpu) = load_cpu {
                argv.extend(["--cpu".to_string(), cpu.to_string()]);
            }
            argv.push(addr.to_string());
            let cmd = Cmd::new(argv, root)
                .timeout(Duration::from_secs(opts.duration_s.saturating_add(120)));
            let out = cmd.run()?;
            let server_command = server.command().to_string();
            drop(server);
            if !out.success() {
                bail!(
                    "`{}` failed against milestone {} ({}): {}",
                    cmd.display(),
                    m.number,
                    out.describe_status(),
                    out.stderr_tail(3)
                );
            }
            let report: Report = serde_json::from_str(out.stdout.trim()).with_context(|| {
                format!(
                    "`{}` did not print a zyphos-load JSON report",
                    cmd.display()
                )
            })?;
            let errors: u64 = report.errors.values().sum();
            println!(
                "round {round}/{}: {side} = milestone {:>2}  {:>12} rps  p99 {:>10} us  errors {errors}",
                opts.rounds,
                m.number,
                format_number(report.rps),
                format_number(report.latency.p99_us)
            );
            runs.push(CompareRun {
                side: side.to_string(),
                milestone: m.number,
                round,
                server_command,
                load_command: cmd.display(),
                report,
            });
        }
    }

    let side = |name: &str, m: &Manifest| {
        let mine: Vec<&CompareRun> = runs.iter().filter(|r| r.side == name).collect();
        Side {
            milestone: m.number,
            title: m.title.clone(),
            median_rps: median(&mine.iter().map(|r| r.report.rps).collect::<Vec<_>>()),
            median_p99_us: median(
                &mine
                    .iter()
                    .map(|r| r.report.latency.p99_us)
                    .collect::<Vec<_>>(),
            ),
        }
    };
    let (sa, sb) = (side("A", a), side("B", b));
    let ratio_rps = sb.median_rps / sa.median_rps;
    let ratio_p99 = sb.median_p99_us / sa.median_p99_us;
    Ok(CompareResults {
        command: format!(
            "cargo xtask compare {} {} --scenario {scenario} --rounds {} --duration {} --connections {}",
            a.number, b.number, opts.rounds, opts.duration_s, opts.connections
        ),
        scenario: scenario.to_string(),
        rounds: opts.rounds,
        duration_s: opts.duration_s,
        connections: opts.connections,
        pinning,
        machine: Machine::current(),
        git: GitInfo::current(root),
        timestamp: machine::timestamp_now(),
        sides: vec![sa, sb],
        ratio_rps,
        ratio_p99,
        runs,
    })
}

fn print_summary(r: &CompareResults) {
    let [sa, sb] = [&r.sides[0], &r.sides[1]];
    println!();
    println!(
        "{:<14} {:>16} {:>16} {:>8}",
        "",
        format!("milestone {}", sa.milestone),
        format!("milestone {}", sb.milestone),
        "B/A"
    );
    println!(
        "{:<14} {:>16} {:>16} {:>8.2}",
        "rps (median)",
        format_number(sa.median_rps),
        format_number(sb.median_rps),
        r.ratio_rps
    );
    println!(
        "{:<14} {:>16} {:>16} {:>8.2}",
        "p99 us (med.)",
        format_number(sa.median_p99_us),
        format_number(sb.median_p99_us),
        r.ratio_p99
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::project_root;

    #[test]
    fn protocols_must_match() {
        let root = project_root();
        let m1 = manifest::find(&root, "1").expect("m01");
        let m9 = manifest::find(&root, "9").expect("m09");
        let err = shared_scenario(&m1, &m9, None).expect_err("echo vs http1.1");
        assert_eq!(
            err.to_string(),
            format!(
                "milestone 1 speaks {}, milestone 9 speaks {}: no shared scenario",
                m1.server.protocol, m9.server.protocol
            )
        );
        assert_eq!(
            shared_scenario(&m9, &m9, None).ok(),
            Some(m9.server.protocol.clone())
        );
        assert_eq!(
            shared_scenario(&m9, &m9, Some("http1.0")).ok(),
            Some("http1.0".to_string())
        );
        let err = shared_scenario(&m9, &m9, Some("echo")).expect_err("http1.1 is not echo");
        assert_eq!(
            err.to_string(),
            format!("milestone 9 speaks {}, not echo", m9.server.protocol)
        );
    }

    #[test]
    fn http11_server_measured_with_http10_against_http10_server() {
        let root = project_root();
        let m6 = manifest::find(&root, "6").expect("m06");
        let m8 = manifest::find(&root, "8").expect("m08");
        assert_eq!(
            (m6.server.protocol.as_str(), m8.server.protocol.as_str()),
            ("http1.0", "http1.1")
        );
        for (a, b) in [(&m6, &m8), (&m8, &m6)] {
            assert_eq!(
                shared_scenario(a, b, None).ok(),
                Some("http1.0".to_string())
            );
            assert_eq!(
                shared_scenario(a, b, Some("http1.0")).ok(),
                Some("http1.0".to_string())
            );
            let err = shared_scenario(a, b, Some("http1.1")).expect_err("m06 has no keep-alive");
            assert_eq!(err.to_string(), "milestone 6 speaks http1.0, not http1.1");
        }
    }

    #[test]
    fn placeholders_are_filled() {
        let args: Vec<String> = [
            "serve",
            "--listen",
            "{listen}",
            "--group",
            "239.255.0.1:{port}",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            server_args(&args, 4242),
            [
                "serve",
                "--listen",
                "127.0.0.1:4242",
                "--group",
                "239.255.0.1:4242"
            ]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn port_in_use_is_reported() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let err = ensure_port_free(port).expect_err("taken");
        assert!(err.to_string().contains(&format!("port {port}")), "{err}");
        drop(listener);
        assert_eq!(
            results_path(3, 9, "http1.1"),
            Path::new("docs/results/compare-3-9-http1.1.json")
        );
    }
}
