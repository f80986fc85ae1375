//! Line selection: drop the whole lines of an output that the agent will not need.
//!
//! Real agent output has little filler inside lines and a lot of lines nobody reads again:
//! install logs, passing tests, the 40 grep hits around the two that get opened. The line
//! model ([`crate::model::forest`], trained on what agents later used, see
//! [`crate::usage`]) gives each line a probability of being needed, from the output, the
//! command and the agent's intent ([`features`]). [`choose`] then weighs, for the whole
//! output at once, the tokens a line costs against the chance it holds something the
//! agent will use (at a price per kind of command, calibrated on held-out repositories),
//! and the marker every run of dropped lines needs: isolated lines are not worth a marker,
//! long runs of unneeded lines are. A rule keeps error and failure lines, test summaries
//! and the last line (a traceback's exception, a summary) whatever the model says. Each
//! run of dropped lines becomes one marker that names the original line range, so
//! `kompress show ID --lines A:B` brings it back.
//!
//! It runs on the original lines, before the structural passes, so the line numbers in its
//! markers are the original's.

pub mod data;
pub mod features;

use std::sync::LazyLock;


use crate::domain::{CommandKind, Domain, Hints};
use crate::known::Lazy;
use crate::model::forest::Forest;
use crate::passes;
use crate::store;

/// Outputs with fewer lines are left to the other passes.
pub const MIN_LINES: usize = 8;
/// Outputs with more lines are too (a persisted output can be 64 MiB): their features
/// alone would take 176 bytes a line, and the middle elision bounds them anyway.
pub const MAX_LINES: usize = 20_000;

/// Words that make a line a signal, in any case, as whole ASCII words.
const SIGNAL_WORDS: &[&str] = &[
    "error", "errors", "fail", "failed", "failure", "failures", "fatal", "panic", "panicked",
    "exception", "exceptions", "traceback", "denied", "assert", "assertion",
];
/// Endings of a longer word that names an error (`ValueError`, `ImportWarning`).
const ERROR_ENDINGS: &[&str] = &["Error", "Exception", "Failure", "Warning"];
/// Words after a count that sum up a test run (`3 failed`, `1 deselected`).
const COUNTED: &[&str] = &[
    "passed", "failed", "error", "errors", "skipped", "warning", "warnings", "xfailed",
    "xpassed", "deselected",
];

/// A line no model may drop: it names an error or failure, or sums up a test run.
///
/// Hand-written rather than a regex: it runs on every line of every output the line model
/// sees, and compiling the equivalent pattern (case-insensitive, kept in the tests) took
/// 0.3 ms of each such hook call. The rules, on ASCII words (runs of `[A-Za-z0-9_]`):
/// a word in [`SIGNAL_WORDS`] in any case; a word ending in one of [`ERROR_ENDINGS`] after
/// at least one more character; a word of digits, one space and a word in [`COUNTED`];
/// a line starting `Ran <digits> test`, or with the word `OK` or `FAILED`.
pub fn is_signal(line: &str) -> bool {
    let bytes = line.as_bytes();
    let starts_with_word = |word: &[u8]| {
        bytes.starts_with(word) && bytes.get(word.len()).is_none_or(|&b| !is_word_byte(b))
    };
    if starts_with_word(b"OK") || starts_with_word(b"FAILED") {
        return true;
    }
    if let Some(rest) = line.strip_prefix("Ran ") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(" test") {
            return true;
        }
    }
    let mut previous: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
        let word = &line[start..i];
        if SIGNAL_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
            || ERROR_ENDINGS.iter().any(|e| word.len() > e.len() && word.ends_with(e))
        {
            return true;
        }
        if let Some((s, e)) = previous
            && e + 1 == start
            && bytes[e] == b' '
            && bytes[s..e].iter().all(u8::is_ascii_digit)
            && COUNTED.contains(&word)
        {
            return true;
        }
        previous = Some((start, i));
    }
    false
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
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
    /// What the agent knew before the call: its session's prompts, words and calls (read
    /// only when a line is scored).
    pub known: Option<&'a Lazy<'a>>,
}

/// Each line's probability of being needed (lines split on `\n`; `tokens` is
/// [`features::line_tokens`] of `text`).
pub fn scores(text: &str, tokens: &[usize], context: &Context<'_>, forest: &Forest) -> Vec<f32> {
    let kind = CommandKind::of(&context.hints);
    let command = context.hints.command.unwrap_or("");
    let x = features::extract(
        text,
        tokens,
        kind,
        context.domain,
        command,
        context.intent,
        context.known.and_then(Lazy::get),
        &forest.vocab,
        is_signal,
    );
    x.chunks_exact(features::NAMES.len())
        .map(|row| forest.predict(row))
        .collect()
}

/// cl100k tokens [`choose`] counts for a marker line: `[lines 12-40 omitted]`. The first
/// of an output costs more (27 on average), and saves the hook's trailer (24).
pub const MARKER_TOKENS: f32 = 8.0;

/// A line that stays wherever it is: a [signal](is_signal), or a diff's file header
/// (`diff --git a/x b/x`), so that a thinned diff still names every file it changes.
pub fn stays(line: &str) -> bool {
    is_signal(line) || line.starts_with("diff --git ")
}

/// Lines no score may drop: the lines that [stay](stays), markers, and the last non-blank
/// line.
pub fn forced(lines: &[&str]) -> Vec<bool> {
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| Some(i) == last || passes::is_marker(line) || stays(line))
        .collect()
}

/// The lines to keep: the mask that minimises the tokens kept, plus [`MARKER_TOKENS`] + 1
/// for each run of dropped lines, plus `price` × the probability of each dropped line,
/// found by dynamic programming over two states (this line kept, this line dropped).
///
/// `price` is what losing one used item costs, in tokens: a line of 40 tokens with a 1%
/// chance of being needed goes at a price under 4,000, and a run of them sooner than a
/// single one, since they share one marker.
pub fn choose(scores: &[f32], tokens: &[f32], forced: &[bool], price: f32) -> Vec<bool> {
    let n = scores.len();
    let (mut kept, mut dropped) = (0.0f32, f32::INFINITY);
    // For each line and state: whether the best path to it came from a dropped line.
    let mut from_dropped_k = vec![false; n];
    let mut from_dropped_d = vec![false; n];
    for i in 0..n {
        let keep_cost = tokens[i] + kept.min(dropped);
        from_dropped_k[i] = dropped < kept;
        let drop_cost = if forced[i] {
            f32::INFINITY
        } else {
            let start = kept + MARKER_TOKENS + 1.0;
            from_dropped_d[i] = dropped < start;
            price * scores[i] + start.min(dropped)
        };
        (kept, dropped) = (keep_cost, drop_cost);
    }
    let mut keep = vec![true; n];
    let mut in_dropped = dropped < kept;
    for i in (0..n).rev() {
        keep[i] = !in_dropped;
        in_dropped = if in_dropped {
            from_dropped_d[i]
        } else {
            from_dropped_k[i]
        };
    }
    keep
}

/// Whether `text` holds a line marker that names `kompress show ID --lines`: its original
/// must be in the store.
pub fn names_the_store(text: &str) -> bool {
    text.lines()
        .any(|l| passes::is_marker(l) && l.contains(" omitted; kompress show "))
}

/// The marker of a run of omitted lines (1-based, inclusive). The first names the command
/// that brings lines back (and stands in for the hook's trailer, see
/// [`names_the_store`]); the others are [`passes::range_marker`]s, to cost few tokens.
pub fn marker(first: usize, last: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => passes::marker(&format!(
            "{} omitted; kompress show {id} --lines {first}:{last}",
            passes::line_range(first, last)
        )),
        None => passes::range_marker(first, last),
    }
}

/// The output with the unkept lines replaced by markers; `None` when nothing goes.
///
/// A run of dropped lines with no more tokens than its marker stays: a marker must save
/// something. `tokens` is [`features::line_tokens`] of `text`.
pub fn apply(text: &str, keep: &[bool], tokens: &[usize]) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    debug_assert_eq!(lines.len(), keep.len());
    debug_assert_eq!(lines.len(), tokens.len());
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
        let marker = marker(start + 1, i, (!dropped).then_some(id));
        let run: usize = tokens[start..i].iter().map(|t| t + 1).sum();
        if run <= crate::tokens::count(&marker) + 1 {
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

/// `KOMPRESS_LINE_PRICE_SCALE`: a factor on every calibrated price, to measure other
/// operating points of the same model (`kompress eval --trajectories` passes its
/// environment to the hooks it runs); 1 when unset or not a positive number.
fn price_scale() -> f32 {
    static SCALE: LazyLock<f32> = LazyLock::new(|| {
        std::env::var("KOMPRESS_LINE_PRICE_SCALE")
            .ok()
            .and_then(|v| v.trim().parse::<f32>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(1.0)
    });
    *SCALE
}

/// Select the lines of `text` the agent will need, at the forest's price for the
/// command's kind; `None` when nothing goes (or the kind has no price).
pub fn select(text: &str, context: &Context<'_>, forest: &Forest) -> Option<String> {
    let kind = CommandKind::of(&context.hints);
    // A diff the agent read from a file (`cat fix.patch`, `head -50 fix.patch`) is a read,
    // and reads stay whole (`Domain::settings`).
    if context.domain == Domain::Diff && kind == CommandKind::Read {
        return None;
    }
    let price = *forest.prices.get(kind.name())? * price_scale();
    let lines: Vec<&str> = text.split('\n').collect();
    if !(MIN_LINES..=MAX_LINES).contains(&lines.len()) {
        return None;
    }
    let tokens = features::line_tokens(text);
    let scores = scores(text, &tokens, context, forest);
    // Each line also costs its newline.
    let costs: Vec<f32> = tokens.iter().map(|&t| (t + 1) as f32).collect();
    apply(
        text,
        &choose(&scores, &costs, &forced(&lines), price),
        &tokens,
    )
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
            "===== 13 passed, 1 deselected in 0.19s =====",
            "OK",
            "AssertionError",
            "  WARNING: Retrying after connection broken by 'SSLError(SSLEOFError(8, 'EOF'))'",
            "error: could not compile `x`",
        ] {
            assert!(is_signal(line), "{line}");
        }
        for line in [
            "test_parse (tests.test_a) ... ok",
            "Collecting numpy",
            "  def errorless(self):",
            "drwxr-xr-x 3 root root 4096 May  6  2025 tests",
        ] {
            assert!(!is_signal(line), "{line}");
        }
    }

    /// What [`is_signal`] implements.
    const SIGNAL_PATTERN: &str = concat!(
        r"(?i-u:\b(?:error|errors|fail|failed|failure|failures|fatal|panic|panicked|exception|exceptions|traceback|denied|assert|assertion)\b)",
        r"|[A-Za-z0-9_](?:Error|Exception|Failure|Warning)(?-u:\b)",
        r"|(?-u:\b)[0-9]+ (?:passed|failed|errors?|skipped|warnings?|xfailed|xpassed|deselected)(?-u:\b)",
        r"|^Ran [0-9]+ tests?",
        r"|^(?:OK|FAILED)(?-u:\b)",
    );

    #[test]
    fn is_signal_is_its_pattern_on_the_corpus() {
        let signals = crate::passes::invariants::lines_agree(is_signal, SIGNAL_PATTERN);
        assert!(signals > 100, "{signals}");
    }

    proptest::proptest! {
        #[test]
        fn is_signal_is_its_pattern(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "error", "ERRORS", "Fail", "failed", "xFAILED", "panicked", "Traceback", "assert",
                "ValueError", "Error", "Errors", "KeyErrorX", "_Warning", "Exception", "Failure",
                "3", "12", "x3", "passed", "skipped", "warnings", "deselected", "Ran", "tests",
                "test", "OK", "OKAY", "FAILED", "FAILEDX", " ", "  ", "_", ".", ":", "-", "é",
                "日", "(", "=", "\t", "0.2s",
            ]), 0..8)
        ) {
            let line: String = parts.concat();
            let pattern = regex::Regex::new(SIGNAL_PATTERN).unwrap();
            proptest::prop_assert_eq!(is_signal(&line), pattern.is_match(&line), "{:?}", line);
        }
    }

    #[test]
    fn runs_become_markers_with_original_line_numbers() {
        let lines: Vec<String> = (1..=30)
            .map(|i| format!("line number {i} with some padding text"))
            .collect();
        let text = lines.join("\n");
        let mut keep = vec![false; 30];
        keep[0] = true;
        keep[29] = true;
        keep[14] = true;
        let out = apply(&text, &keep, &features::line_tokens(&text)).unwrap();
        let id = store::id_of(text.as_bytes());
        let short = store::short(&id);
        let expected = format!(
            "line number 1 with some padding text\n[kompress: lines 2-14 omitted; kompress show {short} --lines 2:14]\nline number 15 with some padding text\n[lines 16-29 omitted]\nline number 30 with some padding text"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn a_run_shorter_than_its_marker_stays() {
        let text = "a\nb\nc\nd";
        assert_eq!(
            apply(
                text,
                &[true, false, true, true],
                &features::line_tokens(text)
            ),
            None
        );
    }

    #[test]
    fn signal_and_last_lines_are_forced() {
        let lines = [
            "noise",
            "ValueError: x",
            "[lines 3-9 omitted]",
            "diff --git a/src/x.py b/src/x.py",
            " context diff --git",
            "last words",
            "",
        ];
        assert_eq!(forced(&lines), [false, true, true, true, false, true, false]);
    }

    #[test]
    fn choose_drops_runs_worth_a_marker() {
        // Ten 20-token lines of 1% each: one marker (12) beats keeping 200 tokens.
        let keep = choose(&[0.01; 10], &[20.0; 10], &[false; 10], 100.0);
        assert_eq!(keep, [false; 10]);
        // One such line alone is not worth its marker at a high price...
        let keep = choose(&[0.01, 0.9, 0.9], &[10.0; 3], &[false; 3], 1000.0);
        assert_eq!(keep, [true, true, true]);
        // ...and a forced line stays inside a dropped run, which then needs two markers.
        let mut forced = [false; 10];
        forced[5] = true;
        let keep = choose(&[0.01; 10], &[20.0; 10], &forced, 100.0);
        assert_eq!(
            keep,
            [
                false, false, false, false, false, true, false, false, false, false
            ]
        );
        // A likely-needed line stays even at a low price when its tokens are few.
        let keep = choose(
            &[0.01, 0.01, 0.5, 0.01, 0.01],
            &[30.0, 30.0, 5.0, 30.0, 30.0],
            &[false; 5],
            100.0,
        );
        assert_eq!(keep, [false, false, true, false, false]);
    }
}
