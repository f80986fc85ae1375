//! The PreToolUse rewrite end to end through the real binary: the hook's reply, the
//! permission rules it honours, and the rewritten command run by a real `bash` (exit
//! status, a `cd` that persists, the failure and the summary kept, the original stored).
//! Also: PostToolUse leaves `kompress run` output alone, and compaction clears session
//! memory.

mod common;

use std::path::Path;

use common::Env;
use serde_json::{Value, json};

/// A pytest stand-in: 400 passing tests and one failure, exit status 1.
const FAKE_PYTEST: &str = r#"#!/bin/sh
echo "============================= test session starts =============================="
echo "platform linux -- Python 3.11.6, pytest-7.4.3, pluggy-1.3.0"
echo "collected 401 items"
echo
i=1
while [ $i -le 400 ]; do
  echo "tests/test_parse.py::test_case_$i PASSED"
  i=$((i + 1))
done
echo "tests/test_dates.py::test_parse_date FAILED"
echo
echo "=================================== FAILURES ==================================="
echo "_______________________________ test_parse_date ________________________________"
echo
echo "    def test_parse_date():"
echo ">       assert parse_date('2024-01-03').day == 4"
echo "E       AssertionError: assert 3 == 4"
echo
echo "tests/test_dates.py:42: AssertionError"
echo "=========================== short test summary info ============================"
echo "FAILED tests/test_dates.py::test_parse_date - AssertionError: assert 3 == 4"
echo "======================== 1 failed, 400 passed in 2.31s ========================="
exit 1
"#;

/// A project directory with `sub/`, a `bin/pytest` stand-in, and `.claude/settings.json`
/// holding `permissions` when given.
fn project(permissions: Option<Value>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    let pytest = dir.path().join("bin/pytest");
    std::fs::write(&pytest, FAKE_PYTEST).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pytest, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(permissions) = permissions {
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        std::fs::write(
            dir.path().join(".claude/settings.json"),
            json!({ "permissions": permissions }).to_string(),
        )
        .unwrap();
    }
    dir
}

fn pre_payload(project: &Path, command: &str) -> Vec<u8> {
    pre_payload_with(project, command, Path::new("/nonexistent/transcript.jsonl"))
}

fn pre_payload_with(project: &Path, command: &str, transcript: &Path) -> Vec<u8> {
    json!({
        "session_id": "s1",
        "transcript_path": transcript,
        "cwd": project,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "Run the tests", "timeout": 120000},
        "tool_use_id": "toolu_01",
    })
    .to_string()
    .into_bytes()
}

/// The hook's reply to a PreToolUse payload (`None`: it printed nothing).
fn pre(env: &Env, project: &Path, command: &str) -> Option<Value> {
    pre_reply(env, project, &pre_payload(project, command))
}

fn pre_reply(env: &Env, project: &Path, payload: &[u8]) -> Option<Value> {
    let mut hook = env.command(&["hook"]);
    hook.env("CLAUDE_PROJECT_DIR", project);
    let output = env.run_with(hook, payload);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{output:?}");
    if output.stdout.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&output.stdout).expect("the reply is JSON"))
}

/// Run `command` with `bash -c` in `project`, its `bin/` first on PATH, in `env`.
fn bash(env: &Env, project: &Path, command: &str) -> std::process::Output {
    let path = format!(
        "{}:{}",
        project.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = std::process::Command::new("bash");
    bash.arg("-c")
        .arg(command)
        .current_dir(project)
        .env_clear()
        .env("PATH", path)
        .env("HOME", env.home.path())
        .env("KOMPRESS_HOME", env.kompress_home())
        .envs(env.vars.iter().map(|(k, v)| (k, v)));
    bash.output().unwrap()
}

#[test]
fn a_failing_test_run_is_rewritten_and_shortened_with_its_status() {
    let env = Env::new();
    let dir = project(None);
    let reply = pre(&env, dir.path(), "cd sub && pytest -v").expect("a rewrite");
    let out = &reply["hookSpecificOutput"];
    assert_eq!(out["hookEventName"], "PreToolUse");
    // No rule matched: Claude Code's own flow decides (it asks).
    assert!(out.get("permissionDecision").is_none(), "{out}");
    let input = &out["updatedInput"];
    assert_eq!(input["description"], "Run the tests");
    assert_eq!(input["timeout"], 120000);
    let command = input["command"].as_str().unwrap();
    assert!(command.starts_with("cd sub && "), "{command}");
    // The session transcript and the call, for the agent's intent and what it knew.
    assert!(
        command.ends_with(
            " run --trailer --transcript /nonexistent/transcript.jsonl --call toolu_01 -- pytest -v"
        ),
        "{command}"
    );

    let plain = bash(
        &env,
        dir.path(),
        "cd sub && pytest -v; echo \"status=$?\"; pwd",
    );
    let run = bash(
        &env,
        dir.path(),
        &format!("{command}; echo \"status=$?\"; pwd"),
    );
    assert!(run.stderr.is_empty(), "{run:?}");
    let (plain, text) = (
        String::from_utf8(plain.stdout).unwrap(),
        String::from_utf8(run.stdout).unwrap(),
    );
    assert!(
        text.len() * 2 < plain.len(),
        "{} vs {}",
        text.len(),
        plain.len()
    );
    for kept in [
        "status=1",
        "test_parse_date",
        "E       AssertionError: assert 3 == 4",
        "tests/test_dates.py:42: AssertionError",
        "1 failed, 400 passed in 2.31s",
        "kompress show",
    ] {
        assert!(text.contains(kept), "{kept:?} missing from:\n{text}");
    }
    // The `cd` ran in the calling shell.
    assert!(text.trim_end().ends_with("/sub"), "{text}");

    // The original is one `kompress show` away.
    let id = text
        .split("kompress show ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .unwrap();
    let shown = env.run(&["show", id], b"");
    let original = String::from_utf8(shown.stdout).unwrap();
    assert!(plain.starts_with(&original), "show gave:\n{original}");
    // All of it: the plain run's lines but its `status=` and `pwd` lines.
    assert_eq!(original.lines().count(), plain.lines().count() - 2);
}

#[test]
fn a_rewritten_run_reads_the_intent_and_what_the_agent_knew() {
    // The line model reads what the agent knew: with the model.
    let env = Env::new().with_model();
    let dir = project(None);
    let transcript = dir.path().join("session.jsonl");
    let lines = [
        json!({"type": "user", "message": {"role": "user", "content": "Fix parse_date for leap years"}}),
        json!({"type": "assistant", "message": {"id": "m1", "role": "assistant",
            "content": [{"type": "text", "text": "Run the date tests."}]}}),
        json!({"type": "assistant", "message": {"id": "m1", "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "Bash",
                         "input": {"command": "cd sub && pytest -v"}}]}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&transcript, text).unwrap();
    let payload = pre_payload_with(dir.path(), "cd sub && pytest -v", &transcript);
    let reply = pre_reply(&env, dir.path(), &payload).expect("a rewrite");
    let command = reply["hookSpecificOutput"]["updatedInput"]["command"]
        .as_str()
        .unwrap();
    let debug = dir.path().join("intent.txt");
    let mut env = env;
    env.vars
        .push(("KOMPRESS_DEBUG_INTENT".into(), debug.display().to_string()));
    let run = bash(&env, dir.path(), command);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&debug).unwrap(),
        "Run the date tests.\n"
    );
    // What the agent knew is cached in session memory, keyed by the transcript.
    let sessions = std::fs::read_dir(env.kompress_home().join("state").join("sessions"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("known-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].contains(" parse_date "), "{}", sessions[0]);
}

/// Mark `projects` trusted in Claude Code's global state file of `env`'s home.
fn trust(env: &Env, projects: &[&Path]) {
    let entries: serde_json::Map<String, Value> = projects
        .iter()
        .map(|p| {
            let key = p.to_str().unwrap().to_string();
            (key, json!({"hasTrustDialogAccepted": true}))
        })
        .collect();
    std::fs::write(
        env.home.path().join(".claude.json"),
        json!({ "projects": entries }).to_string(),
    )
    .unwrap();
}

#[test]
fn permission_rules_are_evaluated_on_the_original_command() {
    let env = Env::new();
    let deny = project(Some(json!({"deny": ["Bash(rm:*)"], "allow": ["Bash"]})));
    let allow = project(Some(json!({"allow": ["Bash(pytest:*)"]})));
    let ask = project(Some(json!({"ask": ["Bash(pytest:*)"], "allow": ["Bash"]})));
    // Claude Code ignores a project's allow rules until its workspace is trusted.
    let reply = pre(&env, allow.path(), "pytest -q").expect("a rewrite");
    assert!(
        reply["hookSpecificOutput"]
            .get("permissionDecision")
            .is_none()
    );
    trust(&env, &[deny.path(), allow.path(), ask.path()]);

    assert_eq!(pre(&env, deny.path(), "rm -rf build && pytest"), None);
    let reply = pre(&env, deny.path(), "pytest -q").expect("a rewrite");
    assert_eq!(reply["hookSpecificOutput"]["permissionDecision"], "allow");

    let reply = pre(&env, allow.path(), "pytest -q").expect("a rewrite");
    let out = &reply["hookSpecificOutput"];
    assert_eq!(out["permissionDecision"], "allow");
    assert!(
        out["permissionDecisionReason"]
            .as_str()
            .unwrap()
            .contains("pytest -q")
    );
    // `cargo test` is not allowed: the line as a whole is not, so Claude Code asks.
    let reply = pre(&env, allow.path(), "pytest -q && cargo test").expect("a rewrite");
    assert!(
        reply["hookSpecificOutput"]
            .get("permissionDecision")
            .is_none()
    );

    let reply = pre(&env, ask.path(), "pytest -q").expect("a rewrite");
    assert_eq!(reply["hookSpecificOutput"]["permissionDecision"], "ask");
    let mut payload: Value = serde_json::from_slice(&pre_payload(ask.path(), "pytest -q")).unwrap();
    payload["permission_mode"] = json!("bypassPermissions");
    let output = env.run(&["hook"], payload.to_string().as_bytes());
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn what_is_not_rewritten_gets_no_reply() {
    let env = Env::new();
    let dir = project(None);
    for command in [
        "ls -la",
        "pytest | tail -3",
        "pytest > log.txt",
        "pytest &",
        "cat <<EOF\npytest\nEOF",
        "npx jest --watch",
        "kompress run -- pytest",
        "pytest 'unbalanced",
    ] {
        assert_eq!(pre(&env, dir.path(), command), None, "{command}");
    }
    let mut off = env.command(&["hook"]);
    off.env("KOMPRESS_REWRITE", "0");
    let output = env.run_with(off, &pre_payload(dir.path(), "pytest"));
    assert!(output.stdout.is_empty());
    // Background runs and other tools are left alone; bad payloads pass.
    for payload in [
        json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": dir.path(),
               "tool_input": {"command": "pytest", "run_in_background": true}}),
        json!({"hook_event_name": "PreToolUse", "tool_name": "Read", "cwd": dir.path(),
               "tool_input": {"file_path": "/etc/hosts"}}),
        json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": 7}),
        json!({"hook_event_name": "PreToolUse"}),
    ] {
        let output = env.run(&["hook"], payload.to_string().as_bytes());
        assert_eq!(output.status.code(), Some(0));
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "{payload}"
        );
    }
}

#[test]
fn run_survives_an_interrupt_and_reports_signals() {
    let env = Env::new();
    // The command interrupts kompress, its parent, then goes on printing: kompress waits
    // for it and prints everything.
    let output = env.run(
        &[
            "run",
            "--trailer",
            "--",
            "sh",
            "-c",
            "echo before; kill -INT $PPID; sleep 0.2; echo after",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "before\nafter\n");
    let killed = env.run(
        &["run", "--trailer", "--", "sh", "-c", "kill -TERM $$"],
        b"",
    );
    assert_eq!(killed.status.code(), Some(143));
}

fn post_payload(command: &str, stdout: &str) -> Vec<u8> {
    json!({
        "session_id": "s1",
        "cwd": "/p",
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_response": {"stdout": stdout, "stderr": "", "interrupted": false, "isImage": false},
    })
    .to_string()
    .into_bytes()
}

#[test]
fn post_tool_use_leaves_kompress_run_alone() {
    let env = Env::new();
    let log: String = (0..300)
        .map(|i| format!("   Compiling dependency_{i} v0.{i}.3\n"))
        .collect();
    let normal = env.run(&["hook"], &post_payload("cargo build", &log));
    assert!(!normal.stdout.is_empty());
    for command in [
        "'/p/kompress' run --trailer -- cargo build",
        "cd a && kompress run -- cargo build",
    ] {
        let output = env.run(&["hook"], &post_payload(command, &log));
        assert!(output.stdout.is_empty(), "{command}");
    }
}

#[test]
fn compaction_clears_session_memory() {
    let env = Env::new();
    let log: String = (0..300)
        .map(|i| format!("   Compiling dependency_{i} v0.{i}.3\n"))
        .collect();
    let reply = |env: &Env| {
        let output = env.run(&["hook"], &post_payload("cargo build", &log));
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(!reply(&env).contains("output unchanged"));
    assert!(reply(&env).contains("output unchanged"));
    let start = json!({"session_id": "s1", "hook_event_name": "SessionStart", "source": "compact",
                       "cwd": "/p", "transcript_path": "/nonexistent"});
    let output = env.run(&["hook"], start.to_string().as_bytes());
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    let after = reply(&env);
    assert!(
        !after.is_empty() && !after.contains("output unchanged"),
        "{after}"
    );
    // Another source (a resumed session) keeps the memory.
    let resume = json!({"session_id": "s1", "hook_event_name": "SessionStart", "source": "resume"});
    env.run(&["hook"], resume.to_string().as_bytes());
    assert!(reply(&env).contains("output unchanged"));
}
