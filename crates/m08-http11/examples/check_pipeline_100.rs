//! Exit check `pipeline_100_mismatches`: 100 varied requests (GET, HEAD, POST with
//! Content-Length and chunked bodies, chunked responses, 404, 301) are first sent one at a time
//! on a keep-alive connection to get the expected responses; then all 100 are written in one
//! `write` on a new connection, and again re-split at random boundaries (5 seeds). Measured:
//! responses not byte-identical (Date values masked) to the expected ones, in order, summed
//! over the 6 runs.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use m08_http11::Http11Config;
use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, connect, normalize_dates, print_measured, run_main};
use m08_http11::sweep::Rng;

struct Tee<'a> {
    inner: &'a mut TcpStream,
    log: Vec<u8>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.log.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

fn requests() -> Vec<(Vec<u8>, bool)> {
    (0..100)
        .map(|i| {
            let r = match i % 8 {
                0 => format!("GET /hello/p{i} HTTP/1.1\r\nHost: h\r\n\r\n"),
                1 => "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
                2 => format!("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{}", 10 + i, "e".repeat(10 + i)),
                3 => format!("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{:x}\r\n{}\r\n0\r\n\r\n", i, "z".repeat(i)),
                4 => format!("GET /chunked/{}/100 HTTP/1.1\r\nHost: h\r\n\r\n", 50 * i),
                5 => format!("GET /search?q=n{i} HTTP/1.1\r\nHost: h\r\n\r\n"),
                6 => "GET /no/such HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
                _ => "GET /old HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
            };
            (r.into_bytes(), i % 8 == 1)
        })
        .collect()
}

/// Reads `reqs.len()` responses, returning each one's raw bytes (Date masked).
fn read_all(stream: &mut TcpStream, reqs: &[(Vec<u8>, bool)]) -> io::Result<Vec<Vec<u8>>> {
    let mut tee = Tee {
        inner: stream,
        log: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut lens = Vec::new();
    for (_, head) in reqs {
        let (r, _, _) = read_response(&mut tee, &mut buf, *head)?;
        lens.push(r.wire_len);
    }
    let mut out = Vec::new();
    let mut at = 0;
    for l in lens {
        out.push(normalize_dates(&tee.log[at..at + l]));
        at += l;
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let server = LabServer::start(Http11Config::default())?;
        let reqs = requests();
        // Expected: one at a time on one keep-alive connection.
        let mut s = connect(server.addr)?;
        let mut expected = Vec::new();
        for r in &reqs {
            s.write_all(&r.0)?;
            expected.extend(read_all(&mut s, std::slice::from_ref(r))?);
        }
        let script: Vec<u8> = reqs.iter().flat_map(|r| r.0.clone()).collect();
        let mut mismatches = 0usize;
        let mut runs = 0;
        for seed in 0..6u64 {
            let mut s = connect(server.addr)?;
            if seed == 0 {
                s.write_all(&script)?;
            } else {
                let mut rng = Rng::new(seed);
                let mut at = 0;
                while at < script.len() {
                    let n = 1 + (rng.next_u64() % 400) as usize;
                    let end = (at + n).min(script.len());
                    s.write_all(&script[at..end])?;
                    at = end;
                    if rng.next_u64() % 4 == 0 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            }
            let got = read_all(&mut s, &reqs)?;
            mismatches += got.iter().zip(&expected).filter(|(a, b)| a != b).count();
            mismatches += expected.len().saturating_sub(got.len());
            runs += 1;
        }
        let _ = server.stop()?;
        let detail = format!(
            "{runs} runs x 100 pipelined requests (1 single write + 5 random re-splits, 1-400 B pieces) vs the same requests sent one at a time; {} script bytes",
            script.len()
        );
        eprintln!("{mismatches} mismatches: {detail}");
        print_measured(mismatches as f64, "responses", &detail);
        Ok(())
    })
}
