//! Experiment: memory per idle keep-alive connection — RSS growth while N connections sit idle
//! after one request each (ThreadServer: a thread and its stack per connection), and the
//! session's own footprint.

use std::io::Write;
use std::time::Duration;

use m08_http11::client::read_response;
use m08_http11::lab::{LabServer, LabService, Table, connect, machine, quick, round, run_main};
use m08_http11::{Http11Config, Http11Session};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let mut t = Table::new(
            "Memory per idle keep-alive connection",
            &[
                "connections",
                "rss_before_kib",
                "rss_after_kib",
                "kib_per_conn",
                "session_struct_bytes",
            ],
        );
        let sizes: &[usize] = if quick() {
            &[100, 300]
        } else {
            &[500, 1000, 2000]
        };
        for &n in sizes {
            let server = LabServer::start(Http11Config::default())?;
            std::thread::sleep(Duration::from_millis(50));
            let before = rss_kib();
            let mut conns = Vec::new();
            let mut buf = Vec::new();
            for _ in 0..n {
                let mut s = connect(server.addr)?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")?;
                read_response(&mut s, &mut buf, false)?;
                conns.push(s);
            }
            std::thread::sleep(Duration::from_millis(200));
            let after = rss_kib();
            drop(conns);
            let _ = server.stop()?;
            t.rows.push(vec![
                n.into(),
                before.into(),
                after.into(),
                round((after as f64 - before as f64) / n as f64, 2).into(),
                std::mem::size_of::<Http11Session<LabService>>().into(),
            ]);
        }
        t.notes = format!(
            "Process RSS (server threads + client sockets' user side) before and after N idle connections; each costs a 128 KiB-stack thread (touched pages only), the session struct, its inbox/output buffers (kept allocated between requests) and the driver's read buffer. Kernel socket memory is not in RSS. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
