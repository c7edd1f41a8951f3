//! Experiment: chunked vs Content-Length — wire bytes and time for the same bodies.

use std::io::Write;
use std::time::Instant;

use m08_http11::Http11Config;
use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, Table, connect, machine, quick, round, run_main};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let reps = if quick() { 20 } else { 200 };
        let server = LabServer::start(Http11Config {
            // One connection carries the whole measurement: no per-connection request cap.
            max_requests: u64::MAX,
            ..Http11Config::default()
        })?;
        let mut s = connect(server.addr)?;
        let mut buf = Vec::new();
        let mut t = Table::new(
            "Encoding overhead: Content-Length vs chunked responses",
            &[
                "body_bytes",
                "encoding",
                "wire_bytes",
                "framing_overhead_bytes",
                "overhead_%",
                "us_per_response",
            ],
        );
        for size in [100usize, 1024, 10 * 1024, 100 * 1024, 1024 * 1024] {
            let cl_path = format!("/bytes/{size}");
            let mut cl_wire = 0;
            for (label, path) in [
                ("content-length", cl_path.clone()),
                ("chunked 1 KiB", format!("/chunked/{size}/1024")),
                ("chunked 16 KiB", format!("/chunked/{size}/16384")),
                ("chunked 64 B", format!("/chunked/{size}/64")),
            ] {
                let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
                let mut wire = 0;
                let start = Instant::now();
                for _ in 0..reps {
                    s.write_all(req.as_bytes())?;
                    let (r, _, _) = read_response(&mut s, &mut buf, false)?;
                    if r.body.len() != size {
                        return Err(std::io::Error::other("body length"));
                    }
                    wire = r.wire_len;
                }
                let us = start.elapsed().as_secs_f64() * 1e6 / reps as f64;
                if label == "content-length" {
                    cl_wire = wire;
                }
                let over = wire as i64 - size as i64;
                t.rows.push(vec![
                    size.into(),
                    label.into(),
                    wire.into(),
                    over.into(),
                    round(100.0 * over as f64 / size as f64, 2).into(),
                    round(us, 1).into(),
                ]);
            }
            let _ = cl_wire;
        }
        let _ = server.stop()?;
        t.notes = format!(
            "Framing overhead = wire bytes - body bytes (status line and headers included, identical between encodings except Content-Length vs Transfer-Encoding and the chunk framing: hex size + 2 CRLF per chunk + last chunk). {reps} responses per row on one keep-alive connection. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
