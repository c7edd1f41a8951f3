//! Exit check `rfc3986_conformance`: RFC 3986 vectors (§2 percent-encoding, reserved and
//! unreserved characters; §5.2.4 dot-segment examples; §5.4 normal and abnormal resolution
//! examples), request-path refusals (invalid escapes → 400, nothing decodes above the root,
//! 5,000 random paths), and the same through a whole HTTP/1.0 session. Prints `{"pass", "detail"}`.

use std::sync::Arc;

use m05_routing::lab::{self, exchange, get, rfc3986};
use m05_routing::{RequestContext, Response, Router};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let report = rfc3986::run_all();
        let mut failures = report.failures.clone();
        let router = Arc::new(
            Router::builder()
                .get("/*any", |c: &mut RequestContext<'_>| {
                    Response::text(200, c.path().to_owned())
                })
                .build()
                .map_err(std::io::Error::other)?,
        );
        let mut session_cases = 0;
        for (path, want) in [
            ("/a%4", 400),
            ("/a%zz", 400),
            ("/%C3%28", 400),
            ("/a%2Fb", 400),
            ("/a%00", 400),
            ("/../x", 400),
            ("/%2e%2e/x", 400),
            ("/a/b/%2E%2E/%2e%2E/..", 400),
            ("/a/%7Eb/./c", 200),
        ] {
            session_cases += 1;
            let p = exchange(&router, &get(path));
            if p.status != want {
                failures.push(format!("session: GET {path} → {}, want {want}", p.status));
            }
        }
        let p = exchange(&router, &get("/a/%7Eb/./c/../d"));
        session_cases += 1;
        if p.text() != "/a/~b/d" {
            failures.push(format!(
                "session: decoded path {:?}, want /a/~b/d",
                p.text()
            ));
        }
        let detail = format!(
            "{} vector cases (§2.1-§2.4 all 256 bytes classified, escapes, 500 encode/decode round trips; §5.2.4 and \
             §5.4.1/§5.4.2 examples; request paths incl. 5,000 random dot/escape mixes) + {session_cases} requests \
             through Http10Session; {} failures{}",
            report.cases,
            failures.len(),
            if failures.is_empty() {
                String::new()
            } else {
                format!(": {}", failures.join("; "))
            }
        );
        lab::print_check(failures.is_empty(), &detail);
        Ok(())
    })
}
