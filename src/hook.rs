//! The Claude Code PostToolUse protocol, and nothing else.
//!
//! Input: one hook payload (`tool_name`, `tool_input`, `tool_response`, …) on stdin.
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

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::domain::{Domain, Hints};
use crate::pipeline::{self, Compressed, Request};
use crate::scorer::Scorer;

/// The largest persisted Bash output kompress reads back (Claude Code cuts at 64 MiB).
pub const MAX_PERSISTED_BYTES: u64 = 64 << 20;

/// What handling one payload produced.
#[derive(Debug)]
pub struct Reply {
    /// The JSON to print on stdout.
    pub json: String,
    /// One entry per text field that was compressed.
    pub compressed: Vec<Compressed>,
    /// The tool the payload came from.
    pub tool_name: String,
}

/// Handle one hook payload. `Ok(None)`: print nothing, Claude Code keeps the original.
pub fn handle(
    payload: &[u8],
    config: &Config,
    scorer: Option<&dyn Scorer>,
    deadline: Instant,
) -> Result<Option<Reply>> {
    if config.disable {
        return Ok(None);
    }
    let payload: Value = serde_json::from_slice(payload).context("payload is not JSON")?;
    let Some(payload) = payload.as_object() else { bail!("payload is not a JSON object") };
    if let Some(event) = payload.get("hook_event_name") {
        if event.as_str() != Some("PostToolUse") {
            return Ok(None);
        }
    }
    let tool_name = payload.get("tool_name").and_then(Value::as_str).unwrap_or("");
    let empty = Map::new();
    let input = payload.get("tool_input").and_then(Value::as_object).unwrap_or(&empty);
    let Some(response) = payload.get("tool_response") else { return Ok(None) };
    let str_of = |key: &str| input.get(key).and_then(Value::as_str);
    let hints = Hints {
        tool_name: Some(tool_name),
        command: str_of("command"),
        file_path: str_of("file_path"),
        grep_mode: response.get("mode").and_then(Value::as_str).or(str_of("output_mode")),
    };
    let mut job = Job { config, scorer, deadline, hints, compressed: Vec::new() };
    let mut updated = response.clone();
    let changed = match tool_name {
        "Bash" => job.bash(&mut updated)?,
        "Read" => job.read(&mut updated),
        "Grep" => job.grep(&mut updated),
        "Glob" => job.list_field(&mut updated, "filenames"),
        "WebFetch" => job.string_field(&mut updated, "result", None),
        "Agent" | "Task" => job.blocks_field(&mut updated),
        name if name.starts_with("mcp__") => job.mcp(&mut updated),
        _ => false,
    };
    if !changed {
        return Ok(None);
    }
    let json = json!({
        "hookSpecificOutput": {
            "hookEventName": "PostToolUse",
            "updatedToolOutput": updated,
        }
    });
    Ok(Some(Reply {
        json: serde_json::to_string(&json)?,
        compressed: job.compressed,
        tool_name: tool_name.to_string(),
    }))
}

/// The state of handling one payload: what to compress with, and what was compressed.
struct Job<'a> {
    config: &'a Config,
    scorer: Option<&'a dyn Scorer>,
    deadline: Instant,
    hints: Hints<'a>,
    compressed: Vec<Compressed>,
}

impl Job<'_> {
    /// Compress one text; `None` means keep it.
    fn text(&mut self, text: &str, domain: Option<Domain>, full_output: Option<&str>) -> Option<String> {
        let request = Request {
            text,
            hints: self.hints,
            domain,
            max_output_chars: Some(self.config.max_output_chars),
            full_output,
        };
        let result = pipeline::compress(&request, self.config, self.scorer, self.deadline).ok()?;
        let text = result.text.clone();
        self.compressed.push(result);
        Some(text)
    }

    /// Bash: `stdout`, or the full persisted output when Claude Code cut it.
    fn bash(&mut self, response: &mut Value) -> Result<bool> {
        let Some(object) = response.as_object_mut() else { return Ok(false) };
        if object.get("isImage").and_then(Value::as_bool) == Some(true) {
            return Ok(false);
        }
        let Some(stdout) = object.get("stdout").and_then(Value::as_str) else { return Ok(false) };
        let persisted = object.get("persistedOutputPath").and_then(Value::as_str).map(str::to_string);
        let new = match &persisted {
            Some(path) => {
                let full = read_persisted(path)?;
                self.text(&full, None, Some(path))
            }
            None => {
                let stdout = stdout.to_string();
                self.text(&stdout, None, None)
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
    fn read(&mut self, response: &mut Value) -> bool {
        if response.get("type").and_then(Value::as_str) != Some("text") {
            return false;
        }
        match response.get_mut("file") {
            Some(file) => self.string_field(file, "content", Some(Domain::FileRead)),
            None => false,
        }
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
        let Some(Value::String(text)) = object.get_mut(key) else { return false };
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
        let Some(Value::Array(items)) = object.get_mut(key) else { return false };
        let Some(names) = items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() else {
            return false;
        };
        let joined = names.join("\n");
        let Some(new) = self.text(&joined, Some(Domain::FileList), None) else { return false };
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
        let Some(blocks) = blocks.as_array_mut() else { return false };
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
        assert_eq!(keys, ["stdout", "stderr", "interrupted", "isImage", "noOutputExpected"]);
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
        let updated = out["hookSpecificOutput"]["updatedToolOutput"].as_object().unwrap();
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
    fn mcp_string_and_blocks() {
        let doc = serde_json::to_string_pretty(&json!({"items": (0..40).map(|i| json!({"id": i, "name": format!("n{i}")})).collect::<Vec<_>>()})).unwrap();
        let out = hook(json!({"tool_name": "mcp__x__list", "tool_response": [{"type": "text", "text": doc}]}))
            .expect("compressed");
        let text = out["hookSpecificOutput"]["updatedToolOutput"][0]["text"].as_str().unwrap();
        let original: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), original);
        let out = hook(json!({"tool_name": "mcp__x__list", "tool_response": doc})).expect("compressed");
        assert!(out["hookSpecificOutput"]["updatedToolOutput"].is_string());
    }
}
