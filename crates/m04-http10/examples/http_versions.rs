//! Experiment `http_versions`: what the parser does with HTTP/0.9, 1.0, 1.1, 1.2, 2.0, the h2
//! preface, and garbage, in both modes.

use m04_http10::lab::{self, Table};
use m04_http10::{Limits, Mode, Parser, Status};

fn verdict(p: &Parser, input: &[u8]) -> String {
    match p.parse(input) {
        Ok(Status::Complete(r)) => format!("accepted as {}", r.version()),
        Ok(Status::Partial) => "need more".into(),
        Err(e) => format!("{} ({})", e.status(), e.name()),
    }
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let strict = Parser::default();
        let tolerant = Parser::new(Limits::default(), Mode::Rfc1945);
        let mut t = Table::new(
            "HTTP versions",
            &["request line", "strict (default)", "RFC 1945 mode"],
        );
        let cases: &[&[u8]] = &[
            b"GET /\r\n",
            b"GET / HTTP/0.9\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/3\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / http/1.0\r\n\r\n",
            b"GET / HTTP/01.00\r\n\r\n",
            b"GET / HTTP/1.10\r\n\r\n",
            b"GET / HTTP/1.0 \r\n\r\n",
            b"GET / HTTP/1\r\n\r\n",
            b"GET / RTSP/1.0\r\n\r\n",
            b"GET / HTTP/1.0junk\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for c in cases {
            let line = String::from_utf8_lossy(c)
                .split("\r\n")
                .next()
                .unwrap_or("")
                .escape_debug()
                .to_string();
            t.rows.push(vec![
                line.into(),
                verdict(&strict, c).into(),
                verdict(&tolerant, c).into(),
            ]);
        }
        t.notes = "505 for well-formed versions other than 1.0/1.1 (and HTTP/0.9 simple requests); 400 for malformed ones. \
                   Strict mode decides the version as soon as its 8 bytes arrive. The h2 preface (PRI) is an unknown method → 501. \
                   The last row is a TLS ClientHello: 400 at the first byte."
            .into();
        t.print();
        Ok(())
    })
}
