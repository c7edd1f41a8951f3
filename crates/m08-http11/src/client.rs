//! A small blocking HTTP/1.1 client over [`Pool`]: what a load generator or an upstream proxy
//! needs. It reuses keep-alive connections, honours `Connection: close` and the server's
//! `Keep-Alive: timeout`, and retries once on a fresh connection when a reused one turns out to
//! be closed (the race every keep-alive client has).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::chunked::{ChunkLimits, ChunkedDecoder};
use crate::headers::{ConnectionOptions, KeepAliveParams, parse_connection_into, parse_keep_alive};
use crate::pool::{Pool, PoolConfig, PoolStats};

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Whether the body was chunked.
    pub chunked: bool,
    /// Bytes the response took on the wire.
    pub wire_len: usize,
}

impl Response {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one response from `stream`; `buf` holds bytes already read past earlier responses and
/// keeps those past this one. `head_request`: the body is absent whatever the headers say.
/// Returns the response and whether the connection may be reused.
pub fn read_response(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> io::Result<(Response, bool, KeepAliveParams)> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // Skip interim 1xx responses.
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Err(invalid("response head too large"));
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = &buf[..head_end - 4];
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().ok_or_else(|| invalid("empty head"))?;
        let version_ok =
            status_line.starts_with(b"HTTP/1.1 ") || status_line.starts_with(b"HTTP/1.0 ");
        let status = status_line
            .get(9..12)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok())
            .filter(|_| version_ok)
            .ok_or_else(|| invalid("bad status line"))?;
        let http10 = status_line.starts_with(b"HTTP/1.0");
        let mut headers = Vec::new();
        for line in lines {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| invalid("bad header"))?;
            let name = String::from_utf8_lossy(&line[..colon]).into_owned();
            let value = crate::headers::trim(&line[colon + 1..]).to_vec();
            headers.push((name, value));
        }
        if (100..200).contains(&status) && status != 101 {
            buf.drain(..head_end);
            continue;
        }
        let mut conn = ConnectionOptions::default();
        let mut ka = KeepAliveParams::default();
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for (n, v) in &headers {
            if n.eq_ignore_ascii_case("connection") {
                parse_connection_into(v, &mut conn);
            } else if n.eq_ignore_ascii_case("keep-alive") {
                ka = parse_keep_alive(v);
            } else if n.eq_ignore_ascii_case("content-length") {
                let s = std::str::from_utf8(v).map_err(|_| invalid("bad content-length"))?;
                length = Some(s.parse().map_err(|_| invalid("bad content-length"))?);
            } else if n.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case(b"chunked");
            }
        }
        let bodyless = head_request || status == 204 || status == 304;
        let mut reusable = if http10 {
            conn.keep_alive && !conn.close
        } else {
            !conn.close
        };
        let mut body = Vec::new();
        let mut used = head_end;
        if bodyless {
        } else if chunked {
            let mut d = ChunkedDecoder::new(ChunkLimits {
                max_body: 64 * 1024 * 1024,
                max_chunk_size: 64 * 1024 * 1024,
                max_chunks: 1 << 20,
                ..ChunkLimits::default()
            });
            loop {
                let p = d
                    .feed(&buf[used..], &mut body)
                    .map_err(|e| invalid(e.name()))?;
                used += p.consumed;
                if p.done {
                    break;
                }
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "chunked body cut",
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = length {
            while buf.len() < head_end + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut"));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            body.extend_from_slice(&buf[head_end..head_end + len]);
            used = head_end + len;
        } else {
            // Delimited by close.
            loop {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            body.extend_from_slice(&buf[head_end..]);
            used = buf.len();
            reusable = false;
        }
        buf.drain(..used);
        let resp = Response {
            status,
            headers,
            body,
            chunked,
            wire_len: used,
        };
        return Ok((resp, reusable, ka));
    }
}

/// A pooled connection and its read-ahead buffer.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read past the last response.
    pub buf: Vec<u8>,
    /// Requests sent on it.
    pub requests: u64,
}

/// Client counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests completed.
    pub requests: u64,
    /// Connections opened.
    pub connections: u64,
    /// Reused connections found closed by the server (retried on a new one).
    pub stale: u64,
}

impl ClientStats {
    /// `1 − connections / requests`, in percent: the exit check's reuse rate.
    pub fn reuse_percent(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        100.0 * (1.0 - self.connections as f64 / self.requests as f64)
    }
}

/// A blocking client with a keep-alive pool. See the [module docs](self).
#[derive(Debug)]
pub struct Client {
    pool: Pool<SocketAddr, Conn>,
    stats: ClientStats,
    timeout: Duration,
    /// Disable reuse (the "new connection per request" baseline).
    pub reuse: bool,
}

impl Client {
    /// A client with `config`; socket operations time out after `timeout`.
    pub fn new(config: PoolConfig, timeout: Duration) -> Self {
        Client {
            pool: Pool::new(config),
            stats: ClientStats::default(),
            timeout,
            reuse: true,
        }
    }

    /// Its counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The pool's counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        self.stats.connections += 1;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            requests: 0,
        })
    }

    fn exchange(
        conn: &mut Conn,
        request: &[u8],
        head: bool,
    ) -> io::Result<(Response, bool, KeepAliveParams)> {
        conn.stream.write_all(request)?;
        conn.requests += 1;
        read_response(&mut conn.stream, &mut conn.buf, head)
    }

    /// Sends `request` (complete bytes) to `addr` and reads the response, on a pooled
    /// connection when there is one.
    pub fn send(&mut self, addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
        let head = request.starts_with(b"HEAD ");
        let now = Instant::now();
        let pooled = if self.reuse {
            self.pool.checkout(&addr, now)
        } else {
            None
        };
        let (mut conn, result) = match pooled {
            Some(mut c) => match Self::exchange(&mut c, request, head) {
                Ok(r) => (c, Ok(r)),
                Err(_) => {
                    // The server closed it while it sat idle: retry once on a new connection.
                    self.stats.stale += 1;
                    let mut c = self.connect(addr)?;
                    let r = Self::exchange(&mut c, request, head);
                    (c, r)
                }
            },
            None => {
                let mut c = self.connect(addr)?;
                let r = Self::exchange(&mut c, request, head);
                (c, r)
            }
        };
        let (resp, reusable, ka) = result?;
        self.stats.requests += 1;
        if reusable && self.reuse && conn.buf.is_empty() {
            conn.buf.clear();
            self.pool.checkin(addr, conn, Instant::now(), ka.timeout);
        } else {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
        Ok(resp)
    }

    /// `GET path` with `Host`.
    pub fn get(&mut self, addr: SocketAddr, path: &str) -> io::Result<Response> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        self.send(addr, req.as_bytes())
    }
}
