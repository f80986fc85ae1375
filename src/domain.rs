//! Domain detection and the per-domain settings table (the seed's "domain routing").
//!
//! A domain says what kind of output a text is, so the pipeline knows which passes are
//! safe and worth running. Detection uses cheap signals only: the tool's name, what the
//! tool was asked (the shell command, the file path, the grep pattern) and the first
//! lines of the text. Content signals that are unambiguous (a Python traceback, a rustc
//! error, a unified diff, a test run) win over the command, because `cd x && python
//! run.py` says nothing about its output while a traceback says everything.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::passes::Pass;
use crate::passes::pattern::{Gated, Pattern};

/// What kind of output a text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// Anything a shell command printed that fits no more specific domain.
    BashOutput,
    /// The content of a file (Read, `cat`, `sed -n`, `head`…). Edit copies from it.
    FileRead,
    /// A stack trace or compiler error.
    ErrorTrace,
    /// `path:line: match` lines from grep, rg, git grep or the Grep tool.
    SearchResult,
    /// A list of paths: find, fd, ls -R, Glob, Grep's file list.
    FileList,
    /// A JSON document (MCP results, `--message-format=json`, API responses).
    JsonToolResult,
    /// A unified diff (git diff, git show, diff -u).
    Diff,
    /// A test runner's report (pytest, cargo test, unittest, go test, jest).
    TestOutput,
    /// Build, install and log output (cargo build, pip, npm, make, docker, logs).
    BuildLog,
    /// Natural-language text (WebFetch answers, sub-agent reports).
    Prose,
}

impl Domain {
    /// Every domain.
    pub const ALL: &'static [Domain] = &[
        Domain::BashOutput,
        Domain::FileRead,
        Domain::ErrorTrace,
        Domain::SearchResult,
        Domain::FileList,
        Domain::JsonToolResult,
        Domain::Diff,
        Domain::TestOutput,
        Domain::BuildLog,
        Domain::Prose,
    ];

    /// The domain's name in configuration, `--domain` and reports.
    pub fn name(self) -> &'static str {
        match self {
            Domain::BashOutput => "bash_output",
            Domain::FileRead => "file_read",
            Domain::ErrorTrace => "error_trace",
            Domain::SearchResult => "search_result",
            Domain::FileList => "file_list",
            Domain::JsonToolResult => "json_tool_result",
            Domain::Diff => "diff",
            Domain::TestOutput => "test_output",
            Domain::BuildLog => "build_log",
            Domain::Prose => "prose",
        }
    }

    /// The default settings for this domain. This table is the one place that says
    /// which passes run where.
    ///
    /// The word model (`model`) runs on prose only, the text it was trained on. On tool
    /// output it did not earn its place: the same binary with it on bash, error, test and
    /// build outputs saved 0.3 points more of the held-out trajectories' non-read tokens
    /// (25.2% against 24.9%) at lower recall of used items (0.981 against 0.982), and 0.1
    /// point of the dev corpus (15.4% against 15.3%), while the hook's p95 went from 20 to
    /// 50 ms and its RSS p95 from 11 to 26 MiB (docs/eval/ablation.md). The line model
    /// (`lines`) is what shortens tool output.
    pub fn settings(self) -> Settings {
        use Pass::*;
        let (passes, model): (&'static [Pass], bool) = match self {
            Domain::BashOutput => (
                &[Ansi, Progress, Traceback, TrailingWhitespace, Repeats, SimilarLines, PathLists, BlankLines],
                false,
            ),
            // Edit copies exact text from what Read showed: leave file contents alone,
            // except data regions of big files, with every line kept in place.
            Domain::FileRead => (&[DataElision], false),
            Domain::ErrorTrace => (
                &[Ansi, Progress, Traceback, TrailingWhitespace, TestRunner, Repeats, SimilarLines, BlankLines],
                false,
            ),
            // Every match line is a distinct fact: only exact repeats fold.
            Domain::SearchResult => (&[Ansi, TrailingWhitespace, Repeats, BlankLines], false),
            Domain::FileList => (&[Ansi, TrailingWhitespace, Repeats, PathLists, BlankLines], false),
            Domain::JsonToolResult => (&[Json], false),
            // No rule rewrites a diff's lines: whitespace is content. The line model may
            // drop whole lines (see below).
            Domain::Diff => (&[Ansi], false),
            Domain::TestOutput => (
                &[Ansi, Progress, Traceback, TrailingWhitespace, TestRunner, Repeats, SimilarLines, BlankLines],
                false,
            ),
            Domain::BuildLog => (
                &[Ansi, Progress, TrailingWhitespace, Repeats, SimilarLines, BlankLines],
                false,
            ),
            Domain::Prose => (&[Ansi, TrailingWhitespace, Repeats, BlankLines], true),
        };
        // Reads stay whole (Edit copies from them; the trajectories show agents use most
        // of a read's lines), and so do JSON and prose. Diffs do not: an agent reads
        // `git diff` to review edits it wrote itself: at the shipped price the held-out
        // trajectories' `git diff` outputs lose 28.1% of their tokens and keep 98.7% of
        // their used items (docs/labels.md). A diff read from a file is a read
        // (`select::select`).
        let lines = matches!(
            self,
            Domain::BashOutput
                | Domain::ErrorTrace
                | Domain::SearchResult
                | Domain::FileList
                | Domain::TestOutput
                | Domain::BuildLog
                | Domain::Diff
        );
        Settings {
            passes: passes.to_vec(),
            model,
            lines,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Domain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::ALL
            .iter()
            .copied()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Domain::ALL.iter().map(|d| d.name()).collect();
                format!("unknown domain `{s}`; expected one of: {}", names.join(", "))
            })
    }
}

/// Per-domain settings: which passes run, and whether the model pass may drop words.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Settings {
    /// Structural passes, run in [`Pass`] order.
    pub passes: Vec<Pass>,
    /// Whether the model pass (word dropping) may run on this domain.
    pub model: bool,
    /// Whether the line model may drop whole lines on this domain (at the threshold the
    /// model file calibrated for it; see [`crate::select`]).
    #[serde(default)]
    pub lines: bool,
}

/// What is known about a text besides its content.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// The Claude Code tool that produced it (`Bash`, `Read`, `mcp__github__get_issue`…).
    pub tool_name: Option<&'a str>,
    /// The shell command (Bash, `kompress run`).
    pub command: Option<&'a str>,
    /// The file that was read (Read).
    pub file_path: Option<&'a str>,
    /// Grep's output mode (`content`, `files_with_matches`, `count`).
    pub grep_mode: Option<&'a str>,
}

/// Detect the domain of `text`.
pub fn detect(hints: &Hints<'_>, text: &str) -> Domain {
    match hints.tool_name {
        Some("Read") => return Domain::FileRead,
        Some("Glob") => return Domain::FileList,
        Some("Grep") => {
            return match hints.grep_mode {
                Some("content") => Domain::SearchResult,
                _ => Domain::FileList,
            };
        }
        _ => {}
    }
    let head = head(text);
    if let Some(domain) = content_signal(head) {
        return domain;
    }
    if let Some(command) = hints.command {
        if let Some(domain) = command_domain(command) {
            return domain;
        }
    }
    if looks_like_json(text) {
        return Domain::JsonToolResult;
    }
    match hints.tool_name {
        Some("WebFetch" | "Agent" | "Task" | "WebSearch") => return Domain::Prose,
        _ => {}
    }
    if looks_like_search(head) {
        return Domain::SearchResult;
    }
    if looks_like_log(head) {
        return Domain::BuildLog;
    }
    Domain::BashOutput
}

/// The first 400 lines: enough for every content signal, bounded for huge inputs.
fn head(text: &str) -> &str {
    match text.match_indices('\n').nth(400) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

// Detection runs on every Bash output, so its patterns are compiled in every hook process:
// lean, over bytes with ASCII classes ([`Pattern::bytes`]). Detection only asks whether a
// pattern matches, its patterns' literals are ASCII, and a test checks on the corpus that
// the byte and Unicode builds agree.
// The patterns below scope `(?i)` to their keywords: case folding over a whole pattern
// costs compile time for signals (stack frames, test names, log prefixes) that are ASCII.
static ERROR_TRACE: Gated = Gated {
    needles: &[
        "Traceback (most recent call last):",
        "error[E",
        "panicked at ",
        "Exception in thread ",
        ".java:",
        ".kt:",
        ".scala:",
        "Error: ",
        "Exception: ",
    ],
    pattern: Pattern::bytes(concat!(
        r"(?m)^(?:\x1b\[[0-9;]*m)*(?:",
        r"Traceback \(most recent call last\):",
        r"|error\[E[0-9]{4}\]",
        r"|thread '.*' panicked at ",
        r"|Exception in thread ",
        r"|[[:space:]]+at [[:word:]$.<>]+\([[:word:]$.]+\.(?:java|kt|scala):[0-9]+\)",
        r"|[[:word:]]*(?:Error|Exception): .*\n[[:space:]]+at ",
        r")"
    )),
};

/// Whether a line of `text` starts (after color codes) with one of [`ERROR_TRACE`]'s
/// plain-literal alternatives: a Python traceback, a Rust error code, a JVM thread's
/// exception. Then the pattern matches, and building it to say so (~0.19 ms in a cold
/// process, for most error traces, Python's among them) is not needed.
fn error_trace_start(text: &str) -> bool {
    text.split('\n').any(|line| {
        let mut rest = line.as_bytes();
        while let Some(after) = rest.strip_prefix(b"\x1b[") {
            let params = after.iter().take_while(|c| c.is_ascii_digit() || **c == b';').count();
            match after.get(params) {
                Some(b'm') => rest = &after[params + 1..],
                _ => break,
            }
        }
        rest.starts_with(b"Traceback (most recent call last):")
            || rest.starts_with(b"Exception in thread ")
            || rest.strip_prefix(b"error[E").is_some_and(|code| {
                code.len() >= 5 && code[..4].iter().all(u8::is_ascii_digit) && code[4] == b']'
            })
    })
}

static RUSTC_ERROR: Gated = Gated {
    needles: &["--> ", "error: could not compile"],
    pattern: Pattern::bytes(r"(?m)^error(?:\[E[0-9]+\])?: .*\n[[:space:]]*--> \S+:[0-9]+|^error: could not compile"),
};

static TEST_RUN: Gated = Gated {
    needles: &[
        "test session starts",
        "FAILURES",
        "ERRORS",
        "short test summary info",
        "running ",
        "test result: ",
        "Ran ",
        "--- FAIL: ",
        "--- PASS: ",
        "\nok",
        "\nFAIL",
        "passed",
        "failed",
        " ... ",
    ],
    pattern: Pattern::bytes(concat!(
        r"(?m)^(?:",
        r"=+ (?:test session starts|FAILURES|ERRORS|short test summary info) =+",
        r"|running [0-9]+ tests?$",
        r"|test result: (?:ok|FAILED)\.",
        r"|Ran [0-9]+ tests? in ",
        r"|--- (?:FAIL|PASS): ",
        r"|(?:ok|FAIL)[[:space:]]+\S+[[:space:]]+[0-9.]+s$",
        r"|Tests?:[[:space:]]+[0-9]+ (?:passed|failed)",
        r"|test_[[:word:]]+ \([[:word:].]+\) \.\.\. ",
        r")"
    )),
};

static DIFF: Gated = Gated {
    needles: &["diff -", "\n+++ ", "@@ -"],
    pattern: Pattern::bytes(r"(?m)^(?:diff --git |diff -[ruN]+ |--- \S.*\n\+\+\+ \S|@@ -[0-9]+(?:,[0-9]+)? \+[0-9]+(?:,[0-9]+)? @@)"),
};

/// Content that names its own domain, whatever command printed it.
fn content_signal(head: &str) -> Option<Domain> {
    // A test run that failed carries tracebacks; it is still a test report.
    if TEST_RUN.is_match(head) {
        return Some(Domain::TestOutput);
    }
    if error_trace_start(head) || ERROR_TRACE.is_match(head) || RUSTC_ERROR.is_match(head) {
        return Some(Domain::ErrorTrace);
    }
    if DIFF.is_match(head) {
        return Some(Domain::Diff);
    }
    None
}

/// The domain the primary command implies, if it implies one.
fn command_domain(command: &str) -> Option<Domain> {
    let words = primary_command(command);
    let program = words.first()?.rsplit('/').next()?;
    let sub = words.get(1).map(String::as_str);
    let has = |flag: &str| words.iter().any(|w| w == flag);
    Some(match program {
        "grep" | "egrep" | "fgrep" | "rg" | "ag" | "ack" => {
            let lists_files = |w: &String| {
                w == "--files-with-matches"
                    || w == "--files-without-match"
                    || (w.starts_with('-') && !w.starts_with("--") && (w.contains('l') || w.contains('L')))
            };
            if words.iter().any(lists_files) {
                Domain::FileList
            } else {
                Domain::SearchResult
            }
        }
        "find" | "fd" | "fdfind" | "locate" | "tree" => Domain::FileList,
        "ls" if words.iter().any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('R')) => {
            Domain::FileList
        }
        "git" => match sub {
            Some("grep") => Domain::SearchResult,
            Some("diff" | "show") if !has("--stat") => Domain::Diff,
            Some("ls-files") => Domain::FileList,
            _ => return None,
        },
        "cat" | "nl" | "bat" if !command.contains("<<") && !command.contains('>') => {
            file_read_or_log(&words)
        }
        "head" | "tail" if !has("-f") && !has("-F") => file_read_or_log(&words),
        "sed" if has("-n") && !words.iter().any(|w| w.starts_with("-i")) => file_read_or_log(&words),
        "awk" => Domain::FileRead,
        "pytest" | "py.test" | "jest" | "vitest" | "mocha" | "tox" | "nox" => Domain::TestOutput,
        "cargo" => match sub {
            Some("test" | "nextest") => Domain::TestOutput,
            Some("build" | "check" | "clippy" | "install" | "run" | "doc" | "update" | "fetch") => {
                Domain::BuildLog
            }
            _ => return None,
        },
        "go" => match sub {
            Some("test") => Domain::TestOutput,
            Some("build" | "vet" | "get" | "install" | "mod") => Domain::BuildLog,
            _ => return None,
        },
        "npm" | "pnpm" | "yarn" | "bun" => match sub {
            Some("test") => Domain::TestOutput,
            _ => Domain::BuildLog,
        },
        "python" | "python3" if words.iter().any(|w| w == "pytest" || w.ends_with("runtests.py")) => {
            Domain::TestOutput
        }
        "pip" | "pip3" | "uv" | "poetry" | "make" | "cmake" | "ninja" | "gcc" | "g++" | "clang"
        | "mvn" | "gradle" | "docker" | "kubectl" | "apt" | "apt-get" | "tsc" | "webpack" => {
            Domain::BuildLog
        }
        "journalctl" | "dmesg" => Domain::BuildLog,
        _ => return None,
    })
}

/// What a command does, for reporting and for the line model: the kinds of command whose
/// outputs agents use differently (a test run's failures, a grep's few opened hits, a
/// read's function, an install log's nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Test runners.
    Test,
    /// grep, rg, find, `ls -R` and the like.
    Search,
    /// cat, sed -n, head, tail, nl: reading a file.
    Read,
    /// git.
    Git,
    /// Package managers and builds.
    Install,
    /// ls, tree.
    List,
    /// Running a script or an interpreter (`python x.py`, `python -c`, `node`).
    Script,
    /// Anything else.
    Other,
}

impl CommandKind {
    /// Every kind, in feature order.
    pub const ALL: [CommandKind; 8] = [
        CommandKind::Test,
        CommandKind::Search,
        CommandKind::Read,
        CommandKind::Git,
        CommandKind::Install,
        CommandKind::List,
        CommandKind::Script,
        CommandKind::Other,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Test => "test",
            CommandKind::Search => "search",
            CommandKind::Read => "read",
            CommandKind::Git => "git",
            CommandKind::Install => "install",
            CommandKind::List => "list",
            CommandKind::Script => "script",
            CommandKind::Other => "other",
        }
    }

    /// The kind of a tool call: from the tool for the non-Bash tools, else from the
    /// primary command (after `cd DIR &&`, assignments and wrappers).
    pub fn of(hints: &Hints<'_>) -> CommandKind {
        match hints.tool_name {
            Some("Read") => return CommandKind::Read,
            Some("Grep") => return CommandKind::Search,
            Some("Glob") => return CommandKind::List,
            _ => {}
        }
        let Some(command) = hints.command else { return CommandKind::Other };
        let words = primary_command(command);
        let has = |w: &str| words.iter().any(|x| x == w);
        let is_test = |w: &String| {
            w.contains("pytest") || w.ends_with("runtests.py") || w == "unittest" || w == "tox"
        };
        match words.first().map(|w| w.rsplit('/').next().unwrap_or(w)) {
            Some(w) if is_test(&w.to_string()) => CommandKind::Test,
            Some(_) if words.iter().any(is_test) || (has("manage.py") && has("test")) => {
                CommandKind::Test
            }
            Some("cargo" | "go" | "npm" | "pnpm" | "yarn") if has("test") => CommandKind::Test,
            Some("grep" | "egrep" | "fgrep" | "rg" | "ag" | "ack" | "find" | "fd" | "locate") => {
                CommandKind::Search
            }
            Some("ls") if words.iter().any(|w| w.starts_with('-') && w.contains('R')) => {
                CommandKind::Search
            }
            Some("cat" | "sed" | "head" | "tail" | "nl" | "awk" | "bat" | "less") => CommandKind::Read,
            Some("git") if has("grep") => CommandKind::Search,
            Some("git") => CommandKind::Git,
            Some(
                "pip" | "pip3" | "uv" | "poetry" | "conda" | "apt" | "apt-get" | "make" | "cmake"
                | "cargo" | "go" | "npm" | "pnpm" | "yarn" | "mvn" | "gradle",
            ) => CommandKind::Install,
            Some("python" | "python3") if has("-m") && has("pip") => CommandKind::Install,
            Some("ls" | "tree" | "pwd") => CommandKind::List,
            Some(w) if w.starts_with("python") || matches!(w, "node" | "ruby" | "perl" | "bash" | "sh") => {
                CommandKind::Script
            }
            _ => CommandKind::Other,
        }
    }
}

/// A file read is a log when the file is one; logs are not edited from what was read.
fn file_read_or_log(words: &[String]) -> Domain {
    let is_log = words
        .iter()
        .skip(1)
        .any(|w| w.ends_with(".log") || w.ends_with(".out") || w.contains("/log/"));
    if is_log { Domain::BuildLog } else { Domain::FileRead }
}

/// The words of the first command that does the work: after leading comment lines,
/// `cd DIR &&` prefixes, `VAR=value` assignments and wrappers such as `sudo` or `timeout`.
fn primary_command(command: &str) -> Vec<String> {
    let mut rest = command.trim_start();
    // Skip leading comment lines.
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
    }
    let mut segments = rest.split("&&").flat_map(|s| s.split(';'));
    loop {
        let Some(segment) = segments.next() else { return Vec::new() };
        let segment = segment.split('|').next().unwrap_or("");
        let mut words: Vec<String> = segment.split_whitespace().map(unquote).collect();
        while let Some(first) = words.first() {
            let is_assignment = first.contains('=') && !first.starts_with('-') && !first.starts_with('=');
            if is_assignment || matches!(first.as_str(), "sudo" | "time" | "env" | "nice" | "exec" | "command") {
                words.remove(0);
            } else if first == "timeout" {
                words.drain(..words.len().min(2));
            } else {
                break;
            }
        }
        match words.first().map(String::as_str) {
            None | Some("cd" | "pushd" | "export" | "source" | "." | "set") => continue,
            Some(_) => return words,
        }
    }
}

fn unquote(word: &str) -> String {
    word.trim_matches(|c| c == '"' || c == '\'').to_string()
}

fn looks_like_json(text: &str) -> bool {
    let trimmed = text.trim();
    let (first, last) = (trimmed.chars().next(), trimmed.chars().last());
    matches!((first, last), (Some('{'), Some('}')) | (Some('['), Some(']')))
        && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok()
}

// The path needs a `.` or `/`, so `[2026-11-25T10:00:00Z]` is not `path:line:`.
static SEARCH_LINE: Pattern = Pattern::bytes(r"^[^[:space:]:\[]*[./][^[:space:]:]*:[0-9]+[:-]");

/// At least 3 lines and 60% of non-empty lines look like `path:line:`.
fn looks_like_search(head: &str) -> bool {
    if !may_hold_search_lines(head) {
        return false;
    }
    let lines: Vec<&str> = head.lines().filter(|l| !l.trim().is_empty()).collect();
    let hits = lines.iter().filter(|l| SEARCH_LINE.is_match(l)).count();
    hits >= 3 && hits * 10 >= lines.len() * 6
}

/// False only when no line of `text` can match [`SEARCH_LINE`]: every match holds `:` and
/// a digit. Without one, the pattern need not be compiled.
fn may_hold_search_lines(text: &str) -> bool {
    text.as_bytes().windows(2).any(|w| w[0] == b':' && w[1].is_ascii_digit())
}

static LOG_LINE: Pattern = Pattern::bytes(concat!(
    r"^(?:\S*[[:space:]]*)?(?:\[?[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}|\[?(?i-u:INFO|WARN|WARNING|ERROR|DEBUG|TRACE)(?-u:\b)",
    r"|[[:space:]]*(?i-u:Compiling|Downloading|Downloaded|Installing|Collecting|Building|Fetching|Updating|Resolving|Checking) )"
));

/// The words [`LOG_LINE`] matches, lowercase: a line it matches holds one of them (in any
/// case) or a date.
const LOG_WORDS: &[&str] = &[
    "info", "warn", "error", "debug", "trace", "compiling", "downloading", "downloaded",
    "installing", "collecting", "building", "fetching", "updating", "resolving", "checking",
];

/// False only when no line of `text` can match [`LOG_LINE`]: it has neither a date nor one
/// of [`LOG_WORDS`]. Then the pattern need not be compiled.
fn may_hold_log_lines(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    LOG_WORDS.iter().any(|w| lower.contains(w)) || has_date_part(text)
}

/// Whether `text` has `NN-NN`, the middle of a `YYYY-MM-DD` date.
fn has_date_part(text: &str) -> bool {
    text.as_bytes().windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b'-'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    })
}

/// At least 5 lines and 30% of non-empty lines look like log or build lines.
fn looks_like_log(head: &str) -> bool {
    if !may_hold_log_lines(head) {
        return false;
    }
    let lines: Vec<&str> = head.lines().filter(|l| !l.trim().is_empty()).collect();
    let hits = lines.iter().filter(|l| LOG_LINE.is_match(l)).count();
    hits >= 5 && hits * 10 >= lines.len() * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_patterns_agree_with_unicode_ones() {
        use crate::passes::pattern::compile;
        let all = [&TEST_RUN.pattern, &ERROR_TRACE.pattern, &RUSTC_ERROR.pattern, &DIFF.pattern];
        let unicode: Vec<_> = all.iter().map(|p| compile(p.source(), true)).collect();
        let (search, log) = (compile(SEARCH_LINE.source(), true), compile(LOG_LINE.source(), true));
        let mut texts: Vec<String> =
            crate::passes::invariants::corpus().into_iter().map(|(_, text)| text).collect();
        // Non-ASCII around the patterns' ASCII parts.
        texts.push("ünï: x\n  at «q».run(Main.java:3)\nÄError: é\n\tat x\n".into());
        texts.push("src/ä.rs:12:fn\nβ/γ.py:3-x\n[ℹ]2026-01-02T03:04 ok\n".into());
        for text in &texts {
            let head = head(text);
            for (pattern, unicode) in all.iter().zip(&unicode) {
                assert_eq!(pattern.is_match(head), unicode.is_match(head), "{}", pattern.source());
            }
            for line in head.lines() {
                assert_eq!(SEARCH_LINE.is_match(line), search.is_match(line), "{line:?}");
                assert_eq!(LOG_LINE.is_match(line), log.is_match(line), "{line:?}");
            }
        }
    }

    #[test]
    fn error_trace_starts_are_error_trace_matches() {
        let mut starts = 0;
        for (_, text) in crate::passes::invariants::corpus() {
            let head = head(&text);
            if error_trace_start(head) {
                starts += 1;
                assert!(ERROR_TRACE.pattern.is_match(head), "{head:?}");
            }
        }
        assert!(starts > 50, "{starts}");
    }

    proptest::proptest! {
        #[test]
        fn an_error_trace_start_is_a_match(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "Traceback (most recent call last):", "Traceback (most", "\x1b[31m", "\x1b[",
                "\x1b[0;1m", "m", ";", "\n", "\r\n", " ", "error[E0425]", "error[E12]", "error[E",
                "Exception in thread ", "x", "é",
            ]), 0..8)
        ) {
            let text: String = parts.concat();
            let pattern = crate::passes::pattern::compile(ERROR_TRACE.pattern.source(), true);
            if error_trace_start(&text) {
                proptest::prop_assert!(pattern.is_match(&text), "{:?}", text);
            }
            // Where only the plain alternatives can match, the two agree.
            if !text.contains(" at") && !text.contains("\tat") && !text.contains("thread '") {
                proptest::prop_assert_eq!(error_trace_start(&text), pattern.is_match(&text), "{:?}", text);
            }
        }
    }

    #[test]
    fn the_literal_gates_never_hide_a_match() {
        let mut matched = [0usize; 6];
        for (_, text) in crate::passes::invariants::corpus() {
            let head = head(&text);
            for (k, gated) in [&TEST_RUN, &ERROR_TRACE, &RUSTC_ERROR, &DIFF].into_iter().enumerate() {
                if gated.pattern.is_match(head) {
                    matched[k] += 1;
                    assert!(gated.may_match(head), "gate {k} hides a match in {head:?}");
                }
            }
            let log_gate = may_hold_log_lines(head);
            let search_gate = may_hold_search_lines(head);
            for line in head.lines() {
                if LOG_LINE.is_match(line) {
                    matched[4] += 1;
                    assert!(log_gate, "the log gate hides {line:?}");
                }
                if SEARCH_LINE.is_match(line) {
                    matched[5] += 1;
                    assert!(search_gate, "the search gate hides {line:?}");
                }
            }
        }
        // The corpus exercises every pattern.
        assert!(matched.iter().all(|&n| n > 0), "{matched:?}");
        // A go test summary at the very start of a text, and Unicode case folding (`K`,
        // the Kelvin sign, folds to `k` in Unicode mode only).
        assert!(TEST_RUN.is_match("ok  \tpkg/x\t0.01s\n"));
        assert!(!LOG_LINE.is_match("Chec\u{212a}ing foo"));
    }

    fn bash(command: &str, text: &str) -> Domain {
        detect(&Hints { tool_name: Some("Bash"), command: Some(command), ..Hints::default() }, text)
    }

    #[test]
    fn tool_names_decide_first() {
        let read = Hints { tool_name: Some("Read"), ..Hints::default() };
        assert_eq!(detect(&read, "Traceback (most recent call last):\n"), Domain::FileRead);
        let grep = Hints { tool_name: Some("Grep"), grep_mode: Some("content"), ..Hints::default() };
        assert_eq!(detect(&grep, "a.py:1:x"), Domain::SearchResult);
        let glob = Hints { tool_name: Some("Glob"), ..Hints::default() };
        assert_eq!(detect(&glob, "a.py"), Domain::FileList);
    }

    #[test]
    fn commands() {
        assert_eq!(bash("cd /testbed && grep -rn foo .", "x"), Domain::SearchResult);
        assert_eq!(bash("cd /testbed && grep -rl foo .", "x"), Domain::FileList);
        assert_eq!(bash("find . -name '*.py'", "x"), Domain::FileList);
        assert_eq!(bash("sed -n '1,20p' a.py", "x"), Domain::FileRead);
        assert_eq!(bash("sed -i 's/a/b/' a.py", "x"), Domain::BashOutput);
        assert_eq!(bash("cat <<'EOF' > a.py\nx\nEOF", "x"), Domain::BashOutput);
        assert_eq!(bash("# look\ncd /x && FOO=1 cat a.py", "x"), Domain::FileRead);
        assert_eq!(bash("tail -n 50 /var/log/app.log", "x"), Domain::BuildLog);
        assert_eq!(bash("git diff HEAD~1", "x"), Domain::Diff);
        assert_eq!(bash("cargo build --release", "x"), Domain::BuildLog);
        assert_eq!(bash("pip install requests", "x"), Domain::BuildLog);
        assert_eq!(bash("ls -la", "x"), Domain::BashOutput);
        assert_eq!(bash("ls -R src", "x"), Domain::FileList);
    }

    #[test]
    fn content_beats_command() {
        let trace = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: x\n";
        assert_eq!(bash("cd /testbed && python run.py", trace), Domain::ErrorTrace);
        let rustc = "error[E0277]: the trait bound is not satisfied\n --> src/main.rs:4:5\n";
        assert_eq!(bash("cargo build", rustc), Domain::ErrorTrace);
        let tests = "running 3 tests\ntest a ... ok\n\ntest result: ok. 3 passed; 0 failed\n";
        assert_eq!(bash("cargo test", tests), Domain::TestOutput);
        let django = "test_foo (app.tests.T) ... ok\n";
        assert_eq!(bash("./tests/runtests.py app", django), Domain::TestOutput);
    }

    #[test]
    fn content_fallbacks() {
        assert_eq!(bash("curl -s x", "{\"a\": [1, 2]}"), Domain::JsonToolResult);
        let mcp = Hints { tool_name: Some("mcp__github__get_issue"), ..Hints::default() };
        assert_eq!(detect(&mcp, "[{\"id\": 1}]"), Domain::JsonToolResult);
        let web = Hints { tool_name: Some("WebFetch"), ..Hints::default() };
        assert_eq!(detect(&web, "The page says hello."), Domain::Prose);
        let hits = "a.py:1:x\nb.py:2:y\nc.py:3:z\n";
        assert_eq!(bash("./search.sh", hits), Domain::SearchResult);
        let log: String = (0..10).map(|i| format!("[2026-11-25T10:00:00Z] INFO job {i} done\n")).collect();
        assert_eq!(bash("./run.sh", &log), Domain::BuildLog);
    }

    #[test]
    fn names_round_trip() {
        for domain in Domain::ALL {
            assert_eq!(domain.name().parse::<Domain>(), Ok(*domain));
        }
        assert!("nope".parse::<Domain>().is_err());
    }
}
