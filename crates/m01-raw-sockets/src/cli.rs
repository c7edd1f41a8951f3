//! The `echo_server` command line, shared by `src/bin/echo_server.rs` and `zyphos echo`.
//!
//! ```text
//! echo_server [--listen ADDR] [--mode poll|blocking] [--backlog N] [--buffer-size BYTES]
//!             [--max-connections N] [--sndbuf BYTES] [--rcvbuf BYTES]
//!             [--read-timeout-ms MS] [--write-timeout-ms MS] [--drain-ms MS]
//!             [--nofile N] [--quiet] [--no-inspect] [--json-report] [--keep-sigpipe-ignored]
//! ```
//!
//! The first line on stdout is the bound address (`127.0.0.1:3000`), so a parent process can
//! start it on port 0 and read where it listens. Connection logs and the final syscall table go
//! to stderr; `--json-report` prints the [`EchoReport`] as one JSON line on stdout at exit.
//! `SIGINT`/`SIGTERM` shut it down gracefully (exit status 0). With `--json-report` the JSON also
//! has `process_syscalls`: the accounting table of the whole process, startup included.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::accounting;
use crate::echo::{EchoConfig, EchoReport, EchoServer, Mode};
use crate::error::Error;
use crate::observe::{ConnectionObserver, NoopObserver};
use crate::sys::{process, signal};

/// Parsed command line.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The server configuration.
    pub config: EchoConfig,
    /// Lower the soft `RLIMIT_NOFILE` to this before binding (to provoke `EMFILE`).
    pub nofile: Option<u64>,
    /// Print the report as JSON on stdout at exit.
    pub json_report: bool,
    /// Restore `SIGPIPE`'s default action (terminate) so that only `MSG_NOSIGNAL` protects the
    /// server, as in C. Default on; `--keep-sigpipe-ignored` leaves Rust's `SIG_IGN`.
    pub default_sigpipe: bool,
}

/// The usage text.
pub const USAGE: &str = "usage: echo_server [--listen ADDR] [--mode poll|blocking] [--backlog N] \
[--buffer-size BYTES] [--max-connections N] [--sndbuf BYTES] [--rcvbuf BYTES] [--read-timeout-ms MS] \
[--write-timeout-ms MS] [--drain-ms MS] [--nofile N] [--quiet] [--no-inspect] [--json-report] \
[--keep-sigpipe-ignored]";

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, Error> {
    let v = v.ok_or_else(|| Error::Config(format!("{flag} needs a value")))?;
    v.parse()
        .map_err(|_| Error::Config(format!("{flag}: cannot parse {v:?}")))
}

fn timeout(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Parses arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, Error> {
    let mut opts = Options {
        config: EchoConfig::default(),
        nofile: None,
        json_report: false,
        default_sigpipe: true,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let c = &mut opts.config;
        match flag.as_str() {
            "--listen" => c.listen = value(&flag, it.next())?,
            "--mode" => c.mode = value::<String>(&flag, it.next())?.parse::<Mode>()?,
            "--backlog" => c.backlog = value(&flag, it.next())?,
            "--buffer-size" => c.buffer_size = value(&flag, it.next())?,
            "--max-connections" => c.max_connections = value(&flag, it.next())?,
            "--sndbuf" => c.send_buffer = Some(value(&flag, it.next())?),
            "--rcvbuf" => c.recv_buffer = Some(value(&flag, it.next())?),
            "--read-timeout-ms" => c.read_timeout = timeout(value(&flag, it.next())?),
            "--write-timeout-ms" => c.write_timeout = timeout(value(&flag, it.next())?),
            "--drain-ms" => c.drain_timeout = Duration::from_millis(value(&flag, it.next())?),
            "--nofile" => opts.nofile = Some(value(&flag, it.next())?),
            "--quiet" => c.log_connections = false,
            "--no-inspect" => c.inspect_sockets = false,
            "--json-report" => opts.json_report = true,
            "--keep-sigpipe-ignored" => opts.default_sigpipe = false,
            "-h" | "--help" => return Err(Error::Config(USAGE.to_owned())),
            other => {
                return Err(Error::Config(format!(
                    "unknown argument {other:?}\n{USAGE}"
                )));
            }
        }
    }
    Ok(opts)
}

/// Binds, prints the address, installs the signal handlers, serves until `SIGINT`/`SIGTERM`.
pub fn run(opts: Options) -> Result<EchoReport, Error> {
    run_with_observer(opts, &mut NoopObserver)
}

/// As [`run`], with `observer` watching every connection (milestone 2's connection table).
pub fn run_with_observer(
    opts: Options,
    observer: &mut dyn ConnectionObserver,
) -> Result<EchoReport, Error> {
    if let Some(n) = opts.nofile {
        process::set_nofile_soft_limit(n).map_err(|source| Error::Setup {
            what: "RLIMIT_NOFILE",
            source,
        })?;
    }
    if opts.default_sigpipe {
        signal::default_sigpipe().map_err(|source| Error::Setup {
            what: "the SIGPIPE action",
            source,
        })?;
    }
    let server = EchoServer::bind(opts.config)?;
    let handle = server.shutdown_handle();
    handle
        .install_signal_handlers()
        .map_err(|source| Error::Setup {
            what: "signal handlers",
            source,
        })?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", server.local_addr());
        let _ = out.flush();
    }
    let banner = format!(
        "[m01] echo server on {} (pid {}); Ctrl-C to stop\n",
        server.local_addr(),
        std::process::id()
    );
    eprint!("{banner}");
    server.run_with_observer(observer)
}

/// `main` for the `echo_server` binary: parse, run, print the report.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let json = opts.json_report;
    match run(opts) {
        Ok(report) => {
            // Formatted first, written once: stderr is unbuffered, and `eprintln!` with arguments
            // makes one write(2) per piece (visible in strace).
            let text = format!(
                "[m01] stopped: {} connections, {} bytes echoed, shutdown took {} µs\n{}",
                report.counters.accepted,
                report.counters.bytes_out,
                report.shutdown.map_or(0, |s| s.took_us),
                report.syscalls
            );
            eprint!("{text}");
            if json {
                // Also the whole process's table since it started (bind-time calls and the last
                // close included): what `strace -c` of the whole process is compared with.
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("process_syscalls".into(), accounting::snapshot().to_json());
                }
                let mut out = std::io::stdout().lock();
                let _ = serde_json::to_writer(&mut out, &value);
                let _ = writeln!(out);
                let _ = out.flush();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn test_parse_defaults_listen_on_3000() {
        let o = parse(Vec::new()).unwrap();
        assert_eq!(o.config.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(o.config.mode, Mode::Poll);
        assert!(o.default_sigpipe);
    }

    #[test]
    fn test_parse_all_flags() {
        let o = parse(args(
            "--listen 127.0.0.1:0 --mode blocking --backlog 7 --buffer-size 99 --nofile 40 --quiet \
             --read-timeout-ms 0 --drain-ms 5 --json-report --sndbuf 4096",
        ))
        .unwrap();
        assert_eq!(o.config.listen.port(), 0);
        assert_eq!(o.config.mode, Mode::Blocking);
        assert_eq!((o.config.backlog, o.config.buffer_size), (7, 99));
        assert_eq!(o.nofile, Some(40));
        assert_eq!(o.config.read_timeout, None);
        assert_eq!(o.config.drain_timeout, Duration::from_millis(5));
        assert_eq!(o.config.send_buffer, Some(4096));
        assert!(o.json_report && !o.config.log_connections);
    }

    #[test]
    fn test_parse_rejects_unknown_and_missing() {
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("--listen")).is_err());
        assert!(parse(args("--mode fast")).is_err());
    }
}
