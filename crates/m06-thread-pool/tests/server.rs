//! `PoolServer`: milestone 3's accept loop and session driver on the pool, over real sockets.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{EchoFactory, Session, SessionFactory};
use m06_thread_pool::{PoolServer, PoolServerConfig, QueueDesign};

fn config(workers: usize, queue: usize) -> PoolServerConfig {
    let mut c = PoolServerConfig::new("127.0.0.1:0".parse().expect("address"));
    c.pool.workers = workers;
    c.pool.queue_capacity = queue;
    c.pool.design = QueueDesign::WorkStealing;
    c.server.shutdown_grace = Duration::from_secs(2);
    c
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn echo_once(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).expect("sends");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("echo comes back");
    back
}

#[test]
fn test_pool_server_serves_more_connections_than_workers_in_turn() {
    let server = PoolServer::bind(config(2, 64)).expect("binds");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let stats = server.stats();
    let pool_stats = server.pool_stats();
    let runner = thread::spawn(move || server.run(Arc::new(EchoFactory::default())));
    for i in 0..20u8 {
        let mut s = connect(addr);
        assert_eq!(echo_once(&mut s, &[i; 100]), vec![i; 100]);
    }
    stop.shutdown();
    let report = runner.join().expect("no panic").expect("runs");
    assert_eq!(report.server.stats.accepted, 20);
    assert_eq!(report.server.unjoined, 0);
    assert_eq!(report.pool.unaccounted(), 0);
    assert!(stats.snapshot().accepted >= 20);
    assert!(
        pool_stats.snapshot().completed >= 20,
        "each connection was one pool task"
    );
}

/// A session factory whose sessions never finish on their own (echo with a long idle time).
fn holding_factory() -> Arc<impl SessionFactory<Session = impl Session>> {
    Arc::new(EchoFactory::default())
}

#[test]
fn test_pool_server_full_queue_refuses_connections() {
    // One worker, one queue slot: the first connection holds the worker, the second waits,
    // the third is refused (closed without being served).
    let server = PoolServer::bind(config(1, 1)).expect("binds");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let stats = server.stats();
    let runner = thread::spawn(move || server.run(holding_factory()));
    let mut first = connect(addr);
    assert_eq!(echo_once(&mut first, b"one"), b"one");
    let _second = connect(addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.snapshot().accepted < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let mut third = connect(addr);
    let mut buf = [0u8; 8];
    let n = third
        .read(&mut buf)
        .expect("the refused connection is closed, not hung");
    assert_eq!(
        n, 0,
        "a refused echo connection gets EOF (echo has no refusal bytes)"
    );
    let snap = stats.snapshot();
    assert!(snap.refused_cap >= 1, "refusal counted: {snap:?}");
    drop(first);
    stop.shutdown();
    let report = runner.join().expect("no panic").expect("runs");
    assert_eq!(report.pool.unaccounted(), 0);
    assert_eq!(report.server.unjoined, 0);
}
