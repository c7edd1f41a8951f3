//! Experiment `syscall_latency_distribution`: the log2 latency histogram of the server's
//! syscalls under load (100 clients, 64-byte echoes), one column per syscall.

use std::time::Duration;

use m01_raw_sockets::accounting::{self, BUCKETS, SyscallKind, bucket_upper_ns, fmt_ns};
use m01_raw_sockets::lab::{self, Table, ThreadServer, wait_until};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let rounds = if lab::quick() { 100 } else { 1000 };
        let server = ThreadServer::start(lab::test_config()).map_err(std::io::Error::other)?;
        let before = accounting::snapshot();
        let stats = lab::drive(server.addr, 100, rounds, 64)?;
        wait_until(Duration::from_secs(5), || {
            server.counters.snapshot().active == 0
        });
        let d = accounting::snapshot().since(&before);
        server.stop()?;
        let kinds = [
            SyscallKind::Accept4,
            SyscallKind::Recvfrom,
            SyscallKind::Sendto,
            SyscallKind::Poll,
            SyscallKind::Close,
        ];
        let mut cols = vec!["latency bucket"];
        cols.extend(kinds.iter().map(|k| k.name()));
        let mut t = Table::new(
            "Syscall latency distribution (log2 buckets, 100 clients × 64 B echoes)",
            &cols,
        );
        let used: Vec<usize> = (0..BUCKETS)
            .filter(|&i| kinds.iter().any(|k| d.get(*k).buckets[i] > 0))
            .collect();
        for i in used {
            let lo = if i == 0 { 0 } else { 1u64 << i };
            let mut row: Vec<serde_json::Value> =
                vec![format!("{}–{}", fmt_ns(lo), fmt_ns(bucket_upper_ns(i))).into()];
            row.extend(
                kinds
                    .iter()
                    .map(|k| serde_json::Value::from(d.get(*k).buckets[i])),
            );
            t.rows.push(row);
        }
        let mut summary = Vec::new();
        for k in kinds {
            let r = d.get(k);
            summary.push(format!(
                "{k}: {} calls, p50 {}, p99 {}, max {}",
                r.count,
                fmt_ns(r.quantile_ns(0.5)),
                fmt_ns(r.quantile_ns(0.99)),
                fmt_ns(r.max_ns)
            ));
        }
        t.notes = format!(
            "{} messages in {:.2} s. Each cell counts calls whose latency fell in the bucket. {}. \
             recvfrom/sendto of 64 bytes cost about a microsecond; poll's long tail is sleeping \
             until a client acts. Machine: {}.",
            stats.messages,
            stats.elapsed.as_secs_f64(),
            summary.join("; "),
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
