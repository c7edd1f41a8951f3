//! Conformance: the smuggling corpus runner, and the RFC 9112 section → test table reader.
//!
//! A corpus case is run through a real [`Http11Session`] by m03's [`PipeDriver`] (in memory)
//! with a recording service, and judged against its `expect`: the statuses allowed, whether the
//! connection must close, and exactly which requests the service must see.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use m03_thread_per_conn::CloseReason;
use m03_thread_per_conn::testing::{Faults, PipeDriver};
use m04_http10::{ConnInfo, Request, ResponseWriter, Service};
use serde_json::Value;

use crate::session::{Http11Config, Http11Session};

/// What the recording service saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Method token.
    pub method: String,
    /// Request-target.
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// Decoded body.
    pub body: Vec<u8>,
}

/// A service that records every request and answers `200 ok`.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Requests seen, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Service for Recorder {
    fn call(&self, request: &Request<'_>, _ctx: &ConnInfo, response: &mut ResponseWriter<'_>) {
        if let Ok(mut v) = self.seen.lock() {
            v.push(Seen {
                method: request.method().as_str().to_owned(),
                target: request.target().to_owned(),
                version: match request.version() {
                    m04_http10::Version::Http10 => "HTTP/1.0".into(),
                    _ => "HTTP/1.1".into(),
                },
                body: request.body().to_vec(),
            });
        }
        response.send(200, Some("text/plain"), &[], b"ok");
    }
}

/// Bytes of a corpus string (one char = one byte, latin-1).
pub fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// Status codes of the responses in `output`, read one after the other with the client's
/// response reader (interim 1xx skipped; not for HEAD responses, whose length the reader
/// cannot know). Stops at the first unreadable byte.
pub fn statuses(output: &[u8]) -> Vec<u16> {
    let mut v = Vec::new();
    let mut buf = output.to_vec();
    let mut empty: &[u8] = &[];
    while !buf.is_empty() {
        match crate::client::read_response(&mut empty, &mut buf, false) {
            Ok((r, _, _)) => v.push(r.status),
            Err(_) => break,
        }
    }
    v
}

/// One case's verdict.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Category.
    pub category: String,
    /// Whether it passed.
    pub pass: bool,
    /// What happened.
    pub detail: String,
}

/// The categories that concern message framing (the exit check's set).
pub const FRAMING_CATEGORIES: &[&str] = &[
    "CL.TE",
    "TE.CL",
    "TE.TE",
    "CL.CL",
    "CL-syntax",
    "CL.0",
    "chunked",
    "pipelining",
    "expect",
    "line-endings",
];

/// Runs one corpus case through a session under `faults` (read sizes, seed).
pub fn run_case(case: &Value, faults: Faults) -> CaseResult {
    let id = case["id"].as_str().unwrap_or("?").to_owned();
    let category = case["category"].as_str().unwrap_or("?").to_owned();
    let raw = latin1(case["raw"].as_str().unwrap_or(""));
    let expect = &case["expect"];
    let recorder = Recorder::default();
    let now = Instant::now();
    let mut session = Http11Session::new(
        Arc::new(recorder.clone()),
        Http11Config::default(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
        now,
        (now, std::time::SystemTime::UNIX_EPOCH),
    );
    let out = PipeDriver::new(faults).run(&mut session, &raw);
    let seen = recorder.seen.lock().map(|v| v.clone()).unwrap_or_default();
    let codes: Vec<u16> = statuses(&out.output)
        .into_iter()
        .filter(|&c| c != 100)
        .collect();
    let must_close = expect["close_connection"].as_bool().unwrap_or(true);
    let mut problems = Vec::new();
    match expect["verdict"].as_str() {
        Some("reject") => {
            let allowed: Vec<u16> = expect["status"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as u16)
                        .collect()
                })
                .unwrap_or_default();
            if !seen.is_empty() {
                problems.push(format!("dispatched {} request(s)", seen.len()));
            }
            if codes.len() != 1 || !allowed.contains(&codes[0]) {
                problems.push(format!("statuses {codes:?}, allowed {allowed:?}"));
            }
            if must_close && out.close != CloseReason::ProtocolError {
                problems.push(format!("closed by {:?}, not after the error", out.close));
            }
            if !must_close && out.close == CloseReason::ProtocolError {
                problems.push("closed, should stay open".into());
            }
        }
        Some("accept") => {
            let want: Vec<Seen> = expect["requests"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| Seen {
                            method: r["method"].as_str().unwrap_or("").into(),
                            target: r["target"].as_str().unwrap_or("").into(),
                            version: r["version"].as_str().unwrap_or("").into(),
                            body: latin1(r["body"].as_str().unwrap_or("")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if seen != want {
                problems.push(format!("dispatched {seen:?}, want {want:?}"));
            }
            if codes.len() != want.len() || codes.iter().any(|&c| c != 200) {
                problems.push(format!("statuses {codes:?}"));
            }
            let closed_by_us = out.close == CloseReason::Done;
            if must_close != closed_by_us {
                problems.push(format!("close {:?}, must_close {must_close}", out.close));
            }
        }
        Some("incomplete") => {
            if !seen.is_empty() {
                problems.push(format!("dispatched {} request(s)", seen.len()));
            }
            if !matches!(
                out.close,
                CloseReason::ProtocolError | CloseReason::PeerClosed
            ) {
                problems.push(format!("close {:?}", out.close));
            }
        }
        other => problems.push(format!("unknown verdict {other:?}")),
    }
    CaseResult {
        id,
        category,
        pass: problems.is_empty(),
        detail: problems.join("; "),
    }
}

/// Runs every case of a corpus file, whole and re-split one byte at a time; a case passes
/// only if both runs pass. A case the server must reject is also run with the peer's side
/// left open (no FIN, the way a real client waits for its answer), whole and byte by byte:
/// the refusal must come from the bytes, not from the end of the input or a 408 after the
/// header timeout.
pub fn run_corpus(json: &str) -> Result<Vec<CaseResult>, serde_json::Error> {
    let doc: Value = serde_json::from_str(json)?;
    let cases = doc["cases"].as_array().cloned().unwrap_or_default();
    Ok(cases
        .iter()
        .map(|c| {
            let whole = run_case(c, Faults::default());
            let mut runs = vec![(
                "byte-at-a-time",
                Faults {
                    max_read: 1,
                    ..Faults::default()
                },
            )];
            if c["expect"]["verdict"].as_str() == Some("reject") {
                let open = Faults {
                    eof_after_rounds: None,
                    ..Faults::default()
                };
                runs.push(("without FIN", open));
                runs.push((
                    "byte-at-a-time without FIN",
                    Faults {
                        max_read: 1,
                        ..open
                    },
                ));
            }
            if !whole.pass {
                return whole;
            }
            for (how, faults) in runs {
                let run = run_case(c, faults);
                if !run.pass {
                    return CaseResult {
                        detail: format!("{how}: {}", run.detail),
                        pass: false,
                        ..run
                    };
                }
            }
            whole
        })
        .collect())
}

/// The test names of the RFC table in a write-up: rows between `<!-- rfc-table:begin -->` and
/// `<!-- rfc-table:end -->` whose last cell is a backticked test name. Returns
/// `(section, test)` pairs.
pub fn rfc_table(markdown: &str) -> Vec<(String, String)> {
    let Some(start) = markdown.find("<!-- rfc-table:begin -->") else {
        return Vec::new();
    };
    let Some(len) = markdown[start..].find("<!-- rfc-table:end -->") else {
        return Vec::new();
    };
    markdown[start..start + len]
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let test = cells.last()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((cells.first()?.to_string(), test.to_owned()))
        })
        .collect()
}
