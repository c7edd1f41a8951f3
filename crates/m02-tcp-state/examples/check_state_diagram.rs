//! Exit check `state_diagram_complete`: the write-up's state diagram
//! (`docs/milestones/02-tcp-state.md`, the ```mermaid stateDiagram-v2 block) must
//! 1. name every state of the code's `TcpState` enum,
//! 2. draw every state change the code's transition function `state::next` can make,
//! 3. draw no edge that function cannot make (edges labelled `kernel …` are the kernel's own,
//!    outside what user space observes, and are exempt),
//! 4. draw every transition observed in a fresh 1,000-lifecycle run (the `lifecycles` check's
//!    mix, against the real server).
//!
//! Prints `{"pass", "detail"}`.

use std::collections::BTreeSet;

use m02_tcp_state::lab::{self, lifecycle};
use m02_tcp_state::state::{self, Event, TcpState};

/// One drawn edge: (from, to, kernel-only).
type Edge = (String, String, bool);

/// Edges and node names of the first mermaid stateDiagram block.
fn parse(doc: &str) -> Option<(Vec<Edge>, BTreeSet<String>)> {
    let mut in_block = false;
    let mut found = false;
    let mut edges = Vec::new();
    let mut nodes = BTreeSet::new();
    for line in doc.lines() {
        let t = line.trim();
        if !in_block {
            if t.starts_with("```mermaid") {
                in_block = true;
            }
            continue;
        }
        if t.starts_with("```") {
            if found {
                return Some((edges, nodes));
            }
            in_block = false;
            continue;
        }
        if t.starts_with("stateDiagram") {
            found = true;
            continue;
        }
        if !found {
            continue;
        }
        if let Some((lhs, rest)) = t.split_once("-->") {
            let (rhs, label) = rest.split_once(':').unwrap_or((rest, ""));
            let (a, b) = (lhs.trim().to_owned(), rhs.trim().to_owned());
            nodes.insert(a.clone());
            nodes.insert(b.clone());
            edges.push((a, b, label.trim().starts_with("kernel")));
        } else if let Some(rest) = t.strip_prefix("state ") {
            if let Some(name) = rest.split_whitespace().next() {
                nodes.insert(name.to_owned());
            }
        }
    }
    None
}

fn main() -> std::process::ExitCode {
    lab::run_main(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/milestones/02-tcp-state.md");
        let doc = std::fs::read_to_string(&path)?;
        let mut problems = Vec::new();
        let Some((edges, nodes)) = parse(&doc) else {
            lab::print_check(
                false,
                &format!("no ```mermaid stateDiagram block in {}", path.display()),
            );
            return Ok(());
        };
        let drawn: BTreeSet<(String, String)> = edges
            .iter()
            .map(|(a, b, _)| (a.clone(), b.clone()))
            .collect();
        // 1. Every state.
        for s in TcpState::ALL {
            if !nodes.contains(s.ident()) {
                problems.push(format!("state {} missing", s.ident()));
            }
        }
        // 2. Every change the code can make.
        let mut possible = BTreeSet::new();
        for from in TcpState::ALL {
            for e in Event::ALL {
                if let Ok(to) = state::next(from, e) {
                    if to != from {
                        possible.insert((from.ident().to_owned(), to.ident().to_owned()));
                    }
                }
            }
        }
        for (a, b) in &possible {
            if !drawn.contains(&(a.clone(), b.clone())) {
                problems.push(format!("code transition {a} → {b} not drawn"));
            }
        }
        // 3. Nothing invented.
        for (a, b, kernel) in &edges {
            let both_states = TcpState::from_name(a).is_some() && TcpState::from_name(b).is_some();
            if both_states && !kernel && !possible.contains(&(a.clone(), b.clone())) {
                problems.push(format!("edge {a} → {b} is not a transition of state::next"));
            }
        }
        // 4. Every transition observed in a 1,000-lifecycle run.
        let run = lifecycle::run_mix(&lifecycle::THOUSAND, 50)?;
        for (f, t, n) in &run.observed {
            if !drawn.contains(&(f.ident().to_owned(), t.ident().to_owned())) {
                problems.push(format!(
                    "observed {} → {} (×{n}) not drawn",
                    f.ident(),
                    t.ident()
                ));
            }
        }
        let detail = format!(
            "{}: diagram has {} nodes and {} edges ({} kernel-only); all {} states of TcpState named; \
             {} state changes state::next can make, all drawn, none invented; {} distinct transitions \
             observed in {} lifecycles ({} correct), all drawn: {}{}",
            path.strip_prefix(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
                .unwrap_or(&path)
                .display(),
            nodes.len(),
            edges.len(),
            edges.iter().filter(|e| e.2).count(),
            TcpState::COUNT,
            possible.len(),
            run.observed.len(),
            run.planned,
            run.correct,
            run.observed
                .iter()
                .map(|(f, t, _)| format!("{}→{}", f.ident(), t.ident()))
                .collect::<Vec<_>>()
                .join(", "),
            if problems.is_empty() {
                String::new()
            } else {
                format!("; PROBLEMS: {}", problems.join("; "))
            }
        );
        lab::print_check(problems.is_empty(), &detail);
        Ok(())
    })
}
