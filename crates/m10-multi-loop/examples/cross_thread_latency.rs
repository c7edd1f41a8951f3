//! Experiment: cross-thread latency through a loop's mailbox (lock-free queue + eventfd):
//! a task submitted from another thread, the time until the loop runs it (the loop's own
//! `message_ns` histogram) and the round trip back to the sender (a channel), with the loop
//! idle (asleep in epoll_wait: the eventfd must wake it) and busy serving keep-alive load.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use m10_multi_loop::LoopControl;
use m10_multi_loop::lab::{
    MultiInProcess, Table, config, http_factory, keepalive_load, machine, quick, round, run_main,
};

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

fn main() -> std::process::ExitCode {
    run_main(|| {
        let q = quick();
        let n = if q { 500 } else { 5000 };
        let mut t = Table::new(
            "Cross-thread latency: task submitted to loop 1 until it runs there",
            &[
                "loop state",
                "messages",
                "loop-side p50 µs",
                "loop-side p99 µs",
                "round trip p50 µs",
                "round trip p99 µs",
            ],
        );
        for busy in [false, true] {
            let mut c = config(2);
            c.balance.enabled = false;
            let server = MultiInProcess::start(c, http_factory(Duration::from_secs(30))?)?;
            let addr = server.addr;
            let secs = if q { 2.0 } else { 8.0 };
            let load = busy
                .then(|| std::thread::spawn(move || keepalive_load(addr, "/plaintext", 64, secs)));
            if busy {
                std::thread::sleep(Duration::from_millis(300));
            }
            let mut rtt = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = mpsc::channel();
                let t0 = Instant::now();
                server.submit(
                    1,
                    Box::new(move |_: &mut dyn LoopControl| {
                        let _ = tx.send(());
                    }),
                )?;
                rx.recv_timeout(Duration::from_secs(5))
                    .map_err(std::io::Error::other)?;
                rtt.push(t0.elapsed().as_secs_f64() * 1e6);
                if !busy {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            let m = server.stats.per_loop()[1].multi.clone();
            if let Some(l) = load {
                let _ = l.join();
            }
            server.stop()?;
            t.rows.push(vec![
                (if busy {
                    "busy (64 keep-alive clients)"
                } else {
                    "idle (asleep in epoll_wait)"
                })
                .into(),
                m.messages.into(),
                round(m.message_p50_ns as f64 / 1000.0, 2).into(),
                round(m.message_p99_ns as f64 / 1000.0, 2).into(),
                round(quantile(&mut rtt, 0.5), 2).into(),
                round(quantile(&mut rtt, 0.99), 2).into(),
            ]);
        }
        t.notes = format!(
            "In-process MultiLoopServer, 2 pinned loops; {n} tasks submitted one at a time from the main thread to loop 1. Loop-side latency = MultiStats::message_ns (send timestamp to handling on the loop, log-bucketed histogram: quantiles are bucket bounds). Round trip adds the reply over an mpsc channel and the sender's wake-up. Idle: the eventfd write wakes the loop from epoll_wait (a futex-free kernel wake-up, but still a context switch on the other CPU). Busy: the message waits for the loop's current iteration (up to its batch of events) to end. {}",
            machine()
        );
        t.print();
        Ok(())
    })
}
