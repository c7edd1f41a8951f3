//! Experiment `keepalive_probes`: a connection whose peer vanishes. Inside two network
//! namespaces this program creates, the echo server (with a connection table, keepalive
//! idle 1 s, interval 1 s, 3 probes) serves one client; then the client's end of the veth goes
//! down, so the server's probes are never answered. Every 250 ms: our table's state, the
//! kernel's state, its pending timer and unanswered probes (`/proc/net/tcp`, what `ss -tio`
//! prints as `timer:(keepalive,…,N)`), until keepalive gives up (`ETIMEDOUT`) and the table
//! records ESTABLISHED → CLOSED. Needs root and `ip`.

use std::time::{Duration, Instant};

use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::{self, Table, roles};
use serde_json::Value;

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|_, _| None) {
        return code;
    }
    lab::run_main(|| {
        let (idle, intvl, cnt) = if lab::quick() { (1, 1, 2) } else { (1, 1, 3) };
        let topo = Topology::create()?;
        let addr = netns::server_addr(7000);
        let mut server = topo.spawn_role(
            Side::Server,
            "serve",
            &[
                "--listen".into(),
                addr.to_string(),
                "--verify".into(),
                "--keepalive".into(),
                format!("{idle},{intvl},{cnt}"),
            ],
        )?;
        server.json(Duration::from_secs(10))?;
        let client = topo.spawn_role(
            Side::Client,
            "hold",
            &["--connect".into(), addr.to_string()],
        )?;
        let local = client.json(Duration::from_secs(10))?;
        let before = server.ask("stats", Duration::from_secs(5))?;
        let t0 = Instant::now();
        topo.link(Side::Client, false)?;
        let mut t = Table::new(
            &format!(
                "Keepalive probes to a vanished peer (idle {idle} s, interval {intvl} s, {cnt} probes)"
            ),
            &[
                "t after peer vanished (s)",
                "our state",
                "kernel state",
                "kernel timer",
                "timer fires in (ms)",
                "unanswered probes",
                "keepalive probes sent (TcpExtTCPKeepAlive)",
            ],
        );
        let ka0 = before["kernel"]["counters"]["TcpExtTCPKeepAlive"]
            .as_u64()
            .unwrap_or(0);
        let mut last = String::new();
        let mut closed_at = None;
        let limit = Duration::from_secs((idle + intvl * (cnt + 2)) as u64 + 3);
        while t0.elapsed() < limit {
            let s = server.ask("stats", Duration::from_secs(5))?;
            let ours = s["rows"]
                .as_array()
                .and_then(|r| r.first())
                .map_or("(released)".to_owned(), |r| {
                    r["state"].as_str().unwrap_or("?").to_owned()
                });
            let e = s["kernel"]["entries_on_port"]
                .as_array()
                .and_then(|v| v.iter().find(|e| e["state"] != "LISTEN").cloned())
                .unwrap_or(Value::Null);
            let kstate = e["state"].as_str().unwrap_or("(gone)").to_owned();
            let timer = e["timer"].as_str().unwrap_or("").to_owned();
            let probes = e["probes"].as_u64().unwrap_or(0);
            let ka = s["kernel"]["counters"]["TcpExtTCPKeepAlive"]
                .as_u64()
                .unwrap_or(0)
                - ka0;
            let key = format!("{ours}{kstate}{timer}{probes}{ka}");
            if key != last {
                t.rows.push(vec![
                    lab::round(t0.elapsed().as_secs_f64(), 2).into(),
                    ours.clone().into(),
                    kstate.clone().into(),
                    timer.into(),
                    e["timer_ms"].as_u64().unwrap_or(0).into(),
                    probes.into(),
                    ka.into(),
                ]);
                last = key;
            }
            if ours == "(released)" {
                closed_at = Some(t0.elapsed());
                let life = &s["lifecycles"][0];
                t.notes = format!(
                    "Our table: {} after {:.2} s (recv failed with ETIMEDOUT, event timed_out; m01 close reason {}; \
                     {} kernel samples, {} disagreed). ",
                    lab::path_text(&life["path"]),
                    life["lifetime_ns"].as_f64().unwrap_or(0.0) / 1e9,
                    life["note"],
                    life["agreement"]["samples"],
                    life["agreement"]["mismatches"],
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let end = server.ask("stats", Duration::from_secs(5))?;
        let d = |name: &str| {
            end["kernel"]["counters"][name].as_u64().unwrap_or(0)
                - before["kernel"]["counters"][name].as_u64().unwrap_or(0)
        };
        t.notes.push_str(&format!(
            "Client {} vanished (its veth down: no RST, no FIN, nothing). Keepalive declared it dead {} \
             (expected idle + probes × interval = {} s after the last traffic). nstat deltas in the server's namespace: \
             TcpExtTCPKeepAlive {}, TcpExtTCPAbortOnTimeout {}. Without keepalive (or an inactivity timeout) this \
             half-open connection would stay ESTABLISHED forever (see timeout_configs). Machine: {}.",
            local["local"][0].as_str().unwrap_or("?"),
            closed_at.map_or("never (within the window)".to_owned(), |c| format!("{:.2} s after the link went down", c.as_secs_f64())),
            idle + intvl * cnt,
            d("TcpExtTCPKeepAlive"),
            d("TcpExtTCPAbortOnTimeout"),
            lab::machine(),
        ));
        let _ = server.finish(Duration::from_secs(5));
        drop(client);
        drop(topo);
        t.print();
        Ok(())
    })
}
