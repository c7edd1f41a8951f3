//! Experiment: what the per-connection statistics show under a mixed workload — close
//! reasons, requests per connection, lifetimes, pipeline depths, reuse — from the
//! `Http11Stats` registry every session merges into when it is dropped.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use m08_http11::client::{Client, read_response};
use m08_http11::lab::{LabServer, Table, connect, machine, quick, round, run_main};
use m08_http11::{Http11Config, PoolConfig};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let scale = if quick() { 1 } else { 5 };
        let config = Http11Config {
            idle_timeout: Duration::from_millis(1000),
            header_timeout: Duration::from_millis(500),
            ..Http11Config::default()
        };
        let server = LabServer::start(config)?;
        let a = server.addr;
        // Pooled keep-alive clients.
        for _ in 0..4 * scale {
            let mut c = Client::new(PoolConfig::default(), Duration::from_secs(5));
            for _ in 0..25 {
                c.get(a, "/")?;
            }
        }
        // One request then Connection: close; HTTP/1.0.
        for i in 0..10 * scale {
            let mut s = connect(a)?;
            let req = if i % 2 == 0 {
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
            } else {
                "GET / HTTP/1.0\r\n\r\n"
            };
            s.write_all(req.as_bytes())?;
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
        }
        // Pipelined bursts of 16.
        for _ in 0..2 * scale {
            let mut s = connect(a)?;
            s.write_all(&b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".repeat(16))?;
            let mut buf = Vec::new();
            for _ in 0..16 {
                read_response(&mut s, &mut buf, false)?;
            }
        }
        // Malformed requests, and connections left idle / half-sent until the server times out.
        for _ in 0..3 * scale {
            let mut s = connect(a)?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
        }
        let mut idle = Vec::new();
        for i in 0..3 * scale {
            let mut s = connect(a)?;
            if i % 2 == 0 {
                s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")?;
                let mut buf = Vec::new();
                read_response(&mut s, &mut buf, false)?;
            } else {
                s.write_all(b"GET / HTTP/1.1\r\nHo")?;
            }
            idle.push(s);
        }
        std::thread::sleep(Duration::from_millis(1500));
        drop(idle);
        std::thread::sleep(Duration::from_millis(200));
        let st = server.stats.sum();
        let _ = server.stop()?;
        let mut t = Table::new(
            "Per-connection statistics under a mixed workload",
            &["metric", "bucket", "count"],
        );
        for (r, n) in st.close_rows() {
            t.rows.push(vec!["close_reason".into(), r.into(), n.into()]);
        }
        for (b, n) in st.requests_per_conn.rows() {
            t.rows
                .push(vec!["requests_per_connection".into(), b.into(), n.into()]);
        }
        for (b, n) in st.lifetime_ms.rows() {
            t.rows.push(vec!["lifetime_ms".into(), b.into(), n.into()]);
        }
        for (b, n) in st.depth.rows() {
            t.rows
                .push(vec!["max_pipeline_depth".into(), b.into(), n.into()]);
        }
        t.rows.push(vec![
            "requests".into(),
            "total".into(),
            st.requests.load(Ordering::Relaxed).into(),
        ]);
        t.rows.push(vec![
            "reuse_%".into(),
            "requests after the first on a connection".into(),
            round(st.reuse_percent(), 2).into(),
        ]);
        t.rows.push(vec![
            "rejected".into(),
            "error responses".into(),
            st.rejected.load(Ordering::Relaxed).into(),
        ]);
        t.rows.push(vec![
            "connections".into(),
            "opened / still live".into(),
            format!("{} / {}", st.opened.load(Ordering::Relaxed), st.live()).into(),
        ]);
        t.notes = format!(
            "Workload: pooled keep-alive clients (25 GETs each), Connection: close and HTTP/1.0 one-shots, pipelined bursts of 16, CL+TE smuggling attempts, idle and half-sent connections left to time out (idle 1 s, header 0.5 s for this run). Histogram buckets are powers of two. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
