//! Exit check `time_wait_peak`: 60 s of churn at 1,000 connections per second against the echo
//! server with a connection table, where the *server* ends every connection (each client sends
//! one message, reads the echo and waits; the table's 100 ms inactivity timeout closes it).
//! Whoever closes first holds TIME-WAIT for 60 s, so a server that simply closed would end up
//! with ~60,000 TIME-WAIT sockets. The table keeps a TIME-WAIT budget (512): while its ledger
//! holds that many, idle connections are aborted with RST instead (nothing left in the kernel).
//! Measured: the peak number of TIME-WAIT sockets on the server's port, counted every 250 ms
//! from /proc/net/tcp (what `ss -tan state time-wait sport = :PORT` lists); threshold ≤ 1,000.
//! The detail also has a 5 s run of the same churn without the budget, for comparison: there
//! every connection leaves one TIME-WAIT socket (until a new SYN from a reused client port
//! recycles it: on loopback the client's 28,232 ephemeral ports come round within 30 s).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m02_tcp_state::KernelState;
use m02_tcp_state::kernel;
use m02_tcp_state::lab::{self, TrackedServer, echo_config};

const RATE: u64 = 1000;
const THREADS: u64 = 160;

struct Churn {
    done: u64,
    failed: u64,
    elapsed: Duration,
    peak_tw: u64,
    peak_ledger: u64,
    budget_aborts: u64,
    samples: Vec<(f64, u64, u64)>,
}

fn churn(budget: Option<u64>, secs: u64) -> std::io::Result<Churn> {
    let mut cfg = m02_tcp_state::TrackerConfig::default();
    cfg.table.inactivity_timeout = Some(Duration::from_millis(100));
    cfg.table.time_wait_budget = budget;
    cfg.table.capacity = 8192;
    let server = TrackedServer::start(echo_config(), cfg)?;
    let addr: SocketAddr = server.addr;
    let port = addr.port();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let total = RATE * secs;
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut peak_tw = 0;
    let mut peak_ledger = 0;
    std::thread::scope(|s| {
        for k in 0..THREADS {
            let (done, failed) = (&done, &failed);
            s.spawn(move || {
                let mut i = k;
                while i < total {
                    // Connection i starts at t0 + i ms.
                    let due = t0 + Duration::from_micros(i * 1_000_000 / RATE);
                    if let Some(d) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                    let r: std::io::Result<()> = (|| {
                        let mut c = m01_raw_sockets::lab::connect(addr, Duration::from_secs(5))?;
                        c.write_all(b"request: 32 bytes of anything...")?;
                        let mut b = [0u8; 32];
                        c.read_exact(&mut b)?;
                        // Wait for the server to end it (FIN, or RST past the budget).
                        let mut rest = [0u8; 64];
                        match c.read(&mut rest) {
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                            Err(e) => return Err(e),
                        }
                        Ok(())
                    })();
                    match r {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    i += THREADS;
                }
            });
        }
        // Sampler.
        while done.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < total
            && t0.elapsed() < Duration::from_secs(secs + 30)
        {
            std::thread::sleep(Duration::from_millis(250));
            let tw = kernel::proc_net_tcp()
                .map(|e| kernel::count_on_port(&e, port, KernelState::TimeWait))
                .unwrap_or(0);
            let ledger = server.with(|t| t.table().time_wait_count(Instant::now()));
            peak_tw = peak_tw.max(tw);
            peak_ledger = peak_ledger.max(ledger);
            samples.push((t0.elapsed().as_secs_f64(), tw, ledger));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = t0.elapsed();
    let budget_aborts = server.with(|t| t.table().stats(Instant::now()).budget_aborts);
    server.stop()?;
    Ok(Churn {
        done: done.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        peak_tw,
        peak_ledger,
        budget_aborts,
        samples,
    })
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let baseline = churn(None, 5)?;
        let main = churn(Some(512), 60)?;
        let at = |c: &Churn, t: f64| c.samples.iter().find(|s| s.0 >= t).map_or(0, |s| s.1);
        let detail = format!(
            "peak {} server-side TIME-WAIT sockets on the port (/proc/net/tcp every 250 ms) during {:.1} s of churn: \
             {} connections ended by the server ({} failed), {:.0} conn/s achieved (target {RATE}); \
             the table's ledger peaked at {} (budget 512), {} idle closes became RST aborts; \
             TIME-WAIT at 10 s / 30 s / 60 s: {} / {} / {}. Without the budget (5 s of the same churn): \
             {} TIME-WAIT after 5 s at {:.0} conn/s, one per connection (each lasts 60 s unless a new SYN \
             from a reused client port recycles it, which is also why the budgeted run's count decays). \
             net.ipv4.tcp_max_tw_buckets = {}",
            main.peak_tw,
            main.elapsed.as_secs_f64(),
            main.done,
            main.failed,
            (main.done + main.failed) as f64 / main.elapsed.as_secs_f64(),
            main.peak_ledger,
            main.budget_aborts,
            at(&main, 10.0),
            at(&main, 30.0),
            at(&main, 59.0),
            baseline.peak_tw,
            (baseline.done + baseline.failed) as f64 / baseline.elapsed.as_secs_f64(),
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_tw_buckets")
                .unwrap_or_default()
                .trim(),
        );
        let pass = main.peak_tw <= 1000 && main.failed * 100 <= main.done;
        lab::print_check_measured(pass, main.peak_tw as f64, "sockets", &detail);
        Ok(())
    })
}
