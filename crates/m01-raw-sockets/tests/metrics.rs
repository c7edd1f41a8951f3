//! The syscall table in Prometheus text format (what `/metrics` will serve in later milestones).

use std::time::Duration;

use m01_raw_sockets::accounting;
use m01_raw_sockets::lab::{self, ThreadServer, echo_round_trip, test_config, wait_until};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn test_prometheus_syscalls_total_moves() {
    let before = accounting::snapshot().to_prometheus();
    assert!(before.contains("# TYPE zyphos_syscalls_total counter"));
    let accepts_before =
        value(&before, "zyphos_syscalls_total{kind=\"accept4\"}").expect("accept4 series exposed");
    let server = ThreadServer::start(test_config()).unwrap();
    let mut c = lab::connect(server.addr, Duration::from_secs(5)).unwrap();
    echo_round_trip(&mut c, b"metrics").unwrap();
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || server
        .counters
        .snapshot()
        .closed
        == 1));
    server.stop().unwrap();
    let after = accounting::snapshot().to_prometheus();
    let accepts_after = value(&after, "zyphos_syscalls_total{kind=\"accept4\"}").unwrap();
    assert!(
        accepts_after > accepts_before,
        "{accepts_before} -> {accepts_after}"
    );
    let sends = value(&after, "zyphos_syscalls_total{kind=\"sendto\"}").unwrap();
    assert!(sends >= 1.0);
    assert!(after.contains("zyphos_syscall_latency_seconds{kind=\"recvfrom\",quantile=\"0.99\"}"));
    assert!(after.contains("zyphos_syscall_errors_total{kind=\"accept4\",errno=\"EAGAIN\"}"));
}
