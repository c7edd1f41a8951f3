//! What a load run does: [`LoadConfig`], its validation, and parsers for the command-line forms
//! of its values (durations, CPU lists, source-address ranges, targets).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

/// Longest run (and warm-up, and timeout) accepted: every loop is bounded.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Largest pipelining depth.
pub const MAX_PIPELINE: usize = 1024;
/// Largest number of client threads.
pub const MAX_THREADS: usize = 256;
/// Largest echo message.
pub const MAX_MESSAGE: usize = 1 << 20;
/// File descriptors kept free besides the connections (stdio, epoll and timer fds, peers).
pub const FD_MARGIN: u64 = 64;

/// The protocol exchanged on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scenario {
    /// TCP echo: send an N-byte message, wait for the same N bytes back.
    Echo,
    /// HTTP/1.0: one request per connection; connect time counts in the latency.
    Http10,
    /// HTTP/1.1 keep-alive, optionally pipelined.
    Http11,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Http10 => "http1.0",
            Scenario::Http11 => "http1.1",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Scenario, ConfigError> {
        match s {
            "echo" => Ok(Scenario::Echo),
            "http1.0" | "http10" => Ok(Scenario::Http10),
            "http1.1" | "http11" | "http" => Ok(Scenario::Http11),
            _ => Err(ConfigError::Invalid(format!(
                "unknown scenario {s:?} (expected echo, http1.0 or http1.1)"
            ))),
        }
    }
}

/// How a pipelined connection refills its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipelineMode {
    /// Sliding window: after each read, send as many requests as responses arrived, so
    /// `pipeline` requests stay in flight.
    Window,
    /// Batches, as wrk's pipelining script does: send `pipeline` requests, wait for all of
    /// their responses, send the next batch.
    Batch,
}

impl PipelineMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PipelineMode::Window => "window",
            PipelineMode::Batch => "batch",
        }
    }
}

/// A configuration that cannot run; the message is one line naming the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
    /// More connections than the file-descriptor limit allows.
    #[error(
        "--connections {asked} exceeds what RLIMIT_NOFILE allows: soft limit {soft} minus {margin} \
         reserved = {max} (the limit cannot be raised here; split the load over several processes)"
    )]
    TooManyConnections {
        /// Connections asked for.
        asked: usize,
        /// Soft RLIMIT_NOFILE.
        soft: u64,
        /// Descriptors kept in reserve.
        margin: u64,
        /// Largest allowed value.
        max: u64,
    },
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// One load run. Build with [`LoadConfig::new`], adjust the public fields, then pass it to
/// [`crate::run`], which validates it first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadConfig {
    /// Server address.
    pub target: SocketAddr,
    /// `Host` header value (default: the target as `ip:port`).
    pub host: String,
    /// Protocol.
    pub scenario: Scenario,
    /// Concurrent connections (spread over the threads).
    pub connections: usize,
    /// Client threads, each with its own mio event loop.
    pub threads: usize,
    /// Requests in flight per connection (1 = no pipelining; `http1.0` needs 1).
    pub pipeline: usize,
    /// How the pipelining window is refilled.
    pub pipeline_mode: PipelineMode,
    /// Measured run time, after the warm-up.
    pub duration: Duration,
    /// Optional cap on measured requests; the run ends when they are all answered.
    pub requests: Option<u64>,
    /// Open loop: total requests per second on a fixed schedule. `None` = closed loop.
    pub rate: Option<f64>,
    /// Per-request timeout: a connection without progress this long while requests are
    /// outstanding counts a `timeout` error and is reset.
    pub timeout: Duration,
    /// Unrecorded warm-up before the measured run.
    pub warmup: Duration,
    /// HTTP method.
    pub method: String,
    /// HTTP request target.
    pub path: String,
    /// Extra header lines (`Name: value`).
    pub headers: Vec<String>,
    /// Echo message size in bytes.
    pub message_size: usize,
    /// Client source addresses, used round-robin; empty = let the kernel choose.
    pub source_ips: Vec<IpAddr>,
    /// CPUs to pin client threads to (thread `i` gets `cpus[i % len]`); empty = no pinning.
    pub cpus: Vec<usize>,
}

impl LoadConfig {
    /// Defaults: HTTP/1.1 `GET /` keep-alive, 64 connections, 1 thread, closed loop, 10 s.
    pub fn new(target: SocketAddr) -> LoadConfig {
        LoadConfig {
            target,
            host: target.to_string(),
            scenario: Scenario::Http11,
            connections: 64,
            threads: 1,
            pipeline: 1,
            pipeline_mode: PipelineMode::Window,
            duration: Duration::from_secs(10),
            requests: None,
            rate: None,
            timeout: Duration::from_secs(5),
            warmup: Duration::ZERO,
            method: "GET".to_owned(),
            path: "/".to_owned(),
            headers: Vec::new(),
            message_size: 64,
            source_ips: Vec::new(),
            cpus: Vec::new(),
        }
    }

    /// `closed` or `open`, as in the report.
    pub fn mode_name(&self) -> &'static str {
        if self.rate.is_some() {
            "open"
        } else {
            "closed"
        }
    }

    /// Check every field; the error names the option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.connections == 0 {
            return Err(invalid("--connections must be at least 1"));
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(invalid(format!(
                "--threads must be between 1 and {MAX_THREADS}"
            )));
        }
        if self.threads > self.connections {
            return Err(invalid(format!(
                "--threads {} is more than --connections {}",
                self.threads, self.connections
            )));
        }
        let soft = crate::sys::nofile_soft_limit()
            .map_err(|e| invalid(format!("cannot read RLIMIT_NOFILE: {e}")))?;
        let margin = FD_MARGIN + 2 * self.threads as u64;
        let max = soft.saturating_sub(margin);
        if self.connections as u64 > max {
            return Err(ConfigError::TooManyConnections {
                asked: self.connections,
                soft,
                margin,
                max,
            });
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            return Err(invalid(format!(
                "--pipeline must be between 1 and {MAX_PIPELINE}"
            )));
        }
        if self.scenario == Scenario::Http10 && self.pipeline != 1 {
            return Err(invalid(
                "--pipeline needs keep-alive: http1.0 sends one request per connection",
            ));
        }
        check_duration("--duration", self.duration, false)?;
        check_duration("--warmup", self.warmup, true)?;
        check_duration("--timeout", self.timeout, false)?;
        if self.requests == Some(0) {
            return Err(invalid("--requests must be at least 1"));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= 1e8) {
                return Err(invalid(format!(
                    "--rate {rate} must be a number of requests/s in (0, 1e8]"
                )));
            }
        }
        if self.scenario == Scenario::Echo {
            if self.message_size == 0 || self.message_size > MAX_MESSAGE {
                return Err(invalid(format!(
                    "--size must be between 1 and {MAX_MESSAGE} bytes"
                )));
            }
        } else {
            check_http_fields(self)?;
        }
        if self.source_ips.len() > 1 << 16 {
            return Err(invalid("--source-ips names more than 65536 addresses"));
        }
        if let Some(ip) = self
            .source_ips
            .iter()
            .find(|ip| ip.is_ipv4() != self.target.is_ipv4())
        {
            return Err(invalid(format!(
                "--source-ips address {ip} is not of the target's address family"
            )));
        }
        Ok(())
    }
}

fn check_duration(name: &str, d: Duration, zero_ok: bool) -> Result<(), ConfigError> {
    if (!zero_ok && d.is_zero()) || d > MAX_DURATION {
        let low = if zero_ok { "0" } else { "more than 0" };
        return Err(invalid(format!(
            "{name} must be {low} and at most {} s",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_http_fields(c: &LoadConfig) -> Result<(), ConfigError> {
    if !is_token(&c.method) {
        return Err(invalid(format!(
            "--method {:?} is not an HTTP token",
            c.method
        )));
    }
    let path_ok =
        (c.path.starts_with('/') || c.path == "*") && c.path.bytes().all(|b| b.is_ascii_graphic());
    if !path_ok {
        return Err(invalid(format!(
            "--path {:?} must start with '/' and contain no spaces or control bytes",
            c.path
        )));
    }
    if !c
        .host
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b',' && b != b'/')
    {
        return Err(invalid(format!("Host {:?} is not a valid host", c.host)));
    }
    for h in &c.headers {
        let ok = h.split_once(':').is_some_and(|(name, value)| {
            is_token(name)
                && value
                    .bytes()
                    .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        });
        if !ok {
            return Err(invalid(format!(
                "--header {h:?} must be 'Name: value' with a token name and no control bytes"
            )));
        }
    }
    Ok(())
}

/// Parse a duration: plain seconds (`10`, `1.5`) or with a unit (`500ms`, `10s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        invalid(format!(
            "{s:?} is not a duration (e.g. 10, 1.5s, 500ms, 2m)"
        ))
    })?;
    let secs = v * scale;
    if !secs.is_finite() || secs < 0.0 || secs > MAX_DURATION.as_secs_f64() {
        return Err(invalid(format!(
            "duration {s:?} must be between 0 and {} s",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a CPU list: `1`, `0,2`, `0-3`, `0-1,4`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, ConfigError> {
    let bad = || {
        invalid(format!(
            "--cpu {s:?} is not a CPU list (e.g. 1, 0,2 or 0-3)"
        ))
    };
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= 1024 {
            return Err(bad());
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Parse client source addresses: `127.0.0.1-127.0.0.50`, a comma list, or one address.
/// Ranges are IPv4 only and at most 65536 long.
pub fn parse_source_ips(s: &str) -> Result<Vec<IpAddr>, ConfigError> {
    let mut ips = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: Ipv4Addr = a.trim().parse().map_err(|_| {
                    invalid(format!(
                        "--source-ips {part:?}: {a:?} is not an IPv4 address"
                    ))
                })?;
                let b: Ipv4Addr = b.trim().parse().map_err(|_| {
                    invalid(format!(
                        "--source-ips {part:?}: {b:?} is not an IPv4 address"
                    ))
                })?;
                let (a, b) = (u32::from(a), u32::from(b));
                if a > b || b - a >= 1 << 16 {
                    return Err(invalid(format!(
                        "--source-ips range {part:?} is empty or longer than 65536"
                    )));
                }
                ips.extend((a..=b).map(|v| IpAddr::V4(Ipv4Addr::from(v))));
            }
            None => {
                let ip: IpAddr = part
                    .parse()
                    .map_err(|_| invalid(format!("--source-ips {part:?} is not an IP address")))?;
                ips.push(ip);
            }
        }
        if ips.len() > 1 << 16 {
            return Err(invalid("--source-ips names more than 65536 addresses"));
        }
    }
    Ok(ips)
}

/// A parsed target: address, `Host` value and the path from a URL, if one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// `host:port` as written (for the `Host` header).
    pub host: String,
    /// Path from an `http://host:port/path` URL.
    pub path: Option<String>,
}

/// Parse `host:port` or `http://host[:port][/path]` (port 80 by default).
pub fn parse_target(s: &str) -> Result<Target, ConfigError> {
    let (authority, path) = match s.strip_prefix("http://") {
        Some(rest) => match rest.find('/') {
            Some(i) => (&rest[..i], Some(rest[i..].to_owned())),
            None => (rest, None),
        },
        None if s.contains("://") => {
            return Err(invalid(format!(
                "target {s:?}: only http:// URLs or host:port are supported"
            )));
        }
        None => (s, None),
    };
    let with_port = if s.starts_with("http://") && !has_port(authority) {
        format!("{authority}:80")
    } else {
        authority.to_owned()
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| invalid(format!("target {s:?} does not resolve: {e}")))?
        .next()
        .ok_or_else(|| invalid(format!("target {s:?} resolves to no address")))?;
    Ok(Target {
        addr,
        host: authority.to_owned(),
        path,
    })
}

fn has_port(authority: &str) -> bool {
    match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']') && authority.parse::<Ipv6Addr>().is_err(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> LoadConfig {
        LoadConfig::new("127.0.0.1:8080".parse().expect("addr"))
    }

    #[test]
    fn test_config_default_is_valid() {
        assert_eq!(base().validate(), Ok(()));
    }

    #[test]
    fn test_config_rejects_connections_over_fd_limit() {
        let mut c = base();
        c.connections = 10_000_000;
        let err = c.validate().expect_err("too many");
        assert!(matches!(err, ConfigError::TooManyConnections { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("--connections 10000000") && msg.contains("RLIMIT_NOFILE"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn test_config_rejects_out_of_range_values() {
        type Mutation = Box<dyn Fn(&mut LoadConfig)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|c| c.connections = 0),
            Box::new(|c| c.threads = 0),
            Box::new(|c| c.threads = 65),
            Box::new(|c| c.pipeline = 0),
            Box::new(|c| {
                c.scenario = Scenario::Http10;
                c.pipeline = 2;
            }),
            Box::new(|c| c.duration = Duration::ZERO),
            Box::new(|c| c.duration = Duration::from_secs(3601)),
            Box::new(|c| c.timeout = Duration::ZERO),
            Box::new(|c| c.requests = Some(0)),
            Box::new(|c| c.rate = Some(0.0)),
            Box::new(|c| c.rate = Some(f64::NAN)),
            Box::new(|c| c.path = "no-slash".into()),
            Box::new(|c| c.path = "/a b".into()),
            Box::new(|c| c.method = "G T".into()),
            Box::new(|c| c.headers = vec!["NoColon".into()]),
            Box::new(|c| c.headers = vec!["X: a\r\nY: b".into()]),
            Box::new(|c| c.source_ips = vec!["::1".parse().expect("ip")]),
            Box::new(|c| {
                c.scenario = Scenario::Echo;
                c.message_size = 0;
            }),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut c = base();
            f(&mut c);
            assert!(c.validate().is_err(), "case {i} should be rejected");
        }
    }

    #[test]
    fn test_parse_duration_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("2h").is_err());
    }

    #[test]
    fn test_parse_cpu_list_forms() {
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn test_parse_source_ips_range_and_list() {
        let ips = parse_source_ips("127.0.0.1-127.0.0.50").expect("range");
        assert_eq!(ips.len(), 50);
        assert_eq!(ips[49], "127.0.0.50".parse::<IpAddr>().expect("ip"));
        assert_eq!(
            parse_source_ips("127.0.0.1,127.0.0.2").map(|v| v.len()),
            Ok(2)
        );
        assert!(parse_source_ips("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_source_ips("10.0.0.0-10.2.0.0").is_err());
        assert!(parse_source_ips("nope").is_err());
    }

    #[test]
    fn test_parse_target_forms() {
        let t = parse_target("127.0.0.1:8080").expect("addr");
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.path, None);
        let t = parse_target("http://127.0.0.1:9/plaintext").expect("url");
        assert_eq!((t.addr.port(), t.path.as_deref()), (9, Some("/plaintext")));
        assert_eq!(t.host, "127.0.0.1:9");
        assert_eq!(
            parse_target("http://127.0.0.1").map(|t| t.addr.port()),
            Ok(80)
        );
        assert!(parse_target("https://127.0.0.1:1/").is_err());
    }
}
