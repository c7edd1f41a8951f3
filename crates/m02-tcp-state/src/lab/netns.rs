//! Network namespaces for the experiments that need packets to vanish, addresses to be forged
//! or sysctls to change: two namespaces joined by a veth pair, created by the experiment and
//! deleted when it ends (the [`Topology`] guard's `Drop`, which also runs on panic; namespaces
//! left by a killed run are removed by [`cleanup_stale`] at the next start).
//!
//! ```text
//!   ns "zm2-PID-N-s"  10.201.0.1/24  veth ─── veth  10.201.0.2/24  ns "zm2-PID-N-c"
//!   (server side)     route 10.202.0.0/16 via 10.201.0.2          (clients, flooders)
//! ```
//!
//! Neighbour entries are static on both sides (no ARP), so "link down" means packets vanish
//! silently rather than ending in a host-unreachable error. The spoofed range 10.202.0.0/16
//! routes back into the client namespace, where a blackhole route swallows it: SYN+ACKs to
//! forged sources vanish, answered by neither RST nor ICMP, as if the hosts did not exist.
//!
//! Processes run inside with `ip netns exec NS …`: the experiment re-executes its own binary
//! with `--role NAME` (see [`role_args`]). Everything needs root and `ip` (iproute2).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Namespace name prefix (`zm2-PID-N-s|c`).
pub const PREFIX: &str = "zm2-";

/// The server side's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// The client side's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// First address of the spoofed range (a /16) routed into the client namespace.
pub const SPOOF_NET: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 0);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Which namespace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server's.
    Server,
    /// The clients'.
    Client,
}

fn run(argv: &[&str]) -> io::Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", argv.join(" "))))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether namespaces can be made here: root and `ip` on PATH.
pub fn available() -> Result<(), String> {
    if !super::is_root() {
        return Err("needs root (network namespaces, raw sockets)".into());
    }
    if !m01_raw_sockets::lab::have_tool("ip") {
        return Err("needs `ip` (iproute2: apt-get install -y iproute2)".into());
    }
    Ok(())
}

/// Deletes `zm2-PID-…` namespaces whose process is gone (a run killed before its `Drop`).
pub fn cleanup_stale() {
    let Ok(list) = run(&["ip", "netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// Two namespaces and a veth pair between them; deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// The server namespace's name.
    pub server_ns: String,
    /// The client namespace's name.
    pub client_ns: String,
    /// Interface in the server namespace.
    pub server_if: String,
    /// Interface in the client namespace.
    pub client_if: String,
}

impl Topology {
    /// Creates the namespaces, the veth pair, addresses, static neighbours and the route for
    /// the spoofed range.
    pub fn create() -> io::Result<Topology> {
        available().map_err(io::Error::other)?;
        cleanup_stale();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let t = Topology {
            server_ns: format!("{PREFIX}{pid}-{n}-s"),
            client_ns: format!("{PREFIX}{pid}-{n}-c"),
            server_if: format!("m2s{}x{n}", pid % 100_000),
            client_if: format!("m2c{}x{n}", pid % 100_000),
        };
        // From here on, Drop cleans up whatever was made.
        run(&["ip", "netns", "add", &t.server_ns])?;
        run(&["ip", "netns", "add", &t.client_ns])?;
        run(&[
            "ip",
            "link",
            "add",
            &t.server_if,
            "netns",
            &t.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            &t.client_if,
            "netns",
            &t.client_ns,
        ])?;
        let s_addr = format!("{SERVER_IP}/24");
        let c_addr = format!("{CLIENT_IP}/24");
        for (ns, ifname, addr) in [
            (&t.server_ns, &t.server_if, &s_addr),
            (&t.client_ns, &t.client_if, &c_addr),
        ] {
            t.ip(ns, &["addr", "add", addr, "dev", ifname])?;
            t.ip(ns, &["link", "set", ifname, "up"])?;
            t.ip(ns, &["link", "set", "lo", "up"])?;
        }
        let s_mac = t.mac(Side::Server)?;
        let c_mac = t.mac(Side::Client)?;
        let (c_ip, s_ip) = (CLIENT_IP.to_string(), SERVER_IP.to_string());
        t.ip(
            &t.server_ns,
            &[
                "neigh",
                "replace",
                &c_ip,
                "lladdr",
                &c_mac,
                "dev",
                &t.server_if,
                "nud",
                "permanent",
            ],
        )?;
        t.ip(
            &t.client_ns,
            &[
                "neigh",
                "replace",
                &s_ip,
                "lladdr",
                &s_mac,
                "dev",
                &t.client_if,
                "nud",
                "permanent",
            ],
        )?;
        t.ip(
            &t.server_ns,
            &[
                "route",
                "add",
                &format!("{SPOOF_NET}/16"),
                "via",
                &c_ip,
                "dev",
                &t.server_if,
            ],
        )?;
        // Forged sources do not exist: SYN+ACKs to them vanish, no RST, no ICMP error.
        t.ip(
            &t.client_ns,
            &["route", "add", "blackhole", &format!("{SPOOF_NET}/16")],
        )?;
        t.sysctl(Side::Client, "net/ipv4/ip_forward", "1")?;
        for side in [Side::Server, Side::Client] {
            t.sysctl(side, "net/ipv4/conf/all/rp_filter", "0")?;
            t.sysctl(side, "net/ipv4/conf/default/rp_filter", "0")?;
        }
        Ok(t)
    }

    /// The namespace's name.
    pub fn ns(&self, side: Side) -> &str {
        match side {
            Side::Server => &self.server_ns,
            Side::Client => &self.client_ns,
        }
    }

    fn ifname(&self, side: Side) -> &str {
        match side {
            Side::Server => &self.server_if,
            Side::Client => &self.client_if,
        }
    }

    fn ip(&self, ns: &str, args: &[&str]) -> io::Result<String> {
        let mut argv = vec!["ip", "-n", ns];
        argv.extend_from_slice(args);
        run(&argv)
    }

    fn mac(&self, side: Side) -> io::Result<String> {
        let out = self.ip(self.ns(side), &["-o", "link", "show", self.ifname(side)])?;
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("no MAC in {out:?}")))
    }

    /// A command run inside `side`'s namespace.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(side), program]);
        c
    }

    /// Writes `/proc/sys/KEY` inside `side`'s namespace (`net/ipv4/tcp_syn_retries`).
    pub fn sysctl(&self, side: Side, key: &str, value: &str) -> io::Result<()> {
        let path = format!("/proc/sys/{key}");
        run(&[
            "ip",
            "netns",
            "exec",
            self.ns(side),
            "sh",
            "-c",
            &format!("echo '{value}' > {path}"),
        ])
        .map(|_| ())
    }

    /// Takes `side`'s end of the veth up or down. Down: everything sent across vanishes (the
    /// other end has no carrier), in both directions.
    pub fn link(&self, side: Side, up: bool) -> io::Result<()> {
        self.ip(
            self.ns(side),
            &[
                "link",
                "set",
                self.ifname(side),
                if up { "up" } else { "down" },
            ],
        )
        .map(|_| ())
    }

    /// Runs this program again inside `side`'s namespace with `--role ROLE args…`; its stdout
    /// lines come back through [`RoleProcess`].
    pub fn spawn_role(&self, side: Side, role: &str, args: &[String]) -> io::Result<RoleProcess> {
        let exe = std::env::current_exe()?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(side)])
            .arg(exe)
            .args(["--role", role])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        RoleProcess::spawn(c)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace destroys its end of the veth, and with it the pair.
        let _ = run(&["ip", "netns", "del", &self.server_ns]);
        let _ = run(&["ip", "netns", "del", &self.client_ns]);
    }
}

/// A role process: one JSON (or text) line per request on stdout.
pub struct RoleProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl RoleProcess {
    fn spawn(mut c: Command) -> io::Result<RoleProcess> {
        let mut child = c.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(RoleProcess {
            child,
            stdin,
            lines,
        })
    }

    /// The next stdout line, waiting at most `timeout`.
    pub fn line(&self, timeout: Duration) -> io::Result<String> {
        self.lines.recv_timeout(timeout).map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "role process printed nothing in time",
            )
        })
    }

    /// The next stdout line as JSON.
    pub fn json(&self, timeout: Duration) -> io::Result<serde_json::Value> {
        let l = self.line(timeout)?;
        serde_json::from_str(&l)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {l:?}")))
    }

    /// Sends one line to its stdin.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let s = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        writeln!(s, "{line}")?;
        s.flush()
    }

    /// Sends `line` and returns the JSON answer.
    pub fn ask(&mut self, line: &str, timeout: Duration) -> io::Result<serde_json::Value> {
        self.send(line)?;
        self.json(timeout)
    }

    /// Closes its stdin and waits (at most `timeout`) for it to exit; kills it otherwise.
    pub fn finish(mut self, timeout: Duration) -> io::Result<Vec<String>> {
        self.stdin = None;
        let deadline = std::time::Instant::now() + timeout;
        let mut rest = Vec::new();
        loop {
            while let Ok(l) = self.lines.try_recv() {
                rest.push(l);
            }
            if self.child.try_wait()?.is_some() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    rest.push(l);
                }
                return Ok(rest);
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "role process did not exit",
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// When this process was started as `--role NAME args…`: `(NAME, args)`.
pub fn role_args() -> Option<(String, Vec<String>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let i = args.iter().position(|a| a == "--role")?;
    let name = args.get(i + 1)?.clone();
    let rest = args[i + 2..].to_vec();
    Some((name, rest))
}

/// `--key value` from role arguments.
pub fn arg<T: std::str::FromStr>(args: &[String], key: &str) -> Option<T> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// The server address inside the topology for `port`.
pub fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::from((SERVER_IP, port))
}
