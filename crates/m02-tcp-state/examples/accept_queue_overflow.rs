//! Experiment `accept_queue_overflow`: a burst of clients against a small accept queue
//! (backlog 8), inside namespaces this program creates (one pair per row). Rows: a listener
//! that never calls accept (with `tcp_abort_on_overflow` 0 and 1), the echo server with a
//! connection table, and the same with a table of only 16 slots (the table refuses the rest
//! explicitly: shed at once instead of left hanging). Counted from the clients: connects that
//! completed, echoes served, connections closed at once (EOF/RST), timeouts; from the server
//! namespace's `nstat`: ListenOverflows, ListenDrops. Needs root and `ip`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::{self, Table, roles};
use serde_json::json;

/// `--role burst --connect ADDR --n N`: N concurrent clients; each connects (2 s timeout),
/// echoes once (1.5 s timeout), waits for all the others, closes.
fn burst(args: &[String]) -> std::io::Result<()> {
    let addr: SocketAddr =
        netns::arg(args, "--connect").ok_or_else(|| std::io::Error::other("--connect"))?;
    let n: usize = netns::arg(args, "--n").unwrap_or(64);
    let barrier = Barrier::new(n);
    let outcomes: Vec<(String, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    let t = Instant::now();
                    let conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
                    let connect_ms = t.elapsed().as_secs_f64() * 1e3;
                    let outcome = match conn {
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            "connect timed out".to_owned()
                        }
                        Err(e) => format!("connect failed: {}", e.kind()),
                        Ok(mut c) => {
                            let _ = c.set_read_timeout(Some(Duration::from_millis(1500)));
                            let msg = [i as u8; 8];
                            let mut b = [0u8; 8];
                            let r = c.write_all(&msg).and_then(|()| c.read(&mut b));
                            let o = match r {
                                Ok(8) if b == msg => "served",
                                Ok(0) => "closed at once (EOF)",
                                Ok(_) => "short echo",
                                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                                    "reset"
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) =>
                                {
                                    "connected, never served"
                                }
                                Err(_) => "other error",
                            };
                            barrier.wait();
                            return (o.to_owned(), connect_ms);
                        }
                    };
                    barrier.wait();
                    (outcome, connect_ms)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or(("panicked".into(), 0.0)))
            .collect()
    });
    let mut counts = std::collections::BTreeMap::new();
    for (o, _) in &outcomes {
        *counts.entry(o.clone()).or_insert(0u64) += 1;
    }
    let mut ms: Vec<f64> = outcomes
        .iter()
        .filter(|o| !o.0.starts_with("connect"))
        .map(|o| o.1)
        .collect();
    println!(
        "{}",
        json!({ "n": n, "outcomes": counts, "connect_ms_p50": lab::quantile(&mut ms, 0.5), "connect_ms_max": lab::quantile(&mut ms, 1.0) })
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| (role == "burst").then(|| burst(args))) {
        return code;
    }
    lab::run_main(|| {
        let n = if lab::quick() { 48 } else { 128 };
        let rows: Vec<(&str, &str, Vec<&str>, &str)> = vec![
            (
                "listener never accepts, tcp_abort_on_overflow = 0",
                "listen",
                vec![],
                "0",
            ),
            (
                "listener never accepts, tcp_abort_on_overflow = 1",
                "listen",
                vec![],
                "1",
            ),
            (
                "echo server + table (16,384 slots)",
                "serve",
                vec!["--verify"],
                "0",
            ),
            (
                "echo server + table of 16 slots (full → shed)",
                "serve",
                vec!["--capacity", "16"],
                "0",
            ),
        ];
        let mut t = Table::new(
            &format!("Accept queue overflow: {n} clients at once against backlog 8"),
            &[
                "server",
                "outcomes (clients)",
                "connect p50 / max (ms)",
                "ListenOverflows",
                "ListenDrops",
                "table: accepted / refused (full)",
            ],
        );
        for (i, (name, role, extra, abort)) in rows.iter().enumerate() {
            let topo = Topology::create()?;
            topo.sysctl(Side::Server, "net/ipv4/tcp_abort_on_overflow", abort)?;
            let listen = netns::server_addr(7600 + i as u16);
            let mut args: Vec<String> = vec![
                "--listen".into(),
                listen.to_string(),
                "--backlog".into(),
                "8".into(),
            ];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            let mut server = topo.spawn_role(Side::Server, role, &args)?;
            server.json(Duration::from_secs(10))?;
            let before = server.ask("stats", Duration::from_secs(5))?;
            let client = topo.spawn_role(
                Side::Client,
                "burst",
                &[
                    "--connect".into(),
                    listen.to_string(),
                    "--n".into(),
                    n.to_string(),
                ],
            )?;
            let out = client.json(Duration::from_secs(30))?;
            let after = server.ask("stats", Duration::from_secs(5))?;
            let outcomes: Vec<String> = out["outcomes"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect())
                .unwrap_or_default();
            t.rows.push(vec![
                (*name).into(),
                outcomes.join(", ").into(),
                format!(
                    "{:.2} / {:.2}",
                    out["connect_ms_p50"].as_f64().unwrap_or(0.0),
                    out["connect_ms_max"].as_f64().unwrap_or(0.0)
                )
                .into(),
                lab::counter_delta(&before, &after, "TcpExtListenOverflows").into(),
                lab::counter_delta(&before, &after, "TcpExtListenDrops").into(),
                if *role == "serve" {
                    format!(
                        "{} / {}",
                        after["table"]["opened"], after["table"]["refused_full"]
                    )
                    .into()
                } else {
                    "-".into()
                },
            ]);
            let _ = server.finish(Duration::from_secs(5));
            drop(topo);
        }
        t.notes = format!(
            "Backlog 8 means at most 9 finished handshakes wait for accept. When the accept queue is full, Linux drops new \
             SYNs (the client retransmits after 1 s) and, for handshakes that complete anyway, drops the final ACK \
             (ListenOverflows, ListenDrops): the client believes it is connected, its data is never read, and the server keeps \
             resending SYN+ACK. With tcp_abort_on_overflow = 1 the server answers that ACK with RST instead (the client sees a \
             reset at its first read). A server that accepts promptly (one poll loop, up to 64 accept4 per wake-up) keeps the \
             queue short; when its connection table is full it still accepts and closes at once (m01's shed counter, the \
             table's refused_full), so the queue drains and clients learn immediately instead of hanging (EOF, or RST when the client's bytes had \
             already arrived: closing with unread data sends RST). With tcp_abort_on_overflow = 1 and a listener that never \
             accepts, the same 9 get in and the rest never complete their handshake (their SYNs are dropped before any ACK \
             could overflow), so the two rows match. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
