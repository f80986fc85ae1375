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

/// True when `line` is a marker kompress wrote (see [`marker`]).
pub fn is_marker(line: &str) -> bool {
    line.trim_start().starts_with("[kompress: ")
}
