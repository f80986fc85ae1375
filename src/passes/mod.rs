//! Structural passes: small, deterministic, rule-based transforms of tool output.
//!
//! Each pass lives in its own file, takes the whole text and returns it unchanged
//! (`Cow::Borrowed`) or rewritten. Passes never touch the inside of a line they keep:
//! they drop, fold or collapse whole lines, so `path:line: match` and
//! `3 failed, 12 passed` stay as the tool printed them. Anything a pass removes is
//! announced by a [`marker`] line, so neither the agent nor a later pass mistakes a
//! fold for the tool's own output.
//!
//! Which passes run for which domain is decided in one place: [`crate::domain::Settings`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub mod ansi;
pub mod blank;
pub mod elide;
#[cfg(test)]
pub(crate) mod invariants;
pub mod json;
mod lines;
pub mod lists;
pub mod pattern;
pub mod progress;
pub mod repeats;
pub mod testrun;
pub mod traceback;
pub mod whitespace;

/// One structural pass. The order of the variants is the order the pipeline runs them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// Strip ANSI escape sequences (colour, cursor movement, OSC titles).
    Ansi,
    /// Collapse carriage-return progress redraws to their final state.
    Progress,
    /// Stack traces: drop Python's caret lines, fold runs of interpreter-internal frames.
    Traceback,
    /// Strip trailing spaces and tabs at line ends (never used for file reads).
    TrailingWhitespace,
    /// Test-runner output: keep failures, errors and the summary; count passing tests.
    TestRunner,
    /// Fold runs of identical lines and identical multi-line blocks, with counts.
    Repeats,
    /// Fold long runs of lines that share one shape, keeping every distinct value.
    SimilarLines,
    /// Fold long homogeneous path lists (find, ls -R, Glob) by their common directories.
    PathLists,
    /// Compact pretty-printed JSON, keeping every key and value; stays valid JSON.
    Json,
    /// Collapse runs of blank lines to one.
    BlankLines,
    /// Big file reads: elide runs of data lines and huge lines, keeping every line number.
    DataElision,
}

impl Pass {
    /// Every pass, in pipeline order.
    pub const ALL: &'static [Pass] = &[
        Pass::Ansi,
        Pass::Progress,
        Pass::Traceback,
        Pass::TrailingWhitespace,
        Pass::TestRunner,
        Pass::Repeats,
        Pass::SimilarLines,
        Pass::PathLists,
        Pass::Json,
        Pass::BlankLines,
        Pass::DataElision,
    ];

    /// The pass's name in configuration files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Ansi => "ansi",
            Pass::Progress => "progress",
            Pass::Traceback => "traceback",
            Pass::TrailingWhitespace => "trailing_whitespace",
            Pass::TestRunner => "test_runner",
            Pass::Repeats => "repeats",
            Pass::SimilarLines => "similar_lines",
            Pass::PathLists => "path_lists",
            Pass::Json => "json",
            Pass::BlankLines => "blank_lines",
            Pass::DataElision => "data_elision",
        }
    }

    /// Run the pass over `text`.
    pub fn apply(self, text: &str) -> Cow<'_, str> {
        match self {
            Pass::Ansi => ansi::apply(text),
            Pass::Progress => progress::apply(text),
            Pass::Traceback => traceback::apply(text),
            Pass::TrailingWhitespace => whitespace::apply(text),
            Pass::TestRunner => testrun::apply(text),
            Pass::Repeats => repeats::apply(text),
            Pass::SimilarLines => repeats::apply_similar(text),
            Pass::PathLists => lists::apply(text),
            Pass::Json => json::apply(text),
            Pass::BlankLines => blank::apply(text),
            Pass::DataElision => elide::apply(text),
        }
    }
}

/// The one format of every line kompress writes into an output: `[kompress: MSG]`.
pub fn marker(msg: &str) -> String {
    format!("[kompress: {msg}]")
}

/// The message of a [`marker`] line (`MSG`, with its closing bracket), if it is one.
pub fn marker_message(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("[kompress: ")
}

/// The range of lines a run of omitted lines covers (1-based, inclusive): `line 7`,
/// `lines 12-40`.
pub fn line_range(first: usize, last: usize) -> String {
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    }
}

/// The short marker of a run of omitted lines after the first of an output:
/// `[lines A-B omitted]` (1-based, inclusive), `[line A omitted]`. The first run's marker
/// is a full [`marker`] that names the command bringing lines back; the others only need
/// their range, and an output may have dozens of them (3 cl100k tokens fewer each).
pub fn range_marker(first: usize, last: usize) -> String {
    format!("[{} omitted]", line_range(first, last))
}

/// True when `line` is a marker kompress wrote (see [`marker`] and [`range_marker`]).
pub fn is_marker(line: &str) -> bool {
    marker_message(line).is_some() || is_range_marker(line.trim_start())
}

/// Whether `line` is exactly a [`range_marker`] (trailing whitespace aside).
fn is_range_marker(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("[line") else {
        return false;
    };
    let (plural, rest) = match rest.strip_prefix("s ") {
        Some(rest) => (true, rest),
        None => match rest.strip_prefix(' ') {
            Some(rest) => (false, rest),
            None => return false,
        },
    };
    let Some(range) = rest.trim_end().strip_suffix(" omitted]") else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match range.split_once('-') {
        Some((a, b)) => plural && number(a) && number(b),
        None => !plural && number(range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_markers_are_markers_and_little_else() {
        for (first, last) in [(1, 1), (7, 7), (12, 40), (1203, 1490)] {
            let m = range_marker(first, last);
            assert!(is_marker(&m), "{m}");
            assert!(is_marker(&format!("  {m}  ")), "{m}");
        }
        assert_eq!(range_marker(3, 3), "[line 3 omitted]");
        assert_eq!(range_marker(3, 9), "[lines 3-9 omitted]");
        for line in [
            "[lines 3 omitted]",
            "[line 3-9 omitted]",
            "[lines -9 omitted]",
            "[lines 3- omitted]",
            "[line x omitted]",
            "[line  omitted]",
            "[lines 3-9 omitted] and more",
            "[linesx 3-9 omitted]",
            "lines 3-9 omitted]",
            "[line 3 omitted",
            "[kompress:no space]",
        ] {
            assert!(!is_marker(line), "{line}");
        }
    }
}
