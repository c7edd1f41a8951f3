//! Exit check `routed_requests_per_sec`: parse + route + handle + render on one thread, no
//! socket I/O, 1,000 routes. Each request is a fresh m04 `Http10Session` fed one `GET` (a path
//! drawn uniformly over the 1,000 routes) whose response bytes are taken. Measured for every
//! router kind; the figure is the default kind's (prefix), as requests per CPU-second of the
//! measuring thread (the VM's 2 cores are shared: descheduled time is not the router's). Wall-
//! clock rates and a whole-server run (m03 `ThreadServer` + `Http10Factory` + this router,
//! driven by `zyphos-load -s http1.0`) are in the detail. Prints `{"measured", "unit", "detail"}`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m03_thread_per_conn::{LogConfig, ThreadConfig, ThreadServer};
use m04_http10::{Http10Factory, Limits};
use m05_routing::lab::{self, get, one_session_request, paths_for, route_set};
use m05_routing::{RequestContext, Response, Router, RouterKind, sys};

const ROUTES: usize = 1000;
const CPU_BUDGET: Duration = Duration::from_secs(2);

fn router(kind: RouterKind) -> Result<Router, m05_routing::RouteError> {
    let mut b = Router::builder().kind(kind);
    for p in route_set(ROUTES) {
        b = b.get(&p, |_: &mut RequestContext<'_>| Response::text(200, "ok\n"));
    }
    b.build()
}

/// (requests per CPU-second, requests per wall-second, requests).
fn measure(kind: RouterKind) -> std::io::Result<(f64, f64, u64)> {
    let factory = Http10Factory::new(
        Arc::new(router(kind).map_err(std::io::Error::other)?),
        Limits::default(),
    );
    let requests: Vec<Vec<u8>> = paths_for(ROUTES, 4096, 42).iter().map(|p| get(p)).collect();
    let now = Instant::now();
    // Every request must be answered 200 by its route (checked on the whole set, outside the timing).
    for r in &requests {
        let mut s =
            m03_thread_per_conn::SessionFactory::new_session(&factory, lab::test_peer(), now);
        m03_thread_per_conn::Session::handle_input(&mut s, now, r);
        let out = m03_thread_per_conn::Session::pending_output(&s);
        if !out.starts_with(b"HTTP/1.0 200 ") {
            return Err(std::io::Error::other(format!(
                "{kind}: {} answered {:?}",
                String::from_utf8_lossy(r),
                String::from_utf8_lossy(&out[..out.len().min(40)])
            )));
        }
    }
    let cpu0 = sys::thread_cpu_ns();
    let wall0 = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    while sys::thread_cpu_ns() - cpu0 < CPU_BUDGET.as_nanos() as u64 {
        for r in &requests {
            bytes += one_session_request(&factory, r, now);
        }
        n += requests.len() as u64;
    }
    let cpu = (sys::thread_cpu_ns() - cpu0) as f64 / 1e9;
    let wall = wall0.elapsed().as_secs_f64();
    if bytes == 0 {
        return Err(std::io::Error::other("no response bytes"));
    }
    Ok((n as f64 / cpu, n as f64 / wall, n))
}

fn load_binary() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(cargo)
        .args(["build", "--quiet", "--release", "-p", "zyphos-load"])
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bin = root.join("target/release/zyphos-load");
    (ok && bin.exists()).then_some(bin)
}

/// Whole server: ThreadServer + Http10Factory + the prefix router, driven by zyphos-load over
/// loopback for 3 s.
fn whole_server() -> Result<String, String> {
    let bin = load_binary().ok_or("could not build zyphos-load")?;
    let mut config = ThreadConfig::new("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?);
    config.log = LogConfig::quiet();
    let server = ThreadServer::bind(config).map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let factory = Arc::new(Http10Factory::new(
        Arc::new(router(RouterKind::Prefix).map_err(|e| e.to_string())?),
        Limits::default(),
    ));
    let t = std::thread::spawn(move || server.run(factory));
    let out = Command::new(bin)
        .args([
            "-s",
            "http1.0",
            "-c",
            "32",
            "-d",
            "3",
            "--path",
            "/api/r100/items/7",
            "--json",
        ])
        .arg(addr.to_string())
        .output();
    stop.shutdown();
    let _ = t.join();
    let out = out.map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("load report: {e}"))?;
    Ok(format!(
        "whole server (m03 ThreadServer, thread per connection, + Http10Factory + prefix router, loopback, \
         zyphos-load -s http1.0 -c 32 -d 3, one new connection per request): {} requests/s, p99 {} µs, errors {}",
        v["rps"].as_f64().map_or("?".into(), |x| format!("{x:.0}")),
        v["latency"]["p99_us"],
        v["errors"]
    ))
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut parts = Vec::new();
        let mut measured = 0.0;
        for kind in RouterKind::ALL {
            let (cpu_rps, wall_rps, n) = measure(kind)?;
            if kind == RouterKind::Prefix {
                measured = cpu_rps;
            }
            parts.push(format!(
                "{kind}: {cpu_rps:.0} requests per CPU-second ({wall_rps:.0}/s wall, {n} requests)"
            ));
        }
        let server = whole_server().unwrap_or_else(|e| format!("whole-server run failed: {e}"));
        let detail = format!(
            "One thread, no socket I/O: a fresh Http10Session per request (parse GET, decode path, route among {ROUTES} \
             routes, handler, render with Date/Server/Content-Length), paths uniform over all routes, {}s of thread CPU \
             per kind. Measured = prefix (the default RouterKind). {}. {server}. Machine: {}",
            CPU_BUDGET.as_secs(),
            parts.join("; "),
            lab::machine()
        );
        lab::print_measured(lab::round(measured, 0), "requests/s", &detail);
        Ok(())
    })
}
