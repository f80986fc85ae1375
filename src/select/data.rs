//! Training data for the line model: every line of every trajectory step's output, with
//! its features (with and without the agent's intent) and what the agent used of it.
//!
//! `kompress model line-data --trajectories FILE --out OUT.jsonl` writes one JSON object
//! per step output of at least [`MIN_CHARS`] characters; `training/line_model.py` reads it.
//! The features come from [`super::features::extract`], the labels from
//! [`crate::usage::label`]: the runtime's own code, so training sees what the hook sees.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{features, is_signal, stays};
use crate::domain::{self, CommandKind};
use crate::known::Known;
use crate::model::forest::Vocab;
use crate::usage::{self, Generic};

/// Shorter outputs pass through kompress untouched (`min_chars`).
pub const MIN_CHARS: usize = 200;

/// The repositories the line model trains on; every other one of the trajectories file is
/// held out (`kompress eval --trajectories` reads the list back from the model file).
pub const TRAIN_REPOS: &[&str] = &["django/django", "matplotlib/matplotlib"];

/// The item counts of the training repositories' step outputs (all of them, short ones
/// too): the table [`features::extract`] reads, shipped in the model file. Only items in
/// [`usage::MIN_GENERIC_OUTPUTS`] outputs or more are kept; the rest count as rare.
pub fn vocab(all: &[usage::Trajectory]) -> Vocab {
    let counts = Generic::count(
        all.iter()
            .filter(|t| TRAIN_REPOS.contains(&t.repo.as_str()))
            .flat_map(|t| &t.steps)
            .map(|s| s.output.as_str()),
    );
    let (df, outputs) = counts.into_parts();
    Vocab::new(
        outputs,
        df.into_iter()
            .filter(|(_, n)| *n >= usage::MIN_GENERIC_OUTPUTS),
    )
    .expect("items have no spaces")
}

fn rounded(x: &[f32]) -> Vec<Vec<f32>> {
    x.chunks_exact(features::NAMES.len())
        .map(|row| row.iter().map(|v| (v * 1e4).round() / 1e4).collect())
        .collect()
}

/// Write the line data of `trajectories` to `out`.
pub fn write(trajectories: &Path, out: &Path) -> Result<()> {
    let all = usage::read(trajectories)?;
    let generic = Generic::of(&all);
    let vocab = vocab(&all);
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    // A header: the feature names, in order, for the model file.
    serde_json::to_writer(
        &mut w,
        &json!({
            "features": features::NAMES,
            "train_repos": TRAIN_REPOS,
            // Sorted, so that the same trajectories give the same file.
            "vocab": vocab,
        }),
    )?;
    w.write_all(b"\n")?;
    let mut rows = 0usize;
    for t in &all {
        // What the agent knows at each call: what the hook reads from a session transcript
        // (`crate::known`): the task, then every thought and command up to this one's.
        let mut known = Known::of_texts([t.task.as_str()]);
        for (index, step) in t.steps.iter().enumerate() {
            known.learn(&step.thought);
            known.learn(&step.command);
            if step.output.chars().count() < MIN_CHARS {
                continue;
            }
            let hints = step.hints();
            let domain = domain::detect(&hints, &step.output);
            let kind = CommandKind::of(&hints);
            let usage = usage::label(t, index, &generic);
            let intent = Some(step.thought.as_str()).filter(|s| !s.trim().is_empty());
            let tokens = features::line_tokens(&step.output);
            let extract = |intent, known| {
                features::extract(
                    &step.output,
                    &tokens,
                    kind,
                    domain,
                    &step.command,
                    intent,
                    known,
                    &vocab,
                    is_signal,
                )
            };
            // With a transcript, the hook has both; without one, neither.
            let (x, x_none) = (extract(intent, Some(&known)), extract(None, None));
            let lines: Vec<&str> = step.output.split('\n').collect();
            let index_of: std::collections::HashMap<&str, usize> = usage
                .used
                .iter()
                .enumerate()
                .map(|(i, u)| (u.as_str(), i))
                .collect();
            let items: Vec<Vec<usize>> = lines
                .iter()
                .map(|l| {
                    let mut v: Vec<usize> = usage::items(l)
                        .filter_map(|w| index_of.get(w).copied())
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                })
                .collect();
            let row = json!({
                "traj": t.id,
                "repo": t.repo,
                "step": index,
                "kind": kind.name(),
                "domain": domain.name(),
                "intent": intent.is_some(),
                // With the newline, as the runtime's line choice counts them.
                "tokens": tokens.iter().map(|t| t + 1).collect::<Vec<_>>(),
                // The lines no price drops (`super::forced`, the last line aside).
                "stays": lines.iter().map(|l| stays(l)).collect::<Vec<_>>(),
                "seen": usage.seen,
                "y": usage.line_used,
                "items": items,
                "n_used": usage.used.len(),
                "x": rounded(&x),
                "x_none": rounded(&x_none),
            });
            serde_json::to_writer(&mut w, &row)?;
            w.write_all(b"\n")?;
            rows += 1;
        }
    }
    w.flush()?;
    eprintln!("{rows} step outputs written to {}", out.display());
    Ok(())
}
