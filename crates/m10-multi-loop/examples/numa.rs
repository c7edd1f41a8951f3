//! Experiment: NUMA effects and placement. This VM has one NUMA node (listed from
//! /sys/devices/system/node), so there is no remote memory to measure; what can be measured is
//! placement: loops pinned one per CPU, unpinned (the scheduler moves them), and both loops
//! squeezed onto one CPU — plus the load generator pinned next to or away from them.

use std::time::Duration;

use m10_multi_loop::affinity::{allowed_cpus, pin_current_thread};
use m10_multi_loop::lab::{
    MultiInProcess, Table, config, http_factory, load, machine, num, proc_cpu_s, quick, round,
    run_main,
};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

fn nodes() -> String {
    let mut v: Vec<String> = std::fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("node"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    let cpus: Vec<String> = v
        .iter()
        .map(|n| {
            let list = std::fs::read_to_string(format!("/sys/devices/system/node/{n}/cpulist"))
                .unwrap_or_default();
            format!("{n}: CPUs {}", list.trim())
        })
        .collect();
    if cpus.is_empty() {
        "no /sys/devices/system/node (kernel without NUMA)".into()
    } else {
        cpus.join("; ")
    }
}

fn restore(allowed: &[usize]) {
    let mut set = CpuSet::new();
    for &c in allowed {
        let _ = set.set(c);
    }
    let _ = sched_setaffinity(Pid::from_raw(0), &set);
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let secs = if quick() { 0.5 } else { 3.0 };
        let allowed = allowed_cpus()?;
        let first = allowed[0];
        let last = *allowed.last().unwrap_or(&first);
        let mut t = Table::new(
            "Placement (NUMA on a single-node VM): loops and load generator on CPUs",
            &[
                "placement",
                "loops",
                "loop CPUs",
                "client CPU",
                "req/s",
                "requests per server CPU-s",
                "p99 µs",
            ],
        );
        let cases: [(&str, usize, bool, bool, Option<usize>); 5] = [
            (
                "1 loop pinned, client on the other CPU",
                1,
                true,
                false,
                Some(last),
            ),
            (
                "1 loop pinned, client on the same CPU",
                1,
                true,
                false,
                Some(first),
            ),
            (
                "2 loops pinned one per CPU, client unpinned",
                2,
                true,
                false,
                None,
            ),
            ("2 loops unpinned, client unpinned", 2, false, false, None),
            (
                "2 loops both pinned to one CPU, client on the other",
                2,
                true,
                true,
                Some(last),
            ),
        ];
        for (name, loops, pin, squeeze, client_cpu) in cases {
            let mut c = config(loops);
            c.pin = pin;
            if squeeze {
                pin_current_thread(first)?;
            }
            let server = MultiInProcess::start(c, http_factory(Duration::from_secs(30))?);
            restore(&allowed);
            let server = server?;
            let cpus: Vec<i64> = server.stats.per_loop().iter().map(|l| l.cpu).collect();
            let mut args: Vec<String> = [
                "--scenario",
                "http1.1",
                "--connections",
                "64",
                "--duration",
                &format!("{secs}"),
                "--path",
                "/plaintext",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some(cpu) = client_cpu {
                args.extend(["--cpu".to_string(), cpu.to_string()]);
            }
            args.push(server.addr.to_string());
            let cpu0 = proc_cpu_s(std::process::id())?;
            let r = load(&args)?;
            let cpu = proc_cpu_s(std::process::id())? - cpu0;
            server.stop()?;
            let rps = num(&r, &["rps"]);
            t.rows.push(vec![
                name.into(),
                loops.into(),
                format!("{cpus:?}").into(),
                client_cpu
                    .map_or("any".to_string(), |c| c.to_string())
                    .into(),
                round(rps, 0).into(),
                round(num(&r, &["requests"]) / cpu.max(1e-9), 0).into(),
                round(num(&r, &["latency", "p99_us"]), 0).into(),
            ]);
        }
        t.notes = format!(
            "NUMA topology: {}. With one node every CPU reaches all memory at the same cost, so no local/remote difference exists to measure here; the rows measure placement instead (-1 = not pinned). On a multi-node machine the same experiment would pin loops to CPUs of node 0 and node 1 and compare (a) connections whose memory (session, buffers: allocated by the loop that accepted them, first-touch) stays on the loop's node vs (b) connections migrated to a loop on the other node, whose memory stays remote: remote DRAM latency is typically 1.3-2x local, visible in requests per CPU-second and in `numastat`'s other_node counts. In-process server, zyphos-load 64 keep-alive connections, GET /plaintext, {secs} s per row; server CPU = this process's utime+stime during the run. {}",
            nodes(),
            machine()
        );
        t.print();
        Ok(())
    })
}
