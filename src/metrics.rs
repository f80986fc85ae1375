//! The metric functions of `kompress eval`: pure, small, and each checked on hand-built
//! cases with known answers. `docs/metrics.md` defines every one of them in words; the
//! two must stay in step.
//!
//! Two families:
//!
//! - kompress's own: token [`reduction_pct`], must-keep [`retention`] (whole protected
//!   words, as a set), [`json_valid`], and the [`head_tail`] truncation baseline;
//! - the seed's (kompress-model.md §3.4), recomputed on word-level must-keep rules:
//!   [`keep_rate`], [`exact_pct`], [`override_delta`] and [`mk_in_ref`]. Like the seed's,
//!   `exact_pct` and `mk_in_ref` test **substrings**; `retention` tests whole words.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::passes::{self, Pass};
use crate::protect;
use crate::tokens;

/// Token reduction in percent: `100 × (in − min(out, in)) / in`; 0 when `in` is 0.
///
/// An expansion (`out > in`) counts as 0 here; expansions are counted separately.
pub fn reduction_pct(tokens_in: usize, tokens_out: usize) -> f64 {
    if tokens_in == 0 {
        return 0.0;
    }
    100.0 * (tokens_in - tokens_out.min(tokens_in)) as f64 / tokens_in as f64
}

/// The arithmetic mean; 0 when empty.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median: the middle value, or the mean of the two middle values; 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The `q` quantile of sorted `values` by nearest rank (`ceil(q·n)`-th smallest); 0 when
/// empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Undo kompress's lossless notations so that what they stand for can be matched word for
/// word: counting ranges in markers (`v{9..11}` → `v9 v10 v11`, see
/// [`passes::repeats::expand_ranges`]) and path groups after a "paths grouped by
/// directory" marker (`dir/: a b` → `dir/a dir/b`, see [`passes::lists`]).
pub fn expand_markers(text: &str) -> Cow<'_, str> {
    let ranges = passes::repeats::expand_ranges(text);
    if !ranges
        .lines()
        .any(|l| passes::is_marker(l) && l.contains("paths grouped by directory"))
    {
        return ranges;
    }
    let mut out = String::with_capacity(ranges.len() * 2);
    let mut in_group = false;
    for line in ranges.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if passes::is_marker(body) {
            in_group = body.contains("paths grouped by directory");
            out.push_str(line);
            continue;
        }
        if in_group {
            let group = body.split_once("/: ");
            if let Some((dir, names)) =
                group.filter(|(d, n)| !d.contains(char::is_whitespace) && !n.is_empty())
            {
                let paths: Vec<String> = names.split(' ').map(|n| format!("{dir}/{n}")).collect();
                out.push_str(&paths.join(" "));
                out.push_str(&line[body.len()..]);
                continue;
            }
            // A bare path continues the run; anything else ends it.
            in_group = !body.is_empty() && !body.contains(char::is_whitespace);
        }
        out.push_str(line);
    }
    Cow::Owned(out)
}

/// The text as the protect rules see it: ANSI escape sequences removed, so that a colour
/// code glued to a word (`\x1b[1merror`) neither makes it protected nor unmatchable.
fn plain(text: &str) -> Cow<'_, str> {
    Pass::Ansi.apply(text)
}

/// `text` without kompress's marker lines, and those lines.
pub fn split_markers(text: &str) -> (String, Vec<&str>) {
    let mut body = String::with_capacity(text.len());
    let mut markers = Vec::new();
    for line in text.split_inclusive('\n') {
        if passes::is_marker(line) {
            markers.push(line.trim_end_matches(['\n', '\r']));
        } else {
            body.push_str(line);
        }
    }
    (body, markers)
}

/// The form of `text` whose words are compared: when `text` without its marker lines is a
/// JSON document, that document pretty-printed (serde_json, two-space indent, keys in
/// their order, numbers as written) followed by the marker lines; otherwise `text`.
///
/// Compacting JSON removes the whitespace between words, not the words: without this, a
/// compacted document would be one long "word" and every key and value in it "lost".
pub fn comparable(text: &str) -> Cow<'_, str> {
    let (body, markers) = split_markers(text);
    if !is_json_document(&body) {
        return Cow::Borrowed(text);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) else {
        return Cow::Borrowed(text);
    };
    let mut out = serde_json::to_string_pretty(&value).unwrap_or(body);
    for marker in markers {
        out.push('\n');
        out.push_str(marker);
    }
    Cow::Owned(out)
}

/// The distinct protected words of `text` (their cores, see [`protect::core`]), after ANSI
/// stripping, in its [`comparable`] form.
pub fn protected_set(text: &str) -> BTreeSet<String> {
    let plain = plain(text);
    protect::protected_words(&comparable(&plain))
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The distinct word cores of `text` after ANSI stripping, [`expand_markers`] and
/// [`comparable`].
pub fn word_set(text: &str) -> BTreeSet<String> {
    let plain = plain(text);
    let expanded = expand_markers(&plain);
    let comparable = comparable(&expanded);
    protect::words(&comparable)
        .map(protect::core)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Must-keep retention of one text: how many distinct protected words the input has, and
/// how many of them the output still has as a whole word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// Distinct protected words of the input.
    pub protected: usize,
    /// Of those, the ones found as a word of the output.
    pub kept: usize,
}

impl Retention {
    /// `kept / protected`; 1 when the input has no protected word.
    pub fn rate(self) -> f64 {
        if self.protected == 0 {
            1.0
        } else {
            self.kept as f64 / self.protected as f64
        }
    }

    /// Pool several: the sums of both counts.
    pub fn sum(items: impl IntoIterator<Item = Retention>) -> Retention {
        items
            .into_iter()
            .fold(Retention::default(), |a, b| Retention {
                protected: a.protected + b.protected,
                kept: a.kept + b.kept,
            })
    }
}

/// Retention of `before`'s protected words in `after`: set semantics, whole-word match of
/// cores (a word that occurs five times in the input counts once, and is kept when it
/// occurs at least once in the output).
pub fn retention(before: &str, after: &str) -> Retention {
    let protected = protected_set(before);
    if protected.is_empty() {
        return Retention::default();
    }
    let words = word_set(after);
    Retention {
        protected: protected.len(),
        kept: protected.iter().filter(|w| words.contains(*w)).count(),
    }
}

/// True when `text` is a JSON document: it parses as JSON and starts with `{` or `[`
/// (a bare number or string is not a JSON tool result).
pub fn is_json_document(text: &str) -> bool {
    let trimmed = text.trim_start();
    (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// True when `text` parses as JSON (whatever its top-level type).
pub fn json_valid(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// True when `text` without kompress's marker lines (such as the hook's trailer) parses as
/// JSON.
pub fn json_body_valid(text: &str) -> bool {
    json_valid(&split_markers(text).0)
}

/// The head+tail truncation baseline: the first and last lines of `text` that fit in
/// `budget` cl100k tokens.
///
/// Lines (with their newline) are taken alternately from the head and from the tail,
/// each only while the running sum of per-line token counts stays within `budget`; when
/// neither the next head line nor the next tail line fits, the longest prefix (whole
/// characters) of the next head line that fits is added. The result is head, then tail,
/// with nothing between them. Its real token count is then checked, and head lines are
/// dropped from the end (tail lines when the head is empty) until it is at most
/// `budget`. Returns `text` itself when it fits whole.
pub fn head_tail(text: &str, budget: usize) -> String {
    if tokens::count(text) <= budget {
        return text.to_string();
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let counts: Vec<usize> = lines.iter().map(|l| tokens::count(l)).collect();
    let (mut head, mut tail) = (0usize, lines.len()); // head: lines[..head], tail: lines[tail..]
    let mut used = 0usize;
    let mut head_turn = true;
    let (mut head_open, mut tail_open) = (true, true);
    while head < tail && (head_open || tail_open) {
        if head_turn && head_open {
            if used + counts[head] <= budget {
                used += counts[head];
                head += 1;
            } else {
                head_open = false;
            }
        } else if !head_turn && tail_open {
            if used + counts[tail - 1] <= budget {
                used += counts[tail - 1];
                tail -= 1;
            } else {
                tail_open = false;
            }
        }
        head_turn = !head_turn;
    }
    let mut partial = String::new();
    if head < tail && used < budget {
        // The longest character prefix of the next head line that fits.
        let line = lines[head];
        let bounds: Vec<usize> = line
            .char_indices()
            .map(|(i, _)| i)
            .skip(1)
            .chain([line.len()])
            .collect();
        let (mut lo, mut hi) = (0usize, bounds.len()); // number of bounds usable
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if tokens::count(&line[..bounds[mid - 1]]) <= budget - used {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if lo > 0 {
            partial = line[..bounds[lo - 1]].to_string();
        }
    }
    let assemble = |head: usize, partial: &str, tail: usize| -> String {
        let mut out = lines[..head].concat();
        out.push_str(partial);
        out.push_str(&lines[tail..].concat());
        out
    };
    let mut out = assemble(head, &partial, tail);
    // Token merges across line boundaries can change the sum: enforce the real count.
    while tokens::count(&out) > budget {
        if !partial.is_empty() {
            partial.clear();
        } else if head > 0 {
            head -= 1;
        } else if tail < lines.len() {
            tail += 1;
        } else {
            return String::new();
        }
        out = assemble(head, &partial, tail);
    }
    out
}

/// The seed's `keep_rate` for one text: output tokens over input tokens (cl100k); 1 when
/// the input is empty. Lower means more compression.
pub fn keep_rate(tokens_in: usize, tokens_out: usize) -> f64 {
    if tokens_in == 0 {
        1.0
    } else {
        tokens_out as f64 / tokens_in as f64
    }
}

/// The seed's `exact_pct` for one text: the protected words of `original` **with
/// repetitions**, in order, and the share of them that occur as a **substring** of
/// `compressed` (after [`expand_markers`]); divided by `max(n, 1)`, so 0 for a text with no
/// protected word, as in the seed.
pub fn exact_pct(original: &str, compressed: &str) -> f64 {
    let plain_in = plain(original);
    let must = protect::protected_words(&plain_in);
    let plain_out = plain(compressed);
    let expanded = expand_markers(&plain_out);
    let found = must.iter().filter(|m| expanded.contains(*m)).count();
    found as f64 / must.len().max(1) as f64
}

/// The seed's `override_delta`: mean `exact_pct` with the must-keep override minus mean
/// `exact_pct` without it (over the same samples).
pub fn override_delta(exact_with: &[f64], exact_without: &[f64]) -> f64 {
    mean(exact_with) - mean(exact_without)
}

/// The seed's `mk_in_ref` over (text, reference) pairs, pooled:
/// `Σ #{m ∈ P(text) : m is a substring of reference} / Σ #P(text)`, where `P(text)` is the
/// list of protected words of the text with repetitions; 1 when no text has one.
pub fn mk_in_ref<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let (mut found, mut total) = (0usize, 0usize);
    for (text, reference) in pairs {
        let plain_text = plain(text);
        let must = protect::protected_words(&plain_text);
        let plain_ref = plain(reference);
        let expanded = expand_markers(&plain_ref);
        total += must.len();
        found += must.iter().filter(|m| expanded.contains(*m)).count();
    }
    if total == 0 {
        1.0
    } else {
        found as f64 / total as f64
    }
}

/// Error names (`…Error`, `…Exception`) and signal lines ([`crate::select::is_signal`]:
/// error and failure lines, tracebacks' last lines, test summaries) of `before` that are no
/// longer in `after`: what must never be lost.
pub fn signals_lost(before: &str, after: &str) -> (usize, usize) {
    let names_after = error_names(after);
    let lines_after: HashSet<String> = after.lines().map(plain_line).collect();
    let names = error_names(before)
        .iter()
        .filter(|n| !names_after.contains(*n))
        .count();
    let lines = signal_lines(before)
        .iter()
        .filter(|l| !lines_after.contains(l.as_str()))
        .count();
    (names, lines)
}

static ERROR_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[A-Za-z_][A-Za-z0-9_]*(?:Error|Exception)(?-u:\b)").expect("valid regex")
});

/// `…Error` and `…Exception` names, except test classes (`TestValidationError` in a
/// passing test's id is not an error).
fn error_names(text: &str) -> BTreeSet<&str> {
    ERROR_NAME
        .find_iter(text)
        .map(|m| m.as_str())
        .filter(|n| !n.starts_with("Test"))
        .collect()
}

/// A line without its decoration (`===== 3 failed =====` → `3 failed`) and with its
/// spaces collapsed: the word pass may drop rules of `=` and `-` around a summary.
fn plain_line(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let decoration = |w: &&str| w.chars().all(|c| !c.is_alphanumeric());
    let start = words
        .iter()
        .position(|w| !decoration(w))
        .unwrap_or(words.len());
    let end = words
        .iter()
        .rposition(|w| !decoration(w))
        .map_or(start, |e| e + 1);
    words[start..end].join(" ")
}

fn signal_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| crate::select::is_signal(l))
        .map(plain_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_lost_counts_error_names_and_signal_lines() {
        let before = "collecting\nE   KeyError: 'x'\nTestParseError passed\n==== 1 failed, 3 passed in 0.1s ====\n";
        assert_eq!(signals_lost(before, before), (0, 0));
        // Decoration and spacing around a summary do not matter.
        let kept = "E   KeyError: 'x'\nTestParseError passed\n1 failed,  3 passed in 0.1s\n";
        assert_eq!(signals_lost(before, kept), (0, 0));
        // A test class is not an error name (its line is still a signal line).
        assert_eq!(signals_lost(before, "1 failed, 3 passed in 0.1s"), (1, 2));
    }

    #[test]
    fn reduction_known_answers() {
        assert_eq!(reduction_pct(100, 25), 75.0);
        assert_eq!(reduction_pct(100, 100), 0.0);
        assert_eq!(reduction_pct(100, 150), 0.0); // expansions do not count as negative
        assert_eq!(reduction_pct(0, 0), 0.0);
        assert_eq!(reduction_pct(8, 0), 100.0);
    }

    #[test]
    fn averages_known_answers() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.95), 10.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn retention_is_a_set_of_whole_words() {
        // Protected: error, x_1, /src/lib.rs:3:9, E0425 (four distinct; `error` twice).
        let before = "error: cannot-see x_1 in /src/lib.rs:3:9\nerror E0425 here";
        let expected: BTreeSet<String> = ["/src/lib.rs:3:9", "E0425", "error", "x_1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(protected_set(before), expected);
        let r = retention(before, "error E0425");
        assert_eq!(
            r,
            Retention {
                protected: 4,
                kept: 2
            }
        );
        assert_eq!(r.rate(), 0.5);
        // Whole words only: `E04` inside `E0425` is not `E0425`, and `x_10` is not `x_1`.
        assert_eq!(retention("E0425 x_1", "E04250 x_10").kept, 0);
        // Punctuation around a word does not matter.
        assert_eq!(retention("see `x_1`, E0425.", "(x_1) \"E0425\"").kept, 2);
        // No protected word: nothing to lose.
        assert_eq!(retention("just some words here", "").rate(), 1.0);
        let pooled = Retention::sum([
            Retention {
                protected: 3,
                kept: 1,
            },
            Retention {
                protected: 1,
                kept: 1,
            },
        ]);
        assert_eq!(
            pooled,
            Retention {
                protected: 4,
                kept: 2
            }
        );
        assert_eq!(pooled.rate(), 0.5);
    }

    #[test]
    fn retention_expands_ranges_groups_and_ignores_ansi() {
        let before = "worker=1 up\nworker=2 up\nworker=3 up\n";
        let after = "worker=1 up\n[kompress: 2 more like the line above: worker={2..3}]\n";
        assert_eq!(
            retention(before, after),
            Retention {
                protected: 3,
                kept: 3
            }
        );
        let before = "src/a/x.py\nsrc/a/y.py\nsrc/b.py\n";
        let after = "[kompress: next 3 paths grouped by directory; \"dir/: a b\" = dir/a, dir/b]\nsrc/a/: x.py y.py\nsrc/b.py\n";
        assert_eq!(
            retention(before, after),
            Retention {
                protected: 3,
                kept: 3
            }
        );
        // Without the marker a `dir/: a` line is not a group.
        assert_eq!(retention(before, "src/a/: x.py y.py\n").kept, 0);
        // A colour code glued to a word is not part of it.
        assert_eq!(
            retention("\x1b[31mFAILED\x1b[0m test_x", "FAILED test_x"),
            Retention {
                protected: 2,
                kept: 2
            }
        );
    }

    #[test]
    fn json_checks() {
        assert!(is_json_document("{\"a\": [1, 2]}"));
        assert!(is_json_document("  [1]"));
        assert!(!is_json_document("42"));
        assert!(!is_json_document("{\"a\": "));
        assert!(json_valid("42"));
        assert!(!json_valid("{\"a\":1,}"));
        let trailed = "{\"a\":1}\n[kompress: 9→5 tokens · full output: kompress show 0a1b]\n";
        assert!(!json_valid(trailed));
        assert!(json_body_valid(trailed));
        assert!(!json_body_valid(
            "{\"a\":\n[kompress: 3 lines omitted]\n1}x"
        ));
    }

    #[test]
    fn compacted_json_keeps_its_words() {
        let pretty =
            "{\n  \"avatar_url\": \"https://x.io/a\",\n  \"id\": 31898100,\n  \"ok\": true\n}";
        let compact = "{\"avatar_url\":\"https://x.io/a\",\"id\":31898100,\"ok\":true}\n[kompress: 30→20 tokens]";
        assert_eq!(
            retention(pretty, compact),
            Retention {
                protected: 4,
                kept: 4
            }
        );
        // A value that changed is lost, and only it.
        let changed = "{\"avatar_url\":\"https://x.io/a\",\"id\":31898101,\"ok\":true}";
        assert_eq!(
            retention(pretty, changed),
            Retention {
                protected: 4,
                kept: 3
            }
        );
        // Not JSON: compared as printed.
        assert_eq!(comparable("a b"), "a b");
    }

    #[test]
    fn head_tail_known_answers() {
        // Each line "lineN\n" is 3 tokens: `line`, `N`, `\n`.
        let text: String = (0..10).map(|i| format!("line{i}\n")).collect();
        assert_eq!(tokens::count("line0\n"), 3);
        assert_eq!(head_tail(&text, 1000), text);
        // 12 tokens: two head lines and two tail lines, alternating head first.
        assert_eq!(head_tail(&text, 12), "line0\nline1\nline8\nline9\n");
        // 9 tokens: head, tail, head.
        assert_eq!(head_tail(&text, 9), "line0\nline1\nline9\n");
        // 2 tokens: no whole line fits; a prefix of the first line does.
        assert_eq!(head_tail(&text, 2), "line0");
        assert_eq!(head_tail(&text, 0), "");
        // One long line: a prefix within the budget.
        let long = "word ".repeat(100);
        let cut = head_tail(&long, 10);
        assert!(
            long.starts_with(&cut) && tokens::count(&cut) <= 10 && tokens::count(&cut) >= 9,
            "{cut:?}"
        );
    }

    #[test]
    fn keep_rate_known_answers() {
        assert_eq!(keep_rate(200, 50), 0.25);
        assert_eq!(keep_rate(0, 0), 1.0);
        assert_eq!(keep_rate(10, 10), 1.0);
    }

    #[test]
    fn exact_pct_counts_repetitions_and_substrings() {
        // Protected words with repetitions: E0425 twice, `and` (a meaning word), x_1.
        let original = "E0425 then E0425 again and x_1";
        assert_eq!(
            protect::protected_words(original),
            vec!["E0425", "E0425", "and", "x_1"]
        );
        assert_eq!(exact_pct(original, "E0425 x_1"), 0.75);
        // Substring test, as the seed: `x_1` is found inside `x_10`.
        assert_eq!(exact_pct(original, "E0425 x_10 sand"), 1.0);
        assert_eq!(exact_pct(original, ""), 0.0);
        // No protected word: 0 / max(0, 1) = 0, as in the seed.
        assert_eq!(exact_pct("plain words here", "plain words here"), 0.0);
        // Ranges are expanded first.
        assert_eq!(exact_pct("v9 v10 v11 here", "[kompress: v{9..11}]"), 1.0);
    }

    #[test]
    fn override_delta_known_answers() {
        assert_eq!(override_delta(&[1.0, 0.5], &[0.5, 0.5]), 0.25);
        assert_eq!(override_delta(&[0.9, 0.9], &[0.9, 0.9]), 0.0);
        assert_eq!(override_delta(&[], &[]), 0.0);
    }

    #[test]
    fn mk_in_ref_is_pooled() {
        // Pair 1: E0425, x_1 → both in the reference. Pair 2: 0xdead, v1.2.3 → one.
        let pairs = [
            ("E0425 in x_1 here", "x_1: E0425"),
            ("at 0xdead see v1.2.3", "at 0xdead"),
        ];
        assert_eq!(mk_in_ref(pairs), 0.75);
        assert_eq!(mk_in_ref([("plain words here", "")]), 1.0);
        assert_eq!(mk_in_ref(std::iter::empty()), 1.0);
    }
}
