//! Experiment: connection reuse savings — the same GETs with a new connection per request vs
//! one pooled keep-alive connection. `--quick`: fewer requests.

use std::time::{Duration, Instant};

use m08_http11::client::Client;
use m08_http11::lab::{LabServer, Table, machine, quick, round, run_main};
use m08_http11::{Http11Config, PoolConfig};

fn main() -> std::process::ExitCode {
    run_main(|| {
        let n = if quick() { 300 } else { 3000 };
        let server = LabServer::start(Http11Config::default())?;
        let mut t = Table::new(
            "Connection reuse: new connection per request vs keep-alive",
            &[
                "mode",
                "requests",
                "connections",
                "total_ms",
                "mean_us",
                "p50_us",
                "p99_us",
                "req_per_s",
            ],
        );
        for reuse in [false, true] {
            let mut c = Client::new(PoolConfig::default(), Duration::from_secs(5));
            c.reuse = reuse;
            let mut lat = Vec::with_capacity(n);
            let start = Instant::now();
            for _ in 0..n {
                let t0 = Instant::now();
                let r = c.get(server.addr, "/plaintext")?;
                if r.status != 200 {
                    return Err(std::io::Error::other("bad status"));
                }
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            let total = start.elapsed();
            let mean = lat.iter().sum::<f64>() / n as f64;
            lat.sort_by(f64::total_cmp);
            t.rows.push(vec![
                if reuse {
                    "keep-alive (pooled)"
                } else {
                    "new connection each"
                }
                .into(),
                n.into(),
                c.stats().connections.into(),
                round(total.as_secs_f64() * 1e3, 1).into(),
                round(mean, 1).into(),
                round(lat[n / 2], 1).into(),
                round(lat[n * 99 / 100], 1).into(),
                round(n as f64 / total.as_secs_f64(), 0).into(),
            ]);
        }
        let _ = server.stop()?;
        t.notes = format!(
            "Sequential GET /plaintext over loopback, m08 client, ThreadServer + Http11Factory (a new connection also costs a server thread spawn). {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
