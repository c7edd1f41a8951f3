//! Experiment `handshake_time`: how long the three-way handshake takes on loopback (IPv4 and
//! IPv6), seen four ways: a blocking `connect` (returns after SYN → SYN+ACK → ACK), a
//! non-blocking `connect` then `poll(POLLOUT)` (the SYN-SENT our table would see), the server's
//! table (how long after the client's `connect` began our server had the connection:
//! handshake + accept queue + `poll` wake-up + `accept4`), and the kernel's first RTT sample
//! (`tcpi_rtt` right after the handshake).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::TrackerConfig;
use m02_tcp_state::kernel;
use m02_tcp_state::lab::{self, Table, TrackedServer, echo_config};

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn pct(v: &mut [f64]) -> String {
    format!(
        "{:.1} / {:.1} / {:.1}",
        lab::quantile(v, 0.5),
        lab::quantile(v, 0.99),
        lab::quantile(v, 1.0)
    )
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let n = if lab::quick() { 300 } else { 3000 };
        let mut t = Table::new(
            "Three-way handshake on loopback",
            &[
                "path",
                "connections",
                "blocking connect() p50 / p99 / max (µs)",
                "non-blocking: EINPROGRESS share",
                "non-blocking connect → POLLOUT p50 / p99 / max (µs)",
                "server table has it after p50 / p99 / max (µs)",
                "kernel RTT (tcpi_rtt) p50 (µs)",
            ],
        );
        for listen in ["127.0.0.1:0", "[::1]:0"] {
            let mut echo = echo_config();
            echo.listen = listen.parse().map_err(std::io::Error::other)?;
            let mut cfg = TrackerConfig::default();
            cfg.table.lifecycle_capacity = 2 * n + 16;
            let server = TrackedServer::start(echo, cfg)?;
            let addr: SocketAddr = server.addr;
            let epoch = server.with(|t| t.table().epoch());
            let mut blocking = Vec::with_capacity(n);
            let mut nonblocking = Vec::with_capacity(n);
            let mut rtts = Vec::with_capacity(n);
            let mut started = Vec::with_capacity(2 * n);
            let mut inprogress = 0;
            for _ in 0..n {
                // Blocking connect.
                let t0 = Instant::now();
                let c = std::net::TcpStream::connect(addr)?;
                blocking.push(us(t0.elapsed()));
                rtts.push(f64::from(kernel::tcp_info(c.as_fd())?.rtt_us));
                started.push((c.local_addr()?, t0));
                drop(c);
                // Non-blocking connect, then wait for writability.
                let fd = sys::tcp_socket(&addr, true)?;
                let t0 = Instant::now();
                match sys::connect(fd.as_fd(), &addr) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => inprogress += 1,
                    Err(e) => return Err(e),
                }
                let mut p = [sys::PollFd::new(fd.as_fd(), sys::POLLOUT)];
                sys::poll(&mut p, Some(Duration::from_secs(2)))?;
                nonblocking.push(us(t0.elapsed()));
                if let Some(e) = sys::take_error(fd.as_fd())? {
                    return Err(e);
                }
                started.push((sys::getsockname(fd.as_fd())?, t0));
                drop(fd);
            }
            server.wait_for(Duration::from_secs(10), |t| {
                t.table().stats(Instant::now()).released as usize >= 2 * n
            });
            let mut accept_after = Vec::with_capacity(2 * n);
            server.with(|t| {
                let lifes: std::collections::HashMap<SocketAddr, u64> = t
                    .table()
                    .lifecycles()
                    .iter()
                    .map(|l| (l.peer, l.released_ns - l.lifetime_ns))
                    .collect();
                for (peer, t0) in &started {
                    if let Some(opened) = lifes.get(peer) {
                        let at = epoch + Duration::from_nanos(*opened);
                        accept_after.push(us(at.saturating_duration_since(*t0)));
                    }
                }
            });
            server.stop()?;
            t.rows.push(vec![
                if addr.is_ipv4() {
                    "IPv4 127.0.0.1"
                } else {
                    "IPv6 ::1"
                }
                .into(),
                n.into(),
                pct(&mut blocking).into(),
                format!("{:.0}%", inprogress as f64 * 100.0 / n as f64).into(),
                pct(&mut nonblocking).into(),
                pct(&mut accept_after).into(),
                lab::round(lab::quantile(&mut rtts, 0.5), 1).into(),
            ]);
        }
        t.notes = format!(
            "Sequential connects to the echo server with a connection table, in this process. On loopback the whole handshake \
             runs inside the connect() system call: the SYN is delivered through the loopback device, the listener answers \
             SYN+ACK and the ACK completes it, all in softirq processing before the call returns. So even a non-blocking \
             connect, which returns EINPROGRESS, is usually writable at once: SYN-SENT lasts microseconds. The server's \
             table sees the connection later by the accept queue wait, the poll wake-up and accept4 (our server polls, so \
             that includes a context switch). tcpi_rtt after the handshake is the kernel's first RTT sample (from the \
             SYN+ACK). Over a real network the handshake costs one round trip before the first byte can be sent (TCP Fast \
             Open or TLS 1.3 0-RTT are the ways round it). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
