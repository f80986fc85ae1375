//! `kompress eval --trajectories FILE`: what the hook keeps of what agents later used.
//!
//! Every step output of 200+ characters of the held-out trajectories (repositories the
//! line model was neither trained nor calibrated on, as its file's `meta` names them) goes
//! through a fresh `kompress hook` process as a Claude Code Bash PostToolUse payload,
//! three times:
//!
//! - **rules**: `KOMPRESS_NO_MODEL=1`, the structural passes alone;
//! - **model, no intent**: the models, with no transcript;
//! - **model + intent**: the models, with a session transcript as Claude Code writes it:
//!   the task, every earlier step (the agent's words, its call and the call's result) and
//!   the agent's words before this call. The hook reads the intent from its end and what
//!   the agent knew before the call from all of it ([`crate::known`]).
//!
//! Per output it counts cl100k tokens before and after and which used items
//! ([`crate::usage`]) survive; the head+tail truncation at the model + intent run's token
//! budget is the baseline. Signals must never go: error names (`…Error`, `…Exception`) and
//! signal lines ([`crate::select::is_signal`]: error and failure lines, test summaries).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;

use super::{Outcome, Record};
use crate::config::Config;
use crate::domain::{self, CommandKind, Domain};
use crate::scorer::{LazyModel, Scorer};
use crate::usage::{self, Generic, Trajectory};
use crate::{metrics, select};

/// Each earlier call's result is written into the transcripts with at most this many
/// characters: the hook reads no tool result but the call's own (from the payload), and
/// every step has a transcript file of its own, the whole session before its call, which
/// the hook reads whole (its cache is keyed by the file's path).
const TRANSCRIPT_RESULT_CHARS: usize = 1000;

/// What `kompress eval --trajectories` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The trajectories file.
    pub file: PathBuf,
    /// Evaluate every repository, including those the line model was trained on.
    pub all_repos: bool,
    /// Write the model + intent run's outputs, used and lost items here (JSON Lines).
    pub dump: Option<PathBuf>,
    /// Only the first N step outputs.
    pub limit: Option<usize>,
    /// Print JSON.
    pub json: bool,
    /// Write `trajectories.md` and its chart into this directory.
    pub report: Option<PathBuf>,
    /// `--model DIR`, `--device NAME`.
    pub model: crate::scorer::ModelArgs,
}

/// One run's totals over a group of outputs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Step outputs.
    pub outputs: usize,
    /// cl100k tokens in.
    pub tokens_in: usize,
    /// cl100k tokens out.
    pub tokens_out: usize,
    /// Used items of the inputs.
    pub used: usize,
    /// Of those, still in the outputs.
    pub kept: usize,
    /// Distinct error names lost.
    pub error_names_lost: usize,
    /// Distinct signal lines lost.
    pub signal_lines_lost: usize,
    /// The sum over outputs of each output's own reduction (for the mean per output).
    pub reduction_sum: f64,
    /// Outputs answered by session memory ("unchanged" or a diff).
    pub memory: usize,
}

impl Totals {
    fn add(&mut self, o: &Scored) {
        self.outputs += 1;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.used += o.used;
        self.kept += o.kept;
        self.error_names_lost += o.error_names_lost;
        self.signal_lines_lost += o.signal_lines_lost;
        self.memory += usize::from(o.memory);
        if o.tokens_in > 0 {
            self.reduction_sum += 1.0 - o.tokens_out as f64 / o.tokens_in as f64;
        }
    }

    /// The mean over outputs of each output's reduction, 0–1: every output weighs the
    /// same, where [`Totals::reduction`] weighs each by its tokens.
    pub fn mean_reduction(&self) -> f64 {
        if self.outputs == 0 {
            return 0.0;
        }
        self.reduction_sum / self.outputs as f64
    }

    /// Token reduction, 0–1.
    pub fn reduction(&self) -> f64 {
        if self.tokens_in == 0 {
            return 0.0;
        }
        1.0 - self.tokens_out as f64 / self.tokens_in as f64
    }

    /// Recall of used items, 0–1 (1 when nothing was used).
    pub fn recall(&self) -> f64 {
        if self.used == 0 {
            return 1.0;
        }
        self.kept as f64 / self.used as f64
    }
}

/// One output in one run.
#[derive(Clone, Debug, Default)]
struct Scored {
    tokens_in: usize,
    tokens_out: usize,
    used: usize,
    kept: usize,
    error_names_lost: usize,
    signal_lines_lost: usize,
    memory: bool,
}

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct TrajectoryResult {
    /// The trajectories file.
    pub file: String,
    /// The model that ran.
    pub model: String,
    /// Repositories left out (trained or calibrated on).
    pub excluded_repos: Vec<String>,
    /// Trajectories and step outputs evaluated.
    pub trajectories: usize,
    /// Per group (`all`, `non_read`, `domain:NAME`, `kind:NAME`), per run.
    pub groups: BTreeMap<String, BTreeMap<String, Totals>>,
    /// The model + intent run's hook latency p50 and p95 (ms) and peak RSS p95 (MiB).
    pub latency_ms_p50: f64,
    /// See `latency_ms_p50`.
    pub latency_ms_p95: f64,
    /// See `latency_ms_p50`.
    pub rss_mib_p95: f64,
    /// Crashes and invalid shapes over all runs.
    pub problems: usize,
}

fn score(case: &Case, tokens_out: usize, after: &str) -> Scored {
    let (error_names_lost, signal_lines_lost) = metrics::signals_lost(&case.text, after);
    Scored {
        tokens_in: case.tokens_in,
        tokens_out,
        used: case.used.len(),
        kept: usage::kept(&case.used, after),
        error_names_lost,
        signal_lines_lost,
        memory: false,
    }
}

/// One step output to evaluate.
struct Case {
    /// The case of this trajectory's previous step with the same command, if any.
    earlier: Option<usize>,
    id: String,
    text: String,
    tokens_in: usize,
    used: Vec<String>,
    domain: Domain,
    kind: CommandKind,
}

/// Claude Code's transcript lines for one step: the agent's words, then its call.
fn transcript_lines(t: &Trajectory, index: usize, id: &str, out: &mut Vec<String>) {
    let step = &t.steps[index];
    let msg = format!("msg_{id}");
    if !step.thought.trim().is_empty() {
        out.push(
            json!({"type": "assistant", "message": {"id": msg, "role": "assistant",
                "content": [{"type": "text", "text": step.thought}]}})
            .to_string(),
        );
    }
    out.push(
        json!({"type": "assistant", "message": {"id": msg, "role": "assistant",
            "content": [{"type": "tool_use", "id": format!("toolu_{id}"), "name": "Bash",
                         "input": {"command": step.command}}]}})
        .to_string(),
    );
}

fn write_transcript(
    path: &Path,
    t: &Trajectory,
    index: usize,
    id_of: impl Fn(usize) -> String,
) -> Result<()> {
    let mut lines =
        vec![json!({"type": "user", "message": {"role": "user", "content": t.task}}).to_string()];
    for earlier in 0..index {
        transcript_lines(t, earlier, &id_of(earlier), &mut lines);
        let output: String = t.steps[earlier]
            .output
            .chars()
            .take(TRANSCRIPT_RESULT_CHARS)
            .collect();
        lines.push(
            json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": format!("toolu_{}", id_of(earlier)), "content": output}]}})
            .to_string(),
        );
    }
    transcript_lines(t, index, &id_of(index), &mut lines);
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    Ok(())
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    super::percentile(&v, q)
}

/// Run the evaluation and return its numbers.
pub fn evaluate(binary: &Path, options: &Options, model: &LazyModel) -> Result<TrajectoryResult> {
    let all = usage::read(&options.file)?;
    let generic = Generic::of(&all);
    let meta = model.lines().map(|f| f.meta.clone()).unwrap_or_default();
    let mut excluded: Vec<String> = Vec::new();
    if !options.all_repos {
        for key in ["train_repos", "calibration_repos"] {
            for repo in meta[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
            {
                excluded.push(repo.to_string());
            }
        }
    }
    let work = std::env::temp_dir().join(format!("kompress-eval-traj-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut cases = Vec::new();
    let mut with_intent = Vec::new();
    let mut without = Vec::new();
    let mut in_session = Vec::new();
    let mut trajectories = 0;
    'outer: for (ti, t) in all.iter().enumerate() {
        if excluded.contains(&t.repo) {
            continue;
        }
        trajectories += 1;
        // The last evaluated step of this trajectory with each command.
        let mut last_case: std::collections::HashMap<&str, usize> = Default::default();
        for (si, step) in t.steps.iter().enumerate() {
            if step.output.chars().count() < select::data::MIN_CHARS {
                continue;
            }
            if options.limit.is_some_and(|n| cases.len() >= n) {
                break 'outer;
            }
            let id_of = |s: usize| format!("t{ti}s{s}");
            let transcript = work.join(format!("{}.jsonl", id_of(si)));
            write_transcript(&transcript, t, si, id_of)?;
            let hints = step.hints();
            let record = Record {
                id: id_of(si),
                domain: String::new(),
                tool_name: "Bash".into(),
                tool_input: json!({"command": step.command, "description": ""}),
                tool_response: json!({"stdout": step.output, "stderr": "", "interrupted": false, "isImage": false}),
                transcript: Some(transcript),
                session: None,
            };
            without.push(Record {
                transcript: None,
                ..record.clone()
            });
            in_session.push(Record {
                session: Some(format!("kompress-eval-t{ti}")),
                ..record.clone()
            });
            with_intent.push(record);
            let earlier = last_case.insert(step.command.as_str(), cases.len());
            cases.push(Case {
                earlier,
                id: id_of(si),
                tokens_in: crate::tokens::count(&step.output),
                used: usage::label(t, si, &generic).used,
                domain: domain::detect(&hints, &step.output),
                kind: CommandKind::of(&hints),
                text: step.output.clone(),
            });
        }
    }
    if cases.is_empty() {
        bail!(
            "no step output of {}+ characters outside the excluded repositories",
            select::data::MIN_CHARS
        );
    }
    // A fresh state directory per run: session memory must not link a run to the one
    // before it (the same step would be "unchanged since the earlier call").
    let env = |run: &str, with_model: bool| -> Result<Vec<(String, String)>> {
        let home = work.join(run);
        std::fs::create_dir_all(&home)?;
        let mut env = vec![("KOMPRESS_HOME".to_string(), home.display().to_string())];
        if with_model {
            env.push(("KOMPRESS_MODEL".into(), model.dir().display().to_string()));
            env.push(("KOMPRESS_DEVICE".into(), model.device().to_string()));
        } else {
            env.push(("KOMPRESS_NO_MODEL".into(), "1".into()));
        }
        Ok(env)
    };
    eprintln!(
        "{} step outputs of {trajectories} trajectories, 4 runs",
        cases.len()
    );
    let runs: Vec<(&str, Result<Vec<Outcome>>)> = vec![
        (
            "rules",
            super::run(binary, &with_intent, &env("rules", false)?),
        ),
        (
            "model_no_intent",
            super::run(binary, &without, &env("model_no_intent", true)?),
        ),
        (
            "model_intent",
            super::run(binary, &with_intent, &env("model_intent", true)?),
        ),
        (
            "session",
            super::run(binary, &in_session, &env("session", true)?),
        ),
    ];
    let _ = std::fs::remove_dir_all(&work);
    let mut groups: BTreeMap<String, BTreeMap<String, Totals>> = BTreeMap::new();
    let mut problems = 0;
    let mut latency = Vec::new();
    let mut rss = Vec::new();
    let mut dump = match &options.dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    for (name, outcomes) in runs {
        let outcomes = outcomes?;
        // What the agent has in context of each case's call in the session run: its reply,
        // and for a session-memory reply also what it had of the earlier identical call
        // (which may itself have been one).
        let mut seen: Vec<String> = Vec::new();
        for (case, o) in cases.iter().zip(&outcomes) {
            problems += usize::from(o.crash.is_some() || o.shape_error.is_some());
            let after = o.after.as_deref().unwrap_or(&case.text);
            let mut scored = match (name, case.earlier) {
                // Session memory answered "unchanged" or with a diff: what the agent saw
                // of the earlier identical call is in its context, and counts as kept.
                ("session", Some(e)) if crate::session::is_reply(after) => {
                    // A diff's lines carry a `+`, `-` or ` ` prefix: the line itself is
                    // what the agent reads.
                    let body: String = after
                        .lines()
                        .map(|l| l.strip_prefix(['+', ' ']).unwrap_or(l))
                        .collect::<Vec<_>>()
                        .join("\n");
                    seen.push(format!("{body}\n{}", seen[e]));
                    let mut scored = score(case, o.tokens_out, &seen[seen.len() - 1]);
                    scored.memory = true;
                    vec![(name, scored)]
                }
                _ => {
                    if name == "session" {
                        seen.push(after.to_string());
                    }
                    vec![(name, score(case, o.tokens_out, after))]
                }
            };
            if name == "model_intent" {
                if let Some(w) = dump.as_mut() {
                    let present = usage::item_set(after);
                    let lost: Vec<&String> =
                        case.used.iter().filter(|u| !present.contains(u.as_str())).collect();
                    let line = json!({"id": case.id, "domain": case.domain.name(),
                        "kind": case.kind.name(), "tokens_in": case.tokens_in,
                        "tokens_out": o.tokens_out, "used": case.used, "lost": lost,
                        "before": case.text, "after": after,
                        "after_line_tokens": after.split('\n').map(crate::tokens::count).collect::<Vec<_>>()});
                    writeln!(w, "{line}")?;
                }
                latency.push(o.latency_ms);
                rss.push(o.max_rss_kb as f64 / 1024.0);
                let cut = metrics::head_tail(&case.text, o.tokens_out);
                let tokens = crate::tokens::count(&cut);
                scored.push(("head_tail", score(case, tokens, &cut)));
            }
            for (run, s) in scored {
                let mut keys = vec![
                    "all".to_string(),
                    format!("domain:{}", case.domain.name()),
                    format!("kind:{}", case.kind.name()),
                ];
                if case.domain != Domain::FileRead {
                    keys.push("non_read".to_string());
                }
                for key in keys {
                    groups
                        .entry(key)
                        .or_default()
                        .entry(run.to_string())
                        .or_default()
                        .add(&s);
                }
            }
        }
    }
    Ok(TrajectoryResult {
        file: options.file.display().to_string(),
        model: model.label(),
        excluded_repos: excluded,
        trajectories,
        groups,
        latency_ms_p50: percentile(latency.clone(), 0.5),
        latency_ms_p95: percentile(latency, 0.95),
        rss_mib_p95: percentile(rss, 0.95),
        problems,
    })
}

/// The result as a markdown table: reduction and recall per group and run.
pub fn markdown(r: &TrajectoryResult) -> String {
    let mut s = String::new();
    s.push_str("| outputs | group | tokens in | reduction: rules | model, no intent | model + intent | head+tail | recall: rules | model, no intent | model + intent | head+tail | mean reduction per output: rules / model + intent | error names / signal lines lost (model + intent) |\n");
    s.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let order = |k: &String| (!matches!(k.as_str(), "all" | "non_read"), k.clone());
    let mut keys: Vec<&String> = r.groups.keys().collect();
    keys.sort_by_key(|k| order(k));
    for key in keys {
        let runs = &r.groups[key];
        let get = |run: &str| runs.get(run).cloned().unwrap_or_default();
        let first = get("rules");
        let mi = get("model_intent");
        s.push_str(&format!(
            "| {} | {key} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} / {} | {} / {} |\n",
            first.outputs,
            first.tokens_in,
            pct(get("rules").reduction()),
            pct(get("model_no_intent").reduction()),
            pct(mi.reduction()),
            pct(get("head_tail").reduction()),
            get("rules").recall(),
            get("model_no_intent").recall(),
            mi.recall(),
            get("head_tail").recall(),
            pct(get("rules").mean_reduction()),
            pct(mi.mean_reduction()),
            mi.error_names_lost,
            mi.signal_lines_lost,
        ));
    }
    s.push_str("\n**In one session per trajectory** (the model + intent run, with each trajectory's steps in order as one Claude Code session: session memory answers a repeated command with \"unchanged\" or a diff; what the agent saw of that earlier call counts as kept):\n\n");
    s.push_str("| group | answered by session memory | reduction: per-call sessions | one session | recall: per-call sessions | one session | error names / signal lines lost (one session) |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for key in ["all", "non_read", "domain:bash_output", "domain:error_trace", "domain:search_result", "domain:test_output", "domain:build_log", "kind:script", "kind:test"] {
        let Some(runs) = r.groups.get(key) else {
            continue;
        };
        let get = |run: &str| runs.get(run).cloned().unwrap_or_default();
        let (mi, one) = (get("model_intent"), get("session"));
        s.push_str(&format!(
            "| {key} | {} of {} | {} | {} | {:.3} | {:.3} | {} / {} |\n",
            one.memory,
            one.outputs,
            pct(mi.reduction()),
            pct(one.reduction()),
            mi.recall(),
            one.recall(),
            one.error_names_lost,
            one.signal_lines_lost,
        ));
    }
    s
}

/// `kompress eval --trajectories`.
pub fn main(options: &Options) -> Result<()> {
    let binary = std::env::current_exe().context("cannot find the kompress binary")?;
    let mut config = Config::load()?;
    config.model = true;
    let Some(model) = crate::scorer::installed(&config, &options.model) else {
        bail!(
            "no model found (--model, KOMPRESS_MODEL, the data directory, the repository's model/)"
        );
    };
    if model.lines().is_none() {
        bail!(
            "{} has no usable line model ({})",
            model.dir().display(),
            crate::scorer::LINES_FILE
        );
    }
    let result = evaluate(&binary, options, &model)?;
    if let Some(dir) = &options.report {
        std::fs::create_dir_all(dir)?;
        let md = format!(
            "# Trajectories: what the hook keeps of what agents used\n\n`kompress eval --trajectories {}`; {}; held out: every repository but {}; {} trajectories.\n\nReduction is token-weighted (tokens saved over tokens in, per group); the mean reduction per output weighs every output the same. Recall is over distinct used items per output, summed over the group: the `all` row pools every output, reads (kept whole) included; `non_read` leaves out the file reads.{}\n\n{}\nHook latency (model + intent run): p50 {:.1} ms, p95 {:.1} ms; peak RSS p95 {:.1} MiB. Problems (crashes, invalid shapes): {}.\n",
            r_file(&result.file),
            result.model,
            result.excluded_repos.join(", "),
            result.trajectories,
            std::env::var("KOMPRESS_LINE_PRICE_SCALE")
                .map(|v| format!(" Line prices × {v} (`KOMPRESS_LINE_PRICE_SCALE`)."))
                .unwrap_or_default(),
            markdown(&result),
            result.latency_ms_p50,
            result.latency_ms_p95,
            result.rss_mib_p95,
            result.problems
        );
        std::fs::write(dir.join("trajectories.md"), md)?;
        crate::report::trajectories_chart(&dir.join("trajectories.svg"), &result)?;
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", markdown(&result));
        println!(
            "\nHeld out: every repository but {}; {} trajectories. Hook (model + intent): p50 {:.1} ms, p95 {:.1} ms, peak RSS p95 {:.1} MiB. Problems: {}.",
            result.excluded_repos.join(", "),
            result.trajectories,
            result.latency_ms_p50,
            result.latency_ms_p95,
            result.rss_mib_p95,
            result.problems
        );
    }
    Ok(())
}

/// The file name only: reports are committed, machine paths are not.
fn r_file(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

