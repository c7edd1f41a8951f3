//! Exit check `shutdown_unjoined_threads`: 1,000 live connections, one thread each, all blocked
//! in `recv`; graceful shutdown with a 1 s grace period. Measures the OS threads left over when
//! `run` returns: `/proc/self/task` entries minus the baseline taken before the server existed
//! (the client thread is joined first). Prints `{"measured": N, "unit": "threads", …}`.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::lab::{self, open_clients, read_to_close};
use m03_thread_per_conn::{EchoFactory, ThreadServer, procfs};

const CONNECTIONS: usize = 1000;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        lab::raise_nofile()?;
        let baseline = procfs::task_count()?;
        let mut config = lab::quiet_config();
        config.shutdown_grace = Duration::from_secs(1);
        let server = ThreadServer::bind(config)?;
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let stats = server.stats();
        let (tx, rx) = mpsc::channel();
        let clients = thread::Builder::new()
            .name("clients".into())
            .spawn(move || {
                let (mut streams, errors) =
                    open_clients(addr, CONNECTIONS, Duration::from_secs(10));
                let live = stats.snapshot().threads_live;
                let t = Instant::now();
                stop.shutdown();
                // Every client sees the server's FIN.
                let eofs = streams
                    .iter_mut()
                    .filter_map(|s| read_to_close(s, Duration::from_secs(5)).1.then_some(()))
                    .count();
                let _ = tx.send((streams.len(), errors, live, eofs, t));
            })?;
        let report = server.run(Arc::new(EchoFactory::default()))?;
        let returned = Instant::now();
        let _ = clients.join();
        let (held, errors, live, eofs, t) = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| std::io::Error::other("client thread did not report"))?;
        let leftover = procfs::task_count()?.saturating_sub(baseline);
        lab::print_measured(
            leftover as f64,
            "threads",
            &format!(
                "{held} connections ({errors} errors), {live} connection threads alive at \
                 shutdown; run returned {:.1} ms after the request; joined {} of {} spawned; \
                 forced {}; unjoined {}; clients that saw FIN {eofs}; tasks: baseline {baseline}, \
                 after {}",
                returned.duration_since(t).as_secs_f64() * 1e3,
                report.stats.joined,
                report.stats.spawned,
                report.forced,
                report.unjoined,
                baseline + leftover
            ),
        );
        Ok(())
    })
}
