//! What the line model knows about each line of an output.
//!
//! One fixed list of numbers per line ([`NAMES`], in order): what kind of command printed
//! it, where the line sits, what it looks like, how much of it the agent's intent and
//! command name, and how close it is to lines that do. The same code computes them for
//! training (`kompress model line-data`) and at run time, so the two cannot disagree.

use std::collections::{HashMap, HashSet};

use crate::domain::{CommandKind, Domain};
use crate::usage;

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
pub fn extract(
    text: &str,
    tokens: &[usize],
    kind: CommandKind,
    domain: Domain,
    command: &str,
    intent: Option<&str>,
    signal: impl Fn(&str) -> bool,
) -> Vec<f32> {
    let lines: Vec<&str> = text.split('\n').collect();
    debug_assert_eq!(lines.len(), tokens.len());
    let n = lines.len();
    let intent_items = intent.map(key_items).unwrap_or_default();
    let command_items = key_items(command);
    let line_items: Vec<Vec<String>> = lines.iter().map(|l| lower_items(l)).collect();
    // In how many lines each item occurs, and how often each trimmed line occurs.
    let mut line_df: HashMap<&str, u32> = HashMap::new();
    for items in &line_items {
        let unique: HashSet<&str> = items.iter().map(String::as_str).collect();
        for w in unique {
            *line_df.entry(w).or_default() += 1;
        }
    }
    let mut dup: HashMap<&str, u32> = HashMap::new();
    for l in &lines {
        *dup.entry(l.trim()).or_default() += 1;
    }
    let shapes: Vec<String> = lines.iter().map(|l| shape(l)).collect();
    let mut shape_count: HashMap<&str, u32> = HashMap::new();
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
            let unique: HashSet<&str> = items.iter().map(String::as_str).collect();
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
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(n * NAMES.len());
    for (i, line) in lines.iter().enumerate() {
        let items = &line_items[i];
        let unique: HashSet<&str> = items.iter().map(String::as_str).collect();
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
        seen.extend(unique);
    }
    debug_assert_eq!(out.len(), n * NAMES.len());
    out
}

#[cfg(test)]
mod tests {
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
            |_| false,
        );
        assert_eq!(
            none[NAMES.iter().position(|n| *n == "intent_present").unwrap()],
            0.0
        );
    }
}
