//! Pool and arena statistics in Prometheus text, scraped from a running server's `/metrics`
//! and checked to move.

use std::time::Duration;

use m07_buffers::lab::{Client, GET_DYN, GET_METRICS, ThreadServer, wait_until};
use m07_buffers::serve::ServeConfig;
use m07_buffers::{PoolConfig, SharedPool};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("series {series} missing in:\n{text}"))
}

fn scrape(c: &mut Client) -> String {
    let r = c.request(GET_METRICS).unwrap();
    assert_eq!(r.status, 200);
    String::from_utf8(c.last(&r)[r.head_len..].to_vec()).unwrap()
}

fn server(buffers: usize) -> (ThreadServer, SharedPool) {
    let pool = SharedPool::new(PoolConfig::new(16 * 1024, buffers).with_debug(true)).unwrap();
    let cfg = ServeConfig {
        acquire_timeout: Duration::from_millis(10),
        ..ServeConfig::default()
    };
    (ThreadServer::start(pool.clone(), cfg).unwrap(), pool)
}

#[test]
fn test_metrics_pool_allocs_and_in_use_move() {
    let (s, pool) = server(8);
    let mut c = Client::connect(s.addr, 64 * 1024).unwrap();
    let before = scrape(&mut c);
    assert!(before.contains("# TYPE zyphos_pool_allocs_total counter"));
    let allocs0 = value(&before, "zyphos_pool_allocs_total{pool=\"conn\"}");
    // While /metrics renders: the read buffer and the write buffer are in use.
    assert_eq!(
        value(&before, "zyphos_pool_buffers_in_use{pool=\"conn\"}"),
        2.0
    );
    assert_eq!(value(&before, "zyphos_pool_buffers{pool=\"conn\"}"), 8.0);
    let mut d = Client::connect(s.addr, 4096).unwrap();
    for _ in 0..10 {
        assert_eq!(d.request(GET_DYN).unwrap().status, 200);
    }
    // d's server thread gives its write buffer back just after the response leaves.
    assert!(wait_until(Duration::from_secs(5), || pool.stats().in_use == 2));
    let after = scrape(&mut c);
    let allocs1 = value(&after, "zyphos_pool_allocs_total{pool=\"conn\"}");
    assert!(allocs1 >= allocs0 + 11.0, "{allocs0} -> {allocs1}");
    assert!(value(&after, "zyphos_pool_frees_total{pool=\"conn\"}") >= 10.0);
    // Two connections hold read buffers + the write buffer of this scrape.
    assert_eq!(
        value(&after, "zyphos_pool_buffers_in_use{pool=\"conn\"}"),
        3.0
    );
    assert!(value(&after, "zyphos_pool_buffers_high_water{pool=\"conn\"}") >= 3.0);
    assert!(value(&after, "zyphos_pool_utilisation_ratio{pool=\"conn\"}") > 0.3);
    drop((c, d));
    s.stop().unwrap();
}

#[test]
fn test_metrics_pool_exhaustion_counted() {
    let (s, pool) = server(3);
    let mut c = Client::connect(s.addr, 64 * 1024).unwrap();
    let before = scrape(&mut c);
    assert_eq!(
        value(&before, "zyphos_pool_exhausted_total{pool=\"conn\"}"),
        0.0
    );
    let mut b = Client::connect(s.addr, 64 * 1024).unwrap();
    assert_eq!(b.request(GET_DYN).unwrap().status, 200);
    assert!(wait_until(Duration::from_secs(5), || pool.stats().in_use == 2));
    // A third connection takes the last buffer as its read buffer ...
    let d = Client::connect(s.addr, 4096).unwrap();
    assert!(wait_until(Duration::from_secs(5), || pool.stats().in_use == 3));
    // ... so c's next request finds no write buffer: 503 and close.
    let r = c.request(GET_METRICS).unwrap();
    assert_eq!((r.status, r.keep_alive), (503, false));
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || pool.stats().in_use == 2));
    let after = scrape(&mut b);
    assert!(value(&after, "zyphos_pool_exhausted_total{pool=\"conn\"}") >= 1.0);
    assert!(after.contains("zyphos_pool_faults_total{pool=\"conn\",kind=\"double_free\"} 0"));
    drop((b, d));
    s.stop().unwrap();
}

#[test]
fn test_metrics_arena_and_fragmentation_exposed() {
    let (s, _) = server(4);
    let mut c = Client::connect(s.addr, 64 * 1024).unwrap();
    let before = scrape(&mut c);
    let a0 = value(&before, "zyphos_arena_allocs_total{arena=\"request\"}");
    let r0 = value(&before, "zyphos_arena_resets_total{arena=\"request\"}");
    for _ in 0..5 {
        assert_eq!(c.request(GET_DYN).unwrap().status, 200);
    }
    let after = scrape(&mut c);
    assert_eq!(
        value(&after, "zyphos_arena_allocs_total{arena=\"request\"}"),
        a0 + 5.0
    );
    assert_eq!(
        value(&after, "zyphos_arena_resets_total{arena=\"request\"}"),
        r0 + 6.0
    );
    assert_eq!(
        value(&after, "zyphos_arena_bytes_high_water{arena=\"request\"}"),
        4.0
    );
    // Whole buffers asked for: no internal fragmentation in the buffers in use.
    assert_eq!(
        value(&after, "zyphos_pool_fragmentation_ratio{pool=\"conn\"}"),
        0.0
    );
    drop(c);
    s.stop().unwrap();
}
