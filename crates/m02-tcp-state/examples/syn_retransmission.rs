//! Experiment `syn_retransmission`: what `connect` does when no SYN+ACK comes back. In
//! namespaces this program creates, a client connects to the server namespace's address
//! while the server's end of the veth is down, so every SYN vanishes. One socket per SYN retry
//! limit (`TCP_SYNCNT`, the per-socket `net.ipv4.tcp_syn_retries`), all at once; each is
//! tracked by a connection table (SYN-SENT until `ETIMEDOUT`) and its `TCP_INFO` is sampled
//! every 10 ms: every retransmission (`tcpi_total_retrans`) with its time and the
//! retransmission timeout (`tcpi_rto`, doubling from 1 s). For contrast: a port nobody
//! listens on (RST at once), and a listener (the handshake). Needs root and `ip`.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::kernel;
use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::{self, Table, roles};
use m02_tcp_state::{TcpState, Tracker};
use serde_json::json;

/// `--role syn --connect ADDR --syncnt 1,2,3 --bound-s S`: one non-blocking connect per count.
fn syn_role(args: &[String]) -> std::io::Result<()> {
    let addr: SocketAddr =
        netns::arg(args, "--connect").ok_or_else(|| std::io::Error::other("--connect"))?;
    let counts: Vec<u32> = netns::arg::<String>(args, "--syncnt")
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.parse().ok())
        .collect();
    let bound = Duration::from_secs(netns::arg(args, "--bound-s").unwrap_or(40));
    roles::apply_sysctls(args)?;
    let mut tracker = Tracker::new(lab::verifying(), Instant::now());
    let t0 = Instant::now();
    type Sock = (u32, OwnedFd, Vec<(f64, u32, u32)>, Option<f64>, String);
    let mut socks: Vec<Sock> = Vec::new();
    for &n in &counts {
        let fd = sys::tcp_socket(&addr, true)?;
        kernel::set_syn_count(fd.as_fd(), n)?;
        match sys::connect(fd.as_fd(), &addr) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Ok(()) => {}
            Err(e) => return Err(e),
        }
        tracker
            .open_active(fd.as_fd(), addr, Instant::now())
            .map_err(std::io::Error::other)?;
        socks.push((n, fd, Vec::new(), None, String::new()));
    }
    while socks.iter().any(|s| s.3.is_none()) && t0.elapsed() < bound {
        for (_, fd, events, end, how) in &mut socks {
            if end.is_some() {
                continue;
            }
            let info = kernel::tcp_info(fd.as_fd())?;
            let last = events.last().map_or(u32::MAX, |e| e.1);
            if info.total_retrans != last {
                events.push((t0.elapsed().as_secs_f64(), info.total_retrans, info.rto_us));
            }
            tracker.refresh(
                tracker
                    .id_of(std::os::fd::AsRawFd::as_raw_fd(fd))
                    .ok_or_else(|| std::io::Error::other("untracked"))?,
                fd.as_fd(),
                Instant::now(),
            );
            let id = tracker
                .id_of(std::os::fd::AsRawFd::as_raw_fd(fd))
                .ok_or_else(|| std::io::Error::other("untracked"))?;
            let st = tracker.table().get(id).map(|c| c.state());
            if st != Some(TcpState::SynSent) {
                *end = Some(t0.elapsed().as_secs_f64());
                *how = format!(
                    "{} ({})",
                    st.map_or("?", |s| s.rfc_name()),
                    tracker
                        .table()
                        .log()
                        .iter()
                        .last()
                        .map_or("?", |t| t.event.name())
                );
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rows: Vec<serde_json::Value> = socks
        .iter()
        .map(|(n, fd, events, end, how)| {
            let life = tracker.close(fd.as_fd(), false, "done", Instant::now());
            json!({
                "syncnt": n,
                "retransmissions": events,
                "ended_s": end,
                "how": how,
                "path": life.as_ref().map(|l| l.path.to_string()),
                "samples": life.as_ref().map(|l| l.agreement.samples),
                "mismatches": life.as_ref().map(|l| l.agreement.mismatches),
                "syn_sent_ms": life.as_ref().map(|l| l.dwell_ns[TcpState::SynSent.index()] as f64 / 1e6),
            })
        })
        .collect();
    println!("{}", json!({ "rows": rows }));
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| (role == "syn").then(|| syn_role(args))) {
        return code;
    }
    lab::run_main(|| {
        let counts = if lab::quick() { "1,2" } else { "1,2,3,4" };
        let topo = Topology::create()?;
        let listen = netns::server_addr(7200);
        let mut server = topo.spawn_role(
            Side::Server,
            "serve",
            &["--listen".into(), listen.to_string()],
        )?;
        server.json(Duration::from_secs(10))?;
        let before = server.ask("stats", Duration::from_secs(5))?;
        // Contrast first, with the link up: a listener, and a closed port.
        let up = topo.spawn_role(
            Side::Client,
            "syn",
            &[
                "--connect".into(),
                listen.to_string(),
                "--syncnt".into(),
                "2".into(),
                "--bound-s".into(),
                "5".into(),
            ],
        )?;
        let up = up.json(Duration::from_secs(10))?;
        let closed = topo.spawn_role(
            Side::Client,
            "syn",
            &[
                "--connect".into(),
                netns::server_addr(7299).to_string(),
                "--syncnt".into(),
                "2".into(),
                "--bound-s".into(),
                "5".into(),
            ],
        )?;
        let closed = closed.json(Duration::from_secs(10))?;
        // Now every SYN vanishes: in this topology with the kernel's default backoff, and in a
        // second one with purely exponential backoff (tcp_syn_linear_timeouts = 0).
        let topo2 = Topology::create()?;
        let server2 = topo2.spawn_role(
            Side::Server,
            "serve",
            &["--listen".into(), listen.to_string()],
        )?;
        server2.json(Duration::from_secs(10))?;
        topo.link(Side::Server, false)?;
        topo2.link(Side::Server, false)?;
        let syn_args = |extra: &[&str]| {
            let mut v: Vec<String> = vec![
                "--connect".into(),
                listen.to_string(),
                "--syncnt".into(),
                counts.into(),
                "--bound-s".into(),
                "40".into(),
            ];
            v.extend(extra.iter().map(|x| (*x).to_owned()));
            v
        };
        let dropped = topo.spawn_role(Side::Client, "syn", &syn_args(&[]))?;
        let dropped_exp = topo2.spawn_role(
            Side::Client,
            "syn",
            &syn_args(&["--sysctl", "net/ipv4/tcp_syn_linear_timeouts=0"]),
        )?;
        let dropped = dropped.json(Duration::from_secs(60))?;
        let dropped_exp = dropped_exp.json(Duration::from_secs(60))?;
        topo.link(Side::Server, true)?;
        let _ = server2.finish(Duration::from_secs(5));
        drop(topo2);
        let after = server.ask("stats", Duration::from_secs(5))?;
        let mut t = Table::new(
            "SYN retransmission: connect to a listener, a closed port, and a black hole (per TCP_SYNCNT)",
            &[
                "target",
                "SYN retries (TCP_SYNCNT)",
                "outcome after (s)",
                "how it ended",
                "SYN retransmissions at (s)",
                "our table",
                "kernel samples / disagreed",
            ],
        );
        let mut add = |target: &str, v: &serde_json::Value| {
            for r in v["rows"].as_array().into_iter().flatten() {
                let rtx: Vec<String> = r["retransmissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| e[1].as_u64().unwrap_or(0) > 0)
                    .map(|e| format!("{:.2}", e[0].as_f64().unwrap_or(0.0)))
                    .collect();
                t.rows.push(vec![
                    target.into(),
                    r["syncnt"].clone(),
                    r["ended_s"]
                        .as_f64()
                        .map_or(json!("did not end"), |e| json!(lab::round(e, 3))),
                    r["how"].clone(),
                    if rtx.is_empty() {
                        "none".into()
                    } else {
                        rtx.join(", ").into()
                    },
                    r["path"].clone(),
                    format!("{} / {}", r["samples"], r["mismatches"]).into(),
                ]);
            }
        };
        add("listener (link up)", &up);
        add("closed port (link up)", &closed);
        add(
            "SYNs dropped, tcp_syn_linear_timeouts = 4 (default)",
            &dropped,
        );
        add("SYNs dropped, tcp_syn_linear_timeouts = 0", &dropped_exp);
        t.notes = format!(
            "The client namespace's sockets are non-blocking; each is sampled every 10 ms (TCP_INFO tcpi_total_retrans, tcpi_rto) \
             and tracked by a connection table (SYN-SENT until POLLOUT + SO_ERROR). The retry limit is a time budget: with n \
             retries connect fails with ETIMEDOUT after 1 + 2 + … + 2^n s (3, 7, 15, 31 s), as if each retransmission doubled \
             the initial 1 s RTO (RFC 6298 2.1, 5.5). Since Linux 6.5 the first net.ipv4.tcp_syn_linear_timeouts (default 4) \
             retransmissions wait only 1 s each, so more SYNs fit in the same budget (a SYN every second, then doubling); with \
             0 the schedule is the classic 1, 3, 7, 15 s. The system default net.ipv4.tcp_syn_retries = {} gives 127 s \
             before connect gives up. A closed port answers the SYN with RST: ECONNREFUSED within one round trip. Server namespace during the run: \
             TcpExtListenDrops +{}, TcpOutRsts +{} (the RST of the closed port). Machine: {}.",
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syn_retries")
                .unwrap_or_default()
                .trim(),
            lab::counter_delta(&before, &after, "TcpExtListenDrops"),
            lab::counter_delta(&before, &after, "TcpOutRsts"),
            lab::machine()
        );
        let _ = server.finish(Duration::from_secs(5));
        drop(topo);
        t.print();
        Ok(())
    })
}
