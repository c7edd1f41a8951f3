//! Command lines: the echo server with a connection table (`zyphos echo --conn-table …`), and
//! the live view (`zyphos conns`).
//!
//! ```text
//! zyphos echo --conn-table [m01 flags…] [--table-capacity N] [--keepalive IDLE,INTVL,CNT]
//!             [--inactivity-ms MS] [--idle-close half|close|abort] [--fin-wait-ms MS]
//!             [--time-wait-budget N|off] [--verify] [--conns-file PATH] [--conns-every-ms MS]
//!             [--no-fin-before-close]
//! zyphos conns [--port PORT | --file PATH] [--watch MS] [--json]
//! ```
//!
//! The server writes its table to `--conns-file` (default `$TMPDIR/zyphos-conns-PORT.json`)
//! every `--conns-every-ms` (default 500); `zyphos conns --port PORT` reads that file and
//! `/proc/net/tcp` and prints them side by side. Without the file (a server started without
//! `--conn-table`), it prints the kernel's sockets on the port alone.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use m01_raw_sockets::cli as m01cli;
use m01_raw_sockets::{EchoReport, Error};

use crate::kernel::{self, Keepalive};
use crate::table::Decision;
use crate::tracker::{SnapshotConfig, Tracker, TrackerConfig, default_conns_file};
use crate::view::{self, Snapshot};

/// The server's extra flags.
pub const SERVER_USAGE: &str = "zyphos echo --conn-table [echo flags] [--table-capacity N] \
[--keepalive IDLE,INTVL,CNT] [--inactivity-ms MS] [--idle-close half|close|abort] [--fin-wait-ms MS] \
[--time-wait-budget N|off] [--verify] [--conns-file PATH] [--conns-every-ms MS] [--no-fin-before-close]";

/// `zyphos conns` usage.
pub const CONNS_USAGE: &str = "zyphos conns [--port PORT | --file PATH] [--watch MS] [--json]";

/// Parsed server command line: milestone 1's options plus the table's.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The echo server's options (all of `echo_server`'s flags).
    pub echo: m01cli::Options,
    /// The tracker's.
    pub tracker: TrackerConfig,
    /// Where the snapshot goes (`None`: the default path for the port).
    pub conns_file: Option<PathBuf>,
    /// How often.
    pub conns_every: Duration,
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, Error> {
    let v = v.ok_or_else(|| Error::Config(format!("{flag} needs a value")))?;
    v.parse()
        .map_err(|_| Error::Config(format!("{flag}: cannot parse {v:?}")))
}

/// Parses `IDLE,INTVL,CNT` (seconds, seconds, probes).
pub fn parse_keepalive(s: &str) -> Option<Keepalive> {
    let mut it = s.split(',').map(str::trim);
    let idle = it.next()?.parse().ok()?;
    let interval = it.next()?.parse().ok()?;
    let count = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(Keepalive {
        idle: Duration::from_secs(idle),
        interval: Duration::from_secs(interval),
        count,
    })
}

/// Parses the server's arguments (without the program name; `--conn-table` is accepted and
/// ignored: this command line always has the table).
pub fn parse_server(args: impl IntoIterator<Item = String>) -> Result<ServerOptions, Error> {
    let mut tracker = TrackerConfig::default();
    let mut rest = Vec::new();
    let mut conns_file = None;
    let mut conns_every = Duration::from_millis(500);
    let mut fin_before_close = true;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--conn-table" => {}
            "--table-capacity" => tracker.table.capacity = value(&flag, it.next())?,
            "--keepalive" => {
                let v: String = value(&flag, it.next())?;
                tracker.keepalive = Some(parse_keepalive(&v).ok_or_else(|| {
                    Error::Config(format!("--keepalive wants IDLE,INTVL,CNT, got {v:?}"))
                })?);
            }
            "--inactivity-ms" => {
                let ms: u64 = value(&flag, it.next())?;
                tracker.table.inactivity_timeout = (ms > 0).then(|| Duration::from_millis(ms));
            }
            "--idle-close" => {
                tracker.table.idle_decision = match value::<String>(&flag, it.next())?.as_str() {
                    "half" => Decision::HalfClose,
                    "close" => Decision::Close,
                    "abort" => Decision::Abort,
                    other => {
                        return Err(Error::Config(format!(
                            "--idle-close: {other:?} (half, close or abort)"
                        )));
                    }
                };
            }
            "--fin-wait-ms" => {
                let ms: u64 = value(&flag, it.next())?;
                let t = (ms > 0).then(|| Duration::from_millis(ms));
                tracker.table.fin_wait_timeout = t;
                tracker.linger2 = t;
            }
            "--time-wait-budget" => {
                let v: String = value(&flag, it.next())?;
                tracker.table.time_wait_budget = if v == "off" {
                    None
                } else {
                    Some(value(&flag, Some(v))?)
                };
            }
            "--verify" => tracker.verify = true,
            "--conns-file" => conns_file = Some(PathBuf::from(value::<String>(&flag, it.next())?)),
            "--conns-every-ms" => {
                conns_every = Duration::from_millis(value::<u64>(&flag, it.next())?.max(10));
            }
            "--no-fin-before-close" => fin_before_close = false,
            "-h" | "--help" => {
                return Err(Error::Config(format!(
                    "{SERVER_USAGE}\necho flags: {}",
                    m01cli::USAGE
                )));
            }
            _ => rest.push(flag),
        }
    }
    let mut echo = m01cli::parse(rest)?;
    echo.config.fin_before_close = fin_before_close;
    if tracker.table.capacity == 0 {
        return Err(Error::Config("--table-capacity must be at least 1".into()));
    }
    Ok(ServerOptions {
        echo,
        tracker,
        conns_file,
        conns_every,
    })
}

/// Runs the echo server with a connection table until `SIGINT`/`SIGTERM`; returns milestone
/// 1's report and the tracker.
pub fn run_server(opts: ServerOptions) -> Result<(EchoReport, Tracker), Error> {
    let mut config = opts.tracker.clone();
    config.snapshot = Some(SnapshotConfig {
        path: opts.conns_file.clone(),
        every: opts.conns_every,
    });
    let mut tracker = Tracker::new(config, Instant::now());
    let report = m01cli::run_with_observer(opts.echo, &mut tracker)?;
    Ok((report, tracker))
}

/// `main` for `zyphos echo --conn-table`: parse, serve, print the reports.
pub fn server_main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let opts = match parse_server(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let json = opts.echo.json_report;
    let file = opts.conns_file.clone();
    match run_server(opts) {
        Ok((report, tracker)) => {
            let now = Instant::now();
            let stats = tracker.table().stats(now);
            let text = format!(
                "[m01] stopped: {} connections, {} bytes echoed, shutdown took {} µs\n{}\n\
                 [m02] table: {} transitions, {} lifecycles, kernel agreed {}/{} samples, \
                 TIME-WAIT created {} (peak {}), {} refused (table full)\n",
                report.counters.accepted,
                report.counters.bytes_out,
                report.shutdown.map_or(0, |s| s.took_us),
                report.syscalls,
                stats.transitions,
                stats.released,
                stats.samples - stats.mismatches,
                stats.samples,
                stats.time_wait_total,
                stats.time_wait_peak,
                stats.refused_full,
            );
            eprint!("{text}");
            let _ = std::fs::remove_file(
                file.unwrap_or_else(|| default_conns_file(report.local_addr.port())),
            );
            if json {
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert(
                        "conn_table".into(),
                        serde_json::to_value(&stats).unwrap_or_default(),
                    );
                    obj.insert(
                        "table_memory".into(),
                        serde_json::to_value(tracker.table().memory()).unwrap_or_default(),
                    );
                }
                let mut out = std::io::stdout().lock();
                let _ = serde_json::to_writer(&mut out, &value);
                let _ = writeln!(out);
                let _ = out.flush();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zyphos echo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parsed `zyphos conns` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnsOptions {
    /// The server's port (default 3000).
    pub port: u16,
    /// The snapshot file (default: the server's default for `port`).
    pub file: Option<PathBuf>,
    /// Repeat every this often until interrupted.
    pub watch: Option<Duration>,
    /// Print the snapshot and the kernel's entries as JSON.
    pub json: bool,
}

/// Parses `zyphos conns` arguments.
pub fn parse_conns(args: impl IntoIterator<Item = String>) -> Result<ConnsOptions, String> {
    let mut o = ConnsOptions {
        port: 3000,
        file: None,
        watch: None,
        json: false,
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                o.port = val()?
                    .parse()
                    .map_err(|_| "--port: not a port".to_owned())?
            }
            "--file" => o.file = Some(PathBuf::from(val()?)),
            "--watch" => {
                let ms: u64 = val()?
                    .parse()
                    .map_err(|_| "--watch: milliseconds".to_owned())?;
                o.watch = Some(Duration::from_millis(ms.max(50)));
            }
            "--json" => o.json = true,
            "-h" | "--help" => return Err(CONNS_USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{CONNS_USAGE}")),
        }
    }
    Ok(o)
}

/// Renders one view: the server's snapshot (if there is one) next to `/proc/net/tcp`.
pub fn conns_once(o: &ConnsOptions) -> std::io::Result<String> {
    let path = o.file.clone().unwrap_or_else(|| default_conns_file(o.port));
    let kernel = kernel::proc_net_tcp()?;
    let snapshot: Option<Snapshot> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if o.json {
        let v = serde_json::json!({ "snapshot": snapshot, "kernel": kernel
            .iter()
            .filter(|e| e.local.port() == o.port)
            .collect::<Vec<_>>() });
        return Ok(format!("{v}\n"));
    }
    Ok(match snapshot {
        Some(s) => {
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
                .saturating_sub(s.unix_ms);
            format!(
                "server pid {} on {}; table snapshot {} ms old ({})\n{}",
                s.pid,
                s.listen.map_or_else(|| "?".into(), |a| a.to_string()),
                age,
                path.display(),
                view::render(&s, &kernel)
            )
        }
        None => {
            let empty = Snapshot {
                pid: 0,
                listen: Some(std::net::SocketAddr::from(([0, 0, 0, 0], o.port))),
                unix_ms: 0,
                rows: Vec::new(),
                recent: Vec::new(),
                stats: crate::table::ConnTable::new(
                    crate::table::TableConfig {
                        capacity: 0,
                        log_capacity: 0,
                        lifecycle_capacity: 0,
                        ..Default::default()
                    },
                    Instant::now(),
                )
                .stats(Instant::now()),
            };
            format!(
                "no table snapshot at {} (start the server with `zyphos echo --conn-table`); \
                 the kernel's sockets on port {}:\n{}",
                path.display(),
                o.port,
                view::render(&empty, &kernel)
            )
        }
    })
}

/// `main` for `zyphos conns`.
pub fn conns_main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let o = match parse_conns(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    loop {
        match conns_once(&o) {
            Ok(text) => {
                let mut out = std::io::stdout().lock();
                if o.watch.is_some() {
                    let _ = write!(out, "\x1b[H\x1b[2J");
                }
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Err(e) => {
                eprintln!("zyphos conns: {e}");
                return ExitCode::FAILURE;
            }
        }
        match o.watch {
            Some(d) => std::thread::sleep(d),
            None => return ExitCode::SUCCESS,
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
    fn test_parse_server_table_flags_and_echo_flags() {
        let o = parse_server(args(
            "--conn-table --listen 127.0.0.1:0 --quiet --keepalive 5,2,3 --inactivity-ms 250 \
             --idle-close abort --fin-wait-ms 1500 --time-wait-budget off --verify --table-capacity 64",
        ))
        .unwrap();
        assert_eq!(o.echo.config.listen.port(), 0);
        assert!(o.echo.config.fin_before_close);
        let k = o.tracker.keepalive.unwrap();
        assert_eq!((k.idle.as_secs(), k.interval.as_secs(), k.count), (5, 2, 3));
        assert_eq!(
            o.tracker.table.inactivity_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(o.tracker.table.idle_decision, Decision::Abort);
        assert_eq!(o.tracker.linger2, Some(Duration::from_millis(1500)));
        assert_eq!(o.tracker.table.time_wait_budget, None);
        assert!(o.tracker.verify);
        assert_eq!(o.tracker.table.capacity, 64);
        assert!(parse_server(args("--keepalive 1,2")).is_err());
        assert!(parse_server(args("--bogus")).is_err());
    }

    #[test]
    fn test_parse_conns() {
        let o = parse_conns(args("--port 4000 --watch 200 --json")).unwrap();
        assert_eq!(o.port, 4000);
        assert_eq!(o.watch, Some(Duration::from_millis(200)));
        assert!(o.json);
        assert!(parse_conns(args("--port x")).is_err());
    }
}
