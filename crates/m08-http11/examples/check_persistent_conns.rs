//! Exit check `persistent_conns_held`: 10,000 keep-alive connections held at once against
//! m03's ThreadServer running the HTTP/1.1 factory (one thread per connection), each answering
//! a request at the start and another one after 60 s on the same connection.
//!
//! RLIMIT_NOFILE is 20,000 per process, so the clients run in 4 child processes of this
//! example (2,500 connections each, from source addresses 127.0.0.2 … 127.0.0.5); the server
//! holds its 10,000 sockets here. The idle timeout is raised to 300 s for this check (a
//! connection idle for 60 s must survive); everything else is the shipped configuration.
//! Measured: connections that answered both requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m08_http11::Http11Config;
use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, print_measured, run_main};

const PROCS: usize = 4;
const PER_PROC: usize = 2500;
const HOLD: Duration = Duration::from_secs(60);

fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn open(addr: SocketAddr, src: [u8; 4]) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::from((src, 0)).into())?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(10))?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn ask(s: &mut TcpStream, path: &str) -> bool {
    let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    matches!(read_response(s, &mut buf, false), Ok((r, true, _)) if r.status == 200 && buf.is_empty())
}

/// Child: open PER_PROC connections, ask once, report, hold, ask again, report.
fn client(addr: SocketAddr, src: [u8; 4], count: usize) -> std::io::Result<()> {
    raise_nofile();
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        match open(addr, src) {
            Ok(mut s) => {
                if ask(&mut s, "/") {
                    conns.push(s);
                }
            }
            Err(e) => eprintln!("client {src:?}: connect failed: {e}"),
        }
    }
    println!("READY {}", conns.len());
    std::io::stdout().flush()?;
    // Wait for the parent's go (a line on stdin) after the hold.
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let ok = conns
        .iter_mut()
        .map(|s| ask(s, "/plaintext"))
        .filter(|ok| *ok)
        .count();
    println!("DONE {ok}");
    std::io::stdout().flush()?;
    let mut sink = String::new();
    let _ = std::io::stdin().read_to_string(&mut sink);
    Ok(())
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("--client") {
            let addr: SocketAddr = args[2].parse().map_err(std::io::Error::other)?;
            let last: u8 = args[3].parse().map_err(std::io::Error::other)?;
            let count: usize = args[4].parse().map_err(std::io::Error::other)?;
            return client(addr, [127, 0, 0, last], count);
        }
        raise_nofile();
        let config = Http11Config {
            idle_timeout: Duration::from_secs(300),
            ..Http11Config::default()
        };
        let server = LabServer::start_with(config, |tc| {
            tc.max_threads = PROCS * PER_PROC + 500;
            tc.backlog = 4096;
        })?;
        let exe = std::env::current_exe()?;
        let started = Instant::now();
        let mut children = Vec::new();
        for p in 0..PROCS {
            let child = Command::new(&exe)
                .args([
                    "--client",
                    &server.addr.to_string(),
                    &(2 + p).to_string(),
                    &PER_PROC.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            children.push(child);
        }
        let mut readers: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdout.take().map(BufReader::new))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| std::io::Error::other("no child stdout"))?;
        let mut ready = 0usize;
        for r in &mut readers {
            let mut line = String::new();
            r.read_line(&mut line)?;
            ready += line
                .trim()
                .strip_prefix("READY ")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
        }
        let ramp = started.elapsed();
        let live_at_start = server.stats.live();
        eprintln!(
            "{ready} connections answered once, server holds {live_at_start}, ramp {ramp:?}; holding {HOLD:?}"
        );
        std::thread::sleep(HOLD);
        let live_after = server.stats.live();
        for c in &mut children {
            if let Some(stdin) = c.stdin.as_mut() {
                writeln!(stdin, "go")?;
            }
        }
        let mut both = 0usize;
        for r in &mut readers {
            let mut line = String::new();
            r.read_line(&mut line)?;
            both += line
                .trim()
                .strip_prefix("DONE ")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
        }
        let held_for = started.elapsed() - ramp;
        for c in &mut children {
            drop(c.stdin.take());
            let _ = c.wait();
        }
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM"))
                    .map(|l| l.trim().to_owned())
            })
            .unwrap_or_default();
        let _ = server.stop()?;
        let detail = format!(
            "{ready} connections answered at start (ramp {:.1} s), server held {live_at_start} sessions then {live_after} after the {} s hold; {both} answered again on the same connection after {:.1} s; {PROCS} client processes x {PER_PROC}, sources 127.0.0.2-{}; server {rss}",
            ramp.as_secs_f64(),
            HOLD.as_secs(),
            held_for.as_secs_f64(),
            1 + PROCS
        );
        eprintln!("{detail}");
        print_measured(both as f64, "connections", &detail);
        Ok(())
    })
}
