//! Exit check `conn_memory_error_pct`: does the connection table know what a connection costs
//! it? A child process holds a listener and a [`Tracker`] (the table plus its descriptor
//! index, nothing else allocating), and tracks 10,000 idle connections that this process
//! opens. The child reads its own resident memory (`VmRSS`, the kernel's count of backed
//! pages: an independent measure) before and after. Measured:
//! |table's reported bytes/connection − RSS growth/connection| / RSS growth, in %
//! (threshold ≤ 10). The table reserves its slots up front and the kernel backs their pages on
//! first use, so RSS grows by what each new connection touches.
//!
//! The echo server's own buffers are not the table's: what a whole server's connection costs
//! (m01's 16 KiB buffer, kernel socket memory per state) is the `memory_per_state` experiment.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::lab::{self, netns};
use m02_tcp_state::{Tracker, TrackerConfig};

const N: usize = 10_000;

/// The child: accept `n` connections into a tracker, report RSS before and after.
fn holder(n: usize) -> std::io::Result<()> {
    let any: SocketAddr = "127.0.0.1:0".parse().map_err(std::io::Error::other)?;
    let l = sys::tcp_socket(&any, false)?;
    sys::bind(l.as_fd(), &any)?;
    sys::listen(l.as_fd(), 4096)?;
    let addr = sys::getsockname(l.as_fd())?;
    let mut config = TrackerConfig::default();
    config.table.capacity = 16_384;
    // Warm up code paths and the allocator with a separate, dropped tracker.
    {
        let mut warm = Tracker::new(config.clone(), Instant::now());
        let c = sys::connect_timeout(&addr, Duration::from_secs(5))?;
        let (s, peer) = sys::accept4(l.as_fd(), false)?;
        warm.open_passive(s.as_fd(), peer, Instant::now())
            .map_err(std::io::Error::other)?;
        warm.close(s.as_fd(), false, "warm-up", Instant::now());
        drop((c, s));
    }
    let mut tracker = Tracker::new(config, Instant::now());
    // The descriptors are held in an array touched in full before measuring.
    let mut held: Vec<Option<OwnedFd>> = Vec::with_capacity(n);
    held.resize_with(n, || None);
    let rss_before = lab::rss_kib()?;
    let reported_before = tracker.table().len();
    println!("READY {addr}");
    std::io::stdout().flush()?;
    let t0 = Instant::now();
    for slot in held.iter_mut() {
        let (fd, peer) = sys::accept4(l.as_fd(), false)?;
        tracker
            .open_passive(fd.as_fd(), peer, Instant::now())
            .map_err(std::io::Error::other)?;
        *slot = Some(fd);
    }
    let took = t0.elapsed();
    let rss_after = lab::rss_kib()?;
    let mem = tracker.table().memory();
    let v = serde_json::json!({
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "tracked": tracker.table().len() - reported_before,
        "bytes_per_connection": tracker.bytes_per_connection(),
        "slot_bytes": mem.slot_bytes,
        "fixed_bytes": mem.fixed_bytes,
        "reserved_bytes": mem.total_reserved_bytes,
        "accept_ms": took.as_secs_f64() * 1e3,
    });
    println!("{v}");
    std::io::stdout().flush()?;
    // Hold until the parent is done.
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(held);
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some((role, args)) = netns::role_args() {
        let n = netns::arg(&args, "--n").unwrap_or(N);
        return lab::run_main(|| {
            assert_eq!(role, "holder");
            holder(n)
        });
    }
    lab::run_main(|| {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["--role", "holder", "--n", &N.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut out = std::io::BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| std::io::Error::other("no stdout"))?,
        );
        let mut line = String::new();
        out.read_line(&mut line)?;
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad holder line {line:?}")))?;
        let mut clients: Vec<TcpStream> = Vec::with_capacity(N);
        for _ in 0..N {
            clients.push(TcpStream::connect_timeout(&addr, Duration::from_secs(10))?);
        }
        line.clear();
        out.read_line(&mut line)?;
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(std::io::Error::other)?;
        drop(child.stdin.take());
        drop(clients);
        let _ = child.wait();
        let before = v["rss_before_kib"].as_f64().unwrap_or(0.0);
        let after = v["rss_after_kib"].as_f64().unwrap_or(0.0);
        let tracked = v["tracked"].as_f64().unwrap_or(0.0);
        let reported = v["bytes_per_connection"].as_f64().unwrap_or(0.0);
        let growth = (after - before) * 1024.0 / tracked.max(1.0);
        let error_pct = if growth > 0.0 {
            (reported - growth).abs() / growth * 100.0
        } else {
            f64::INFINITY
        };
        let detail = format!(
            "table reports {reported} B/connection ({} B slot + {} B descriptor index entry); \
             RSS grew {before} → {after} KiB over {tracked} idle connections = {:.1} B/connection; \
             error {:.2}% (|reported − measured| / measured); the table reserved {:.1} MiB up front \
             for 16,384 slots ({} B fixed: log ring, lifecycle ring, free list, decision queue), \
             backed by the kernel page by page as slots are first used; accepting took {:.0} ms",
            v["slot_bytes"],
            reported as u64 - v["slot_bytes"].as_u64().unwrap_or(0),
            growth,
            error_pct,
            v["reserved_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            v["fixed_bytes"],
            v["accept_ms"].as_f64().unwrap_or(0.0),
        );
        lab::print_check_measured(
            tracked as usize == N && error_pct <= 10.0,
            lab::round(error_pct, 2),
            "%",
            &detail,
        );
        Ok(())
    })
}
