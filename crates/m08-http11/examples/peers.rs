//! Experiment: real peers against ThreadServer + Http11Factory + m05's demo router (lab routes
//! added): curl (keep-alive reuse, chunked upload), Python's `http.client` (keep-alive,
//! `encode_chunked`), wrk with benches/peers/pipeline.lua (pipelining), and the HTTP/1 request
//! cases of llhttp's test suite (tests/data/llhttp-requests.json, strict mode) over a live socket. Fails naming
//! `cargo xtask setup` when a tool is missing, and when a peer case fails.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use m08_http11::Http11Config;
use m08_http11::conformance::{latin1, statuses};
use m08_http11::lab::{
    LabServer, Table, connect, have_tool, machine, print_then_fail_on, quick, run_main,
};

fn need(tool: &str) -> std::io::Result<()> {
    if have_tool(tool) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{tool} is not installed: run `cargo xtask setup`"
        )))
    }
}

fn run(cmd: &mut Command, input: Option<&[u8]>) -> std::io::Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const PY: &str = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
codes = []
for i in range(5):
    c.request("GET", "/hello/py%d" % i)
    r = c.getresponse(); r.read(); codes.append(r.status)
def gen():
    yield b"abc"; yield b"defg"
c.request("POST", "/echo", body=gen(), encode_chunked=True)
r = c.getresponse(); body = r.read(); codes.append(r.status)
c.request("GET", "/chunked/5000/700")
r = c.getresponse(); b2 = r.read()
print(codes, body.decode(), len(b2), r.getheader("Transfer-Encoding"))
"#;

fn main() -> std::process::ExitCode {
    run_main(|| {
        for t in ["curl", "python3", "wrk"] {
            need(t)?;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let server = LabServer::start(Http11Config::default())?;
        let addr = server.addr;
        let base = format!("http://{addr}");
        let mut t = Table::new(
            "Real peers against the HTTP/1.1 server",
            &["peer", "case", "pass", "detail"],
        );
        let mut failures = Vec::new();
        let mut row = |t: &mut Table, peer: &str, case: &str, pass: bool, detail: String| {
            if !pass {
                failures.push(format!("{peer} {case}: {detail}"));
            }
            t.rows.push(vec![
                peer.into(),
                case.into(),
                (if pass { "yes" } else { "no" }).into(),
                detail.into(),
            ]);
        };

        // curl: three URLs, one connection.
        let before = server.stats.sum().opened.load(Ordering::Relaxed);
        let out = run(
            Command::new("curl").args([
                "-s",
                "-w",
                "%{http_code} %{num_connects}\n",
                "-o",
                "/dev/null",
                &format!("{base}/"),
                "-o",
                "/dev/null",
                &format!("{base}/plaintext"),
                "-o",
                "/dev/null",
                &format!("{base}/hello/curl"),
            ]),
            None,
        )?;
        std::thread::sleep(Duration::from_millis(100));
        let opened = server.stats.sum().opened.load(Ordering::Relaxed) - before;
        let lines: Vec<&str> = out.lines().collect();
        let ok = lines == ["200 1", "200 0", "200 0"] && opened == 1;
        row(
            &mut t,
            "curl",
            "keep-alive: 3 URLs",
            ok,
            format!("{lines:?}, server connections {opened}"),
        );

        // curl: chunked upload.
        let payload: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let out = run(
            Command::new("curl").args([
                "-s",
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                "@-",
                &format!("{base}/echo"),
            ]),
            Some(&payload),
        )?;
        let ok = out.as_bytes() == payload.as_slice();
        row(
            &mut t,
            "curl",
            "chunked upload 20000 B to /echo",
            ok,
            format!("echoed {} bytes", out.len()),
        );

        // Python http.client.
        let out = run(
            Command::new("python3").args([
                "-c",
                PY,
                &addr.ip().to_string(),
                &addr.port().to_string(),
            ]),
            None,
        )?;
        let ok = out.trim() == "[200, 200, 200, 200, 200, 200] abcdefg 5000 chunked";
        row(
            &mut t,
            "python http.client",
            "keep-alive, encode_chunked, chunked response",
            ok,
            out.trim().to_owned(),
        );

        // wrk with the pipelining script.
        let secs = if quick() { "2s" } else { "5s" };
        let lua = root.join("benches/peers/pipeline.lua");
        let out = run(
            Command::new("wrk").args([
                "-t1",
                "-c4",
                "-d",
                secs,
                "-s",
                &lua.to_string_lossy(),
                &format!("{base}/plaintext"),
                "--",
                "16",
            ]),
            None,
        )?;
        let rps = out
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let errors = out
            .lines()
            .any(|l| l.contains("Socket errors") || l.contains("Non-2xx"));
        row(
            &mut t,
            "wrk",
            "pipeline.lua depth 16, 4 connections",
            !rps.is_empty() && !errors,
            format!("{rps} req/s, errors: {errors}"),
        );

        // llhttp strict request cases over the socket.
        // A copy with its provenance and license in tests/data/ (PROVENANCE.md).
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/llhttp-requests.json"),
        )?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        let cases: Vec<&serde_json::Value> = doc
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_else(|| {
                doc["cases"]
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default()
            });
        let (mut agree, mut total) = (0, 0);
        let error_codes = [400u16, 411, 413, 414, 417, 431, 501, 505];
        for c in cases.iter().filter(|c| {
            c["mode"] == "strict" && matches!(c["expect"]["result"].as_str(), Some("ok" | "error"))
        }) {
            let input = latin1(c["input"].as_str().unwrap_or(""));
            let mut s = connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let _ = s.write_all(&input);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            let codes = statuses(&out);
            let rejected = codes.iter().any(|c| error_codes.contains(c));
            let want_reject = c["expect"]["verdict"] == "reject";
            total += 1;
            if rejected == want_reject {
                agree += 1;
            }
        }
        row(
            &mut t,
            "llhttp corpus (strict requests)",
            "live socket, verdict agreement",
            true,
            format!(
                "{agree}/{total} agree with llhttp's verdict (informational: llhttp accepts requests this strict profile refuses, e.g. HTTP/1.1 without Host, extension methods, lenient framing)"
            ),
        );
        let reqs = server.stats.sum().requests.load(Ordering::Relaxed);
        let _ = server.stop()?;
        t.notes = format!(
            "In-process ThreadServer + Http11Factory + m05 demo router. {reqs} requests answered in all. {}",
            machine()
        );
        print_then_fail_on(&t, &failures)
    })
}
