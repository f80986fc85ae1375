//! What the agent already knows in a session: the items ([`usage::items`]) of the user's
//! prompts, of the agent's words and of its tool calls' inputs, read from the session
//! transcript.
//!
//! Why: a line whose new-looking words the agent wrote itself (the names a reproduce script
//! prints, the code a `git diff` shows, the issue's own identifiers) tells it nothing.
//! The labels count such words as known (`docs/labels.md`), so the line model needs the
//! same knowledge to tell those lines apart: on the held-out trajectories, 15.7% of the
//! tokens of non-read outputs are in lines whose fresh-looking items are all in the task or
//! in an earlier thought or command (32% for scripts).
//!
//! Owns: reading the transcript's user prompts, assistant text and `tool_use` inputs
//! ([`Known::of_transcript`]), and a per-session cache of what was read
//! ([`cache_file`], keyed by the transcript's path, which is the session's), so that each
//! call reads only what the transcript gained since the last one. Claude Code's transcripts grow by tens of kilobytes a turn (tool results are
//! written twice, with prompt snapshots beside them), so the whole file is read only on a
//! session's first call, and never more than [`MAX_READ_BYTES`] of its end.
//!
//! The cache is a file per session in the sessions directory (`known-<hash>`, 0600): lines
//! of `<offset> <item> <item> …`, each appended in one write, where `offset` is how far
//! into the transcript the items go. Readers take the union of the items and the largest
//! offset; a torn last line is passed over. Parallel hooks may read the same bytes twice and
//! append the same items; the union is the same.
//!
//! Everything fails open: a missing transcript means no knowledge (`None`), an unreadable
//! cache means the transcript is read from its start.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::paths;
use crate::usage;

/// The most of the transcript's end one call reads.
pub const MAX_READ_BYTES: u64 = 16 << 20;

/// A cache larger than this is not read (the transcript is read again instead).
const MAX_CACHE_BYTES: u64 = 4 << 20;

/// The most items kept (a bound on memory, far above a real session's few thousand).
const MAX_ITEMS: usize = 200_000;

/// How cache files are named in the sessions directory.
const CACHE_PREFIX: &str = "known-";

/// The items the agent knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    items: HashSet<String>,
}

impl Known {
    /// The items of `texts` (for training data and tests: a task, earlier thoughts and
    /// commands).
    pub fn of_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Known {
        let mut known = Known::default();
        for text in texts {
            known.learn(text);
        }
        known
    }

    /// Whether the agent knows `item`.
    pub fn contains(&self, item: &str) -> bool {
        self.items.contains(item)
    }

    /// How many items it knows.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it knows nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Add the items of `text`.
    pub fn learn(&mut self, text: &str) {
        for item in usage::items(text) {
            if self.items.len() >= MAX_ITEMS {
                return;
            }
            if !self.items.contains(item) {
                self.items.insert(item.to_string());
            }
        }
    }

    /// What the agent knows in the session whose transcript is at `transcript`: what
    /// `cache` (when given) holds, and the transcript past the cache's offset, which is
    /// then appended to the cache. `None` when the transcript cannot be read.
    pub fn of_transcript(transcript: &Path, cache: Option<&Path>) -> Option<Known> {
        let mut file = File::open(transcript).ok()?;
        let len = file.metadata().ok().filter(|m| m.is_file())?.len();
        let Cached {
            mut known,
            offset,
            mut rewrite,
        } = cache.map(read_cache).unwrap_or_default();
        // A transcript shorter than what was read is another file: start again, and replace
        // the cache, whose offset would otherwise stay past the file's end.
        let offset = if offset > len {
            known = Known::default();
            rewrite = true;
            0
        } else {
            offset
        };
        let start = offset.max(len.saturating_sub(MAX_READ_BYTES));
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut bytes = Vec::new();
        file.take(len - start).read_to_end(&mut bytes).ok()?;
        // Only whole lines: the last one may still be being written. A read that skipped
        // ahead starts inside a line, which is dropped too.
        let end = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
        let begin = if start > offset {
            memchr::memchr(b'\n', &bytes[..end]).map_or(end, |i| i + 1)
        } else {
            0
        };
        // What the new lines hold, apart: only the items not known yet go to the cache.
        let mut read = Known::default();
        let needles = Needles::new();
        let mut from = begin;
        for newline in memchr::memchr_iter(b'\n', &bytes[begin..end]) {
            read.read_line(&bytes[from..begin + newline], &needles);
            from = begin + newline + 1;
        }
        let added: Vec<String> = read
            .items
            .into_iter()
            .filter(|w| !known.contains(w))
            .take(MAX_ITEMS.saturating_sub(known.len()))
            .collect();
        let new_offset = start + end as u64;
        if let Some(cache) = cache {
            if rewrite {
                let all = known.items.iter().chain(&added);
                let _ = paths::in_private_dir(cache, || {
                    paths::write_private_atomic(cache, &cache_line(new_offset, all.clone()))
                });
            } else if new_offset > offset {
                let _ = append_cache(cache, &cache_line(new_offset, added.iter()));
            }
        }
        known.items.extend(added);
        Some(known)
    }

    /// Add what one transcript line tells: a user's prompt, or an assistant's text and
    /// calls. Tool results, thinking, sidechains (a subagent's conversation) and junk add
    /// nothing. Most of a transcript's bytes are lines of none of these (tool results,
    /// which Claude Code writes twice, and prompt snapshots), so `needles` decides first
    /// which lines are worth parsing.
    fn read_line(&mut self, line: &[u8], needles: &Needles) {
        let has = |finders: &[memchr::memmem::Finder<'static>]| {
            finders.iter().any(|f| f.find(line).is_some())
        };
        let assistant = has(&needles.assistant);
        let user = !assistant && has(&needles.user);
        if !(assistant || user) || has(&needles.sidechain) {
            return;
        }
        if user && has(&needles.result) {
            return;
        }
        let Ok(entry) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        if entry.get("isSidechain").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let kind = entry.get("type").and_then(Value::as_str);
        match entry.pointer("/message/content") {
            Some(Value::String(text)) if kind == Some("user") => self.learn(text),
            Some(Value::Array(blocks)) if matches!(kind, Some("user" | "assistant")) => {
                for block in blocks {
                    match block.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            if let Some(text) = block.get("text").and_then(Value::as_str) {
                                self.learn(text);
                            }
                        }
                        Some("tool_use") => {
                            if let Some(input) = block.get("input") {
                                self.add_strings(input);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Every string inside a tool call's input (a command, a pattern, an edit's text).
    fn add_strings(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.learn(text),
            Value::Array(values) => values.iter().for_each(|v| self.add_strings(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_strings(v)),
            _ => {}
        }
    }
}

/// What the agent knew, read the first time something asks: only the line model does, so a
/// file read or a short output that never reaches it costs no transcript read.
pub struct Lazy<'a> {
    cell: std::cell::OnceCell<Option<Known>>,
    load: Box<dyn Fn() -> Option<Known> + 'a>,
}

impl<'a> Lazy<'a> {
    /// `load` runs at most once, on the first [`Lazy::get`].
    pub fn new(load: impl Fn() -> Option<Known> + 'a) -> Lazy<'a> {
        Lazy {
            cell: std::cell::OnceCell::new(),
            load: Box::new(load),
        }
    }

    /// What the agent knew, if it can be known.
    pub fn get(&self) -> Option<&Known> {
        self.cell.get_or_init(|| (self.load)()).as_ref()
    }
}

impl std::fmt::Debug for Lazy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cell.get() {
            Some(known) => write!(f, "Lazy({} items)", known.as_ref().map_or(0, Known::len)),
            None => f.write_str("Lazy(not read)"),
        }
    }
}

/// What [`Known::read_line`] looks for before it parses a line, compact (as Claude Code
/// writes it) or with a space after the colon.
struct Needles {
    assistant: [memchr::memmem::Finder<'static>; 2],
    user: [memchr::memmem::Finder<'static>; 2],
    sidechain: [memchr::memmem::Finder<'static>; 2],
    /// A user line holding a tool's result (its `content` block, or Claude Code's copy).
    result: [memchr::memmem::Finder<'static>; 2],
}

impl Needles {
    fn new() -> Needles {
        let pair = |a: &'static str, b: &'static str| {
            [memchr::memmem::Finder::new(a), memchr::memmem::Finder::new(b)]
        };
        Needles {
            assistant: pair("\"type\":\"assistant\"", "\"type\": \"assistant\""),
            user: pair("\"type\":\"user\"", "\"type\": \"user\""),
            sidechain: pair("\"isSidechain\":true", "\"isSidechain\": true"),
            result: pair("\"tool_result\"", "\"toolUseResult\""),
        }
    }
}

/// The cache file of the session whose transcript is at `transcript`, in the sessions
/// directory `dir`. Keyed by the path, which names the session, so that `kompress run`
/// (the PreToolUse rewrite, which knows the path and not the session) shares it.
pub fn cache_file(dir: &Path, transcript: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let hash = crate::store::hex(&Sha256::digest(transcript.as_os_str().as_encoded_bytes()));
    dir.join(format!("{CACHE_PREFIX}{}", &hash[..32]))
}

/// Start the session's knowledge again from the end of its transcript: after Claude Code
/// compacts a conversation, what was in it is no longer in the agent's context. A
/// transcript that cannot be read has its cache deleted (it is then read from its start).
pub fn forget(dir: &Path, transcript: &Path) -> std::io::Result<()> {
    let cache = cache_file(dir, transcript);
    match std::fs::metadata(transcript) {
        Ok(meta) => paths::in_private_dir(&cache, || {
            paths::write_private_atomic(&cache, format!("{}\n", meta.len()).as_bytes())
        }),
        Err(_) => match std::fs::remove_file(&cache) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Delete the cache files in `dir` not written for longer than `retention`. How many.
pub fn sweep(dir: &Path, retention: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(CACHE_PREFIX) {
            continue;
        }
        let expired = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > retention);
        if expired && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// What a cache holds.
#[derive(Default)]
struct Cached {
    known: Known,
    /// How far into the transcript its items go.
    offset: u64,
    /// The file is there but too large or unreadable: replace it rather than append.
    rewrite: bool,
}

/// The items a cache holds and how far into the transcript they go; empty when there is
/// no cache or it cannot be read.
fn read_cache(path: &Path) -> Cached {
    let mut cached = Cached::default();
    let Ok(file) = File::open(path) else {
        return cached;
    };
    let mut text = String::new();
    if file.metadata().map_or(true, |m| m.len() > MAX_CACHE_BYTES)
        || file.take(MAX_CACHE_BYTES).read_to_string(&mut text).is_err()
    {
        cached.rewrite = true;
        return cached;
    }
    // Whole lines only: a torn last line (a hook that died mid-write) is passed over.
    let whole = text.rfind('\n').map_or("", |i| &text[..i]);
    for line in whole.split('\n') {
        let mut words = line.split(' ');
        let Some(Ok(at)) = words.next().map(str::parse::<u64>) else {
            continue;
        };
        cached.offset = cached.offset.max(at);
        for w in words.filter(|w| !w.is_empty()) {
            if cached.known.items.len() < MAX_ITEMS {
                cached.known.items.insert(w.to_string());
            }
        }
    }
    cached
}

/// One cache line: `offset`, then `items`, sorted.
fn cache_line<'a>(offset: u64, items: impl Iterator<Item = &'a String>) -> Vec<u8> {
    let mut items: Vec<&str> = items.map(String::as_str).collect();
    items.sort_unstable();
    let mut line = offset.to_string();
    for w in items {
        line.push(' ');
        line.push_str(w);
    }
    line.push('\n');
    line.into_bytes()
}

/// Append `line` to the cache, in one write.
fn append_cache(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut file = paths::in_private_dir(path, || {
        paths::private_file_options()
            .append(true)
            .create(true)
            .open(path)
    })?;
    file.write_all(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt(text: &str) -> String {
        json!({"type": "user", "message": {"role": "user", "content": text}}).to_string()
    }

    fn said(text: &str, command: &str, id: &str) -> Vec<String> {
        vec![
            json!({"type": "assistant", "message": {"id": id, "role": "assistant",
                "content": [{"type": "text", "text": text}]}})
            .to_string(),
            json!({"type": "assistant", "message": {"id": id, "role": "assistant",
                "content": [{"type": "tool_use", "id": format!("toolu_{id}"), "name": "Bash",
                             "input": {"command": command}}]}})
            .to_string(),
        ]
    }

    fn result(id: &str, output: &str) -> String {
        json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result",
            "tool_use_id": format!("toolu_{id}"), "content": output}]},
            "toolUseResult": {"stdout": output}})
        .to_string()
    }

    fn write(path: &Path, lines: &[String], append: bool) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    #[test]
    fn prompts_words_and_calls_are_known_results_and_sidechains_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.jsonl");
        let mut lines = vec![prompt("Fix parse_header in wire_format")];
        lines.extend(said("I will write reproduce_bug", "cat > reproduce_bug.py", "m1"));
        lines.push(result("m1", "printed_only_in_output"));
        lines.push(
            json!({"type": "assistant", "isSidechain": true, "message": {"id": "m2",
                "content": [{"type": "text", "text": "subagent_secret"}]}})
            .to_string(),
        );
        lines.push("not json at all \"type\":\"user\"".to_string());
        // Not as Claude Code writes it (compact), but JSON all the same.
        lines.push(r#"{"type": "user", "message": {"role": "user", "content": "spaced_prompt"}}"#.into());
        write(&t, &lines, false);
        let known = Known::of_transcript(&t, None).unwrap();
        for w in ["parse_header", "wire_format", "reproduce_bug", "cat", "will", "spaced_prompt"] {
            assert!(known.contains(w), "{w}");
        }
        for w in ["printed_only_in_output", "subagent_secret", "py"] {
            assert!(!known.contains(w), "{w}");
        }
        assert!(Known::of_transcript(&dir.path().join("missing"), None).is_none());
    }

    #[test]
    fn the_cache_reads_only_what_the_transcript_gained() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.jsonl");
        let cache = cache_file(dir.path(), &t);
        write(&t, &[prompt("first_words here")], false);
        let one = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(one.contains("first_words"));
        let len = std::fs::metadata(&t).unwrap().len();
        let cached = std::fs::read_to_string(&cache).unwrap();
        assert!(cached.starts_with(&format!("{len} ")), "{cached}");
        // The cache, not the transcript, now holds the first line: rewrite the line in
        // place (same length) and it is still what the cache says.
        let text = std::fs::read_to_string(&t).unwrap().replace("first_words", "xxxxx_xxxxx");
        std::fs::write(&t, text).unwrap();
        let mut more = said("then second_words", "ls", "m1");
        more.push("{\"type\":\"user\",\"message\":{\"content\":\"torn_words".to_string());
        write(&t, &more, true);
        // The last line is still being written (no newline at its end).
        let partial = std::fs::read_to_string(&t).unwrap();
        std::fs::write(&t, partial.trim_end_matches('\n')).unwrap();
        let two = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(two.contains("first_words") && two.contains("second_words"));
        assert!(!two.contains("xxxxx_xxxxx") && !two.contains("torn_words"));
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 2);
        // Read again with nothing new: same knowledge, nothing appended.
        assert_eq!(Known::of_transcript(&t, Some(&cache)).unwrap(), two);
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_shorter_transcript_or_a_torn_cache_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.jsonl");
        let cache = cache_file(dir.path(), &t);
        write(&t, &[prompt("alpha_one"), prompt("beta_two")], false);
        Known::of_transcript(&t, Some(&cache)).unwrap();
        write(&t, &[prompt("gamma_three")], false);
        let known = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(known.contains("gamma_three") && !known.contains("alpha_one"));
        // The cache was replaced, not appended to: the next call reads nothing again.
        let len = std::fs::metadata(&t).unwrap().len();
        assert_eq!(
            std::fs::read_to_string(&cache).unwrap(),
            format!("{len} gamma_three\n")
        );
        // A cache past its bound is replaced by one line too.
        std::fs::write(&cache, vec![b'x'; (MAX_CACHE_BYTES + 1) as usize]).unwrap();
        let known = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(known.contains("gamma_three"));
        assert_eq!(
            std::fs::read_to_string(&cache).unwrap(),
            format!("{len} gamma_three\n")
        );
        // A torn cache line is passed over.
        std::fs::write(&cache, "12 zzz_torn").unwrap();
        let known = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(known.contains("gamma_three") && !known.contains("zzz_torn"));
    }

    #[test]
    fn forget_starts_from_the_transcripts_end_and_sweep_deletes_old_caches() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.jsonl");
        write(&t, &[prompt("before_compaction")], false);
        let cache = cache_file(dir.path(), &t);
        Known::of_transcript(&t, Some(&cache)).unwrap();
        forget(dir.path(), &t).unwrap();
        write(&t, &[prompt("after_compaction")], true);
        let known = Known::of_transcript(&t, Some(&cache)).unwrap();
        assert!(known.contains("after_compaction") && !known.contains("before_compaction"));
        std::fs::rename(&t, dir.path().join("moved")).unwrap();
        forget(dir.path(), &t).unwrap();
        assert!(!cache.exists());
        std::fs::rename(dir.path().join("moved"), &t).unwrap();
        Known::of_transcript(&t, Some(&cache)).unwrap();
        assert_eq!(sweep(dir.path(), std::time::Duration::from_secs(3600)), 0);
        assert_eq!(sweep(dir.path(), std::time::Duration::ZERO), 1);
        assert!(!cache.exists() && t.exists());
    }
}
