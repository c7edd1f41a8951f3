//! Experiment: server CPU per request (getrusage-style: utime + stime of the server process)
//! at a fixed offered load, as active and idle connections vary. An idle connection costs the
//! loop nothing per iteration (the kernel only reports ready sockets); more active connections
//! at the same total rate cost a little (smaller batches per socket).
//!
//! This example's `--server` mode in a child process (one loop, m08 HTTP/1.1, idle timeout
//! 300 s); idle connections held by holder processes; zyphos-load -r 10000 open loop.
//! `--quick`: 2 s per row and up to 1,000 idle (full: 6 s, up to 9,900 idle).

#[path = "support/mod.rs"]
mod support;

use m08_http11::lab::{Table, machine, quick, run_main};
use support::{Holders, Run, r, summary};

fn main() -> std::process::ExitCode {
    if support::maybe_server() || support::maybe_holder() {
        return std::process::ExitCode::SUCCESS;
    }
    run_main(|| {
        let (secs, idles): (&str, &[usize]) = if quick() {
            ("1", &[0, 1000])
        } else {
            ("6", &[0, 4900, 9900])
        };
        let mut t = Table::new(
            "Server CPU per request vs active and idle connections (10,000 req/s offered)",
            &[
                "active",
                "idle",
                "rps",
                "p99 us",
                "CPU us/req",
                "loop iterations/s",
                "events/req",
            ],
        );
        let server = support::spawn_server(&[])?;
        let mut holders: Vec<Holders> = Vec::new();
        let mut held = 0usize;
        for &idle in idles {
            if idle > held {
                let h = Holders::open(server.addr, idle - held, 2)?;
                held += h.ready;
                holders.push(h);
            }
            for active in ["100", "1000"] {
                let run = Run::plaintext(
                    &server,
                    &[
                        "-c",
                        active,
                        "-r",
                        "10000",
                        "-d",
                        secs,
                        "--source-ips",
                        "127.0.0.10-127.0.0.11",
                    ],
                )?;
                let (rps, _, p99, _, _) = summary(&run.report);
                eprintln!(
                    "{active} active + {held} idle: {:.2} us/req",
                    run.cpu_s / run.requests() * 1e6
                );
                t.rows.push(vec![
                    active.parse::<u64>().unwrap_or(0).into(),
                    held.into(),
                    r(rps, 0),
                    r(p99, 0),
                    r(run.cpu_s / run.requests() * 1e6, 2),
                    r(
                        run.delta("iterations") / secs.parse::<f64>().unwrap_or(1.0),
                        0,
                    ),
                    r(run.per_request("events"), 3),
                ]);
            }
        }
        for h in holders {
            h.release();
        }
        server.stop()?;
        t.notes = format!(
            "Same server process throughout; CPU = server utime+stime (/proc/PID/stat, 10 ms ticks) over each {secs} s run / requests answered. Idle connections each answered one GET /plaintext and then stay silent. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
