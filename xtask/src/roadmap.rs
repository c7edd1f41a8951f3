//! The roadmap's checklist structure, parsed from `milestones/roadmap/ZYPHOS-ROADMAP.md`, and the
//! item-by-item comparison of the manifests against it.
//!
//! The milestone part starts at `## 📍 Learning Milestones` and ends at the next `## ` heading.
//! Milestones are `### N) Title`; sections are `#### …` headings; items are `- [ ] text`;
//! Learning Objectives are plain `- text` bullets (text only, not items). Phases come from the
//! `### Phase N: Title` lists earlier in the file.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::manifest::{MILESTONE_COUNT, Manifest, Section};

/// Items per milestone in the roadmap: 34, 35, 36, 39, then 36 for each of the other 26.
pub(crate) const EXPECTED_ITEM_COUNTS: [usize; MILESTONE_COUNT as usize] = [
    34, 35, 36, 39, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36, 36,
    36, 36, 36, 36, 36, 36,
];

/// The heading that opens the milestone part of the roadmap.
const MILESTONES_HEADING: &str = "## 📍 Learning Milestones";

/// One milestone as the roadmap lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoadmapMilestone {
    /// `N` of `### N) Title`.
    pub(crate) number: u32,
    /// `Title` of `### N) Title`.
    pub(crate) title: String,
    /// The phase (number, title) that lists it.
    pub(crate) phase: Option<(u32, String)>,
    /// Learning objectives.
    pub(crate) objectives: Vec<String>,
    /// Checklist items in order.
    pub(crate) items: Vec<(Section, String)>,
}

/// Where the roadmap copy lives.
pub(crate) fn roadmap_path(root: &Path) -> PathBuf {
    root.join("milestones/roadmap/ZYPHOS-ROADMAP.md")
}

/// Reads and parses the roadmap copy.
pub(crate) fn load(root: &Path) -> Result<Vec<RoadmapMilestone>> {
    let path = roadmap_path(root);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

enum Current {
    Objectives,
    Items(Section),
}

fn section_for(heading: &str) -> Option<Current> {
    if heading == "Learning Objectives" {
        return Some(Current::Objectives);
    }
    Section::ALL
        .into_iter()
        .find(|s| s.heading() == heading)
        .map(Current::Items)
}

/// `N) Title` → (N, Title).
fn numbered(s: &str) -> Option<(u32, String)> {
    let (n, title) = s.split_once(") ")?;
    Some((n.trim().parse().ok()?, title.trim().to_string()))
}

/// Parses the roadmap's phases and milestone checklists.
pub(crate) fn parse(text: &str) -> Result<Vec<RoadmapMilestone>> {
    // Phases: `### Phase N: Title` followed by `- [ ] K) Milestone`.
    let mut phases: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    let mut phase: Option<(u32, String)> = None;
    let mut in_milestones = false;
    let mut milestones: Vec<RoadmapMilestone> = Vec::new();
    let mut current: Option<Current> = None;

    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end();
        if line.starts_with("## ") {
            in_milestones = line == MILESTONES_HEADING;
            phase = None;
            current = None;
            continue;
        }
        if !in_milestones {
            if let Some(rest) = line.strip_prefix("### Phase ") {
                let (n, title) = rest
                    .split_once(": ")
                    .with_context(|| format!("line {line_no}: phase heading without `N: Title`"))?;
                let n = n
                    .parse()
                    .with_context(|| format!("line {line_no}: phase number `{n}`"))?;
                phase = Some((n, title.to_string()));
            } else if let (Some(p), Some(rest)) = (&phase, line.strip_prefix("- [ ] ")) {
                if let Some((k, _)) = numbered(rest) {
                    phases.insert(k, p.clone());
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("#### ") {
            current = Some(section_for(rest.trim()).with_context(|| {
                format!(
                    "line {line_no}: unknown section heading `#### {}`",
                    rest.trim()
                )
            })?);
        } else if let Some(rest) = line.strip_prefix("### ") {
            let (number, title) = numbered(rest).with_context(|| {
                format!("line {line_no}: milestone heading is not `### N) Title`")
            })?;
            milestones.push(RoadmapMilestone {
                number,
                title,
                phase: phases.get(&number).cloned(),
                objectives: Vec::new(),
                items: Vec::new(),
            });
            current = None;
        } else if let Some(rest) = line.strip_prefix("- [ ] ") {
            let (Some(m), Some(Current::Items(section))) = (milestones.last_mut(), &current) else {
                bail!("line {line_no}: checklist item outside a milestone's checklist section");
            };
            m.items.push((*section, rest.trim().to_string()));
        } else if let Some(rest) = line.strip_prefix("- ") {
            let (Some(m), Some(Current::Objectives)) = (milestones.last_mut(), &current) else {
                bail!("line {line_no}: plain bullet outside Learning Objectives: `{line}`");
            };
            m.objectives.push(rest.trim().to_string());
        }
    }
    if milestones.is_empty() {
        bail!("no `{MILESTONES_HEADING}` section with `### N) Title` milestones");
    }
    Ok(milestones)
}

/// Every difference between the manifests and the roadmap (empty when they match).
pub(crate) fn compare(roadmap: &[RoadmapMilestone], manifests: &[Manifest]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in roadmap {
        let Some(m) = manifests.iter().find(|m| m.number == r.number) else {
            problems.push(format!(
                "roadmap milestone {} ({}) has no manifest in milestones/",
                r.number, r.title
            ));
            continue;
        };
        let file = m.path.display();
        if m.title != r.title {
            problems.push(format!(
                "{file}: title is \"{}\", the roadmap says \"{}\"",
                m.title, r.title
            ));
        }
        if let Some((n, title)) = &r.phase {
            if m.phase != *n || m.phase_title != *title {
                problems.push(format!(
                    "{file}: phase is {} \"{}\", the roadmap says {n} \"{title}\"",
                    m.phase, m.phase_title
                ));
            }
        }
        if m.objectives != r.objectives {
            problems.push(format!(
                "{file}: objectives differ from the roadmap's Learning Objectives ({} vs {})",
                m.objectives.len(),
                r.objectives.len()
            ));
        }
        let expected = usize::try_from(r.number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| EXPECTED_ITEM_COUNTS.get(i));
        if let Some(&expected) = expected {
            if r.items.len() != expected {
                problems.push(format!(
                    "the roadmap copy lists {} items for milestone {}, expected {expected} \
                     (if the roadmap changed upstream, update EXPECTED_ITEM_COUNTS in xtask)",
                    r.items.len(),
                    r.number
                ));
            }
        }
        if m.items.len() != r.items.len() {
            problems.push(format!(
                "{file}: {} items, the roadmap has {}",
                m.items.len(),
                r.items.len()
            ));
        }
        // The first mismatch in order says the most; later ones usually follow from it.
        let mismatch =
            m.items
                .iter()
                .zip(&r.items)
                .enumerate()
                .find(|(_, (mi, (section, text)))| {
                    mi.get_ref().section != *section || mi.get_ref().text != *text
                });
        if let Some((i, (mi, (section, text)))) = mismatch {
            let item = mi.get_ref();
            problems.push(format!(
                "{}: item {} is ({}) \"{}\", the roadmap has ({}) \"{}\"",
                m.location(mi.span()),
                i + 1,
                item.section.key(),
                item.text,
                section.key(),
                text
            ));
        } else if m.items.len() > r.items.len() {
            let extra = &m.items[r.items.len()];
            problems.push(format!(
                "{}: item {} (\"{}\") is not in the roadmap",
                m.location(extra.span()),
                r.items.len() + 1,
                extra.get_ref().text
            ));
        }
    }
    for m in manifests {
        if !roadmap.iter().any(|r| r.number == m.number) {
            problems.push(format!(
                "{}: milestone {} is not in the roadmap",
                m.path.display(),
                m.number
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{self, project_root};

    #[test]
    fn manifests_match_roadmap() {
        let root = project_root();
        let roadmap = load(&root).expect("roadmap parses");
        let numbers: Vec<u32> = roadmap.iter().map(|m| m.number).collect();
        assert_eq!(numbers, (1..=MILESTONE_COUNT).collect::<Vec<_>>());
        let counts: Vec<usize> = roadmap.iter().map(|m| m.items.len()).collect();
        assert_eq!(counts, EXPECTED_ITEM_COUNTS, "roadmap item counts");
        assert_eq!(counts.iter().sum::<usize>(), 1080);
        for m in &roadmap {
            let exits = m.items.iter().filter(|(s, _)| *s == Section::Exit).count();
            assert_eq!(exits, 5, "milestone {} exit criteria", m.number);
            assert!(
                !m.objectives.is_empty(),
                "milestone {} objectives",
                m.number
            );
            assert!(m.phase.is_some(), "milestone {} phase", m.number);
        }

        let manifests = manifest::load_all(&root).expect("every manifest parses");
        let manifest_counts: Vec<usize> = manifests.iter().map(|m| m.items.len()).collect();
        assert_eq!(
            manifest_counts, EXPECTED_ITEM_COUNTS,
            "manifest item counts"
        );
        let problems = compare(&roadmap, &manifests);
        assert!(
            problems.is_empty(),
            "manifests differ:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn comparison_catches_reordered_and_edited_items() {
        let root = project_root();
        let roadmap = load(&root).expect("roadmap parses");
        let mut manifests = manifest::load_all(&root).expect("manifests parse");
        // Swap two items of milestone 4 and reword one of milestone 9's exit criteria.
        manifests[3].items.swap(0, 1);
        let last = manifests[8].items.len() - 1;
        let mut edited = manifests[8].items[last].clone().into_inner();
        edited.text.push_str(" (mostly)");
        manifests[8].items[last] = toml::Spanned::new(0..0, edited);
        // Drop an item of milestone 30.
        manifests[29].items.pop();
        let problems = compare(&roadmap, &manifests);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("04-http10.toml") && problems[0].contains("item 1 "));
        assert!(problems[1].contains("09-event-loop.toml") && problems[1].contains("(mostly)"));
        assert!(problems[2].contains("30-quic.toml: 35 items, the roadmap has 36"));
    }

    #[test]
    fn parses_a_small_roadmap() {
        let text = "# X\n\n## Learning Roadmap\n\n### Phase 1: Foundations\n- [ ] 1) First\n\n\
                    ## 📍 Learning Milestones\n\n### 1) First\n\n#### Learning Objectives\n- Learn\n\n\
                    #### Implementation Scope\n- [ ] Build it\n\n#### Exit Criteria\n- [ ] Works\n\n\
                    ## 🎓 Learning Outcomes\n- [ ] not an item\n";
        let parsed = parse(text).expect("parses");
        assert_eq!(
            parsed,
            vec![RoadmapMilestone {
                number: 1,
                title: "First".into(),
                phase: Some((1, "Foundations".into())),
                objectives: vec!["Learn".into()],
                items: vec![
                    (Section::Scope, "Build it".into()),
                    (Section::Exit, "Works".into())
                ],
            }]
        );
        let bad = text.replace("#### Exit Criteria", "#### Exit Criterion");
        let err = parse(&bad).expect_err("unknown heading");
        assert!(err.to_string().contains("Exit Criterion"), "{err}");
    }
}
