//! Session memory: when a Bash command prints, in the same Claude Code session, what it
//! printed before, the agent gets one line saying so, or only the lines that changed.
//!
//! Keyed by (session, subagent, working directory, command): a subagent has a context of
//! its own and never saw the main agent's outputs, and `ls` in two directories is two
//! commands. A record holds the content id of the last output ([`crate::store::id_of`]);
//! the output itself is in the store (when it was replaced) and diffs are computed against
//! it there, so a diff always names the exact original it applies to.
//!
//! Records are lines appended to one log for all sessions, `sessions/log` in the state
//! directory (0700, the file 0600); the last line for a key wins. An append of one short
//! line is one `write`, so parallel hooks never interleave; a reader that meets a line still
//! being written skips it and, at worst, compresses as if the call were new. Whatever
//! record a hook reads, its reply is correct against the original that record names.
//! One file for all sessions, not a directory or a file per session: every new inode cost
//! ~1 ms of the hook call that created it on ext4 here (a directory and a log for each
//! new session and subagent were 2 ms of their first call). The log is rotated to
//! `log.1` past [`ROTATE_BYTES`]; records older than the retention are not recalled. The
//! directories older versions kept per session are swept when a log gets its first line.
//!
//! After Claude Code compacts the conversation (`SessionStart` with `source: "compact"`)
//! the session's records are forgotten ([`Memory::forget`] appends a line that ends the
//! session's earlier records): the earlier outputs they point to are gone from the agent's
//! context, so "unchanged" would refer to nothing it can see.
//!
//! Only Bash takes part:
//! - Read: Claude Code itself answers an unchanged re-read with `file_unchanged`, and Edit
//!   copies exact text from what Read showed, so a diff in place of a file is unsafe.
//! - Bash outputs detected as file contents (`cat src/x.rs`) get "unchanged" but never a
//!   diff, for the same reason.
//! - Grep, Glob, WebFetch, Agent and MCP outputs are answers to a question whose inputs
//!   are not the command line; they are compressed as usual.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::known::{self, Known};
use crate::passes;
use crate::paths;
use crate::store;

/// Context lines around each change in a session-memory diff.
pub const DIFF_CONTEXT: usize = 1;

/// A diff with more changed lines than this is not worth computing.
pub const MAX_DIFF_EDITS: usize = 400;

/// Outputs with more lines than this are not diffed (the diff's cost grows with them).
pub const MAX_DIFF_LINES: usize = 50_000;

/// Every session's records, in the sessions directory.
const LOG: &str = "log";

/// The log before the last rotation.
const OLD_LOG: &str = "log.1";

/// Size past which the log is rotated (about 60,000 records).
const ROTATE_BYTES: u64 = 8 << 20;

/// How much of the end of the log [`Memory::recall`] reads: about 2,000 records, so that
/// calls stay cheap however long the log. An older record is not found, and the call is
/// compressed as a new one.
const RECALL_BYTES: u64 = 256 * 1024;

/// A line of the log: a key's hash and its record.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    key: &'a str,
    #[serde(flatten)]
    record: Record,
}

/// Which repeated call this is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Key {
    /// Claude Code's `session_id`.
    pub session: String,
    /// `agent_id` inside a subagent, empty in the main agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The working directory.
    pub cwd: String,
    /// The command.
    pub command: String,
}

/// What session memory holds for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The content id of the last output.
    pub id: String,
    /// When it was recorded, seconds since the epoch.
    pub ts: u64,
}

/// Session memory in one directory.
#[derive(Clone, Debug)]
pub struct Memory {
    dir: PathBuf,
    retention: Duration,
}

fn hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    store::hex(&hasher.finalize())
}

impl Memory {
    /// Session memory in `dir`; sessions older than `retention_days` are deleted.
    pub fn new(dir: PathBuf, retention_days: u64) -> Memory {
        Memory {
            dir,
            retention: Duration::from_secs(retention_days.saturating_mul(86_400)),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Forget everything about `session` (its main agent and its subagents): Claude Code
    /// compacted the conversation, so the earlier outputs that records point to are no
    /// longer in the agent's context. [`Memory::recall`] stops at the line this appends.
    /// What the agent knew then starts again at the end of the transcript (`transcript`,
    /// when the payload names it): the summary that replaced the conversation is what it
    /// knows now.
    pub fn forget(&self, session: &str, transcript: Option<&Path>) -> Result<()> {
        if let Some(transcript) = transcript {
            known::forget(&self.dir, transcript)
                .with_context(|| format!("cannot reset {}", self.dir.display()))?;
        }
        self.append(&Memory::end_of(session), "")
    }

    /// What the agent knew before its current call: the items of its session transcript's
    /// prompts, words and calls ([`Known::of_transcript`]), with a cache in this directory so
    /// that each call reads only what the transcript gained.
    pub fn known(&self, transcript: &Path) -> Option<Known> {
        Known::of_transcript(transcript, Some(&known::cache_file(&self.dir, transcript)))
    }

    /// `key`'s name in the log.
    fn name(key: &Key) -> String {
        hash(&[&key.session, &key.agent, &key.tool, &key.cwd, &key.command])[..32].to_string()
    }

    /// The name of the line that ends `session`'s earlier records ([`Memory::forget`]).
    fn end_of(session: &str) -> String {
        hash(&["forget", session])[..32].to_string()
    }

    /// The record for `key`, if any: the last line of the log that names it, among the
    /// log's last [`RECALL_BYTES`] (with the end of the rotated log when the log is
    /// shorter), unless its session was forgotten after it or it is older than the
    /// retention.
    pub fn recall(&self, key: &Key) -> Option<Record> {
        let mut bytes = tail(&self.dir.join(LOG), RECALL_BYTES);
        if (bytes.len() as u64) < RECALL_BYTES {
            let old = tail(&self.dir.join(OLD_LOG), RECALL_BYTES - bytes.len() as u64);
            bytes = [old, bytes].concat();
        }
        // The last line that names the key or the end of its session. A hook that died
        // mid-write leaves a torn line that the next record follows on the same line: a
        // record is what starts at `{"key":"`, up to the end of its line, and one that
        // does not parse is passed over.
        let needle = format!("{{\"key\":\"{}\"", Memory::name(key));
        let end = format!("{{\"key\":\"{}\"", Memory::end_of(&key.session));
        let last = |pattern: &str| {
            let finder = memchr::memmem::FinderRev::new(pattern.as_bytes());
            let mut hay = &bytes[..];
            while let Some(at) = finder.rfind(hay) {
                let stop = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
                if let Ok(line) = serde_json::from_slice::<Line>(&bytes[at..stop]) {
                    return Some((at, line.record));
                }
                hay = &bytes[..at];
            }
            None
        };
        let (at, record) = last(&needle)?;
        if last(&end).is_some_and(|(ended, _)| ended > at) {
            return None;
        }
        let fresh = store::now_secs().saturating_sub(record.ts) <= self.retention.as_secs();
        fresh.then_some(record)
    }

    /// Record that `key` last printed the output with content id `id`.
    pub fn remember(&self, key: &Key, id: &str) -> Result<()> {
        self.append(&Memory::name(key), id)
    }

    /// Append a line for `name` to the log, creating the directory the first time, and
    /// rotate the log when it is full.
    fn append(&self, name: &str, id: &str) -> Result<()> {
        use std::io::Write;
        let line = Line {
            key: name,
            record: Record {
                id: id.to_string(),
                ts: store::now_secs(),
            },
        };
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        let path = self.dir.join(LOG);
        let mut file = paths::in_private_dir(&path, || {
            paths::private_file_options().append(true).create(true).open(&path)
        })
        .with_context(|| format!("cannot open {}", path.display()))?;
        file.write_all(&bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > ROTATE_BYTES {
            // Another hook may rotate at the same time; at worst some records are lost,
            // and those calls are compressed as new ones.
            let _ = std::fs::rename(&path, self.dir.join(OLD_LOG));
            self.sweep();
        } else if len == bytes.len() as u64 {
            // The log's first record (a new home, an upgrade, or a rotation by another
            // hook): a rare moment, so a good one for the sweep.
            self.sweep();
        }
        Ok(())
    }

    /// Delete what an older version kept per session (a directory each) and the caches of
    /// what agents knew ([`Memory::known`]) once they are past the retention; the log itself
    /// is bounded by its rotation. How many were deleted.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = known::sweep(&self.dir, self.retention);
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            // Such a session was last written when its log was, if it had one.
            let expired = std::fs::metadata(entry.path().join(LOG))
                .or_else(|_| entry.metadata())
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > self.retention);
            if expired && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// The last `max` bytes of the file at `path`; empty when it cannot be read.
fn tail(path: &Path, max: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && let Ok(meta) = file.metadata()
        && file.seek(SeekFrom::Start(meta.len().saturating_sub(max))).is_ok()
    {
        let _ = file.take(max).read_to_end(&mut bytes);
    }
    bytes
}

/// How [`unchanged_line`] starts.
const UNCHANGED: &str = "output unchanged since the earlier identical call";
/// How [`diff_header`] starts.
const CHANGED: &str = "output changed since the earlier identical call";

/// The line that replaces an output identical to the earlier one.
pub fn unchanged_line(id: &str) -> String {
    passes::marker(&format!(
        "{UNCHANGED} in this session · full output: kompress show {}",
        store::short(id)
    ))
}

/// The first line of a session-memory diff.
pub fn diff_header(previous_id: &str) -> String {
    passes::marker(&format!(
        "{CHANGED} in this session (kompress show {}); \
         only the changed lines follow, as a unified diff of the full outputs",
        store::short(previous_id)
    ))
}

/// Whether `reply` is session memory's ([`unchanged_line`] or a [`diff_header`] and its
/// diff) rather than the output compressed.
pub fn is_reply(reply: &str) -> bool {
    let first = reply.lines().next().unwrap_or("");
    passes::marker_message(first)
        .is_some_and(|m| m.starts_with(UNCHANGED) || m.starts_with(CHANGED))
}

/// The diff body replacing `new`, given the earlier output `old` (`None`: not worth it).
pub fn diff(previous_id: &str, old: &str, new: &str) -> Option<String> {
    if old.lines().count() > MAX_DIFF_LINES || new.lines().count() > MAX_DIFF_LINES {
        return None;
    }
    let diff = crate::linediff::unified(old, new, DIFF_CONTEXT, MAX_DIFF_EDITS)?;
    if diff.is_empty() {
        return None;
    }
    Some(format!("{}\n{diff}", diff_header(previous_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(command: &str) -> Key {
        Key {
            session: "s1".into(),
            tool: "Bash".into(),
            cwd: "/r".into(),
            command: command.into(),
            ..Key::default()
        }
    }

    #[test]
    fn remember_and_recall_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().join("sessions"), 7);
        assert_eq!(memory.recall(&key("ls")), None);
        memory.remember(&key("ls"), "ab12").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "ab12");
        assert_eq!(memory.recall(&key("ls -la")), None);
        assert_eq!(
            memory.recall(&Key {
                agent: "a1".into(),
                ..key("ls")
            }),
            None
        );
        assert_eq!(
            memory.recall(&Key {
                session: "s2".into(),
                ..key("ls")
            }),
            None
        );
        memory.remember(&key("ls"), "cd34").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "cd34");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(memory.dir()), 0o700);
        assert_eq!(mode(&memory.dir().join(LOG)), 0o600);
        // One log, a line per call, and nothing else: no file or directory per session.
        let log = std::fs::read_to_string(memory.dir().join(LOG)).unwrap();
        assert_eq!(log.lines().count(), 2);
        assert_eq!(std::fs::read_dir(memory.dir()).unwrap().count(), 1);
    }

    #[test]
    fn the_log_rotates_and_recall_reads_across() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().join("sessions"), 7);
        memory.remember(&key("ls"), "a1").unwrap();
        // Filled to the brim with other sessions' records: the next append rotates.
        let log = memory.dir().join(LOG);
        let filler = format!("{}\n", "x".repeat(1023));
        std::fs::write(&log, filler.repeat((ROTATE_BYTES / 1024) as usize)).unwrap();
        memory.remember(&key("ls"), "a2").unwrap();
        assert!(!log.exists() || std::fs::metadata(&log).unwrap().len() < RECALL_BYTES);
        assert!(memory.dir().join(OLD_LOG).exists());
        // The new log is short: the end of the rotated one is read too.
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a2");
        memory.remember(&key("pwd"), "b1").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a2");
        assert_eq!(memory.recall(&key("pwd")).unwrap().id, "b1");
    }

    #[test]
    fn the_last_whole_line_for_a_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().join("sessions"), 7);
        memory.remember(&key("ls"), "a1").unwrap();
        memory.remember(&key("pwd"), "b1").unwrap();
        memory.remember(&key("ls"), "a2").unwrap();
        memory.remember(&key("pwd"), "b2").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a2");
        assert_eq!(memory.recall(&key("pwd")).unwrap().id, "b2");
        // A line still being written (or garbage) is skipped, not trusted.
        let name = Memory::name(&key("ls"));
        let mut log = std::fs::File::options()
            .append(true)
            .open(memory.dir().join(LOG))
            .unwrap();
        use std::io::Write;
        write!(log, "{{\"key\":\"{name}\",\"id\":\"a3").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a2");
        // The next record, appended to the torn line (a hook that died mid-write leaves
        // it unterminated), still reads.
        memory.remember(&key("ls"), "a4").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a4");
        memory.remember(&key("pwd"), "b3").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "a4");
        assert_eq!(memory.recall(&key("pwd")).unwrap().id, "b3");
    }

    #[test]
    fn recall_reads_the_end_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().join("sessions"), 7);
        memory.remember(&key("first"), "f1").unwrap();
        let lines = (RECALL_BYTES / 60 + 10) as usize;
        for i in 0..lines {
            memory.remember(&key(&format!("cmd {i}")), "x").unwrap();
        }
        assert!(std::fs::metadata(memory.dir().join(LOG)).unwrap().len() > RECALL_BYTES);
        // Too far back: compressed as a new call.
        assert_eq!(memory.recall(&key("first")), None);
        assert_eq!(
            memory
                .recall(&key(&format!("cmd {}", lines - 1)))
                .unwrap()
                .id,
            "x"
        );
        memory.remember(&key("first"), "f2").unwrap();
        assert_eq!(memory.recall(&key("first")).unwrap().id, "f2");
    }

    #[test]
    fn replies_are_told_apart() {
        let id = "0123456789abcdef".repeat(4);
        assert!(is_reply(&unchanged_line(&id)));
        assert!(is_reply(&format!("{}\n+new line\n", diff_header(&id))));
        assert!(!is_reply(
            "[kompress: lines 2-9 omitted; kompress show 0123 --lines 2:9]\nx"
        ));
        assert!(!is_reply(
            "output unchanged since the earlier identical call"
        ));
    }

    #[test]
    fn forget_drops_one_session_with_its_subagents() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().join("sessions"), 7);
        let sub = Key {
            agent: "a1".into(),
            ..key("ls")
        };
        let other = Key {
            session: "s2".into(),
            ..key("ls")
        };
        for k in [&key("ls"), &sub, &other] {
            memory.remember(k, "ab12").unwrap();
        }
        memory.forget("s1", None).unwrap();
        assert_eq!(memory.recall(&key("ls")), None);
        assert_eq!(memory.recall(&sub), None);
        assert_eq!(memory.recall(&other).unwrap().id, "ab12");
        memory.forget("s1", None).unwrap();
        // What the session records after it counts again.
        memory.remember(&key("ls"), "cd34").unwrap();
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "cd34");
        assert_eq!(memory.recall(&sub), None);
    }

    #[test]
    fn expired_records_and_older_versions_sessions_go() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().to_path_buf(), 1);
        memory.remember(&key("ls"), "ab").unwrap();
        // A record older than the retention is not recalled.
        let old_ts = store::now_secs() - 2 * 86_400;
        let name = Memory::name(&key("pwd"));
        let mut log = std::fs::File::options().append(true).open(dir.path().join(LOG)).unwrap();
        use std::io::Write;
        writeln!(log, "{{\"key\":\"{name}\",\"id\":\"cd\",\"ts\":{old_ts}}}").unwrap();
        assert_eq!(memory.recall(&key("pwd")), None);
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "ab");
        // Session directories of older versions (one log, or one file per key, each) go
        // by their log's time or their own, once past the retention.
        let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
        let with_log = dir.path().join("0123456789abcdef01234567");
        std::fs::create_dir(&with_log).unwrap();
        std::fs::File::create(with_log.join(LOG)).unwrap().set_modified(old).unwrap();
        let per_key = dir.path().join("89abcdef0123456701234567");
        std::fs::create_dir(&per_key).unwrap();
        std::fs::write(per_key.join("0123"), b"{}").unwrap();
        std::fs::File::open(&per_key).unwrap().set_modified(old).unwrap();
        let recent = dir.path().join("fedcba9876543210fedcba98");
        std::fs::create_dir(&recent).unwrap();
        assert_eq!(memory.sweep(), 2);
        assert!(!with_log.exists() && !per_key.exists() && recent.exists());
        assert_eq!(memory.recall(&key("ls")).unwrap().id, "ab");
    }

    #[test]
    fn the_first_record_of_a_log_sweeps_what_older_versions_left() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().to_path_buf(), 1);
        let old = dir.path().join("0123456789abcdef01234567");
        std::fs::create_dir(&old).unwrap();
        std::fs::File::create(old.join(LOG))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(2 * 86_400))
            .unwrap();
        memory.remember(&key("ls"), "ab").unwrap();
        assert!(!old.exists());
    }

    #[test]
    fn diff_names_the_earlier_original() {
        let old: String = (0..50).map(|i| format!("test t{i} ... ok\n")).collect();
        let new = old.replace("test t7 ... ok", "test t7 ... FAILED");
        let body = diff(&"f".repeat(64), &old, &new).unwrap();
        assert!(body.starts_with("[kompress: output changed since the earlier identical call in this session (kompress show ffffffffff)"));
        assert!(
            body.contains("-test t7 ... ok\n+test t7 ... FAILED\n"),
            "{body}"
        );
        assert_eq!(diff("f", &old, &old), None);
        assert!(unchanged_line(&"a".repeat(64)).ends_with("kompress show aaaaaaaaaa]"));
    }
}
