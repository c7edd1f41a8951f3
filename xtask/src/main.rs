//! `cargo xtask`: Zyphos's project automation, one binary run through the
//! `.cargo/config.toml` alias (the cargo-xtask pattern: plain Rust, few dependencies).
//!
//! # The manifest lifecycle
//!
//! Each roadmap milestone has a manifest, `milestones/NN-slug.toml` (schema:
//! `milestones/README.md`), transcribed verbatim from the roadmap: every checklist item with its
//! section and an `evidence` list. Nothing is ticked by hand:
//!
//! 1. **Open.** An item with an empty `evidence` list. `cargo xtask milestone N` shows it as
//!    `[ ]`. `cargo test -p xtask` checks that every manifest still matches the roadmap copy in
//!    `milestones/roadmap/` item by item (`manifests_match_roadmap`).
//! 2. **Evidenced.** The milestone's work adds tests, experiments, metrics and benches, and the
//!    manifest names them (`test:PACKAGE::path`, `experiment:NAME`, `metric:NAME`,
//!    `bench:NAME`); exit items name a `[[check]]` and a threshold. Until the next verification
//!    the item shows as `[?]`.
//! 3. **Built.** `built = true` once `crates/mNN-…` exists and is meant to pass. From then on
//!    `cargo xtask ci` runs `milestone N --verify --quick` whenever the milestone's inputs
//!    changed since its recorded results, and the generated workflow has a job for it.
//! 4. **Verified.** `cargo xtask milestone N --verify` builds, runs every test by exact name (a
//!    name that matches zero tests fails), every check at full size and every experiment, then
//!    writes `docs/results/mNN.json` (machine, revision, time, every command and figure) and the
//!    results section of `docs/milestones/NN-slug.md`. Items become `[x]` (passing) or `[!]`.
//! 5. **Reported.** `cargo xtask report` rebuilds the status board `docs/README.md` and the
//!    throughput/latency charts; `cargo xtask compare A B` measures two milestones' servers under
//!    the same load; `cargo xtask race` runs zyphos, nginx and h2o side by side under the same
//!    load generators (`docs/results/race.json`, `docs/charts/race.svg`).
//!
//! # Subcommands
//!
//! `milestone N [--verify [--quick] | --bench]`, `compare A B`, `race`, `report [--check]`,
//! `setup [--check]`, `ci [--all] [--plan]`, `gen [--check]`. Errors are one line (`error: …`,
//! exit code 1; usage errors such as an unknown milestone number exit with 2).

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::fmt;
use std::process::ExitCode;

mod bench;
mod checklist;
mod ci;
mod codegen;
mod compare;
mod consistency;
mod deps;
mod evidence;
mod exec;
mod machine;
mod manifest;
mod race;
mod report;
mod results;
mod roadmap;
mod select;
mod setup;
mod sys;
#[cfg(test)]
mod testutil;
mod verify;

/// A mistake in how xtask was invoked (exit code 2, like clap's own usage errors).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Zyphos automation: milestone checklists and verification, comparisons, reports, setup and CI",
    after_help = "Manifests: milestones/NN-slug.toml (schema in milestones/README.md). \
                  Results: docs/results/*.json. Status board: docs/README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show milestone N's checklist, or verify it (--verify) or run its benchmarks (--bench).
    Milestone {
        /// Milestone number, 1 to 30.
        number: String,
        /// Build, run every evidence entry and exit check, write docs/results/mNN.json and the
        /// write-up's results section; exit non-zero if anything fails.
        #[arg(long, conflicts_with = "bench")]
        verify: bool,
        /// With --verify: experiments run their quick profile (ZYPHOS_QUICK=1); exit checks
        /// still run at full size.
        #[arg(long, requires = "verify")]
        quick: bool,
        /// Run the milestone's [[bench]] commands and record their output.
        #[arg(long)]
        bench: bool,
    },
    /// Run the same load against the servers of milestones A and B, alternating, with ratios.
    Compare {
        /// Milestone A.
        a: String,
        /// Milestone B.
        b: String,
        /// Load scenario (default: the protocol both servers speak).
        #[arg(long)]
        scenario: Option<String>,
        /// A-B rounds.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds per load run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: u64,
    },
    /// Run zyphos, nginx and h2o side by side (pinned, alternating) with zyphos-load and wrk:
    /// requests/s, p99 and server CPU µs per request; write docs/results/<out>.json and
    /// docs/charts/<out>.svg.
    Race {
        /// zyphos arguments, whitespace-separated; `--listen 127.0.0.1:PORT` is appended (or
        /// fills `{listen}`). Their `--proto` decides which scenarios can run.
        #[arg(long, default_value = race::DEFAULT_ZYPHOS_ARGS, allow_hyphen_values = true)]
        zyphos_args: String,
        /// Comma-separated scenarios (plaintext-close, static1k-close, plaintext-keepalive,
        /// plaintext-pipeline16, static1k-keepalive, static64k-keepalive); default: all the
        /// zyphos args can serve.
        #[arg(long, value_delimiter = ',')]
        scenarios: Option<Vec<String>>,
        /// Comma-separated servers, run in this order within a round: zyphos and at least one
        /// of nginx, h2o.
        #[arg(long, value_delimiter = ',', default_value = race::DEFAULT_SERVERS)]
        servers: Vec<String>,
        /// Rounds (one run of each server) per scenario and tool.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds per load run.
        #[arg(long, default_value_t = 3)]
        duration: u64,
        /// Comma-separated load generators, run in this order within a round.
        #[arg(long, value_delimiter = ',', default_value = race::DEFAULT_TOOLS)]
        tools: Vec<String>,
        /// Output name: docs/results/<out>.json and docs/charts/<out>.svg (must start with `race`).
        #[arg(long, default_value = "race")]
        out: String,
        /// Exit non-zero unless zyphos beats nginx by this ratio with a lower p99 everywhere
        /// (without it the verdicts against issue 6's 1.3x are only reported).
        #[arg(long)]
        require: Option<f64>,
        /// Seconds of one extra run per scenario and server under `strace -c -f`, for syscalls
        /// per request (0 = skip).
        #[arg(long, default_value_t = 1)]
        syscall_seconds: u64,
    },
    /// Rebuild docs/README.md (status board) and docs/charts/*.svg.
    Report {
        /// Fail if the files are stale instead of writing them.
        #[arg(long)]
        check: bool,
    },
    /// Install the optional tools (valgrind, strace, wrk, nginx, h2o, nghttp2, curl, openssl,
    /// Python peers) that are missing, and print what is present.
    Setup {
        /// Only report; install nothing.
        #[arg(long)]
        check: bool,
    },
    /// What CI runs after the tests: fmt, clippy, dependency rule, manifest consistency,
    /// generated-file freshness, then --verify --quick of each built milestone whose inputs
    /// changed since its recorded results (or whose results are missing, failed or dirty).
    Ci {
        /// Verify every built milestone, changed or not.
        #[arg(long)]
        all: bool,
        /// Only print which milestones would be verified and why; run nothing.
        #[arg(long)]
        plan: bool,
    },
    /// Write the generated files: .github/workflows/ci.yml, docs/README.md, docs/charts/*.svg.
    Gen {
        /// Fail if they are stale instead of writing them.
        #[arg(long)]
        check: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    let root = manifest::project_root();
    match cli.command {
        Command::Milestone {
            number,
            verify,
            quick,
            bench,
        } => {
            let m = manifest::find(&root, &number)?;
            if verify {
                verify::run(&root, &m, quick)
            } else if bench {
                bench::run(&root, &m)
            } else {
                let last = results::load(&root, &m);
                print!("{}", checklist::render(&root, &m, last.as_ref()));
                Ok(())
            }
        }
        Command::Compare {
            a,
            b,
            scenario,
            rounds,
            duration,
            connections,
        } => compare::run(
            &root,
            &compare::CompareOptions {
                a,
                b,
                scenario,
                rounds,
                duration_s: duration,
                connections,
            },
        ),
        Command::Race {
            zyphos_args,
            scenarios,
            rounds,
            duration,
            tools,
            out,
            require,
            syscall_seconds,
            servers,
        } => race::run(
            &root,
            &race::RaceOptions {
                zyphos_args,
                scenarios,
                rounds,
                duration_s: duration,
                tools,
                out,
                require,
                syscall_seconds,
                servers,
            },
        ),
        Command::Report { check } => report::generate(
            &root,
            if check {
                codegen::Mode::Check
            } else {
                codegen::Mode::Write
            },
        ),
        Command::Setup { check } => setup::run(!check),
        Command::Ci { all, plan } => ci::run(&root, ci::CiOptions { all, plan }),
        Command::Gen { check } => ci::generate(
            &root,
            if check {
                codegen::Mode::Check
            } else {
                codegen::Mode::Write
            },
        ),
    }
}

fn main() -> ExitCode {
    sys::kill_children_on_interrupt();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let one_line = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {one_line}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn quick_needs_verify_and_verify_excludes_bench() {
        assert!(Cli::try_parse_from(["xtask", "milestone", "1", "--quick"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "milestone", "1", "--verify", "--bench"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "milestone", "1", "--verify", "--quick"]).is_ok());
    }

    #[test]
    fn ci_flags_parse() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["xtask", "ci"].iter().chain(args)).expect("parses");
            let Command::Ci { all, plan } = cli.command else {
                panic!("not ci: {:?}", cli.command);
            };
            (all, plan)
        };
        assert_eq!(parse(&[]), (false, false));
        assert_eq!(parse(&["--all"]), (true, false));
        assert_eq!(parse(&["--plan"]), (false, true));
        assert_eq!(parse(&["--plan", "--all"]), (true, true));
        assert!(Cli::try_parse_from(["xtask", "ci", "--quick"]).is_err());
    }

    #[test]
    fn race_options_parse() {
        let cli = Cli::try_parse_from([
            "xtask",
            "race",
            "--zyphos-args",
            "serve --io epoll --proto http1.1",
            "--scenarios",
            "plaintext-close,static1k-keepalive",
            "--tools",
            "wrk",
            "--require",
            "1.3",
        ])
        .expect("parses");
        let Command::Race {
            zyphos_args,
            scenarios,
            rounds,
            tools,
            require,
            ..
        } = cli.command
        else {
            panic!("not race: {:?}", cli.command);
        };
        assert_eq!(zyphos_args, "serve --io epoll --proto http1.1");
        assert_eq!(
            scenarios,
            Some(vec!["plaintext-close".into(), "static1k-keepalive".into()])
        );
        assert_eq!((rounds, tools, require), (3, vec!["wrk".into()], Some(1.3)));
        let defaults = Cli::try_parse_from(["xtask", "race"]).expect("parses");
        let Command::Race {
            zyphos_args, tools, ..
        } = defaults.command
        else {
            panic!("not race");
        };
        assert_eq!(zyphos_args, race::DEFAULT_ZYPHOS_ARGS);
        assert_eq!(tools, ["zyphos-load", "wrk"]);
        let Command::Race {
            servers, duration, ..
        } = Cli::try_parse_from(["xtask", "race", "--servers", "zyphos,h2o"])
            .expect("parses")
            .command
        else {
            panic!("not race");
        };
        assert_eq!(
            (servers, duration),
            (vec!["zyphos".into(), "h2o".into()], 3)
        );
    }

    /// Every module starts with `//!` docs (the tidy rule of STYLE.md §8).
    #[test]
    fn tidy_every_module_is_documented() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&src).expect("src/ exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable");
                assert!(
                    text.starts_with("//!"),
                    "{} has no //! module docs",
                    path.display()
                );
                assert!(
                    !text.contains(" \n"),
                    "{} has trailing whitespace",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 15, "found only {checked} modules");
    }
}
