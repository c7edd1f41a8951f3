//! Experiment `memory_per_state`: what one connection costs in each TCP state, in the kernel
//! and in our process. Inside a pair of namespaces this program creates, N sockets are put in
//! each state in turn (LISTEN; ESTABLISHED pairs; CLOSE-WAIT / FIN-WAIT-2 after a half-close;
//! TIME-WAIT after the client closes first; SYN-SENT towards a black hole; SYN-RECEIVED from
//! forged SYNs), and the kernel's slab caches are read before and after (`/proc/slabinfo`:
//! objects × object size per socket), with `/proc/net/sockstat` and, for sockets we hold,
//! `SO_MEMINFO` (the `skmem` of `ss -m`). Our side: the table's slot, and the whole echo
//! server (m01's buffer + the table) measured as resident memory growth. Needs root (slabinfo,
//! namespaces, raw sockets) and `ip`. Slab counts are system-wide: other activity on the
//! machine adds noise, which larger N dilutes.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::kernel::{self, SlabCache};
use m02_tcp_state::lab::netns::{self, Side, Topology};
use m02_tcp_state::lab::packet::{RawSender, Segment, XorShift, flags};
use m02_tcp_state::lab::{self, Table, TrackedServer, echo_config, roles};
use m02_tcp_state::{KernelState, TrackerConfig};
use serde_json::{Value, json};

const CACHES: [&str; 6] = [
    "TCP",
    "tw_sock_TCP",
    "request_sock_TCP",
    "sock_inode_cache",
    "filp",
    "dentry",
];

fn slab() -> std::io::Result<BTreeMap<String, SlabCache>> {
    kernel::slabinfo(&CACHES)
}

/// Per-cache Δobjects and Δbytes per socket between two slab readings.
fn delta(
    before: &BTreeMap<String, SlabCache>,
    after: &BTreeMap<String, SlabCache>,
    per: usize,
) -> Value {
    let mut total = 0.0;
    let mut parts = serde_json::Map::new();
    for c in CACHES {
        let (Some(a), Some(b)) = (after.get(c), before.get(c)) else {
            continue;
        };
        let objs = (a.active_objs as f64 - b.active_objs as f64) / per as f64;
        let bytes = objs * a.objsize as f64;
        if objs.abs() >= 0.05 {
            parts.insert(c.to_owned(), json!({ "objects": lab::round(objs, 2), "bytes": lab::round(bytes, 0), "objsize": a.objsize }));
        }
        total += bytes;
    }
    json!({ "caches": parts, "bytes": lab::round(total, 0) })
}

fn skmem_avg(fds: &[&OwnedFd]) -> Value {
    let mut n = 0.0;
    let (mut charged, mut r, mut w, mut f) = (0.0, 0.0, 0.0, 0.0);
    for fd in fds {
        if let Ok(m) = kernel::sk_meminfo(fd.as_fd()) {
            n += 1.0;
            charged += m.charged() as f64;
            r += f64::from(m.rmem_alloc);
            w += f64::from(m.wmem_queued);
            f += f64::from(m.fwd_alloc);
        }
    }
    let n: f64 = if n > 0.0 { n } else { 1.0 };
    json!({ "charged": lab::round(charged / n, 0), "r": lab::round(r / n, 0), "w": lab::round(w / n, 0), "f": lab::round(f / n, 0) })
}

fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

fn listener(addr: SocketAddr, backlog: i32) -> std::io::Result<OwnedFd> {
    let l = sys::tcp_socket(&addr, false)?;
    sys::set_reuseaddr(l.as_fd(), true)?;
    sys::bind(l.as_fd(), &addr)?;
    sys::listen(l.as_fd(), backlog)?;
    Ok(l)
}

/// `--role mem --n N`: the measuring side, in the server namespace.
fn mem(args: &[String]) -> std::io::Result<()> {
    let n: usize = netns::arg(args, "--n").unwrap_or(1000);
    let mut out = serde_json::Map::new();

    // 1. Our process: the echo server with a table, N idle connections, resident growth.
    {
        let server = TrackedServer::start(echo_config(), TrackerConfig::default())?;
        let mut clients: Vec<Option<std::net::TcpStream>> = Vec::with_capacity(n);
        clients.resize_with(n, || None);
        let warm = std::net::TcpStream::connect(server.addr)?;
        drop(warm);
        server.wait_for(Duration::from_secs(5), |t| t.table().is_empty());
        let rss0 = lab::rss_kib()?;
        for c in clients.iter_mut() {
            *c = Some(std::net::TcpStream::connect(server.addr)?);
        }
        server.wait_for(Duration::from_secs(10), |t| t.table().len() == n);
        settle();
        let rss1 = lab::rss_kib()?;
        let per = server.with(|t| t.bytes_per_connection());
        out.insert(
            "server_rss_per_conn".into(),
            json!(lab::round((rss1 - rss0) as f64 * 1024.0 / n as f64, 0)),
        );
        out.insert("table_per_conn".into(), json!(per));
        out.insert("m01_buffer".into(), json!(echo_config().buffer_size));
        drop(clients);
        server.wait_for(Duration::from_secs(10), |t| t.table().is_empty());
        server.stop()?;
    }

    let lo: SocketAddr = SocketAddr::from((netns::SERVER_IP, 0));
    // 2. LISTEN.
    let s0 = slab()?;
    let listeners: Vec<OwnedFd> = (0..n).map(|_| listener(lo, 16)).collect::<Result<_, _>>()?;
    settle();
    let s1 = slab()?;
    out.insert("LISTEN".into(), json!({ "sockets": n, "slab": delta(&s0, &s1, n), "skmem": skmem_avg(&listeners.iter().collect::<Vec<_>>()) }));
    drop(listeners);
    settle();

    // 3. ESTABLISHED pairs (both ends in this namespace: 2N sockets).
    let srv_addr = SocketAddr::from((netns::SERVER_IP, 7701));
    let l = listener(srv_addr, 4096)?;
    let s0 = slab()?;
    let ss0 = kernel::sockstat()?;
    let mut pairs: Vec<(OwnedFd, OwnedFd)> = Vec::with_capacity(n);
    for _ in 0..n {
        let c = sys::connect_timeout(&srv_addr, Duration::from_secs(5))?;
        let (s, _) = sys::accept4(l.as_fd(), false)?;
        pairs.push((c, s));
    }
    settle();
    let s1 = slab()?;
    let ss1 = kernel::sockstat()?;
    let all: Vec<&OwnedFd> = pairs.iter().flat_map(|(a, b)| [a, b]).collect();
    out.insert("ESTABLISHED".into(), json!({
        "sockets": 2 * n, "slab": delta(&s0, &s1, 2 * n), "skmem": skmem_avg(&all),
        "sockstat_inuse": ss1.inuse as i64 - ss0.inuse as i64, "sockstat_mem_pages": ss1.mem_pages as i64 - ss0.mem_pages as i64,
    }));
    // 3b. ESTABLISHED with 64 KiB unread in each server side's receive queue.
    let chunk = vec![7u8; 65536];
    for (c, _) in &pairs {
        let mut sent = 0;
        while sent < chunk.len() {
            sent += sys::send(c.as_fd(), &chunk[sent..], sys::MSG_NOSIGNAL)?;
        }
    }
    settle();
    let s2 = slab()?;
    let ss2 = kernel::sockstat()?;
    let servers: Vec<&OwnedFd> = pairs.iter().map(|(_, s)| s).collect();
    out.insert(
        "ESTABLISHED_64K_unread".into(),
        json!({
            "sockets": n, "slab": delta(&s1, &s2, n), "skmem": skmem_avg(&servers),
            "sockstat_mem_pages": ss2.mem_pages as i64 - ss1.mem_pages as i64,
        }),
    );
    // Drain it again.
    let mut buf = vec![0u8; 65536];
    for (_, s) in &pairs {
        let mut got = 0;
        while got < chunk.len() {
            got += sys::recv(s.as_fd(), &mut buf, 0)?;
        }
    }
    // 4. Half-close: the client side sends FIN → client FIN-WAIT-2, server CLOSE-WAIT.
    for (c, _) in &pairs {
        sys::shutdown(c.as_fd(), Shutdown::Write)?;
    }
    settle();
    let s3 = slab()?;
    let states = kernel::proc_net_tcp()?;
    let cw = kernel::count_on_port(&states, 7701, KernelState::CloseWait);
    let clients: Vec<&OwnedFd> = pairs.iter().map(|(c, _)| c).collect();
    out.insert("CLOSE_WAIT+FIN_WAIT_2".into(), json!({
        "sockets": 2 * n, "close_wait_seen": cw, "slab": delta(&s0, &s3, 2 * n), "skmem": skmem_avg(&clients),
    }));
    // 5. TIME-WAIT: the client (which sent FIN first) closes, then the server: N TIME-WAIT.
    let ss3 = kernel::sockstat()?;
    for (c, s) in pairs.drain(..) {
        sys::shutdown(s.as_fd(), Shutdown::Write)?;
        drop(s);
        drop(c);
    }
    settle();
    let s4 = slab()?;
    let ss4 = kernel::sockstat()?;
    out.insert(
        "TIME_WAIT".into(),
        json!({
            "sockets": n, "tw_seen": ss4.tw, "slab_vs_before_connections": delta(&s0, &s4, n),
            "sockstat_tw": ss4.tw as i64 - ss3.tw as i64,
        }),
    );
    drop(l);

    // 6. SYN-SENT towards a black hole (routed into the client namespace's blackhole).
    let hole = SocketAddr::from((Ipv4Addr::new(10, 202, 255, 1), 9));
    let s5 = slab()?;
    let mut pending = Vec::with_capacity(n);
    for _ in 0..n {
        let fd = sys::tcp_socket(&hole, true)?;
        match sys::connect(fd.as_fd(), &hole) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            other => other?,
        }
        pending.push(fd);
    }
    settle();
    let s6 = slab()?;
    let states = kernel::proc_net_tcp()?;
    let syn_sent = states
        .iter()
        .filter(|e| e.state == KernelState::SynSent)
        .count();
    out.insert("SYN_SENT".into(), json!({
        "sockets": n, "seen": syn_sent, "slab": delta(&s5, &s6, n), "skmem": skmem_avg(&pending.iter().collect::<Vec<_>>()),
    }));
    drop(pending);
    settle();

    // 7. SYN-RECEIVED: a listener, no cookies, room for N request socks; the parent floods.
    roles::sysctl("net/ipv4/tcp_syncookies", "0")?;
    roles::sysctl("net/ipv4/tcp_max_syn_backlog", &(4 * n).to_string())?;
    roles::sysctl("net/core/somaxconn", &(4 * n).to_string())?;
    let syn_addr = SocketAddr::from((netns::SERVER_IP, 7702));
    let l = listener(syn_addr, (2 * n) as i32)?;
    let s7 = slab()?;
    println!("{}", json!({ "syn_ready": syn_addr }));
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    settle();
    let s8 = slab()?;
    let states = kernel::proc_net_tcp()?;
    let syn_recv = kernel::count_on_port(&states, 7702, KernelState::SynRecv);
    out.insert(
        "SYN_RECEIVED".into(),
        json!({ "sockets": syn_recv, "slab": delta(&s7, &s8, syn_recv.max(1) as usize) }),
    );
    drop(l);
    println!("{}", Value::Object(out));
    Ok(())
}

/// `--role synsend --target ADDR --n N`: N SYNs from forged sources.
fn synsend(args: &[String]) -> std::io::Result<()> {
    let target: SocketAddrV4 =
        netns::arg(args, "--target").ok_or_else(|| std::io::Error::other("--target"))?;
    let n: usize = netns::arg(args, "--n").unwrap_or(1000);
    let sender = RawSender::new(*target.ip())?;
    let mut rng = XorShift(0x0123_4567_89AB_CDEF);
    for i in 0..n {
        let r = rng.next_u64();
        sender.send(&Segment {
            src: SocketAddrV4::new(
                Ipv4Addr::new(10, 202, (i >> 8) as u8, i as u8),
                1024 + (r % 60000) as u16,
            ),
            dst: target,
            seq: (r >> 32) as u32,
            ack: 0,
            flags: flags::SYN,
            window: 64240,
            payload_len: 0,
        })?;
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("{}", json!({ "sent": n }));
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Some(code) = roles::dispatch(|role, args| match role {
        "mem" => Some(mem(args)),
        "synsend" => Some(synsend(args)),
        _ => None,
    }) {
        return code;
    }
    lab::run_main(|| {
        if !lab::is_root() {
            return Err(std::io::Error::other(
                "needs root (/proc/slabinfo, namespaces, raw sockets)",
            ));
        }
        let n = if lab::quick() { 500 } else { 2000 };
        let topo = Topology::create()?;
        let t0 = Instant::now();
        let mut mem = topo.spawn_role(Side::Server, "mem", &["--n".into(), n.to_string()])?;
        let ready = mem.json(Duration::from_secs(120))?;
        let target = ready["syn_ready"].as_str().unwrap_or("").to_owned();
        let flood = topo.spawn_role(
            Side::Client,
            "synsend",
            &["--target".into(), target, "--n".into(), n.to_string()],
        )?;
        flood.json(Duration::from_secs(30))?;
        mem.send("go")?;
        let r = mem.json(Duration::from_secs(60))?;
        let _ = mem.finish(Duration::from_secs(5));
        drop(topo);

        let caches = |v: &Value| -> String {
            v["caches"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, c)| format!("{k} {}×{}", c["objects"], c["objsize"]))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let mut t = Table::new(
            "Memory per connection, by TCP state (kernel slab + charged buffers; our process)",
            &[
                "state",
                "sockets",
                "kernel slab objects per socket",
                "kernel slab bytes per socket",
                "skmem charged per socket (B)",
                "note",
            ],
        );
        let mut row = |state: &str, key: &str, slab_key: &str, note: String| {
            let v = &r[key];
            t.rows.push(vec![
                state.into(),
                v["sockets"].clone(),
                caches(&v[slab_key]).into(),
                v[slab_key]["bytes"].clone(),
                if v["skmem"].is_null() {
                    "-".into()
                } else {
                    v["skmem"]["charged"].clone()
                },
                note.into(),
            ]);
        };
        row(
            "LISTEN",
            "LISTEN",
            "slab",
            "a listening socket: a full TCP sock + file + inode".into(),
        );
        row(
            "SYN-SENT",
            "SYN_SENT",
            "slab",
            format!("{} seen in /proc/net/tcp", r["SYN_SENT"]["seen"]),
        );
        row(
            "SYN-RECEIVED (request sock)",
            "SYN_RECEIVED",
            "slab",
            "a request sock in the SYN queue: no socket, no file".into(),
        );
        row(
            "ESTABLISHED (idle)",
            "ESTABLISHED",
            "slab",
            format!(
                "both ends in one namespace; sockstat inuse +{}, mem pages +{}",
                r["ESTABLISHED"]["sockstat_inuse"], r["ESTABLISHED"]["sockstat_mem_pages"]
            ),
        );
        row(
            "ESTABLISHED, 64 KiB unread",
            "ESTABLISHED_64K_unread",
            "slab",
            format!(
                "queued data is charged to the socket (skmem r {}), not to slab; sockstat mem pages +{}",
                r["ESTABLISHED_64K_unread"]["skmem"]["r"],
                r["ESTABLISHED_64K_unread"]["sockstat_mem_pages"]
            ),
        );
        row(
            "CLOSE-WAIT / FIN-WAIT-2",
            "CLOSE_WAIT+FIN_WAIT_2",
            "slab",
            format!(
                "same sockets, new state: no new allocation ({} CLOSE-WAIT seen)",
                r["CLOSE_WAIT+FIN_WAIT_2"]["close_wait_seen"]
            ),
        );
        row(
            "TIME-WAIT",
            "TIME_WAIT",
            "slab_vs_before_connections",
            format!(
                "per connection after both closed, vs before they existed: the full socks are freed, a small timewait sock \
             stays 60 s (sockstat tw +{})",
                r["TIME_WAIT"]["sockstat_tw"]
            ),
        );
        t.rows.push(vec![
            "ours: table slot + descriptor index".into(),
            "-".into(),
            "-".into(),
            r["table_per_conn"].clone(),
            "-".into(),
            "ConnTable slot (every state) + Tracker's fd index entry; user space".into(),
        ]);
        t.rows.push(vec![
            "ours: whole echo server, idle ESTABLISHED".into(),
            n.into(),
            "-".into(),
            r["server_rss_per_conn"].clone(),
            "-".into(),
            format!(
                "resident growth per connection of the m01 server with a table (its echo buffer is {} B, allocated at accept)",
                r["m01_buffer"]
            )
            .into(),
        ]);
        t.notes = format!(
            "N = {n} per state, in a pair of namespaces created for the run; slab objects are /proc/slabinfo active_objs \
             deltas (system-wide: other activity adds noise) times object size, per socket in that state. A socket with a \
             descriptor costs a TCP sock (2,368 B here), a sock_inode_cache entry (socket + inode) and a file; its buffers \
             are charged separately (skmem) only while data waits. Once both sides close, TIME-WAIT keeps only a ~256 B \
             timewait sock for 60 s, and a half-open SYN-RECEIVED costs a ~320 B request sock. skmem charged = r + w + f + \
             o + bl from SO_MEMINFO, averaged over the held sockets. {:.1} s. Machine: {}.",
            t0.elapsed().as_secs_f64(),
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
