//! Exit check `memory_safety_suite`: passes when
//! 1. Miri (`cargo +nightly miri test`) runs the unit tests of the modules with `unsafe` code
//!    or built on it — `pool::`, `ring::`, `arena::`, `stats::` (the slab comes from
//!    `std::alloc` under Miri) — and finds no undefined behaviour, and
//! 2. the debug-build detector tests (double free, use after free by stale handle and by write
//!    into a freed buffer, overflow into the guard canary, poisoning, leak report) pass in a
//!    plain debug `cargo test`.
//!
//! If Miri is not installed for the nightly toolchain the check fails and says so, naming the
//! command that installs it (`rustup +nightly component add miri rust-src`, which
//! `cargo xtask setup` runs); it never skips. Each run must report a non-zero number of passed
//! tests.

use std::process::Command;

use m07_buffers::lab::{self, print_check};

/// What is missing, and the command that installs it (`cargo xtask setup` runs it too).
const MIRI_MISSING: &str = "Miri (with rust-src) is not installed for the nightly toolchain";
const MIRI_INSTALL: &str = "rustup +nightly component add miri rust-src";
const MIRI_FILTERS: [&str; 4] = ["pool::", "ring::", "arena::", "stats::"];
const DETECTORS: [&str; 6] = [
    "pool::tests::test_freed_twice_double_free_detected",
    "pool::tests::test_stale_handle_use_after_free_detected",
    "pool::tests::test_debug_write_after_free_detected_and_quarantined",
    "pool::tests::test_debug_write_past_end_canary_detects_overflow",
    "pool::tests::test_debug_freed_buffer_poisoned",
    "pool::tests::test_unreturned_buffer_leak_reported",
];

/// Runs `cargo args…`, returns (success, passed tests, tail of the output).
fn cargo(args: &[&str]) -> std::io::Result<(bool, u64, String)> {
    let out = Command::new("cargo")
        .args(args)
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("test result: ok. "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let tail: Vec<&str> = text.lines().rev().take(6).collect();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
    Ok((out.status.success(), passed, tail))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut problems = Vec::new();
        // Miri needs both components; `rustup component list` appends the host triple to
        // `miri` (`miri-x86_64-unknown-linux-gnu`) but not to `rust-src`.
        let components: Vec<String> = Command::new("rustup")
            .args(["+nightly", "component", "list", "--installed"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let installed = components
            .iter()
            .any(|l| l.starts_with("miri-") || l == "miri")
            && components.iter().any(|l| l == "rust-src");
        let miri = if installed {
            let mut args = vec![
                "+nightly",
                "miri",
                "test",
                "-p",
                "m07-buffers",
                "--lib",
                "--",
            ];
            args.extend(MIRI_FILTERS);
            let (ok, passed, tail) = cargo(&args)?;
            eprintln!("miri: ok={ok}, {passed} tests passed");
            if !ok || passed == 0 {
                problems.push(format!("miri failed ({passed} passed): {tail}"));
            }
            format!(
                "Miri ran {passed} tests of {} clean",
                MIRI_FILTERS.join(" ")
            )
        } else {
            let msg = format!("{MIRI_MISSING}: run `cargo xtask setup` or `{MIRI_INSTALL}`");
            eprintln!("error: {msg}");
            problems.push(msg);
            "Miri missing".into()
        };
        let mut args = vec!["test", "-p", "m07-buffers", "--lib", "--", "--exact"];
        args.extend(DETECTORS);
        let (ok, passed, tail) = cargo(&args)?;
        eprintln!("debug detectors: ok={ok}, {passed} passed");
        if !ok || passed != DETECTORS.len() as u64 {
            problems.push(format!(
                "debug detector tests: {passed} of {} passed: {tail}",
                DETECTORS.len()
            ));
        }
        let pass = problems.is_empty();
        print_check(
            pass,
            &if pass {
                format!(
                    "{miri}; debug build: {passed} detector tests passed (double free, stale-handle \
                     and write-after-free use-after-free, canary overflow, poisoning, leak report)"
                )
            } else {
                problems.join("; ")
            },
        );
        Ok(())
    })
}
