//! Graceful shutdown: by handle and by signal, with connections open; every descriptor closed.
//!
//! The in-process test counts `/proc/self/fd`, so the tests in this file run one at a time.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use m01_raw_sockets::CloseReason;
use m01_raw_sockets::lab::{self, ServerProcess, ThreadServer, echo_round_trip, test_config};
use m01_raw_sockets::stats::proc_fd_count;

const WAIT: Duration = Duration::from_secs(5);
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn test_open_connections_shutdown_closes_all_fds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fds_before = proc_fd_count("self").unwrap();
    let server = ThreadServer::start(test_config()).unwrap();
    let mut clients: Vec<_> = (0..5)
        .map(|_| lab::connect(server.addr, WAIT).unwrap())
        .collect();
    for c in &mut clients {
        echo_round_trip(c, b"open").unwrap();
    }
    let report = server.stop().unwrap();
    let shutdown = report.shutdown.expect("shutdown ran");
    assert_eq!(shutdown.connections_closed, 5);
    assert!(
        shutdown.took_us < 100_000,
        "shutdown took {} µs",
        shutdown.took_us
    );
    assert!(
        report
            .connections
            .iter()
            .all(|r| r.reason == CloseReason::Shutdown)
    );
    assert_eq!(report.fds.open_at_exit, 0);
    // Each client sees a clean FIN (EOF), not a reset.
    for c in &mut clients {
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).unwrap(), 0);
    }
    drop(clients);
    assert_eq!(
        proc_fd_count("self").unwrap(),
        fds_before,
        "every descriptor the server opened is closed"
    );
}

#[test]
fn test_pending_output_shutdown_drains_within_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = test_config();
    config.send_buffer = Some(4096);
    config.drain_timeout = Duration::from_millis(30);
    let server = ThreadServer::start(config).unwrap();
    let mut c = lab::connect(server.addr, WAIT).unwrap();
    c.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..64 {
        if c.write(&chunk).is_err() {
            break;
        }
    }
    assert!(lab::wait_until(WAIT, || server
        .counters
        .snapshot()
        .read_pauses
        >= 1));
    let report = server.stop().unwrap();
    let s = report.shutdown.unwrap();
    assert!(
        s.bytes_abandoned > 0,
        "a client that never reads cannot be drained: {s:?}"
    );
    assert!(
        s.took_us >= 25_000 && s.took_us < 100_000,
        "bounded by drain_timeout: {s:?}"
    );
}

#[test]
fn test_sigterm_process_exits_cleanly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for mode in ["poll", "blocking"] {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_echo_server"));
        let server = ServerProcess::spawn_binary(
            bin,
            &[],
            &["--mode", mode, "--quiet", "--json-report"],
            WAIT,
        )
        .unwrap();
        let mut clients: Vec<_> = (0..10)
            .map(|_| lab::connect(server.addr, WAIT).unwrap())
            .collect();
        echo_round_trip(&mut clients[0], b"before the signal").unwrap();
        let fds_running = server.fd_count().unwrap();
        assert!(fds_running >= 8, "{fds_running}");
        let (status, took, out) = server.terminate(WAIT).unwrap();
        assert!(status.success(), "{mode}: {status:?}");
        assert!(took < Duration::from_secs(1), "{mode}: exit took {took:?}");
        let report: serde_json::Value =
            serde_json::from_str(out.last().expect("json report")).unwrap();
        assert_eq!(report["fds"]["open_at_exit"], 0, "{mode}");
        assert!(
            report["shutdown"]["took_us"].as_u64().unwrap() < 100_000,
            "{mode}: {}",
            report["shutdown"]
        );
        for c in &mut clients {
            let _ = c.write_all(b"x");
        }
        drop(clients);
    }
}

#[test]
fn test_in_flight_input_shutdown_echoes_then_fin() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = ThreadServer::start(test_config()).unwrap();
    let mut clients: Vec<_> = (0..20)
        .map(|_| lab::connect(server.addr, WAIT).unwrap())
        .collect();
    for c in &mut clients {
        echo_round_trip(c, b"live").unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&lab::pattern(4096, i as u8)).unwrap();
    }
    let report = server.stop().unwrap();
    assert_eq!(report.shutdown.unwrap().bytes_abandoned, 0);
    // Every message sent before the shutdown comes back in full, then a clean EOF.
    for (i, c) in clients.iter_mut().enumerate() {
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        assert_eq!(all, lab::pattern(4096, i as u8));
    }
}
