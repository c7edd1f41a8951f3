//! Experiment `kernel_buffer_utilisation`: a client writes without reading until it blocks;
//! where are the bytes? Client send queue, server receive queue, the server's own buffer, the
//! server's send queue, the client's receive queue: SO_SNDBUF/SO_RCVBUF and SIOCINQ/SIOCOUTQ.

use std::os::fd::AsFd;
use std::time::Duration;

use m01_raw_sockets::lab::{self, Table, ThreadServer, wait_until};
use m01_raw_sockets::sys;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut t = Table::new(
            "Kernel buffer sizes and utilisation (client writes, never reads)",
            &[
                "server SO_SNDBUF asked",
                "server SO_SNDBUF / SO_RCVBUF",
                "client SO_SNDBUF / SO_RCVBUF",
                "client wrote before EAGAIN",
                "client send queue (SIOCOUTQ)",
                "server receive queue at pause (SIOCINQ)",
                "server echo buffer (user space)",
                "server send queue at pause (SIOCOUTQ)",
                "client receive queue (SIOCINQ)",
            ],
        );
        for sndbuf in [None, Some(4096usize), Some(65536)] {
            let mut config = lab::test_config();
            config.send_buffer = sndbuf;
            let server = ThreadServer::start(config.clone()).map_err(std::io::Error::other)?;
            let client = sys::connect_timeout(&server.addr, Duration::from_secs(5))?;
            sys::set_nonblocking(client.as_fd(), true)?;
            let chunk = vec![0x77u8; 64 * 1024];
            let mut wrote = 0usize;
            // Write until EAGAIN, letting the pipeline settle between attempts.
            let mut idle_rounds = 0;
            while idle_rounds < 20 {
                match sys::send(client.as_fd(), &chunk, sys::MSG_NOSIGNAL) {
                    Ok(n) => {
                        wrote += n;
                        idle_rounds = 0;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        idle_rounds += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e),
                }
            }
            wait_until(Duration::from_secs(5), || {
                server.counters.snapshot().read_pauses >= 1
            });
            let c_outq = sys::outq(client.as_fd())?;
            let c_inq = sys::inq(client.as_fd())?;
            let c_snd = sys::send_buffer_size(client.as_fd())?;
            let c_rcv = sys::recv_buffer_size(client.as_fd())?;
            sys::set_linger(client.as_fd(), Some(Duration::ZERO))?;
            sys::close(client)?;
            wait_until(Duration::from_secs(5), || {
                server.counters.snapshot().closed == 1
            });
            let report = server.stop()?;
            let rec = report
                .connections
                .first()
                .ok_or_else(|| std::io::Error::other("no connection record"))?;
            t.rows.push(vec![
                sndbuf
                    .map_or("default".to_owned(), |b| b.to_string())
                    .into(),
                format!("{} / {}", rec.sndbuf, rec.rcvbuf).into(),
                format!("{c_snd} / {c_rcv}").into(),
                wrote.into(),
                c_outq.into(),
                rec.max_inq.into(),
                config.buffer_size.into(),
                rec.max_outq.into(),
                c_inq.into(),
            ]);
        }
        t.notes = format!(
            "In-process echo server (16 KiB echo buffer per connection), one client that writes \
             64 KiB chunks non-blocking until EAGAIN persists and never reads. The bytes stop in a \
             chain of queues: the client's receive queue fills with echoes (its window closes), the \
             server's send queue fills (send returns EAGAIN / partial), the server's echo buffer \
             fills and it stops asking for POLLIN (backpressure), the server's receive queue fills \
             (window closes), and finally the client's send queue, where the client's send blocks. \
             SO_SNDBUF/SO_RCVBUF as read back (the kernel doubles what is asked; unset sizes \
             autotune within net.ipv4.tcp_wmem/tcp_rmem). Server queues are sampled with \
             SIOCINQ/SIOCOUTQ at the moment reading paused. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
