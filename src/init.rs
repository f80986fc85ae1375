//! `kompress init`: register kompress's hook in Claude Code's `settings.json`, for every event
//! it handles.
//!
//! Owns: the table of events kompress registers for ([`EVENTS`]), choosing the settings file,
//! merging kompress's hook entries into it or taking them out again, and writing the file
//! safely (backup, atomic replace, permissions and owner kept, symlinks followed).
//! Does not own: the hook protocol ([`crate::hook`], which dispatches on the payload's
//! `hook_event_name`) or checking an installation ([`crate::doctor`], which reuses [`EVENTS`],
//! [`registrations`] and [`read_settings`]).
//!
//! The merge itself ([`install`], [`uninstall`]) works on a [`Value`] and touches nothing but
//! kompress's own handler objects: every other key, hook and matcher group keeps its value and
//! its place (`serde_json`'s `preserve_order` keeps key order; `arbitrary_precision` keeps numbers
//! as written). A file that is not plain JSON (comments, trailing commas) is never rewritten.
//!
//! One command, `<abs path>/kompress hook`, is registered for each event of [`EVENTS`], in a
//! matcher group of its own appended to that event's array:
//!
//! ```json
//! {"hooks": {
//!   "PostToolUse":  [{"matcher": "Bash|Read|Grep|Glob|WebFetch|Agent|mcp__.*",
//!                     "hooks": [{"type": "command", "command": "/abs/path/kompress hook", "timeout": 10}]}],
//!   "PreToolUse":   [{"matcher": "Bash",
//!                     "hooks": [{"type": "command", "command": "/abs/path/kompress hook", "timeout": 10}]}],
//!   "SessionStart": [{"matcher": "compact",
//!                     "hooks": [{"type": "command", "command": "/abs/path/kompress hook", "timeout": 10}]}]}}
//! ```
//!
//! An install from an older kompress (PostToolUse only) gets the missing events on the next
//! `kompress init`. `kompress init --uninstall` removes kompress's handlers from every event,
//! also from events that are not (or no longer) in the table.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The tools kompress's PostToolUse hook fires for. Claude Code reads a value with `.` or `*`
/// as a regex, so `mcp__.*` covers every MCP tool; `Agent` is the subagent tool (`Task` before
/// 2.1.63).
pub const MATCHER: &str = "Bash|Read|Grep|Glob|WebFetch|Agent|mcp__.*";

/// The hook's timeout in seconds, for every event. kompress's own deadline is far shorter
/// (about a second); this only bounds a stuck process.
pub const TIMEOUT_SECS: u64 = 10;

/// One hook event kompress registers for, with the matcher and timeout of its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event's name, a key of `hooks` (`PostToolUse`).
    pub name: &'static str,
    /// The group's matcher: tool names for tool events, the source for `SessionStart`.
    pub matcher: &'static str,
    /// The handler's timeout in seconds.
    pub timeout: u64,
}

impl Event {
    /// The event as messages show it: its name, and its matcher in parentheses when that is a
    /// single word (`PreToolUse (Bash)`; PostToolUse's long tool list is left out).
    pub fn label(&self) -> String {
        if self
            .matcher
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            format!("{} ({})", self.name, self.matcher)
        } else {
            self.name.to_string()
        }
    }

    /// The matcher group [`install`] appends for this event.
    pub fn group(&self, command: &str) -> Value {
        json!({
            "matcher": self.matcher,
            "hooks": [{"type": "command", "command": command, "timeout": self.timeout}],
        })
    }
}

/// Every event kompress registers for, in the order they are added: the one table that
/// [`install`], [`snippet`], `doctor` and `hooks/hooks.json` follow.
///
/// - `PostToolUse`: shortens the output of successful tool calls.
/// - `PreToolUse` on `Bash`: rewrites noisy commands that may fail to run under `kompress run`
///   (PostToolUse never sees a failing command's output).
/// - `SessionStart` with source `compact`: forgets the session's memory once Claude Code has
///   compacted the conversation.
pub static EVENTS: [Event; 3] = [
    Event {
        name: "PostToolUse",
        matcher: MATCHER,
        timeout: TIMEOUT_SECS,
    },
    Event {
        name: "PreToolUse",
        matcher: "Bash",
        timeout: TIMEOUT_SECS,
    },
    Event {
        name: "SessionStart",
        matcher: "compact",
        timeout: TIMEOUT_SECS,
    },
];

/// The top-level key holding every hook event.
const HOOKS: &str = "hooks";

/// What [`install`] or [`uninstall`] did to one event's array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new matcher group with kompress's handler was appended to the event's array.
    Added,
    /// An existing kompress handler was brought up to date in place.
    Updated {
        /// The handler's former command, when it pointed to another kompress binary.
        previous: Option<String>,
        /// Extra kompress handlers that were removed (the first one is kept).
        duplicates: usize,
    },
    /// kompress's handler was already registered as wanted.
    Unchanged,
    /// This many kompress handlers were removed.
    Removed(usize),
}

impl Change {
    /// Whether the settings changed, so the file has to be written.
    pub fn is_change(&self) -> bool {
        !matches!(self, Change::Unchanged)
    }
}

/// What happened to one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventChange {
    /// The event's name (`PreToolUse`).
    pub event: String,
    /// What happened to it.
    pub change: Change,
}

/// Whether any of `changes` changed the settings.
pub fn any_change(changes: &[EventChange]) -> bool {
    changes.iter().any(|c| c.change.is_change())
}

/// Settings whose shape leaves no sound place for the hook entries.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The file's top level is not an object.
    #[error("the top level is {0}, not a JSON object")]
    TopLevel(&'static str),
    /// `hooks` is not an object.
    #[error("\"hooks\" is {0}, not a JSON object")]
    Hooks(&'static str),
    /// `hooks.<event>` (an event of [`EVENTS`]) is not an array.
    #[error("\"hooks\".\"{event}\" is {kind}, not an array")]
    Event {
        /// The event's name.
        event: &'static str,
        /// What it is instead.
        kind: &'static str,
    },
}

/// One kompress handler found in a settings file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The event it is registered for (a key of `hooks`, in or out of [`EVENTS`]).
    pub event: String,
    /// The matcher of the group holding the handler (`None` when absent: every tool or source).
    pub matcher: Option<String>,
    /// The handler's command (in exec form, the program followed by its arguments).
    pub command: String,
}

/// The shell command Claude Code runs: `<exe> hook`, the path quoted when it needs it.
pub fn hook_command(exe: &Path) -> Result<String> {
    let exe = exe
        .to_str()
        .ok_or_else(|| anyhow!("the path of kompress, {}, is not UTF-8", exe.display()))?;
    Ok(format!("{} hook", shell_quote(exe)))
}

/// The `hooks` object registering `command` for every event of [`EVENTS`], each in its own
/// group: what [`install`] produces in empty settings, and what `hooks/hooks.json` holds.
pub fn hooks_object(command: &str) -> Value {
    let mut hooks = Map::new();
    for event in &EVENTS {
        hooks.insert(event.name.to_string(), json!([event.group(command)]));
    }
    Value::Object(hooks)
}

/// What to add by hand when kompress cannot edit a file itself.
pub fn snippet(command: &str) -> String {
    let value = json!({ HOOKS: hooks_object(command) });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// The labels of `events`, joined with commas (`PostToolUse, PreToolUse (Bash)`).
pub fn labels<'a>(events: impl IntoIterator<Item = &'a Event>) -> String {
    events
        .into_iter()
        .map(Event::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table's entry for the event called `name`.
pub fn event(name: &str) -> Option<&'static Event> {
    EVENTS.iter().find(|e| e.name == name)
}

/// Whether `handler` (one object of a matcher group's `hooks` array) runs `kompress hook`.
pub fn is_kompress_handler(handler: &Value) -> bool {
    let Some(command) = handler.get("command").and_then(Value::as_str) else {
        return false;
    };
    match handler.get("args").and_then(Value::as_array) {
        // Exec form: the program, then its arguments, no shell.
        Some(args) => {
            is_kompress_program(command) && args.first().and_then(Value::as_str) == Some("hook")
        }
        None => is_kompress_command(command),
    }
}

/// Whether a shell command line runs `kompress hook`: a word naming a file called `kompress`,
/// directly followed by the word `hook`.
pub fn is_kompress_command(command: &str) -> bool {
    kompress_program(command).is_some()
}

/// The word of a shell command line that runs kompress as a hook: the program in
/// `/path/to/kompress hook`, unquoted.
pub fn kompress_program(command: &str) -> Option<String> {
    shell_words(command)
        .windows(2)
        .find(|pair| is_kompress_program(&pair[0]) && pair[1] == "hook")
        .map(|pair| pair[0].clone())
}

fn is_kompress_program(word: &str) -> bool {
    let name = word.rsplit(['/', '\\']).next().unwrap_or(word);
    name == "kompress" || name == "kompress.exe"
}

/// kompress handlers registered in `settings`, for every event (in or out of [`EVENTS`]), in
/// file order.
pub fn registrations(settings: &Value) -> Vec<Registration> {
    let Some(hooks) = settings.get(HOOKS).and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (event, groups) in hooks {
        let Some(groups) = groups.as_array() else {
            continue;
        };
        for group in groups {
            let Some(handlers) = group.get("hooks").and_then(Value::as_array) else {
                continue;
            };
            for handler in handlers.iter().filter(|h| is_kompress_handler(h)) {
                let mut command = handler["command"].as_str().unwrap_or_default().to_string();
                for arg in handler
                    .get("args")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    command.push(' ');
                    command.push_str(&shell_quote(arg.as_str().unwrap_or_default()));
                }
                found.push(Registration {
                    event: event.clone(),
                    matcher: group
                        .get("matcher")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    command,
                });
            }
        }
    }
    found
}

/// Register kompress's hook running `command` in `settings`, for every event of [`EVENTS`];
/// what happened to each, in the table's order.
///
/// Per event: appends a matcher group when the event has no kompress handler yet. An existing
/// one is kept where it is, with its matcher, timeout and other fields; only a command pointing
/// to another kompress binary is updated, and further kompress handlers of that event are
/// removed (with a matcher group left empty by that). Nothing changes when the shape is wrong.
pub fn install(settings: &mut Value, command: &str) -> Result<Vec<EventChange>, ShapeError> {
    let kind_of_settings = kind(settings);
    let Some(root) = settings.as_object_mut() else {
        return Err(ShapeError::TopLevel(kind_of_settings));
    };
    // Check every shape before changing anything.
    match root.get(HOOKS) {
        None => {}
        Some(Value::Object(hooks)) => {
            for event in &EVENTS {
                match hooks.get(event.name) {
                    None | Some(Value::Array(_)) => {}
                    Some(other) => {
                        return Err(ShapeError::Event {
                            event: event.name,
                            kind: kind(other),
                        });
                    }
                }
            }
        }
        Some(other) => return Err(ShapeError::Hooks(kind(other))),
    }
    let Value::Object(hooks) = root
        .entry(HOOKS)
        .or_insert_with(|| Value::Object(Map::new()))
    else {
        unreachable!("checked above");
    };
    let mut changes = Vec::new();
    for event in &EVENTS {
        let Value::Array(groups) = hooks
            .entry(event.name)
            .or_insert_with(|| Value::Array(Vec::new()))
        else {
            unreachable!("checked above");
        };
        changes.push(EventChange {
            event: event.name.to_string(),
            change: install_event(groups, event, command),
        });
    }
    Ok(changes)
}

/// [`install`] for one event's array of matcher groups.
fn install_event(groups: &mut Vec<Value>, event: &Event, command: &str) -> Change {
    let mut found = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        if let Some(handlers) = group.get("hooks").and_then(Value::as_array) {
            for (h, handler) in handlers.iter().enumerate() {
                if is_kompress_handler(handler) {
                    found.push((g, h));
                }
            }
        }
    }
    let Some(&(first_group, first_handler)) = found.first() else {
        groups.push(event.group(command));
        return Change::Added;
    };

    let previous = groups[first_group]
        .get_mut("hooks")
        .and_then(|handlers| handlers.get_mut(first_handler))
        .and_then(|handler| set_command(handler, command));
    // Remove the other kompress handlers, last first so the indices stay right.
    let duplicates = found.len() - 1;
    for &(g, h) in found[1..].iter().rev() {
        if let Some(Value::Array(handlers)) = groups[g].get_mut("hooks") {
            handlers.remove(h);
            if handlers.is_empty() && g != first_group {
                groups.remove(g);
            }
        }
    }
    if previous.is_none() && duplicates == 0 {
        Change::Unchanged
    } else {
        Change::Updated {
            previous,
            duplicates,
        }
    }
}

/// Point a kompress handler at `command`; its former command when that changed anything.
fn set_command(handler: &mut Value, command: &str) -> Option<String> {
    let exec_form = handler.get("args").is_some_and(Value::is_array);
    let wanted = if exec_form {
        shell_words(command).into_iter().next().unwrap_or_default()
    } else {
        command.to_string()
    };
    let slot = handler.get_mut("command")?;
    if slot.as_str() == Some(wanted.as_str()) {
        return None;
    }
    let old = slot.as_str().unwrap_or_default().to_string();
    *slot = Value::String(wanted);
    Some(old)
}

/// Remove what [`install`] adds, from every event (also events not in [`EVENTS`], such as a
/// `PreCompact` entry left by hand or by another version): every kompress handler, then a
/// matcher group whose `hooks` array this left empty, then an event array and `hooks` if this
/// left them empty. Containers that were empty already stay, and so does anything of another
/// shape. The events that had handlers removed, with [`Change::Removed`], in file order; empty
/// when there was nothing to remove.
pub fn uninstall(settings: &mut Value) -> Vec<EventChange> {
    let mut changes = Vec::new();
    let Some(root) = settings.as_object_mut() else {
        return changes;
    };
    let Some(Value::Object(hooks)) = root.get_mut(HOOKS) else {
        return changes;
    };
    let mut emptied = Vec::new();
    for (event, value) in hooks.iter_mut() {
        let Value::Array(groups) = value else {
            continue;
        };
        let mut removed = 0;
        groups.retain_mut(|group| {
            let Some(Value::Array(handlers)) = group.get_mut("hooks") else {
                return true;
            };
            let before = handlers.len();
            handlers.retain(|handler| !is_kompress_handler(handler));
            let count = before - handlers.len();
            removed += count;
            count == 0 || !handlers.is_empty()
        });
        if removed > 0 {
            if groups.is_empty() {
                emptied.push(event.clone());
            }
            changes.push(EventChange {
                event: event.clone(),
                change: Change::Removed(removed),
            });
        }
    }
    for event in &emptied {
        hooks.shift_remove(event);
    }
    if !changes.is_empty() && hooks.is_empty() {
        root.shift_remove(HOOKS);
    }
    changes
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Split a shell command line into words, the way `sh` would for plain commands: quotes and
/// backslashes are understood, `;`, `&` and `|` separate words; nothing is expanded.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                if !matches!(next, '"' | '\\' | '$' | '`') {
                                    word.push('\\');
                                }
                                word.push(next);
                            }
                        }
                        _ => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() || matches!(c, ';' | '&' | '|') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Quote `word` for `sh` when it holds anything beyond plain path characters.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// Files.

/// The user's settings file: `$CLAUDE_CONFIG_DIR/settings.json` when Claude Code's config
/// directory is moved, `~/.claude/settings.json` otherwise.
pub fn user_settings_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("settings.json"));
    }
    let base = directories::BaseDirs::new()?;
    Some(base.home_dir().join(".claude").join("settings.json"))
}

/// The project's shared settings file, `./.claude/settings.json`.
pub fn project_settings_path() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot tell the current directory")?;
    Ok(cwd.join(".claude").join("settings.json"))
}

/// A settings file read and parsed.
#[derive(Debug)]
pub struct SettingsFile {
    /// The file actually read and written (symlinks followed).
    pub target: PathBuf,
    /// The bytes on disk; `None` when there is no file.
    pub original: Option<Vec<u8>>,
    /// The parsed settings (`{}` for a missing or blank file).
    pub value: Value,
}

/// Read and parse a settings file. `Err` when it cannot be read or is not plain JSON; the
/// message names the file and the place of the problem.
pub fn read_settings(path: &Path) -> Result<SettingsFile> {
    let target = resolve_symlinks(path)?;
    let original = match fs::read(&target) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", target.display())),
    };
    let value = match &original {
        None => Value::Object(Map::new()),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| anyhow!("{} is not UTF-8 text", target.display()))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            if text.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(text).map_err(|err| {
                    anyhow!(
                        "{} is not plain JSON: {}",
                        target.display(),
                        describe(&err, text)
                    )
                })?
            }
        }
    };
    Ok(SettingsFile {
        target,
        original,
        value,
    })
}

/// A `serde_json` error in words, with a hint when it is a JSONC comment.
fn describe(err: &serde_json::Error, text: &str) -> String {
    let message = err.to_string();
    let line = text
        .lines()
        .nth(err.line().saturating_sub(1))
        .unwrap_or_default();
    let from_error: String = line.chars().skip(err.column().saturating_sub(1)).collect();
    let is_comment = |s: &str| {
        let s = s.trim_start();
        s.starts_with("//") || s.starts_with("/*")
    };
    if is_comment(&from_error) || is_comment(line) {
        format!("{message} (a comment: JSONC comments are not JSON)")
    } else {
        message
    }
}

/// Follow a chain of symlinks to the file they name (which may not exist yet).
fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)
                    .with_context(|| format!("cannot read the symlink {}", current.display()))?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            _ if current == path => return Ok(current),
            // Followed a link: name its target without `..` where its directory exists.
            _ => {
                let tidy = current.parent().and_then(|dir| fs::canonicalize(dir).ok());
                return Ok(match (tidy, current.file_name()) {
                    (Some(dir), Some(name)) => dir.join(name),
                    _ => current,
                });
            }
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// Run `kompress init`.
pub fn main(project: bool, uninstall: bool, settings: Option<&Path>) -> Result<()> {
    let path = match settings {
        Some(path) => std::path::absolute(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?,
        None if project => project_settings_path()?,
        None => user_settings_path()
            .context("cannot find the home directory; pass --settings FILE or --project")?,
    };
    let exe = std::env::current_exe().context("cannot tell where the kompress binary is")?;
    let command = hook_command(&exe)?;
    let line = if uninstall {
        remove_from(&path, &command)?
    } else {
        add_to(&path, &command)?
    };
    println!("kompress: {line}");
    Ok(())
}

/// Register the hook in the file at `path`; a line saying what happened to each event.
fn add_to(path: &Path, command: &str) -> Result<String> {
    let manual = || {
        format!(
            "kompress left it unchanged. Add the hooks by hand, merging this into it:\n{}",
            snippet(command)
        )
    };
    let mut file = read_settings(path).map_err(|err| anyhow!("{err:#}.\n{}", manual()))?;
    let changes = install(&mut file.value, command)
        .map_err(|err| anyhow!("{}: {err}.\n{}", file.target.display(), manual()))?;
    let shown = shown_path(path, &file.target);
    if !any_change(&changes) {
        return Ok(install_message(&changes, command, &shown, false, ""));
    }
    let backup = write_settings(&file).map_err(|err| anyhow!("{err:#}.\n{}", manual()))?;
    let backup = backup_note(backup.as_deref());
    Ok(install_message(
        &changes,
        command,
        &shown,
        file.original.is_none(),
        &backup,
    ))
}

/// What [`install`] did, in one line: `changes` (one per event of [`EVENTS`]) to the file
/// shown as `shown`, `created` when there was no file, `backup` the note on the backup.
fn install_message(
    changes: &[EventChange],
    command: &str,
    shown: &str,
    created: bool,
    backup: &str,
) -> String {
    let with = |pick: &dyn Fn(&Change) -> bool| -> Vec<&'static Event> {
        changes
            .iter()
            .filter(|c| pick(&c.change))
            .filter_map(|c| event(&c.event))
            .collect()
    };
    let added = with(&|c| matches!(c, Change::Added));
    let kept = with(&|c| !matches!(c, Change::Added));
    let all = labels(&EVENTS);
    if added.is_empty() && !any_change(changes) {
        return format!("already registered in {shown}: {all}: `{command}`; nothing to do");
    }
    if kept.is_empty() {
        return if created {
            format!("created {shown}, registered: {all}: `{command}`")
        } else {
            format!("registered in {shown}: {all}: `{command}`{backup}")
        };
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        // An older kompress registered fewer events: the next `init` adds the others.
        parts.push(format!(
            "added {} next to the existing {} registration (upgrade from an older kompress): `{command}`",
            labels(added.iter().copied()),
            labels(kept.iter().copied()),
        ));
    }
    // Updated paths, one part per former command (usually one binary for every event).
    let mut previous: Vec<(&str, Vec<&'static Event>)> = Vec::new();
    let mut duplicates: Vec<(usize, &'static Event)> = Vec::new();
    for c in changes {
        let Some(e) = event(&c.event) else { continue };
        if let Change::Updated {
            previous: old,
            duplicates: n,
        } = &c.change
        {
            if let Some(old) = old.as_deref() {
                match previous.iter_mut().find(|(p, _)| *p == old) {
                    Some((_, events)) => events.push(e),
                    None => previous.push((old, vec![e])),
                }
            }
            if *n > 0 {
                duplicates.push((*n, e));
            }
        }
    }
    for (old, events) in &previous {
        parts.push(format!(
            "updated {}: `{old}` -> `{command}`",
            labels(events.iter().copied())
        ));
    }
    if !duplicates.is_empty() {
        let total: usize = duplicates.iter().map(|(n, _)| n).sum();
        parts.push(format!(
            "removed {total} duplicate kompress hook(s) ({})",
            labels(duplicates.iter().map(|(_, e)| *e))
        ));
    }
    let verb = if added.is_empty() {
        "updated the registration"
    } else {
        "upgraded the registration"
    };
    format!("{verb} in {shown}: {}{backup}", parts.join("; "))
}

/// Unregister the hook from the file at `path`, from every event; one line saying what
/// happened.
fn remove_from(path: &Path, command: &str) -> Result<String> {
    let manual = || {
        format!(
            "kompress left it unchanged. Remove by hand, under \"{HOOKS}\", each entry whose \
             command is `{command}` (or another `kompress hook`): {}.",
            EVENTS.map(|e| e.name).join(", ")
        )
    };
    let mut file = read_settings(path).map_err(|err| anyhow!("{err:#}.\n{}", manual()))?;
    let shown = shown_path(path, &file.target);
    if file.original.is_none() {
        return Ok(format!("{shown} does not exist; nothing to do"));
    }
    let changes = uninstall(&mut file.value);
    if !any_change(&changes) {
        return Ok(format!("no kompress hook in {shown}; nothing to do"));
    }
    let backup = write_settings(&file).map_err(|err| anyhow!("{err:#}.\n{}", manual()))?;
    let events: Vec<String> = changes
        .iter()
        .map(|c| match c.change {
            Change::Removed(n) if n > 1 => format!("{} ({n} hooks)", c.event),
            _ => c.event.clone(),
        })
        .collect();
    Ok(format!(
        "removed the kompress hook from {shown}: {}{}",
        events.join(", "),
        backup_note(backup.as_deref())
    ))
}

fn shown_path(path: &Path, target: &Path) -> String {
    if path == target {
        path.display().to_string()
    } else {
        format!("{} (-> {})", path.display(), target.display())
    }
}

fn backup_note(backup: Option<&Path>) -> String {
    backup
        .map(|b| format!(" (backup: {})", b.display()))
        .unwrap_or_default()
}

/// Write `file.value` over `file.target`, keeping its format where it can (indent, line ends,
/// final newline, byte-order mark), after backing up the old bytes. The backup's path.
fn write_settings(file: &SettingsFile) -> Result<Option<PathBuf>> {
    let target = &file.target;
    let old_text = file.original.as_deref().map(String::from_utf8_lossy);
    let bytes = render(&file.value, old_text.as_deref())?;
    let Some(original) = &file.original else {
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        write_atomic(target, &bytes, None)?;
        return Ok(None);
    };
    let meta = fs::metadata(target).with_context(|| format!("cannot read {}", target.display()))?;
    if meta.permissions().readonly() || !writable(target) {
        bail!(
            "{} is read-only; nothing was changed. Make it writable (chmod u+w) and run \
             `kompress init` again",
            target.display()
        );
    }
    let backup = backup(target, original, &meta)?;
    write_atomic(target, &bytes, Some(&meta))?;
    Ok(Some(backup))
}

/// Serialize `value` in the style of `old` (the file it replaces, if any).
fn render(value: &Value, old: Option<&str>) -> Result<Vec<u8>> {
    let indent = old
        .and_then(detect_indent)
        .unwrap_or_else(|| "  ".to_string());
    let mut out = Vec::new();
    let bom = old.is_some_and(|text| text.starts_with('\u{feff}'));
    if bom {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .context("cannot serialize the settings")?;
    // A new file, or one that ended with a newline, ends with one.
    if old.is_none_or(|text| text.ends_with('\n') || text.trim().is_empty()) {
        out.push(b'\n');
    }
    if old.is_some_and(|text| text.contains("\r\n")) {
        let text = String::from_utf8(out).context("cannot serialize the settings")?;
        out = text.replace('\n', "\r\n").into_bytes();
    }
    Ok(out)
}

/// The indent unit of a JSON text: the leading whitespace of its first indented line.
fn detect_indent(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|line| {
        let content = line.trim_start_matches([' ', '\t']);
        let lead = &line[..line.len() - content.len()];
        let uniform = lead.chars().all(|c| c == ' ') || lead.chars().all(|c| c == '\t');
        (!lead.is_empty() && !content.trim().is_empty() && uniform).then(|| lead.to_string())
    })
}

#[cfg(unix)]
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(not(unix))]
fn writable(_path: &Path) -> bool {
    true
}

/// Copy `original` (the bytes of `target`) to `<target>.kompress.bak`. A backup already there
/// with other bytes is first renamed `<target>.kompress.bak.<UTC time>`, so no backup is lost
/// and the plain `.kompress.bak` is always the file as it was before kompress's last change.
fn backup(target: &Path, original: &[u8], meta: &fs::Metadata) -> Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = target.with_file_name(format!("{name}.kompress.bak"));
    match fs::read(&path) {
        Ok(existing) if existing == original => return Ok(path),
        Ok(_) => {
            let stamp = utc_stamp(SystemTime::now());
            let mut rotated = target.with_file_name(format!("{name}.kompress.bak.{stamp}"));
            let mut n = 1;
            while fs::symlink_metadata(&rotated).is_ok() {
                n += 1;
                rotated = target.with_file_name(format!("{name}.kompress.bak.{stamp}-{n}"));
            }
            fs::rename(&path, &rotated)
                .with_context(|| format!("cannot move the old backup {} aside", path.display()))?;
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read the old backup {}", path.display()));
        }
    }
    write_atomic(&path, original, Some(meta))
        .with_context(|| format!("cannot write the backup {}", path.display()))?;
    Ok(path)
}

/// `YYYYMMDDTHHMMSSZ` for `time`, in UTC.
fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::clock::civil_from_days(days.cast_signed());
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Replace `target` with `bytes` atomically: a temporary file in the same directory, flushed
/// to disk, given `like`'s permissions and owner, then renamed over `target`.
fn write_atomic(target: &Path, bytes: &[u8], like: Option<&fs::Metadata>) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.kompress-tmp.{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = create_new(&tmp, like.is_some())
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if let Some(meta) = like {
            keep_owner(&file, meta);
            file.set_permissions(meta.permissions())
                .with_context(|| format!("cannot set the permissions of {}", tmp.display()))?;
        }
        file.sync_all()
            .with_context(|| format!("cannot flush {}", tmp.display()))?;
        fs::rename(&tmp, target).with_context(|| format!("cannot replace {}", target.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    result
}

/// Create `path` for writing; private (0600) until its final permissions are set when
/// `private`, otherwise with the usual permissions of a new file.
fn create_new(path: &Path, private: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o666 });
    }
    #[cfg(not(unix))]
    let _ = private;
    match options.open(path) {
        // A temporary file left by a crashed run with the same process id.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            options.open(path)
        }
        other => other,
    }
}

/// Give `file` the owner of the file it replaces (matters under sudo); failures are ignored.
fn keep_owner(file: &File, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
    }
    #[cfg(not(unix))]
    let _ = (file, meta);
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "/opt/kompress/bin/kompress hook";

    fn ours(settings: &Value) -> usize {
        registrations(settings).len()
    }

    /// `install`'s changes, as (event, change) pairs.
    fn pairs(changes: &[EventChange]) -> Vec<(&str, Change)> {
        changes
            .iter()
            .map(|c| (c.event.as_str(), c.change.clone()))
            .collect()
    }

    fn all(change: Change) -> Vec<(&'static str, Change)> {
        EVENTS.iter().map(|e| (e.name, change.clone())).collect()
    }

    fn group(event: usize) -> Value {
        EVENTS[event].group(CMD)
    }

    #[test]
    fn the_table() {
        assert_eq!(
            EVENTS.map(|e| (e.name, e.matcher, e.timeout)),
            [
                ("PostToolUse", MATCHER, 10),
                ("PreToolUse", "Bash", 10),
                ("SessionStart", "compact", 10),
            ]
        );
        assert_eq!(
            labels(&EVENTS),
            "PostToolUse, PreToolUse (Bash), SessionStart (compact)"
        );
        assert_eq!(event("PreToolUse"), Some(&EVENTS[1]));
        assert_eq!(event("PreCompact"), None);
    }

    #[test]
    fn install_into_empty_settings() {
        let mut settings = json!({});
        let changes = install(&mut settings, CMD).unwrap();
        assert_eq!(pairs(&changes), all(Change::Added));
        assert_eq!(settings, json!({"hooks": hooks_object(CMD)}));
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            format!(
                concat!(
                    r#"{{"hooks":{{"PostToolUse":[{{"matcher":"{m}","hooks":[{{"type":"command","command":"{c}","timeout":10}}]}}],"#,
                    r#""PreToolUse":[{{"matcher":"Bash","hooks":[{{"type":"command","command":"{c}","timeout":10}}]}}],"#,
                    r#""SessionStart":[{{"matcher":"compact","hooks":[{{"type":"command","command":"{c}","timeout":10}}]}}]}}}}"#
                ),
                m = MATCHER,
                c = CMD
            )
        );
        let found = registrations(&settings);
        assert_eq!(
            found
                .iter()
                .map(|r| (r.event.as_str(), r.matcher.as_deref().unwrap()))
                .collect::<Vec<_>>(),
            [
                ("PostToolUse", MATCHER),
                ("PreToolUse", "Bash"),
                ("SessionStart", "compact")
            ]
        );
        assert!(found.iter().all(|r| r.command == CMD));
    }

    #[test]
    fn install_twice_changes_nothing() {
        let mut settings = json!({"model": "opus", "hooks": {"PreToolUse": []}});
        assert_eq!(
            pairs(&install(&mut settings, CMD).unwrap()),
            all(Change::Added)
        );
        let once = settings.clone();
        let again = install(&mut settings, CMD).unwrap();
        assert_eq!(pairs(&again), all(Change::Unchanged));
        assert!(!any_change(&again));
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            serde_json::to_string(&once).unwrap()
        );
    }

    #[test]
    fn install_keeps_other_groups_and_order() {
        let mut settings = json!({
            "env": {"A": "1"},
            "hooks": {
                "SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": "hello.sh"}]}],
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}],
                "PostToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint.sh"}]}],
                "Stop": []
            },
            "z": 1
        });
        install(&mut settings, CMD).unwrap();
        let text = serde_json::to_string(&settings).unwrap();
        assert!(
            text.starts_with(r#"{"env":{"A":"1"},"hooks":{"SessionStart":[{"matcher":"startup""#),
            "{text}"
        );
        assert!(text.ends_with(r#""Stop":[]},"z":1}"#), "{text}");
        let hooks = settings["hooks"].as_object().unwrap();
        assert_eq!(
            hooks.keys().collect::<Vec<_>>(),
            ["SessionStart", "PreToolUse", "PostToolUse", "Stop"]
        );
        for (i, (event, theirs)) in [
            ("PostToolUse", "lint.sh"),
            ("PreToolUse", "rtk hook claude"),
            ("SessionStart", "hello.sh"),
        ]
        .into_iter()
        .enumerate()
        {
            let groups = hooks[event].as_array().unwrap();
            assert_eq!(groups.len(), 2, "{event}");
            assert_eq!(groups[0]["hooks"][0]["command"], theirs, "{event}");
            assert_eq!(groups[1], group(i), "{event}: ours goes last");
        }
    }

    #[test]
    fn install_upgrades_a_post_tool_use_only_registration() {
        let mut settings = json!({"hooks": {"PostToolUse": [group(0)]}});
        let changes = install(&mut settings, CMD).unwrap();
        assert_eq!(
            pairs(&changes),
            [
                ("PostToolUse", Change::Unchanged),
                ("PreToolUse", Change::Added),
                ("SessionStart", Change::Added)
            ]
        );
        assert_eq!(settings, json!({"hooks": hooks_object(CMD)}));
        assert_eq!(
            install_message(&changes, CMD, "/s.json", false, ""),
            format!(
                "upgraded the registration in /s.json: added PreToolUse (Bash), SessionStart \
                 (compact) next to the existing PostToolUse registration (upgrade from an older \
                 kompress): `{CMD}`"
            )
        );
    }

    #[test]
    fn install_updates_an_old_path_in_place() {
        let mut settings = json!({"hooks": {"PostToolUse": [
            {"matcher": "Bash", "hooks": [
                {"type": "command", "command": "a.sh"},
                {"type": "command", "command": "/old/kompress hook", "timeout": 30},
                {"type": "command", "command": "b.sh"}
            ]},
            {"matcher": "Read", "hooks": [{"type": "command", "command": "c.sh"}]}
        ], "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "/old/kompress hook"}]}
        ]}});
        let changes = install(&mut settings, CMD).unwrap();
        let updated = Change::Updated {
            previous: Some("/old/kompress hook".into()),
            duplicates: 0,
        };
        assert_eq!(
            pairs(&changes),
            [
                ("PostToolUse", updated.clone()),
                ("PreToolUse", updated),
                ("SessionStart", Change::Added)
            ]
        );
        let group = &settings["hooks"]["PostToolUse"][0];
        assert_eq!(group["matcher"], "Bash", "the user's matcher stays");
        assert_eq!(
            group["hooks"][1],
            json!({"type": "command", "command": CMD, "timeout": 30})
        );
        assert_eq!(group["hooks"][0]["command"], "a.sh");
        assert_eq!(group["hooks"][2]["command"], "b.sh");
        assert_eq!(
            settings["hooks"]["PostToolUse"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            settings["hooks"]["PreToolUse"],
            json!([{"matcher": "Bash", "hooks": [{"type": "command", "command": CMD}]}])
        );
        let message = install_message(&changes, CMD, "/s.json", false, " (backup: /s.bak)");
        assert_eq!(
            message,
            format!(
                "upgraded the registration in /s.json: added SessionStart (compact) next to the \
                 existing PostToolUse, PreToolUse (Bash) registration (upgrade from an older \
                 kompress): `{CMD}`; updated PostToolUse, PreToolUse (Bash): `/old/kompress hook` \
                 -> `{CMD}` (backup: /s.bak)"
            )
        );
        assert_eq!(
            pairs(&install(&mut settings, CMD).unwrap()),
            all(Change::Unchanged)
        );
    }

    #[test]
    fn install_removes_duplicates_per_event() {
        let mut settings = json!({"hooks": {
            "PostToolUse": [
                group(0),
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "kompress hook"}]},
                {"matcher": "Read", "hooks": [{"type": "command", "command": "x"}, {"type": "command", "command": "kompress hook"}]}
            ],
            "SessionStart": [group(2), group(2)]
        }});
        let changes = install(&mut settings, CMD).unwrap();
        assert_eq!(
            pairs(&changes),
            [
                (
                    "PostToolUse",
                    Change::Updated {
                        previous: None,
                        duplicates: 2
                    }
                ),
                ("PreToolUse", Change::Added),
                (
                    "SessionStart",
                    Change::Updated {
                        previous: None,
                        duplicates: 1
                    }
                ),
            ]
        );
        assert_eq!(ours(&settings), 3);
        let groups = settings["hooks"]["PostToolUse"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(
            groups[1],
            json!({"matcher": "Read", "hooks": [{"type": "command", "command": "x"}]})
        );
        assert_eq!(settings["hooks"]["SessionStart"], json!([group(2)]));
        let message = install_message(&changes, CMD, "/s.json", false, "");
        assert!(
            message.ends_with(
                "; removed 3 duplicate kompress hook(s) (PostToolUse, SessionStart (compact))"
            ),
            "{message}"
        );
    }

    #[test]
    fn install_updates_exec_form() {
        let mut settings = json!({"hooks": {"PostToolUse": [
            {"hooks": [{"type": "command", "command": "/old/kompress", "args": ["hook"]}]}
        ]}});
        let changes = install(&mut settings, CMD).unwrap();
        assert_eq!(
            changes[0].change,
            Change::Updated {
                previous: Some("/old/kompress".into()),
                duplicates: 0
            }
        );
        assert_eq!(
            settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"],
            "/opt/kompress/bin/kompress"
        );
        assert!(!any_change(&install(&mut settings, CMD).unwrap()));
    }

    #[test]
    fn install_leaves_events_outside_the_table_alone() {
        let mut settings = json!({"hooks": {"PreCompact": [
            {"hooks": [{"type": "command", "command": "/old/kompress hook"}]}
        ], "Stop": "odd"}});
        let before = settings["hooks"]["PreCompact"].clone();
        let changes = install(&mut settings, CMD).unwrap();
        assert_eq!(pairs(&changes), all(Change::Added));
        assert_eq!(settings["hooks"]["PreCompact"], before);
        assert_eq!(settings["hooks"]["Stop"], "odd");
    }

    #[test]
    fn install_refuses_wrong_shapes_without_changing_anything() {
        let mut cases = vec![
            (json!([]), ShapeError::TopLevel("an array")),
            (json!(null), ShapeError::TopLevel("null")),
            (json!({"hooks": "x"}), ShapeError::Hooks("a string")),
            (json!({"hooks": []}), ShapeError::Hooks("an array")),
            (json!({"hooks": null}), ShapeError::Hooks("null")),
        ];
        for event in &EVENTS {
            // The other events are fine (one even holds kompress), so nothing must change.
            let mut hooks = hooks_object("/old/kompress hook");
            hooks[event.name] = json!({"matcher": "Bash"});
            cases.push((
                json!({ "hooks": hooks }),
                ShapeError::Event {
                    event: event.name,
                    kind: "an object",
                },
            ));
            cases.push((
                json!({"hooks": {event.name: "kompress hook"}}),
                ShapeError::Event {
                    event: event.name,
                    kind: "a string",
                },
            ));
        }
        for (mut settings, error) in cases {
            let before = settings.clone();
            assert_eq!(install(&mut settings, CMD), Err(error));
            assert_eq!(settings, before);
        }
        assert_eq!(
            ShapeError::Event {
                event: "PreToolUse",
                kind: "null"
            }
            .to_string(),
            "\"hooks\".\"PreToolUse\" is null, not an array"
        );
    }

    #[test]
    fn snippet_shows_every_event() {
        let value: Value = serde_json::from_str(&snippet(CMD)).unwrap();
        assert_eq!(value, json!({"hooks": hooks_object(CMD)}));
        for event in &EVENTS {
            assert!(snippet(CMD).contains(event.name));
        }
    }

    #[test]
    fn messages() {
        let added = |created| {
            install_message(
                &EVENTS.map(|e| EventChange {
                    event: e.name.into(),
                    change: Change::Added,
                }),
                CMD,
                "/s.json",
                created,
                " (backup: /b)",
            )
        };
        assert_eq!(
            added(false),
            format!(
                "registered in /s.json: PostToolUse, PreToolUse (Bash), SessionStart (compact): \
                 `{CMD}` (backup: /b)"
            )
        );
        assert_eq!(
            added(true),
            format!(
                "created /s.json, registered: PostToolUse, PreToolUse (Bash), SessionStart \
                 (compact): `{CMD}`"
            )
        );
        let unchanged = EVENTS
            .map(|e| EventChange {
                event: e.name.into(),
                change: Change::Unchanged,
            })
            .to_vec();
        assert_eq!(
            install_message(&unchanged, CMD, "/s.json", false, ""),
            format!(
                "already registered in /s.json: PostToolUse, PreToolUse (Bash), SessionStart \
                 (compact): `{CMD}`; nothing to do"
            )
        );
    }

    #[test]
    fn uninstall_removes_exactly_what_install_added() {
        let original = json!({
            "permissions": {"allow": ["Bash(ls:*)"]},
            "hooks": {
                "PostToolUse": [
                    {"matcher": "Bash", "hooks": [{"type": "command", "command": "lint.sh"}]},
                    {"matcher": "Write", "hooks": []}
                ],
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "rtk hook claude"}]}],
                "SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]
            },
            "model": "sonnet"
        });
        let mut settings = original.clone();
        install(&mut settings, CMD).unwrap();
        assert_eq!(pairs(&uninstall(&mut settings)), all(Change::Removed(1)));
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            serde_json::to_string(&original).unwrap()
        );
        assert!(uninstall(&mut settings).is_empty());
    }

    #[test]
    fn uninstall_removes_containers_it_emptied() {
        let mut settings = json!({"a": 1});
        install(&mut settings, CMD).unwrap();
        assert_eq!(pairs(&uninstall(&mut settings)), all(Change::Removed(1)));
        assert_eq!(settings, json!({"a": 1}));

        let mut settings = json!({"hooks": {"Stop": [], "PostToolUse": []}, "b": 2});
        install(&mut settings, CMD).unwrap();
        uninstall(&mut settings);
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            r#"{"hooks":{"Stop":[]},"b":2}"#
        );
    }

    #[test]
    fn uninstall_covers_events_outside_the_table() {
        let mut settings = json!({"hooks": {
            "PreCompact": [{"hooks": [{"type": "command", "command": "/old/kompress hook"}]}],
            "PostToolUse": [group(0), group(0)],
            "Notification": [{"hooks": [{"type": "command", "command": "notify.sh"}]}],
            "Stop": {"odd": true}
        }});
        assert_eq!(
            pairs(&uninstall(&mut settings)),
            [
                ("PreCompact", Change::Removed(1)),
                ("PostToolUse", Change::Removed(2))
            ]
        );
        assert_eq!(
            settings,
            json!({"hooks": {
                "Notification": [{"hooks": [{"type": "command", "command": "notify.sh"}]}],
                "Stop": {"odd": true}
            }})
        );
    }

    #[test]
    fn uninstall_keeps_a_shared_group() {
        let mut settings = json!({"hooks": {"PostToolUse": [
            {"matcher": "Bash", "hooks": [
                {"type": "command", "command": "'/my dir/kompress' hook"},
                {"type": "command", "command": "other.sh"}
            ]}
        ]}});
        assert_eq!(
            pairs(&uninstall(&mut settings)),
            [("PostToolUse", Change::Removed(1))]
        );
        assert_eq!(
            settings,
            json!({"hooks": {"PostToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "other.sh"}]}
            ]}})
        );
    }

    #[test]
    fn uninstall_of_other_shapes_is_a_no_op() {
        for mut settings in [
            json!([]),
            json!({"hooks": 3}),
            json!({"hooks": {"PostToolUse": {}}}),
            json!({"hooks": {"PreToolUse": "kompress hook", "SessionStart": null}}),
        ] {
            let before = settings.clone();
            assert!(uninstall(&mut settings).is_empty());
            assert_eq!(settings, before);
        }
    }

    #[test]
    fn recognizes_kompress_commands() {
        for yes in [
            "kompress hook",
            "/home/u/.local/bin/kompress hook",
            "'/home/u/my tools/kompress' hook",
            "\"/home/u/my tools/kompress\" hook",
            "/home/u/my\\ tools/kompress hook",
            "KOMPRESS_DEBUG=1 kompress hook",
            "'C:\\bin\\kompress.exe' hook",
            "kompress hook post",
            "  kompress   hook  ",
        ] {
            assert!(is_kompress_command(yes), "{yes}");
        }
        for no in [
            "rtk hook claude",
            "kompress",
            "kompress run -- cargo test",
            "kompress-wrapper hook",
            "/usr/bin/notkompress hook",
            "echo hook kompress",
            "",
        ] {
            assert!(!is_kompress_command(no), "{no}");
        }
        assert!(is_kompress_handler(
            &json!({"command": "/x/kompress", "args": ["hook"]})
        ));
        assert!(!is_kompress_handler(
            &json!({"command": "/x/kompress", "args": ["run"]})
        ));
        assert!(!is_kompress_handler(
            &json!({"type": "http", "url": "http://kompress/hook"})
        ));
        assert!(!is_kompress_handler(&json!("kompress hook")));
    }

    #[test]
    fn hook_command_quotes_when_needed() {
        assert_eq!(
            hook_command(Path::new("/usr/bin/kompress")).unwrap(),
            "/usr/bin/kompress hook"
        );
        let spaced = hook_command(Path::new("/home/a b/it's/kompress")).unwrap();
        assert_eq!(spaced, r"'/home/a b/it'\''s/kompress' hook");
        assert_eq!(shell_words(&spaced), ["/home/a b/it's/kompress", "hook"]);
        assert!(is_kompress_command(&spaced));
    }

    #[test]
    fn registrations_lists_events_commands_and_matchers() {
        let settings = json!({"hooks": {
            "PreCompact": [{"hooks": [{"command": "kompress hook"}]}],
            "PostToolUse": [
                {"matcher": "Bash", "hooks": [{"command": "x"}, {"command": "kompress hook"}]},
                {"hooks": [{"command": "/k/kompress", "args": ["hook"]}]}
            ],
            "Stop": "odd",
            "SessionStart": [{"matcher": "compact", "hooks": [{"command": "/k/kompress hook"}]}]
        }});
        let registration = |event: &str, matcher: Option<&str>, command: &str| Registration {
            event: event.into(),
            matcher: matcher.map(str::to_string),
            command: command.into(),
        };
        assert_eq!(
            registrations(&settings),
            [
                registration("PreCompact", None, "kompress hook"),
                registration("PostToolUse", Some("Bash"), "kompress hook"),
                registration("PostToolUse", None, "/k/kompress hook"),
                registration("SessionStart", Some("compact"), "/k/kompress hook"),
            ]
        );
    }

    #[test]
    fn hooks_json_holds_the_table() {
        let text = include_str!("../hooks/hooks.json");
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string(&json!({"hooks": hooks_object("kompress hook")})).unwrap()
        );
    }

    #[test]
    fn render_keeps_the_file_style() {
        let value = json!({"a": [1], "b": {}});
        let four = "{\n    \"a\": 1\n}";
        assert_eq!(
            render(&value, Some(four)).unwrap(),
            b"{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}"
        );
        let tabs = "{\n\t\"a\": 1\n}\r\n";
        assert_eq!(
            String::from_utf8(render(&value, Some(tabs)).unwrap()).unwrap(),
            "{\r\n\t\"a\": [\r\n\t\t1\r\n\t],\r\n\t\"b\": {}\r\n}\r\n"
        );
        assert_eq!(
            render(&value, None).unwrap(),
            b"{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}\n"
        );
        assert_eq!(
            render(&json!({}), Some("\u{feff}{}\n")).unwrap(),
            "\u{feff}{}\n".as_bytes()
        );
    }

    #[test]
    fn describes_parse_errors() {
        let text = "{\n  // mine\n  \"a\": 1\n}";
        let err = serde_json::from_str::<Value>(text).unwrap_err();
        let message = describe(&err, text);
        assert!(
            message.contains("line 2") && message.contains("comment"),
            "{message}"
        );
        let text = "{\n  \"a\": 1,\n}";
        let err = serde_json::from_str::<Value>(text).unwrap_err();
        let message = describe(&err, text);
        assert!(
            message.contains("line 3") && message.contains("trailing comma"),
            "{message}"
        );
    }

    #[test]
    fn utc_stamps() {
        let at = |secs| utc_stamp(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_764_110_000), "20251125T223320Z");
    }
}
