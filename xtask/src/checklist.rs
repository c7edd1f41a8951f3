//! `cargo xtask milestone N`: the checklist with each item's state, counts per section, and the
//! last verified results.
//!
//! States come from the manifest's evidence lists and the last `docs/results/mNN.json`:
//! `[x]` every evidence entry passed, `[!]` one failed, `[?]` evidence listed but not verified
//! by the last run, `[ ]` open (no evidence). Nothing is ticked by hand.

use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::{Manifest, Section};
use crate::results::{self, CheckRecord, ItemState, MilestoneResults, Profile, Verdict};

/// Renders the checklist (what `cargo xtask milestone N` prints).
pub(crate) fn render(root: &Path, m: &Manifest, r: Option<&MilestoneResults>) -> String {
    let mut out = String::new();
    let verdicts = results::verdict_map(r);
    let built = match m.not_built_reason(root) {
        None => "built".to_string(),
        Some(_) if m.built => format!("built = true but {} is missing", m.crate_dir().display()),
        Some(_) => "not built yet".to_string(),
    };
    let _ = writeln!(out, "Milestone {}: {}", m.number, m.title);
    let _ = writeln!(
        out,
        "  phase {} ({}), crate {}, {built}",
        m.phase, m.phase_title, m.crate_name
    );
    let _ = writeln!(
        out,
        "  server: zyphos {} (speaks {})",
        m.server.args.join(" "),
        m.server.protocol
    );
    let _ = writeln!(out, "  manifest: {}", m.path.display());

    for section in Section::ALL {
        let c = results::counts(m, r, Some(section));
        if c.total == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} ({} items: {} passing, {} failing, {} not verified, {} open)",
            section.heading(),
            c.total,
            c.passing,
            c.failing,
            c.evidenced - c.passing - c.failing,
            c.total - c.evidenced
        );
        for item in m
            .items
            .iter()
            .map(|i| i.get_ref())
            .filter(|i| i.section == section)
        {
            let state = results::item_state(item, &verdicts);
            let _ = writeln!(out, "  {} {}", state.glyph(), item.text);
            if section == Section::Exit {
                let threshold = item
                    .threshold
                    .as_ref()
                    .map_or_else(|| "no threshold".into(), ToString::to_string);
                let check = item.check.as_deref().unwrap_or("no check");
                let met = if results::exit_met(item, r, &verdicts) {
                    "met"
                } else {
                    "not met"
                };
                let _ = writeln!(out, "        check {check}, threshold {threshold}: {met}");
            }
            if state != ItemState::Open {
                for e in &item.evidence {
                    let mark = match verdicts.get(e.get_ref().as_str()) {
                        Some(Verdict::Pass) => "pass",
                        Some(Verdict::Fail) => "FAIL",
                        None => "not verified",
                    };
                    let _ = writeln!(out, "        {} ({mark})", e.get_ref());
                }
            }
        }
    }

    let c = results::counts(m, r, None);
    let _ = writeln!(
        out,
        "\n{} items: {} evidenced ({} passing, {} failing), {} open; exit criteria met {}/{}",
        c.total,
        c.evidenced,
        c.passing,
        c.failing,
        c.total - c.evidenced,
        c.exit_met,
        c.exit_total
    );

    match r {
        None => {
            let _ = writeln!(
                out,
                "Last verified: never (run `cargo xtask milestone {} --verify`)",
                m.number
            );
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "Last verified: {} at {} on {}, {} profile: {}",
                r.timestamp,
                r.git.short(),
                r.machine.summary(),
                match r.profile {
                    Profile::Quick => "quick",
                    Profile::Full => "full",
                },
                if r.passed { "passed" } else { "FAILED" }
            );
            for check in &r.checks {
                let _ = writeln!(
                    out,
                    "  {} {}: measured {}, threshold {}{}",
                    check.verdict.label(),
                    check.id,
                    CheckRecord::measured_text(check),
                    check.threshold,
                    if check.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", check.detail)
                    }
                );
            }
            for x in &r.experiments {
                let _ = writeln!(
                    out,
                    "  {} experiment {}{}",
                    x.verdict.label(),
                    x.name,
                    x.table.as_ref().map_or_else(String::new, |t| format!(
                        ": {} ({} rows)",
                        t.title,
                        t.rows.len()
                    ))
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{find, project_root};

    #[test]
    fn milestone_4_lists_39_items() {
        let root = project_root();
        let m = find(&root, "4").expect("manifest 4");
        let text = render(&root, &m, None);
        let items = text
            .lines()
            .filter(|l| {
                ["[ ]", "[x]", "[!]", "[?]"]
                    .iter()
                    .any(|g| l.trim_start().starts_with(g))
            })
            .count();
        assert_eq!(items, 39, "{text}");
        assert!(text.contains("Exit Criteria (5 items"), "{text}");
        assert!(text.contains("Last verified: never"), "{text}");
    }
}
