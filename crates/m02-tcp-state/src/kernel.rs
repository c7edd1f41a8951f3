//! The kernel's own view of TCP, read five ways: `getsockopt(TCP_INFO)` and `SO_MEMINFO` on a
//! descriptor we hold, and `/proc/net/tcp`, `/proc/net/netstat` + `/proc/net/snmp` (what
//! `nstat` prints), `/proc/net/sockstat` and `/proc/slabinfo` for everything else. Plus the
//! socket options this milestone sets: keepalive, `TCP_LINGER2`, `TCP_SYNCNT`,
//! `TCP_USER_TIMEOUT`.
//!
//! Every syscall goes through `m01_raw_sockets::sys` (counted like all the others). The files
//! under `/proc/net` show the network namespace of the process reading them, which is how the
//! namespace experiments read their own counters.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

use m01_raw_sockets::sys;
use serde::Serialize;

use crate::state::KernelState;

// ---------------------------------------------------------------------------------------------
// TCP_INFO

/// `struct tcp_info` as far as this crate reads it (byte offsets from `linux/tcp.h`, checked
/// against `offsetof` on Linux 6.x; the kernel has appended fields since 2.6 without ever
/// moving one).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    /// Bytes the kernel filled (fields past it are 0: an older kernel).
    pub len: usize,
    /// `tcpi_state`.
    pub state: u8,
    /// `tcpi_retransmits`: retransmissions of the current unacknowledged segment (or SYN).
    pub retransmits: u8,
    /// `tcpi_probes`: zero-window or keepalive probes sent without answer.
    pub probes: u8,
    /// `tcpi_backoff`: exponential backoff shift of the retransmission timer.
    pub backoff: u8,
    /// `tcpi_options` (`TCPI_OPT_*`: timestamps, SACK, window scaling, ECN…).
    pub options: u8,
    /// Retransmission timeout, µs.
    pub rto_us: u32,
    /// Send MSS.
    pub snd_mss: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// ms since we last sent data.
    pub last_data_sent_ms: u32,
    /// ms since we last received data.
    pub last_data_recv_ms: u32,
    /// ms since we last received an ACK.
    pub last_ack_recv_ms: u32,
    /// Smoothed RTT, µs.
    pub rtt_us: u32,
    /// RTT variance, µs.
    pub rttvar_us: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Retransmissions over the connection's life.
    pub total_retrans: u32,
    /// Bytes we sent that the peer acknowledged (RFC 4898 `HCThruOctetsAcked`).
    pub bytes_acked: u64,
    /// Bytes received in order (RFC 4898 `HCThruOctetsReceived`).
    pub bytes_received: u64,
    /// Segments sent (data, ACKs, probes, FIN…).
    pub segs_out: u32,
    /// Segments received.
    pub segs_in: u32,
    /// Bytes written by us and not yet sent.
    pub notsent_bytes: u32,
    /// Segments carrying data received.
    pub data_segs_in: u32,
    /// Segments carrying data sent.
    pub data_segs_out: u32,
    /// Data bytes sent, retransmissions included.
    pub bytes_sent: u64,
}

/// What `getsockopt(TCP_INFO)` returns at most on Linux 6.x; we ask for this much.
const TCP_INFO_LEN: usize = 232;

fn u32_at(b: &[u8], off: usize, len: usize) -> u32 {
    if off + 4 > len {
        return 0;
    }
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize, len: usize) -> u64 {
    if off + 8 > len {
        return 0;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

impl TcpInfo {
    /// Decodes the bytes `getsockopt` wrote (`len` of them).
    pub fn parse(b: &[u8]) -> TcpInfo {
        let len = b.len();
        let byte = |off: usize| if off < len { b[off] } else { 0 };
        TcpInfo {
            len,
            state: byte(0),
            retransmits: byte(2),
            probes: byte(3),
            backoff: byte(4),
            options: byte(5),
            rto_us: u32_at(b, 8, len),
            snd_mss: u32_at(b, 16, len),
            unacked: u32_at(b, 24, len),
            last_data_sent_ms: u32_at(b, 44, len),
            last_data_recv_ms: u32_at(b, 52, len),
            last_ack_recv_ms: u32_at(b, 56, len),
            rtt_us: u32_at(b, 68, len),
            rttvar_us: u32_at(b, 72, len),
            snd_cwnd: u32_at(b, 80, len),
            total_retrans: u32_at(b, 100, len),
            bytes_acked: u64_at(b, 120, len),
            bytes_received: u64_at(b, 128, len),
            segs_out: u32_at(b, 136, len),
            segs_in: u32_at(b, 140, len),
            notsent_bytes: u32_at(b, 144, len),
            data_segs_in: u32_at(b, 152, len),
            data_segs_out: u32_at(b, 156, len),
            bytes_sent: u64_at(b, 200, len),
        }
    }

    /// `tcpi_state` decoded.
    pub fn kernel_state(&self) -> KernelState {
        KernelState::from_code(self.state)
    }
}

/// `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`: the kernel's state and counters for one socket.
pub fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<TcpInfo> {
    let mut buf = [0u8; TCP_INFO_LEN];
    let n = sys::getsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut buf)?;
    Ok(TcpInfo::parse(&buf[..n]))
}

// ---------------------------------------------------------------------------------------------
// SO_MEMINFO

/// `SO_MEMINFO` (not in every libc): the socket's memory as the kernel charges it.
const SO_MEMINFO: libc::c_int = 55;

/// The `skmem:(r…,rb…,t…,tb…,f…,w…,o…,bl…,d…)` of `ss -m`, for one socket we hold.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SkMem {
    /// `r`: bytes in the receive queue (charged truesize).
    pub rmem_alloc: u32,
    /// `rb`: receive buffer limit.
    pub rcvbuf: u32,
    /// `t`: bytes in flight in the transmit path.
    pub wmem_alloc: u32,
    /// `tb`: send buffer limit.
    pub sndbuf: u32,
    /// `f`: forward-allocated, reserved but unused.
    pub fwd_alloc: u32,
    /// `w`: bytes queued for sending.
    pub wmem_queued: u32,
    /// `o`: option memory.
    pub optmem: u32,
    /// `bl`: backlog queue.
    pub backlog: u32,
    /// `d`: packets dropped.
    pub drops: u32,
}

impl SkMem {
    /// Bytes charged to the socket now: queues + forward allocation + options + backlog.
    pub fn charged(&self) -> u64 {
        u64::from(self.rmem_alloc)
            + u64::from(self.wmem_queued)
            + u64::from(self.fwd_alloc)
            + u64::from(self.optmem)
            + u64::from(self.backlog)
    }
}

/// `getsockopt(fd, SOL_SOCKET, SO_MEMINFO)`.
pub fn sk_meminfo(fd: BorrowedFd<'_>) -> io::Result<SkMem> {
    let mut buf = [0u8; 36];
    let n = sys::getsockopt_bytes(fd, libc::SOL_SOCKET, SO_MEMINFO, &mut buf)?;
    let v = |i: usize| u32_at(&buf, i * 4, n);
    Ok(SkMem {
        rmem_alloc: v(0),
        rcvbuf: v(1),
        wmem_alloc: v(2),
        sndbuf: v(3),
        fwd_alloc: v(4),
        wmem_queued: v(5),
        optmem: v(6),
        backlog: v(7),
        drops: v(8),
    })
}

// ---------------------------------------------------------------------------------------------
// Options

/// TCP keepalive: after `idle` without traffic, send a probe every `interval`; after `count`
/// unanswered probes, the connection is dead (`ETIMEDOUT`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Keepalive {
    /// `TCP_KEEPIDLE` (whole seconds, ≥ 1).
    pub idle: Duration,
    /// `TCP_KEEPINTVL` (whole seconds, ≥ 1).
    pub interval: Duration,
    /// `TCP_KEEPCNT`.
    pub count: u32,
}

impl Keepalive {
    /// How long after the last traffic a dead peer is detected: idle + count × interval.
    pub fn detection_time(&self) -> Duration {
        self.idle + self.interval * self.count
    }
}

fn secs(d: Duration) -> libc::c_int {
    libc::c_int::try_from(d.as_secs().max(1)).unwrap_or(libc::c_int::MAX)
}

/// `SO_KEEPALIVE` on, and `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT` (4 setsockopt calls).
pub fn set_keepalive(fd: BorrowedFd<'_>, k: &Keepalive) -> io::Result<()> {
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(k.idle))?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(k.interval))?;
    let count = libc::c_int::try_from(k.count.max(1)).unwrap_or(libc::c_int::MAX);
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, count)
}

/// Reads the keepalive settings back (`None` when `SO_KEEPALIVE` is off).
pub fn keepalive(fd: BorrowedFd<'_>) -> io::Result<Option<Keepalive>> {
    if sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
        return Ok(None);
    }
    let get = |name| sys::getsockopt_int(fd, libc::IPPROTO_TCP, name).map(|v| v.max(0) as u64);
    Ok(Some(Keepalive {
        idle: Duration::from_secs(get(libc::TCP_KEEPIDLE)?),
        interval: Duration::from_secs(get(libc::TCP_KEEPINTVL)?),
        count: get(libc::TCP_KEEPCNT)? as u32,
    }))
}

/// `TCP_LINGER2`: how long an *orphaned* socket (descriptor closed) may stay in FIN-WAIT-2
/// before the kernel drops it (default `net.ipv4.tcp_fin_timeout`, 60 s). A negative value
/// means "no FIN-WAIT-2 at all: RST at once".
pub fn set_linger2(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_LINGER2, secs(timeout))
}

/// Reads `TCP_LINGER2`, seconds.
pub fn linger2(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    let s = sys::getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_LINGER2)?;
    Ok(Duration::from_secs(s.max(0) as u64))
}

/// `TCP_SYNCNT`: SYN retransmissions before `connect` gives up (this socket's
/// `net.ipv4.tcp_syn_retries`).
pub fn set_syn_count(fd: BorrowedFd<'_>, count: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(count.clamp(1, 127)).unwrap_or(127);
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_SYNCNT, v)
}

/// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the connection is
/// dropped (`ETIMEDOUT`), overriding retransmission counts and, when set, keepalive's count.
pub fn set_user_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
}

// ---------------------------------------------------------------------------------------------
// /proc/net/tcp

/// Which timer a `/proc/net/tcp` line says is pending (column `tr`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Timer {
    /// 0: none.
    None,
    /// 1: retransmission (also SYN and FIN retransmission).
    Retransmit,
    /// 2: keepalive (also the FIN-WAIT-2 timer of an orphan).
    Keepalive,
    /// 3: TIME-WAIT.
    TimeWait,
    /// 4: zero-window probe.
    Probe,
    /// Something newer.
    Other(u8),
}

impl Timer {
    fn from_code(c: u8) -> Timer {
        match c {
            0 => Timer::None,
            1 => Timer::Retransmit,
            2 => Timer::Keepalive,
            3 => Timer::TimeWait,
            4 => Timer::Probe,
            o => Timer::Other(o),
        }
    }

    /// The name `ss -o` prints (`on`, `keepalive`, `timewait`, `persist`).
    pub fn ss_name(self) -> &'static str {
        match self {
            Timer::None => "",
            Timer::Retransmit => "on",
            Timer::Keepalive => "keepalive",
            Timer::TimeWait => "timewait",
            Timer::Probe => "persist",
            Timer::Other(_) => "?",
        }
    }
}

/// One line of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcTcpEntry {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// `st`.
    pub state: KernelState,
    /// `tx_queue`: bytes sent and not acknowledged (`write_seq - snd_una`).
    pub tx_queue: u32,
    /// `rx_queue`: bytes received and not read (for a listener: the accept queue length).
    pub rx_queue: u32,
    /// `tr`.
    pub timer: Timer,
    /// `tm->when`: time until the timer fires, ms (clock ticks × 10 at `USER_HZ` 100).
    pub timer_ms: u64,
    /// `retrnsmt`: retransmissions of the current segment (`icsk_retransmits`).
    pub retransmits: u32,
    /// `timeout` column: unanswered probes (`icsk_probes_out`: keepalive or window probes).
    pub probes: u32,
    /// Socket inode (0 for TIME-WAIT and request socks, which have no file).
    pub inode: u64,
}

fn parse_v4(hex: &str) -> Option<Ipv4Addr> {
    // The kernel prints the 32-bit address as stored (network order) read as a host integer.
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(v.to_ne_bytes()))
}

fn parse_v6(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for w in 0..4 {
        let v = u32::from_str_radix(&hex[w * 8..w * 8 + 8], 16).ok()?;
        bytes[w * 4..w * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

fn parse_addr(col: &str) -> Option<SocketAddr> {
    let (ip, port) = col.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if ip.len() == 8 {
        Some(SocketAddr::from((parse_v4(ip)?, port)))
    } else {
        let v6 = parse_v6(ip)?;
        // IPv4-mapped (::ffff:a.b.c.d) from a dual-stack socket: show it as IPv4.
        match v6.to_ipv4_mapped() {
            Some(v4) => Some(SocketAddr::from((v4, port))),
            None => Some(SocketAddr::from((v6, port))),
        }
    }
}

/// Parses one line (without the header).
pub fn parse_proc_tcp_line(line: &str) -> Option<ProcTcpEntry> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() < 10 {
        return None;
    }
    let local = parse_addr(cols[1])?;
    let remote = parse_addr(cols[2])?;
    let state = KernelState::from_code(u8::from_str_radix(cols[3], 16).ok()?);
    let (tx, rx) = cols[4].split_once(':')?;
    let (tr, when) = cols[5].split_once(':')?;
    Some(ProcTcpEntry {
        local,
        remote,
        state,
        tx_queue: u32::from_str_radix(tx, 16).ok()?,
        rx_queue: u32::from_str_radix(rx, 16).ok()?,
        timer: Timer::from_code(u8::from_str_radix(tr, 16).ok()?),
        // jiffies_delta_to_clock_t: USER_HZ (100) ticks.
        timer_ms: u64::from_str_radix(when, 16).ok()? * 10,
        retransmits: u32::from_str_radix(cols[6], 16).ok()?,
        probes: cols[8].parse().ok()?,
        inode: cols[9].parse().ok()?,
    })
}

/// Every TCP socket of this network namespace (`/proc/net/tcp` and `/proc/net/tcp6`).
pub fn proc_net_tcp() -> io::Result<Vec<ProcTcpEntry>> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.extend(text.lines().skip(1).filter_map(parse_proc_tcp_line));
    }
    Ok(out)
}

/// The entry for one 4-tuple, if the kernel still has it.
pub fn find_tuple(
    entries: &[ProcTcpEntry],
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<ProcTcpEntry> {
    entries
        .iter()
        .find(|e| e.local == local && e.remote == remote)
        .copied()
}

/// Counts sockets per kernel state among those whose local port is `port` (the server's
/// side of its connections, and its listener).
pub fn states_on_port(entries: &[ProcTcpEntry], port: u16) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in entries.iter().filter(|e| e.local.port() == port) {
        *m.entry(e.state.ss_name().to_owned()).or_insert(0) += 1;
    }
    m
}

/// How many sockets with local port `port` are in `state`.
pub fn count_on_port(entries: &[ProcTcpEntry], port: u16, state: KernelState) -> u64 {
    entries
        .iter()
        .filter(|e| e.local.port() == port && e.state == state)
        .count() as u64
}

// ---------------------------------------------------------------------------------------------
// nstat: /proc/net/netstat + /proc/net/snmp

/// The counters `nstat -az` prints: `TcpExtListenOverflows`, `TcpRetransSegs`… (the section
/// name glued to the field name), for this network namespace.
pub fn netstat_counters() -> io::Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    for file in ["/proc/net/netstat", "/proc/net/snmp"] {
        let text = fs::read_to_string(file)?;
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let (Some((sec, names)), Some((_, values))) =
                (names.split_once(':'), values.split_once(':'))
            else {
                continue;
            };
            for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(v) = v.parse::<i64>() {
                    m.insert(format!("{sec}{n}"), v.max(0) as u64);
                }
            }
        }
    }
    Ok(m)
}

/// `after - before` for each counter named in `names` (0 when absent).
pub fn counter_deltas(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    names: &[&str],
) -> BTreeMap<String, u64> {
    names
        .iter()
        .map(|n| {
            let a = after.get(*n).copied().unwrap_or(0);
            let b = before.get(*n).copied().unwrap_or(0);
            ((*n).to_owned(), a.saturating_sub(b))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// /proc/net/sockstat, /proc/slabinfo

/// The `TCP:` line of `/proc/net/sockstat`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SockStat {
    /// Sockets in use (this namespace).
    pub inuse: u64,
    /// Orphans: closed by their process, still finishing in the kernel (FIN-WAIT, LAST-ACK…).
    pub orphan: u64,
    /// TIME-WAIT sockets (this namespace).
    pub tw: u64,
    /// Allocated sockets.
    pub alloc: u64,
    /// Pages charged to TCP buffers (all namespaces: the limit `tcp_mem` is global).
    pub mem_pages: u64,
}

/// Reads `/proc/net/sockstat`.
pub fn sockstat() -> io::Result<SockStat> {
    let text = fs::read_to_string("/proc/net/sockstat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no TCP: line"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let get = |key: &str| {
        words
            .windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(0)
    };
    Ok(SockStat {
        inuse: get("inuse"),
        orphan: get("orphan"),
        tw: get("tw"),
        alloc: get("alloc"),
        mem_pages: get("mem"),
    })
}

/// One cache of `/proc/slabinfo` (needs root).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlabCache {
    /// Objects in use.
    pub active_objs: u64,
    /// Objects allocated (in use or free in a slab).
    pub num_objs: u64,
    /// Bytes per object.
    pub objsize: u64,
}

/// The slab caches named in `names` (`TCP`, `tw_sock_TCP`, `request_sock_TCP`…).
pub fn slabinfo(names: &[&str]) -> io::Result<BTreeMap<String, SlabCache>> {
    let text = fs::read_to_string("/proc/slabinfo")?;
    let mut m = BTreeMap::new();
    for line in text.lines().skip(2) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || !names.contains(&cols[0]) {
            continue;
        }
        let n = |i: usize| cols[i].parse().unwrap_or(0);
        m.insert(
            cols[0].to_owned(),
            SlabCache {
                active_objs: n(1),
                num_objs: n(2),
                objsize: n(3),
            },
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_proc_net_tcp_line_parses() {
        let line = "   0: 0100007F:0BB8 0100007F:D431 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000";
        let e = parse_proc_tcp_line(line).unwrap();
        assert_eq!(e.local, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(e.remote, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(e.state, KernelState::TimeWait);
        assert_eq!(e.timer, Timer::TimeWait);
        assert_eq!(e.timer_ms, 60_000);
        let v6 = "   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:9C40 01 00000010:00000020 02:00000064 00000002     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let e = parse_proc_tcp_line(v6).unwrap();
        assert_eq!(e.local, "127.0.0.1:80".parse().unwrap());
        assert_eq!((e.tx_queue, e.rx_queue), (16, 32));
        assert_eq!(
            (e.timer, e.timer_ms, e.retransmits),
            (Timer::Keepalive, 1000, 2)
        );
        assert_eq!((e.probes, e.inode), (0, 12345));
        assert!(parse_proc_tcp_line("garbage").is_none());
    }

    #[test]
    fn test_tcp_info_parse_short_buffer_leaves_zeros() {
        let mut b = [0u8; 104];
        b[0] = 1;
        b[3] = 2;
        b[68..72].copy_from_slice(&1500u32.to_ne_bytes());
        let i = TcpInfo::parse(&b);
        assert_eq!(i.kernel_state(), KernelState::Established);
        assert_eq!((i.probes, i.rtt_us, i.len), (2, 1500, 104));
        assert_eq!(i.bytes_acked, 0, "beyond the returned length");
    }

    #[test]
    fn test_netstat_counters_read_this_namespace() {
        let m = netstat_counters().unwrap();
        assert!(m.contains_key("TcpExtListenOverflows"), "nstat's names");
        assert!(m.contains_key("TcpActiveOpens"));
        let s = sockstat().unwrap();
        assert!(s.inuse + s.tw + s.alloc + s.orphan + s.mem_pages < u64::MAX);
    }
}
