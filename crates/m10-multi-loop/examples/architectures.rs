//! Experiment: architecture designs on the same sessions (m08 HTTP/1.1 + lab service):
//! one loop; 2 loops with SO_REUSEPORT (m10); 2 loops sharing one listener with
//! EPOLLEXCLUSIVE (m09's EpollServer); one acceptor thread + 2 loops (m10). Two workloads:
//! keep-alive requests (accept rarely matters) and one request per connection (accept on
//! every request: where the designs differ).

use std::time::Duration;

use m09_event_loop::ServerConfig;
use m09_event_loop::lab::InProcess;
use m10_multi_loop::Distribution;
use m10_multi_loop::lab::{
    MultiInProcess, Table, config, http_factory, load, machine, num, quick, round, run_main,
};

fn loads(addr: std::net::SocketAddr, secs: f64) -> std::io::Result<(f64, f64, f64)> {
    let ka = m10_multi_loop::lab::keepalive_load(addr, "/plaintext", 64, secs)?;
    let args: Vec<String> = [
        "--scenario",
        "http1.0",
        "--connections",
        "16",
        "--duration",
        &format!("{secs}"),
        "--path",
        "/plaintext",
        &addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let churn = load(&args)?;
    Ok((
        num(&ka, &["rps"]),
        num(&ka, &["latency", "p99_us"]),
        num(&churn, &["rps"]),
    ))
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let secs = if quick() { 0.5 } else { 2.0 };
        let mut t = Table::new(
            "Architecture designs: one loop, SO_REUSEPORT loops, shared EPOLLEXCLUSIVE listener, acceptor + loops",
            &[
                "design",
                "loops",
                "keep-alive req/s",
                "keep-alive p99 µs",
                "new connection per request: req/s",
            ],
        );
        let designs: [(&str, usize, Option<Distribution>); 4] = [
            ("1 loop", 1, Some(Distribution::ReusePort)),
            (
                "2 loops, SO_REUSEPORT (m10)",
                2,
                Some(Distribution::ReusePort),
            ),
            ("2 loops, shared listener + EPOLLEXCLUSIVE (m09)", 2, None),
            (
                "acceptor thread + 2 loops (m10)",
                2,
                Some(Distribution::Acceptor),
            ),
        ];
        for (name, loops, dist) in designs {
            let (ka, p99, churn) = match dist {
                Some(d) => {
                    let mut c = config(loops);
                    c.distribution = d;
                    let s = MultiInProcess::start(c, http_factory(Duration::from_secs(30))?)?;
                    let r = loads(s.addr, secs)?;
                    s.stop()?;
                    r
                }
                None => {
                    let mut c =
                        ServerConfig::new("127.0.0.1:0".parse().map_err(std::io::Error::other)?);
                    c.workers = loops;
                    c.reuseport = false;
                    c.loop_config.log_blocked = false;
                    let s = InProcess::start(c, http_factory(Duration::from_secs(30))?)?;
                    let r = loads(s.addr, secs)?;
                    s.stop()?;
                    r
                }
            };
            eprintln!("{name}: {ka:.0} req/s keep-alive, {churn:.0} req/s churn");
            t.rows.push(vec![
                name.into(),
                loops.into(),
                round(ka, 0).into(),
                round(p99, 0).into(),
                round(churn, 0).into(),
            ]);
        }
        t.notes = format!(
            "In-process servers, zyphos-load (one client thread) for {secs} s per cell: keep-alive = 64 connections, GET /plaintext; churn = HTTP/1.0, 16 connections, a new TCP connection per request. The load generator shares the 2 cores, so absolute numbers are the machine's ceiling with the client included; compare rows. With 2 cores, 2 loops cannot double 1 loop's throughput (the client needs CPU too); see scaling_efficiency_2_loops for the per-CPU-second view. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
