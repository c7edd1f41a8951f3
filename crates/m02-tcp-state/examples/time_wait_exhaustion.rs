//! Experiment `time_wait_exhaustion`: who runs out of ports when TIME-WAIT piles up. Inside
//! namespaces this program creates (one pair per row, so that sysctls and counters are the
//! row's own), a client connects to the echo server (with a connection table) as fast as it
//! can for a fixed time from a deliberately small ephemeral port range (100 ports). Rows vary
//! who closes first and the kernel's TIME-WAIT settings. Counted: connects that worked, ones
//! that failed with `EADDRNOTAVAIL` (no free local port), TIME-WAIT sockets on each side
//! (`/proc/net/tcp` in each namespace), `TcpExtTCPTimeWaitOverflow`, and our table's
//! TIME-WAIT ledger. Needs root and `ip`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use m02_tcp_state::KernelState;
use m02_tcp_state::kernel;
use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::{self, Table, roles};
use serde_json::json;

/// `--role churn --connect ADDR --secs S --server-first [--sysctl k=v]…`
fn churn(args: &[String]) -> std::io::Result<()> {
    roles::apply_sysctls(args)?;
    let addr: SocketAddr =
        netns::arg(args, "--connect").ok_or_else(|| std::io::Error::other("--connect"))?;
    let secs: f64 = netns::arg(args, "--secs").unwrap_or(3.0);
    let server_first = args.iter().any(|a| a == "--server-first");
    let before = kernel::netstat_counters()?;
    let t0 = Instant::now();
    let (mut attempts, mut ok, mut no_port, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut first_fail = None;
    while t0.elapsed().as_secs_f64() < secs {
        attempts += 1;
        let r = (|| -> std::io::Result<()> {
            let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            c.write_all(b"ping")?;
            let mut b = [0u8; 4];
            c.read_exact(&mut b)?;
            if !server_first {
                c.shutdown(Shutdown::Write)?;
            }
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            Ok(())
        })();
        match r {
            Ok(()) => ok += 1,
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                no_port += 1;
                first_fail.get_or_insert(attempts);
                // Nothing to wait for but time: do not spin.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => other += 1,
        }
    }
    let after = kernel::netstat_counters()?;
    let entries = kernel::proc_net_tcp()?;
    let tw = entries
        .iter()
        .filter(|e| e.remote == addr && e.state == KernelState::TimeWait)
        .count();
    let d = kernel::counter_deltas(&before, &after, &["TcpExtTCPTimeWaitOverflow", "TcpExtTW"]);
    println!(
        "{}",
        json!({
            "attempts": attempts, "ok": ok, "eaddrnotavail": no_port, "other_errors": other,
            "first_failure": first_fail, "secs": t0.elapsed().as_secs_f64(), "client_tw": tw, "counters": d,
        })
    );
    Ok(())
}

struct Row {
    name: &'static str,
    client: Vec<&'static str>,
    server: Vec<&'static str>,
    server_first: bool,
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| (role == "churn").then(|| churn(args))) {
        return code;
    }
    lab::run_main(|| {
        let secs = if lab::quick() { 2.0 } else { 4.0 };
        let base = [
            "--sysctl",
            "net/ipv4/ip_local_port_range=40000 40099",
            "--sysctl",
            "net/ipv4/tcp_max_tw_buckets=262144",
        ];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        let rows = [
            Row {
                name: "client closes first, tcp_tw_reuse = 0",
                client: with(&["--sysctl", "net/ipv4/tcp_tw_reuse=0"]),
                server: vec![],
                server_first: false,
            },
            Row {
                name: "client closes first, tcp_tw_reuse = 1 (reuse after 1 s)",
                client: with(&["--sysctl", "net/ipv4/tcp_tw_reuse=1"]),
                server: vec![],
                server_first: false,
            },
            Row {
                name: "client closes first, tcp_max_tw_buckets = 20",
                client: {
                    let mut v = with(&["--sysctl", "net/ipv4/tcp_tw_reuse=0"]);
                    v.extend_from_slice(&["--sysctl", "net/ipv4/tcp_max_tw_buckets=20"]);
                    v
                },
                server: vec![],
                server_first: false,
            },
            Row {
                name: "server closes first (table: 5 ms inactivity, no TIME-WAIT budget)",
                client: with(&["--sysctl", "net/ipv4/tcp_tw_reuse=0"]),
                server: vec!["--inactivity-ms", "5", "--tw-budget-off"],
                server_first: true,
            },
            Row {
                name: "server closes first, TIME-WAIT budget 50",
                client: with(&["--sysctl", "net/ipv4/tcp_tw_reuse=0"]),
                server: vec!["--inactivity-ms", "5", "--tw-budget", "50"],
                server_first: true,
            },
        ];
        let mut t = Table::new(
            "TIME-WAIT exhaustion: 100 ephemeral ports, connect as fast as possible",
            &[
                "scenario",
                "connects tried",
                "worked",
                "EADDRNOTAVAIL",
                "first failure at attempt",
                "TIME-WAIT client side",
                "TIME-WAIT server side",
                "TCPTimeWaitOverflow (client)",
                "table: TIME-WAIT ledger / RST aborts",
            ],
        );
        for (i, row) in rows.iter().enumerate() {
            let topo = Topology::create()?;
            let listen = netns::server_addr(7500 + i as u16);
            let mut sargs: Vec<String> = vec!["--listen".into(), listen.to_string()];
            sargs.extend(row.server.iter().map(|s| (*s).to_owned()));
            let mut server = topo.spawn_role(Side::Server, "serve", &sargs)?;
            server.json(Duration::from_secs(10))?;
            let mut cargs: Vec<String> = vec![
                "--connect".into(),
                listen.to_string(),
                "--secs".into(),
                secs.to_string(),
            ];
            if row.server_first {
                cargs.push("--server-first".into());
            }
            cargs.extend(row.client.iter().map(|s| (*s).to_owned()));
            let client = topo.spawn_role(Side::Client, "churn", &cargs)?;
            let out = client.json(Duration::from_secs(60))?;
            let st = server.ask("stats", Duration::from_secs(5))?;
            let server_tw = st["kernel"]["states_on_port"]["TIME-WAIT"]
                .as_u64()
                .unwrap_or(0);
            t.rows.push(vec![
                row.name.into(),
                out["attempts"].clone(),
                out["ok"].clone(),
                out["eaddrnotavail"].clone(),
                if out["first_failure"].is_null() {
                    "never".into()
                } else {
                    out["first_failure"].clone()
                },
                out["client_tw"].clone(),
                server_tw.into(),
                out["counters"]["TcpExtTCPTimeWaitOverflow"].clone(),
                format!(
                    "{} / {}",
                    st["table"]["time_wait_now"], st["table"]["budget_aborts"]
                )
                .into(),
            ]);
            let _ = server.finish(Duration::from_secs(5));
            drop(topo);
        }
        t.notes = format!(
            "{secs} s per row, one pair of namespaces per row; client namespace: net.ipv4.ip_local_port_range = 40000 40099. \
             A connection is a 4-tuple, and a client that closes first keeps its (address, port) → server tuple in TIME-WAIT \
             for 60 s: with 100 ports the 101st connect fails with EADDRNOTAVAIL. tcp_tw_reuse = 1 lets connect take a \
             TIME-WAIT tuple once it is older than net.ipv4.tcp_tw_reuse_delay (1 s; safe thanks to TCP timestamps), so the \
             client is throttled rather than stopped. A tiny tcp_max_tw_buckets makes the kernel skip TIME-WAIT (and log \
             'time wait bucket table overflow'), trading safety for ports. When the server closes first, the TIME-WAIT moves \
             to the server side (one per connection, keyed by the client's port, so the client's ports stay free); our \
             table's TIME-WAIT budget caps that, aborting with RST (no TIME-WAIT anywhere) beyond it. The server's kernel count \
             can be lower than our ledger: a new SYN from a reused client port ends the matching TIME-WAIT early (the \
             ledger, which only knows the 60 s rule, is an upper bound). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
