//! Experiment: the three I/O models of the lab side by side: a thread per connection (m03),
//! a thread pool (m06) and one epoll loop (m09), at 100, 1,000 and 10,000 busy keep-alive
//! connections: throughput, p99, resident memory, CPU and threads.
//!
//! Each server is `zyphos serve --io threads|pool|epoll --proto http1.1` (release build) in a
//! child process; load is `zyphos-load -c N` closed loop on `GET /plaintext` from
//! 127.0.0.10-13. RLIMIT_NOFILE is 20,000 per process, so 10,000 connections fit in each of
//! server and client. `--quick`: 100 connections, 1 s (full: 5 s per run).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use m08_http11::lab::{Table, machine, quick, run_main};
use m09_event_loop::lab::{ServerChild, proc_status_kib};
use support::{r, summary};

fn main() -> std::process::ExitCode {
    run_main(|| {
        m09_event_loop::lab::raise_nofile()?;
        let (secs, counts): (&str, &[&str]) = if quick() {
            ("1", &["100"])
        } else {
            ("5", &["100", "1000", "10000"])
        };
        let mut t = Table::new(
            "Thread per connection (m03) vs thread pool (m06) vs epoll loop (m09)",
            &[
                "model",
                "connections",
                "rps",
                "p99 us",
                "errors",
                "server threads",
                "server peak RSS KiB",
                "server CPU s",
                "CPU us/req",
            ],
        );
        let models: [(&str, &[&str]); 3] = [
            ("threads (m03)", &["--io", "threads"]),
            ("pool (m06)", &["--io", "pool", "--workers", "8"]),
            ("epoll (m09, 1 loop)", &["--io", "epoll", "--workers", "1"]),
        ];
        for c in counts {
            for (name, flags) in models {
                let mut args = flags.to_vec();
                args.extend(["--proto", "http1.1"]);
                let server = ServerChild::spawn(&args)?;
                let cpu0 = server.cpu_s()?;
                let peak_threads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let (pid, pt) = (server.pid(), peak_threads.clone());
                let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let d2 = done.clone();
                let sampler = std::thread::spawn(move || {
                    while !d2.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Ok(n) = std::fs::read_dir(format!("/proc/{pid}/task")) {
                            pt.fetch_max(n.count(), std::sync::atomic::Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
                let report = support::load_http(
                    server.addr,
                    "/plaintext",
                    &[
                        "-c",
                        c,
                        "-d",
                        secs,
                        "--source-ips",
                        "127.0.0.10-127.0.0.13",
                        "--timeout",
                        "10",
                    ],
                );
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = sampler.join();
                let cpu = server.cpu_s()? - cpu0;
                let rss = proc_status_kib(server.pid(), "VmHWM:");
                server.stop()?;
                let threads = peak_threads.load(std::sync::atomic::Ordering::Relaxed);
                match report {
                    Ok(rep) => {
                        let (rps, _, p99, _, errors) = summary(&rep);
                        let reqs = m09_event_loop::lab::num(&rep, &["requests"]).max(1.0);
                        eprintln!("{name} at {c}: {rps:.0} rps");
                        t.rows.push(vec![
                            name.into(),
                            c.parse::<u64>().unwrap_or(0).into(),
                            r(rps, 0),
                            r(p99, 0),
                            r(errors, 0),
                            threads.into(),
                            rss.into(),
                            r(cpu, 2),
                            r(cpu / reqs * 1e6, 2),
                        ]);
                    }
                    Err(e) => {
                        eprintln!("{name} at {c}: load failed: {e}");
                        t.rows.push(vec![
                            name.into(),
                            c.parse::<u64>().unwrap_or(0).into(),
                            format!("load failed: {e}").into(),
                            "".into(),
                            "".into(),
                            threads.into(),
                            rss.into(),
                            r(cpu, 2),
                            "".into(),
                        ]);
                    }
                }
            }
        }
        t.notes = format!(
            "zyphos serve --io MODEL --proto http1.1 (pool with 8 workers, epoll with 1 loop), zyphos-load -c N closed loop keep-alive GET /plaintext for {secs} s from 127.0.0.10-13. Server threads = most seen in /proc/PID/task (sampled every 100 ms); peak RSS = VmHWM; CPU = utime+stime during the run. A pool worker is held by a keep-alive connection for its whole life, so the pool serves at most its worker count at once: its rps and p99 come from those 8 connections, while requests on the queued ones never complete within the run and are not in the percentiles (nor errors, before --timeout 10 s); at 10,000 its queue is full and connections are refused (errors); threads cost a stack and a scheduler entry per connection; the loop costs a slot. On a shared machine the scheduler shares CPU per thread: one loop thread competes as one thread against the pool's 8 and the load generator, so compare CPU us/req (work per request) as well as rps. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
