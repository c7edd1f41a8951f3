//! Exit check `valgrind_lost_bytes`: runs the echo_server under
//! `valgrind --leak-check=full`, serves 100 concurrent connections, shuts it down gracefully
//! with SIGTERM while half of them are still open, and parses valgrind's LEAK SUMMARY:
//! measured = definitely + indirectly lost bytes (threshold == 0); `pass` is false when the
//! server did not exit cleanly or valgrind found memory errors.

use std::net::TcpStream;
use std::time::Duration;

use m01_raw_sockets::lab::{self, ServerProcess, echo_round_trip, pattern};

/// (definitely, indirectly) lost bytes, and the error count, from valgrind's log.
fn parse(log: &str) -> Option<(u64, u64, u64)> {
    let bytes_after = |label: &str| -> Option<u64> {
        let line = log.lines().find(|l| l.contains(label))?;
        let rest = line.split(label).nth(1)?;
        rest.split_whitespace()
            .next()?
            .replace(',', "")
            .parse()
            .ok()
    };
    let errors = bytes_after("ERROR SUMMARY:")?;
    if log.contains("All heap blocks were freed -- no leaks are possible") {
        return Some((0, 0, errors));
    }
    Some((
        bytes_after("definitely lost:")?,
        bytes_after("indirectly lost:")?,
        errors,
    ))
}

fn main() -> std::process::ExitCode {
    if !lab::have_tool("valgrind") {
        lab::print_check(
            false,
            "valgrind is missing: run `cargo xtask setup` (apt-get install -y valgrind)",
        );
        eprintln!("valgrind is missing: run `cargo xtask setup` (apt-get install -y valgrind)");
        return std::process::ExitCode::FAILURE;
    }
    lab::run_main(|| {
        let log = std::env::temp_dir().join(format!("m01-valgrind-{}.log", std::process::id()));
        let wrapper: Vec<String> = [
            "valgrind".to_owned(),
            "--leak-check=full".into(),
            "--show-leak-kinds=definite,indirect".into(),
            format!("--log-file={}", log.display()),
        ]
        .into();
        let server = ServerProcess::spawn(&wrapper, &["--quiet"], Duration::from_secs(60))?;
        let mut clients: Vec<TcpStream> = (0..100)
            .map(|_| lab::connect(server.addr, Duration::from_secs(30)))
            .collect::<Result<_, _>>()?;
        for (i, c) in clients.iter_mut().enumerate() {
            echo_round_trip(c, &pattern(4096, i as u8))?;
        }
        // Half the clients leave; the other half are still connected at shutdown.
        clients.truncate(50);
        let (status, took, _) = server.terminate(Duration::from_secs(60))?;
        drop(clients);
        let text = std::fs::read_to_string(&log)?;
        let _ = std::fs::remove_file(&log);
        let Some((definite, indirect, errors)) = parse(&text) else {
            lab::print_check(
                false,
                &format!(
                    "could not find valgrind's LEAK SUMMARY in its log: {}",
                    text.lines().rev().take(30).collect::<Vec<_>>().join(" | ")
                ),
            );
            return Ok(());
        };
        let pass = status.success() && definite == 0 && indirect == 0 && errors == 0;
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("lost:")
                    || l.contains("reachable:")
                    || l.contains("ERROR SUMMARY")
                    || l.contains("no leaks are possible")
            })
            .map(|l| l.split("== ").nth(1).unwrap_or(l).trim())
            .collect();
        lab::print_check_measured(
            pass,
            (definite + indirect) as f64,
            "bytes",
            &format!(
                "valgrind --leak-check=full on echo_server: 100 concurrent connections (4 KiB echo each), \
                 SIGTERM with 50 still open, {status} after {:.0} ms; definitely lost {definite} B, \
                 indirectly lost {indirect} B, {errors} memory errors. {}",
                took.as_secs_f64() * 1e3,
                summary.join(" | ")
            ),
        );
        Ok(())
    })
}
