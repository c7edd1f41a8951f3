//! Experiment `time_wait_accumulation`: TIME_WAIT sockets left by N connection lifecycles,
//! counted in /proc/net/tcp, when the client closes first, when the server closes first, and
//! when the client aborts with RST.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use m01_raw_sockets::lab::{self, Table, ThreadServer, echo_round_trip, wait_until};
use m01_raw_sockets::stats::{self, TCP_TIME_WAIT};
use m01_raw_sockets::sys;

#[derive(Copy, Clone)]
enum Who {
    ClientFirst,
    ServerFirst,
    ClientRst,
}

fn scenario(who: Who, n: usize) -> io::Result<(usize, usize)> {
    let mut config = lab::test_config();
    if matches!(who, Who::ServerFirst) {
        // The server closes idle connections after 2 ms: it becomes the active closer.
        config.read_timeout = Some(Duration::from_millis(2));
    }
    let server = ThreadServer::start(config).map_err(io::Error::other)?;
    let port = server.addr.port();
    for i in 0..n {
        let mut c = lab::connect(server.addr, Duration::from_secs(5))?;
        if !matches!(who, Who::ServerFirst) {
            // (The server-first case skips the echo: its 2 ms idle timeout may fire first on a
            // loaded machine, and who closes first is all that matters here.)
            echo_round_trip(&mut c, &lab::pattern(32, i as u8))?;
        }
        match who {
            Who::ClientFirst => {
                c.shutdown(std::net::Shutdown::Write)?;
                let mut rest = Vec::new();
                c.read_to_end(&mut rest)?; // server's FIN
            }
            Who::ServerFirst => {
                let mut rest = Vec::new();
                c.read_to_end(&mut rest)?; // wait for the server to close
            }
            Who::ClientRst => sys::set_linger(c.as_fd(), Some(Duration::ZERO))?,
        }
        drop(c);
    }
    wait_until(Duration::from_secs(5), || {
        server.counters.snapshot().closed == n as u64
    });
    // Let the last FIN/ACK exchanges finish.
    let mut last = (usize::MAX, usize::MAX);
    wait_until(Duration::from_secs(2), || {
        let now = stats::tcp_sockets_in_state(port, TCP_TIME_WAIT).unwrap_or((0, 0));
        let stable = now == last;
        last = now;
        std::thread::sleep(Duration::from_millis(20));
        stable
    });
    server.stop()?;
    stats::tcp_sockets_in_state(port, TCP_TIME_WAIT)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let n = if lab::quick() { 50 } else { 500 };
        let mut t = Table::new(
            "TIME_WAIT accumulation (from /proc/net/tcp, state 06)",
            &[
                "who closes first",
                "lifecycles",
                "TIME_WAIT on server port (server side)",
                "TIME_WAIT to server port (client side)",
            ],
        );
        for (name, who) in [
            ("client (FIN first)", Who::ClientFirst),
            ("server (idle timeout)", Who::ServerFirst),
            ("client, SO_LINGER 0 (RST)", Who::ClientRst),
        ] {
            let (server_side, client_side) = scenario(who, n)?;
            t.rows.push(vec![
                name.into(),
                n.into(),
                server_side.into(),
                client_side.into(),
            ]);
        }
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "?".into())
        };
        t.notes = format!(
            "Sequential lifecycles against an in-process echo server on a fresh port per scenario; \
             TIME_WAIT counted right after the last close. TIME_WAIT (2×MSL, 60 s on Linux) stays \
             with whoever closes first: clients that close first keep it on their ephemeral ports \
             (harmless for the server), a server that closes first accumulates one per connection on \
             its own port, and an RST leaves none. SO_REUSEADDR is what lets a restarted server \
             bind its port while these exist. net.ipv4.tcp_max_tw_buckets = {}, tcp_tw_reuse = {}. \
             Machine: {}.",
            read("/proc/sys/net/ipv4/tcp_max_tw_buckets"),
            read("/proc/sys/net/ipv4/tcp_tw_reuse"),
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
