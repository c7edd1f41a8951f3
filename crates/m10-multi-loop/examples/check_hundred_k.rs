//! Exit checks `total_conns_held` and `loop_imbalance_pct` (one scenario, two reports: the
//! first argument says which is printed).
//!
//! RLIMIT_NOFILE is 20,000 per process and cannot be raised, so 100K connections need several
//! processes on each side:
//!
//! - **servers**: 6 processes of this example (`--server`), each a [`MultiLoopServer`] with 2
//!   pinned loops, SO_REUSEPORT and balancing on, serving m08's HTTP/1.1 over the lab
//!   service — `zyphos serve --io epoll --workers 2 --processes 6` in-process, except for the
//!   idle timeout, raised from 5 s to 600 s (connections must stay open while 100K are
//!   opened, as in m08's `persistent_conns_held`). All 12 loops' listeners are one
//!   SO_REUSEPORT group on one port.
//! - **clients**: 6 processes (`--client`), 16,700 connections each, each from its own
//!   10 source addresses (127.0.0.2 … 127.0.0.61, bound before connect with
//!   `IP_BIND_ADDRESS_NO_PORT`; 28K ephemeral ports per address).
//!   Each connection sends one keep-alive `GET /` and reads its 200.
//!
//! Once every client has all its connections open, the servers are asked for their per-loop
//! counters (over their stdin/stdout) and their RSS, then every client sends a second request
//! on each of its connections: **measured (total_conns_held)** = connections that answered
//! both requests while all were open; **measured (loop_imbalance_pct)** = the worst of
//! (max − mean)/mean over the 12 loops' open connections and their session events (requests).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use m10_multi_loop::MultiLoopServer;
use m10_multi_loop::imbalance_pct;
use m10_multi_loop::lab::{
    config, connect_from, http_factory, print_measured, proc_status_kib, raise_nofile, read_http,
    run_main,
};

const SERVERS: usize = 6;
const LOOPS: usize = 2;
const CLIENTS: usize = 6;
const PER_CLIENT: usize = 16_700;
/// Source addresses per client process, used round-robin. With 1,670 connections per address
/// the kernel's search for a free source port stays short (at 16,700 per address it probes
/// thousands of taken ports per connect and the ramp takes minutes).
const SOURCES_PER_CLIENT: usize = 10;
const T: Duration = Duration::from_secs(30);

fn arg(args: &[String], i: usize) -> io::Result<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| io::Error::other(format!("missing argument {i}")))
}

/// Server role: bind (joining `addr`'s group unless it is port 0), print the address, then
/// answer `stats` lines on stdin with one JSON line; stop at EOF.
fn server(addr: SocketAddr) -> io::Result<()> {
    raise_nofile()?;
    let mut c = config(LOOPS);
    c.listen = addr;
    c.loop_config.max_connections = 19_500;
    let srv = MultiLoopServer::bind(c)?;
    let stats = srv.stats();
    let handle = srv.shutdown_handle();
    println!("{}", srv.local_addr());
    io::stdout().flush()?;
    let running = srv.start(Arc::new(http_factory(Duration::from_secs(600))?))?;
    for line in io::stdin().lock().lines() {
        if line?.trim() == "stats" {
            let doc = serde_json::json!({
                "pid": std::process::id(),
                "rss_kib": proc_status_kib(std::process::id(), "VmRSS:"),
                "loops": stats.per_loop(),
            });
            println!("{doc}");
            io::stdout().flush()?;
        }
    }
    handle.shutdown();
    let report = running.join();
    eprintln!(
        "server {}: stopped in {:.2} s, {} forced",
        std::process::id(),
        report.shutdown_s,
        report.forced
    );
    Ok(())
}

fn ask(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n").is_err() {
        return false;
    }
    matches!(read_http(s, &mut Vec::new()), Ok((200, _)))
}

/// Client role: open `count` connections from `src`, one request each; `READY n`; on `go`,
/// a second request on each; `DONE n`; exit at EOF.
fn client(addr: SocketAddr, first: u8, count: usize) -> io::Result<()> {
    raise_nofile()?;
    let mut conns = Vec::with_capacity(count);
    let mut failed = 0usize;
    for i in 0..count {
        let src = [127, 0, 0, first + (i % SOURCES_PER_CLIENT) as u8];
        match connect_from(addr, src, T) {
            Ok(mut s) => {
                if ask(&mut s) {
                    conns.push(s);
                } else {
                    failed += 1;
                }
            }
            Err(e) => {
                failed += 1;
                if failed < 5 {
                    eprintln!("client {src:?}: {e}");
                }
            }
        }
    }
    println!("READY {} {failed}", conns.len());
    io::stdout().flush()?;
    let mut line = String::new();
    io::stdin().read_line(&mut line)?;
    // Pipeline the second round: all requests out, then all responses in.
    let mut ok = 0usize;
    for chunk in conns.chunks_mut(1000) {
        let sent: Vec<bool> = chunk
            .iter_mut()
            .map(|s| s.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n").is_ok())
            .collect();
        for (s, sent) in chunk.iter_mut().zip(sent) {
            if sent && matches!(read_http(s, &mut Vec::new()), Ok((200, _))) {
                ok += 1;
            }
        }
    }
    println!("DONE {ok}");
    io::stdout().flush()?;
    line.clear();
    io::stdin().read_line(&mut line)?;
    Ok(())
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    fn spawn(args: &[String]) -> io::Result<Proc> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let out = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?,
        );
        Ok(Proc { child, stdin, out })
    }

    fn line(&mut self) -> io::Result<String> {
        let mut l = String::new();
        self.out.read_line(&mut l)?;
        if l.is_empty() {
            return Err(io::Error::other("child exited early"));
        }
        Ok(l.trim().to_owned())
    }

    fn say(&mut self, s: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        writeln!(stdin, "{s}")?;
        stdin.flush()
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(line: &str, prefix: &str) -> usize {
    line.strip_prefix(prefix)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let args: Vec<String> = std::env::args().collect();
        match args.get(1).map(String::as_str) {
            Some("--server") => return server(arg(&args, 2)?.parse().map_err(io::Error::other)?),
            Some("--client") => {
                let addr = arg(&args, 2)?.parse().map_err(io::Error::other)?;
                let last: u8 = arg(&args, 3)?.parse().map_err(io::Error::other)?;
                let n: usize = arg(&args, 4)?.parse().map_err(io::Error::other)?;
                return client(addr, last, n);
            }
            _ => {}
        }
        let which = args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "total_conns_held".into());
        if which != "total_conns_held" && which != "loop_imbalance_pct" {
            return Err(io::Error::other(format!("unknown report {which}")));
        }
        // Servers: the first picks the port, the others join its SO_REUSEPORT group.
        let mut servers = vec![Proc::spawn(&["--server".into(), "127.0.0.1:0".into()])?];
        let addr: SocketAddr = servers[0].line()?.parse().map_err(io::Error::other)?;
        for _ in 1..SERVERS {
            let mut p = Proc::spawn(&["--server".into(), addr.to_string()])?;
            let said = p.line()?;
            if said != addr.to_string() {
                return Err(io::Error::other(format!(
                    "server joined {said}, not {addr}"
                )));
            }
            servers.push(p);
        }
        let pids: Vec<u32> = servers.iter().map(|p| p.child.id()).collect();
        let rss_before: Vec<u64> = pids.iter().map(|&p| proc_status_kib(p, "VmRSS:")).collect();
        let started = Instant::now();
        let mut clients = (0..CLIENTS)
            .map(|i| {
                Proc::spawn(&[
                    "--client".into(),
                    addr.to_string(),
                    (2 + i * SOURCES_PER_CLIENT).to_string(),
                    PER_CLIENT.to_string(),
                ])
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut ready = 0usize;
        let mut failed = 0usize;
        for c in &mut clients {
            let l = c.line()?;
            ready += count(&l, "READY ");
            failed += l
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0usize);
        }
        let ramp = started.elapsed();
        eprintln!("{ready} connections answered once ({failed} failed) in {ramp:.1?}");
        // Every loop's counters while all connections are open.
        let mut open: Vec<u64> = Vec::new();
        let mut events: Vec<u64> = Vec::new();
        let mut rss_after = Vec::new();
        for s in &mut servers {
            s.say("stats")?;
            let doc: serde_json::Value =
                serde_json::from_str(&s.line()?).map_err(io::Error::other)?;
            rss_after.push(doc["rss_kib"].as_u64().unwrap_or(0));
            for l in doc["loops"].as_array().cloned().unwrap_or_default() {
                open.push(l["open"].as_u64().unwrap_or(0));
                events.push(l["session_events"].as_u64().unwrap_or(0));
            }
        }
        if open.len() != SERVERS * LOOPS {
            return Err(io::Error::other(format!("{} loops reported", open.len())));
        }
        let held: u64 = open.iter().sum();
        // Second request on every connection, all still open.
        for c in &mut clients {
            c.say("go")?;
        }
        let mut both = 0usize;
        for c in &mut clients {
            both += count(&c.line()?, "DONE ");
        }
        let total = started.elapsed();
        let rss_delta_kib: u64 = rss_after
            .iter()
            .zip(&rss_before)
            .map(|(a, b)| a.saturating_sub(*b))
            .sum();
        let per_conn_bytes = if held > 0 {
            rss_delta_kib as f64 * 1024.0 / held as f64
        } else {
            0.0
        };
        for c in clients {
            c.finish();
        }
        for s in servers {
            s.finish();
        }
        let imb_open = imbalance_pct(&open);
        let imb_events = imbalance_pct(&events);
        let common = format!(
            "{SERVERS} server processes x {LOOPS} pinned loops (SO_REUSEPORT group of 12, balancing on, idle timeout 600 s), {CLIENTS} client processes x {PER_CLIENT} from 127.0.0.2-{} ({SOURCES_PER_CLIENT} addresses each); ramp {:.1} s, run {:.1} s",
            1 + CLIENTS * SOURCES_PER_CLIENT,
            ramp.as_secs_f64(),
            total.as_secs_f64()
        );
        if which == "total_conns_held" {
            let detail = format!(
                "{both} connections answered a second request while all were open; {ready} answered the first ({failed} failed); servers held {held} at once; server RSS +{:.1} MiB = {:.0} bytes/connection (sum of VmRSS deltas of the 6 server pids / connections held); {common}",
                rss_delta_kib as f64 / 1024.0,
                per_conn_bytes
            );
            eprintln!("{detail}");
            print_measured(both as f64, "connections", &detail);
        } else {
            let worst = imb_open.max(imb_events);
            let detail = format!(
                "per-loop open connections {open:?} -> imbalance {imb_open:.2}%; per-loop session events {events:?} -> {imb_events:.2}%; worst {worst:.2}% with {held} connections held; {common}"
            );
            eprintln!("{detail}");
            print_measured(worst, "%", &detail);
        }
        Ok(())
    })
}
