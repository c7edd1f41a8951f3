//! Experiment `timeout_configs`: how long a half-open connection (the peer vanished without a
//! FIN or RST) survives under each timeout configuration. In namespaces this program creates,
//! one echo server per configuration serves one client each; then the clients' end of the
//! veth goes down and every server is watched until its table releases the connection. Rows:
//! no timeout at all, keepalive variants, the table's inactivity timeout (half-close, then the
//! FIN-WAIT timeout; or abort), and `TCP_USER_TIMEOUT`-free defaults. Needs root and `ip`.

use std::time::{Duration, Instant};

use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::{self, Table, roles};

struct Config {
    name: &'static str,
    args: Vec<String>,
    expect: &'static str,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|_, _| None) {
        return code;
    }
    lab::run_main(|| {
        let window = if lab::quick() { 7 } else { 12 };
        let configs = [
            Config {
                name: "none (kernel defaults: keepalive off)",
                args: vec![],
                expect: "never",
            },
            Config {
                name: "keepalive idle 1 s, interval 1 s, 3 probes",
                args: s(&["--keepalive", "1,1,3"]),
                expect: "idle + 3 × 1 s = 4 s",
            },
            Config {
                name: "keepalive idle 2 s, interval 1 s, 2 probes",
                args: s(&["--keepalive", "2,1,2"]),
                expect: "2 + 2 × 1 = 4 s",
            },
            Config {
                name: "keepalive idle 1 s, interval 3 s, 2 probes",
                args: s(&["--keepalive", "1,3,2"]),
                expect: "1 + 2 × 3 = 7 s",
            },
            Config {
                name: "table inactivity 2 s → half-close, FIN-WAIT timeout 2 s",
                args: s(&["--inactivity-ms", "2000", "--fin-wait-ms", "2000"]),
                expect: "2 s + 2 s (FIN never acknowledged)",
            },
            Config {
                name: "table inactivity 2 s, FIN-WAIT timeout 5 s",
                args: s(&["--inactivity-ms", "2000", "--fin-wait-ms", "5000"]),
                expect: "2 s + 5 s",
            },
        ];
        // One pair of namespaces per configuration, so that each row's counters are its own.
        let mut topos = Vec::new();
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let topo = Topology::create()?;
            let addr = netns::server_addr(7100 + i as u16);
            let mut args = vec![
                "--listen".to_owned(),
                addr.to_string(),
                "--verify".to_owned(),
            ];
            args.extend(c.args.iter().cloned());
            let srv = topo.spawn_role(Side::Server, "serve", &args)?;
            srv.json(Duration::from_secs(10))?;
            let cl = topo.spawn_role(
                Side::Client,
                "hold",
                &["--connect".into(), addr.to_string()],
            )?;
            cl.json(Duration::from_secs(10))?;
            servers.push(srv);
            clients.push(cl);
            topos.push(topo);
        }
        let mut before = Vec::new();
        for srv in &mut servers {
            before.push(srv.ask("stats", Duration::from_secs(5))?);
        }
        let t0 = Instant::now();
        for topo in &topos {
            topo.link(Side::Client, false)?;
        }
        let mut detected: Vec<Option<(f64, serde_json::Value)>> = vec![None; configs.len()];
        let mut decided: Vec<Option<f64>> = vec![None; configs.len()];
        while t0.elapsed() < Duration::from_secs(window) && detected.iter().any(Option::is_none) {
            for (i, srv) in servers.iter_mut().enumerate() {
                if detected[i].is_some() {
                    continue;
                }
                let st = srv.ask("stats", Duration::from_secs(5))?;
                if decided[i].is_none()
                    && st["table"]["decisions_inactivity"].as_u64().unwrap_or(0) > 0
                {
                    decided[i] = Some(t0.elapsed().as_secs_f64());
                }
                if st["table"]["live"].as_u64() == Some(0) {
                    detected[i] = Some((t0.elapsed().as_secs_f64(), st));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut t = Table::new(
            "Half-open connection (peer vanished): time until the server lets go, per timeout configuration",
            &[
                "configuration",
                "expected",
                "table acted after (s)",
                "released after (s)",
                "path in our table",
                "keepalive probes sent",
                "retransmissions",
                "kernel samples / disagreed",
            ],
        );
        for (i, c) in configs.iter().enumerate() {
            let (released, path, probes, rtx, agree) = match &detected[i] {
                Some((at, st)) => {
                    let life = &st["lifecycles"][0];
                    (
                        serde_json::json!(lab::round(*at, 2)),
                        lab::path_text(&life["path"]),
                        lab::counter_delta(&before[i], st, "TcpExtTCPKeepAlive"),
                        lab::counter_delta(&before[i], st, "TcpRetransSegs"),
                        format!(
                            "{} / {}",
                            life["agreement"]["samples"], life["agreement"]["mismatches"]
                        ),
                    )
                }
                None => {
                    let st = servers[i].ask("stats", Duration::from_secs(5))?;
                    (
                        serde_json::json!(format!(
                            "still {} after {window} s",
                            st["rows"][0]["state"].as_str().unwrap_or("?")
                        )),
                        "CLOSED → ESTABLISHED (open)".to_owned(),
                        lab::counter_delta(&before[i], &st, "TcpExtTCPKeepAlive"),
                        lab::counter_delta(&before[i], &st, "TcpRetransSegs"),
                        "-".to_owned(),
                    )
                }
            };
            t.rows.push(vec![
                c.name.into(),
                c.expect.into(),
                decided[i].map_or(serde_json::json!("-"), |d| {
                    serde_json::json!(lab::round(d, 2))
                }),
                released,
                path.into(),
                probes.into(),
                rtx.into(),
                agree.into(),
            ]);
        }
        t.notes = format!(
            "Each configuration in its own pair of namespaces (server, client), one connection each; at t = 0 every \
             client namespace's veth goes down (within a few ms of each other) (no FIN, no RST: the peer is simply gone, as after a crash or a cable pull). \
             Keepalive is off by default on Linux (and its defaults, net.ipv4.tcp_keepalive_time = 7200 s, 9 probes × 75 s, \
             take over 2 h 11 min). The table's inactivity timeout acts without the peer: it half-closes (our FIN is then \
             retransmitted unanswered in FIN-WAIT-1) and the FIN-WAIT timeout aborts with RST. Retransmissions are the \
             server namespace's TcpRetransSegs delta (our FIN's retransmissions); probes are TcpExtTCPKeepAlive. Window {window} s. Machine: {}.",
            lab::machine()
        );
        for srv in servers {
            let _ = srv.finish(Duration::from_secs(5));
        }
        drop(clients);
        drop(topos);
        t.print();
        Ok(())
    })
}
