//! Experiment `request_sizes`: parse time and throughput vs request size (header count and
//! value length), m04 vs httparse in the same run.

use std::time::Duration;

use m04_http10::lab::{self, Table, cost};

fn request(headers: usize, value_len: usize) -> Vec<u8> {
    let mut out = b"GET /search?q=zyphos HTTP/1.0\r\nHost: example.com\r\n".to_vec();
    for i in 0..headers {
        out.extend_from_slice(format!("X-Header-{i}: ").as_bytes());
        out.extend((0..value_len).map(|j| b'a' + ((i + j) % 26) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (rounds, min) = if lab::quick() {
            (3, Duration::from_millis(10))
        } else {
            (5, Duration::from_millis(100))
        };
        let mut t = Table::new(
            "Request size sweep: m04 vs httparse",
            &[
                "headers",
                "value bytes",
                "request bytes",
                "m04 ns",
                "httparse ns",
                "m04 MB/s",
                "httparse MB/s",
                "ratio",
            ],
        );
        for (h, v) in [
            (0, 0),
            (5, 16),
            (15, 32),
            (30, 32),
            (60, 32),
            (4, 200),
            (4, 1000),
            (4, 4000),
        ] {
            let input = request(h, v);
            let a = cost::measure(cost::ours, &input, rounds, min);
            let b = cost::measure(cost::httparse, &input, rounds, min);
            t.rows.push(vec![
                h.into(),
                v.into(),
                input.len().into(),
                lab::round(a.ns_per_request, 0).into(),
                lab::round(b.ns_per_request, 0).into(),
                lab::round(a.bytes_per_sec / 1e6, 0).into(),
                lab::round(b.bytes_per_sec / 1e6, 0).into(),
                lab::round(a.ns_per_request / b.ns_per_request, 2).into(),
            ]);
        }
        t.notes = format!(
            "Median of {rounds} rounds ≥{min:?}; default limits (100 headers max). {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
