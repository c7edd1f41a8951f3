//! Experiment `kqueue_portability`: does the event loop build where there is no epoll? For
//! macOS (x86-64 and Apple silicon) and FreeBSD, type-checks this crate's library and its
//! tests with `cargo +nightly check -Zbuild-std --target T` (nightly's `rust-src` builds the
//! standard library for a target whose prebuilt one is not installed; no linker is needed
//! for a check). There, `EpollReactor` cannot be made (its `new` says why), `DefaultReactor`
//! and `ReactorKind::PLATFORM_DEFAULT` are mio (kqueue), the Linux-only calls (`accept4`,
//! `pipe2`, `MAP_POPULATE`, `splice`, `sendfile`, `RUSAGE_THREAD`…) have portable fallbacks
//! or typed `Unsupported` errors, and the tests of epoll modes and `/proc` are Linux-only.
//!
//! What this proves and what it does not: the code compiles for those systems, tests
//! included. It does not run them (no macOS or BSD machine here). Exits with an error if a
//! target fails; fails loudly, naming `cargo xtask setup`, if nightly or its `rust-src` is
//! missing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use m08_http11::lab::{Table, machine, run_main};

const TARGETS: [&str; 3] = [
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
];

fn main() -> std::process::ExitCode {
    run_main(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let sysroot = Command::new("rustc")
            .args(["+nightly", "--print", "sysroot"])
            .output();
        let src = match sysroot {
            Ok(o) if o.status.success() => {
                Path::new(String::from_utf8_lossy(&o.stdout).trim()).join("lib/rustlib/src/rust")
            }
            _ => {
                return Err(std::io::Error::other(
                    "no nightly toolchain: run `cargo xtask setup` (or `rustup toolchain install nightly --component rust-src`)",
                ));
            }
        };
        if !src.join("library").is_dir() {
            return Err(std::io::Error::other(
                "nightly has no rust-src: run `cargo xtask setup` (or `rustup +nightly component add rust-src`)",
            ));
        }
        let mut t = Table::new(
            "Building the event loop without epoll (type-check of the library and its tests)",
            &[
                "target",
                "reactor there",
                "lib + tests",
                "errors",
                "warnings",
                "seconds",
            ],
        );
        let mut failed = Vec::new();
        for target in TARGETS {
            let start = Instant::now();
            let out = Command::new("cargo")
                .current_dir(&root)
                .args([
                    "+nightly",
                    "check",
                    "-Zbuild-std=std,core,alloc,panic_abort",
                    "--target",
                    target,
                    "-p",
                    "m09-event-loop",
                    "--lib",
                    "--tests",
                    "--message-format=short",
                    "--target-dir",
                ])
                .arg(root.join("target/portability"))
                .env_remove("RUSTFLAGS")
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let count = |kind: &str| {
                stderr
                    .lines()
                    .filter(|l| l.contains(&format!(": {kind}")) && l.contains(".rs:"))
                    .count()
            };
            let (errors, warnings) = (count("error"), count("warning"));
            let ok = out.status.success();
            if !ok {
                eprintln!("{target}:\n{stderr}");
                failed.push(target);
            }
            t.rows.push(vec![
                target.into(),
                "mio (kqueue)".into(),
                if ok { "builds" } else { "FAILS" }.into(),
                errors.into(),
                warnings.into(),
                (start.elapsed().as_secs_f64().round() as u64).into(),
            ]);
        }
        t.notes = format!(
            "cargo +nightly check -Zbuild-std=std,core,alloc,panic_abort --target T -p \
             m09-event-loop --lib --tests (dependencies m01, m03, m04, m07 and, for the tests, \
             m05 and m08 included). Compiled, not run: there is no macOS or BSD machine here. \
             On Linux the loop keeps raw epoll as its default. {}",
            machine()
        );
        t.print();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "the event loop does not build for {}",
                failed.join(", ")
            )))
        }
    })
}
