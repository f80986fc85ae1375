//! `kompress eval`: run a corpus through the real hook, exactly as Claude Code would, and
//! measure what it did.
//!
//! Each record of a corpus in the dev-corpus format (JSON Lines, optionally gzipped, with
//! `tool_name`, `tool_input`, `tool_response` and a `domain` label) becomes a PostToolUse
//! payload that is piped into a fresh `kompress hook` process, so latency includes process
//! start. The reply is checked the way Claude Code checks it: either nothing, or an
//! `updatedToolOutput` that differs from `tool_response` only in the tool's text field.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::{self, Domain, Hints};
use crate::tokens;

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
        let field = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        records.push(Record {
            id: field("id"),
            domain: field("domain"),
            tool_name: field("tool_name"),
            tool_input: value.get("tool_input").cloned().unwrap_or(Value::Null),
            tool_response: value.get("tool_response").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(records)
}

/// The PostToolUse payload Claude Code would send for `record`.
pub fn payload(record: &Record) -> Value {
    json!({
        "session_id": "kompress-eval",
        "transcript_path": "",
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
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
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
            _ => response.get("content").map(blocks).unwrap_or_default().join("\n"),
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
        _ => &[&[], &["*", "text"], &["content", "*", "text"]],
    };
    let mut path = Vec::new();
    compare(original, updated, &mut path, text_paths, tool_name == "Bash")
}

fn compare(
    original: &Value,
    updated: &Value,
    path: &mut Vec<String>,
    text_paths: &[&[&str]],
    bash: bool,
) -> Result<(), String> {
    let is_text_path = |path: &[String]| {
        text_paths.iter().any(|p| {
            p.len() == path.len() && p.iter().zip(path).all(|(a, b)| *a == "*" || a == b)
        })
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
                return Err(format!("{}: array length {} → {}", at(path), a.len(), b.len()));
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
    /// Wall time from spawn to exit, in milliseconds.
    pub latency_ms: f64,
    /// The domain kompress detects for the record (it may differ from the corpus label).
    pub detected: String,
    /// The text the model gets after the hook, when it was replaced.
    #[serde(skip)]
    pub after: Option<String>,
}

/// Run every record through `binary hook` and collect the outcomes.
pub fn run(binary: &Path, records: &[Record], env: &[(String, String)]) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        outcomes.push(run_one(binary, record, env)?);
    }
    Ok(outcomes)
}

fn run_one(binary: &Path, record: &Record, env: &[(String, String)]) -> Result<Outcome> {
    let payload = serde_json::to_vec(&payload(record))?;
    let start = Instant::now();
    let mut child = Command::new(binary)
        .arg("hook")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let output = child.wait_with_output().context("hook did not finish")?;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let _ = writer.join();
    let before = visible_text(&record.tool_name, &record.tool_response);
    let mut outcome = Outcome {
        id: record.id.clone(),
        domain: record.domain.clone(),
        tool: record.tool_name.clone(),
        chars_in: before.chars().count(),
        chars_out: before.chars().count(),
        tokens_in: tokens::count(&before),
        tokens_out: 0,
        replaced: false,
        shape_error: None,
        crash: None,
        latency_ms,
        detected: detected_domain(record, &before).to_string(),
        after: None,
    };
    outcome.tokens_out = outcome.tokens_in;
    if !output.status.success() || !output.stderr.is_empty() {
        outcome.crash = Some(format!(
            "status {:?}, stderr {:?}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ));
        return Ok(outcome);
    }
    if output.stdout.is_empty() {
        return Ok(outcome);
    }
    let reply: Value = match serde_json::from_slice(&output.stdout) {
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
        grep_mode: record.tool_response.get("mode").and_then(Value::as_str).or(str_of("output_mode")),
    };
    domain::detect(&hints, text)
}

/// Markdown with up to `per_domain` before/after pairs for every detected domain: the
/// replaced records with the largest token saving among those short enough to read.
pub fn examples(records: &[Record], outcomes: &[Outcome], per_domain: usize) -> String {
    let mut by_domain: BTreeMap<&str, Vec<(&Record, &Outcome)>> = BTreeMap::new();
    for (record, outcome) in records.iter().zip(outcomes) {
        by_domain.entry(outcome.detected.as_str()).or_default().push((record, outcome));
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
            let command = record.tool_input.get("command").and_then(Value::as_str).unwrap_or("");
            let command: String = command.chars().take(120).collect::<String>().replace('\n', " ");
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

/// Totals over a group of outcomes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Records.
    pub records: usize,
    /// Records the hook replaced.
    pub replaced: usize,
    /// Replacements with a wrong shape.
    pub invalid_shapes: usize,
    /// Crashes (non-zero exit, stderr, garbage on stdout).
    pub crashes: usize,
    /// Outputs with more tokens or characters than their input.
    pub expansions: usize,
    /// Records under 200 characters that were changed.
    pub short_changed: usize,
    /// cl100k tokens in.
    pub tokens_in: usize,
    /// cl100k tokens out.
    pub tokens_out: usize,
    /// Token reduction, percent of `tokens_in`.
    pub reduction_pct: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
}

/// Summarize `outcomes`.
pub fn summarize<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Summary {
    let mut s = Summary::default();
    let mut latencies = Vec::new();
    for o in outcomes {
        s.records += 1;
        s.replaced += usize::from(o.replaced);
        s.invalid_shapes += usize::from(o.shape_error.is_some());
        s.crashes += usize::from(o.crash.is_some());
        s.expansions += usize::from(o.tokens_out > o.tokens_in || o.chars_out > o.chars_in);
        s.short_changed += usize::from(o.chars_in < 200 && o.replaced);
        s.tokens_in += o.tokens_in;
        s.tokens_out += o.tokens_out;
        latencies.push(o.latency_ms);
    }
    if s.tokens_in > 0 {
        s.reduction_pct = 100.0 * (s.tokens_in - s.tokens_out.min(s.tokens_in)) as f64 / s.tokens_in as f64;
    }
    latencies.sort_by(f64::total_cmp);
    s.p50_ms = percentile(&latencies, 0.50);
    s.p95_ms = percentile(&latencies, 0.95);
    s
}

/// The `q` quantile of sorted `values` (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Per-domain summaries plus the overall one.
pub fn by_domain(outcomes: &[Outcome]) -> (BTreeMap<String, Summary>, Summary) {
    let mut groups: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        groups.entry(o.domain.clone()).or_default().push(o);
    }
    let per = groups.into_iter().map(|(d, os)| (d, summarize(os))).collect();
    (per, summarize(outcomes))
}

/// A markdown table of per-domain summaries.
pub fn markdown(per: &BTreeMap<String, Summary>, all: &Summary) -> String {
    let mut out = String::from(
        "| domain | records | replaced | tokens in | tokens out | reduction | invalid shapes | crashes | expansions | <200 chars changed | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, s: &Summary| {
        format!(
            "| {name} | {} | {} | {} | {} | {:.1}% | {} | {} | {} | {} | {:.1} | {:.1} |\n",
            s.records, s.replaced, s.tokens_in, s.tokens_out, s.reduction_pct, s.invalid_shapes,
            s.crashes, s.expansions, s.short_changed, s.p50_ms, s.p95_ms
        )
    };
    for (name, s) in per {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("**all**", all));
    out
}

/// `kompress eval`.
pub fn main(corpus: &Path, limit: Option<usize>, as_json: bool, examples_to: Option<&Path>) -> Result<()> {
    let mut records = read_corpus(corpus)?;
    if records.is_empty() {
        bail!("{} holds no records", corpus.display());
    }
    if let Some(limit) = limit {
        records.truncate(limit);
    }
    let binary: PathBuf = std::env::current_exe().context("cannot find the kompress binary")?;
    let outcomes = run(&binary, &records, &[])?;
    let (per, all) = by_domain(&outcomes);
    if let Some(path) = examples_to {
        std::fs::write(path, examples(&records, &outcomes, 5))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if as_json {
        let problems: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.shape_error.is_some() || o.crash.is_some())
            .collect();
        let report = json!({"domains": per, "all": all, "problems": problems});
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", markdown(&per, &all));
        for o in outcomes.iter().filter(|o| o.shape_error.is_some() || o.crash.is_some()) {
            println!("problem {}: {:?} {:?}", o.id, o.shape_error, o.crash);
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
        assert!(check_shape("Bash", &bash, &changed).unwrap_err().contains("/stderr"));
        let extra = json!({"stdout": "b", "stderr": "", "interrupted": false, "more": 1});
        assert!(check_shape("Bash", &bash, &extra).unwrap_err().contains("more"));

        let read = json!({"type": "text", "file": {"filePath": "/a", "content": "x", "numLines": 1}});
        let read_ok = json!({"type": "text", "file": {"filePath": "/a", "content": "y", "numLines": 1}});
        assert_eq!(check_shape("Read", &read, &read_ok), Ok(()));
        let read_bad = json!({"type": "text", "file": {"filePath": "/b", "content": "y", "numLines": 1}});
        assert!(check_shape("Read", &read, &read_bad).is_err());

        let glob = json!({"filenames": ["a", "b", "c"], "numFiles": 3});
        assert_eq!(check_shape("Glob", &glob, &json!({"filenames": ["a"], "numFiles": 3})), Ok(()));
        let mcp = json!([{"type": "text", "text": "x"}]);
        assert_eq!(check_shape("mcp__a__b", &mcp, &json!([{"type": "text", "text": "y"}])), Ok(()));
        assert_eq!(check_shape("mcp__a__b", &json!("x"), &json!("y")), Ok(()));
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
        assert_eq!(visible_text("Read", &json!({"file": {"content": "c"}})), "c");
        assert_eq!(visible_text("Glob", &json!({"filenames": ["a", "b"]})), "a\nb");
        assert_eq!(visible_text("mcp__x", &json!([{"type": "text", "text": "t"}])), "t");
    }
}
