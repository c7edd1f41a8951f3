//! Exit check `routing_analysis_table`: runs the experiments' measurements at full size —
//! lookup algorithms at 10…10,000 routes, memory per route, priority ordering, regex routing,
//! query parsing and URL decoding — validates every table (rows, columns, numbers, machine),
//! checks the shapes the write-up explains (linear grows with the table, the trie does not; all
//! kinds agree on priority; plain paths decode without allocating), and checks that
//! docs/milestones/05-routing.md describes each experiment. Prints `{"pass", "detail"}`.

use std::path::Path;

use m05_routing::lab::{self, experiments as x};

#[global_allocator]
static ALLOC: m05_routing::sys::CountingAlloc = m05_routing::sys::CountingAlloc;

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let lookup = x::lookup_algorithms(false)?;
        let memory = x::memory_overhead(false)?;
        let priority = x::priority_table()?;
        let regex = x::regex_routing(false)?;
        let query = x::query_parsing(false)?;
        let decode = x::url_decoding(false)?;
        let mut problems = Vec::new();
        problems.extend(x::validate(&lookup, 12));
        problems.extend(x::validate(&memory, 12));
        problems.extend(x::validate(&priority, x::PRIORITY_REQUESTS.len()));
        problems.extend(x::validate(&regex, 12));
        problems.extend(x::validate(&query, 8));
        problems.extend(x::validate(&decode, x::decoding_inputs().len()));
        let mixed = |kind: &str, n: usize| {
            x::find_row(&lookup, n, kind).map_or(f64::NAN, |r| x::cell(&lookup, r, "mixed ns"))
        };
        for n in [10, 100, 1000, 10_000] {
            for kind in ["linear", "hash", "prefix"] {
                if x::find_row(&lookup, n, kind).is_none() {
                    problems.push(format!("lookup table lacks {kind} at {n} routes"));
                }
            }
        }
        // The shape the lesson explains: a scan grows with the table, a trie does not.
        let (l10, l10k, p10, p10k) = (
            mixed("linear", 10),
            mixed("linear", 10_000),
            mixed("prefix", 10),
            mixed("prefix", 10_000),
        );
        let grew = l10k > 10.0 * l10;
        if !grew {
            problems.push(format!(
                "linear did not grow with the table: {l10} ns at 10, {l10k} ns at 10,000"
            ));
        }
        let flat = p10k < 10.0 * p10.max(1.0);
        if !flat {
            problems.push(format!(
                "prefix grew with the table: {p10} ns at 10, {p10k} ns at 10,000"
            ));
        }
        if priority
            .rows
            .iter()
            .any(|r| r.last().and_then(|c| c.as_str()) != Some("yes"))
        {
            problems.push("the three kinds disagree on a priority case".into());
        }
        for (i, (name, path)) in x::decoding_inputs().iter().enumerate() {
            let allocs = x::cell(&decode, i, "allocs/decode");
            if !path.contains('%') && !path.contains("/.") && allocs != 0.0 {
                problems.push(format!("{name}: a plain path allocated {allocs} times"));
            }
        }
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/milestones/05-routing.md");
        match std::fs::read_to_string(&doc) {
            Ok(text) => {
                for needle in [
                    "route_lookup_algorithms",
                    "routing_memory_overhead",
                    "route_priority_ordering",
                    "regex_routing_cost",
                    "query_parsing_cost",
                    "url_decoding_cost",
                ] {
                    if !text.contains(needle) {
                        problems.push(format!(
                            "docs/milestones/05-routing.md does not describe {needle}"
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("cannot read docs/milestones/05-routing.md: {e}")),
        }
        let mem = |kind: &str| {
            x::find_row(&memory, 10_000, kind)
                .map_or(f64::NAN, |r| x::cell(&memory, r, "table B/route"))
        };
        let re = |name: &str| {
            regex
                .rows
                .iter()
                .position(|r| r[0].as_u64() == Some(1000) && r[1].as_str() == Some(name))
                .map_or(f64::NAN, |r| x::cell(&regex, r, "mixed ns"))
        };
        let detail = format!(
            "mixed lookup ns at 10 / 10,000 routes: linear {l10} / {l10k}, hash {} / {}, prefix {p10} / {p10k}; table \
             bytes/route at 10,000: linear {}, hash {}, prefix {}; 1,000 routes mixed ns: regex one-per-route {}, \
             RegexSet {}, prefix {}; query 16 plain pairs decode-all {} ns; URL decode short plain {} ns (0 allocs) vs \
             every char escaped {} ns. Tables: {} + {} + {} + {} + {} + {} rows. Machine: {}{}",
            mixed("hash", 10),
            mixed("hash", 10_000),
            mem("linear"),
            mem("hash"),
            mem("prefix"),
            re("regex, one per route"),
            re("regex, RegexSet + captures"),
            re("prefix"),
            x::cell(&query, 4, "decode all ns"),
            x::cell(&decode, 1, "decode ns"),
            x::cell(&decode, decode.rows.len() - 1, "decode ns"),
            lookup.rows.len(),
            memory.rows.len(),
            priority.rows.len(),
            regex.rows.len(),
            query.rows.len(),
            decode.rows.len(),
            lab::machine(),
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
