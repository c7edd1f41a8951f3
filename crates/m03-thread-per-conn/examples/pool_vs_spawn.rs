//! Experiment `pool_vs_spawn`: the thread-pool precursor against spawn-per-connection under
//! connection churn (connect, one echo, close). Prints one JSON table.

use m03_thread_per_conn::ThreadMode;
use m03_thread_per_conn::lab::{self, Table, experiments, round};
use serde_json::json;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let quick = lab::quick();
        let conns = if quick { 400 } else { 4000 };
        let parallel = 8;
        let mut t = Table::new(
            "Thread pool precursor vs spawn per connection: short connections",
            &[
                "mode",
                "threads",
                "connections",
                "conns_per_s",
                "p50_us",
                "p99_us",
                "errors",
            ],
        );
        let modes = [
            ("spawn_per_conn", ThreadMode::PerConnection, 0),
            (
                "prespawned",
                ThreadMode::Prespawned {
                    workers: 8,
                    queue: 1024,
                },
                8,
            ),
            (
                "prespawned",
                ThreadMode::Prespawned {
                    workers: 64,
                    queue: 1024,
                },
                64,
            ),
        ];
        for (name, mode, workers) in modes {
            let mut config = lab::quiet_config();
            config.mode = mode;
            config.sample_threads = false;
            let (cps, p50, p99, errors) = experiments::churn_with(config, conns, parallel)?;
            t.rows.push(vec![
                json!(name),
                json!(if workers == 0 {
                    "1 per conn".to_owned()
                } else {
                    workers.to_string()
                }),
                json!(conns),
                json!(round(cps, 0)),
                json!(round(p50, 1)),
                json!(round(p99, 1)),
                json!(errors),
            ]);
        }
        t.notes = format!(
            "{parallel} client threads each open, echo 32 bytes over, and close connections in a \
             loop. spawn_per_conn pays a thread spawn + exit + join per connection; prespawned \
             workers take connections from a bounded channel (queue 1,024; a full queue is a \
             refusal). The connection setup itself (3-way handshake, accept, close) is common to \
             both. Machine: {}.",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
