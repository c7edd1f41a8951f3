//! Experiment `so_linger_variants`: what `close()` does with unsent data under each `SO_LINGER`
//! setting: how long `close` takes, what the peer reads, whether TIME_WAIT is left behind.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use m01_raw_sockets::lab::{self, Table, round, wait_until};
use m01_raw_sockets::stats::{self, TCP_TIME_WAIT};
use m01_raw_sockets::sys;

const PAYLOAD: usize = 64 * 1024;

/// Reads until EOF or error; returns (bytes, outcome).
fn drain(fd: &OwnedFd) -> (usize, String) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match sys::recv(fd.as_fd(), &mut buf, 0) {
            Ok(0) => return (total, "EOF (FIN)".into()),
            Ok(n) => total += n,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                return (total, "ECONNRESET (RST)".into());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (total, "timed out".into()),
            Err(e) => return (total, format!("error: {e}")),
        }
    }
}

struct Variant {
    name: &'static str,
    linger: Option<Duration>,
    peer_reads_during_close: bool,
}

fn run(v: &Variant) -> io::Result<Vec<serde_json::Value>> {
    let (client, server) = lab::cost::tcp_pair()?;
    let port = sys::getsockname(server.as_fd())?.port();
    sys::set_read_timeout(client.as_fd(), Some(Duration::from_secs(5)))?;
    if !v.peer_reads_during_close {
        // A small window so that most of the payload is still queued on our side at close().
        sys::set_recv_buffer_size(client.as_fd(), 4096)?;
    }
    sys::set_nonblocking(server.as_fd(), true)?;
    let payload = vec![0x33u8; PAYLOAD];
    let mut queued = 0;
    while queued < PAYLOAD {
        match sys::send(server.as_fd(), &payload[queued..], sys::MSG_NOSIGNAL) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    sys::set_nonblocking(server.as_fd(), false)?;
    let unsent = sys::outq(server.as_fd())?;
    sys::set_linger(server.as_fd(), v.linger)?;
    let reader = v.peer_reads_during_close.then(|| {
        let c = client.try_clone().expect("dup");
        thread::spawn(move || drain(&c))
    });
    let t = Instant::now();
    let close_result = sys::close(server);
    let close_us = t.elapsed().as_secs_f64() * 1e6;
    let (read, outcome) = match reader {
        Some(h) => h.join().map_err(|_| io::Error::other("reader panicked"))?,
        None => drain(&client),
    };
    sys::close(client)?;
    // The closing side (ours) holds TIME_WAIT after a FIN exchange; an RST leaves none.
    wait_until(Duration::from_millis(200), || {
        stats::tcp_sockets_in_state(port, TCP_TIME_WAIT).is_ok_and(|c| c.0 > 0)
    });
    let (tw_local, _) = stats::tcp_sockets_in_state(port, TCP_TIME_WAIT)?;
    Ok(vec![
        v.name.into(),
        queued.into(),
        unsent.into(),
        round(close_us, 1).into(),
        match close_result {
            Ok(()) => "0".to_owned(),
            Err(e) => e.to_string(),
        }
        .into(),
        read.into(),
        outcome.into(),
        tw_local.into(),
    ])
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let linger_s = Duration::from_secs(1);
        let variants = [
            Variant {
                name: "off (default)",
                linger: None,
                peer_reads_during_close: false,
            },
            Variant {
                name: "on, 1 s, peer reading",
                linger: Some(linger_s),
                peer_reads_during_close: true,
            },
            Variant {
                name: "on, 1 s, peer not reading",
                linger: Some(linger_s),
                peer_reads_during_close: false,
            },
            Variant {
                name: "on, 0 s (abortive close)",
                linger: Some(Duration::ZERO),
                peer_reads_during_close: false,
            },
        ];
        let mut t = Table::new(
            "SO_LINGER variants: close() with unsent data",
            &[
                "SO_LINGER",
                "bytes queued before close",
                "unacked at close (SIOCOUTQ)",
                "close() µs",
                "close() result",
                "peer read (bytes)",
                "peer saw",
                "TIME_WAIT left (closer side)",
            ],
        );
        for v in &variants {
            let started = Instant::now();
            t.rows.push(run(v)?);
            eprintln!("{}: {:.2} s", v.name, started.elapsed().as_secs_f64());
        }
        t.notes = format!(
            "Loopback pair; the closing side queues up to {PAYLOAD} bytes (non-blocking send until \
             EAGAIN), sets SO_LINGER, and calls close() on a blocking socket. Off: close returns at \
             once, the kernel delivers the queue then FIN, and the closer holds TIME_WAIT. On with a \
             timeout: close blocks until the queue is acknowledged (fast when the peer reads) or the \
             timeout expires (peer not reading: close takes the full second). On with 0: close \
             discards our queue and sends RST at once: the peer reads what had already reached its \
             receive queue, then ECONNRESET; the rest is lost, and no TIME_WAIT is left (the trick \
             some servers use to avoid TIME_WAIT, at the price of lost data). When the linger \
             timeout expires with data unacknowledged, Linux returns from close() and keeps \
             delivering in the background (the peer still reads everything, then FIN). \
             Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
