//! Exit check `correct_error_handling_for_all_edge_cases`: runs the failure-scenario tests
//! (`cargo test -p m01-raw-sockets --test failures`: EMFILE, ECONNRESET, EPIPE, partial writes,
//! EINTR, connect/read/write timeouts) and reports pass/fail with the counts.

use std::process::Command;

use m01_raw_sockets::lab;

const EXPECTED: [&str; 10] = [
    "test_emfile_sheds_then_recovers",
    "test_peer_reset_mid_echo_is_counted",
    "test_closed_peer_write_gives_epipe_not_sigpipe",
    "test_slow_reader_partial_writes_keep_tail",
    "test_blocked_accept_interrupted_retries",
    "test_blocked_poll_interrupted_retries",
    "test_full_backlog_connect_times_out",
    "test_idle_client_read_timeout_closes",
    "test_client_recv_timeout_returns_would_block",
    "test_stalled_reader_write_timeout_closes",
];

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "test",
                "--quiet",
                "-p",
                "m01-raw-sockets",
                "--test",
                "failures",
                "--",
                "--test-threads=2",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut passed = 0u64;
        let mut failed = 0u64;
        for line in text.lines().filter(|l| l.starts_with("test result:")) {
            let num = |label: &str| {
                line.split(';')
                    .find(|p| p.contains(label))
                    .and_then(|p| p.split_whitespace().rev().nth(1)?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            passed += num("passed");
            failed += num("failed");
        }
        let failures: Vec<&str> = text.lines().filter(|l| l.ends_with("FAILED")).collect();
        let pass = out.status.success() && failed == 0 && passed >= EXPECTED.len() as u64;
        let detail = format!(
            "cargo test -p m01-raw-sockets --test failures: {passed} passed, {failed} failed ({}){}",
            EXPECTED.join(", "),
            if pass {
                String::new()
            } else {
                format!(
                    "; FAILED: {} {}",
                    failures.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .rev()
                        .take(20)
                        .collect::<Vec<_>>()
                        .join(" | ")
                )
            }
        );
        lab::print_check(pass, &detail);
        Ok(())
    })
}
