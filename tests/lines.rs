//! Line selection through the real binary, on real held-out agent outputs: the shipped
//! line model drops runs of unneeded lines, every marker names a range that `kompress show
//! ID --lines` brings back exactly, and error lines and the last line always stay.

mod common;

use common::Env;
use serde_json::{Value, json};

fn hook(env: &Env, text: &str, command: &str) -> Option<String> {
    let payload = json!({
        "session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": command, "description": ""},
        "tool_response": {"stdout": text, "stderr": "", "interrupted": false, "isImage": false},
        "tool_use_id": "toolu_1",
    });
    let out = env.run(&["hook"], payload.to_string().as_bytes());
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.is_empty() {
        return None;
    }
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(reply["hookSpecificOutput"]["updatedToolOutput"]["stdout"].as_str().unwrap().to_string())
}

/// Step outputs of one held-out repository of the shipped trajectories (never trained on):
/// (command, output) of the non-read outputs of 200+ characters.
fn held_out_outputs(limit: usize) -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/training/data/trajectories-dev.jsonl.gz");
    let all = kompress::usage::read(std::path::Path::new(path)).unwrap();
    let mut out = Vec::new();
    for t in all.iter().filter(|t| t.repo == "pylint-dev/astroid") {
        for step in &t.steps {
            let reads = ["cat ", "sed ", "head ", "tail ", "nl "].iter().any(|r| step.command.starts_with(r));
            if step.output.len() >= 200 && step.output.lines().count() >= 8 && !reads {
                out.push((step.command.clone(), step.output.clone()));
            }
        }
    }
    out.truncate(limit);
    out
}

#[test]
fn dropped_runs_come_back_by_their_line_numbers() {
    let env = Env::new().with_model();
    let mut with_markers = 0;
    for (command, text) in held_out_outputs(60) {
        let Some(after) = hook(&env, &text, &command) else { continue };
        assert!(after.len() < text.len());
        let original: Vec<&str> = text.split('\n').collect();
        // The last non-blank line and every error line stay.
        let last = original.iter().rev().find(|l| !l.trim().is_empty()).unwrap();
        // (Its words: a path list's last path may be grouped under its directory.)
        let kept: std::collections::HashSet<&str> = kompress::usage::items(&after).collect();
        assert!(
            kompress::usage::items(last).all(|w| kept.contains(w)),
            "{command}: last line {last:?} lost:\n{after}"
        );
        for line in original.iter().filter(|l| l.contains("Error: ")) {
            assert!(after.contains(line.trim_end()), "{command}: {line:?} lost:\n{after}");
        }
        let markers: Vec<&str> = after.lines().filter(|l| l.starts_with("[kompress: line")).collect();
        if markers.is_empty() {
            continue;
        }
        with_markers += 1;
        // The first marker names the command; every marker names its original range.
        let id = markers[0].split("kompress show ").nth(1).unwrap().split(' ').next().unwrap();
        for marker in markers {
            let range = marker.split_whitespace().nth(2).unwrap();
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            let shown = env.run(&["show", id, "--lines", &format!("{a}:{b}")], b"");
            assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
            let shown = String::from_utf8(shown.stdout).unwrap();
            assert_eq!(shown.trim_end_matches('\n'), original[a - 1..b].join("\n"), "{command}: {marker}");
        }
    }
    assert!(with_markers >= 3, "only {with_markers} outputs had lines dropped");
}

#[test]
fn rules_only_drops_no_lines() {
    let env = Env::new();
    for (command, text) in held_out_outputs(30) {
        if let Some(after) = hook(&env, &text, &command) {
            assert!(!after.contains(" omitted; kompress show"), "{after}");
        }
    }
}

#[test]
fn a_short_output_is_left_to_the_rules() {
    let env = Env::new().with_model();
    let text = "Collecting a\nCollecting b\nCollecting c\n".repeat(2);
    assert_eq!(hook(&env, &text, "pip install a b c"), None);
}
