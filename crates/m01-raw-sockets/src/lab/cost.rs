//! The syscall cost table: `write`/`read` over a loopback TCP connection at buffer sizes from
//! 64 B to 1 MiB. Shared by the `syscall_cost` experiment and the cost-table exit check.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::Instant;

use super::{Table, machine, round};
use crate::accounting::{self, SyscallKind};
use crate::sys;

/// Buffer sizes measured, bytes.
pub const SIZES: [usize; 8] = [
    64,
    256,
    1024,
    4096,
    16 * 1024,
    64 * 1024,
    256 * 1024,
    1024 * 1024,
];

/// A connected loopback TCP pair (client, server), blocking, made with the `sys` wrappers.
pub fn tcp_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = sys::tcp_socket(&any, false)?;
    sys::bind(listener.as_fd(), &any)?;
    sys::listen(listener.as_fd(), 1)?;
    let addr = sys::getsockname(listener.as_fd())?;
    let client = sys::tcp_socket(&addr, false)?;
    sys::connect(client.as_fd(), &addr)?;
    let (server, _) = sys::accept4(listener.as_fd(), false)?;
    sys::close(listener)?;
    Ok((client, server))
}

/// One measured row.
#[derive(Clone, Debug)]
pub struct CostRow {
    /// Buffer size, bytes.
    pub size: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// `write` calls.
    pub writes: u64,
    /// Writer wall time / writes, ns.
    pub ns_per_write: f64,
    /// p50 of `write` latency from the accounting histogram (log2 upper bound), ns.
    pub p50_write_ns: u64,
    /// p99 likewise.
    pub p99_write_ns: u64,
    /// `read` calls.
    pub reads: u64,
    /// Reader wall time / reads, ns.
    pub ns_per_read: f64,
    /// Throughput, MB/s (10^6 bytes per second).
    pub mb_per_s: f64,
}

/// Moves `total` bytes in `size`-byte `write`s, read back with `size`-byte `read`s.
pub fn measure(size: usize, total: u64) -> io::Result<CostRow> {
    let (client, server) = tcp_pair()?;
    let before = accounting::snapshot();
    let reader = thread::spawn(move || -> io::Result<(u64, f64)> {
        let mut buf = vec![0u8; size];
        let mut got = 0u64;
        let mut reads = 0u64;
        let t = Instant::now();
        while got < total {
            let n = sys::read(server.as_fd(), &mut buf)?;
            reads += 1;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "writer vanished",
                ));
            }
            got += n as u64;
        }
        let ns = t.elapsed().as_nanos() as f64;
        sys::close(server)?;
        Ok((reads, ns))
    });
    let buf = vec![0x5au8; size];
    let mut sent = 0u64;
    let mut writes = 0u64;
    let t = Instant::now();
    while sent < total {
        let want = (total - sent).min(size as u64) as usize;
        sent += sys::write(client.as_fd(), &buf[..want])? as u64;
        writes += 1;
    }
    let write_ns = t.elapsed().as_nanos() as f64;
    let (reads, read_ns) = reader
        .join()
        .map_err(|_| io::Error::other("reader panicked"))??;
    let elapsed_s = write_ns.max(read_ns) / 1e9;
    let delta = accounting::snapshot().since(&before);
    sys::close(client)?;
    let w = delta.get(SyscallKind::Write);
    Ok(CostRow {
        size,
        bytes: total,
        writes,
        ns_per_write: write_ns / writes.max(1) as f64,
        p50_write_ns: w.quantile_ns(0.5),
        p99_write_ns: w.quantile_ns(0.99),
        reads,
        ns_per_read: read_ns / reads.max(1) as f64,
        mb_per_s: total as f64 / 1e6 / elapsed_s.max(1e-9),
    })
}

/// Bytes to move at `size`: enough calls to be stable, bounded in time.
pub fn total_for(size: usize, quick: bool) -> u64 {
    let (calls, cap) = if quick {
        (20_000u64, 32u64 << 20)
    } else {
        (200_000, 256 << 20)
    };
    (size as u64 * calls).min(cap)
}

/// The whole table.
pub fn table(quick: bool) -> io::Result<Table> {
    let mut t = Table::new(
        "Syscall cost vs buffer size (write/read over loopback TCP)",
        &[
            "buffer (bytes)",
            "write calls",
            "ns per write",
            "p50 write (ns)",
            "p99 write (ns)",
            "read calls",
            "ns per read",
            "MB/s",
        ],
    );
    for size in SIZES {
        let r = measure(size, total_for(size, quick))?;
        t.rows.push(vec![
            r.size.into(),
            r.writes.into(),
            round(r.ns_per_write, 0).into(),
            r.p50_write_ns.into(),
            r.p99_write_ns.into(),
            r.reads.into(),
            round(r.ns_per_read, 0).into(),
            round(r.mb_per_s, 1).into(),
        ]);
    }
    t.notes = format!(
        "One blocking loopback TCP connection per row; a writer thread issues write(2) of the buffer \
         size, a reader thread issues read(2) of the same size until all bytes arrive \
         ({} profile: up to {} calls, at most {} MiB per row). ns per call = wall time of the loop / \
         calls, so it includes time blocked waiting for the other side once the socket buffers are \
         full (the large sizes). p50/p99 come from the built-in accounting histogram (log2 buckets: \
         upper bounds, within 2x). The fixed cost of crossing into the kernel dominates small \
         buffers (throughput grows almost linearly with size); from tens of KiB on, copying and the \
         TCP stack dominate and MB/s flattens. Machine: {}.",
        if quick { "quick" } else { "full" },
        if quick { "20,000" } else { "200,000" },
        if quick { 32 } else { 256 },
        machine()
    );
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// send vs write vs writev

/// How a message is written.
#[derive(Copy, Clone, Debug)]
#[non_exhaustive]
pub enum Method {
    /// `send(buf)`.
    Send,
    /// `write(buf)`.
    Write,
    /// `writev([buf])`.
    Writev1,
    /// `send(header)` then `send(body)`.
    TwoSends,
    /// `writev([header, body])`.
    Writev2,
    /// Copy header and body into one buffer, `send` it.
    CopySend,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 6] = [
        Method::Send,
        Method::Write,
        Method::Writev1,
        Method::TwoSends,
        Method::Writev2,
        Method::CopySend,
    ];

    /// Label for tables.
    pub fn name(self) -> &'static str {
        match self {
            Method::Send => "send(buf)",
            Method::Write => "write(buf)",
            Method::Writev1 => "writev([buf])",
            Method::TwoSends => "send(header) + send(body)",
            Method::Writev2 => "writev([header, body])",
            Method::CopySend => "copy header+body, send(buf)",
        }
    }
    /// Syscalls per message.
    pub fn calls(self) -> u64 {
        if matches!(self, Method::TwoSends) {
            2
        } else {
            1
        }
    }
}

/// Header size for the header + body methods.
pub const HEADER: usize = 16;

/// Sends `messages` messages of `body` bytes with `method` over a loopback pair:
/// (ns per message, MB/s).
pub fn measure_write(method: Method, body: usize, messages: u64) -> std::io::Result<(f64, f64)> {
    let (client, server) = tcp_pair()?;
    sys::set_nodelay(client.as_fd(), true)?;
    let per_msg = if matches!(method, Method::Send | Method::Write | Method::Writev1) {
        body
    } else {
        HEADER + body
    };
    let total = per_msg as u64 * messages;
    let reader = thread::spawn(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < total {
            let n = sys::read(server.as_fd(), &mut buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        sys::close(server)
    });
    let header = [0x48u8; HEADER];
    let payload = vec![0x42u8; body];
    let mut scratch = Vec::with_capacity(HEADER + body);
    let fd = client.as_fd();
    let send_all = |buf: &[u8]| -> std::io::Result<()> {
        let mut off = 0;
        while off < buf.len() {
            off += sys::send(fd, &buf[off..], sys::MSG_NOSIGNAL)?;
        }
        Ok(())
    };
    let t = Instant::now();
    for _ in 0..messages {
        match method {
            Method::Send => send_all(&payload)?,
            Method::Write => {
                let mut off = 0;
                while off < payload.len() {
                    off += sys::write(fd, &payload[off..])?;
                }
            }
            Method::Writev1 => {
                let mut off = 0;
                while off < payload.len() {
                    off += sys::writev(fd, &[IoSlice::new(&payload[off..])])?;
                }
            }
            Method::TwoSends => {
                send_all(&header)?;
                send_all(&payload)?;
            }
            Method::Writev2 => {
                let n = sys::writev(fd, &[IoSlice::new(&header), IoSlice::new(&payload)])?;
                if n < HEADER + body {
                    // Partial gather write: finish the rest from where it stopped.
                    let rest: Vec<u8> = header
                        .iter()
                        .chain(payload.iter())
                        .skip(n)
                        .copied()
                        .collect();
                    send_all(&rest)?;
                }
            }
            Method::CopySend => {
                scratch.clear();
                scratch.extend_from_slice(&header);
                scratch.extend_from_slice(&payload);
                send_all(&scratch)?;
            }
        }
    }
    let ns = t.elapsed().as_nanos() as f64;
    reader
        .join()
        .map_err(|_| std::io::Error::other("reader panicked"))??;
    sys::close(client)?;
    Ok((ns / messages as f64, total as f64 / 1e6 / (ns / 1e9)))
}

/// The write-methods table (send vs write vs writev; header + body strategies).
pub fn write_methods_table(quick: bool) -> io::Result<Table> {
    let mut t = Table::new(
        "Write methods: send vs write vs writev, and header + body strategies",
        &[
            "method",
            "body (bytes)",
            "messages",
            "syscalls per message",
            "ns per message",
            "MB/s",
        ],
    );
    // Warm-up: the first connections of a process pay for page faults and cold caches.
    for m in [Method::Send, Method::Write, Method::Writev1] {
        measure_write(m, 1024, if quick { 2_000 } else { 20_000 })?;
    }
    for body in [64usize, 1024, 16 * 1024] {
        let messages: u64 = if quick { 20_000 } else { 200_000 }.min((256 << 20) / body as u64);
        for m in Method::ALL {
            let (ns, mbps) = measure_write(m, body, messages)?;
            t.rows.push(vec![
                m.name().into(),
                body.into(),
                messages.into(),
                m.calls().into(),
                round(ns, 0).into(),
                round(mbps, 1).into(),
            ]);
        }
    }
    t.notes = format!(
        "Blocking loopback TCP, TCP_NODELAY on the sender, a reader thread draining with 256 KiB \
         reads, after a warm-up. send, write and writev of one buffer end in the same kernel path \
         (sock_sendmsg), so their rows should match within this shared machine's run-to-run \
         noise (tens of percent; compare medians over several runs before concluding). For a 16-byte header + body, two sends pay the \
         syscall twice (and with TCP_NODELAY may emit two segments); writev sends both in one \
         call without copying; copying into one buffer costs a memcpy but one call. Machine: {}.",
        machine()
    );
    Ok(t)
}

/// Checks a cost table is well-formed: every size present, every number positive, throughput
/// growing from the smallest to the largest buffer. Returns the problems found.
pub fn validate(t: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["title", "columns", "rows", "notes"] {
        if t.get(key).is_none() {
            problems.push(format!("missing key {key:?}"));
        }
    }
    let columns = t["columns"].as_array().map_or(0, Vec::len);
    let rows = t["rows"].as_array().cloned().unwrap_or_default();
    if rows.len() != SIZES.len() {
        problems.push(format!("{} rows, expected {}", rows.len(), SIZES.len()));
    }
    for (row, size) in rows.iter().zip(SIZES) {
        let cells = row.as_array().cloned().unwrap_or_default();
        if cells.len() != columns {
            problems.push(format!(
                "row for {size} has {} cells, expected {columns}",
                cells.len()
            ));
            continue;
        }
        if cells[0].as_u64() != Some(size as u64) {
            problems.push(format!("row for {size} has size {}", cells[0]));
        }
        for (i, c) in cells.iter().enumerate() {
            if !c.as_f64().is_some_and(|x| x > 0.0) {
                problems.push(format!(
                    "row {size}, column {i}: {c} is not a positive number"
                ));
            }
        }
    }
    let mbps = |r: Option<&serde_json::Value>| {
        r.and_then(|r| r[columns.saturating_sub(1)].as_f64())
            .unwrap_or(0.0)
    };
    if problems.is_empty() && mbps(rows.last()) <= mbps(rows.first()) {
        problems.push("throughput at 1 MiB is not above throughput at 64 B".into());
    }
    problems
}
