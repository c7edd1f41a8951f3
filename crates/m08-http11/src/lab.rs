//! Helpers for the examples and integration tests (hidden from the docs): an in-process server
//! (m03's `ThreadServer` + [`Http11Factory`] + m05's demo router + a few lab routes), and raw
//! socket helpers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use m03_thread_per_conn::{ShutdownHandle, ThreadConfig, ThreadReport, ThreadServer};
use m04_http10::{ConnInfo, Request, ResponseWriter, Service};
use m05_routing::{Router, RouterKind};

use crate::session::{Http11Config, Http11Factory};
use crate::stats::Http11Stats;

pub use m01_raw_sockets::lab::{
    Table, have_tool, machine, print_check, print_json, print_measured, quick, round, run_main,
};

/// The demo router plus lab routes:
///
/// | route | answers |
/// |---|---|
/// | `GET /chunked/N/C` | `N` bytes sent chunked in `C`-byte chunks (Content-Length to 1.0 peers) |
/// | `GET /bytes/N` | `N` bytes with Content-Length |
/// | `GET /slow/MS` | sleeps `MS` ms (≤ 5000), then `slow` (head-of-line blocking) |
/// | everything else | m05's demo router |
#[derive(Debug)]
pub struct LabService {
    router: Router,
}

impl LabService {
    /// The lab service over m05's demo router.
    pub fn new() -> io::Result<Self> {
        let router = m05_routing::demo::router(RouterKind::Prefix, None, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(LabService { router })
    }
}

/// Prints an experiment's table, then fails with the failures found (if any), so that the
/// table is recorded either way and a failure names what went wrong.
pub fn print_then_fail_on(table: &Table, failures: &[String]) -> io::Result<()> {
    table.print();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(failures.join("; ")))
    }
}

/// Deterministic filler bytes.
pub fn filler(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

impl Service for LabService {
    fn call(&self, request: &Request<'_>, ctx: &ConnInfo, response: &mut ResponseWriter<'_>) {
        let path = request.path();
        let num = |s: &str| s.parse::<usize>().ok();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["chunked", n, c] => {
                if let (Some(n), Some(c)) = (num(n), num(c)) {
                    let body = filler(n.min(16 << 20));
                    let pieces: Vec<&[u8]> = body.chunks(c.max(1)).collect();
                    response.send_chunked(200, Some("text/plain"), &[], &pieces);
                    return;
                }
            }
            ["bytes", n] => {
                if let Some(n) = num(n) {
                    response.send(200, Some("text/plain"), &[], &filler(n.min(16 << 20)));
                    return;
                }
            }
            ["slow", ms] => {
                if let Some(ms) = num(ms) {
                    std::thread::sleep(Duration::from_millis(ms.min(5000) as u64));
                    response.send(200, Some("text/plain"), &[], b"slow");
                    return;
                }
            }
            _ => {}
        }
        self.router.call(request, ctx, response);
    }
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct LabServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Stops it.
    pub shutdown: ShutdownHandle,
    /// The HTTP/1.1 counters.
    pub stats: Arc<Http11Stats>,
    handle: Option<JoinHandle<io::Result<ThreadReport>>>,
}

impl LabServer {
    /// Starts `ThreadServer` + `Http11Factory(LabService)` on 127.0.0.1:0.
    pub fn start(config: Http11Config) -> io::Result<LabServer> {
        Self::start_with(config, |_| {})
    }

    /// Same, adjusting the thread server's configuration first.
    pub fn start_with(
        config: Http11Config,
        adjust: impl FnOnce(&mut ThreadConfig),
    ) -> io::Result<LabServer> {
        let mut tc = ThreadConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        tc.sample_threads = false;
        adjust(&mut tc);
        let server = ThreadServer::bind(tc)?;
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let factory = Arc::new(Http11Factory::new(Arc::new(LabService::new()?), config));
        let stats = factory.stats();
        let handle = std::thread::Builder::new()
            .name("lab-server".into())
            .spawn(move || server.run(factory))?;
        Ok(LabServer {
            addr,
            shutdown,
            stats,
            handle: Some(handle),
        })
    }

    /// Stops it and waits.
    pub fn stop(mut self) -> io::Result<ThreadReport> {
        self.shutdown.shutdown();
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Err(io::Error::other("already stopped")),
        }
    }
}

impl Drop for LabServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.shutdown.shutdown();
            let _ = h.join();
        }
    }
}

/// A connected stream with timeouts and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes `request` and reads until the peer closes (for requests that end the connection).
pub fn exchange_until_close(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = connect(addr)?;
    s.write_all(request)?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(out)
}

/// Replaces every `Date: …` value with `-` (responses compared across seconds).
pub fn normalize_dates(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\r\nDate: ") {
            out.extend_from_slice(b"\r\nDate: -");
            i += 8;
            while i < bytes.len() && bytes[i] != b'\r' {
                i += 1;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
