//! Experiment `syscalls_per_lifecycle`: the server's syscalls for K sequential connection
//! lifecycles (connect, one 64-byte echo, close), from the built-in accounting table: calls per
//! lifecycle, errors by errno, latency p50/p99/max.

use std::io::Read;
use std::time::Duration;

use m01_raw_sockets::accounting::{self, ErrnoClass, fmt_ns};
use m01_raw_sockets::lab::{self, Table, ThreadServer, echo_round_trip, round, wait_until};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let k: u64 = if lab::quick() { 100 } else { 1000 };
        let server = ThreadServer::start(lab::test_config()).map_err(std::io::Error::other)?;
        let before = accounting::snapshot();
        for i in 0..k {
            let mut c = lab::connect(server.addr, Duration::from_secs(5))?;
            echo_round_trip(&mut c, &lab::pattern(64, i as u8))?;
            c.shutdown(std::net::Shutdown::Write)?;
            let mut rest = Vec::new();
            c.read_to_end(&mut rest)?;
        }
        wait_until(Duration::from_secs(5), || {
            server.counters.snapshot().closed == k
        });
        let d = accounting::snapshot().since(&before);
        server.stop()?;
        let mut t = Table::new(
            "Syscalls per connection lifecycle (server side, poll mode)",
            &[
                "syscall",
                "calls",
                "per lifecycle",
                "failed",
                "errno",
                "p50",
                "p99",
                "max",
            ],
        );
        for r in d.called() {
            let errs: Vec<String> = ErrnoClass::ALL
                .iter()
                .filter(|c| r.errors_of(**c) > 0)
                .map(|c| format!("{} {}", c.label(), r.errors_of(*c)))
                .collect();
            t.rows.push(vec![
                r.kind.name().into(),
                r.count.into(),
                round(r.count as f64 / k as f64, 2).into(),
                r.error_total().into(),
                errs.join(", ").into(),
                fmt_ns(r.quantile_ns(0.5)).into(),
                fmt_ns(r.quantile_ns(0.99)).into(),
                fmt_ns(r.max_ns).into(),
            ]);
        }
        t.notes = format!(
            "{k} sequential lifecycles against an in-process echo server; clients use std's TcpStream \
             (not accounted), so the table is the server's calls only. Per lifecycle: accept4 twice \
             (the connection, then EAGAIN ends the accept loop), setsockopt(TCP_NODELAY), 3 \
             getsockopt (TCP_NODELAY, SO_SNDBUF, SO_RCVBUF read back), recvfrom twice (data, then 0 = \
             EOF), sendto once, close once, and about 3 poll wake-ups (connection, data, FIN). \
             Latencies are log2-bucket upper bounds; poll's time is sleeping, not work. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
