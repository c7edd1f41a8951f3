//! Experiment `file_serving`: serving one file over loopback TCP by `read`+`write` through a
//! 4 KiB or a 64 KiB pooled buffer, by `sendfile`, or by `splice` (file → pipe → socket). Per
//! method: sender-thread CPU (user, system; `RUSAGE_THREAD`) per GiB, wall-clock throughput.

use std::io::{self, Read};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use m07_buffers::lab::{self, Table};
use m07_buffers::serve::{FileMethod, send_file};
use m07_buffers::sys::rusage;
use m07_buffers::{BufferPool, PoolConfig};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let file_bytes: u64 = if quick { 8 << 20 } else { 64 << 20 };
        let sends = if quick { 4 } else { 8 };
        let path = std::env::temp_dir().join(format!("m07-serve-{}.bin", std::process::id()));
        let r = run(&path, file_bytes, sends);
        let _ = std::fs::remove_file(&path);
        r
    })
}

fn run(path: &std::path::Path, file_bytes: u64, sends: usize) -> io::Result<()> {
    std::fs::write(path, vec![0x5Au8; file_bytes as usize])?;
    let mut file = std::fs::File::open(path)?;
    let mut warm = vec![0u8; 1 << 20];
    while file.read(&mut warm)? > 0 {}
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut sock = lab::connect(addr)?;
    sock.set_write_timeout(Some(Duration::from_secs(30)))?;
    let pool = BufferPool::new(PoolConfig::new(64 * 1024, 1))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut buf = pool.alloc().map_err(|e| io::Error::other(e.to_string()))?;
    let mut t = Table::new(
        "File serving: read+write vs sendfile vs splice (sender-thread CPU per GiB)",
        &[
            "method",
            "user s/GiB",
            "sys s/GiB",
            "CPU s/GiB",
            "GiB/s",
            "CPU vs read+write 64 KiB",
        ],
    );
    let gib = (file_bytes * sends as u64) as f64 / (1u64 << 30) as f64;
    let mut base = 0.0;
    for (name, method, chunk) in [
        ("read+write, 4 KiB buffer", FileMethod::ReadWrite, 4096usize),
        ("read+write, 64 KiB buffer", FileMethod::ReadWrite, 65536),
        ("sendfile", FileMethod::Sendfile, 0),
        ("splice via 1 MiB pipe", FileMethod::Splice, 0),
    ] {
        let u0 = rusage(true)?;
        let tm = Instant::now();
        for _ in 0..sends {
            let b = if chunk == 0 {
                &mut buf[..1]
            } else {
                &mut buf[..chunk]
            };
            let sent = send_file(&mut sock, &mut file, file_bytes, method, b)?;
            if sent != file_bytes {
                return Err(io::Error::other("short send"));
            }
        }
        let wall = tm.elapsed().as_secs_f64();
        let u = rusage(true)?.since(&u0);
        let cpu = u.cpu().as_secs_f64() / gib;
        if chunk == 65536 {
            base = cpu;
        }
        eprintln!("{name}: {cpu:.3} s CPU/GiB, {:.2} GiB/s", gib / wall);
        t.rows.push(vec![
            name.into(),
            lab::round(u.user.as_secs_f64() / gib, 3).into(),
            lab::round(u.system.as_secs_f64() / gib, 3).into(),
            lab::round(cpu, 3).into(),
            lab::round(gib / wall, 2).into(),
            if base > 0.0 {
                format!("{:+.0}%", (cpu / base - 1.0) * 100.0).into()
            } else {
                "-".into()
            },
        ]);
    }
    drop(sock);
    let got = sink
        .join()
        .map_err(|_| io::Error::other("sink panicked"))??;
    if got != file_bytes * sends as u64 * 4 {
        return Err(io::Error::other(format!("sink got {got} bytes")));
    }
    t.notes = format!(
        "{} MiB file (page cache warm) sent {sends} times per method to a loopback TCP sink \
         that discards. read+write copies every byte twice through user space (page cache -> \
         buffer -> socket) and makes a syscall pair per buffer; sendfile hands the page-cache \
         pages to the socket, no user-space copy; splice does the same in two steps (file -> \
         pipe -> socket, page references only), the general primitive sendfile is built on. The sink's CPU (the receive copy) is not in \
         these figures. {}",
        file_bytes >> 20,
        lab::machine()
    );
    t.print();
    Ok(())
}
