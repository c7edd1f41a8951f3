//! `cargo xtask report`: `docs/README.md` (the status board of all thirty milestones) and the
//! SVG charts `docs/charts/throughput.svg` and `docs/charts/latency.svg`.
//!
//! Everything is derived from files in the repository (manifests, `docs/results/*.json`), so the
//! output is a pure function of the tree and `report --check` can tell when it is stale.
//! Chart data: the medians of every `docs/results/compare-*.json` (one series per scenario) and
//! the `figures` (load reports printed by benches) of `docs/results/mNN*.json`.

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::codegen::{Mode, ensure_file_contents};
use crate::compare::CompareResults;
use crate::manifest::{self, MILESTONE_COUNT, Manifest};
use crate::results::{self, Figure, Profile, md_cell};

/// The command that regenerates what this module writes.
const COMMAND: &str = "cargo xtask report";

/// One point of a chart series.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    rps: f64,
    p99_us: f64,
    timestamp: String,
}

/// Series name → milestone → latest point.
type Series = BTreeMap<String, BTreeMap<u32, Point>>;

/// The chart data and where it came from.
#[derive(Debug, Default)]
struct ChartData {
    series: Series,
    sources: Vec<String>,
}

impl ChartData {
    fn add(&mut self, series: String, milestone: u32, point: Point) {
        let points = self.series.entry(series).or_default();
        match points.get(&milestone) {
            Some(old) if old.timestamp >= point.timestamp => {}
            _ => {
                points.insert(milestone, point);
            }
        }
    }

    fn collect(root: &Path) -> ChartData {
        #[derive(Deserialize)]
        struct WithFigures {
            milestone: u32,
            timestamp: String,
            #[serde(default)]
            figures: Vec<Figure>,
        }
        let mut data = ChartData::default();
        let dir = root.join("docs/results");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for name in names {
            let Ok(text) = std::fs::read_to_string(dir.join(&name)) else {
                continue;
            };
            if name.starts_with("compare-") {
                match serde_json::from_str::<CompareResults>(&text) {
                    Ok(c) => {
                        for side in &c.sides {
                            data.add(
                                format!("{} (compare)", c.scenario),
                                side.milestone,
                                Point {
                                    rps: side.median_rps,
                                    p99_us: side.median_p99_us,
                                    timestamp: c.timestamp.clone(),
                                },
                            );
                        }
                        data.sources.push(name);
                    }
                    Err(e) => {
                        eprintln!("warning: docs/results/{name} is unreadable ({e}); skipped")
                    }
                }
            } else if name.starts_with('m') {
                match serde_json::from_str::<WithFigures>(&text) {
                    Ok(r) if !r.figures.is_empty() => {
                        for f in &r.figures {
                            data.add(
                                format!("{} ({})", f.label, f.scenario),
                                r.milestone,
                                Point {
                                    rps: f.rps,
                                    p99_us: f.p99_us,
                                    timestamp: r.timestamp.clone(),
                                },
                            );
                        }
                        data.sources.push(name);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("warning: docs/results/{name} is unreadable ({e}); skipped")
                    }
                }
            }
        }
        data
    }
}

/// Writes `docs/README.md` and the charts.
pub(crate) fn write(root: &Path) -> Result<()> {
    generate(root, Mode::Write)
}

/// Writes (or checks) `docs/README.md` and the charts.
pub(crate) fn generate(root: &Path, mode: Mode) -> Result<()> {
    let manifests = manifest::load_all(root)?;
    let data = ChartData::collect(root);
    let throughput = chart(
        "Throughput across milestones",
        "requests per second (median)",
        &data,
        |p| p.rps,
    )?;
    let latency = chart(
        "p99 latency across milestones",
        "p99 latency, ms (median)",
        &data,
        |p| p.p99_us / 1000.0,
    )?;
    ensure_file_contents(
        root,
        Path::new("docs/charts/throughput.svg"),
        &throughput,
        mode,
        COMMAND,
    )?;
    ensure_file_contents(
        root,
        Path::new("docs/charts/latency.svg"),
        &latency,
        mode,
        COMMAND,
    )?;
    ensure_file_contents(
        root,
        Path::new("docs/README.md"),
        &readme(root, &manifests, &data),
        mode,
        COMMAND,
    )
}

/// The status board.
fn readme(root: &Path, manifests: &[Manifest], data: &ChartData) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- Generated by `{COMMAND}` from milestones/*.toml and docs/results/*.json; do not edit \
         by hand. `cargo xtask ci` fails when it is stale. -->\n"
    );
    let _ = writeln!(out, "# Zyphos milestones: status board\n");
    let _ = writeln!(
        out,
        "Each row comes from the milestone's manifest (`milestones/NN-slug.toml`) and its last \
         `cargo xtask milestone N --verify` (`docs/results/mNN.json`). An item is *evidenced* \
         when its manifest lists evidence for it, and *passing* when every piece of that \
         evidence passed in the last run. An exit criterion is *met* when its check satisfied \
         its threshold and its evidence passed. Nothing is ticked by hand.\n"
    );
    let _ = writeln!(
        out,
        "| # | milestone | phase | built | evidenced / items | passing | exit criteria met | last verified |"
    );
    let _ = writeln!(out, "|--:|---|--:|:-:|--:|--:|--:|---|");
    let mut totals = results::Counts::default();
    let mut built_count = 0;
    let mut ceilings = Vec::new();
    for m in manifests {
        let r = results::load(root, m);
        let c = results::counts(m, r.as_ref(), None);
        totals.total += c.total;
        totals.evidenced += c.evidenced;
        totals.passing += c.passing;
        totals.exit_total += c.exit_total;
        totals.exit_met += c.exit_met;
        totals.exit_ceiling += c.exit_ceiling;
        if let Some(r) = &r {
            ceilings.extend(ceiling_rows(m, r));
        }
        let built = match m.not_built_reason(root) {
            None => {
                built_count += 1;
                "yes"
            }
            Some(_) if m.built => "crate missing",
            Some(_) => "no",
        };
        let writeup = m.writeup_path();
        let title = if root.join(&writeup).is_file() {
            format!(
                "[{}]({})",
                md_cell(&m.title),
                writeup.strip_prefix("docs").unwrap_or(&writeup).display()
            )
        } else {
            md_cell(&m.title)
        };
        let verified = match &r {
            None => "never".to_string(),
            Some(r) => format!(
                "{} `{}` ({}{})",
                r.timestamp,
                r.git.short(),
                match r.profile {
                    Profile::Quick => "quick",
                    Profile::Full => "full",
                },
                if r.passed {
                    ""
                } else if r.failures() == 0 && r.ceilings().next().is_some() {
                    ", ceiling"
                } else {
                    ", FAILED"
                }
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {title} | {} | {built} | {} / {} | {} | {} / {}{} | {verified} |",
            m.number,
            m.phase,
            c.evidenced,
            c.total,
            c.passing,
            c.exit_met,
            c.exit_total,
            ceiling_note(c.exit_ceiling)
        );
    }
    let _ = writeln!(
        out,
        "| | **all {}** | | **{built_count} / {}** | **{} / {}** | **{}** | **{} / {}**{} | |",
        manifests.len(),
        manifests.len(),
        totals.evidenced,
        totals.total,
        totals.passing,
        totals.exit_met,
        totals.exit_total,
        ceiling_note(totals.exit_ceiling)
    );
    if !ceilings.is_empty() {
        let _ = writeln!(out, "\n## Exit criteria at a ceiling\n");
        let _ = writeln!(
            out,
            "These are **not met**. Each check also measured, in the same run, a yardstick that \
             does strictly less work than any correct implementation; the yardstick missed the \
             threshold too, and the candidate came within {} % of it (the `ceiling` verdict, \
             described in `milestones/README.md`). `--verify` does not fail on them.\n",
            manifest::format_number(results::CEILING_FRACTION * 100.0)
        );
        let _ = writeln!(
            out,
            "| # | exit criterion | measured | yardstick | verdict |"
        );
        let _ = writeln!(out, "|--:|---|---|---|---|");
        for row in &ceilings {
            let _ = writeln!(out, "{row}");
        }
    }
    if manifests.len() != MILESTONE_COUNT as usize {
        let _ = writeln!(
            out,
            "\n**Only {} of {MILESTONE_COUNT} manifests exist.**",
            manifests.len()
        );
    }

    let _ = writeln!(out, "\n## Throughput and latency across milestones\n");
    let _ = writeln!(
        out,
        "![Throughput across milestones](charts/throughput.svg)\n"
    );
    let _ = writeln!(
        out,
        "![p99 latency across milestones](charts/latency.svg)\n"
    );
    if data.series.is_empty() {
        let _ = writeln!(
            out,
            "No measurements yet. `cargo xtask compare A B` (writes `docs/results/compare-A-B-S.json`) \
             and benchmarks that print a `zyphos-load --json` report (recorded by \
             `cargo xtask milestone N --verify` or `--bench`) feed these charts; then run \
             `{COMMAND}`."
        );
    } else {
        let _ = writeln!(out, "| series | milestone | rps | p99 (µs) | measured |");
        let _ = writeln!(out, "|---|--:|--:|--:|---|");
        for (name, points) in &data.series {
            for (m, p) in points {
                let _ = writeln!(
                    out,
                    "| {} | {m} | {} | {} | {} |",
                    md_cell(name),
                    manifest::format_number(p.rps),
                    manifest::format_number(p.p99_us),
                    p.timestamp
                );
            }
        }
        let _ = writeln!(
            out,
            "\nSources: {}.",
            data.sources
                .iter()
                .map(|s| format!("`results/{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // The race against nginx and h2o (requests/s, p99, server CPU µs per request).
    out.push_str(&crate::race::board_section(root));
    out
}

/// ` (1 ceiling)` after the exit-criteria count, or nothing.
fn ceiling_note(ceilings: usize) -> String {
    if ceilings == 0 {
        String::new()
    } else {
        format!(" ({ceilings} ceiling)")
    }
}

/// The board rows of a milestone's exit criteria at a ceiling.
fn ceiling_rows(m: &Manifest, r: &results::MilestoneResults) -> Vec<String> {
    let verdicts = results::verdict_map(Some(r));
    m.exit_items()
        .filter(|item| results::exit_state(item, Some(r), &verdicts) == results::ExitState::Ceiling)
        .filter_map(|item| {
            let check = r
                .checks
                .iter()
                .find(|c| Some(c.id.as_str()) == item.check.as_deref())?;
            Some(format!(
                "| {} | {} | {} | {} | {} |",
                m.number,
                md_cell(&item.text),
                md_cell(&check.measured_text()),
                md_cell(check.yardstick.as_ref().map_or("—", |y| y.what.as_str())),
                results::ExitState::Ceiling.markdown()
            ))
        })
        .collect()
}

/// One chart as SVG text: a line per series over milestones 1–30.
fn chart(
    title: &str,
    y_desc: &str,
    data: &ChartData,
    value: impl Fn(&Point) -> f64,
) -> Result<String> {
    let series: Vec<(&String, Vec<(u32, f64)>)> = data
        .series
        .iter()
        .map(|(name, points)| {
            (
                name,
                points
                    .iter()
                    .map(|(m, p)| (*m, value(p)))
                    .filter(|(_, v)| v.is_finite())
                    .collect(),
            )
        })
        .collect();
    let max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let y_top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let caption = if series.is_empty() {
        format!("{title}: no measurements yet")
    } else {
        title.to_string()
    };
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        area.fill(&WHITE).context("drawing the chart")?;
        let mut chart = ChartBuilder::on(&area)
            .caption(caption, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0u32..(MILESTONE_COUNT + 1), 0f64..y_top)
            .context("drawing the chart")?;
        chart
            .configure_mesh()
            .x_labels(MILESTONE_COUNT as usize + 2)
            .x_desc("milestone")
            .y_desc(y_desc)
            .y_label_formatter(&|v| manifest::format_number(*v))
            .draw()
            .context("drawing the chart axes")?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .context("drawing a series")?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(m, v)| Circle::new((m, v), 4, color.filled())),
                )
                .context("drawing points")?;
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .context("drawing the legend")?;
        }
        area.present().context("finishing the chart")?;
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_chart_says_so() {
        let svg = chart("Throughput", "rps", &ChartData::default(), |p| p.rps).expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("no measurements yet"));
    }

    #[test]
    fn chart_plots_series_and_keeps_latest_point() {
        let mut data = ChartData::default();
        let point = |rps: f64, ts: &str| Point {
            rps,
            p99_us: 900.0,
            timestamp: ts.into(),
        };
        data.add(
            "http1.1 (compare)".into(),
            3,
            point(1000.0, "2026-01-01T00:00:00Z"),
        );
        data.add(
            "http1.1 (compare)".into(),
            3,
            point(2000.0, "2026-02-01T00:00:00Z"),
        );
        data.add(
            "http1.1 (compare)".into(),
            3,
            point(500.0, "2025-12-01T00:00:00Z"),
        );
        data.add(
            "http1.1 (compare)".into(),
            9,
            point(4000.0, "2026-02-01T00:00:00Z"),
        );
        assert_eq!(data.series["http1.1 (compare)"][&3].rps, 2000.0);
        let svg = chart("Throughput", "rps", &data, |p| p.rps).expect("renders");
        assert!(!svg.contains("no measurements yet"));
        assert!(svg.contains("http1.1 (compare)"), "legend names the series");
        assert!(svg.contains("<circle"), "points are drawn");
        // Deterministic: the same data renders the same bytes (required by `report --check`).
        assert_eq!(
            chart("Throughput", "rps", &data, |p| p.rps).expect("again"),
            svg
        );
    }

    #[test]
    fn ceilings_are_listed_as_not_met_with_both_figures() {
        let (m, r) = results::tests::at_ceiling();
        assert_eq!(
            ceiling_rows(&m, &r),
            vec![
                "| 7 | 10x faster than malloc | 5.7 x of 10 x; ceiling here 6.7 x | \
                 a bare index stack, no checks | **not met** (ceiling) |"
                    .to_string()
            ]
        );
        assert_eq!(ceiling_note(0), "");
        assert_eq!(ceiling_note(1), " (1 ceiling)");
        // A plain miss is not listed.
        let mut miss = r;
        miss.checks[0].verdict = results::Verdict::Fail;
        assert!(ceiling_rows(&m, &miss).is_empty());
    }

    #[test]
    fn readme_lists_all_thirty() {
        let root = manifest::project_root();
        let manifests = manifest::load_all(&root).expect("manifests");
        let text = readme(&root, &manifests, &ChartData::default());
        let rows = text
            .lines()
            .filter(|l| {
                l.starts_with("| ")
                    && l.split('|')
                        .nth(1)
                        .is_some_and(|c| c.trim().parse::<u32>().is_ok())
            })
            .count();
        assert_eq!(rows, 30, "{text}");
        assert!(text.contains("/ 1080**"), "{text}");
        assert!(text.contains("No measurements yet"));
    }
}
