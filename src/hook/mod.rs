//! The Claude Code hook protocol: one `kompress hook` command, dispatched on the payload's
//! `hook_event_name`.
//!
//! - `PostToolUse` (this file): shorten a tool's output in place.
//! - `PreToolUse` ([`pre`]): rewrite a noisy Bash command that may fail so that it runs
//!   under `kompress run --trailer`. Claude Code never runs PostToolUse for a command that
//!   exits non-zero, so this is the only way to shorten a failing test run.
//! - `SessionStart` with `source: "compact"`: the conversation was compacted, so session
//!   memory forgets this session (it must not say "unchanged since the earlier call" about
//!   an output the agent no longer sees).
//!
//! PostToolUse input: one hook payload (`tool_name`, `tool_input`, `tool_response`, …) on
//! stdin.
//! Output: `{"hookSpecificOutput":{"hookEventName":"PostToolUse","updatedToolOutput":R}}`
//! where `R` is the incoming `tool_response` with only its text field replaced, or
//! nothing at all. Claude Code validates `R` against the tool's own output schema and
//! silently keeps the original on a mismatch, so a replacement is always built by
//! editing a copy of what arrived, never from scratch (see `claude-code-hooks.md` §3.3).
//!
//! | tool        | text field                                            |
//! |-------------|-------------------------------------------------------|
//! | Bash        | `stdout`; the file at `persistedOutputPath` when set  |
//! | Read        | `file.content` (`type: "text"` only)                   |
//! | Grep        | `content` (content mode) or `filenames`                |
//! | Glob        | `filenames`                                           |
//! | WebFetch    | `result`                                              |
//! | Agent, Task | the text blocks of `content`                          |
//! | `mcp__*`    | a string, or the text blocks of an array or `content` |
//!
//! The agent's intent (its words before the call, [`Request::intent`]) comes from the
//! session transcript: `transcript_path` and `tool_use_id` of the payload, read with
//! [`intent::from_transcript`] only when a text is long enough to reach the pipeline.

pub mod permissions;
pub mod shell;

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use regex::Regex;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::domain::{self, Domain, Hints};
use crate::intent;
use crate::known::{Known, Lazy};
use crate::passes;
use crate::pipeline::{self, Compressed, Passthrough, Request};
use crate::scorer::Scorer;
use crate::select;
use crate::session::{self, Key, Memory};
use crate::stats::thousands;
use crate::store::{self, Store};
use crate::tokens;

pub mod pre;
pub mod rewrite;

/// The largest persisted Bash output kompress reads back (Claude Code cuts at 64 MiB).
pub const MAX_PERSISTED_BYTES: u64 = 64 << 20;

/// Bytes kept free under `max_output_chars` for the trailer line.
pub const TRAILER_ROOM: usize = 160;

/// What handling one payload produced.
#[derive(Debug)]
pub struct Reply {
    /// The JSON to print on stdout.
    pub json: String,
    /// One entry per text field that was replaced, with its final text (trailer included).
    pub compressed: Vec<Compressed>,
    /// The tool the payload came from.
    pub tool_name: String,
    /// The originals of the replaced text fields: the caller stores them before printing.
    pub originals: Vec<Original>,
}

/// How a text field was replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// By the pipeline.
    Compressed,
    /// Session memory: one line, the output is the same as the earlier call's.
    Unchanged,
    /// Session memory: a diff against the earlier call's output.
    Diff,
}

impl Kind {
    /// The name in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Compressed => "compressed",
            Kind::Unchanged => "unchanged",
            Kind::Diff => "diff",
        }
    }
}

/// A replaced text field's original, to store under its content id.
#[derive(Clone, Debug)]
pub struct Original {
    /// [`store::id_of`] the text.
    pub id: String,
    /// The original text.
    pub text: String,
    /// How it was replaced.
    pub kind: Kind,
    /// The domain it was compressed as.
    pub domain: Domain,
    /// cl100k tokens of the original.
    pub tokens_in: usize,
    /// cl100k tokens of the replacement, trailer included.
    pub tokens_out: usize,
}

/// Everything handling one payload decided.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The replacement, or `None`: print nothing.
    pub reply: Option<Reply>,
    /// Why nothing was replaced (the last text field's reason).
    pub reason: Option<String>,
    /// `session_id`.
    pub session: String,
    /// `tool_name`.
    pub tool: String,
    /// The Bash command or the file path, for statistics.
    pub command: String,
    /// Session memory to write once the reply is out: this key now has this content id.
    pub remember: Option<(Key, String)>,
    /// Whether the transcript was read for the agent's intent (only for texts long enough
    /// to reach the pipeline).
    pub intent_read: bool,
    /// The agent's intent, when it was read and found.
    pub intent: Option<String>,
    /// The statistics event of a reply that is not a replaced output (`"rewrite"`).
    pub event: Option<&'static str>,
    /// The conversation was compacted: forget this session's memory.
    pub forget_session: bool,
    /// `transcript_path` of a compacted session (what the agent knows starts at its end).
    pub transcript: String,
}

/// What the hook may read besides the payload and the files it names. Without it,
/// [`handle`] reads nothing else and writes nothing.
#[derive(Clone, Debug)]
pub struct Local {
    /// The store of originals (session-memory diffs read the earlier output from it).
    pub store: Store,
    /// Session memory.
    pub memory: Memory,
}

impl Local {
    /// The store and session memory of `dirs`, as `config` bounds them.
    pub fn open(dirs: &crate::paths::Dirs, config: &Config) -> Local {
        Local {
            store: Store::open(dirs, config),
            memory: Memory::new(dirs.sessions_dir(), config.store_retention_days),
        }
    }
}

/// Handle one hook payload. `Ok(None)`: print nothing, Claude Code keeps the original.
///
/// Nothing is written, and nothing read but the payload and the files it names (a
/// persisted Bash output, and the tail of the session transcript for the agent's intent);
/// replaced outputs end with a trailer naming their content id, which the caller must
/// store ([`Reply::originals`]) before printing the reply.
pub fn handle(
    payload: &[u8],
    config: &Config,
    scorer: Option<&dyn Scorer>,
    deadline: Instant,
) -> Result<Option<Reply>> {
    Ok(handle_with(payload, config, scorer, deadline, None)?.reply)
}

/// A command that runs kompress itself: `kompress show` prints an original on request, and
/// `kompress run` (the PreToolUse rewrite among others) has already compressed its output.
/// Compressing either again would loop or shorten twice.
static KOMPRESS_ITSELF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[[:space:];&|(/'"`])kompress['"]?[[:space:]]+(show|run)(?-u:\b)"#)
        .expect("valid regex")
});

/// [`handle`], with session memory when `local` is given.
pub fn handle_with(
    payload: &[u8],
    config: &Config,
    scorer: Option<&dyn Scorer>,
    deadline: Instant,
    local: Option<&Local>,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    if config.disable {
        outcome.reason = Some(Passthrough::Disabled.to_string());
        return Ok(outcome);
    }
    let payload: Value = serde_json::from_slice(payload).context("payload is not JSON")?;
    let Some(payload) = payload.as_object() else {
        bail!("payload is not a JSON object")
    };
    let field = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("");
    let tool_name = field("tool_name");
    outcome.tool = tool_name.to_string();
    outcome.session = field("session_id").to_string();
    match payload.get("hook_event_name").map(Value::as_str) {
        None | Some(Some("PostToolUse")) => {}
        Some(Some("PreToolUse")) => {
            outcome.command = payload
                .get("tool_input")
                .and_then(|i| i.get("command"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            // Statistics count replaced outputs; a rewrite's output is counted by the
            // `kompress run` it runs.
            outcome.event = Some("pretool");
            match pre::handle(payload, config) {
                Ok(json) => {
                    outcome.event = Some("rewrite");
                    outcome.reply = Some(Reply {
                        json,
                        compressed: Vec::new(),
                        tool_name: tool_name.to_string(),
                        originals: Vec::new(),
                    });
                }
                Err(reason) => outcome.reason = Some(reason),
            }
            return Ok(outcome);
        }
        Some(Some("SessionStart")) if field("source") == "compact" => {
            outcome.forget_session = !outcome.session.is_empty();
            outcome.transcript = field("transcript_path").to_string();
            outcome.event = Some("compact");
            return Ok(outcome);
        }
        Some(_) => {
            outcome.event = Some("ignored");
            return Ok(outcome);
        }
    }
    let empty = Map::new();
    let input = payload
        .get("tool_input")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let str_of = |key: &str| input.get(key).and_then(Value::as_str);
    outcome.command = str_of("command")
        .or(str_of("file_path"))
        .unwrap_or("")
        .to_string();
    let Some(response) = payload.get("tool_response") else {
        outcome.reason = Some("no tool_response".into());
        return Ok(outcome);
    };
    if tool_name == "Bash"
        // The literal test first spares most calls compiling the pattern.
        && let Some(found) = str_of("command")
            .filter(|c| c.contains("kompress"))
            .and_then(|c| KOMPRESS_ITSELF.captures(c))
    {
        if &found[1] == "run" {
            // `kompress run` recorded this output's statistics itself.
            outcome.event = Some("wrapped");
        }
        outcome.reason = Some(format!("kompress {}", &found[1]));
        return Ok(outcome);
    }
    let hints = Hints {
        tool_name: Some(tool_name),
        command: str_of("command"),
        file_path: str_of("file_path"),
        grep_mode: response
            .get("mode")
            .and_then(Value::as_str)
            .or(str_of("output_mode")),
    };
    let memory_key = match (local, str_of("command")) {
        (Some(_), Some(command)) if config.session_memory && !outcome.session.is_empty() => {
            Some(Key {
                session: outcome.session.clone(),
                agent: field("agent_id").to_string(),
                tool: tool_name.to_string(),
                cwd: field("cwd").to_string(),
                command: command.to_string(),
            })
        }
        _ => None,
    };
    let transcript = payload
        .get("transcript_path")
        .and_then(Value::as_str)
        .zip(payload.get("tool_use_id").and_then(Value::as_str));
    let subagent = !field("agent_id").is_empty();
    let mut job = Job {
        config,
        scorer,
        deadline,
        hints,
        transcript,
        call_patience: if subagent {
            Duration::ZERO
        } else {
            intent::CALL_PATIENCE
        },
        intent: None,
        known: Lazy::new(move || read_known(transcript, local, subagent)),
        local,
        memory_key,
        trailer: config.store_max_bytes > 0,
        compressed: Vec::new(),
        originals: Vec::new(),
        reason: None,
        remember: None,
    };
    let mut updated = response.clone();
    let changed = match tool_name {
        "Bash" => job.bash(&mut updated)?,
        "Read" => job.read(&mut updated),
        "Grep" => job.grep(&mut updated),
        "Glob" => job.list_field(&mut updated, "filenames"),
        "WebFetch" => job.string_field(&mut updated, "result", None),
        "Agent" | "Task" => job.blocks_field(&mut updated),
        name if name.starts_with("mcp__") => job.mcp(&mut updated),
        _ => {
            job.reason = Some("unsupported tool".into());
            false
        }
    };
    outcome.remember = job.remember.take();
    if let Some(intent) = job.intent.take() {
        outcome.intent_read = true;
        outcome.intent = intent;
    }
    if !changed {
        outcome.reason = Some(job.reason.take().unwrap_or_else(|| "no text".into()));
        return Ok(outcome);
    }
    let json = json!({
        "hookSpecificOutput": {
            "hookEventName": "PostToolUse",
            "updatedToolOutput": updated,
        }
    });
    outcome.reply = Some(Reply {
        json: serde_json::to_string(&json)?,
        compressed: job.compressed,
        tool_name: tool_name.to_string(),
        originals: job.originals,
    });
    Ok(outcome)
}

/// What the agent knew before the call, from the session transcript (`call`'s path; cached
/// in session memory, [`Memory::known`], when the hook has it). A subagent has a
/// conversation of its own and knows only its prompt: the session's transcript is not its
/// history, so it gets none.
fn read_known(call: Option<(&str, &str)>, local: Option<&Local>, subagent: bool) -> Option<Known> {
    if subagent {
        return None;
    }
    let (path, _) = call?;
    match local {
        Some(local) => local.memory.known(Path::new(path)),
        None => Known::of_transcript(Path::new(path), None),
    }
}

/// A command's output compressed as PostToolUse compresses a Bash output (trailer, size
/// cap, originals to store), without session memory: what `kompress run --trailer` prints,
/// the command the PreToolUse rewrite runs. `call` is the session transcript's path and the
/// call's `tool_use_id` (the rewrite passes both), for the agent's intent and what it knew;
/// `local`, when given, holds the cache of the latter. `Err`: why it passes through.
pub fn command_output(
    text: &str,
    command: &str,
    call: Option<(&str, &str)>,
    config: &Config,
    scorer: Option<&dyn Scorer>,
    deadline: Instant,
    local: Option<&Local>,
) -> Result<(String, Vec<Compressed>, Vec<Original>), String> {
    let mut job = Job {
        config,
        scorer,
        deadline,
        hints: Hints {
            tool_name: Some("Bash"),
            command: Some(command),
            ..Hints::default()
        },
        transcript: call,
        // The command has run for a while: the call is in the transcript by now, or soon.
        call_patience: intent::CALL_PATIENCE,
        intent: None,
        known: Lazy::new(move || read_known(call, local, false)),
        local,
        memory_key: None,
        trailer: config.store_max_bytes > 0,
        compressed: Vec::new(),
        originals: Vec::new(),
        reason: None,
        remember: None,
    };
    let new = job.text(text, None, None);
    if let Some(intent) = &job.intent {
        intent::debug_record(intent.as_deref());
    }
    match new {
        Some(new) => Ok((new, job.compressed, job.originals)),
        None => Err(job.reason.unwrap_or_else(|| "no text".into())),
    }
}

/// The trailer of a replaced output: its size before and after, and how to get it back.
pub fn trailer(tokens_in: usize, tokens_out: usize, id: &str) -> String {
    passes::marker(&format!(
        "{}→{} tokens · full output: kompress show {}",
        thousands(tokens_in as u64),
        thousands(tokens_out as u64),
        store::short(id)
    ))
}

/// The state of handling one payload: what to compress with, and what was compressed.
struct Job<'a> {
    config: &'a Config,
    scorer: Option<&'a dyn Scorer>,
    deadline: Instant,
    hints: Hints<'a>,
    /// `transcript_path` and `tool_use_id`, when the payload has both.
    transcript: Option<(&'a str, &'a str)>,
    /// How long to wait for the call to reach the transcript ([`intent::CALL_PATIENCE`];
    /// none in a subagent, whose calls may be in a file of their own).
    call_patience: Duration,
    /// The agent's intent once read: `Some(None)` when there is none.
    intent: Option<Option<String>>,
    /// What the agent knew before the call, read when the line model first needs it
    /// ([`read_known`]).
    known: Lazy<'a>,
    local: Option<&'a Local>,
    memory_key: Option<Key>,
    /// Add a trailer (the caller stores originals).
    trailer: bool,
    compressed: Vec<Compressed>,
    originals: Vec<Original>,
    /// Why the last text was kept.
    reason: Option<String>,
    remember: Option<(Key, String)>,
}

impl Job<'_> {
    /// Compress one text; `None` means keep it.
    fn text(
        &mut self,
        text: &str,
        domain: Option<Domain>,
        full_output: Option<&str>,
    ) -> Option<String> {
        let room = if self.trailer { TRAILER_ROOM } else { 0 };
        // Short texts pass through: no transcript read for them.
        let long_enough =
            text.len() >= self.config.min_chars && text.chars().count() >= self.config.min_chars;
        if long_enough && self.intent.is_none() {
            self.intent = Some(
                self.transcript
                    .and_then(|(path, id)| {
                        intent::from_transcript(Path::new(path), id, self.call_patience)
                    }),
            );
        }
        let request = Request {
            text,
            hints: self.hints,
            domain,
            max_output_chars: Some(self.config.max_output_chars.saturating_sub(room)),
            full_output,
            intent: self.intent.as_ref().and_then(Option::as_deref),
            known: Some(&self.known),
            unprotected: false,
        };
        match pipeline::compress(&request, self.config, self.scorer, self.deadline) {
            Ok(result) => self.finish(text, None, result, Kind::Compressed),
            Err(reason) => {
                self.reason = Some(reason.to_string());
                None
            }
        }
    }

    /// Add the trailer to a replacement of `original` and check that the whole still saves
    /// what the pipeline promises; record it. `None` means keep the original.
    fn finish(
        &mut self,
        original: &str,
        id: Option<String>,
        mut result: Compressed,
        kind: Kind,
    ) -> Option<String> {
        if !self.trailer {
            let text = result.text.clone();
            self.compressed.push(result);
            return Some(text);
        }
        let id = id.unwrap_or_else(|| store::id_of(original.as_bytes()));
        let tokens_in = result.tokens_in;
        // Compacted JSON keeps every key and value, and a trailer would make it invalid:
        // the original is stored, the output stays JSON.
        let lossless_json = kind == Kind::Compressed
            && matches!(
                result.text.trim_start().as_bytes().first(),
                Some(b'{' | b'[')
            )
            && serde_json::from_str::<serde::de::IgnoredAny>(&result.text).is_ok();
        // A line marker that names `kompress show ID --lines` already says the output was
        // cut and where the original is: a trailer would say it twice, in 24 tokens.
        let named = kind == Kind::Compressed && select::names_the_store(&result.text);
        let (text, tokens_out) = if kind == Kind::Unchanged || lossless_json || named {
            (result.text.clone(), result.tokens_out)
        } else {
            let body = &result.text;
            let newline = if body.ends_with('\n') || body.is_empty() {
                ""
            } else {
                "\n"
            };
            let end = if original.ends_with('\n') { "\n" } else { "" };
            let build =
                |shown: usize| format!("{body}{newline}{}{end}", trailer(tokens_in, shown, &id));
            // The trailer shows the final count, which depends on the trailer's own digits.
            // `body` is counted once (`result.tokens_out`), not again with each trailer.
            let head = format!("{body}{newline}");
            let head_tokens = if newline.is_empty() {
                result.tokens_out
            } else {
                tokens::count(&head)
            };
            let count_of = |shown: usize| {
                let tail = format!("{}{end}", trailer(tokens_in, shown, &id));
                tokens::count_joined(&head, head_tokens, &tail)
            };
            let mut shown =
                result.tokens_out + tokens::count(&trailer(tokens_in, result.tokens_out, &id)) + 1;
            let mut count = count_of(shown);
            for _ in 0..3 {
                if count == shown {
                    break;
                }
                shown = count;
                count = count_of(shown);
            }
            (build(shown), count)
        };
        let saved = tokens_in.saturating_sub(tokens_out);
        let enough = saved > 0 && saved as f64 >= self.config.min_saving * tokens_in as f64;
        if !enough || text.len() >= original.len() || text.len() > self.config.max_output_chars {
            self.reason = Some(Passthrough::SmallSaving.to_string());
            return None;
        }
        result.text = text.clone();
        result.tokens_out = tokens_out;
        self.originals.push(Original {
            id,
            text: original.to_string(),
            kind,
            domain: result.domain,
            tokens_in,
            tokens_out,
        });
        self.compressed.push(result);
        Some(text)
    }

    /// A Bash output: session memory first, then the pipeline.
    fn bash_text(&mut self, text: &str, full_output: Option<&str>) -> Option<String> {
        let Some(key) = self.memory_key.clone() else {
            return self.text(text, None, full_output);
        };
        let Some(local) = self.local else {
            return self.text(text, None, full_output);
        };
        let eligible = text.len() >= self.config.min_chars
            && text.chars().count() >= self.config.min_chars
            && !text.contains('\0')
            && !text.lines().any(passes::is_marker);
        if !eligible {
            return self.text(text, None, full_output);
        }
        let id = store::id_of(text.as_bytes());
        self.remember = Some((key.clone(), id.clone()));
        let Some(previous) = local.memory.recall(&key) else {
            return self.text(text, None, full_output);
        };
        let domain = domain::detect(&self.hints, text);
        if previous.id == id {
            let line = session::unchanged_line(&id);
            let result = Compressed {
                tokens_in: tokens::count(text),
                tokens_out: tokens::count(&line),
                text: line,
                domain,
                passes: Vec::new(),
                model: false,
            };
            if let Some(new) = self.finish(text, Some(id.clone()), result, Kind::Unchanged) {
                return Some(new);
            }
            return self.text(text, None, full_output);
        }
        // Edit copies exact text from file contents: never a diff in their place.
        if domain == Domain::FileRead {
            return self.text(text, None, full_output);
        }
        let normal = self.text(text, None, full_output);
        let diff = local
            .store
            .get(&previous.id)
            .ok()
            .and_then(|old| String::from_utf8(old).ok())
            .and_then(|old| session::diff(&previous.id, &old, text));
        let Some(diff) = diff else { return normal };
        if Instant::now() > self.deadline {
            return normal;
        }
        let diff_tokens = tokens::count(&diff);
        let (baseline, tokens_in) = match (&normal, self.compressed.last()) {
            (Some(_), Some(last)) => (last.tokens_out, last.tokens_in),
            _ => {
                let n = tokens::count(text);
                (n, n)
            }
        };
        // Only a diff much smaller than the compressed output is worth its indirection.
        if diff_tokens * 2 > baseline {
            return normal;
        }
        if normal.is_some() {
            self.compressed.pop();
            self.originals.pop();
        }
        let result = Compressed {
            text: diff,
            domain,
            tokens_in,
            tokens_out: diff_tokens,
            passes: Vec::new(),
            model: false,
        };
        match self.finish(text, Some(id), result, Kind::Diff) {
            Some(new) => Some(new),
            None => self.text(text, None, full_output),
        }
    }

    /// Bash: `stdout`, or the full persisted output when Claude Code cut it.
    fn bash(&mut self, response: &mut Value) -> Result<bool> {
        let Some(object) = response.as_object_mut() else {
            return Ok(false);
        };
        if object.get("isImage").and_then(Value::as_bool) == Some(true) {
            self.reason = Some("image".into());
            return Ok(false);
        }
        let Some(stdout) = object.get("stdout").and_then(Value::as_str) else {
            return Ok(false);
        };
        let persisted = match object.get("persistedOutputPath") {
            None => None,
            Some(Value::String(path)) => Some(path.clone()),
            // A shape we do not know: leave it to Claude Code.
            Some(_) => bail!("persistedOutputPath is not a string"),
        };
        let new = match &persisted {
            Some(path) => {
                let full = read_persisted(path)?;
                self.bash_text(&full, Some(path))
            }
            None => {
                let stdout = stdout.to_string();
                self.bash_text(&stdout, None)
            }
        };
        let Some(new) = new else { return Ok(false) };
        object.insert("stdout".into(), Value::String(new));
        // Claude Code shows the persisted file's preview instead of `stdout` while these
        // keys are present.
        object.remove("persistedOutputPath");
        object.remove("persistedOutputSize");
        Ok(true)
    }

    /// Read: `file.content` of a text read.
    ///
    /// No trailer and nothing stored: Claude Code numbers the content's lines as the
    /// file's, so an extra line would be a line the file does not have, and the original
    /// is the file itself (Read with `offset` and `limit` gives any part of it back).
    fn read(&mut self, response: &mut Value) -> bool {
        if response.get("type").and_then(Value::as_str) != Some("text") {
            self.reason = Some("not text".into());
            return false;
        }
        let trailer = std::mem::replace(&mut self.trailer, false);
        let changed = match response.get_mut("file") {
            Some(file) => self.string_field(file, "content", Some(Domain::FileRead)),
            None => false,
        };
        self.trailer = trailer;
        changed
    }

    /// Grep: `content` in content mode, the file list otherwise; counts are left alone.
    fn grep(&mut self, response: &mut Value) -> bool {
        match response.get("mode").and_then(Value::as_str) {
            Some("count") => false,
            Some("content") => self.string_field(response, "content", Some(Domain::SearchResult)),
            _ if response.get("content").and_then(Value::as_str).is_some() => {
                self.string_field(response, "content", Some(Domain::SearchResult))
            }
            _ => self.list_field(response, "filenames"),
        }
    }

    /// MCP: a bare string, an array of content blocks, or an object holding `content`.
    fn mcp(&mut self, response: &mut Value) -> bool {
        match response {
            Value::String(text) => match self.text(text, None, None) {
                Some(new) => {
                    *text = new;
                    true
                }
                None => false,
            },
            Value::Array(_) => self.blocks(response),
            Value::Object(_) => self.blocks_field(response),
            _ => false,
        }
    }

    /// Replace the string at `object[key]`.
    fn string_field(&mut self, object: &mut Value, key: &str, domain: Option<Domain>) -> bool {
        let Some(Value::String(text)) = object.get_mut(key) else {
            return false;
        };
        let current = std::mem::take(text);
        match self.text(&current, domain, None) {
            Some(new) => {
                *text = new;
                true
            }
            None => {
                *text = current;
                false
            }
        }
    }

    /// Replace a list of paths at `object[key]` with its folded form, one entry a line.
    fn list_field(&mut self, object: &mut Value, key: &str) -> bool {
        let Some(Value::Array(items)) = object.get_mut(key) else {
            return false;
        };
        let Some(names) = items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() else {
            return false;
        };
        let joined = names.join("\n");
        let Some(new) = self.text(&joined, Some(Domain::FileList), None) else {
            return false;
        };
        *items = new.lines().map(|l| Value::String(l.to_string())).collect();
        true
    }

    /// The text blocks of `object["content"]`.
    fn blocks_field(&mut self, object: &mut Value) -> bool {
        match object.get_mut("content") {
            Some(content @ Value::Array(_)) => self.blocks(content),
            Some(Value::String(_)) => self.string_field(object, "content", None),
            _ => false,
        }
    }

    /// Every `{"type":"text","text":…}` block of an array.
    fn blocks(&mut self, blocks: &mut Value) -> bool {
        let Some(blocks) = blocks.as_array_mut() else {
            return false;
        };
        let mut changed = false;
        for block in blocks {
            if block.get("type").and_then(Value::as_str) == Some("text") {
                changed |= self.string_field(block, "text", None);
            }
        }
        changed
    }
}

/// Read Claude Code's persisted copy of a long Bash output.
fn read_persisted(path: &str) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PERSISTED_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {path}"))?;
    String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hook(payload: Value) -> Option<Value> {
        let bytes = serde_json::to_vec(&payload).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        handle(&bytes, &Config::default(), None, deadline)
            .unwrap()
            .map(|reply| serde_json::from_str(&reply.json).unwrap())
    }

    fn noisy() -> String {
        let mut text = String::from("$ build\n");
        for _ in 0..200 {
            text.push_str("warning: unused variable `x`\n");
        }
        text.push_str("done in 3.2s\n");
        text
    }

    #[test]
    fn bash_keeps_every_other_key() {
        let out = hook(json!({
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "make"},
            "tool_response": {"stdout": noisy(), "stderr": "", "interrupted": false,
                              "isImage": false, "noOutputExpected": false}
        }))
        .expect("compressed");
        let updated = &out["hookSpecificOutput"]["updatedToolOutput"];
        assert_eq!(out["hookSpecificOutput"]["hookEventName"], "PostToolUse");
        let keys: Vec<_> = updated.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "stdout",
                "stderr",
                "interrupted",
                "isImage",
                "noOutputExpected"
            ]
        );
        assert!(updated["stdout"].as_str().unwrap().len() < noisy().len());
    }

    #[test]
    fn bash_reads_persisted_output_and_drops_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, noisy().repeat(20)).unwrap();
        let out = hook(json!({
            "tool_name": "Bash",
            "tool_input": {"command": "make"},
            "tool_response": {"stdout": "cut", "stderr": "", "interrupted": false,
                              "persistedOutputPath": path, "persistedOutputSize": 123}
        }))
        .expect("compressed");
        let updated = out["hookSpecificOutput"]["updatedToolOutput"]
            .as_object()
            .unwrap();
        assert!(!updated.contains_key("persistedOutputPath"));
        assert!(!updated.contains_key("persistedOutputSize"));
        assert!(updated["stdout"].as_str().unwrap().contains("done in 3.2s"));
    }

    #[test]
    fn missing_persisted_file_is_an_error() {
        let payload = json!({
            "tool_name": "Bash",
            "tool_response": {"stdout": noisy(), "persistedOutputPath": "/nonexistent/x"}
        });
        let bytes = serde_json::to_vec(&payload).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(handle(&bytes, &Config::default(), None, deadline).is_err());
    }

    #[test]
    fn unknown_tools_and_events_pass() {
        let response = json!({"stdout": noisy(), "stderr": "", "interrupted": false});
        assert!(hook(json!({"tool_name": "Write", "tool_response": response})).is_none());
        let pre = json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_response": response});
        assert!(hook(pre).is_none());
    }

    #[test]
    fn replaced_outputs_end_with_a_trailer_that_counts_itself() {
        let payload = json!({"tool_name": "Bash", "tool_input": {"command": "make"},
                             "tool_response": {"stdout": noisy(), "stderr": "", "interrupted": false}});
        let bytes = serde_json::to_vec(&payload).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let reply = handle(&bytes, &Config::default(), None, deadline)
            .unwrap()
            .unwrap();
        let out: Value = serde_json::from_str(&reply.json).unwrap();
        let stdout = out["hookSpecificOutput"]["updatedToolOutput"]["stdout"]
            .as_str()
            .unwrap();
        let id = store::id_of(noisy().as_bytes());
        let last = stdout.lines().last().unwrap();
        let tokens_in = tokens::count(&noisy());
        assert_eq!(
            last,
            trailer(tokens_in, tokens::count(stdout), &id),
            "{stdout}"
        );
        assert!(last.ends_with(&format!(
            "full output: kompress show {}]",
            &id[..store::SHOWN_ID_LEN]
        )));
        assert!(stdout.ends_with("]\n"));
        assert_eq!(reply.originals.len(), 1);
        assert_eq!(reply.originals[0].text, noisy());
        assert_eq!(reply.compressed[0].tokens_out, tokens::count(stdout));
        // No store, no trailer.
        let config = Config {
            store_max_bytes: 0,
            ..Config::default()
        };
        let reply = handle(&bytes, &config, None, deadline).unwrap().unwrap();
        assert!(!reply.json.contains("kompress show"));
    }

    #[test]
    fn kompress_show_is_never_compressed() {
        for command in [
            "kompress show 3f9a2c1b0e",
            "~/.local/bin/kompress show 3f9a --grep x",
            "cd /x && kompress  show ab12 | head",
        ] {
            let out = hook(
                json!({"tool_name": "Bash", "tool_input": {"command": command},
                                  "tool_response": {"stdout": noisy(), "stderr": "", "interrupted": false}}),
            );
            assert!(out.is_none(), "{command}");
        }
    }

    /// A store and session memory in `dir`.
    fn local_in(dir: &Path) -> Local {
        Local {
            store: Store::new(dir.join("originals"), 1 << 20, 7),
            memory: Memory::new(dir.join("sessions"), 7),
        }
    }

    #[test]
    fn what_the_agent_knew_is_read_for_the_line_model_once_per_session_not_for_subagents() {
        let home = tempfile::tempdir().unwrap();
        let local = local_in(home.path());
        let repo_model = Path::new(env!("CARGO_MANIFEST_DIR")).join("model");
        let args = crate::scorer::ModelArgs {
            model: Some(repo_model),
            device: None,
        };
        let model = crate::scorer::installed(&Config::default(), &args).unwrap();
        let transcript = home.path().join("t.jsonl");
        let lines = [
            json!({"type": "user", "message": {"role": "user", "content": "fix wire_format_bug"}}),
            json!({"type": "assistant", "message": {"id": "m1", "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                             "input": {"command": "make"}}]}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&transcript, text).unwrap();
        let run = |agent: &str, tool: &str, input: Value, response: Value| {
            let payload = json!({"session_id": "s1", "agent_id": agent, "cwd": "/r",
                "tool_name": tool, "tool_use_id": "toolu_1",
                "transcript_path": transcript.display().to_string(),
                "tool_input": input, "tool_response": response});
            let bytes = serde_json::to_vec(&payload).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            handle_with(&bytes, &Config::default(), Some(&model), deadline, Some(&local)).unwrap();
        };
        let bash = |agent: &str| {
            run(agent, "Bash", json!({"command": "make"}),
                json!({"stdout": noisy(), "stderr": "", "interrupted": false}))
        };
        let cache = crate::known::cache_file(&home.path().join("sessions"), &transcript);
        // A long file read never reaches the line model: the transcript is not read for it.
        let file: String = (0..300).map(|i| format!("line {i} of the file\n")).collect();
        run("", "Read", json!({"file_path": "/r/a.txt"}),
            json!({"type": "text", "file": {"filePath": "/r/a.txt", "content": file,
                   "numLines": 300, "startLine": 1, "totalLines": 300}}));
        assert!(!cache.exists());
        bash("");
        let cached = std::fs::read_to_string(&cache).unwrap();
        assert!(cached.contains(" wire_format_bug"), "{cached}");
        // Nothing new in the transcript since: nothing read, nothing appended.
        bash("");
        assert_eq!(std::fs::read_to_string(&cache).unwrap(), cached);
        std::fs::remove_file(&cache).unwrap();
        bash("agent-7");
        assert!(!cache.exists());
    }

    #[test]
    fn session_memory_unchanged_then_diff() {
        let home = tempfile::tempdir().unwrap();
        let local = local_in(home.path());
        let config = Config::default();
        let run = |stdout: &str, session: &str| {
            let payload = json!({"session_id": session, "cwd": "/r", "tool_name": "Bash",
                                 "tool_input": {"command": "make"},
                                 "tool_response": {"stdout": stdout, "stderr": "", "interrupted": false}});
            let bytes = serde_json::to_vec(&payload).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let outcome = handle_with(&bytes, &config, None, deadline, Some(&local)).unwrap();
            // What hook mode does after printing.
            if let Some(reply) = &outcome.reply {
                for original in &reply.originals {
                    local
                        .store
                        .put(&original.id, original.text.as_bytes())
                        .unwrap();
                }
            }
            if let Some((key, id)) = &outcome.remember {
                local.memory.remember(key, id).unwrap();
            }
            outcome.reply.map(|r| {
                let v: Value = serde_json::from_str(&r.json).unwrap();
                let text = v["hookSpecificOutput"]["updatedToolOutput"]["stdout"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (r.originals[0].kind, text)
            })
        };
        let first = noisy();
        let id = store::id_of(first.as_bytes());
        assert_eq!(run(&first, "s1").unwrap().0, Kind::Compressed);
        let (kind, text) = run(&first, "s1").unwrap();
        assert_eq!(kind, Kind::Unchanged);
        assert_eq!(text, session::unchanged_line(&id));
        // Another session has not seen it.
        assert_eq!(run(&first, "s2").unwrap().0, Kind::Compressed);
        // One line changed: a diff against the first output, which rebuilds the second.
        let mut lines: Vec<String> = (0..300)
            .map(|i| format!("compiled unit {i} of the workspace in {}ms", i * 7 % 13))
            .collect();
        let before = lines.join("\n") + "\n";
        assert_eq!(run(&before, "s3").unwrap().0, Kind::Compressed);
        lines[150] = "error[E0308]: mismatched types at src/unit.rs:150:9".into();
        let after = lines.join("\n") + "\n";
        let (kind, text) = run(&after, "s3").unwrap();
        assert_eq!(kind, Kind::Diff, "{text}");
        assert!(text.starts_with(&session::diff_header(&store::id_of(before.as_bytes()))));
        let body: String = text
            .lines()
            .skip(1)
            .filter(|l| !passes::is_marker(l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(crate::linediff::apply(&before, &body).unwrap(), after);
        assert!(text.contains("+error[E0308]: mismatched types at src/unit.rs:150:9\n"));
    }

    #[test]
    fn intent_is_read_from_the_transcript_only_for_long_texts() {
        let dir = tempfile::tempdir().unwrap();
        let transcript = dir.path().join("session.jsonl");
        let lines = [
            json!({"type": "user", "isSidechain": false,
                   "message": {"role": "user", "content": "why does make fail?"}}),
            json!({"type": "assistant", "isSidechain": false,
                   "message": {"id": "msg_1", "role": "assistant",
                               "content": [{"type": "text", "text": "Looking for the first error."}]}}),
            json!({"type": "assistant", "isSidechain": false,
                   "message": {"id": "msg_1", "role": "assistant",
                               "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                            "input": {"command": "make"}}]}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&transcript, text).unwrap();
        let run = |stdout: &str, with_transcript: bool| {
            let mut payload = json!({"tool_name": "Bash", "tool_input": {"command": "make"},
                                     "tool_response": {"stdout": stdout, "stderr": "", "interrupted": false}});
            if with_transcript {
                payload["transcript_path"] = json!(transcript);
                payload["tool_use_id"] = json!("toolu_1");
            }
            let bytes = serde_json::to_vec(&payload).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            handle_with(&bytes, &Config::default(), None, deadline, None).unwrap()
        };
        let with = run(&noisy(), true);
        assert!(with.intent_read);
        assert_eq!(with.intent.as_deref(), Some("Looking for the first error."));
        let without = run(&noisy(), false);
        assert!(without.intent_read);
        assert_eq!(without.intent, None);
        // The intent does not change the output (yet).
        assert_eq!(with.reply.unwrap().json, without.reply.unwrap().json);
        let short = run("a\nb\n", true);
        assert!(!short.intent_read);
        assert!(short.reply.is_none());
    }

    #[test]
    fn mcp_string_and_blocks() {
        let doc = serde_json::to_string_pretty(&json!({"items": (0..40).map(|i| json!({"id": i, "name": format!("n{i}")})).collect::<Vec<_>>()})).unwrap();
        let out = hook(
            json!({"tool_name": "mcp__x__list", "tool_response": [{"type": "text", "text": doc}]}),
        )
        .expect("compressed");
        let text = out["hookSpecificOutput"]["updatedToolOutput"][0]["text"]
            .as_str()
            .unwrap();
        let original: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), original);
        let out =
            hook(json!({"tool_name": "mcp__x__list", "tool_response": doc})).expect("compressed");
        assert!(out["hookSpecificOutput"]["updatedToolOutput"].is_string());
    }
}
