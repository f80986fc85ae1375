//! The `kompress eval --report DIR` report: `report.md` with every table, and two charts
//! drawn by the binary as SVG (`plotters`, SVG backend only: no fonts are read, text is
//! written as SVG `<text>`).
//!
//! - `reduction_vs_retention.svg`: per corpus domain, token reduction against must-keep
//!   retention, for kompress, the head+tail truncation baseline and the identity baseline;
//! - `latency.svg`: the distribution of hook latencies, with p50 and p95 marked.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use crate::eval::{self, EvalResult, Summary, pct};
use crate::heretic;

/// Write `report.md`, `reduction_vs_retention.svg` and `latency.svg` into `dir` (created
/// when missing).
pub fn write(dir: &Path, result: &EvalResult) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let save = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    save(
        "reduction_vs_retention.svg",
        reduction_vs_retention_svg(&result.domains, &result.all)?,
    )?;
    let latencies: Vec<f64> = result.outcomes.iter().map(|o| o.latency_ms).collect();
    save("latency.svg", latency_svg(&latencies)?)?;
    save("report.md", markdown(result))
}

/// The whole report as markdown.
pub fn markdown(result: &EvalResult) -> String {
    let mut out = String::from("# kompress eval\n\n");
    let corpus = Path::new(&result.corpus)
        .file_name()
        .map_or(result.corpus.clone(), |n| n.to_string_lossy().into_owned());
    out.push_str(&format!(
        "Corpus `{corpus}`: {} records through a fresh `kompress hook` process each, one at a time \
         ({:.1} s, {:.1} records/s). kompress {}, {}. Every column is defined in \
         [`docs/metrics.md`](../metrics.md).\n\n",
        result.all.records, result.wall_s, result.records_per_s, result.version, result.model
    ));
    out.push_str("## Per domain\n\n");
    out.push_str(&eval::markdown(&result.domains, &result.all));
    out.push_str("\n## Against the baselines\n\n");
    out.push_str(
        "Identity passes everything through. Head+tail keeps the first and last lines of each \
         replaced record within the cl100k budget of kompress's output for it, so its reduction \
         is kompress's (up to a few tokens); retention is over the replaced records.\n\n",
    );
    out.push_str(&baselines_markdown(&result.domains, &result.all));
    if let Some(h) = &result.heretic {
        out.push_str(&format!(
            "\n## Heretic set\n\n{} pairs from the seeded generator (`src/heretic.rs`, seed {}), {}. \
             The identity baseline has keep_rate 1 and exact_pct 1; the reference (the text \
             without its filler) has exact_pct 1 by construction.\n\n",
            h.all.pairs, h.seed, h.method
        ));
        out.push_str(&heretic_markdown(&h.kinds, &h.all));
        if h.all.override_delta == 0.0 {
            out.push_str(
                "\nWith no model the must-keep override has nothing to override: `override_delta` \
                 is 0 by construction, not a measured property of a model.\n",
            );
        }
    }
    out.push_str(
        "\n## Charts\n\n![Token reduction against must-keep retention](reduction_vs_retention.svg)\n\n\
         ![Hook latency](latency.svg)\n",
    );
    if !result.problems.is_empty() {
        out.push_str("\n## Problems\n\n");
        for o in &result.problems {
            out.push_str(&format!("- {}: {:?} {:?}\n", o.id, o.shape_error, o.crash));
        }
    }
    out
}

/// kompress against identity and head+tail, per domain.
pub fn baselines_markdown(per: &BTreeMap<String, Summary>, all: &Summary) -> String {
    let mut out = String::from(
        "| domain | replaced | kompress reduction | kompress retention | head+tail reduction | head+tail retention | identity reduction | identity retention |\n|---|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, s: &Summary| {
        format!(
            "| {name} | {} | {:.1}% | {} | {:.1}% | {} | 0.0% | 100.0% |\n",
            s.replaced,
            s.reduction_pct,
            pct(s.retention_pct),
            s.head_tail_reduction_pct,
            pct(s.head_tail_retention_pct),
        )
    };
    for (name, s) in per {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("**all**", all));
    out
}

/// The seed's metrics on the heretic set, per generator kind.
pub fn heretic_markdown(
    per: &BTreeMap<String, heretic::Summary>,
    all: &heretic::Summary,
) -> String {
    let mut out = String::from(
        "| kind | pairs | replaced | keep_rate | keep_rate of reference | exact_pct | exact_pct without override | override_delta | exact_pct head+tail | retention | head+tail retention | mk_in_ref | ratio < 1.3 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, s: &heretic::Summary| {
        format!(
            "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}% | {:.1}% | {:.3} | {} |\n",
            s.pairs,
            s.replaced,
            s.keep_rate,
            s.keep_rate_ref,
            s.exact_pct,
            s.exact_pct_without,
            s.override_delta,
            s.exact_pct_head_tail,
            100.0 * s.retention,
            100.0 * s.retention_head_tail,
            s.mk_in_ref,
            s.ratio_violations,
        )
    };
    for (name, s) in per {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("**all**", all));
    out
}

fn plot_error<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("cannot draw the chart: {err:?}")
}

/// Per domain: token reduction (y) against must-keep retention (x), for kompress,
/// head+tail at the same budget, and identity. Domains nothing was replaced in are left
/// out (their retention is undefined).
pub fn reduction_vs_retention_svg(
    per: &BTreeMap<String, Summary>,
    all: &Summary,
) -> Result<String> {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let groups = per
        .iter()
        .map(|(n, s)| (n.as_str(), s))
        .chain([("all", all)]);
    for (name, s) in groups {
        if let (Some(r), Some(h)) = (s.retention_pct, s.head_tail_retention_pct) {
            ours.push((r, s.reduction_pct, name.to_string()));
            theirs.push((h, s.head_tail_reduction_pct, name.to_string()));
        }
    }
    let min_x = ours
        .iter()
        .chain(&theirs)
        .map(|p| p.0)
        .fold(100.0f64, f64::min);
    let x0 = ((min_x - 5.0) / 10.0).floor().max(0.0) * 10.0;
    let max_y = ours
        .iter()
        .chain(&theirs)
        .map(|p| p.1)
        .fold(10.0f64, f64::max);
    let y1 = ((max_y + 5.0) / 10.0).ceil() * 10.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Token reduction against must-keep retention, per domain",
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..110.0, 0.0..y1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("must-keep retention, replaced records (%)")
            .y_desc("cl100k token reduction (%)")
            .draw()
            .map_err(plot_error)?;
        // kompress's labels above the point, head+tail's below, so pairs do not collide.
        let label = |name: &str, dy: i32| {
            Text::new(name.to_string(), (7, dy), ("sans-serif", 13).into_font())
        };
        chart
            .draw_series(ours.iter().map(|(x, y, name)| {
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 6, BLUE.filled())
                    + label(name, -16)
            }))
            .map_err(plot_error)?
            .label("kompress")
            .legend(|(x, y)| Circle::new((x, y), 6, BLUE.filled()));
        chart
            .draw_series(theirs.iter().map(|(x, y, name)| {
                EmptyElement::at((*x, *y))
                    + Cross::new((0, 0), 6, RED.stroke_width(2))
                    + label(name, 6)
            }))
            .map_err(plot_error)?
            .label("head+tail, same token budget")
            .legend(|(x, y)| Cross::new((x, y), 6, RED.stroke_width(2)));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((100.0, 0.0)) + TriangleMarker::new((0, 0), 8, BLACK.filled()),
            ))
            .map_err(plot_error)?
            .label("identity (every domain)")
            .legend(|(x, y)| TriangleMarker::new((x, y), 8, BLACK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// `kompress eval --trajectories`' chart: per kind of command (and over all non-read
/// outputs), token reduction (y) against recall of used items (x), one marker per run.
pub fn trajectories_chart(
    path: &Path,
    result: &eval::trajectories::TrajectoryResult,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 700)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let groups: Vec<(&String, &BTreeMap<String, eval::trajectories::Totals>)> = result
            .groups
            .iter()
            .filter(|(k, _)| k.starts_with("kind:") || k.as_str() == "non_read")
            .collect();
        let min_x = groups
            .iter()
            .flat_map(|(_, runs)| runs.values().map(|t| t.recall() * 100.0))
            .fold(100.0f64, f64::min);
        let x0 = ((min_x - 5.0) / 10.0).floor().max(0.0) * 10.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Held-out trajectories: token reduction against recall of used items",
                ("sans-serif", 22),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..101.0, 0.0..100.0)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("recall of items the agent used later (%)")
            .y_desc("cl100k token reduction (%)")
            .draw()
            .map_err(plot_error)?;
        let styles: [(&str, &str, RGBColor); 4] = [
            ("rules", "rules", BLACK),
            ("model_no_intent", "model, no intent", RGBColor(230, 140, 0)),
            ("model_intent", "model + intent", BLUE),
            ("head_tail", "head+tail, same budget as model + intent", RED),
        ];
        for (run, label, color) in styles {
            let points: Vec<(f64, f64, String)> = groups
                .iter()
                .filter_map(|(k, runs)| {
                    runs.get(run).map(|t| {
                        (
                            t.recall() * 100.0,
                            t.reduction() * 100.0,
                            k.trim_start_matches("kind:").to_string(),
                        )
                    })
                })
                .collect();
            let show_names = run == "model_intent";
            chart
                .draw_series(points.into_iter().map(move |(x, y, name)| {
                    let text = if show_names { name } else { String::new() };
                    EmptyElement::at((x, y))
                        + Circle::new((0, 0), 5, color.filled())
                        + Text::new(text, (7, -14), ("sans-serif", 13).into_font())
                }))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))
}

/// A histogram of hook latencies (40 bins up to the 99th percentile; slower ones are
/// counted in the last bin), with the p50 and p95 marked.
pub fn latency_svg(latencies_ms: &[f64]) -> Result<String> {
    let mut sorted = latencies_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p50 = eval::percentile(&sorted, 0.50);
    let p95 = eval::percentile(&sorted, 0.95);
    let top = eval::percentile(&sorted, 0.99).max(1.0) * 1.05;
    const BINS: usize = 40;
    let width = top / BINS as f64;
    let mut counts = [0usize; BINS];
    for &v in &sorted {
        counts[((v / width) as usize).min(BINS - 1)] += 1;
    }
    let y1 = (counts.iter().copied().max().unwrap_or(0) as f64 * 1.1).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let caption = format!(
            "kompress hook latency, {} records (p50 {p50:.1} ms, p95 {p95:.1} ms; last bin holds all ≥ {:.1} ms)",
            sorted.len(),
            top - width
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..top, 0.0..y1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("wall time from spawn to exit, process start included (ms)")
            .y_desc("records")
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x = i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c as f64)], BLUE.mix(0.6).filled())
            }))
            .map_err(plot_error)?;
        for (value, name, color) in [(p50, "p50", GREEN), (p95, "p95", RED)] {
            chart
                .draw_series(LineSeries::new(
                    [(value, 0.0), (value, y1)],
                    color.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(format!("{name} {value:.1} ms"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Outcome, by_domain};
    use crate::metrics::Retention;

    fn outcome(id: usize, domain: &str, replaced: bool) -> Outcome {
        Outcome {
            id: format!("r{id}"),
            domain: domain.into(),
            tool: "Bash".into(),
            chars_in: 1000,
            chars_out: if replaced { 400 } else { 1000 },
            bytes_in: 1000,
            tokens_in: 300,
            tokens_out: if replaced { 120 } else { 300 },
            replaced,
            shape_error: None,
            crash: None,
            latency_ms: 5.0 + id as f64,
            max_rss_kb: 8192,
            detected: domain.into(),
            retention: Retention {
                protected: 10,
                kept: if replaced { 9 } else { 10 },
            },
            head_tail_tokens: replaced.then_some(119),
            head_tail_retention: replaced.then_some(Retention {
                protected: 10,
                kept: 4,
            }),
            json_input: false,
            json_valid: None,
            json_valid_whole: None,
            after: None,
            cat_ms: 1.0,
            signals_lost: (0, 0),
        }
    }

    #[test]
    fn report_writes_markdown_and_svgs() {
        let outcomes: Vec<Outcome> = (0..30)
            .map(|i| {
                outcome(
                    i,
                    if i % 2 == 0 {
                        "bash_output"
                    } else {
                        "file_read"
                    },
                    i % 2 == 0,
                )
            })
            .collect();
        let (domains, all) = by_domain(&outcomes);
        assert_eq!(all.retention_pct, Some(90.0));
        assert_eq!(all.head_tail_retention_pct, Some(40.0));
        assert_eq!(domains["file_read"].retention_pct, None);
        let pairs = heretic::generate(heretic::SEED, 20);
        let scored = heretic::evaluate(&pairs, None);
        let (kinds, h_all) = heretic::summarize(&pairs, &scored);
        let result = EvalResult {
            corpus: "/x/dev.jsonl.gz".into(),
            version: "0.0.0".into(),
            model: "rules-only".into(),
            wall_s: 1.0,
            records_per_s: 30.0,
            domains,
            all,
            heretic: Some(eval::HereticResult {
                seed: heretic::SEED,
                method: "test".into(),
                kinds,
                all: h_all,
            }),
            problems: Vec::new(),
            outcomes,
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/report");
        write(&out, &result).unwrap();
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("| bash_output | 15 | 15 |"), "{md}");
        assert!(md.contains("## Heretic set") && md.contains("override_delta"));
        assert!(md.contains("(reduction_vs_retention.svg)") && md.contains("(latency.svg)"));
        for name in ["reduction_vs_retention.svg", "latency.svg"] {
            let svg = std::fs::read_to_string(out.join(name)).unwrap();
            assert!(
                svg.trim_start().starts_with("<svg"),
                "{name}: {}",
                &svg[..svg.len().min(100)]
            );
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
            assert!(svg.contains("<text"), "{name} has no text");
        }
        let chart = std::fs::read_to_string(out.join("reduction_vs_retention.svg")).unwrap();
        assert!(chart.contains("bash_output") && chart.contains("head+tail"));
    }

    #[test]
    fn latency_chart_handles_empty_and_single_inputs() {
        assert!(latency_svg(&[]).unwrap().starts_with("<svg"));
        assert!(latency_svg(&[3.0]).unwrap().starts_with("<svg"));
    }
}
