//! Exit check `file_cpu_reduction`: CPU time (user + system, `getrusage(RUSAGE_THREAD)` of the
//! sending thread) per GiB served, `sendfile` against `read` + `write` through a 64 KiB pooled
//! buffer, same run: 1 − CPU(sendfile) / CPU(read+write), in %.
//!
//! A 64 MiB file (in the page cache: read once before timing) is served 16 times per method
//! (1 GiB each) over a loopback TCP connection to a sink thread that reads and discards in
//! 256 KiB reads. The methods alternate (4 rounds of 4 sends each, read+write then sendfile,
//! summed), so drift on a shared machine hits both. The sink's CPU is the same for both methods and is not
//! counted: the figure is the server's cost.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use m07_buffers::lab::{self, print_measured};
use m07_buffers::serve::{FileMethod, send_file};
use m07_buffers::sys::rusage;
use m07_buffers::{BufferPool, PoolConfig};

const FILE_BYTES: u64 = 64 * 1024 * 1024;
const SENDS_PER_METHOD: usize = 16;
const ROUNDS: usize = 4;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let path = std::env::temp_dir().join(format!("m07-cpu-{}.bin", std::process::id()));
        let result = run(&path);
        let _ = std::fs::remove_file(&path);
        let (cpu_rw, cpu_sf, wall_rw, wall_sf) = result?;
        let gib = (FILE_BYTES * SENDS_PER_METHOD as u64) as f64 / (1u64 << 30) as f64;
        let (per_rw, per_sf) = (cpu_rw / gib, cpu_sf / gib);
        let reduction = (1.0 - per_sf / per_rw) * 100.0;
        eprintln!(
            "read+write {per_rw:.3} s CPU/GiB ({:.2} GiB/s), sendfile {per_sf:.3} s CPU/GiB ({:.2} GiB/s): -{reduction:.1}%",
            gib / wall_rw,
            gib / wall_sf
        );
        print_measured(
            lab::round(reduction, 1),
            "% (vs read+write, same run)",
            &format!(
                "sender-thread CPU (user+sys, RUSAGE_THREAD) per GiB: read+write (64 KiB pooled \
                 buffer) {per_rw:.3} s, sendfile {per_sf:.3} s; {gib:.0} GiB each (64 MiB file \
                 x {SENDS_PER_METHOD}, alternating in {ROUNDS} rounds) over loopback TCP to a \
                 discarding sink; throughput {:.2} vs {:.2} GiB/s; {}",
                gib / wall_rw,
                gib / wall_sf,
                lab::machine()
            ),
        );
        Ok(())
    })
}

fn run(path: &std::path::Path) -> io::Result<(f64, f64, f64, f64)> {
    {
        let mut f = std::fs::File::create(path)?;
        let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
        for _ in 0..FILE_BYTES / chunk.len() as u64 {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    // Warm the page cache.
    let mut sink_buf = vec![0u8; 1 << 20];
    let mut f = std::fs::File::open(path)?;
    while f.read(&mut sink_buf)? > 0 {}

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let mut sock = lab::connect(addr)?;
    sock.set_write_timeout(Some(Duration::from_secs(30)))?;
    let pool = BufferPool::new(PoolConfig::new(64 * 1024, 1))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut buf = pool.alloc().map_err(|e| io::Error::other(e.to_string()))?;
    let (mut cpu_rw, mut cpu_sf, mut wall_rw, mut wall_sf) = (0.0, 0.0, 0.0, 0.0);
    let per_round = SENDS_PER_METHOD / ROUNDS;
    for _ in 0..ROUNDS {
        for method in [FileMethod::ReadWrite, FileMethod::Sendfile] {
            let u0 = rusage(true)?;
            let t = Instant::now();
            for _ in 0..per_round {
                let sent = send_file(&mut sock, &mut f, FILE_BYTES, method, &mut buf)?;
                if sent != FILE_BYTES {
                    return Err(io::Error::other(format!("{method:?} sent {sent} bytes")));
                }
            }
            let wall = t.elapsed().as_secs_f64();
            let cpu = rusage(true)?.since(&u0).cpu().as_secs_f64();
            match method {
                FileMethod::Sendfile => {
                    cpu_sf += cpu;
                    wall_sf += wall;
                }
                _ => {
                    cpu_rw += cpu;
                    wall_rw += wall;
                }
            }
        }
    }
    drop(sock);
    let received = sink
        .join()
        .map_err(|_| io::Error::other("sink panicked"))??;
    let expected = FILE_BYTES * SENDS_PER_METHOD as u64 * 2;
    if received != expected {
        return Err(io::Error::other(format!(
            "sink received {received} bytes, expected {expected}"
        )));
    }
    Ok((cpu_rw, cpu_sf, wall_rw, wall_sf))
}
