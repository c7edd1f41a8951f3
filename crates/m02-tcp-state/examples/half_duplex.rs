//! Experiment `half_duplex`: TCP's two directions close separately. (1) The client sends 1 MiB
//! and its FIN at once; the server, in CLOSE-WAIT, keeps echoing everything back. (2) The server
//! half-closes an idle connection (our table's inactivity timeout); the client, having read
//! EOF, keeps sending 1 MiB to the server in FIN-WAIT-2. (3) Both sides `shutdown(SHUT_WR)` at
//! the same instant from two threads: how often the FINs cross (simultaneous close, CLOSING on
//! both sides) rather than one side seeing the other's first. Every path is tracked by a
//! connection table and checked against the kernel.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use m01_raw_sockets::sys;
use m02_tcp_state::lab::{self, Table, TrackedServer, echo_config, verifying};
use m02_tcp_state::table::Lifecycle;
use m02_tcp_state::{Event, TcpState, Tracker};

fn last_life(server: &TrackedServer) -> Option<Lifecycle> {
    server.with(|t| t.table().lifecycles().iter().last().cloned())
}

/// One side of a simultaneous close: shutdown at the barrier, then wait for the peer's FIN.
fn side(fd: &OwnedFd, peer: SocketAddr, barrier: &Barrier) -> std::io::Result<Lifecycle> {
    let mut t = Tracker::new(verifying(), Instant::now());
    t.open_passive(fd.as_fd(), peer, Instant::now())
        .map_err(std::io::Error::other)?;
    barrier.wait();
    sys::shutdown(fd.as_fd(), Shutdown::Write)?;
    t.observe(fd.as_fd(), Event::ShutdownWrite, Instant::now());
    let mut p = [sys::PollFd::new(fd.as_fd(), sys::POLLIN)];
    sys::poll(&mut p, Some(Duration::from_secs(2)))?;
    let mut b = [0u8; 8];
    let n = sys::recv(fd.as_fd(), &mut b, 0)?;
    if n == 0 {
        t.observe(fd.as_fd(), Event::PeerFin, Instant::now());
    }
    // Let the last ACK land, then a final sample.
    lab::wait_until(Duration::from_millis(200), || {
        t.sample(fd.as_fd(), Instant::now());
        t.id_of(std::os::fd::AsRawFd::as_raw_fd(fd))
            .and_then(|id| t.table().get(id))
            .is_some_and(|c| c.state() == TcpState::TimeWait)
    });
    t.close(fd.as_fd(), false, "done", Instant::now())
        .ok_or_else(|| std::io::Error::other("untracked"))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (mib, tries) = if lab::quick() { (1, 200) } else { (4, 1000) };
        let payload = m01_raw_sockets::lab::pattern(mib << 20, 3);
        let mut t = Table::new(
            "Half-duplex: one direction closed, the other still carrying data",
            &[
                "scenario",
                "bytes after the first FIN",
                "time in the half-closed state (ms)",
                "server path (our table)",
                "kernel samples / disagreed",
            ],
        );
        // (1) Client FIN first, server keeps sending in CLOSE-WAIT.
        {
            let server = TrackedServer::start(echo_config(), verifying())?;
            let mut c = m01_raw_sockets::lab::connect(server.addr, Duration::from_secs(10))?;
            let mut w = c.try_clone()?;
            let p = payload.clone();
            let writer = std::thread::spawn(move || -> std::io::Result<()> {
                w.write_all(&p)?;
                w.shutdown(Shutdown::Write)
            });
            let mut back = Vec::with_capacity(payload.len());
            c.read_to_end(&mut back)?;
            writer
                .join()
                .map_err(|_| std::io::Error::other("writer"))??;
            server.wait_for(Duration::from_secs(5), |t| t.table().is_empty());
            let l = last_life(&server).ok_or_else(|| std::io::Error::other("no lifecycle"))?;
            let fin_at_bytes = l.bytes_out; // every echoed byte; the FIN came with the last input
            t.rows.push(vec![
                format!("client sends {mib} MiB + FIN at once; server echoes in CLOSE-WAIT").into(),
                format!(
                    "{} B echoed in all ({} back intact)",
                    fin_at_bytes,
                    if back == payload { "all" } else { "NOT all" }
                )
                .into(),
                lab::round(l.dwell_ns[TcpState::CloseWait.index()] as f64 / 1e6, 2).into(),
                l.path.to_string().into(),
                format!("{} / {}", l.agreement.samples, l.agreement.mismatches).into(),
            ]);
            server.stop()?;
        }
        // (2) Server FIN first (inactivity), client keeps sending to the server in FIN-WAIT-2.
        {
            let mut cfg = verifying();
            cfg.table.inactivity_timeout = Some(Duration::from_millis(100));
            cfg.table.fin_wait_timeout = Some(Duration::from_secs(30));
            let server = TrackedServer::start(echo_config(), cfg)?;
            let mut c = m01_raw_sockets::lab::connect(server.addr, Duration::from_secs(10))?;
            m01_raw_sockets::lab::echo_round_trip(&mut c, b"hello")?;
            let mut b = [0u8; 8];
            let eof = c.read(&mut b)?; // the server's FIN
            let t0 = Instant::now();
            c.write_all(&payload)?;
            c.shutdown(Shutdown::Write)?;
            let sent_ms = t0.elapsed().as_secs_f64() * 1e3;
            server.wait_for(Duration::from_secs(10), |t| t.table().is_empty());
            let l = last_life(&server).ok_or_else(|| std::io::Error::other("no lifecycle"))?;
            t.rows.push(vec![
                format!("server half-closes after 100 ms idle; client then sends {mib} MiB (read EOF = {eof})").into(),
                format!("{} B read by the server after its FIN (in {sent_ms:.1} ms)", l.bytes_in - 5).into(),
                lab::round(l.dwell_ns[TcpState::FinWait2.index()] as f64 / 1e6, 2).into(),
                l.path.to_string().into(),
                format!("{} / {}", l.agreement.samples, l.agreement.mismatches).into(),
            ]);
            server.stop()?;
        }
        // (3) Simultaneous shutdown from two threads.
        {
            let any: SocketAddr = "127.0.0.1:0".parse().map_err(std::io::Error::other)?;
            let l = sys::tcp_socket(&any, false)?;
            sys::bind(l.as_fd(), &any)?;
            sys::listen(l.as_fd(), 64)?;
            let addr = sys::getsockname(l.as_fd())?;
            let (mut closing, mut agreed, mut samples, mut mismatches) = (0, 0, 0, 0);
            let mut paths = std::collections::BTreeMap::new();
            for _ in 0..tries {
                let a = sys::connect_timeout(&addr, Duration::from_secs(2))?;
                let (b, peer_b) = sys::accept4(l.as_fd(), false)?;
                let peer_a = sys::getpeername(a.as_fd())?;
                let barrier = Barrier::new(2);
                let (la, lb) = std::thread::scope(|s| {
                    let ha = s.spawn(|| side(&a, peer_a, &barrier));
                    let hb = s.spawn(|| side(&b, peer_b, &barrier));
                    (ha.join(), hb.join())
                });
                for life in [la, lb].into_iter().flatten().flatten() {
                    let p = life.path.to_string();
                    if life.path.states().contains(&TcpState::Closing) {
                        closing += 1;
                    }
                    samples += life.agreement.samples;
                    mismatches += life.agreement.mismatches;
                    if life.agreement.mismatches == 0 {
                        agreed += 1;
                    }
                    *paths.entry(p).or_insert(0) += 1;
                }
            }
            let mut ps: Vec<(String, i32)> = paths.into_iter().collect();
            ps.sort_by_key(|p| std::cmp::Reverse(p.1));
            t.rows.push(vec![
                format!("both shutdown(SHUT_WR) at once, {tries} connections × 2 sides").into(),
                format!(
                    "{closing} of {} sides went through CLOSING (FINs crossed)",
                    2 * tries
                )
                .into(),
                "-".into(),
                ps.iter()
                    .map(|(p, n)| format!("{p} ×{n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
                    .into(),
                format!("{samples} / {mismatches} ({agreed} sides fully agreed)").into(),
            ]);
        }
        t.notes = format!(
            "Loopback, echo server with a verifying connection table (rows 1, 2) or two trackers on a socket pair (row 3). \
             shutdown(SHUT_WR) sends FIN but keeps the socket readable: the other direction goes on until its own FIN. In row 1 \
             the kernel is in CLOSE-WAIT from the moment the FIN arrives, behind data the server has not read yet; our \
             table marks CLOSE-WAIT only when the server reaches the FIN (recv returns 0, or a hook's poll sees POLLRDHUP), \
             which is why its time in CLOSE-WAIT is short: the model follows what user space has seen. In row 2 the \
             server sits in FIN-WAIT-2, reading (and discarding: it cannot echo any more) what the client still sends. Row 3 races two FINs: a side sees CLOSING \
             only when the peer's FIN arrives before the ACK of its own, which on loopback needs both threads to send \
             within the same few microseconds. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
