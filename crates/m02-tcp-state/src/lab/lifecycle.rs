//! Scripted client lifecycles against a tracked echo server, each driving the server's side of
//! the connection down a known path of states. Shared by the tests and the
//! `lifecycles_tracked_correctly` check.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;

use crate::kernel;
use crate::state::{KernelState, TcpState};
use crate::table::Lifecycle;

/// What the client does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Echo, then the client closes first (`shutdown(SHUT_WR)`, read EOF, close).
    Normal,
    /// Write 64 KiB and `shutdown(SHUT_WR)` at once, then read the whole echo after our FIN
    /// (the server echoes while in CLOSE-WAIT).
    HalfCloseClient,
    /// `SO_LINGER` 0 + close: RST.
    Reset,
    /// Echo, stay idle past the server's keepalive idle time (probes answered), then close.
    Keepalive,
    /// Echo, stay idle until the server half-closes on inactivity, keep sending after its FIN
    /// (half-duplex), then close: the server ends in TIME-WAIT.
    HalfCloseServer,
    /// Echo, stay idle, read the server's FIN and never answer with ours: the server's
    /// FIN-WAIT-2 timeout aborts (RST).
    FinWait2Timeout,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Normal,
        Kind::HalfCloseClient,
        Kind::Reset,
        Kind::Keepalive,
        Kind::HalfCloseServer,
        Kind::FinWait2Timeout,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::HalfCloseClient => "half_close_client",
            Kind::Reset => "reset",
            Kind::Keepalive => "keepalive",
            Kind::HalfCloseServer => "half_close_server",
            Kind::FinWait2Timeout => "fin_wait_2_timeout",
        }
    }

    /// Whether the server must have an inactivity timeout (and FIN-WAIT timeout) for it.
    pub fn needs_idle_server(self) -> bool {
        matches!(self, Kind::HalfCloseServer | Kind::FinWait2Timeout)
    }

    /// The server-side paths that are correct for this kind.
    pub fn expected_paths(self) -> Vec<Vec<TcpState>> {
        use TcpState as S;
        let passive = vec![
            vec![
                S::Closed,
                S::Established,
                S::CloseWait,
                S::LastAck,
                S::Closed,
            ],
            // Our FIN's ACK had not arrived when the descriptor was closed: the kernel
            // finishes LAST-ACK alone.
            vec![S::Closed, S::Established, S::CloseWait, S::LastAck],
        ];
        match self {
            Kind::Normal | Kind::HalfCloseClient | Kind::Keepalive => passive,
            Kind::Reset => vec![vec![S::Closed, S::Established, S::Closed]],
            Kind::HalfCloseServer => vec![vec![
                S::Closed,
                S::Established,
                S::FinWait1,
                S::FinWait2,
                S::TimeWait,
            ]],
            Kind::FinWait2Timeout => vec![vec![
                S::Closed,
                S::Established,
                S::FinWait1,
                S::FinWait2,
                S::Closed,
            ]],
        }
    }
}

/// Timing of the server the lifecycles run against.
#[derive(Copy, Clone, Debug)]
pub struct Timing {
    /// The server's keepalive idle time.
    pub keepalive_idle: Duration,
    /// The server's inactivity timeout (idle kinds).
    pub inactivity: Duration,
    /// The server's FIN-WAIT timeout (idle kinds).
    pub fin_wait: Duration,
    /// Bound on every wait.
    pub bound: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            keepalive_idle: Duration::from_secs(1),
            inactivity: Duration::from_millis(150),
            fin_wait: Duration::from_millis(300),
            bound: Duration::from_secs(10),
        }
    }
}

/// What the client saw.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Which script.
    pub kind: Kind,
    /// The client's address (the server's peer).
    pub client: SocketAddr,
    /// Bytes echoed back and checked.
    pub echoed: usize,
    /// Keepalive probes the client received while idle (segments in without data).
    pub probes_seen: u32,
    /// Bytes sent after the server's FIN (half-duplex).
    pub sent_after_fin: usize,
}

fn connect(addr: SocketAddr, bound: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, bound)?;
    s.set_read_timeout(Some(bound))?;
    s.set_write_timeout(Some(bound))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn echo(s: &mut TcpStream, n: usize, seed: u8) -> io::Result<usize> {
    let msg = m01_raw_sockets::lab::pattern(n, seed);
    s.write_all(&msg)?;
    let mut back = vec![0u8; n];
    s.read_exact(&mut back)?;
    if back != msg {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "echo differs"));
    }
    Ok(n)
}

fn read_to_eof(s: &mut TcpStream) -> io::Result<usize> {
    let mut total = 0;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// Runs one lifecycle of `kind` against `addr`.
pub fn run(kind: Kind, addr: SocketAddr, t: &Timing, seed: u8) -> io::Result<Outcome> {
    let mut s = connect(addr, t.bound)?;
    let client = s.local_addr()?;
    let mut out = Outcome {
        kind,
        client,
        echoed: 0,
        probes_seen: 0,
        sent_after_fin: 0,
    };
    match kind {
        Kind::Normal => {
            out.echoed = echo(&mut s, 256, seed)?;
            s.shutdown(Shutdown::Write)?;
            read_to_eof(&mut s)?;
        }
        Kind::HalfCloseClient => {
            let msg = m01_raw_sockets::lab::pattern(64 * 1024, seed);
            // A writer thread, so a full socket buffer cannot deadlock us.
            let mut w = s.try_clone()?;
            let sent = msg.clone();
            let writer = std::thread::spawn(move || -> io::Result<()> {
                w.write_all(&sent)?;
                w.shutdown(Shutdown::Write)
            });
            let mut back = Vec::with_capacity(msg.len());
            s.read_to_end(&mut back)?;
            writer
                .join()
                .map_err(|_| io::Error::other("writer panicked"))??;
            if back != msg {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "echo after half-close: {} of {} bytes",
                        back.len(),
                        msg.len()
                    ),
                ));
            }
            out.echoed = back.len();
        }
        Kind::Reset => {
            out.echoed = echo(&mut s, 64, seed)?;
            sys::set_linger(s.as_fd(), Some(Duration::ZERO))?;
        }
        Kind::Keepalive => {
            out.echoed = echo(&mut s, 64, seed)?;
            let before = kernel::tcp_info(s.as_fd())?;
            std::thread::sleep(t.keepalive_idle + Duration::from_millis(300));
            let after = kernel::tcp_info(s.as_fd())?;
            // While idle nothing carries data: every segment in is a probe.
            out.probes_seen = after.segs_in.saturating_sub(before.segs_in);
            if after.data_segs_in != before.data_segs_in {
                return Err(io::Error::other("data arrived while idle"));
            }
            s.shutdown(Shutdown::Write)?;
            read_to_eof(&mut s)?;
        }
        Kind::HalfCloseServer => {
            out.echoed = echo(&mut s, 64, seed)?;
            // The server's FIN arrives after its inactivity timeout.
            read_to_eof(&mut s)?;
            // Our direction is still open: the server reads (and discards) this.
            let late = m01_raw_sockets::lab::pattern(1000, seed);
            s.write_all(&late)?;
            out.sent_after_fin = late.len();
            s.shutdown(Shutdown::Write)?;
        }
        Kind::FinWait2Timeout => {
            out.echoed = echo(&mut s, 64, seed)?;
            read_to_eof(&mut s)?;
            // Never send our FIN. The server aborts after its FIN-WAIT timeout: our socket
            // reads the RST and goes to CLOSE.
            let deadline = Instant::now() + t.bound;
            loop {
                let st = kernel::tcp_info(s.as_fd())?.kernel_state();
                if st == KernelState::Close {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no RST from the server (client still {st})"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    drop(s);
    Ok(out)
}

/// Whether the server's record of a lifecycle is correct for `kind`: a path the script must
/// produce, at least two kernel samples, all of them in agreement.
pub fn judge(kind: Kind, life: &Lifecycle) -> Result<(), String> {
    let path = life.path.states().to_vec();
    if !kind.expected_paths().contains(&path) {
        return Err(format!("{}: unexpected path {}", kind.name(), life.path));
    }
    let a = life.agreement;
    if a.samples < 2 {
        return Err(format!(
            "{}: only {} kernel samples",
            kind.name(),
            a.samples
        ));
    }
    if a.mismatches > 0 {
        let (ours, k) = a
            .first_mismatch
            .unwrap_or((TcpState::Closed, KernelState::Unknown(0)));
        return Err(format!(
            "{}: {} of {} samples disagreed (first: ours {ours}, kernel {k})",
            kind.name(),
            a.mismatches,
            a.samples
        ));
    }
    Ok(())
}

/// What [`run_mix`] found.
#[derive(Clone, Debug, Default)]
pub struct MixReport {
    /// Lifecycles run.
    pub planned: usize,
    /// Lifecycles whose server-side record was correct at every sample.
    pub correct: usize,
    /// Per kind: (kind name, ran, correct).
    pub by_kind: Vec<(&'static str, usize, usize)>,
    /// The first few failures.
    pub failures: Vec<String>,
    /// Kernel samples over all lifecycles.
    pub samples: u64,
    /// Samples that disagreed.
    pub mismatches: u64,
    /// Samples that agreed only when read again.
    pub transient: u64,
    /// Events the model rejected.
    pub invalid_events: u64,
    /// Keepalive lifecycles in which the client saw at least one probe.
    pub keepalive_probed: usize,
    /// Every (from, to, count) transition the tables observed.
    pub observed: Vec<(TcpState, TcpState, u64)>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs `mix` (kind, count) against two verifying servers (one with keepalive for the
/// passive kinds, one with inactivity and FIN-WAIT timeouts for the idle kinds), `workers`
/// clients at a time, and judges every server-side lifecycle.
pub fn run_mix(mix: &[(Kind, usize)], workers: usize) -> io::Result<MixReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let t0 = Instant::now();
    let timing = Timing::default();
    let total: usize = mix.iter().map(|(_, n)| n).sum();
    let mut a_cfg = super::verifying();
    a_cfg.keepalive = Some(crate::kernel::Keepalive {
        idle: timing.keepalive_idle,
        interval: Duration::from_secs(1),
        count: 3,
    });
    a_cfg.table.lifecycle_capacity = total + 16;
    let mut b_cfg = super::verifying();
    b_cfg.table.inactivity_timeout = Some(timing.inactivity);
    b_cfg.table.fin_wait_timeout = Some(timing.fin_wait);
    b_cfg.linger2 = Some(Duration::from_secs(1));
    b_cfg.table.lifecycle_capacity = total + 16;
    let a = super::TrackedServer::start(super::echo_config(), a_cfg)?;
    let b = super::TrackedServer::start(super::echo_config(), b_cfg)?;

    // Interleave kinds so that every kind runs under the same load.
    let mut jobs: Vec<Kind> = Vec::with_capacity(total);
    let mut left: Vec<(Kind, usize)> = mix.to_vec();
    while left.iter().any(|(_, n)| *n > 0) {
        for (k, n) in &mut left {
            if *n > 0 {
                jobs.push(*k);
                *n -= 1;
            }
        }
    }
    let next = AtomicUsize::new(0);
    // (job index, connect time, outcome)
    let results: Mutex<Vec<(usize, Instant, io::Result<Outcome>)>> =
        Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&kind) = jobs.get(i) else { break };
                    let addr = if kind.needs_idle_server() {
                        b.addr
                    } else {
                        a.addr
                    };
                    let at = Instant::now();
                    let out = run(kind, addr, &timing, i as u8);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, at, out));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let on_a = jobs.iter().filter(|k| !k.needs_idle_server()).count() as u64;
    let on_b = total as u64 - on_a;
    let released = |srv: &super::TrackedServer, n: u64| {
        srv.wait_for(timing.bound, |t| {
            t.table().stats(Instant::now()).released >= n
        })
    };
    let mut report = MixReport {
        planned: total,
        ..MixReport::default()
    };
    if !released(&a, on_a) || !released(&b, on_b) {
        report
            .failures
            .push("not every connection was released by the server".into());
    }
    // Each server's records, tagged with which server (false: `a`, true: `b`, as
    // `needs_idle_server` picks it).
    let mut lifes: Vec<(bool, Lifecycle)> = Vec::with_capacity(total);
    let mut observed = std::collections::BTreeMap::new();
    for (on_b, srv) in [(false, &a), (true, &b)] {
        srv.with(|t| {
            let s = t.table().stats(Instant::now());
            report.samples += s.samples;
            report.mismatches += s.mismatches;
            report.transient += s.transient_samples;
            report.invalid_events += s.invalid_events;
            for (f, to, n) in s.matrix {
                *observed.entry((f, to)).or_insert(0u64) += n;
            }
            lifes.extend(t.table().lifecycles().iter().map(|l| (on_b, l.clone())));
        });
    }
    report.observed = observed.into_iter().map(|((f, t), n)| (f, t, n)).collect();
    a.stop()?;
    b.stop()?;
    // Pair client runs with server records: same server, same peer address, in connection
    // order (a port can be reused once its previous connection is gone). The server is part of
    // the key because one client port can be in use towards both servers at once (only the
    // 4-tuple must be unique), and the two connections' orders need not agree.
    let mut by_peer: std::collections::HashMap<(bool, SocketAddr), Vec<&Lifecycle>> =
        std::collections::HashMap::new();
    for (on_b, l) in &lifes {
        by_peer.entry((*on_b, l.peer)).or_default().push(l);
    }
    for v in by_peer.values_mut() {
        v.sort_by_key(|l| l.released_ns - l.lifetime_ns);
    }
    let mut clients: Vec<&(usize, Instant, io::Result<Outcome>)> = results.iter().collect();
    clients.sort_by_key(|(_, at, _)| *at);
    let mut used: std::collections::HashMap<(bool, SocketAddr), usize> =
        std::collections::HashMap::new();
    let mut per_kind: std::collections::BTreeMap<&'static str, (usize, usize)> =
        std::collections::BTreeMap::new();
    for (i, _, out) in clients {
        let kind = jobs[*i];
        let entry = per_kind.entry(kind.name()).or_insert((0, 0));
        entry.0 += 1;
        let verdict = match out {
            Err(e) => Err(format!("{}: client failed: {e}", kind.name())),
            Ok(o) => {
                let key = (kind.needs_idle_server(), o.client);
                let n = used.entry(key).or_insert(0);
                let life = by_peer.get(&key).and_then(|v| v.get(*n));
                *n += 1;
                match life {
                    None => Err(format!(
                        "{}: no server record for {}",
                        kind.name(),
                        o.client
                    )),
                    Some(l) => judge(kind, l).and_then(|()| {
                        if kind == Kind::Keepalive && o.probes_seen == 0 {
                            Err("keepalive: no probe reached the idle client".into())
                        } else {
                            Ok(())
                        }
                    }),
                }
            }
        };
        match verdict {
            Ok(()) => {
                entry.1 += 1;
                report.correct += 1;
                if kind == Kind::Keepalive {
                    report.keepalive_probed += 1;
                }
            }
            Err(e) => {
                if report.failures.len() < 10 {
                    report.failures.push(e);
                }
            }
        }
    }
    report.by_kind = per_kind
        .into_iter()
        .map(|(k, (ran, ok))| (k, ran, ok))
        .collect();
    report.elapsed = t0.elapsed();
    Ok(report)
}

/// The exit check's mix: 1,000 lifecycles over the six kinds.
pub const THOUSAND: [(Kind, usize); 6] = [
    (Kind::Normal, 250),
    (Kind::HalfCloseClient, 150),
    (Kind::Reset, 200),
    (Kind::Keepalive, 100),
    (Kind::HalfCloseServer, 150),
    (Kind::FinWait2Timeout, 150),
];
