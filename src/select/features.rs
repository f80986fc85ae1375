//! What the line model knows about each line of an output.
//!
//! One fixed list of numbers per line ([`NAMES`], in order): what kind of command printed
//! it, where the line sits, what it looks like, how much of it the agent's intent and
//! command name, how close it is to lines that do, and what it holds that the agent has not
//! met in its session. The same code computes them for
//! training (`kompress model line-data`) and at run time, so the two cannot disagree.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;


use crate::domain::{CommandKind, Domain};
use crate::known::Known;
use crate::model::forest::{Fnv, Vocab};
use crate::usage;

/// The per-output word tables: built on every hook call that selects lines.
type Fast = BuildHasherDefault<Fnv>;
type Set<'a> = HashSet<&'a str, Fast>;
type Map<'a, V> = HashMap<&'a str, V, Fast>;

/// What [`paths`] finds: a file path with an extension, `src/a/b.py`, `./x/y.rs`.
#[cfg(test)]
const PATH_PATTERN: &str = r"(?:[A-Za-z0-9_.\-]+/)+[A-Za-z0-9_.\-]+\.[A-Za-z]{1,4}(?-u:\b)";

/// The matches of `PATH_PATTERN` (its tests' regex) in `line`, left to right, as the regex crate's
/// `find_iter` gives them. Written by hand because building the regex cost ~0.19 ms of
/// every hook call that selects lines (a cold process parses, translates and compiles it
/// for one output). Tests hold it to the pattern on the corpus and on random text.
///
/// How the pattern matches from a start: its segment groups (`seg/`, a segment being a
/// run of `[A-Za-z0-9_.-]`) take as many segments as there are, then give them back one
/// by one until the segment after the last slash has a dot (not its first character)
/// followed by 1 to 4 letters that end a word; the rightmost such dot wins. A start in
/// the middle of a segment matches exactly when the segment's start does, so starts are
/// tried segment by segment.
fn paths(line: &str) -> Vec<&str> {
    let b = line.as_bytes();
    let segment = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let run_end = |from: usize| (from..b.len()).find(|&i| !segment(b[i])).unwrap_or(b.len());
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = (at..b.len()).find(|&i| segment(b[i])) {
        // Where each `seg/` group ends, from `start`.
        let mut groups = Vec::new();
        let mut i = start;
        loop {
            let end = run_end(i);
            if end == i || b.get(end) != Some(&b'/') {
                break;
            }
            groups.push(end + 1);
            i = end + 1;
        }
        let end = groups.iter().rev().find_map(|&last| {
            let tail = run_end(last);
            (last + 1..tail).rev().filter(|&d| b[d] == b'.').find_map(|d| {
                let letters = b[d + 1..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
                let after = d + 1 + letters;
                let boundary = b.get(after).is_none_or(|&c| !(c.is_ascii_alphanumeric() || c == b'_'));
                ((1..=4).contains(&letters) && boundary).then_some(after)
            })
        });
        match end {
            Some(end) => {
                found.push(&line[start..end]);
                at = end;
            }
            None => at = run_end(start),
        }
    }
    found
}
/// What [`failure_header`] matches: pytest's `==== FAILURES ====` and `==== ERRORS ====`.
#[cfg(test)]
const FAILURE_HEADER: &str = r"^=+ (?:FAILURES|ERRORS) =+$";
/// What [`after_failures`] matches: the short summary, the warnings, the last line.
#[cfg(test)]
const AFTER_FAILURES: &str = r"^=+ (?:short test summary info|warnings summary|.*(?:passed|failed|error).* in [0-9.]+s.*) =+$";

// The rules of `=` below are matched by hand, as the paths are: any output with a line that
// starts with `=` built both regexes, ~0.4 ms. Tests hold them to their patterns.

/// The title of a rule of `=`: `=== X ===` gives `X`. The pattern's leading `=+` must
/// take the whole leading run (a space follows it), and its trailing `=+$` the whole
/// trailing run (a space precedes it).
fn rule_title(line: &str) -> Option<&str> {
    let lead = line.len() - line.trim_start_matches('=').len();
    let trail = line.len() - line.trim_end_matches('=').len();
    if lead == 0 || trail == 0 || lead + trail + 2 > line.len() {
        return None;
    }
    line[lead..line.len() - trail].strip_prefix(' ')?.strip_suffix(' ')
}

/// A failure section starts: `FAILURE_HEADER` (its tests' regex).
fn failure_header(line: &str) -> bool {
    rule_title(line).is_some_and(|t| t == "FAILURES" || t == "ERRORS")
}

/// The section after the failures: `AFTER_FAILURES` (its tests' regex).
fn after_failures(line: &str) -> bool {
    let Some(title) = rule_title(line) else { return false };
    if title == "short test summary info" || title == "warnings summary" {
        return true;
    }
    // `.*(?:passed|failed|error).* in [0-9.]+s.*`: the earliest keyword leaves the most room.
    let Some(from) = ["passed", "failed", "error"]
        .iter()
        .filter_map(|k| title.find(k).map(|i| i + k.len()))
        .min()
    else {
        return false;
    };
    let bytes = title.as_bytes();
    (from..bytes.len()).any(|i| {
        let Some(rest) = bytes[i..].strip_prefix(b" in ") else { return false };
        let digits = rest.iter().take_while(|c| c.is_ascii_digit() || **c == b'.').count();
        digits > 0 && rest.get(digits) == Some(&b's')
    })
}

/// The feature names, in the order [`extract`] writes them; the model file must list the
/// same names.
pub const NAMES: &[&str] = &[
    "kind_test",
    "kind_search",
    "kind_read",
    "kind_git",
    "kind_install",
    "kind_list",
    "kind_script",
    "kind_other",
    "domain_error_trace",
    "domain_search",
    "domain_test_output",
    "domain_build_log",
    "intent_present",
    "pos_rel",
    "pos_from_start_log",
    "pos_from_end_log",
    "lines_log",
    "len_log",
    "items",
    "ident_items",
    "rare_items",
    "intent_overlap",
    "intent_overlap_frac",
    "command_overlap",
    "intent_near2",
    "intent_near8",
    "intent_dist_log",
    "signal",
    "signal_dist_log",
    "indent",
    "blank",
    "location",
    "code_def",
    "dup_log",
    "novelty",
    "digit_frac",
    "punct_frac",
    "ends_colon",
    "shape_dup_log",
    "prev_ident_items",
    "next_ident_items",
    "prev_intent_overlap",
    "next_intent_overlap",
    "line_tokens_log",
    "fresh_items",
    "fresh_rare",
    "fresh_first",
    "fresh_frac",
    "has_path",
    "site_packages",
    "failure_section",
    "idf_max",
    "path_in_intent",
    "frame_project",
    "fresh_line_df_min_log",
    "fresh_idf_sum",
    "prefix_count_log",
    "prefix_first",
    "fresh_uncovered",
    "history_present",
    "history_known",
    "history_fresh",
    "history_fresh_frac",
];

/// English words an intent is full of that say nothing about which line is wanted.
#[rustfmt::skip]
const STOP: &[&str] = &[
    "the", "and", "for", "that", "this", "with", "from", "are", "was", "were", "will", "can",
    "let", "now", "see", "look", "check", "file", "files", "code", "which", "what", "where",
    "how", "not", "but", "its", "has", "have", "need", "should", "would", "could", "there",
    "then", "than", "into", "also", "some", "any", "all", "use", "used", "using", "first",
    "find", "run", "running", "test", "tests", "make", "sure", "issue", "understand", "let's",
    "lets", "more", "about", "when", "our", "out", "you", "they", "them", "their", "only",
    "one", "two", "get", "does", "did", "doing", "been", "being", "show", "shows", "above",
    "below", "again", "here", "just", "like", "line", "lines", "want", "script", "output",
    "error", "fix", "problem", "current", "implementation", "function", "method", "class",
];

fn lower_items(text: &str) -> Vec<String> {
    usage::items(text).map(|w| w.to_ascii_lowercase()).collect()
}

/// The words of an intent or a command worth matching against lines.
pub fn key_items(text: &str) -> HashSet<String> {
    lower_items(text)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Whether a line names a location: `path:line`, a Python frame, `--> file:line`.
fn is_location(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with("File \"") || t.starts_with("--> ") {
        return true;
    }
    // `path/or.ext:123` before the first space.
    let head = t.split(char::is_whitespace).next().unwrap_or("");
    match head.split_once(':') {
        Some((path, rest)) => {
            (path.contains('/') || path.contains('.'))
                && rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn is_code_def(line: &str) -> bool {
    let t = line.trim_start();
    [
        "def ",
        "class ",
        "async def ",
        "fn ",
        "pub fn ",
        "function ",
        "func ",
    ]
    .iter()
    .any(|p| t.starts_with(p))
}

/// A line's shape: every run of letters, digits and `_` as `a`, the rest as it is, so
/// `tests/a.py::test_x PASSED` and `tests/b.py::test_y PASSED` share one.
fn shape(line: &str) -> String {
    let mut out = String::with_capacity(line.len() / 2);
    let mut in_word = false;
    for c in line.trim().chars() {
        if c.is_alphanumeric() || c == '_' {
            if !in_word {
                out.push('a');
            }
            in_word = true;
        } else {
            in_word = false;
            out.push(c);
        }
    }
    out
}

fn log2p(x: usize) -> f32 {
    ((x + 1) as f32).log2()
}

/// Distance from each line to the nearest line where `flag` holds (capped).
fn distances(flags: &[bool], cap: usize) -> Vec<usize> {
    let n = flags.len();
    let mut out = vec![cap; n];
    let mut last: Option<usize> = None;
    for i in 0..n {
        if flags[i] {
            last = Some(i);
        }
        if let Some(j) = last {
            out[i] = out[i].min(i - j);
        }
    }
    last = None;
    for i in (0..n).rev() {
        if flags[i] {
            last = Some(i);
        }
        if let Some(j) = last {
            out[i] = out[i].min(j - i);
        }
    }
    out
}

/// The cl100k tokens of every line of `text` (split on `\n`, the newline not counted):
/// counted once, for the features, the line choice and the markers.
pub fn line_tokens(text: &str) -> Vec<usize> {
    text.split('\n').map(crate::tokens::count).collect()
}

/// The features of every line of `text` (split on `\n`), row-major, [`NAMES`]`.len()` a row;
/// `tokens` is [`line_tokens`] of `text`.
#[allow(clippy::too_many_arguments)]
pub fn extract(
    text: &str,
    tokens: &[usize],
    kind: CommandKind,
    domain: Domain,
    command: &str,
    intent: Option<&str>,
    known: Option<&Known>,
    vocab: &Vocab,
    signal: impl Fn(&str) -> bool,
) -> Vec<f32> {
    let lines: Vec<&str> = text.split('\n').collect();
    debug_assert_eq!(lines.len(), tokens.len());
    let n = lines.len();
    let intent_items = intent.map(key_items).unwrap_or_default();
    let command_items = key_items(command);
    let line_items: Vec<Vec<String>> = lines.iter().map(|l| lower_items(l)).collect();
    // In how many lines each item occurs, and how often each trimmed line occurs.
    let mut line_df: Map<u32> = Map::default();
    for items in &line_items {
        let unique: Set = items.iter().map(String::as_str).collect();
        for w in unique {
            *line_df.entry(w).or_default() += 1;
        }
    }
    let mut dup: Map<u32> = Map::default();
    for l in &lines {
        *dup.entry(l.trim()).or_default() += 1;
    }
    let shapes: Vec<String> = lines.iter().map(|l| shape(l)).collect();
    let mut shape_count: Map<u32> = Map::default();
    for s in &shapes {
        *shape_count.entry(s.as_str()).or_default() += 1;
    }
    let ident_counts: Vec<usize> = lines
        .iter()
        .map(|line| {
            usage::items(line)
                .filter(|w| {
                    w.contains('_')
                        || w.bytes().any(|b| b.is_ascii_digit())
                        || w.bytes().skip(1).any(|b| b.is_ascii_uppercase())
                })
                .count()
        })
        .collect();
    let overlap: Vec<usize> = line_items
        .iter()
        .map(|items| {
            let unique: Set = items.iter().map(String::as_str).collect();
            unique.iter().filter(|w| intent_items.contains(**w)).count()
        })
        .collect();
    let signals: Vec<bool> = lines.iter().map(|l| signal(l)).collect();
    let intent_dist = distances(&overlap.iter().map(|&o| o > 0).collect::<Vec<_>>(), 1000);
    let signal_dist = distances(&signals, 1000);
    let kind_index = CommandKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(7);
    let fresh = Fresh::of(&lines, &signals, command, intent, known, vocab);
    let mut seen: Set = Set::default();
    let mut out = Vec::with_capacity(n * NAMES.len());
    for (i, line) in lines.iter().enumerate() {
        let items = &line_items[i];
        let unique: Set = items.iter().map(String::as_str).collect();
        let ident = ident_counts[i];
        let rare = unique
            .iter()
            .filter(|w| line_df.get(**w) == Some(&1))
            .count();
        let command_overlap = unique
            .iter()
            .filter(|w| command_items.contains(**w))
            .count();
        let near = |r: usize| {
            let lo = i.saturating_sub(r);
            let hi = (i + r + 1).min(n);
            (lo..hi)
                .filter(|&j| j != i)
                .map(|j| overlap[j])
                .max()
                .unwrap_or(0)
        };
        let novel = unique.iter().filter(|w| !seen.contains(**w)).count();
        let chars = line.chars().count().max(1);
        let digits = line.chars().filter(char::is_ascii_digit).count();
        let punct = line.chars().filter(|c| c.is_ascii_punctuation()).count();
        let indent = line.len() - line.trim_start().len();
        for (k, _) in CommandKind::ALL.iter().enumerate() {
            out.push(f32::from(k == kind_index));
        }
        out.push(f32::from(domain == Domain::ErrorTrace));
        out.push(f32::from(domain == Domain::SearchResult));
        out.push(f32::from(domain == Domain::TestOutput));
        out.push(f32::from(domain == Domain::BuildLog));
        out.push(f32::from(!intent_items.is_empty()));
        out.push(i as f32 / n as f32);
        out.push(log2p(i));
        out.push(log2p(n - 1 - i));
        out.push(log2p(n));
        out.push(log2p(line.len()));
        out.push(items.len() as f32);
        out.push(ident as f32);
        out.push(rare as f32);
        out.push(overlap[i] as f32);
        out.push(if unique.is_empty() {
            0.0
        } else {
            overlap[i] as f32 / unique.len() as f32
        });
        out.push(command_overlap as f32);
        out.push(near(2) as f32);
        out.push(near(8) as f32);
        out.push(log2p(intent_dist[i]));
        out.push(f32::from(signals[i]));
        out.push(log2p(signal_dist[i]));
        out.push(indent.min(40) as f32);
        out.push(f32::from(line.trim().is_empty()));
        out.push(f32::from(is_location(line)));
        out.push(f32::from(is_code_def(line)));
        out.push(log2p(dup.get(line.trim()).copied().unwrap_or(1) as usize));
        out.push(if unique.is_empty() {
            0.0
        } else {
            novel as f32 / unique.len() as f32
        });
        out.push(digits as f32 / chars as f32);
        out.push(punct as f32 / chars as f32);
        out.push(f32::from(line.trim_end().ends_with(':')));
        out.push(log2p(shape_count[shapes[i].as_str()] as usize));
        out.push(if i > 0 {
            ident_counts[i - 1] as f32
        } else {
            0.0
        });
        out.push(if i + 1 < n {
            ident_counts[i + 1] as f32
        } else {
            0.0
        });
        out.push(if i > 0 { overlap[i - 1] as f32 } else { 0.0 });
        out.push(if i + 1 < n {
            overlap[i + 1] as f32
        } else {
            0.0
        });
        out.push(log2p(tokens[i]));
        out.extend_from_slice(&fresh.rows[i]);
        seen.extend(unique);
    }
    debug_assert_eq!(out.len(), n * NAMES.len());
    out
}

/// Features of what a line holds that the agent does not know yet: items (as the labels
/// count them, [`usage::items`], case kept) that are neither in its intent nor in its
/// command nor generic ([`Vocab::is_generic`]), and how many of those the agent met earlier
/// in the session ([`Known`]: the labels count those as known too); and of where the line
/// sits in a test run's failures, a traceback or a grep listing.
struct Fresh {
    rows: Vec<[f32; 19]>,
}

impl Fresh {
    fn of(
        lines: &[&str],
        signals: &[bool],
        command: &str,
        intent: Option<&str>,
        history: Option<&Known>,
        vocab: &Vocab,
    ) -> Fresh {
        let mut known: Set = usage::items(command).collect();
        known.extend(intent.map(usage::items).into_iter().flatten());
        let known_lower: HashSet<String> = known.iter().map(|w| w.to_ascii_lowercase()).collect();
        let items: Vec<Set> = lines.iter().map(|l| usage::items(l).collect()).collect();
        // What the lines no model may drop hold (signal lines and the last non-blank one,
        // [`crate::select::forced`]): a line whose items they repeat is not needed for them.
        let last = lines.iter().rposition(|l| !l.trim().is_empty());
        let mut covered: Set = Set::default();
        for (i, set) in items.iter().enumerate() {
            if signals[i] || Some(i) == last {
                covered.extend(set.iter().copied());
            }
        }
        let mut line_df: Map<u32> = Map::default();
        for set in &items {
            for w in set {
                *line_df.entry(w).or_default() += 1;
            }
        }
        fn prefix(line: &str) -> Option<&str> {
            line.split_once(':')
                .map(|(p, _)| p)
                .filter(|p| !p.is_empty())
        }
        let mut prefix_count: Map<u32> = Map::default();
        for line in lines {
            if let Some(p) = prefix(line) {
                *prefix_count.entry(p).or_default() += 1;
            }
        }
        let mut prefix_seen: Set = Set::default();
        let mut seen: Set = Set::default();
        let mut in_failures = false;
        let mut rows = Vec::with_capacity(lines.len());
        for (line, set) in lines.iter().zip(&items) {
            let mut fresh: Vec<&str> = set
                .iter()
                .copied()
                .filter(|w| !known.contains(w) && !vocab.is_generic(w))
                .collect();
            // In a fixed order: the idf sum must not depend on the hash order, or the line
            // data (and the model trained on it) would differ from run to run.
            fresh.sort_unstable();
            let rare = fresh.iter().filter(|w| line_df[**w] == 1).count();
            let first = fresh.iter().filter(|w| !seen.contains(**w)).count();
            seen.extend(set.iter().copied());
            let trimmed = line.trim();
            // Both patterns start with `=`, and most outputs have no such line: then
            // neither is compiled.
            if trimmed.starts_with('=') {
                if failure_header(trimmed) {
                    in_failures = true;
                } else if after_failures(trimmed) {
                    in_failures = false;
                }
            }
            let idf_max = set.iter().map(|w| vocab.idf(w)).fold(0.0f32, f32::max);
            let paths: Vec<&str> = if line.contains('/') {
                paths(line)
            } else {
                Vec::new()
            };
            let path_in_intent = paths
                .iter()
                .any(|p| usage::items(p).any(|w| known_lower.contains(&w.to_ascii_lowercase())));
            let site = line.contains("site-packages") || line.contains("/lib/python");
            let frame = line.trim_start().starts_with("File \"");
            let df_min = fresh.iter().map(|w| line_df[*w]).min().unwrap_or(0);
            let uncovered = fresh.iter().filter(|w| !covered.contains(**w)).count();
            let idf_sum: f32 = fresh.iter().map(|w| vocab.idf(w)).sum();
            // Of the fresh items, those the agent met earlier in the session (its task, its
            // earlier words and calls): without a history, none.
            let history_known = history.map_or(0, |h| fresh.iter().filter(|w| h.contains(w)).count());
            let history_fresh = fresh.len() - history_known;
            let (count, first_of_prefix) = match prefix(line) {
                Some(p) => (prefix_count[p] as usize, prefix_seen.insert(p)),
                None => (0, false),
            };
            rows.push([
                fresh.len() as f32,
                rare as f32,
                first as f32,
                if set.is_empty() {
                    0.0
                } else {
                    fresh.len() as f32 / set.len() as f32
                },
                f32::from(!paths.is_empty()),
                f32::from(site),
                f32::from(in_failures),
                idf_max,
                f32::from(path_in_intent),
                f32::from(frame && !site),
                log2p(df_min as usize),
                idf_sum,
                if count > 0 { log2p(count) } else { 0.0 },
                f32::from(first_of_prefix),
                uncovered as f32,
                f32::from(history.is_some()),
                history_known as f32,
                history_fresh as f32,
                if fresh.is_empty() {
                    -1.0
                } else {
                    history_fresh as f32 / fresh.len() as f32
                },
            ]);
        }
        Fresh { rows }
    }
}

#[cfg(test)]
mod tests {
    use super::{AFTER_FAILURES, FAILURE_HEADER, PATH_PATTERN, after_failures, failure_header, paths};

    #[test]
    fn rules_of_equals_are_their_patterns_on_the_corpus() {
        let headers = crate::passes::invariants::lines_agree(failure_header, FAILURE_HEADER);
        let after = crate::passes::invariants::lines_agree(after_failures, AFTER_FAILURES);
        assert!(headers >= 5 && after >= 50, "{headers} {after}");
    }

    proptest::proptest! {
        #[test]
        fn rules_of_equals_are_their_patterns(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "=", "==", "===", " ", "FAILURES", "ERRORS", "short test summary info",
                "warnings summary", "passed", "failed", "error", " in ", "in", "3", "0.5", ".",
                "s", "x", "é", "in 2s",
            ]), 0..10)
        ) {
            let line: String = parts.concat();
            let header = regex::Regex::new(FAILURE_HEADER).unwrap();
            let after = regex::Regex::new(AFTER_FAILURES).unwrap();
            proptest::prop_assert_eq!(failure_header(&line), header.is_match(&line), "{:?}", line);
            proptest::prop_assert_eq!(after_failures(&line), after.is_match(&line), "{:?}", line);
        }
    }

    #[test]
    fn paths_are_the_pattern_s_matches_on_the_corpus() {
        let pattern = regex::Regex::new(PATH_PATTERN).unwrap();
        let mut found = 0;
        for (_, text) in crate::passes::invariants::corpus() {
            for line in text.lines() {
                let want: Vec<&str> = pattern.find_iter(line).map(|m| m.as_str()).collect();
                assert_eq!(paths(line), want, "{line:?}");
                found += want.len();
            }
        }
        assert!(found > 1000, "{found}");
    }

    #[test]
    fn paths_examples() {
        assert_eq!(paths("see src/a.rs and ä/b/c.py, not x.y"), ["src/a.rs", "b/c.py"]);
        assert_eq!(
            paths("a/b.tar.gz a/b.c.d1 a/b.py/c a//b/c.py x/y.html5 /abs/p.txt"),
            ["a/b.tar.gz", "a/b.c", "a/b.py", "b/c.py", "abs/p.txt"]
        );
    }

    proptest::proptest! {
        #[test]
        fn paths_are_the_pattern_s_matches(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Zq", "9", "_", ".", "-", "/", "//", "py", "html", "tar", "x1", ".d", " ",
                "é", ":", "(", "日", "\t", "a.b", "./", "../",
            ]), 0..12)
        ) {
            let line: String = parts.concat();
            let pattern = regex::Regex::new(PATH_PATTERN).unwrap();
            let want: Vec<&str> = pattern.find_iter(&line).map(|m| m.as_str()).collect();
            proptest::prop_assert_eq!(paths(&line), want, "{:?}", line);
        }
    }

    use super::*;

    #[test]
    fn one_row_per_line_in_name_order() {
        let text = "src/a.py:3:def parse_header(x):\n\nnothing here\nValueError: bad";
        let f = extract(
            text,
            &line_tokens(text),
            CommandKind::Search,
            Domain::SearchResult,
            "grep -rn parse_header src",
            Some("Look at the parse_header and ValueError"),
            None,
            &Vocab::default(),
            |l| l.contains("Error"),
        );
        let w = NAMES.len();
        assert_eq!(f.len(), 4 * w);
        let at =
            |row: usize, name: &str| f[row * w + NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!(at(0, "kind_search"), 1.0);
        assert_eq!(at(0, "location"), 1.0);
        assert_eq!(at(0, "code_def"), 0.0);
        assert_eq!(at(0, "intent_overlap"), 1.0); // parse_header
        assert_eq!(at(0, "command_overlap"), 2.0); // src, parse_header
        assert_eq!(at(1, "blank"), 1.0);
        assert_eq!(at(3, "signal"), 1.0);
        assert_eq!(at(3, "intent_overlap"), 1.0); // valueerror
        assert_eq!(at(2, "intent_dist_log"), 1.0); // one line from an overlap
        assert_eq!(at(0, "intent_present"), 1.0);
        let none = extract(
            text,
            &line_tokens(text),
            CommandKind::Search,
            Domain::SearchResult,
            "",
            None,
            None,
            &Vocab::default(),
            |_| false,
        );
        assert_eq!(
            none[NAMES.iter().position(|n| *n == "intent_present").unwrap()],
            0.0
        );
    }

    #[test]
    fn fresh_items_are_new_and_not_generic() {
        let text = "==== FAILURES ====\n  File \"/testbed/pkg/core.py\", line 3, in parse_header\n  File \"/usr/lib/python3.9/site-packages/x.py\", line 9\nsrc/a.py:1:return parse_header(raw_bytes)\nsrc/a.py:2:return self\n==== short test summary info ====\nValueError: raw_bytes";
        let vocab = Vocab::new(100, [("return", 50), ("src", 50)]).unwrap();
        let w = NAMES.len();
        let features = |known: Option<&Known>| {
            let f = extract(
                text,
                &line_tokens(text),
                CommandKind::Test,
                Domain::TestOutput,
                "pytest -x",
                Some("Why does parse_header fail?"),
                known,
                &vocab,
                |l| l.contains("Error"),
            );
            move |row: usize, name: &str| {
                f[row * w + NAMES.iter().position(|n| *n == name).unwrap()]
            }
        };
        let at = features(None);
        // `parse_header` is in the intent, `return` and `src` are generic: `raw_bytes` is fresh,
        // but the forced last line holds it too.
        assert_eq!(at(3, "fresh_items"), 1.0);
        assert_eq!(at(3, "fresh_uncovered"), 0.0);
        assert_eq!(at(4, "fresh_items"), 1.0); // self
        assert_eq!(at(4, "fresh_uncovered"), 1.0);
        assert!((at(3, "prefix_count_log") - 3f32.log2()).abs() < 1e-6); // two `src/a.py`
        assert_eq!(at(3, "prefix_first"), 1.0);
        assert_eq!(at(4, "prefix_first"), 0.0);
        assert_eq!(at(3, "has_path"), 1.0);
        assert_eq!(at(1, "frame_project"), 1.0);
        assert_eq!(at(2, "frame_project"), 0.0);
        assert_eq!(at(2, "site_packages"), 1.0);
        assert_eq!(at(1, "failure_section"), 1.0);
        assert_eq!(at(6, "failure_section"), 0.0);
        assert!((at(4, "idf_max") - (101.0f32 / 1.0).ln()).abs() < 1e-5); // `self`: unseen
        // Without a history, every fresh item counts as one the agent has not met.
        assert_eq!(at(3, "history_present"), 0.0);
        assert_eq!(at(3, "history_known"), 0.0);
        assert_eq!(at(3, "history_fresh"), 1.0);
        assert_eq!(at(3, "history_fresh_frac"), 1.0);

        // The agent wrote `raw_bytes` into an earlier command: that line holds nothing new
        // to it, while `self` still is.
        let known = Known::of_texts(["Fix the issue", "python -c 'parse_header(raw_bytes)'"]);
        let at = features(Some(&known));
        assert_eq!(at(3, "history_present"), 1.0);
        assert_eq!(at(3, "fresh_items"), 1.0);
        assert_eq!(at(3, "history_known"), 1.0);
        assert_eq!(at(3, "history_fresh"), 0.0);
        assert_eq!(at(3, "history_fresh_frac"), 0.0);
        assert_eq!(at(4, "history_known"), 0.0);
        assert_eq!(at(4, "history_fresh"), 1.0);
    }
}
