//! `cargo xtask milestone N`: the checklist with each item's state, counts per section, and the
//! last verified results.
//!
//! States come from the manifest's evidence lists and the last `docs/results/mNN.json`:
//! `[x]` every evidence entry passed, `[!]` one failed, `[?]` evidence listed but not verified
//! by the last run, `[ ]` open (no evidence). Nothing is ticked by hand.

use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::{Manifest, Section};
use crate::results::{self, CheckRecord, ExitState, ItemState, MilestoneResults, Profile, Verdict};

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
                let met = match results::exit_state(item, r, &verdicts) {
                    ExitState::Met => "met".to_string(),
                    ExitState::NotMet => "not met".to_string(),
                    ExitState::Ceiling => format!(
                        "not met (ceiling: {})",
                        r.and_then(|r| item
                            .check
                            .as_deref()
                            .and_then(|id| r.checks.iter().find(|c| c.id == id)))
                            .map_or_else(String::new, CheckRecord::measured_text)
                    ),
                };
                let _ = writeln!(out, "        check {check}, threshold {threshold}: {met}");
            }
            if state != ItemState::Open {
                for e in &item.evidence {
                    let mark = match verdicts.get(e.get_ref().as_str()) {
                        Some(Verdict::Pass) => "pass",
                        Some(Verdict::Fail) => "FAIL",
                        Some(Verdict::Ceiling) => "CEILING",
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
        "\n{} items: {} evidenced ({} passing, {} failing), {} open; exit criteria met {}/{}{}",
        c.total,
        c.evidenced,
        c.passing,
        c.failing,
        c.total - c.evidenced,
        c.exit_met,
        c.exit_total,
        if c.exit_ceiling == 0 {
            String::new()
        } else {
            format!(" ({} more at a ceiling, not met)", c.exit_ceiling)
        }
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
                if r.passed {
                    "passed".to_string()
                } else if r.failures() == 0 && r.ceilings().next().is_some() {
                    r.outcome()
                } else {
                    "FAILED".to_string()
                }
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

    #[test]
    fn a_ceiling_shows_as_not_met_with_both_figures() {
        let (m, r) = results::tests::at_ceiling();
        let text = render(&project_root(), &m, Some(&r));
        assert!(
            text.contains(
                "check speedup, threshold >= 10 x (vs malloc, same run): \
                 not met (ceiling: 5.7 x of 10 x; ceiling here 6.7 x)"
            ),
            "{text}"
        );
        assert!(
            text.contains("exit criteria met 0/1 (1 more at a ceiling, not met)"),
            "{text}"
        );
        assert!(
            text.contains("quick profile: 1 exit check at a ceiling (not met), nothing failed"),
            "{text}"
        );
        assert!(
            text.contains("  CEILING speedup: measured 5.7 x of 10 x; ceiling here 6.7 x"),
            "{text}"
        );
    }
}
