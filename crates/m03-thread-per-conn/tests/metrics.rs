//! Every Prometheus series the driver exposes exists and moves when a server does work.

use std::io::Write;
use std::time::Duration;

use m03_thread_per_conn::lab::{
    PanicFactory, RunningServer, connect, echo_round_trip, read_to_close, test_config, wait_until,
};

const T: Duration = Duration::from_secs(5);

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn test_prometheus_thread_metrics_exist_and_move() {
    let (mut config, _) = test_config();
    config.max_threads = 3;
    let server = RunningServer::start(config, PanicFactory).unwrap();
    let before = server.stats.prometheus();
    let series = [
        "zyphos_threads_live",
        "zyphos_connections_live",
        "zyphos_thread_spawns_total",
        "zyphos_thread_panics_total",
        "zyphos_thread_refusals_total",
        "zyphos_thread_joins_total",
        "zyphos_thread_ctx_switches_voluntary_total",
        "zyphos_thread_cpu_seconds_total",
        "zyphos_lock_wait_seconds_total",
        "zyphos_log_lines_total",
        "zyphos_bytes_received_total",
        "zyphos_os_threads",
        "zyphos_run_queue_running",
        "zyphos_memory_rss_bytes",
        "zyphos_memory_thread_stacks_mapped_bytes",
        "zyphos_connections_closed_total{reason=\"panic\"}",
    ];
    for s in series {
        assert!(value(&before, s).is_some(), "{s} missing:\n{before}");
    }
    let os_before = value(&before, "zyphos_os_threads").unwrap();
    let stacks_before = value(&before, "zyphos_memory_thread_stacks_mapped_bytes").unwrap();
    // Three live connections (the cap), one refused.
    let mut held: Vec<_> = (0..3).map(|_| connect(server.addr, T).unwrap()).collect();
    for c in &mut held {
        echo_round_trip(c, &[1u8; 1000]).unwrap();
    }
    let mut refused = connect(server.addr, T).unwrap();
    let _ = read_to_close(&mut refused, T);
    // The refusal is counted just after the close the client saw.
    assert!(wait_until(T, || server.stats.snapshot().connections_live == 3));
    let during = server.stats.prometheus();
    assert_eq!(value(&during, "zyphos_threads_live"), Some(3.0));
    assert_eq!(value(&during, "zyphos_connections_live"), Some(3.0));
    assert!(value(&during, "zyphos_os_threads").unwrap() >= os_before + 3.0);
    assert!(value(&during, "zyphos_memory_thread_stacks_mapped_bytes").unwrap() > stacks_before);
    assert!(value(&during, "zyphos_run_queue_running").unwrap() >= 1.0);
    assert!(value(&during, "zyphos_memory_rss_bytes").unwrap() > 0.0);
    assert_eq!(value(&during, "zyphos_thread_refusals_total"), Some(1.0));
    assert_eq!(value(&during, "zyphos_bytes_received_total"), Some(3000.0));
    // One panics; all close.
    held[0].write_all(PanicFactory::MAGIC).unwrap();
    drop(held);
    assert!(wait_until(T, || server.stats.snapshot().joined == 3));
    let after = server.stats.prometheus();
    assert_eq!(value(&after, "zyphos_threads_live"), Some(0.0));
    assert_eq!(value(&after, "zyphos_connections_live"), Some(0.0));
    assert_eq!(value(&after, "zyphos_thread_spawns_total"), Some(3.0));
    assert_eq!(value(&after, "zyphos_thread_joins_total"), Some(3.0));
    assert_eq!(value(&after, "zyphos_thread_panics_total"), Some(1.0));
    assert_eq!(
        value(&after, "zyphos_connections_closed_total{reason=\"panic\"}"),
        Some(1.0)
    );
    assert!(value(&after, "zyphos_thread_ctx_switches_voluntary_total").unwrap() >= 3.0);
    assert!(
        value(&after, "zyphos_log_lines_total").unwrap()
            > value(&before, "zyphos_log_lines_total").unwrap()
    );
    // Per-thread CPU is in clock ticks (10 ms): three short threads may round to 0, so only
    // its presence and sign are checked here; the ctx-switch series above moved.
    assert!(value(&after, "zyphos_thread_cpu_seconds_total").unwrap() >= 0.0);
    server.stop().unwrap();
}
