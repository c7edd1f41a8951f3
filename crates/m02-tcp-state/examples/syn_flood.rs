//! Experiment `syn_flood`: a SYN flood from forged addresses against the echo server with a
//! connection table, inside namespaces this program creates (the forged packets never leave
//! them). A raw socket in the client namespace sends SYNs from random addresses of
//! 10.202.0.0/16 (routed back into the client namespace, which drops the SYN+ACKs: no RST ever
//! frees the server's SYN queue) while legitimate clients connect from 10.201.0.2. Once with
//! SYN cookies (the default, `net.ipv4.tcp_syncookies = 1`), once without. Counters from
//! `nstat` (read inside the server namespace): SyncookiesSent/Recv, ListenOverflows,
//! ListenDrops, TCPReqQFullDrop, TCPReqQFullDoCookies. Needs root and `ip`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::packet::{RawSender, Segment, XorShift, flags};
use m02_tcp_state::lab::{self, Table, roles};
use serde_json::json;

/// `--role flood --target ADDR --rate PPS --secs S --legit N`: SYNs from forged sources, and
/// N legitimate connections (each echoes once) during the flood.
fn flood_role(args: &[String]) -> std::io::Result<()> {
    let target: SocketAddrV4 =
        netns::arg(args, "--target").ok_or_else(|| std::io::Error::other("--target"))?;
    let rate: u64 = netns::arg(args, "--rate").unwrap_or(20_000);
    let secs: u64 = netns::arg(args, "--secs").unwrap_or(3);
    let legit: usize = netns::arg(args, "--legit").unwrap_or(20);
    let sender = RawSender::new(*target.ip())?;
    let sent = AtomicU64::new(0);
    let mut results: Vec<(f64, bool, f64)> = Vec::new();
    std::thread::scope(|s| -> std::io::Result<()> {
        let flooder = s.spawn(|| -> std::io::Result<()> {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
            let t0 = Instant::now();
            let mut n = 0u64;
            while t0.elapsed() < Duration::from_secs(secs) {
                // Pace: n packets by now.
                let due = t0.elapsed().as_micros() as u64 * rate / 1_000_000;
                while n < due {
                    let r = rng.next_u64();
                    let src = SocketAddrV4::new(
                        Ipv4Addr::new(10, 202, (r >> 8) as u8, (r >> 16) as u8 | 1),
                        1024 + (r >> 24) as u16 % 60000,
                    );
                    let seg = Segment {
                        src,
                        dst: target,
                        seq: (r >> 32) as u32,
                        ack: 0,
                        flags: flags::SYN,
                        window: 64240,
                        payload_len: 0,
                    };
                    sender.send(&seg)?;
                    n += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            sent.store(n, Ordering::Relaxed);
            Ok(())
        });
        // Legitimate clients, each with its own thread, starting spread over the flood so that
        // every attempt (2.5 s timeout) ends before the flood does.
        let addr = SocketAddr::V4(target);
        let window = (secs * 1000).saturating_sub(3000).max(100);
        let handles: Vec<_> = (0..legit)
            .map(|i| {
                let start = Duration::from_millis(500 + window * i as u64 / legit.max(1) as u64);
                s.spawn(move || {
                    std::thread::sleep(start);
                    let t = Instant::now();
                    let r = (|| -> std::io::Result<()> {
                        let mut c =
                            m01_raw_sockets::lab::connect(addr, Duration::from_millis(2500))?;
                        m01_raw_sockets::lab::echo_round_trip(
                            &mut c,
                            &m01_raw_sockets::lab::pattern(16, i as u8),
                        )?;
                        Ok(())
                    })();
                    (
                        t.elapsed().as_secs_f64() * 1e3,
                        r.is_ok(),
                        start.as_secs_f64(),
                    )
                })
            })
            .collect();
        for h in handles {
            results.push(
                h.join()
                    .map_err(|_| std::io::Error::other("client panicked"))?,
            );
        }
        flooder
            .join()
            .map_err(|_| std::io::Error::other("flooder panicked"))??;
        Ok(())
    })?;
    let ok: Vec<f64> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
    let mut lat = ok.clone();
    println!(
        "{}",
        json!({
            "syns_sent": sent.load(Ordering::Relaxed),
            "legit": legit,
            "legit_ok": ok.len(),
            "connect_echo_ms_p50": lab::quantile(&mut lat, 0.5),
            "connect_echo_ms_max": lab::quantile(&mut lat, 1.0),
            "attempts": results,
        })
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| (role == "flood").then(|| flood_role(args))) {
        return code;
    }
    lab::run_main(|| {
        let (secs, legit, rate) = if lab::quick() {
            (4, 10, 10_000)
        } else {
            (8, 30, 20_000)
        };
        let mut t = Table::new(
            "SYN flood from forged sources vs legitimate clients (backlog 16)",
            &[
                "tcp_syncookies",
                "forged SYNs sent",
                "legit connected + echoed",
                "legit connect+echo p50 / max (ms)",
                "SYN-RECV request socks (mid-flood)",
                "SyncookiesSent",
                "SyncookiesRecv",
                "TCPReqQFullDoCookies",
                "TCPReqQFullDrop",
                "ListenOverflows",
                "ListenDrops",
                "table: accepted / live after",
            ],
        );
        for (i, cookies) in ["1", "0"].into_iter().enumerate() {
            // A fresh pair of namespaces per row: clean counters, no leftover request socks.
            let topo = Topology::create()?;
            topo.sysctl(Side::Server, "net/ipv4/tcp_syncookies", cookies)?;
            let listen = netns::server_addr(7300 + i as u16);
            let mut server = topo.spawn_role(
                Side::Server,
                "serve",
                &[
                    "--listen".into(),
                    listen.to_string(),
                    "--backlog".into(),
                    "16".into(),
                    "--verify".into(),
                ],
            )?;
            server.json(Duration::from_secs(10))?;
            let before = server.ask("stats", Duration::from_secs(5))?;
            let flood = topo.spawn_role(
                Side::Client,
                "flood",
                &[
                    "--target".into(),
                    listen.to_string(),
                    "--rate".into(),
                    rate.to_string(),
                    "--secs".into(),
                    secs.to_string(),
                    "--legit".into(),
                    legit.to_string(),
                ],
            )?;
            std::thread::sleep(Duration::from_millis(1000));
            let mid = server.ask("stats", Duration::from_secs(5))?;
            let out = flood.json(Duration::from_secs(secs + 120))?;
            let after = server.ask("stats", Duration::from_secs(5))?;
            let d = |n: &str| lab::counter_delta(&before, &after, n);
            t.rows.push(vec![
                cookies.into(),
                out["syns_sent"].clone(),
                format!("{} / {}", out["legit_ok"], out["legit"]).into(),
                if out["legit_ok"].as_u64() == Some(0) {
                    "-".into()
                } else {
                    format!(
                        "{:.1} / {:.1}",
                        out["connect_echo_ms_p50"].as_f64().unwrap_or(0.0),
                        out["connect_echo_ms_max"].as_f64().unwrap_or(0.0)
                    )
                    .into()
                },
                mid["kernel"]["states_on_port"]["SYN-RECV"]
                    .as_u64()
                    .unwrap_or(0)
                    .into(),
                d("TcpExtSyncookiesSent").into(),
                d("TcpExtSyncookiesRecv").into(),
                d("TcpExtTCPReqQFullDoCookies").into(),
                d("TcpExtTCPReqQFullDrop").into(),
                d("TcpExtListenOverflows").into(),
                d("TcpExtListenDrops").into(),
                format!("{} / {}", after["table"]["opened"], after["table"]["live"]).into(),
            ]);
            let _ = server.finish(Duration::from_secs(5));
            drop(topo);
        }
        t.notes = format!(
            "{rate} forged SYNs/s for {secs} s from random 10.202.x.y addresses (raw socket, IP_HDRINCL) to a listener with \
             backlog 16, in a pair of namespaces per row; {legit} legitimate clients connect (2.5 s timeout) and echo once, \
             starting spread over the flood so that each attempt ends while it lasts. With SYN cookies the kernel stops keeping state once the SYN queue is full: the SYN+ACK encodes \
             it in the sequence number, and a real client's ACK rebuilds it (SyncookiesRecv), so legitimate clients still get \
             in at once. Without cookies the SYN queue (16 request socks, each kept while the server retransmits its SYN+ACK; under \
             pressure old ones are pruned after fewer retries, and the flood refills the slot at once) stays full of \
             forged entries and legitimate SYNs are dropped with them (TCPReqQFullDrop): clients wait for their own SYN \
             retransmissions (1 s, then 1 s again) and time out. The forged SYNs never reach user space: our table holds only the legitimate \
             connections (accepted / still live after the flood). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
