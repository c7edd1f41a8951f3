//! Experiment `blocking_vs_slow_client`: one client connects and stalls; how long do five other
//! clients wait for an echo, with the blocking server and with the poll server?

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use m01_raw_sockets::Mode;
use m01_raw_sockets::lab::{self, Table, ThreadServer, echo_round_trip, quantile, round};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let stall = if lab::quick() {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(1000)
        };
        let mut t = Table::new(
            "Blocking behaviour with a slow client",
            &[
                "mode",
                "slow client stalls (ms)",
                "other clients",
                "p50 echo latency (ms)",
                "max echo latency (ms)",
                "served while the slow client stalled",
            ],
        );
        for mode in [Mode::Blocking, Mode::Poll] {
            let mut config = lab::test_config();
            config.mode = mode;
            let server = ThreadServer::start(config).map_err(std::io::Error::other)?;
            let addr = server.addr;
            let slow = thread::spawn(move || -> std::io::Result<()> {
                let mut c = lab::connect(addr, Duration::from_secs(10))?;
                c.write_all(b"s")?; // one byte, then nothing
                thread::sleep(stall);
                Ok(())
            });
            thread::sleep(Duration::from_millis(20)); // let the slow client be accepted first
            let started = Instant::now();
            let others: Vec<_> = (0..5)
                .map(|i| {
                    thread::spawn(move || -> std::io::Result<(f64, Duration)> {
                        let mut c = lab::connect(addr, Duration::from_secs(10))?;
                        let t = Instant::now();
                        echo_round_trip(&mut c, &lab::pattern(32, i))?;
                        Ok((t.elapsed().as_secs_f64() * 1e3, started.elapsed()))
                    })
                })
                .collect();
            let mut lat = Vec::new();
            let mut during = 0;
            for h in others {
                let (ms, at) = h
                    .join()
                    .map_err(|_| std::io::Error::other("client panicked"))??;
                lat.push(ms);
                if at + Duration::from_millis(20) < stall {
                    during += 1;
                }
            }
            slow.join()
                .map_err(|_| std::io::Error::other("client panicked"))??;
            server.stop()?;
            let max = lat.iter().copied().fold(0.0, f64::max);
            t.rows.push(vec![
                mode.to_string().into(),
                (stall.as_millis() as u64).into(),
                5.into(),
                round(quantile(&mut lat, 0.5), 3).into(),
                round(max, 3).into(),
                format!("{during} of 5").into(),
            ]);
        }
        t.notes = format!(
            "In-process echo server. The slow client sends one byte and then sits idle for the stall \
             time before closing; 20 ms later five clients each do one 32-byte echo. The blocking \
             server is inside recv() for the slow client: the others complete their TCP handshake (the \
             kernel's accept queue) but nobody reads them until the slow client leaves, so each waits \
             about the remaining stall. The poll server never blocks on one client: the others are \
             served in well under a millisecond. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
