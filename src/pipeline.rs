//! The compression pipeline: text in, a smaller text or a reason to pass through out.
//!
//! Pure: no files, no environment, no printing. Every caller (hook, pipe, wrapper, eval)
//! goes through [`compress`], so they all get the same safety checks:
//! short, binary or already-compressed input passes through; the output is never longer
//! than the input, in cl100k tokens or in bytes; a deadline bounds the work.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;


use crate::config::Config;
use crate::domain::{self, Domain, Hints};
use crate::passes::pattern::Pattern;
use crate::passes::{self, Pass};
use crate::protect;
use crate::scorer::Scorer;
use crate::{select, tokens};

/// One text to compress and what is known about it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The tool output.
    pub text: &'a str,
    /// Tool name, command, file path: used for domain detection.
    pub hints: Hints<'a>,
    /// Skip detection and use this domain.
    pub domain: Option<Domain>,
    /// Bring the output under this many bytes, eliding the middle if needed.
    pub max_output_chars: Option<usize>,
    /// Where the full original can be read back, named in elision markers.
    pub full_output: Option<&'a str>,
    /// What the agent said it wants from this output: its words before the tool call
    /// (from the session transcript, or `--intent` / `KOMPRESS_INTENT`). `None` when
    /// unknown; the line pass then decides from the output and the command alone.
    pub intent: Option<&'a str>,
    /// What the agent knew before the call ([`crate::known`]: its session's prompts, words
    /// and calls, from the transcript), read when the line model first needs it. `None`
    /// without a transcript.
    pub known: Option<&'a crate::known::Lazy<'a>>,
    /// Let the model pass drop protected words too. Only for measuring what protection
    /// saves (the heretic set's `override_delta`); nothing that emits output sets it.
    pub unprotected: bool,
}

/// A successful compression.
#[derive(Clone, Debug, PartialEq)]
pub struct Compressed {
    /// The compressed text.
    pub text: String,
    /// The domain it was compressed as.
    pub domain: Domain,
    /// cl100k tokens of the input.
    pub tokens_in: usize,
    /// cl100k tokens of the output.
    pub tokens_out: usize,
    /// The passes that changed something, in order.
    pub passes: Vec<Pass>,
    /// Whether the model dropped lines or words.
    pub model: bool,
}

/// Why a text was left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passthrough {
    /// `KOMPRESS_DISABLE` or `disable = true`.
    Disabled,
    /// Shorter than `min_chars`: not worth it.
    TooShort,
    /// NUL bytes or control characters: not text.
    Binary,
    /// Already holds kompress markers (a compressed output or `kompress show`).
    AlreadyCompressed,
    /// Nothing was saved, or less than `min_saving`.
    SmallSaving,
    /// The deadline passed.
    Deadline,
    /// JSON that stays over `max_output_chars` even when compacted: cutting it would break
    /// it, so the original goes through (and the tool's own limits apply).
    TooLarge,
}

impl fmt::Display for Passthrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Passthrough::Disabled => "disabled",
            Passthrough::TooShort => "too short",
            Passthrough::Binary => "binary",
            Passthrough::AlreadyCompressed => "already compressed",
            Passthrough::SmallSaving => "small saving",
            Passthrough::Deadline => "deadline",
            Passthrough::TooLarge => "too large",
        })
    }
}

/// Compress `request.text`, or say why not.
pub fn compress(
    request: &Request<'_>,
    config: &Config,
    scorer: Option<&dyn Scorer>,
    deadline: Instant,
) -> Result<Compressed, Passthrough> {
    let input = request.text;
    if config.disable {
        return Err(Passthrough::Disabled);
    }
    if input.len() < config.min_chars || input.chars().count() < config.min_chars {
        return Err(Passthrough::TooShort);
    }
    if is_binary(input) {
        return Err(Passthrough::Binary);
    }
    if input.lines().any(passes::is_marker) {
        return Err(Passthrough::AlreadyCompressed);
    }
    let domain = request.domain.unwrap_or_else(|| domain::detect(&request.hints, input));
    let settings = config.settings(domain);

    let mut text = Cow::Borrowed(input);
    let mut applied = Vec::new();
    let mut lines_dropped = false;
    // Whole lines first, on the original lines, so that markers name the original's line
    // numbers (see `select`).
    if let Some(forest) = scorer.filter(|_| settings.lines).and_then(|s| s.lines()) {
        let context = select::Context {
            hints: request.hints,
            domain,
            intent: request.intent,
            known: request.known,
        };
        if let Some(selected) = select::select(input, &context, forest) {
            text = Cow::Owned(selected);
            lines_dropped = true;
        }
    }
    for pass in Pass::ALL.iter().copied().filter(|p| settings.passes.contains(p)) {
        if let Cow::Owned(changed) = pass.apply(&text) {
            if changed != *text {
                text = Cow::Owned(changed);
                applied.push(pass);
            }
        }
        if Instant::now() > deadline {
            return Err(Passthrough::Deadline);
        }
    }
    let mut model = lines_dropped;
    if let (true, Some(scorer)) = (settings.model, scorer) {
        // Token counting and the reply still need time after the model: it gets three
        // quarters of what is left, or its work is discarded (the rules' output stands).
        let now = Instant::now();
        let model_deadline = now + deadline.saturating_duration_since(now) * 3 / 4;
        if let Some(dropped) = drop_words(&text, scorer, model_deadline, !request.unprotected) {
            text = Cow::Owned(dropped);
            model = true;
        }
        if Instant::now() > deadline {
            return Err(Passthrough::Deadline);
        }
    }
    // A file read must keep every line at its number (Claude Code numbers Read output
    // from `startLine`, and Edit copies from it): no middle elision there.
    if let Some(max) = request.max_output_chars.filter(|_| domain != Domain::FileRead) {
        if text.len() > max && domain == Domain::JsonToolResult {
            return Err(Passthrough::TooLarge);
        }
        if text.len() > max {
            text = Cow::Owned(elide_middle(&text, max, request.full_output));
        }
    }
    if text.len() >= input.len() {
        return Err(Passthrough::SmallSaving);
    }
    let tokens_out = tokens::count(&text);
    let tokens_in = tokens::count(input);
    if Instant::now() > deadline {
        return Err(Passthrough::Deadline);
    }
    let saved = tokens_in.saturating_sub(tokens_out);
    if saved == 0 || (saved as f64) < config.min_saving * tokens_in as f64 {
        return Err(Passthrough::SmallSaving);
    }
    Ok(Compressed {
        text: text.into_owned(),
        domain,
        tokens_in,
        tokens_out,
        passes: applied,
        model,
    })
}

/// NUL bytes, or more than 1% of other control characters: not text for a model.
fn is_binary(text: &str) -> bool {
    if text.contains('\0') {
        return true;
    }
    let control = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x1b' | '\x08' | '\x0c'))
        .count();
    control * 100 > text.len()
}

/// The score below which the model pass drops an unprotected word.
pub const KEEP_THRESHOLD: f32 = 0.5;

/// The model pass: drop low-scoring words that are not protected, line by line.
///
/// Lines keep their indentation and their order; marker and signal lines are never
/// touched ([`select::is_signal`]); a line
/// whose every word is dropped disappears. Returns `None` when nothing was dropped, or when
/// the scorer failed (no loadable model, `deadline` passed): fail open to the rules' output.
fn drop_words(text: &str, scorer: &dyn Scorer, deadline: Instant, protect: bool) -> Option<String> {
    let gapped = crate::model::words::gapped_words(text);
    let scores = match scorer.score(&gapped, deadline) {
        Ok(scores) if scores.len() == gapped.len() => scores,
        Ok(_) => return None,
        Err(e) => {
            crate::log::write(&format!("model pass skipped: {e:#}"));
            return None;
        }
    };
    let mut scores = scores.into_iter();
    let mut out = String::with_capacity(text.len());
    let mut dropped_any = false;
    for line in text.split_inclusive('\n') {
        let line_words: Vec<&str> = protect::words(line).collect();
        let line_scores: Vec<f32> = scores.by_ref().take(line_words.len()).collect();
        // Error and failure lines and test summaries stay word for word: `13 passed, 1
        // deselected in 0.19s` must not lose its `in`.
        if passes::is_marker(line) || line_words.is_empty() || select::is_signal(line) {
            out.push_str(line);
            continue;
        }
        let kept: Vec<&str> = line_words
            .iter()
            .zip(&line_scores)
            .filter(|(word, score)| {
                **score >= KEEP_THRESHOLD || (protect && protect::is_protected(word))
            })
            .map(|(word, _)| *word)
            .collect();
        if kept.len() == line_words.len() {
            out.push_str(line);
            continue;
        }
        dropped_any = true;
        if kept.is_empty() {
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        out.push_str(indent);
        out.push_str(&kept.join(" "));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    dropped_any.then_some(out)
}

static SIGNAL_LINE: Pattern = Pattern::new(r"(?i-u)\b(error|errors|fail|failed|failure|fatal|panic|panicked|exception|traceback|warning|denied|assert)");

/// Bring `text` under `max` bytes: keep the head, the tail, and as many error-like lines
/// from the middle as fit, with a marker for every gap.
///
/// The middle of a huge log is where an agent is least likely to look and most likely to
/// lose an error, so error, failure and warning lines get a share of the budget.
pub fn elide_middle(text: &str, max: usize, full_output: Option<&str>) -> String {
    // A line longer than a quarter of the budget (minified JSON, a base64 blob) would
    // crowd out everything else: keep its start only.
    let longest = max / 4;
    let shortened: Vec<Cow<'_, str>> = text
        .split_inclusive('\n')
        .map(|line| {
            if line.len() <= longest {
                return Cow::Borrowed(line);
            }
            let mut cut = longest / 2;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            let rest = line.len() - cut;
            Cow::Owned(format!("{}\n{}\n", &line[..cut], passes::marker(&format!("{rest} bytes of this line cut"))))
        })
        .collect();
    let lines: Vec<&str> = shortened.iter().map(|l| l.as_ref()).collect();
    // Room for up to a few markers.
    let budget = max.saturating_sub(600);
    let head_budget = budget * 2 / 5;
    let tail_budget = budget * 2 / 5;
    let mut keep = vec![false; lines.len()];
    let mut used = 0;
    let mut head_end = 0;
    for (i, line) in lines.iter().enumerate() {
        if used + line.len() > head_budget {
            break;
        }
        used += line.len();
        keep[i] = true;
        head_end = i + 1;
    }
    let mut tail_used = 0;
    let mut tail_start = lines.len();
    for i in (head_end..lines.len()).rev() {
        if tail_used + lines[i].len() > tail_budget {
            break;
        }
        tail_used += lines[i].len();
        keep[i] = true;
        tail_start = i;
    }
    used += tail_used;
    for i in head_end..tail_start {
        let line = lines[i];
        if line.len() <= 400 && SIGNAL_LINE.is_match(line) && used + line.len() + 60 <= budget {
            used += line.len();
            keep[i] = true;
        }
    }
    let mut out = String::with_capacity(max);
    let mut i = 0;
    let mut markers = 0;
    while i < lines.len() {
        if keep[i] {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !keep[i] {
            i += 1;
        }
        let omitted = i - start;
        let chars: usize = lines[start..i].iter().map(|l| l.len()).sum();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        // Only the first gap names where the full output is, to keep markers short.
        let where_ = match (markers, full_output) {
            (0, Some(path)) => format!("; full output: {path}"),
            _ => String::new(),
        };
        out.push_str(&passes::marker(&format!(
            "{omitted} lines ({chars} bytes) omitted{where_}"
        )));
        out.push('\n');
        markers += 1;
    }
    if out.len() > max {
        // Lines longer than the whole budget: cut at a char boundary.
        let mut cut = max.saturating_sub(100);
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let omitted = out.len() - cut;
        out.truncate(cut);
        out.push('\n');
        out.push_str(&passes::marker(&format!("{omitted} bytes cut")));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scorer::FixedScorer;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    fn run(text: &str, domain: Domain) -> Result<Compressed, Passthrough> {
        let request = Request { text, domain: Some(domain), ..Request::default() };
        compress(&request, &Config::default(), None, later())
    }

    #[test]
    fn short_binary_and_marked_inputs_pass_through() {
        assert_eq!(run("tiny", Domain::BashOutput), Err(Passthrough::TooShort));
        let nul = format!("{}\0{}", "a".repeat(300), "b".repeat(300));
        assert_eq!(run(&nul, Domain::BashOutput), Err(Passthrough::Binary));
        let marked = format!("{}\n[kompress: 3 lines omitted]\n", "x y z\n".repeat(100));
        assert_eq!(run(&marked, Domain::BashOutput), Err(Passthrough::AlreadyCompressed));
    }

    #[test]
    fn disabled_passes_through() {
        let config = Config { disable: true, ..Config::default() };
        let text = "line\n".repeat(500);
        let request = Request { text: &text, ..Request::default() };
        assert_eq!(compress(&request, &config, None, later()), Err(Passthrough::Disabled));
    }

    #[test]
    fn deadline_passes_through() {
        let text = "same line again\n".repeat(500);
        let request = Request { text: &text, ..Request::default() };
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(compress(&request, &Config::default(), None, past), Err(Passthrough::Deadline));
    }

    #[test]
    fn file_reads_are_untouched() {
        let text = "    x = 1\n\n\n\n    y = 2   \n".repeat(100);
        assert_eq!(run(&text, Domain::FileRead), Err(Passthrough::SmallSaving));
    }

    #[test]
    fn model_pass_leaves_signal_lines_whole() {
        let mut text: String = (0..20).map(|i| format!("the step number {i} of the thing went well\n")).collect();
        text.push_str("===== 13 passed, 1 deselected in 0.19s =====\nValueError: the value of the thing\n");
        let request = Request { text: &text, domain: Some(Domain::BashOutput), ..Request::default() };
        let out = compress(&request, &Config::default(), Some(&FixedScorer(0.0)), later()).unwrap();
        assert!(out.text.contains("===== 13 passed, 1 deselected in 0.19s =====\n"), "{}", out.text);
        assert!(out.text.contains("ValueError: the value of the thing"), "{}", out.text);
    }

    #[test]
    fn model_pass_keeps_protected_words() {
        let text: String = (0..20)
            .map(|i| format!("the build of crate foo_bar stopped at src/lib.rs:{i} because of the thing\n"))
            .collect();
        let request = Request { text: &text, domain: Some(Domain::BashOutput), ..Request::default() };
        // The word model is off on tool output by default (`Domain::settings`); a user may
        // turn it on per domain.
        let mut config = Config::default();
        config.domains.insert(
            Domain::BashOutput,
            crate::domain::Settings { model: true, ..Domain::BashOutput.settings() },
        );
        let off = compress(&request, &Config::default(), Some(&FixedScorer(0.0)), later()).unwrap();
        assert!(!off.model, "{}", off.text);
        let out = compress(&request, &config, Some(&FixedScorer(0.0)), later()).unwrap();
        assert!(out.model);
        assert!(out.text.starts_with("foo_bar src/lib.rs:0\n"), "{}", out.text);
        // Scores of 1: the model keeps every word (the similar lines still fold).
        let high = compress(&request, &config, Some(&FixedScorer(1.0)), later()).unwrap();
        assert!(!high.model, "{}", high.text);
    }

    /// A model that cannot answer in time.
    struct LateScorer;

    impl Scorer for LateScorer {
        fn score(&self, words: &[(&str, &str)], _: Instant) -> anyhow::Result<Vec<f32>> {
            assert_eq!(words[1], ("\n", "second"), "words come with their real whitespace");
            anyhow::bail!("deadline passed")
        }
        fn describe(&self) -> String {
            "late".into()
        }
    }

    #[test]
    fn a_failing_model_leaves_the_rules_output() {
        let mut text = String::from("first\nsecond line\n");
        for _ in 0..40 {
            text.push_str("\x1b[32mthe same progress line over and over\x1b[0m\n");
        }
        let request = Request { text: &text, domain: Some(Domain::BashOutput), ..Request::default() };
        let rules = compress(&request, &Config::default(), None, later()).unwrap();
        let late = compress(&request, &Config::default(), Some(&LateScorer), later()).unwrap();
        assert!(!late.model);
        assert_eq!(late.text, rules.text);
    }

    #[test]
    fn elision_keeps_head_tail_and_errors() {
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("step {i} ok, nothing to see here\n"));
            if i == 2500 {
                text.push_str("ERROR: disk full at step 2500\n");
            }
        }
        let out = elide_middle(&text, 10_000, Some("/tmp/full.txt"));
        assert!(out.len() <= 10_000, "{}", out.len());
        assert!(out.starts_with("step 0 ok"));
        assert!(out.ends_with("step 4999 ok, nothing to see here\n"));
        assert!(out.contains("ERROR: disk full at step 2500\n"));
        assert!(out.contains("omitted; full output: /tmp/full.txt]"));
    }

    #[test]
    fn oversized_json_is_never_cut() {
        let doc: String = format!("[{}]", (0..5000).map(|i| format!("{{\"id\": {i}}}")).collect::<Vec<_>>().join(",\n "));
        let request = Request {
            text: &doc,
            domain: Some(Domain::JsonToolResult),
            max_output_chars: Some(10_000),
            ..Request::default()
        };
        assert_eq!(compress(&request, &Config::default(), None, later()), Err(Passthrough::TooLarge));
    }

    #[test]
    fn elision_cuts_single_huge_lines() {
        let text = "é".repeat(100_000);
        let out = elide_middle(&text, 5_000, None);
        assert!(out.len() <= 5_000);
        assert!(out.starts_with("éé"));
        assert!(out.contains("bytes of this line cut]"), "{out}");
    }
}
