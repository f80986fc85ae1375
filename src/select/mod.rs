//! Line selection: drop the whole lines of an output that the agent will not need.
//!
//! Real agent output has little filler inside lines and a lot of lines nobody reads again:
//! install logs, passing tests, the 40 grep hits around the two that get opened. The line
//! model ([`crate::model::forest`], trained on what agents later used, see
//! [`crate::usage`]) gives each line a probability of being needed, from the output, the
//! command and the agent's intent ([`features`]). A line goes when that probability is
//! under its domain's calibrated threshold, unless a rule keeps it: error and failure
//! lines, test summaries and the last line (a traceback's exception, a summary) always
//! stay. Each run of dropped lines becomes one marker that names the original line range,
//! so `kompress show ID --lines A:B` brings it back.
//!
//! It runs on the original lines, before the structural passes, so the line numbers in its
//! markers are the original's.

pub mod data;
pub mod features;

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{CommandKind, Domain, Hints};
use crate::model::forest::Forest;
use crate::passes;
use crate::store;

/// Outputs with fewer lines are left to the other passes.
pub const MIN_LINES: usize = 8;

static KEEP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:\b(?:error|errors|fail|failed|failure|failures|fatal|panic|panicked|exception|exceptions|traceback|denied|assert|assertion)\b)",
        r"|[a-z](?:Error|Exception|Failure|Warning)\b",
        r"|\b[0-9]+ (?:passed|failed|errors?|skipped|tests?|warnings?|xfailed|deselected)\b",
        r"|^Ran [0-9]+ tests?",
        r"|^(?:OK|FAILED)\b",
    ))
    .expect("valid regex")
});

/// A line no model may drop: it names an error or failure, or sums up a test run.
pub fn is_signal(line: &str) -> bool {
    KEEP_LINE.is_match(line)
}

/// What is known about the output besides its text.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Tool name and command.
    pub hints: Hints<'a>,
    /// The detected domain.
    pub domain: Domain,
    /// The agent's words before the call.
    pub intent: Option<&'a str>,
}

/// Each line's probability of being needed (lines split on `\n`).
pub fn scores(text: &str, context: &Context<'_>, forest: &Forest) -> Vec<f32> {
    let kind = CommandKind::of(&context.hints);
    let command = context.hints.command.unwrap_or("");
    let x = features::extract(text, kind, context.domain, command, context.intent, is_signal);
    x.chunks_exact(features::NAMES.len()).map(|row| forest.predict(row)).collect()
}

/// Which lines stay: a score at or over `threshold`, a signal line, a marker, or the last
/// non-blank line.
pub fn keep_mask(text: &str, scores: &[f32], threshold: f32) -> Vec<bool> {
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    lines
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(i, (line, &s))| {
            s >= threshold || Some(i) == last || passes::is_marker(line) || is_signal(line)
        })
        .collect()
}

/// The output with the unkept lines replaced by markers; `None` when nothing goes.
///
/// A run of dropped lines shorter than its marker stays: a marker must save something.
pub fn apply(text: &str, keep: &[bool]) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    debug_assert_eq!(lines.len(), keep.len());
    let id = store::id_of(text.as_bytes());
    let id = store::short(&id);
    let mut out = String::with_capacity(text.len());
    let mut dropped = false;
    let mut i = 0;
    let mut first = true;
    let mut push = |out: &mut String, line: &str| {
        if !first {
            out.push('\n');
        }
        first = false;
        out.push_str(line);
    };
    while i < lines.len() {
        if keep[i] {
            push(&mut out, lines[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !keep[i] {
            i += 1;
        }
        let marker = passes::marker(&format!(
            "{} lines omitted · kompress show {id} --lines {}:{}",
            i - start,
            start + 1,
            i
        ));
        let bytes: usize = lines[start..i].iter().map(|l| l.len() + 1).sum();
        if bytes <= marker.len() + 1 {
            for line in &lines[start..i] {
                push(&mut out, line);
            }
            continue;
        }
        dropped = true;
        push(&mut out, &marker);
    }
    dropped.then_some(out)
}

/// Select the lines of `text` the agent will need, at `threshold`.
pub fn select(text: &str, context: &Context<'_>, forest: &Forest, threshold: f32) -> Option<String> {
    if text.split('\n').count() < MIN_LINES {
        return None;
    }
    let scores = scores(text, context, forest);
    apply(text, &keep_mask(text, &scores, threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_error_and_summary_lines() {
        for line in [
            "ValueError: bad value",
            "django.core.exceptions.ImproperlyConfigured: x",
            "FAILED tests/test_a.py::test_b - assert 1 == 2",
            "===== 3 failed, 397 passed in 2.31s =====",
            "Ran 12 tests in 0.004s",
            "OK",
            "AssertionError",
            "error: could not compile `x`",
        ] {
            assert!(is_signal(line), "{line}");
        }
        for line in ["test_parse (tests.test_a) ... ok", "Collecting numpy", "  def errorless(self):"] {
            assert!(!is_signal(line), "{line}");
        }
    }

    #[test]
    fn runs_become_markers_with_original_line_numbers() {
        let lines: Vec<String> = (1..=30).map(|i| format!("line number {i} with some padding text")).collect();
        let text = lines.join("\n");
        let mut keep = vec![false; 30];
        keep[0] = true;
        keep[29] = true;
        keep[14] = true;
        let out = apply(&text, &keep).unwrap();
        let id = store::id_of(text.as_bytes());
        let short = store::short(&id);
        let expected = format!(
            "line number 1 with some padding text\n[kompress: 13 lines omitted · kompress show {short} --lines 2:14]\nline number 15 with some padding text\n[kompress: 14 lines omitted · kompress show {short} --lines 16:29]\nline number 30 with some padding text"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn a_run_shorter_than_its_marker_stays() {
        let text = "a\nb\nc\nd";
        assert_eq!(apply(text, &[true, false, true, true]), None);
    }

    #[test]
    fn signal_and_last_lines_are_kept_whatever_the_score() {
        let text = "noise\nValueError: x\nnoise\nlast words\n";
        assert_eq!(keep_mask(text, &[0.0; 5], 0.5), [false, true, false, true, false]);
    }
}
