//! Exit check `keepalive_reuse_rate`: the standard keep-alive scenario — 16 virtual users, 200
//! requests each over m08's pooled client, think time 0–20 ms (seeded), mixed routes — against
//! ThreadServer + Http11Factory at shipped defaults. Measured: 1 − new connections / requests.

use std::time::Duration;

use m08_http11::client::Client;
use m08_http11::lab::{LabServer, print_measured, run_main};
use m08_http11::sweep::Rng;
use m08_http11::{Http11Config, PoolConfig};

const USERS: usize = 16;
const REQUESTS: usize = 200;

fn main() -> std::process::ExitCode {
    run_main(|| {
        let server = LabServer::start(Http11Config::default())?;
        let addr = server.addr;
        let handles: Vec<_> = (0..USERS)
            .map(|u| {
                std::thread::spawn(move || -> std::io::Result<(u64, u64, u64)> {
                    let mut rng = Rng::new(u as u64 + 1);
                    let mut client = Client::new(PoolConfig::default(), Duration::from_secs(10));
                    let paths = [
                        "/",
                        "/plaintext",
                        "/hello/x",
                        "/search?q=a",
                        "/chunked/2000/500",
                        "/bytes/4096",
                    ];
                    for i in 0..REQUESTS {
                        let p = paths[(rng.next_u64() % paths.len() as u64) as usize];
                        let r = client.get(addr, p)?;
                        if r.status != 200 {
                            return Err(std::io::Error::other(format!("{p}: status {}", r.status)));
                        }
                        let _ = i;
                        std::thread::sleep(Duration::from_micros(rng.next_u64() % 20_000));
                    }
                    let s = client.stats();
                    Ok((s.requests, s.connections, s.stale))
                })
            })
            .collect();
        let (mut requests, mut conns, mut stale) = (0, 0, 0);
        for h in handles {
            let (r, c, s) = h
                .join()
                .map_err(|_| std::io::Error::other("client panicked"))??;
            requests += r;
            conns += c;
            stale += s;
        }
        let server_reuse = server.stats.reuse_percent();
        let _ = server.stop()?;
        let reuse = 100.0 * (1.0 - conns as f64 / requests as f64);
        let detail = format!(
            "{requests} requests, {conns} new connections, {stale} stale reuses retried; {USERS} users x {REQUESTS} requests, think 0-20 ms, idle timeout {:?}; server-side reuse {:.2}%",
            Http11Config::default().idle_timeout,
            server_reuse
        );
        eprintln!("reuse {reuse:.2}%: {detail}");
        print_measured((reuse * 100.0).round() / 100.0, "%", &detail);
        Ok(())
    })
}
