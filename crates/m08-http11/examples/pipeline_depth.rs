//! Experiment: pipeline depth 1…64 — one connection sends requests in batches of `depth`
//! (one write), then reads the `depth` responses. Depth 1 is plain keep-alive.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use m08_http11::Http11Config;
use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, Table, connect, machine, quick, round, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let total = if quick() { 512 } else { 8192 };
        let mut t = Table::new(
            "Pipelining: throughput vs pipeline depth (one connection)",
            &[
                "depth",
                "requests",
                "req_per_s",
                "us_per_request",
                "speedup_vs_1",
                "server_max_depth",
            ],
        );
        let mut base = 0.0;
        for depth in [1usize, 2, 4, 8, 16, 32, 64] {
            let server = LabServer::start(Http11Config {
                // One connection carries the whole measurement: no per-connection request cap.
                max_requests: u64::MAX,
                ..Http11Config::default()
            })?;
            let mut s = connect(server.addr)?;
            let batch: Vec<u8> = b"GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n".repeat(depth);
            let mut buf = Vec::new();
            let start = Instant::now();
            for _ in 0..total / depth {
                s.write_all(&batch)?;
                for _ in 0..depth {
                    read_response(&mut s, &mut buf, false)?;
                }
            }
            let el = start.elapsed().as_secs_f64();
            drop(s);
            let stats = server.stats.sum();
            let _ = server.stop()?;
            let rate = total as f64 / el;
            if depth == 1 {
                base = rate;
            }
            let max_depth = stats
                .depth
                .snapshot()
                .iter()
                .rposition(|&c| c > 0)
                .map_or(0, m08_http11::stats::Histogram::upper);
            let _ = stats.requests.load(Ordering::Relaxed);
            t.rows.push(vec![
                depth.into(),
                total.into(),
                round(rate, 0).into(),
                round(1e6 / rate, 2).into(),
                round(rate / base, 2).into(),
                format!("<={max_depth}").into(),
            ]);
        }
        t.notes = format!(
            "GET /plaintext, loopback, ThreadServer + Http11Factory (max_pipeline_depth 64). server_max_depth: the connection's largest queue of unsent responses (power-of-two bucket bound). {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
