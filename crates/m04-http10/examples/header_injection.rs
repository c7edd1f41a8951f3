//! Experiment `header_injection`: injection attempts against the parser (requests) and the
//! response writer (handler-supplied headers): CRLF in values, obs-fold smuggling, NUL, bare
//! CR/LF, duplicate Content-Length, CL+TE. What each one gets.

use std::time::SystemTime;

use m04_http10::lab::{self, Table};
use m04_http10::{Limits, Mode, Parser, ResponseWriter, Status};

fn verdict(p: &Parser, input: &[u8]) -> String {
    match p.parse(input) {
        Ok(Status::Complete(r)) => format!(
            "accepted ({} headers{})",
            r.header_count(),
            if r.has_obs_fold() {
                ", folded → unfolded to SP"
            } else {
                ""
            }
        ),
        Ok(Status::Partial) => "incomplete".into(),
        Err(e) => format!("{} {}", e.status(), e.name()),
    }
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let strict = Parser::default();
        let tolerant = Parser::new(Limits::default(), Mode::Rfc1945);
        let mut t = Table::new(
            "Header injection attempts",
            &["where", "attempt", "strict (default)", "RFC 1945 mode"],
        );
        let requests: &[(&str, &[u8])] = &[
            ("CRLF ends the value: the rest is a new header line (by design)", b"GET / HTTP/1.0\r\nX: a\r\nInjected: 1\r\n\r\n"),
            ("bare LF inside a value", b"GET / HTTP/1.0\r\nX: a\nInjected: 1\r\n\r\n"),
            ("bare CR inside a value", b"GET / HTTP/1.0\r\nX: a\rInjected: 1\r\n\r\n"),
            ("NUL in a value", b"GET / HTTP/1.0\r\nX: a\0b\r\n\r\n"),
            ("obs-fold continuing a value", b"GET / HTTP/1.0\r\nX: a\r\n Injected: 1\r\n\r\n"),
            ("obs-fold hiding Content-Length", b"POST / HTTP/1.0\r\nContent-Length: 0\r\n 5\r\n\r\nhello"),
            ("fold as first header line", b"GET / HTTP/1.0\r\n Host: evil\r\n\r\n"),
            ("space before colon", b"GET / HTTP/1.0\r\nContent-Length : 5\r\n\r\nhello"),
            ("duplicate CL, disagreeing", b"POST / HTTP/1.0\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello"),
            ("CL + Transfer-Encoding", b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("CRLF in the target", b"GET /a\r\nX: b HTTP/1.0\r\n\r\n"),
            ("%0d%0a in the target (encoded)", b"GET /a%0d%0aX:%20b HTTP/1.0\r\n\r\n"),
        ];
        for (name, input) in requests {
            t.rows.push(vec![
                "request parser".into(),
                (*name).into(),
                verdict(&strict, input).into(),
                verdict(&tolerant, input).into(),
            ]);
        }
        let attempts: &[(&str, &str, &[u8])] = &[
            ("CRLF in a value", "X-A", b"v\r\nSet-Cookie: evil=1"),
            ("LF in a value", "X-A", b"v\nSet-Cookie: evil=1"),
            ("CR in a value", "X-A", b"v\rSet-Cookie: evil=1"),
            ("NUL in a value", "X-A", b"v\0"),
            ("CRLF in a name", "X-A\r\nSet-Cookie", b"evil=1"),
            ("space in a name", "X A", b"v"),
            ("second Content-Length", "Content-Length", b"0"),
            ("obs-text in a value (allowed)", "X-A", b"caf\xe9"),
        ];
        for (name, h, v) in attempts {
            let mut out = Vec::new();
            let mut w = ResponseWriter::new(&mut out, false, SystemTime::UNIX_EPOCH);
            w.send(200, Some("text/plain"), &[(h, v)], b"body");
            let refused = w.refused_headers();
            let text = String::from_utf8_lossy(&out);
            let injected = text.contains("evil");
            let outcome = if refused > 0 {
                "header refused (counted), response intact"
            } else {
                "written"
            };
            t.rows.push(vec![
                "response writer".into(),
                (*name).into(),
                format!("{outcome}; injected line present: {injected}").into(),
                "same".into(),
            ]);
        }
        t.notes = "Requests: what the parser answers (status + error) in each mode. Responses: the writer skips a handler's \
                   header whose name is not a token or whose value has CR/LF/NUL/controls, and its own Content-Length; \
                   `injected line present` checks the bytes on the wire. %0d%0a stays encoded: the parser never decodes the target."
            .into();
        t.print();
        Ok(())
    })
}
