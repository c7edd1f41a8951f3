//! Experiment `time_wait_patterns`: where TIME-WAIT accumulates, and for how long. N lifecycles
//! per scenario against the echo server with a connection table on loopback, each scenario on
//! its own port; TIME-WAIT sockets counted from /proc/net/tcp on the server's side (local port
//! = server port) and on the clients' side (remote port = server port), right after the
//! scenario and again later (61 s in the full profile: past TIME-WAIT's 60 s), next to our
//! table's TIME-WAIT ledger.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use m02_tcp_state::kernel;
use m02_tcp_state::lab::{self, Table, TrackedServer, echo_config};
use m02_tcp_state::table::Decision;
use m02_tcp_state::{KernelState, TrackerConfig};

#[derive(Copy, Clone)]
enum Who {
    ClientFin,
    ClientRst,
    ServerHalfClose(Option<u64>),
    ServerAbort,
}

fn counts(port: u16) -> (u64, u64) {
    let e = kernel::proc_net_tcp().unwrap_or_default();
    let server = kernel::count_on_port(&e, port, KernelState::TimeWait);
    let client = e
        .iter()
        .filter(|x| x.remote.port() == port && x.state == KernelState::TimeWait)
        .count() as u64;
    (server, client)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (n, later) = if lab::quick() { (200, 3) } else { (1000, 61) };
        let scenarios = [
            ("client closes first (FIN)", Who::ClientFin),
            ("client aborts (SO_LINGER 0: RST)", Who::ClientRst),
            (
                "server closes first: idle half-close, no budget",
                Who::ServerHalfClose(None),
            ),
            (
                "server closes first: idle half-close, TIME-WAIT budget 100",
                Who::ServerHalfClose(Some(100)),
            ),
            ("server aborts idle connections (RST)", Who::ServerAbort),
        ];
        let mut results = Vec::new();
        let mut servers = Vec::new();
        for (name, who) in scenarios {
            let mut cfg = TrackerConfig::default();
            match who {
                Who::ServerHalfClose(budget) => {
                    cfg.table.inactivity_timeout = Some(Duration::from_millis(5));
                    cfg.table.time_wait_budget = budget;
                }
                Who::ServerAbort => {
                    cfg.table.inactivity_timeout = Some(Duration::from_millis(5));
                    cfg.table.idle_decision = Decision::Abort;
                }
                _ => {}
            }
            let server = TrackedServer::start(echo_config(), cfg)?;
            let t0 = Instant::now();
            for i in 0..n {
                let mut c = m01_raw_sockets::lab::connect(server.addr, Duration::from_secs(5))?;
                m01_raw_sockets::lab::echo_round_trip(
                    &mut c,
                    &m01_raw_sockets::lab::pattern(32, i as u8),
                )?;
                match who {
                    Who::ClientFin => {
                        c.shutdown(Shutdown::Write)?;
                        let mut rest = Vec::new();
                        c.read_to_end(&mut rest)?;
                    }
                    Who::ClientRst => {
                        m01_raw_sockets::sys::set_linger(c.as_fd(), Some(Duration::ZERO))?
                    }
                    Who::ServerHalfClose(_) | Who::ServerAbort => {
                        let mut rest = Vec::new();
                        match c.read_to_end(&mut rest) {
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                            Err(e) => return Err(e),
                        }
                        let _ = c.write_all(b"");
                    }
                }
            }
            let took = t0.elapsed();
            server.wait_for(Duration::from_secs(10), |t| t.table().is_empty());
            std::thread::sleep(Duration::from_millis(100));
            let (s, c) = counts(server.addr.port());
            let (ledger, aborts) = server.with(|t| {
                let st = t.table().stats(Instant::now());
                (st.time_wait_now, st.budget_aborts)
            });
            results.push((name, server.addr.port(), took, s, c, ledger, aborts));
            servers.push(server);
        }
        std::thread::sleep(Duration::from_secs(later));
        let mut t = Table::new(
            &format!("TIME-WAIT after {n} lifecycles, by who closes first (/proc/net/tcp)"),
            &[
                "scenario",
                "server side TIME-WAIT",
                "client side TIME-WAIT",
                "our table's ledger",
                "idle closes turned into RST by the budget",
                &format!("server / client TIME-WAIT {later} s later"),
                "lifecycles per second",
            ],
        );
        for (name, port, took, s, c, ledger, aborts) in results {
            let (s2, c2) = counts(port);
            t.rows.push(vec![
                name.into(),
                s.into(),
                c.into(),
                ledger.into(),
                aborts.into(),
                format!("{s2} / {c2}").into(),
                lab::round(n as f64 / took.as_secs_f64(), 0).into(),
            ]);
        }
        for s in servers {
            s.stop()?;
        }
        t.notes = format!(
            "Sequential lifecycles (connect, echo 32 bytes, close) on 127.0.0.1, one fresh server port per scenario; counts \
             taken 100 ms after the last lifecycle, and again {later} s later. TIME-WAIT lands on whichever side sent the first \
             FIN, one per connection, for 60 s (2×MSL, TCP_TIMEWAIT_LEN); an RST leaves none. A server that lets clients \
             close first never holds TIME-WAIT; one that closes idle connections itself collects one per connection on its \
             own port, unless it bounds them (our table's budget: RST beyond it). The ledger is our table's count of the \
             TIME-WAIT it created (it cannot see the kernel end one early when a new SYN reuses the 4-tuple). Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
