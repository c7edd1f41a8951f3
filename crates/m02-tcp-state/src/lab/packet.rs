//! Hand-made IPv4 + TCP segments over raw sockets, for the namespace experiments (SYN flood,
//! RST injection, SYN-RECEIVED memory). Everything here needs root and runs only inside a
//! network namespace the experiment created.
//!
//! Sending: `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` (the kernel takes our IP header as is,
//! `IP_HDRINCL` implied), `connect` to fix the destination, `send`. Receiving:
//! `socket(AF_INET, SOCK_RAW, IPPROTO_TCP)` gets a copy of every TCP packet the namespace
//! receives, IP header included.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use m01_raw_sockets::sys;

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// One TCP segment in an IPv4 packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Source.
    pub src: SocketAddrV4,
    /// Destination.
    pub dst: SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags ([`flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Payload length.
    pub payload_len: usize,
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for c in chunks {
        for &b in *c {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Segment {
    /// The packet bytes: 20-byte IPv4 header, 20-byte TCP header (plus an MSS option on a SYN),
    /// no payload, both checksums filled.
    pub fn to_bytes(&self) -> Vec<u8> {
        let opts: &[u8] = if self.flags & flags::SYN != 0 {
            &[2, 4, 0x05, 0xb4] // MSS 1460
        } else {
            &[]
        };
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len;
        let mut p = vec![0u8; total];
        // IPv4.
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&(self.seq as u16).to_be_bytes()); // id: anything
        p[6] = 0x40; // don't fragment
        p[8] = 64; // TTL
        p[9] = 6; // TCP
        p[12..16].copy_from_slice(&self.src.ip().octets());
        p[16..20].copy_from_slice(&self.dst.ip().octets());
        let ip_sum = checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        // TCP.
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&self.src.port().to_be_bytes());
        t[2..4].copy_from_slice(&self.dst.port().to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&self.window.to_be_bytes());
        t[20..].copy_from_slice(opts);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&self.src.ip().octets());
        pseudo[4..8].copy_from_slice(&self.dst.ip().octets());
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        let sum = checksum(&[&pseudo, t]);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// Parses an IPv4 packet carrying TCP (what a raw `IPPROTO_TCP` socket receives).
    pub fn parse(p: &[u8]) -> Option<Segment> {
        if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
            return None;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
        let t = p.get(ihl..total)?;
        if t.len() < 20 {
            return None;
        }
        let doff = usize::from(t[12] >> 4) * 4;
        let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
        let u16_at = |o: usize| u16::from_be_bytes([t[o], t[o + 1]]);
        let u32_at = |o: usize| u32::from_be_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]);
        Some(Segment {
            src: SocketAddrV4::new(ip(12), u16_at(0)),
            dst: SocketAddrV4::new(ip(16), u16_at(2)),
            seq: u32_at(4),
            ack: u32_at(8),
            flags: t[13],
            window: u16_at(14),
            payload_len: t.len().saturating_sub(doff),
        })
    }
}

/// Sends hand-made packets to one destination.
pub struct RawSender {
    fd: OwnedFd,
}

impl RawSender {
    /// A raw `IPPROTO_RAW` socket connected to `dst` (needs `CAP_NET_RAW`).
    pub fn new(dst: Ipv4Addr) -> io::Result<RawSender> {
        let fd = sys::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )?;
        sys::connect(fd.as_fd(), &SocketAddr::from((dst, 0)))?;
        Ok(RawSender { fd })
    }

    /// Sends one segment.
    pub fn send(&self, s: &Segment) -> io::Result<()> {
        let bytes = s.to_bytes();
        sys::send(self.fd.as_fd(), &bytes, 0).map(|_| ())
    }
}

/// Receives copies of every TCP packet arriving in this namespace.
pub struct Sniffer {
    fd: OwnedFd,
}

impl Sniffer {
    /// A raw `IPPROTO_TCP` socket; `recv` waits at most `timeout`.
    pub fn new(timeout: Duration) -> io::Result<Sniffer> {
        let fd = sys::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_TCP,
        )?;
        sys::set_read_timeout(fd.as_fd(), Some(timeout))?;
        Ok(Sniffer { fd })
    }

    /// The next TCP packet (`Ok(None)` on timeout).
    pub fn next(&self) -> io::Result<Option<Segment>> {
        let mut buf = [0u8; 2048];
        match sys::recv(self.fd.as_fd(), &mut buf, 0) {
            Ok(n) => Ok(Segment::parse(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A small deterministic generator (xorshift) for spoofed addresses and sequence numbers.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_segment_round_trip_and_checksums() {
        let s = Segment {
            src: "10.0.0.2:40000".parse().unwrap(),
            dst: "10.0.0.1:8080".parse().unwrap(),
            seq: 0x01020304,
            ack: 0,
            flags: flags::SYN,
            window: 64240,
            payload_len: 0,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 44);
        // A correct checksum makes the one's-complement sum of the header come out as 0.
        assert_eq!(checksum(&[&b[..20]]), 0);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&b[12..16]);
        pseudo[4..8].copy_from_slice(&b[16..20]);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(checksum(&[&pseudo, &b[20..]]), 0);
        assert_eq!(Segment::parse(&b).unwrap(), s);
        assert!(Segment::parse(&b[..10]).is_none());
    }
}
