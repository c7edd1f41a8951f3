//! Experiment `connection_setup_teardown_times`: connect, server-side setup, first echo, and
//! teardown times over K lifecycles (client clock and the server's per-connection records).

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use m01_raw_sockets::lab::{
    self, Table, ThreadServer, echo_round_trip, quantile, round, wait_until,
};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let k: usize = if lab::quick() { 200 } else { 1000 };
        let mut config = lab::test_config();
        config.record_limit = k;
        let server = ThreadServer::start(config).map_err(std::io::Error::other)?;
        let (mut connect_us, mut echo_us, mut fin_us) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..k {
            let t = Instant::now();
            let mut c = TcpStream::connect(server.addr)?;
            connect_us.push(t.elapsed().as_secs_f64() * 1e6);
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.set_nodelay(true)?;
            echo_us.push(echo_round_trip(&mut c, &lab::pattern(64, i as u8))?.as_secs_f64() * 1e6);
            let t = Instant::now();
            c.shutdown(std::net::Shutdown::Write)?;
            let mut rest = Vec::new();
            c.read_to_end(&mut rest)?;
            fin_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        wait_until(Duration::from_secs(5), || {
            server.counters.snapshot().closed == k as u64
        });
        let report = server.stop()?;
        let mut setup_us: Vec<f64> = report
            .connections
            .iter()
            .map(|r| r.setup_ns as f64 / 1e3)
            .collect();
        let mut teardown_us: Vec<f64> = report
            .connections
            .iter()
            .map(|r| r.teardown_ns as f64 / 1e3)
            .collect();
        let mut life_us: Vec<f64> = report
            .connections
            .iter()
            .map(|r| r.lifetime_us as f64)
            .collect();
        let mut t = Table::new(
            "Connection setup and teardown times",
            &[
                "phase",
                "measured by",
                "samples",
                "p50 µs",
                "p99 µs",
                "max µs",
            ],
        );
        let mut row = |name: &str, by: &str, v: &mut Vec<f64>| {
            let max = v.iter().copied().fold(0.0, f64::max);
            t.rows.push(vec![
                name.into(),
                by.into(),
                v.len().into(),
                round(quantile(v, 0.5), 1).into(),
                round(quantile(v, 0.99), 1).into(),
                round(max, 1).into(),
            ]);
        };
        row("connect() (3-way handshake)", "client", &mut connect_us);
        row(
            "accept4 → socket ready (TCP_NODELAY + 3 getsockopt)",
            "server record",
            &mut setup_us,
        );
        row("first 64-byte echo round trip", "client", &mut echo_us);
        row(
            "client FIN → server's FIN (EOF seen, close)",
            "client",
            &mut fin_us,
        );
        row("server close() call", "server record", &mut teardown_us);
        row(
            "whole lifecycle (accept → close)",
            "server record",
            &mut life_us,
        );
        t.notes = format!(
            "{k} sequential lifecycles against an in-process poll-mode echo server on loopback. The \
             handshake completes in the kernel before accept4 (connect returns when the SYN-ACK \
             arrives, before the server even wakes). Setup is the server's own per-connection work \
             after accept4; teardown is the client's FIN reaching the server (a poll wake-up, recv \
             returning 0) and the server's close() sending its FIN back. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
