//! Measurements shared by the experiments (`examples/*.rs`) and the exit checks.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{RunningServer, Table, connect, machine, pattern, quantile, quiet_config, round};
use crate::procfs;
use crate::session::EchoFactory;
use crate::threads::{DEFAULT_STACK_SIZE, ThreadConfig, ThreadMode};

/// A gate many parked threads wait on, released all at once.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Parks the caller until [`Gate::open`].
    pub fn wait(&self) {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Releases every waiter.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// Thread counts of the creation-cost table.
pub const CREATION_COUNTS: [usize; 5] = [1, 10, 100, 1_000, 10_000];
/// Repetitions per count.
pub const CREATION_REPS: usize = 5;

/// Spawn + join cost at 1…10,000 threads alive at once, [`CREATION_REPS`] repetitions each.
pub fn thread_creation_table(quick: bool) -> io::Result<Table> {
    let counts: &[usize] = if quick {
        &CREATION_COUNTS[..4]
    } else {
        &CREATION_COUNTS
    };
    let mut t = Table::new(
        "Thread creation cost: spawn + join with N threads alive at once",
        &[
            "threads",
            "reps",
            "spawn_p50_us",
            "spawn_p99_us",
            "join_p50_us",
            "join_p99_us",
            "spawn_join_p50_us",
            "spawn_join_p99_us",
            "batch_ms_p50",
            "threads_per_s",
        ],
    );
    for &n in counts {
        let mut spawn_us = Vec::with_capacity(n * CREATION_REPS);
        let mut join_us = Vec::with_capacity(n * CREATION_REPS);
        let mut both_us = Vec::with_capacity(n * CREATION_REPS);
        let mut batch_ms = Vec::new();
        for _ in 0..CREATION_REPS {
            let gate = Arc::new(Gate::default());
            let batch = Instant::now();
            let mut handles = Vec::with_capacity(n);
            let mut spawned = Vec::with_capacity(n);
            for i in 0..n {
                let g = Arc::clone(&gate);
                let t0 = Instant::now();
                let h = thread::Builder::new()
                    .name(format!("cost-{i}"))
                    .stack_size(DEFAULT_STACK_SIZE)
                    .spawn(move || g.wait())?;
                spawned.push(t0.elapsed().as_secs_f64() * 1e6);
                handles.push(h);
            }
            gate.open();
            for (h, s) in handles.into_iter().zip(spawned) {
                let t0 = Instant::now();
                let _ = h.join();
                let j = t0.elapsed().as_secs_f64() * 1e6;
                spawn_us.push(s);
                join_us.push(j);
                both_us.push(s + j);
            }
            batch_ms.push(batch.elapsed().as_secs_f64() * 1e3);
        }
        let b50 = quantile(&mut batch_ms, 0.5);
        t.rows.push(vec![
            json!(n),
            json!(CREATION_REPS),
            json!(round(quantile(&mut spawn_us, 0.5), 1)),
            json!(round(quantile(&mut spawn_us, 0.99), 1)),
            json!(round(quantile(&mut join_us, 0.5), 1)),
            json!(round(quantile(&mut join_us, 0.99), 1)),
            json!(round(quantile(&mut both_us, 0.5), 1)),
            json!(round(quantile(&mut both_us, 0.99), 1)),
            json!(round(b50, 2)),
            json!(round(n as f64 / (b50 / 1e3).max(1e-9), 0)),
        ]);
    }
    t.notes = format!(
        "Each rep spawns N threads ({} KiB stacks) that park on a condvar, releases them, then \
         joins each. spawn = time in Builder::spawn (clone + stack mmap + TLS setup); join = \
         time in join (waiting for exit + reaping). Percentiles over N x {CREATION_REPS} threads. \
         Machine: {}.",
        DEFAULT_STACK_SIZE / 1024,
        machine()
    );
    Ok(t)
}

/// Validates a creation-cost table; returns problems.
pub fn validate_creation_table(t: &Table, quick: bool) -> Vec<String> {
    let mut p = Vec::new();
    let counts: &[usize] = if quick {
        &CREATION_COUNTS[..4]
    } else {
        &CREATION_COUNTS
    };
    if t.rows.len() != counts.len() {
        p.push(format!("{} rows, expected {}", t.rows.len(), counts.len()));
    }
    for (row, &n) in t.rows.iter().zip(counts) {
        if row[0].as_u64() != Some(n as u64) {
            p.push(format!("row for {n} threads missing"));
        }
        if row[1].as_u64().unwrap_or(0) < 5 {
            p.push(format!("{n} threads: fewer than 5 repetitions"));
        }
        let f = |i: usize| row[i].as_f64().unwrap_or(-1.0);
        for (a, b) in [(2, 3), (4, 5), (6, 7)] {
            if f(a) <= 0.0 || f(a) > f(b) {
                p.push(format!(
                    "{n} threads: p50 {} / p99 {} not 0 < p50 <= p99",
                    f(a),
                    f(b)
                ));
            }
        }
    }
    if !t.notes.contains(&machine()) {
        p.push("notes lack the machine".into());
    }
    p
}

/// Upper bound of the thread ramp (RLIMIT_NOFILE is 20,000 here; memory and map count too).
pub const RAMP_BOUND: usize = 15_000;

/// Ramps parked threads up until creation fails, `bound` is reached or `time_limit` passes.
pub fn max_threads_table(quick: bool) -> io::Result<(Table, usize)> {
    let bound = if quick { 2_000 } else { RAMP_BOUND };
    let step = if quick { 500 } else { 2_500 };
    let time_limit = Duration::from_secs(if quick { 5 } else { 40 });
    let mut t = Table::new(
        "Maximum sustainable thread count: ramp of parked threads",
        &[
            "threads",
            "elapsed_ms",
            "spawn_p99_us_last_step",
            "rss_mib",
            "vm_data_mib",
            "stack_rss_mib",
            "stopped_by",
        ],
    );
    let gate = Arc::new(Gate::default());
    let mut handles = Vec::with_capacity(bound);
    let start = Instant::now();
    let mut step_us = Vec::with_capacity(step);
    let mut stopped = String::from("bound");
    while handles.len() < bound {
        if start.elapsed() > time_limit {
            stopped = format!("time limit {time_limit:?}");
            break;
        }
        let g = Arc::clone(&gate);
        let t0 = Instant::now();
        match thread::Builder::new()
            .stack_size(DEFAULT_STACK_SIZE)
            .spawn(move || g.wait())
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                stopped = format!("spawn failed: {e}");
                break;
            }
        }
        step_us.push(t0.elapsed().as_secs_f64() * 1e6);
        if handles.len() % step == 0 {
            let m = procfs::memory()?;
            t.rows.push(vec![
                json!(handles.len()),
                json!(round(start.elapsed().as_secs_f64() * 1e3, 1)),
                json!(round(quantile(&mut step_us, 0.99), 1)),
                json!(round(m.rss_kib as f64 / 1024.0, 1)),
                json!(round(m.vm_data_kib as f64 / 1024.0, 1)),
                json!(round(m.stack_rss_kib as f64 / 1024.0, 1)),
                json!(""),
            ]);
            step_us.clear();
        }
    }
    let reached = handles.len();
    let m = procfs::memory()?;
    t.rows.push(vec![
        json!(reached),
        json!(round(start.elapsed().as_secs_f64() * 1e3, 1)),
        json!(round(quantile(&mut step_us, 0.99), 1)),
        json!(round(m.rss_kib as f64 / 1024.0, 1)),
        json!(round(m.vm_data_kib as f64 / 1024.0, 1)),
        json!(round(m.stack_rss_kib as f64 / 1024.0, 1)),
        json!(stopped),
    ]);
    gate.open();
    for h in handles {
        let _ = h.join();
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    t.notes = format!(
        "Threads with {} KiB stacks parked on a condvar, spawned until failure, the bound \
         ({bound}) or the time limit. Reached {reached}. Kernel limits: threads-max {}, pid_max {}, \
         vm.max_map_count {} (2 mappings per thread: stack + guard); RLIMIT_NOFILE does not \
         limit threads, but a thread-per-connection server needs one descriptor per thread too \
         (20,000 here). Machine: {}.",
        DEFAULT_STACK_SIZE / 1024,
        read("/proc/sys/kernel/threads-max"),
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/vm/max_map_count"),
        machine()
    );
    Ok((t, reached))
}

/// Client counts of the throughput table.
pub const THROUGHPUT_CLIENTS: [usize; 5] = [1, 10, 100, 500, 1_000];

/// Sum of (voluntary, non-voluntary) context switches of the threads whose name starts with
/// `prefix`.
pub fn ctx_switches_of(prefix: &str) -> (u64, u64, usize) {
    let mut v = (0, 0, 0);
    for s in procfs::all_threads().unwrap_or_default() {
        if s.name.starts_with(prefix) {
            v.0 += s.voluntary_ctxt_switches;
            v.1 += s.nonvoluntary_ctxt_switches;
            v.2 += 1;
        }
    }
    v
}

/// One load run: `clients` persistent connections, rounds of one `size`-byte message each
/// (all written, then all read) for `duration`.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Round trips completed.
    pub requests: u64,
    /// Round trips per second.
    pub rps: f64,
    /// Per-round wall time, µs (p50, p99).
    pub round_us: (f64, f64),
    /// Server-thread context switches per request (voluntary, non-voluntary).
    pub ctx_per_req: (f64, f64),
    /// Server threads seen.
    pub server_threads: usize,
}

/// Runs echo load against a fresh server in `mode`.
pub fn echo_load(
    mode: ThreadMode,
    clients: usize,
    size: usize,
    duration: Duration,
) -> io::Result<LoadResult> {
    let mut config = quiet_config();
    config.mode = mode;
    config.sample_threads = false;
    let server = RunningServer::start(config, EchoFactory::default())?;
    let prefix = match mode {
        ThreadMode::PerConnection => "conn-",
        _ => "pool-",
    };
    let mut streams = (0..clients)
        .map(|_| connect(server.addr, Duration::from_secs(10)))
        .collect::<io::Result<Vec<_>>>()?;
    let msg = pattern(size, 3);
    let mut back = vec![0u8; size];
    // Warm-up round: every server thread exists and has run once.
    let mut round_trip = |streams: &mut Vec<TcpStream>| -> io::Result<()> {
        for s in streams.iter_mut() {
            s.write_all(&msg)?;
        }
        for s in streams.iter_mut() {
            s.read_exact(&mut back)?;
            if back != msg {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "echo differs"));
            }
        }
        Ok(())
    };
    round_trip(&mut streams)?;
    let before = ctx_switches_of(prefix);
    let mut rounds = Vec::new();
    let t = Instant::now();
    while t.elapsed() < duration || rounds.len() < 3 {
        let r = Instant::now();
        round_trip(&mut streams)?;
        rounds.push(r.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = t.elapsed().as_secs_f64();
    let after = ctx_switches_of(prefix);
    drop(streams);
    server.stop()?;
    let requests = (rounds.len() * clients) as u64;
    Ok(LoadResult {
        requests,
        rps: requests as f64 / elapsed,
        round_us: (quantile(&mut rounds, 0.5), quantile(&mut rounds, 0.99)),
        ctx_per_req: (
            after.0.saturating_sub(before.0) as f64 / requests as f64,
            after.1.saturating_sub(before.1) as f64 / requests as f64,
        ),
        server_threads: after.2,
    })
}

/// Echo round trips per second with 1…1,000 concurrent clients, one server thread each.
pub fn throughput_table(quick: bool) -> io::Result<Table> {
    super::raise_nofile()?;
    let clients: &[usize] = if quick {
        &THROUGHPUT_CLIENTS[..3]
    } else {
        &THROUGHPUT_CLIENTS
    };
    let duration = Duration::from_millis(if quick { 300 } else { 1500 });
    let mut t = Table::new(
        "Throughput vs thread count: echo round trips/s, one server thread per client",
        &[
            "clients",
            "server_threads",
            "round_trips_per_s",
            "round_p50_us",
            "round_p99_us",
            "ctx_voluntary_per_req",
            "ctx_nonvoluntary_per_req",
        ],
    );
    for &n in clients {
        let r = echo_load(ThreadMode::PerConnection, n, 64, duration)?;
        t.rows.push(vec![
            json!(n),
            json!(r.server_threads),
            json!(round(r.rps, 0)),
            json!(round(r.round_us.0, 1)),
            json!(round(r.round_us.1, 1)),
            json!(round(r.ctx_per_req.0, 3)),
            json!(round(r.ctx_per_req.1, 3)),
        ]);
    }
    t.notes = format!(
        "One client thread keeps N connections; each round writes a 64-byte message on every \
         connection, then reads every echo back ({duration:?} per row). The server runs one \
         thread per connection; context switches are summed over its conn-* threads from \
         /proc/self/task/TID/status. With 2 cores, more threads add no parallelism: each round \
         wakes N threads, each blocks again (about one voluntary switch per request). \
         Machine: {}.",
        machine()
    );
    Ok(t)
}

/// Validates the throughput table.
pub fn validate_throughput_table(t: &Table, quick: bool) -> Vec<String> {
    let clients: &[usize] = if quick {
        &THROUGHPUT_CLIENTS[..3]
    } else {
        &THROUGHPUT_CLIENTS
    };
    let mut p = Vec::new();
    if t.rows.len() != clients.len() {
        p.push(format!("{} rows, expected {}", t.rows.len(), clients.len()));
    }
    for (row, &n) in t.rows.iter().zip(clients) {
        if row[0].as_u64() != Some(n as u64) {
            p.push(format!("row for {n} clients missing"));
        }
        if row[1].as_u64() != Some(n as u64) {
            p.push(format!("{n} clients: {} server threads", row[1]));
        }
        if row[2].as_f64().is_none_or(|v| v <= 0.0) {
            p.push(format!("{n} clients: no throughput"));
        }
    }
    if !t.notes.contains(&machine()) {
        p.push("notes lack the machine".into());
    }
    p
}

/// Checks that the write-up mentions every name in `needles`.
pub fn doc_mentions(needles: &[&str]) -> Vec<String> {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/milestones/03-thread-per-conn.md");
    match std::fs::read_to_string(&doc) {
        Ok(text) => needles
            .iter()
            .filter(|n| !text.contains(**n))
            .map(|n| format!("docs/milestones/03-thread-per-conn.md does not describe {n}"))
            .collect(),
        Err(e) => vec![format!(
            "cannot read docs/milestones/03-thread-per-conn.md: {e}"
        )],
    }
}

/// Connection churn: `conns` short connections (connect, one echo, close) from `parallel`
/// client threads; returns connections/s and per-connection latency (p50, p99) in µs.
pub fn churn(
    addr: SocketAddr,
    conns: usize,
    parallel: usize,
) -> io::Result<(f64, f64, f64, usize)> {
    let per = conns.div_ceil(parallel.max(1));
    let errors = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let handles: Vec<_> = (0..parallel)
        .map(|_| {
            let errors = Arc::clone(&errors);
            thread::spawn(move || {
                let mut lat = Vec::with_capacity(per);
                let msg = pattern(32, 9);
                let mut back = [0u8; 32];
                for _ in 0..per {
                    let t0 = Instant::now();
                    let ok = (|| -> io::Result<()> {
                        let mut s = connect(addr, Duration::from_secs(5))?;
                        s.write_all(&msg)?;
                        s.read_exact(&mut back)?;
                        s.shutdown(std::net::Shutdown::Write)?;
                        let mut sink = [0u8; 8];
                        while s.read(&mut sink)? > 0 {}
                        Ok(())
                    })();
                    if ok.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap_or_default());
    }
    let secs = t.elapsed().as_secs_f64();
    let n = all.len();
    Ok((
        n as f64 / secs,
        quantile(&mut all, 0.5),
        quantile(&mut all, 0.99),
        errors.load(Ordering::Relaxed) as usize,
    ))
}

/// Runs a server with `config` and measures [`churn`].
pub fn churn_with(
    config: ThreadConfig,
    conns: usize,
    parallel: usize,
) -> io::Result<(f64, f64, f64, usize)> {
    let server = RunningServer::start(config, EchoFactory::default())?;
    let r = churn(server.addr, conns, parallel);
    server.stop()?;
    r
}

/// Thundering-herd modes.
pub const HERD_MODES: [&str; 5] = [
    "blocking_accept",
    "poll_shared",
    "epoll_shared",
    "epoll_exclusive",
    "single_acceptor",
];

/// N threads wait for connections on one listener in `mode`; `conns` connections arrive one
/// at a time. Returns (wakeups, accepts, failed accepts).
pub fn herd(mode: &str, threads: usize, conns: usize) -> io::Result<(u64, u64, u64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let blocking = mode == "blocking_accept";
    listener.set_nonblocking(!blocking)?;
    let listener = Arc::new(listener);
    let stop = Arc::new(AtomicBool::new(false));
    let wakeups = Arc::new(AtomicU64::new(0));
    let accepts = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let n = if mode == "single_acceptor" {
        1
    } else {
        threads
    };
    let ready = Arc::new(Barrier::new(n + 1));
    let mut handles = Vec::new();
    for _ in 0..n {
        let (l, stop, w, a, f, ready) = (
            Arc::clone(&listener),
            Arc::clone(&stop),
            Arc::clone(&wakeups),
            Arc::clone(&accepts),
            Arc::clone(&failed),
            Arc::clone(&ready),
        );
        let mode = mode.to_owned();
        handles.push(thread::spawn(move || -> io::Result<()> {
            use m01_raw_sockets::sys;
            let epoll = if mode.starts_with("epoll") {
                let e = crate::sys::Epoll::new()?;
                e.add_readable(l.as_fd(), mode == "epoll_exclusive")?;
                Some(e)
            } else {
                None
            };
            if blocking {
                sys::set_read_timeout(l.as_fd(), Some(Duration::from_millis(50)))?;
            }
            ready.wait();
            while !stop.load(Ordering::Relaxed) {
                if blocking {
                    // accept(2) on a blocking socket: the kernel queues waiters exclusively
                    // and wakes one per connection.
                    match sys::accept4(l.as_fd(), false) {
                        Ok(_) => {
                            w.fetch_add(1, Ordering::Relaxed);
                            a.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => continue, // SO_RCVTIMEO tick: not a wake-up by a connection
                    }
                    continue;
                }
                let ready_n = if let Some(e) = &epoll {
                    e.wait(Duration::from_millis(50))?
                } else {
                    let mut fds = [sys::PollFd::new(l.as_fd(), sys::POLLIN)];
                    sys::poll(&mut fds, Some(Duration::from_millis(50)))?
                };
                if ready_n == 0 {
                    continue;
                }
                w.fetch_add(1, Ordering::Relaxed);
                match sys::accept4(l.as_fd(), true) {
                    Ok(_) => {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(())
        }));
    }
    ready.wait();
    thread::sleep(Duration::from_millis(20));
    for i in 0..conns {
        let s = TcpStream::connect(addr)?;
        let target = i as u64 + 1;
        let t = Instant::now();
        while accepts.load(Ordering::Relaxed) < target && t.elapsed() < Duration::from_secs(2) {
            thread::yield_now();
        }
        // Let every woken thread finish its attempt before the next connection.
        thread::sleep(Duration::from_millis(2));
        drop(s);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    Ok((
        wakeups.load(Ordering::Relaxed),
        accepts.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    ))
}
