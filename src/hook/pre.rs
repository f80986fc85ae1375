//! PreToolUse for Bash: run a noisy command that may fail under `kompress run --trailer`.
//!
//! Claude Code runs PostToolUse only for commands that exit 0; a failing test run goes to
//! the model whole. Rewriting the command before it runs is the one way to shorten it
//! (`claude-code-hooks.md` §0 and §4). [`super::rewrite`] decides what to wrap.
//!
//! Claude Code matches permission rules against the *rewritten* command, so a deny on
//! `rm` would no longer fire on a rewritten line and allow rules would stop matching. The
//! user's rules are therefore evaluated here, against the original command
//! ([`super::permissions`]):
//!
//! | the original command is | kompress answers                                          |
//! |-------------------------|-----------------------------------------------------------|
//! | denied                  | nothing: Claude Code denies it as usual                    |
//! | asked about by a rule   | the rewrite, `permissionDecision: "ask"`, saying what runs |
//! | allowed                 | the rewrite, `permissionDecision: "allow"`                 |
//! | matched by no rule      | the rewrite, no decision: Claude Code's usual flow asks    |
//!
//! No decision rather than `ask` when no rule matched: Claude Code also knows rules kompress
//! cannot see (`--allowedTools`, the permission mode), and applies them to the rewrite. An
//! `ask` rule in `bypassPermissions` mode means no rewrite: what Claude Code does there is
//! left to it.
//!
//! `updatedInput` replaces the whole tool input, so it is the incoming one with only
//! `command` changed (`description`, `timeout` and the rest are kept).

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::permissions::{Permissions, Verdict};
use super::rewrite;
use crate::config::Config;
use crate::log;

/// The reply for a PreToolUse payload, or why there is none.
pub fn handle(payload: &Map<String, Value>, config: &Config) -> Result<String, String> {
    if payload.get("tool_name").and_then(Value::as_str) != Some("Bash") {
        return Err("not Bash".into());
    }
    let Some(input) = payload.get("tool_input").and_then(Value::as_object) else {
        return Err("no tool_input".into());
    };
    let Some(command) = input.get("command").and_then(Value::as_str) else {
        return Err("no command".into());
    };
    if input.get("run_in_background").and_then(Value::as_bool) == Some(true) {
        return Err("background".into());
    }
    let mode = payload.get("permission_mode").and_then(Value::as_str);
    let rewrite = rewrite::plan(command, &config.rewrite, &runner(payload)?)?;
    let project = std::env::var_os("CLAUDE_PROJECT_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            payload
                .get("cwd")
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .ok_or("no project directory")?;
    let (permissions, problems) = Permissions::load(&project);
    for problem in problems {
        log::write(&format!("hook: permissions: {problem}"));
    }
    let runs = format!(
        "kompress shortens the output of: {}",
        rewrite.wrapped.join(", ")
    );
    let (decision, reason) = match permissions.verdict(command) {
        Verdict::Deny(_) => return Err("denied by a permission rule".into()),
        // Whether Claude Code would ask in this mode is its own business: leave it alone.
        Verdict::Ask(_) if mode == Some("bypassPermissions") => {
            return Err("ask rule in bypassPermissions mode".into());
        }
        Verdict::Ask(rule) => (Some("ask"), format!("{runs} (asking: rule {rule})")),
        Verdict::Allow(rule) => (Some("allow"), format!("{runs} (allowed by rule {rule})")),
        Verdict::NoMatch => (None, runs),
    };
    let mut updated = input.clone();
    updated.insert("command".into(), Value::String(rewrite.command));
    let mut out = Map::new();
    out.insert("hookEventName".into(), json!("PreToolUse"));
    if let Some(decision) = decision {
        out.insert("permissionDecision".into(), json!(decision));
        out.insert("permissionDecisionReason".into(), json!(reason));
    }
    out.insert("updatedInput".into(), Value::Object(updated));
    serde_json::to_string(&json!({ "hookSpecificOutput": out })).map_err(|e| e.to_string())
}

/// What runs a wrapped command: this binary (shell quoted) `run --trailer`, and, when the
/// payload names them, the session transcript and the call's id, so that `kompress run`
/// reads the agent's intent and what it knew as the PostToolUse hook does. A subagent's
/// call gets neither (its conversation is not the session transcript's).
fn runner(payload: &Map<String, Value>) -> Result<String, String> {
    let quote = crate::init::shell_quote;
    let exe = std::env::current_exe().map_err(|e| format!("no binary path: {e}"))?;
    let exe = exe.to_str().ok_or("binary path is not UTF-8")?;
    let mut runner = format!("{} run --trailer", quote(exe));
    let field = |key: &str| payload.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    if field("agent_id").is_none()
        && let (Some(transcript), Some(call)) = (field("transcript_path"), field("tool_use_id"))
    {
        runner.push_str(&format!(" --transcript {} --call {}", quote(transcript), quote(call)));
    }
    Ok(runner)
}
