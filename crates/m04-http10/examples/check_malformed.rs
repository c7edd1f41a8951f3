//! Exit check `malformed_misrejections`: the roadmap's failure list, every reject case of the
//! three corpora (selected as in `tests/corpora.rs`), and 5,000 targeted grammar mutations of
//! generated valid requests. Counts inputs that were accepted or answered with the wrong
//! status. Prints `{"measured": N, ...}`.

use std::path::Path;

use m04_http10::lab::{self, malformed};
use m04_http10::{Mode, Parser};
use serde_json::Value;

fn corpus_rejects() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut out = Vec::new();
    let bytes = |s: &str| s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>();
    let load = |name: &str| -> std::io::Result<Vec<Value>> {
        let text = std::fs::read_to_string(dir.join(name))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    };
    for c in load("llhttp-requests.json")? {
        if c["mode"] == "strict"
            && c["kind"] == "request"
            && c.pointer("/expect/result") == Some(&Value::from("error"))
        {
            // Only cases whose error lies in the first message (HTTP/1.0 reads one).
            if c.pointer("/expect/messages/0/message_complete")
                .and_then(Value::as_bool)
                == Some(true)
            {
                continue;
            }
            out.push((
                format!("llhttp {}", c["id"]),
                bytes(c["input"].as_str().unwrap_or("")),
            ));
        }
    }
    for c in load("httparse-cases.json")? {
        if c["kind"] == "request"
            && c["config"].as_object().is_none_or(|o| o.is_empty())
            && c.pointer("/expect/result") == Some(&Value::from("error"))
            && c.pointer("/expect/error") != Some(&Value::from("TooManyHeaders"))
        {
            out.push((
                format!("httparse {}", c["name"]),
                bytes(c["input"].as_str().unwrap_or("")),
            ));
        }
    }
    for c in load("picohttpparser-cases.json")? {
        if c["kind"] == "request"
            && c["last_len"].as_u64().unwrap_or(0) == 0
            && c.pointer("/expect/result") == Some(&Value::from("error"))
        {
            out.push((
                format!("picohttpparser {}", c["name"]),
                bytes(c["input"].as_str().unwrap_or("")),
            ));
        }
    }
    Ok(out)
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let parser = Parser::new(malformed::limits(), Mode::Strict);
        let mut total = 0usize;
        let mut wrong = Vec::new();
        let mut by_source = std::collections::BTreeMap::<&str, (usize, usize)>::new();
        let mut cases = malformed::roadmap();
        cases.extend(malformed::mutations(5000, 0x4d30_3400));
        for c in &cases {
            total += 1;
            let got = malformed::answer(&parser, &c.input);
            let ok = match (got, c.status) {
                (Some(g), Some(want)) => g == want,
                (Some(g), None) => g >= 400,
                (None, _) => false,
            };
            let e = by_source.entry(c.source).or_default();
            e.0 += 1;
            if !ok {
                e.1 += 1;
                wrong.push(format!(
                    "{} / {}: got {got:?}, want {:?}: {:?}",
                    c.source,
                    c.name,
                    c.status,
                    String::from_utf8_lossy(&c.input)
                ));
            }
        }
        for (name, input) in corpus_rejects()? {
            total += 1;
            let e = by_source.entry("corpora").or_default();
            e.0 += 1;
            match malformed::answer(&parser, &input) {
                Some(s) if s >= 400 => {}
                got => {
                    e.1 += 1;
                    wrong.push(format!(
                        "{name}: got {got:?}: {:?}",
                        String::from_utf8_lossy(&input)
                    ));
                }
            }
        }
        for w in wrong.iter().take(30) {
            eprintln!("MISREJECTED {w}");
        }
        let detail = format!(
            "{total} malformed inputs ({}); accepted or wrong status: {}",
            by_source
                .iter()
                .map(|(k, (n, w))| format!("{k}: {n} cases, {w} wrong"))
                .collect::<Vec<_>>()
                .join("; "),
            wrong.len()
        );
        eprintln!("{detail}");
        lab::print_measured(wrong.len() as f64, "cases", &detail);
        Ok(())
    })
}
