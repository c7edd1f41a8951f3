//! Experiment `parse_strategies`: the state machine (ours), memchr line splitting, and
//! httparse (SIMD) on the three benchmark inputs, timed in the same run.

use std::time::Duration;

use m04_http10::lab::{self, Table, cost};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let (rounds, min) = if lab::quick() {
            (3, Duration::from_millis(20))
        } else {
            (7, Duration::from_millis(150))
        };
        let mut t = Table::new(
            "Parsing strategies: ns/request and MB/s (same run)",
            &[
                "input",
                "bytes",
                "strategy",
                "ns/request",
                "MB/s",
                "TSC cycles/byte",
                "vs httparse",
            ],
        );
        let strategies: [(&str, cost::ParseFn); 3] = [
            ("state machine (m04)", cost::ours),
            ("memchr line split", cost::memchr_lines),
            ("httparse 1.x (SIMD)", cost::httparse),
        ];
        for (name, input) in cost::inputs() {
            let base = cost::measure(cost::httparse, &input, rounds, min);
            for (s, f) in strategies {
                let c = cost::measure(f, &input, rounds, min);
                t.rows.push(vec![
                    name.into(),
                    input.len().into(),
                    s.into(),
                    lab::round(c.ns_per_request, 1).into(),
                    lab::round(c.bytes_per_sec / 1e6, 1).into(),
                    c.tsc_cycles_per_byte
                        .map_or(serde_json::Value::from("n/a"), |x| lab::round(x, 2).into()),
                    lab::round(c.ns_per_request / base.ns_per_request, 2).into(),
                ]);
            }
        }
        t.notes = format!(
            "Median of {rounds} rounds (≥{min:?} each), release build, one thread. The memchr strategy \
             validates less (no target, no limits, no Content-Length) so it is a lower bound for that design. \
             TSC cycles are time-stamp-counter ticks (constant rate), not core cycles. {}",
            lab::machine()
        );
        t.print();
        Ok(())
    })
}
