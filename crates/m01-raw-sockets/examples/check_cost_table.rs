//! Exit check `syscall_cost_table`: measures this revision's syscall cost tables at full size —
//! `write`/`read` cost from 64 B to 1 MiB and `send` vs `write` vs `writev` — checks that both are
//! well-formed (every size and method present, positive numbers, throughput growing with buffer
//! size, machine info in the notes) and that the write-up documents both experiments.
//! Prints `{"pass", "detail"}`.

use std::path::Path;

use m01_raw_sockets::lab::{self, cost};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let machine = lab::machine();
        let sizes = cost::table(false)?;
        let methods = cost::write_methods_table(false)?;
        let sizes_json = serde_json::to_value(&sizes).map_err(std::io::Error::other)?;
        let mut problems = cost::validate(&sizes_json);
        if methods.rows.len() != cost::Method::ALL.len() * 3 {
            problems.push(format!(
                "write methods table has {} rows, expected {}",
                methods.rows.len(),
                cost::Method::ALL.len() * 3
            ));
        }
        for m in cost::Method::ALL {
            if !methods
                .rows
                .iter()
                .any(|r| r.first().and_then(|c| c.as_str()) == Some(m.name()))
            {
                problems.push(format!("write methods table lacks {}", m.name()));
            }
        }
        for row in &methods.rows {
            if !row
                .iter()
                .skip(1)
                .all(|c| c.as_f64().is_some_and(|x| x > 0.0))
            {
                problems.push(format!(
                    "write methods row {row:?} has a non-positive number"
                ));
            }
        }
        for (name, notes) in [("cost", &sizes.notes), ("write methods", &methods.notes)] {
            if !notes.contains(&machine) {
                problems.push(format!("{name} table notes lack the machine ({machine})"));
            }
        }
        let doc =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/milestones/01-raw-sockets.md");
        match std::fs::read_to_string(&doc) {
            Ok(text) => {
                for needle in ["syscall_cost", "write_methods"] {
                    if !text.contains(needle) {
                        problems.push(format!(
                            "docs/milestones/01-raw-sockets.md does not describe {needle}"
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!(
                "cannot read docs/milestones/01-raw-sockets.md: {e}"
            )),
        }
        let cell = |t: &lab::Table, r: usize, c: usize| {
            t.rows
                .get(r)
                .and_then(|row| row.get(c))
                .cloned()
                .unwrap_or_default()
        };
        let last = sizes.rows.len().saturating_sub(1);
        let find = |name: &str, body: u64| {
            methods
                .rows
                .iter()
                .find(|r| r[0].as_str() == Some(name) && r[1].as_u64() == Some(body))
                .map_or(serde_json::Value::Null, |r| r[4].clone())
        };
        let detail = format!(
            "cost table: {} rows (64 B … 1 MiB); write(64 B) {} ns/call at {} MB/s, write(64 KiB) {} ns/call at {} MB/s, \
             write(1 MiB) {} ns/call at {} MB/s. Write methods at 1 KiB (ns/message): send {}, write {}, writev {}; \
             header+body: 2 sends {}, writev {}, copy+send {}. Machine: {machine}. Both documented in \
             docs/milestones/01-raw-sockets.md{}",
            sizes.rows.len(),
            cell(&sizes, 0, 2),
            cell(&sizes, 0, 7),
            cell(&sizes, 5, 2),
            cell(&sizes, 5, 7),
            cell(&sizes, last, 2),
            cell(&sizes, last, 7),
            find("send(buf)", 1024),
            find("write(buf)", 1024),
            find("writev([buf])", 1024),
            find("send(header) + send(body)", 1024),
            find("writev([header, body])", 1024),
            find("copy header+body, send(buf)", 1024),
            if problems.is_empty() {
                String::new()
            } else {
                format!("; FAILED: {}", problems.join("; "))
            }
        );
        lab::print_check(problems.is_empty(), &detail);
        Ok(())
    })
}
