//! The per-loop counters `zyphos serve --io epoll` publishes under `/stats` → `loops` (the
//! JSON of [`MultiStatsHandle::per_loop`](m10_multi_loop::MultiStatsHandle::per_loop)): each
//! test scrapes that document from a running server, drives traffic, and checks the metric
//! is there and moves.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use m03_thread_per_conn::EchoFactory;
use m10_multi_loop::lab::{MultiInProcess, config, connect, wait_until};
use m10_multi_loop::{LoopControl, imbalance_pct};
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

fn scrape(server: &MultiInProcess<m03_thread_per_conn::EchoSession>) -> Vec<Value> {
    match serde_json::to_value(server.stats.per_loop()).expect("serialize") {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

fn field(l: &Value, path: &[&str]) -> u64 {
    let mut cur = l;
    for p in path {
        cur = cur.get(p).unwrap_or_else(|| panic!("no {p} in {l}"));
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count"))
}

fn start() -> MultiInProcess<m03_thread_per_conn::EchoSession> {
    let mut c = config(2);
    c.balance.enabled = false;
    MultiInProcess::start(c, EchoFactory::default()).expect("start")
}

fn echo_once(s: &mut std::net::TcpStream) {
    s.write_all(b"ping").expect("write");
    let mut b = [0u8; 4];
    s.read_exact(&mut b).expect("read");
}

#[test]
fn test_per_loop_open_connections_exposed_and_move() {
    let server = start();
    let before: u64 = scrape(&server).iter().map(|l| field(l, &["open"])).sum();
    assert_eq!(before, 0);
    let mut conns: Vec<_> = (0..20)
        .map(|_| connect(server.addr, T).expect("c"))
        .collect();
    conns.iter_mut().for_each(echo_once);
    let loops = scrape(&server);
    let open: Vec<u64> = loops.iter().map(|l| field(l, &["open"])).collect();
    assert_eq!(open.iter().sum::<u64>(), 20, "{open:?}");
    assert!(
        loops
            .iter()
            .all(|l| l.get("index").is_some() && l.get("cpu").is_some())
    );
    drop(conns);
    assert!(wait_until(T, || scrape(&server)
        .iter()
        .all(|l| field(l, &["open"]) == 0)));
    server.stop().expect("stop");
}

#[test]
fn test_cross_thread_message_latency_exposed_and_moves() {
    let server = start();
    assert_eq!(field(&scrape(&server)[1], &["multi", "messages"]), 0);
    for _ in 0..10 {
        let (tx, rx) = mpsc::channel();
        server
            .submit(
                1,
                Box::new(move |_: &mut dyn LoopControl| {
                    let _ = tx.send(());
                }),
            )
            .expect("submit");
        rx.recv_timeout(T).expect("ran");
    }
    let l1 = &scrape(&server)[1];
    assert_eq!(field(l1, &["multi", "messages"]), 10);
    let p50 = field(l1, &["multi", "message_p50_ns"]);
    let p99 = field(l1, &["multi", "message_p99_ns"]);
    assert!(p50 > 0 && p99 >= p50, "p50 {p50} p99 {p99}");
    server.stop().expect("stop");
}

#[test]
fn test_migration_counters_exposed_and_move() {
    let server = start();
    let mut conns: Vec<_> = (0..30)
        .map(|_| connect(server.addr, T).expect("c"))
        .collect();
    conns.iter_mut().for_each(echo_once);
    let on1 = field(&scrape(&server)[1], &["open"]);
    server
        .submit(
            1,
            Box::new(|c: &mut dyn LoopControl| {
                let n = c.connections();
                c.migrate_to(0, n);
            }),
        )
        .expect("submit");
    assert!(wait_until(T, || field(
        &scrape(&server)[0],
        &["multi", "migrated_in"]
    ) == on1));
    assert!(wait_until(T, || field(
        &scrape(&server)[1],
        &["multi", "migrated_out"]
    ) == on1));
    let loops = scrape(&server);
    assert_eq!(field(&loops[1], &["multi", "migration_failures"]), 0);
    assert_eq!(field(&loops[1], &["open"]), 0);
    conns.iter_mut().for_each(echo_once);
    server.stop().expect("stop");
}

#[test]
fn test_load_imbalance_computed_from_scrape_and_moves() {
    let server = start();
    let mut conns: Vec<_> = (0..40)
        .map(|_| connect(server.addr, T).expect("c"))
        .collect();
    conns.iter_mut().for_each(echo_once);
    server
        .submit(
            1,
            Box::new(|c: &mut dyn LoopControl| {
                let n = c.connections();
                c.migrate_to(0, n);
            }),
        )
        .expect("submit");
    let open = |s: &MultiInProcess<_>| -> Vec<u64> {
        scrape(s).iter().map(|l| field(l, &["open"])).collect()
    };
    assert!(wait_until(T, || open(&server) == vec![40, 0]));
    assert!((imbalance_pct(&open(&server)) - 100.0).abs() < 1e-9);
    server.stats.set_balancing(true);
    assert!(wait_until(T, || imbalance_pct(&open(&server)) <= 10.0));
    assert!(field(&scrape(&server)[1], &["multi", "steals_sent"]) >= 1);
    server.stop().expect("stop");
}

#[test]
fn test_per_loop_cpu_and_requests_exposed_and_move() {
    // Scaling efficiency is requests per CPU-second: both numbers are per loop in /stats.
    let server = start();
    let mut conns: Vec<_> = (0..8)
        .map(|_| connect(server.addr, T).expect("c"))
        .collect();
    let before: Vec<u64> = scrape(&server)
        .iter()
        .map(|l| field(l, &["session_events"]))
        .collect();
    for _ in 0..500 {
        conns.iter_mut().for_each(echo_once);
    }
    // cpu_s is sampled by each loop now and then; give it a turn.
    assert!(wait_until(T, || {
        scrape(&server)
            .iter()
            .any(|l| l.get("cpu_s").and_then(Value::as_f64).unwrap_or(0.0) > 0.0)
    }));
    // The loop counts an event after handling it, so the reply can arrive first: the last
    // count may lag the client by a moment.
    let moved = || -> u64 {
        scrape(&server)
            .iter()
            .map(|l| field(l, &["session_events"]))
            .zip(&before)
            .map(|(a, b)| a - b)
            .sum()
    };
    wait_until(T, || moved() >= 4000);
    let moved = moved();
    assert!(moved >= 4000, "session events moved by {moved}");
    server.stop().expect("stop");
}
