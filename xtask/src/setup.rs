//! `cargo xtask setup`: the optional tools the lab's checks use (real peers, profilers, load
//! generators), what is present, and installing what is missing.
//!
//! Debian packages go through `apt-get update` (once) and `apt-get install -y`; Python packages
//! through `python3 -m pip install`. `setup --check` only reports. Elsewhere, [`require_tool`]
//! turns a missing tool into an error that names the command installing it.

use anyhow::{Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::Cmd;

/// How a tool is found and installed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An executable on PATH; `version` are the arguments that make it print its version.
    Binary { version: &'static [&'static str] },
    /// A Python package importable by `python3`.
    Python { module: &'static str },
    /// A cargo subcommand installed with `cargo install --locked PACKAGE`; `version` as for
    /// binaries.
    Cargo { version: &'static [&'static str] },
    /// Rustup components of a toolchain (`rustup +TOOLCHAIN component add COMPONENTS…`), e.g.
    /// Miri, which exists only for nightly; the toolchain itself is installed first (minimal
    /// profile) when it is missing.
    Rustup {
        toolchain: &'static str,
        components: &'static [&'static str],
    },
}

/// An optional tool.
#[derive(Debug, Clone, Copy)]
struct Tool {
    name: &'static str,
    kind: Kind,
    /// Debian package (binaries) or PyPI package (Python).
    package: &'static str,
    /// What the lab uses it for.
    purpose: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "valgrind",
        kind: Kind::Binary {
            version: &["--version"],
        },
        package: "valgrind",
        purpose: "leak checks, callgrind instruction counts",
    },
    Tool {
        name: "cargo-fuzz",
        kind: Kind::Cargo {
            version: &["--version"],
        },
        package: "cargo-fuzz",
        purpose: "libFuzzer targets in fuzz/ (m04 `fuzz_http10_crashes`)",
    },
    Tool {
        name: "miri",
        kind: Kind::Rustup {
            toolchain: "nightly",
            components: &["miri", "rust-src"],
        },
        package: "miri",
        purpose: "Miri on the pool/ring/arena unsafe code (m07 `memory_safety_suite`)",
    },
    Tool {
        name: "strace",
        kind: Kind::Binary { version: &["-V"] },
        package: "strace",
        purpose: "syscall tracing (m01)",
    },
    Tool {
        name: "ip",
        kind: Kind::Binary { version: &["-V"] },
        package: "iproute2",
        purpose: "network namespaces for SYN-flood, RST and keepalive experiments (m02)",
    },
    Tool {
        name: "wrk",
        kind: Kind::Binary { version: &["-v"] },
        package: "wrk",
        purpose: "HTTP load, cross-check of zyphos-load",
    },
    Tool {
        name: "nginx",
        kind: Kind::Binary { version: &["-v"] },
        package: "nginx",
        purpose: "reference server for side-by-side runs",
    },
    Tool {
        name: "h2o",
        kind: Kind::Binary { version: &["-v"] },
        package: "h2o",
        purpose: "second reference server for `cargo xtask race` (num-threads: 1)",
    },
    Tool {
        name: "h2load",
        kind: Kind::Binary {
            version: &["--version"],
        },
        package: "nghttp2-client",
        purpose: "HTTP/2 load",
    },
    Tool {
        name: "nghttp",
        kind: Kind::Binary {
            version: &["--version"],
        },
        package: "nghttp2-client",
        purpose: "HTTP/2 client",
    },
    Tool {
        name: "curl",
        kind: Kind::Binary {
            version: &["--version"],
        },
        package: "curl",
        purpose: "HTTP/1.x and HTTP/2 client",
    },
    Tool {
        name: "openssl",
        kind: Kind::Binary {
            version: &["version"],
        },
        package: "openssl",
        purpose: "TLS client (s_client)",
    },
    Tool {
        name: "python3",
        kind: Kind::Binary {
            version: &["--version"],
        },
        package: "python3",
        purpose: "runs the Python peers",
    },
    Tool {
        name: "h2",
        kind: Kind::Python { module: "h2" },
        package: "h2",
        purpose: "HTTP/2 peer",
    },
    Tool {
        name: "httpx",
        kind: Kind::Python { module: "httpx" },
        package: "httpx",
        purpose: "HTTP client peer",
    },
    Tool {
        name: "websockets",
        kind: Kind::Python {
            module: "websockets",
        },
        package: "websockets",
        purpose: "WebSocket peer",
    },
    Tool {
        name: "aioquic",
        kind: Kind::Python { module: "aioquic" },
        package: "aioquic",
        purpose: "QUIC peer",
    },
    Tool {
        name: "scapy",
        kind: Kind::Python { module: "scapy" },
        package: "scapy",
        purpose: "packet crafting",
    },
];

fn tool(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Whether `name` is one of the optional tools `setup` manages.
pub(crate) fn is_known_tool(name: &str) -> bool {
    tool(name).is_some_and(|t| matches!(t.kind, Kind::Binary { .. } | Kind::Cargo { .. }))
}

/// The command that installs the optional tool `name` (`apt-get install -y h2o`), if it is one.
pub(crate) fn install_command(name: &str) -> Option<String> {
    tool(name).map(install_hint)
}

/// The install command for a tool, as a user would type it.
fn install_hint(t: &Tool) -> String {
    match t.kind {
        Kind::Binary { .. } => format!("apt-get install -y {}", t.package),
        Kind::Python { .. } => format!("python3 -m pip install {}", t.package),
        Kind::Cargo { .. } => format!("cargo install --locked {}", t.package),
        Kind::Rustup {
            toolchain,
            components,
        } => format!("rustup +{toolchain} component add {}", components.join(" ")),
    }
}

/// The rustup components installed for `toolchain` (`None`: no rustup, or no such toolchain).
fn rustup_components(toolchain: &str) -> Option<Vec<String>> {
    let rustup = find_in_path("rustup")?;
    let out = Cmd::new(
        [
            rustup.display().to_string(),
            format!("+{toolchain}"),
            "component".into(),
            "list".into(),
            "--installed".into(),
        ],
        &std::env::temp_dir(),
    )
    .timeout(Duration::from_secs(60))
    .run()
    .ok()?;
    out.success()
        .then(|| out.stdout.lines().map(|l| l.trim().to_string()).collect())
}

/// Whether `installed` (lines of `rustup component list --installed`, which appends the host
/// triple to most names: `miri-x86_64-unknown-linux-gnu`, but `rust-src`) holds `component`.
fn has_component(installed: &[String], component: &str) -> bool {
    installed.iter().any(|l| {
        l.strip_prefix(component).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix('-')
                    .is_some_and(|triple| triple.starts_with(std::env::consts::ARCH))
        })
    })
}

/// Finds an executable on PATH.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// The path of an optional tool, or an error naming the command that installs it.
pub(crate) fn require_tool(name: &str) -> Result<PathBuf> {
    match find_in_path(name) {
        Some(p) => Ok(p),
        None => bail!("{}", missing_message(name)),
    }
}

/// `wrk is missing: run `cargo xtask setup` (apt-get install -y wrk)`.
fn missing_message(name: &str) -> String {
    match tool(name) {
        Some(t) => format!(
            "{name} is missing: run `cargo xtask setup` ({})",
            install_hint(t)
        ),
        None => format!("{name} is missing: it is not on PATH"),
    }
}

/// A tool's version line, when it is present.
fn version(t: &Tool) -> Option<String> {
    let short = Duration::from_secs(30);
    let cwd = std::env::temp_dir();
    match t.kind {
        Kind::Binary { version } | Kind::Cargo { version } => {
            let path = find_in_path(t.name)?;
            let mut argv = vec![path.display().to_string()];
            argv.extend(version.iter().map(|s| s.to_string()));
            // Some (wrk, nginx) print their version on stderr, and wrk exits 1 doing it.
            let out = Cmd::new(argv, &cwd).timeout(short).run().ok()?;
            let text = if out.stdout.trim().is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            Some(
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("(version unknown)")
                    .trim()
                    .to_string(),
            )
        }
        Kind::Rustup {
            toolchain,
            components,
        } => {
            let installed = rustup_components(toolchain)?;
            if !components.iter().all(|c| has_component(&installed, c)) {
                return None;
            }
            let out = Cmd::new(
                [
                    "cargo".to_string(),
                    format!("+{toolchain}"),
                    t.name.to_string(),
                    "--version".into(),
                ],
                &cwd,
            )
            .timeout(short)
            .run()
            .ok()?;
            out.success().then(|| {
                format!(
                    "{} ({toolchain}: {})",
                    out.stdout.trim(),
                    components.join(", ")
                )
            })
        }
        Kind::Python { module } => {
            let python = find_in_path("python3")?;
            let script = format!(
                "import importlib, importlib.metadata as m\nimportlib.import_module('{module}')\n\
                 print(m.version('{}'))",
                t.package
            );
            let out = Cmd::new([python.display().to_string(), "-c".into(), script], &cwd)
                .timeout(short)
                .run()
                .ok()?;
            out.success()
                .then(|| format!("{} {}", t.package, out.stdout.trim()))
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Prints what is present; with `install`, installs what is missing first.
pub(crate) fn run(install: bool) -> Result<()> {
    let missing = report();
    if missing.is_empty() {
        println!("all optional tools are present");
        return Ok(());
    }
    let apt: Vec<&str> = dedup(
        missing
            .iter()
            .filter(|t| matches!(t.kind, Kind::Binary { .. }))
            .map(|t| t.package),
    );
    let cargo: Vec<&str> = dedup(
        missing
            .iter()
            .filter(|t| matches!(t.kind, Kind::Cargo { .. }))
            .map(|t| t.package),
    );
    let rustup: Vec<&Tool> = missing
        .iter()
        .copied()
        .filter(|t| matches!(t.kind, Kind::Rustup { .. }))
        .collect();
    let mut pip: Vec<&str> = dedup(
        missing
            .iter()
            .filter(|t| matches!(t.kind, Kind::Python { .. }))
            .map(|t| t.package),
    );
    if !install {
        let mut hints = Vec::new();
        if !apt.is_empty() {
            hints.push(format!("apt-get install -y {}", apt.join(" ")));
        }
        if !pip.is_empty() {
            hints.push(format!("python3 -m pip install {}", pip.join(" ")));
        }
        if !cargo.is_empty() {
            hints.push(format!("cargo install --locked {}", cargo.join(" ")));
        }
        hints.extend(rustup.iter().map(|t| install_hint(t)));
        bail!(
            "{} optional tools are missing: {} (run `cargo xtask setup`, which does: {})",
            missing.len(),
            missing
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", "),
            hints.join("; ")
        );
    }
    let root = std::env::temp_dir();
    let mut apt_packages = apt.clone();
    if !pip.is_empty() && !pip_available() {
        apt_packages.push("python3-pip");
        if find_in_path("python3").is_none() && !apt_packages.contains(&"python3") {
            apt_packages.push("python3");
        }
    }
    if !apt_packages.is_empty() {
        let sudo: Vec<String> = if is_root() {
            Vec::new()
        } else if let Some(sudo) = find_in_path("sudo") {
            vec![sudo.display().to_string(), "-n".into()]
        } else {
            bail!(
                "not root and no sudo: run `apt-get update && apt-get install -y {}` as root",
                apt_packages.join(" ")
            );
        };
        let mut update = sudo.clone();
        update.extend(["apt-get".to_string(), "update".to_string()]);
        step(Cmd::new(update, &root).timeout(Duration::from_secs(900)))?;
        let mut install_cmd = sudo;
        install_cmd
            .extend(["apt-get", "install", "-y", "--no-install-recommends"].map(String::from));
        install_cmd.extend(apt_packages.iter().map(|s| s.to_string()));
        step(
            Cmd::new(install_cmd, &root)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .timeout(Duration::from_secs(1800)),
        )?;
    }
    for package in &cargo {
        let argv = ["cargo", "install", "--locked", package].map(String::from);
        step(Cmd::new(argv, &root).timeout(Duration::from_secs(1800)))?;
    }
    for t in &rustup {
        let Kind::Rustup {
            toolchain,
            components,
        } = t.kind
        else {
            continue;
        };
        let Some(rustup) = find_in_path("rustup") else {
            bail!(
                "{} needs rustup (https://rustup.rs), then `{}`",
                t.name,
                install_hint(t)
            );
        };
        let rustup = rustup.display().to_string();
        if rustup_components(toolchain).is_none() {
            let argv = [
                rustup.as_str(),
                "toolchain",
                "install",
                toolchain,
                "--profile",
                "minimal",
            ]
            .map(String::from);
            step(Cmd::new(argv, &root).timeout(Duration::from_secs(1800)))?;
        }
        let mut argv = vec![
            rustup.clone(),
            format!("+{toolchain}"),
            "component".into(),
            "add".into(),
        ];
        argv.extend(components.iter().map(|c| c.to_string()));
        step(Cmd::new(argv, &root).timeout(Duration::from_secs(1800)))?;
        if t.name == "miri" {
            // Builds Miri's sysroot now rather than inside the first check that runs it.
            let argv = [
                "cargo".to_string(),
                format!("+{toolchain}"),
                "miri".into(),
                "setup".into(),
            ];
            step(Cmd::new(argv, &root).timeout(Duration::from_secs(1800)))?;
        }
    }
    pip.sort_unstable();
    if !pip.is_empty() {
        let python = require_tool("python3")?;
        let mut argv = vec![
            python.display().to_string(),
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--disable-pip-version-check".into(),
        ];
        if externally_managed(&python) {
            argv.push("--break-system-packages".into());
        }
        if !is_root() {
            argv.push("--user".into());
        }
        argv.extend(pip.iter().map(|s| s.to_string()));
        step(Cmd::new(argv, &root).timeout(Duration::from_secs(1800)))?;
    }
    println!("after installing:");
    let still = report();
    if still.is_empty() {
        Ok(())
    } else {
        bail!(
            "still missing after installing: {}",
            still.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        )
    }
}

fn dedup<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for s in it {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn step(cmd: Cmd) -> Result<()> {
    println!("$ {}", cmd.display());
    let cmd = cmd.echo_stderr();
    let out = cmd.run()?;
    for line in crate::exec::tail_lines(&out.stdout, 5) {
        println!("  {line}");
    }
    if out.success() {
        Ok(())
    } else {
        bail!("`{}` failed ({})", cmd.display(), out.describe_status())
    }
}

fn pip_available() -> bool {
    find_in_path("python3").is_some_and(|py| {
        Cmd::new(
            [
                py.display().to_string(),
                "-m".into(),
                "pip".into(),
                "--version".into(),
            ],
            &std::env::temp_dir(),
        )
        .timeout(Duration::from_secs(60))
        .run()
        .is_ok_and(|o| o.success())
    })
}

/// PEP 668: Debian's python3 refuses pip installs without `--break-system-packages`.
fn externally_managed(python: &Path) -> bool {
    Cmd::new(
        [
            python.display().to_string(),
            "-c".into(),
            "import sysconfig; print(sysconfig.get_path('stdlib'))".into(),
        ],
        &std::env::temp_dir(),
    )
    .timeout(Duration::from_secs(60))
    .run()
    .ok()
    .filter(|o| o.success())
    .is_some_and(|o| {
        Path::new(o.stdout.trim())
            .join("EXTERNALLY-MANAGED")
            .exists()
    })
}

/// Prints one line per tool; returns the missing ones.
fn report() -> Vec<&'static Tool> {
    let mut missing = Vec::new();
    for t in TOOLS {
        match version(t) {
            Some(v) => {
                let v: String = v.chars().take(72).collect();
                println!("  present  {:<11} {v}", t.name);
            }
            None => {
                println!(
                    "  missing  {:<11} {} (install: {})",
                    t.name,
                    t.purpose,
                    install_hint(t)
                );
                missing.push(t);
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_error_names_the_install_command() {
        let err = require_tool("definitely-missing-zyphos-tool").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "definitely-missing-zyphos-tool is missing: it is not on PATH"
        );
        assert_eq!(
            missing_message("wrk"),
            "wrk is missing: run `cargo xtask setup` (apt-get install -y wrk)"
        );
        assert_eq!(
            install_hint(tool("h2load").expect("known")),
            "apt-get install -y nghttp2-client"
        );
        assert_eq!(
            install_command("h2o").as_deref(),
            Some("apt-get install -y h2o")
        );
        assert_eq!(install_command("definitely-not-a-tool"), None);
        assert_eq!(
            install_hint(tool("aioquic").expect("known")),
            "python3 -m pip install aioquic"
        );
        assert_eq!(
            install_hint(tool("miri").expect("known")),
            "rustup +nightly component add miri rust-src"
        );
        let listed = [
            format!("miri-{}-unknown-linux-gnu", std::env::consts::ARCH),
            "rust-src".into(),
            format!("rust-std-{}-unknown-linux-gnu", std::env::consts::ARCH),
        ];
        assert!(has_component(&listed, "miri") && has_component(&listed, "rust-src"));
        assert!(!has_component(&listed, "rust"));
        assert!(!has_component(&listed, "clippy"));
    }

    #[test]
    fn finds_executables_on_path() {
        // `sh` is on every machine that can run cargo's build scripts.
        let sh = require_tool("sh").expect("sh is on PATH");
        assert!(sh.is_absolute());
        assert!(find_in_path("/definitely/not/here").is_none());
        assert!(is_known_tool("valgrind"));
        assert!(is_known_tool("h2o"), "the race's second baseline server");
        assert!(!is_known_tool("h2"), "python packages are not commands");
        assert!(!is_known_tool("cargo"));
        assert!(
            !is_known_tool("miri"),
            "a rustup component, not a command on PATH"
        );
    }
}
