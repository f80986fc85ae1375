//! Session memory: when a Bash command prints, in the same Claude Code session, what it
//! printed before, the agent gets one line saying so, or only the lines that changed.
//!
//! Keyed by (session, subagent, working directory, command): a subagent has a context of
//! its own and never saw the main agent's outputs, and `ls` in two directories is two
//! commands. A record holds the content id of the last output ([`crate::store::id_of`]);
//! the output itself is in the store (when it was replaced) and diffs are computed against
//! it there, so a diff always names the exact original it applies to.
//!
//! Records are lines appended to one log per session, `sessions/<session hash>/log` in
//! the state directory (0700, the file 0600); the last line for a key wins. An append of
//! one short line is one `write`, so parallel hooks never interleave; a reader that meets
//! a line still being written skips it and, at worst, compresses as if the call were new.
//! Whatever record a hook reads, its reply is correct against the original that record
//! names. One file per session, not one per key written with a rename: every new file is
//! a new inode, and creating one cost ~1 ms of each hook call on ext4.
//!
//! After Claude Code compacts the conversation (`SessionStart` with `source: "compact"`)
//! the session's records are deleted ([`Memory::forget`]): the earlier outputs they point
//! to are gone from the agent's context, so "unchanged" would refer to nothing it can see.
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

use crate::passes;
use crate::paths;
use crate::store;

/// Context lines around each change in a session-memory diff.
pub const DIFF_CONTEXT: usize = 1;

/// A diff with more changed lines than this is not worth computing.
pub const MAX_DIFF_EDITS: usize = 400;

/// Outputs with more lines than this are not diffed (the diff's cost grows with them).
pub const MAX_DIFF_LINES: usize = 50_000;

/// The file in the sessions directory whose modification time is the last sweep's.
const SWEPT_STAMP: &str = ".swept";

/// A session's records, in its directory.
const LOG: &str = "log";

/// How much of the end of a session's log [`Memory::recall`] reads: about 2,000 records,
/// so that a long session's calls stay cheap. An older record is not found, and the call
/// is compressed as a new one.
const RECALL_BYTES: u64 = 256 * 1024;

/// A line of a session's log: a key's hash and its record.
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

    fn session_dir(&self, key: &Key) -> PathBuf {
        self.session_dir_of(&key.session)
    }

    fn session_dir_of(&self, session: &str) -> PathBuf {
        self.dir.join(&hash(&[session])[..24])
    }

    /// Forget everything about `session` (its main agent and its subagents): Claude Code
    /// compacted the conversation, so the earlier outputs that records point to are no
    /// longer in the agent's context. Whether there was anything to forget.
    pub fn forget(&self, session: &str) -> Result<bool> {
        let dir = self.session_dir_of(session);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err).with_context(|| format!("cannot remove {}", dir.display())),
        }
    }

    /// The log of `key`'s session.
    fn log(&self, key: &Key) -> PathBuf {
        self.session_dir(key).join(LOG)
    }

    /// `key`'s name in its session's log.
    fn name(key: &Key) -> String {
        hash(&[&key.agent, &key.tool, &key.cwd, &key.command])[..32].to_string()
    }

    /// The record for `key`, if any: the last line of its session's log that names it,
    /// among the log's last [`RECALL_BYTES`].
    pub fn recall(&self, key: &Key) -> Option<Record> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(self.log(key)).ok()?;
        let len = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(RECALL_BYTES)))
            .ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        const START: &[u8] = b"{\"key\":\"";
        let needle = format!("{{\"key\":\"{}\"", Memory::name(key));
        bytes
            .split(|&b| b == b'\n')
            .rev()
            // A hook that died mid-write leaves a torn line that the next record follows
            // on the same line: the record is what starts at the last `{"key":"`.
            .filter_map(|line| {
                let at = line.windows(START.len()).rposition(|w| w == START)?;
                Some(&line[at..])
            })
            .filter(|record| record.starts_with(needle.as_bytes()))
            .find_map(|record| serde_json::from_slice::<Line>(record).ok())
            .map(|line| line.record)
    }

    /// Record that `key` last printed the output with content id `id`.
    pub fn remember(&self, key: &Key, id: &str) -> Result<()> {
        use std::io::Write;
        let session_dir = self.session_dir(key);
        let new_session = !session_dir.exists();
        if new_session {
            paths::ensure_private_dir(&session_dir)
                .with_context(|| format!("cannot create {}", session_dir.display()))?;
        }
        let name = Memory::name(key);
        let line = Line {
            key: &name,
            record: Record {
                id: id.to_string(),
                ts: store::now_secs(),
            },
        };
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        let path = self.log(key);
        paths::private_file_options()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .with_context(|| format!("cannot write {}", path.display()))?;
        if new_session && self.sweep_due() {
            // A session's first call: a good moment to forget expired ones.
            self.sweep();
        }
        Ok(())
    }

    /// Whether the last sweep is older than [`store::SWEEP_EVERY`]; if so, it is now.
    ///
    /// A sweep reads every session's directory, and a busy user (subagents are sessions
    /// of their own) has thousands: 3,000 took 3 ms of each session's first hook call.
    fn sweep_due(&self) -> bool {
        let stamp = self.dir.join(SWEPT_STAMP);
        let last = std::fs::metadata(&stamp).and_then(|m| m.modified());
        let due = last.map_or(true, |t| {
            SystemTime::now().duration_since(t).unwrap_or_default() >= store::SWEEP_EVERY
        });
        if due {
            let _ = paths::write_private_atomic(&stamp, b"");
        }
        due
    }

    /// Delete the sessions not written to within the retention period.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            // A session was last written when its log was (appending to it leaves the
            // directory's own time alone).
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
        assert_eq!(mode(&memory.session_dir(&key("ls"))), 0o700);
        assert_eq!(mode(&memory.log(&key("ls"))), 0o600);
        // One log per session, a line per call.
        let log = std::fs::read_to_string(memory.log(&key("ls"))).unwrap();
        assert_eq!(log.lines().count(), 2);
    }

    #[test]
    fn new_sessions_sweep_at_most_once_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().to_path_buf(), 1);
        let session = |name: &str| Key {
            session: name.into(),
            ..key("ls")
        };
        let expire = |name: &str| {
            let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
            let log = std::fs::File::options()
                .append(true)
                .open(memory.log(&session(name)))
                .unwrap();
            log.set_modified(old).unwrap();
        };
        memory.remember(&session("old1"), "a").unwrap();
        expire("old1");
        // The first session since the last sweep an hour ago (here: ever) sweeps.
        std::fs::remove_file(dir.path().join(SWEPT_STAMP)).unwrap();
        memory.remember(&session("new1"), "b").unwrap();
        assert!(!memory.session_dir(&session("old1")).exists());
        // The next ones within the hour do not.
        memory.remember(&session("old2"), "c").unwrap();
        expire("old2");
        memory.remember(&session("new2"), "d").unwrap();
        assert!(memory.session_dir(&session("old2")).exists());
        let stamp = std::fs::File::options()
            .write(true)
            .open(dir.path().join(SWEPT_STAMP))
            .unwrap();
        stamp
            .set_modified(SystemTime::now() - store::SWEEP_EVERY)
            .unwrap();
        memory.remember(&session("new3"), "e").unwrap();
        assert!(!memory.session_dir(&session("old2")).exists());
        assert!(memory.session_dir(&session("new3")).exists());
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
            .open(memory.log(&key("ls")))
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
        assert!(std::fs::metadata(memory.log(&key("ls"))).unwrap().len() > RECALL_BYTES);
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
        assert!(memory.forget("s1").unwrap());
        assert_eq!(memory.recall(&key("ls")), None);
        assert_eq!(memory.recall(&sub), None);
        assert_eq!(memory.recall(&other).unwrap().id, "ab12");
        assert!(!memory.forget("s1").unwrap());
    }

    #[test]
    fn expired_sessions_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path().to_path_buf(), 1);
        memory.remember(&key("ls"), "ab").unwrap();
        memory
            .remember(
                &Key {
                    session: "s2".into(),
                    ..key("ls")
                },
                "cd",
            )
            .unwrap();
        assert_eq!(memory.sweep(), 0);
        let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
        std::fs::File::options()
            .append(true)
            .open(memory.log(&key("ls")))
            .unwrap()
            .set_modified(old)
            .unwrap();
        // A session directory of an older version (one file per key, no log) goes by its
        // own time.
        let older = dir.path().join("0123456789abcdef01234567");
        std::fs::create_dir(&older).unwrap();
        std::fs::write(older.join("0123"), b"{}").unwrap();
        std::fs::File::open(&older)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(memory.sweep(), 2);
        assert!(!older.exists());
        assert_eq!(
            memory
                .recall(&Key {
                    session: "s2".into(),
                    ..key("ls")
                })
                .unwrap()
                .id,
            "cd"
        );
        assert_eq!(memory.recall(&key("ls")), None);
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
