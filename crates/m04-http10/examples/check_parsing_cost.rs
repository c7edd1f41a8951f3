//! Exit check `parsing_cost_table`: times m04's parser and httparse in the same run on the
//! three benchmark inputs (criterion-independent), checks the table is complete (ns/request,
//! bytes/s, TSC cycles/byte for both parsers and every input, positive numbers, machine noted)
//! and that the write-up carries the parsing cost analysis. Prints `{"pass", "detail"}` with the
//! table in the detail.

use std::path::Path;
use std::time::Duration;

use m04_http10::lab::{self, cost};

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let mut problems = Vec::new();
        let mut rows = Vec::new();
        let mut worst_ratio: f64 = 0.0;
        for (name, input) in cost::inputs() {
            let ours = cost::measure(cost::ours, &input, 7, Duration::from_millis(150));
            let theirs = cost::measure(cost::httparse, &input, 7, Duration::from_millis(150));
            for (who, c) in [("m04", ours), ("httparse", theirs)] {
                if !(c.ns_per_request > 0.0 && c.bytes_per_sec > 0.0) {
                    problems.push(format!("{name}/{who}: non-positive timing"));
                }
                match c.tsc_cycles_per_byte {
                    Some(x) if x > 0.0 => {}
                    Some(_) => problems.push(format!("{name}/{who}: non-positive cycles/byte")),
                    None if cfg!(target_arch = "x86_64") => {
                        problems.push(format!("{name}/{who}: no TSC reading"))
                    }
                    None => {}
                }
            }
            let ratio = ours.ns_per_request / theirs.ns_per_request;
            worst_ratio = worst_ratio.max(ratio);
            rows.push(format!(
                "{name} ({} B): m04 {:.0} ns, {:.0} MB/s, {:.2} TSC cycles/B; httparse {:.0} ns, {:.0} MB/s, {:.2} TSC cycles/B; ratio {:.2}",
                input.len(),
                ours.ns_per_request,
                ours.bytes_per_sec / 1e6,
                ours.tsc_cycles_per_byte.unwrap_or(f64::NAN),
                theirs.ns_per_request,
                theirs.bytes_per_sec / 1e6,
                theirs.tsc_cycles_per_byte.unwrap_or(f64::NAN),
                ratio
            ));
        }
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/milestones/04-http10.md");
        match std::fs::read_to_string(&doc) {
            Ok(text) => {
                for needle in [
                    "## Parsing cost",
                    "parse_strategies",
                    "cachegrind",
                    "TSC cycles",
                    "httparse",
                ] {
                    if !text.contains(needle) {
                        problems.push(format!("docs/milestones/04-http10.md lacks `{needle}`"));
                    }
                }
            }
            Err(e) => problems.push(format!("cannot read {}: {e}", doc.display())),
        }
        let pass = problems.is_empty();
        let detail = format!(
            "{}; worst m04/httparse time ratio {:.2} (goal ≤ 2); {}{}",
            rows.join("; "),
            worst_ratio,
            lab::machine(),
            if pass {
                String::new()
            } else {
                format!("; problems: {}", problems.join("; "))
            }
        );
        eprintln!("{detail}");
        lab::print_check(pass, &detail);
        Ok(())
    })
}
