//! Experiment: head-of-line blocking — a slow request (/slow/200) first, then 9 fast ones,
//! pipelined on one connection vs sent on 10 separate connections at once.

use std::io::Write;
use std::time::Instant;

use m08_http11::Http11Config;
use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, Table, connect, machine, quick, round, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let slow_ms = if quick() { 100 } else { 200 };
        let server = LabServer::start(Http11Config::default())?;
        let slow = format!("GET /slow/{slow_ms} HTTP/1.1\r\nHost: h\r\n\r\n");
        let fast = "GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut t = Table::new(
            "Head-of-line blocking: a slow first request delays pipelined ones",
            &[
                "mode",
                "slow_ms",
                "fast_p50_ms",
                "fast_max_ms",
                "all_done_ms",
            ],
        );
        // Pipelined.
        let mut s = connect(server.addr)?;
        let start = Instant::now();
        s.write_all(format!("{slow}{}", fast.repeat(9)).as_bytes())?;
        let mut buf = Vec::new();
        let mut fast_ms = Vec::new();
        for i in 0..10 {
            read_response(&mut s, &mut buf, false)?;
            if i > 0 {
                fast_ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let all = start.elapsed().as_secs_f64() * 1e3;
        fast_ms.sort_by(f64::total_cmp);
        t.rows.push(vec![
            "pipelined, 1 connection".into(),
            slow_ms.into(),
            round(fast_ms[4], 2).into(),
            round(fast_ms[8], 2).into(),
            round(all, 2).into(),
        ]);
        // Separate connections.
        let mut conns = (0..10)
            .map(|_| connect(server.addr))
            .collect::<std::io::Result<Vec<_>>>()?;
        let start = Instant::now();
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(if i == 0 {
                slow.as_bytes()
            } else {
                fast.as_bytes()
            })?;
        }
        let mut fast_ms = Vec::new();
        for c in conns.iter_mut().skip(1) {
            let mut b = Vec::new();
            read_response(c, &mut b, false)?;
            fast_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let mut b = Vec::new();
        read_response(&mut conns[0], &mut b, false)?;
        let all = start.elapsed().as_secs_f64() * 1e3;
        fast_ms.sort_by(f64::total_cmp);
        t.rows.push(vec![
            "10 connections".into(),
            slow_ms.into(),
            round(fast_ms[4], 2).into(),
            round(fast_ms[8], 2).into(),
            round(all, 2).into(),
        ]);
        let _ = server.stop()?;
        t.notes = format!(
            "HTTP/1.1 answers pipelined requests in order (RFC 9112 §9.3.2): the 9 fast responses wait behind the slow one. On separate connections they do not. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
