//! The agent's intent for a tool call: its words just before the call.
//!
//! Owns: reading them from the tail of a Claude Code session transcript
//! ([`from_transcript`]), and the hidden `KOMPRESS_DEBUG_INTENT` record of what was read
//! ([`debug_record`]). Does not own: what the pipeline makes of an intent
//! ([`crate::pipeline::Request::intent`]), or where the CLI's `--intent` comes from.
//!
//! The transcript is JSON Lines. Claude Code writes each content block of an assistant
//! message as its own line, all with the same `message.id`; the `tool_use` block of a call
//! is on a line of its own, after the text blocks the model wrote before it
//! (`claude-code-hooks.md` §2.4):
//!
//! ```text
//! {"type":"user","message":{"role":"user","content":"why does the build fail?"},…}
//! {"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"Let me build."}]},…}
//! {"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","id":"toolu_1",…}]},…}
//! ```
//!
//! Transcripts grow to many megabytes, so only the tail is read: [`FIRST_WINDOW_BYTES`],
//! grown [`WINDOW_GROWTH`] times over up to [`MAX_WINDOW_BYTES`] while the call is not in
//! it. Everything fails open: a missing or unreadable file, a junk line, a call not found
//! all mean no intent.
//!
//! Claude Code appends the call's lines to the transcript while the tool runs, and a fast
//! tool and a fast hook can look before they are there: in the real client the call was
//! missing from 3 of 48 reads over six test runs, and the intent case failed 2 runs in 17. A
//! call not found is looked for again, every [`CALL_POLL`], for at most the patience the
//! caller gives ([`CALL_PATIENCE`] in the hook; a subagent's calls may be in another file,
//! so it waits for none).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use regex::bytes::Regex;
use serde_json::Value;

/// The most characters of intent kept: the last ones, nearest the call.
pub const MAX_INTENT_CHARS: usize = 2_000;

/// How much of the transcript's end is read first.
pub const FIRST_WINDOW_BYTES: u64 = 256 << 10;

/// How much of the transcript's end is read at most.
pub const MAX_WINDOW_BYTES: u64 = 4 << 20;

/// How many times larger each next window is.
pub const WINDOW_GROWTH: u64 = 4;

/// How long the hook waits for a call that is not in the transcript yet.
pub const CALL_PATIENCE: Duration = Duration::from_millis(60);

/// How often it looks again meanwhile.
pub const CALL_POLL: Duration = Duration::from_millis(5);

/// When set to a file path, every intent the hook or the CLI uses is appended to that file
/// as one line ([`debug_record`]). For tests; not documented to users.
pub const DEBUG_ENV: &str = "KOMPRESS_DEBUG_INTENT";

/// The line [`debug_record`] writes when there is no intent.
pub const DEBUG_NONE: &str = "<none>";

/// The text the model wrote before the `tool_use` block whose `id` is `tool_use_id`, read
/// from the transcript at `path`: the text blocks of the same assistant message, or, when
/// it has none, the assistant text directly before the call back to the previous user
/// line. Each block trimmed, joined with `\n`, at most the last [`MAX_INTENT_CHARS`] characters.
///
/// `None` when there is no such text, and on any error. A call not in the file is looked
/// for again for up to `patience` (see the module docs).
pub fn from_transcript(path: &Path, tool_use_id: &str, patience: Duration) -> Option<String> {
    let give_up = Instant::now() + patience;
    loop {
        match read_intent(path, tool_use_id) {
            Lookup::CallMissing if Instant::now() < give_up => std::thread::sleep(CALL_POLL),
            Lookup::CallMissing => return None,
            Lookup::Done(intent) => return intent,
        }
    }
}

/// What one read of the transcript found.
enum Lookup {
    /// The call is not in the file (yet).
    CallMissing,
    /// The call's intent, if it has one (or an error: no intent).
    Done(Option<String>),
}

fn read_intent(path: &Path, tool_use_id: &str) -> Lookup {
    let done = Lookup::Done;
    if tool_use_id.is_empty() {
        return done(None);
    }
    let Ok(mut file) = File::open(path) else {
        return done(None);
    };
    let Some(len) = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()) else {
        return done(None);
    };
    let Ok(needle) = Regex::new(&regex::escape(tool_use_id)) else {
        return done(None);
    };
    let mut window = FIRST_WINDOW_BYTES;
    loop {
        let Some(tail) = read_tail(&mut file, len, window) else {
            return done(None);
        };
        let last_window = window >= len || window >= MAX_WINDOW_BYTES;
        match find_call(&tail, &needle, tool_use_id) {
            // The walk back from the call ended at the user's line or an earlier message.
            Some(Gathered {
                intent,
                complete: true,
            }) => return done(intent),
            Some(Gathered { intent, .. }) if last_window => return done(intent),
            None if last_window => return Lookup::CallMissing,
            // Not found, or the call's turn may begin before the window: a larger one.
            _ => {}
        }
        window = window.saturating_mul(WINDOW_GROWTH).min(MAX_WINDOW_BYTES);
    }
}

/// Append `intent` (or [`DEBUG_NONE`]) as one line to the file named by [`DEBUG_ENV`],
/// when it is set. Newlines and backslashes are escaped (`\n`, `\r`, `\\`). Never fails.
pub fn debug_record(intent: Option<&str>) {
    let Some(path) = std::env::var_os(DEBUG_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let line = match intent {
        Some(text) => text
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r"),
        None => DEBUG_NONE.to_string(),
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// The last `window` bytes of a file of `len` bytes, without the partial line they start
/// in. `None` on a read error.
fn read_tail(file: &mut File, len: u64, window: u64) -> Option<Vec<u8>> {
    let start = len.saturating_sub(window);
    // One byte more, so that a window starting right at a line's start keeps that line.
    let from = start.saturating_sub(1);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.take(len - from).read_to_end(&mut bytes).ok()?;
    if start == 0 {
        return Some(bytes);
    }
    let first_line_end = bytes.iter().position(|&b| b == b'\n')?;
    bytes.drain(..=first_line_end);
    Some(bytes)
}

/// What the model wrote before a call, as far as a window shows it.
struct Gathered {
    intent: Option<String>,
    /// The walk back from the call ended inside the window (at the user's line or an
    /// earlier message), not at the window's start.
    complete: bool,
}

/// Look for the call in `tail`, last line first. `None`: the call is not in `tail`.
fn find_call(tail: &[u8], needle: &Regex, tool_use_id: &str) -> Option<Gathered> {
    let mut hits: Vec<usize> = needle.find_iter(tail).map(|m| m.start()).collect();
    hits.reverse();
    let mut last_line_start = None;
    for hit in hits {
        let start = tail[..hit]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        if last_line_start == Some(start) {
            continue;
        }
        last_line_start = Some(start);
        let end = tail[hit..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(tail.len(), |i| hit + i);
        let Ok(entry) = serde_json::from_slice::<Value>(&tail[start..end]) else {
            continue;
        };
        let Some(before) = text_before_call(&entry, tool_use_id) else {
            continue;
        };
        return Some(gather(&tail[..start], &entry, before));
    }
    None
}

/// The text blocks before the `tool_use` block `tool_use_id` in an assistant line, or
/// `None` when the line holds no such block.
fn text_before_call(entry: &Value, tool_use_id: &str) -> Option<Vec<String>> {
    if entry.get("type").and_then(Value::as_str) != Some("assistant") {
        return None;
    }
    let blocks = entry.pointer("/message/content")?.as_array()?;
    let mut texts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => texts.extend(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            Some("tool_use") if block.get("id").and_then(Value::as_str) == Some(tool_use_id) => {
                return Some(texts);
            }
            _ => {}
        }
    }
    None
}

/// Every text block of an assistant line, in order (thinking blocks are not text).
fn texts_of(entry: &Value) -> Vec<String> {
    match entry.pointer("/message/content") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A user line that holds only tool results: a call's answer, not the user's prompt.
fn is_tool_result(entry: &Value) -> bool {
    match entry.pointer("/message/content") {
        Some(Value::Array(blocks)) => {
            !blocks.is_empty()
                && blocks
                    .iter()
                    .all(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        }
        _ => false,
    }
}

/// The intent of the call on line `call`, given the lines before it (`before`, possibly
/// starting with junk) and the text blocks before the call on its own line.
///
/// Walks back from the call. Text of the call's own message (same `message.id`) wins;
/// parallel calls of one message may have their results written between its blocks, so
/// that walk passes tool results and stops at the user's prompt or at an earlier message.
/// Without such text, the assistant text back to the previous user line is the intent.
fn gather(before: &[u8], call: &Value, same_line: Vec<String>) -> Gathered {
    let message_id = call.pointer("/message/id").and_then(Value::as_str);
    let sidechain = call.get("isSidechain").and_then(Value::as_bool);
    // Both in reverse order while walking back.
    let mut same_message: Vec<String> = same_line.into_iter().rev().collect();
    let mut turn: Vec<String> = Vec::new();
    let mut crossed_user = false;
    let mut complete = false;
    for line in before.split(|&b| b == b'\n').rev() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        // A subagent's lines, interleaved with the main agent's, are another conversation.
        let line_sidechain = entry.get("isSidechain").and_then(Value::as_bool);
        if line_sidechain.is_some() && sidechain.is_some() && line_sidechain != sidechain {
            continue;
        }
        match entry.get("type").and_then(Value::as_str) {
            Some("user") => {
                if message_id.is_none() || !is_tool_result(&entry) {
                    complete = true;
                    break;
                }
                crossed_user = true;
            }
            Some("assistant") => {
                let same = message_id.is_some()
                    && entry.pointer("/message/id").and_then(Value::as_str) == message_id;
                if !same && crossed_user {
                    complete = true;
                    break;
                }
                let texts = texts_of(&entry);
                if same {
                    same_message.extend(texts.iter().rev().cloned());
                }
                if !crossed_user {
                    turn.extend(texts.into_iter().rev());
                }
            }
            _ => {}
        }
    }
    let mut chosen = if same_message.is_empty() {
        turn
    } else {
        same_message
    };
    chosen.reverse();
    let blocks: Vec<&str> = chosen
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    Gathered {
        intent: cap(&blocks.join("\n")),
        complete,
    }
}

/// The last [`MAX_INTENT_CHARS`] characters of `text`, trimmed; `None` when empty.
fn cap(text: &str) -> Option<String> {
    let text = text.trim();
    let count = text.chars().count();
    let kept = match text
        .char_indices()
        .nth(count.saturating_sub(MAX_INTENT_CHARS))
    {
        Some((start, _)) if count > MAX_INTENT_CHARS => text[start..].trim_start(),
        _ => text,
    };
    (!kept.is_empty()).then(|| kept.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    /// The fields Claude Code writes around every message.
    fn line(kind: &str, message: Value) -> String {
        let mut entry = json!({
            "parentUuid": "1f0c9e2a-0000-4000-8000-000000000001",
            "isSidechain": false,
            "userType": "external",
            "cwd": "/home/dev/project",
            "sessionId": "5b7c2d9e-0000-4000-8000-000000000002",
            "version": "2.1.121",
            "gitBranch": "main",
            "message": message,
            "type": kind,
            "uuid": "9a8b7c6d-0000-4000-8000-000000000003",
            "timestamp": "2026-03-01T10:00:00.000Z",
        });
        if kind == "assistant" {
            entry["requestId"] = json!("req_011CTest");
        }
        serde_json::to_string(&entry).unwrap() + "\n"
    }

    fn assistant(message_id: &str, content: Value) -> String {
        line(
            "assistant",
            json!({
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": content,
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 4, "cache_read_input_tokens": 15_000, "output_tokens": 2},
            }),
        )
    }

    fn text(message_id: &str, words: &str) -> String {
        assistant(message_id, json!([{"type": "text", "text": words}]))
    }

    fn thinking(message_id: &str, words: &str) -> String {
        assistant(
            message_id,
            json!([{"type": "thinking", "thinking": words, "signature": "EqQBCkgIBhABGAIiQ"}]),
        )
    }

    fn tool_use(message_id: &str, id: &str, command: &str) -> String {
        assistant(
            message_id,
            json!([{"type": "tool_use", "id": id, "name": "Bash",
                    "input": {"command": command, "description": "Run it"}}]),
        )
    }

    fn prompt(words: &str) -> String {
        line("user", json!({"role": "user", "content": words}))
    }

    fn tool_result(id: &str, output: &str) -> String {
        line(
            "user",
            json!({"role": "user", "content": [{"tool_use_id": id, "type": "tool_result",
                                                 "content": output, "is_error": false}]}),
        )
    }

    fn transcript(lines: &[String]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for line in lines {
            file.write_all(line.as_bytes()).unwrap();
        }
        file.flush().unwrap();
        file
    }

    fn intent(lines: &[String], id: &str) -> Option<String> {
        let file = transcript(lines);
        from_transcript(file.path(), id, Duration::ZERO)
    }

    /// A long, earlier conversation: `n` calls with their outputs.
    fn history(n: usize) -> Vec<String> {
        let mut lines = vec![prompt("set the project up")];
        for i in 0..n {
            let message = format!("msg_old{i}");
            let id = format!("toolu_old{i}");
            lines.push(text(&message, &format!("Step {i}: listing files.")));
            lines.push(tool_use(&message, &id, "ls -la"));
            lines.push(tool_result(
                &id,
                &"drwxr-xr-x  4 dev dev 4096 src\n".repeat(20),
            ));
        }
        lines
    }

    #[test]
    fn a_call_written_late_is_waited_for_within_the_patience() {
        let mut lines = history(2);
        lines.push(prompt("why does the build fail?"));
        lines.push(text("msg_01A", "Let me build it."));
        let file = transcript(&lines);
        // Claude Code appends the call while the hook is already looking.
        let path = file.path().to_path_buf();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            wait.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(tool_use("msg_01A", "toolu_01X", "make").as_bytes()).unwrap();
        });
        assert_eq!(from_transcript(file.path(), "toolu_01X", Duration::ZERO), None);
        go.send(()).unwrap();
        let found = from_transcript(file.path(), "toolu_01X", Duration::from_secs(5));
        assert_eq!(found.as_deref(), Some("Let me build it."));
        writer.join().unwrap();
        // A call that never comes costs the patience, no more.
        let start = Instant::now();
        let missing = from_transcript(file.path(), "toolu_never", Duration::from_millis(30));
        assert_eq!(missing, None);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        // A call already there is not waited for.
        let start = Instant::now();
        let old = from_transcript(file.path(), "toolu_old1", Duration::from_secs(5));
        assert_eq!(old.as_deref(), Some("Step 1: listing files."));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_text_of_the_calls_message() {
        let mut lines = history(3);
        lines.push(prompt("why does the build fail?"));
        lines.push(text(
            "msg_01A",
            "Let me build it and look for the first error.",
        ));
        lines.push(tool_use("msg_01A", "toolu_01X", "cargo build"));
        assert_eq!(
            intent(&lines, "toolu_01X").as_deref(),
            Some("Let me build it and look for the first error.")
        );
        // Earlier calls have their own.
        assert_eq!(
            intent(&lines, "toolu_old1").as_deref(),
            Some("Step 1: listing files.")
        );
    }

    #[test]
    fn not_found_missing_or_empty_is_none() {
        let mut lines = history(2);
        lines.push(text("msg_01A", "Building."));
        lines.push(tool_use("msg_01A", "toolu_01X", "cargo build"));
        assert_eq!(intent(&lines, "toolu_nope"), None);
        assert_eq!(intent(&lines, ""), None);
        // The id in a tool result only is not a call.
        let only_result = vec![tool_result("toolu_01Y", "ok")];
        assert_eq!(intent(&only_result, "toolu_01Y"), None);
        // A call with no text before it.
        let mut silent = history(1);
        silent.push(tool_use("msg_01B", "toolu_01Z", "ls"));
        assert_eq!(intent(&silent, "toolu_01Z"), None);
        assert_eq!(
            from_transcript(Path::new("/nonexistent/t.jsonl"), "toolu_1", Duration::ZERO),
            None
        );
        assert_eq!(from_transcript(Path::new("/dev/null"), "toolu_1", Duration::ZERO), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(from_transcript(dir.path(), "toolu_1", Duration::ZERO), None);
        assert_eq!(intent(&[], "toolu_1"), None);
    }

    #[test]
    fn several_text_blocks_thinking_ignored() {
        let lines = vec![
            prompt("run the tests"),
            thinking("msg_01A", "The user wants the tests run; secret plan here."),
            text("msg_01A", "I'll run the test suite."),
            text(
                "msg_01A",
                "Then I'll look at the failures in src/parser.rs.",
            ),
            tool_use("msg_01A", "toolu_01X", "cargo test"),
        ];
        assert_eq!(
            intent(&lines, "toolu_01X").as_deref(),
            Some("I'll run the test suite.\nThen I'll look at the failures in src/parser.rs.")
        );
    }

    #[test]
    fn text_and_tool_use_in_one_line() {
        let lines = vec![
            prompt("check the log"),
            assistant(
                "msg_01A",
                json!([
                    {"type": "thinking", "thinking": "hmm", "signature": "x"},
                    {"type": "text", "text": "  Reading the log for the panic.  "},
                    {"type": "tool_use", "id": "toolu_01X", "name": "Bash", "input": {"command": "cat log"}},
                    {"type": "text", "text": "after the call"},
                    {"type": "tool_use", "id": "toolu_01Y", "name": "Bash", "input": {"command": "ls"}},
                ]),
            ),
        ];
        assert_eq!(
            intent(&lines, "toolu_01X").as_deref(),
            Some("Reading the log for the panic.")
        );
        assert_eq!(
            intent(&lines, "toolu_01Y").as_deref(),
            Some("Reading the log for the panic.\nafter the call")
        );
    }

    #[test]
    fn parallel_calls_share_their_messages_text() {
        let lines = vec![
            prompt("compare the two branches"),
            text("msg_01A", "Checking both logs."),
            tool_use("msg_01A", "toolu_01X", "git log main"),
            tool_result("toolu_01X", "abc123 fix"),
            tool_use("msg_01A", "toolu_01Y", "git log dev"),
        ];
        assert_eq!(
            intent(&lines, "toolu_01Y").as_deref(),
            Some("Checking both logs.")
        );
    }

    #[test]
    fn without_text_in_its_own_message_the_text_back_to_the_user_line() {
        let lines = vec![
            text("msg_00", "An answer to an earlier prompt."),
            tool_result("toolu_00", "ok"),
            text("msg_01A", "First I look at the config."),
            text("msg_01B", "Then the build."),
            tool_use("msg_01C", "toolu_01X", "make"),
        ];
        assert_eq!(
            intent(&lines, "toolu_01X").as_deref(),
            Some("First I look at the config.\nThen the build.")
        );
    }

    #[test]
    fn partial_first_line_and_junk_lines_are_skipped() {
        let mut bytes = Vec::new();
        // A line cut in the middle, as a tail window starts.
        bytes.extend_from_slice(&text("msg_00", "cut").as_bytes()[40..]);
        bytes.extend_from_slice(prompt("go").as_bytes());
        bytes.extend_from_slice(text("msg_01A", "Looking for the error.").as_bytes());
        bytes.extend_from_slice(b"{not json\n");
        bytes.extend_from_slice(&[0xff, 0xfe, b'{', b'"', 0x80, b'\n']);
        bytes.extend_from_slice(b"\n   \n[1,2,3]\n\"str\"\n");
        bytes.extend_from_slice(&text("msg_01A", "Bad \u{fffd} byte").as_bytes()[..30]);
        bytes.push(b'\n');
        bytes.extend_from_slice(tool_use("msg_01A", "toolu_01X", "make").as_bytes());
        // A half-written last line.
        bytes.extend_from_slice(&tool_result("toolu_01X", "ok").as_bytes()[..50]);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        assert_eq!(
            from_transcript(file.path(), "toolu_01X", Duration::ZERO).as_deref(),
            Some("Looking for the error.")
        );
    }

    #[test]
    fn a_partial_line_at_the_window_start_is_dropped() {
        // The call's text line is cut by the first window: the window grows.
        let mut lines = history(2);
        lines.push(prompt("go"));
        let long = format!("Looking into it: {}", "word ".repeat(60_000));
        lines.push(text("msg_01A", &long));
        lines.push(tool_use("msg_01A", "toolu_01X", "make"));
        let found = intent(&lines, "toolu_01X").unwrap();
        // The last characters, less the space the cut may start with.
        let count = found.chars().count();
        assert!(
            (MAX_INTENT_CHARS - 1..=MAX_INTENT_CHARS).contains(&count),
            "{count}"
        );
        assert!(found.ends_with("word word"));
    }

    #[test]
    fn the_call_near_the_end_of_a_big_file() {
        let mut lines = history(4_000);
        lines.push(prompt("now build"));
        lines.push(text("msg_01A", "Building the release."));
        lines.push(tool_use("msg_01A", "toolu_01X", "cargo build --release"));
        lines.push(tool_result("toolu_01X", "Finished"));
        let file = transcript(&lines);
        assert!(file.as_file().metadata().unwrap().len() > 1 << 20);
        assert_eq!(
            from_transcript(file.path(), "toolu_01X", Duration::ZERO).as_deref(),
            Some("Building the release.")
        );
        // Near the end but past the first window.
        let mut lines = history(3_000);
        lines.push(text("msg_01A", "Counting lines."));
        lines.push(tool_use("msg_01A", "toolu_01X", "wc -l"));
        lines.extend(history(1_500));
        let file = transcript(&lines);
        assert_eq!(
            from_transcript(file.path(), "toolu_01X", Duration::ZERO).as_deref(),
            Some("Counting lines.")
        );
        // Beyond the largest window: not looked for.
        let mut lines = vec![
            text("msg_01A", "Long ago."),
            tool_use("msg_01A", "toolu_01X", "ls"),
        ];
        lines.extend(history(6_000));
        let file = transcript(&lines);
        assert!(file.as_file().metadata().unwrap().len() > MAX_WINDOW_BYTES);
        assert_eq!(from_transcript(file.path(), "toolu_01X", Duration::ZERO), None);
        assert_eq!(
            from_transcript(file.path(), "toolu_old5999", Duration::ZERO).as_deref(),
            Some("Step 5999: listing files.")
        );
    }

    #[test]
    fn sidechain_lines_are_another_conversation() {
        let mut sub = text("msg_S", "Subagent words.");
        sub = sub.replace("\"isSidechain\":false", "\"isSidechain\":true");
        let lines = vec![
            prompt("go"),
            text("msg_01A", "Main agent words."),
            sub,
            tool_use("msg_01B", "toolu_01X", "make"),
        ];
        assert_eq!(
            intent(&lines, "toolu_01X").as_deref(),
            Some("Main agent words.")
        );
    }

    #[test]
    fn a_tail_starts_after_its_first_partial_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"abc\ndef\n").unwrap();
        let mut read = |window| read_tail(file.as_file_mut(), 8, window).unwrap();
        // Starting right at a line's start keeps that line.
        assert_eq!(read(4), b"def\n");
        assert_eq!(read(3), b"");
        assert_eq!(read(8), b"abc\ndef\n");
        assert_eq!(read(100), b"abc\ndef\n");
    }

    #[test]
    fn capped_to_the_last_characters() {
        assert_eq!(cap("  "), None);
        assert_eq!(cap("short").as_deref(), Some("short"));
        let long = "é".repeat(MAX_INTENT_CHARS) + "tail";
        let kept = cap(&long).unwrap();
        assert_eq!(kept.chars().count(), MAX_INTENT_CHARS);
        assert!(kept.ends_with("étail"));
    }
}
