//! `kompress eval`: run a corpus through the real hook, exactly as Claude Code would, and
//! measure what it did.
//!
//! Each record of a corpus in the dev-corpus format (JSON Lines, optionally gzipped, with
//! `tool_name`, `tool_input`, `tool_response` and a `domain` label) becomes a PostToolUse
//! payload that is piped into a fresh `kompress hook` process, so latency includes process
//! start. The reply is checked the way Claude Code checks it: either nothing, or an
//! `updatedToolOutput` that differs from `tool_response` only in the tool's text field.
//!
//! Per record it measures cl100k tokens before and after, must-keep retention, JSON
//! validity, latency and the hook process's own peak RSS (through the `measure-child`
//! launcher, see [`crate::measure`]), and the head+tail
//! truncation baseline at kompress's token budget; [`evaluate`] adds the heretic set
//! (see [`crate::heretic`]) and [`crate::report`] writes the report. Every metric is
//! defined in `docs/metrics.md` and computed in [`crate::metrics`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::{self, Domain, Hints};
use crate::metrics::{self, Retention};
use crate::scorer::{LazyModel, Scorer};
use crate::{heretic, measure, report, tokens};

pub mod trajectories;

/// One corpus record.
#[derive(Clone, Debug)]
pub struct Record {
    /// The record's id.
    pub id: String,
    /// The corpus's domain label.
    pub domain: String,
    /// The Claude Code tool.
    pub tool_name: String,
    /// The tool's input.
    pub tool_input: Value,
    /// The tool's structured output.
    pub tool_response: Value,
    /// The session transcript to name in the payload (`transcript_path`), where the
    /// agent's words before this call are; `None`: none.
    pub transcript: Option<PathBuf>,
    /// The Claude Code session the call belongs to; `None`: one of its own, so that
    /// session memory never links two records.
    pub session: Option<String>,
}

/// Read a JSON Lines corpus, gzipped when the name ends in `.gz`.
pub fn read_corpus(path: &Path) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open corpus {}", path.display()))?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut records = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), number + 1))?;
        let field = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        records.push(Record {
            id: field("id"),
            domain: field("domain"),
            tool_name: field("tool_name"),
            tool_input: value.get("tool_input").cloned().unwrap_or(Value::Null),
            tool_response: value.get("tool_response").cloned().unwrap_or(Value::Null),
            transcript: None,
            session: None,
        });
    }
    Ok(records)
}

/// The PostToolUse payload Claude Code would send for `record`.
pub fn payload(record: &Record) -> Value {
    json!({
        "session_id": "kompress-eval",
        "transcript_path": record.transcript.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "cwd": "/testbed",
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": record.tool_name,
        "tool_input": record.tool_input,
        "tool_response": record.tool_response,
        "tool_use_id": format!("toolu_{}", record.id),
    })
}

/// The text the model sees of a tool response: its text fields, joined by newlines.
pub fn visible_text(tool_name: &str, response: &Value) -> String {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let blocks = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match tool_name {
        "Bash" => text(response.get("stdout")),
        "Read" => text(response.pointer("/file/content")),
        "Grep" => match response.get("content") {
            Some(Value::String(s)) => s.clone(),
            _ => strings(response.get("filenames")).join("\n"),
        },
        "Glob" => strings(response.get("filenames")).join("\n"),
        "WebFetch" => text(response.get("result")),
        _ => match response {
            Value::String(s) => s.clone(),
            Value::Array(_) => blocks(response).join("\n"),
            _ => match response.get("content") {
                Some(Value::String(s)) => s.clone(),
                content => content.map(blocks).unwrap_or_default().join("\n"),
            },
        },
    }
}

/// Check that `updated` has `original`'s shape: the same keys and values except the
/// tool's text fields (which must stay strings) and Bash's `persisted*` keys.
pub fn check_shape(tool_name: &str, original: &Value, updated: &Value) -> Result<(), String> {
    let text_paths: &[&[&str]] = match tool_name {
        "Bash" => &[&["stdout"]],
        "Read" => &[&["file", "content"]],
        "Grep" => &[&["content"], &["filenames", "*"]],
        "Glob" => &[&["filenames", "*"]],
        "WebFetch" => &[&["result"]],
        // MCP, Agent, Task: a bare string, text blocks, or `content` (a string or blocks);
        // see `hook::Job::mcp` and `hook::Job::blocks_field`.
        _ => &[&[], &["*", "text"], &["content"], &["content", "*", "text"]],
    };
    let mut path = Vec::new();
    compare(
        original,
        updated,
        &mut path,
        text_paths,
        tool_name == "Bash",
    )
}

fn compare(
    original: &Value,
    updated: &Value,
    path: &mut Vec<String>,
    text_paths: &[&[&str]],
    bash: bool,
) -> Result<(), String> {
    let is_text_path = |path: &[String]| {
        text_paths
            .iter()
            .any(|p| p.len() == path.len() && p.iter().zip(path).all(|(a, b)| *a == "*" || a == b))
    };
    let at = |path: &[String]| format!("/{}", path.join("/"));
    match (original, updated) {
        (Value::String(_), Value::String(_)) if is_text_path(path) => Ok(()),
        (Value::Object(a), Value::Object(b)) => {
            let at_root = path.is_empty();
            let dropped = |k: &str| bash && at_root && k.starts_with("persistedOutput");
            for key in a.keys().filter(|k| !dropped(k)) {
                if !b.contains_key(key) {
                    return Err(format!("{}: key `{key}` missing", at(path)));
                }
            }
            for (key, value) in b {
                let Some(old) = a.get(key).filter(|_| !dropped(key)) else {
                    return Err(format!("{}: unexpected key `{key}`", at(path)));
                };
                path.push(key.clone());
                compare(old, value, path, text_paths, bash)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            // A list of text items (file names) may change length; other arrays may not.
            path.push("*".into());
            let list_of_text = is_text_path(path) && b.iter().all(Value::is_string);
            path.pop();
            if list_of_text {
                return Ok(());
            }
            if a.len() != b.len() {
                return Err(format!(
                    "{}: array length {} → {}",
                    at(path),
                    a.len(),
                    b.len()
                ));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                let r = compare(x, y, path, text_paths, bash);
                path.pop();
                r?;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        _ => Err(format!("{}: value changed or type differs", at(path))),
    }
}

/// What happened to one record.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Record id.
    pub id: String,
    /// Corpus domain label.
    pub domain: String,
    /// Tool name.
    pub tool: String,
    /// Characters of the visible text before.
    pub chars_in: usize,
    /// Characters of the visible text after.
    pub chars_out: usize,
    /// Bytes of the visible text before (for throughput).
    pub bytes_in: usize,
    /// cl100k tokens before.
    pub tokens_in: usize,
    /// cl100k tokens after.
    pub tokens_out: usize,
    /// The hook printed a replacement.
    pub replaced: bool,
    /// The replacement's shape problem, if any.
    pub shape_error: Option<String>,
    /// Non-zero exit, a signal, stderr output or unparsable stdout.
    pub crash: Option<String>,
    /// Wall time from spawn to exit, in milliseconds (measured by the launcher).
    pub latency_ms: f64,
    /// Peak resident set size of the hook process, in KiB (see [`crate::measure`]).
    pub max_rss_kb: u64,
    /// The domain kompress detects for the record (it may differ from the corpus label).
    pub detected: String,
    /// Must-keep retention of the visible text (kept = protected on passthrough).
    pub retention: Retention,
    /// cl100k tokens of the head+tail truncation to `tokens_out` (replaced records only).
    pub head_tail_tokens: Option<usize>,
    /// Must-keep retention of that truncation (replaced records only).
    pub head_tail_retention: Option<Retention>,
    /// The visible text before is a JSON document.
    pub json_input: bool,
    /// For a replaced JSON input: whether the text after, without kompress's marker lines
    /// (the hook's trailer), still parses as JSON.
    pub json_valid: Option<bool>,
    /// For a replaced JSON input: whether the text after parses as JSON as it is, marker
    /// lines included.
    pub json_valid_whole: Option<bool>,
    /// Error names and signal lines (error and failure lines, test summaries) of the text
    /// before that the text after lost ([`metrics::signals_lost`]).
    pub signals_lost: (usize, usize),
    /// The text the model gets after the hook, when it was replaced.
    #[serde(skip)]
    pub after: Option<String>,
    /// Wall time of a bare `cat` fed the same payload under the same launcher, ms: the
    /// floor any hook process pays (process start, reading stdin), measured next to it.
    pub cat_ms: f64,
}

/// Run every record through `binary hook` and collect the outcomes, one process at a
/// time (so that latencies do not compete), with a progress bar on stderr when stderr is
/// a terminal.
pub fn run(binary: &Path, records: &[Record], env: &[(String, String)]) -> Result<Vec<Outcome>> {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(records.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} {bar:40} {pos}/{len} records, {elapsed} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix("kompress eval");
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        let outcome = run_one(binary, record, env);
        if outcome.is_err() {
            let _ = std::fs::remove_file(usage_report_path());
        }
        outcomes.push(outcome?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_file(usage_report_path());
    Ok(outcomes)
}

/// Where this process's `measure-child` launchers write the hook's usage (one hook runs
/// at a time).
fn usage_report_path() -> PathBuf {
    std::env::temp_dir().join(format!("kompress-eval-usage-{}.json", std::process::id()))
}

/// A bare `cat` fed `payload` under the `measure-child` launcher: its wall time, ms.
fn cat_ms(binary: &Path, report: &Path, payload: &[u8]) -> Result<f64> {
    let _ = std::fs::remove_file(report);
    let mut child = measure::command_of(binary, report, "cat", &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run cat")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let payload = payload.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    std::io::copy(&mut stdout, &mut std::io::sink()).context("cannot read cat's stdout")?;
    child.wait().context("cannot wait for cat")?;
    let _ = writer.join();
    Ok(measure::read_report(report)?.wall_ms)
}

fn run_one(binary: &Path, record: &Record, env: &[(String, String)]) -> Result<Outcome> {
    let mut payload = payload(record);
    // One session per record unless the record names one: the corpus's records come from
    // many agent runs, in hash order, so session memory must never link two of them.
    payload["session_id"] = json!(
        record
            .session
            .clone()
            .unwrap_or_else(|| format!("kompress-eval-{}", record.id))
    );
    let payload = serde_json::to_vec(&payload)?;
    // Under the launcher, so that the peak RSS is the hook's own (see `measure`).
    let report = usage_report_path();
    let cat = cat_ms(binary, &report, &payload)?;
    let _ = std::fs::remove_file(&report);
    let mut child = measure::command(binary, &report, &["hook"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut child_stdout = child.stdout.take().context("no stdout")?;
    let mut child_stderr = child.stderr.take().context("no stderr")?;
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = child_stderr.read_to_end(&mut bytes);
        bytes
    });
    let mut stdout = Vec::new();
    child_stdout
        .read_to_end(&mut stdout)
        .context("cannot read the hook's stdout")?;
    let stderr = err_reader.join().unwrap_or_default();
    let launcher = child.wait().context("cannot wait for the hook")?;
    let _ = writer.join();
    let exit = measure::read_report(&report)
        .with_context(|| format!("the hook under measure-child did not report ({launcher})"))?;
    let before = visible_text(&record.tool_name, &record.tool_response);
    let protected = metrics::protected_set(&before).len();
    let mut outcome = Outcome {
        id: record.id.clone(),
        domain: record.domain.clone(),
        tool: record.tool_name.clone(),
        chars_in: before.chars().count(),
        chars_out: before.chars().count(),
        bytes_in: before.len(),
        tokens_in: tokens::count(&before),
        tokens_out: 0,
        replaced: false,
        shape_error: None,
        crash: None,
        latency_ms: exit.wall_ms,
        cat_ms: cat,
        max_rss_kb: exit.max_rss_kb,
        detected: detected_domain(record, &before).to_string(),
        retention: Retention {
            protected,
            kept: protected,
        },
        head_tail_tokens: None,
        head_tail_retention: None,
        json_input: metrics::is_json_document(&before),
        json_valid: None,
        json_valid_whole: None,
        signals_lost: (0, 0),
        after: None,
    };
    outcome.tokens_out = outcome.tokens_in;
    if !exit.success() || !stderr.is_empty() {
        outcome.crash = Some(format!(
            "{}, stderr {:?}",
            exit.describe(),
            String::from_utf8_lossy(&stderr)
        ));
        return Ok(outcome);
    }
    if stdout.is_empty() {
        return Ok(outcome);
    }
    let reply: Value = match serde_json::from_slice(&stdout) {
        Ok(reply) => reply,
        Err(err) => {
            outcome.crash = Some(format!("stdout is not JSON: {err}"));
            return Ok(outcome);
        }
    };
    outcome.replaced = true;
    let specific = &reply["hookSpecificOutput"];
    if specific["hookEventName"] != "PostToolUse" {
        outcome.shape_error = Some("hookEventName is not PostToolUse".into());
    }
    let updated = &specific["updatedToolOutput"];
    if let Err(err) = check_shape(&record.tool_name, &record.tool_response, updated) {
        outcome.shape_error = Some(err);
    }
    let after = visible_text(&record.tool_name, updated);
    outcome.chars_out = after.chars().count();
    outcome.tokens_out = tokens::count(&after);
    outcome.retention = metrics::retention(&before, &after);
    outcome.signals_lost = metrics::signals_lost(&before, &after);
    let truncated = metrics::head_tail(&before, outcome.tokens_out);
    outcome.head_tail_tokens = Some(tokens::count(&truncated));
    outcome.head_tail_retention = Some(metrics::retention(&before, &truncated));
    if outcome.json_input {
        outcome.json_valid = Some(metrics::json_body_valid(&after));
        outcome.json_valid_whole = Some(metrics::json_valid(&after));
    }
    outcome.after = Some(after);
    Ok(outcome)
}

/// The domain the hook's detection gives `record` (the hook itself does not report it).
fn detected_domain(record: &Record, text: &str) -> Domain {
    let str_of = |key: &str| record.tool_input.get(key).and_then(Value::as_str);
    let hints = Hints {
        tool_name: Some(&record.tool_name),
        command: str_of("command"),
        file_path: str_of("file_path"),
        grep_mode: record
            .tool_response
            .get("mode")
            .and_then(Value::as_str)
            .or(str_of("output_mode")),
    };
    domain::detect(&hints, text)
}

/// Markdown with up to `per_domain` before/after pairs for every detected domain: the
/// replaced records with the largest token saving among those short enough to read.
pub fn examples(records: &[Record], outcomes: &[Outcome], per_domain: usize) -> String {
    let mut by_domain: BTreeMap<&str, Vec<(&Record, &Outcome)>> = BTreeMap::new();
    for (record, outcome) in records.iter().zip(outcomes) {
        by_domain
            .entry(outcome.detected.as_str())
            .or_default()
            .push((record, outcome));
    }
    let mut out = String::new();
    for (domain, mut pairs) in by_domain {
        let total = pairs.len();
        pairs.retain(|(_, o)| o.after.is_some() && o.chars_in <= 3000);
        pairs.sort_by_key(|(r, o)| (std::cmp::Reverse(o.tokens_in - o.tokens_out), r.id.clone()));
        out.push_str(&format!("## {domain}\n\n"));
        if pairs.is_empty() {
            out.push_str(&format!(
                "No record of this domain was changed ({total} records); see the table above for why.\n\n"
            ));
            continue;
        }
        for (record, outcome) in pairs.into_iter().take(per_domain) {
            let before = visible_text(&record.tool_name, &record.tool_response);
            let command = record
                .tool_input
                .get("command")
                .and_then(Value::as_str)
                .unwrap_or("");
            let command: String = command
                .chars()
                .take(120)
                .collect::<String>()
                .replace('\n', " ");
            out.push_str(&format!(
                "### {} · {} `{}` · {} → {} tokens\n\nBefore:\n\n{}\nAfter:\n\n{}\n",
                record.id,
                record.tool_name,
                command.replace('`', "'"),
                outcome.tokens_in,
                outcome.tokens_out,
                fenced(&before),
                fenced(outcome.after.as_deref().unwrap_or("")),
            ));
        }
    }
    out
}

/// A fenced code block that no backtick run inside `text` can close.
fn fenced(text: &str) -> String {
    let mut fence = String::from("```");
    while text.contains(&fence) {
        fence.push('`');
    }
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}text\n{text}{newline}{fence}\n")
}

/// Totals over a group of outcomes. `docs/metrics.md` defines each field.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Records.
    pub records: usize,
    /// Records the hook replaced.
    pub replaced: usize,
    /// Records the hook left alone, percent of `records`.
    pub passthrough_pct: f64,
    /// Replacements with a wrong shape.
    pub invalid_shapes: usize,
    /// Crashes (non-zero exit, stderr, garbage on stdout).
    pub crashes: usize,
    /// Outputs with more tokens or characters than their input.
    pub expansions: usize,
    /// Records under 200 characters that were changed.
    pub short_changed: usize,
    /// Error names lost (distinct per record, summed).
    pub error_names_lost: usize,
    /// Signal lines lost: error and failure lines, tracebacks' last lines, test summaries
    /// (distinct per record, summed).
    pub signal_lines_lost: usize,
    /// Records whose visible text is a JSON document.
    pub json_inputs: usize,
    /// Replaced JSON inputs whose output, without marker lines, no longer parses as JSON.
    pub json_invalid: usize,
    /// Replaced JSON inputs whose output as it is (trailer included) does not parse.
    pub json_invalid_whole: usize,
    /// cl100k tokens in.
    pub tokens_in: usize,
    /// cl100k tokens out.
    pub tokens_out: usize,
    /// Token reduction, percent of `tokens_in` (sum-weighted).
    pub reduction_pct: f64,
    /// Median of the per-record reductions, every record (passthrough counts as 0).
    pub median_reduction_pct: f64,
    /// Median of the per-record reductions of the replaced records.
    pub median_reduction_replaced_pct: f64,
    /// Pooled must-keep retention of the replaced records, percent; `None` when none was.
    pub retention_pct: Option<f64>,
    /// Pooled must-keep retention over every record (passthrough keeps everything).
    pub retention_all_pct: f64,
    /// Distinct protected words in the replaced records (the retention denominator).
    pub protected_replaced: usize,
    /// Head+tail baseline: cl100k tokens out (replaced records truncated, others whole).
    pub head_tail_tokens_out: usize,
    /// Head+tail baseline: token reduction, percent of `tokens_in`.
    pub head_tail_reduction_pct: f64,
    /// Head+tail baseline: pooled retention of the replaced records, percent.
    pub head_tail_retention_pct: Option<f64>,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// Median wall time of a bare `cat` fed the same payloads in the same run, ms.
    pub cat_p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// Input bytes per second of hook time: `Σ bytes_in / Σ latency`, MB/s (10^6 bytes).
    pub throughput_mb_s: f64,
    /// Peak RSS of the hook processes: the largest, MiB.
    pub rss_max_mb: f64,
    /// Peak RSS of the hook processes: the 95th percentile, MiB.
    pub rss_p95_mb: f64,
}

/// Summarize `outcomes`.
pub fn summarize<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Summary {
    let mut s = Summary::default();
    let mut latencies = Vec::new();
    let mut cat = Vec::new();
    let mut rss = Vec::new();
    let mut reductions = Vec::new();
    let mut reductions_replaced = Vec::new();
    let (mut retained, mut retained_all, mut head_tail) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes_in = 0usize;
    for o in outcomes {
        s.records += 1;
        s.replaced += usize::from(o.replaced);
        s.invalid_shapes += usize::from(o.shape_error.is_some());
        s.crashes += usize::from(o.crash.is_some());
        s.expansions += usize::from(o.tokens_out > o.tokens_in || o.chars_out > o.chars_in);
        s.short_changed += usize::from(o.chars_in < 200 && o.replaced);
        s.error_names_lost += o.signals_lost.0;
        s.signal_lines_lost += o.signals_lost.1;
        s.json_inputs += usize::from(o.json_input);
        s.json_invalid += usize::from(o.json_valid == Some(false));
        s.json_invalid_whole += usize::from(o.json_valid_whole == Some(false));
        s.tokens_in += o.tokens_in;
        s.tokens_out += o.tokens_out;
        s.head_tail_tokens_out += o.head_tail_tokens.unwrap_or(o.tokens_in);
        bytes_in += o.bytes_in;
        latencies.push(o.latency_ms);
        cat.push(o.cat_ms);
        rss.push(o.max_rss_kb as f64 / 1024.0);
        let reduction = metrics::reduction_pct(o.tokens_in, o.tokens_out);
        reductions.push(reduction);
        retained_all.push(o.retention);
        if o.replaced {
            reductions_replaced.push(reduction);
            retained.push(o.retention);
            head_tail.extend(o.head_tail_retention);
        }
    }
    s.passthrough_pct = percent(s.records - s.replaced, s.records);
    s.reduction_pct = metrics::reduction_pct(s.tokens_in, s.tokens_out);
    s.head_tail_reduction_pct = metrics::reduction_pct(s.tokens_in, s.head_tail_tokens_out);
    s.median_reduction_pct = metrics::median(&reductions);
    s.median_reduction_replaced_pct = metrics::median(&reductions_replaced);
    let pooled = Retention::sum(retained.iter().copied());
    s.protected_replaced = pooled.protected;
    s.retention_pct = (!retained.is_empty()).then(|| 100.0 * pooled.rate());
    s.head_tail_retention_pct =
        (!head_tail.is_empty()).then(|| 100.0 * Retention::sum(head_tail.iter().copied()).rate());
    s.retention_all_pct = 100.0 * Retention::sum(retained_all).rate();
    let total_ms: f64 = latencies.iter().sum();
    if total_ms > 0.0 {
        s.throughput_mb_s = bytes_in as f64 / 1e6 / (total_ms / 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    s.p50_ms = percentile(&latencies, 0.50);
    s.p95_ms = percentile(&latencies, 0.95);
    cat.sort_by(f64::total_cmp);
    s.cat_p50_ms = percentile(&cat, 0.50);
    rss.sort_by(f64::total_cmp);
    s.rss_max_mb = rss.last().copied().unwrap_or(0.0);
    s.rss_p95_mb = percentile(&rss, 0.95);
    s
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The `q` quantile of sorted `values` (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    metrics::percentile(sorted, q)
}

/// Per-domain summaries plus the overall one.
pub fn by_domain(outcomes: &[Outcome]) -> (BTreeMap<String, Summary>, Summary) {
    let mut groups: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        groups.entry(o.domain.clone()).or_default().push(o);
    }
    let per = groups
        .into_iter()
        .map(|(d, os)| (d, summarize(os)))
        .collect();
    (per, summarize(outcomes))
}

/// `12.3%`, or `–` when there is nothing to measure.
pub fn pct(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.1}%"))
}

/// A markdown table of per-domain summaries.
pub fn markdown(per: &BTreeMap<String, Summary>, all: &Summary) -> String {
    let mut out = String::from(
        "| domain | records | replaced | passthrough | tokens in | tokens out | reduction | median reduction | median reduction (replaced) | retention | head+tail retention | JSON invalid | invalid shapes | crashes | expansions | <200 chars changed | error names / signal lines lost | p50 ms | p95 ms | p50 ms, bare cat | p50 ÷ cat | MB/s | RSS p95 MiB | RSS max MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, s: &Summary| {
        format!(
            "| {name} | {} | {} | {:.1}% | {} | {} | {:.1}% | {:.1}% | {:.1}% | {} | {} | {}/{} | {} | {} | {} | {} | {} / {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
            s.records,
            s.replaced,
            s.passthrough_pct,
            s.tokens_in,
            s.tokens_out,
            s.reduction_pct,
            s.median_reduction_pct,
            s.median_reduction_replaced_pct,
            pct(s.retention_pct),
            pct(s.head_tail_retention_pct),
            s.json_invalid,
            s.json_inputs,
            s.invalid_shapes,
            s.crashes,
            s.expansions,
            s.short_changed,
            s.error_names_lost,
            s.signal_lines_lost,
            s.p50_ms,
            s.p95_ms,
            s.cat_p50_ms,
            if s.cat_p50_ms > 0.0 {
                s.p50_ms / s.cat_p50_ms
            } else {
                0.0
            },
            s.throughput_mb_s,
            s.rss_p95_mb,
            s.rss_max_mb,
        )
    };
    for (name, s) in per {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("**all**", all));
    out
}

/// The seed's metrics on the heretic set.
#[derive(Clone, Debug, Serialize)]
pub struct HereticResult {
    /// The generator's seed.
    pub seed: u64,
    /// How the texts were compressed.
    pub method: String,
    /// Per generator kind.
    pub kinds: BTreeMap<String, heretic::Summary>,
    /// Over all pairs.
    pub all: heretic::Summary,
}

/// Everything one `kompress eval` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct EvalResult {
    /// The corpus file.
    pub corpus: String,
    /// kompress's version.
    pub version: String,
    /// The model that ran (`rules-only` when none).
    pub model: String,
    /// Wall time of the whole corpus run, seconds.
    pub wall_s: f64,
    /// Records per second of wall time (one hook process at a time).
    pub records_per_s: f64,
    /// Per corpus domain.
    pub domains: BTreeMap<String, Summary>,
    /// Over all records.
    pub all: Summary,
    /// The heretic set, when it ran.
    pub heretic: Option<HereticResult>,
    /// Records with a shape error or a crash.
    pub problems: Vec<Outcome>,
    /// Every record's outcome (for the charts; not printed).
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
}

/// What `kompress eval` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The corpus file.
    pub corpus: PathBuf,
    /// Use only the first N records.
    pub limit: Option<usize>,
    /// Print JSON instead of markdown.
    pub json: bool,
    /// Write before/after examples here.
    pub examples: Option<PathBuf>,
    /// Write `report.md` and the charts into this directory.
    pub report: Option<PathBuf>,
    /// Pairs of the heretic set (0: skip it).
    pub heretic: usize,
    /// `--model DIR`, `--device NAME`.
    pub model: crate::scorer::ModelArgs,
}

/// Run the corpus through the hook binary `binary` and the heretic set through the
/// pipeline, and collect every measurement.
pub fn evaluate(
    binary: &Path,
    records: &[Record],
    corpus: &Path,
    heretic_pairs: usize,
    model: Option<&LazyModel>,
) -> Result<EvalResult> {
    // A fresh KOMPRESS_HOME: no stored originals, session memory or statistics of the user
    // are read or written, and the configuration is the default one (unless KOMPRESS_CONFIG
    // or KOMPRESS_* variables are set, which the hook processes inherit).
    let home = std::env::temp_dir().join(format!("kompress-eval-{}", std::process::id()));
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    // The hook processes use the same model, on the same device, as this process (their
    // KOMPRESS_HOME has none).
    let mut env = vec![("KOMPRESS_HOME".to_string(), home.display().to_string())];
    match model {
        Some(m) => {
            env.push(("KOMPRESS_MODEL".to_string(), m.dir().display().to_string()));
            env.push(("KOMPRESS_DEVICE".to_string(), m.device().to_string()));
        }
        None => env.push(("KOMPRESS_NO_MODEL".to_string(), "1".to_string())),
    }
    let start = Instant::now();
    let outcomes = run(binary, records, &env);
    let wall_s = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&home);
    let outcomes = outcomes?;
    let (domains, all) = by_domain(&outcomes);
    let heretic = (heretic_pairs > 0).then(|| {
        let pairs = heretic::generate(heretic::SEED, heretic_pairs);
        let scored = heretic::evaluate(&pairs, model.map(|m| m as &dyn Scorer));
        let (kinds, all) = heretic::summarize(&pairs, &scored);
        HereticResult {
            seed: heretic::SEED,
            method: format!(
                "in-process pipeline::compress, domain forced per generator, default configuration, {}",
                model.map_or("rules-only".to_string(), |m| m.label())
            ),
            kinds,
            all,
        }
    });
    let problems = outcomes
        .iter()
        .filter(|o| o.shape_error.is_some() || o.crash.is_some())
        .cloned()
        .collect();
    Ok(EvalResult {
        corpus: corpus.display().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        model: model.map_or("rules-only".to_string(), |m| m.label()),
        wall_s,
        records_per_s: if wall_s > 0.0 {
            outcomes.len() as f64 / wall_s
        } else {
            0.0
        },
        domains,
        all,
        heretic,
        problems,
        outcomes,
    })
}

/// `kompress eval`.
pub fn main(options: &Options) -> Result<()> {
    let corpus = &options.corpus;
    let mut records = read_corpus(corpus)?;
    if records.is_empty() {
        bail!("{} holds no records", corpus.display());
    }
    if let Some(limit) = options.limit {
        records.truncate(limit);
    }
    let binary: PathBuf = std::env::current_exe().context("cannot find the kompress binary")?;
    let config = Config::load()?;
    let model = crate::scorer::installed(&config, &options.model);
    if let Some(m) = &model {
        // Fail here, with a message, rather than in every hook process.
        m.get()?;
    }
    let result = evaluate(&binary, &records, corpus, options.heretic, model.as_ref())?;
    if let Some(path) = &options.examples {
        std::fs::write(path, examples(&records, &result.outcomes, 5))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &options.report {
        report::write(dir, &result)?;
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", markdown(&result.domains, &result.all));
        println!(
            "\n{} records in {:.1} s ({:.1} records/s, one hook process at a time).",
            result.all.records, result.wall_s, result.records_per_s
        );
        if let Some(h) = &result.heretic {
            println!("\nHeretic set ({} pairs, seed {}):\n", h.all.pairs, h.seed);
            print!("{}", report::heretic_markdown(&h.kinds, &h.all));
        }
        for o in &result.problems {
            println!("problem {}: {:?} {:?}", o.id, o.shape_error, o.crash);
        }
        if let Some(dir) = &options.report {
            println!("\nReport: {}", dir.join("report.md").display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_allows_only_text_fields() {
        let bash = json!({"stdout": "a", "stderr": "", "interrupted": false, "persistedOutputPath": "/x", "persistedOutputSize": 3});
        let good = json!({"stdout": "b", "stderr": "", "interrupted": false});
        assert_eq!(check_shape("Bash", &bash, &good), Ok(()));
        let string = json!("b");
        assert!(check_shape("Bash", &bash, &string).is_err());
        let changed = json!({"stdout": "b", "stderr": "x", "interrupted": false});
        assert!(
            check_shape("Bash", &bash, &changed)
                .unwrap_err()
                .contains("/stderr")
        );
        let extra = json!({"stdout": "b", "stderr": "", "interrupted": false, "more": 1});
        assert!(
            check_shape("Bash", &bash, &extra)
                .unwrap_err()
                .contains("more")
        );

        let read =
            json!({"type": "text", "file": {"filePath": "/a", "content": "x", "numLines": 1}});
        let read_ok =
            json!({"type": "text", "file": {"filePath": "/a", "content": "y", "numLines": 1}});
        assert_eq!(check_shape("Read", &read, &read_ok), Ok(()));
        let read_bad =
            json!({"type": "text", "file": {"filePath": "/b", "content": "y", "numLines": 1}});
        assert!(check_shape("Read", &read, &read_bad).is_err());

        let glob = json!({"filenames": ["a", "b", "c"], "numFiles": 3});
        assert_eq!(
            check_shape("Glob", &glob, &json!({"filenames": ["a"], "numFiles": 3})),
            Ok(())
        );
        let mcp = json!([{"type": "text", "text": "x"}]);
        assert_eq!(
            check_shape("mcp__a__b", &mcp, &json!([{"type": "text", "text": "y"}])),
            Ok(())
        );
        assert_eq!(check_shape("mcp__a__b", &json!("x"), &json!("y")), Ok(()));
        // The hook replaces a string `content` too (found by fuzz/hook_payload).
        assert_eq!(
            check_shape(
                "mcp__a__b",
                &json!({"content": "x"}),
                &json!({"content": "y"})
            ),
            Ok(())
        );
        assert!(
            check_shape(
                "mcp__a__b",
                &json!({"content": "x"}),
                &json!({"content": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.95), 10.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn visible_text_per_tool() {
        assert_eq!(visible_text("Bash", &json!({"stdout": "o"})), "o");
        assert_eq!(
            visible_text("Read", &json!({"file": {"content": "c"}})),
            "c"
        );
        assert_eq!(
            visible_text("Glob", &json!({"filenames": ["a", "b"]})),
            "a\nb"
        );
        assert_eq!(
            visible_text("mcp__x", &json!([{"type": "text", "text": "t"}])),
            "t"
        );
        assert_eq!(visible_text("mcp__x", &json!({"content": "s"})), "s");
    }
}
