//! Exit check `stress_leaked_conns`: 1,000 connections open at once against milestone 1's echo
//! server with a connection table, then ended five ways (client close, RST, client half-close
//! with data in flight, idle until the table's inactivity timeout (3 s) half-closes them, idle and
//! deaf so that the FIN-WAIT-2 timeout aborts them). Once the clients are gone and the timeouts
//! have expired, measured: table entries still live + server-side descriptors above the
//! baseline (threshold == 0). The detail has the table's per-state distribution, slots used
//! and the process's descriptor count.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use m02_tcp_state::TcpState;
use m02_tcp_state::lab::{self, TrackedServer, echo_config};

const N: usize = 1000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut cfg = m02_tcp_state::TrackerConfig::default();
        // Long enough that opening all N connections (seconds on a busy 2-core machine) never
        // races it, so the peak really is N concurrent; the idle clients then wait it out.
        cfg.table.inactivity_timeout = Some(Duration::from_secs(3));
        cfg.table.fin_wait_timeout = Some(Duration::from_millis(400));
        cfg.linger2 = Some(Duration::from_secs(1));
        cfg.table.capacity = 2048;
        let server = TrackedServer::start(echo_config(), cfg)?;
        // Descriptors of this process before: the server's own (listener, pipe, reserve)
        // are already open.
        let baseline = lab::fd_count()?;
        let t0 = Instant::now();
        let mut clients: Vec<TcpStream> = Vec::with_capacity(N);
        for i in 0..N {
            let mut c = m01_raw_sockets::lab::connect(server.addr, Duration::from_secs(10))?;
            c.write_all(&[i as u8; 16])?;
            clients.push(c);
        }
        for c in &mut clients {
            let mut b = [0u8; 16];
            c.read_exact(&mut b)?;
        }
        let peak = server.with(|t| t.table().len());
        // End them five ways, from 10 threads.
        let chunks: Vec<Vec<(usize, TcpStream)>> = {
            let mut v: Vec<Vec<(usize, TcpStream)>> = (0..10).map(|_| Vec::new()).collect();
            for (i, c) in clients.into_iter().enumerate() {
                v[i % 10].push((i, c));
            }
            v
        };
        let errors = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for chunk in chunks {
                let errors = &errors;
                s.spawn(move || {
                    for (i, mut c) in chunk {
                        let r: std::io::Result<()> = (|| {
                            match i % 5 {
                                0 => {
                                    c.shutdown(Shutdown::Write)?;
                                    let mut rest = Vec::new();
                                    c.read_to_end(&mut rest)?;
                                }
                                1 => {
                                    m01_raw_sockets::sys::set_linger(
                                        c.as_fd(),
                                        Some(Duration::ZERO),
                                    )?;
                                }
                                2 => {
                                    c.write_all(&[7u8; 4096])?;
                                    c.shutdown(Shutdown::Write)?;
                                    let mut rest = Vec::new();
                                    c.read_to_end(&mut rest)?;
                                }
                                3 => {
                                    // Wait for the inactivity FIN, then close.
                                    let mut rest = Vec::new();
                                    c.read_to_end(&mut rest)?;
                                }
                                _ => {
                                    // Read the FIN, never answer: dropped only after the
                                    // server's abort.
                                    let mut rest = Vec::new();
                                    c.read_to_end(&mut rest)?;
                                    let mut b = [0u8; 1];
                                    let deadline = Instant::now() + Duration::from_secs(10);
                                    while Instant::now() < deadline {
                                        let st = m02_tcp_state::kernel::tcp_info(c.as_fd())?;
                                        if st.kernel_state() == m02_tcp_state::KernelState::Close {
                                            break;
                                        }
                                        std::thread::sleep(Duration::from_millis(10));
                                    }
                                    let _ = c.read(&mut b);
                                }
                            }
                            Ok(())
                        })();
                        if r.is_err() {
                            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        drop(c);
                    }
                });
            }
        });
        // Every client is gone; let the server see the last events and its timers expire.
        server.wait_for(Duration::from_secs(15), |t| t.table().is_empty());
        lab::wait_until(Duration::from_secs(5), || {
            lab::fd_count().is_ok_and(|n| n <= baseline)
        });
        let (live, stats, mem) = server.with(|t| {
            let now = Instant::now();
            (t.table().len(), t.table().stats(now), t.table().memory())
        });
        let fds_now = lab::fd_count()?;
        let leaked_fds = fds_now.saturating_sub(baseline);
        let report = server.stop()?;
        let leftover: Vec<String> = stats
            .distribution
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{} {n}", s.rfc_name()))
            .collect();
        let measured = live + leaked_fds;
        let finals = |s: TcpState| -> u64 {
            stats
                .matrix
                .iter()
                .filter(|(_, to, _)| *to == s)
                .map(|(_, _, n)| n)
                .sum()
        };
        let detail = format!(
            "{live} table entries + {leaked_fds} server descriptors left after {N} concurrent connections \
             (peak {peak} live in the table, {} slots touched of {}; opened {}, released {}); \
             ended by client FIN, RST, half-close with 4 KiB in flight, inactivity half-close (3 s) \
             and FIN-WAIT-2 abort (400 ms): {} inactivity decisions, {} FIN-WAIT aborts, {} TIME-WAIT \
             entered (budget 512), {} → CLOSED transitions; live per state after: [{}]; \
             process fds {fds_now} vs baseline {baseline}; m01 accepted {} closed {} shed {}; \
             client errors {}; {:.1} s",
            mem.slots_touched,
            mem.capacity,
            stats.opened,
            stats.released,
            stats.decisions_inactivity,
            stats.decisions_fin_wait,
            stats.time_wait_total,
            finals(TcpState::Closed),
            leftover.join(", "),
            report.counters.accepted,
            report.counters.closed,
            report.counters.shed,
            errors.load(std::sync::atomic::Ordering::Relaxed),
            t0.elapsed().as_secs_f64()
        );
        let pass = measured == 0
            && peak == N
            && stats.opened == N as u64
            && stats.released == N as u64
            && report.counters.accepted == report.counters.closed;
        lab::print_check_measured(pass, measured as f64, "connections", &detail);
        Ok(())
    })
}
