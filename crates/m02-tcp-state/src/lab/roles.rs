//! Programs the namespace experiments run inside a namespace (the experiment's own binary,
//! re-executed with `--role NAME`): a tracked echo server and a listener that never accepts,
//! both answering `stats` on stdin with one JSON line.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use serde_json::{Value, json};

use super::{TrackedServer, echo_config};
use crate::kernel;
use crate::tracker::TrackerConfig;

/// The nstat counters the experiments read.
pub const COUNTERS: &[&str] = &[
    "TcpExtSyncookiesSent",
    "TcpExtSyncookiesRecv",
    "TcpExtSyncookiesFailed",
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPReqQFullDrop",
    "TcpExtTCPReqQFullDoCookies",
    "TcpExtTCPChallengeACK",
    "TcpExtTCPKeepAlive",
    "TcpExtTCPTimeouts",
    "TcpExtTCPSynRetrans",
    "TcpExtTCPAbortOnTimeout",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnClose",
    "TcpExtTW",
    "TcpExtTCPTimeWaitOverflow",
    "TcpExtTCPACKSkippedSeq",
    "TcpExtPAWSEstab",
    "TcpExtOutOfWindowIcmps",
    "TcpExtTCPSpuriousRtxHostQueues",
    "TcpActiveOpens",
    "TcpPassiveOpens",
    "TcpAttemptFails",
    "TcpEstabResets",
    "TcpOutRsts",
    "TcpRetransSegs",
    "TcpInSegs",
    "TcpOutSegs",
];

/// This namespace's counters (only [`COUNTERS`]), sockstat, and the states on `port`.
pub fn kernel_view(port: u16) -> Value {
    let c = kernel::netstat_counters().unwrap_or_default();
    let counters: serde_json::Map<String, Value> = COUNTERS
        .iter()
        .map(|n| ((*n).to_owned(), json!(c.get(*n).copied().unwrap_or(0))))
        .collect();
    let entries = kernel::proc_net_tcp().unwrap_or_default();
    json!({
        "counters": counters,
        "sockstat": kernel::sockstat().ok(),
        "states_on_port": kernel::states_on_port(&entries, port),
        "entries_on_port": entries.iter().filter(|e| e.local.port() == port).collect::<Vec<_>>(),
    })
}

/// Writes `/proc/sys/KEY` in this process's namespace.
pub fn sysctl(key: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
}

/// Applies `--sysctl key=value` arguments.
pub fn apply_sysctls(args: &[String]) -> io::Result<()> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--sysctl" {
            if let Some((k, v)) = it.next().and_then(|kv| kv.split_once('=')) {
                sysctl(k, v)?;
            }
        }
    }
    Ok(())
}

fn say(v: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    out.flush()
}

/// `--role serve --listen ADDR [--backlog N] [--capacity N] [--keepalive I,N,C]
/// [--inactivity-ms MS] [--fin-wait-ms MS] [--tw-budget N | --tw-budget-off] [--verify]
/// [--sysctl k=v]…`: the tracked echo
/// server. Prints `{"ready": ADDR}`, then answers `stats` (table + kernel view) and `rows`
/// until stdin closes.
pub fn serve(args: &[String]) -> io::Result<()> {
    apply_sysctls(args)?;
    let listen: SocketAddr =
        super::netns::arg(args, "--listen").ok_or_else(|| io::Error::other("--listen ADDR"))?;
    let mut echo = echo_config();
    echo.listen = listen;
    if let Some(b) = super::netns::arg(args, "--backlog") {
        echo.backlog = b;
    }
    let mut cfg = TrackerConfig::default();
    if let Some(c) = super::netns::arg(args, "--capacity") {
        cfg.table.capacity = c;
    }
    if let Some(k) = super::netns::arg::<String>(args, "--keepalive") {
        cfg.keepalive = crate::cli::parse_keepalive(&k);
    }
    if let Some(ms) = super::netns::arg::<u64>(args, "--inactivity-ms") {
        cfg.table.inactivity_timeout = Some(Duration::from_millis(ms));
    }
    if let Some(ms) = super::netns::arg::<u64>(args, "--fin-wait-ms") {
        cfg.table.fin_wait_timeout = Some(Duration::from_millis(ms));
        cfg.linger2 = Some(Duration::from_millis(ms.max(1000)));
    }
    cfg.verify = args.iter().any(|a| a == "--verify");
    if args.iter().any(|a| a == "--tw-budget-off") {
        cfg.table.time_wait_budget = None;
    }
    if let Some(b) = super::netns::arg(args, "--tw-budget") {
        cfg.table.time_wait_budget = Some(b);
    }
    cfg.table.lifecycle_capacity = 4096;
    let server = TrackedServer::start(echo, cfg)?;
    let port = server.addr.port();
    say(&json!({ "ready": server.addr }))?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        match line.trim() {
            "stats" => {
                let (stats, rows, lifecycles) = server.with(|t| {
                    let now = Instant::now();
                    (
                        t.table().stats(now),
                        t.rows(now),
                        t.table().lifecycles().iter().cloned().collect::<Vec<_>>(),
                    )
                });
                say(&json!({
                    "table": stats,
                    "rows": rows,
                    "lifecycles": lifecycles,
                    "kernel": kernel_view(port),
                }))?;
            }
            "quit" => break,
            _ => say(&json!({ "error": format!("unknown command {line:?}") }))?,
        }
    }
    let report = server.stop()?;
    say(&json!({ "accepted": report.counters.accepted, "shed": report.counters.shed }))
}

/// `--role listen --listen ADDR --backlog N [--sysctl k=v]…`: a listener that never accepts.
/// Prints `{"ready": ADDR}`, answers `stats` (kernel view) until stdin closes.
pub fn listen_only(args: &[String]) -> io::Result<()> {
    apply_sysctls(args)?;
    let listen: SocketAddr =
        super::netns::arg(args, "--listen").ok_or_else(|| io::Error::other("--listen ADDR"))?;
    let backlog: i32 = super::netns::arg(args, "--backlog").unwrap_or(8);
    let l = sys::tcp_socket(&listen, false)?;
    sys::set_reuseaddr(l.as_fd(), true)?;
    sys::bind(l.as_fd(), &listen)?;
    sys::listen(l.as_fd(), backlog)?;
    say(&json!({ "ready": listen }))?;
    for line in io::stdin().lock().lines() {
        match line?.trim() {
            "stats" => say(&json!({ "kernel": kernel_view(listen.port()) }))?,
            "quit" => break,
            other => say(&json!({ "error": format!("unknown command {other:?}") }))?,
        }
    }
    Ok(())
}

/// `--role hold --connect ADDR [--count N] [--sysctl k=v]…`: opens N connections (default 1),
/// echoes one message on each, prints `{"local": [ADDR…]}`, holds them until stdin closes, then
/// prints each one's kernel state and `TCP_INFO` counters.
pub fn hold(args: &[String]) -> io::Result<()> {
    apply_sysctls(args)?;
    let addr: SocketAddr =
        super::netns::arg(args, "--connect").ok_or_else(|| io::Error::other("--connect ADDR"))?;
    let n: usize = super::netns::arg(args, "--count").unwrap_or(1);
    let mut conns = Vec::with_capacity(n);
    let mut locals = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = m01_raw_sockets::lab::connect(addr, Duration::from_secs(5))?;
        m01_raw_sockets::lab::echo_round_trip(&mut c, &m01_raw_sockets::lab::pattern(32, i as u8))?;
        locals.push(c.local_addr()?);
        conns.push(c);
    }
    say(&json!({ "local": locals }))?;
    let mut line = String::new();
    while io::stdin().lock().read_line(&mut line)? > 0 {
        line.clear();
    }
    let infos: Vec<Value> = conns
        .iter()
        .map(|c| match kernel::tcp_info(c.as_fd()) {
            Ok(i) => json!({ "state": i.kernel_state().ss_name(), "info": i }),
            Err(e) => json!({ "error": e.to_string() }),
        })
        .collect();
    say(&json!({ "final": infos }))
}

/// Runs the role named on the command line, if any; `Some(exit code)` when it did.
/// `extra` handles roles specific to one experiment.
pub fn dispatch(
    extra: impl FnOnce(&str, &[String]) -> Option<io::Result<()>>,
) -> Option<std::process::ExitCode> {
    let (role, args) = super::netns::role_args()?;
    let result = match role.as_str() {
        "serve" => serve(&args),
        "listen" => listen_only(&args),
        "hold" => hold(&args),
        other => extra(other, &args)
            .unwrap_or_else(|| Err(io::Error::other(format!("unknown role {other}")))),
    };
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("role {role}: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}
